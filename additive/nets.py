"""The networks of a trial and their optimiser, built the one way training, the precision
timing (``additive.precision``) and the benchmarks all use."""

from __future__ import annotations

import torch
from torch import nn

from additive.models import build_decoder, build_encoder
from additive.spec import TrialSpec


def build_models(spec: TrialSpec, device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The trial's encoder and decoder on ``device`` (built-ins by name, plugins by path)."""
    return build_encoder(spec).to(device), build_decoder(spec).to(device)


def make_optimiser(
    encoder: nn.Module, decoder: nn.Module, spec: TrialSpec, device: torch.device, fast: bool = True
) -> torch.optim.Adam:
    """Adam over both networks (``lr``, ``weight_decay``).

    ``fast`` changes how, not what, is computed: the fused Adam kernel (one pass per
    parameter instead of about ten small ops) and, on CPU, the channels-last layout, in
    which oneDNN's convolutions run faster. Together 1.19-1.21x the samples per second at the
    ``mini`` size (BENCHMARKS.md, ``train_step.mini``). Results equal the plain path up to
    floating-point rounding, which over thousands of steps is enough to change a trial's
    trajectory, so runs before and after this switch are not bit-identical.
    """
    if fast and device.type == "cpu":
        encoder.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # not in torch's stubs
        decoder.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    params = list(encoder.parameters()) + list(decoder.parameters())
    return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay, fused=fast)
