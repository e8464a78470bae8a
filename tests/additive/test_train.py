from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from additive import DivergedError, TrialSpec, load_models, run_trial
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
    # lr far below float32 resolution: the weights cannot move, so the validation loss cannot improve
    spec = dataclasses.replace(tiny_spec, steps=200, eval_every=1, patience=1, lr=1e-12, bn_recalibrate=0)
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


@pytest.mark.parametrize("floor", [0.0, 0.1, 0.5])
def test_cosine_decays_to_its_floor_whatever_the_step_gamma(floor):
    from additive.train import _lr_lambda

    spec = TrialSpec(lr_decay="cosine", lr_floor=floor, lr_decay_gamma=0.25, steps=100)
    schedule = _lr_lambda(spec)
    assert schedule(0) == pytest.approx(1.0)
    assert schedule(50) == pytest.approx(floor + (1 - floor) / 2)
    assert schedule(100) == pytest.approx(floor)


@pytest.mark.parametrize("decay", ["none", "cosine"])
def test_warmup_ramps_linearly_then_hands_over_to_the_schedule(decay):
    from additive.train import _lr_lambda

    plain = _lr_lambda(TrialSpec(lr_decay=decay, steps=100))
    warm = _lr_lambda(TrialSpec(lr_decay=decay, steps=100, lr_warmup=10))
    # LambdaLR trains step k (from 1) at the factor of k - 1: step 1 at 1/10, step 10 at 1
    assert warm(0) == pytest.approx(0.1 * plain(0))
    assert warm(4) == pytest.approx(0.5 * plain(4))
    for k in (9, 10, 50, 99):
        assert warm(k) == pytest.approx(plain(k))


def test_warmup_reaches_lr_in_training(tiny_spec):
    spec = dataclasses.replace(tiny_spec, lr_warmup=tiny_spec.steps * 4, eval_every=1)
    lrs = [row["lr"] for row in run_trial(spec).curves]
    assert lrs == sorted(lrs) and lrs[-1] < tiny_spec.lr  # still ramping: the run is shorter than the warmup
    assert run_trial(dataclasses.replace(tiny_spec, lr_warmup=1)).curves[-1]["lr"] == pytest.approx(tiny_spec.lr)


def test_init_and_batch_seeds_each_change_only_their_part(tiny_spec):
    base = run_trial(tiny_spec).metrics["val_loss"]
    same = dataclasses.replace(tiny_spec, init_seed=tiny_spec.seed, batch_seed=tiny_spec.seed)
    assert run_trial(same).metrics["val_loss"] == base  # the defaults are `seed` itself
    other_init = run_trial(dataclasses.replace(tiny_spec, init_seed=tiny_spec.seed + 1)).metrics["val_loss"]
    other_batches = run_trial(dataclasses.replace(tiny_spec, batch_seed=tiny_spec.seed + 1)).metrics["val_loss"]
    assert len({base, other_init, other_batches}) == 3


def test_restart_index_redraws_only_the_initialisation(tiny_spec):
    from additive.spec import RESTART_SEED_STRIDE

    base = run_trial(tiny_spec)
    member = run_trial(dataclasses.replace(tiny_spec, restart=2))
    same_init = run_trial(dataclasses.replace(tiny_spec, init_seed=tiny_spec.seed + 2 * RESTART_SEED_STRIDE))
    assert member.metrics["val_loss"] != base.metrics["val_loss"]
    assert member.curves == same_init.curves  # member r is init_seed = seed + r x stride, nothing else
    assert dataclasses.replace(tiny_spec, init_seed=7, restart=1).effective_init_seed == 7 + RESTART_SEED_STRIDE


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


def test_batch_norm_recalibration_uses_current_weights(tiny_spec):
    """Precise BN: after recalibration over one batch, the encoder's last BatchNorm holds the
    mean and (unbiased) variance of its inputs on exactly those images; parameters and
    momentum are unchanged."""
    from additive.data import make_datasets
    from additive.train import build_models, recalibrate_batch_norm

    spec = dataclasses.replace(tiny_spec, code_batch_norm=True, batch_norm=True)
    space = spec.latent_space()
    data = make_datasets(space, 64, 8, 8, 0, spec.image_size, 0, torch.device("cpu"))
    encoder, decoder = build_models(spec, torch.device("cpu"))
    last = encoder.head[-1]
    assert isinstance(last, torch.nn.BatchNorm1d)
    last.running_mean.fill_(123.0)  # stale statistics, as after fast-moving training
    last.running_var.fill_(456.0)
    before = [p.detach().clone() for p in encoder.parameters()]
    idx = torch.arange(32)
    recalibrate_batch_norm(encoder, decoder, data.train, idx, batch_size=32)

    with torch.no_grad():
        pre = encoder.head[:-1](encoder.conv(data.train.batch(idx)).flatten(1))
    assert torch.allclose(last.running_mean, pre.mean(0), atol=1e-5)
    assert torch.allclose(last.running_var, pre.var(0, unbiased=True), rtol=1e-4, atol=1e-6)
    assert last.momentum == 0.1
    assert all(torch.equal(a, b) for a, b in zip(before, encoder.parameters(), strict=True))


def test_recalibration_brings_eval_loss_to_train_loss(tiny_spec):
    """With stale running statistics the eval-mode loss is far from the train-mode loss on
    the same images; recalibrating closes most of that gap."""
    from additive.data import make_datasets
    from additive.train import build_models, recalibrate_batch_norm

    spec = dataclasses.replace(tiny_spec, code_batch_norm=True, batch_norm=True, encoder_batch_norm=True)
    data = make_datasets(spec.latent_space(), 256, 8, 8, 0, spec.image_size, 0, torch.device("cpu"))
    torch.manual_seed(0)
    encoder, decoder = build_models(spec, torch.device("cpu"))
    x = data.train.batch(torch.arange(256))
    with torch.no_grad():
        train_mode = float(((decoder(encoder(x)) - x) ** 2).mean())
        encoder.eval()
        decoder.eval()
        stale = float(((decoder(encoder(x)) - x) ** 2).mean())
        recalibrate_batch_norm(encoder, decoder, data.train, torch.arange(256), batch_size=256)
        encoder.eval()
        decoder.eval()
        fresh = float(((decoder(encoder(x)) - x) ** 2).mean())
    assert abs(fresh - train_mode) < 0.2 * abs(stale - train_mode)


def test_amp_trains_under_bf16_where_the_hardware_has_it(tiny_spec, monkeypatch):
    import additive.train as train

    if not train.bf16_available(torch.device("cpu")):
        pytest.skip("this CPU has no bf16 hardware")
    fp32 = run_trial(tiny_spec)
    bf16 = run_trial(dataclasses.replace(tiny_spec, amp=True))
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
    assert bf16.curves[0]["train_loss"] != fp32.curves[0]["train_loss"]  # bf16 arithmetic really ran
    assert bf16.curves[0]["train_loss"] == pytest.approx(fp32.curves[0]["train_loss"], rel=0.05)


def test_amp_without_bf16_hardware_falls_back_to_fp32_with_a_warning(tiny_spec, monkeypatch):
    import additive.train as train

    monkeypatch.setattr(train, "bf16_available", lambda device: False)
    with pytest.warns(RuntimeWarning, match="no bf16 hardware"):
        result = run_trial(dataclasses.replace(tiny_spec, amp=True))
    assert result.precision == "fp32"
    assert result.curves == run_trial(tiny_spec).curves
