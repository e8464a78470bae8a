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
        image_size=16,
        n_train=256,
        n_val=64,
        n_test=128,
        n_oos=64,
        width=32,
        depth=1,
        batch_size=32,
        steps=20,
        eval_every=10,
        threads=1,
    )


@pytest.fixture(scope="session")
def ray_local():
    """One small local Ray for the whole test session (no dashboard, loopback only)."""
    import ray

    if not ray.is_initialized():
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            logging_level="ERROR",
            log_to_driver=False,
        )
    yield ray
    ray.shutdown()


TINY_FIXED = {
    "image_size": 16,
    "n_train": 256,
    "n_val": 64,
    "n_test": 128,
    "n_oos": 64,
    "width": 32,
    "depth": 1,
    "batch_size": 32,
    "steps": 20,
    "eval_every": 10,
}


def tiny_sweep_raw(name: str, **top) -> dict:
    """A sweep spec mapping whose trials take about a second each."""
    raw = {
        "name": name,
        "fixed": dict(TINY_FIXED),
        "grid": {"decoder": ["additive", "monolithic"]},
        "seeds": 1,
        "retries": 0,
    }
    raw.update(top)
    return raw
