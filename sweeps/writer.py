"""From Ray Tune's trial outcomes to result rows: ``make_row`` builds one row, and
``ResultWriter`` (a Tune callback) writes each finished trial's row and learning curve."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import fields
from typing import Any

from additive.errors import AdxError
from additive.spec import TrialSpec
from sweeps.progress import Progress
from sweeps.results import COUNT_METRICS, CURVE_KEYS, METRICS, SCHEMA_VERSION, SweepFiles
from sweeps.spec import ORACLE_METRICS

_SPEC_FIELDS = [f.name for f in fields(TrialSpec)]


def make_row(sweep: str, config: dict[str, Any], result: dict[str, Any], status: str, error: str | None) -> dict:
    """One results row: identity, resolved trial fields, metrics, run facts."""
    row: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "sweep": sweep,
        "trial_id": config["trial_id"],
        "cell": config["cell"],
        "cell_index": config["cell_index"],
        "variant": config.get("variant"),
        "status": status,
        "error": error,
        "search_number": config.get("search_number"),
        "selected_by": config.get("selected_by"),
        "oracle_selection": config.get("selected_by") in ORACLE_METRICS,
    }
    row.update({k: config["spec"][k] for k in _SPEC_FIELDS})
    for m in METRICS:
        value = result.get(m)
        if not isinstance(value, (int, float)) or (m in COUNT_METRICS and not math.isfinite(value)):
            row[m] = None
        else:
            row[m] = int(value) if m in COUNT_METRICS else float(value)
    if not result.get("final") and result.get("best_val_loss") is not None:
        row["val_loss"] = float(result["best_val_loss"])  # a partial run: its best so far
    partial_step = result.get("step") if not result.get("final") else None
    row["steps_done"] = int(result["steps_done"]) if "steps_done" in result else partial_step
    row["best_step"] = int(result["best_step"]) if "best_step" in result else None
    for key in ("train_seconds", "data_seconds", "eval_seconds"):
        row[key] = float(result[key]) if key in result else None
    row["device"] = result.get("device")
    row["node"] = result.get("node")
    for key in ("started_at", "finished_at"):
        ts = result.get(key)
        row[key] = dt.datetime.fromtimestamp(ts, dt.timezone.utc) if ts else dt.datetime.now(dt.timezone.utc)
    return row


class ResultWriter:
    """A Ray Tune callback that turns trial outcomes into Parquet rows (see results.py).

    Built lazily as a ``ray.tune.Callback`` subclass so this module imports without Ray's
    heavy pieces until a sweep runs."""

    write_error: AdxError | None  # set by the instance: a write that failed (storage full or gone)

    def __new__(cls, *args, **kwargs):
        from ray.tune import Callback

        class _Writer(Callback):
            def __init__(self, files: SweepFiles, progress: Progress, static: dict[str, Any]):
                self.files, self.progress, self.static = files, progress, static
                self.curves: dict[str, list[dict]] = {}
                self.last: dict[str, dict] = {}
                self.written: set[str] = set()
                self.write_error: AdxError | None = None

            def _write(self, trial, result: dict, status: str, error: str | None) -> None:
                config = trial.config
                tid = config["trial_id"]
                if tid in self.written:
                    return
                row = make_row(self.files.name, config, result, status, error) | self.static
                try:
                    self.files.write_trial(row, self.curves.pop(tid, []))
                except AdxError as exc:
                    self.write_error = exc
                    raise
                self.written.add(tid)
                self.progress.trial_finished(tid, status, row.get("val_loss"))

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
                    self.curves.setdefault(tid, []).append(point)
                    self.last[tid] = point
                    if point["step"] is not None:
                        self.progress.trial_progress(tid, point["step"] / trial.config["spec"]["steps"])

            def on_trial_complete(self, iteration, trials, trial, **info):
                tid = trial.config["trial_id"]
                if tid not in self.written:  # stopped early by the scheduler
                    self._write(trial, self.last.get(tid, {}), "stopped", "stopped early by the scheduler")

            def on_trial_error(self, iteration, trials, trial, **info):
                tid = trial.config["trial_id"]
                if tid not in self.written:
                    err = trial.get_error()
                    text = str(err).strip().splitlines()[-1] if err else "the trial's worker died"
                    msg = f"crashed after {trial.num_failures} attempt(s): {text}"
                    self._write(trial, self.last.get(tid, {}), "failed", msg)

            def on_step_end(self, iteration, trials, **info):
                self.progress.set_running(
                    {t.config["trial_id"] for t in trials if t.status == "RUNNING"} - self.written
                )
                self.progress.print()

        return _Writer(*args, **kwargs)
