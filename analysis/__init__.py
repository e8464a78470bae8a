"""Analysis of Parquet results only: loading and queries, tables, plots, the report."""

from analysis.load import load_curves, load_trials, query, sql
from analysis.tables import paired_comparison, results_table, select_models, summary_table

__all__ = [
    "load_curves",
    "load_trials",
    "paired_comparison",
    "query",
    "results_table",
    "select_models",
    "sql",
    "summary_table",
]
