"""Metric sanity tests (docs/PROTOCOL.md, "The metrics"): numbers against definitions."""

from __future__ import annotations

import numpy as np
import pytest

from additive import lms_spearman, lms_tree, mcc_pearson, rmse
from additive.metrics import _partitions, tree_matching


@pytest.fixture
def scalar_z():
    return np.random.default_rng(0).uniform(0.1, 0.9, size=(2000, 3))


@pytest.fixture
def block_z():
    rng = np.random.default_rng(1)
    return rng.uniform(0.1, 0.9, size=(4000, 4)), rng.uniform(0.1, 0.9, size=(2000, 4))


def _rotate(z: np.ndarray, angle: float = np.pi / 4) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    out = z.copy()
    out[:, 0], out[:, 1] = c * z[:, 0] - s * z[:, 1], s * z[:, 0] + c * z[:, 1]
    return out


def test_spearman_true_latents_score_100(scalar_z):
    assert lms_spearman(scalar_z, scalar_z) == pytest.approx(100.0)
    assert mcc_pearson(scalar_z, scalar_z) == pytest.approx(100.0)


def test_spearman_is_invariant_to_monotone_maps_and_permutation(scalar_z):
    z_hat = np.stack([np.exp(3 * scalar_z[:, 2]), -(scalar_z[:, 0] ** 3), np.tanh(scalar_z[:, 1])], axis=1)
    assert lms_spearman(scalar_z, z_hat) == pytest.approx(100.0)
    # Pearson sees the nonlinearity, Spearman does not.
    assert mcc_pearson(scalar_z, z_hat) < 99.5


def test_spearman_rotation_scores_clearly_lower(scalar_z):
    assert lms_spearman(scalar_z, _rotate(scalar_z)) < 85


def test_spearman_constant_scores_zero(scalar_z):
    assert lms_spearman(scalar_z, np.ones_like(scalar_z)) == pytest.approx(0.0)


def test_spearman_independent_noise_scores_low(scalar_z):
    noise = np.random.default_rng(5).normal(size=scalar_z.shape)
    assert lms_spearman(scalar_z, noise) < 10


def test_tree_true_latents_score_near_100(block_z):
    train, test = block_z
    assert lms_tree(train, train, test, test, block_size=2) > 97


def test_tree_blockwise_invertible_transform_and_permutation(block_z):
    train, test = block_z

    def transform(z):
        b1, b2 = z[:, :2], z[:, 2:]
        b1 = np.stack([b1[:, 0] + b1[:, 1] ** 2, np.exp(b1[:, 1])], 1)  # invertible in the block
        b2 = np.stack([np.sin(b2[:, 1]), b2[:, 0] * 2 - b2[:, 1]], 1)
        return np.concatenate([b2, b1], axis=1)  # blocks swapped

    assert lms_tree(train, transform(train), test, transform(test), block_size=2) > 95


def test_tree_mixing_rotation_scores_clearly_lower(block_z):
    train, test = block_z

    def mix(z):  # rotate ball-1 x with ball-2 x: mixes blocks
        out = z.copy()
        out[:, 0], out[:, 2] = (z[:, 0] + z[:, 2]) / 2, (z[:, 0] - z[:, 2]) / 2
        return out

    assert lms_tree(train, mix(train), test, mix(test), block_size=2) < 70


def test_tree_constant_scores_zero(block_z):
    train, test = block_z
    assert lms_tree(train, np.zeros_like(train), test, np.zeros_like(test), block_size=2) == pytest.approx(0.0)


def test_tree_partition_search_recovers_interleaved_blocks(block_z):
    train, test = block_z
    order = [0, 2, 1, 3]  # dims of one block are not adjacent any more
    plain = lms_tree(train, train[:, order], test, test[:, order], block_size=2)
    searched, match = tree_matching(train, train[:, order], test, test[:, order], 2, search_partitions=True)
    assert plain < 60
    assert searched > 97
    assert sorted(match[0]) == [0, 2] and sorted(match[1]) == [1, 3]


def test_partitions_count():
    assert len(list(_partitions(tuple(range(4)), 2))) == 3
    assert len(list(_partitions(tuple(range(6)), 2))) == 15
    assert len(list(_partitions(tuple(range(6)), 3))) == 10


def test_rmse_definition():
    x = np.zeros((2, 3, 4, 4))
    assert rmse(x, x + 0.5) == pytest.approx(0.5)
    assert np.isnan(rmse(np.zeros((0, 3, 4, 4)), np.zeros((0, 3, 4, 4))))


def test_realised_dependence_reads_the_data_not_the_level():
    """Spearman of a Gaussian copula at correlation rho is (6 / pi) asin(rho / 2); the L
    support makes independent balls negatively dependent."""
    from additive.latents import LatentSpace
    from additive.metrics import realised_dependence

    full = LatentSpace(support="full")
    assert abs(realised_dependence(full.sample(20000, 0), full.blocks)) < 0.03
    copula = LatentSpace(support="full", dependence=0.9)
    assert realised_dependence(copula.sample(20000, 0), copula.blocks) == pytest.approx(
        6 / np.pi * np.arcsin(0.45), abs=0.02
    )
    l_shape = LatentSpace(support="l_shape", dependence=0.9)
    assert realised_dependence(l_shape.sample(20000, 0), l_shape.blocks) < 0.8
    independent_l = LatentSpace(support="l_shape")
    assert realised_dependence(independent_l.sample(20000, 0), independent_l.blocks) < -0.1


def test_oos_distance_is_the_mean_distance_to_the_nearest_training_latent():
    from additive.metrics import oos_distance

    train = np.array([[0.0, 0.0], [1.0, 0.0]])
    assert oos_distance(np.array([[0.0, 0.5], [1.0, 2.0]]), train) == pytest.approx(1.25)
    assert np.isnan(oos_distance(np.zeros((0, 2)), train))


def test_dependence_pulls_the_oos_set_toward_the_training_data():
    """The OOS set pairs blocks of in-support draws; on the L, strong dependence leaves the
    marginals little mass far above the missing square's corner, so its OOS points crowd
    near the L (docs/RESULTS.md, "dependence")."""
    from additive.latents import LatentSpace
    from additive.metrics import oos_distance

    def distance(level: float) -> float:
        space = LatentSpace(support="l_shape", l_density="paper", dependence=level)
        return oos_distance(space.sample_oos(500, 1), space.sample(5000, 1))

    independent, dependent = distance(0.0), distance(0.9)
    assert independent > 0.1  # 0.136 measured: the points spread over the 0.4-wide missing square
    assert dependent < 0.7 * independent
