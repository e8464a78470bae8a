"""Results on an object store through pyarrow's filesystems: a real S3 protocol server
(moto) on 127.0.0.1, a real sweep, then the analysis reading from the same URI."""

from __future__ import annotations

import pytest

from sweeps.engine import run_sweep
from sweeps.spec import parse_sweep_spec
from tests.conftest import adx_resume, s3_server, tiny_sweep_raw


@pytest.fixture
def s3_uri():
    with s3_server("adx-test") as uri:
        yield uri


def test_sweep_to_object_store_and_back(ray_local, s3_uri):
    from analysis.load import load_trials
    from sweeps.engine import list_sweeps, sweep_status

    spec = parse_sweep_spec(tiny_sweep_raw("remote"), "remote.yaml")
    summary = run_sweep(spec, s3_uri, out=None)
    assert summary.complete and summary.counts == {"ok": 2}
    df = load_trials("remote", s3_uri)
    assert sorted(df["trial_id"]) == ["c000-s0", "c001-s0"]
    assert sweep_status(s3_uri, "remote")["complete"]
    assert [s["name"] for s in list_sweeps(s3_uri)] == ["remote"]
    again = run_sweep(spec, s3_uri, resume=True, out=None)  # nothing left to run
    assert again.counts == {"ok": 2}


@pytest.mark.slow
def test_one_driver_per_s3_sweep_and_resume_after_sigkill(s3_uri, tmp_path):
    """Two drivers on the same s3:// sweep: the second is refused while the first runs; after
    the first is SIGKILLed, resume takes the lock over and finishes every trial."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml

    from sweeps.results import Storage, SweepFiles

    adx = [sys.executable, "-m", "sweeps.cli"]
    raw = tiny_sweep_raw("obj", seeds=3)  # 6 trials of about 8 s each
    raw["fixed"].update(steps=40, eval_every=20, fault="slow")
    spec = tmp_path / "obj.yaml"
    spec.write_text(yaml.safe_dump(raw))
    files = SweepFiles(Storage(s3_uri), "obj")
    first = subprocess.Popen(
        [*adx, "sweep", "run", str(spec), "--storage", s3_uri, "--no-table", "--num-cpus", "1"],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    end = time.time() + 240
    while not files.exists() or not files.done_ids():
        assert first.poll() is None, first.stderr.read() if first.stderr else ""
        assert time.time() < end, "timed out waiting for the first row"
        time.sleep(0.5)
    second = adx_resume("obj", s3_uri, timeout=120)
    assert second.returncode == 1
    assert (
        second.stderr.strip()
        .splitlines()[-1]
        .startswith(f"Error: sweep 'obj' is already being run by process {first.pid} on host")
    )
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    before = files.done_ids()
    assert 1 <= len(before) < 6
    done = adx_resume("obj", s3_uri, timeout=400)
    assert done.returncode == 0, done.stderr
    from analysis.load import load_trials

    df = load_trials("obj", s3_uri)
    assert len(df) == 6 and df["trial_id"].is_unique and set(df["status"]) == {"ok"}
