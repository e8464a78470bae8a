"""Plugins by import path: found in the current folder, checked before any trial with one
line naming the field and what was wrong, and trained like the built-ins."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from additive.check import check_trial
from additive.errors import SpecError
from additive.latents import LatentSpace
from additive.plugins import is_plugin, parse_options
from additive.spec import TrialSpec
from additive.train import run_trial
from tests.plugin_modules import NEEDS_MISSING, write_plugin

SMALL = TrialSpec(image_size=8, n_train=128, n_val=32, n_test=64, n_oos=64, width=16, depth=1, channels=8,
                  batch_size=32, steps=20, eval_every=10, threads=1)  # fmt: skip


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # found in the current folder, as `uvicorn main:app` finds main.py
    return write_plugin(tmp_path)


def test_plugin_paths_and_options():
    assert is_plugin("pkg.mod:make") and is_plugin("mod:Cls.build") and not is_plugin("additive")
    assert not is_plugin("pkg.mod") and not is_plugin("a:b:c") and not is_plugin("1mod:x")
    assert parse_options({"width": 128, "a": [1, 2]}, "decoder_options") == '{"a":[1,2],"width":128}'
    assert parse_options('{"b": 1, "a": 2}', "decoder_options") == '{"a":2,"b":1}'
    with pytest.raises(SpecError, match=r"^`decoder_options` must be a mapping of option names to values"):
        parse_options([1, 2], "decoder_options")
    with pytest.raises(SpecError, match="must be null for the built-in decoder 'additive'"):
        TrialSpec(decoder_options={"width": 3})


def test_a_plugin_decoder_encoder_and_support_train_through_run_trial(plugin):
    spec = dataclasses.replace(
        SMALL,
        decoder=f"{plugin}:decoder",
        decoder_options={"width": 24},
        encoder=f"{plugin}:encoder",
        support=f"{plugin}:band",
        support_options={"width": 0.2},
    )
    assert spec.decoder_options == '{"width":24}'
    result = run_trial(spec)
    assert result.steps_done == 20 and np.isfinite(result.metrics["val_loss"])
    assert result.metrics["oos_count"] > 0  # CPE(band) minus the band: the off-diagonal corners
    space = spec.latent_space()
    z = space.sample(500, 0)
    assert (np.abs(z[:, 0] - z[:, 1]) <= 0.2).all()
    oos = space.sample_oos(200, 1)
    assert len(oos) == 200 and (np.abs(oos[:, 0] - oos[:, 1]) > 0.2).all()


def test_a_support_whose_cpe_adds_nothing_has_no_oos_set(plugin):
    space = LatentSpace(support=f"{plugin}:band", support_options='{"width": 0.9}')  # the whole box
    assert space.sample_oos(100, 0).shape == (0, 2)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"decoder": "adx_no_such_module:decoder"},
         "`decoder` must name an importable module, but got 'adx_no_such_module:decoder': No module named "
         "'adx_no_such_module'; it must be importable where the trials run"),
        ({"decoder": "{plugin}:no_such_name"},
         "`decoder` must name an object of module '{plugin}', but got '{plugin}:no_such_name' (no 'no_such_name' there)"),
        ({"decoder": "{plugin}:NOT_CALLABLE"}, "`decoder` must name a callable, but got '{plugin}:NOT_CALLABLE' (a int)"),
        ({"decoder": "{plugin}:raises"},
         "`decoder` must run, but '{plugin}:raises' raised ValueError: width must be even"),
        ({"decoder": "{plugin}:not_a_module"}, "`decoder` must build a torch.nn.Module, but got a str"),
        ({"decoder": "{plugin}:wrong_dtype"},
         "`decoder` must output float32 images of shape (4, 3, 8, 8), but got dtype torch.float64"),
        ({"decoder": "{plugin}:decoder", "decoder_options": {"colour": "red"}},
         "`decoder` must run, but '{plugin}:decoder' raised TypeError: decoder() got an unexpected keyword argument "
         "'colour'"),
        ({"support": "{plugin}:support_of_ints"},
         "`support` must return one bool per latent, shape ("),
        ({"support": "{plugin}:empty_support"}, "`support` must sample in-support latents on the CPU, but got "
         "SupportError: "),
        ({"decoder": "{plugin}:declares_wrong"},
         "`decoder` must declare `additive_blocks` equal to the latent blocks (1, 1), but got (2,)"),
    ],
)  # fmt: skip
def test_every_plugin_error_is_one_line_naming_the_field(plugin, fields, message):
    values = {k: v.replace("{plugin}", plugin) if isinstance(v, str) else v for k, v in fields.items()}
    expected = message.replace("{plugin}", plugin)
    with pytest.raises(SpecError) as caught:
        check_trial(dataclasses.replace(SMALL, **values))
    text = str(caught.value)
    assert "\n" not in text and caught.value.field == next(iter(fields)).removesuffix("_options")
    assert text.startswith(expected), text


def test_wrong_shape_names_the_shape_it_got(plugin):
    with pytest.raises(SpecError, match=r"images of shape \(4, 3, 16, 16\), but got shape \(4, 3, 8, 8\)"):
        check_trial(dataclasses.replace(SMALL, image_size=16, decoder=f"{plugin}:wrong_shape"))


def test_a_package_the_plugin_needs_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = write_plugin(tmp_path, NEEDS_MISSING)
    with pytest.raises(SpecError) as caught:
        check_trial(dataclasses.replace(SMALL, decoder=f"{name}:decoder"))
    assert str(caught.value) == (
        f"`decoder` must import, but got '{name}:decoder': ModuleNotFoundError: No module named "
        "'adx_not_installed_anywhere' (a package it needs is missing)"
    )


def test_the_check_key_tells_plugins_apart_by_options(plugin):
    from additive.check import check_key

    a = dataclasses.replace(SMALL, decoder=f"{plugin}:decoder", decoder_options={"width": 8})
    b = dataclasses.replace(a, decoder_options={"width": 16})
    assert check_key(a) != check_key(b) and check_key(a) == check_key(dataclasses.replace(a, seed=3))


BLOCK = dataclasses.replace(SMALL, dataset="block", image_size=16, support="scm")  # has an OOS set


@pytest.mark.parametrize(
    ("decoder", "search"),
    [("additive", False), ("monolithic", True), ("{plugin}:decoder", True), ("{plugin}:declared", False)],
)
def test_lms_searches_partitions_unless_the_decoder_declares_its_blocks(plugin, monkeypatch, decoder, search):
    """On BlockLatents the LMS of a decoder with no known block structure is the best over
    partitions of the code; a plugin that declares ``additive_blocks`` is scored on its own
    blocks, as the additive decoder is. Checked in what the trial's metrics pass on."""
    import additive.evaluate as evaluate
    from additive.models import build_decoder

    spec = dataclasses.replace(BLOCK, decoder=decoder.replace("{plugin}", plugin))
    space = spec.latent_space()
    assert evaluate.searches_partitions(space, spec.decoder, build_decoder(spec)) is search
    seen = []
    real = evaluate.tree_matching

    def recording(*args, search_partitions=False):
        seen.append(search_partitions)
        return real(*args, search_partitions=search_partitions)

    monkeypatch.setattr(evaluate, "tree_matching", recording)
    result = run_trial(spec)
    assert seen == [search, search]  # LMS ID and LMS OOS
    assert np.isfinite(result.metrics["lms_id"])
