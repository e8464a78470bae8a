from __future__ import annotations

import dataclasses
import math
import random

import pytest

from additive import SpecError, run_trial
from additive.restarts import RestartsSpec, run_restarts, select_restart
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
    real = train.evaluate
    rng = random.Random(1)

    def scrambled(*args, **kwargs):
        return {k: rng.uniform(-1e3, 1e3) for k in real(*args, **kwargs)}

    monkeypatch.setattr(train, "evaluate", scrambled)
    assert run_restarts(group_spec, RestartsSpec(k=3)).selected == honest
    assert run_restarts(group_spec, RestartsSpec(k=3, select_at=20)).selected == honest_early


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
