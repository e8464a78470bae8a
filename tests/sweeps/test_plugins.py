"""Plugins in sweeps: a plugin decoder and support swept beside the built-ins through the
engine, with their options in every row and in the cell; their tables, comparison and
plots; a plugin that the driver can import but the workers cannot; and resume."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sweeps.engine import run_sweep
from sweeps.spec import parse_sweep_spec
from tests.conftest import TINY_FIXED, adx_resume
from tests.plugin_modules import write_plugin


def _raw(name: str, plugin: str, seeds: int = 2) -> dict:
    return {
        "name": name,
        "fixed": {**TINY_FIXED, "image_size": 8, "channels": 8},
        "grid": {
            "support": ["l_shape", {"name": f"{plugin}:band", "options": {"width": 0.3}}],
            "decoder": ["additive", "monolithic", {"name": f"{plugin}:decoder", "options": {"width": 24}}],
        },
        "seeds": seeds,
        "retries": 0,
        "save_weights": True,
    }


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return write_plugin(tmp_path)


def test_a_plugin_sweep_lands_with_options_tables_comparison_and_plots(ray_local, tmp_path, plugin, capsys):
    from analysis.load import load_trials
    from analysis.plots import make_plots
    from analysis.tables import paired_comparison, results_table
    from sweeps.cli import main

    summary = run_sweep(parse_sweep_spec(_raw("plug", plugin), "plug.yaml"), str(tmp_path / "r"), out=None)
    assert summary.complete and summary.counts == {"ok": 12}
    df = pd.read_parquet(tmp_path / "r" / "plug" / "trials")
    mine = df[df["decoder"] == f"{plugin}:decoder"]
    assert len(mine) == 4 and set(mine["decoder_options"]) == {'{"width":24}'}
    assert set(df.loc[df["support"] == f"{plugin}:band", "support_options"]) == {'{"width":0.3}'}
    assert f"support=l_shape,decoder={plugin}:decoder(width=24)" in set(df["cell"])
    table, _ = results_table(load_trials("plug", str(tmp_path / "r")))
    assert any(c.startswith("decoder(width=24) ") for c in table.columns)  # the readable name
    comp = paired_comparison(load_trials("plug", str(tmp_path / "r")), baseline="additive")
    assert set(comp["comparison"]) == {"decoder(width=24) - additive", "monolithic - additive"}
    assert comp["p_holm"].notna().any() or comp["pairs"].max() < 3
    assert main(["results", "compare", "plug", "--storage", str(tmp_path / "r"), "--baseline", "nope"]) == 1
    assert "--baseline: must be one of the decoders" in capsys.readouterr().err
    trial = mine[mine["support"] == f"{plugin}:band"]["trial_id"].iloc[0]
    for kind in ("support", "map", "extrapolation", "traversal"):
        paths = make_plots(["plug"], str(tmp_path / "r"), kind, str(tmp_path / "plots"), trial=trial)
        assert paths and all(p.stat().st_size > 1000 for p in paths)
    from analysis.report import write_report

    page = Path(write_report(["plug"], str(tmp_path / "r"), str(tmp_path / "report.html"))).read_text()
    assert "decoder(width=24)" in page and "band(width=0.3)" in page  # readable names in the report


def test_plots_of_a_plugin_that_is_gone_say_so(ray_local, tmp_path, plugin):
    from additive.errors import AdxError
    from analysis.plots import make_plots

    raw = _raw("gone", plugin, seeds=1)
    raw["grid"] = {"decoder": [f"{plugin}:decoder"]}
    run_sweep(parse_sweep_spec(raw, "gone.yaml"), str(tmp_path / "r"), out=None)
    (tmp_path / f"{plugin}.py").unlink()
    sys.modules.pop(plugin, None)
    with pytest.raises(AdxError, match=rf"`decoder` must name an importable module, but got '{plugin}:decoder'"):
        make_plots(["gone"], str(tmp_path / "r"), "extrapolation", str(tmp_path / "plots"), trial="c000-s0")


def test_a_plugin_the_workers_cannot_import_fails_its_trials_with_a_clear_error(
    ray_local, tmp_path, plugin, monkeypatch
):
    """The driver imports the module (the check passes), then it goes away before the
    trials start: every trial fails naming the plugin and where it must be."""
    import sweeps.preflight as preflight

    real = preflight.check_sweep

    def check_then_remove(spec, best_params=None):
        report = real(spec, best_params)
        (tmp_path / f"{plugin}.py").unlink()
        return report

    monkeypatch.setattr(preflight, "check_sweep", check_then_remove)
    raw = _raw("absent", plugin, seeds=1)
    raw["grid"] = {"decoder": [f"{plugin}:decoder"]}
    summary = run_sweep(parse_sweep_spec(raw, "absent.yaml"), str(tmp_path / "r"), out=None)
    assert summary.counts == {"failed": 1}
    (line,) = [e["error"] for e in summary.errors]  # the summary's first line, shortened
    assert line.startswith(f"SpecError: `decoder` must name an importable module, but got '{plugin}:decoder'")
    error = pd.read_parquet(tmp_path / "r" / "absent" / "trials")["error"].item()
    assert "it must be importable where the trials run" in error and "ray job submit --working-dir" in error


def test_a_plugin_sweep_resumes_from_its_stored_spec(ray_local, tmp_path, plugin):
    """A sweep stopped after its first seed (its stored spec asks for two) resumes: the
    plugins are found again from the stored spec and the missing trials run."""
    from sweeps.engine import load_stored_spec
    from sweeps.results import Storage

    storage = str(tmp_path / "r")
    raw = _raw("again", plugin, seeds=1)
    raw["grid"] = {
        "support": [{"name": f"{plugin}:band", "options": {"width": 0.3}}],
        "decoder": ["additive", {"name": f"{plugin}:decoder", "options": {"width": 24}}],
    }
    run_sweep(parse_sweep_spec(raw, "again.yaml"), storage, out=None)
    stored_path = tmp_path / "r" / "again" / "spec.yaml"
    stored = yaml.safe_load(stored_path.read_text())
    stored_path.write_text(yaml.safe_dump({**stored, "seeds": 2}))  # as if stopped half-way
    summary = run_sweep(load_stored_spec(Storage(storage), "again"), storage, resume=True, out=None)
    assert summary.complete and summary.counts == {"ok": 4}
    df = pd.read_parquet(tmp_path / "r" / "again" / "trials")
    row = df[(df["seed"] == 1) & (df["decoder"] == f"{plugin}:decoder") & (df["support"] == f"{plugin}:band")]
    assert len(row) == 1 and row["decoder_options"].item() == '{"width":24}'
    assert row["support_options"].item() == '{"width":0.3}'


@pytest.mark.slow
def test_a_plugin_sweep_killed_mid_way_resumes_from_the_command_line(tmp_path):
    """`adx sweep run` in the plugin's folder, killed after its first row; `adx sweep resume`
    (from the same folder) finishes every trial."""
    import signal
    import time

    name = write_plugin(tmp_path)
    raw = _raw("killed", name, seeds=2)
    raw["fixed"].update(steps=60, eval_every=20)
    (tmp_path / "killed.yaml").write_text(yaml.safe_dump(raw))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    cmd = [sys.executable, "-m", "sweeps.cli", "sweep", "run", "killed.yaml", "--storage", "r", "--no-table"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    trials = tmp_path / "r" / "killed" / "trials"
    deadline = time.time() + 300
    while not (trials.exists() and list(trials.glob("*.parquet"))):
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 1 <= len(list(trials.glob("*.parquet"))) < 12
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        done = adx_resume("killed", "r")
    finally:
        os.chdir(cwd)
    assert done.returncode == 0, done.stderr
    df = pd.read_parquet(trials)
    assert len(df) == 12 and set(df["status"]) == {"ok"}
