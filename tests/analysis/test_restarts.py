"""Restart evidence from synthetic full-budget runs with known learning curves."""

from __future__ import annotations

from typing import Any

import pytest

from analysis.load import load_curves, load_trials
from analysis.restarts import restart_evidence
from sweeps.results import Storage, SweepFiles
from sweeps.rows import CurveRow
from tests.analysis.conftest import make_row


def _write(root, members: dict[int, list[tuple[float, float, float, float]]], grouped: bool = False):
    """Per seed, per restart: (val loss at steps 10, 20, 30, final LMS ID). Runs of 30 steps:
    a grid over `restart`, or (``grouped``) the members of `restarts: {k: 3, select_at: null}`
    groups, as the engine writes them."""
    files = SweepFiles(Storage(str(root)), "ev")
    spec = b"restarts: {k: 3, select_at: null}\n" if grouped else b"grid: {restart: [0, 1, 2]}\n"
    files.storage.write_bytes(files.spec_path, b"name: ev\nseeds: 3\n" + spec)
    for seed, runs in members.items():
        kept = min(range(len(runs)), key=lambda r: runs[r][2])
        for r, (v10, v20, v30, lms) in enumerate(runs):
            tid = f"c000-s{seed}-r{r}" if grouped else f"c{r:03d}-s{seed}"
            group: dict[str, Any] = (
                {"restart_group": f"c000-s{seed}", "restarts": 3, "selected": r == kept} if grouped else {}
            )
            row = make_row(
                "ev", tid, "additive", seed, restart=r, steps=30, steps_done=30, lms_id=lms, val_loss=v30,
                train_seconds=10.0, eval_seconds=1.0, init_seed=seed + 1_000_000 * r, **group,
            )  # fmt: skip
            curves = [CurveRow("ev", tid, s, v, v, v, 1e-3) for s, v in ((10, v10), (20, v20), (30, v30))]
            files.write_trial(row, curves)
    return files


# At step 10 the losses do not tell the runs apart (identifying runs are as high or higher);
# from step 20 on, every identifying run is below every failing run of its seed.
MEMBERS = {
    0: [(0.5, 0.40, 0.30, 60.0), (0.4, 0.10, 0.05, 99.9), (0.6, 0.20, 0.10, 99.5)],
    1: [(0.3, 0.05, 0.02, 99.8), (0.2, 0.30, 0.25, 70.0), (0.1, 0.40, 0.35, 65.0)],
    2: [(0.2, 0.50, 0.45, 50.0), (0.3, 0.60, 0.55, 40.0), (0.4, 0.70, 0.65, 30.0)],
}


@pytest.fixture(params=[False, True], ids=["grid-of-restarts", "restart-groups"])
def evidence(tmp_path, request):
    _write(tmp_path, MEMBERS, grouped=request.param)
    return tmp_path


def test_auc_per_step_and_exact_selection(evidence):
    auc, table, note = restart_evidence(load_trials("ev", str(evidence)), load_curves("ev", str(evidence)))
    auc = auc.set_index("step")
    assert auc.loc[20, "AUC (within seed)"] == 1.0 and auc.loc[30, "AUC (within seed)"] == 1.0
    # step 10, seed 0: failing 0.5 vs identifying 0.4 (right) and 0.6 (wrong); seed 1: 0.2 and 0.1 vs 0.3 (wrong)
    assert auc.loc[10, "AUC (within seed)"] == pytest.approx(1 / 4)
    assert auc.loc[10, "identifying"] == 3 and auc.loc[10, "failing"] == 6
    t = table.set_index(["k", "select_at"])
    assert t.loc[(1, "end"), "selected identifies"] == "1/3 (0.06-0.79)"  # member 0 alone
    assert (1, 10) not in t.index  # one member: nothing to select
    assert t.loc[(2, 10), "selected identifies"] == "1/3 (0.06-0.79)"  # seed 0 picks member 1 (0.4 < 0.5)
    assert t.loc[(3, 10), "selected identifies"] == "1/3 (0.06-0.79)"  # seed 1 picks its member 2 (0.1), which fails
    assert t.loc[(3, 20), "selected identifies"] == "2/3 (0.21-0.94)"
    assert t.loc[(3, 20), "any member identifies"] == "2/3 (0.21-0.94)"
    assert t.loc[(3, 20), "cost (full runs)"] == pytest.approx((3 * 20 + 10) / 30, abs=1e-3)
    assert t.loc[(2, "end"), "cost (full runs)"] == 2.0
    assert t.loc[(3, 20), "selected LMS ID"] == pytest.approx(
        (99.9 + 99.8 + 50.0) / 3, abs=0.01
    )  # seed 2 keeps its member 0
    assert "9 full-budget runs in 3 (condition, seed) groups" in note


def test_select_at_chooses_the_rows_of_the_auc_table_not_the_auc_the_rungs_read(evidence):
    from additive.spec import RestartsSpec

    trials, curves = load_trials("ev", str(evidence)), load_curves("ev", str(evidence))
    full, _, _ = restart_evidence(trials, curves)
    auc, table, note = restart_evidence(trials, curves, [20], [RestartsSpec(k=3, rungs=(10,))])
    assert list(full["step"]) == [10, 20, 30] and list(auc["step"]) == [20]
    assert auc.set_index("step").loc[20].to_dict() == full.set_index("step").loc[20].to_dict()
    # the rung at 10 is not among the steps shown, and its AUC (1/4) is still the one read
    assert table.iloc[0]["AUC at rungs (within seed)"] == "0.25" and "near chance" in note


def test_select_at_must_be_an_evaluation(evidence):
    from additive import AdxError

    with pytest.raises(AdxError, match="--select-at: must be evaluation steps below 30"):
        restart_evidence(load_trials("ev", str(evidence)), load_curves("ev", str(evidence)), [15])


def test_cli_prints_both_tables(evidence, capsys):
    from sweeps.cli import main

    assert main(["results", "restarts", "ev", "--storage", str(evidence), "--select-at", "10,20"]) == 0
    out = capsys.readouterr().out
    assert "AUC (within seed)" in out and "selected identifies" in out and "2/3 (0.21-0.94)" in out


def test_rung_schedules_replay_as_the_group_races(evidence):
    """By hand, 3 members raced at 10 then 20 (two go on at 10, one kept at 20): seed 0 keeps
    r0 and r1 at 10 (0.5, 0.4), then r1 (0.1 < 0.4): identifies; seed 1 keeps r1 and r2 at
    10 (0.2, 0.1), then r2 (best so far 0.1 < 0.2): fails, although select_at 20 alone would
    have kept r0 (0.05), which the first rung cut; seed 2 has no identifying member."""
    from additive.spec import RestartsSpec

    trials, curves = load_trials("ev", str(evidence)), load_curves("ev", str(evidence))
    schedules = [RestartsSpec(k=3, rungs=(10, 20)), RestartsSpec(k=3, rungs=(20,)), RestartsSpec(k=2, rungs=(10,))]
    _, table, _ = restart_evidence(trials, curves, schedules=schedules)
    t = table.set_index(["k", "rungs"])
    assert t.loc[(3, "10, 20"), "selected identifies"] == "1/3 (0.06-0.79)"
    assert t.loc[(3, "10, 20"), "cost (full runs)"] == pytest.approx((3 * 10 + 2 * 10 + 10) / 30, abs=1e-3)
    assert t.loc[(3, "20"), "selected identifies"] == "2/3 (0.21-0.94)"
    assert t.loc[(2, "10"), "selected identifies"] == "1/3 (0.06-0.79)"  # seed 0: r1 (0.4 < 0.5); seed 1: r1 fails


def test_the_cheapest_schedule_for_each_count_of_identifying_groups(evidence):
    """Over k = 2, 3 and rungs among {10, 20} (by hand): one group is reached for 1.33 full
    runs (2 members chosen at 10), two groups for 1.67 (2 members chosen at 20); none
    reaches all three (seed 2 has no identifying member)."""
    trials, curves = load_trials("ev", str(evidence)), load_curves("ev", str(evidence))
    _, table, note = restart_evidence(trials, curves, select_ats=[10, 20], cheapest=True)
    assert list(table["selected identifies"]) == ["1/3 (0.06-0.79)", "2/3 (0.21-0.94)"]
    assert list(table["k"]) == [2, 2] and list(table["rungs"]) == ["10", "20"]
    assert list(table["cost (full runs)"]) == pytest.approx([40 / 30, 50 / 30], abs=1e-3)
    assert "cheapest schedule" in note


def test_cli_replays_schedules_and_refuses_bad_ones(evidence, capsys):
    from sweeps.cli import main

    args = ["results", "restarts", "ev", "--storage", str(evidence)]
    assert main([*args, "--schedule", "3:10,20", "--schedule", "2:20"]) == 0
    out = capsys.readouterr().out
    assert "10, 20" in out and "1/3 (0.06-0.79)" in out
    assert main([*args, "--schedule", "4:10"]) == 1
    assert "--schedule: must race at most the 3 members each group has, but got k = [4]" in capsys.readouterr().err
    assert main([*args, "--schedule", "3:20,10"]) == 1
    assert "--schedule: must be K:S1,S2,..." in capsys.readouterr().err
    assert main([*args, "--schedule", "3:15"]) == 1
    assert "must be evaluation steps below 30" in capsys.readouterr().err


def test_schedules_are_paired_on_the_same_groups(evidence, capsys):
    """Against 3 members raced at 10, 20 (by hand, see above: seed 0 only): 3 kept at 20
    identifies on seeds 0 and 1, so seed 1 is its one discordant group (p = 1); 2 kept at 10
    identifies on seed 0 only, no discordant group."""
    from additive.spec import RestartsSpec
    from analysis.restarts import evidence_inputs, paired_schedules
    from sweeps.cli import main

    runs, val, steps, _ = evidence_inputs(load_trials("ev", str(evidence)), load_curves("ev", str(evidence)))
    schedules = [RestartsSpec(k=3, rungs=(10, 20)), RestartsSpec(k=3, rungs=(20,)), RestartsSpec(k=2, rungs=(10,))]
    t = paired_schedules(runs, val, schedules, steps).set_index("schedule")
    assert list(t.index) == ["3 at 20", "2 at 10"] and set(t["against"]) == {"3 at 10, 20"}
    counts = ["groups", "both identify", "only this one", "only the first", "neither"]
    assert list(t.loc["3 at 20", counts]) == [3, 1, 1, 0, 1]
    assert list(t.loc["2 at 10", counts]) == [3, 1, 0, 0, 2]
    assert list(t["p (exact McNemar)"]) == [1.0, 1.0]
    assert (
        main(["results", "restarts", "ev", "--storage", str(evidence), "--schedule", "3:10,20", "--schedule", "3:20"])
        == 0
    )
    assert "only the first" in capsys.readouterr().out


def test_six_discordant_groups_one_way_are_significant(tmp_path):
    """Six seeds where the best-so-far loss at 10 keeps the failing member and at 20 the
    identifying one: 6 discordant groups, all one way, two-sided p = 2 / 2**6."""
    from additive.spec import RestartsSpec
    from analysis.restarts import evidence_inputs, paired_schedules

    _write(tmp_path, {s: [(0.2, 0.4, 0.3, 60.0), (0.5, 0.1, 0.05, 99.9)] for s in range(6)})
    runs, val, steps, _ = evidence_inputs(load_trials("ev", str(tmp_path)), load_curves("ev", str(tmp_path)))
    row = paired_schedules(runs, val, [RestartsSpec(k=2, rungs=(10,)), RestartsSpec(k=2, rungs=(20,))], steps).iloc[0]
    assert (row["only this one"], row["only the first"], row["p (exact McNemar)"]) == (6, 0, round(2 / 2**6, 3))


def test_the_cheapest_schedule_may_be_held_to_a_late_last_rung(evidence):
    """Only schedules keeping their member at step 20 or later: two members chosen at 20."""
    trials, curves = load_trials("ev", str(evidence)), load_curves("ev", str(evidence))
    _, table, note = restart_evidence(trials, curves, select_ats=[10, 20], cheapest=True, last_rung_from=20)
    assert list(table["rungs"]) == ["20"] and list(table["k"]) == [2]
    assert "the last at step 20 or later" in note


def test_every_choice_of_members_by_hand(evidence, capsys):
    """Two of the three members, all three choices, kept at step 10 (by hand): seed 0 keeps
    r1 from (r0, r1) and from (r1, r2), which identifies, and r0 from (r0, r2), which fails:
    2/3; seed 1 keeps r1 or r2, which fail, in every choice: 0; seed 2 has no identifying
    member. Expected groups: 2/3 of 3. At step 20: seed 0 keeps an identifying member in all
    three choices, seed 1 in two (r0 wins both its pairs): 1 + 2/3. Three of three members is
    one choice, so the race at 10 and 20 counts as the members 0..2 replay does (1 group)."""
    from additive.spec import RestartsSpec

    trials, curves = load_trials("ev", str(evidence)), load_curves("ev", str(evidence))
    schedules = [RestartsSpec(k=2, rungs=(10,)), RestartsSpec(k=2, rungs=(20,)), RestartsSpec(k=3, rungs=(10, 20))]
    _, table, note = restart_evidence(trials, curves, schedules=schedules, subsets=True)
    t = table.set_index(["k", "rungs"])
    assert t.loc[(2, "10"), "selected identifies"] == "0.67/3"
    assert t.loc[(2, "10"), "any member identifies"] == "1.67/3"  # seed 1: (r1, r2) has none
    assert t.loc[(2, "20"), "selected identifies"] == "1.67/3"
    assert t.loc[(3, "10, 20"), "selected identifies"] == "1.00/3"
    assert t.loc[(2, "10"), "selected LMS ID"] == pytest.approx(
        (99.9 + 60.0 + 99.9 + 70.0 + 65.0 + 65.0 + 50.0 + 50.0 + 40.0) / 9, abs=0.01
    )  # seed 2 at step 10: (r0, r1) keeps r0 (0.2), (r0, r2) r0, (r1, r2) r1 (0.3 < 0.4)
    assert "expected number of groups" in note
    from sweeps.cli import main

    assert main(["results", "restarts", "ev", "--storage", str(evidence), "--schedule", "2:20", "--all-subsets"]) == 0
    assert "1.67/3" in capsys.readouterr().out


def test_a_replayed_schedule_shows_the_auc_at_its_rungs_and_warns_at_chance(evidence):
    from additive.spec import RestartsSpec

    schedules = [RestartsSpec(k=3, rungs=(10, 20)), RestartsSpec(k=3, rungs=(20,))]
    _, table, note = restart_evidence(load_trials("ev", str(evidence)), load_curves("ev", str(evidence)),
                                      schedules=schedules)  # fmt: skip
    assert list(table["AUC at rungs (within seed)"]) == ["0.25, 1.00", "1.00"]
    assert "schedule 3:10,20 has a rung at step 10 where the within-seed AUC is 0.25" in note
    assert "schedule 3:20 has" not in note


def test_the_min_auc_rule_bars_rungs_before_the_auc_holds(evidence):
    from additive import AdxError

    trials, curves = load_trials("ev", str(evidence)), load_curves("ev", str(evidence))
    _, free, _ = restart_evidence(trials, curves, [10, 20], cheapest=True)
    _, ruled, note = restart_evidence(trials, curves, [10, 20], cheapest=True, min_auc=0.9)
    assert any("10" in r.split(", ") for r in free["rungs"])  # the unruled search uses step 10
    assert all(not r.startswith("10") for r in ruled["rungs"])
    assert "no rung before step 20, the first evaluation from which the within-seed AUC stays >= 0.9" in note
    with pytest.raises(AdxError, match="--min-auc: the within-seed AUC never stays >= 1.5"):
        restart_evidence(trials, curves, [10, 20], cheapest=True, min_auc=1.5)


def test_the_topup_replay_gives_a_group_that_stands_out_more_members(tmp_path):
    """Five seeds of one condition: on seed 4 both first members end in a worse minimum
    (a validation loss 4x the others'); the top-up gives it members 2 and 3 and keeps member
    2, which identifies. No other group stands out, so no other group is topped up."""
    from additive.restarts import TopUpRule
    from additive.spec import RestartsSpec

    good = [(0.5, 0.3, 2.0e-4 + 1e-5 * s, 99.9) for s in range(5)]
    members = {s: [good[s], (0.6, 0.4, 3.0e-4 + 1e-5 * s, 99.8), good[s], good[s]] for s in range(4)}
    members[4] = [
        (0.5, 0.3, 1.0e-3, 70.0),
        (0.6, 0.4, 1.1e-3, 65.0),
        (0.7, 0.5, 2.5e-4, 99.7),
        (0.5, 0.4, 1.2e-3, 60.0),
    ]
    _write(tmp_path, members)
    _, table, note = restart_evidence(
        load_trials("ev", str(tmp_path)), load_curves("ev", str(tmp_path)),
        schedules=[RestartsSpec(k=2, select_at=20)], topup=TopUpRule(max_members=4),
    )  # fmt: skip
    row = table.iloc[0]
    assert row["selected identifies"].startswith("4/5")
    assert row["topped up (to 4)"] == "1/5" and row["of which identified already"] == 0
    assert row["identifies after top-up"].startswith("5/5")
    assert row["failures turned"] == 1 and row["identifications lost"] == 0
    _, table, _ = restart_evidence(
        load_trials("ev", str(tmp_path)), load_curves("ev", str(tmp_path)),
        schedules=[RestartsSpec(k=4, select_at=20)], topup=TopUpRule(max_members=4),
    )  # fmt: skip
    full = table.iloc[0]  # 4 members already: nothing to top up, as `adx sweep topup` refuses it
    assert full["topped up (to 4)"] == "-" and full["cost with top-up"] == full["cost (full runs)"]
    assert row["cost with top-up"] == pytest.approx((2 * 20 + 10) / 30 + 2 / 5, abs=1e-3)
    assert "Top-up: per condition" in note


def test_topup_rule_fence_and_its_clear_errors():
    from additive import SpecError
    from additive.restarts import TopUpRule

    rule = TopUpRule()
    assert rule.upper_fence([1e-4, 2e-4, 3e-4]) is None  # too few groups for quartiles
    kept = {f"s{i}": v for i, v in enumerate([2.5e-4, 3e-4, 2.1e-4, 3.3e-4, 9.4e-4, 1.7e-4, 3.5e-4, 2.8e-4])}
    assert set(rule.flagged(kept)) == {"s4"}
    assert set(TopUpRule(fence=0.0).flagged(kept)) == {"s4", "s6"}  # the fence at q3 itself
    with pytest.raises(SpecError, match="`max_members` must be an integer >= 2"):
        TopUpRule(max_members=1)
