"""Rendered datasets kept as tensors: train, validation, ID test and OOS test.

Images are rendered once per trial, stored as uint8 on the training device (a 20,000
image set at 64 px is 250 MB, a quarter of float32), and batches are sliced by index:
no per-item DataLoader on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from additive.latents import LatentSpace
from additive.render import render_balls_uint8


@dataclass
class Split:
    """Latents (n, d) float32 and images (n, 3, s, s) uint8 of one split."""

    z: torch.Tensor
    images: torch.Tensor

    def __len__(self) -> int:
        return len(self.z)

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        """Float images in [0, 1] of the given indices."""
        return self.images[idx].float().div_(255.0)

    def float_images(self, start: int = 0, stop: int | None = None) -> torch.Tensor:
        return self.images[start:stop].float().div_(255.0)


@dataclass
class Datasets:
    train: Split
    val: Split
    test: Split
    oos: Split  # may be empty: a product support has no CPE(S) \ S


def make_split(z: np.ndarray, space: LatentSpace, image_size: int, device: torch.device | str) -> Split:
    images = render_balls_uint8(z, space, image_size, device=device)
    return Split(torch.as_tensor(z, dtype=torch.float32, device=device), images)


def make_datasets(
    space: LatentSpace,
    n_train: int,
    n_val: int,
    n_test: int,
    n_oos: int,
    image_size: int,
    seed: int,
    device: torch.device | str = "cpu",
) -> Datasets:
    """Sample and render every split. Each split has its own seed stream derived from
    ``seed``, so adding OOS samples never changes the training set."""
    streams = np.random.SeedSequence(seed).spawn(4)
    z_train = space.sample(n_train, np.random.default_rng(streams[0]))
    z_val = space.sample(n_val, np.random.default_rng(streams[1]))
    z_test = space.sample(n_test, np.random.default_rng(streams[2]))
    z_oos = space.sample_oos(n_oos, np.random.default_rng(streams[3]))
    return Datasets(
        train=make_split(z_train, space, image_size, device),
        val=make_split(z_val, space, image_size, device),
        test=make_split(z_test, space, image_size, device),
        oos=make_split(z_oos, space, image_size, device),
    )
