"""The Ray Tune trainable: one call of ``additive.run_trial`` per trial.

A trial that raises becomes a final report with status ``failed`` and its error text; a
NaN loss becomes ``diverged``. Neither is retried (the same seed would fail again);
retries are for crashes and lost nodes, which Ray sees as a dead worker.
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
from additive.spec import TrialSpec
from additive.train import run_trial
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

        return ray.get_runtime_context().get_node_id()[:12]
    except Exception:
        return f"pid{os.getpid()}"


def _save_weights(config: dict[str, Any], local_path: str) -> None:
    """Copy the trial's best weights to the sweep's storage (any pyarrow filesystem)."""
    from sweeps.results import Storage, SweepFiles

    target = config["weights"]
    files = SweepFiles(Storage(target["storage"]), target["sweep"])
    with open(local_path, "rb") as f:
        files.storage.write_bytes(files.weights_path(config["trial_id"]), f.read())


def trial_function(config: dict[str, Any]) -> None:
    from ray import tune

    started = time.time()
    spec = TrialSpec.from_dict(config["spec"])
    if not spec.threads:
        spec = dataclasses.replace(spec, threads=_threads())
    node = f"{_node_id()}@{socket.gethostname()}"
    last_step = 0

    def report(step: int, metrics: dict[str, float]) -> None:
        nonlocal last_step
        last_step = step
        out = {k: metrics[k] for k in CURVE_KEYS if k in metrics} | {"step": step}
        searched = config.get("selected_by")
        if searched and searched not in out:  # Tune wants the searched metric in every report
            out[searched] = float("nan")
        tune.report(out)

    final: dict[str, Any] = {"final": 1, "node": node, "started_at": started}
    tmp = tempfile.TemporaryDirectory(prefix="adx-weights-") if config.get("weights") else None
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
        final |= {
            "status": "ok",
            **result.metrics,
            "steps_done": result.steps_done,
            "best_step": result.best_step,
            "train_seconds": result.train_seconds,
            "data_seconds": result.data_seconds,
            "eval_seconds": result.eval_seconds,
            "device": result.device,
        }
    finally:
        if tmp is not None:
            tmp.cleanup()
    for key in METRICS:  # Tune checks that the searched metric is in every report
        final.setdefault(key, float("nan"))
    final["finished_at"] = time.time()
    final["step"] = max(last_step, final.get("steps_done", 0)) + 1
    tune.report(final)
