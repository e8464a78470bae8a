"""Shared fixtures. One local Ray instance per test session (see tests/sweeps)."""

from __future__ import annotations

import contextlib
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
            address="local",
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


@contextlib.contextmanager
def s3_server(bucket: str):
    """A real S3 protocol server (moto) on 127.0.0.1 with one bucket; yields the results URI
    (``s3://BUCKET/results?endpoint_override=...``). Test credentials are set in the
    environment, so subprocesses reach it too; the old values come back afterwards."""
    server_mod = pytest.importorskip("moto.server")
    import pyarrow.fs as pafs

    creds = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    old = {k: os.environ.get(k) for k in creds}
    os.environ.update(creds)
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        uri = f"s3://{bucket}/results?endpoint_override={host}:{port}&scheme=http&region=us-east-1"
        fs, _ = pafs.FileSystem.from_uri(uri + "&allow_bucket_creation=true")
        fs.create_dir(bucket)
        yield uri
    finally:
        server.stop()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def adx_resume(name: str, storage: str, timeout: float = 400):
    """`adx sweep resume NAME --storage STORAGE --no-table` in a subprocess (output captured)."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "sweeps.cli", "sweep", "resume", name, "--storage", storage, "--no-table"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
