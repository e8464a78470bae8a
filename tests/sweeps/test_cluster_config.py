"""The cluster configs open nothing to the world and install the project on every node."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["cluster.yaml", "cluster-onprem.yaml"])
def test_cluster_config_is_secure_and_installs_the_project(name):
    text = (ROOT / name).read_text()
    cfg = yaml.safe_load(text)
    for key in (
        "cluster_name",
        "provider",
        "available_node_types",
        "head_node_type",
        "setup_commands",
        "head_start_ray_commands",
        "worker_start_ray_commands",
    ):
        assert key in cfg, key
    assert "0.0.0.0" not in text  # no port is opened to the world, no service binds everywhere
    head = " ".join(cfg["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head
    assert any("pip install" in c and "~/adx" in c for c in cfg["setup_commands"])
    assert cfg["file_mounts"] == {"~/adx": "."}


def test_aws_security_group_opens_only_ssh():
    cfg = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    perms = cfg["provider"]["security_group"]["IpPermissions"]
    assert [(p["FromPort"], p["ToPort"]) for p in perms] == [(22, 22)]
    assert all(r["CidrIp"].endswith("/32") for p in perms for r in p["IpRanges"])
