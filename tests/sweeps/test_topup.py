"""`adx sweep topup`: the groups whose kept validation loss stands out get more members, the
kept member is chosen again by validation loss, and a second run changes nothing."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from additive.restarts import TopUpRule
from sweeps.engine import run_sweep
from sweeps.spec import parse_sweep_spec
from sweeps.topup import plan, run_topup
from tests.conftest import tiny_sweep_raw


def test_topup_trains_new_members_for_the_flagged_groups_and_keeps_the_lowest_loss(ray_local, tmp_path, capsys):
    from analysis.load import load_trials
    from analysis.tables import results_table
    from sweeps.cli import main

    raw = tiny_sweep_raw("tu", grid={"decoder": ["additive"]}, seeds=6, restarts={"k": 2, "select_at": 10})
    spec = parse_sweep_spec(raw, "tu.yaml")
    run_sweep(spec, str(tmp_path), out=None)
    before = pd.read_parquet(tmp_path / "tu" / "_compacted" / "trials.parquet")
    rule = TopUpRule(max_members=3, fence=0.0)  # the fence at q3: some of the 6 groups stand out
    todo, fences = plan(spec, before.to_dict("records"), rule)
    kept = before[before["selected"]].set_index("restart_group")["val_loss"]
    assert todo and all(kept[t.group] > fences[0] for t in todo)
    assert {t.group for t in todo} == set(kept[kept > fences[0]].index)  # exactly those above the fence
    assert all(t.members == (2,) for t in todo)

    out = io.StringIO()  # the progress lines travel with Ray Tune's pickled callbacks: a picklable stream
    run_topup("tu", str(tmp_path), rule, out=out)
    assert f"{len(todo)} group(s) to top up, {len(todo)} full runs" in out.getvalue()
    after = load_trials("tu", str(tmp_path))
    assert after["trial_id"].is_unique and len(after) == len(before) + len(todo)
    for gid, g in after.groupby("restart_group"):
        full = g[(g["status"] == "ok") & (g["steps_done"] == 20)]
        assert g["selected"].sum() == 1
        assert g.loc[g["selected"], "val_loss"].item() == full["val_loss"].min()
        if gid in {t.group for t in todo}:
            new = g[g["restart"] == 2]
            assert len(new) == 1 and new["status"].item() == "ok" and new["steps_done"].item() == 20
            assert new["init_seed"].isna().all() and new["seed"].item() == g["seed"].iloc[0]
        else:
            assert len(g) == 2
    record = json.loads((tmp_path / "tu" / "topup.json").read_text())
    assert record["rule"]["max_members"] == 3 and {t["group"] for t in record["topped_up"]} == {t.group for t in todo}
    _, note = results_table(after)
    assert f"Top-up: {len(todo)} of 6 groups" in note and f"got {len(todo)} more members" in note

    capsys.readouterr()
    assert main(["sweep", "topup", "tu", "--storage", str(tmp_path), "--max-members", "3", "--fence", "0"]) == 0
    assert "0 group(s) to top up" in capsys.readouterr().err  # the same groups flag, none needs a member
    assert len(load_trials("tu", str(tmp_path))) == len(after)


def test_topup_needs_restart_groups_and_more_members_than_they_have(tmp_path):
    from additive.errors import AdxError

    spec = parse_sweep_spec(tiny_sweep_raw("plain"), "plain.yaml")
    with pytest.raises(AdxError, match="a top-up needs restart groups"):
        plan(spec, [], TopUpRule())
    grouped = parse_sweep_spec(tiny_sweep_raw("g", restarts={"k": 4, "select_at": 10}), "g.yaml")
    with pytest.raises(AdxError, match="--max-members: must exceed the groups' 4 members, but got 4"):
        plan(grouped, [], TopUpRule(max_members=4))
