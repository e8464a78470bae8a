"""End to end on a real local Ray (one per test session): sweeps run, rows land as
Parquet readable without project code, failures are rows, names are not clobbered."""

from __future__ import annotations

import glob
import os
import re

import pandas as pd
import pyarrow.dataset as pads
import pytest

from additive import AdxError
from sweeps.engine import run_sweep, sweep_status
from sweeps.spec import parse_sweep_spec
from tests.conftest import TINY_FIXED, tiny_sweep_raw


def _spec(name: str, **top):
    return parse_sweep_spec(tiny_sweep_raw(name, **top), f"{name}.yaml")


def test_tiny_sweep_lands_as_parquet(ray_local, tmp_path):
    spec = _spec("e2e", seeds=2)
    summary = run_sweep(spec, str(tmp_path), out=None)
    assert summary.complete and summary.counts == {"ok": 4}
    trials_dir = tmp_path / "e2e" / "trials"
    # pandas, pyarrow and DuckDB read the results with no project code.
    df = pd.read_parquet(trials_dir)
    assert sorted(df["trial_id"]) == ["c000-s0", "c000-s1", "c001-s0", "c001-s1"]
    assert set(df["status"]) == {"ok"}
    assert set(df["decoder"]) == {"additive", "monolithic"}
    for col in (
        "sweep",
        "cell",
        "seed",
        "dataset",
        "support",
        "dependence_mechanism",
        "dependence",
        "n_objects",
        "image_size",
        "lr",
        "batch_size",
        "steps",
        "val_loss",
        "rmse_id",
        "rmse_ood",
        "rmse_recombine",
        "lms_id",
        "lms_ood",
        "mcc_id",
        "steps_done",
        "train_seconds",
        "device",
        "git_commit",
        "versions",
        "started_at",
        "finished_at",
        "schema_version",
    ):
        assert col in df.columns, col
        assert df[col].notna().all(), col
    assert (df["lms_id"].between(0, 100)).all()
    assert pads.dataset(str(trials_dir)).to_table().num_rows == 4
    duckdb = pytest.importorskip("duckdb")
    n = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{trials_dir}/*.parquet')").fetchone()[0]
    assert n == 4
    curves = pd.read_parquet(tmp_path / "e2e" / "curves")
    assert sorted(curves.groupby("trial_id")["step"].apply(list).iloc[0]) == [10, 20]
    assert (tmp_path / "e2e" / "spec.yaml").exists()
    assert not glob.glob(str(tmp_path / "e2e" / "**" / ".*.tmp-*"), recursive=True)


def test_failed_and_diverged_trials_are_rows(ray_local, tmp_path):
    spec = _spec("faults", grid={"fault": ["none", "raise", "nan"]})
    summary = run_sweep(spec, str(tmp_path), out=None)
    assert summary.complete
    df = pd.read_parquet(tmp_path / "faults" / "trials").set_index("fault")
    assert df.loc["none", "status"] == "ok"
    assert df.loc["raise", "status"] == "failed"
    assert "injected fault" in df.loc["raise", "error"]
    assert df.loc["nan", "status"] == "diverged"
    assert "nan" in df.loc["nan", "error"]
    assert pd.isna(df.loc["raise", "lms_id"])


def test_crashed_worker_is_retried_then_recorded(ray_local, tmp_path):
    spec = _spec("crash", grid={"fault": ["crash"]}, retries=1)
    summary = run_sweep(spec, str(tmp_path), out=None)
    assert summary.counts == {"failed": 1}
    row = pd.read_parquet(tmp_path / "crash" / "trials").iloc[0]
    assert "crashed after 2 attempt(s)" in row["error"]


def test_same_name_is_refused_and_resume_skips_done(ray_local, tmp_path):
    spec = _spec("again")
    run_sweep(spec, str(tmp_path), out=None)
    with pytest.raises(AdxError, match="already exists.*adx sweep resume again"):
        run_sweep(spec, str(tmp_path), out=None)
    before = {p: os.path.getmtime(p) for p in glob.glob(str(tmp_path / "again" / "trials" / "*.parquet"))}
    summary = run_sweep(spec, str(tmp_path), resume=True, out=None)
    assert summary.complete
    after = {p: os.path.getmtime(p) for p in glob.glob(str(tmp_path / "again" / "trials" / "*.parquet"))}
    assert before == after  # nothing rerun
    status = sweep_status(str(tmp_path), "again")
    assert status["counts"] == {"ok": 2} and status["complete"]


def test_optuna_search_then_from_best(ray_local, tmp_path):
    optuna = pytest.importorskip("optuna")
    search = {
        "metric": "val_loss",
        "mode": "min",
        "n_trials": 3,
        "sampler": "random",
        "space": {"lr": {"loguniform": [1e-4, 1e-2]}},
    }
    spec = _spec("tune", grid={"decoder": ["additive"]}, search=search, seeds=[0])
    summary = run_sweep(spec, str(tmp_path), out=None)
    assert summary.counts == {"ok": 3}
    df = pd.read_parquet(tmp_path / "tune" / "trials")
    assert sorted(df["search_number"]) == [0, 1, 2]
    assert df["lr"].nunique() == 3
    study = optuna.load_study(study_name="tune/c000/s0", storage=f"sqlite:///{tmp_path}/tune/optuna.db")
    assert len([t for t in study.trials if t.state.name == "COMPLETE"]) == 3
    best_lr = df.sort_values("val_loss")["lr"].iloc[0]

    ablation = _spec("ablate", grid={"decoder": ["additive"]}, from_best="tune")
    run_sweep(ablation, str(tmp_path), out=None)
    rows = pd.read_parquet(tmp_path / "ablate" / "trials")
    assert rows["lr"].tolist() == [pytest.approx(best_lr)]


def test_from_best_without_earlier_sweep_is_an_error(ray_local, tmp_path):
    with pytest.raises(AdxError, match="from_best: no sweep 'nothing'"):
        run_sweep(_spec("fb", from_best="nothing"), str(tmp_path), out=None)


def test_gpu_request_beyond_the_cluster_is_refused(ray_local, tmp_path):
    with pytest.raises(AdxError, match=r"resources.gpu: must be <= the GPUs of the Ray cluster \(0\)"):
        run_sweep(_spec("gpu", resources={"gpu": 0.5}), str(tmp_path), out=None)


def test_weights_land_in_a_relative_storage_folder(ray_local, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_sweep(_spec("weights", grid={"decoder": ["additive"]}, save_weights=True), "results", out=None)
    saved = sorted(p.name for p in (tmp_path / "results" / "weights" / "weights").glob("*.pt"))
    assert saved == ["c000-s0.pt"]
    import torch

    state = torch.load(tmp_path / "results" / "weights" / "weights" / "c000-s0.pt", weights_only=True)
    assert set(state) == {"encoder", "decoder"}


def test_progress_eta_counts_partly_done_trials(monkeypatch):
    """Before any trial finishes, the ETA comes from the steps the running trials have done:
    4 trials, 2 running and each half done after 100 s -> 1 trial's work in 100 s, 3 to go."""
    import io

    from sweeps import engine
    from sweeps import progress as progress_module

    clock = [1000.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock[0])
    progress = engine.Progress("p", total=4, already=0, out=io.StringIO())
    assert "ETA ?" in progress.line()
    for tid in ("a", "b"):
        progress.trial_started(tid)
    clock[0] += 100.0
    progress.trial_progress("a", 0.5)
    progress.trial_progress("b", 0.5)
    assert progress.line().endswith("ETA 0:05:00")
    progress.trial_finished("a", "ok", 0.01)  # 1.5 trials' work in 100 s, 2.5 to go
    assert "ETA 0:02:46" in progress.line()
    assert "1/4 done" in progress.line() and "best val_loss 0.01000 (a)" in progress.line()


def test_a_launch_that_fails_before_its_first_trial_blocks_no_rerun(ray_local, tmp_path):
    too_big = _spec("cpus", resources={"cpu": 64})
    with pytest.raises(AdxError, match=r"resources.cpu: must be <= the CPUs of the Ray cluster"):
        run_sweep(too_big, str(tmp_path), out=None)
    assert not (tmp_path / "cpus" / "spec.yaml").exists()
    summary = run_sweep(_spec("cpus"), str(tmp_path), out=None)  # the corrected spec, no --overwrite
    assert summary.complete and summary.counts == {"ok": 2}


def test_rows_have_typed_columns(ray_local, tmp_path):
    from analysis.load import load_trials

    run_sweep(_spec("typed", grid={"variant": [{"name": "base"}]}), str(tmp_path), out=None)
    df = pd.read_parquet(tmp_path / "typed" / "trials")
    assert df["oos_count"].dtype == "int64" and df["recombine_count"].dtype == "int64"
    assert set(df["versions"].iloc[0]) == {"torch", "ray", "optuna", "numpy", "sklearn", "pyarrow"}
    assert list(df["variant"]) == ["base"]
    loaded = load_trials("typed", str(tmp_path))
    assert str(loaded["avoid_overlap"].dtype) == "boolean"
    assert loaded["realised_dependence"].notna().all()
    assert (loaded["oos_distance"] > 0).all()  # the L has an OOS set; its points lie off the data


def test_progress_counts_running_trials_from_tunes_states(tmp_path):
    """Running and pending come from Ray Tune's trial states at every step, whatever
    start callbacks were or were not seen (a restored or retried trial)."""
    import io
    from types import SimpleNamespace

    from sweeps import engine
    from sweeps.results import Storage, SweepFiles

    progress = engine.Progress("p", total=5, already=0, out=io.StringIO(), every=0.0)
    writer = engine.ResultWriter(SweepFiles(Storage(str(tmp_path)), "p"), progress, {})

    def trial(tid: str, status: str):
        return SimpleNamespace(config={"trial_id": tid}, status=status)

    writer.on_step_end(0, [trial("a", "RUNNING"), trial("b", "PENDING"), trial("c", "RUNNING")])
    assert "0/5 done (0 failed/diverged), 2 running, 3 pending" in progress.line()
    writer.on_step_end(1, [trial("a", "TERMINATED"), trial("b", "RUNNING"), trial("c", "PENDING")])
    assert "1 running" in progress.line()


def test_a_damaged_trial_file_is_named_counted_as_not_done_and_rerun(ray_local, tmp_path, capsys):
    from sweeps.cli import main

    run_sweep(_spec("damaged"), str(tmp_path), out=None)
    victim = tmp_path / "damaged" / "trials" / "c001-s0.parquet"
    victim.write_bytes(victim.read_bytes()[:40])
    assert main(["sweep", "status", "damaged", "--storage", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert f"Warning: damaged trial file {victim} (" in err
    assert "counted as not done; `adx sweep resume` reruns that trial" in err
    assert out.startswith("damaged: 1/2 trials (ok 1); incomplete")
    from sweeps.engine import load_stored_spec
    from sweeps.results import ResultsWarning, Storage

    with pytest.warns(ResultsWarning, match="damaged trial file .*c001-s0.parquet"):
        summary = run_sweep(load_stored_spec(Storage(str(tmp_path)), "damaged"), str(tmp_path), resume=True, out=None)
    assert summary.complete and summary.counts == {"ok": 2}
    df = pd.read_parquet(tmp_path / "damaged" / "trials")
    assert sorted(df["trial_id"]) == ["c000-s0", "c001-s0"] and set(df["status"]) == {"ok"}


def test_retrain_saves_the_weights_plots_use_and_the_stored_spec_pins_every_field(ray_local, tmp_path, capsys):
    import yaml

    from additive.spec import TrialSpec
    from analysis.plots import make_plots
    from sweeps.cli import main

    run_sweep(_spec("again"), str(tmp_path), out=None)
    stored = yaml.safe_load((tmp_path / "again" / "spec.yaml").read_text())
    fields = set(TrialSpec().to_dict()) - {"seed"}
    assert set(stored["fixed"]) == fields  # a resume under other defaults runs the same trials
    assert stored["fixed"]["code_batch_norm"] is False and stored["fixed"]["steps"] == 20

    assert main(["trial", "retrain", "again", "c000-s0", "--storage", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    row = pd.read_parquet(tmp_path / "again" / "trials" / "c000-s0.parquet").iloc[0]
    assert out.startswith(f"saved {tmp_path / 'again' / 'weights' / 'c000-s0.pt'}; lms_id {row['lms_id']:.3f} (row: ")
    paths = make_plots(["again"], str(tmp_path), "traversal", str(tmp_path / "plots"), trial="c000-s0")
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert main(["trial", "retrain", "again", "c999-s0", "--storage", str(tmp_path)]) == 1
    assert "Error: trial 'c999-s0': no row in sweep 'again'" in capsys.readouterr().err


def test_restart_groups_write_one_row_per_member(ray_local, tmp_path):
    spec = _spec("groups", seeds=2, restarts={"k": 3, "select_at": 10}, save_weights=True)
    assert spec.n_planned == 12
    summary = run_sweep(spec, str(tmp_path), out=None)
    assert summary.complete and summary.counts == {"ok": 4, "stopped": 8}
    df = pd.read_parquet(tmp_path / "groups" / "trials")
    assert len(df) == 12 and len(glob.glob(str(tmp_path / "groups" / "trials" / "*.parquet"))) == 4
    for gid, g in df.groupby("restart_group"):
        assert sorted(g["trial_id"]) == [f"{gid}-r{r}" for r in range(3)]
        assert sorted(g["restart"]) == [0, 1, 2] and set(g["restarts"]) == {3} and set(g["select_at"]) == {10}
        chosen = g[g["selected"]]
        assert len(chosen) == 1 and chosen["status"].item() == "ok" and chosen["steps_done"].item() == 20
        stopped = g[~g["selected"]]
        assert set(stopped["status"]) == {"stopped"} and set(stopped["steps_done"]) == {10}
        assert stopped["lms_id"].isna().all() and stopped["val_loss"].notna().all()
        # the kept member had the lowest validation loss at the selection step
        curves = pd.read_parquet(tmp_path / "groups" / "curves" / f"{gid}.parquet")
        at = curves[curves["step"] <= 10].groupby("trial_id")["val_loss"].min()
        assert chosen["trial_id"].item() == at.idxmin()
        assert os.path.exists(tmp_path / "groups" / "weights" / f"{chosen['trial_id'].item()}.pt")
    status = sweep_status(str(tmp_path), "groups")
    assert status["complete"] and all(c["planned"] == 6 for c in status["cells"].values())


def test_progress_prints_at_most_a_line_a_second_as_trials_finish(monkeypatch):
    import io

    from sweeps import engine
    from sweeps import progress as progress_module

    clock = [1000.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock[0])
    out = io.StringIO()
    progress = engine.Progress("p", total=500, already=0, out=out)
    for i in range(300):  # 300 trials finish within 0.3 s
        progress.trial_finished(f"t{i}", "ok", 0.1)
        clock[0] += 0.001
    assert len(out.getvalue().splitlines()) == 1
    clock[0] += 1.0
    progress.trial_finished("last", "ok", 0.1)
    assert out.getvalue().splitlines()[-1].startswith("[p] 301/500 done")


def test_a_sweep_larger_than_one_tuner_runs_in_several(ray_local, tmp_path, monkeypatch):
    from sweeps import engine

    monkeypatch.setattr(engine, "TRIALS_PER_TUNER", 3)
    spec = _spec("chunks", seeds=4, restarts={"k": 2})  # 8 groups of 2 members: three Tuners
    summary = run_sweep(spec, str(tmp_path), out=None)
    assert summary.complete and summary.counts == {"ok": 16}
    df = pd.read_parquet(tmp_path / "chunks" / "trials")
    assert len(df) == 16 and df["trial_id"].is_unique
    assert len(list((tmp_path / "chunks" / "_ray").iterdir())) == 3


def test_a_sweep_asking_for_bf16_on_a_cpu_without_it_says_so(ray_local, tmp_path, monkeypatch):
    import io

    import additive.train as train

    monkeypatch.setattr(train, "bf16_available", lambda device: False)
    out = io.StringIO()
    summary = run_sweep(_spec("nobf16", fixed={**TINY_FIXED, "amp": True}), str(tmp_path), out=out)
    assert summary.complete
    assert "amp: this CPU has no bf16 hardware (AVX512-BF16 or AMX); the trials train in fp32" in out.getvalue()


def test_rung_groups_write_where_each_member_stopped_and_status_reports_the_cost(ray_local, tmp_path, capsys):
    import io

    from sweeps.cli import main

    raw = tiny_sweep_raw("rungs", grid={"decoder": ["additive"]}, seeds=2, restarts={"k": 4, "rungs": [10, 20]})
    raw["fixed"].update(steps=40)
    out = io.StringIO()
    summary = run_sweep(parse_sweep_spec(raw, "rungs.yaml"), str(tmp_path), out=out, progress_every=0.0)
    assert summary.complete and summary.counts == {"ok": 2, "stopped": 6}
    assert "2 restart groups of 4 members (raced at rungs 10, 20)" in out.getvalue()
    assert re.search(
        r"\[rungs\] 0/2 groups done \(0 member rows, 0 failed/diverged\), [12] running \([12] members training, \d+ waiting\)",
        out.getvalue(),
    )
    assert "[rungs] 2/2 groups done (8 member rows, 0 failed/diverged), 0 running" in out.getvalue()
    df = pd.read_parquet(tmp_path / "rungs" / "trials")
    assert set(df["rungs"]) == {"10,20"} and df["select_at"].isna().all()
    for _, g in df.groupby("restart_group"):
        assert sorted(g["steps_done"]) == [10, 10, 20, 40]
        assert sorted(g["stopped_at_rung"].dropna().astype(int)) == [1, 1, 2]
        assert g.loc[g["selected"], "stopped_at_rung"].isna().all()
    assert main(["sweep", "status", "rungs", "--storage", str(tmp_path)]) == 0
    assert (
        "restart groups: 2/2 done, 4 members each, raced at rungs 10, 20; cost per group in full runs: "
        "2.00 planned, 2.00 as trained" in capsys.readouterr().out
    )


def test_asha_stops_trials_at_its_rungs_and_trials_that_train_their_budget_are_ok(ray_local, tmp_path):
    """ASHA through the engine: a trial whose last evaluation is at the budget (ASHA's max_t)
    ends `ok` with its final row; a trial cut at a rung is `stopped`, with the rung."""
    search = {
        "metric": "val_loss",
        "mode": "min",
        "n_trials": 6,
        "sampler": "random",
        "space": {"lr": {"loguniform": [1e-5, 3e-2]}},
    }
    raw = tiny_sweep_raw(
        "asha", grid={"decoder": ["additive"]}, search=search, seeds=[0],
        scheduler={"asha": {"grace_steps": 10, "reduction_factor": 2}}, max_concurrent=2, tensorboard=True,
    )  # fmt: skip
    raw["fixed"].update(steps=40, eval_every=10)
    summary = run_sweep(parse_sweep_spec(raw, "asha.yaml"), str(tmp_path), out=None)
    df = pd.read_parquet(tmp_path / "asha" / "trials")
    assert len(df) == 6 and summary.counts.get("ok", 0) >= 1
    ok, stopped = df[df["status"] == "ok"], df[df["status"] == "stopped"]
    assert set(df["status"]) <= {"ok", "stopped"}
    assert (ok["steps_done"] == 40).all() and ok["lms_id"].notna().all()
    assert (stopped["steps_done"] < 40).all(), "a trial that trained its whole budget must not be stopped"
    for _, row in stopped.iterrows():
        rungs = [int(s) for s in row["rungs"].split(",")]
        assert rungs == [10, 20]  # 10 x 2^i below the budget of 40
        assert rungs[int(row["stopped_at_rung"]) - 1] == row["steps_done"]
        assert row["error"].startswith(f"stopped early by the scheduler at rung {int(row['stopped_at_rung'])}")
    _what_the_dashboard_reads_matches_the_rows(tmp_path, df)
    _tensorboard_has_the_reported_metrics(tmp_path / "asha" / "_ray", len(df))
    from sweeps.cli import main

    assert (
        main(["results", "plot", "asha", "--kind", "search", "--storage", str(tmp_path), "--out", str(tmp_path)]) == 0
    )
    assert (tmp_path / "search.png").exists()


def _what_the_dashboard_reads_matches_the_rows(tmp_path, df):
    """optuna-dashboard reads the study through Optuna's storage API: the same trials,
    values and states as the rows."""
    import optuna

    study = optuna.load_study(study_name="asha/c000/s0", storage=f"sqlite:///{tmp_path}/asha/optuna.db")
    by_number = {t.number: t for t in study.trials}
    assert sorted(by_number) == sorted(df["search_number"].astype(int))
    for _, row in df.iterrows():
        trial = by_number[int(row["search_number"])]
        assert trial.user_attrs["trial_id"] == row["trial_id"]
        if row["status"] == "ok":
            assert trial.state.name == "COMPLETE" and trial.value == pytest.approx(row["val_loss"])
        else:
            assert trial.state.name == "PRUNED"
        assert trial.params["lr"] == pytest.approx(row["lr"])


def _tensorboard_has_the_reported_metrics(ray_dir, n_trials):
    """Ray Tune's TensorBoard logger wrote one event file per trial with the reported
    validation loss against the training step."""
    import struct

    from tensorboardX.proto import event_pb2

    files = sorted(ray_dir.rglob("events.out.tfevents.*"))
    assert len(files) == n_trials
    tags, steps = set(), set()
    for path in files:
        data = path.read_bytes()
        at = 0
        while at < len(data):  # TFRecord: length, its CRC, the record, its CRC
            (n,) = struct.unpack("<Q", data[at : at + 8])
            event = event_pb2.Event.FromString(data[at + 12 : at + 12 + n])
            at += 12 + n + 4
            for value in event.summary.value:
                tags.add(value.tag)
                if value.tag.endswith("/val_loss"):
                    steps.add(event.step)
    assert "ray/tune/val_loss" in tags and "ray/tune/best_val_loss" in tags
    assert {10, 20} <= steps  # the x axis is the training step


def test_amp_auto_is_decided_once_at_the_start_and_kept_on_resume(ray_local, tmp_path, monkeypatch):
    import io
    import json

    import additive.precision as precision
    from sweeps.catalog import load_stored_spec
    from sweeps.results import Storage

    calls = []

    def fake_choose(specs, threads=1, device="cpu"):
        calls.append(len(list(specs)))
        return precision.PrecisionChoice(False, 0.010, 0.020, 2, "test CPU [avx2]")

    monkeypatch.setattr(precision, "choose_amp", fake_choose)
    out = io.StringIO()
    spec = _spec("auto", fixed={**TINY_FIXED, "amp": "auto"}, seeds=2)
    summary = run_sweep(spec, str(tmp_path), out=out, num_cpus=None)
    assert summary.complete and calls == [2]
    assert (
        "amp: auto -> fp32 (a training step of each of 2 model(s), summed: fp32 10.0 ms, bf16 20.0 ms, 0.50x"
        in out.getvalue()
    )
    stored = load_stored_spec(Storage(str(tmp_path)), "auto")
    assert stored.fixed["amp"] is False  # pinned: a resume elsewhere keeps it
    assert json.loads((tmp_path / "auto" / "precision.json").read_text())["amp"] is False
    df = pd.read_parquet(tmp_path / "auto" / "trials")
    assert set(df["precision"]) == {"fp32"} and not df["amp"].any()
    assert df["hardware"].notna().all() and (df["hardware"] == precision.hardware("cpu")).all()
    # a resumed sweep reads the pinned spec and decides nothing again
    (tmp_path / "auto" / "trials" / "c001-s1.parquet").unlink()
    (tmp_path / "auto" / "_compacted" / "trials.parquet").unlink()
    run_sweep(stored, str(tmp_path), resume=True, out=None)
    assert calls == [2]
    # nor does a resume from the spec file that says auto (`adx sweep run SPEC --resume`)
    (tmp_path / "auto" / "trials" / "c001-s1.parquet").unlink()
    (tmp_path / "auto" / "_compacted" / "trials.parquet").unlink()
    out = io.StringIO()
    run_sweep(spec, str(tmp_path), resume=True, out=out)
    assert calls == [2] and "amp: auto -> fp32, as chosen when the sweep started" in out.getvalue()
    assert not pd.read_parquet(tmp_path / "auto" / "trials")["amp"].any()


def test_status_shows_the_groups_done_per_seed_and_the_pace(ray_local, tmp_path, capsys):
    from sweeps.cli import main

    run_sweep(_spec("perseed", seeds=3), str(tmp_path), out=None)
    (tmp_path / "perseed" / "trials" / "c001-s2.parquet").unlink()
    (tmp_path / "perseed" / "_compacted" / "trials.parquet").unlink()
    status = sweep_status(str(tmp_path), "perseed")
    assert status["seeds"] == {0: {"done": 2, "planned": 2}, 1: {"done": 2, "planned": 2}, 2: {"done": 1, "planned": 2}}
    pace = status["pace"]
    assert pace["units_done"] == 5 and pace["units_planned"] == 6 and pace["per_hour"] > 0
    assert pace["hours_left"] == pytest.approx(1 / pace["per_hour"])
    assert main(["sweep", "status", "perseed", "--storage", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "trials done per seed: 0: 2/2, 1: 2/2, 2: 1/2" in text
    assert re.search(r"pace: [\d.]+ trials/h over \d+ min of running \(1 stretch\(es\)\); about \d+ min left", text)
    # a grid sweep's fields are ranked too (here the one that varies: the decoder)
    assert main(["results", "importance", "perseed", "--metric", "val_loss", "--storage", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "decoder" in text and "1.0" in text and "fANOVA evaluator" in text
