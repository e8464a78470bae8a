"""Analysis of Parquet results only: loading and queries, tables, plots, the report.

Names are loaded on first use, so a command that needs none of them (``adx sweep status``)
does not pay for pandas and SciPy."""

from __future__ import annotations

from additive.lazy import lazy_names

_HOMES = {
    "load": ("load_curves", "load_trials", "query", "sql"),
    "tables": ("paired_comparison", "results_table", "select_models", "summary_table"),
}
__getattr__, __dir__, __all__ = lazy_names("analysis", _HOMES, globals())
