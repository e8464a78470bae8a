"""Shared fixtures. One local Ray instance per test session (see tests/sweeps)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_DEDUP_LOGS", "0")

from additive import TrialSpec  # noqa: E402


@pytest.fixture
def tiny_spec() -> TrialSpec:
    """A trial that trains in about a second on one CPU core."""
    return TrialSpec(
        image_size=16, n_train=256, n_val=64, n_test=128, n_oos=64, width=32, depth=1,
        batch_size=32, steps=20, eval_every=10, threads=1,
    )
