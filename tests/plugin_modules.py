"""Plugin modules for the tests, written into a test's own folder (never importable from the
project), so each test shows that a module in the current folder is found."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

_COUNT = itertools.count()

GOOD = """
import numpy as np
import torch
from torch import nn

from additive.models import Body


class Summed(nn.Module):
    def __init__(self, block_sizes, image_size, width):
        super().__init__()
        self.block_sizes = block_sizes
        self.nets = nn.ModuleList(Body("mlp", width, 1, False, 8).build(b, 3, image_size) for b in block_sizes)

    def forward(self, z):
        out, start = 0, 0
        for net, b in zip(self.nets, self.block_sizes):
            out = out + net(z[:, start:start + b])
            start += b
        return out


def decoder(spec, block_sizes, width=16):
    return Summed(tuple(block_sizes), spec.image_size, width)


def declared(spec, block_sizes, width=16):
    summed = Summed(tuple(block_sizes), spec.image_size, width)
    summed.additive_blocks = tuple(block_sizes)  # scored on its own blocks, as the additive decoder
    return summed


def declares_wrong(spec, block_sizes, width=16):
    summed = Summed(tuple(block_sizes), spec.image_size, width)
    summed.additive_blocks = (sum(block_sizes),)
    return summed


def encoder(spec, latent_dim, hidden=32):
    s = spec.image_size
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * s * s, hidden), nn.LeakyReLU(), nn.Linear(hidden, latent_dim))


def band(z, width=0.3):
    return np.abs(z[:, 0] - z[:, 1]) <= width


def wrong_shape(spec, block_sizes):
    return nn.Sequential(nn.Linear(sum(block_sizes), 3 * 8 * 8), nn.Unflatten(1, (3, 8, 8)))


class Double(nn.Module):
    def __init__(self, d, s):
        super().__init__()
        self.s, self.lin = s, nn.Linear(d, 3 * s * s)

    def forward(self, z):
        return self.lin(z).view(-1, 3, self.s, self.s).double()


def wrong_dtype(spec, block_sizes):
    return Double(sum(block_sizes), spec.image_size)


def raises(spec, block_sizes):
    raise ValueError("width must be even\\nmore detail")


def not_a_module(spec, block_sizes):
    return "a decoder"


def support_of_ints(z):
    return np.ones(len(z), dtype=int)


def empty_support(z):
    return np.zeros(len(z), dtype=bool)


NOT_CALLABLE = 3
"""

NEEDS_MISSING = """
import adx_not_installed_anywhere  # noqa: F401


def decoder(spec, block_sizes):
    raise AssertionError("never reached")
"""


def write_plugin(folder: Path, text: str = GOOD) -> str:
    """A new module in ``folder`` (a fresh name, so no earlier import is reused); its name."""
    name = f"adx_test_plugin_{next(_COUNT)}_{abs(hash(str(folder))) % 10**6}"
    (folder / f"{name}.py").write_text(textwrap.dedent(text))
    return name
