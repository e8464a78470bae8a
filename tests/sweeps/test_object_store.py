"""Results on an object store through pyarrow's filesystems: a real S3 protocol server
(moto) on 127.0.0.1, a real sweep, then the analysis reading from the same URI."""

from __future__ import annotations

import pytest

from sweeps.engine import run_sweep
from sweeps.spec import parse_sweep_spec
from tests.conftest import tiny_sweep_raw


@pytest.fixture
def s3_uri(monkeypatch):
    server_mod = pytest.importorskip("moto.server")
    import pyarrow.fs as pafs

    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    uri = f"s3://adx-test/results?endpoint_override={host}:{port}&scheme=http&region=us-east-1"
    fs, _ = pafs.FileSystem.from_uri(uri + "&allow_bucket_creation=true")
    fs.create_dir("adx-test")
    yield uri
    server.stop()


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
