"""Every shipped preset dry-runs through the engine: one tiny CPU trial per distinct model
configuration (``sweeps.dryrun``), and every row ok. A new spec file in sweeps/specs/ is
covered without editing this test (in the slow run, which CI runs)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sweeps.dryrun import DRY_KEY_FIELDS, DRY_STEPS, dry_run_spec
from sweeps.engine import run_sweep
from sweeps.spec import load_sweep_spec

SPECS = sorted((Path(__file__).resolve().parents[2] / "sweeps" / "specs").glob("*.yaml"))
BY_NAME = {load_sweep_spec(p).name: p for p in SPECS}


@pytest.fixture(scope="module")
def storage(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("presets")


def _dry_run(path: Path, storage: Path):
    spec = load_sweep_spec(path)
    if spec.from_best is not None and not (storage / (spec.from_best.sweep + "-dry")).exists():
        _dry_run(BY_NAME[spec.from_best.sweep], storage)  # the source of its best fields first
    dry = dry_run_spec(spec)
    summary = run_sweep(dry, str(storage), out=None, overwrite=True)
    return spec, dry, summary


# The default run dry-runs the paper presets (the ResNet-18 encoder, BatchNorm) and one preset
# of restarts and of search; `make test-slow` (in CI) every other spec file.
DEFAULT = ("paper", "mini", "tune")
CASES = [pytest.param(p, marks=() if p.stem in DEFAULT else pytest.mark.slow, id=p.stem) for p in SPECS]


@pytest.mark.parametrize("path", CASES)
def test_every_preset_dry_runs_with_ok_rows(ray_local, storage, path):
    spec, dry, summary = _dry_run(path, storage)
    assert summary.complete, summary
    df = pd.read_parquet(storage / dry.name / "trials")
    bad = df[~df["status"].isin(["ok", "stopped"])]
    assert bad.empty, bad[["trial_id", "status", "error"]].to_string()
    kept = df[df["status"] == "ok"]
    assert (kept["steps_done"] == dry.fixed["steps"]).all() and kept["lms_id"].notna().all()
    assert dry.fixed["steps"] >= DRY_STEPS
    # every model configuration of the preset was built and trained once
    models = {tuple(getattr(spec.trial_spec(c, spec.seeds[0]), f) for f in DRY_KEY_FIELDS) for c in spec.cells()}
    assert len(dry.cells()) == len(models)
    trained = {tuple(None if pd.isna(row[f]) else row[f] for f in DRY_KEY_FIELDS) for _, row in kept.iterrows()}
    if spec.search is None and spec.from_best is None:  # a searched field (width) may move a model
        assert trained == models


def test_the_paper_presets_train_the_papers_resnet18_with_batchnorm():
    for name in ("paper", "paper-block"):
        dry = dry_run_spec(load_sweep_spec(BY_NAME[name]))
        trial = dry.trial_spec(dry.cells()[0], dry.seeds[0])
        assert (trial.encoder, trial.encoder_batch_norm, trial.code_batch_norm, trial.batch_norm) == (
            "resnet18",
            True,
            True,
            True,
        )
