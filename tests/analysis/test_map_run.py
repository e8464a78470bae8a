"""The map spec through the engine at smoke size (a few steps, 2 seeds, small restarts),
then its figure and table: every cell of the map is drawn (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.load import load_trials
from analysis.maps import map_cells, map_figure
from sweeps.engine import run_sweep
from sweeps.spec import load_sweep_spec

pytestmark = pytest.mark.slow
SPEC = Path(__file__).resolve().parents[2] / "sweeps" / "specs" / "map.yaml"


def test_the_map_spec_runs_at_smoke_size_and_draws_every_cell(ray_local, tmp_path):
    spec = load_sweep_spec(
        SPEC,
        [
            "seeds=2",
            "fixed.steps=20",
            "fixed.eval_every=10",
            "fixed.n_train=512",
            "fixed.n_test=128",
            "fixed.n_oos=128",
            "restarts={k: 2, select_at: 10}",
        ],
        name="map-smoke",
    )
    summary = run_sweep(spec, str(tmp_path), out=None)
    assert summary.complete and summary.counts.get("ok") == len(spec.cells()) * 2
    df = load_trials("map-smoke", str(tmp_path))
    cells = map_cells(df)
    variants = {(c.fields["support"], c.fields.get("support_param"), c.fields["dependence_mechanism"],
                 c.fields["dependence"]) for c in spec.cells()}  # fmt: skip
    assert len(cells) == 2 * len(variants)  # every (support, dependence) for both decoders
    assert (cells["n"] == 2).all()
    with_oos = cells[(cells["decoder"] == "additive") & (cells["support"] != "full")]
    assert with_oos["rmse_ratio"].notna().all()  # every support with an OOS set has its ratio
    fig = map_figure(df)
    fig.savefig(tmp_path / "map.png")
    assert (tmp_path / "map.png").stat().st_size > 10_000
