"""The science targets of the `mini` preset, through the real sweep engine, on the preset's
own seeds (docs/RESULTS.md, "mini"): ScalarLatents with the L support at 32 px on CPU.
Every assertion is on means (or shares) over those seeds. Slow: about 16 minutes on 2
cores."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.load import load_trials
from analysis.tables import IDENTIFIED_LMS
from sweeps.engine import run_sweep
from sweeps.spec import load_sweep_spec

pytestmark = pytest.mark.slow
SPECS = Path(__file__).resolve().parents[1] / "sweeps" / "specs"


def test_mini_preset_meets_its_targets(ray_local, tmp_path):
    spec = load_sweep_spec(str(SPECS / "mini.yaml"), ["save_weights=false"])
    summary = run_sweep(spec, str(tmp_path), out=None)
    assert summary.counts == {"ok": 2 * len(spec.seeds)}
    df = load_trials("mini", str(tmp_path))
    add, mono = df[df["decoder"] == "additive"], df[df["decoder"] == "monolithic"]
    assert sorted(add["seed"]) == sorted(mono["seed"]) == sorted(spec.seeds)

    assert (add["lms_id"] >= IDENTIFIED_LMS).mean() >= 0.8  # identifies on >= 80% of seeds
    assert add["rmse_id"].mean() <= 0.035
    assert add["lms_id"].mean() >= mono["lms_id"].mean() + 10
    assert add["rmse_ood"].mean() < mono["rmse_ood"].mean()
