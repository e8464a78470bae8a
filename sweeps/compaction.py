"""One compacted Parquet file per results folder, beside the per-trial files.

A sweep of thousands of trials leaves thousands of small files; opening each one makes
``sweep status`` and every table slow (seconds per thousand on a local disk, more on an
object store). ``compact_folder`` writes one file outside the folder (``SweepFiles`` puts
it at ``<sweep>/_compacted/trials.parquet`` and ``.../curves.parquet``, so a glob over the
folder, DuckDB's ``trials/*.parquet`` included, never sees it): the rows of every file
present, and in its metadata the manifest (file name -> rows). Readers
(``read_folder``) take the compacted rows and read only the files the manifest does not
list, so a trial is never counted twice, and a file written after the compaction (a resumed
sweep) is still read. The per-trial files stay: pandas, pyarrow or DuckDB reading the folder
see them as before.

Crash safety: the compacted file is written under a hidden temporary name and renamed, so it
is either the old one, the new one, or absent; every state reads the same rows. Its manifest
names only files whose rows it holds.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST_KEY = b"adx.manifest"


@dataclass
class FolderContents:
    """What a results folder holds: the compacted rows still current (or None), the
    manifest entries behind them (file name -> (rows, stamp: size and modification time)),
    and the visible files to read one by one: those the manifest does not list, and those
    rewritten since (another stamp)."""

    compacted: pa.Table | None = None
    manifest: dict[str, tuple[int, str]] = field(default_factory=dict)
    unlisted: list[str] = field(default_factory=list)


def _base(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _load(storage, compacted_path: str) -> tuple[pa.Table, list[tuple[str, int, str]]] | None:
    """The compacted table and its manifest, in row order; None if absent or unreadable."""
    if not storage.exists(compacted_path):
        return None
    try:
        with storage.fs.open_input_file(compacted_path) as f:
            table = pq.read_table(f)
        entries = json.loads((table.schema.metadata or {})[MANIFEST_KEY])
        manifest = [(str(name), int(rows), str(stamp)) for name, rows, stamp in entries]
    except (pa.ArrowException, OSError, ValueError, KeyError, TypeError):
        return None
    if sum(rows for _, rows, _ in manifest) != table.num_rows:
        return None
    return table, manifest


def read_folder(storage, folder: str, compacted_path: str) -> FolderContents:
    """The compacted rows and the files still to read one by one. A compacted file that
    cannot be read is ignored (every file is then read), never trusted in part; the rows of
    a file rewritten since (another stamp) are dropped from it and the file is read instead.
    A file removed since keeps its rows."""
    out = FolderContents()
    stamps = {_base(p): (p, stamp) for p, stamp in storage.list_stamps(folder, ".parquet").items()}
    loaded = _load(storage, compacted_path)
    if loaded is not None:
        table, manifest = loaded
        keep, start = [], 0
        for name, rows, stamp in manifest:
            current = stamps.get(name)
            if current is None or current[1] == stamp:
                keep.append((start, rows))
                out.manifest[name] = (rows, stamp)
            start += rows
        if len(keep) == len(manifest):
            out.compacted = table
        else:
            out.compacted = pa.concat_tables([table.slice(s, n) for s, n in keep]) if keep else table.slice(0, 0)
    out.unlisted = [path for name, (path, _) in sorted(stamps.items()) if name not in out.manifest]
    return out


def compact_folder(storage, folder: str, compacted_path: str, schema: pa.Schema, read_file) -> int:
    """Fold every file of ``folder`` not yet in the compacted file into it; return the
    number of files added. ``read_file(path)`` returns a file's rows conformed to ``schema``
    or None (damaged: left out, so it is read, and warned about, one by one)."""
    contents = read_folder(storage, folder, compacted_path)
    stamps = storage.list_stamps(folder, ".parquet")
    tables = [] if contents.compacted is None else [contents.compacted.cast(schema)]
    manifest = [(name, rows, stamp) for name, (rows, stamp) in contents.manifest.items()]
    added: list[tuple[str, int, str]] = []
    scanned = _scan(storage, contents.unlisted, schema)
    if scanned is not None:  # every file at once
        table, counts = scanned
        tables.append(table)
        added = [(_base(p), counts[_base(p)], stamps[p]) for p in contents.unlisted]
    else:  # a damaged or foreign file among them: one by one
        for path in contents.unlisted:
            table = read_file(path)
            if table is None:
                continue
            tables.append(table)
            added.append((_base(path), table.num_rows, stamps[path]))
    if not added:
        return 0
    table = pa.concat_tables(tables).replace_schema_metadata({MANIFEST_KEY: json.dumps(manifest + added).encode()})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    storage.write_bytes(compacted_path, buf.getvalue())
    return len(added)


SCAN_FILES = 500  # files per dataset scan: bounds the memory a compaction of thousands of files needs


def _scan(storage, paths: list[str], schema: pa.Schema) -> tuple[pa.Table, dict[str, int]] | None:
    """Every file in dataset scans of SCAN_FILES files, with the rows of each; None if any
    file cannot be read as ``schema`` (the caller then reads them one by one and names the
    bad ones). Each scan's small batches are copied into one contiguous table before the
    next scan, so memory follows the rows, not the number of files."""
    if not paths:
        return None
    tables, counts = [], {}
    for start in range(0, len(paths), SCAN_FILES):
        scanned = _scan_some(storage, paths[start : start + SCAN_FILES], schema)
        if scanned is None:
            return None
        tables.append(scanned[0])
        counts.update(scanned[1])
    return pa.concat_tables(tables), counts


def _scan_some(storage, paths: list[str], schema: pa.Schema) -> tuple[pa.Table, dict[str, int]] | None:
    import pyarrow.dataset as pads

    try:
        dataset = pads.dataset(paths, schema=schema, format="parquet", filesystem=storage.fs)
        per_file: dict[str, list[pa.RecordBatch]] = {}
        for tagged in dataset.scanner().scan_batches():  # each batch knows its file
            per_file.setdefault(_base(tagged.fragment.path), []).append(tagged.record_batch)
    except (pa.ArrowException, OSError, ValueError):
        return None
    if len(per_file) != len(paths):
        return None  # an empty file among them
    # rows in the order of ``paths``, one file's rows together: the manifest's order
    batches = [b for p in paths for b in per_file[_base(p)]]
    table = pa.Table.from_batches(batches, schema=schema).combine_chunks()
    if any(table[c].null_count for c in ("sweep", "trial_id") if c in schema.names):
        return None  # a file without the project's columns
    return table, {name: sum(b.num_rows for b in bs) for name, bs in per_file.items()}
