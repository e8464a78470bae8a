"""The paper's direction from plain Python (no Ray): the mini preset's trials
(ScalarLatents, L support, 32 px, CPU), two seeds per decoder, two processes at a time.
Slow: about 5 minutes on 2 cores."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest

from additive import run_trial
from sweeps.spec import load_sweep_spec

pytestmark = pytest.mark.slow


def _metrics(args):
    decoder, seed = args
    import dataclasses

    spec = load_sweep_spec("sweeps/specs/mini.yaml")
    cell = next(c for c in spec.cells() if c.fields["decoder"] == decoder)
    trial = dataclasses.replace(spec.trial_spec(cell, seed), threads=1)
    return decoder, run_trial(trial).metrics


def test_additive_identifies_and_extrapolates_where_monolithic_does_not():
    jobs = [(d, s) for s in (0, 1) for d in ("additive", "monolithic")]
    with mp.get_context("spawn").Pool(2) as pool:
        results = pool.map(_metrics, jobs)
    mean = {d: {k: np.mean([m[k] for dd, m in results if dd == d]) for k in results[0][1]}
            for d in ("additive", "monolithic")}
    print(mean)
    add, mono = mean["additive"], mean["monolithic"]
    assert add["lms_id"] > 95
    assert add["lms_id"] > mono["lms_id"] + 10
    assert add["rmse_ood"] < mono["rmse_ood"]
    assert add["rmse_recombine"] < mono["rmse_recombine"]
