from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sweeps.cli import main


def test_help_lists_every_group():
    out = subprocess.run([sys.executable, "-m", "sweeps.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for group in ("data", "trial", "sweep", "results"):
        assert group in out.stdout


def test_data_preview_writes_an_image(tmp_path, capsys):
    out = tmp_path / "p.png"
    assert (
        main(["data", "preview", "--dataset", "block", "--support", "scm", "--image-size", "32", "--out", str(out)])
        == 0
    )
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


def test_trial_fields_print_help_text(capsys):
    assert main(["trial", "fields"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "BatchNorm1d on the code" in lines["code_batch_norm"]
    assert "5e-4 / 255^2" in lines["weight_decay"]


def test_empty_spec_is_refused_even_with_a_name(tmp_path, capsys):
    spec = tmp_path / "empty.yaml"
    spec.write_text("")
    assert main(["sweep", "run", str(spec), "--name", "x", "--storage", str(tmp_path / "r")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"Error: {spec}: (top level): must set trial fields in `fixed` or `grid` (a spec without them would run "
        "one trial of every default), but got only ['name']"
    )
    spec.write_text("name: y\ndescription: nothing\n")
    assert main(["sweep", "run", str(spec), "--storage", str(tmp_path / "r")]) == 1
    assert "but got only ['description', 'name']" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_num_cpus_error_names_the_flag_and_writes_nothing(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\nfixed: {steps: 10}\n")
    assert main(["sweep", "run", str(spec), "--num-cpus", "0", "--storage", str(tmp_path / "r")]) == 1
    assert capsys.readouterr().err.strip() == "Error: --num-cpus: must be a positive integer, but got 0"
    assert not (tmp_path / "r" / "s" / "spec.yaml").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["sweep", "status", "../results/smoke"],
        ["sweep", "resume", "a/b"],
        ["results", "table", ".."],
        ["results", "query", "/etc"],
    ],
)
def test_every_command_checks_sweep_names(tmp_path, capsys, argv):
    assert main([*argv, "--storage", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"Error: sweep name: must be letters, digits, '-', '_' or '.' (starting with a letter or digit, "
        f"no path), but got {argv[2]!r}"
    )


def test_trial_run_with_restarts_prints_every_member(capsys):
    from sweeps.cli import main

    tiny = ["image_size=16", "n_train=128", "n_val=32", "n_test=32", "n_oos=32", "width=16", "depth=1",
            "steps=20", "eval_every=10", "batch_size=32", "threads=1"]  # fmt: skip
    args = ["trial", "run", *[x for kv in tiny for x in ("--set", kv)], "--restarts", "2", "--select-at", "10"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert [m["restart"] for m in out["members"]] == [0, 1]
    assert sorted(m["status"] for m in out["members"]) == ["ok", "stopped"]
    assert out["members"][out["selected"]]["selected"] and out["members"][out["selected"]]["steps_done"] == 20
    assert main([*args[:-2], "--select-at", "15"]) == 1
    assert "multiple of eval_every (10), but got 15" in capsys.readouterr().err


def test_the_command_ends_with_mains_code_and_its_output_flushed_when_it_skips_teardown(tmp_path):
    """`adx` (sweeps.cli.entry) ends a command that started no Ray without the interpreter's
    teardown: what it printed still arrives, through a pipe, and the exit code is main's."""
    ok = subprocess.run(
        [sys.executable, "-m", "sweeps.cli", "sweep", "list", "--storage", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and ok.stdout.strip(), ok.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "sweeps.cli", "results", "table", "nosuch", "--storage", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and bad.stderr.startswith("Error:"), (bad.returncode, bad.stderr)


def test_a_reader_that_stops_early_ends_the_command_quietly():
    """`adx results sql ... | head -1`: the reader closes the pipe after one line while the
    command still has megabytes to write; it ends with 141 (128 + SIGPIPE), no traceback."""
    published = Path(__file__).resolve().parents[2] / "results" / "published"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sweeps.cli",
            "results",
            "sql",
            "SELECT range AS i FROM range(300000)",
            "mini",
            "--storage",
            str(published),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout.readline().strip() == b"i"
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
