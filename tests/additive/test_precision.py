"""`amp: auto` (the faster precision, timed), `val_amp` and the hardware recorded in rows."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import additive.precision as precision
import additive.train as train
from additive import run_trial
from additive.precision import BF16_MARGIN, choose_amp, decide, hardware


def test_bf16_is_chosen_only_when_it_is_faster_by_the_margin():
    assert decide(0.050, 0.030) is True
    assert decide(0.050, 0.050 / BF16_MARGIN) is True
    assert decide(0.050, 0.050 / BF16_MARGIN * 1.01) is False  # faster, but within the margin
    assert decide(0.050, 0.070) is False
    assert decide(0.050, None) is False  # no bf16 hardware: never timed


def test_choose_amp_times_each_distinct_model_in_both_precisions(tiny_spec, monkeypatch):
    specs = [
        tiny_spec,
        dataclasses.replace(tiny_spec, seed=3, support="full", dependence=0.5),  # the same networks and batch
        dataclasses.replace(tiny_spec, decoder="monolithic"),
    ]
    timed = []
    real = precision._step_timer

    def counting(spec, device):
        timer = real(spec, device)

        def wrapped(amp):
            timed.append((spec.decoder, amp))
            return timer(amp)

        return wrapped

    monkeypatch.setattr(precision, "_step_timer", counting)
    monkeypatch.setattr(precision, "bf16_available", lambda device: True)
    choice = choose_amp(specs)
    assert choice.models == 2  # the seed, support and dependence do not change the step
    assert sorted(timed) == sorted([(d, a) for d in ("additive", "monolithic") for a in (False, True)] * 2)
    assert choice.fp32_seconds > 0 and choice.bf16_seconds > 0
    assert choice.amp == decide(choice.fp32_seconds, choice.bf16_seconds)
    assert choice.hardware == hardware("cpu")


def test_without_bf16_hardware_auto_is_fp32_and_bf16_is_not_timed(tiny_spec, monkeypatch):
    monkeypatch.setattr(precision, "bf16_available", lambda device: False)
    choice = choose_amp([tiny_spec])
    assert choice.amp is False and choice.bf16_seconds is None
    assert "no bf16 hardware" in choice.describe()


def test_a_trial_alone_with_amp_auto_trains_in_the_precision_the_timing_picks(tiny_spec, monkeypatch):
    for picked in (False, True):
        monkeypatch.setattr(train, "choose_amp", lambda specs, threads=1, device="cpu", p=picked: (
            precision.PrecisionChoice(p, 0.02, 0.01 if p else 0.04, 1, "cpu")))  # fmt: skip
        monkeypatch.setattr(train, "bf16_available", lambda device: True)
        result = run_trial(dataclasses.replace(tiny_spec, amp="auto"))
        assert result.precision == ("bf16" if picked else "fp32")


def test_val_amp_runs_the_validation_passes_in_bf16_and_training_is_unchanged(tiny_spec):
    if not train.bf16_available(torch.device("cpu")):
        pytest.skip("this CPU has no bf16 hardware")
    amp = dataclasses.replace(tiny_spec, amp=True)
    plain, cheap = run_trial(amp), run_trial(dataclasses.replace(amp, val_amp=True))
    # the validation passes draw no random numbers and change no state: training is the same
    assert [c["train_loss"] for c in cheap.curves] == [c["train_loss"] for c in plain.curves]
    val, val16 = [c["val_loss"] for c in plain.curves], [c["val_loss"] for c in cheap.curves]
    assert val16 != val  # bf16 arithmetic really ran
    assert val16 == pytest.approx(val, rel=0.02)
    assert cheap.metrics["rmse_id"] == plain.metrics["rmse_id"] or cheap.best_step != plain.best_step


def test_val_amp_without_amp_keeps_validation_in_fp32(tiny_spec):
    assert run_trial(dataclasses.replace(tiny_spec, val_amp=True)).curves == run_trial(tiny_spec).curves


def test_hardware_names_the_cpu_and_the_features_that_change_its_arithmetic(monkeypatch):
    hardware.cache_clear()
    monkeypatch.setattr(precision, "_cpuinfo", lambda: ("Some Xeon", {"avx2", "avx512f", "amx_bf16", "sse"}))
    try:
        assert hardware("cpu") == "Some Xeon [amx_bf16 avx512f avx2]"
        monkeypatch.setattr(precision, "_cpuinfo", lambda: ("Old CPU", {"sse"}))
        hardware.cache_clear()
        assert hardware("cpu").startswith("Old CPU [none of amx_bf16")
    finally:
        hardware.cache_clear()
