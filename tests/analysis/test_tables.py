"""Tables against hand-computed numbers; honest model selection; the paired comparison."""

from __future__ import annotations

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
    assert lms["additive - monolithic"] == pytest.approx(diffs.mean())
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
    assert list(table["additive LMS>=99"]) == ["2/3", "0/3"]
    assert "LMS>=99: seeds whose LMS ID reaches 99" in note


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
    assert list(table["additive LMS>=99"]) == ["1/1", "0/1"]
    assert "ORACLE: the search selected on lms_id, which needs ground truth" in note
    plain, plain_note = results_table(load_trials("abl", str(tmp_path)).iloc[:1])
    assert "ORACLE" not in plain_note
