"""The paper's direction from plain Python (no Ray): ScalarLatents with the L support at
32 px on CPU. Slow (about 4 minutes on 2 cores)."""

from __future__ import annotations

import dataclasses

import pytest

from additive import TrialSpec, run_trial

pytestmark = pytest.mark.slow

MINI = TrialSpec(
    dataset="scalar", support="l_shape", image_size=32, n_train=10000, n_test=2000, n_oos=2000, width=256, depth=3,
    channels=32, batch_size=64, lr=1e-3, lr_decay="cosine", steps=3000, eval_every=500, threads=2, seed=1,
)


def test_additive_identifies_and_extrapolates_where_monolithic_does_not():
    add = run_trial(MINI).metrics
    mono = run_trial(dataclasses.replace(MINI, decoder="monolithic")).metrics
    print("additive", add, "\nmonolithic", mono)
    assert add["lms_id"] > 98
    assert add["lms_id"] > mono["lms_id"] + 10
    assert add["rmse_ood"] < 0.75 * mono["rmse_ood"]
    assert add["rmse_recombine"] < 0.75 * mono["rmse_recombine"]
