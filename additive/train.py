"""Run one trial from one ``TrialSpec``: data, training, model selection, metrics.

``run_trial(spec)`` is the single entry point the sweep layer calls; it knows nothing of
Ray. Model selection keeps the state with the best validation reconstruction loss and
never looks at ground-truth latents.
"""

from __future__ import annotations

import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from additive.data import Datasets, Split, make_datasets
from additive.errors import BudgetError, DivergedError
from additive.evaluate import evaluate, mean_squared_error
from additive.nets import build_models, make_optimiser
from additive.precision import bf16_available, choose_amp
from additive.spec import TrialSpec

Callback = Callable[[int, dict[str, float]], None]
Observer = Callable[[int, nn.Module, nn.Module, Datasets], None]


@dataclass
class TrialResult:
    """Final metrics of a trial and what analysis needs later."""

    metrics: dict[str, float]
    curves: list[dict[str, float]] = field(default_factory=list)
    steps_done: int = 0
    best_step: int = 0
    train_seconds: float = 0.0
    data_seconds: float = 0.0
    eval_seconds: float = 0.0
    device: str = "cpu"
    precision: str = "fp32"  # bf16 when training ran under bf16 autocast
    weights_path: str | None = None


@dataclass
class _Best:
    """The state kept by model selection: the lowest validation loss so far."""

    val_loss: float = math.inf
    train_loss: float = math.nan
    step: int = 0
    state: dict | None = None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from additive.errors import AdxError

        raise AdxError("`accelerator` is 'cuda' but no CUDA device is available")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _lr_lambda(spec: TrialSpec) -> Callable[[int], float]:
    """The learning rate at a step as a fraction of ``lr``: the schedule of ``lr_decay``,
    times a linear ramp over the first ``lr_warmup`` steps (step k of the ramp, counting
    from 1, trains at k / lr_warmup)."""
    decay = _decay_lambda(spec)
    if spec.lr_warmup:
        return lambda step: min(1.0, (step + 1) / spec.lr_warmup) * decay(step)
    return decay


def _decay_lambda(spec: TrialSpec) -> Callable[[int], float]:
    if spec.lr_decay == "step":
        every = spec.lr_decay_every or max(spec.steps // 3, 1)
        return lambda step: spec.lr_decay_gamma ** (step // every)
    if spec.lr_decay == "cosine":
        floor = spec.lr_floor
        return lambda step: floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(step / spec.steps, 1.0)))
    return lambda step: 1.0


def recalibrate_batch_norm(encoder, decoder, images: Split, idx: torch.Tensor, batch_size: int) -> None:
    """Recompute every BatchNorm layer's statistics as plain averages over the training
    images ``idx``, in batches of the training batch size ("precise BN").

    The running averages BatchNorm keeps during training lag behind weights that still
    move; evaluating with them can make the eval-mode loss several times the training
    loss and model selection a matter of luck. Recomputing them from the current weights
    makes evaluation match the network being evaluated. Parameters do not change.
    """
    norms = [m for net in (encoder, decoder) for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or len(idx) < 2:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    encoder.train()
    decoder.train()
    try:
        with torch.no_grad():
            for i in range(0, max(len(idx) - batch_size, 0) + 1, batch_size):
                decoder(encoder(images.batch(idx[i : i + batch_size])))
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum


@contextmanager
def _evaluating(encoder: nn.Module, decoder: nn.Module) -> Iterator[None]:
    """Both networks in eval mode without gradients, back in training mode afterwards."""
    encoder.eval()
    decoder.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        encoder.train()
        decoder.train()


def validation_loss(encoder, decoder, data: Datasets, bf16: bool = False) -> float:
    """Mean pixel MSE on the validation set (the model-selection criterion); ``bf16``: the
    networks under bf16 autocast (``val_amp``), the squared errors summed in fp32."""
    with _evaluating(encoder, decoder):
        device = next(iter(encoder.parameters()), torch.empty(0)).device.type
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            return mean_squared_error(encoder, decoder, data.val)


class Training:
    """One network pair in training: networks, optimiser, schedule, batch order and model
    selection, advanced a number of steps at a time (``advance``).

    ``run_trial`` advances one to ``steps``; a restart group (``additive.restarts``) advances
    each member to the selection step, then only the selected one on, over the same data.
    Advancing in pieces computes exactly what advancing at once does.
    """

    def __init__(
        self,
        spec: TrialSpec,
        data: Datasets,
        device: torch.device,
        callback: Callback | None = None,
        observe: Observer | None = None,
    ):
        self.spec, self.data, self.device = spec, data, device
        self.callback, self.observe = callback, observe
        # The data never touch torch's random state, so seeding with `seed` here is the
        # state a plain trial had after drawing its data.
        seed_everything(spec.effective_init_seed if spec.effective_init_seed is not None else spec.seed)
        self.encoder, self.decoder = build_models(spec, device)
        self.optimiser = make_optimiser(self.encoder, self.decoder, spec, device)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimiser, _lr_lambda(spec))
        amp = spec.amp
        if amp == "auto":  # a trial alone decides for itself; a sweep decides once, at its start
            amp = choose_amp([spec], threads=torch.get_num_threads(), device=device.type).amp
        self.autocast = bool(amp) and bf16_available(device)
        self.val_autocast = self.autocast and spec.val_amp
        if amp and not self.autocast:
            warnings.warn(
                f"amp: this {device.type.upper()} has no bf16 hardware (AVX512-BF16 or AMX); training in fp32",
                RuntimeWarning,
                stacklevel=2,
            )
        seed = spec.seed if spec.batch_seed is None else spec.batch_seed
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self.best = _Best()
        self.curves: list[dict[str, float]] = []
        self.evals_since_best = 0
        self.running, self.running_n = torch.zeros((), device=device), 0
        n = len(data.train)
        self.order = torch.randperm(n, generator=self.generator).to(device)
        self.recalibration_idx = self.order[: min(spec.bn_recalibrate, n)].clone()
        self.cursor = 0
        self.step = 0
        self.stopped_early = False  # patience ran out
        self.train_seconds = 0.0
        self.eval_seconds = 0.0

    @property
    def done(self) -> bool:
        return self.stopped_early or self.step >= self.spec.steps

    def advance(self, until: int) -> None:
        """Train up to step ``until`` (at most ``steps``), evaluating every ``eval_every``
        steps and at the last step. Raises ``DivergedError`` on a non-finite loss and
        ``BudgetError`` past ``max_seconds`` or ``max_memory_mb``."""
        spec, data, encoder, decoder = self.spec, self.data, self.encoder, self.decoder
        n = len(data.train)
        t_start = time.perf_counter()
        try:
            while not self.done and self.step < until:
                self.step += 1
                step = self.step
                if self.cursor + spec.batch_size > n:
                    self.order = torch.randperm(n, generator=self.generator).to(self.device)
                    self.cursor = 0
                idx = self.order[self.cursor : self.cursor + spec.batch_size]
                self.cursor += spec.batch_size
                x = data.train.batch(idx)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                    loss = ((decoder(encoder(x)).float() - x) ** 2).mean()
                if spec.fault == "nan" and step >= spec.steps // 2:
                    loss = loss * float("nan")
                elif spec.fault == "slow":
                    time.sleep(0.2)
                self.optimiser.zero_grad(set_to_none=True)
                loss.backward()
                self.optimiser.step()
                self.schedule.step()
                self.running += loss.detach()
                self.running_n += 1
                if step % spec.eval_every == 0 or step == spec.steps:
                    self._evaluate(step)
                if spec.max_memory_mb and step % 20 == 1 and _resident_mb() > spec.max_memory_mb:
                    raise BudgetError(
                        f"trial exceeded its memory budget of {spec.max_memory_mb} MB "
                        f"({_resident_mb():.0f} MB resident) at step {step} of {spec.steps}"
                    )
                elapsed = self.train_seconds + time.perf_counter() - t_start  # the loop's, evaluations included
                if spec.max_seconds and elapsed > spec.max_seconds:
                    raise BudgetError(
                        f"trial exceeded its time budget of {spec.max_seconds:g} s at step {step} of {spec.steps}"
                    )
        finally:
            self.train_seconds += time.perf_counter() - t_start

    def _evaluate(self, step: int) -> None:
        spec, encoder, decoder = self.spec, self.encoder, self.decoder
        t_eval = time.perf_counter()
        train_loss = float(self.running) / self.running_n
        self.running.zero_()
        self.running_n = 0
        if not math.isfinite(train_loss):
            raise DivergedError(f"training loss became {train_loss} at step {step}")
        recalibrate_batch_norm(encoder, decoder, self.data.train, self.recalibration_idx, spec.batch_size)
        val = validation_loss(encoder, decoder, self.data, self.val_autocast)
        if self.observe is not None:
            with _evaluating(encoder, decoder):
                self.observe(step, encoder, decoder, self.data)
        if not math.isfinite(val):
            raise DivergedError(f"validation loss became {val} at step {step}")
        if val < self.best.val_loss:
            self.best = _Best(val, train_loss, step, _snapshot(encoder, decoder))
            self.evals_since_best = 0
        else:
            self.evals_since_best += 1
        row: dict[str, float] = {
            "step": step,
            "train_loss": train_loss,
            "val_loss": val,
            "best_val_loss": self.best.val_loss,
            "lr": float(self.schedule.get_last_lr()[0]),
        }
        self.curves.append(row)
        self.eval_seconds += time.perf_counter() - t_eval
        if self.callback is not None:
            self.callback(step, row)
        if spec.patience and self.evals_since_best >= spec.patience:
            self.stopped_early = True

    def result(self, data_seconds: float = 0.0, weights_dir: str | os.PathLike | None = None) -> TrialResult:
        """Restore the best state, compute every metric of ``evaluate`` and, with
        ``weights_dir``, save that state there as ``weights.pt``."""
        spec, encoder, decoder = self.spec, self.encoder, self.decoder
        assert self.best.state is not None  # at least one evaluation ran (the last step always evaluates)
        encoder.load_state_dict(self.best.state["encoder"])
        decoder.load_state_dict(self.best.state["decoder"])
        t_eval = time.perf_counter()
        metrics = evaluate(encoder, decoder, self.data, spec.latent_space(), spec.decoder, spec.image_size, spec.seed)
        metrics["val_loss"] = self.best.val_loss
        metrics["train_loss"] = self.best.train_loss
        self.eval_seconds += time.perf_counter() - t_eval
        return self._result(metrics, data_seconds, None if weights_dir is None else self.save_best(weights_dir))

    def save_best(self, weights_dir: str | os.PathLike) -> str:
        """Save the best state as ``weights_dir/weights.pt`` (atomically) and return the path."""
        path = Path(weights_dir) / "weights.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".pt.tmp")
        torch.save(self.best.state, tmp)
        os.replace(tmp, path)
        return str(path)

    def park(self, path: str | os.PathLike) -> None:
        """Save everything this training needs to go on exactly where it stands (networks,
        optimiser, schedule, batch order, model selection, curves, clocks) to ``path``, so
        that a restart group keeps one member in memory while the others wait for a rung."""
        best = self.best
        state = {
            "encoder": self.encoder.state_dict(),
            "decoder": self.decoder.state_dict(),
            "optimiser": self.optimiser.state_dict(),
            "schedule": self.schedule.state_dict(),
            "generator": self.generator.get_state(),
            "order": self.order,
            "cursor": self.cursor,
            "step": self.step,
            "best": {"val_loss": best.val_loss, "train_loss": best.train_loss, "step": best.step, "state": best.state},
            "curves": self.curves,
            "evals_since_best": self.evals_since_best,
            "running": self.running,
            "running_n": self.running_n,
            "stopped_early": self.stopped_early,
            "train_seconds": self.train_seconds,
            "eval_seconds": self.eval_seconds,
        }
        tmp = f"{os.fspath(path)}.tmp"
        torch.save(state, tmp)
        os.replace(tmp, path)

    @classmethod
    def unpark(
        cls, path: str | os.PathLike, spec: TrialSpec, data: Datasets, device: torch.device, callback=None
    ) -> Training:
        """The training ``park`` saved, on ``data`` and ``device``, as it was."""
        training = cls(spec, data, device, callback)
        state = torch.load(path, map_location=device, weights_only=True)  # tensors and plain values only
        training.encoder.load_state_dict(state["encoder"])
        training.decoder.load_state_dict(state["decoder"])
        training.optimiser.load_state_dict(state["optimiser"])
        training.schedule.load_state_dict(state["schedule"])
        training.generator.set_state(state["generator"])
        training.best = _Best(**state["best"])
        for name in ("order", "cursor", "step", "curves", "evals_since_best", "running", "running_n",
                     "stopped_early", "train_seconds", "eval_seconds"):  # fmt: skip
            setattr(training, name, state[name])
        return training

    def partial_result(self, data_seconds: float = 0.0) -> TrialResult:
        """What the selection saw of a member stopped before ``steps``: its losses and
        curve, no ground-truth metric (it is not evaluated)."""
        return self._result({"val_loss": self.best.val_loss, "train_loss": self.best.train_loss}, data_seconds)

    def _result(self, metrics: dict, data_seconds: float, weights_path: str | None = None) -> TrialResult:
        return TrialResult(
            metrics=metrics,
            curves=self.curves,
            steps_done=self.step,
            best_step=self.best.step,
            train_seconds=self.train_seconds,
            data_seconds=data_seconds,
            eval_seconds=self.eval_seconds,
            device=str(self.device),
            precision="bf16" if self.autocast else "fp32",
            weights_path=weights_path,
        )


def prepare_data(spec: TrialSpec) -> tuple[Datasets, torch.device, float]:
    """Threads, device and the rendered data of a trial (shared by a restart group's
    members), and the seconds the data took."""
    if spec.threads:
        torch.set_num_threads(spec.threads)
    device = resolve_device(spec.accelerator)
    seed_everything(spec.seed)
    t0 = time.perf_counter()
    data = make_datasets(
        spec.latent_space(), spec.n_train, spec.val_size, spec.n_test, spec.n_oos, spec.image_size, spec.seed, device
    )
    data_seconds = time.perf_counter() - t0
    _inject(spec.fault)
    return data, device, data_seconds


def run_trial(
    spec: TrialSpec,
    callback: Callback | None = None,
    weights_dir: str | os.PathLike | None = None,
    observe: Observer | None = None,
) -> TrialResult:
    """Train and evaluate one trial.

    ``callback(step, metrics)`` is called at every evaluation with ``train_loss``,
    ``val_loss``, ``best_val_loss`` and ``lr``. Raises ``DivergedError`` on a NaN or
    infinite loss and ``BudgetError`` past ``max_seconds``. With ``weights_dir`` the best
    encoder and decoder states are saved there (``weights.pt``, a plain state dict of
    tensors, to be loaded with ``torch.load(..., weights_only=True)``).
    ``observe(step, encoder, decoder, data)``, for diagnostics, sees the current networks
    (in eval mode) at every evaluation; it must not change them.
    """
    data, device, data_seconds = prepare_data(spec)
    training = Training(spec, data, device, callback, observe)
    training.advance(spec.steps)
    return training.result(data_seconds, weights_dir)


def load_models(spec: TrialSpec, weights_path: str | os.PathLike, device: str = "cpu"):
    """Rebuild a trial's encoder and decoder from saved weights (weights_only load)."""
    encoder, decoder = build_models(spec, torch.device(device))
    state = torch.load(weights_path, map_location=device, weights_only=True)
    encoder.load_state_dict(state["encoder"])
    decoder.load_state_dict(state["decoder"])
    return encoder.eval(), decoder.eval()


def _resident_mb() -> float:
    """Resident memory of this process in MB (current, not peak: a reused worker process
    must not inherit an earlier trial's peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import psutil

        return psutil.Process().memory_info().rss / 2**20


def _snapshot(encoder: torch.nn.Module, decoder: torch.nn.Module) -> dict:
    return {
        "encoder": {k: v.detach().clone() for k, v in encoder.state_dict().items()},
        "decoder": {k: v.detach().clone() for k, v in decoder.state_dict().items()},
    }


def _inject(fault: str) -> None:
    """Fault injection for tests of the sweep engine (``TrialSpec.fault``)."""
    if fault == "raise":
        raise RuntimeError("injected fault: the trial raised")
    if fault == "crash":
        os._exit(3)  # the worker process dies, as on a segfault or an OOM kill
