"""Which fields mattered (Optuna's evaluators over rows) and the search figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from additive.errors import AdxError
from analysis.importance import importance, scored_rows, swept_fields

pytest.importorskip("optuna")


def _rows(n: int = 40, seed: int = 0) -> pd.DataFrame:
    """A search where val_loss depends on lr (a valley at 1e-3) and not on width."""
    rng = np.random.default_rng(seed)
    lr = 10 ** rng.uniform(-4, -2, n)
    width = rng.choice([128, 256, 512], n)
    val = 1e-3 * (1 + 10 * (np.log10(lr) + 3) ** 2) * rng.uniform(0.95, 1.05, n)
    return pd.DataFrame(
        {
            "sweep": "tune", "trial_id": [f"c000-s0-t{i:03d}" for i in range(n)], "cell": "decoder=additive",
            "seed": 0, "status": "ok", "search_number": range(n), "decoder": "additive", "lr": lr,
            "width": width, "batch_size": 64, "val_loss": val, "lms_id": 100 - 1e4 * val, "restarts": 1,
        }
    )  # fmt: skip


@pytest.mark.parametrize("method", ["fanova", "ped-anova", "mdi"])
def test_the_field_the_metric_depends_on_ranks_first_with_every_evaluator(method):
    table, note = importance(_rows(), "val_loss", method)
    assert table["field"].iloc[0] == "lr"
    assert table.set_index("field")["importance"]["lr"] > table.set_index("field")["importance"]["width"]
    assert {"fanova": "fANOVA", "ped-anova": "PED-ANOVA", "mdi": "mean decrease in impurity"}[method] in note
    assert "never model selection" in note


def test_swept_fields_are_those_that_vary_and_never_the_seed():
    rows = _rows().assign(seed=[0, 1] * 20)
    assert swept_fields(rows) == ["width", "lr"] or set(swept_fields(rows)) == {"width", "lr"}


def test_ground_truth_metrics_are_ranked_too_maximised():
    table, note = importance(_rows(), "lms_id")
    assert table["field"].iloc[0] == "lr" and "(maximized)" in note


def test_clear_errors():
    with pytest.raises(AdxError, match="--metric: must be a result column"):
        importance(_rows(), "nope")
    with pytest.raises(AdxError, match="--evaluator: must be one of"):
        importance(_rows(), "val_loss", "shap")
    with pytest.raises(AdxError, match="no trial field varies"):
        importance(_rows().assign(lr=1e-3, width=256), "val_loss")


def test_restart_groups_count_by_their_kept_member_and_failed_trials_not_at_all():
    rows = _rows(8)
    rows["restarts"] = 2
    rows["selected"] = [True, False] * 4
    rows.loc[0, "status"] = "failed"
    kept = scored_rows(rows)
    assert len(kept) == 3 and kept["selected"].all()
    assert len(scored_rows(rows, per_run=True)) == 7


def test_search_figure_has_a_row_per_study_and_a_column_per_searched_field():
    from analysis.searchplots import search_figure

    rows = pd.concat([_rows(12), _rows(12, seed=1).assign(cell="decoder=monolithic", decoder="monolithic")])
    rows.loc[rows.index[:3], "status"] = "stopped"
    space = {"lr": {"loguniform": [1e-4, 1e-2]}, "width": {"choice": [128, 256, 512]}}
    fig = search_figure(rows, space, "val_loss")
    axes = fig.get_axes()
    assert len(axes) == 2 * 3
    assert axes[0].get_title().startswith("tune decoder=additive seed 0: history")
    assert axes[1].get_xscale() == "log" and axes[2].get_xscale() == "linear"
    with pytest.raises(AdxError, match="no searched trials"):
        search_figure(rows.assign(search_number=None), space, "val_loss")


def test_at_a_step_every_trial_that_reached_it_counts_stopped_ones_too():
    from analysis.importance import at_step

    rows = _rows(10)
    rows.loc[rows.index[5:], "status"] = "stopped"  # cut at a rung: no final val_loss to compare
    curves = pd.DataFrame(
        [{"sweep": "tune", "trial_id": t, "step": s, "best_val_loss": v * s / 10, "val_loss": v, "train_loss": v}
         for t, v in zip(rows["trial_id"], rows["val_loss"], strict=True) for s in (10, 20)]
    )  # fmt: skip
    ranked = at_step(rows, curves, "val_loss", 10)
    assert len(ranked) == 10 and ranked["val_loss"].to_numpy() == pytest.approx(rows["val_loss"].to_numpy())
    table, note = importance(ranked, "val_loss", step=10)
    assert table["field"].iloc[0] == "lr" and "every trial that reached step 10, at that step" in note
    with pytest.raises(AdxError, match="--at-step: ranks a learning-curve metric"):
        at_step(rows, curves, "lms_id", 10)
    with pytest.raises(AdxError, match="no trial has a learning-curve point at step 15"):
        at_step(rows, curves, "val_loss", 15)


def test_fields_that_vary_together_are_ranked_as_one_and_the_note_says_so():
    """An ablation at each decoder's tuned settings: lr and width follow the decoder, so the
    rows cannot tell the three apart; the dependence level varies on its own."""
    rng = np.random.default_rng(1)
    n = 24
    decoder = np.array(["additive", "monolithic"] * (n // 2))
    tuned = {"additive": (7e-4, 256), "monolithic": (5.8e-4, 512)}
    rows = pd.DataFrame(
        {
            "sweep": "ablation", "trial_id": [f"c{i:03d}-s0" for i in range(n)], "cell": "x", "seed": 0,
            "status": "ok", "decoder": decoder, "lr": [tuned[d][0] for d in decoder],
            "width": [tuned[d][1] for d in decoder], "dependence": rng.choice([0.0, 0.9], n), "restarts": 1,
            "lms_id": np.where(decoder == "additive", 100.0, 80.0) + rng.normal(0, 1, n),
        }
    )  # fmt: skip
    table, note = importance(rows, "lms_id")
    assert len(table) == 2
    merged = [f for f in table["field"] if f.startswith("decoder")]
    assert len(merged) == 1 and "lr" in merged[0] and "width" in merged[0]
    assert table["field"].iloc[0] == merged[0]  # the one effect, not split three ways
    assert "vary together" in note
    # fields that do not determine each other stay apart
    rows.loc[0, "lr"] = 1e-3
    table, note = importance(rows, "lms_id")
    assert "lr" in set(table["field"]) and "vary together" in note  # decoder and width still do


def test_searched_continuous_fields_are_never_merged_for_taking_a_new_value_in_every_row():
    rows = _rows().assign(weight_decay=10 ** np.random.default_rng(2).uniform(-6, -3, 40))
    table, note = importance(rows, "val_loss")
    assert set(table["field"]) == {"lr", "width", "weight_decay"} and "vary together" not in note
