"""Restarts: train K initialisations over the same data, keep the one with the lowest
validation loss.

The identifiability theory (docs/PROTOCOL.md, "The claim") is about minimisers of the reconstruction
loss; a single run sometimes sticks in a local minimum with a higher validation loss. The
estimator that speaks to the theory is "train K initialisations, keep the one whose
validation reconstruction loss is lowest". A *restart group* is the K members of one
(trial, seed): they share the data and differ only in ``restart`` (member r initialises
from its base seed + 1,000,000 x r, ``TrialSpec.effective_init_seed``), so member r is
exactly ``run_trial(replace(spec, restart=r))``.

With rungs (``RestartsSpec.schedule``: ``rungs: [s1, s2, ...]``, or ``select_at: s`` for one
rung) the group races its members by successive halving: every member trains to s1; the
better half by validation loss so far (each member's best evaluation up to the rung) trains
on to s2, the others stop there, unevaluated; ...; at the last rung one member is kept and
trains to ``steps``. A late riser, worse at s1 but better by s2, is still in the race when
the validation loss can tell. Members train one at a time in the group's slot; a member
waiting for the next rung is parked on disk (``Training.park``), so one member is in memory
at a time, and it goes on exactly as if it had never stopped. Without rungs, every member
runs the full budget and is evaluated; the lowest final validation loss is kept. Selection
reads the validation loss and nothing else (``rank_restarts``, ``select_restart``): never
latents, never OOS images.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from additive.errors import DivergedError, SpecError
from additive.spec import RestartsSpec, TrialSpec

if TYPE_CHECKING:  # torch is imported when a group trains, not when selection is read
    from additive.train import Training, TrialResult

__all__ = [
    "GroupResult",
    "MemberResult",
    "RestartsSpec",
    "member_spec",
    "rank_restarts",
    "run_restarts",
    "select_restart",
]

MemberCallback = Callable[[int, int, dict[str, float]], None]  # (restart, step, curve row)


@dataclass
class MemberResult:
    """One member of a restart group: ``status`` is ok (ran the full budget), stopped
    (not kept at a rung: ``stopped_at_rung``), diverged or failed; while the group trains,
    also training or waiting."""

    restart: int
    spec: TrialSpec
    status: str
    selected: bool = False
    result: TrialResult | None = None
    error: str | None = None
    stopped_at_rung: int | None = None  # the rung (1 = the first) at which a stopped member stopped

    @property
    def val_loss(self) -> float | None:
        return None if self.result is None else self.result.metrics.get("val_loss")


@dataclass
class GroupResult:
    members: list[MemberResult] = field(default_factory=list)
    selected: int | None = None
    data_seconds: float = 0.0

    @property
    def best(self) -> MemberResult | None:
        return None if self.selected is None else self.members[self.selected]


def select_restart(val_losses: Sequence[float | None]) -> int | None:
    """The index of the lowest finite validation loss (ties: the lower index); None when
    no member has one. This is the whole of restart selection: its input is the members'
    validation losses, nothing else."""
    best: int | None = None
    for i, v in enumerate(val_losses):
        if v is None or not math.isfinite(v):
            continue
        if best is None or v < val_losses[best]:  # type: ignore[operator]
            best = i
    return best


def member_spec(spec: TrialSpec, restart: int) -> TrialSpec:
    return dataclasses.replace(spec, restart=restart)


def run_restarts(
    spec: TrialSpec,
    restarts: RestartsSpec,
    callback: MemberCallback | None = None,
    weights_dir: str | os.PathLike | None = None,
) -> GroupResult:
    """Train a restart group (module docstring) and evaluate the member it keeps, and with
    no rungs every member. ``callback(restart, step, row)`` sees every evaluation of every
    member; ``row`` also carries the group's state (``GROUP_KEYS``). With ``weights_dir``
    the kept member's best state is saved there as ``weights.pt``. A member that diverges
    or raises is recorded and never kept; the others go on."""
    if spec.restart:
        raise SpecError(
            f"`restart` must be 0 in a restart group's spec (members set it), but got {spec.restart}", "restart"
        )
    from additive.train import prepare_data

    restarts.check(spec)
    data, device, data_seconds = prepare_data(spec)
    race = _Race(spec, restarts, data, device, data_seconds, callback)
    if restarts.schedule:
        with tempfile.TemporaryDirectory(prefix="adx-rungs-") as parking:
            race.run_rungs(parking, weights_dir)
    else:
        race.run_in_full(weights_dir)
    group = race.group
    if group.selected is not None:
        group.members[group.selected].selected = True
    return group


# Keys a restart group adds to each evaluation row it passes on (besides the member's curve).
GROUP_KEYS = ("group_steps", "members_waiting", "members_finished")


class _Race:
    """The members of one restart group and where each stands; trains them one at a time."""

    def __init__(self, spec, restarts, data, device, data_seconds, callback):
        self.spec, self.restarts, self.data, self.device = spec, restarts, data, device
        self.data_seconds, self.callback = data_seconds, callback
        self.group = GroupResult(data_seconds=data_seconds)
        self.group.members = [MemberResult(r, member_spec(spec, r), "waiting") for r in range(restarts.k)]
        self.steps_before = 0  # steps trained by the group before the current member's segment
        self.segment_start = 0  # the step the current member's segment started from

    def seconds(self, r: int) -> float:
        return self.data_seconds if r == 0 else 0.0  # the group renders its data once

    def _on_eval(self, r: int):
        if self.callback is None:
            return None
        callback = self.callback

        def report(step: int, row: dict[str, float]) -> None:
            members = self.group.members
            state = {
                "group_steps": self.steps_before + step - self.segment_start,
                "members_waiting": sum(m.status == "waiting" for m in members),
                "members_finished": sum(m.status not in ("waiting", "training") for m in members),
            }
            callback(r, step, {**row, **state})

        return report

    def _train(self, r: int, until: int, parked: str | None) -> Training | None:
        """Advance member r to ``until`` (from its parked state, if any); None if it failed."""
        from additive.train import Training

        member = self.group.members[r]
        member.status = "training"
        training = None
        start = 0
        try:
            if parked is not None and os.path.exists(parked):
                training = Training.unpark(parked, member.spec, self.data, self.device, self._on_eval(r))
            else:
                training = Training(member.spec, self.data, self.device, self._on_eval(r))
            start = self.segment_start = training.step
            training.advance(until)
        except Exception as exc:
            member.status, member.error = _failure(exc)
            if training is not None:
                member.result = dataclasses.replace(training.partial_result(self.seconds(r)), metrics={})
                self.steps_before += training.step - start
            return None
        self.steps_before += training.step - start
        member.status = "waiting"
        return training

    def run_in_full(self, weights_dir) -> None:
        """Every member to ``steps``, evaluated; the lowest final validation loss is kept."""
        leader = None  # the best member so far: the only one kept in memory
        for member in self.group.members:
            training = self._train(member.restart, self.spec.steps, None)
            if training is None:
                continue
            member.status, member.result = "ok", training.result(self.seconds(member.restart))
            if select_restart(self._losses()) == member.restart:
                leader = training
        chosen = select_restart(self._losses())
        self.group.selected = chosen
        if chosen is not None and weights_dir is not None:
            assert leader is not None and leader.spec.restart == chosen and leader.best.state is not None
            result = self.group.members[chosen].result
            assert result is not None
            result.weights_path = leader.save_best(weights_dir)

    def run_rungs(self, parking: str, weights_dir) -> None:
        """Successive halving: all members to the first rung, the better half on to the
        next, ..., one member from the last rung to ``steps``."""
        members = self.group.members
        alive = [m.restart for m in members]
        for i, (rung, keep) in enumerate(zip(self.restarts.schedule, self.restarts.survivors, strict=True)):
            for r in alive:
                training = self._train(r, rung, os.path.join(parking, f"{r}.pt"))
                if training is None:
                    continue
                members[r].result = training.partial_result(self.seconds(r))
                training.park(os.path.join(parking, f"{r}.pt"))
                del training  # one member in memory at a time
            running = [r for r in alive if members[r].status == "waiting"]
            kept = rank_restarts([members[r].val_loss for r in running])[:keep]
            survivors = [running[j] for j in sorted(kept)]
            for r in running:
                if r not in survivors:
                    members[r].status, members[r].stopped_at_rung = "stopped", i + 1
            alive = survivors
        if not alive:
            return
        (chosen,) = alive
        member = members[chosen]
        training = self._train(chosen, self.spec.steps, os.path.join(parking, f"{chosen}.pt"))
        if training is None:
            return
        try:
            member.status, member.result = "ok", training.result(self.seconds(chosen), weights_dir)
        except Exception as exc:
            member.status, member.error = _failure(exc)
            return
        self.group.selected = chosen

    def _losses(self) -> list[float | None]:
        return [m.val_loss if m.status == "ok" else None for m in self.group.members]


def rank_restarts(val_losses: Sequence[float | None]) -> list[int]:
    """Indices of the members with a finite validation loss, lowest first (ties: the lower
    index first). Successive halving keeps a prefix of this order at each rung; like
    ``select_restart``, its only input is the members' validation losses."""
    finite = [i for i, v in enumerate(val_losses) if v is not None and math.isfinite(v)]
    return sorted(finite, key=lambda i: (val_losses[i], i))  # type: ignore[arg-type, return-value]


def _failure(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, DivergedError):
        return "diverged", str(exc)
    return "failed", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}"


@dataclass(frozen=True)
class TopUpRule:
    """When a restart group gets more members, from validation losses alone.

    After a cell's groups finish, each group's kept validation loss is compared with the
    other groups of its cell: a group whose kept loss lies above the upper fence of the cell,
    Tukey's ``q3 + fence x (q3 - q1)`` on the log10 of the kept losses, stands out as a group
    whose members all stopped in a worse minimum. It gets members, trained to the full budget,
    until it has ``max_members``; the kept member is then the one with the lowest validation
    loss among its full-budget members (the old kept one and the new ones). A cell with fewer
    than ``min_groups`` groups has no fence (quartiles of fewer mean nothing)."""

    max_members: int = 4
    fence: float = 1.5
    min_groups: int = 4

    def __post_init__(self) -> None:
        if isinstance(self.max_members, bool) or not isinstance(self.max_members, int) or self.max_members < 2:
            raise SpecError(f"`max_members` must be an integer >= 2, but got {self.max_members!r}", "max_members")
        if not (isinstance(self.fence, (int, float)) and self.fence >= 0):
            raise SpecError(f"`fence` must be a number >= 0, but got {self.fence!r}", "fence")
        if isinstance(self.min_groups, bool) or not isinstance(self.min_groups, int) or self.min_groups < 4:
            raise SpecError(f"`min_groups` must be an integer >= 4, but got {self.min_groups!r}", "min_groups")

    def upper_fence(self, kept_losses: Sequence[float]) -> float | None:
        """The cell's fence on the validation loss; None when the cell has too few groups."""
        logs = sorted(math.log10(v) for v in kept_losses if v is not None and math.isfinite(v) and v > 0)
        if len(logs) < self.min_groups:
            return None
        q1, q3 = _quantile(logs, 0.25), _quantile(logs, 0.75)
        return 10 ** (q3 + self.fence * (q3 - q1))

    def flagged(self, kept_by_group: dict[str, float]) -> dict[str, float]:
        """The groups of one cell (id -> kept validation loss) that get more members, each with
        the cell's fence."""
        fence = self.upper_fence(list(kept_by_group.values()))
        if fence is None:
            return {}
        return {gid: fence for gid, v in kept_by_group.items() if v is not None and math.isfinite(v) and v > fence}


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on sorted values."""
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)
