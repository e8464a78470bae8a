"""The typed rows and the schemas derived from them."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import fields

from additive.spec import TrialSpec
from sweeps.results import rows_table
from sweeps.rows import (
    COUNT_METRICS,
    CURVE_KEYS,
    CURVE_SCHEMA,
    METRICS,
    TRIAL_SCHEMA,
    CurveRow,
    TrialMetrics,
    TrialRow,
)
from sweeps.writer import make_row


def test_schemas_are_derived_from_the_dataclasses():
    assert METRICS == tuple(f.name for f in fields(TrialMetrics))
    assert COUNT_METRICS == ("oos_count", "recombine_count")
    assert CURVE_KEYS == ("step", "train_loss", "val_loss", "best_val_loss", "lr")
    assert CURVE_SCHEMA.names == ["sweep", "trial_id", *CURVE_KEYS]
    spec_names = [f.name for f in fields(TrialSpec)]
    names = TRIAL_SCHEMA.names
    assert names[: names.index(spec_names[0])][-6:] == [
        "restart_group",
        "restarts",
        "select_at",
        "rungs",
        "selected",
        "stopped_at_rung",
    ]
    assert names[names.index(spec_names[0]) : names.index(spec_names[0]) + len(spec_names)] == spec_names
    assert set(names) == {f.name for f in fields(TrialRow)} - {"spec", "metrics"} | set(spec_names) | set(METRICS)
    assert str(TRIAL_SCHEMA.field("oos_count").type) == "int64"
    assert str(TRIAL_SCHEMA.field("started_at").type) == "timestamp[ms, tz=UTC]"


def test_metrics_are_coerced_once():
    m = TrialMetrics.from_mapping(
        {"lms_id": 99, "oos_count": 2000.0, "recombine_count": math.nan, "rmse_id": True, "not_a_metric": 1.0}
    )
    assert m.lms_id == 99.0 and isinstance(m.lms_id, float)
    assert m.oos_count == 2000 and isinstance(m.oos_count, int)
    assert m.recombine_count is None and m.rmse_id is None


def test_a_row_round_trips_through_parquet_types():
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    row = TrialRow(
        "s",
        "c000-s0",
        "decoder=additive",
        0,
        "ok",
        TrialSpec(seed=3),
        TrialMetrics(lms_id=99.5),
        versions={"torch": "2"},
        started_at=now,
        finished_at=now,
    )
    record = rows_table([row.to_record()], TRIAL_SCHEMA).to_pylist()[0]
    assert record["seed"] == 3 and record["lms_id"] == 99.5 and record["versions"]["torch"] == "2"
    assert list(record) == TRIAL_SCHEMA.names
    curve = rows_table([CurveRow("s", "c000-s0", 10, 0.1).to_record()], CURVE_SCHEMA).to_pylist()[0]
    assert curve["step"] == 10 and curve["val_loss"] is None


def test_make_row_from_a_final_and_from_a_partial_report():
    config = {
        "trial_id": "c001-s2",
        "cell": "decoder=monolithic",
        "cell_index": 1,
        "variant": None,
        "spec": TrialSpec(decoder="monolithic", seed=2).to_dict(),
        "selected_by": "lms_id",
    }
    final = make_row(
        "s",
        config,
        {"final": 1, "lms_id": 80.0, "oos_count": 2000.0, "steps_done": 100, "started_at": 1.0e9},
        "ok",
        None,
    )
    assert final.metrics.oos_count == 2000 and final.steps_done == 100 and final.oracle_selection is True
    assert final.spec.decoder == "monolithic" and final.started_at.year == 2001
    partial = make_row("s", config, {"step": 40, "val_loss": 0.3, "best_val_loss": 0.2}, "stopped", "early")
    assert partial.metrics.val_loss == 0.2 and partial.steps_done == 40 and partial.status == "stopped"
