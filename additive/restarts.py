"""Restarts: train K initialisations over the same data, keep the one with the lowest
validation loss.

The identifiability theory (PAPER.md, section 3) is about minimisers of the reconstruction
loss; a single run sometimes sticks in a local minimum with a higher validation loss. The
estimator that speaks to the theory is "train K initialisations, keep the one whose
validation reconstruction loss is lowest". A *restart group* is the K members of one
(trial, seed): they share the data and differ only in ``restart`` (member r initialises
from its base seed + 1,000,000 x r, ``TrialSpec.effective_init_seed``), so member r is
exactly ``run_trial(replace(spec, restart=r))``.

With ``select_at``, every member trains to that step, the member with the lowest validation
loss so far (its best evaluation up to ``select_at``) goes on to ``steps``, and the others
stop there, unevaluated. Without it, every member runs the full budget and is evaluated;
the lowest final validation loss is selected. Selection reads the validation loss and
nothing else (``select_restart``): never latents, never OOS images.
"""

from __future__ import annotations

import dataclasses
import math
import os
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from additive.errors import DivergedError, SpecError
from additive.spec import RestartsSpec, TrialSpec

if TYPE_CHECKING:  # torch is imported when a group trains, not when selection is read
    from additive.train import Training, TrialResult

__all__ = ["GroupResult", "MemberResult", "RestartsSpec", "member_spec", "run_restarts", "select_restart"]

MemberCallback = Callable[[int, int, dict[str, float]], None]  # (restart, step, curve row)


@dataclass
class MemberResult:
    """One member of a restart group: ``status`` is ok (ran the full budget), stopped
    (not selected at ``select_at``), diverged or failed."""

    restart: int
    spec: TrialSpec
    status: str
    selected: bool = False
    result: TrialResult | None = None
    error: str | None = None

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
    """Train a restart group (module docstring) and evaluate the selected member, and with
    no ``select_at`` every member. ``callback(restart, step, row)`` sees every evaluation
    of every member. With ``weights_dir`` the selected member's best state is saved there
    as ``weights.pt``. A member that diverges or raises is recorded and never selected;
    the others go on."""
    if spec.restart:
        raise SpecError(
            f"`restart` must be 0 in a restart group's spec (members set it), but got {spec.restart}", "restart"
        )
    from additive.train import Training, prepare_data

    restarts.check(spec)
    data, device, data_seconds = prepare_data(spec)
    group = GroupResult(data_seconds=data_seconds)
    until = restarts.select_at if restarts.select_at is not None else spec.steps
    leader: Training | None = None  # the best member so far: the only one kept in memory

    def seconds(r: int) -> float:
        return data_seconds if r == 0 else 0.0  # the group renders its data once

    def losses() -> list[float | None]:
        return [m.val_loss if m.status in ("ok", "stopped") else None for m in group.members]

    for r in range(restarts.k):
        mspec = member_spec(spec, r)
        member = MemberResult(r, mspec, "ok")
        group.members.append(member)
        cb = None if callback is None else (lambda step, row, r=r: callback(r, step, row))
        training = None
        try:
            training = Training(mspec, data, device, cb)
            training.advance(until)
            if restarts.select_at is None:
                member.result = training.result(seconds(r))
            else:
                member.status, member.result = "stopped", training.partial_result(seconds(r))
        except Exception as exc:
            member.status, member.error = _failure(exc)
            if training is not None:
                member.result = dataclasses.replace(training.partial_result(seconds(r)), metrics={})
            continue
        if select_restart(losses()) == r:
            leader = training  # the previous leader is dropped: it stops here for good
        del training

    chosen = select_restart(losses())
    if chosen is not None and restarts.select_at is not None:
        assert leader is not None and leader.spec.restart == chosen
        member = group.members[chosen]
        try:
            leader.advance(spec.steps)
            member.status, member.result = "ok", leader.result(seconds(chosen), weights_dir)
        except Exception as exc:
            member.status, member.error = _failure(exc)
            chosen = None
    elif chosen is not None and weights_dir is not None:
        assert leader is not None and leader.best.state is not None
        result = group.members[chosen].result
        assert result is not None
        result.weights_path = leader.save_best(weights_dir)
    group.selected = chosen
    if chosen is not None:
        group.members[chosen].selected = True
    return group


def _failure(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, DivergedError):
        return "diverged", str(exc)
    return "failed", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}"
