from __future__ import annotations

import dataclasses
import json
import math
import random

import pytest

from additive import SpecError, run_trial
from additive.restarts import RestartsSpec, rank_restarts, run_restarts, select_restart
from additive.train import Training


@pytest.fixture
def group_spec(tiny_spec):
    return dataclasses.replace(tiny_spec, steps=40, eval_every=10)


def test_select_restart_takes_the_lowest_finite_loss():
    assert select_restart([0.3, 0.1, 0.2]) == 1
    assert select_restart([0.1, 0.1]) == 0  # ties: the lower index
    assert select_restart([None, float("nan"), 0.5, float("inf")]) == 2
    assert select_restart([None, float("nan")]) is None
    assert select_restart([]) is None


def test_every_member_equals_its_plain_trial_without_select_at(group_spec):
    group = run_restarts(group_spec, RestartsSpec(k=3))
    assert [m.status for m in group.members] == ["ok"] * 3
    for m in group.members:
        alone = run_trial(dataclasses.replace(group_spec, restart=m.restart))
        assert m.result.curves == alone.curves
        assert m.result.metrics == pytest.approx(alone.metrics, nan_ok=True)
    losses = [m.result.metrics["val_loss"] for m in group.members]
    assert len(set(losses)) == 3  # the members differ
    assert group.selected == losses.index(min(losses))
    assert [m.selected for m in group.members] == [i == group.selected for i in range(3)]


def test_select_at_continues_the_best_member_exactly(group_spec):
    group = run_restarts(group_spec, RestartsSpec(k=3, select_at=20))
    chosen = group.best
    assert chosen is not None and chosen.status == "ok" and chosen.result.steps_done == 40
    alone = run_trial(dataclasses.replace(group_spec, restart=chosen.restart))
    assert chosen.result.curves == alone.curves  # paused at select_at, then on: the same run
    assert chosen.result.metrics == pytest.approx(alone.metrics, nan_ok=True)
    at_select = {}
    for m in group.members:
        assert [row["step"] for row in m.result.curves][:2] == [10, 20]
        at_select[m.restart] = min(row["val_loss"] for row in m.result.curves if row["step"] <= 20)
        if m is not chosen:
            assert m.status == "stopped" and m.result.steps_done == 20 and not m.selected
            assert set(m.result.metrics) == {"val_loss", "train_loss"}  # never evaluated on ground truth
    assert chosen.restart == min(at_select, key=lambda r: at_select[r])


def test_selection_never_reads_ground_truth(group_spec, monkeypatch):
    """With every ground-truth metric scrambled, the same member is selected."""
    import additive.train as train

    honest = run_restarts(group_spec, RestartsSpec(k=3)).selected
    honest_early = run_restarts(group_spec, RestartsSpec(k=3, select_at=20)).selected
    raced = run_restarts(group_spec, RestartsSpec(k=4, rungs=[10, 20]))
    honest_rungs = [(m.status, m.stopped_at_rung) for m in raced.members]
    real = train.evaluate
    rng = random.Random(1)

    def scrambled(*args, **kwargs):
        return {k: rng.uniform(-1e3, 1e3) for k in real(*args, **kwargs)}

    monkeypatch.setattr(train, "evaluate", scrambled)
    assert run_restarts(group_spec, RestartsSpec(k=3)).selected == honest
    assert run_restarts(group_spec, RestartsSpec(k=3, select_at=20)).selected == honest_early
    again = run_restarts(group_spec, RestartsSpec(k=4, rungs=[10, 20]))
    assert again.selected == raced.selected and [(m.status, m.stopped_at_rung) for m in again.members] == honest_rungs


def test_rungs_continue_every_survivor_exactly(group_spec):
    """Parked at a rung and trained on, a member computes what one uninterrupted run does."""
    group = run_restarts(group_spec, RestartsSpec(k=4, rungs=[10, 20]))
    assert sorted(m.result.steps_done for m in group.members) == [10, 10, 20, 40]
    for m in group.members:
        alone = run_trial(dataclasses.replace(group_spec, restart=m.restart))
        assert m.result.curves == alone.curves[: len(m.result.curves)]
    kept = group.best
    assert kept is not None and kept.result.metrics == pytest.approx(
        run_trial(dataclasses.replace(group_spec, restart=kept.restart)).metrics, nan_ok=True
    )


def test_a_broken_member_is_recorded_and_never_selected(group_spec, monkeypatch):
    from additive.errors import DivergedError

    advance = Training.advance

    def breaks_member_one(self, until):
        if self.spec.restart == 1:
            raise DivergedError("injected: loss became nan")
        return advance(self, until)

    monkeypatch.setattr(Training, "advance", breaks_member_one)
    group = run_restarts(group_spec, RestartsSpec(k=3, select_at=20))
    statuses = {m.restart: m.status for m in group.members}
    assert statuses[1] == "diverged" and "injected" in group.members[1].error
    assert group.selected in (0, 2) and not group.members[1].selected


def test_no_member_left_means_no_selection(group_spec, monkeypatch):
    def broken(self, until):
        raise RuntimeError("injected")

    monkeypatch.setattr(Training, "advance", broken)
    group = run_restarts(group_spec, RestartsSpec(k=2, select_at=20))
    assert group.selected is None and [m.status for m in group.members] == ["failed", "failed"]


@pytest.mark.parametrize(
    "restarts, message",
    [
        (RestartsSpec(k=2, select_at=15), "multiple of eval_every"),
        (RestartsSpec(k=2, select_at=40), "below steps"),
    ],
)
def test_select_at_is_checked_against_the_trial(group_spec, restarts, message):
    with pytest.raises(SpecError, match=message):
        run_restarts(group_spec, restarts)


@pytest.mark.parametrize("kwargs", [{"k": 0}, {"k": 1.5}, {"select_at": 0}, {"select_at": True}])
def test_restarts_spec_rejects_bad_values(kwargs):
    with pytest.raises(SpecError, match="must"):
        RestartsSpec(**kwargs)


def test_cost_in_full_runs():
    assert RestartsSpec(k=4, select_at=1000).cost(10000) == pytest.approx(1.3)
    assert RestartsSpec(k=4).cost(10000) == 4.0
    assert math.isclose(RestartsSpec(k=1, select_at=500).cost(10000), 1.0)


# ----- rungs: successive halving inside a group ---------------------------------------------
class _Scripted:
    """A stand-in for ``Training`` whose validation loss at each evaluation is scripted per
    member (``LOSSES[restart][step]``; NaN diverges), so which member stops where can be
    computed by hand. It parks and unparks like the real one."""

    LOSSES: dict[int, dict[int, float]] = {}
    EVERY = 10
    parked_at: list[tuple[int, int]] = []

    def __init__(self, spec, data, device, callback=None, observe=None):
        self.spec, self.callback = spec, callback
        self.step, self.curves = 0, []
        self.best_loss = math.inf

    def advance(self, until):
        from additive.errors import DivergedError

        while self.step < min(until, self.spec.steps):
            self.step += self.EVERY
            loss = self.LOSSES[self.spec.restart][self.step]
            if loss != loss:
                raise DivergedError(f"validation loss became nan at step {self.step}")
            self.best_loss = min(self.best_loss, loss)
            row = {"step": self.step, "train_loss": loss, "val_loss": loss, "best_val_loss": self.best_loss, "lr": 0.0}
            self.curves.append(row)
            if self.callback:
                self.callback(self.step, row)

    def _result(self, metrics):
        from additive.train import TrialResult

        return TrialResult(metrics=metrics, curves=list(self.curves), steps_done=self.step)

    def partial_result(self, data_seconds=0.0):
        return self._result({"val_loss": self.best_loss})

    def result(self, data_seconds=0.0, weights_dir=None):
        return self._result({"val_loss": self.best_loss, "lms_id": 0.0})

    def park(self, path):
        _Scripted.parked_at.append((self.spec.restart, self.step))
        with open(path, "w") as f:
            json.dump([self.step, self.curves, self.best_loss], f)

    @classmethod
    def unpark(cls, path, spec, data, device, callback=None):
        training = cls(spec, data, device, callback)
        with open(path) as f:
            training.step, training.curves, training.best_loss = json.load(f)
        return training


@pytest.fixture
def scripted(monkeypatch, group_spec):
    import additive.train as train

    monkeypatch.setattr(train, "Training", _Scripted)
    monkeypatch.setattr(train, "prepare_data", lambda spec: (None, "cpu", 0.0))
    _Scripted.parked_at = []

    def run(losses: dict[int, list[float]], **restarts):
        """``losses[r]``: member r's validation loss at steps 10, 20, 30, 40."""
        _Scripted.LOSSES = {r: dict(zip((10, 20, 30, 40), v, strict=True)) for r, v in losses.items()}
        events = []
        group = run_restarts(group_spec, RestartsSpec(k=len(losses), **restarts), callback=lambda *a: events.append(a))
        return group, events

    return run


def _outcome(group):
    return {m.restart: (m.status, m.result.steps_done if m.result else None, m.stopped_at_rung) for m in group.members}


def test_rungs_halve_the_members_by_loss_so_far_and_keep_one(scripted):
    # by hand: at 10 the best three of five by loss so far go on: r1 (.1), r3 (.2), r4 (.3);
    # at 20 the best two by loss so far: r3 (.05) and r1 (.1, its best so far), not r4 (.15);
    # at 30 r1 (.01) beats r3 (.04) and is kept to the end.
    group, _ = scripted(
        {
            0: [0.9, 0.8, 0.7, 0.6],
            1: [0.1, 0.2, 0.01, 0.01],  # its best so far at 20 is still 0.1
            2: [0.5, 0.01, 0.01, 0.01],  # a late riser the first rung already cut
            3: [0.2, 0.05, 0.04, 0.04],
            4: [0.3, 0.15, 0.1, 0.1],
        },
        rungs=[10, 20, 30],
    )
    assert _outcome(group) == {
        0: ("stopped", 10, 1),
        1: ("ok", 40, None),
        2: ("stopped", 10, 1),
        3: ("stopped", 30, 3),
        4: ("stopped", 20, 2),
    }
    assert group.selected == 1 and [m.selected for m in group.members] == [False, True, False, False, False]


def test_a_later_first_rung_keeps_the_late_riser(scripted):
    losses = {0: [0.1, 0.1, 0.1, 0.1], 1: [0.15, 0.01, 0.01, 0.01], 2: [0.2, 0.2, 0.2, 0.2], 3: [0.3, 0.3, 0.3, 0.3]}
    early, _ = scripted(losses, select_at=10)
    raced, _ = scripted(losses, rungs=[10, 20])
    assert early.selected == 0  # chosen at 10: the late riser is gone
    assert raced.selected == 1  # halved at 10 (r0, r1 go on), the late riser r1 kept at 20


def test_ties_keep_the_lower_restart(scripted):
    group, _ = scripted({0: [0.2] * 4, 1: [0.1] * 4, 2: [0.1] * 4, 3: [0.1] * 4}, rungs=[10, 20])
    # at 10: r1, r2, r3 tie at 0.1: the lower two (r1, r2) go on; at 20: r1 kept
    assert _outcome(group)[3] == ("stopped", 10, 1) and _outcome(group)[2] == ("stopped", 20, 2)
    assert group.selected == 1
    assert rank_restarts([0.1, 0.1, None, float("nan"), 0.05]) == [4, 0, 1]


def test_a_member_that_diverges_between_rungs_never_survives(scripted):
    nan = float("nan")
    group, _ = scripted({0: [0.1, nan, 0.1, 0.1], 1: [0.2, 0.2, 0.2, 0.2], 2: [0.9] * 4, 3: [0.3] * 4}, rungs=[10, 20])
    # r0 leads at 10 and diverges before 20; r1 is the one member left at 20 and is kept
    assert _outcome(group)[0][0] == "diverged" and "nan at step 20" in group.members[0].error
    assert group.selected == 1 and _outcome(group)[1] == ("ok", 40, None)
    assert _outcome(group)[3] == ("stopped", 10, 1)


def test_k_not_a_power_of_two_and_more_rungs_than_halvings(scripted):
    group, _ = scripted({r: [0.1 * (r + 1)] * 4 for r in range(3)}, rungs=[10, 20, 30])
    assert RestartsSpec(k=3, rungs=[10, 20, 30]).survivors == (2, 1, 1)
    assert _outcome(group) == {0: ("ok", 40, None), 1: ("stopped", 20, 2), 2: ("stopped", 10, 1)}


def test_members_wait_parked_and_the_group_reports_what_each_does(scripted):
    _, events = scripted({r: [0.1 * (r + 1)] * 4 for r in range(4)}, rungs=[10, 20])
    # every member trains to 10 and is parked there; two go on to 20 and are parked; one to 40
    assert _Scripted.parked_at == [(0, 10), (1, 10), (2, 10), (3, 10), (0, 20), (1, 20)]
    first = {(r, s): row for r, s, row in events}
    assert first[(0, 10)]["members_waiting"] == 3 and first[(0, 10)]["members_finished"] == 0
    assert first[(1, 10)]["members_waiting"] == 3  # r0 parked at the rung, r2 and r3 not started
    assert first[(0, 40)]["members_finished"] == 3 and first[(0, 40)]["members_waiting"] == 0
    steps = [row["group_steps"] for _, _, row in events]
    assert steps == sorted(steps) and steps[-1] == 4 * 10 + 2 * 10 + 20  # the group's training steps
    assert RestartsSpec(k=4, rungs=[10, 20]).cost(40) == pytest.approx(steps[-1] / 40)
