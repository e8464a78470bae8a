"""Load results: the trials and curves tables of one or more sweeps, from Parquet only.

Never reads Ray state, checkpoints or pickles, so results copied from a cluster to a
laptop can be analysed with nothing but the Parquet files. A damaged file is named in a
warning and skipped (``strict=True`` makes it an error); files of an older schema version
are read with the newer columns left empty.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from additive.errors import AdxError
from sweeps.compaction import read_folder
from sweeps.results import (
    CURVE_SCHEMA,
    SCHEMA_VERSION,
    TRIAL_SCHEMA,
    ResultsWarning,
    Storage,
    SweepFiles,
    conform_table,
)

REQUIRED = ("sweep", "trial_id", "status")


def _names(names: str | list[str]) -> list[str]:
    return [names] if isinstance(names, str) else list(names)


def _read_folder(store: Storage, folder: str, compacted: str, schema: pa.Schema, strict: bool) -> pa.Table:
    contents = read_folder(store, folder, compacted)
    parts = [] if contents.compacted is None else [conform_table(contents.compacted, schema)]
    paths = contents.unlisted
    if paths:
        parts.append(_read_files(store, paths, schema, strict))
    parts = [p for p in parts if p is not None and p.num_rows]
    return pa.concat_tables(parts) if parts else schema.empty_table()


def _read_files(store: Storage, paths: list[str], schema: pa.Schema, strict: bool) -> pa.Table:
    required = [c for c in REQUIRED if c in schema.names]
    try:  # fast path: one dataset scan over every file
        table = pads.dataset(paths, schema=schema, format="parquet", filesystem=store.fs).to_table()
        if not any(table[c].null_count for c in required):  # else a foreign file is among them
            return table
    except (pa.ArrowException, OSError, ValueError):
        pass
    tables = []
    for path in paths:  # slow path: find the bad files and say which
        try:
            with store.fs.open_input_file(path) as f:
                table = pq.read_table(f)
        except (pa.ArrowException, OSError, ValueError) as exc:
            _skip(path, f"cannot be read as Parquet ({str(exc).splitlines()[0]})", strict)
            continue
        missing = [c for c in required if c not in table.column_names or table[c].null_count]
        if missing:
            _skip(path, f"is not a results file of this project (no column {', '.join(missing)})", strict)
            continue
        try:
            tables.append(conform_table(table, schema))
        except ValueError as exc:
            _skip(path, str(exc), strict)
    return pa.concat_tables(tables) if tables else schema.empty_table()


def _skip(path: str, why: str, strict: bool) -> None:
    if strict:
        raise AdxError(f"{path} {why}")
    warnings.warn(f"skipped {path}: it {why}", ResultsWarning, stacklevel=3)


def _check_sweeps(store: Storage, names: list[str]) -> None:
    for name in names:
        files = SweepFiles(store, name)
        if not store.is_dir(files.dir):
            known = store.list_dirs(store.root)
            hint = f" (sweeps there: {', '.join(known)})" if known else " (no sweeps there)"
            raise AdxError(f"no sweep named {name!r} in {store.uri}{hint}")


def load_trials(
    names: str | list[str], storage: str = "results", where: str | None = None, strict: bool = False
) -> pd.DataFrame:
    """One row per trial of the named sweeps (columns: ``sweeps.results.TRIAL_SCHEMA``).

    ``where`` is a filter, e.g. ``"decoder == 'additive' and status == 'ok'"`` (column
    names, constants, comparisons, arithmetic and and/or/not; see ``analysis.where``)."""
    store = Storage(storage)
    names = _names(names)
    _check_sweeps(store, names)
    sweeps = [SweepFiles(store, n) for n in names]
    parts = [_read_folder(store, f.trials_dir, f.compacted_trials, TRIAL_SCHEMA, strict) for f in sweeps]
    table = pa.concat_tables(parts) if parts else TRIAL_SCHEMA.empty_table()
    # Booleans stay booleans when some are null (pandas would make them objects).
    df = table.to_pandas(types_mapper={pa.bool_(): pd.BooleanDtype()}.get)
    newer = df["schema_version"].dropna()
    if len(newer) and newer.max() > SCHEMA_VERSION:
        warnings.warn(
            f"results written with schema version {int(newer.max())}, newer than this tool's {SCHEMA_VERSION}: "
            "unknown columns are ignored",
            ResultsWarning,
            stacklevel=2,
        )
    return query(df, where)


def load_curves(names: str | list[str], storage: str = "results", strict: bool = False) -> pd.DataFrame:
    """Learning curves: one row per (trial, evaluation step)."""
    store = Storage(storage)
    names = _names(names)
    _check_sweeps(store, names)
    sweeps = [SweepFiles(store, n) for n in names]
    parts = [_read_folder(store, f.curves_dir, f.compacted_curves, CURVE_SCHEMA, strict) for f in sweeps]
    return pa.concat_tables(parts).to_pandas()


def default_columns(df: pd.DataFrame) -> list[str]:
    """What ``adx results query`` shows without --columns: the trial's identity, the
    conditions that vary among the rows, the headline metrics and, when a row failed or
    diverged, its error."""
    from analysis.columns import CONDITION

    ident = (
        ["sweep", "trial_id", "decoder", "seed", "status"]
        if df["sweep"].nunique() > 1
        else ["trial_id", "decoder", "seed", "status"]
    )
    varying = [c for c in CONDITION if c in df and df[c].nunique(dropna=False) > 1]
    metrics = ["lms_id", "rmse_id", "rmse_ood", "rmse_recombine", "val_loss"]
    failed = "error" in df and df["status"].isin(["failed", "diverged"]).any()
    return list(dict.fromkeys(ident + varying + metrics + (["error"] if failed else [])))


def query(df: pd.DataFrame, where: str | None) -> pd.DataFrame:
    """The rows where the filter ``where`` holds (see ``analysis.where``: data, not code)."""
    from analysis.where import filter_rows

    try:
        return filter_rows(df, where)
    except AdxError:
        raise
    except Exception as exc:
        raise AdxError(f"--where: cannot evaluate {where!r}: {type(exc).__name__}: {exc}") from None


def sql(statement: str, names: str | list[str], storage: str = "results", strict: bool = False) -> pd.DataFrame:
    """Run SQL (DuckDB) over the tables ``trials`` and ``curves`` of the named sweeps."""
    try:
        import duckdb
    except ImportError:
        raise AdxError("SQL needs DuckDB: pip install 'additive-decoders[sql]'") from None
    trials = load_trials(names, storage, strict=strict)  # noqa: F841 - read by DuckDB by name
    curves = load_curves(names, storage, strict=strict)  # noqa: F841
    con = duckdb.connect()
    try:
        con.register("trials", trials)
        con.register("curves", curves)
        # The statement sees the two tables and nothing else: no file read or written, no
        # extension loaded, and the settings locked so the statement cannot undo this.
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        return con.execute(statement).df()
    except duckdb.Error as exc:
        raise AdxError(f"SQL: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
