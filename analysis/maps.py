"""The identifiability map: support shape x dependence level, per decoder.

``map_cells`` reduces the results to one row per (dataset, decoder, support, dependence):
how many (cell, seed) groups there are and in how many the kept member identifies (LMS ID
>= 99, with a Wilson 95% interval), and, per (dataset, support, dependence), the ratio of
the additive to the monolithic decoder's mean RMSE OOS with the paired test of their
difference over seeds, its p-value adjusted (Holm) over every cell of the map
(``analysis.tables.paired_comparison``, the same numbers `adx results compare` prints).

``map_figure`` draws it: a grid per decoder, colour the identification rate, ``k/n`` and
the interval written in each cell, and a grid of the RMSE OOS ratio with a star where the
corrected paired difference is significant (p_holm < 0.05); one row of panels per dataset
(ScalarLatents, BlockLatents).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.columns import IDENTIFIED_LMS
from analysis.tables import paired_comparison, select_models, wilson_interval

ALPHA = 0.05  # a corrected p-value below this is marked significant
_KEYS = ["dataset", "support", "support_param", "dependence_mechanism", "dependence"]


def support_label(support: str, param: float | None) -> str:
    """``diagonal_band`` and its width: ``diagonal_band 0.15``; the shape's default: its name."""
    return support if param is None or param != param else f"{support} {param:g}"


def dependence_label(mechanism: str, level: float) -> str:
    return f"{mechanism} {level:g}"


def map_cells(df: pd.DataFrame, per_run: bool = False) -> pd.DataFrame:
    """One row per (dataset, decoder, support, dependence) of the kept members (module
    docstring): ``k``, ``n``, ``rate``, ``low``, ``high``; and, on the additive decoder's
    rows, ``rmse_ratio`` (additive / monolithic mean RMSE OOS), ``p_value`` and ``p_holm``
    of their paired difference."""
    kept = select_models(df, per_run)
    kept = kept[kept["status"] == "ok"].copy()
    if kept.empty:
        return pd.DataFrame()
    for key in _KEYS:
        if key not in kept:
            kept[key] = None
    kept["support_label"] = [support_label(s, p) for s, p in zip(kept["support"], kept["support_param"], strict=True)]
    kept["dependence_label"] = [
        dependence_label(m, v) for m, v in zip(kept["dependence_mechanism"], kept["dependence"], strict=True)
    ]
    rows = []
    for (dataset, decoder, sup, dep), g in kept.groupby(
        ["dataset", "decoder", "support_label", "dependence_label"], sort=True
    ):
        lms = g["lms_id"].dropna()
        k, n = int((lms >= IDENTIFIED_LMS).sum()), int(len(lms))
        low, high = wilson_interval(k, n)
        rows.append(
            {
                "dataset": dataset,
                "decoder": decoder,
                "support": sup,
                "dependence": dep,
                "k": k,
                "n": n,
                "rate": k / n if n else math.nan,
                "low": low,
                "high": high,
                "lms_id": float(lms.mean()) if n else math.nan,
                "rmse_ood": float(g["rmse_ood"].mean()),
            }
        )
    cells = pd.DataFrame(rows)
    return cells.merge(_ratios(df, kept, per_run), how="left", on=["dataset", "decoder", "support", "dependence"])


def _ratios(df: pd.DataFrame, kept: pd.DataFrame, per_run: bool) -> pd.DataFrame:
    """Per (dataset, support, dependence): additive / monolithic mean RMSE OOS and the
    Holm-adjusted paired test, on the additive rows."""
    columns = ["dataset", "decoder", "support", "dependence", "rmse_ratio", "p_value", "p_holm"]
    if not {"additive", "monolithic"} <= set(kept["decoder"]):
        return pd.DataFrame(columns=columns)
    comp = paired_comparison(df, _KEYS, None, ("rmse_ood",), per_run)
    if comp.empty:
        return pd.DataFrame(columns=columns)
    comp = comp[comp["comparison"] == "additive - monolithic"].copy()
    for key in _KEYS:  # a key constant over the table is not a column of the comparison
        if key not in comp:
            comp[key] = kept[key].iloc[0]
    mean = kept.groupby(["dataset", "support_label", "dependence_label", "decoder"])["rmse_ood"].mean()
    out = []
    for _, row in comp.iterrows():
        sup = support_label(row["support"], row["support_param"])
        dep = dependence_label(row["dependence_mechanism"], row["dependence"])
        try:
            a = mean.loc[(row["dataset"], sup, dep, "additive")]
            m = mean.loc[(row["dataset"], sup, dep, "monolithic")]
        except KeyError:
            continue
        ratio = float(a / m) if m else math.nan
        out.append([row["dataset"], "additive", sup, dep, ratio, row["p_value"], row["p_holm"]])
    return pd.DataFrame(out, columns=columns)


# Reading order of the built-in shapes: the product support first, then the path-connected
# ones, then the disconnected one; other names (plugins) after them, by name.
SUPPORT_ORDER = ("full", "no_overlap", "l_shape", "scm", "scm_nonlinear", "diagonal_band", "disconnected")


def _order(labels: list[str]) -> list[str]:
    """Support or dependence labels in reading order: by shape (``SUPPORT_ORDER``) or name,
    then by number, widest band first."""

    def key(label: str):
        name, _, number = label.partition(" ")
        rank = SUPPORT_ORDER.index(name) if name in SUPPORT_ORDER else len(SUPPORT_ORDER)
        try:
            value = float(number)
        except ValueError:
            value = math.inf
        return (rank, name, -value if name == "diagonal_band" else value)

    return sorted(set(labels), key=key)


def map_figure(df: pd.DataFrame, per_run: bool = False):
    """The map (module docstring); None when there is nothing ok to draw."""
    from analysis.figures import _plt

    cells = map_cells(df, per_run)
    if cells.empty:
        return None
    plt = _plt()
    datasets = sorted(cells["dataset"].unique())
    decoders = sorted(cells["decoder"].unique(), key=lambda d: (d != "additive", d != "monolithic", d))
    has_ratio = cells["rmse_ratio"].notna().any() if "rmse_ratio" in cells else False
    ncols = len(decoders) + int(bool(has_ratio))
    heights = [max(1.0, 0.42 * len(set(cells.loc[cells["dataset"] == d, "support"]))) + 0.9 for d in datasets]
    widths = [max(2.6, 0.75 * len(set(cells.loc[cells["dataset"] == d, "dependence"]))) for d in datasets]
    fig, axes = plt.subplots(
        len(datasets), ncols, figsize=(max(widths) * ncols + 0.8, sum(heights)), squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )  # fmt: skip
    rate_map = plt.get_cmap("RdYlGn")
    ratio_map = plt.get_cmap("PuOr_r")
    for i, dataset in enumerate(datasets):
        part = cells[cells["dataset"] == dataset]
        rows, cols = _order(list(part["support"])), _order(list(part["dependence"]))
        for j, decoder in enumerate(decoders):
            ax = axes[i, j]
            grid = np.full((len(rows), len(cols)), np.nan)
            for _, c in part[part["decoder"] == decoder].iterrows():
                r, q = rows.index(c["support"]), cols.index(c["dependence"])
                grid[r, q] = c["rate"]
                text = f"{c['k']}/{c['n']}\n{c['low']:.2f}-{c['high']:.2f}"
                ax.text(q, r, text, ha="center", va="center", fontsize=6.5)
            ax.imshow(np.ma.masked_invalid(grid), cmap=rate_map, vmin=0, vmax=1, aspect="auto")
            _axes(ax, rows, cols, f"{decoder}\nkept member identifies", dataset if j == 0 else None)
        if has_ratio:
            ax = axes[i, -1]
            grid = np.full((len(rows), len(cols)), np.nan)
            for _, c in part[part["rmse_ratio"].notna()].iterrows():
                r, q = rows.index(c["support"]), cols.index(c["dependence"])
                grid[r, q] = math.log2(c["rmse_ratio"])
                star = "*" if c["p_holm"] == c["p_holm"] and c["p_holm"] < ALPHA else ""
                ax.text(q, r, f"{c['rmse_ratio']:.2f}{star}", ha="center", va="center", fontsize=7)
            for r, sup in enumerate(rows):  # a cell without OOS images (CPE(S) = S)
                for q, dep in enumerate(cols):
                    if np.isnan(grid[r, q]) and ((part["support"] == sup) & (part["dependence"] == dep)).any():
                        ax.text(q, r, "no OOS", ha="center", va="center", fontsize=6, color="#777777")
            ax.imshow(np.ma.masked_invalid(grid), cmap=ratio_map, vmin=-2, vmax=2, aspect="auto")
            _axes(ax, rows, cols, "RMSE OOS\nadditive / monolithic", None)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.text(
        0.01, 0.01,
        f"Colour: share of seeds whose kept member identifies (LMS ID >= {IDENTIFIED_LMS:g}); k/n and the Wilson 95% "
        f"interval in each cell. Ratio panel: * where the paired additive - monolithic RMSE OOS difference has "
        f"p < {ALPHA:g} after Holm's correction over every cell of the map.",
        fontsize=7, wrap=True, va="bottom",
    )  # fmt: skip
    return fig


def _axes(ax, rows: list[str], cols: list[str], title: str, dataset: str | None) -> None:
    """Ticks and titles; the first panel of a row names the dataset and the supports."""
    ax.set_xticks(range(len(cols)), cols, rotation=35, ha="right")
    ax.set_yticks(range(len(rows)), rows if dataset else [""] * len(rows))
    ax.set_title(title)
    ax.set_xlabel("dependence")
    if dataset:
        names = {"scalar": "ScalarLatents", "block": "BlockLatents"}
        ax.set_ylabel(f"{names.get(dataset, dataset)}: support")
