"""Synthetic results with known values, written as the sweep engine writes them."""

from __future__ import annotations

import datetime as dt
from dataclasses import fields

import pytest

from additive.spec import TrialSpec
from sweeps.results import Storage, SweepFiles
from sweeps.rows import CurveRow, TrialMetrics, TrialRow


def make_row(sweep: str, trial_id: str, decoder: str, seed: int, status: str = "ok", **values) -> TrialRow:
    """A ``TrialRow`` as the engine builds it: ``values`` may set trial fields, metrics and
    any other row field."""
    spec_fields = {f.name for f in fields(TrialSpec)}
    metric_fields = {f.name for f in fields(TrialMetrics)}
    spec = TrialSpec(decoder=decoder, seed=seed, **{k: v for k, v in values.items() if k in spec_fields})
    metrics = TrialMetrics(**{k: v for k, v in values.items() if k in metric_fields})
    rest = {k: v for k, v in values.items() if k not in spec_fields | metric_fields}
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    identity = {"cell": f"decoder={decoder}", "cell_index": 0 if decoder == "additive" else 1}
    return TrialRow(
        sweep=sweep,
        trial_id=trial_id,
        status=status,
        spec=spec,
        metrics=metrics,
        **(identity | {"started_at": now, "finished_at": now} | rest),
    )


def write_rows(root, sweep: str, rows: list[TrialRow]) -> SweepFiles:
    files = SweepFiles(Storage(str(root)), sweep)
    files.storage.write_bytes(
        files.spec_path, f"name: {sweep}\nseeds: 3\ngrid: {{decoder: [additive, monolithic]}}\n".encode()
    )
    for row in rows:
        curves = [CurveRow(sweep, row.trial_id, s, 0.1 / s, 0.1 / s, 0.1 / s, 1e-3) for s in (10, 20)]
        files.write_trial(row, curves)
    return files


@pytest.fixture
def known(tmp_path):
    """Two decoders x 3 seeds at two dependence levels, plus one failed trial."""
    rows = []
    lms = {"additive": [98.0, 99.0, 100.0], "monolithic": [60.0, 70.0, 80.0]}
    rmse_ood = {"additive": [0.01, 0.02, 0.03], "monolithic": [0.10, 0.12, 0.14]}
    for level in (0.0, 0.5):
        for decoder in ("additive", "monolithic"):
            for seed in range(3):
                rows.append(
                    make_row(
                        "known",
                        f"{decoder[0]}-{level}-s{seed}",
                        decoder,
                        seed,
                        dependence=level,
                        lms_id=lms[decoder][seed] - 10 * level,
                        rmse_ood=rmse_ood[decoder][seed],
                        rmse_id=0.01,
                        lms_ood=50.0,
                        rmse_recombine=0.05,
                        val_loss=0.001 * (seed + 1),
                        mcc_id=90.0,
                    )
                )
    rows.append(make_row("known", "m-fail", "monolithic", 3, status="failed", error="boom", dependence=0.0))
    write_rows(tmp_path, "known", rows)
    return tmp_path
