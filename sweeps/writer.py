"""From Ray Tune's trial outcomes to result rows: ``make_row`` builds one row, and
``ResultWriter`` (a Tune callback) writes each finished trial's row and learning curve."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

from additive.errors import AdxError
from additive.restarts import select_restart
from additive.spec import TrialSpec
from sweeps.progress import Progress
from sweeps.results import CURVE_SCHEMA, TRIAL_SCHEMA, SweepFiles, rows_table
from sweeps.rows import CURVE_KEYS, CurveRow, TrialMetrics, TrialRow
from sweeps.spec import ORACLE_METRICS


def make_row(sweep: str, config: dict[str, Any], result: dict[str, Any], status: str, error: str | None) -> TrialRow:
    """One results row from a trial's Tune config (its resolved trial fields and identity)
    and its last report: the final one, or the last evaluation of a trial that did not
    finish (then ``val_loss`` is its best so far). For a member of a restart group, the
    config is the member's (``member_rows``) and the report its entry in ``members``."""
    metrics = TrialMetrics.from_mapping(result)
    final = bool(result.get("final"))
    if not final and result.get("best_val_loss") is not None:
        metrics = dataclasses.replace(metrics, val_loss=float(result["best_val_loss"]))

    def number(key: str, kind: type) -> Any:
        value = result.get(key)
        return kind(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def moment(key: str) -> dt.datetime:
        ts = result.get(key)
        return dt.datetime.fromtimestamp(ts, dt.timezone.utc) if ts else dt.datetime.now(dt.timezone.utc)

    return TrialRow(
        sweep=sweep,
        trial_id=config["trial_id"],
        cell=config["cell"],
        cell_index=config["cell_index"],
        status=status,
        spec=TrialSpec.from_dict(config["spec"]),
        metrics=metrics,
        variant=config.get("variant"),
        error=error,
        search_number=config.get("search_number"),
        selected_by=config.get("selected_by"),
        oracle_selection=config.get("selected_by") in ORACLE_METRICS,
        restart_group=config.get("restart_group") or config["trial_id"],
        restarts=(config.get("restarts") or {}).get("k", 1),
        select_at=(config.get("restarts") or {}).get("select_at"),
        rungs=_rungs_text(config.get("restarts"))
        or (",".join(map(str, result["rungs"])) if result.get("rungs") else None),
        stopped_at_rung=number("stopped_at_rung", int),
        selected=bool(result["selected"]) if "selected" in result else status == "ok",
        steps_done=number("steps_done", int) if "steps_done" in result else (None if final else number("step", int)),
        best_step=number("best_step", int),
        train_seconds=number("train_seconds", float),
        data_seconds=number("data_seconds", float),
        eval_seconds=number("eval_seconds", float),
        device=result.get("device"),
        precision=result.get("precision"),
        hardware=result.get("hardware"),
        node=result.get("node"),
        started_at=moment("started_at"),
        finished_at=moment("finished_at"),
    )


def full_budget(row: dict[str, Any]) -> bool:
    """A member that finished ok after training every step."""
    return row["status"] == "ok" and (row.get("steps_done") or 0) >= (row.get("steps") or math.inf)


def write_topped_up(
    files: SweepFiles, group: str, before: dict[str, Any], new_rows: list[TrialRow], new_curves: list[CurveRow]
) -> list[dict[str, Any]]:
    """Rewrite a group's rows and curves with its new members, the kept member chosen again
    by validation loss among the full-budget members; return the rows written."""
    rows = [dict(r) for r in before["rows"]] + [r.to_record() for r in new_rows]
    rows.sort(key=lambda r: r.get("restart") or 0)
    full = [i for i, r in enumerate(rows) if full_budget(r)]
    pick = select_restart([rows[i]["val_loss"] for i in full])
    for i, r in enumerate(rows):
        r["selected"] = pick is not None and i == full[pick]
    curves = list(before["curves"]) + [c.to_record() for c in new_curves]
    if curves:
        files.storage.write_table(f"{files.curves_dir}/{group}.parquet", rows_table(curves, CURVE_SCHEMA))
    files.storage.write_table(f"{files.trials_dir}/{group}.parquet", rows_table(rows, TRIAL_SCHEMA))
    return rows


def _rungs_text(restarts: dict[str, Any] | None) -> str | None:
    """The rung steps of a group's schedule as text ("2000,4000,8000"); null without one."""
    if not restarts:
        return None
    steps = restarts.get("rungs") or ([restarts["select_at"]] if restarts.get("select_at") else [])
    return ",".join(str(s) for s in steps) or None


def member_rows(
    sweep: str,
    config: dict[str, Any],
    result: dict[str, Any],
    status: str,
    error: str | None,
    restarts: list[int] | None = None,
) -> list[TrialRow]:
    """The rows of a restart group, one per member, from the group's Tune config and its
    final report's ``members``. A group that broke before its members reported (a crash,
    its data) gets one row per member with the group's status and error. ``restarts``: the
    members to write (default: 0 .. k-1; a top-up writes its new members)."""
    from sweeps.trainable import member_id

    k = config["restarts"]["k"]
    entries = {m["restart"]: m for m in result.get("members") or []}
    shared = {key: result[key] for key in ("node", "started_at", "finished_at") if key in result}
    rows = []
    for r in restarts if restarts is not None else range(k):
        entry = entries.get(r) or {
            "status": "failed" if status == "ok" else status,
            "error": error or "the group reported no result for this member",
            "selected": False,
        }
        member = {
            **config,
            "trial_id": member_id(config["trial_id"], r),
            "restart_group": config["trial_id"],
            "spec": {**config["spec"], "restart": r},
        }
        report = {**shared, **{key: v for key, v in entry.items() if key not in ("status", "error")}, "final": 1}
        rows.append(make_row(sweep, member, report, entry["status"], entry.get("error")))
    return rows


class ResultWriter:
    """A Ray Tune callback that turns trial outcomes into Parquet rows (see results.py).

    Built lazily as a ``ray.tune.Callback`` subclass so this module imports without Ray's
    heavy pieces until a sweep runs."""

    write_error: AdxError | None  # set by the instance: a write that failed (storage full or gone)

    def __new__(cls, *args, **kwargs):
        from ray.tune import Callback

        class _Writer(Callback):
            def __init__(
                self,
                files: SweepFiles,
                progress: Progress,
                static: dict[str, Any],
                rungs: list[int] | None = None,
                topups: dict[str, Any] | None = None,
            ):
                self.files, self.progress, self.static = files, progress, static
                self.rungs = rungs or []  # a scheduler's rung steps (sweeps.engine.asha_rungs)
                self.topups = topups or {}  # group id -> its rows and curves before a top-up (sweeps.topup)
                self.curves: dict[str, list[CurveRow]] = {}
                self.last: dict[str, dict] = {}
                self.written: set[str] = set()
                self.write_error: AdxError | None = None

            def _write(self, trial, result: dict, status: str, error: str | None) -> None:
                config = trial.config
                tid = config["trial_id"]
                if tid in self.written:
                    return
                if config.get("topup"):  # new members of a group (sweeps.topup)
                    new = [dataclasses.replace(r, **self.static) for r in member_rows(self.files.name, config,
                           result, status, error, restarts=config["topup"]["members"])]  # fmt: skip
                    try:
                        merged = write_topped_up(self.files, tid, self.topups[tid], new, self.curves.pop(tid, []))
                    except AdxError as exc:
                        self.write_error = exc
                        raise
                    self.written.add(tid)
                    self.progress.group_finished(tid, [(r["trial_id"], r["status"], r["val_loss"], r["error"])
                                                       for r in merged if r["restart"] in config["topup"]["members"]])  # fmt: skip
                    return
                if config.get("restarts"):
                    rows = member_rows(self.files.name, config, result, status, error)
                else:
                    rows = [make_row(self.files.name, config, result, status, error)]
                rows = [dataclasses.replace(row, **self.static) for row in rows]
                try:
                    self.files.write_group(tid, rows, self.curves.pop(tid, []))
                except AdxError as exc:
                    self.write_error = exc
                    raise
                self.written.add(tid)
                self.progress.group_finished(tid, [(r.trial_id, r.status, r.metrics.val_loss, r.error) for r in rows])

            def on_trial_start(self, iteration, trials, trial, **info):
                self.progress.trial_started(trial.config["trial_id"])

            def on_trial_recover(self, iteration, trials, trial, **info):
                self.curves.pop(trial.config["trial_id"], None)
                self.progress.trial_progress(trial.config["trial_id"], 0.0)

            def on_trial_result(self, iteration, trials, trial, result, **info):
                tid = trial.config["trial_id"]
                if result.get("final"):
                    self._write(trial, result, result["status"], result.get("error"))
                else:
                    point = {k: result.get(k) for k in CURVE_KEYS}
                    restart = result.get("restart")
                    member = tid if restart is None else f"{tid}-r{restart}"
                    self.curves.setdefault(tid, []).append(CurveRow(self.files.name, member, **point))
                    self.last[tid] = point
                    if result.get("group_progress") is not None:
                        self.progress.trial_progress(tid, result["group_progress"], result.get("members_waiting"))
                    elif point["step"] is not None:
                        self.progress.trial_progress(tid, point["step"] / trial.config["spec"]["steps"])

            def on_trial_complete(self, iteration, trials, trial, **info):
                tid = trial.config["trial_id"]
                if tid not in self.written:  # stopped early by the scheduler, at a rung
                    last = dict(self.last.get(tid, {}))
                    step = last.get("step") or 0
                    passed = [i + 1 for i, rung in enumerate(self.rungs) if rung <= step]
                    where = f" at rung {passed[-1]} (step {self.rungs[passed[-1] - 1]})" if passed else ""
                    last |= {"stopped_at_rung": passed[-1] if passed else None, "rungs": self.rungs}
                    self._write(trial, last, "stopped", f"stopped early by the scheduler{where}")

            def on_trial_error(self, iteration, trials, trial, **info):
                tid = trial.config["trial_id"]
                if tid not in self.written:
                    err = trial.get_error()
                    text = str(err).strip().splitlines()[-1] if err else "the trial's worker died"
                    msg = f"crashed after {trial.num_failures} attempt(s): {text}"
                    self._write(trial, self.last.get(tid, {}), "failed", msg)

            def on_step_end(self, iteration, trials, **info):
                if not self.progress.due():  # Tune steps often; scanning every trial each time is O(trials)
                    return
                self.progress.set_running(
                    {t.config["trial_id"] for t in trials if t.status == "RUNNING"} - self.written
                )
                self.progress.print()

        return _Writer(*args, **kwargs)
