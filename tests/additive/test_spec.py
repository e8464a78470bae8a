from __future__ import annotations

import pytest

from additive import SpecError, TrialSpec


def test_defaults_are_valid_and_round_trip():
    spec = TrialSpec()
    assert TrialSpec.from_dict(spec.to_dict()) == spec
    assert spec.val_size == spec.n_train // 4


def test_ints_become_floats_where_a_float_is_expected():
    spec = TrialSpec(lr=1, dependence=0)
    assert isinstance(spec.lr, float) and isinstance(spec.dependence, float)


@pytest.mark.parametrize(
    "values,message",
    [
        ({"lr": 0.0}, "`lr` must be > 0, but got 0.0"),
        ({"lr": "fast"}, "`lr` must be float or int, but got 'fast'"),
        ({"steps": 2.5}, "`steps` must be int, but got 2.5"),
        ({"batch_norm": "yes"}, "`batch_norm` must be bool"),
        ({"steps": True}, "`steps` must be int, but got True"),
        ({"image_size": 48}, "`image_size` must be a power of two >= 8, but got 48"),
        ({"decoder": "transformer"}, "`decoder` must be one of ['additive', 'monolithic', 'masked']"),
        ({"body": "unet"}, "`body` must be one of"),
        ({"batch_size": 0}, "`batch_size` must be > 0"),
        ({"n_train": 10, "batch_size": 64}, "`batch_size` must be <= n_train (10), but got 64"),
        ({"init_seed": -1}, "`init_seed` must be null or an integer >= 0, but got -1"),
        ({"lr_warmup": -5}, "`lr_warmup` must be >= 0, but got -5"),
        ({"lr": float("nan")}, "`lr` must be float or int, but got nan"),
        ({"lr_decay_gamma": 0.0}, "`lr_decay_gamma` must be in (0, 1]"),
        ({"support": "moon"}, "`support` must be one of"),
        ({"bogus": 1}, "`bogus` must be a known trial field"),
    ],
)
def test_invalid_specs_name_the_field(values, message):
    with pytest.raises(SpecError) as info:
        TrialSpec.from_dict(values)
    assert message in str(info.value)


def test_latent_space_fields_are_trial_fields_with_the_same_defaults():
    from dataclasses import fields

    from additive.latents import LatentSpace
    from additive.spec import LATENT_FIELDS, TrialSpec

    trial = {f.name: f.default for f in fields(TrialSpec)}
    latent = {f.name: f.default for f in fields(LatentSpace) if f.init}
    assert set(LATENT_FIELDS) == set(latent) and set(latent) <= set(trial)
    assert {name: trial[name] for name in latent} == latent
    spec = TrialSpec(support="l_shape", l_density="uniform", dependence=0.5, n_objects=3)
    assert spec.latent_space() == LatentSpace(support="l_shape", l_density="uniform", dependence=0.5, n_objects=3)
