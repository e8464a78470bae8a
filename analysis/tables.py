"""The identifiability / extrapolation table (the paper's Table 1 layout) and the paired
additive-vs-monolithic comparison.

Rows are conditions (dataset, support, dependence mechanism and level, n_objects);
columns, per decoder, are RMSE ID, LMS ID, RMSE OOS, LMS OOS and RMSE recombine as
``mean ± s.e.m.`` over seeds, the share of seeds that identify (LMS ID >= 99), the number
of seeds, and the number of trials that did not finish (failed, diverged or stopped),
which are never averaged in.
"""

from __future__ import annotations

import math
import os
import textwrap

import pandas as pd
from scipy import stats

from additive.errors import AdxError

CONDITION = ["variant", "dataset", "support", "support_param", "dependence_mechanism", "dependence", "n_objects"]
TABLE_METRICS = {
    "rmse_id": "RMSE ID",
    "lms_id": "LMS ID",
    "rmse_ood": "RMSE OOS",
    "lms_ood": "LMS OOS",
    "rmse_recombine": "RMSE recomb.",
}
FORMATS = ("terminal", "md", "latex", "csv")
# A seed "identifies" when its LMS ID reaches this (the success rate of docs/RESULTS.md).
IDENTIFIED_LMS = 99.0


def select_models(df: pd.DataFrame) -> pd.DataFrame:
    """Honest model selection: where a sweep searched hyperparameters, each (sweep, cell,
    seed) is represented by its ok trial with the lowest validation reconstruction loss
    (never the best LMS). Trials that did not finish stay, to be counted."""
    if df.empty or "search_number" not in df or df["search_number"].isna().all():
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
    return varying or cols[:1]


def _sem(x: pd.Series) -> float:
    x = x.dropna()
    return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")


def summary_table(df: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Long table: one row per (condition, decoder) with mean, s.e.m. and counts."""
    if df.empty:
        raise AdxError("no trials to tabulate")
    df = select_models(df)
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
    out["n_seeds"] = grouped["seed"].nunique()
    all_keys = df.groupby(keys, dropna=False, sort=True).size().rename("n_trials")
    bad = df[df["status"] != "ok"].groupby(keys, dropna=False).size().rename("n_not_ok")
    out = pd.concat([all_keys, out, bad], axis=1)
    out["n_not_ok"] = out["n_not_ok"].fillna(0).astype(int)
    out["n_seeds"] = out["n_seeds"].fillna(0).astype(int)
    out["n_identified"] = out["n_identified"].fillna(0).astype(int)
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
        c for c in summary.columns if c.endswith(("_mean", "_sem")) or c in ("n_seeds", "n_not_ok", "n_identified")
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
            row[f"{d} LMS>=99"] = f"{int(r['n_identified'])}/{int(r['n_seeds'])}"
            row[f"{d} seeds"] = int(r["n_seeds"])
            row[f"{d} not ok"] = int(r["n_not_ok"])
        rows.append(row)
    return pd.DataFrame(rows)


def paired_comparison(
    df: pd.DataFrame,
    by: list[str] | None = None,
    a: str = "additive",
    b: str = "monolithic",
    metrics: tuple[str, ...] = ("lms_id", "rmse_ood", "rmse_recombine"),
) -> pd.DataFrame:
    """Per condition, ``a`` minus ``b`` over seeds matched between the two decoders:
    mean difference, 95% confidence interval (t) and the paired t-test p-value."""
    df = select_models(df)
    df = df[df["status"] == "ok"]
    if df.empty:
        return pd.DataFrame()
    cond = _conditions(df, by)
    rows = []
    for key, g in df.groupby(cond, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        ga = g[g["decoder"] == a].groupby("seed")[list(metrics)].mean()
        gb = g[g["decoder"] == b].groupby("seed")[list(metrics)].mean()
        seeds = ga.index.intersection(gb.index)
        for m in metrics:
            diff = (ga.loc[seeds, m] - gb.loc[seeds, m]).dropna()
            n = len(diff)
            row = dict(zip(cond, key, strict=True)) | {"metric": m, "pairs": n}
            if n == 0:
                continue
            mean = float(diff.mean())
            if n > 1 and diff.std(ddof=1) > 0:
                sem = float(diff.std(ddof=1) / math.sqrt(n))
                half = float(stats.t.ppf(0.975, n - 1) * sem)
                p = float(stats.ttest_rel(ga.loc[diff.index, m], gb.loc[diff.index, m]).pvalue)
            else:
                half, p = float("nan"), float("nan")
            row |= {f"{a} - {b}": mean, "ci95_low": mean - half, "ci95_high": mean + half, "p_value": p}
            rows.append(row)
    return pd.DataFrame(rows)


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


def results_table(df: pd.DataFrame, by: list[str] | None = None) -> tuple[pd.DataFrame, str]:
    """The wide table and a note on how it was built."""
    summary = summary_table(df, by)
    note = "mean ± s.e.m. over seeds; 'not ok' counts failed, diverged and stopped trials (not averaged in)."
    note += f" LMS>=99: seeds whose LMS ID reaches {IDENTIFIED_LMS:g} (identified)."
    if "search_number" in df and df["search_number"].notna().any():
        note += " Hyperparameters searched: each (cell, seed) is its trial with the lowest validation loss."
    if "oracle_selection" in df and df["oracle_selection"].fillna(False).astype(bool).any():
        metrics = sorted(df.loc[df["oracle_selection"].fillna(False).astype(bool), "selected_by"].dropna().unique())
        note += (
            f" ORACLE: the search selected on {', '.join(metrics)}, which needs ground truth "
            "(oracle_selection: true); these numbers are not a model selection."
        )
    return wide_table(summary), note


def print_sweep_table(storage: str, name: str, fmt: str = "terminal") -> None:
    from analysis.load import load_trials

    df = load_trials(name, storage)
    table, note = results_table(df)
    print(format_results_table(table, fmt))
    print(textwrap.fill(note, terminal_width()) if fmt == "terminal" else note)
