"""``adx``: one command line for the project, a thin layer over library calls.

Every ``AdxError`` is printed as ``Error: ...`` with exit code 1 and no traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import fields

from additive.errors import AdxError

DEFAULT_STORAGE = "results"
PREVIEW_FIELDS = (
    "dataset",
    "n_objects",
    "support",
    "support_param",
    "l_density",
    "dependence_mechanism",
    "dependence",
    "image_size",
    "seed",
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="adx",
        description="Additive decoders: sweeps over identifiability and Cartesian-product extrapolation.",
    )
    sub = p.add_subparsers(dest="group", metavar="{data,trial,sweep,results}")
    sub.required = True

    # data
    data = sub.add_parser("data", help="look at the synthetic data").add_subparsers(dest="cmd", metavar="{preview}")
    data.required = True
    pv = data.add_parser("preview", help="sample images and the latent support with ID and OOS points")
    from additive.spec import TrialSpec

    types = {"int": int, "float": float, "str": str, "float | None": float}
    for f in fields(TrialSpec):  # the data fields, with the trial's own defaults and help
        if f.name in PREVIEW_FIELDS:
            pv.add_argument(
                f"--{f.name.replace('_', '-')}", type=types[str(f.type)], default=f.default, help=f.metadata.get("help")
            )
    pv.add_argument("--out", required=True, help="output image (.png or .pdf)")

    # trial
    trial = sub.add_parser("trial", help="one trial in this process").add_subparsers(
        dest="cmd", metavar="{run,fields,retrain}"
    )
    trial.required = True
    tr = trial.add_parser("run", help="train and evaluate one trial; prints its metrics as JSON")
    tr.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a trial field")
    tr.add_argument("--weights", default=None, help="folder to save the best weights in")
    tr.add_argument(
        "--restarts", type=int, default=1, metavar="K", help="train K initialisations, keep one (default 1)"
    )
    tr.add_argument(
        "--select-at", type=int, default=None, metavar="STEP", help="with --restarts: choose the member at this step"
    )
    tr.add_argument(
        "--rungs",
        default=None,
        metavar="S1,S2,...",
        help="with --restarts: race the members, halving them at each step, one kept at the last",
    )
    trial.add_parser("fields", help="every trial field with its type, default and help")
    rt = trial.add_parser("retrain", help="train one trial of a sweep again from its row and save its weights")
    rt.add_argument("name", metavar="SWEEP")
    rt.add_argument("trial_id", metavar="TRIAL_ID")
    _storage(rt)

    # sweep
    sweep = sub.add_parser("sweep", help="run and inspect sweeps").add_subparsers(
        dest="cmd", metavar="{run,resume,status,list,compact,publish,topup}"
    )
    sweep.required = True
    run = sweep.add_parser("run", help="run a sweep spec (YAML)")
    run.add_argument("spec")
    _storage(run)
    run.add_argument("--name", default=None, help="sweep name (default: the spec's `name`)")
    run.add_argument("--address", default=None, help="join a Ray cluster: auto, ray://HOST:10001 or HOST:PORT")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a spec key, e.g. --set fixed.steps=2000 --set seeds=5",
    )
    run.add_argument("--resume", action="store_true", help="finish an existing sweep of that name")
    run.add_argument("--overwrite", action="store_true", help="delete an existing sweep of that name first")
    run.add_argument(
        "--optuna-storage", default=None, help="RDB URL of the Optuna studies (default: SQLite in the sweep)"
    )
    run.add_argument("--num-cpus", type=int, default=None, help="CPUs of the embedded local Ray (default: all)")
    run.add_argument("--no-table", action="store_true", help="do not print the results table at the end")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="one tiny CPU trial per distinct model configuration (a few steps, one seed), as NAME-dry",
    )
    res = sweep.add_parser("resume", help="finish an interrupted sweep")
    res.add_argument("name")
    _storage(res)
    res.add_argument("--address", default=None)
    res.add_argument("--optuna-storage", default=None)
    res.add_argument("--num-cpus", type=int, default=None)
    res.add_argument("--no-table", action="store_true")
    st = sweep.add_parser("status", help="counts per status and per cell")
    st.add_argument("name")
    _storage(st)
    st.add_argument("--json", action="store_true")
    ls = sweep.add_parser("list", help="the sweeps in a storage root")
    _storage(ls)
    cp = sweep.add_parser(
        "compact", help="fold a sweep's per-trial files into one file each for rows and curves (faster reads)"
    )
    cp.add_argument("name")
    _storage(cp)

    tu = sweep.add_parser(
        "topup",
        help="more members for the restart groups whose kept validation loss stands out in their cell "
        "(no ground truth), the lowest validation loss kept",
    )
    tu.add_argument("name")
    _storage(tu)
    tu.add_argument("--max-members", type=int, default=4, help="members a topped-up group ends with (default 4)")
    tu.add_argument(
        "--fence", type=float, default=1.5, help="Tukey's k: the fence is q3 + k (q3 - q1) of log10 losses (1.5)"
    )
    tu.add_argument("--dry-run", action="store_true", help="print the groups the rule flags; train nothing")
    tu.add_argument("--address", default=None)
    tu.add_argument("--num-cpus", type=int, default=None)

    pb = sweep.add_parser(
        "publish",
        help="copy a sweep's spec, rows and learning curves (no weights, no Ray state) into the published folder",
    )
    pb.add_argument("name")
    _storage(pb)
    pb.add_argument("--to", default="results/published", help="the published folder (default: ./results/published)")

    # results
    results = sub.add_parser("results", help="query results, tables, plots and reports")
    from analysis.cli import add_results_commands

    add_results_commands(results)
    return p


def _storage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", default=DEFAULT_STORAGE, help="results root: a folder or a URI (default: ./results)")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"Warning: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    shown, warnings.showwarning = warnings.showwarning, _show_warning  # "Warning: ...", no source line
    terminated, restore = _stop_on_sigterm()
    try:
        code = _dispatch(args) or 0
    except AdxError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        code = 130
    finally:
        warnings.showwarning = shown
        restore()
    # SIGTERM (ray job stop, SLURM, Kubernetes) stops like Ctrl-C, with the shell's code for it.
    return 143 if terminated() and code == 130 else code


def entry() -> None:
    """The ``adx`` command: ``main``, then the process ends at once where no Ray was started.

    Arrow's thread pools can be torn down while a worker is still alive during the
    interpreter's finalisation, which aborts a process whose work is done and written
    ("terminate called without an active exception", exit 134; seen on 1 run in 20 of
    `adx sweep publish`, apache/arrow#34314). A command that started no Ray has nothing left
    to do at exit, so it flushes its output and ends with its own code, skipping that
    teardown; a command that ran Ray exits normally so Ray's own exit handlers run.

    A reader that stops early (``adx results table map | head``) closes the pipe: the
    command then ends quietly with 141 (128 + SIGPIPE, as a shell tool would), not with a
    traceback."""
    try:
        code = main()
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        # Python's own advice: point stdout at devnull so the exit's flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141
    if "ray" in sys.modules:
        sys.exit(code)
    os._exit(code)


def _stop_on_sigterm() -> tuple[Callable[[], bool], Callable[[], object]]:
    """Turn SIGTERM into the Ctrl-C path (a clean, resumable stop); returns a function that
    says whether it came and one that puts the previous handler back."""
    import signal
    import threading

    seen: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        return (lambda: False), (lambda: None)

    def on_term(signum, frame) -> None:
        seen.append(signum)
        os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGTERM, on_term)
    return (lambda: bool(seen)), (lambda: signal.signal(signal.SIGTERM, previous))


def _dispatch(args: argparse.Namespace) -> int | None:
    if args.group == "data":
        from additive.preview import preview_data
        from additive.spec import TrialSpec

        spec = TrialSpec.from_dict({name: getattr(args, name) for name in PREVIEW_FIELDS})
        print(preview_data(spec.latent_space(), args.out, image_size=spec.image_size, seed=spec.seed))
        return 0
    if args.group == "trial":
        return _trial(args)
    if args.group == "sweep":
        return _sweep(args)
    from analysis.cli import run_results_command

    return run_results_command(args)


def _trial(args: argparse.Namespace) -> int:
    import yaml

    from additive.spec import TrialSpec

    if args.cmd == "fields":
        for f in fields(TrialSpec):
            print(f"{f.name:22s} {str(f.type):12s} default {f.default!r:12s} {f.metadata.get('help', '')}")
        return 0
    if args.cmd == "retrain":
        return _retrain(args.name, args.trial_id, args.storage)
    from additive.train import run_trial

    values = {}
    for item in args.set:
        if "=" not in item:
            raise AdxError(f"--set: must be FIELD=VALUE, but got {item!r}")
        key, text = item.split("=", 1)
        values[key.strip()] = yaml.safe_load(text)
    spec = TrialSpec.from_dict(values)

    def line(s: int, m: dict, who: str = "") -> None:
        print(
            f"{who}step {s}: train_loss {m['train_loss']:.5f} val_loss {m['val_loss']:.5f}", file=sys.stderr, flush=True
        )

    if args.restarts != 1 or args.select_at is not None or args.rungs is not None:
        return _trial_restarts(spec, args, line)
    result = run_trial(spec, callback=line, weights_dir=args.weights)
    print(json.dumps({**result.metrics, "steps_done": result.steps_done, "train_seconds": result.train_seconds}))
    return 0


def _trial_restarts(spec, args: argparse.Namespace, line) -> int:
    """`adx trial run --restarts K [--select-at S]`: a restart group in this process; prints
    the selected member's metrics and every member's outcome as JSON."""
    from additive.errors import SpecError
    from additive.restarts import run_restarts
    from additive.spec import RestartsSpec

    try:
        rungs = None if args.rungs is None else tuple(int(x) for x in args.rungs.split(",") if x.strip())
    except ValueError:
        raise AdxError(f"--rungs: must be comma-separated steps, but got {args.rungs!r}") from None
    try:
        restarts = RestartsSpec(k=args.restarts, select_at=args.select_at, rungs=rungs)
    except SpecError as exc:
        raise AdxError(f"--restarts / --select-at / --rungs: {exc.requirement or exc}") from None
    group = run_restarts(spec, restarts, callback=lambda r, s, m: line(s, m, f"member {r} "), weights_dir=args.weights)
    members = [
        {"restart": m.restart, "status": m.status, "selected": m.selected, "val_loss": m.val_loss,
         "steps_done": None if m.result is None else m.result.steps_done, "stopped_at_rung": m.stopped_at_rung}
        for m in group.members
    ]  # fmt: skip
    best = group.best
    metrics = {} if best is None or best.result is None else best.result.metrics
    print(json.dumps({**metrics, "selected": group.selected, "members": members}))
    return 0 if best is not None else 1


def _retrain(name: str, trial_id: str, storage: str) -> int:
    """Train one trial again from its results row (same fields, seed and threads, so the
    same model on the same machine) and save its weights where plots look for them."""
    import dataclasses
    import tempfile
    from pathlib import Path

    from additive.spec import TrialSpec
    from additive.train import run_trial
    from sweeps.engine import load_stored_spec
    from sweeps.results import Storage, SweepFiles, trial_fields_from_row

    store = Storage(storage)
    sweep = load_stored_spec(store, name)
    files = SweepFiles(store, name)
    rows = [r for r in files.read_trials() if r["trial_id"] == trial_id]
    if not rows:
        raise AdxError(f"trial {trial_id!r}: no row in sweep {name!r} (see `adx results query {name}`)")
    spec = TrialSpec.from_dict({**trial_fields_from_row(rows[0]), "fault": "none"})
    if not spec.threads:  # the CPUs the sweep gave each trial
        spec = dataclasses.replace(spec, threads=max(1, int(round(sweep.resources["cpu"]))))
    print(f"retraining {trial_id} of {name} ({spec.steps} steps)", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="adx-retrain-") as tmp:
        result = run_trial(spec, weights_dir=tmp)
        target = files.weights_path(trial_id)
        store.write_bytes(target, Path(tmp, "weights.pt").read_bytes())
    row_lms, new_lms = rows[0].get("lms_id"), result.metrics["lms_id"]
    print(f"saved {target}; lms_id {new_lms:.3f} (row: {row_lms if row_lms is None else f'{row_lms:.3f}'})")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from sweeps import engine

    if args.cmd == "list":
        rows = engine.list_sweeps(args.storage)
        if not rows:
            print(f"no sweeps in {args.storage}")
        for r in rows:
            print(f"{r['name']:30s} {r['done']}/{r['planned']} trials")
        return 0
    if args.cmd == "compact":
        from sweeps.results import Storage, SweepFiles

        store = Storage(args.storage)
        engine.load_stored_spec(store, args.name)  # a clear error for an unknown sweep
        added = SweepFiles(store, args.name).compact()
        print(f"{args.name}: {added} trial files folded into _compacted/trials.parquet")
        return 0
    if args.cmd == "topup":
        from additive.restarts import TopUpRule
        from sweeps.topup import run_topup

        rule = TopUpRule(max_members=args.max_members, fence=args.fence)  # its errors name the field
        run_topup(args.name, args.storage, rule, args.address, sys.stderr, args.num_cpus, args.dry_run)
        return 0
    if args.cmd == "publish":
        from sweeps.publish import BUDGET_BYTES, publish, published_bytes

        done = publish(args.name, args.storage, args.to)
        used = published_bytes(args.to)
        print(
            f"{done.name}: {done.rows} rows and {done.curve_rows} curve points ({done.bytes / 1024:.0f} KiB) "
            f"published to {done.folder}; the published folder holds {used / 2**20:.2f} MiB of its "
            f"{BUDGET_BYTES / 2**20:.0f} MiB budget"
        )
        if used > BUDGET_BYTES:
            raise AdxError(
                f"{args.to}: must stay within {BUDGET_BYTES / 2**20:.0f} MiB, but holds {used / 2**20:.2f} MiB"
            )
        return 0
    if args.cmd == "status":
        st = engine.sweep_status(args.storage, args.name)
        if args.json:
            print(json.dumps(st, indent=2))
            return 0
        counts = _counts(st["counts"]) if st["counts"] else "no rows yet"
        state = "complete" if st["complete"] else ("running" if st["running"] else "incomplete")
        print(f"{st['name']}: {sum(st['counts'].values())}/{st['planned']} trials ({counts}); {state}")
        if "groups" in st:
            g = st["groups"]
            race = f"raced at rungs {', '.join(map(str, g['rungs']))}" if g["rungs"] else "every member in full"
            trained = "" if g["cost_trained"] is None else f", {g['cost_trained']:.2f} as trained"
            print(
                f"  restart groups: {g['done']}/{g['planned']} done, {g['k']} members each, {race}; "
                f"cost per group in full runs: {g['cost_planned']:.2f} planned{trained}"
            )
        unit = "groups" if "groups" in st else "trials"
        seeds = ", ".join(f"{seed}: {v['done']}/{v['planned']}" for seed, v in st["seeds"].items())
        print(f"  {unit} done per seed: {seeds}")
        if st["pace"] is not None and st["pace"]["per_hour"]:
            p = st["pace"]
            left = "" if st["complete"] else f"; about {_hours(p['hours_left'])} left at that rate"
            print(
                f"  pace: {p['per_hour']:.1f} {unit}/h over {_hours(p['running_hours'])} of running "
                f"({p['stretches']} stretch(es)){left}"
            )
        for label, c in st["cells"].items():
            parts = ", ".join(f"{k} {v}" for k, v in c.items() if k != "planned")
            print(f"  {label}: {parts or 'none done'} of {c['planned']}")
        _print_errors(st["errors"])
        return 0
    from sweeps.spec import load_sweep_spec

    if getattr(args, "num_cpus", None) is not None and args.num_cpus < 1:
        raise AdxError(f"--num-cpus: must be a positive integer, but got {args.num_cpus}")
    if args.cmd == "run":
        spec = load_sweep_spec(args.spec, args.set, args.name)
        if args.dry_run:
            from sweeps.dryrun import dry_run_spec

            spec = dry_run_spec(spec)
            print(
                f"[{spec.name}] dry run: {len(spec.cells())} trial(s), one per distinct model configuration, "
                f"{spec.fixed['steps']} steps on the CPU",
                file=sys.stderr,
                flush=True,
            )
        summary = engine.run_sweep(
            spec,
            args.storage,
            args.address,
            resume=args.resume,
            overwrite=args.overwrite or args.dry_run,
            optuna_storage=args.optuna_storage,
            num_cpus=args.num_cpus,
        )
    else:
        from sweeps.results import Storage

        spec = engine.load_stored_spec(Storage(args.storage), args.name)
        summary = engine.run_sweep(
            spec,
            args.storage,
            args.address,
            resume=True,
            optuna_storage=args.optuna_storage,
            num_cpus=args.num_cpus,
        )
    if not summary.complete:
        return 130
    if not args.no_table:
        from analysis.tables import print_sweep_table

        print_sweep_table(args.storage, spec.name)
    _print_errors(summary.errors)
    if summary.total and not summary.counts.get("ok"):
        raise AdxError(
            f"no trial of sweep {spec.name!r} succeeded ({_counts(summary.counts)}); the errors are listed above"
        )
    return 0


def _hours(h: float) -> str:
    return f"{int(h)} h {round((h - int(h)) * 60):02d} min" if h >= 1 else f"{h * 60:.0f} min"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no rows"


def _print_errors(errors: list[dict]) -> None:
    """The distinct errors of a sweep's failed and diverged trials, with counts and ids."""
    from sweeps.catalog import format_errors

    if not errors:
        return
    n = sum(e["count"] for e in errors)
    print(f"{n} trial(s) failed or diverged, {len(errors)} distinct error(s):")
    print("\n".join(format_errors(errors)))


if __name__ == "__main__":  # pragma: no cover
    entry()
