"""The pre-scheduling check of one trial: it passes every built-in model and stops, naming
the field, at a builder that raises, an output of the wrong shape or dtype, a loss that is
not finite, a missing package and a support that cannot be sampled."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import additive.models as models
from additive.check import CHECK_FIELDS, check_key, check_trial
from additive.errors import SpecError, SupportError
from additive.spec import DECODERS, ENCODERS, TrialSpec

SMALL = TrialSpec(image_size=16, width=16, depth=1, channels=8)


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("dataset", ["scalar", "block"])
def test_every_built_in_model_passes(decoder, encoder, dataset):
    spec = dataclasses.replace(SMALL, decoder=decoder, encoder=encoder, dataset=dataset)
    check_trial(spec)


def test_the_check_leaves_the_callers_random_state_alone():
    torch.manual_seed(3)
    expected = torch.rand(2)
    torch.manual_seed(3)
    check_trial(SMALL)
    assert torch.equal(torch.rand(2), expected)


def test_the_key_holds_the_model_and_data_fields_only():
    a, b = SMALL, dataclasses.replace(SMALL, seed=5, lr=0.1, steps=7)
    assert check_key(a) == check_key(b)
    assert check_key(a) != check_key(dataclasses.replace(SMALL, width=32))
    assert {name for name, _ in check_key(a)} == set(CHECK_FIELDS)


class _Shape(torch.nn.Module):
    def __init__(self, make):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.make = make

    def forward(self, x):
        return self.make(x) * self.w


@pytest.mark.parametrize(
    ("field", "patch", "message"),
    [
        ("decoder", lambda *a, **k: _Shape(lambda z: torch.zeros(len(z), 3, 8, 8)),
         "`decoder` must output float32 images of shape (4, 3, 16, 16), but got shape (4, 3, 8, 8)"),
        ("decoder", lambda *a, **k: _Shape(lambda z: torch.zeros(len(z), 3, 16, 16, dtype=torch.float64)),
         "`decoder` must output float32 images of shape (4, 3, 16, 16), but got dtype torch.float64"),
        ("encoder", lambda *a, **k: _Shape(lambda x: torch.zeros(len(x), 5)),
         "`encoder` must output float32 codes of shape (4, 2), but got shape (4, 5)"),
        ("decoder", lambda *a, **k: _Shape(lambda z: torch.full((len(z), 3, 16, 16), float("nan"))),
         "`decoder` must give a finite loss and gradients on one batch, but got a non-finite one"),
        ("encoder", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no such layer\nsecond line")),
         "`encoder` must build on the CPU, but got RuntimeError: no such layer"),
        ("decoder", lambda *a, **k: __import__("a_package_that_is_not_installed"),
         "`decoder` must build on the CPU, but got ModuleNotFoundError: No module named "
         "'a_package_that_is_not_installed' (install 'a_package_that_is_not_installed' where the trials run, "
         "or choose another decoder)"),
    ],
)  # fmt: skip
def test_a_bad_model_fails_with_one_line_naming_the_field(monkeypatch, field, patch, message):
    import additive.check  # noqa: F401 - the check imports the builders from additive.models

    monkeypatch.setattr(models, f"make_{field}", patch)
    with pytest.raises(SpecError) as caught:
        check_trial(SMALL)
    assert str(caught.value) == message
    assert caught.value.field == field and "\n" not in str(caught.value)


def test_a_support_that_cannot_be_sampled_fails_naming_the_support(monkeypatch):
    from additive.latents import LatentSpace

    def never(self, n, seed):
        raise SupportError("support 'l_shape' accepted too few draws")

    monkeypatch.setattr(LatentSpace, "sample", never)
    with pytest.raises(SpecError, match=r"^`support` must sample in-support latents on the CPU, but got SupportError"):
        check_trial(SMALL)
