"""Damaged, foreign and older results files; CLI errors without tracebacks."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from additive.errors import AdxError
from analysis.load import ResultsWarning, load_trials
from sweeps.cli import main


def _trials_dir(root, name="known"):
    return root / name / "trials"


def test_truncated_file_is_skipped_with_a_warning_naming_it(known):
    victim = sorted(_trials_dir(known).glob("*.parquet"))[0]
    victim.write_bytes(victim.read_bytes()[:50])
    with pytest.warns(ResultsWarning, match=victim.name):
        df = load_trials("known", str(known))
    assert len(df) == 12
    with pytest.raises(AdxError, match=victim.name):
        load_trials("known", str(known), strict=True)


def test_file_of_another_schema_is_skipped(known):
    pq.write_table(pa.table({"x": [1, 2]}), _trials_dir(known) / "foreign.parquet")
    with pytest.warns(ResultsWarning, match="foreign.parquet.*not a results file"):
        df = load_trials("known", str(known))
    assert len(df) == 13


def test_older_schema_version_is_read_with_new_columns_empty(known):
    old = pa.table(
        {
            "schema_version": [0],
            "sweep": ["known"],
            "trial_id": ["old"],
            "status": ["ok"],
            "decoder": ["additive"],
            "lms_id": [50.0],
        }
    )
    pq.write_table(old, _trials_dir(known) / "old.parquet")
    df = load_trials("known", str(known))
    row = df[df["trial_id"] == "old"].iloc[0]
    assert row["lms_id"] == 50.0 and row["rmse_ood"] != row["rmse_ood"]  # NaN


def test_hidden_and_temporary_files_are_ignored(known):
    (_trials_dir(known) / ".c9.parquet.tmp-1234").write_bytes(b"partial")
    assert len(load_trials("known", str(known))) == 13


def test_empty_sweep_folder(tmp_path):
    (tmp_path / "empty" / "trials").mkdir(parents=True)
    assert load_trials("empty", str(tmp_path)).empty


@pytest.mark.parametrize(
    "argv,message",
    [
        (["results", "table", "nope"], "Error: no sweep named 'nope' in"),
        (["results", "query", "known", "--where", "decoder ==="], "Error: --where: cannot evaluate 'decoder ==='"),
        (["results", "query", "known", "--columns", "lms_id,bogus"], "Error: --columns: must name result columns"),
        (["results", "sql", "SELEKT * FROM trials", "known"], "Error: SQL: "),
        (["results", "table", "known", "--format", "html"], "Error: --format: must be one of"),
        (["results", "plot", "known", "--kind", "pie"], "Error: --kind: must be one of"),
        (["sweep", "status", "nope"], "Error: no sweep named 'nope' in"),
        (["sweep", "resume", "nope"], "Error: no sweep named 'nope' in"),
    ],
)
def test_cli_errors_are_one_line(known, capsys, argv, message):
    assert main([*argv, "--storage", str(known)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(message), err
    assert "Traceback" not in err


def test_cli_query_sql_and_table(known, capsys):
    assert (
        main(
            [
                "results",
                "query",
                "known",
                "--storage",
                str(known),
                "--where",
                "lms_id > 95",
                "--columns",
                "trial_id,lms_id",
                "--format",
                "csv",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "trial_id,lms_id" and len(lines) == 4
    assert (
        main(
            [
                "results",
                "sql",
                "SELECT decoder, count(*) AS n FROM trials GROUP BY decoder ORDER BY decoder",
                "known",
                "--storage",
                str(known),
                "--format",
                "csv",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip().splitlines()[1:] == ["additive,6", "monolithic,7"]
    assert main(["results", "table", "known", "--storage", str(known)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dependence=0.0\n") and "\ndependence=0.5\n" in out
    lms = [line.split() for line in out.splitlines() if line.startswith("LMS ID")]
    assert lms[0] == ["LMS", "ID", "99.0", "±", "0.6", "70.0", "±", "5.8"]


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_terminal_output_fits_the_terminal(known, capsys, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    for argv in (["results", "table", "known"], ["results", "query", "known"]):
        assert main([*argv, "--storage", str(known)]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines and max(map(len, lines)) <= columns, max(lines, key=len)


def test_query_shows_every_column_on_request(known, capsys):
    assert main(["results", "query", "known", "--storage", str(known)]) == 0
    head = capsys.readouterr().out.splitlines()[0].split()
    assert head == [
        "trial_id",
        "decoder",
        "seed",
        "status",
        "dependence",
        "lms_id",
        "rmse_id",
        "rmse_ood",
        "rmse_recombine",
        "val_loss",
        "error",  # one row failed: its error's first line is shown
    ]
    assert main(["results", "query", "known", "--storage", str(known), "--columns", "all", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split(",") == list(load_trials("known", str(known)).columns)


def test_storage_that_is_not_there(capsys, tmp_path):
    assert main(["results", "table", "x", "--storage", str(tmp_path / "missing")]) == 1
    assert "no sweep named 'x'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "where,message",
    [
        ("@pd.io.common.os.system('touch {marker}') == 0", "Error: --where: cannot evaluate"),
        (
            "__import__('os').system('touch {marker}') == 0",
            "Error: --where: must be a filter of column names, constants, comparisons and and/or/not, "
            "but got a function call in",
        ),
        (
            "lms_id.__class__ == 1",
            "Error: --where: must be a filter of column names, constants, comparisons and "
            "and/or/not, but got an attribute in",
        ),
        (
            "trial_id[0] == 'c'",
            "Error: --where: must be a filter of column names, constants, comparisons and "
            "and/or/not, but got a subscript in",
        ),
        ("bogus > 1", "Error: --where: must name result columns, but got unknown column 'bogus'"),
    ],
)
def test_where_runs_no_code(known, capsys, tmp_path, where, message):
    marker = tmp_path / "marker"
    assert main(["results", "query", "known", "--storage", str(known), "--where", where.format(marker=marker)]) == 1
    assert capsys.readouterr().err.startswith(message)
    assert not marker.exists()


def test_where_filters_like_a_query(known):
    df = load_trials("known", str(known))
    got = load_trials("known", str(known), where="decoder in ['additive'] and not (dependence > 0) or status != 'ok'")
    expected = df[((df["decoder"] == "additive") & ~(df["dependence"] > 0)) | (df["status"] != "ok")]
    assert sorted(got["trial_id"]) == sorted(expected["trial_id"])
    assert len(load_trials("known", str(known), where="error is not None")) == 1
    assert len(load_trials("known", str(known), where="lms_id - 10 * dependence >= 98 - 5")) == len(
        df[df["lms_id"] - 10 * df["dependence"] >= 93]
    )


@pytest.mark.parametrize(
    "statement",
    [
        "COPY trials TO '{out}'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SET enable_external_access = true",
        "ATTACH '{out}' AS other",
    ],
)
def test_sql_reaches_no_file(known, capsys, tmp_path, statement):
    out = tmp_path / "leak.csv"
    assert main(["results", "sql", statement.format(out=out), "known", "--storage", str(known)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: SQL: "), err
    assert not out.exists()


def test_older_files_with_versions_as_json_still_read(tmp_path):
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from sweeps.results import TRIAL_SCHEMA, rows_table
    from tests.analysis.conftest import make_row, write_rows

    write_rows(tmp_path, "old", [])
    table = rows_table([make_row("old", "c000-s0", "additive", 0, lms_id=99.5).to_record()], TRIAL_SCHEMA)
    index = table.schema.get_field_index("versions")
    old = table.set_column(index, "versions", pa.array([json.dumps({"torch": "2.1.0", "ray": "2.9.0"})]))
    old = old.set_column(old.schema.get_field_index("oos_count"), "oos_count", pa.array([2000.0]))
    (tmp_path / "old" / "trials").mkdir(parents=True, exist_ok=True)
    pq.write_table(old, tmp_path / "old" / "trials" / "c000-s0.parquet")
    df = load_trials("old", str(tmp_path), strict=True)
    assert df.loc[0, "versions"]["torch"] == "2.1.0" and df.loc[0, "versions"]["numpy"] is None
    assert df.loc[0, "oos_count"] == 2000 and df["oos_count"].dtype == "int64"
