"""Losing the head node, end to end (slow): a head and a worker (`ray start`, token auth),
an S3 server (moto) for the results, a sweep submitted with `ray job submit`; while trials
run, the head's whole process tree is killed (the driver with it, holding the sweep's lock),
and the worker with it. Then a new cluster on other loopback addresses (another host to the
lock, `ADX_LOCK_HOST`), and `adx sweep resume` submitted as a job: it waits out the dead
driver's lease (short here) and finishes the sweep. Every process listens on and talks to
127.0.0.0/8 addresses only and is stopped by PID (never `ray stop`)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import s3_server, tiny_sweep_raw
from tests.sweeps.test_cluster_run import (
    BIN,
    _busy_on,
    _free_port,
    _job_id,
    _kill_tree,
    _ray_job,
    _submit,
    _wait_job,
    _wait_nodes,
    stopped_by_pid,
)

pytestmark = pytest.mark.slow
LEASE_S = 45


class _Cluster:
    """A head and a worker on two loopback addresses, stopped by PID."""

    def __init__(self, env: dict, logs: Path, head_ip: str, node_ip: str, host: str, procs: list):
        self.env = dict(env, ADX_LOCK_HOST=host)  # the lock's host of every driver started here
        self.logs, self.head_ip, self.node_ip = logs, head_ip, node_ip
        self.procs: list[subprocess.Popen] = []
        self.everyone = procs  # stopped at the end of the test, whatever happens
        self.port, self.dash_port = _free_port(head_ip), _free_port(head_ip)

    def _start(self, name: str, ip: str, *args: str) -> subprocess.Popen:
        ports = [f"--dashboard-agent-listen-port={_free_port(ip)}", f"--metrics-export-port={_free_port(ip)}"]
        with open(self.logs / f"{name}.log", "w") as log:
            proc = subprocess.Popen(
                [str(BIN / "ray"), "start", "--block", "--disable-usage-stats", *ports, *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        self.everyone.append(proc)
        return proc

    def start(self, name: str) -> None:
        self.head = self._start(
            f"{name}-head",
            self.head_ip,
            "--head",
            f"--node-ip-address={self.head_ip}",
            f"--port={self.port}",
            f"--dashboard-host={self.head_ip}",
            f"--dashboard-port={self.dash_port}",
            "--num-cpus=1",
            "--include-dashboard=true",
            f"--ray-client-server-port={_free_port(self.head_ip)}",
        )
        _wait_nodes(self.env, self.address, 1, self.logs)
        self.worker = self._start(
            f"{name}-node",
            self.node_ip,
            f"--address={self.address}",
            f"--node-ip-address={self.node_ip}",
            "--num-cpus=1",
        )
        _wait_nodes(self.env, self.address, 2, self.logs)

    @property
    def address(self) -> str:
        return f"{self.head_ip}:{self.port}"

    @property
    def dashboard(self) -> str:
        return f"http://{self.head_ip}:{self.dash_port}"

    def stop(self) -> None:
        for proc in reversed(self.procs):
            _kill_tree(proc)


def test_a_sweep_survives_losing_its_head_node(tmp_path):
    pytest.importorskip("aiohttp")  # ray[default]: the dashboard and its Job API
    token = tmp_path / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token), RAY_USAGE_STATS_ENABLED="0")
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    env["ADX_LOCK_LEASE_S"] = str(LEASE_S)
    logs = tmp_path / "logs"
    logs.mkdir()

    raw = tiny_sweep_raw("headloss", seeds=3, retries=2)  # 6 trials on 2 slots
    raw["fixed"].update(steps=60, eval_every=20, fault="slow")  # about 12 s each
    spec = tmp_path / "headloss.yaml"
    spec.write_text(yaml.safe_dump(raw))
    with s3_server("adx-headloss") as s3, stopped_by_pid([]) as procs:
        first = _Cluster(env, logs, "127.0.0.6", "127.0.0.7", "head-a", procs)
        second = _Cluster(env, logs, "127.0.0.8", "127.0.0.9", "head-b", procs)
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):  # set by the server
            first.env[key] = second.env[key] = os.environ[key]
        from analysis.load import load_trials
        from sweeps.results import Storage, SweepFiles

        files = SweepFiles(Storage(s3), "headloss")
        first.start("a")
        entry = [sys.executable, "-m", "sweeps.cli", "sweep", "run", str(spec), "--address", "auto"]
        run_job = _job_id(_submit(first.env, first.dashboard, [*entry, "--storage", s3, "--no-table"]).stdout)
        deadline = time.time() + 240
        while not files.done_ids() or not _busy_on(first.env, first.address, first.node_ip):
            if time.time() > deadline:
                job_log = _ray_job(first.env, "logs", first.dashboard, run_job).stdout
                raise AssertionError(f"no row and a running trial on the worker in time: {job_log[-3000:]}")
            time.sleep(0.5)
        first.stop()  # the head's whole tree (driver included), then the worker
        killed_at = time.time()
        written = {r["trial_id"]: r for r in files.read_trials()}
        assert 1 <= len(written) < 6

        started = time.time()
        second.start("b")
        resume = [sys.executable, "-m", "sweeps.cli", "sweep", "resume", "headloss", "--address", "auto"]
        submitted = _submit(second.env, second.dashboard, [*resume, "--storage", s3, "--no-table"])
        job_id = _job_id(submitted.stdout + submitted.stderr)
        while not (
            _busy_on(second.env, second.address, second.head_ip) or _busy_on(second.env, second.address, second.node_ip)
        ):
            assert time.time() < started + 240, "no trial ever ran on the new cluster"
            time.sleep(0.5)
        first_trial_s = time.time() - started
        status = _wait_job(second.env, second.dashboard, job_id, timeout=400)
        log = _ray_job(second.env, "logs", second.dashboard, job_id).stdout
        assert status == "SUCCEEDED", log[-3000:]
        second.stop()

        df = load_trials("headloss", s3)
        assert len(df) == 6 and df["trial_id"].is_unique and set(df["status"]) == {"ok"}
        for tid, row in written.items():  # what the dead driver wrote is there, unchanged
            now = df[df["trial_id"] == tid].iloc[0]
            assert now["finished_at"] == row["finished_at"] and now["val_loss"] == row["val_loss"]
        rerun = df[~df["trial_id"].isin(written)]
        assert all(t.timestamp() > killed_at for t in rerun["started_at"])  # the interrupted trials ran again
        assert "waiting" in log and "for its lease to run out" in log and "ADX_LOCK_LEASE_S" in log
        print(f"\nnew head started -> first trial running: {first_trial_s:.1f} s (lease {LEASE_S} s)")
