"""A batched form of the additive decoder, kept for the benchmark that compared it with
the per-block form the project uses (BENCHMARKS.md, "Fewer, larger operations"): one
network over the blocks, with batched matrix products for the MLPs and grouped transposed
convolutions, the same mathematics and the same initialisation (built from an
``AdditiveDecoder``'s weights). It did not win on this CPU, so the project does not use it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from additive.models import _SLOPE


class BatchedAdditiveDecoder(nn.Module):
    """f(z) = sum_i f_i(z_Bi) as one batched network (``mlp`` bodies without BatchNorm)."""

    def __init__(self, ref: Any):  # an additive.models.AdditiveDecoder
        super().__init__()
        bodies: list[Any] = list(ref.bodies)
        self.n, self.b = len(bodies), int(ref.block_size)
        first = bodies[0]
        self.channels = int(first.channels)
        linears: list[list[Any]] = [[m for m in body.mlp if isinstance(m, nn.Linear)] for body in bodies]
        if any(isinstance(m, nn.BatchNorm1d) for m in first.mlp):
            raise ValueError("the batched form covers decoders without BatchNorm")
        self.tail = isinstance(first.mlp[-1], nn.LeakyReLU)
        self.w = nn.ParameterList(
            nn.Parameter(torch.stack([ls[j].weight.detach().t() for ls in linears])) for j in range(len(linears[0]))
        )
        self.bias = nn.ParameterList(
            nn.Parameter(torch.stack([ls[j].bias.detach() for ls in linears]).unsqueeze(1))
            for j in range(len(linears[0]))
        )
        deconvs: list[list[Any]] = [[m for m in body.deconv if isinstance(m, nn.ConvTranspose2d)] for body in bodies]
        self.dw = nn.ParameterList(
            nn.Parameter(torch.cat([d[j].weight.detach() for d in deconvs])) for j in range(len(deconvs[0]))
        )
        self.db = nn.ParameterList(
            nn.Parameter(torch.cat([d[j].bias.detach() for d in deconvs])) for j in range(len(deconvs[0]))
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        batch = z.shape[0]
        h = z.view(batch, self.n, self.b).transpose(0, 1)  # (blocks, batch, block size)
        for j, (w, b) in enumerate(zip(self.w, self.bias, strict=True)):
            h = torch.baddbmm(b, h, w)
            if j < len(self.w) - 1 or self.tail:
                h = F.leaky_relu(h, _SLOPE)
        x = h.transpose(0, 1).reshape(batch, self.n * self.channels, 4, 4)
        for j, (w, b) in enumerate(zip(self.dw, self.db, strict=True)):
            x = F.conv_transpose2d(x, w, b, stride=2, padding=1, groups=self.n)
            if j < len(self.dw) - 1:
                x = F.leaky_relu(x, _SLOPE)
        side = x.shape[-1]
        return x.view(batch, self.n, 3, side, side).sum(1)
