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
from sweeps.results import (
    CURVE_SCHEMA,
    SCHEMA_VERSION,
    TRIAL_SCHEMA,
    ResultsWarning,
    Storage,
    SweepFiles,
    versions_from_json,
)

REQUIRED = ("sweep", "trial_id", "status")


def _names(names: str | list[str]) -> list[str]:
    return [names] if isinstance(names, str) else list(names)


def _read_folder(store: Storage, folder: str, schema: pa.Schema, strict: bool) -> pa.Table:
    paths = store.list(folder, ".parquet")
    if not paths:
        return schema.empty_table()
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
        tables.append(_conform(table, schema, path, strict))
    tables = [t for t in tables if t is not None]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def _conform(table: pa.Table, schema: pa.Schema, path: str, strict: bool) -> pa.Table | None:
    """Cast to the current schema: missing (newer) columns become nulls."""
    cols = []
    for field in schema:
        if field.name in table.column_names:
            try:
                column = table[field.name]
                if field.name == "versions" and pa.types.is_string(column.type):
                    cols.append(versions_from_json(column))
                    continue
                cols.append(column.cast(field.type))
            except (pa.ArrowException, ValueError, TypeError) as exc:
                _skip(path, f"column {field.name!r} has an unexpected type ({exc})", strict)
                return None
        else:
            cols.append(pa.nulls(len(table), field.type))
    return pa.Table.from_arrays(cols, schema=schema)


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
    parts = [_read_folder(store, SweepFiles(store, n).trials_dir, TRIAL_SCHEMA, strict) for n in names]
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
    parts = [_read_folder(store, SweepFiles(store, n).curves_dir, CURVE_SCHEMA, strict) for n in names]
    return pa.concat_tables(parts).to_pandas()


def default_columns(df: pd.DataFrame) -> list[str]:
    """What ``adx results query`` shows without --columns: the trial's identity, the
    conditions that vary among the rows, and the headline metrics."""
    from analysis.tables import CONDITION

    ident = (
        ["sweep", "trial_id", "decoder", "seed", "status"]
        if df["sweep"].nunique() > 1
        else ["trial_id", "decoder", "seed", "status"]
    )
    varying = [c for c in CONDITION if c in df and df[c].nunique(dropna=False) > 1]
    metrics = ["lms_id", "rmse_id", "rmse_ood", "rmse_recombine", "val_loss"]
    return list(dict.fromkeys(ident + varying + metrics))


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
