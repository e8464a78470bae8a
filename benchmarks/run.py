"""Benchmarks: one JSON object per line with name, value, unit (and baseline, ratio).

    python benchmarks/run.py [--quick] [--only render,metrics,...]

Writes nothing into the repository (sweeps run under a temporary folder). Record results
in BENCHMARKS.md with the machine and the command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from additive.latents import RADIUS, LatentSpace  # noqa: E402
from additive.render import COLORS, render_balls  # noqa: E402


def emit(name: str, value: float, unit: str, **extra) -> None:
    print(json.dumps({"name": name, "value": round(value, 4), "unit": unit, **extra}), flush=True)


def _best_of(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


# ----- render -----------------------------------------------------------------------------
def render_loop(z: np.ndarray, space: LatentSpace, size: int) -> np.ndarray:
    """The paper's style: one image at a time, one ball at a time (Python loop)."""
    out = np.empty((len(z), size, size, 3), dtype=np.uint8)
    pos = space.positions(z)
    centres = (np.arange(size) + 0.5) / size
    xs, ys = np.meshgrid(centres, 1 - centres)
    for n in range(len(z)):
        img = np.full((size, size, 3), 255.0)
        for i in range(pos.shape[1]):
            d = np.sqrt((xs - pos[n, i, 0]) ** 2 + (ys - pos[n, i, 1]) ** 2) * size
            a = np.clip(RADIUS * size - d + 0.5, 0, 1)[..., None]
            img = img * (1 - a) + np.array(COLORS[i]) * a
        out[n] = img.astype(np.uint8)
    return out


def render_pygame(z: np.ndarray, space: LatentSpace, size: int) -> np.ndarray:
    import pygame  # the paper's renderer; optional

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    surf = pygame.Surface((size, size))
    out = np.empty((len(z), size, size, 3), dtype=np.uint8)
    pos = space.positions(z)
    for n in range(len(z)):
        surf.fill((255, 255, 255))
        for i in range(pos.shape[1]):
            centre = (int(pos[n, i, 0] * size), int((1 - pos[n, i, 1]) * size))
            pygame.draw.circle(surf, COLORS[i], centre, int(RADIUS * size))
        out[n] = pygame.surfarray.array3d(surf).swapaxes(0, 1)
    return out


def bench_render(quick: bool) -> None:
    space = LatentSpace(dataset="block", support="full")
    n = 2000 if quick else 10000
    z = space.sample(n, 0)
    torch.set_num_threads(1)
    ours = _best_of(lambda: render_balls(z, space, 64))
    base = _best_of(lambda: render_loop(z[: n // 4], space, 64), repeat=1) * 4
    emit(
        "render",
        n / ours,
        "images/s",
        baseline=n / base,
        ratio=base / ours,
        detail="64 px, 1 thread, vs numpy per-image loop",
    )
    try:
        import pygame  # noqa: F401
    except ImportError:
        return
    pg = _best_of(lambda: render_pygame(z, space, 64))
    emit("render_vs_pygame", n / ours, "images/s", baseline=n / pg, ratio=pg / ours, detail="vs pygame per-image loop")


# ----- train step -------------------------------------------------------------------------
PRESETS = {
    "mini": dict(image_size=32, width=256, depth=3, channels=64, encoder_depth=4, batch_size=64, encoder="conv"),
    "cpu_preset": dict(image_size=32, width=256, depth=3, channels=32, batch_size=64, encoder="conv"),
    "paper_model": dict(image_size=64, width=512, depth=5, channels=64, batch_size=64, encoder="conv"),
}
# The trial shapes of the presets, for the precision and decoder-form benchmarks.
STEP_SHAPES = {
    "mini": PRESETS["mini"],
    "mini_block": dict(dataset="block", image_size=16, width=256, depth=3, channels=32, batch_size=32, encoder="conv"),
    "paper_model": PRESETS["paper_model"],
}


def time_train_step(spec, steps: int, fast: bool = True) -> tuple[float, float]:
    """Seconds for ``steps`` steps with real batches (index slicing of the uint8 set)
    and with one fixed batch; ``fast``: the trials' optimiser and layout
    (``make_optimiser``), else the plain Adam loop and NCHW layout."""
    from additive.data import make_datasets
    from additive.train import build_models, make_optimiser

    data = make_datasets(spec.latent_space(), spec.n_train, 64, 64, 0, spec.image_size, 0)
    enc, dec = build_models(spec, torch.device("cpu"))
    opt = make_optimiser(enc, dec, spec, torch.device("cpu"), fast=fast)
    fixed = data.train.batch(torch.arange(spec.batch_size))

    def step(x):
        loss = ((dec(enc(x)) - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    def real():
        for _ in range(steps):
            step(data.train.batch(torch.randint(0, spec.n_train, (spec.batch_size,))))

    def constant():
        for _ in range(steps):
            step(fixed)

    step(fixed)
    return _best_of(real, 2), _best_of(constant, 2)


def bench_train_step(quick: bool) -> None:
    from additive.spec import TrialSpec

    torch.set_num_threads(1)
    steps = 10 if quick else 40
    for name, kw in PRESETS.items():
        for decoder in ("additive", "monolithic"):
            spec = TrialSpec.from_dict(
                {"decoder": decoder, "n_train": 2048, "n_val": 64, "n_test": 64, "n_oos": 0, **kw}
            )
            t_real, t_fixed = time_train_step(spec, steps)
            plain = {}
            if name == "mini":  # what the fused Adam and channels-last layout buy, same process
                t_plain = time_train_step(spec, steps, fast=False)[0]
                plain = dict(baseline=steps * spec.batch_size / t_plain, ratio=t_plain / t_real)
            emit(
                f"train_step.{name}.{decoder}",
                steps * spec.batch_size / t_real,
                "samples/s",
                detail=f"{kw['image_size']} px, width {kw['width']}, {kw['channels']} ch, 1 thread",
                **plain,
            )
            emit(
                f"data_share.{name}.{decoder}",
                max(t_real - t_fixed, 0.0) / t_real,
                "fraction of step time",
                detail="(real batches - fixed batch) / real batches",
            )


def _step_model(shape: str, decoder: str):
    """Encoder, decoder (seeded) and one random batch of a preset's trial shape (``STEP_SHAPES``)."""
    from additive.spec import TrialSpec
    from additive.train import build_models

    kw = STEP_SHAPES[shape]
    spec = TrialSpec.from_dict({"decoder": decoder, "n_train": 64, "n_val": 8, "n_test": 8, "n_oos": 0, **kw})
    torch.manual_seed(0)
    enc, dec = build_models(spec, torch.device("cpu"))
    return enc, dec, torch.rand(spec.batch_size, 3, spec.image_size, spec.image_size)


def _step_timer(enc, dec, x, amp: bool):
    """A function that runs n training steps of (enc, dec) on batch x, as ``Training`` does
    (fused Adam, channels-last, bf16 autocast when ``amp``), and returns the seconds."""
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3, fused=True)
    enc.to(memory_format=torch.channels_last)
    dec.to(memory_format=torch.channels_last)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            loss = ((dec(enc(x)).float() - x) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def run(n: int) -> float:
        t = time.perf_counter()
        for _ in range(n):
            step()
        return time.perf_counter() - t

    run(5)
    return run


def _step_flops(enc, dec, x) -> float:
    """FLOPs of one forward + backward pass (torch.utils.flop_counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        ((dec(enc(x)) - x) ** 2).mean().backward()
    return float(counter.get_total_flops())


def _matmul_peak(dtype: torch.dtype) -> float:
    """FLOP/s of one thread on a large matrix product: what this core reaches at best."""
    a = torch.randn(1024, 1024).to(dtype)
    b = torch.randn(1024, 1024).to(dtype)
    a @ b
    t = _best_of(lambda: [a @ b for _ in range(8)], 3)
    return 8 * 2 * 1024**3 / t


def bench_precision(quick: bool) -> None:
    """Training steps in fp32 and under bf16 autocast, per preset shape and decoder, 1 thread,
    with FLOP/s against the core's measured matrix-product peak."""
    from additive.train import bf16_available

    torch.set_num_threads(1)
    peak = _matmul_peak(torch.float32)
    emit("peak.fp32_matmul", peak / 1e9, "GFLOP/s", detail="1024^3 matrix product, 1 thread")
    has_bf16 = bf16_available(torch.device("cpu"))
    if has_bf16:
        emit("peak.bf16_matmul", _matmul_peak(torch.bfloat16) / 1e9, "GFLOP/s", detail="same, bf16")
    steps = 10 if quick else 40
    for name in STEP_SHAPES:
        for decoder in ("additive", "monolithic"):
            enc, dec, x = _step_model(name, decoder)
            flops = _step_flops(enc, dec, x)
            fp32 = _step_timer(enc, dec, x, amp=False)
            t32 = min(fp32(steps) for _ in range(2)) / steps
            rate = flops / t32
            extra: dict = {"flop_per_sample": flops / len(x), "gflop_s": rate / 1e9, "of_peak": rate / peak}
            emit(f"precision.{name}.{decoder}.fp32", t32 * 1e3, "ms/step", **extra)
            if has_bf16:
                bf16 = _step_timer(enc, dec, x, amp=True)
                t16 = min(bf16(steps) for _ in range(2)) / steps
                emit(f"precision.{name}.{decoder}.bf16", t16 * 1e3, "ms/step", baseline=t32 * 1e3, ratio=t32 / t16)


def _packing_worker(shape: str, amp: bool, threads: int, steps: int, barrier, out) -> None:
    """One training process of ``bench_packing``: build the model, warm up, wait for the
    others, time ``steps`` steps and put the seconds on ``out``."""
    torch.set_num_threads(threads)
    enc, dec, x = _step_model(shape, "additive")
    run = _step_timer(enc, dec, x, amp)
    barrier.wait()
    out.put(run(steps))


def _packed_seconds(shape: str, amp: bool, procs: int, threads: int, steps: int) -> list[float]:
    """Seconds per step of each of ``procs`` processes training at once, ``threads`` each."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(procs), ctx.Queue()
    workers = [
        ctx.Process(target=_packing_worker, args=(shape, amp, threads, steps, barrier, out)) for _ in range(procs)
    ]
    for w in workers:
        w.start()
    seconds = [out.get() / steps for _ in workers]
    for w in workers:
        w.join()
    return seconds


def bench_packing(quick: bool) -> None:
    """How to spend the machine's cores on trials: one trial with all of them (threads = cores)
    against one single-thread trial per core (what a sweep with `resources: {cpu: 1}` runs),
    as training steps per second of the whole machine, the additive decoder of `mini` and
    `mini-block`, fp32 and (where the CPU has it) bf16."""
    from additive.train import bf16_available

    cores = os.cpu_count() or 1
    steps = 30 if quick else 100
    precisions = [False, True] if bf16_available(torch.device("cpu")) else [False]
    for shape in ("mini", "mini_block"):
        n = steps if shape == "mini" else 4 * steps
        for amp in precisions:
            tag = f"packing.{shape}.{'bf16' if amp else 'fp32'}"
            alone = _packed_seconds(shape, amp, 1, 1, n)[0]
            wide = _packed_seconds(shape, amp, 1, cores, n)[0]
            packed = _packed_seconds(shape, amp, cores, 1, n)
            emit(f"{tag}.one_trial_1_thread", 1 / alone, "steps/s", detail=f"{alone * 1e3:.1f} ms/step")
            emit(f"{tag}.one_trial_{cores}_threads", 1 / wide, "steps/s", detail=f"{wide * 1e3:.1f} ms/step")
            emit(
                f"{tag}.{cores}_trials_1_thread",
                sum(1 / s for s in packed),
                "steps/s",
                detail="ms/step of each: " + ", ".join(f"{s * 1e3:.1f}" for s in packed),
                baseline=1 / wide,
                ratio=sum(1 / s for s in packed) * wide,
            )


def bench_forms(quick: bool) -> None:
    """The additive decoder per block (the project's) against one batched network over the
    blocks (benchmarks/forms.py), same weights, fp32, 1 thread."""
    import copy

    from benchmarks.forms import BatchedAdditiveDecoder

    torch.set_num_threads(1)
    steps = 10 if quick else 40
    for name in ("mini", "mini_block"):
        enc, dec, x = _step_model(name, "additive")
        batched = BatchedAdditiveDecoder(dec)
        per_block = _step_timer(enc, dec, x, amp=False)
        one = _step_timer(copy.deepcopy(enc), batched, x, amp=False)
        t_block = min(per_block(steps) for _ in range(2)) / steps
        t_one = min(one(steps) for _ in range(2)) / steps
        emit(f"forms.{name}.batched", t_one * 1e3, "ms/step", baseline=t_block * 1e3, ratio=t_block / t_one)


# ----- sweeps -----------------------------------------------------------------------------
def _sweep(raw: dict, storage: str):
    from sweeps.engine import init_ray, run_sweep
    from sweeps.spec import parse_sweep_spec

    init_ray(None)
    spec = parse_sweep_spec(raw, raw["name"])
    t = time.perf_counter()
    run_sweep(spec, storage, out=None)
    wall = time.perf_counter() - t
    df = pd.read_parquet(f"{storage}/{spec.name}/trials")
    return wall, df


def bench_sweeps(quick: bool) -> None:
    import ray

    cores = os.cpu_count() or 1
    tmp = tempfile.mkdtemp(prefix="adx-bench-")
    t = time.perf_counter()
    from sweeps.engine import init_ray

    init_ray(None)
    emit("ray_start", time.perf_counter() - t, "s", detail="embedded local Ray, once per sweep")
    n = 48 if quick else 96  # the fixed start cost (workers importing torch) amortised
    tiny = {
        "image_size": 8,
        "n_train": 64,
        "n_val": 16,
        "n_test": 16,
        "n_oos": 16,
        "width": 8,
        "depth": 1,
        "channels": 8,
        "batch_size": 16,
        "steps": 1,
        "eval_every": 1,
    }
    raw = {"name": "overhead", "fixed": tiny, "grid": {"decoder": ["additive"]}, "seeds": n}
    wall, df = _sweep(raw, tmp)
    compute = (df["train_seconds"] + df["data_seconds"] + df["eval_seconds"]).sum()
    emit(
        "trial_overhead",
        (wall * cores - compute) / n,
        "s/trial",
        detail=f"{n} trials of 1 step on {cores} cores: (wall x cores - compute) / trials",
    )
    from sweeps.spec import load_sweep_spec

    presets = ["smoke"] if quick else ["smoke", "mini"]
    for preset in presets:
        spec = load_sweep_spec(os.path.join(os.path.dirname(__file__), "..", "sweeps", "specs", f"{preset}.yaml"))
        wall, df = _sweep(spec.raw | {"name": f"{preset}-bench", "save_weights": False}, tmp)
        compute = (df["train_seconds"] + df["data_seconds"] + df["eval_seconds"]).sum()
        emit(
            f"utilisation.{preset}",
            compute / (wall * cores),
            "fraction",
            detail=f"sum of trial compute / (wall {wall:.1f} s x {cores} cores), {len(df)} trials",
        )
    ray.shutdown()


def _peak_rss_of(cmd: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Run ``cmd``; return its wall seconds, the peak resident memory (MB) of that process
    alone (sampled every 0.2 s; Ray's own processes are not counted) and its stderr."""

    import psutil

    t = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:  # a file, not a pipe: a full pipe would stall the command
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, text=True, env=env)
        peak = 0.0
        watched = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                peak = max(peak, watched.memory_info().rss / 2**20)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.2)
        log.seek(0)
        err = log.read()
    if proc.wait() != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {err[-2000:]}")
    return time.perf_counter() - t, peak, err


def bench_scale(quick: bool) -> None:
    """Thousands of one-step trials: per-trial overhead of the engine, the driver's peak
    memory, and how long `sweep status`, `results table` and `results query` take on the
    finished sweep (each a whole command, Python's start included; median of 3)."""
    import statistics

    import yaml

    cores = os.cpu_count() or 1
    tiny = {
        "image_size": 8, "n_train": 64, "n_val": 16, "n_test": 16, "n_oos": 16, "width": 8, "depth": 1,
        "channels": 8, "batch_size": 16, "steps": 1, "eval_every": 1,
    }  # fmt: skip
    adx = [sys.executable, "-m", "sweeps.cli"]
    for n in (200, 600) if quick else (1000, 5000):
        tmp = tempfile.mkdtemp(prefix="adx-scale-")
        name = f"scale-{n}"
        spec = os.path.join(tmp, "spec.yaml")
        with open(spec, "w") as f:
            yaml.safe_dump({"name": name, "fixed": tiny, "grid": {"decoder": ["additive"]}, "seeds": n}, f)
        wall, peak, _ = _peak_rss_of([*adx, "sweep", "run", spec, "--storage", tmp, "--no-table"])
        df = pd.read_parquet(f"{tmp}/{name}/trials")
        compute = (df["train_seconds"] + df["data_seconds"] + df["eval_seconds"]).sum()
        emit(
            f"scale.{n}.overhead",
            (wall * cores - compute) / n,
            "core-s/trial",
            detail=f"{n} trials of 1 step on {cores} cores: (wall {wall:.0f} s x cores - compute {compute:.0f} s) / n",
        )
        emit(f"scale.{n}.driver_rss", peak, "MB", detail="peak resident memory of the `adx sweep run` process")
        for label, args in (
            ("status", ["sweep", "status", name]),
            ("table", ["results", "table", name]),
            ("query", ["results", "query", name]),
        ):
            times = []
            for _ in range(3):
                t = time.perf_counter()
                subprocess.run([*adx, *args, "--storage", tmp], check=True, capture_output=True)
                times.append(time.perf_counter() - t)
            emit(f"scale.{n}.{label}", statistics.median(times), "s", detail=f"`adx {' '.join(args)}`, whole command")


# ----- metrics and analysis ---------------------------------------------------------------
def bench_metrics(quick: bool) -> None:
    from additive.metrics import lms_tree

    rng = np.random.default_rng(0)
    n = 10000
    z_train, z_test = rng.uniform(size=(n, 4)), rng.uniform(size=(n, 4))
    t = _best_of(
        lambda: lms_tree(z_train, z_train[:, [0, 2, 1, 3]], z_test, z_test[:, [0, 2, 1, 3]], 2, search_partitions=True),
        1 if quick else 3,
    )
    emit("metrics.lms_tree_partitions", t, "s", detail="10,000 train + 10,000 test samples, d=4, blocks of 2")


def synthetic_rows(n: int) -> pd.DataFrame:
    from additive.spec import TrialSpec

    rng = np.random.default_rng(0)
    base = TrialSpec().to_dict()
    df = pd.DataFrame({k: [v] * n for k, v in base.items()})
    df["sweep"] = "bench"
    df["trial_id"] = [f"t{i}" for i in range(n)]
    df["decoder"] = rng.choice(["additive", "monolithic", "masked"], n)
    df["support"] = rng.choice(["l_shape", "full", "diagonal_band", "disconnected"], n)
    df["dependence"] = rng.choice(np.linspace(0, 0.9, 10), n)
    df["seed"] = rng.integers(0, 10, n)
    df["cell"] = df["decoder"] + df["support"]
    df["status"] = rng.choice(["ok"] * 9 + ["failed"], n)
    df["search_number"] = np.nan
    for m in ("rmse_id", "rmse_ood", "rmse_recombine", "val_loss"):
        df[m] = rng.uniform(0, 0.1, n)
    for m in ("lms_id", "lms_ood", "mcc_id"):
        df[m] = rng.uniform(50, 100, n)
    return df


def bench_analysis(quick: bool) -> None:
    from analysis.tables import results_table

    df = synthetic_rows(100_000)
    t = _best_of(lambda: results_table(df), 3)
    emit("analysis.table_100k", t, "s", detail="100,000 synthetic rows, 120 conditions x 3 decoders")


def bench_preflight(quick: bool) -> None:
    """The pre-scheduling check of a preset (sweeps.preflight): every distinct model
    configuration built on the CPU with one small batch, forward and backward; the first
    call in a process, as `adx sweep run` makes it, then the best of three."""
    from sweeps.spec import load_sweep_spec

    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sweeps", "specs")
    for name in ("mini", "mini-block", "paper", "paper-block"):
        first, best, configurations = _check_cost(load_sweep_spec(os.path.join(root, f"{name}.yaml")), quick)
        emit(f"preflight.{name}", best, "s", first=round(first, 3), configurations=configurations)


def _check_cost(spec, quick: bool) -> tuple[float, float, int]:
    """The pre-scheduling check of ``spec``: seconds of its first call in this process,
    the best of three (one when quick), and the model configurations it checked."""
    from sweeps.preflight import check_sweep

    t = time.perf_counter()
    report = check_sweep(spec)
    first = time.perf_counter() - t
    return first, _best_of(lambda: check_sweep(spec), 1 if quick else 3), report.configurations


_IMPORT_PLUGIN = """
import sys, time
import additive.models  # noqa: F401  (torch and the built-in models, as in a trial's worker)
from additive.plugins import load_plugin
t = time.perf_counter()
for path, field in ((sys.argv[1], "decoder"), (sys.argv[2], "support")):
    load_plugin(path, field)
print(time.perf_counter() - t)
"""


def bench_plugins(quick: bool) -> None:
    """What a plugin costs: the first import of the example plugins in a fresh process that
    has already imported torch and the models (as a trial's worker has), and the
    pre-scheduling check of examples/sweep.yaml (6 model configurations, two of them
    plugins) against the same sweep with built-ins only."""
    from sweeps.spec import load_sweep_spec

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root)
    cmd = [sys.executable, "-c", _IMPORT_PLUGIN, "examples.decoders:shared_body", "examples.supports:cross"]
    runs = [float(subprocess.run(cmd, env=env, cwd=root, check=True, capture_output=True, text=True).stdout)
            for _ in range(1 if quick else 3)]  # fmt: skip
    emit("plugins.import_first", min(runs), "s", detail="examples.decoders and examples.supports, in a fresh worker")
    spec = load_sweep_spec(os.path.join(root, "examples", "sweep.yaml"))
    built_in = load_sweep_spec(
        os.path.join(root, "examples", "sweep.yaml"),
        ["grid.support=[l_shape, full]", "grid.decoder=[additive, monolithic]"],
    )
    for name, s in (("plugins", spec), ("built_in", built_in)):
        _, best, configurations = _check_cost(s, quick)
        emit(f"plugins.preflight_{name}", best, "s", configurations=configurations)


BENCHES = {
    "render": bench_render,
    "train_step": bench_train_step,
    "precision": bench_precision,
    "forms": bench_forms,
    "packing": bench_packing,
    "metrics": bench_metrics,
    "analysis": bench_analysis,
    "preflight": bench_preflight,
    "plugins": bench_plugins,
    "sweeps": bench_sweeps,
    "scale": bench_scale,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repetitions (about 2-3 minutes on 2 cores)")
    p.add_argument(
        "--only", default=None, help=f"comma-separated subset of {list(BENCHES)} (default: all but scale and packing)"
    )
    args = p.parse_args()
    # only when asked for: `scale` runs thousands of trials (about 20 minutes on 2 cores),
    # `packing` needs the whole machine to itself (about 3 minutes)
    chosen = args.only.split(",") if args.only else [b for b in BENCHES if b not in ("scale", "packing")]
    print(
        json.dumps(
            {
                "name": "machine",
                "value": os.cpu_count(),
                "unit": "cores",
                "detail": f"{platform.processor() or platform.machine()}, torch {torch.__version__}",
            }
        )
    )
    for name in chosen:
        if name not in BENCHES:
            raise SystemExit(f"unknown benchmark {name!r}; choose from {list(BENCHES)}")
        BENCHES[name](args.quick)


if __name__ == "__main__":
    main()
