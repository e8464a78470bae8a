"""Result rows and where they live: one Parquet file per trial, written atomically.

Layout under a storage root (a local path or any URI pyarrow's filesystems open, e.g.
``s3://bucket/prefix``)::

    <storage>/<sweep>/spec.yaml            the resolved sweep spec
    <storage>/<sweep>/trials/<id>.parquet  one row per trial (columns: ``TRIAL_SCHEMA``)
    <storage>/<sweep>/curves/<id>.parquet  the metrics of every evaluation of that trial
    <storage>/<sweep>/optuna.db            Optuna studies of a sweep with ``search``

Files are written under a hidden temporary name and then renamed, so a reader (pandas,
pyarrow, DuckDB, or ``analysis``) never sees a partial file; hidden names (``.`` or ``_``)
are skipped by pyarrow datasets and by ``analysis``.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import re
import uuid
import warnings
from dataclasses import fields
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from additive.errors import AdxError
from additive.spec import TrialSpec
from sweeps.rows import (
    COUNT_METRICS,
    CURVE_KEYS,
    CURVE_SCHEMA,
    METRICS,
    SCHEMA_VERSION,
    TRIAL_SCHEMA,
    VERSION_PACKAGES,
    VERSIONS_TYPE,
    CurveRow,
    TrialRow,
)

STATUSES = ("ok", "failed", "diverged", "stopped")
__all__ = [  # the row types and schemas live in sweeps.rows; re-exported here beside the storage
    "COUNT_METRICS",
    "CURVE_KEYS",
    "CURVE_SCHEMA",
    "METRICS",
    "SCHEMA_VERSION",
    "STATUSES",
    "TRIAL_SCHEMA",
    "VERSION_PACKAGES",
    "VERSIONS_TYPE",
    "CurveRow",
    "ResultsWarning",
    "Storage",
    "SweepFiles",
    "TrialRow",
    "check_sweep_name",
    "git_commit",
    "rows_table",
    "trial_fields_from_row",
    "versions",
    "versions_from_json",
]


def rows_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """A table of ``schema`` from row dicts; missing columns are null, extras an error."""
    for row in rows:
        extra = set(row) - set(schema.names)
        assert not extra, f"columns not in the schema: {sorted(extra)}"
    return pa.Table.from_pylist([{n: row.get(n) for n in schema.names} for row in rows], schema=schema)


class Storage:
    """A results root on a local disk or an object store (pyarrow filesystems)."""

    def __init__(self, root: str | os.PathLike):
        root = str(root)
        try:
            if "://" in root:
                self.fs, self.root = pafs.FileSystem.from_uri(root)
            else:
                self.fs, self.root = pafs.LocalFileSystem(), os.path.abspath(root)
        except Exception as exc:
            raise AdxError(f"cannot open storage {root!r}: {exc}") from None
        self.uri = root
        self.is_local = isinstance(self.fs, pafs.LocalFileSystem)

    def path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type != pafs.FileType.NotFound

    def is_dir(self, path: str) -> bool:
        return self.fs.get_file_info(path).type == pafs.FileType.Directory

    def list(self, path: str, suffix: str = "") -> list[str]:
        """Visible files (no '.' or '_' prefix) directly under ``path``, sorted."""
        if not self.is_dir(path):
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(path, recursive=False))
        return sorted(
            i.path
            for i in infos
            if i.type == pafs.FileType.File and not i.base_name.startswith((".", "_")) and i.base_name.endswith(suffix)
        )

    def list_stamps(self, path: str, suffix: str = "") -> dict[str, str]:
        """``list``, with a stamp of each file (size and modification time, from the same
        listing) that changes when the file is rewritten."""
        if not self.is_dir(path):
            return {}
        infos = self.fs.get_file_info(pafs.FileSelector(path, recursive=False))
        return {
            i.path: f"{int(i.size or 0)}@{i.mtime_ns or 0}"
            for i in sorted(infos, key=lambda i: i.path)
            if i.type == pafs.FileType.File and not i.base_name.startswith((".", "_")) and i.base_name.endswith(suffix)
        }

    def list_dirs(self, path: str) -> builtins.list[str]:
        if not self.is_dir(path):
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(path, recursive=False))
        return sorted(
            i.base_name for i in infos if i.type == pafs.FileType.Directory and not i.base_name.startswith((".", "_"))
        )

    def read_text(self, path: str) -> str:
        with self.fs.open_input_stream(path) as f:
            return f.read().decode()

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write atomically: a hidden temporary file in the same folder, then a rename."""
        folder, base = path.rsplit("/", 1)
        tmp = f"{folder}/.{base}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            self.fs.create_dir(folder, recursive=True)
            with self.fs.open_output_stream(tmp) as f:
                f.write(data)
            self.fs.move(tmp, path)
        except Exception as exc:
            try:
                self.fs.delete_file(tmp)
            except Exception:
                pass
            raise AdxError(f"cannot write {path}: {exc}") from None

    def write_table(self, path: str, table: pa.Table) -> None:
        buf = io.BytesIO()
        pq.write_table(table, buf)
        self.write_bytes(path, buf.getvalue())

    def delete_dir(self, path: str) -> None:
        if self.is_dir(path):
            self.fs.delete_dir(path)

    def remove_temporaries(self, path: str) -> int:
        """Delete leftover temporary files (a writer killed mid-write)."""
        if not self.is_dir(path):
            return 0
        infos = self.fs.get_file_info(pafs.FileSelector(path, recursive=False))
        stale = [i.path for i in infos if i.type == pafs.FileType.File and ".tmp-" in i.base_name]
        for p in stale:
            self.fs.delete_file(p)
        return len(stale)

    def check_writable(self, path: str) -> None:
        probe = f"{path}/.write-probe-{uuid.uuid4().hex[:8]}"
        try:
            self.fs.create_dir(path, recursive=True)
            with self.fs.open_output_stream(probe) as f:
                f.write(b"ok")
            self.fs.delete_file(probe)
        except Exception as exc:
            raise AdxError(f"storage {self.uri!r} is not writable: {exc}") from None


SWEEP_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def check_sweep_name(name: object) -> str:
    """A sweep name is one folder name: letters, digits, '-', '_' or '.', never a path."""
    if not isinstance(name, str) or not SWEEP_NAME_RE.match(name):
        raise AdxError(
            f"sweep name: must be letters, digits, '-', '_' or '.' (starting with a letter or digit, no path), "
            f"but got {name!r}"
        )
    return name


class SweepFiles:
    """The files of one sweep inside a ``Storage``."""

    def __init__(self, storage: Storage, name: str):
        check_sweep_name(name)
        self.storage = storage
        self.name = name
        self.dir = storage.path(name)
        self.trials_dir = storage.path(name, "trials")
        self.curves_dir = storage.path(name, "curves")
        self.spec_path = storage.path(name, "spec.yaml")
        self.compacted_dir = storage.path(name, "_compacted")
        self.compacted_trials = storage.path(name, "_compacted", "trials.parquet")
        self.compacted_curves = storage.path(name, "_compacted", "curves.parquet")

    def exists(self) -> bool:
        return self.storage.exists(self.spec_path)

    def weights_path(self, trial_id: str) -> str:
        """Best encoder/decoder state of a trial (sweeps with ``save_weights: true``);
        a plain tensor dict, loaded with ``torch.load(..., weights_only=True)``."""
        return self.storage.path(self.name, "weights", f"{trial_id}.pt")

    def done_ids(self) -> set[str]:
        """Ids of the trials (restart groups) that have a readable file. A damaged file
        (truncated, not Parquet, no row) is named in a warning and counted as not done, so
        a resume reruns that trial and replaces the file atomically. Only each file's footer
        is read."""
        return set(self.done_counts())

    def done_counts(self) -> dict[str, int]:
        """Rows per readable trial file: 1, or a restart group's members. Files folded into
        the compacted file are counted from its manifest, without opening them."""
        from sweeps.compaction import read_folder

        contents = read_folder(self.storage, self.trials_dir, self.compacted_trials)
        done = {name[: -len(".parquet")]: rows for name, (rows, _) in contents.manifest.items()}
        for path in contents.unlisted:
            try:
                with self.storage.fs.open_input_file(path) as f:
                    rows = pq.ParquetFile(f).metadata.num_rows
            except (pa.ArrowException, OSError, ValueError) as exc:
                _damaged(path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                continue
            if rows < 1:
                _damaged(path, "no rows")
                continue
            done[path.rsplit("/", 1)[1][: -len(".parquet")]] = rows
        return done

    def write_trial(self, row: TrialRow, curves: list[CurveRow]) -> None:
        self.write_group(row.trial_id, [row], curves)

    def write_group(self, group_id: str, rows: list[TrialRow], curves: list[CurveRow]) -> None:
        """The rows (and curves) of one trial, or of every member of a restart group, each
        in one file written atomically: a group is on disk whole or not at all."""
        if curves:
            table = rows_table([c.to_record() for c in curves], CURVE_SCHEMA)
            self.storage.write_table(f"{self.curves_dir}/{group_id}.parquet", table)
        # The trial rows last: their presence marks the trial done.
        self.storage.write_table(
            f"{self.trials_dir}/{group_id}.parquet", rows_table([r.to_record() for r in rows], TRIAL_SCHEMA)
        )

    def read_trials(self) -> list[dict[str, Any]]:
        """Every readable row; a damaged file is named in a warning and skipped."""
        from sweeps.compaction import read_folder

        contents = read_folder(self.storage, self.trials_dir, self.compacted_trials)
        out = [] if contents.compacted is None else contents.compacted.to_pylist()
        for p in contents.unlisted:
            table = self._read(p)
            if table is not None:
                out += table.to_pylist()
        return out

    def _read(self, path: str, schema: pa.Schema | None = None, warn: bool = True) -> pa.Table | None:
        try:
            with self.storage.fs.open_input_file(path) as f:
                table = pq.read_table(f)
            return table if schema is None else conform_table(table, schema)
        except (pa.ArrowException, OSError, ValueError) as exc:
            if warn:
                _damaged(path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return None

    def compact(self) -> int:
        """Fold the trial and curve files into one compacted file each (``sweeps.compaction``);
        return the number of trial files added."""
        from sweeps.compaction import compact_folder

        added = compact_folder(
            self.storage, self.trials_dir, self.compacted_trials, TRIAL_SCHEMA, lambda p: self._read(p, TRIAL_SCHEMA)
        )
        compact_folder(
            self.storage,
            self.curves_dir,
            self.compacted_curves,
            CURVE_SCHEMA,
            lambda p: self._read(p, CURVE_SCHEMA, warn=False),
        )
        return added


class ResultsWarning(UserWarning):
    """A results file was skipped (damaged, foreign, or of an unknown schema)."""


def _damaged(path: str, why: str) -> None:
    warnings.warn(
        f"damaged trial file {path} ({why}): counted as not done; `adx sweep resume` reruns that trial",
        ResultsWarning,
        stacklevel=3,
    )


# Fields that did not exist when older rows were written, with the behaviour those rows
# were produced with (which is not always today's default).
LEGACY_FIELD_VALUES: dict[str, Any] = {
    "code_batch_norm": True,  # the conv encoder always ended in BatchNorm1d on the code
    "encoder_batch_norm": False,
    "mlp_tail": "linear",
    "l_density": "uniform",
    "encoder_depth": 0,
}


def trial_fields_from_row(row: Any) -> dict[str, Any]:
    """The trial fields of a results row as plain Python values, ready for
    ``TrialSpec.from_dict``. A field missing or null in the row (written before the field
    existed) takes the value that row was produced with: ``LEGACY_FIELD_VALUES`` where the
    behaviour changed since, else the field's default."""
    out: dict[str, Any] = {}
    for f in fields(TrialSpec):
        value = row.get(f.name)
        value = value.item() if hasattr(value, "item") else value
        if value is None or (isinstance(value, float) and value != value) or _is_na(value):
            if f.name in LEGACY_FIELD_VALUES:
                out[f.name] = LEGACY_FIELD_VALUES[f.name]
            elif f.name == "lr_floor":  # the cosine floor used to be lr_decay_gamma
                gamma = row.get("lr_decay_gamma")
                out[f.name] = float(gamma) if row.get("lr_decay") == "cosine" and gamma and gamma < 1 else 0.0
            elif "None" in str(f.type):
                out[f.name] = None
            continue
        out[f.name] = value
    return out


def _is_na(value: Any) -> bool:
    try:
        import pandas as pd

        return value is pd.NA
    except ImportError:  # pragma: no cover
        return False


def versions() -> dict[str, str]:
    """Versions of the packages that shape a result (the ``versions`` struct column)."""
    import numpy
    import optuna
    import ray
    import sklearn
    import torch

    return {
        "torch": torch.__version__,
        "ray": ray.__version__,
        "optuna": optuna.__version__,
        "numpy": numpy.__version__,
        "sklearn": sklearn.__version__,
        "pyarrow": pa.__version__,
    }


def conform_table(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Cast a results table to the current schema: columns it lacks (written before they
    existed) become nulls. Raises ValueError naming a column of an unexpected type."""
    cols = []
    for f in schema:
        if f.name not in table.column_names:
            cols.append(pa.nulls(len(table), f.type))
            continue
        column = table[f.name]
        try:
            if f.name == "versions" and pa.types.is_string(column.type):
                cols.append(versions_from_json(column))
            else:
                cols.append(column.cast(f.type))
        except (pa.ArrowException, ValueError, TypeError) as exc:
            raise ValueError(f"column {f.name!r} has an unexpected type ({exc})") from None
    return pa.Table.from_arrays(cols, schema=schema)


def versions_from_json(column: pa.ChunkedArray) -> pa.Array:
    """The ``versions`` column of files written before it was a struct (a JSON string)."""
    values = []
    for text in column.to_pylist():
        parsed = json.loads(text) if text else None
        values.append({k: parsed.get(k) for k in VERSION_PACKAGES} if isinstance(parsed, dict) else None)
    return pa.array(values, type=VERSIONS_TYPE)


def git_commit() -> str | None:
    """The project's commit, when it runs from a git checkout."""
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(
            ["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
