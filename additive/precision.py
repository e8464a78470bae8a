"""Which precision trains faster here: ``amp: auto`` decided by timing, and the hardware a
number was measured on.

bf16 autocast is 1.4x faster per `mini` step on an Intel Xeon with AMX, 1.38x on an AMD
EPYC with AVX512-BF16, and 0.82x (slower) on an Intel Xeon with AVX512-BF16 and no AMX
(BENCHMARKS.md): CPU flags do not say which precision is faster, so ``amp: auto`` times a
few training steps of each precision on the trial's own model and picks the faster, fp32
unless bf16 is faster by a clear margin. A sweep decides once, at its start, and pins the
choice in its stored spec, so a sweep resumed on another machine keeps the precision it
started with (``sweeps.engine``).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from additive.spec import TrialSpec

if TYPE_CHECKING:  # torch is imported where a step is timed, not when this module is
    import torch

# bf16 must be at least this much faster (step time ratio fp32 / bf16) to be chosen: a
# smaller gain is within the noise of a few timed steps, and fp32 is the reference precision.
BF16_MARGIN = 1.05
TIMED_STEPS = 6
WARMUP_STEPS = 2


@dataclass(frozen=True)
class PrecisionChoice:
    """The outcome of ``choose_amp``: bf16 or not, and the seconds per step it compared
    (summed over the models timed; bf16 None where the hardware has no bf16)."""

    amp: bool
    fp32_seconds: float
    bf16_seconds: float | None
    models: int
    hardware: str

    @property
    def speedup(self) -> float | None:
        return None if not self.bf16_seconds else self.fp32_seconds / self.bf16_seconds

    def describe(self) -> str:
        name = "bf16" if self.amp else "fp32"
        if self.bf16_seconds is None:
            return f"amp: auto -> fp32 (no bf16 hardware on {self.hardware})"
        return (
            f"amp: auto -> {name} (a training step of each of {self.models} model(s), summed: "
            f"fp32 {self.fp32_seconds * 1e3:.1f} ms, "
            f"bf16 {self.bf16_seconds * 1e3:.1f} ms, {self.speedup:.2f}x; bf16 is chosen from {BF16_MARGIN:.2f}x; "
            f"{self.hardware})"
        )

    def to_dict(self) -> dict:
        return {
            "amp": self.amp,
            "fp32_seconds_per_step": self.fp32_seconds,
            "bf16_seconds_per_step": self.bf16_seconds,
            "models": self.models,
            "hardware": self.hardware,
            "margin": BF16_MARGIN,
        }


def bf16_available(device: torch.device) -> bool:
    """Whether this device has bf16 hardware: CUDA, or a CPU with AVX512-BF16 or AMX
    (oneDNN's bf16 kernels; elsewhere bf16 is emulated). ``amp`` on a device without it
    trains in fp32, with a warning. Having it does not make bf16 faster everywhere: on an
    Intel Xeon with AVX512-BF16 and no AMX a `mini` step is 0.82x as fast (BENCHMARKS.md)."""
    import torch

    if device.type == "cuda":
        return True
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # torch without these probes: read the CPU flags
        try:
            with open("/proc/cpuinfo") as f:
                flags = f.read()
        except OSError:
            return False
        return "avx512_bf16" in flags or "amx_bf16" in flags


def decide(fp32_seconds: float, bf16_seconds: float | None) -> bool:
    """bf16 where it was measured and is faster than fp32 by ``BF16_MARGIN``."""
    return bf16_seconds is not None and fp32_seconds >= BF16_MARGIN * bf16_seconds


def choose_amp(specs: Iterable[TrialSpec], threads: int = 1, device: str = "cpu") -> PrecisionChoice:
    """Time ``TIMED_STEPS`` training steps (after a warm-up) of each distinct model of
    ``specs`` in fp32 and under bf16 autocast, with ``threads`` torch threads, the two
    precisions interleaved twice and the faster of each kept; decide with ``decide``."""
    import torch

    dev = torch.device(device)
    distinct = {timing_key(s): s for s in specs}
    has_bf16 = bf16_available(dev)
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    fp32 = bf16 = 0.0
    try:
        with torch.random.fork_rng(devices=[]):
            for spec in distinct.values():
                timer = _step_timer(spec, dev)
                t32, t16 = [], []
                for _ in range(2):
                    t32.append(timer(False))
                    if has_bf16:
                        t16.append(timer(True))
                fp32 += min(t32)
                bf16 += min(t16) if t16 else 0.0
    finally:
        torch.set_num_threads(before)
    bf16_s = bf16 if has_bf16 else None
    return PrecisionChoice(decide(fp32, bf16_s), fp32, bf16_s, len(distinct), hardware(device))


def timing_key(spec: TrialSpec) -> tuple:
    """What a training step's cost depends on: the networks (``MODEL_FIELDS``), the latent
    layout they map to and the batch; not the support, the dependence or the seed."""
    from additive.check import MODEL_FIELDS

    return tuple(getattr(spec, name) for name in (*MODEL_FIELDS, "dataset", "n_objects", "batch_size"))


def _step_timer(spec: TrialSpec, device):
    """A function of ``amp`` that times ``TIMED_STEPS`` of ``Training``'s step (fused Adam,
    channels-last on the CPU) on one random batch of the trial's shape, in seconds per step."""
    import torch

    from additive.nets import build_models, make_optimiser

    torch.manual_seed(0)
    spec = TrialSpec.from_dict({**spec.to_dict(), "accelerator": device.type, "amp": False})
    encoder, decoder = build_models(spec, device)
    optimiser = make_optimiser(encoder, decoder, spec, device)
    x = torch.rand(spec.batch_size, 3, spec.image_size, spec.image_size, device=device)

    def step(amp: bool) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = ((decoder(encoder(x)).float() - x) ** 2).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    def timer(amp: bool) -> float:
        for _ in range(WARMUP_STEPS):
            step(amp)
        _sync(device)
        t = time.perf_counter()
        for _ in range(TIMED_STEPS):
            step(amp)
        _sync(device)
        return (time.perf_counter() - t) / TIMED_STEPS

    return timer


def _sync(device) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


# CPU features that change what the arithmetic of a trial gives or costs.
ARITHMETIC_FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2")


@lru_cache(maxsize=4)
def hardware(device: str = "cpu") -> str:
    """The hardware a trial runs on, as recorded in every row: the GPU's name on CUDA, else
    the CPU's model name and the features that change its arithmetic (AMX, AVX512-BF16,
    AVX-512, AVX2), e.g. ``Intel(R) Xeon(R) Processor [amx_bf16 amx_tile avx512_bf16 avx512f avx2]``."""
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.get_device_name(0)} (CUDA)"
    model, flags = _cpuinfo()
    present = [f for f in ARITHMETIC_FLAGS if f in flags]
    return f"{model} [{' '.join(present) or 'none of ' + ', '.join(ARITHMETIC_FLAGS)}]"


def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = platform.processor() or platform.machine(), set[str]()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and value.strip():
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, flags
