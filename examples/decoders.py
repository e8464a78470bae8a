"""A decoder of your own: an additive decoder whose blocks share one network.

f(z) = sum_i g([z_Bi, e_i]): every block is drawn by the same network g, told which block
it draws by a one-hot e_i. Still additive, with one block's worth of parameters. The
contract (additive/plugins.py): ``name(spec, block_sizes, **options) -> torch.nn.Module``,
latents (B, sum(block_sizes)) to images (B, 3, S, S) in [0, 1] pixels. It declares its
blocks (``additive_blocks``), so its LMS is scored on them, as the additive decoder's is.
"""

from __future__ import annotations

import torch
from torch import nn

from additive.models import Body


class SharedBodyDecoder(nn.Module):
    def __init__(self, block_sizes: tuple[int, ...], image_size: int, body: Body):
        super().__init__()
        self.block_sizes = block_sizes
        self.additive_blocks = block_sizes  # the latent dimensions are these blocks, in order
        self.net = body.build(max(block_sizes) + len(block_sizes), 3, image_size)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        k, width = len(self.block_sizes), max(self.block_sizes)
        images, start = [], 0
        for i, size in enumerate(self.block_sizes):
            block = nn.functional.pad(z[:, start : start + size], (0, width - size))
            which = nn.functional.one_hot(torch.full((len(z),), i, device=z.device), k).to(z.dtype)
            images.append(self.net(torch.cat([block, which], dim=1)))
            start += size
        return torch.stack(images).sum(0)


def shared_body(spec, block_sizes: tuple[int, ...], width: int | None = None) -> nn.Module:
    """The trial's decoder body (``width`` option: its MLP width; default the trial's)."""
    body = Body(spec.body, width or spec.width, spec.depth, spec.batch_norm, spec.channels, spec.mlp_tail)
    return SharedBodyDecoder(tuple(block_sizes), spec.image_size, body)
