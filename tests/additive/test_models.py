"""One contract test run against every decoder and body."""

from __future__ import annotations

import pytest
import torch

from additive import AdditiveDecoder, make_decoder, make_encoder
from additive.models import BODIES, DECODERS, Body, count_parameters


@pytest.mark.parametrize("kind", DECODERS)
@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("block_size,n_blocks,size", [(1, 2, 16), (2, 2, 32), (2, 3, 16)])
def test_decoder_contract(kind, body, block_size, n_blocks, size):
    torch.manual_seed(0)
    dec = make_decoder(kind, block_size, n_blocks, size, Body(body, width=32, depth=2))
    z = torch.randn(5, block_size * n_blocks)
    out = dec(z)
    assert out.shape == (5, 3, size, size)
    out.sum().backward()
    assert all(p.grad is not None for p in dec.parameters() if p.requires_grad)


@pytest.mark.parametrize("body", BODIES)
def test_additive_decoder_is_a_sum_of_block_images(body):
    torch.manual_seed(0)
    dec = AdditiveDecoder(2, 2, 16, Body(body, width=32, depth=2)).eval()
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
    dec = make_decoder("monolithic", 2, 2, 16, Body(width=32, depth=2)).eval()
    z = torch.randn(6, 4)
    z2 = z.clone()
    z2[:, 2:] += 1
    z3 = z.clone()
    z3[:, :2] += 1
    z4 = z3.clone()
    z4[:, 2:] += 1
    assert not torch.allclose(dec(z) - dec(z2), dec(z3) - dec(z4), atol=1e-4)


def test_match_params_widens_the_monolithic_decoder():
    add = count_parameters(make_decoder("additive", 1, 2, 32, Body(width=64, depth=3)))
    mono = count_parameters(make_decoder("monolithic", 1, 2, 32, Body(width=64, depth=3)))
    matched = count_parameters(make_decoder("monolithic", 1, 2, 32, Body(width=64, depth=3), match_params=True))
    assert mono < add <= matched < add * 1.1


@pytest.mark.parametrize("size", [16, 32, 64])
def test_conv_encoder_shapes(size):
    enc = make_encoder("conv", 4, size)
    assert enc(torch.rand(3, 3, size, size)).shape == (3, 4)


def test_resnet_encoder_shapes_and_gradients():
    enc = make_encoder("resnet18", 4, 64, batch_norm=True, code_batch_norm=True)
    x = torch.rand(3, 3, 64, 64)
    code = enc(x)
    assert code.shape == (3, 4)
    code.pow(2).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())


def _kinds(module: torch.nn.Module) -> list[str]:
    return [type(m).__name__ for m in module.modules() if not isinstance(m, torch.nn.Sequential)]


@pytest.mark.parametrize("batch_norm,code_batch_norm", [(False, False), (True, False), (False, True), (True, True)])
def test_encoder_batch_norm_switches(batch_norm, code_batch_norm):
    enc = make_encoder("conv", 2, 32, depth=4, batch_norm=batch_norm, code_batch_norm=code_batch_norm)
    kinds = _kinds(enc)
    assert kinds.count("Conv2d") == 4
    assert kinds.count("BatchNorm2d") == (4 if batch_norm else 0)
    assert kinds.count("BatchNorm1d") == int(batch_norm) + int(code_batch_norm)
    assert (kinds[-1] == "BatchNorm1d") == code_batch_norm
    enc.train()
    x = torch.rand(4, 3, 32, 32)
    # Without BatchNorm on the code, an image's code does not depend on the rest of its batch.
    alone = enc(x[:2])[:1]
    together = enc(x)[:1]
    assert torch.allclose(alone, together, atol=1e-5) == (not batch_norm and not code_batch_norm)


def test_encoder_depth_is_checked():
    with pytest.raises(ValueError, match=r"`encoder_depth` must be in \[0, 5\] at image size 32, but got 6"):
        make_encoder("conv", 2, 32, depth=6)


@pytest.mark.parametrize("tail,last", [("paper", "LeakyReLU"), ("linear", "Linear")])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_decoder_mlp_tail(tail, last, batch_norm):
    dec = make_decoder("additive", 1, 2, 32, Body(width=16, depth=2, batch_norm=batch_norm, channels=8, mlp_tail=tail))
    mlp = dec.bodies[0].mlp
    assert type(mlp[-1]).__name__ == last
    assert _kinds(mlp).count("BatchNorm1d") == (2 + (tail == "paper")) * batch_norm
    assert _kinds(mlp).count("Linear") == 3
    assert dec.eval()(torch.rand(3, 2)).shape == (3, 3, 32, 32)
