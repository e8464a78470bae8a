"""One self-contained HTML report (images embedded) from Parquet results."""

from __future__ import annotations

import base64
import html
import warnings
from pathlib import Path

import pandas as pd

from additive.errors import AdxError

_CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 1280px; margin: 2em auto;
       color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.8em 0; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
img { max-width: 100%; border: 1px solid #eee; } .note { color: #555; font-size: 0.9em; }
.scroll { overflow-x: auto; } th { text-align: center; }
"""


def _img(fig) -> str:
    from analysis.figures import figure_bytes

    data = base64.b64encode(figure_bytes(fig)).decode()
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def _table_html(df: pd.DataFrame) -> str:
    if df.empty:
        return "<p class='note'>(no rows)</p>"
    table = df.to_html(index=False, escape=True, na_rep="–", float_format=lambda v: f"{v:.4g}", border=0)
    return f"<div class='scroll'>{table}</div>"


def _by_metric(table: pd.DataFrame) -> pd.DataFrame:
    """The wide table turned so it stays narrow whatever the number of metrics: one row per
    (condition, metric), one column per decoder."""
    decoders = list(dict.fromkeys(c.split(" ", 1)[0] for c in table.columns if c.endswith(" seeds")))
    conditions = [c for c in table.columns if c.split(" ", 1)[0] not in decoders]
    measures = list(dict.fromkeys(c.split(" ", 1)[1] for c in table.columns if c.split(" ", 1)[0] in decoders))
    rows = []
    for _, row in table.iterrows():
        for m in measures:
            rows.append({**{c: row[c] for c in conditions}, "metric": m, **{d: row.get(f"{d} {m}") for d in decoders}})
    return pd.DataFrame(rows).set_index([*conditions, "metric"])


def write_report(names: list[str], storage: str, out: str, strict: bool = False, per_run: bool = False) -> Path:
    """Write the report: spec, counts by status, tables, comparison and plots."""
    from analysis.load import load_curves, load_trials
    from analysis.plots import curves_figure, dependence_figure, extrapolation_figure, pick_trial, support_figure
    from analysis.tables import paired_comparison, results_table
    from sweeps.results import Storage, SweepFiles

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = load_trials(names, storage, strict=strict)
    skipped = [str(w.message) for w in caught]
    for w in caught:  # still shown by the command, and now in the page too
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if df.empty:
        raise AdxError(f"no trials in {', '.join(names)} yet")
    store = Storage(storage)
    title = ", ".join(names)
    parts = [
        f"<h1>Additive decoders: {html.escape(title)}</h1>",
        f"<p class='note'>{len(df)} trials from {html.escape(store.uri)}; generated {pd.Timestamp.now():%Y-%m-%d %H:%M}"
        "</p>",
    ]

    if skipped:
        parts.append(
            "<h2>Skipped files</h2><p class='note'>These results files could not be read and are not in "
            "any table or plot below:</p><ul>" + "".join(f"<li>{html.escape(m)}</li>" for m in skipped) + "</ul>"
        )
    counts = df.groupby(["sweep", "status"]).size().unstack(fill_value=0).reset_index()
    counts.columns.name = None
    parts += ["<h2>Trials by status</h2>", _table_html(counts)]
    bad = df[df["status"] != "ok"]
    if not bad.empty:
        parts.append(
            "<details><summary>Errors of trials that did not finish</summary>"
            + _table_html(bad[["sweep", "trial_id", "cell", "status", "error"]])
            + "</details>"
        )

    table, note = results_table(df, per_run=per_run)
    wide = _by_metric(table).to_html(escape=True, border=0, na_rep="–")
    parts += [
        "<h2>Identifiability and extrapolation</h2>",
        f"<div class='scroll'>{wide}</div>",
        f"<p class='note'>{html.escape(note)}</p>",
    ]
    comparison = paired_comparison(df, per_run=per_run)
    if not comparison.empty:
        parts += [
            "<h2>Paired differences between decoders (over seeds)</h2>",
            _table_html(comparison),
            "<p class='note'>LMS higher is better; RMSE lower is better. 95% t interval and paired t-test "
            "over seeds matched within each condition; p_holm adjusts the p-value (Holm) over the conditions, "
            "one family per comparison and metric.</p>",
        ]

    parts.append("<h2>Plots</h2>")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        figures = (
            dependence_figure(df, per_run),
            support_figure(df, per_run),
            curves_figure(df, load_curves(names, storage)),
        )
        for fig in figures:
            if fig is not None:
                parts.append(_img(fig))
        try:
            row = pick_trial(df, None)
            if store.is_local and Path(SweepFiles(store, row["sweep"]).weights_path(row["trial_id"])).exists():
                parts += [
                    f"<h3>Extrapolation of {html.escape(row['trial_id'])}</h3>",
                    _img(extrapolation_figure(row, storage)),
                ]
        except AdxError:
            pass

    parts.append("<h2>Sweep specs</h2>")
    for name in names:
        files = SweepFiles(store, name)
        if files.exists():
            parts.append(f"<h3>{html.escape(name)}</h3><pre>{html.escape(store.read_text(files.spec_path))}</pre>")

    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Additive decoders: {html.escape(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>"
    )
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page)
    tmp.replace(path)
    return path
