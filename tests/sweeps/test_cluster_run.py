"""A real Ray cluster on one machine, end to end (slow): `ray start --head` and a second node
with `ray start --address` (separate processes, token authentication on), an S3 server
(moto) for the results, a sweep submitted with `ray job submit` through the Job API, the
second node killed mid-sweep (its trial retried on the head), then `adx results table` from
a separate client process. One decoder is a plugin that exists only in the job's folder
(`ray job submit --working-dir`): Ray brings it to both nodes. Every process listens on and talks to 127.0.0.0/8 addresses only,
and is torn down by PID (never `ray stop`, which would stop every Ray on the machine)."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import s3_server, tiny_sweep_raw
from tests.plugin_modules import write_plugin

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
# Ray replaces exactly 127.0.0.1 / localhost by the host's routable address
# (ray._private.services.resolve_ip_for_localhost); other loopback addresses are kept.
HEAD_IP, NODE_IP = "127.0.0.2", "127.0.0.3"


def _free_port(host: str = HEAD_IP) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _kill_tree(proc: subprocess.Popen) -> None:
    import psutil

    try:
        parent = psutil.Process(proc.pid)
        family = parent.children(recursive=True) + [parent]
    except psutil.NoSuchProcess:
        return
    for p in family:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=20)


@contextlib.contextmanager
def stopped_by_pid(procs: list[subprocess.Popen]):
    """On leaving, every process in ``procs`` (filled inside) killed by PID, last first, and
    Ray's address file as it was: `ray start --head` records its address for later
    `ray.init()` calls; `ray stop` would remove it, a kill by PID does not."""
    from ray._common.utils import get_ray_address_file

    current = Path(get_ray_address_file(None))
    before = current.read_bytes() if current.exists() else None
    try:
        yield procs
    finally:
        for proc in reversed(procs):
            _kill_tree(proc)
        if before is None:
            current.unlink(missing_ok=True)
        else:
            current.write_bytes(before)


def _run(cmd: list[str], env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd}: {out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture
def s3():
    with s3_server("adx-cluster") as uri:
        yield uri


def test_sweep_on_a_real_two_node_cluster_through_the_job_api_to_s3(tmp_path, s3):
    pytest.importorskip("aiohttp")  # ray[default]: the dashboard and its Job API
    token = tmp_path / "auth_token"
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token), RAY_USAGE_STATS_ENABLED="0")
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    token.write_text(secrets.token_hex(32))  # what `ray get-auth-token --generate` makes, kept out of ~/.ray
    token.chmod(0o600)

    gcs_port, dash_port = _free_port(), _free_port()
    procs: list[subprocess.Popen] = []
    logs = tmp_path / "logs"
    logs.mkdir()

    def start(name: str, *args: str) -> subprocess.Popen:
        # free ports for what listens on a fixed default port (the dashboard agent's 52365,
        # the client server's 10001), so another Ray on the machine does not block this one
        ports = [f"--dashboard-agent-listen-port={_free_port()}", f"--metrics-export-port={_free_port()}"]
        with open(logs / f"{name}.log", "w") as log:
            proc = subprocess.Popen(
                [str(BIN / "ray"), "start", "--block", "--disable-usage-stats", *ports, *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        procs.append(proc)
        return proc

    with stopped_by_pid(procs):
        start(
            "head",
            "--head",
            f"--node-ip-address={HEAD_IP}",
            f"--port={gcs_port}",
            f"--dashboard-host={HEAD_IP}",
            f"--dashboard-port={dash_port}",
            "--num-cpus=1",
            "--include-dashboard=true",
            f"--ray-client-server-port={_free_port()}",
        )
        address = f"{HEAD_IP}:{gcs_port}"
        _wait_nodes(env, address, 1, logs)
        node = start("node", f"--address={address}", f"--node-ip-address={NODE_IP}", "--num-cpus=1")
        nodes = _wait_nodes(env, address, 2, logs)
        second_id = next(n["NodeID"][:12] for n in nodes if n["NodeManagerAddress"] == NODE_IP)
        for n in nodes:  # every node advertises a loopback address
            assert ipaddress.ip_address(n["NodeManagerAddress"]).is_loopback, nodes

        # a plugin decoder that exists only in the job's folder: Ray ships the folder to the nodes
        job = tmp_path / "job"
        job.mkdir()
        plugin = write_plugin(job)
        raw = tiny_sweep_raw("cluster", seeds=2, retries=2)  # 4 trials, 1 CPU each: both nodes busy
        raw["grid"] = {"decoder": ["additive", {"name": f"{plugin}:decoder", "options": {"width": 24}}]}
        raw["fixed"].update(steps=60, eval_every=20, fault="slow")  # about 12 s each
        spec = job / "cluster.yaml"
        spec.write_text(yaml.safe_dump(raw))
        dashboard = f"http://{HEAD_IP}:{dash_port}"
        entrypoint = [sys.executable, "-m", "sweeps.cli", "sweep", "run", "cluster.yaml", "--address", "auto"]
        submitted = _submit(env, dashboard, [*entrypoint, "--storage", s3, "--no-table"], working_dir=job)
        job_id = _job_id(submitted.stdout + submitted.stderr)

        # kill the second node while one of its trials runs
        deadline = time.time() + 180
        while not _busy_on(env, address, NODE_IP):
            assert time.time() < deadline, "no trial ever ran on the second node"
            time.sleep(0.5)
        killed_at = time.time()
        _kill_tree(node)

        status = _wait_job(env, dashboard, job_id, timeout=400)
        assert status == "SUCCEEDED", _ray_job(env, "logs", dashboard, job_id).stdout[-3000:]

        # a separate client process reads the results from S3
        client = dict(env)
        client.pop("RAY_ADDRESS", None)
        table = _run(
            [sys.executable, "-m", "sweeps.cli", "results", "table", "cluster", "--storage", s3, "--format", "csv"],
            client,
        )
        assert "additive" in table.stdout and "decoder(width=24)" in table.stdout
        from analysis.load import load_trials

        df = load_trials("cluster", s3)
        assert len(df) == 4 and set(df["status"]) == {"ok"} and df["trial_id"].is_unique
        assert set(df["decoder"]) == {"additive", f"{plugin}:decoder"}  # the plugin trained on both nodes' workers
        # a trial was running on the second node when it was killed; every row is ok, and no
        # row finished there after the kill: that trial ran again on the head
        on_second = df[df["node"].str.startswith(second_id)]
        assert all(t.timestamp() < killed_at for t in on_second["finished_at"]), df[["trial_id", "node"]]
        assert len(on_second) < 4


def _wait_nodes(env: dict, address: str, n: int, logs: Path) -> list[dict]:
    code = (
        "import json, sys, ray; ray.init(address=sys.argv[1], logging_level='ERROR');"
        "print(json.dumps([x for x in ray.nodes() if x['Alive']]))"
    )
    deadline = time.time() + 120
    while True:
        out = subprocess.run(
            [sys.executable, "-c", code, address], env=env, capture_output=True, text=True, timeout=120
        )
        if out.returncode == 0:
            nodes = json.loads(out.stdout.strip().splitlines()[-1])
            if len(nodes) >= n:
                return nodes
        if time.time() > deadline:
            tails = {p.name: p.read_text()[-1500:] for p in logs.iterdir()}
            raise AssertionError(f"{n} nodes did not come up: {out.stderr[-2000:]} {tails}")
        time.sleep(1)


def _busy_on(env: dict, address: str, ip: str) -> bool:
    """Whether a trial (an actor that holds a CPU) runs on the node at ``ip``."""
    code = (
        "import json, sys, ray; from ray.util.state import list_actors; ray.init(address=sys.argv[1], logging_level='ERROR');"
        "nodes = {x['NodeID']: x['NodeManagerAddress'] for x in ray.nodes()};"
        "print(json.dumps([nodes.get(a.node_id) for a in list_actors(filters=[('state', '=', 'ALIVE')])"
        " if 'ImplicitFunc' in a.class_name or 'Trainable' in a.class_name]))"
    )
    out = subprocess.run([sys.executable, "-c", code, address], env=env, capture_output=True, text=True, timeout=60)
    return out.returncode == 0 and ip in json.loads(out.stdout.strip().splitlines()[-1] or "[]")


def _job_id(text: str) -> str:
    for word in text.replace("'", " ").split():
        if word.startswith("raysubmit_"):
            return word
    raise AssertionError(f"no job id in: {text}")


def _submit(
    env: dict, dashboard: str, entrypoint: list[str], working_dir: Path | None = None
) -> subprocess.CompletedProcess:
    """`ray job submit` (with `--working-dir` when given), retried while the head's job agent
    is still starting (it answers "No available agent to submit job" for a while after the
    node is up)."""
    deadline = time.time() + 120
    where = ["--working-dir", str(working_dir)] if working_dir else []
    while True:
        out = _ray_job(env, "submit", dashboard, "--no-wait", *where, "--", *entrypoint)
        if out.returncode == 0:
            return out
        assert "No available agent" in out.stderr and time.time() < deadline, out.stderr[-3000:]
        time.sleep(2)


def _ray_job(env: dict, command: str, dashboard: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "ray"), "job", command, "--address", dashboard, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _wait_job(env: dict, dashboard: str, job_id: str, timeout: float) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = _ray_job(env, "status", dashboard, job_id)
        text = out.stdout + out.stderr  # the CLI says "Job '<id>' succeeded" / "failed" / "was stopped"
        for word, state in (("' succeeded", "SUCCEEDED"), ("' failed", "FAILED"), ("' was stopped", "STOPPED")):
            if word in text:
                return state
        time.sleep(2)
    raise AssertionError("the job did not finish")
