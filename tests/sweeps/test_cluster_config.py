"""The cluster configs pass Ray's own preparation and validation (what `ray up` runs first),
open nothing to the world, turn token authentication on, and install the `cluster` extra,
which is all that every shipped preset needs. No network: Ray's AWS security-group step is
run with every AWS call refused."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ["cluster.yaml", "cluster-onprem.yaml"]


def _load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


@pytest.mark.parametrize("name", CONFIGS)
def test_config_passes_rays_preparation_and_validation(name):
    pytest.importorskip("jsonschema")
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(_load(name)))
    validate_config(prepared)
    assert prepared["head_node_type"] in prepared["available_node_types"]


def test_onprem_config_is_a_manual_local_cluster():
    from ray.autoscaler._private.local.config import LOCAL_CLUSTER_NODE_TYPE
    from ray.autoscaler._private.util import prepare_config

    raw = _load("cluster-onprem.yaml")
    prepared = prepare_config(copy.deepcopy(raw))
    node_type = prepared["available_node_types"][LOCAL_CLUSTER_NODE_TYPE]
    n = len(raw["provider"]["worker_ips"])
    assert node_type["min_workers"] == node_type["max_workers"] == n  # every listed machine joins


@pytest.mark.parametrize("name", CONFIGS)
def test_every_node_installs_the_cluster_extra_and_starts_with_token_auth(name):
    cfg = _load(name)
    assert cfg["file_mounts"] == {"~/adx": ".", "~/.ray/auth_token": "~/.ray/auth_token"}
    assert any('pip install -q -e "$HOME/adx[cluster]"' in c for c in cfg["setup_commands"])
    starts = cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"]
    for cmd in (c for c in starts if "ray start" in c):
        assert "RAY_AUTH_MODE=token ray start" in cmd, cmd
        assert "RAY_AUTH_MODE=disabled" not in cmd
    head = " ".join(cfg["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head
    assert "0.0.0.0" not in yaml.safe_dump(cfg)  # no address or rule opens to the world


def test_cluster_extra_has_the_job_api_and_an_s3_client():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(d.startswith("ray[default") for d in extras["cluster"])
    assert any(d.startswith("boto3") for d in extras["cluster"])


def test_aws_nodes_join_a_premade_group_so_ray_opens_no_world_ssh(monkeypatch):
    pytest.importorskip("boto3")
    from ray.autoscaler._private.aws import config as aws
    from ray.autoscaler._private.util import prepare_config

    # What Ray would add to a group it makes itself: SSH from anywhere.
    default = aws._create_default_inbound_rules({"sg-x"})
    assert any(r.get("CidrIp") == "0.0.0.0/0" for p in default for r in p.get("IpRanges", []))

    prepared = prepare_config(copy.deepcopy(_load("cluster.yaml")))

    def no_aws(*args, **kwargs):
        raise AssertionError("Ray tried to make or change a security group")

    monkeypatch.setattr(aws, "_resource", no_aws)
    monkeypatch.setattr(aws, "_upsert_security_groups", no_aws)
    before = copy.deepcopy(prepared["available_node_types"])
    out = aws._configure_security_group(prepared)
    for name, node_type in out["available_node_types"].items():
        assert node_type["node_config"]["SecurityGroupIds"] == before[name]["node_config"]["SecurityGroupIds"]
    assert "security_group" not in out["provider"]  # no rules for Ray to merge into a group it makes


def _installed_extras(cfg: dict) -> set[str]:
    """The extras of this project that a config's setup commands pip-install."""
    found: set[str] = set()
    for cmd in cfg["setup_commands"]:
        for match in re.finditer(r'pip install[^"]*"\$HOME/adx\[([a-z,]+)\]"', cmd):
            found |= set(match.group(1).split(","))
    return found


def _requirement_names(requirements: list[str], extras: dict[str, list[str]], seen: set[str]) -> set[str]:
    """Distribution names of ``requirements``, following this project's own extras."""
    names: set[str] = set()
    for req in requirements:
        name = re.match(r"[A-Za-z0-9_.-]+", req).group(0).lower()  # type: ignore[union-attr]
        if name == "additive-decoders":
            for extra in re.search(r"\[([a-z,]+)\]", req).group(1).split(","):  # type: ignore[union-attr]
                if extra not in seen:
                    seen.add(extra)
                    names |= _requirement_names(extras[extra], extras, seen)
        else:
            names.add(name)
    return names


@pytest.mark.parametrize("name", CONFIGS)
def test_every_preset_builds_with_only_what_the_cluster_configs_install(name):
    """In a fresh process where every package of the other extras (and torchvision) fails
    to import, the pre-scheduling check builds every model of every shipped preset."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    installed = _installed_extras(_load(name))
    assert installed, "no install line of this project found"
    allowed = _requirement_names(project["dependencies"], extras, set())
    allowed |= _requirement_names([f"additive-decoders[{','.join(sorted(installed))}]"], extras, set())
    others = set().union(*(_requirement_names(reqs, extras, set()) for reqs in extras.values())) - allowed
    blocked = sorted({n.replace("-", "_") for n in others} | {"torchvision"})
    assert "duckdb" in blocked and "boto3" not in blocked  # the sql extra is not installed; cluster's boto3 is
    code = textwrap.dedent(
        f"""
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, fullname, path=None, target=None):
                if fullname.split(".")[0] in {blocked!r}:
                    raise ModuleNotFoundError(f"No module named {{fullname!r}}", name=fullname)
        sys.meta_path.insert(0, Block())
        from pathlib import Path
        from sweeps.preflight import check_sweep
        from sweeps.spec import load_sweep_spec
        for path in sorted(Path({str(ROOT / "sweeps" / "specs")!r}).glob("*.yaml")):
            report = check_sweep(load_sweep_spec(path))
            print(path.stem, report.configurations)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    checked = dict(line.split() for line in done.stdout.splitlines())
    assert set(checked) >= {"paper", "paper-block", "mini", "mini-block"}
    assert all(int(n) >= 1 for n in checked.values())
