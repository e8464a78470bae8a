"""GPU throughput of the paper model: the paper's style vs this project's, and packing.

    python benchmarks/gpu.py [--dry] [--seconds S]

Prints JSON lines (samples/s):
- ``paper_style``: one trial as the paper's code runs it: a per-item DataLoader over
  images kept on the CPU, fp32;
- ``ours``: data kept on the GPU and sliced by index, bf16 autocast, channels_last,
  optionally torch.compile (``--compile``);
- ``packed_N``: aggregate samples/s of N trials sharing the GPU (N processes, as Ray runs
  fractional-GPU trials), for N = 1, 2, 4, 8;
- ``ensemble.MODEL.K``: aggregate samples/s of K members of one model trained as one
  vectorised ensemble in one process (``additive.ensemble``, bf16 autocast), for the
  ``mini`` and ``paper`` models and K = 1, 4, 8, 16, 64, beside ``packed.MODEL.K``, K
  separate processes of the same model (K = 1, 4, 8). The ensemble enters the trial path
  only if ``ensemble.mini.8`` is >= 3x ``packed.mini.8`` (docs/DESIGN.md).
``--dry`` runs every path for a few steps on the CPU with a tiny model, so this script
cannot rot on machines without a GPU.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from additive.data import make_datasets  # noqa: E402
from additive.spec import TrialSpec  # noqa: E402
from additive.train import build_models  # noqa: E402


def _spec(dry: bool, model: str = "paper") -> TrialSpec:
    if dry:
        return TrialSpec(
            image_size=16, width=32, depth=1, channels=8, n_train=512, n_val=64, n_test=64, n_oos=0, batch_size=32
        )
    if model == "mini":  # the `mini` preset's model
        return TrialSpec(
            image_size=32, width=256, depth=3, channels=64, encoder_depth=4, n_train=20000, n_val=64, n_test=64,
            n_oos=0, batch_size=64,
        )  # fmt: skip
    return TrialSpec(
        image_size=64,
        width=512,
        depth=5,
        channels=64,
        n_train=20000,
        n_val=64,
        n_test=64,
        n_oos=0,
        batch_size=64,
        encoder=os.environ.get("ADX_BENCH_ENCODER", "conv"),
    )


def _loop(spec: TrialSpec, device: torch.device, seconds: float, style: str, compile_: bool = False) -> float:
    torch.manual_seed(0)
    enc, dec = build_models(spec, device)
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, 1e-3)
    data_device = "cpu" if style == "paper" else device
    data = make_datasets(spec.latent_space(), spec.n_train, 64, 64, 0, spec.image_size, 0, data_device)
    amp = style == "ours" and device.type == "cuda"
    if style == "ours" and device.type == "cuda":
        enc = enc.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # not in torch's stubs
        dec = dec.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    model: Any = torch.nn.Sequential(enc, dec)
    if compile_:
        model = torch.compile(model)

    def step(x):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = ((model(x).float() - x) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    if style == "paper":
        images = data.train.images

        class Items(torch.utils.data.Dataset):
            def __len__(self):
                return len(images)

            def __getitem__(self, i):
                return images[i].float() / 255.0

        loader = torch.utils.data.DataLoader(Items(), batch_size=spec.batch_size, shuffle=True, drop_last=True)

        def batches():
            while True:
                for x in loader:
                    yield x.to(device, non_blocking=True)
    else:

        def batches():
            while True:
                idx = torch.randint(0, spec.n_train, (spec.batch_size,), device=device)
                x = data.train.batch(idx)
                yield x.contiguous(memory_format=torch.channels_last) if amp else x

    it = batches()
    for _ in range(5):
        step(next(it))
    if device.type == "cuda":
        torch.cuda.synchronize()
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        step(next(it))
        n += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n * spec.batch_size / (time.perf_counter() - t)


def _ensemble_loop(spec: TrialSpec, device: torch.device, seconds: float, k: int) -> float:
    """Aggregate samples/s of k members trained as one vectorised ensemble (one batch,
    shared by the members as in a restart group)."""
    from additive.ensemble import Ensemble
    from additive.train import seed_everything

    pairs = []
    for r in range(k):
        seed_everything(r)
        pairs.append(build_models(spec, device))
    ensemble = Ensemble(pairs)
    opt = torch.optim.Adam(ensemble.parameters(), 1e-3)
    data = make_datasets(spec.latent_space(), spec.n_train, 64, 64, 0, spec.image_size, 0, device)
    amp = device.type == "cuda"

    def step():
        idx = torch.randint(0, spec.n_train, (spec.batch_size,), device=device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            losses = ensemble.reconstruction(data.train.batch(idx))
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        opt.step()

    for _ in range(3):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        step()
        n += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return k * n * spec.batch_size / (time.perf_counter() - t)


def _worker(args) -> float:
    dry, seconds = args[:2]
    model = args[2] if len(args) > 2 else "paper"
    device = torch.device("cuda" if torch.cuda.is_available() and not dry else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(1)
    return _loop(_spec(dry, model), device, seconds, "ours")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry", action="store_true", help="a few seconds on the CPU with a tiny model")
    p.add_argument("--seconds", type=float, default=None, help="timed seconds per measurement")
    p.add_argument("--compile", action="store_true", help="also measure torch.compile")
    p.add_argument("--no-ensemble", action="store_true", help="skip the ensemble and per-model packing points")
    args = p.parse_args()
    dry = args.dry or not torch.cuda.is_available()
    seconds = args.seconds or (1.0 if dry else 20.0)
    device = torch.device("cpu" if dry else "cuda")
    card = torch.cuda.get_device_name(0) if not dry else "cpu (dry run)"
    spec = _spec(dry)

    def emit(name, value, **extra):
        print(
            json.dumps({"name": name, "value": round(value, 1), "unit": "samples/s", "device": card, **extra}),
            flush=True,
        )

    base = _loop(spec, device, seconds, "paper")
    emit("paper_style", base, detail="per-item DataLoader, fp32, one trial")
    ours = _loop(spec, device, seconds, "ours")
    emit("ours", ours, baseline=base, ratio=ours / base, detail="tensors on device, bf16 autocast, channels_last")
    if args.compile and not dry:
        comp = _loop(spec, device, seconds, "ours", compile_=True)
        emit("ours_compiled", comp, baseline=base, ratio=comp / base)
    ctx = mp.get_context("spawn")
    for n in (1, 2, 4, 8):
        with ctx.Pool(n) as pool:
            rates = pool.map(_worker, [(dry, seconds)] * n)
        emit(f"packed_{n}", sum(rates), baseline=base, ratio=sum(rates) / base, detail=f"{n} trials on one device")
    if args.no_ensemble:
        return
    for model in ("mini", "paper"):
        packed: dict[int, float] = {}
        for k in (2,) if dry else (1, 4, 8):
            with ctx.Pool(k) as pool:
                packed[k] = sum(pool.map(_worker, [(dry, seconds, model)] * k))
            emit(f"packed.{model}.{k}", packed[k], detail=f"{k} processes of the {model} model on one device")
        for k in (1, 2) if dry else (1, 4, 8, 16, 64):
            rate = _ensemble_loop(_spec(dry, model), device, seconds, k)
            extra = {"baseline": packed[k], "ratio": rate / packed[k]} if k in packed else {}
            emit(f"ensemble.{model}.{k}", rate, detail=f"{k} members as one vectorised ensemble", **extra)


if __name__ == "__main__":
    main()
