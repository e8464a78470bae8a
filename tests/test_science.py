"""The science targets of the `mini` and `mini-block` presets, through the real sweep
engine, on each preset's own seeds and with its restarts (docs/RESULTS.md, "mini" and
"mini-block"). Each (cell, seed) is the member its restart group selected by validation
loss, as the tables show it; every assertion is on means (or shares) over the seeds.

`mini` (ScalarLatents with the L support at 32 px) is slow (docs/RESULTS.md gives its wall
time on 2 cores), run by `make test-slow` and CI. `mini-block` (BlockLatents at 16 px, three
supports, 5 seeds) takes longer than CI's budget: it is marked `preset` and runs with
`make test-presets`."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.columns import IDENTIFIED_LMS
from analysis.load import load_trials
from analysis.tables import select_models
from sweeps.engine import run_sweep
from sweeps.spec import load_sweep_spec

pytestmark = pytest.mark.slow
SPECS = Path(__file__).resolve().parents[1] / "sweeps" / "specs"


def _run_preset(name: str, n_cells: int, tmp_path):
    """Run a preset through the engine (no weights saved); every group must keep a member
    that ran the full budget. Returns the selected members."""
    spec = load_sweep_spec(str(SPECS / f"{name}.yaml"), ["save_weights=false"])
    summary = run_sweep(spec, str(tmp_path), out=None)
    groups = n_cells * len(spec.seeds)
    assert summary.counts.get("ok") == groups and sum(summary.counts.values()) == groups * spec.restarts.k
    selected = select_models(load_trials(name, str(tmp_path)))
    assert len(selected) == groups and set(selected["status"]) == {"ok"}
    return spec, selected


def test_mini_preset_meets_its_targets(ray_local, tmp_path):
    spec, df = _run_preset("mini", 2, tmp_path)
    add, mono = df[df["decoder"] == "additive"], df[df["decoder"] == "monolithic"]
    assert sorted(add["seed"]) == sorted(mono["seed"]) == sorted(spec.seeds)

    assert spec.restarts.k > 1  # the preset's estimator: restarts selected by validation loss
    assert (add["lms_id"] >= IDENTIFIED_LMS).mean() >= 0.95  # identifies on (nearly) every seed
    assert add["rmse_id"].mean() <= 0.035
    assert add["lms_id"].mean() >= mono["lms_id"].mean() + 10
    assert add["rmse_ood"].mean() < mono["rmse_ood"].mean()


@pytest.mark.preset
def test_mini_block_preset_meets_its_targets(ray_local, tmp_path):
    _, df = _run_preset("mini-block", 6, tmp_path)  # 3 supports x 2 decoders
    mean = df.groupby(["support", "decoder"])[["lms_id", "rmse_ood"]].mean()

    for support in ("no_overlap", "scm"):  # independent and SCM-dependent BlockLatents
        assert mean.loc[(support, "additive"), "lms_id"] >= 97  # LMS_tree
        assert mean.loc[(support, "monolithic"), "lms_id"] <= 80
    assert mean.loc[("l_shape", "additive"), "lms_id"] >= 95
    l_add, l_mono = mean.loc[("l_shape", "additive"), "rmse_ood"], mean.loc[("l_shape", "monolithic"), "rmse_ood"]
    assert l_add <= 0.7 * l_mono  # extrapolation to the L's missing corner
