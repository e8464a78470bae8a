from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from additive import DivergedError, load_models, run_trial
from additive.models import DECODERS


@pytest.mark.parametrize("decoder", DECODERS)
def test_tiny_trial_runs_and_reports(tiny_spec, decoder):
    seen = []
    spec = dataclasses.replace(tiny_spec, decoder=decoder)
    result = run_trial(spec, callback=lambda step, m: seen.append((step, m)))
    assert [s for s, _ in seen] == [10, 20]
    assert {"train_loss", "val_loss", "best_val_loss", "lr"} <= set(seen[0][1])
    m = result.metrics
    for key in ("rmse_id", "lms_id", "mcc_id", "rmse_ood", "lms_ood", "rmse_recombine", "val_loss"):
        assert math.isfinite(m[key]), key
    assert 0 <= m["lms_id"] <= 100
    assert m["val_loss"] == min(row["val_loss"] for row in result.curves)
    assert result.steps_done == 20


def test_same_seed_same_result(tiny_spec):
    a = run_trial(tiny_spec).metrics
    b = run_trial(tiny_spec).metrics
    assert a == pytest.approx(b, nan_ok=True)


def test_block_latents_with_monolithic_decoder(tiny_spec):
    spec = dataclasses.replace(tiny_spec, dataset="block", support="scm", decoder="monolithic")
    m = run_trial(spec).metrics
    assert 0 <= m["lms_id"] <= 100 and math.isfinite(m["rmse_recombine"])


def test_product_support_gives_nan_oos_metrics(tiny_spec):
    m = run_trial(dataclasses.replace(tiny_spec, support="full")).metrics
    assert math.isnan(m["rmse_ood"]) and math.isnan(m["lms_ood"]) and math.isnan(m["rmse_recombine"])
    assert math.isfinite(m["rmse_id"])


def test_nan_loss_raises_diverged(tiny_spec):
    with pytest.raises(DivergedError, match="step"):
        run_trial(dataclasses.replace(tiny_spec, fault="nan"))


def test_patience_stops_early(tiny_spec):
    spec = dataclasses.replace(tiny_spec, steps=200, eval_every=1, patience=1, lr=1e-6)
    result = run_trial(spec)
    assert result.steps_done < 200


def test_weights_round_trip(tiny_spec, tmp_path):
    result = run_trial(tiny_spec, weights_dir=tmp_path)
    encoder, decoder = load_models(tiny_spec, result.weights_path)
    x = torch.rand(4, 3, 16, 16)
    assert decoder(encoder(x)).shape == x.shape


def test_threads_are_honoured(tiny_spec):
    before = torch.get_num_threads()
    try:
        run_trial(dataclasses.replace(tiny_spec, threads=1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_lr_schedules(tiny_spec):
    for decay in ("step", "cosine"):
        result = run_trial(dataclasses.replace(tiny_spec, lr_decay=decay, lr_decay_every=10))
        assert result.curves[-1]["lr"] < tiny_spec.lr


def test_spec_rejects_cuda_without_gpu(tiny_spec):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from additive import AdxError

    with pytest.raises(AdxError, match="no CUDA device"):
        run_trial(dataclasses.replace(tiny_spec, accelerator="cuda"))


def test_time_budget_raises(tiny_spec):
    from additive import BudgetError

    with pytest.raises(BudgetError, match="time budget of 0.3 s"):
        run_trial(dataclasses.replace(tiny_spec, fault="slow", max_seconds=0.3))


def test_memory_budget_raises(tiny_spec):
    from additive import BudgetError

    with pytest.raises(BudgetError, match="memory budget of 10 MB"):
        run_trial(dataclasses.replace(tiny_spec, max_memory_mb=10))
