"""Encoders and decoders (docs/PROTOCOL.md, "The models").

Decoder bodies map a latent vector to an image:
- ``mlp``: the paper's body, depth x [Linear(width), BatchNorm1d, LeakyReLU(0.01)] ->
  Linear(1024) -> [BatchNorm1d, LeakyReLU] (the "paper" tail; ``mlp_tail="linear"`` stops
  at the Linear) -> reshape (64, 4, 4) -> ConvTranspose2d(4, 2, 1) layers up to the image
  size (64 -> 64 -> 32 -> 32 -> 3 channels at 64 px), LeakyReLU between. BatchNorm is
  optional (``batch_norm``).
- ``broadcast``: a spatial-broadcast body (the latent tiled over the image with two
  coordinate channels, then 3x3 convolutions), often easier to fit on small CPUs.

``Body`` holds how a body is built (the decoder's trial fields) and builds it.
``AdditiveDecoder`` renders each block with its own body and sums the images,
f(z) = sum_i f_i(z_Bi). ``MonolithicDecoder`` is one body of all of z. ``MaskedDecoder``
is the object-centric ablation: per-block RGB and mask logits, composited with a softmax
over blocks and a learned background; it is not additive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from additive.errors import SpecError
from additive.plugins import call_plugin, declares_blocks, is_plugin
from additive.resnet import FEATURES, ResNet18
from additive.spec import BODIES, DECODERS, ENCODERS, MLP_TAILS, TrialSpec

_SLOPE = 0.01


def _mlp(d_in: int, width: int, depth: int, d_out: int, batch_norm: bool, tail: bool = False) -> nn.Sequential:
    """depth x [Linear(width), (BatchNorm1d), LeakyReLU] -> Linear(d_out); with ``tail``
    the last Linear is followed by (BatchNorm1d and) LeakyReLU as well."""
    layers: list[nn.Module] = []
    for i in range(depth + 1):
        last = i == depth
        out = d_out if last else width
        layers.append(nn.Linear(d_in, out))
        if not last or tail:
            if batch_norm:
                layers.append(nn.BatchNorm1d(out))
            layers.append(nn.LeakyReLU(_SLOPE))
        d_in = out
    return nn.Sequential(*layers)


def _n_halvings(image_size: int) -> int:
    n = math.log2(image_size / 4)
    if image_size < 8 or n != int(n):
        raise ValueError(f"`image_size` must be a power of two >= 8, but got {image_size}")
    return int(n)


class MLPDeconvBody(nn.Module):
    """The paper's decoder network for one block (or for all of z)."""

    def __init__(
        self,
        d_in: int,
        out_channels: int,
        image_size: int,
        width: int,
        depth: int,
        batch_norm: bool,
        channels: int = 64,
        mlp_tail: str = "paper",
    ):
        super().__init__()
        c, h = channels, max(channels // 2, 1)
        self.channels = c
        self.mlp = _mlp(d_in, width, depth, c * 4 * 4, batch_norm, tail=mlp_tail == "paper")
        n_up = _n_halvings(image_size)
        chans = [c] + ([c, h, h] * n_up)[: n_up - 1] + [out_channels]
        layers: list[nn.Module] = []
        for i in range(n_up):
            layers.append(nn.ConvTranspose2d(chans[i], chans[i + 1], 4, stride=2, padding=1))
            if i < n_up - 1:
                layers.append(nn.LeakyReLU(_SLOPE))
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.mlp(z).view(-1, self.channels, 4, 4))


class BroadcastBody(nn.Module):
    """Spatial-broadcast decoder: tile z over the image, add (x, y) channels, 3x3 convs."""

    def __init__(
        self,
        d_in: int,
        out_channels: int,
        image_size: int,
        width: int,
        depth: int,
        batch_norm: bool,
        channels: int = 64,
        mlp_tail: str = "paper",
    ):
        super().__init__()
        self.image_size = image_size
        lin = torch.linspace(-1, 1, image_size)
        ys, xs = torch.meshgrid(lin, lin, indexing="ij")
        self.register_buffer("coords", torch.stack([xs, ys]).unsqueeze(0), persistent=False)
        layers: list[nn.Module] = []
        c_in = d_in + 2
        for _ in range(max(depth - 1, 1)):
            layers.append(nn.Conv2d(c_in, channels, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(channels))
            layers.append(nn.LeakyReLU(_SLOPE))
            c_in = channels
        layers.append(nn.Conv2d(c_in, out_channels, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        s = self.image_size
        tiled = z[:, :, None, None].expand(-1, -1, s, s)
        coords: torch.Tensor = self.coords  # type: ignore[assignment]  # a registered buffer
        return self.net(torch.cat([tiled, coords.expand(len(z), -1, -1, -1)], dim=1))


@dataclass(frozen=True)
class Body:
    """How one decoder network is built: the decoder's trial fields (``body``, ``width``,
    ``depth``, ``batch_norm``, ``channels``, ``mlp_tail``) in one value."""

    kind: str = "mlp"
    width: int = 512
    depth: int = 5
    batch_norm: bool = True
    channels: int = 64
    mlp_tail: str = "paper"

    def __post_init__(self):
        if self.kind not in BODIES:
            raise ValueError(f"`body` must be one of {list(BODIES)}, but got {self.kind!r}")
        if self.mlp_tail not in MLP_TAILS:
            raise ValueError(f"`mlp_tail` must be one of {list(MLP_TAILS)}, but got {self.mlp_tail!r}")

    def build(self, d_in: int, out_channels: int, image_size: int) -> nn.Module:
        """A fresh network from ``d_in`` latents to an ``out_channels`` x image_size^2 image."""
        w, k, bn, c = self.width, self.depth, self.batch_norm, self.channels
        if self.kind == "mlp":
            return MLPDeconvBody(d_in, out_channels, image_size, w, k, bn, c, self.mlp_tail)
        return BroadcastBody(d_in, out_channels, image_size, w, k, bn, c)


class _BlockBodies(nn.Module):
    """One decoder network per block (``out_channels`` each), for the decoders built of blocks."""

    out_channels = 3

    def __init__(self, block_size: int, n_blocks: int, image_size: int, body: Body = Body()):
        super().__init__()
        self.block_size = block_size
        self.bodies = nn.ModuleList(body.build(block_size, self.out_channels, image_size) for _ in range(n_blocks))

    def block_outputs(self, z: torch.Tensor) -> list[torch.Tensor]:
        b = self.block_size
        return [f(z[:, i * b : (i + 1) * b]) for i, f in enumerate(self.bodies)]


class AdditiveDecoder(_BlockBodies):
    """f(z) = sum_i f_i(z_Bi): one body per block, images summed (docs/PROTOCOL.md, "The claim")."""

    def block_images(self, z: torch.Tensor) -> list[torch.Tensor]:
        """The image each block contributes, f_i(z_Bi)."""
        return self.block_outputs(z)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.stack(self.block_images(z)).sum(0)


class MonolithicDecoder(nn.Module):
    """One network of all of z: the non-additive baseline."""

    def __init__(self, d: int, image_size: int, body: Body = Body()):
        super().__init__()
        self.body = body.build(d, 3, image_size)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)


class MaskedDecoder(_BlockBodies):
    """Object-centric compositing: softmax over block masks and a learned background."""

    out_channels = 4  # RGB and a mask logit per block

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.background = nn.Parameter(torch.ones(1, 3, 1, 1))
        self.background_logit = nn.Parameter(torch.zeros(1, 1, 1, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        outs = self.block_outputs(z)
        rgb = torch.stack([o[:, :3] for o in outs] + [self.background.expand_as(outs[0][:, :3])])
        logits = torch.stack([o[:, 3:] for o in outs] + [self.background_logit.expand_as(outs[0][:, 3:])])
        return (torch.softmax(logits, dim=0) * rgb).sum(0)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def make_decoder(
    kind: str, block_size: int, n_blocks: int, image_size: int, body: Body = Body(), match_params: bool = False
) -> nn.Module:
    """Build a decoder by name. ``match_params`` widens a monolithic decoder until it has
    at least as many parameters as the additive decoder of the same body."""
    if kind == "additive":
        return AdditiveDecoder(block_size, n_blocks, image_size, body)
    if kind == "masked":
        return MaskedDecoder(block_size, n_blocks, image_size, body)
    if kind != "monolithic":
        raise ValueError(f"`decoder` must be one of {list(DECODERS)}, but got {kind!r}")
    d = block_size * n_blocks
    if match_params:
        target = count_parameters(AdditiveDecoder(block_size, n_blocks, image_size, body))
        lo, hi = body.width, body.width * n_blocks * 4
        while lo < hi:  # smallest width whose parameter count reaches the target
            mid = (lo + hi) // 2
            if count_parameters(MonolithicDecoder(d, image_size, replace(body, width=mid))) >= target:
                hi = mid
            else:
                lo = mid + 1
        body = replace(body, width=lo)
    return MonolithicDecoder(d, image_size, body)


class ConvEncoder(nn.Module):
    """A small CPU-friendly encoder: ``depth`` stride-2 convolutions (channels 32, 32, 64,
    64, ...), then Linear(hidden) -> Linear(d). ``batch_norm`` puts BatchNorm after every
    hidden layer; ``code_batch_norm`` a BatchNorm1d on the code, as the paper's encoder
    ends (docs/PROTOCOL.md). ``depth`` 0 halves the image down to 4x4."""

    def __init__(
        self,
        d: int,
        image_size: int,
        channels: int = 32,
        hidden: int = 256,
        depth: int = 0,
        batch_norm: bool = False,
        code_batch_norm: bool = False,
    ):
        super().__init__()
        max_depth = int(math.log2(image_size))
        n_down = depth or _n_halvings(image_size)
        if not 1 <= n_down <= max_depth:
            raise ValueError(f"`encoder_depth` must be in [0, {max_depth}] at image size {image_size}, but got {depth}")
        chans = [3] + [channels * (1 if i < 2 else 2) for i in range(n_down)]
        layers: list[nn.Module] = []
        for i in range(n_down):
            layers.append(nn.Conv2d(chans[i], chans[i + 1], 4, stride=2, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(chans[i + 1]))
            layers.append(nn.LeakyReLU(_SLOPE))
        self.conv = nn.Sequential(*layers)
        side = image_size >> n_down
        head: list[nn.Module] = [nn.Linear(chans[-1] * side * side, hidden)]
        if batch_norm:
            head.append(nn.BatchNorm1d(hidden))
        head += [nn.LeakyReLU(_SLOPE), nn.Linear(hidden, d)]
        if code_batch_norm:
            head.append(nn.BatchNorm1d(d))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).flatten(1))


class ResNet18Encoder(nn.Module):
    """The paper's encoder: ResNet-18 features (random init; ``additive/resnet.py``) ->
    5 x [Linear 512, BN, LeakyReLU] -> Linear(d) -> BatchNorm1d(d). ``batch_norm`` and
    ``code_batch_norm`` switch the head's BatchNorm layers (the ResNet keeps its own)."""

    def __init__(self, d: int, width: int = 512, depth: int = 5, batch_norm: bool = True, code_batch_norm: bool = True):
        super().__init__()
        self.features = ResNet18()
        head = _mlp(FEATURES, width, depth, d, batch_norm=batch_norm)
        self.head = nn.Sequential(head, nn.BatchNorm1d(d)) if code_batch_norm else head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def make_encoder(
    kind: str, d: int, image_size: int, depth: int = 0, batch_norm: bool = False, code_batch_norm: bool = False
) -> nn.Module:
    if kind == "conv":
        return ConvEncoder(d, image_size, depth=depth, batch_norm=batch_norm, code_batch_norm=code_batch_norm)
    if kind == "resnet18":
        return ResNet18Encoder(d, batch_norm=batch_norm, code_batch_norm=code_batch_norm)
    raise ValueError(f"`encoder` must be one of {list(ENCODERS)}, but got {kind!r}")


def build_encoder(spec: TrialSpec) -> nn.Module:
    """The trial's encoder: a built-in by name, or a plugin ``name(spec, latent_dim, **options)``."""
    space = spec.latent_space()
    if is_plugin(spec.encoder):
        return _module(
            call_plugin(spec.encoder, "encoder", spec, space.d, options_text=spec.encoder_options), "encoder"
        )
    return make_encoder(
        spec.encoder, space.d, spec.image_size, spec.encoder_depth, spec.encoder_batch_norm, spec.code_batch_norm
    )


def build_decoder(spec: TrialSpec) -> nn.Module:
    """The trial's decoder: a built-in by name, or a plugin ``name(spec, block_sizes, **options)``."""
    space = spec.latent_space()
    if is_plugin(spec.decoder):
        built = call_plugin(spec.decoder, "decoder", spec, space.block_sizes, options_text=spec.decoder_options)
        decoder = _module(built, "decoder")
        declares_blocks(decoder, space.block_sizes)  # a wrong declaration fails here, not in the metrics
        return decoder
    body = Body(spec.body, spec.width, spec.depth, spec.batch_norm, spec.channels, spec.mlp_tail)
    return make_decoder(spec.decoder, space.block_size, space.n_objects, spec.image_size, body, spec.match_params)


def _module(built: object, field: str) -> nn.Module:
    if not isinstance(built, nn.Module):
        requirement = f"must build a torch.nn.Module, but got a {type(built).__name__}"
        raise SpecError(f"`{field}` {requirement}", field=field, requirement=requirement)
    return built
