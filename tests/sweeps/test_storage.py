"""Storage faults with real files: unwritable, full, partial files; time budgets."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest

from additive import AdxError
from sweeps.engine import run_sweep
from sweeps.results import Storage, SweepFiles
from sweeps.spec import parse_sweep_spec
from tests.conftest import tiny_sweep_raw


def _spec(name: str, **top):
    return parse_sweep_spec(tiny_sweep_raw(name, **top), f"{name}.yaml")


def test_unwritable_storage_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(AdxError, match="is not writable"):
        run_sweep(_spec("x"), str(blocker / "results"), out=None)
    assert blocker.read_text() == "not a folder"


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs, nearly full (needs root; skipped elsewhere)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_is_a_clear_error_and_leaves_no_partial_file(ray_local, tiny_disk):
    import os

    stat = os.statvfs(tiny_disk)
    free = stat.f_bavail * stat.f_frsize
    with open(tiny_disk / "filler", "wb") as f:  # leave room for the spec and about one row
        f.write(bytes(max(free - 40 * 1024, 0)))
    with pytest.raises(AdxError, match="cannot write .*No space left on device"):
        run_sweep(_spec("full", seeds=3), str(tiny_disk), out=None)
    assert not list(tiny_disk.rglob(".*.tmp-*"))
    for path in (tiny_disk / "full" / "trials").glob("*.parquet"):
        assert len(pd.read_parquet(path)) == 1  # what was written is whole


def test_write_failure_removes_the_temporary_file(tiny_disk):
    files = SweepFiles(Storage(str(tiny_disk)), "s")
    with pytest.raises(AdxError, match="No space left"):
        files.storage.write_bytes(f"{files.trials_dir}/big.parquet", b"x" * (512 * 1024))
    assert not list(tiny_disk.rglob("*big*"))


def test_trial_over_its_time_budget_is_a_failed_row(ray_local, tmp_path):
    raw = tiny_sweep_raw("budget", grid={"fault": ["slow"]})
    raw["fixed"]["max_seconds"] = 0.5
    run_sweep(parse_sweep_spec(raw, "budget.yaml"), str(tmp_path), out=None)
    row = pd.read_parquet(tmp_path / "budget" / "trials").iloc[0]
    assert row["status"] == "failed"
    assert "time budget of 0.5 s" in row["error"]


def test_trial_over_its_memory_budget_is_a_failed_row(ray_local, tmp_path):
    raw = tiny_sweep_raw("memory")
    raw["fixed"]["max_memory_mb"] = 10
    run_sweep(parse_sweep_spec(raw, "memory.yaml"), str(tmp_path), out=None)
    df = pd.read_parquet(tmp_path / "memory" / "trials")
    assert set(df["status"]) == {"failed"}
    assert df["error"].str.contains("memory budget of 10 MB").all()
