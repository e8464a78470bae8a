"""Analysis of Parquet results only: loading and queries, tables, plots, the report.

Names are loaded on first use, so a command that needs none of them (``adx sweep status``)
does not pay for pandas and SciPy."""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "load": ("load_curves", "load_trials", "query", "sql"),
    "tables": ("paired_comparison", "results_table", "select_models", "summary_table"),
}
_WHERE = {name: module for module, names in _HOMES.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"analysis.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
