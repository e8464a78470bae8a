"""Latent spaces: blocks, supports, dependence mechanisms, ID and OOS samplers.

docs/PROTOCOL.md, "The data". A latent vector z in [0.1, 0.9]^d is split into k blocks, one per
ball. Block size 1 ("scalar", ScalarLatents): each ball moves vertically at a fixed
column. Block size 2 ("block", BlockLatents): each ball has (x, y).

In-support samples follow p(z | z in S), proportional to p_dep(z) 1_S(z): a dependence
mechanism draws z in the box, and the support predicate S keeps or rejects it
(vectorised rejection sampling). OOS samples lie in CPE(S) \\ S, where CPE(S) is the
Cartesian product of the per-block projections of S; they are made by recombining the
blocks of independent in-support samples and keeping those outside S.

Balls that would overlap are rejected when ``avoid_overlap`` is on (the default for
block latents). Occlusion is outside what an additive decoder can draw, so OOS samples
avoid overlaps too: OOS = (CPE(S) \\ S) minus overlapping configurations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr

from additive.errors import SpecError, SupportError, must
from additive.plugins import call_plugin, is_plugin, parse_options

LOW, HIGH = 0.1, 0.9
RADIUS = 0.16  # ball radius in screen units, as in the paper (about 10 px at 64 px)

DATASETS = {"scalar": 1, "block": 2}
SUPPORTS = ("full", "l_shape", "diagonal_band", "disconnected", "no_overlap", "scm", "scm_nonlinear")
MECHANISMS = ("copula", "scm")
# How in-support latents are spread over the L: ``paper`` as the authors' sampler (every ball
# but the last from the mechanism, the last redrawn until the point is in the L: on two
# independent balls 1/4, 1/4 and 1/2 of the mass on the L's three squares); ``uniform``
# as plain rejection (1/3 each).
L_DENSITIES = ("paper", "uniform")
# The one numeric parameter of each support shape, and its default.
SUPPORT_PARAMS = {"l_shape": 0.5, "diagonal_band": 0.3, "disconnected": 0.2}
# Supports whose CPE(S) \ S is empty: no OOS set exists.
PRODUCT_SUPPORTS = ("full", "no_overlap")

_MAX_ROUNDS = 200
_MIN_ACCEPTANCE = 1e-4


@dataclass(frozen=True)
class LatentSpace:
    """Where the latents live and how they are distributed.

    Attributes:
        dataset: ``scalar`` (block size 1) or ``block`` (block size 2).
        n_objects: number of balls, i.e. of blocks (k >= 2).
        support: support shape S, one of ``SUPPORTS``, or a plugin's import path
            ``package.module:name`` (``additive.plugins``).
        support_options: a plugin support's keyword arguments, as JSON text.
        support_param: l_shape threshold, diagonal_band width or disconnected gap;
            ``None`` takes the shape's default.
        avoid_overlap: reject overlapping balls; ``None`` means on for block latents.
        dependence_mechanism: ``copula`` or ``scm``.
        dependence: dependence level; copula correlation in [0, 1), SCM probability in
            [0, 1]. Level 0 is the independent case for both mechanisms.
        l_density: how in-support samples spread over the L (``L_DENSITIES``); used by
            the ``l_shape`` support only.
    """

    dataset: str = "scalar"
    n_objects: int = 2
    support: str = "l_shape"
    support_param: float | None = None
    support_options: str | None = None
    avoid_overlap: bool | None = None
    dependence_mechanism: str = "copula"
    dependence: float = 0.0
    l_density: str = "paper"
    _param: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise must("dataset", f"be one of {sorted(DATASETS)}", self.dataset)
        if not isinstance(self.n_objects, int) or isinstance(self.n_objects, bool) or self.n_objects < 2:
            raise must("n_objects", "be an integer >= 2", self.n_objects)
        if self.dataset == "scalar" and self.n_objects > 3:
            # Fixed columns 1/(2k) apart; from k = 4 on, balls of radius 0.16 overlap.
            raise must("n_objects", "be 2 or 3 for scalar latents (balls would overlap)", self.n_objects)
        plugin = is_plugin(self.support)
        if self.support not in SUPPORTS and not plugin:
            raise must("support", f"be one of {list(SUPPORTS)} or a plugin path package.module:name", self.support)
        object.__setattr__(self, "support_options", parse_options(self.support_options, "support_options"))
        if self.support_options is not None and not plugin:
            raise must("support_options", f"be null for the built-in support {self.support!r}", self.support_options)
        if self.dependence_mechanism not in MECHANISMS:
            raise must("dependence_mechanism", f"be one of {list(MECHANISMS)}", self.dependence_mechanism)
        if self.l_density not in L_DENSITIES:
            raise must("l_density", f"be one of {list(L_DENSITIES)}", self.l_density)
        level = self.dependence
        if isinstance(level, bool) or not isinstance(level, (int, float)) or not math.isfinite(level):
            raise must("dependence", "be a number", level)
        if self.dependence_mechanism == "copula" and not 0.0 <= level < 1.0:
            raise must("dependence", "be in [0, 1) for the copula mechanism", level)
        if self.dependence_mechanism == "scm" and not 0.0 <= level <= 1.0:
            raise must("dependence", "be in [0, 1] for the scm mechanism", level)
        param = self.support_param
        if param is None:
            param = SUPPORT_PARAMS.get(self.support, 0.0)
        elif self.support not in SUPPORT_PARAMS:
            raise must("support_param", f"be null for support {self.support!r}", param)
        if self.support == "l_shape" and not LOW < param < HIGH:
            raise must("support_param", f"be in ({LOW}, {HIGH}) for l_shape (threshold)", param)
        if self.support == "diagonal_band" and not 0.0 < param < HIGH - LOW:
            raise must("support_param", f"be in (0, {HIGH - LOW:.1f}) for diagonal_band (width)", param)
        if self.support == "disconnected" and not 0.0 < param < 0.6:
            raise must("support_param", "be in (0, 0.6) for disconnected (gap)", param)
        object.__setattr__(self, "_param", float(param))

    # ----- layout -------------------------------------------------------------------
    @property
    def block_size(self) -> int:
        return DATASETS[self.dataset]

    @property
    def d(self) -> int:
        """Total latent dimension."""
        return self.block_size * self.n_objects

    @property
    def block_sizes(self) -> tuple[int, ...]:
        """The size of every block, in order (what a plugin decoder is built with)."""
        return (self.block_size,) * self.n_objects

    @property
    def blocks(self) -> list[slice]:
        """Slices of z, one per block (ball)."""
        b = self.block_size
        return [slice(i * b, (i + 1) * b) for i in range(self.n_objects)]

    @property
    def overlap_free(self) -> bool:
        """Whether overlapping balls are rejected (resolved ``avoid_overlap``)."""
        if self.support == "no_overlap":
            return True
        return self.dataset == "block" if self.avoid_overlap is None else bool(self.avoid_overlap)

    @property
    def has_oos(self) -> bool:
        """False when CPE(S) \\ S is empty by construction (product supports)."""
        return self.support not in PRODUCT_SUPPORTS

    def positions(self, z: np.ndarray) -> np.ndarray:
        """Ball centres (n, k, 2) in screen units, y up, from latents (n, d)."""
        z = np.asarray(z, dtype=np.float64)
        k = self.n_objects
        if self.dataset == "block":
            return z.reshape(-1, k, 2)
        columns = (np.arange(k) + 0.5) / k
        return np.stack([np.broadcast_to(columns, z.shape), z], axis=-1)

    def heights(self, z: np.ndarray) -> np.ndarray:
        """The y coordinate of every ball, (n, k)."""
        return self.positions(z)[..., 1]

    # ----- membership -----------------------------------------------------------------
    def in_box(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z)
        return np.all((z >= LOW - 1e-9) & (z <= HIGH + 1e-9), axis=1)

    def overlaps(self, z: np.ndarray) -> np.ndarray:
        """True where two balls' centres are closer than two radii."""
        p = self.positions(z)
        diff = p[:, :, None, :] - p[:, None, :, :]
        dist = np.sqrt((diff**2).sum(-1))
        k = self.n_objects
        iu = np.triu_indices(k, 1)
        return np.any(dist[:, iu[0], iu[1]] < 2 * RADIUS, axis=1)

    def in_shape(self, z: np.ndarray) -> np.ndarray:
        """Membership in the support shape, without the overlap constraint."""
        z = np.asarray(z, dtype=np.float64)
        y = self.heights(z)
        t = self._param
        s = self.support
        if is_plugin(s):
            inside = self._plugin_membership(z)
        elif s in ("full", "no_overlap"):
            inside = np.ones(len(z), dtype=bool)
        elif s == "l_shape":
            inside = ~np.all(y >= t, axis=1)
        elif s == "diagonal_band":
            inside = (y.max(axis=1) - y.min(axis=1)) <= t
        elif s == "disconnected":
            mid = (LOW + HIGH) / 2
            inside = np.all(y <= mid - t / 2, axis=1) | np.all(y >= mid + t / 2, axis=1)
        else:  # scm, scm_nonlinear
            inside = np.all(_scm_region(z, self, nonlinear=s == "scm_nonlinear"), axis=1)
        return inside & self.in_box(z)

    def _plugin_membership(self, z: np.ndarray) -> np.ndarray:
        """A plugin support's answer for ``z``: one bool per row, checked."""
        out = call_plugin(self.support, "support", z.copy(), options_text=self.support_options)
        got = np.asarray(out)
        if got.shape != (len(z),) or got.dtype != np.bool_:
            shape = getattr(out, "shape", None)
            what = f"shape {tuple(shape)} of {got.dtype}" if shape is not None else f"a {type(out).__name__}"
            requirement = f"must return one bool per latent, shape ({len(z)},), but got {what}"
            raise SpecError(f"`support` {requirement}", field="support", requirement=requirement)
        return got

    def contains(self, z: np.ndarray) -> np.ndarray:
        """Membership in the support S (shape and, if on, no overlap)."""
        inside = self.in_shape(z)
        if self.overlap_free:
            inside &= ~self.overlaps(z)
        return inside

    def in_cpe(self, z: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Approximate membership in CPE(S): every block lies near some block of
        ``reference`` (in-support samples). Used by tests, not by the samplers."""
        z = np.asarray(z)
        ok = np.ones(len(z), dtype=bool)
        for sl in self.blocks:
            a, b = z[:, sl], reference[:, sl]
            nearest = np.min(np.abs(a[:, None, :] - b[None, :, :]).max(-1), axis=1)
            ok &= nearest < 0.05
        return ok

    # ----- samplers -----------------------------------------------------------------
    def sample_base(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws of the dependence mechanism in the box [0.1, 0.9]^d."""
        return sample_dependent(self, n, rng)

    def sample(self, n: int, seed: int | np.random.Generator) -> np.ndarray:
        """n in-support latents (n, d), float32, identical for the same seed."""
        rng = np.random.default_rng(seed)
        if self.support == "l_shape" and self.l_density == "paper":
            return _rejection(lambda m: self._sample_sequential(m, rng), self.contains, n, self._describe())
        return _rejection(lambda m: self.sample_base(m, rng), self.contains, n, self._describe())

    def _sample_sequential(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """The authors' L sampler: every ball but the last from the dependence mechanism,
        the last ball's block redrawn from the mechanism (given the others' shared
        randomness, i.e. from its conditional) until the point lies in the L. Points that
        stay outside after the redraws are left for the caller's rejection."""
        z, redraw_last = _draw_mechanism(self, n, rng)
        for _ in range(_MAX_ROUNDS):
            outside = ~self.in_shape(z)
            if not outside.any():
                break
            redraw_last(z, outside)
        return z

    def sample_oos(self, n: int, seed: int | np.random.Generator) -> np.ndarray:
        """n latents of CPE(S) \\ S (n, d); an empty (0, d) array when that set is empty."""
        rng = np.random.default_rng(seed)
        if not self.has_oos or n == 0:
            return np.zeros((0, self.d), dtype=np.float32)
        pool_size = max(4 * n, 2000)

        def draw(m: int) -> np.ndarray:
            pool = self.sample(max(m, pool_size), rng)
            out = pool.copy()
            for sl in self.blocks[1:]:
                out[:, sl] = pool[rng.permutation(len(pool)), sl]
            return out[:m]

        def keep(z: np.ndarray) -> np.ndarray:
            ok = ~self.in_shape(z) & self.in_box(z)
            if self.overlap_free:
                ok &= ~self.overlaps(z)
            return ok

        try:
            return _rejection(draw, keep, n, self._describe() + " (OOS)")
        except SupportError:
            return np.zeros((0, self.d), dtype=np.float32)

    def _describe(self) -> str:
        density = f" ({self.l_density} density)" if self.support == "l_shape" else ""
        return (
            f"support {self.support!r}{density} with {self.dependence_mechanism} dependence "
            f"{self.dependence} ({self.dataset}, k={self.n_objects}, "
            f"avoid_overlap={self.overlap_free})"
        )


def _scm_region(z: np.ndarray, space: LatentSpace, nonlinear: bool) -> np.ndarray:
    """For balls j >= 2, whether ball j lies in the region the paper's SCM assigns it
    given ball 1 (docs/PROTOCOL.md: ball 1 uniform; if x1 + y1 >= 1 ball 2 ~ U([.1,.5]x[.5,.9])
    else U([.5,.9]x[.1,.5]); nonlinear rule 1.25 (x1^2 + y1^2) >= 1). For scalar
    latents the same rule on y alone: if ball 1 is high, the others are low."""
    cond = _scm_condition(z, space, nonlinear)
    b = space.block_size
    mid = (LOW + HIGH) / 2
    out = []
    for sl in space.blocks[1:]:
        blk = z[:, sl]
        if b == 2:
            top_left = (blk[:, 0] <= mid) & (blk[:, 1] >= mid)
            bottom_right = (blk[:, 0] >= mid) & (blk[:, 1] <= mid)
            out.append(np.where(cond, top_left, bottom_right))
        else:
            out.append(np.where(cond, blk[:, 0] <= mid, blk[:, 0] >= mid))
    return np.stack(out, axis=1)


def _scm_condition(z: np.ndarray, space: LatentSpace, nonlinear: bool) -> np.ndarray:
    b = space.block_size
    first = np.asarray(z)[:, :b]
    if nonlinear:
        return 1.25 * (first**2).sum(1) * (2 / b) >= 1.0
    return first.sum(1) >= b * 0.5


def sample_dependent(space: LatentSpace, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw n latents in the box from the dependence mechanism (vectorised).

    copula: a Gaussian copula with correlation ``level`` between corresponding coordinates
    of different balls, uniform marginals. scm: with probability ``level`` balls j >= 2
    follow the paper's (linear) SCM rule given ball 1, otherwise they are independent.
    """
    return _draw_mechanism(space, n, rng)[0]


def _draw_mechanism(space: LatentSpace, n: int, rng: np.random.Generator):
    """``sample_dependent``'s draw and a function ``redraw_last(z, rows)`` that redraws the
    last ball's block of ``rows`` in place from its conditional given the other balls: the
    mechanism's shared randomness (the copula's common factor; the SCM's follow flag and
    ball 1) is kept and only the last ball's own randomness is drawn again."""
    k, b, level = space.n_objects, space.block_size, float(space.dependence)
    last = space.blocks[-1]
    mid = (LOW + HIGH) / 2
    if space.dependence_mechanism == "copula":
        common = rng.standard_normal((n, 1, b))
        noise = rng.standard_normal((n, k, b))
        a, s = math.sqrt(level), math.sqrt(1.0 - level)
        z = (LOW + (HIGH - LOW) * ndtr(a * common + s * noise)).reshape(n, k * b)

        def redraw_copula(z: np.ndarray, rows: np.ndarray) -> None:
            g = a * common[rows, 0] + s * rng.standard_normal((int(rows.sum()), b))
            z[rows, last] = LOW + (HIGH - LOW) * ndtr(g)

        return z.astype(np.float64), redraw_copula

    z = rng.uniform(LOW, HIGH, size=(n, k * b))
    follow = rng.random(n) < level
    cond = _scm_condition(z, space, nonlinear=False)

    def scm_block(rows: np.ndarray) -> np.ndarray:
        """A block for each row of ``rows``: SCM region where the row follows, else uniform."""
        m = int(rows.sum())
        out = rng.uniform(LOW, HIGH, size=(m, b))
        f = follow[rows]
        if f.any():
            lo_half = rng.uniform(LOW, mid, size=(int(f.sum()), b))
            hi_half = lo_half + (mid - LOW)
            c = cond[rows][f]
            if b == 2:
                region = np.where(
                    c[:, None],
                    np.stack([lo_half[:, 0], hi_half[:, 1]], 1),
                    np.stack([hi_half[:, 0], lo_half[:, 1]], 1),
                )
            else:
                region = np.where(c[:, None], lo_half, hi_half)
            out[f] = region
        return out

    if follow.any():
        for sl in space.blocks[1:]:
            z[follow, sl] = scm_block(follow)

    def redraw_scm(z: np.ndarray, rows: np.ndarray) -> None:
        z[rows, last] = scm_block(rows)

    return z, redraw_scm


def _rejection(draw, keep, n: int, what: str) -> np.ndarray:
    """Vectorised rejection sampling: draw in bulk, keep the accepted, repeat."""
    chunks: list[np.ndarray] = []
    have, tried, accepted = 0, 0, 0
    for _ in range(_MAX_ROUNDS):
        if have >= n:
            break
        rate = max(accepted / tried, _MIN_ACCEPTANCE) if tried else 0.25
        m = int(min(max((n - have) / rate * 1.2, 256), 2_000_000))
        z = draw(m).astype(np.float32)  # test membership on what is returned
        ok = keep(z)
        tried += len(z)
        accepted += int(ok.sum())
        chunks.append(z[ok])
        have += int(ok.sum())
        if tried >= 200_000 and accepted / tried < _MIN_ACCEPTANCE:
            break
    if have < n:
        rate = accepted / max(tried, 1)
        raise SupportError(
            f"cannot sample {n} latents from {what}: only {rate:.2%} of draws are accepted; "
            "lower the dependence level or change the support"
        )
    return np.concatenate(chunks)[:n]
