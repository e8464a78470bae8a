"""Check a trial before anything is scheduled: sample and render a few latents, build its
networks on the CPU and run one small batch through them, forward and backward.

A sweep runs this once per distinct model configuration (``check_key``) on the driver,
so a bad field, an impossible shape or a missing package stops the launch with one line
instead of failing every trial inside the workers. It reads no data set and trains
nothing; what it costs is in BENCHMARKS.md ("pre-scheduling check").
"""

from __future__ import annotations

import dataclasses
from typing import Any

from additive.errors import SpecError
from additive.latents import LatentSpace
from additive.spec import LATENT_FIELDS, TrialSpec

# The trial fields that decide what ``check_trial`` builds and samples; two trials equal on
# these are the same check.
MODEL_FIELDS = (
    "encoder",
    "encoder_options",
    "encoder_depth",
    "encoder_batch_norm",
    "code_batch_norm",
    "decoder",
    "decoder_options",
    "body",
    "width",
    "depth",
    "channels",
    "mlp_tail",
    "batch_norm",
    "match_params",
    "image_size",
)
CHECK_FIELDS = LATENT_FIELDS + MODEL_FIELDS
CHECK_BATCH = 4  # images in the one batch; BatchNorm needs more than one


def check_key(spec: TrialSpec) -> tuple[tuple[str, Any], ...]:
    """The fields of ``spec`` that ``check_trial`` depends on: one check per distinct key."""
    return tuple((name, getattr(spec, name)) for name in CHECK_FIELDS)


def check_trial(spec: TrialSpec, batch: int = CHECK_BATCH) -> None:
    """Raise ``SpecError`` (naming the field and what was wrong) unless the trial's data
    sample, its encoder and decoder build on the CPU, map a batch of images to codes of
    the latent dimension and back to images of the trial's shape and dtype, and give a
    finite loss and gradients. The random state of the caller is left as it was."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        _check(dataclasses.replace(spec, accelerator="cpu"), batch)


def _check(spec: TrialSpec, batch: int) -> None:
    import torch

    from additive.data import make_split
    from additive.models import build_decoder, build_encoder

    space: LatentSpace = spec.latent_space()
    try:
        z = space.sample(batch, 0)
        x = make_split(z, space, spec.image_size, "cpu").batch(torch.arange(batch))
    except Exception as exc:  # a plugin support's own error too
        raise _failed("support", "sample in-support latents", exc) from None
    try:
        encoder = build_encoder(spec)
    except Exception as exc:
        raise _failed("encoder", "build", exc) from None
    try:
        decoder = build_decoder(spec)
    except Exception as exc:
        raise _failed("decoder", "build", exc) from None
    try:
        code = encoder(x)
    except Exception as exc:
        raise _failed("encoder", f"encode images {tuple(x.shape)}", exc) from None
    _expect("encoder", code, (batch, space.d))
    try:
        image = decoder(code)
    except Exception as exc:
        raise _failed("decoder", f"decode latents {tuple(code.shape)}", exc) from None
    _expect("decoder", image, (batch, 3, spec.image_size, spec.image_size))
    loss = ((image - x) ** 2).mean()
    loss.backward()
    if not torch.isfinite(loss) or any(
        p.grad is not None and not torch.isfinite(p.grad).all() for p in (*encoder.parameters(), *decoder.parameters())
    ):
        raise SpecError(
            "`decoder` must give a finite loss and gradients on one batch, but got a non-finite one",
            field="decoder",
            requirement="must give a finite loss and gradients on one batch, but got a non-finite one",
        )


def _expect(name: str, out: Any, shape: tuple[int, ...]) -> None:
    import torch

    if not isinstance(out, torch.Tensor):
        got = f"a {type(out).__name__}"
    elif tuple(out.shape) != shape:
        got = f"shape {tuple(out.shape)}"
    elif out.dtype != torch.float32:
        got = f"dtype {out.dtype}"
    else:
        return
    what = "codes" if name == "encoder" else "images"
    requirement = f"must output float32 {what} of shape {shape}, but got {got}"
    raise SpecError(f"`{name}` {requirement}", field=name, requirement=requirement)


def _failed(name: str, action: str, exc: Exception) -> SpecError:
    """``name`` failed to ``action``: the error's first line, and an install hint when a
    package is missing."""
    first = (str(exc).strip().splitlines() or [""])[0]
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    missing = exc.name if isinstance(exc, ImportError) else None
    if missing:
        text += f" (install {missing.split('.')[0]!r} where the trials run, or choose another {name})"
    if isinstance(exc, SpecError) and exc.field:  # the builder named the field itself
        return exc
    requirement = f"must {action} on the CPU, but got {text}"
    return SpecError(f"`{name}` {requirement}", field=name, requirement=requirement)
