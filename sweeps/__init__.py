"""The sweep engine: YAML sweep specs -> Ray Tune trials -> one Parquet row per trial.

Ray is imported only when a sweep runs, so reading specs and results stays light.
"""

from sweeps.results import METRICS, SCHEMA_VERSION, STATUSES, Storage, SweepFiles
from sweeps.spec import SweepSpec, SweepSpecError, load_sweep_spec, parse_sweep_spec

__all__ = [
    "METRICS",
    "SCHEMA_VERSION",
    "STATUSES",
    "Storage",
    "SweepFiles",
    "SweepSpec",
    "SweepSpecError",
    "load_sweep_spec",
    "parse_sweep_spec",
    "run_sweep",
    "sweep_status",
    "list_sweeps",
]


def __getattr__(name: str):
    if name in ("run_sweep", "sweep_status", "list_sweeps"):
        from sweeps import engine

        return getattr(engine, name)
    raise AttributeError(name)
