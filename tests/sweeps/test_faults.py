"""Fault injection with real processes and a real Ray: a killed driver, Ctrl-C, several
nodes, a node lost mid-trial. Slow: CI runs them after the default suite."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import adx_resume, tiny_sweep_raw

pytestmark = pytest.mark.slow
ADX = [sys.executable, "-m", "sweeps.cli"]


def _spec_file(tmp_path: Path, name: str, **top) -> str:
    raw = tiny_sweep_raw(name, **top)
    raw["fixed"]["steps"] = 150
    raw["fixed"]["eval_every"] = 50
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def _rows(tmp_path: Path, name: str) -> list[Path]:
    return sorted((tmp_path / "results" / name / "trials").glob("*.parquet"))


def _wait_for_rows(proc: subprocess.Popen, tmp_path: Path, name: str, n: int, timeout: float = 240) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if len(_rows(tmp_path, name)) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended before {n} rows: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.2)
    raise AssertionError("timed out waiting for rows")


def _check_complete(tmp_path: Path, name: str, expected: int) -> pd.DataFrame:
    files = _rows(tmp_path, name)
    assert len(files) == expected
    df = pd.read_parquet(tmp_path / "results" / name / "trials")
    assert len(df) == expected and df["trial_id"].is_unique
    assert not list((tmp_path / "results" / name).rglob(".*.tmp-*"))  # no partial files left
    return df


def _start_sweep(spec: str, storage: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*ADX, "sweep", "run", spec, "--storage", storage, "--no-table"], stderr=subprocess.PIPE, text=True
    )


def _kill_after_first_row(spec: str, storage: str, tmp_path: Path, name: str) -> None:
    """Run the sweep in a driver process and SIGKILL it once the first row is written."""
    proc = _start_sweep(spec, storage)
    _wait_for_rows(proc, tmp_path, name, 1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_sigkill_driver_then_resume(tmp_path):
    spec = _spec_file(tmp_path, "killed", seeds=3)  # 6 trials
    storage = str(tmp_path / "results")
    _kill_after_first_row(spec, storage, tmp_path, "killed")
    before = {p.name: p.stat().st_mtime_ns for p in _rows(tmp_path, "killed")}
    assert 1 <= len(before) < 6
    done = adx_resume("killed", storage)
    assert done.returncode == 0, done.stderr
    df = _check_complete(tmp_path, "killed", 6)
    assert set(df["status"]) == {"ok"}
    after = {p.name: p.stat().st_mtime_ns for p in _rows(tmp_path, "killed")}
    assert all(after[k] == v for k, v in before.items())  # finished trials were not rerun


@pytest.mark.parametrize(
    "restarts", [{"k": 3, "select_at": 50}, {"k": 5, "rungs": [50, 100]}], ids=["select_at", "rungs"]
)
def test_kill_mid_group_then_resume_selects_the_same_members(tmp_path, restarts):
    """Restart groups: a driver killed while groups train (mid-rung: some members parked,
    one training); the resumed sweep writes every member once and keeps, in every group,
    the member an uninterrupted run keeps, with every member stopped where it stopped."""
    from additive import TrialSpec
    from additive.restarts import RestartsSpec, run_restarts
    from sweeps.results import trial_fields_from_row

    name = "groups-killed"
    spec = _spec_file(tmp_path, name, seeds=2, restarts=restarts)  # 4 groups
    storage = str(tmp_path / "results")
    _kill_after_first_row(spec, storage, tmp_path, name)
    assert 1 <= len(_rows(tmp_path, name)) < 4  # groups were left in the middle
    done = adx_resume(name, storage)
    assert done.returncode == 0, done.stderr
    df = pd.read_parquet(tmp_path / "results" / name / "trials")
    k = restarts["k"]
    assert len(_rows(tmp_path, name)) == 4 and len(df) == 4 * k and df["trial_id"].is_unique
    for gid, g in df.groupby("restart_group"):
        trial = TrialSpec.from_dict({**trial_fields_from_row(g.iloc[0]), "restart": 0, "threads": 1})
        alone = run_restarts(trial, RestartsSpec(**restarts))
        chosen = g[g["selected"]]
        assert len(chosen) == 1 and int(chosen["restart"].item()) == alone.selected, gid
        assert chosen["val_loss"].item() == pytest.approx(alone.best.result.metrics["val_loss"], rel=1e-6)
        by_restart = g.set_index("restart")
        for m in alone.members:
            assert by_restart.loc[m.restart, "steps_done"] == m.result.steps_done, (gid, m.restart)


def _slow_spec_file(tmp_path: Path, name: str) -> str:
    """Six trials of about 8 s each (fault "slow" sleeps 0.2 s a step): a signal sent after
    the first row always finds trials still to run."""
    raw = tiny_sweep_raw(name, seeds=3)
    raw["fixed"].update(steps=40, eval_every=20, fault="slow")
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["sigint", "sigterm"])
def test_signal_stops_cleanly_and_resumes(tmp_path, sig, code):
    """Ctrl-C and SIGTERM (ray job stop, SLURM, Kubernetes) stop the sweep the same way:
    one line naming the resume command, the shell's exit code, no stack dump."""
    name = f"stopped-{sig.name.lower()}"
    spec = _slow_spec_file(tmp_path, name)
    storage = str(tmp_path / "results")
    proc = _start_sweep(spec, storage)
    _wait_for_rows(proc, tmp_path, name, 1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert len(_rows(tmp_path, name)) < 6  # the signal came while trials were left
    assert proc.returncode == code, err
    assert f"adx sweep resume {name}" in err
    assert "Traceback" not in err and "Stack (most recent call first)" not in err
    done = adx_resume(name, storage)
    assert done.returncode == 0, done.stderr
    _check_complete(tmp_path, name, 6)


CLUSTER_SCRIPT = textwrap.dedent("""
    import json, sys, threading, time
    import ray
    from ray.cluster_utils import Cluster
    from sweeps.engine import run_sweep
    from sweeps.spec import load_sweep_spec
    import pandas as pd

    spec_path, storage, remove = sys.argv[1], sys.argv[2], sys.argv[3] == "remove"
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="ERROR")
    spec = load_sweep_spec(spec_path)
    removed = {}
    if remove:
        def kill_one():
            time.sleep(12)  # both trials are running by then
            removed.update(node=workers[0].node_id[:12], at=time.time())
            cluster.remove_node(workers[0])
        threading.Thread(target=kill_one, daemon=True).start()
    summary = run_sweep(spec, storage, out=None)
    df = pd.read_parquet(f"{storage}/{spec.name}/trials")
    started = [t.timestamp() for t in df["started_at"]]
    print(json.dumps({"counts": summary.counts, "nodes": sorted(set(df["node"])), "rows": len(df),
                      "removed": removed, "started": started}))
    ray.shutdown()
    cluster.shutdown()
""")


def _run_cluster(tmp_path: Path, spec: str, remove: bool) -> dict:
    script = tmp_path / "cluster.py"
    script.write_text(CLUSTER_SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script), spec, str(tmp_path / "results"), "remove" if remove else "-"],
        capture_output=True,
        text=True,
        timeout=500,
        cwd=os.getcwd(),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_trials_run_on_several_nodes(tmp_path):
    spec = _spec_file(tmp_path, "multinode", seeds=2)
    raw = yaml.safe_load(Path(spec).read_text())
    raw["fixed"]["steps"] = 600  # long enough that both nodes are busy at once
    Path(spec).write_text(yaml.safe_dump(raw))
    result = _run_cluster(tmp_path, spec, remove=False)
    assert result["rows"] == 4 and result["counts"] == {"ok": 4}
    assert len(result["nodes"]) >= 2, result


def test_lost_node_trial_is_retried_elsewhere(tmp_path):
    spec_path = _spec_file(tmp_path, "lostnode", seeds=1, retries=2)
    raw = yaml.safe_load(Path(spec_path).read_text())
    raw["fixed"]["steps"] = 1500  # long enough to be mid-trial when the node goes
    raw["fixed"]["eval_every"] = 100
    Path(spec_path).write_text(yaml.safe_dump(raw))
    result = _run_cluster(tmp_path, spec_path, remove=True)
    assert result["rows"] == 2
    assert result["counts"] == {"ok": 2}, result
    # the trial that was on the removed node ran again: it started after the removal, elsewhere
    assert result["removed"], result
    assert any(t > result["removed"]["at"] for t in result["started"]), result
    assert not any(n.startswith(result["removed"]["node"]) for n in result["nodes"]), result


def test_two_sweeps_under_one_root_at_once(tmp_path):
    storage = str(tmp_path / "results")
    a = _spec_file(tmp_path, "alpha", seeds=2)
    b = _spec_file(tmp_path, "beta", seeds=2)
    procs = [
        subprocess.Popen(
            [*ADX, "sweep", "run", s, "--storage", storage, "--no-table", "--num-cpus", "1"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in (a, b)
    ]
    for p in procs:
        _, err = p.communicate(timeout=400)
        assert p.returncode == 0, err
    for name in ("alpha", "beta"):
        df = _check_complete(tmp_path, name, 4)
        assert set(df["sweep"]) == {name}


def test_same_sweep_twice_at_once_is_refused(tmp_path):
    storage = str(tmp_path / "results")
    spec = _spec_file(tmp_path, "twice", seeds=3)
    first = subprocess.Popen(
        [*ADX, "sweep", "run", spec, "--storage", storage, "--no-table"], stderr=subprocess.PIPE, text=True
    )
    _wait_for_rows(first, tmp_path, "twice", 1)
    second = adx_resume("twice", storage, timeout=120)
    assert second.returncode == 1
    assert second.stderr.strip().splitlines()[-1].startswith("Error: sweep 'twice' is already being run by process")
    _, err = first.communicate(timeout=400)
    assert first.returncode == 0, err
    _check_complete(tmp_path, "twice", 6)


def test_embedded_ray_is_its_own_even_where_ray_start_left_a_cluster_address(tmp_path):
    """`ray start --head` writes its address where a bare `ray.init()` finds and joins it;
    `adx sweep run` without --address must start its own Ray all the same."""
    root = tempfile.mkdtemp(prefix="adx", dir="/tmp")  # short: Ray's socket paths live under it
    try:
        (Path(root) / "ray").mkdir()
        (Path(root) / "ray" / "ray_current_cluster").write_text("127.0.0.9:6399")  # nobody there
        spec = _spec_file(tmp_path, "own")
        out = subprocess.run(
            [*ADX, "sweep", "run", spec, "--storage", str(tmp_path / "results"), "--no-table", "--num-cpus", "1"],
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(os.environ, RAY_TMPDIR=root),
        )
        assert out.returncode == 0, out.stderr[-3000:]
        _check_complete(tmp_path, "own", 2)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_a_searched_sweep_stopped_mid_search_ends_with_exactly_its_trials(tmp_path, sig):
    """A search stopped (Ctrl-C, or the driver killed) and resumed: every study ends with
    exactly n_trials trials that have a row, no trial is run twice and none is lost."""
    optuna = pytest.importorskip("optuna")
    name = f"search-{sig.name.lower()}"
    search = {"metric": "val_loss", "mode": "min", "n_trials": 4, "sampler": "random",
              "space": {"lr": {"loguniform": [1e-4, 1e-2]}}}  # fmt: skip
    raw = tiny_sweep_raw(name, seeds=1, search=search)  # 2 studies (one per decoder) x 4 trials
    raw["fixed"].update(steps=40, eval_every=20, fault="slow")  # about 8 s a trial
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(yaml.safe_dump(raw))
    storage = str(tmp_path / "results")
    proc = _start_sweep(str(spec), storage)
    _wait_for_rows(proc, tmp_path, name, 1)
    proc.send_signal(sig)
    proc.communicate(timeout=120)
    assert 1 <= len(_rows(tmp_path, name)) < 8  # stopped mid-search
    done = adx_resume(name, storage)
    assert done.returncode == 0, done.stderr
    df = _check_complete(tmp_path, name, 8)
    assert set(df["status"]) == {"ok"}
    for cell, rows in df.groupby("cell_index"):
        study = optuna.load_study(study_name=f"{name}/c{cell:03d}/s0", storage=f"sqlite:///{storage}/{name}/optuna.db")
        complete = [t for t in study.trials if t.state.name == "COMPLETE"]
        assert len(rows) == 4 and len(complete) == 4, [t.state.name for t in study.trials]
        assert sorted(t.number for t in complete) == sorted(rows["search_number"].astype(int))
        assert {t.user_attrs["trial_id"] for t in complete} == set(rows["trial_id"])
        assert not [t for t in study.trials if t.state.name in ("RUNNING", "WAITING")]
