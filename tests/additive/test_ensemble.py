"""One vectorised ensemble step equals K single steps (fp32 tolerance)."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from additive.ensemble import Ensemble
from additive.train import build_models, seed_everything


@pytest.mark.parametrize("decoder", ["additive", "monolithic"])
def test_one_ensemble_step_equals_k_single_steps(tiny_spec, decoder):
    spec = dataclasses.replace(tiny_spec, decoder=decoder)
    device = torch.device("cpu")
    pairs = []
    for r in range(3):
        seed_everything(100 + r)
        pairs.append(build_models(spec, device))
    singles = [tuple(copy.deepcopy(m) for m in pair) for pair in pairs]
    ensemble = Ensemble(pairs)
    x = torch.rand(16, 3, spec.image_size, spec.image_size)
    opt = torch.optim.Adam(ensemble.parameters(), lr=1e-3, weight_decay=1e-4)
    first = None
    for _ in range(3):
        losses = ensemble.reconstruction(x)
        first = losses.detach() if first is None else first
        opt.zero_grad()
        losses.sum().backward()
        opt.step()
    for i, (enc, dec) in enumerate(singles):
        o = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3, weight_decay=1e-4)
        for step in range(3):
            loss = ((dec(enc(x)) - x) ** 2).mean()
            if step == 0:
                assert loss.item() == pytest.approx(first[i].item(), rel=1e-5)
            o.zero_grad()
            loss.backward()
            o.step()
        want = torch.nn.Sequential(enc, dec).state_dict()
        got = ensemble.member_state(i)
        for name, value in got.items():
            torch.testing.assert_close(value, want[name], rtol=1e-5, atol=1e-6)
    # the members stayed different models
    assert not torch.equal(ensemble.member_state(0)[ensemble.names[0]], ensemble.member_state(1)[ensemble.names[0]])
