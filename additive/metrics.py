"""Identifiability and reconstruction metrics (docs/PROTOCOL.md, "The metrics").

Pure functions on arrays. ``z`` holds true latents (n, d), ``z_hat`` predicted ones
(n, d_hat). Scores are in [0, 100]; 100 means the predicted latents equal the true ones
up to a permutation and (for LMS) an invertible map per block.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree
from scipy.stats import rankdata
from sklearn.tree import DecisionTreeRegressor


def _abs_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|Pearson correlation| between every column of a and every column of b.
    A constant column correlates 0 with everything."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    na = np.sqrt((a**2).sum(0))
    nb = np.sqrt((b**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        c = (a.T @ b) / np.outer(na, nb)
    return np.nan_to_num(np.abs(c), nan=0.0)


def _hungarian_mean(score: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean of the matched entries of a (true x predicted) score matrix, maximising the
    total; returns the mean and, per true row, the matched predicted column."""
    rows, cols = linear_sum_assignment(score, maximize=True)
    match = np.full(score.shape[0], -1)
    match[rows] = cols
    return float(score[rows, cols].mean()), match


def _check(z: np.ndarray, z_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(z, dtype=np.float64)
    z_hat = np.asarray(z_hat, dtype=np.float64)
    if z.ndim != 2 or z_hat.ndim != 2 or len(z) != len(z_hat):
        raise ValueError(f"z and z_hat must be (n, d) arrays of the same n, but got {z.shape} and {z_hat.shape}")
    return z, z_hat


def spearman_matching(z: np.ndarray, z_hat: np.ndarray, pearson: bool = False) -> tuple[float, np.ndarray]:
    """Score x 100 and the predicted dimension matched to each true dimension."""
    z, z_hat = _check(z, z_hat)
    if len(z) < 2:
        return float("nan"), np.full(z.shape[1], -1)
    if not pearson:
        z, z_hat = rankdata(z, axis=0), rankdata(z_hat, axis=0)
    score, match = _hungarian_mean(_abs_corr(z, z_hat))
    return 100.0 * score, match


def lms_spearman(z: np.ndarray, z_hat: np.ndarray) -> float:
    """LMS_Spear: |Spearman| between every predicted and true latent, Hungarian matching
    maximising the total, mean of the matched entries x 100 (for scalar blocks)."""
    return spearman_matching(z, z_hat)[0]


def mcc_pearson(z: np.ndarray, z_hat: np.ndarray) -> float:
    """Mean correlation coefficient: as ``lms_spearman`` with Pearson correlation."""
    return spearman_matching(z, z_hat, pearson=True)[0]


def _partitions(dims: tuple[int, ...], size: int):
    """All partitions of ``dims`` into unordered groups of ``size``."""
    if not dims:
        yield []
        return
    first, rest = dims[0], dims[1:]
    for others in combinations(rest, size - 1):
        group = (first, *others)
        remaining = tuple(x for x in rest if x not in others)
        for tail in _partitions(remaining, size):
            yield [group, *tail]


def _r2_clipped(y: np.ndarray, pred: np.ndarray) -> float:
    ss_res = ((y - pred) ** 2).sum(0)
    ss_tot = ((y - y.mean(0)) ** 2).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1.0 - ss_res / ss_tot
    r2 = np.where(ss_tot > 0, r2, 0.0)
    return float(max(r2.mean(), 0.0))


def tree_matching(
    z_train: np.ndarray,
    z_hat_train: np.ndarray,
    z_test: np.ndarray,
    z_hat_test: np.ndarray,
    block_size: int,
    search_partitions: bool = False,
    max_depth: int = 10,
    seed: int = 0,
) -> tuple[float, list[tuple[int, ...]]]:
    """LMS_tree score x 100 and, per true block, the predicted dimensions matched to it."""
    z_train, z_hat_train = _check(z_train, z_hat_train)
    z_test, z_hat_test = _check(z_test, z_hat_test)
    d, d_hat = z_train.shape[1], z_hat_train.shape[1]
    if d % block_size or d_hat != d:
        raise ValueError(f"z and z_hat must have the same dimension, a multiple of block_size={block_size}")
    if len(z_test) < 2:
        return float("nan"), []
    true_blocks = [tuple(range(i, i + block_size)) for i in range(0, d, block_size)]
    if search_partitions:
        candidates = list(_partitions(tuple(range(d_hat)), block_size))
    else:
        candidates = [true_blocks]
    cache: dict[tuple[tuple[int, ...], int], float] = {}

    def r2(pred_dims: tuple[int, ...], j: int) -> float:
        key = (pred_dims, j)
        if key not in cache:
            tree = DecisionTreeRegressor(max_depth=max_depth, random_state=seed)
            cols = list(true_blocks[j])
            tree.fit(z_hat_train[:, list(pred_dims)], z_train[:, cols])
            pred = tree.predict(z_hat_test[:, list(pred_dims)]).reshape(len(z_test), -1)
            cache[key] = _r2_clipped(z_test[:, cols], pred)
        return cache[key]

    best, best_match = -1.0, []
    for groups in candidates:
        score = np.array([[r2(g, j) for g in groups] for j in range(len(true_blocks))])
        mean, match = _hungarian_mean(score)
        if mean > best:
            best, best_match = mean, [groups[m] for m in match]
    return 100.0 * best, best_match


def lms_tree(
    z_train: np.ndarray,
    z_hat_train: np.ndarray,
    z_test: np.ndarray,
    z_hat_test: np.ndarray,
    block_size: int,
    search_partitions: bool = False,
) -> float:
    """LMS_tree (vector blocks): for every (predicted block i, true block j) a decision
    tree (max depth 10) fitted on training encodings predicts true block j from predicted
    block i; R^2 on the test set clipped at 0; Hungarian matching; mean x 100. With
    ``search_partitions`` the maximum over all partitions of the predicted dimensions into
    blocks (for monolithic decoders, whose latents have no block structure)."""
    return tree_matching(z_train, z_hat_train, z_test, z_hat_test, block_size, search_partitions)[0]


def realised_dependence(z: np.ndarray, blocks: list[slice]) -> float:
    """The dependence present in latents ``z`` (n, d): the Spearman correlation between
    corresponding coordinates of different blocks (block i's first coordinate with block
    j's first, ...), averaged over block pairs and coordinates; signed. Restricting a
    distribution to a support changes it: an independent pair on the L scores about
    -0.2, the copula at level 0.9 about 0.7."""
    z = np.asarray(z, dtype=np.float64)
    if len(z) < 2 or len(blocks) < 2:
        return float("nan")
    ranks = rankdata(z, axis=0)
    values = []
    for i, j in combinations(range(len(blocks)), 2):
        a, b = ranks[:, blocks[i]], ranks[:, blocks[j]]
        for c in range(a.shape[1]):
            x, y = a[:, c] - a[:, c].mean(), b[:, c] - b[:, c].mean()
            denom = np.sqrt((x**2).sum() * (y**2).sum())
            values.append(float((x * y).sum() / denom) if denom > 0 else 0.0)
    return float(np.mean(values))


def oos_distance(z_oos: np.ndarray, z_train: np.ndarray) -> float:
    """How far the OOS latents lie from the training data: the mean Euclidean distance
    from each OOS latent to its nearest training latent (latent units; the box is
    [0.1, 0.9] per coordinate). The OOS set pairs blocks of in-support draws, so it follows
    the training marginals: where those put little mass far from the support, the OOS points
    crowd near it and extrapolation is easier. NaN for no OOS or no training latents."""
    z_oos = np.asarray(z_oos, dtype=np.float64)
    z_train = np.asarray(z_train, dtype=np.float64)
    if len(z_oos) == 0 or len(z_train) == 0:
        return float("nan")
    return float(cKDTree(z_train).query(z_oos)[0].mean())


def rmse(x: np.ndarray, x_hat: np.ndarray) -> float:
    """Root mean squared error over all pixels (pixels in [0, 1]); NaN for no images."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return float("nan")
    return float(np.sqrt(((x - np.asarray(x_hat, dtype=np.float64)) ** 2).mean()))
