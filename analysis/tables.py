"""The identifiability / extrapolation table (the paper's Table 1 layout) and the paired
additive-vs-monolithic comparison.

Rows are conditions (dataset, support, dependence mechanism and level, n_objects);
columns, per decoder, are RMSE ID, LMS ID, RMSE OOS, LMS OOS and RMSE recombine as
``mean ± s.e.m.`` over seeds, the identification rate (runs with LMS ID >= 99, with a Wilson
95% interval), the number of seeds, and the number of trials that did not finish (failed,
diverged or stopped), which are never averaged in.

Two estimators (``select_models``): by default each (cell, seed) is one model, the member
its restart group selected by validation loss (and, with a search, the searched trial with
the lowest validation loss); ``per_run`` shows every run that trained the full budget, the
paper's single-run estimator.
"""

from __future__ import annotations

import math
import os
import textwrap

import pandas as pd

from additive.errors import AdxError
from analysis.columns import CONDITION, IDENTIFIED_LMS, name_plugins

TABLE_METRICS = {
    "rmse_id": "RMSE ID",
    "lms_id": "LMS ID",
    "rmse_ood": "RMSE OOS",
    "lms_ood": "LMS OOS",
    "rmse_recombine": "RMSE recomb.",
}
FORMATS = ("terminal", "md", "latex", "csv")


def _restarts(df: pd.DataFrame) -> pd.Series:
    """Members per row's restart group (1 for rows written before restarts existed)."""
    if "restarts" not in df:
        return pd.Series(1, index=df.index)
    return df["restarts"].fillna(1).astype(int)


def select_models(df: pd.DataFrame, per_run: bool = False) -> pd.DataFrame:
    """Honest model selection, from validation reconstruction losses only (never the LMS).

    Restarts: by default each restart group is represented by its ``selected`` member (the
    one the group kept for its lowest validation loss); a group that kept none is
    represented by one of its rows, to be counted as not ok. With ``per_run`` every member
    that ran the full budget stays, and the members stopped at ``select_at`` leave (they
    are neither results nor failures). Search: each (sweep, cell, seed) is then its ok
    trial with the lowest validation loss. Trials that did not finish stay, to be counted.
    """
    if df.empty:
        return df
    df = name_plugins(df)
    grouped = _restarts(df) > 1
    if grouped.any():
        members = df[grouped]
        if per_run:
            kept = members[members["status"] != "stopped"]
        else:
            chosen = members[members["selected"].fillna(False).astype(bool)]
            keys = ["sweep", "restart_group"]
            orphans = members.drop_duplicates(keys).merge(chosen[keys], on=keys, how="left", indicator=True)
            orphans = orphans[orphans["_merge"] == "left_only"].drop(columns="_merge")
            kept = pd.concat([chosen, orphans], ignore_index=True)
        df = pd.concat([df[~grouped], kept], ignore_index=True)
    if "search_number" not in df or df["search_number"].isna().all():
        return df
    searched = df["search_number"].notna()
    ok = df[searched & (df["status"] == "ok")]
    best = ok.sort_values("val_loss", kind="stable").groupby(["sweep", "cell", "seed"], dropna=False).head(1)
    not_ok = df[searched & (df["status"] != "ok")]
    return pd.concat([df[~searched], best, not_ok], ignore_index=True)


def _conditions(df: pd.DataFrame, by: list[str] | None) -> list[str]:
    cols = by or [c for c in CONDITION if c in df.columns and df[c].notna().any()]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise AdxError(f"--by: must name result columns, but got unknown {', '.join(missing)}")
    # Columns constant over the whole table say nothing; keep at least one.
    varying = [c for c in cols if df[c].nunique(dropna=False) > 1]
    others = [c for c in varying if c != "variant"]
    if not by and "variant" in varying and others:
        # variants that only name the cells of the other conditions (a map's) add no column
        filled = df[[*others, "variant"]].astype(object).where(df[[*others, "variant"]].notna(), "-")
        if (filled.groupby(others)["variant"].nunique() <= 1).all():
            varying = others
    return varying or cols[:1]


def _sem(x: pd.Series) -> float:
    x = x.dropna()
    return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")


def wilson_interval(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval of a proportion k / n (95% by default): unlike the normal
    approximation it stays inside [0, 1] and is honest at 0 / n and n / n, the usual
    counts here. (nan, nan) for n = 0."""
    if n <= 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def format_rate(k: int, n: int) -> str:
    """``4/5 (0.38-0.96)``: a count of successes with its Wilson 95% interval."""
    if n <= 0:
        return "0/0"
    low, high = wilson_interval(k, n)
    return f"{k}/{n} ({low:.2f}-{high:.2f})"


def summary_table(df: pd.DataFrame, by: list[str] | None = None, per_run: bool = False) -> pd.DataFrame:
    """Long table: one row per (condition, decoder) with mean, s.e.m. and counts."""
    if df.empty:
        raise AdxError("no trials to tabulate")
    df = select_models(df, per_run)
    cond = _conditions(df, by)
    keys = [*cond, "decoder"]
    df = df.copy()
    for c in keys:  # group NaN conditions (e.g. support_param of a support without one)
        if df[c].isna().any():
            df[c] = df[c].astype(object).where(df[c].notna(), "-")
    ok = df[df["status"] == "ok"]
    grouped = ok.groupby(keys, dropna=False, sort=True)
    out = grouped[list(TABLE_METRICS)].mean().add_suffix("_mean")
    sem = grouped[list(TABLE_METRICS)].agg(_sem).add_suffix("_sem")
    out = out.join(sem)
    out["n_identified"] = grouped["lms_id"].agg(lambda x: int((x >= IDENTIFIED_LMS).sum()))
    out["n_runs"] = grouped["lms_id"].agg(lambda x: int(x.notna().sum()))
    out["n_seeds"] = grouped["seed"].nunique()
    all_keys = df.groupby(keys, dropna=False, sort=True).size().rename("n_trials")
    bad = df[df["status"] != "ok"].groupby(keys, dropna=False).size().rename("n_not_ok")
    out = pd.concat([all_keys, out, bad], axis=1)
    out["n_not_ok"] = out["n_not_ok"].fillna(0).astype(int)
    out["n_seeds"] = out["n_seeds"].fillna(0).astype(int)
    out["n_identified"] = out["n_identified"].fillna(0).astype(int)
    out["n_runs"] = out["n_runs"].fillna(0).astype(int)
    return out.drop(columns="n_trials").reset_index()


def _cell(mean: float, sem: float, rmse: bool) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    fmt = "{:.4f}" if rmse else "{:.1f}"
    text = fmt.format(mean)
    if sem is not None and not (isinstance(sem, float) and math.isnan(sem)):
        text += " ± " + fmt.format(sem)
    return text


def wide_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Table 1 layout: one row per condition, columns per decoder and metric."""
    values = {
        c
        for c in summary.columns
        if c.endswith(("_mean", "_sem")) or c in ("n_seeds", "n_not_ok", "n_identified", "n_runs")
    }
    cond = [c for c in summary.columns if c not in values and c != "decoder"]
    rows = []
    for key, g in summary.groupby(cond, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(cond, key, strict=True))
        for _, r in g.iterrows():
            d = r["decoder"]
            for m, label in TABLE_METRICS.items():
                row[f"{d} {label}"] = _cell(r[f"{m}_mean"], r[f"{m}_sem"], m.startswith("rmse"))
            row[f"{d} LMS>=99"] = format_rate(int(r["n_identified"]), int(r["n_runs"]))
            row[f"{d} seeds"] = int(r["n_seeds"])
            row[f"{d} not ok"] = int(r["n_not_ok"])
        rows.append(row)
    return pd.DataFrame(rows)


def comparison_pairs(values: list[str], baseline: str | None = None, across: str = "decoder") -> list[tuple[str, str]]:
    """Which values of ``across`` (the decoders by default) ``paired_comparison`` compares,
    each as (value, baseline): every value against ``baseline``; without one, additive
    against monolithic when both are there, then any other decoder (a plugin) against
    monolithic, or the first two."""
    if baseline is not None:
        if baseline not in values:
            what = "decoders" if across == "decoder" else f"values of {across!r}"
            raise AdxError(f"--baseline: must be one of the {what} {values}, but got {baseline!r}")
        return [(d, baseline) for d in values if d != baseline]
    if "monolithic" in values:
        first = ["additive"] if "additive" in values else []
        others = [d for d in values if d not in ("additive", "monolithic", "masked")]
        return [(d, "monolithic") for d in first + others]
    return [(values[0], values[1])] if len(values) > 1 else []


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (NaN stays NaN): controls the
    chance of any false rejection in the family, with no assumption on how the tests
    depend on each other."""
    finite = sorted((p, i) for i, p in enumerate(p_values) if p == p)
    out = [math.nan] * len(p_values)
    m, running = len(finite), 0.0
    for rank, (p, i) in enumerate(finite):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def paired_comparison(
    df: pd.DataFrame,
    by: list[str] | None = None,
    baseline: str | None = None,
    metrics: tuple[str, ...] = ("lms_id", "rmse_ood", "rmse_recombine"),
    per_run: bool = False,
    across: str = "decoder",
) -> pd.DataFrame:
    """Per condition and pair of decoders (``comparison_pairs``), the decoder minus the
    baseline over seeds matched between the two (with ``per_run``, over (seed, restart)
    pairs): mean difference, 95% confidence interval (t), the paired t-test p-value and
    ``p_holm``, that p-value adjusted (Holm) over the conditions of the table, one family
    per (pair, metric): the correction for testing every cell.

    ``across`` names another column to compare along instead of the decoder, e.g. ``sweep``
    for the same cells and seeds run by two sweeps (tuned hyperparameters against a recipe);
    the decoder then becomes one of the conditions."""
    from scipy import stats

    if across not in df.columns:
        raise AdxError(f"--across: must name a result column, but got {across!r}")
    df = select_models(df, per_run)
    df = df[df["status"] == "ok"]
    if df.empty:
        return pd.DataFrame()
    cond = [c for c in _conditions(df, by) if c != across]
    if across != "decoder" and "decoder" not in cond:
        cond = ["decoder", *cond]
    pairs = comparison_pairs(sorted(df[across].dropna().unique()), baseline, across)
    rows = []
    for key, g in df.groupby(cond, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        pair = ["seed", "restart"] if per_run and "restart" in g else ["seed"]
        for a, b in pairs:
            ga = g[g[across] == a].groupby(pair)[list(metrics)].mean()
            gb = g[g[across] == b].groupby(pair)[list(metrics)].mean()
            seeds = ga.index.intersection(gb.index)
            for m in metrics:
                diff = (ga.loc[seeds, m] - gb.loc[seeds, m]).dropna()
                n = len(diff)
                if n == 0:
                    continue
                row = dict(zip(cond, key, strict=True)) | {"comparison": f"{a} - {b}", "metric": m, "pairs": n}
                mean = float(diff.mean())
                if n > 1 and diff.std(ddof=1) > 0:
                    sem = float(diff.std(ddof=1) / math.sqrt(n))
                    half = float(stats.t.ppf(0.975, n - 1) * sem)
                    p = float(stats.ttest_rel(ga.loc[diff.index, m], gb.loc[diff.index, m]).pvalue)
                else:
                    half, p = float("nan"), float("nan")
                row |= {"difference": mean, "ci95_low": mean - half, "ci95_high": mean + half, "p_value": p}
                rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["p_holm"] = math.nan
    for _, family in out.groupby(["comparison", "metric"], sort=False):
        out.loc[family.index, "p_holm"] = holm(list(family["p_value"]))
    return out


def terminal_width() -> int:
    """The terminal's width: $COLUMNS, else 120."""
    try:
        return max(int(os.environ.get("COLUMNS", "")), 40)
    except ValueError:
        return 120


def format_results_table(table: pd.DataFrame, fmt: str, width: int | None = None) -> str:
    """The wide results table; in the terminal, one block per condition with metrics as
    rows and decoders as columns, so it fits ``width`` (default: the terminal's)."""
    if fmt != "terminal" or table.empty:
        return format_table(table, fmt)
    width = width or terminal_width()
    decoders = list(dict.fromkeys(c.split(" ", 1)[0] for c in table.columns if c.endswith(" seeds")))
    measures = list(dict.fromkeys(c.split(" ", 1)[1] for c in table.columns if c.split(" ", 1)[0] in decoders))
    conditions = [c for c in table.columns if c.split(" ", 1)[0] not in decoders]
    blocks = []
    for _, row in table.iterrows():
        title = ", ".join(f"{c}={row[c]}" for c in conditions) or "all trials"
        body = pd.DataFrame(
            {d: [_plain(row.get(f"{d} {m}")) for m in measures] for d in decoders},
            index=measures,
        )
        with pd.option_context("display.max_columns", None, "display.width", width):
            blocks.append(_clip(title, width) + "\n" + body.to_string(line_width=width))
    return "\n\n".join(blocks)


def _plain(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return str(value)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(table: pd.DataFrame, fmt: str) -> str:
    if fmt not in FORMATS:
        raise AdxError(f"--format: must be one of {list(FORMATS)}, but got {fmt!r}")
    if table.empty:
        return "(no rows)"
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "latex":
        return table.to_latex(index=False, escape=True).replace("±", r"$\pm$")
    if fmt == "md":
        return _markdown(table)
    with pd.option_context("display.max_columns", None, "display.width", terminal_width(), "display.max_colwidth", 40):
        return table.to_string(index=False, line_width=terminal_width())


def _markdown(table: pd.DataFrame) -> str:
    def cell(v) -> str:
        if isinstance(v, float):
            return "–" if math.isnan(v) else f"{v:.4g}"
        return str(v)

    head = "| " + " | ".join(map(str, table.columns)) + " |"
    sep = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def _when_selected(grouped: pd.DataFrame) -> str:
    """When a restart group chose its member: at one step, raced through rungs, or at the end.
    ``rungs`` holds a step list (``select_at`` as one rung); files older than it hold only
    ``select_at``."""
    rungs = sorted(str(x) for x in grouped["rungs"].dropna().unique()) if "rungs" in grouped else []
    if any("," in r for r in rungs):
        races = " or ".join(r.replace(",", ", ") for r in rungs)
        return f"raced at rungs {races} (the better half goes on at each, one kept at the last)"
    at = sorted({int(r) for r in rungs} | {int(x) for x in grouped["select_at"].dropna().unique()})
    return f"selected at step {', '.join(map(str, at))}" if at else "all run in full, selected at the end"


def estimator_note(df: pd.DataFrame, per_run: bool = False) -> str:
    """What each number of a table stands for: the selected member of a restart group, or
    every full-budget run."""
    grouped = df[_restarts(df) > 1] if not df.empty else df
    if grouped.empty:
        return "One run per (cell, seed)" + (" (no restarts)." if per_run else ".")
    k = sorted(int(x) for x in grouped["restarts"].dropna().unique())
    when = _when_selected(grouped)
    group = f"restarts: {' or '.join(map(str, k))} initialisations per (cell, seed), {when}"
    if per_run:
        return (
            f"Per run ({group}): every member that trained the full budget is one run (the single-run "
            "estimator); members stopped at a selection step are left out."
        )
    return (
        f"Selected ({group}): each (cell, seed) is the member with the lowest validation loss, chosen without "
        "ground truth; --per-run shows every full-budget member."
    ) + topup_note(grouped)


def topup_note(grouped: pd.DataFrame) -> str:
    """What a top-up (``adx sweep topup``) added: members past a group's ``restarts``, each a
    full run; empty when there were none."""
    extra = grouped[grouped["restart"].fillna(0) >= grouped["restarts"].fillna(1)]
    if extra.empty:
        return ""
    groups = grouped.drop_duplicates(["sweep", "restart_group"])
    topped = extra.drop_duplicates(["sweep", "restart_group"])
    return (
        f" Top-up: {len(topped)} of {len(groups)} groups, whose kept validation loss stood out in their cell, got "
        f"{len(extra)} more members trained in full and keep the lowest validation loss among their full-budget "
        f"members ({len(extra) / len(groups):.2f} full runs per group more)."
    )


def results_table(df: pd.DataFrame, by: list[str] | None = None, per_run: bool = False) -> tuple[pd.DataFrame, str]:
    """The wide table and a note on how it was built."""
    summary = summary_table(df, by, per_run)
    unit = "runs" if per_run else "seeds"
    note = estimator_note(df, per_run)
    note += f" mean ± s.e.m. over {unit}; 'not ok' counts failed, diverged and stopped trials (not averaged in)."
    note += (
        f" LMS>=99: {unit} whose LMS ID reaches {IDENTIFIED_LMS:g} (identified), with a Wilson 95% interval "
        "on the identification rate."
    )
    if "search_number" in df and df["search_number"].notna().any():
        note += " Hyperparameters searched: each (cell, seed) is its trial with the lowest validation loss."
    if "oracle_selection" in df and df["oracle_selection"].fillna(False).astype(bool).any():
        metrics = sorted(df.loc[df["oracle_selection"].fillna(False).astype(bool), "selected_by"].dropna().unique())
        note += (
            f" ORACLE: the search selected on {', '.join(metrics)}, which needs ground truth "
            "(oracle_selection: true); these numbers are not a model selection."
        )
    return wide_table(summary), note


def print_sweep_table(storage: str, name: str, fmt: str = "terminal", per_run: bool = False) -> None:
    from analysis.load import load_trials

    df = load_trials(name, storage)
    table, note = results_table(df, per_run=per_run)
    print(format_results_table(table, fmt))
    print(textwrap.fill(note, terminal_width()) if fmt == "terminal" else note)
