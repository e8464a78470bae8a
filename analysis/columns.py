"""What the analysis reads off the result columns: the condition columns, when a run
identifies, and readable names for plugins (a plugin by its object's name and options)."""

from __future__ import annotations

import json

import pandas as pd

from additive.plugins import is_plugin, plugin_name

# Columns that make two rows different experimental conditions (besides the decoder).
CONDITION = [
    "variant",
    "dataset",
    "support",
    "support_param",
    "encoder",
    "dependence_mechanism",
    "dependence",
    "n_objects",
]
# A seed "identifies" when its LMS ID reaches this (the success rate of docs/RESULTS.md).
IDENTIFIED_LMS = 99.0


def readable(path: str, options: str | None = None) -> str:
    """``additive`` stays ``additive``; ``examples.decoders:shared_body`` with options
    ``{"width": 96}`` reads ``shared_body(width=96)``; a value that is not a string (a
    missing support) stays as it is."""
    if not is_plugin(path):
        return path
    name = plugin_name(path)
    if options:
        name += "(" + ",".join(f"{k}={v}" for k, v in sorted(json.loads(options).items())) + ")"
    return name


def name_plugins(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with ``decoder``, ``encoder`` and ``support`` holding readable names, their
    options folded in (the import paths stay in ``<field>_path``), for tables and plots;
    two plugins whose readable names clash keep their full paths."""
    for field in ("decoder", "encoder", "support"):
        if field not in df or df.empty:
            continue
        column = f"{field}_options"
        options = df[column] if column in df else pd.Series(None, index=df.index, dtype=object)
        pairs = list(zip(df[field], [o if isinstance(o, str) and o else None for o in options], strict=True))
        names = {pair: readable(*pair) for pair in set(pairs)}
        clashes = {n for n in names.values() if sum(v == n for v in names.values()) > 1}
        full = {
            pair: (name if name not in clashes else pair[0] + (f"({pair[1]})" if pair[1] else ""))
            for pair, name in names.items()
        }
        df = df.assign(**{field: [full[p] for p in pairs], f"{field}_path": df[field]})
    return df
