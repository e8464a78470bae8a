"""The training-dynamics diagnostic (scripts/block_dynamics.py) and run_trial's observe hook."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from additive.train import run_trial

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "block_dynamics.py"


def _script():
    spec = importlib.util.spec_from_file_location("block_dynamics", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_observe_sees_every_evaluation_in_eval_mode_and_changes_nothing(tiny_spec):
    seen = []

    def observe(step, encoder, decoder, data):
        seen.append((step, encoder.training, decoder.training, torch.is_grad_enabled()))
        encoder(data.val.float_images(0, 8))

    plain = run_trial(tiny_spec)
    observed = run_trial(tiny_spec, observe=observe)
    assert seen == [(10, False, False, False), (20, False, False, False)]
    assert observed.metrics["val_loss"] == plain.metrics["val_loss"]
    assert [c["train_loss"] for c in observed.curves] == [c["train_loss"] for c in plain.curves]


def test_knn_r2_tells_an_encoded_target_from_an_absent_one():
    rng = np.random.default_rng(0)
    z = rng.uniform(size=(3000, 2))
    codes = np.c_[np.tanh(2 * z[:, 0]), z[:, 0] + z[:, 1] ** 2]  # a smooth invertible map of z
    r2 = _script().knn_r2(codes, np.c_[z, rng.uniform(size=3000)])
    assert r2[0] > 0.95 and r2[1] > 0.95
    assert abs(r2[2]) < 0.2


def test_colour_share_names_the_ball_a_block_draws():
    module = _script()
    from additive.render import COLORS

    rng = torch.Generator().manual_seed(0)
    for ball, expected in ((0, 1.0), (1, 0.0)):
        colour = 1 - torch.tensor(COLORS[ball], dtype=torch.float32) / 255.0
        blobs = torch.rand(64, 1, 8, 8, generator=rng)
        image = 1 - blobs * colour.view(1, 3, 1, 1)
        assert abs(module.colour_share(image) - expected) < 1e-3


def test_script_prints_one_row_per_evaluation():
    fields = "dataset=block image_size=16 n_train=400 n_val=2100 n_test=64 n_oos=64 width=32 depth=1 channels=8 steps=40 eval_every=20 threads=1"
    args = [a for f in fields.split() for a in ("--set", f)]
    out = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--images", "2100"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines()[1:]]
    assert [int(r[0]) for r in rows] == [20, 40]
    values = np.array([[float(v) for v in r[1:]] for r in rows])
    assert values.shape == (2, 8) and np.all(values[:, 1:] <= 1.0) and np.all(values[:, [3, 6]] >= 0)
    r2 = values[:, [1, 2, 4, 5]]  # block 0: ball 1, ball 2; block 1: ball 1, ball 2 (printed to 2 decimals)
    pairings = np.maximum(r2[:, 0] + r2[:, 3], r2[:, 1] + r2[:, 2]) / 2
    assert np.allclose(values[:, 7], pairings, atol=0.006)


def test_matched_r2_takes_the_better_pairing():
    matched_r2 = _script().matched_r2
    assert matched_r2(np.array([[0.9, 0.1], [0.2, 0.7]])) == pytest.approx(0.8)  # block 0 = ball 1
    assert matched_r2(np.array([[0.1, 0.9], [0.7, 0.2]])) == pytest.approx(0.8)  # block 0 = ball 2
    assert matched_r2(np.array([[0.5, 0.5], [0.5, 0.5]])) == pytest.approx(0.5)  # no separation


def test_script_refuses_a_monolithic_decoder():
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--set", "dataset=block", "--set", "decoder=monolithic"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "needs an additive decoder" in out.stderr
