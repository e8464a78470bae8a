"""The sweeps under a storage root: their stored specs, counts per status, and the list."""

from __future__ import annotations

import math
from typing import Any

import yaml

from additive.errors import AdxError
from sweeps.lock import current_holder
from sweeps.progress import BAD, first_line
from sweeps.results import SWEEP_NAME_RE, Storage, SweepFiles
from sweeps.spec import SweepSpec, parse_sweep_spec


def count_statuses(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many rows have each status."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


def error_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The distinct errors of the failed and diverged rows (their first lines), most
    frequent first, each with its count and trial ids."""
    groups: dict[str, list[str]] = {}
    for row in rows:
        if row["status"] in BAD:
            groups.setdefault(first_line(row.get("error")), []).append(row["trial_id"])
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    return [{"error": error, "count": len(ids), "trial_ids": sorted(ids)} for error, ids in ordered]


def format_errors(errors: list[dict[str, Any]], shown_ids: int = 5) -> list[str]:
    """Lines for a terminal: one per distinct error, with its count and a few trial ids."""
    lines = []
    for e in errors:
        ids = ", ".join(e["trial_ids"][:shown_ids])
        more = f" and {e['count'] - shown_ids} more" if e["count"] > shown_ids else ""
        lines.append(f"  {e['count']} x {e['error']}  [{ids}{more}]")
    return lines


def load_stored_spec(storage: Storage, name: str) -> SweepSpec:
    files = SweepFiles(storage, name)
    if not files.exists():
        known = storage.list_dirs(storage.root)
        hint = f" (sweeps there: {', '.join(known)})" if known else ""
        raise AdxError(f"no sweep named {name!r} in {storage.uri}{hint}")
    return parse_sweep_spec(yaml.safe_load(storage.read_text(files.spec_path)), files.spec_path)


def sweep_status(storage: str, name: str) -> dict[str, Any]:
    """Counts per status and per cell of a stored sweep."""
    store = Storage(storage)
    spec = load_stored_spec(store, name)
    files = SweepFiles(store, name)
    rows = files.read_trials()
    per_seed = (spec.search.n_trials if spec.search else 1) * spec.restarts.k
    cells = {c.label: {"planned": per_seed * len(spec.seeds)} for c in spec.cells()}
    counts = count_statuses(rows)
    for r in rows:
        cell = cells.setdefault(r["cell"], {"planned": 0})
        cell[r["status"]] = cell.get(r["status"], 0) + 1
    try:
        running = current_holder(files) is not None
    except AdxError:  # no lock client for this storage (boto3 missing): not known to run
        running = False
    out = {
        "name": name,
        "planned": spec.n_planned,
        "counts": counts,
        "cells": cells,
        "running": running,
        "complete": sum(counts.values()) >= spec.n_planned,
        "errors": error_summary(rows),
    }
    if spec.grouped:
        out["groups"] = group_status(spec, rows)
    out["seeds"] = seed_status(spec, rows)
    out["pace"] = pace(spec, rows)
    return out


def _units(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The rows of each unit of work: a restart group's members, or one trial's row."""
    units: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        units.setdefault(r.get("restart_group") or r["trial_id"], []).append(r)
    return units


def seed_status(spec: SweepSpec, rows: list[dict[str, Any]]) -> dict[int, dict[str, int]]:
    """Per seed, the units done (restart groups, or trials) of those planned. Trials are
    handed out seed by seed (every cell's first seed before any cell's second), so a sweep
    stopped part-way has whole seeds done and the next one in progress."""
    per_seed = spec.search.n_trials if spec.search else 1
    out = {seed: {"done": 0, "planned": per_seed * len(spec.cells())} for seed in spec.seeds}
    for members in _units(rows).values():
        seed = members[0].get("seed")
        if seed in out:
            out[seed]["done"] += 1
    return out


PART_GAP_S = 120.0


def pace(spec: SweepSpec, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The rate measured so far and the time left at it: units done per hour of the time the
    sweep was running (the union of its units' start-to-finish intervals, so the gaps between
    parts do not count; a gap under ``PART_GAP_S`` is the scheduler's between two units, not
    a stop), and the units left over that rate. None before the first unit."""
    spans = []
    for members in _units(rows).values():
        start = min((m["started_at"] for m in members if m.get("started_at") is not None), default=None)
        end = max((m["finished_at"] for m in members if m.get("finished_at") is not None), default=None)
        if start is not None and end is not None and end >= start:
            spans.append((start, end))
    if not spans:
        return None
    spans.sort()
    running, parts = 0.0, 1
    cur_start, cur_end = spans[0]
    for start, end in spans[1:]:
        if (start - cur_end).total_seconds() > PART_GAP_S:
            running += (cur_end - cur_start).total_seconds()
            cur_start, parts = start, parts + 1
        cur_end = max(cur_end, end)
    running += (cur_end - cur_start).total_seconds()
    planned = spec.n_planned // spec.restarts.k
    done = len(spans)
    rate = done / running * 3600 if running > 0 else None
    left = max(planned - len(_units(rows)), 0)
    return {
        "units_done": done,
        "units_planned": planned,
        "running_hours": running / 3600,
        "stretches": parts,
        "per_hour": rate,
        "hours_left": None if not rate else left / rate,
    }


def group_status(spec: SweepSpec, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Restart groups: how many are done, the schedule, and the cost of a group in full
    runs, as planned (no member failing) and as trained (steps of every member / steps)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r.get("restart_group") or r["trial_id"], []).append(r)
    trained = [sum(m.get("steps_done") or 0 for m in members) / members[0]["steps"] for members in groups.values()]
    budgets = [spec.trial_spec(c, spec.seeds[0]).steps for c in spec.cells()]
    return {
        "planned": spec.n_planned // spec.restarts.k,
        "done": len(groups),
        "k": spec.restarts.k,
        "rungs": list(spec.restarts.schedule),
        "cost_planned": sum(spec.restarts.cost(b) for b in budgets) / len(budgets),
        "cost_trained": sum(trained) / len(trained) if trained else None,
    }


def list_sweeps(storage: str) -> list[dict[str, Any]]:
    store = Storage(storage)
    out = []
    for name in store.list_dirs(store.root):
        if not SWEEP_NAME_RE.match(name):  # a folder no sweep could have made
            continue
        files = SweepFiles(store, name)
        if not files.exists():
            continue
        planned: float
        try:
            planned = load_stored_spec(store, name).n_planned
        except AdxError:
            planned = math.nan
        out.append({"name": name, "planned": planned, "done": sum(files.done_counts().values())})
    return out
