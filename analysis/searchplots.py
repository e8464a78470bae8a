"""``adx results plot NAME --kind search``: what an Optuna search did, one figure across its
studies (one study per cell and seed).

Each row of the figure is a study: its optimisation history (the searched metric of every
trial in the order Optuna proposed them, the trials stopped by the scheduler marked, and
the best so far as a line), then one slice per searched field (the metric against the
field's value, on a log axis where the search space is log-uniform), as Optuna's own
``plot_optimization_history`` and ``plot_slice`` draw them.
"""

from __future__ import annotations

import math

import pandas as pd

from additive.errors import AdxError
from analysis.figures import _colour, _plt


def search_figure(df: pd.DataFrame, space: dict[str, dict], metric: str, mode: str = "min"):
    """The figure for a searched sweep's rows ``df`` (every search trial), its search
    ``space`` (field -> {kind: args}) and the searched ``metric``."""
    rows = df[df["search_number"].notna()]
    if rows.empty:
        raise AdxError("--kind search: these results have no searched trials (a spec with `search`)")
    studies = sorted(rows.groupby(["sweep", "cell", "seed"]), key=lambda kv: (kv[0][0], str(kv[0][1]), kv[0][2]))
    fields = list(space)
    plt = _plt()
    from matplotlib.ticker import MaxNLocator, NullFormatter

    fig, axes = plt.subplots(
        len(studies), 1 + len(fields), figsize=(2.4 * (1 + len(fields)), 2.1 * len(studies)), squeeze=False
    )
    better = min if mode == "min" else max
    for i, ((sweep, cell, seed), study) in enumerate(studies):
        study = study.sort_values("search_number")
        decoder = str(study["decoder"].iloc[0]) if "decoder" in study else ""
        colour = _colour(decoder)
        ok = study[(study["status"] == "ok") & study[metric].map(_finite)]
        stopped = study[(study["status"] == "stopped") & study[metric].map(_finite)]
        ax = axes[i][0]
        ax.scatter(ok["search_number"], ok[metric], s=12, color=colour, label="ok")
        ax.scatter(stopped["search_number"], stopped[metric], s=12, facecolors="none", edgecolors="grey",
                   label="stopped at a rung")  # fmt: skip
        values = ok.set_index("search_number")[metric]
        if len(values):
            best, line = None, []
            for n in study["search_number"]:
                if n in values.index:
                    best = values[n] if best is None else better(best, values[n])
                line.append(best)
            ax.step(study["search_number"], line, where="post", color="black", lw=1, label="best so far")
        ax.set_title(f"{sweep} {cell} seed {seed}: history", fontsize=8)
        ax.set_xlabel("trial")
        ax.set_ylabel(metric)
        if metric in ("val_loss", "train_loss"):
            ax.set_yscale("log")
        if i == 0:
            ax.legend(fontsize=6)
        for j, field in enumerate(fields, start=1):
            ax = axes[i][j]
            ax.scatter(stopped[field], stopped[metric], s=10, facecolors="none", edgecolors="grey")
            ax.scatter(ok[field], ok[metric], s=12, color=colour)
            kind = next(iter(space[field]))
            if kind in ("loguniform", "logint"):
                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(NullFormatter())  # major ticks only: minor labels overlap
            if metric in ("val_loss", "train_loss"):
                ax.set_yscale("log")
            ax.set_xlabel(field)
            ax.set_title(f"slice: {field}", fontsize=8)
    for row in axes:
        row[0].xaxis.set_major_locator(MaxNLocator(integer=True))  # trials are counted
    fig.suptitle(f"search: {metric} per trial and per searched field ({mode}imise)", fontsize=9)
    fig.tight_layout()
    return fig


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)
