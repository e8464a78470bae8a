"""The compacted results file: every reader counts each row once, whatever state a
compaction was interrupted in, and files written after it are still read."""

from __future__ import annotations

import pytest

from analysis.load import load_curves, load_trials
from sweeps.results import Storage, SweepFiles
from tests.analysis.conftest import make_row, write_rows


def _rows(sweep: str, seeds: range):
    return [make_row(sweep, f"c000-s{s}", "additive", s, lms_id=float(s), val_loss=0.01) for s in seeds]


def _counts(root, name: str = "cmp") -> tuple[int, int, int, int]:
    files = SweepFiles(Storage(str(root)), name)
    return (
        len(files.read_trials()),
        sum(files.done_counts().values()),
        len(load_trials(name, str(root))),
        len(load_curves(name, str(root))),
    )


def test_compaction_keeps_every_row_once_and_later_files_are_read(tmp_path):
    files = write_rows(tmp_path, "cmp", _rows("cmp", range(6)))
    assert _counts(tmp_path) == (6, 6, 6, 12)  # two curve points per trial
    assert files.compact() == 6
    assert (tmp_path / "cmp" / "_compacted" / "trials.parquet").exists()
    assert _counts(tmp_path) == (6, 6, 6, 12)
    assert files.compact() == 0  # nothing new
    write_rows(tmp_path, "cmp", _rows("cmp", range(6, 9)))  # a resumed sweep adds rows
    assert _counts(tmp_path) == (9, 9, 9, 18)
    assert files.compact() == 3
    assert _counts(tmp_path) == (9, 9, 9, 18)
    assert sorted(load_trials("cmp", str(tmp_path))["lms_id"]) == [float(s) for s in range(9)]
    # pandas and DuckDB reading the folder see the per-trial files only, never the compacted copy
    import pandas as pd

    assert len(pd.read_parquet(tmp_path / "cmp" / "trials")) == 9
    duckdb = pytest.importorskip("duckdb")
    glob = f"{tmp_path}/cmp/trials/*.parquet"
    assert duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchone()[0] == 9


def test_an_interrupted_compaction_changes_nothing(tmp_path, monkeypatch):
    files = write_rows(tmp_path, "cmp", _rows("cmp", range(4)))
    files.compact()
    write_rows(tmp_path, "cmp", _rows("cmp", range(4, 6)))

    def killed(self, path, data):  # the process dies halfway through writing the temporary file
        folder, base = path.rsplit("/", 1)
        with open(f"{folder}/.{base}.tmp-dead", "wb") as f:
            f.write(data[: len(data) // 2])
        raise RuntimeError("killed mid-compaction")

    monkeypatch.setattr(Storage, "write_bytes", killed)
    with pytest.raises(RuntimeError, match="killed"):
        files.compact()
    monkeypatch.undo()
    assert list((tmp_path / "cmp" / "_compacted").glob(".*.tmp-*"))  # the partial file is left, hidden
    assert _counts(tmp_path) == (6, 6, 6, 12)  # the old compacted file and the two new files
    assert files.compact() == 2 and _counts(tmp_path) == (6, 6, 6, 12)


def test_a_damaged_compacted_file_is_ignored_not_trusted(tmp_path):
    files = write_rows(tmp_path, "cmp", _rows("cmp", range(5)))
    files.compact()
    path = tmp_path / "cmp" / "_compacted" / "trials.parquet"
    path.write_bytes(path.read_bytes()[:100])
    assert _counts(tmp_path) == (5, 5, 5, 10)


def test_rows_of_a_file_removed_after_compaction_are_counted_once(tmp_path):
    files = write_rows(tmp_path, "cmp", _rows("cmp", range(3)))
    files.compact()
    (tmp_path / "cmp" / "trials" / "c000-s1.parquet").unlink()
    assert _counts(tmp_path) == (3, 3, 3, 6)


def test_a_file_rewritten_after_compaction_is_read_again_not_twice(tmp_path):
    files = write_rows(tmp_path, "cmp", _rows("cmp", range(3)))
    files.compact()
    victim = tmp_path / "cmp" / "trials" / "c000-s1.parquet"
    victim.write_bytes(victim.read_bytes()[:40])  # damaged after the compaction
    with pytest.warns(UserWarning, match="c000-s1"):
        assert sum(files.done_counts().values()) == 2  # named, counted as not done: a resume reruns it
    write_rows(tmp_path, "cmp", [make_row("cmp", "c000-s1", "additive", 1, lms_id=77.0, val_loss=0.01)])
    assert _counts(tmp_path) == (3, 3, 3, 6)
    assert sorted(load_trials("cmp", str(tmp_path))["lms_id"]) == [0.0, 2.0, 77.0]  # the new row, not the old


def test_a_damaged_trial_file_stays_out_of_the_compaction(tmp_path):
    files = write_rows(tmp_path, "cmp", _rows("cmp", range(3)))
    bad = tmp_path / "cmp" / "trials" / "c000-s9.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.warns(UserWarning, match="c000-s9"):
        assert files.compact() == 3
    with pytest.warns(UserWarning, match="c000-s9"):
        assert sum(files.done_counts().values()) == 3  # still named as damaged, so a resume reruns it
    write_rows(tmp_path, "cmp", _rows("cmp", range(9, 10)))  # the rerun replaces it
    assert _counts(tmp_path) == (4, 4, 4, 8)


def test_a_compaction_in_several_scans_equals_one_scan(tmp_path, monkeypatch):
    """Thousands of files are scanned SCAN_FILES at a time (bounded memory); the compacted
    rows, their order and the manifest are those of one scan."""
    import json

    import pyarrow.parquet as pq

    import sweeps.compaction as compaction

    for name in ("one", "parts"):
        write_rows(tmp_path, name, _rows(name, range(7)))
    SweepFiles(Storage(str(tmp_path)), "one").compact()
    monkeypatch.setattr(compaction, "SCAN_FILES", 2)  # 7 files: four scans
    assert SweepFiles(Storage(str(tmp_path)), "parts").compact() == 7
    one = pq.read_table(tmp_path / "one" / "_compacted" / "trials.parquet")
    parts = pq.read_table(tmp_path / "parts" / "_compacted" / "trials.parquet")
    assert parts.column("trial_id").to_pylist() == one.column("trial_id").to_pylist()
    assert parts.column("lms_id").to_pylist() == one.column("lms_id").to_pylist()

    def listed(table):  # (file, rows) in the manifest's order; the stamps differ by file
        return [(name, rows) for name, rows, _ in json.loads(table.schema.metadata[compaction.MANIFEST_KEY])]

    assert listed(parts) == listed(one) and len(listed(one)) == 7
    assert _counts(tmp_path, "parts") == (7, 7, 7, 14)
