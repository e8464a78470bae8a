"""Science regression through the real sweep engine: a reduced ScalarLatents-L sweep
(mini.yaml with 2 seeds) must show the paper's direction with margin. Slow: about 4-5
minutes on 2 cores."""

from __future__ import annotations

import pytest

from analysis.load import load_trials
from sweeps.engine import run_sweep
from sweeps.spec import load_sweep_spec

pytestmark = pytest.mark.slow


def test_mini_sweep_shows_the_papers_direction(ray_local, tmp_path):
    spec = load_sweep_spec("sweeps/specs/mini.yaml", ["seeds=2", "save_weights=false"])
    summary = run_sweep(spec, str(tmp_path), out=None)
    assert summary.counts == {"ok": 4}
    df = load_trials("mini", str(tmp_path))
    means = df.groupby("decoder")[["lms_id", "rmse_ood", "rmse_recombine"]].mean()
    print(means)
    add, mono = means.loc["additive"], means.loc["monolithic"]
    assert add["lms_id"] >= 95
    assert add["lms_id"] >= mono["lms_id"] + 10
    assert add["rmse_ood"] < mono["rmse_ood"]
    assert add["rmse_recombine"] < mono["rmse_recombine"]
