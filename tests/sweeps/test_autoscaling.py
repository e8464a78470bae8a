"""Autoscaling to a sweep's demand, on one machine (slow): Ray's own fake multi-node
provider (the one Ray's autoscaler tests use) behind a head started with
`ray start --autoscaling-config`, and the node types of `cluster.yaml`: a head with no CPU
for trials and a GPU worker type with `min_workers: 0`. The GPU is declared, not real:
trials run with `accelerator: cpu` and ask for `gpu: 0.25`. The sweep's pending trials must
launch worker nodes (never more than `max_workers`), pack four trials per node, and the
idle nodes must go once the sweep ends.

The test's node types are derived from `cluster.yaml` (names, head resources,
`min_workers`, the upscaling speed); it overrides only what a fake node on a 2-core machine
needs (`test_the_fake_cluster_mirrors_cluster_yaml` says which), so a change to
`cluster.yaml` is caught. Every process listens on loopback addresses (the fake nodes
advertise 127.0.0.1 with `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`) and is stopped by PID."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import tiny_sweep_raw
from tests.sweeps.test_cluster_run import BIN, _free_port, stopped_by_pid

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
HEAD_IP = "127.0.0.10"
# What a fake node on this 2-core machine cannot take from cluster.yaml: its resources
# (detected on AWS, declared here: one GPU, and CPUs for 4 trials of 0.5), at most 2 nodes
# (cluster.yaml allows 8), and a 6-second idle timeout (cluster.yaml: 10 minutes).
FAKE_RESOURCES = {"CPU": 2, "GPU": 1}
OVERRIDES: dict = {"max_workers": 2, "resources": FAKE_RESOURCES, "idle_timeout_minutes": 0.1}
FAKE_HEAD = "ray.head.default"  # the fake provider's name for the head's node type


def fake_cluster_config(cluster_yaml: Path = ROOT / "cluster.yaml", gcs_address: str = "") -> dict:
    """The fake provider's config with cluster.yaml's node types and OVERRIDES."""
    real = yaml.safe_load(cluster_yaml.read_text())
    head_type = real["head_node_type"]
    types: dict = {FAKE_HEAD: {"resources": dict(real["available_node_types"][head_type]["resources"]),
                               "node_config": {}, "max_workers": 0}}  # fmt: skip
    for name, node in real["available_node_types"].items():
        if name == head_type:
            continue
        types[name] = {
            "resources": dict(FAKE_RESOURCES),
            "node_config": {},
            "min_workers": node.get("min_workers", 0),
            "max_workers": min(node.get("max_workers", real["max_workers"]), OVERRIDES["max_workers"]),
        }
    return {
        "cluster_name": real["cluster_name"] + "-fake",
        "max_workers": min(real["max_workers"], OVERRIDES["max_workers"]),
        "upscaling_speed": real.get("upscaling_speed", 1.0),
        "idle_timeout_minutes": OVERRIDES["idle_timeout_minutes"],
        "provider": {
            "type": "fake_multinode",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            "gcs_address": gcs_address,
        },
        "available_node_types": types,
        "head_node_type": FAKE_HEAD,
        "auth": {},
        "docker": {},
        **{
            k: []
            for k in (
                "initialization_commands",
                "setup_commands",
                "head_setup_commands",
                "worker_setup_commands",
                "head_start_ray_commands",
                "worker_start_ray_commands",
                "cluster_synced_files",
                "rsync_exclude",
                "rsync_filter",
            )
        },  # fmt: skip
        "file_mounts": {},
        "file_mounts_sync_continuously": False,
    }


def test_the_fake_cluster_mirrors_cluster_yaml(tmp_path):
    real = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    fake = fake_cluster_config()
    workers = {k: v for k, v in real["available_node_types"].items() if k != real["head_node_type"]}
    assert set(fake["available_node_types"]) == {FAKE_HEAD, *workers}
    assert fake["available_node_types"][FAKE_HEAD]["resources"] == {"CPU": 0}  # trials never run on the head
    for name, node in workers.items():
        assert fake["available_node_types"][name]["min_workers"] == node["min_workers"] == 0
        assert node["max_workers"] >= OVERRIDES["max_workers"]
    assert fake["upscaling_speed"] == real["upscaling_speed"]
    # a change to cluster.yaml shows up in the fake cluster
    changed = dict(real)
    changed["available_node_types"] = {
        **real["available_node_types"],
        "cpu_worker": {"min_workers": 1, "resources": {}},
    }
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(changed))
    assert fake_cluster_config(path)["available_node_types"]["cpu_worker"]["min_workers"] == 1


_POLL = """
import json, sys, time, ray
ray.init(address=sys.argv[1], logging_level="ERROR")
with open(sys.argv[2], "a") as out:
    while True:
        alive = [n for n in ray.nodes() if n["Alive"]]
        gpu = [n["NodeManagerAddress"] for n in alive if n["Resources"].get("GPU")]
        out.write(json.dumps({"t": time.time(), "gpu_nodes": len(gpu), "ips": sorted({n["NodeManagerAddress"] for n in alive})}) + "\\n")
        out.flush()
        time.sleep(0.5)
"""


def test_a_sweep_scales_gpu_workers_up_to_max_workers_packs_four_per_node_and_they_go(tmp_path):
    token = tmp_path / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token), RAY_USAGE_STATS_ENABLED="0")
    env.update(RAY_FAKE_CLUSTER="1", AUTOSCALER_UPDATE_INTERVAL_S="1", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    port = _free_port(HEAD_IP)
    address = f"{HEAD_IP}:{port}"
    config = tmp_path / "autoscaling.json"
    config.write_text(json.dumps(fake_cluster_config(gcs_address=address)))
    raw = tiny_sweep_raw("autoscale", seeds=4, retries=1)  # 8 trials of about 25 s: the four
    # placed on a node start within seconds of each other (process start, imports), and overlap
    raw["fixed"].update(steps=120, eval_every=40, fault="slow", accelerator="cpu")
    raw["resources"] = {"cpu": 0.5, "gpu": 0.25}
    spec = tmp_path / "autoscale.yaml"
    spec.write_text(yaml.safe_dump(raw))
    polls = tmp_path / "nodes.jsonl"
    with stopped_by_pid([]) as procs:
        with open(tmp_path / "head.log", "w") as log:
            procs.append(
                subprocess.Popen(
                    [str(BIN / "ray"), "start", "--head", "--block", "--disable-usage-stats",
                     f"--node-ip-address={HEAD_IP}", f"--port={port}", "--num-cpus=0", "--include-dashboard=false",
                     f"--ray-client-server-port={_free_port(HEAD_IP)}", f"--metrics-export-port={_free_port(HEAD_IP)}",
                     f"--dashboard-agent-listen-port={_free_port(HEAD_IP)}", f"--autoscaling-config={config}"],
                    env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )
            )  # fmt: skip
        procs.append(subprocess.Popen([sys.executable, "-c", _POLL, address, str(polls)], env=env))
        deadline = time.time() + 120
        while not polls.exists() or not polls.read_text().strip():
            assert time.time() < deadline and procs[0].poll() is None, (tmp_path / "head.log").read_text()[-3000:]
            time.sleep(1)
        run = subprocess.run(
            [sys.executable, "-m", "sweeps.cli", "sweep", "run", str(spec), "--address", address,
             "--storage", str(tmp_path / "results"), "--no-table"],
            env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-3000:]
        assert "the trials wait until the autoscaler adds nodes" in run.stderr
        ended = time.time()
        while json.loads(polls.read_text().splitlines()[-1])["gpu_nodes"] > 0:
            assert time.time() < ended + 120, "idle GPU workers were not removed"
            time.sleep(1)
        removed_after = time.time() - ended

    seen = [json.loads(line) for line in polls.read_text().splitlines()]
    assert seen[0]["gpu_nodes"] == 0  # min_workers 0: no GPU worker before the sweep
    assert max(s["gpu_nodes"] for s in seen) == OVERRIDES["max_workers"]  # 8 trials want 2 nodes of 4
    assert all(ip.startswith("127.") for s in seen for ip in s["ips"])
    df = pd.read_parquet(tmp_path / "results" / "autoscale" / "trials")
    assert len(df) == 8 and set(df["status"]) == {"ok"}
    nodes = df["node"].str.split("@").str[0]
    assert 1 <= nodes.nunique() <= OVERRIDES["max_workers"]  # where Tune placed them depends on timing
    peaks = []
    for _, g in df.groupby(nodes):  # gpu 0.25: up to four trials at once on a node's one GPU
        events = sorted([(t.timestamp(), 1) for t in g["started_at"]] + [(t.timestamp(), -1) for t in g["finished_at"]])
        running = peak = 0
        for _, step in events:
            running += step
            peak = max(peak, running)
        peaks.append(peak)
    assert max(peaks) == 4 and all(p <= 4 for p in peaks), df[["trial_id", "node", "started_at", "finished_at"]]
    print(f"\nidle GPU workers removed {removed_after:.0f} s after the sweep ended")
