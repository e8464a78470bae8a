"""The project's ResNet-18 against torchvision's: the same parameters, module names and
initialisation. The comparison with torchvision runs where torchvision imports (a GPU
node, or an environment whose torchvision matches its torch); the structure checks run
everywhere."""

from __future__ import annotations

import pytest
import torch

from additive.resnet import ResNet18

# ResNet-18 without its 1000-class classifier: 11,689,512 parameters in all, of which the
# classifier holds 512 x 1000 + 1000 (He et al., 2016; torchvision's model card).
RESNET18_PARAMETERS = 11_689_512 - (512 * 1000 + 1000)


def test_resnet18_has_the_parameters_and_names_of_resnet18():
    net = ResNet18()
    assert sum(p.numel() for p in net.parameters()) == RESNET18_PARAMETERS
    names = list(net.state_dict())
    assert names[:2] == ["conv1.weight", "bn1.weight"]
    assert "layer2.0.downsample.0.weight" in names and "layer1.0.downsample.0.weight" not in names
    assert names[-1] == "layer4.1.bn2.num_batches_tracked"


@pytest.mark.parametrize("size", [32, 64])
def test_resnet18_pools_to_512_features(size):
    assert ResNet18()(torch.rand(2, 3, size, size)).shape == (2, 512)


def test_resnet18_initialises_as_torchvision_does():
    models = pytest.importorskip("torchvision.models", reason="torchvision is not installed beside this torch")
    torch.manual_seed(7)
    theirs = models.resnet18(weights=None)
    theirs.fc = torch.nn.Identity()
    after_theirs = torch.rand(3)  # what the encoder's head draws next
    torch.manual_seed(7)
    ours = ResNet18()
    after_ours = torch.rand(3)
    assert torch.equal(after_theirs, after_ours)
    a, b = theirs.state_dict(), ours.state_dict()
    assert list(a) == list(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    x = torch.rand(2, 3, 64, 64)
    assert torch.equal(theirs.eval()(x), ours.eval()(x))
