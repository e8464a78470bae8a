"""A first run that goes wrong says so: the pre-scheduling check stops a bad sweep before
any trial with one line naming the key; trials that fail are named in the progress line,
listed with counts and ids at the end of `adx sweep run` and in `adx sweep status`, shown
in `adx results query`; and a sweep in which no trial succeeded exits non-zero."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml

import additive.models as models
from additive.errors import SpecError
from sweeps.cli import main
from sweeps.engine import run_sweep
from sweeps.spec import parse_sweep_spec
from tests.conftest import tiny_sweep_raw


def _write(tmp_path, raw) -> str:
    path = tmp_path / f"{raw['name']}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_a_model_that_cannot_run_stops_the_sweep_before_any_trial(ray_local, tmp_path, monkeypatch, capsys):
    class Wrong(torch.nn.Module):
        def forward(self, z):
            return torch.zeros(len(z), 3, 4, 4)

    real = models.make_decoder
    monkeypatch.setattr(
        models, "make_decoder", lambda kind, *a, **k: Wrong() if kind == "monolithic" else real(kind, *a, **k)
    )
    spec = _write(tmp_path, tiny_sweep_raw("wrongshape"))
    assert main(["sweep", "run", spec, "--storage", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"Error: {spec}: grid.decoder (cell decoder=monolithic): must output float32 images of shape "
        "(4, 3, 16, 16), but got shape (4, 3, 4, 4)"
    )
    assert not (tmp_path / "r" / "wrongshape" / "spec.yaml").exists()  # a rerun needs no --overwrite
    assert not (tmp_path / "r" / "wrongshape" / "trials").exists()


def test_the_check_names_a_default_field_it_did_not_find_in_the_spec(monkeypatch):
    from sweeps.preflight import check_sweep

    def broken(*a, **k):
        raise SpecError("`encoder` must build on the CPU, but got X", "encoder", "must build on the CPU, but got X")

    monkeypatch.setattr("additive.check._check", broken)
    with pytest.raises(SpecError, match=r"^s.yaml: encoder \(the default; cell decoder=additive\): must build"):
        check_sweep(parse_sweep_spec(tiny_sweep_raw("s"), "s.yaml"))


def test_the_check_costs_one_build_per_distinct_model(monkeypatch):
    from sweeps.preflight import check_sweep

    seen = []
    monkeypatch.setattr("additive.check._check", lambda spec, batch: seen.append(spec))
    raw = tiny_sweep_raw("s", seeds=3, grid={"decoder": ["additive", "monolithic"], "lr": [0.1, 0.01]})
    report = check_sweep(parse_sweep_spec(raw, "s.yaml"))
    assert report.configurations == 2 and len(seen) == 2


def test_failures_are_named_while_running_listed_at_the_end_and_in_status(ray_local, tmp_path, capsys):
    raw = tiny_sweep_raw("some", grid={"decoder": ["additive"], "fault": ["none", "raise"]}, seeds=2)
    out = io.StringIO()
    run_sweep(parse_sweep_spec(raw, "some.yaml"), str(tmp_path), out=out)
    assert re.search(
        r"[12] failed/diverged\), .* \| first error: c001-s[01]: RuntimeError: injected fault", out.getvalue()
    )
    assert "RuntimeError: injected fault: the trial raised" in out.getvalue().splitlines()[-1]
    assert main(["sweep", "status", "some", "--storage", str(tmp_path)]) == 0
    status = capsys.readouterr().out
    assert "2 trial(s) failed or diverged, 1 distinct error(s):" in status
    assert "  2 x RuntimeError: injected fault: the trial raised  [c001-s0, c001-s1]" in status
    assert main(["results", "query", "some", "--storage", str(tmp_path)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert "error" in rows[0] or any(line.strip() == "error" for line in rows)
    assert sum("RuntimeError: injected fault: the trial raised" in line for line in rows) == 2
    assert not any("Traceback" in line for line in rows)  # the first line only, not the traceback


def test_a_sweep_whose_trials_all_fail_exits_non_zero_with_the_errors(tmp_path):
    raw = tiny_sweep_raw("allfail", fixed={**tiny_sweep_raw("x")["fixed"], "fault": "raise"})
    spec = _write(tmp_path, raw)
    cmd = [sys.executable, "-m", "sweeps.cli", "sweep", "run", spec, "--storage", str(tmp_path / "r")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "2 x RuntimeError: injected fault: the trial raised  [c000-s0, c001-s0]" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: no trial of sweep 'allfail' succeeded (failed 2); the errors are listed above"
    )


def test_a_missing_package_stops_the_launch_in_a_fresh_process(tmp_path):
    """A subprocess in which a package the model needs is missing (a plugin-free stand-in:
    the decoder's builder imports a package this environment does not have)."""
    spec = _write(tmp_path, tiny_sweep_raw("missing"))
    code = textwrap.dedent(
        f"""
        import sys
        import additive.models as models
        real = models.make_decoder
        def make_decoder(kind, *a, **k):
            import adx_missing_extra  # noqa: F401 - not installed anywhere
            return real(kind, *a, **k)
        models.make_decoder = make_decoder
        from sweeps.cli import main
        sys.exit(main(["sweep", "run", {spec!r}, "--storage", {str(tmp_path / "r")!r}]))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"Error: {spec}: grid.decoder (cell decoder=additive): must build on the CPU, but got ModuleNotFoundError: "
        "No module named 'adx_missing_extra' (install 'adx_missing_extra' where the trials run, or choose another "
        "decoder)"
    )
    assert not (tmp_path / "r" / "missing" / "spec.yaml").exists()
    assert not (tmp_path / "r" / "missing" / "trials").exists()
