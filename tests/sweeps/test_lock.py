"""One driver per sweep: the lock on a filesystem and on S3 (a real S3 protocol server, moto,
on 127.0.0.1): refusal while held, the lease renewed, a dead or expired holder taken over,
two successors racing, and storage without a lock warned about."""

from __future__ import annotations

import json
import os
import socket
import time
from types import SimpleNamespace

import pytest

from additive.errors import AdxError
from sweeps.lock import Holder, LockWarning, SweepLock, _backend, current_holder
from sweeps.results import Storage, SweepFiles
from tests.conftest import s3_server


@pytest.fixture(scope="module")
def s3_root():
    pytest.importorskip("boto3")
    with s3_server("adx-lock") as uri:
        yield uri


@pytest.fixture(params=["file", "s3"])
def files(request, tmp_path):
    root = str(tmp_path / "results") if request.param == "file" else request.getfixturevalue("s3_root")
    return SweepFiles(Storage(root), f"lock-{request.param}-{time.monotonic_ns()}")


def _plant(files: SweepFiles, holder: Holder) -> None:
    backend = _backend(files)
    assert backend is not None and backend.create(holder) is not None


def test_a_second_driver_is_refused_while_the_first_holds_the_lock(files):
    with SweepLock(files, lease_s=30):
        holder = current_holder(files)
        assert holder is not None and holder.pid == os.getpid()
        with pytest.raises(AdxError, match=r"is already being run by process \d+ on host"):
            SweepLock(files, lease_s=30).__enter__()
    assert current_holder(files) is None  # released on exit
    with SweepLock(files, lease_s=30):  # and can be taken again
        pass


def test_the_lease_is_renewed_while_the_driver_runs(files):
    with SweepLock(files, lease_s=0.6):
        time.sleep(1.5)  # 2.5 leases: without renewal it would have expired
        holder = current_holder(files)
        assert holder is not None and holder.expires > time.time()


def test_a_lock_held_on_another_host_is_respected_until_its_lease_expires(files):
    _plant(files, Holder("another-host", 1, "theirs", time.time() + 30))
    with pytest.raises(AdxError, match="on host another-host"):
        SweepLock(files, lease_s=30).__enter__()
    backend = _backend(files)
    assert backend is not None
    found = backend.read()
    assert found is not None and found[0].owner == "theirs"  # untouched by the refused driver


def test_an_expired_lease_is_taken_over(files):
    _plant(files, Holder("another-host", 1, "theirs", time.time() - 1))
    with SweepLock(files, lease_s=30) as lock:
        holder = current_holder(files)
        assert holder is not None and holder.owner == lock.owner


def test_a_dead_driver_on_this_host_is_taken_over_at_once(files):
    _plant(files, Holder(socket.gethostname(), _dead_pid(), "dead", time.time() + 3600))
    with SweepLock(files, lease_s=30) as lock:
        holder = current_holder(files)
        assert holder is not None and holder.owner == lock.owner


def test_of_two_successors_only_one_takes_a_stale_lock_over(files):
    _plant(files, Holder("another-host", 1, "theirs", time.time() - 1))
    backend = _backend(files)
    assert backend is not None
    found = backend.read()
    assert found is not None
    stale_tag = found[1]
    first = Holder(socket.gethostname(), os.getpid(), "first", time.time() + 30)
    second = Holder(socket.gethostname(), os.getpid(), "second", time.time() + 30)
    assert backend.replace(stale_tag, first) is not None
    assert backend.replace(stale_tag, second) is None  # judged the same stale lock, too late
    now = backend.read()
    assert now is not None and now[0].owner == "first"


def test_a_driver_whose_lock_was_taken_over_does_not_delete_the_successors(files):
    lock = SweepLock(files, lease_s=30)
    lock.__enter__()
    lock._stop.set()  # stall the renewal
    backend = _backend(files)
    assert backend is not None
    found = backend.read()
    assert found is not None
    successor = Holder("another-host", 2, "successor", time.time() + 30)
    assert backend.replace(found[1], successor) is not None
    lock.__exit__(None, None, None)
    now = backend.read()
    assert now is not None and now[0].owner == "successor"


def test_a_lock_file_of_an_older_version_is_read(tmp_path):
    files = SweepFiles(Storage(str(tmp_path)), "old")
    os.makedirs(files.dir)
    with open(files.dir + "/.lock", "w") as f:
        json.dump({"host": socket.gethostname(), "pid": os.getpid()}, f)
    with pytest.raises(AdxError, match=f"by process {os.getpid()}"):
        SweepLock(files, lease_s=30).__enter__()


def test_storage_without_a_lock_is_warned_about():
    files = SimpleNamespace(storage=SimpleNamespace(is_local=False, uri="gs://bucket/results"), name="x", dir="b/x")
    with pytest.warns(LockWarning, match="has no one-driver lock"):
        with SweepLock(files, lease_s=30):  # type: ignore[arg-type]
            pass


def test_the_lease_setting_is_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("ADX_LOCK_LEASE_S", "soon")
    with pytest.raises(AdxError, match=r"`ADX_LOCK_LEASE_S`: must be a positive number of seconds, but got 'soon'"):
        SweepLock(SweepFiles(Storage(str(tmp_path)), "x"))


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_successor_waits_out_the_lease_of_a_driver_that_died_on_another_host(files):
    _plant(files, Holder("lost-head", 1, "dead", time.time() + 1.5))  # never renewed again
    lines: list[str] = []
    start = time.monotonic()
    with SweepLock(files, lease_s=5, wait=True, notify=lines.append) as lock:
        holder = current_holder(files)
        assert holder is not None and holder.owner == lock.owner
    assert 1.0 < time.monotonic() - start < 5
    assert len(lines) == 1 and "waiting 1 s for its lease to run out" in lines[0] and "ADX_LOCK_LEASE_S" in lines[0]


def test_a_successor_that_sees_the_lease_renewed_is_refused(files):
    import threading

    _plant(files, Holder("other-head", 1, "alive", time.time() + 1.5))
    backend = _backend(files)
    assert backend is not None
    waiting = threading.Event()  # set when the successor starts to wait out the lease

    def renew():  # the holder is alive: it renews its lease while the successor waits
        assert waiting.wait(30)
        found = backend.read()
        assert found is not None
        backend.replace(found[1], Holder("other-head", 1, "alive", time.time() + 30))

    thread = threading.Thread(target=renew)
    thread.start()
    try:
        with pytest.raises(AdxError, match="it renewed its lease while this driver waited, so it is alive"):
            SweepLock(files, lease_s=5, wait=True, notify=lambda line: waiting.set()).__enter__()
    finally:
        waiting.set()
        thread.join()
    found = backend.read()
    assert found is not None and found[0].owner == "alive"


def test_the_refusal_names_the_wait_and_the_setting(files):
    _plant(files, Holder("another-host", 1, "theirs", time.time() + 42))
    with pytest.raises(AdxError, match=r"once its lease runs out, in 4[12] s \(ADX_LOCK_LEASE_S, 30 s here\)"):
        SweepLock(files, lease_s=30).__enter__()


def test_the_lock_host_can_be_named(files, monkeypatch):
    monkeypatch.setenv("ADX_LOCK_HOST", "head-b")
    with SweepLock(files, lease_s=30):
        holder = current_holder(files)
        assert holder is not None and holder.host == "head-b"
