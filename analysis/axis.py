"""A metric against a column of the user's choice (``adx results plot NAME --x COLUMN``).

One point per value of the column and decoder: the mean of the metric over the kept
members with its s.e.m., and beside it the identification rate (LMS ID >= 99) with its
Wilson 95% interval. A condition column that varies besides the chosen one is never
pooled: each of its combinations gets its own row of panels, titled with its values.
"""

from __future__ import annotations

import pandas as pd

from additive.errors import AdxError
from analysis.columns import CONDITION, IDENTIFIED_LMS
from analysis.tables import select_models, wilson_interval

METRIC_LABELS = {
    "lms_id": "LMS ID (0-100)",
    "rmse_id": "RMSE ID",
    "rmse_ood": "RMSE OOS",
    "rmse_recombine": "RMSE recombined",
    "val_loss": "validation loss",
}


def varying_conditions(df: pd.DataFrame, used: list[str]) -> list[str]:
    """Condition columns that take more than one value in ``df`` and are not in ``used``:
    what a figure would pool if it did not split on them."""
    return [c for c in CONDITION if c in df and c not in used and df[c].nunique(dropna=False) > 1]


def axis_points(df: pd.DataFrame, x: str, metric: str = "lms_id", per_run: bool = False) -> pd.DataFrame:
    """Per (facet, decoder, value of ``x``): mean and s.e.m. of ``metric``, and the
    identification count ``k`` of ``n`` with its Wilson interval."""
    if x not in df:
        raise AdxError(f"--x: must name a result column, but got {x!r}")
    if metric not in df:
        raise AdxError(f"--y: must name a result column, but got {metric!r}")
    kept = select_models(df, per_run)
    kept = kept[kept["status"] == "ok"]
    facets = varying_conditions(kept, [x])
    rows = []
    for key, g in kept.groupby([*facets, "decoder", x], dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        lms = g["lms_id"].dropna()
        k, n = int((lms >= IDENTIFIED_LMS).sum()), int(len(lms))
        low, high = wilson_interval(k, n)
        values = g[metric].dropna()
        rows.append(
            dict(zip([*facets, "decoder", x], key, strict=True))
            | {
                "mean": values.mean(),
                "sem": values.sem() if len(values) > 1 else 0.0,
                "k": k,
                "n": n,
                "low": low,
                "high": high,
            }  # fmt: skip
        )
    return pd.DataFrame(rows)


def axis_figure(df: pd.DataFrame, x: str, metric: str = "lms_id", per_run: bool = False):
    """The figure (module docstring); None when nothing is ok."""
    from analysis.figures import _colour, _plt

    points = axis_points(df, x, metric, per_run)
    if points.empty:
        return None
    plt = _plt()
    facets = [c for c in points.columns if c not in ("decoder", x, "mean", "sem", "k", "n", "low", "high")]
    groups = list(points.groupby(facets, dropna=False, sort=True)) if facets else [((), points)]
    numeric = pd.api.types.is_numeric_dtype(points[x])
    fig, axes = plt.subplots(len(groups), 2, figsize=(8.0, 2.8 * len(groups)), squeeze=False)
    for i, (key, part) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        where = ", ".join(f"{c}={v}" for c, v in zip(facets, key, strict=True))
        labels = sorted(part[x].dropna().unique()) if numeric else sorted(map(str, part[x].unique()))
        decoders = sorted(part["decoder"].unique())
        for d, (decoder, g) in enumerate(part.groupby("decoder", sort=True)):
            g = g.sort_values(x)
            # categories: points side by side, not joined; numbers: a line per decoder
            dodge = (d - (len(decoders) - 1) / 2) * 0.08
            xs = g[x] if numeric else [labels.index(str(v)) + dodge for v in g[x]]
            kw = {"color": _colour(decoder), "marker": "o", "ms": 3, "capsize": 2, "label": decoder}
            kw["ls"] = "-" if numeric else "none"
            axes[i, 0].errorbar(xs, g["mean"], yerr=g["sem"], **kw)
            rate = g["k"] / g["n"]
            axes[i, 1].errorbar(xs, rate, yerr=[rate - g["low"], g["high"] - rate], **kw)
        for ax in axes[i]:
            ax.set_xlabel(x)
            ax.grid(alpha=0.3)
            if not numeric:
                ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        axes[i, 0].set_ylabel(METRIC_LABELS.get(metric, metric) + " (mean ± s.e.m.)")
        axes[i, 1].set_ylabel(f"identifies (LMS ID >= {IDENTIFIED_LMS:g})")
        axes[i, 1].set_ylim(-0.05, 1.05)
        if where:
            axes[i, 0].set_title(where, loc="left")
    axes[0, 0].legend(title="decoder")
    fig.tight_layout()
    return fig
