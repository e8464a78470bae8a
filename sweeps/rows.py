"""Typed records between a finished trial and Parquet: ``TrialRow`` and ``CurveRow``.

A row is built once, from the trial's ``TrialSpec``, its metrics (``TrialMetrics``, from
``TrialResult.metrics`` or a Ray Tune report) and the facts of its run; the Parquet schemas
(``TRIAL_SCHEMA``, ``CURVE_SCHEMA``), the metric columns (``METRICS``) and the curve keys
(``CURVE_KEYS``) are all derived from these dataclasses, so a column is declared in one place.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, fields
from typing import Any

import pyarrow as pa

from additive.spec import TrialSpec

SCHEMA_VERSION = 4
VERSION_PACKAGES = ("torch", "ray", "optuna", "numpy", "sklearn", "pyarrow")
VERSIONS_TYPE = pa.struct([(name, pa.string()) for name in VERSION_PACKAGES])
_TS = pa.timestamp("ms", tz="UTC")


@dataclass(frozen=True)
class TrialMetrics:
    """What a trial measured (docs/SCHEMA.md); None where it was not measured."""

    val_loss: float | None = None
    train_loss: float | None = None
    rmse_id: float | None = None
    rmse_ood: float | None = None
    rmse_recombine: float | None = None
    lms_id: float | None = None
    lms_ood: float | None = None
    mcc_id: float | None = None
    oos_count: int | None = None
    recombine_count: int | None = None
    realised_dependence: float | None = None
    oos_distance: float | None = None

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> TrialMetrics:
        """Coerce a metrics mapping (``TrialResult.metrics``, a Tune report): unknown keys
        are ignored, non-numbers and non-finite counts become None."""
        out: dict[str, Any] = {}
        for f in fields(cls):
            value = values.get(f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if _annotation(f) == "int":
                out[f.name] = int(value) if math.isfinite(value) else None
            else:
                out[f.name] = float(value)
        return cls(**out)


@dataclass(frozen=True)
class TrialRow:
    """One trial's row: identity, its resolved trial fields, metrics and run facts.

    With restarts, a row is one member of a restart group (``restart_group``: the group's
    id, ``restart``: the member's index among ``restarts``); ``selected`` marks the member
    the group keeps (the lowest validation loss, raced through ``rungs`` if set), and
    ``stopped_at_rung`` the rung at which a member that was not kept stopped. A trial
    without restarts is a group of one, selected when it finished ok."""

    sweep: str
    trial_id: str
    cell: str
    cell_index: int
    status: str
    spec: TrialSpec
    metrics: TrialMetrics = field(default_factory=TrialMetrics)
    variant: str | None = None
    error: str | None = None
    search_number: int | None = None
    selected_by: str | None = None
    oracle_selection: bool = False
    restart_group: str | None = None
    restarts: int | None = None
    select_at: int | None = None
    rungs: str | None = None
    selected: bool | None = None
    stopped_at_rung: int | None = None
    steps_done: int | None = None
    best_step: int | None = None
    train_seconds: float | None = None
    data_seconds: float | None = None
    eval_seconds: float | None = None
    device: str | None = None
    precision: str | None = None
    hardware: str | None = None
    node: str | None = None
    git_commit: str | None = None
    versions: dict[str, str] | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    schema_version: int = SCHEMA_VERSION

    def to_record(self) -> dict[str, Any]:
        """The flat mapping of one Parquet row, in ``TRIAL_SCHEMA``'s column order."""
        record = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("spec", "metrics")}
        record.update(self.spec.to_dict())
        record.update({f.name: getattr(self.metrics, f.name) for f in fields(TrialMetrics)})
        return {name: record[name] for name in TRIAL_SCHEMA.names}


@dataclass(frozen=True)
class CurveRow:
    """One evaluation of a trial: its learning curve is one of these per evaluation."""

    sweep: str
    trial_id: str
    step: int
    train_loss: float | None = None
    val_loss: float | None = None
    best_val_loss: float | None = None
    lr: float | None = None

    def to_record(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _annotation(f: Any) -> str:
    return str(f.type).replace(" ", "").split("|")[0]


def _arrow(f: Any) -> pa.DataType:
    kind = _annotation(f)
    if f.name == "versions":
        return VERSIONS_TYPE
    if kind == "dt.datetime":
        return _TS
    if f.name in ("schema_version", "cell_index", "search_number", "restarts", "stopped_at_rung"):
        return pa.int32()
    return {"int": pa.int64(), "float": pa.float64(), "str": pa.string(), "bool": pa.bool_()}[kind]


_IDENTITY = ("schema_version", "sweep", "trial_id", "cell", "cell_index", "variant", "status", "error",
             "search_number", "selected_by", "oracle_selection", "restart_group", "restarts", "select_at",
             "rungs", "selected", "stopped_at_rung")  # fmt: skip
_ROW_FIELDS = {f.name: f for f in fields(TrialRow)}
METRICS = tuple(f.name for f in fields(TrialMetrics))
COUNT_METRICS = tuple(f.name for f in fields(TrialMetrics) if _annotation(f) == "int")
CURVE_KEYS = tuple(f.name for f in fields(CurveRow) if f.name not in ("sweep", "trial_id"))
TRIAL_SCHEMA = pa.schema(
    [(name, _arrow(_ROW_FIELDS[name])) for name in _IDENTITY]
    + [(f.name, _arrow(f)) for f in fields(TrialSpec)]
    + [(f.name, _arrow(f)) for f in fields(TrialMetrics)]
    + [(f.name, _arrow(f)) for f in fields(TrialRow) if f.name not in (*_IDENTITY, "spec", "metrics")]
)
CURVE_SCHEMA = pa.schema([(f.name, _arrow(f)) for f in fields(CurveRow)])
