"""Published results: what `adx sweep publish` copies, that a copy resumes where it stopped,
and the repository's published folder within its budget."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from sweeps.engine import run_sweep, sweep_status
from sweeps.publish import BUDGET_BYTES, PUBLISHED, PUBLISHED_FILES, publish, published_bytes
from sweeps.spec import parse_sweep_spec
from tests.conftest import tiny_sweep_raw

ROOT = Path(__file__).resolve().parents[2]


def test_published_folder_holds_only_rows_curves_and_specs_within_its_budget():
    folder = ROOT / PUBLISHED
    if not folder.exists():
        pytest.skip("nothing published yet")
    assert published_bytes(str(folder)) <= BUDGET_BYTES, f"{PUBLISHED} is over its budget of {BUDGET_BYTES} bytes"
    for sweep in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = {str(p.relative_to(sweep)) for p in sweep.rglob("*") if p.is_file()}
        assert files <= set(PUBLISHED_FILES), f"{sweep.name}: {sorted(files - set(PUBLISHED_FILES))}"
        assert {"spec.yaml", "_compacted/trials.parquet"} <= files, sweep.name
        rows = pd.read_parquet(sweep / "_compacted" / "trials.parquet")  # pandas alone reads them
        assert len(rows) and set(rows["sweep"]) == {sweep.name}


def test_publish_copies_rows_and_curves_and_a_copy_resumes_running_only_what_is_missing(ray_local, tmp_path, capsys):
    from sweeps.cli import main

    work, published, again = tmp_path / "work", tmp_path / "published", tmp_path / "again"
    spec = parse_sweep_spec(tiny_sweep_raw("pub", seeds=2), "pub.yaml")
    run_sweep(spec, str(work), out=None)
    for kind in ("trials", "curves"):  # as if the sweep had stopped before its last trial
        (work / "pub" / kind / "c001-s1.parquet").unlink()
        (work / "pub" / "_compacted" / f"{kind}.parquet").unlink()
    assert main(["sweep", "publish", "pub", "--storage", str(work), "--to", str(published)]) == 0
    assert "pub: 3 rows and " in capsys.readouterr().out
    files = {str(p.relative_to(published / "pub")) for p in (published / "pub").rglob("*") if p.is_file()}
    assert files == {"spec.yaml", "_compacted/trials.parquet", "_compacted/curves.parquet"}
    assert len(pd.read_parquet(published / "pub" / "_compacted" / "curves.parquet")) == 3 * 2  # 2 evaluations each
    assert main(["results", "table", "pub", "--storage", str(published), "--format", "csv"]) == 0
    # a new machine: copy the published sweep into a working root and resume it there
    shutil.copytree(published, again)
    summary = run_sweep(spec, str(again), resume=True, out=None)
    rows = pd.read_parquet(again / "pub" / "_compacted" / "trials.parquet")
    assert summary.complete and len(rows) == 4 and rows["trial_id"].is_unique
    assert len(pd.read_parquet(again / "pub" / "_compacted" / "curves.parquet")) == 4 * 2
    assert sorted(os.listdir(again / "pub" / "trials")) == ["c001-s1.parquet"]  # only the missing one ran
    assert sweep_status(str(again), "pub")["counts"] == {"ok": 4}


def test_publish_refuses_an_unknown_sweep_and_its_own_storage(tmp_path):
    from additive.errors import AdxError

    with pytest.raises(AdxError, match="no sweep named 'nope'"):
        publish("nope", str(tmp_path), str(tmp_path / "out"))
