"""Contract tests over every support shape and dependence mechanism."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from additive import SUPPORTS, LatentSpace, SpecError, SupportError
from additive.latents import HIGH, LOW, RADIUS

DEPENDENCE = [("copula", 0.0), ("copula", 0.5), ("copula", 0.9), ("scm", 0.0), ("scm", 0.5), ("scm", 1.0)]
SPACES = [
    (ds, s, m, lvl)
    for ds in ("scalar", "block")
    for s in SUPPORTS
    for m, lvl in DEPENDENCE
    if not (ds == "scalar" and s == "disconnected" and m == "scm" and lvl == 1.0)
]


@pytest.mark.parametrize("dataset,support,mechanism,level", SPACES)
def test_samples_are_in_support_and_deterministic(dataset, support, mechanism, level):
    space = LatentSpace(dataset=dataset, support=support, dependence_mechanism=mechanism, dependence=level)
    z = space.sample(500, seed=3)
    assert z.shape == (500, space.d)
    assert z.dtype == np.float32
    assert space.contains(z).all()
    assert ((z >= LOW) & (z <= HIGH)).all()
    np.testing.assert_array_equal(z, space.sample(500, seed=3))
    assert not np.array_equal(z, space.sample(500, seed=4))


@pytest.mark.parametrize("dataset,support,mechanism,level", SPACES)
def test_oos_samples_lie_in_cpe_minus_support(dataset, support, mechanism, level):
    space = LatentSpace(dataset=dataset, support=support, dependence_mechanism=mechanism, dependence=level)
    oos = space.sample_oos(200, seed=1)
    if not space.has_oos:
        assert oos.shape == (0, space.d)
        return
    assert oos.shape == (200, space.d)
    assert not space.contains(oos).any()
    reference = space.sample(4000, seed=2)
    assert space.in_cpe(oos, reference).all()
    if space.overlap_free:
        assert not space.overlaps(oos).any()
    np.testing.assert_array_equal(oos, space.sample_oos(200, seed=1))


def test_l_shape_matches_the_paper():
    space = LatentSpace(dataset="scalar", support="l_shape")
    z = space.sample(4000, seed=0)
    assert not ((z[:, 0] >= 0.5) & (z[:, 1] >= 0.5)).any()
    oos = space.sample_oos(1000, seed=0)
    assert ((oos >= 0.5) & (oos <= 0.9)).all()  # the missing square


def test_scm_support_matches_the_paper():
    space = LatentSpace(dataset="block", support="scm")
    z = space.sample(4000, seed=0)
    upper = z[:, 0] + z[:, 1] >= 1
    assert ((z[upper, 2] <= 0.5) & (z[upper, 3] >= 0.5)).all()
    assert ((z[~upper, 2] >= 0.5) & (z[~upper, 3] <= 0.5)).all()


def test_block_latents_avoid_overlap_by_default():
    space = LatentSpace(dataset="block", support="full")
    z = space.sample(3000, seed=0).reshape(-1, 2, 2)
    assert (np.linalg.norm(z[:, 0] - z[:, 1], axis=1) >= 2 * RADIUS).all()


@pytest.mark.parametrize("mechanism", ["copula", "scm"])
def test_dependence_level_increases_dependence(mechanism):
    corrs = []
    for level in (0.0, 0.5, 0.95 if mechanism == "copula" else 1.0):
        space = LatentSpace(dataset="scalar", support="full", dependence_mechanism=mechanism, dependence=level)
        z = space.sample(20000, seed=0)
        corrs.append(abs(np.corrcoef(z[:, 0], z[:, 1])[0, 1]))
    assert corrs[0] < 0.03
    assert corrs[0] < corrs[1] < corrs[2]


def test_copula_keeps_uniform_marginals():
    space = LatentSpace(dataset="scalar", support="full", dependence=0.9)
    z = space.sample(20000, seed=0)
    hist, _ = np.histogram(z[:, 1], bins=8, range=(LOW, HIGH))
    assert hist.min() > 0.8 * hist.mean()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"dataset": "pixels"}, "`dataset` must be one of"),
        ({"support": "moon"}, "`support` must be one of"),
        ({"dependence_mechanism": "gumbel"}, "`dependence_mechanism` must be one of"),
        ({"dependence": 1.0}, "`dependence` must be in [0, 1) for the copula"),
        ({"dependence_mechanism": "scm", "dependence": 1.5}, "`dependence` must be in [0, 1] for the scm"),
        ({"n_objects": 1}, "`n_objects` must be an integer >= 2"),
        ({"support": "full", "support_param": 0.3}, "`support_param` must be null"),
        ({"support": "l_shape", "support_param": 0.95}, "`support_param` must be in"),
    ],
)
def test_invalid_spaces_are_refused(kwargs, message):
    with pytest.raises(SpecError) as info:
        LatentSpace(**kwargs)
    assert message in str(info.value)


def test_unsamplable_combination_is_a_clear_error():
    space = LatentSpace(dataset="block", support="no_overlap", dependence=0.999)
    with pytest.raises(SupportError, match="accepted"):
        space.sample(1000, seed=0)


@settings(max_examples=25, deadline=None)
@given(
    dataset=st.sampled_from(["scalar", "block"]),
    support=st.sampled_from(["l_shape", "diagonal_band", "scm", "scm_nonlinear", "disconnected"]),
    level=st.floats(0.0, 0.9),
    seed=st.integers(0, 2**31),
    n=st.integers(1, 300),
)
def test_samplers_property(dataset, support, level, seed, n):
    space = LatentSpace(dataset=dataset, support=support, dependence=level)
    z = space.sample(n, seed)
    assert len(z) == n and space.contains(z).all()
    np.testing.assert_array_equal(z, space.sample(n, seed))
    oos = space.sample_oos(n, seed)
    assert len(oos) == n and not space.contains(oos).any()
    assert ((oos >= LOW) & (oos <= HIGH)).all()


def test_block_scm_support_is_path_connected_through_a_thin_seam():
    """The block SCM support is two pieces (ball 1 high with ball 2 top-left; ball 1 low
    with ball 2 bottom-right) that meet where ball 2 sits at (0.5, 0.5), which is in both
    quadrants: a path inside S leads from one piece to the other, so S is path-connected
    (not the `disconnected` case), and for continuous decoders a block-wise offset that
    vanishes on S must be constant. The seam is thin: almost no training sample is near
    it, so a steep block function that differs across the pieces costs little loss."""
    space = LatentSpace(dataset="block", support="scm")
    t = np.linspace(0.0, 1.0, 200)[:, None]
    stops = [  # ball 1 (x1, y1), ball 2 (x2, y2): ball 2 to the seam, ball 1 across x1 + y1 = 1, ball 2 away
        [0.85, 0.85, 0.3, 0.7],
        [0.85, 0.85, 0.5, 0.5],
        [0.15, 0.85, 0.5, 0.5],
        [0.15, 0.3, 0.5, 0.5],
        [0.15, 0.3, 0.7, 0.3],
    ]
    legs = [(1 - t) * np.array(a) + t * np.array(b) for a, b in zip(stops, stops[1:], strict=False)]
    path = np.concatenate(legs)
    assert space.contains(path).all()
    assert (path[0, 0] + path[0, 1] >= 1) and (path[-1, 0] + path[-1, 1] < 1)  # from one piece to the other

    z = space.sample(20000, 0)
    near_seam = np.max(np.abs(z[:, 2:] - 0.5), axis=1) < 0.02
    assert near_seam.mean() < 0.005


def _square_shares(z: np.ndarray) -> tuple[float, float, float]:
    low1, low2 = z[:, 0] < 0.5, z[:, 1] < 0.5
    return float((low1 & low2).mean()), float((low1 & ~low2).mean()), float((~low1 & low2).mean())


def test_paper_l_density_puts_a_half_on_the_lower_right_arm():
    """docs/PROTOCOL.md: the authors' sampler gives 1/4, 1/4 and 1/2 to the L's three squares."""
    z = LatentSpace(support="l_shape", l_density="paper").sample(40000, 0)
    assert np.allclose(_square_shares(z), (0.25, 0.25, 0.5), atol=0.01)


def test_uniform_l_density_spreads_evenly_over_the_l():
    z = LatentSpace(support="l_shape", l_density="uniform").sample(40000, 0)
    assert np.allclose(_square_shares(z), (1 / 3, 1 / 3, 1 / 3), atol=0.01)


@pytest.mark.parametrize("mechanism,level", [("copula", 0.9), ("scm", 1.0), ("copula", 0.0)])
@pytest.mark.parametrize("n_objects", [2, 3])
def test_paper_l_density_stays_in_the_l_under_dependence(mechanism, level, n_objects):
    space = LatentSpace(
        support="l_shape", l_density="paper", dependence_mechanism=mechanism, dependence=level, n_objects=n_objects
    )
    z = space.sample(5000, 1)
    assert space.contains(z).all()
    assert not np.all(z >= 0.5, axis=1).any()


def test_paper_l_density_keeps_the_copula_dependence_of_the_last_ball():
    """The last ball is redrawn from its conditional given the others (the copula's common
    factor kept), so the left arm, never redrawn, keeps the copula's strong dependence."""
    from additive.metrics import realised_dependence

    space = LatentSpace(support="l_shape", l_density="paper", dependence=0.9)
    z = space.sample(20000, 2)
    left = z[z[:, 0] < 0.5]
    assert realised_dependence(left, space.blocks) > 0.6
