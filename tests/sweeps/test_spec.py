"""Bad sweep specs: each stops the launch with exit code 1 and one line
``Error: <file>: <key path>: ...``, starts nothing and writes nothing."""

from __future__ import annotations

import pytest
import yaml

from sweeps.cli import main
from sweeps.spec import load_sweep_spec
from tests.conftest import TINY_FIXED, tiny_sweep_raw

BAD_SPECS = [
    ("malformed", "name: x\nfixed: {steps: 10\n", "malformed YAML at line"),
    ("list-top", "- name: x\n", "(top level): must be a mapping"),
    ("unknown-top", {"nme": "x"}, "nme: must be one of the known keys"),
    ("no-name", {"name": None}, "name: must be a name"),
    ("bad-name", {"name": "a b/c"}, "name: must be a name"),
    ("unknown-field", {"fixed": {"stepz": 10}}, "fixed.stepz: must be a known trial field"),
    ("wrong-type", {"fixed": {"steps": "many"}}, "fixed.steps: must be int, but got 'many'"),
    ("zero-steps", {"fixed": {"steps": 0}}, "fixed.steps: must be > 0, but got 0"),
    ("negative-lr", {"fixed": {"lr": -0.1}}, "fixed.lr: must be > 0, but got -0.1"),
    ("level-range", {"grid": {"dependence": [0.0, 1.5]}}, "grid.dependence (cell dependence=1.5): must be in [0, 1)"),
    (
        "unknown-decoder",
        {"grid": {"decoder": ["additive", "magic"]}},
        "grid.decoder (cell decoder=magic): must be one of",
    ),
    ("unknown-support", {"fixed": {"support": "moon"}}, "fixed.support: must be one of"),
    (
        "unknown-mechanism",
        {"grid": {"dependence": [{"mechanism": "gumbel", "level": 0.5}]}},
        "grid.dependence (cell dependence=gumbel:0.5): must be one of ['copula', 'scm']",
    ),
    ("empty-grid", {"grid": {"decoder": []}}, "grid.decoder: must be a non-empty list"),
    ("grid-not-list", {"grid": {"decoder": "additive"}}, "grid.decoder: must be a non-empty list"),
    ("empty-seeds", {"seeds": []}, "seeds: must be a positive count or a non-empty list"),
    ("zero-seeds", {"seeds": 0}, "seeds: must be a positive count"),
    ("dup-seeds", {"seeds": [1, 1]}, "seeds: must list each seed once"),
    ("restarts-k", {"restarts": {"k": 0}}, "restarts.k: must be an integer >= 1, but got 0"),
    ("restarts-key", {"restarts": {"K": 4}}, "restarts.K: must be one of ['k', 'select_at', 'rungs']"),
    (
        "rungs-order",
        {"restarts": {"k": 4, "rungs": [20, 10]}},
        "restarts.rungs: must be null or a non-empty list of increasing steps",
    ),
    (
        "rungs-and-select",
        {"restarts": {"k": 4, "rungs": [10], "select_at": 10}},
        "restarts.rungs: must be left out with select_at",
    ),
    (
        "rungs-eval",
        {"restarts": {"k": 4, "rungs": [10, 15]}},
        "restarts.rungs (cell decoder=additive): must each be a multiple of eval_every (10), but got 15",
    ),
    (
        "restarts-select-at-off-eval",
        {"restarts": {"k": 2, "select_at": 15}},
        "restarts.select_at (cell decoder=additive): must be a multiple of eval_every (10), but got 15",
    ),
    (
        "restarts-select-at-late",
        {"restarts": {"k": 2, "select_at": 20}},
        "restarts.select_at (cell decoder=additive): must be below steps (20)",
    ),
    (
        "restarts-with-scheduler",
        {"restarts": {"k": 2}, "scheduler": {"asha": {}}},
        "scheduler: must be absent with restarts (k > 1)",
    ),
    (
        "restarts-and-restart",
        {"restarts": {"k": 2}, "grid": {"restart": [0, 1]}},
        "cell restart=1: must not set `restart` with restarts (k > 1): members set it, but got 1",
    ),
    (
        "search-low-high",
        {"search": {"space": {"lr": {"loguniform": [0.1, 0.001]}}}},
        "search.space.lr.loguniform: must have low <= high",
    ),
    (
        "search-log-zero",
        {"search": {"space": {"lr": {"loguniform": [0, 0.1]}}}},
        "search.space.lr.loguniform: must have low > 0",
    ),
    (
        "search-unknown-dist",
        {"search": {"space": {"lr": {"gaussian": [0, 1]}}}},
        "search.space.lr.gaussian: must be one of",
    ),
    (
        "search-unknown-field",
        {"search": {"space": {"lrate": {"uniform": [0, 1]}}}},
        "search.space.lrate: must be a known trial field",
    ),
    (
        "search-bad-value",
        {"search": {"space": {"batch_size": {"choice": [32, 0]}}}},
        "search.space.batch_size.choice: must be > 0, but got 0",
    ),
    (
        "unknown-sampler",
        {"search": {"sampler": "bayes", "space": {"lr": {"uniform": [0.001, 0.01]}}}},
        "search.sampler: must be one of ['tpe', 'random']",
    ),
    (
        "ground-truth-metric-typo",
        {"search": {"metric": "lms", "space": {"lr": {"uniform": [0.001, 0.01]}}}},
        "search.metric: must be one of",
    ),
    (
        "ground-truth-metric",
        {"search": {"metric": "lms_id", "mode": "max", "space": {"lr": {"uniform": [0.001, 0.01]}}}},
        "search.metric: must be a quantity computed without ground truth, one of ['val_loss', 'train_loss'] "
        "('lms_id' needs the true latents or OOS images; set `oracle_selection: true` to select on it anyway, "
        "and the rows and tables will say so), but got 'lms_id'",
    ),
    (
        "oos-metric",
        {"search": {"metric": "rmse_ood", "space": {"lr": {"uniform": [0.001, 0.01]}}}},
        "search.metric: must be a quantity computed without ground truth",
    ),
    (
        "oracle-with-scheduler",
        {
            "oracle_selection": True,
            "scheduler": {"asha": {}},
            "search": {"metric": "lms_id", "mode": "max", "space": {"lr": {"uniform": [0.001, 0.01]}}},
        },
        "scheduler: must be absent when search.metric is 'lms_id': it is only known when a trial ends",
    ),
    ("oracle-not-bool", {"oracle_selection": "yes"}, "oracle_selection: must be true or false, but got 'yes'"),
    ("variant-no-name", {"grid": {"variant": [{"lr": 0.01}]}}, "grid.variant[0]: must be a mapping {name: NAME"),
    (
        "variant-unknown-field",
        {"grid": {"variant": [{"name": "a", "lrate": 0.01}]}},
        "grid.variant[0].lrate: must be a known trial field other than seed",
    ),
    (
        "variant-seed",
        {"grid": {"variant": [{"name": "a", "seed": 3}]}},
        "grid.variant[0].seed: must be a known trial field other than seed",
    ),
    (
        "variant-dup",
        {"grid": {"variant": [{"name": "a"}, {"name": "a", "lr": 0.01}]}},
        "grid.variant: must give each variant a different name, but got ['a', 'a']",
    ),
    (
        "variant-bad-value",
        {"grid": {"variant": [{"name": "a"}, {"name": "neg", "lr": -1.0}]}},
        "grid.variant (cell variant=neg): must be > 0, but got -1.0",
    ),
    (
        "bad-encoder-depth",
        {"fixed": {"encoder_depth": 5}},
        "fixed.encoder_depth: must be in [0, 4] at image_size 16, but got 5",
    ),
    ("bad-l-density", {"fixed": {"l_density": "gaussian"}}, "fixed.l_density: must be one of ['paper', 'uniform']"),
    ("bad-mlp-tail", {"fixed": {"mlp_tail": "relu"}}, "fixed.mlp_tail: must be one of ['paper', 'linear']"),
    ("unknown-scheduler", {"scheduler": {"hyperband": {}}}, "scheduler.hyperband: must be one of ['asha']"),
    ("bad-grace", {"scheduler": {"asha": {"grace_steps": 0}}}, "scheduler.asha.grace_steps: must be an integer >= 1"),
    ("negative-cpu", {"resources": {"cpu": 0}}, "resources.cpu: must be > 0"),
    ("bad-gpu", {"resources": {"gpu": 1.5}}, "resources.gpu: must be a fraction <= 1 or a whole number"),
    ("bad-retries", {"retries": -1}, "retries: must be an integer >= 0"),
    ("bad-concurrency", {"max_concurrent": 0}, "max_concurrent: must be a positive integer"),
    ("seed-in-fixed", {"fixed": {"seed": 3}}, "fixed.seed: must not be set"),
    ("batch-over-train", {"fixed": {"batch_size": 512}}, "fixed.batch_size: must be <= n_train (256)"),
    ("from-best-type", {"from_best": 3}, "from_best: must be a sweep name or a mapping"),
]


def _write(tmp_path, name: str, content) -> str:
    path = tmp_path / f"{name}.yaml"
    if isinstance(content, str):
        path.write_text(content)
    else:
        raw = tiny_sweep_raw(name)
        for key, value in content.items():
            if key == "fixed":
                raw["fixed"] = {**TINY_FIXED, **value}
            elif key == "search":
                raw["search"] = {"n_trials": 2, **value}
            else:
                raw[key] = value
        path.write_text(yaml.safe_dump(raw))
    return str(path)


@pytest.mark.parametrize("name,content,message", BAD_SPECS, ids=[b[0] for b in BAD_SPECS])
def test_bad_spec_is_one_clear_line(tmp_path, capsys, name, content, message):
    path = _write(tmp_path, name, content)
    storage = tmp_path / "results"
    code = main(["sweep", "run", path, "--storage", str(storage), "--no-table"])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.count("\n") == 0, err
    assert err.startswith(f"Error: {path}: "), err
    assert message in err, err
    assert "Traceback" not in err
    assert not storage.exists()  # nothing written


def test_unreadable_file(tmp_path, capsys):
    assert main(["sweep", "run", str(tmp_path / "missing.yaml"), "--storage", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == f"Error: {tmp_path / 'missing.yaml'}: cannot read the spec: no such file"


def test_overrides_and_cells(tmp_path):
    path = _write(
        tmp_path,
        "ok",
        {"grid": {"decoder": ["additive", "monolithic"], "dependence": [0.0, {"mechanism": "scm", "level": 1.0}]}},
    )
    spec = load_sweep_spec(path, ["fixed.steps=40", "seeds=3"])
    assert spec.fixed["steps"] == 40 and spec.seeds == (0, 1, 2)
    cells = spec.cells()
    assert len(cells) == 4 and spec.n_planned == 12
    assert cells[1].label == "decoder=additive,dependence=scm:1"
    trial = spec.trial_spec(cells[1], 2)
    assert (trial.dependence_mechanism, trial.dependence, trial.seed, trial.steps) == ("scm", 1.0, 2, 40)


def test_bundled_presets_are_valid():
    from pathlib import Path

    presets = sorted((Path(__file__).resolve().parents[2] / "sweeps" / "specs").glob("*.yaml"))
    assert len(presets) >= 10  # found wherever pytest runs from
    for path in presets:
        spec = load_sweep_spec(path)
        assert spec.n_planned >= 1, path


def test_variant_cells_carry_their_fields_and_names():
    from sweeps.spec import parse_sweep_spec

    raw = tiny_sweep_raw(
        "v",
        grid={
            "variant": [{"name": "base"}, {"name": "bn", "batch_norm": True, "lr": 0.01}],
            "decoder": ["additive", "monolithic"],
        },
    )
    spec = parse_sweep_spec(raw)
    cells = spec.cells()
    assert [(c.label, c.variant) for c in cells] == [
        ("variant=base,decoder=additive", "base"),
        ("variant=base,decoder=monolithic", "base"),
        ("variant=bn,decoder=additive", "bn"),
        ("variant=bn,decoder=monolithic", "bn"),
    ]
    base, bn = spec.trial_spec(cells[0], 0), spec.trial_spec(cells[2], 0)
    assert (base.batch_norm, base.lr) == (False, 1e-3)
    assert (bn.batch_norm, bn.lr) == (True, 0.01)


def test_oracle_selection_opts_in_to_ground_truth_metrics():
    from sweeps.spec import parse_sweep_spec

    raw = tiny_sweep_raw(
        "o",
        oracle_selection=True,
        search={"metric": "lms_id", "mode": "max", "n_trials": 2, "space": {"lr": {"uniform": [0.001, 0.01]}}},
    )
    spec = parse_sweep_spec(raw)
    assert spec.oracle_selection and spec.search.metric == "lms_id"
    raw = tiny_sweep_raw(
        "t", search={"metric": "train_loss", "n_trials": 2, "space": {"lr": {"uniform": [0.001, 0.01]}}}
    )
    assert parse_sweep_spec(raw).search.metric == "train_loss"


def test_from_best_refuses_an_oracle_sweep_without_opting_in(tmp_path):
    from additive.errors import AdxError
    from sweeps.engine import resolve_from_best
    from sweeps.results import Storage, SweepFiles
    from sweeps.spec import parse_sweep_spec

    store = Storage(str(tmp_path))
    old = tiny_sweep_raw(
        "old",
        oracle_selection=True,
        search={"metric": "lms_id", "mode": "max", "n_trials": 2, "space": {"lr": {"uniform": [0.001, 0.01]}}},
    )
    files = SweepFiles(store, "old")
    store.write_bytes(files.spec_path, yaml.safe_dump(old).encode())
    new = parse_sweep_spec(tiny_sweep_raw("new", from_best={"sweep": "old"}), "new.yaml")
    with pytest.raises(AdxError) as err:
        resolve_from_best(new, store)
    assert str(err.value) == (
        "new.yaml: from_best: sweep 'old' selected on 'lms_id', which needs ground truth; "
        "set `oracle_selection: true` in this spec to take its best anyway"
    )


def test_pin_amp_replaces_auto_in_fixed_grid_and_variants():
    from sweeps.spec import parse_sweep_spec, pin_amp, uses_auto_amp
    from tests.conftest import tiny_sweep_raw

    raw = tiny_sweep_raw(
        "pin", fixed={"amp": "auto", "steps": 20}, grid={"variant": [{"name": "a"}, {"name": "b", "amp": "auto"}]}
    )
    spec = parse_sweep_spec(raw, "pin.yaml")
    assert uses_auto_amp(spec)
    pinned = pin_amp(spec, True)
    assert not uses_auto_amp(pinned)
    assert {pinned.trial_spec(c, 0).amp for c in pinned.cells()} == {True}
    assert spec.raw["fixed"]["amp"] == "auto"  # the original is left as it was
    with pytest.raises(Exception, match=r"fixed.amp: must be true, false or 'auto'"):
        parse_sweep_spec(tiny_sweep_raw("bad", fixed={"amp": "fast"}), "bad.yaml")
