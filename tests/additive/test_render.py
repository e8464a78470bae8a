from __future__ import annotations

import numpy as np
import torch

from additive import LatentSpace, render_ball, render_balls
from additive.render import COLORS, ball_alpha


def test_shapes_range_and_background():
    space = LatentSpace(dataset="block", support="full")
    z = space.sample(10, seed=0)
    for size in (16, 32, 64):
        x = render_balls(z, space, size)
        assert x.shape == (10, 3, size, size)
        assert x.min() >= 0 and x.max() <= 1


def test_y_points_up_and_colours_match_the_paper():
    space = LatentSpace(dataset="block", support="full")
    z = np.array([[0.3, 0.8, 0.7, 0.2]], dtype=np.float32)  # ball 1 high left, ball 2 low right
    x = render_balls(z, space, 64)[0]
    top_left = x[:, int((1 - 0.8) * 64), int(0.3 * 64)] * 255
    bottom_right = x[:, int((1 - 0.2) * 64), int(0.7 * 64)] * 255
    assert torch.allclose(top_left, torch.tensor(COLORS[0], dtype=torch.float32), atol=1)
    assert torch.allclose(bottom_right, torch.tensor(COLORS[1], dtype=torch.float32), atol=1)


def test_radius_scales_with_image_size():
    centre = torch.tensor([[0.5, 0.5]])
    for size in (32, 64):
        covered = ball_alpha(centre, size).sum().item()  # anti-aliased pixel area
        expected = np.pi * (0.16 * size) ** 2
        assert abs(covered / expected - 1) < 0.03


def test_single_ball_matches_its_part_of_the_scene():
    space = LatentSpace(dataset="scalar", support="full")
    z = space.sample(4, seed=1)
    scene = render_balls(z, space, 32)
    alone = render_ball(z, space, block=0, size=32)
    left = slice(0, 14)  # ball 1 lives in the left column
    assert torch.allclose(scene[..., left], alone[..., left], atol=1e-5)
