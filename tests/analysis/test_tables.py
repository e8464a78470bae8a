"""Tables against hand-computed numbers; honest model selection; the paired comparison."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from analysis.load import load_trials
from analysis.tables import format_table, paired_comparison, results_table, select_models, summary_table
from tests.analysis.conftest import make_row, write_rows


def test_summary_means_sems_and_counts(known):
    df = load_trials("known", str(known))
    assert len(df) == 13
    s = summary_table(df).set_index(["dependence", "decoder"])
    row = s.loc[(0.0, "additive")]
    assert row["lms_id_mean"] == pytest.approx(99.0)
    assert row["lms_id_sem"] == pytest.approx(np.std([98, 99, 100], ddof=1) / math.sqrt(3))
    assert row["n_seeds"] == 3 and row["n_not_ok"] == 0
    mono = s.loc[(0.0, "monolithic")]
    assert mono["lms_id_mean"] == pytest.approx(70.0)  # the failed trial is not averaged in
    assert mono["n_not_ok"] == 1
    assert s.loc[(0.5, "additive"), "lms_id_mean"] == pytest.approx(94.0)
    assert s.loc[(0.5, "monolithic"), "rmse_ood_mean"] == pytest.approx(0.12)


def test_wide_table_layout_and_formats(known):
    table, note = results_table(load_trials("known", str(known)))
    assert list(table["dependence"]) == [0.0, 0.5]
    assert table.loc[0, "additive LMS ID"] == "99.0 ± 0.6"
    assert table.loc[0, "monolithic not ok"] == 1
    assert "not averaged in" in note
    assert "| dependence |" in format_table(table, "md")
    assert r"\pm" in format_table(table, "latex")
    assert format_table(table, "csv").splitlines()[0].startswith("dependence,")


def test_model_selection_uses_validation_loss_not_lms(tmp_path):
    rows = [
        make_row("tuned", "c000-s0-t000", "additive", 0, search_number=0, val_loss=0.5, lms_id=99.0),
        make_row("tuned", "c000-s0-t001", "additive", 0, search_number=1, val_loss=0.1, lms_id=60.0),
        make_row("tuned", "c000-s0-t002", "additive", 0, search_number=2, val_loss=0.3, lms_id=95.0),
        make_row("tuned", "c000-s1-t000", "additive", 1, search_number=0, val_loss=0.2, lms_id=70.0),
    ]
    write_rows(tmp_path, "tuned", rows)
    df = load_trials("tuned", str(tmp_path))
    chosen = select_models(df)
    assert sorted(chosen["trial_id"]) == ["c000-s0-t001", "c000-s1-t000"]
    s = summary_table(df)
    assert s.loc[0, "lms_id_mean"] == pytest.approx(65.0)
    assert "lowest validation loss" in results_table(df)[1]


def test_paired_comparison_matches_hand_computation(known):
    comp = paired_comparison(load_trials("known", str(known)))
    lms = comp[(comp["metric"] == "lms_id") & (comp["dependence"] == 0.0)].iloc[0]
    diffs = np.array([98 - 60, 99 - 70, 100 - 80], dtype=float)
    assert lms["pairs"] == 3
    assert lms["comparison"] == "additive - monolithic"
    assert lms["difference"] == pytest.approx(diffs.mean())
    from scipy import stats

    half = stats.t.ppf(0.975, 2) * diffs.std(ddof=1) / math.sqrt(3)
    assert lms["ci95_low"] == pytest.approx(diffs.mean() - half)
    assert lms["p_value"] == pytest.approx(stats.ttest_rel([98, 99, 100], [60, 70, 80]).pvalue)


def test_where_filter(known):
    df = load_trials("known", str(known), where="decoder == 'additive' and dependence > 0")
    assert len(df) == 3 and set(df["decoder"]) == {"additive"}


def test_several_sweeps_together(known):
    write_rows(known, "other", [make_row("other", "x", "additive", 0, lms_id=10.0)])
    df = load_trials(["known", "other"], str(known))
    assert len(df) == 14 and set(df["sweep"]) == {"known", "other"}
    assert isinstance(df, pd.DataFrame)


def test_identified_share_counts_seeds_at_lms_99(known):
    """Additive LMS 98, 99, 100 at level 0 (two reach 99), 88-90 at level 0.5 (none)."""
    s = summary_table(load_trials("known", str(known))).set_index(["dependence", "decoder"])
    assert s.loc[(0.0, "additive"), "n_identified"] == 2
    assert s.loc[(0.5, "additive"), "n_identified"] == 0
    table, note = results_table(load_trials("known", str(known)))
    assert list(table["additive LMS>=99"]) == ["2/3 (0.21-0.94)", "0/3 (0.00-0.56)"]
    assert "LMS>=99: seeds whose LMS ID reaches 99" in note and "Wilson 95% interval" in note


def test_variant_is_a_condition_and_oracle_selection_is_announced(tmp_path):
    rows = [
        make_row("abl", "c000-s0", "additive", 0, variant="base", lms_id=99.5, val_loss=0.1),
        make_row(
            "abl",
            "c001-s0",
            "additive",
            0,
            variant="bn",
            cell_index=1,
            lms_id=60.0,
            val_loss=0.2,
            search_number=0,
            selected_by="lms_id",
            oracle_selection=True,
        ),
    ]
    write_rows(tmp_path, "abl", rows)
    table, note = results_table(load_trials("abl", str(tmp_path)))
    assert list(table["variant"]) == ["base", "bn"]
    assert list(table["additive LMS>=99"]) == ["1/1 (0.21-1.00)", "0/1 (0.00-0.79)"]
    assert "ORACLE: the search selected on lms_id, which needs ground truth" in note
    plain, plain_note = results_table(load_trials("abl", str(tmp_path)).iloc[:1])
    assert "ORACLE" not in plain_note


@pytest.mark.parametrize(
    "k, n, low, high",
    # reference values: Wilson (1927) score interval, z = 1.96 (as in statsmodels' proportion_confint)
    [(4, 5, 0.3755, 0.9638), (0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (19, 20, 0.7639, 0.9911)],
)
def test_wilson_interval(k, n, low, high):
    from analysis.tables import format_rate, wilson_interval

    assert wilson_interval(k, n) == pytest.approx((low, high), abs=5e-4)
    assert format_rate(4, 5) == "4/5 (0.38-0.96)"


def _group_rows(sweep: str, seed: int, decoder: str, members: list[tuple[str, float, float | None]], select_at=None):
    """One restart group: (status, val_loss, lms_id) per member; the lowest val_loss among
    ok / stopped members is selected, as run_restarts selects."""
    from additive.restarts import select_restart

    gid = f"{decoder[0]}-s{seed}"
    chosen = select_restart([v if st in ("ok", "stopped") else None for st, v, _ in members])
    rows = []
    for r, (status, val, lms) in enumerate(members):
        rows.append(
            make_row(
                sweep,
                f"{gid}-r{r}",
                decoder,
                seed,
                status=status,
                restart=r,
                restart_group=gid,
                restarts=len(members),
                select_at=select_at,
                selected=r == chosen,
                val_loss=val,
                lms_id=lms,
                rmse_id=0.01 if lms is not None else None,
            )
        )
    return rows


def test_restart_groups_show_the_selected_member_or_every_full_run(tmp_path):
    rows = []
    # seed 0: member 1 has the lowest validation loss and identifies; member 0 does not
    rows += _group_rows("rs", 0, "additive", [("ok", 0.002, 80.0), ("ok", 0.001, 100.0), ("ok", 0.003, 70.0)])
    rows += _group_rows("rs", 1, "additive", [("ok", 0.001, 99.5), ("ok", 0.004, 60.0), ("diverged", None, None)])
    rows += _group_rows("rs", 2, "additive", [("diverged", None, None), ("failed", None, None), ("failed", None, None)])
    write_rows(tmp_path, "rs", rows)
    df = load_trials("rs", str(tmp_path))
    table, note = results_table(df)
    assert table["additive LMS ID"].item().startswith("99.8")  # mean of 100 and 99.5
    assert table["additive LMS>=99"].item() == "2/2 (0.34-1.00)"
    assert table["additive not ok"].item() == 1  # the group that kept no member, once
    assert "Selected (restarts: 3 initialisations per (cell, seed), all run in full" in note
    per_run, per_run_note = results_table(df, per_run=True)
    assert per_run["additive LMS>=99"].item() == "2/5 (0.12-0.77)"  # 100 and 99.5 of five full runs
    assert per_run["additive not ok"].item() == 4
    assert "Per run" in per_run_note


def test_members_stopped_at_select_at_are_neither_runs_nor_failures(tmp_path):
    rows = _group_rows("early", 0, "additive", [("stopped", 0.003, None), ("ok", 0.001, 100.0)], select_at=500)
    rows += _group_rows("early", 1, "additive", [("ok", 0.001, 60.0), ("stopped", 0.002, None)], select_at=500)
    write_rows(tmp_path, "early", rows)
    df = load_trials("early", str(tmp_path))
    for per_run in (False, True):
        table, note = results_table(df, per_run=per_run)
        assert table["additive LMS>=99"].item() == "1/2 (0.09-0.91)" and table["additive not ok"].item() == 0
    assert "selected at step 500" in note


@pytest.mark.parametrize(
    ("rungs", "select_at", "said"),
    [
        ("1000,6000,8000", None, "raced at rungs 1000, 6000, 8000 (the better half goes on"),
        ("2000", None, "selected at step 2000"),  # one rung written as rungs
        ("500", 500, "selected at step 500"),  # select_at, as the engine writes it
        (None, None, "all run in full"),
    ],
)
def test_the_note_says_how_a_group_chose_its_member(tmp_path, rungs, select_at, said):
    rows = _group_rows("how", 0, "additive", [("stopped", 0.003, None), ("ok", 0.001, 100.0)], select_at=select_at)
    rows = [dataclasses.replace(row, rungs=rungs) for row in rows]
    write_rows(tmp_path, "how", rows)
    _, note = results_table(load_trials("how", str(tmp_path)))
    assert said in note


def test_selection_in_tables_never_reads_ground_truth(tmp_path):
    """Scrambling every ground-truth column leaves the set of selected rows unchanged."""
    import numpy as np

    from analysis.tables import select_models
    from sweeps.spec import ORACLE_METRICS

    rows = []
    for seed in range(4):
        rows += _group_rows("gt", seed, "additive", [("ok", 0.001 * (seed + r + 1), 50.0 + 10 * r) for r in range(3)])
    write_rows(tmp_path, "gt", rows)
    df = load_trials("gt", str(tmp_path))
    rng = np.random.default_rng(0)
    scrambled = df.copy()
    for column in ORACLE_METRICS:
        scrambled[column] = rng.permutation(scrambled[column].to_numpy())
    assert sorted(select_models(df)["trial_id"]) == sorted(select_models(scrambled)["trial_id"])


def test_paired_comparison_across_two_sweeps_pairs_each_decoder_seed_by_seed(tmp_path):
    """--across sweep: the same cells and seeds of two sweeps (tuned against a recipe), each
    decoder on its own, paired on the seed; the sweeps' own decoder comparison is not made."""
    tuned = {("additive", 0): 100.0, ("additive", 1): 99.5, ("additive", 2): 90.0}
    tuned |= {("monolithic", 0): 80.0, ("monolithic", 1): 70.0, ("monolithic", 2): 75.0}
    recipe = {("additive", 0): 99.0, ("additive", 1): 95.5, ("additive", 2): 92.0}
    recipe |= {("monolithic", 0): 60.0, ("monolithic", 1): 72.0, ("monolithic", 2): 71.0}
    for sweep, lms in (("tuned", tuned), ("recipe", recipe)):
        rows = [make_row(sweep, f"{d}-s{s}", d, s, lms_id=v, rmse_ood=0.1) for (d, s), v in lms.items()]
        write_rows(tmp_path, sweep, rows)
    df = load_trials(["tuned", "recipe"], str(tmp_path))
    comp = paired_comparison(df, baseline="recipe", across="sweep", metrics=("lms_id",))
    assert set(comp["comparison"]) == {"tuned - recipe"}
    by_decoder = comp.set_index("decoder")
    for d in ("additive", "monolithic"):
        diffs = np.array([tuned[(d, s)] - recipe[(d, s)] for s in range(3)])
        assert by_decoder.loc[d, "pairs"] == 3
        assert by_decoder.loc[d, "difference"] == pytest.approx(diffs.mean())
    with pytest.raises(Exception, match="--baseline: must be one of the values of 'sweep'"):
        paired_comparison(df, baseline="additive", across="sweep")
    with pytest.raises(Exception, match="--across: must name a result column"):
        paired_comparison(df, across="no_such_column")
