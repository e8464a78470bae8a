from __future__ import annotations

import subprocess
import sys

from sweeps.cli import main


def test_help_lists_every_group():
    out = subprocess.run([sys.executable, "-m", "sweeps.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for group in ("data", "trial", "sweep", "results"):
        assert group in out.stdout


def test_data_preview_writes_an_image(tmp_path, capsys):
    out = tmp_path / "p.png"
    assert main(["data", "preview", "--dataset", "block", "--support", "scm", "--image-size", "32",
                 "--out", str(out)]) == 0
    assert out.stat().st_size > 10000


def test_data_preview_bad_support_is_one_line(tmp_path, capsys):
    assert main(["data", "preview", "--support", "moon", "--out", str(tmp_path / "p.png")]) == 1
    assert capsys.readouterr().err.startswith("Error: `support` must be one of")


def test_trial_fields_and_bad_field(capsys):
    assert main(["trial", "fields"]) == 0
    assert "decoder" in capsys.readouterr().out
    assert main(["trial", "run", "--set", "stepz=3"]) == 1
    assert "`stepz` must be a known trial field" in capsys.readouterr().err


def test_sweep_list_on_empty_storage(tmp_path, capsys):
    assert main(["sweep", "list", "--storage", str(tmp_path)]) == 0
    assert "no sweeps" in capsys.readouterr().out
