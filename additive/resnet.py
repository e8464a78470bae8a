"""ResNet-18 (He et al., 2016) in plain torch: the paper's encoder backbone, random init.

The paper's encoder is torchvision's ``resnet18(weights=None)`` with its classifier removed
(docs/PROTOCOL.md, "The models"). This module builds the same network without torchvision, so the
paper presets run wherever torch does (torchvision wheels must match the torch build
exactly, and on a CPU-only install they often do not). It matches torchvision's module
names (saved weights load either way), its layer order and its initialisation, including
the classifier that torchvision initialises before it is removed: from the same torch seed
the two draw the same weights (``tests/additive/test_resnet.py`` checks it where
torchvision imports).
"""

from __future__ import annotations

import torch
from torch import nn

FEATURES = 512  # width of the pooled features, the input of the encoder's head


def _conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and a residual connection (a 1x1 projection
    when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = _conv3x3(c_in, c_out, stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(c_out, c_out)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def _stage(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out))


class ResNet18(nn.Module):
    """ResNet-18 up to its pooled 512 features (``forward`` returns ``(B, 512)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = _stage(64, 64, stride=1)
        self.layer2 = _stage(64, 128, stride=2)
        self.layer3 = _stage(128, 256, stride=2)
        self.layer4 = _stage(256, FEATURES, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        # torchvision builds (and so draws the weights of) a 1000-class classifier here,
        # before its initialisation loop; the paper's encoder removes it. Drawing it too keeps
        # the random stream, and so every weight after it, equal to torchvision's.
        nn.Linear(FEATURES, 1000)
        self.fc: nn.Module = nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))
