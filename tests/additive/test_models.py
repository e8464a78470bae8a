"""One contract test run against every decoder and body."""

from __future__ import annotations

import pytest
import torch

from additive import AdditiveDecoder, make_decoder, make_encoder
from additive.models import BODIES, DECODERS, count_parameters


@pytest.mark.parametrize("kind", DECODERS)
@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("block_size,n_blocks,size", [(1, 2, 16), (2, 2, 32), (2, 3, 16)])
def test_decoder_contract(kind, body, block_size, n_blocks, size):
    torch.manual_seed(0)
    dec = make_decoder(kind, block_size, n_blocks, size, width=32, depth=2, body=body)
    z = torch.randn(5, block_size * n_blocks)
    out = dec(z)
    assert out.shape == (5, 3, size, size)
    out.sum().backward()
    assert all(p.grad is not None for p in dec.parameters() if p.requires_grad)


@pytest.mark.parametrize("body", BODIES)
def test_additive_decoder_is_a_sum_of_block_images(body):
    torch.manual_seed(0)
    dec = AdditiveDecoder(2, 2, 16, width=32, depth=2, body=body).eval()
    z = torch.randn(6, 4)
    z_swap = z.clone()
    z_swap[:, 2:] = z[torch.arange(5, -1, -1), 2:]
    # f(z1, z2) - f(z1, z2') does not depend on z1: the mixed second difference is 0.
    a = dec(z) - dec(z_swap)
    z_other = z.clone()
    z_other[:, :2] = torch.randn(6, 2)
    z_other_swap = z_other.clone()
    z_other_swap[:, 2:] = z_swap[:, 2:]
    b = dec(z_other) - dec(z_other_swap)
    assert torch.allclose(a, b, atol=1e-5)


def test_monolithic_decoder_is_not_additive():
    torch.manual_seed(0)
    dec = make_decoder("monolithic", 2, 2, 16, width=32, depth=2).eval()
    z = torch.randn(6, 4)
    z2 = z.clone()
    z2[:, 2:] += 1
    z3 = z.clone()
    z3[:, :2] += 1
    z4 = z3.clone()
    z4[:, 2:] += 1
    assert not torch.allclose(dec(z) - dec(z2), dec(z3) - dec(z4), atol=1e-4)


def test_match_params_widens_the_monolithic_decoder():
    add = count_parameters(make_decoder("additive", 1, 2, 32, width=64, depth=3))
    mono = count_parameters(make_decoder("monolithic", 1, 2, 32, width=64, depth=3))
    matched = count_parameters(make_decoder("monolithic", 1, 2, 32, width=64, depth=3, match_params=True))
    assert mono < add <= matched < add * 1.1


@pytest.mark.parametrize("size", [16, 32, 64])
def test_conv_encoder_shapes(size):
    enc = make_encoder("conv", 4, size)
    assert enc(torch.rand(3, 3, size, size)).shape == (3, 4)


def test_resnet_encoder_needs_torchvision_or_works():
    try:
        import torchvision  # noqa: F401
    except Exception:
        from additive import AdxError

        with pytest.raises(AdxError, match="pip install"):
            make_encoder("resnet18", 4, 64)
    else:
        assert make_encoder("resnet18", 4, 64)(torch.rand(2, 3, 64, 64)).shape == (2, 4)
