"""The identifiability map and the user's axis, on a small synthetic table whose answer is
computed by hand: identification counts with Wilson intervals per cell, the RMSE OOS ratio,
paired p-values and their Holm correction over the cells; and no varying column pooled."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from analysis.load import load_trials
from analysis.tables import holm, paired_comparison, wilson_interval
from tests.analysis.conftest import make_row, write_rows

# (support, level) -> per decoder, 3 seeds of (LMS ID, RMSE OOS)
CELLS = {
    ("l_shape", 0.0): {"additive": [(99.5, 0.05), (99.9, 0.06), (80.0, 0.10)],
                       "monolithic": [(70.0, 0.20), (60.0, 0.22), (75.0, 0.19)]},
    ("l_shape", 0.9): {"additive": [(99.1, 0.07), (99.2, 0.08), (99.3, 0.09)],
                       "monolithic": [(99.0, 0.071), (50.0, 0.079), (40.0, 0.095)]},
    ("diagonal_band", 0.0): {"additive": [(10.0, 0.30), (20.0, 0.31), (99.9, 0.05)],
                             "monolithic": [(10.0, 0.29), (12.0, 0.33), (14.0, 0.35)]},
}  # fmt: skip


@pytest.fixture
def mapped(tmp_path):
    rows = []
    for (support, level), decoders in CELLS.items():
        for decoder, runs in decoders.items():
            for seed, (lms, rmse) in enumerate(runs):
                tid = f"{support}-{level}-{decoder}-s{seed}"
                rows.append(
                    make_row("map", tid, decoder, seed, support=support, dependence=level, lms_id=lms,
                             rmse_ood=rmse, rmse_id=0.02, val_loss=0.001, cell=f"{support},{level},{decoder}")
                )  # fmt: skip
    write_rows(tmp_path, "map", rows)
    return tmp_path


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04 -> 3 x 0.01 = 0.03, max(0.03, 2 x 0.02) = 0.04, max(0.04, 1 x 0.04) = 0.04
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, math.nan, 0.01]) == pytest.approx([0.5, math.nan, 0.02], nan_ok=True)
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # capped at 1, then monotone


def test_map_cells_by_hand(mapped):
    from analysis.maps import map_cells

    cells = map_cells(load_trials("map", str(mapped))).set_index(["decoder", "support", "dependence"])
    a = cells.loc[("additive", "l_shape", "copula 0")]
    assert (a["k"], a["n"]) == (2, 3) and (a["low"], a["high"]) == pytest.approx(wilson_interval(2, 3))
    assert cells.loc[("additive", "l_shape", "copula 0.9"), "k"] == 3
    assert cells.loc[("monolithic", "l_shape", "copula 0.9"), "k"] == 1  # 99.0 reaches 99
    assert cells.loc[("additive", "diagonal_band", "copula 0"), "k"] == 1
    # the ratio of mean RMSE OOS, and the paired t-test of the difference over seeds
    expected_p = {}
    for (support, level), d in CELLS.items():
        add, mono = [r for _, r in d["additive"]], [r for _, r in d["monolithic"]]
        row = cells.loc[("additive", support, f"copula {level:g}")]
        assert row["rmse_ratio"] == pytest.approx(sum(add) / sum(mono))
        expected_p[(support, level)] = stats.ttest_rel(add, mono).pvalue
        assert row["p_value"] == pytest.approx(expected_p[(support, level)])
    # Holm over the three cells
    keys = list(expected_p)
    adjusted = dict(zip(keys, holm([expected_p[k] for k in keys]), strict=True))
    for (support, level), p in adjusted.items():
        assert cells.loc[("additive", support, f"copula {level:g}"), "p_holm"] == pytest.approx(p)
    assert math.isnan(cells.loc[("monolithic", "l_shape", "copula 0"), "rmse_ratio"])  # on the additive rows


def test_compare_shows_the_same_corrected_p_values(mapped):
    from analysis.maps import map_cells

    cells = map_cells(load_trials("map", str(mapped)))
    comp = paired_comparison(load_trials("map", str(mapped)), metrics=("rmse_ood",))
    assert sorted(comp["p_holm"]) == pytest.approx(sorted(cells["p_holm"].dropna()))


def test_the_map_figure_marks_the_significant_cells(mapped, tmp_path):
    from analysis.maps import ALPHA, map_figure

    fig = map_figure(load_trials("map", str(mapped)))
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "2/3\n0.21-0.94" in texts  # additive on the L, copula 0
    cells = __import__("analysis.maps", fromlist=["map_cells"]).map_cells(load_trials("map", str(mapped)))
    for _, c in cells[cells["rmse_ratio"].notna()].iterrows():
        star = "*" if c["p_holm"] < ALPHA else ""
        assert f"{c['rmse_ratio']:.2f}{star}" in texts
    assert any("Holm" in t.get_text() for t in fig.texts)
    fig.savefig(tmp_path / "map.png")


def test_the_map_reads_rows_of_earlier_versions(mapped):
    """Rows written before the plugin and rung columns existed (schema 2) read and map."""
    from analysis.maps import map_cells

    df = load_trials("map", str(mapped)).drop(columns=["support_options", "decoder_options", "rungs"])
    assert len(map_cells(df)) == 6


def test_the_axis_plot_never_pools_a_varying_column(mapped):
    from analysis.axis import axis_points

    points = axis_points(load_trials("map", str(mapped)), "dependence")
    assert "support" in points.columns  # split, not pooled
    l0 = points[(points["support"] == "l_shape") & (points["decoder"] == "additive") & (points["dependence"] == 0.0)]
    assert l0["mean"].item() == pytest.approx((99.5 + 99.9 + 80.0) / 3) and (l0["k"].item(), l0["n"].item()) == (2, 3)


def test_plot_cli_map_and_x(mapped, tmp_path, capsys):
    from sweeps.cli import main

    out = tmp_path / "plots"
    assert main(["results", "plot", "map", "--storage", str(mapped), "--kind", "map", "--out", str(out)]) == 0
    assert main(["results", "plot", "map", "--storage", str(mapped), "--x", "dependence", "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["lms_id-by-dependence.pdf", "lms_id-by-dependence.png", "map.pdf", "map.png"]
    assert main(["results", "plot", "map", "--storage", str(mapped), "--x", "nope", "--out", str(out)]) == 1
    assert "--x: must name a result column, but got 'nope'" in capsys.readouterr().err


def test_the_support_plot_keeps_band_widths_apart(tmp_path):
    from analysis.plots import support_figure

    rows = [
        make_row("w", f"w{w}-{d}-s{s}", d, s, support="diagonal_band", support_param=w, lms_id=90.0 + s,
                 rmse_ood=0.1, rmse_id=0.01, val_loss=0.001)
        for w in (0.1, 0.3) for d in ("additive", "monolithic") for s in range(2)
    ]  # fmt: skip
    write_rows(tmp_path, "w", rows)
    fig = support_figure(load_trials("w", str(tmp_path)))
    labels = [t.get_text() for t in fig.axes[1].get_xticklabels()]
    assert labels == ["diagonal_band 0.1", "diagonal_band 0.3"]
