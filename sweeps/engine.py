"""Run a sweep: Ray Tune schedules the trials, the driver writes one Parquet row each.

``run_sweep`` starts (or joins) Ray, builds one ``Tuner`` fed by ``SweepSearcher`` and
writes every finished trial through ``ResultWriter``. Rows already on disk are never run
again, so an interrupted sweep (Ctrl-C, a killed driver) is finished by running it again
with ``resume=True``: no row is lost or duplicated.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from additive.errors import AdxError
from sweeps.catalog import count_statuses, error_summary, list_sweeps, load_stored_spec, sweep_status
from sweeps.lock import SweepLock
from sweeps.progress import Progress
from sweeps.ray_setup import _tune_environment, check_resources, init_ray
from sweeps.results import (
    Storage,
    SweepFiles,
    git_commit,
    versions,
)
from sweeps.spec import SweepSpec, pin_amp, spec_to_yaml, uses_auto_amp
from sweeps.writer import ResultWriter, make_row

if TYPE_CHECKING:
    from sweeps.search import SweepSearcher

__all__ = [
    "Progress",
    "ResultWriter",
    "SweepLock",
    "SweepSummary",
    "check_resources",
    "init_ray",
    "list_sweeps",
    "load_stored_spec",
    "make_row",
    "resolve_from_best",
    "run_sweep",
    "sweep_status",
]


@dataclass
class SweepSummary:
    name: str
    total: int
    counts: dict[str, int]
    wall_seconds: float
    complete: bool
    storage: str
    errors: list[dict[str, Any]] = field(default_factory=list)  # sweeps.catalog.error_summary


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
    notify = (lambda line: print(line, file=out, flush=True)) if out else None
    with SweepLock(files, wait=True, notify=notify):
        if files.exists() and overwrite and not resume:
            for sub in ("trials", "curves", "_ray", "_compacted"):
                store.delete_dir(store.path(spec.name, sub))
            if store.is_local and os.path.exists(files.dir + "/optuna.db"):
                os.unlink(files.dir + "/optuna.db")
        best_params = resolve_from_best(spec, store)
        new_sweep = not resume or not files.exists()
        for folder in (files.trials_dir, files.curves_dir):
            store.remove_temporaries(folder)
        done_counts = files.done_counts()
        done = set(done_counts)
        done_rows: dict[str, dict] = {}
        if spec.search is not None:
            from sweeps.search import group_outcomes

            done_rows = group_outcomes(files.read_trials())
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
        progress = Progress(
            spec.name, total, sum(done_counts.values()), out, progress_every, group_size=spec.restarts.k
        )
        start = time.monotonic()
        if searcher.n_todo == 0:
            if out:
                print(f"[{spec.name}] all {total} trials are done; nothing to run", file=out)
            return _summary(spec, files, store, start)
        from sweeps.preflight import check_sweep

        checked = check_sweep(spec, best_params)
        if out:
            print(
                f"[{spec.name}] checked {checked.configurations} model configuration(s) on the CPU "
                f"in {checked.seconds:.1f} s",
                file=out,
                flush=True,
            )
        if uses_auto_amp(spec):  # decided once, by timing, when the sweep starts; the stored spec keeps it
            spec = _decide_amp(spec, files, store, out) if new_sweep else _kept_amp(spec, store, out)
            searcher = SweepSearcher(spec, done, best_params, optuna_storage, done_rows, weights)
        init_ray(address, num_cpus, list(checked.plugin_sources))
        searcher.plugin_paths = checked.plugin_paths
        check_resources(spec, joined=address is not None, out=out)
        if out and address is None:
            _note_precision(spec, out)
        if new_sweep:  # only once the sweep can start: a launch that fails leaves nothing to block a rerun
            store.write_bytes(files.spec_path, spec_to_yaml(spec).encode())
        if out:
            print(
                f"[{spec.name}] {_todo(spec, searcher.n_todo)} to run ({sum(done_counts.values())} trials already done), "
                f"results in {files.dir}",
                file=out,
                flush=True,
            )
        static = {"git_commit": git_commit(), "versions": versions()}
        writer = ResultWriter(files, progress, static, asha_rungs(spec))
        _leave_the_jobs_folder()
        try:
            _fit(spec, files, store, searcher, writer)
        except Exception:
            if writer.write_error is not None:  # storage full or gone: say so, not Tune's traceback
                raise writer.write_error from None
            raise
        if writer.write_error is not None:
            raise writer.write_error
        try:
            files.compact()  # one file to read instead of one per trial (sweeps.compaction)
        except AdxError as exc:  # the rows are safe in their own files; only reads stay slower
            if out:
                print(f"[{spec.name}] could not compact the results ({exc}); they read as before", file=out)
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


TRIALS_PER_TUNER = 1000


def _leave_the_jobs_folder() -> None:
    """In a driver started by `ray job submit --working-dir`, work from the temporary folder
    instead of the job's copy of that folder: Ray may delete the copy while the job runs,
    once no worker on the node holds it (ray-project/ray#52343), and Tune's last step reads
    the working directory. Everything the driver needs from it (the spec, the plugins) is
    read by then."""
    if "RAY_JOB_CONFIG_JSON_ENV_VAR" in os.environ:
        os.chdir(tempfile.gettempdir())


def _fit(spec: SweepSpec, files: SweepFiles, store: Storage, searcher: SweepSearcher, writer) -> None:
    from ray.tune.schedulers import ASHAScheduler

    from sweeps.trainable import RUNG_STEP

    scheduler = None
    if spec.scheduler:
        scheduler = ASHAScheduler(
            time_attr=RUNG_STEP,
            max_t=_asha_max_t(spec),
            grace_period=spec.scheduler["grace_steps"],
            reduction_factor=spec.scheduler["reduction_factor"],
        )
    resources = {"cpu": spec.resources["cpu"], "gpu": spec.resources["gpu"]}
    ray_dir = files.dir + "/_ray" if store.is_local else tempfile.mkdtemp(prefix="adx-ray-")
    import logging

    # Tune's end-of-run analysis looks for its own result files, which this engine does
    # not write (rows go to Parquet); its warning about them is noise.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    started = dt.datetime.now()
    chunk = 0
    while searcher.n_todo > 0:
        # Tune keeps every trial of a run in the driver and scans them all at every step:
        # a fresh Tuner every TRIALS_PER_TUNER trials keeps memory and per-step work bounded
        # (BENCHMARKS.md, `scale`), at the cost of a short tail between runs.
        n = min(searcher.n_todo, TRIALS_PER_TUNER)
        before = len(writer.written)
        _tuner(spec, searcher, scheduler, resources, ray_dir, f"run-{started:%Y%m%d-%H%M%S}-{chunk}", n, writer).fit()
        chunk += 1
        if len(writer.written) - before < n:  # stopped (Ctrl-C, SIGTERM): the caller reports it
            return


def _tensorboard(spec: SweepSpec) -> list:
    """Ray Tune's own TensorBoard logger (tensorboardX) where the spec asks for it
    (``tensorboard: true``): one event file per trial under the sweep's Ray folder, every
    reported metric against the training step. Off by default: it costs a file and a
    writer per trial, which thousands of trials notice (BENCHMARKS.md, "Thousands of trials")."""
    if not spec.tensorboard:
        return []
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        raise AdxError("tensorboard: true needs tensorboardX: pip install 'additive-decoders[watch]'") from None
    from ray.tune.logger import TBXLoggerCallback

    return [TBXLoggerCallback()]


def _asha_max_t(spec: SweepSpec) -> int:
    assert spec.scheduler is not None
    return max(max(spec.trial_spec(cell, spec.seeds[0]).steps for cell in spec.cells()), spec.scheduler["grace_steps"])


def asha_rungs(spec: SweepSpec) -> list[int]:
    """The steps at which ASHA compares trials: grace_steps x reduction_factor^i below the
    longest trial's budget (a trial's last evaluation is never a rung: ``RUNG_STEP``)."""
    if not spec.scheduler:
        return []
    grace, factor, max_t = spec.scheduler["grace_steps"], spec.scheduler["reduction_factor"], _asha_max_t(spec)
    out, rung = [], grace
    while rung < max_t:
        out.append(rung)
        rung *= factor
    return out


def _tuner(spec: SweepSpec, searcher, scheduler, resources: dict, ray_dir: str, name: str, n: int, writer):
    from ray import tune

    from sweeps.trainable import trial_function

    return tune.Tuner(
        tune.with_resources(trial_function, resources),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=n,
            max_concurrent_trials=spec.max_concurrent,
            reuse_actors=True,
            metric=searcher.metric,
            mode=searcher.mode,
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=ray_dir,
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=spec.retries),
            callbacks=[writer, *_tensorboard(spec)],
        ),
    )


def _decide_amp(spec: SweepSpec, files: SweepFiles, store: Storage, out: TextIO | None) -> SweepSpec:
    """``amp: auto``: time a few training steps of each distinct model of the sweep in fp32
    and bf16 on this machine, with the threads a trial gets (``additive.precision``), pin
    the faster in the spec and record the measurement beside it (``precision.json``)."""
    import json

    import torch

    from additive.precision import choose_amp

    use_cuda = spec.resources["gpu"] > 0 and torch.cuda.is_available()
    trials = [spec.trial_spec(cell, spec.seeds[0]) for cell in spec.cells()]
    choice = choose_amp(
        [t for t in trials if t.amp == "auto"],
        threads=max(1, int(spec.resources["cpu"])),
        device="cuda" if use_cuda else "cpu",
    )
    if out:
        print(f"[{spec.name}] {choice.describe()}", file=out, flush=True)
    store.write_bytes(files.dir + "/precision.json", (json.dumps(choice.to_dict(), indent=1) + "\n").encode())
    return pin_amp(spec, choice.amp)


def _kept_amp(spec: SweepSpec, store: Storage, out: TextIO | None) -> SweepSpec:
    """A sweep resumed from a spec that says ``amp: auto`` (``adx sweep run SPEC --resume``)
    trains in the precision its start chose, as its stored spec says; never decides again."""
    stored = load_stored_spec(store, spec.name)
    amps = {stored.trial_spec(cell, stored.seeds[0]).amp for cell in stored.cells()}
    if len(amps) != 1 or not isinstance(next(iter(amps)), bool):
        raise AdxError(
            f"sweep {spec.name!r}: its stored spec does not say which precision `amp: auto` chose at its start "
            f"(amp: {sorted(map(str, amps))}); resume it with `adx sweep resume {spec.name}`"
        )
    amp = bool(next(iter(amps)))
    if out:
        print(f"[{spec.name}] amp: auto -> {'bf16' if amp else 'fp32'}, as chosen when the sweep started", file=out)
    return pin_amp(spec, amp)


def _note_precision(spec: SweepSpec, out: TextIO) -> None:
    """One line when trials ask for bf16 (``amp``) on a machine without bf16 hardware."""
    if not any(spec.trial_spec(cell, spec.seeds[0]).amp for cell in spec.cells()):
        return
    import torch

    from additive.train import bf16_available

    if not bf16_available(torch.device("cpu")) and not torch.cuda.is_available():
        print(
            f"[{spec.name}] amp: this CPU has no bf16 hardware (AVX512-BF16 or AMX); the trials train in fp32 "
            "(the rows' `precision` column says so)",
            file=out,
            flush=True,
        )


def _todo(spec: SweepSpec, groups: int) -> str:
    if not spec.grouped:
        return f"{groups} trials"
    schedule = spec.restarts.schedule
    if spec.restarts.rungs is not None:
        when = f"raced at rungs {', '.join(map(str, schedule))}"
    else:
        when = f"selected at step {schedule[0]}" if schedule else "all run in full"
    return f"{groups} restart groups of {spec.restarts.k} members ({when})"


def _trial_name(trial) -> str:
    return f"{trial.config['trial_id']}-{trial.trial_id}"


def _summary(spec: SweepSpec, files: SweepFiles, store: Storage, start: float) -> SweepSummary:
    rows = files.read_trials()
    counts = count_statuses(rows)
    total = spec.n_planned
    complete = sum(counts.values()) >= total
    return SweepSummary(spec.name, total, counts, time.monotonic() - start, complete, store.uri, error_summary(rows))


def resolve_from_best(spec: SweepSpec, storage: Storage) -> dict[int, dict[str, Any]]:
    """Per cell, the searched fields of the best ok trial of an earlier sweep (see
    ``sweeps.search.resolve_from_best``)."""
    from sweeps.search import resolve_from_best as resolve

    return resolve(spec, storage)
