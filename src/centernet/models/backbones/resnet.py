"""ResNet-18/34/50/101 (He et al. 2016) written here; torchvision cannot load on these machines.

Parameter names follow torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1`` ...), so an
ImageNet checkpoint in torchvision's format loads with :meth:`ResNet.load_pretrained`.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from ..weights import load_local_weights


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_channels, channels * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)  # stride on the 3x3 ("v1.5")
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, channels * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_channels, channels * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _downsample(in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class ResNet(nn.Module):
    """ResNet trunk without the classifier: (B, 3, H, W) -> (B, out_channels, H/32, W/32).

    With ``return_stages=True`` it returns the output of all four stages (strides 4, 8, 16, 32), for a neck
    with shortcuts.
    """

    def __init__(
        self, block: type[BasicBlock] | type[Bottleneck], layers: list[int], return_stages: bool = False
    ) -> None:
        super().__init__()
        self.return_stages = return_stages
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_channels = 64
        stages = []
        for i, (channels, blocks) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 1 if i == 0 else 2
            stage = [block(in_channels, channels, stride)]
            in_channels = channels * block.expansion
            stage += [block(in_channels, channels) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.out_channels = in_channels
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # Zero-init the last BN of each residual branch: every block starts as identity,
        # which makes training from scratch markedly more stable.
        for m in self.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)
            elif isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        stages = self.forward_stages(x)
        return stages if self.return_stages else stages[-1]  # last: (B, out_channels, H/32, W/32)

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of each of the four stages: strides 4, 8, 16 and 32."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4)
        c2 = self.layer1(x)  # (B, 64 e, H/4, W/4), e = the block's expansion
        c3 = self.layer2(c2)  # (B, 128 e, H/8, W/8)
        c4 = self.layer3(c3)  # (B, 256 e, H/16, W/16)
        c5 = self.layer4(c4)  # (B, 512 e, H/32, W/32)
        return [c2, c3, c4, c5]

    @property
    def stage_channels(self) -> tuple[int, int, int, int]:
        e = self.layer1[0].expansion
        return (64 * e, 128 * e, 256 * e, 512 * e)

    def load_pretrained(self, path: str | Path) -> None:
        """Load ImageNet weights in torchvision's layout from a local file (the ``fc.*`` keys are ignored)."""
        load_local_weights(self, path, "this ResNet backbone", ignore=lambda name: name.startswith("fc."))

RESNET_LAYERS: dict[int, tuple[type[BasicBlock] | type[Bottleneck], list[int]]] = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
}


def resnet(depth: int, return_stages: bool = False) -> ResNet:
    block, layers = RESNET_LAYERS[depth]
    return ResNet(block, layers, return_stages)
