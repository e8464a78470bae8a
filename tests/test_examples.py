"""The examples a newcomer copies (examples/, README "Your own decoder or support") run:
the spec dry-runs through the engine from the repository's top folder, with the plugin
decoder and support found there, and the plugins keep their contracts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sweeps.dryrun import dry_run_spec
from sweeps.engine import run_sweep
from sweeps.spec import load_sweep_spec

ROOT = Path(__file__).resolve().parents[1]


def test_the_example_sweep_dry_runs_from_the_top_folder(ray_local, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    dry = dry_run_spec(load_sweep_spec("examples/sweep.yaml"))
    summary = run_sweep(dry, str(tmp_path), out=None)
    assert summary.complete and set(summary.counts) == {"ok"}
    df = pd.read_parquet(tmp_path / dry.name / "trials")
    assert set(df["decoder"]) == {"additive", "monolithic", "examples.decoders:shared_body"}
    assert (df["steps_done"] == dry.fixed["steps"]).all()


def test_the_example_support_is_a_cross_whose_corners_are_out_of_support():
    from examples.supports import cross

    z = np.array([[0.5, 0.1], [0.1, 0.5], [0.5, 0.5], [0.1, 0.1], [0.9, 0.85]])
    assert cross(z, width=0.3).tolist() == [True, True, True, False, False]


def test_the_example_decoder_is_additive():
    """f(z) = g(z1) + g(z2): changing one block changes the image by that block's term only."""
    import torch

    from additive.spec import TrialSpec
    from examples.decoders import shared_body

    dec = shared_body(TrialSpec(image_size=16, width=32, depth=1, channels=8), (1, 1)).eval()
    a, b = torch.tensor([[0.2, 0.3]]), torch.tensor([[0.7, 0.3]])
    c, d = torch.tensor([[0.2, 0.8]]), torch.tensor([[0.7, 0.8]])
    with torch.no_grad():
        assert torch.allclose(dec(a) - dec(b), dec(c) - dec(d), atol=1e-5)
