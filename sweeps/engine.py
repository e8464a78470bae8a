"""Run a sweep: Ray Tune schedules the trials, the driver writes one Parquet row each.

``run_sweep`` starts (or joins) Ray, builds one ``Tuner`` fed by ``SweepSearcher`` and
writes every finished trial through ``ResultWriter``. Rows already on disk are never run
again, so an interrupted sweep (Ctrl-C, a killed driver) is finished by running it again
with ``resume=True``: no row is lost or duplicated.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TextIO

import yaml

from additive.errors import AdxError
from additive.spec import TrialSpec
from sweeps.results import (
    COUNT_METRICS,
    CURVE_KEYS,
    METRICS,
    SCHEMA_VERSION,
    SWEEP_NAME_RE,
    Storage,
    SweepFiles,
    git_commit,
    versions,
)
from sweeps.spec import ORACLE_METRICS, SweepSpec, parse_sweep_spec, spec_to_yaml

if TYPE_CHECKING:
    from sweeps.search import SweepSearcher


def _tune_environment() -> None:
    """Ray Tune settings, set when a sweep starts (never at import): no automatic
    loggers (rows and curves are ours), Tune's plain progress output off."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


@dataclass
class SweepSummary:
    name: str
    total: int
    counts: dict[str, int]
    wall_seconds: float
    complete: bool
    storage: str


# ----- Ray --------------------------------------------------------------------------------
def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join ``address`` (``auto``, ``ray://...``, ``host:port``) or start an embedded
    local Ray (node address 127.0.0.1) without a dashboard. An already running Ray in this
    process is reused."""
    import logging

    import ray

    if ray.is_initialized():
        return
    # Trial output stays in the Ray logs: errors reach the rows, progress is printed here.
    caller_sigterm = _caller_sigterm()
    quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False, "configure_logging": True}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            ray.init(include_dashboard=False, num_cpus=num_cpus, _node_ip_address="127.0.0.1", **quiet)
    except Exception as exc:
        where = f"the Ray cluster at {address!r}" if address else "a local Ray"
        raise AdxError(f"cannot start or join {where}: {exc}") from None
    _restore_sigterm(caller_sigterm)


def _caller_sigterm():
    """The Python SIGTERM handler set before Ray starts (the CLI's clean stop), if any."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    handler = signal.getsignal(signal.SIGTERM)
    return handler if callable(handler) else None


def _restore_sigterm(handler) -> None:
    """``ray.init`` installs its own SIGTERM handler (exit at once, with Ray's stack dump);
    put back the one the caller had."""
    import signal

    if handler is not None:
        signal.signal(signal.SIGTERM, handler)


def check_resources(spec: SweepSpec) -> None:
    import ray

    total = ray.cluster_resources()
    gpus, cpus = total.get("GPU", 0.0), total.get("CPU", 0.0)
    if spec.resources["gpu"] > gpus:
        raise AdxError(
            f"{spec.source}: resources.gpu: must be <= the GPUs of the Ray cluster ({gpus:g}), "
            f"but got {spec.resources['gpu']:g}"
        )
    if spec.resources["cpu"] > cpus:
        raise AdxError(
            f"{spec.source}: resources.cpu: must be <= the CPUs of the Ray cluster ({cpus:g}), "
            f"but got {spec.resources['cpu']:g}"
        )


# ----- progress ---------------------------------------------------------------------------
class Progress:
    """Live progress lines: done / running / failed / pending, elapsed, ETA, best so far."""

    def __init__(self, name: str, total: int, already: int, out: TextIO | None, every: float = 10.0):
        self.name, self.total, self.already, self.out, self.every = name, total, already, out, every
        self.start = time.monotonic()
        self.last = 0.0
        self.counts: dict[str, int] = {}
        self.running: set[str] = set()
        self.partial: dict[str, float] = {}  # fraction of its steps each running trial has done
        self.best: tuple[float, str] | None = None

    @property
    def finished(self) -> int:
        return sum(self.counts.values())

    def trial_started(self, tid: str) -> None:
        self.running.add(tid)

    def set_running(self, tids: set[str]) -> None:
        """The trials Ray Tune reports as RUNNING (its own states, the source of truth)."""
        self.running = set(tids)

    def trial_progress(self, tid: str, fraction: float) -> None:
        self.partial[tid] = min(max(fraction, 0.0), 1.0)

    def trial_finished(self, tid: str, status: str, val_loss: float | None) -> None:
        self.running.discard(tid)
        self.partial.pop(tid, None)
        self.counts[status] = self.counts.get(status, 0) + 1
        if status == "ok" and val_loss is not None and (self.best is None or val_loss < self.best[0]):
            self.best = (val_loss, tid)
        self.print(force=True)

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        done = self.already + self.finished
        todo = self.total - done
        # Work in trials: finished ones count 1, running ones the fraction of steps done.
        partial = sum(self.partial.values())
        worked = self.finished + partial
        eta = _hms(elapsed / worked * (todo - partial)) if worked > 0.01 else "?"
        bad = self.counts.get("failed", 0) + self.counts.get("diverged", 0)
        best = f", best val_loss {self.best[0]:.5f} ({self.best[1]})" if self.best else ""
        return (
            f"[{self.name}] {done}/{self.total} done ({bad} failed/diverged), {len(self.running)} running, "
            f"{max(todo - len(self.running), 0)} pending | elapsed {_hms(elapsed)}, ETA {eta}{best}"
        )

    def print(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.out is None or (not force and now - self.last < self.every):
            return
        self.last = now
        print(self.line(), file=self.out, flush=True)


def _hms(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


# ----- writing rows -----------------------------------------------------------------------
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


# ----- locking ----------------------------------------------------------------------------
class SweepLock:
    """One driver per sweep folder (local storage): a lock file with host and pid;
    a lock whose process is gone (a killed driver) is taken over."""

    def __init__(self, files: SweepFiles):
        self.path = files.dir + "/.lock" if files.storage.is_local else None

    def __enter__(self):
        if self.path is None:
            return self
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        me = {"host": socket.gethostname(), "pid": os.getpid()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    with open(self.path) as f:
                        other = json.load(f)
                except (OSError, ValueError):
                    other = {}
                if other.get("host") == me["host"] and _alive(other.get("pid")):
                    raise AdxError(
                        f"sweep {os.path.basename(os.path.dirname(self.path))!r} is already being run "
                        f"by process {other['pid']}"
                    ) from None
                os.unlink(self.path)  # stale: its driver is gone
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            return self
        raise AdxError(f"cannot take the lock {self.path}")

    def __exit__(self, *exc):
        if self.path is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ----- from_best --------------------------------------------------------------------------
def resolve_from_best(spec: SweepSpec, storage: Storage) -> dict[int, dict[str, Any]]:
    """Per cell, the searched fields of the best ok trial of the earlier sweep."""
    if spec.from_best is None:
        return {}
    earlier = SweepFiles(storage, spec.from_best.sweep)
    if not earlier.exists():
        raise AdxError(f"{spec.source}: from_best: no sweep {spec.from_best.sweep!r} in {storage.uri}")
    old = parse_sweep_spec(yaml.safe_load(storage.read_text(earlier.spec_path)), earlier.spec_path)
    if old.search is None:
        raise AdxError(f"{spec.source}: from_best: sweep {old.name!r} has no `search` to take the best of")
    if old.search.metric in ORACLE_METRICS and not spec.oracle_selection:
        raise AdxError(
            f"{spec.source}: from_best: sweep {old.name!r} selected on {old.search.metric!r}, which needs ground "
            "truth; set `oracle_selection: true` in this spec to take its best anyway"
        )
    metric, sign = old.search.metric, (1 if old.search.mode == "min" else -1)
    rows = [r for r in earlier.read_trials() if r["status"] == "ok" and r.get(metric) is not None]
    keys = (
        list(spec.from_best.match)
        if spec.from_best.match is not None
        else [f for f in {f for values in old.grid.values() for v in values for f in v} if not f.startswith("__")]
    )
    out: dict[int, dict[str, Any]] = {}
    for cell in spec.cells():
        target = spec.trial_spec(cell, spec.seeds[0]).to_dict()
        matches = [r for r in rows if all(r.get(k) == target.get(k) for k in keys)]
        if not matches:
            raise AdxError(
                f"{spec.source}: from_best: no ok trial of sweep {old.name!r} matches cell {cell.label} on {keys}"
            )
        best = min(matches, key=lambda r: sign * r[metric])
        out[cell.index] = {k: best[k] for k in old.search.space}
    return out


# ----- the sweep --------------------------------------------------------------------------
def load_stored_spec(storage: Storage, name: str) -> SweepSpec:
    files = SweepFiles(storage, name)
    if not files.exists():
        known = storage.list_dirs(storage.root)
        hint = f" (sweeps there: {', '.join(known)})" if known else ""
        raise AdxError(f"no sweep named {name!r} in {storage.uri}{hint}")
    return parse_sweep_spec(yaml.safe_load(storage.read_text(files.spec_path)), files.spec_path)


def run_sweep(
    spec: SweepSpec,
    storage: str = "results",
    address: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    optuna_storage: str | None = None,
    out: TextIO | None = sys.stderr,
    progress_every: float = 10.0,
    num_cpus: int | None = None,
) -> SweepSummary:
    """Run (or finish) a sweep and return counts per status."""
    _tune_environment()
    store = Storage(storage)
    files = SweepFiles(store, spec.name)
    if files.exists() and not resume:
        if not overwrite:
            raise AdxError(
                f"sweep {spec.name!r} already exists in {store.uri}: finish it with "
                f"`adx sweep resume {spec.name}` or start again with --overwrite"
            )
    store.check_writable(files.dir)
    with SweepLock(files):
        if files.exists() and overwrite and not resume:
            for sub in ("trials", "curves", "_ray"):
                store.delete_dir(store.path(spec.name, sub))
            if store.is_local and os.path.exists(files.dir + "/optuna.db"):
                os.unlink(files.dir + "/optuna.db")
        best_params = resolve_from_best(spec, store)
        new_sweep = not resume or not files.exists()
        for folder in (files.trials_dir, files.curves_dir):
            store.remove_temporaries(folder)
        done = files.done_ids()
        done_rows: dict[str, dict] = {}
        if spec.search is not None:
            done_rows = {r["trial_id"]: r for r in files.read_trials()}
            if optuna_storage is None:
                if not store.is_local:
                    raise AdxError("a sweep with `search` on remote storage needs --optuna-storage URL")
                optuna_storage = f"sqlite:///{files.dir}/optuna.db"
        # Workers run in other folders: give them an absolute path for local storage.
        where = store.root if store.is_local else store.uri
        weights = {"storage": where, "sweep": spec.name} if spec.save_weights else None
        from sweeps.search import SweepSearcher

        searcher = SweepSearcher(spec, done, best_params, optuna_storage, done_rows, weights)
        total = spec.n_planned
        progress = Progress(spec.name, total, len(done), out, progress_every)
        start = time.monotonic()
        if searcher.n_todo == 0:
            if out:
                print(f"[{spec.name}] all {total} trials are done; nothing to run", file=out)
            return _summary(spec, files, store, start)
        init_ray(address, num_cpus)
        check_resources(spec)
        if new_sweep:  # only once the sweep can start: a launch that fails leaves nothing to block a rerun
            store.write_bytes(files.spec_path, spec_to_yaml(spec).encode())
        if out:
            print(
                f"[{spec.name}] {searcher.n_todo} trials to run ({len(done)} already done), results in {files.dir}",
                file=out,
                flush=True,
            )
        static = {"git_commit": git_commit(), "versions": versions()}
        writer = ResultWriter(files, progress, static)
        try:
            _fit(spec, files, store, searcher, writer)
        except Exception:
            if writer.write_error is not None:  # storage full or gone: say so, not Tune's traceback
                raise writer.write_error from None
            raise
        if writer.write_error is not None:
            raise writer.write_error
        summary = _summary(spec, files, store, start)
        if out:
            print(progress.line(), file=out, flush=True)
            if not summary.complete:
                print(
                    f"[{spec.name}] stopped with {sum(summary.counts.values())} of {total} trials done; "
                    f"finish with: adx sweep resume {spec.name} --storage {store.uri}",
                    file=out,
                    flush=True,
                )
        return summary


def _fit(spec: SweepSpec, files: SweepFiles, store: Storage, searcher: SweepSearcher, writer) -> None:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from sweeps.trainable import trial_function

    scheduler = None
    if spec.scheduler:
        steps = max(spec.trial_spec(cell, spec.seeds[0]).steps for cell in spec.cells())
        scheduler = ASHAScheduler(
            time_attr="step",
            max_t=max(steps, spec.scheduler["grace_steps"] + 1),
            grace_period=spec.scheduler["grace_steps"],
            reduction_factor=spec.scheduler["reduction_factor"],
        )
    resources = {"cpu": spec.resources["cpu"], "gpu": spec.resources["gpu"]}
    ray_dir = files.dir + "/_ray" if store.is_local else tempfile.mkdtemp(prefix="adx-ray-")
    tuner = tune.Tuner(
        tune.with_resources(trial_function, resources),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=searcher.n_todo,
            max_concurrent_trials=spec.max_concurrent,
            reuse_actors=True,
            metric=searcher.metric,
            mode=searcher.mode,
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name,
        ),
        run_config=tune.RunConfig(
            name=f"run-{dt.datetime.now():%Y%m%d-%H%M%S}",
            storage_path=ray_dir,
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=spec.retries),
            callbacks=[writer],
        ),
    )
    import logging

    # Tune's end-of-run analysis looks for its own result files, which this engine does
    # not write (rows go to Parquet); its warning about them is noise.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    tuner.fit()


def _trial_name(trial) -> str:
    return f"{trial.config['trial_id']}-{trial.trial_id}"


def _summary(spec: SweepSpec, files: SweepFiles, store: Storage, start: float) -> SweepSummary:
    counts: dict[str, int] = {}
    for row in files.read_trials():
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    total = spec.n_planned
    return SweepSummary(spec.name, total, counts, time.monotonic() - start, sum(counts.values()) >= total, store.uri)


def sweep_status(storage: str, name: str) -> dict[str, Any]:
    """Counts per status and per cell of a stored sweep."""
    store = Storage(storage)
    spec = load_stored_spec(store, name)
    files = SweepFiles(store, name)
    rows = files.read_trials()
    per_seed = spec.search.n_trials if spec.search else 1
    cells = {c.label: {"planned": per_seed * len(spec.seeds)} for c in spec.cells()}
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
        cell = cells.setdefault(r["cell"], {"planned": 0})
        cell[r["status"]] = cell.get(r["status"], 0) + 1
    lock = files.dir + "/.lock"
    running = store.is_local and os.path.exists(lock)
    return {
        "name": name,
        "planned": spec.n_planned,
        "counts": counts,
        "cells": cells,
        "running": running,
        "complete": sum(counts.values()) >= spec.n_planned,
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
        out.append({"name": name, "planned": planned, "done": len(files.done_ids())})
    return out
