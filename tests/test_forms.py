"""The benchmark's batched additive decoder computes what the per-block one does."""

from __future__ import annotations

import pytest
import torch

from additive.models import AdditiveDecoder, Body


@pytest.mark.parametrize("block_size, image_size", [(1, 32), (2, 16)])
def test_batched_form_equals_the_per_block_decoder(block_size, image_size):
    from benchmarks.forms import BatchedAdditiveDecoder

    torch.manual_seed(0)
    ref = AdditiveDecoder(block_size, 2, image_size, Body("mlp", 32, 2, False, 8, "paper"))
    batched = BatchedAdditiveDecoder(ref)
    z = torch.randn(5, 2 * block_size)
    torch.testing.assert_close(batched(z), ref(z), rtol=1e-5, atol=1e-6)
    grads = torch.autograd.grad(batched(z).square().sum(), batched.w[0])[0]
    ref_grads = torch.autograd.grad(ref(z).square().sum(), [ref.bodies[i].mlp[0].weight for i in range(2)])
    torch.testing.assert_close(grads, torch.stack([g.t() for g in ref_grads]), rtol=1e-4, atol=1e-6)
