"""What the embedded Ray of a sweep exposes, measured: the sockets its processes listen on
(as README and RELIABILITY.md say: all interfaces) and that a client without the cluster's
token is refused. Slow: a real sweep in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.conftest import tiny_sweep_raw

pytestmark = pytest.mark.slow
ADX = [sys.executable, "-m", "sweeps.cli"]


def _listening(root: psutil.Process) -> dict[str, set[str]]:
    """Bind addresses of the TCP sockets that ``root`` and its children listen on, by process name."""
    out: dict[str, set[str]] = {}
    for proc in [root, *root.children(recursive=True)]:
        try:
            conns = proc.net_connections(kind="tcp")
            name = proc.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        for c in conns:
            if c.status == psutil.CONN_LISTEN:
                out.setdefault(name, set()).add(c.laddr.ip)
    return out


def _names(root: psutil.Process) -> list[str]:
    out = []
    for proc in [root, *root.children(recursive=True)]:
        try:
            out.append(proc.name())
        except psutil.NoSuchProcess:
            continue
    return out


def _agent_port(root: psutil.Process) -> int | None:
    """The HTTP port of Ray's dashboard agent (started when ray[default] is installed), if any."""
    for proc in root.children(recursive=True):
        try:
            if proc.name() == "ray::DashboardAgent":
                for c in proc.net_connections(kind="tcp"):
                    if c.status == psutil.CONN_LISTEN and c.laddr.ip == "127.0.0.1":
                        return c.laddr.port
        except psutil.NoSuchProcess:
            continue
    return None


def _token() -> str:
    return (Path.home() / ".ray" / "auth_token").read_text().strip()


def _http_status(url: str, token: str | None = None) -> int:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _gcs_port(root: psutil.Process) -> int:
    """The port the GCS server listens on (it is started with port 0, so read the socket)."""
    for proc in root.children(recursive=True):
        try:
            if "gcs_server" in proc.name():
                return next(c.laddr.port for c in proc.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN)
        except (psutil.NoSuchProcess, StopIteration):
            continue
    raise AssertionError("no listening gcs_server among the sweep's processes")


def _connect(port: int, token: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ, RAY_AUTH_MODE="token")
    if token is not None:
        env["RAY_AUTH_TOKEN"] = token
    code = (
        f"import ray; ray.init(address='127.0.0.1:{port}', logging_level='ERROR'); print('connected'); ray.shutdown()"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)


def test_embedded_ray_listens_as_documented_and_refuses_a_client_without_the_token(tmp_path: Path):
    raw = tiny_sweep_raw("exposed", seeds=3)
    raw["fixed"].update(steps=60, eval_every=20, fault="slow")  # about 12 s a trial
    spec = tmp_path / "exposed.yaml"
    spec.write_text(yaml.safe_dump(raw))
    driver = subprocess.Popen(
        [*ADX, "sweep", "run", str(spec), "--storage", str(tmp_path / "results"), "--no-table"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        root = psutil.Process(driver.pid)
        deadline = time.time() + 120
        while not any("ImplicitFunc" in n for n in _names(root)):  # a trial runs: every process is up
            assert driver.poll() is None, driver.stderr.read() if driver.stderr else ""
            assert time.time() < deadline, "no trial started"
            time.sleep(0.5)
        time.sleep(2)
        sockets = _listening(root)
        gcs = next(addrs for name, addrs in sockets.items() if "gcs_server" in name)
        raylet = next(addrs for name, addrs in sockets.items() if "raylet" in name)
        # README / RELIABILITY.md: the GCS server and the raylet listen on all interfaces
        everywhere = {"0.0.0.0", "::"}  # IPv4 or dual-stack wildcard
        assert gcs and gcs <= everywhere and raylet and raylet <= everywhere, sockets
        # and nothing listens anywhere but the wildcard, loopback and this machine's own addresses
        own = {a.address.split("%")[0] for addrs in psutil.net_if_addrs().values() for a in addrs}
        assert all(a in everywhere or a in own for addrs in sockets.values() for a in addrs), sockets
        # only Ray's agents (started when ray[default], the `cluster` extra, is installed) bind
        # the machine's network address itself
        on_host = {n for n, addrs in sockets.items() if addrs - everywhere - {"127.0.0.1", "::1"}}
        assert on_host <= {"ray::DashboardAgent", "ray::RuntimeEnvAgent"}, sockets
        agent = _agent_port(root)  # None when another Ray on the machine holds the agent's port 52365
        if agent is not None:  # the agent's job API wants the token
            assert _http_status(f"http://127.0.0.1:{agent}/api/job_agent/jobs/x") == 401
            assert _http_status(f"http://127.0.0.1:{agent}/api/job_agent/jobs/x", _token()) != 401

        port = _gcs_port(root)
        refused = _connect(port, token="0" * 64)
        assert refused.returncode != 0 and "connected" not in refused.stdout
        assert "auth" in (refused.stderr + refused.stdout).lower(), refused.stderr[-2000:]
        allowed = _connect(port, token=None)  # the token this machine's Ray wrote for its own user
        assert allowed.returncode == 0 and "connected" in allowed.stdout, allowed.stderr[-2000:]
    finally:
        driver.terminate()
        driver.communicate(timeout=120)
