"""The Ray Tune trainable: one call of ``additive.run_trial`` per trial, or of
``additive.run_restarts`` per restart group (``restarts.k`` > 1).

A trial that raises becomes a final report with status ``failed`` and its error text; a
NaN loss becomes ``diverged``. Neither is retried (the same seed would fail again);
retries are for crashes and lost nodes, which Ray sees as a dead worker. A restart group
is one Tune trial: its members train one after another in the trial's slot (no slot waits
on another), and its final report carries one entry per member (``members``).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tempfile
import time
import traceback
from typing import Any

from additive.errors import DivergedError
from additive.precision import hardware
from additive.spec import RestartsSpec, TrialSpec
from additive.train import TrialResult, run_trial
from sweeps.rows import CURVE_KEYS, METRICS


def _threads() -> int:
    """The CPUs Ray gave this trial (at least 1), so concurrent trials do not
    oversubscribe a node."""
    try:
        import ray

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    except Exception:
        cpus = 1.0
    return max(1, int(round(cpus)))


def _node_id() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:
        return f"pid{os.getpid()}"


def _save_weights(config: dict[str, Any], local_path: str, trial_id: str | None = None) -> None:
    """Copy the trial's best weights to the sweep's storage (any pyarrow filesystem)."""
    from sweeps.results import Storage, SweepFiles

    target = config["weights"]
    files = SweepFiles(Storage(target["storage"]), target["sweep"])
    with open(local_path, "rb") as f:
        files.storage.write_bytes(files.weights_path(trial_id or config["trial_id"]), f.read())


# The time a scheduler (ASHA) reads: the step of every evaluation before the last. The last
# evaluation and the final report leave it out, so that no trial which trained its whole
# budget is stopped before its final row (ASHA stops a trial whose time reaches max_t).
RUNG_STEP = "rung_step"


def member_id(group_id: str, restart: int) -> str:
    return f"{group_id}-r{restart}"


def _facts(result: TrialResult) -> dict[str, Any]:
    return {
        **result.metrics,
        "steps_done": result.steps_done,
        "best_step": result.best_step,
        "train_seconds": result.train_seconds,
        "data_seconds": result.data_seconds,
        "eval_seconds": result.eval_seconds,
        "device": result.device,
        "precision": result.precision,
        "hardware": hardware(result.device),
    }


def _find_plugins(paths: list[str]) -> None:
    """Put the folders of the sweep's plugins on ``sys.path`` where they exist here (this
    machine, a shared filesystem); elsewhere Ray's runtime environment brings them."""
    import sys

    for path in paths:
        if os.path.isdir(path) and path not in sys.path:
            sys.path.insert(0, path)


def trial_function(config: dict[str, Any]) -> None:
    from ray import tune

    _find_plugins(config.get("plugin_paths") or [])
    started = time.time()
    spec = TrialSpec.from_dict(config["spec"])
    if not spec.threads:
        spec = dataclasses.replace(spec, threads=_threads())
    node = f"{_node_id()}@{socket.gethostname()}"
    last_step = 0

    def report(step: int, metrics: dict[str, float]) -> None:
        nonlocal last_step
        last_step = step
        out = {k: metrics[k] for k in CURVE_KEYS if k in metrics} | {"step": step, "timesteps_total": step}
        if step < spec.steps:  # what a scheduler reads (sweeps.engine.asha_rungs): never the last evaluation
            out[RUNG_STEP] = step
        searched = config.get("selected_by")
        if searched and searched not in out:  # Tune wants the searched metric in every report
            out[searched] = float("nan")
        tune.report(out)

    final: dict[str, Any] = {"final": 1, "node": node, "started_at": started}
    tmp = tempfile.TemporaryDirectory(prefix="adx-weights-") if config.get("weights") else None
    restarts = RestartsSpec(**config.get("restarts") or {})
    if config.get("topup"):  # more members for a group that stood out (sweeps.topup)
        final |= _run_topup(config, spec, tune.report)
        for key in METRICS:
            final.setdefault(key, float("nan"))
        final["finished_at"] = time.time()
        final["step"] = len(config["topup"]["members"]) * spec.steps + 1
        tune.report(final)
        return
    if restarts.k > 1:
        try:
            final |= _run_group(config, spec, restarts, tune.report, tmp.name if tmp else None)
        finally:
            if tmp is not None:
                tmp.cleanup()
        for key in METRICS:
            final.setdefault(key, float("nan"))
        final["finished_at"] = time.time()
        final["step"] = restarts.k * spec.steps + 1  # after every report of the members
        tune.report(final)
        return
    try:
        result = run_trial(spec, callback=report, weights_dir=tmp.name if tmp else None)
        if tmp is not None and result.weights_path is not None:
            _save_weights(config, result.weights_path)
    except DivergedError as exc:
        final |= {"status": "diverged", "error": str(exc)}
    except Exception as exc:
        tb = traceback.format_exc(limit=-3)
        final |= {"status": "failed", "error": f"{type(exc).__name__}: {exc}\n{tb}"}
    else:
        final |= {"status": "ok", **_facts(result)}
    finally:
        if tmp is not None:
            tmp.cleanup()
    for key in METRICS:  # Tune checks that the searched metric is in every report
        final.setdefault(key, float("nan"))
    final["finished_at"] = time.time()
    final["step"] = max(last_step, final.get("steps_done", 0)) + 1
    tune.report(final)


def _run_topup(config: dict[str, Any], spec: TrialSpec, report) -> dict[str, Any]:
    """Train the new members of a topped-up group (``config["topup"]["members"]``) one after
    another, each to the full budget; the final report carries one entry per member."""
    from additive.restarts import member_spec

    new = list(config["topup"]["members"])
    work = len(new) * spec.steps
    done = 0
    members = []
    for r in new:

        def on_eval(step: int, metrics: dict[str, float], r: int = r, before: int = done) -> None:
            out = {k: metrics[k] for k in CURVE_KEYS if k in metrics} | {
                "step": step,
                "restart": r,
                "timesteps_total": before + step,
                "group_progress": min((before + step) / work, 1.0),
            }
            report(out)

        entry: dict[str, Any] = {"trial_id": member_id(config["trial_id"], r), "restart": r, "selected": False}
        try:
            result = run_trial(member_spec(spec, r), callback=on_eval)
        except DivergedError as exc:
            entry |= {"status": "diverged", "error": str(exc)}
        except Exception as exc:
            entry |= {"status": "failed", "error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}"}
        else:
            entry |= {"status": "ok", **_facts(result)}
        members.append(entry)
        done += spec.steps
    return {"status": "ok", "members": members}


def _run_group(
    config: dict[str, Any], spec: TrialSpec, restarts: RestartsSpec, report, weights_dir: str | None
) -> dict[str, Any]:
    """Train a restart group; the final report's fields: the selected member's metrics at
    the top (what a search sees), and one entry per member in ``members``."""
    from additive.restarts import run_restarts

    work = restarts.cost(spec.steps) * spec.steps
    searched = config.get("selected_by")

    def on_eval(restart: int, step: int, metrics: dict[str, float]) -> None:
        out = {k: metrics[k] for k in CURVE_KEYS if k in metrics} | {
            "step": step,
            "restart": restart,
            "timesteps_total": metrics["group_steps"],  # TensorBoard's x axis: the group's steps so far
            "group_progress": min(metrics["group_steps"] / work, 1.0),
            "members_waiting": metrics["members_waiting"],
            "members_finished": metrics["members_finished"],
        }
        if searched and searched not in out:
            out[searched] = float("nan")
        report(out)

    tid = config["trial_id"]
    try:
        group = run_restarts(spec, restarts, callback=on_eval, weights_dir=weights_dir)
    except Exception as exc:  # before any member ran (the data, an injected fault)
        status = "diverged" if isinstance(exc, DivergedError) else "failed"
        tb = "" if status == "diverged" else "\n" + traceback.format_exc(limit=-3)
        return {"status": status, "error": f"{type(exc).__name__}: {exc}{tb}"}
    members = []
    for m in group.members:
        entry: dict[str, Any] = {
            "trial_id": member_id(tid, m.restart),
            "restart": m.restart,
            "status": m.status,
            "error": m.error,
            "selected": m.selected,
            "stopped_at_rung": m.stopped_at_rung,
        }
        if m.result is not None:
            entry |= _facts(m.result)
        members.append(entry)
    out: dict[str, Any] = {"members": members}
    best = group.best
    if best is None:
        statuses = {m.status for m in group.members}
        out |= {
            "status": "diverged" if statuses == {"diverged"} else "failed",
            "error": "no member of the group finished",
        }
        return out
    assert best.result is not None
    if weights_dir is not None and best.result.weights_path is not None:
        _save_weights(config, best.result.weights_path, member_id(tid, best.restart))
    return out | {"status": "ok", **_facts(best.result)}
