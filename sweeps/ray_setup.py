"""Starting or joining Ray for a sweep, and checking what the cluster can give.

Ray and its settings are touched only when a sweep runs, never at import.
"""

from __future__ import annotations

import os
from typing import Any

from additive.errors import AdxError
from sweeps.spec import SweepSpec


def _tune_environment() -> None:
    """Ray Tune settings, set when a sweep starts (never at import): no automatic
    loggers (rows and curves are ours), Tune's plain progress output off."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Tune's experiment checkpoint (every trial's state, rewritten again and again) is never
    # read: a sweep resumes from its rows. Once every 10 minutes instead of continually.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "600")


def init_ray(address: str | None = None, num_cpus: int | None = None, py_modules: list[str] | None = None) -> None:
    """Join ``address`` (``auto``, ``ray://...``, ``host:port``) or start an embedded
    local Ray (node address 127.0.0.1) without a dashboard. An already running Ray in this
    process is reused. ``py_modules``: the plugins' files and package folders, shipped to
    every worker through Ray's runtime environment (not inside a job of `ray job submit`,
    whose own runtime environment does that)."""
    import logging

    import ray

    if ray.is_initialized():
        return
    # Trial output stays in the Ray logs: errors reach the rows, progress is printed here.
    caller_sigterm = _caller_sigterm()
    quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False, "configure_logging": True}
    # A driver started by `ray job submit` runs in the job's runtime environment (its
    # --working-dir reaches every worker); adding modules to it here would replace that
    # environment, and Ray then removes the folder the driver runs in.
    if py_modules and "RAY_JOB_CONFIG_JSON_ENV_VAR" not in os.environ:
        quiet["runtime_env"] = {"py_modules": list(py_modules)}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            # "local": a new Ray of our own, even where `ray start` left a cluster to join
            ray.init(address="local", include_dashboard=False, num_cpus=num_cpus, _node_ip_address="127.0.0.1", **quiet)
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


def check_resources(spec: SweepSpec, joined: bool = False, out=None) -> None:
    """A trial must fit on the cluster. On the embedded local Ray (which never grows) a
    trial that asks for more than the machine has is an error; on a joined cluster the
    autoscaler may add nodes that have it (``cluster.yaml`` starts with no GPU worker), so
    that is a note and the trials wait for the nodes."""
    import ray

    total = ray.cluster_resources()
    for key, have in (("gpu", total.get("GPU", 0.0)), ("cpu", total.get("CPU", 0.0))):
        want = spec.resources[key]
        if want <= have:
            continue
        if joined:
            if out is not None:
                print(
                    f"[{spec.name}] the cluster has {have:g} {key.upper()}s now and a trial asks for {want:g}: "
                    "the trials wait until the autoscaler adds nodes that have them",
                    file=out,
                    flush=True,
                )
            continue
        raise AdxError(
            f"{spec.source}: resources.{key}: must be <= the {key.upper()}s of the Ray cluster ({have:g}), "
            f"but got {want:g}"
        )
