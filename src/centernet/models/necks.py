"""The upsampling neck of the paper's ResNet model: stride 32 -> stride 4 in three stages."""

from __future__ import annotations

import math
from functools import partial
from typing import Callable

import torch
import torch.nn as nn

from .layers.dcn import ModulatedDeformConv2d


def bilinear_init_(deconv: nn.ConvTranspose2d) -> None:
    """Make a transposed conv start as bilinear upsampling, channel by channel.

    The original copies one bilinear kernel into every (out, in) slot of channel 0 and
    then into every output channel; here each output channel c reads input channel c
    with the bilinear kernel and everything else starts at zero, which is exactly
    bilinear upsampling when in == out channels.
    """
    w = deconv.weight  # (in, out, k, k)
    k = w.shape[-1]
    factor = math.ceil(k / 2)
    center = (2 * factor - 1 - factor % 2) / (2.0 * factor)
    og = torch.arange(k, dtype=torch.float32)
    filt_1d = 1 - torch.abs(og / factor - center)
    kernel = filt_1d[:, None] * filt_1d[None, :]  # (k, k)
    with torch.no_grad():
        w.zero_()
        for c in range(min(w.shape[0], w.shape[1])):
            w[c, c] = kernel


def upsample_stage(make_conv: Callable[[], nn.Module], channels: int) -> list[nn.Module]:
    """One neck stage: ``make_conv()`` (3x3, -> channels) + BN + ReLU, then a 4x4 stride-2 transposed conv
    (bilinear init) + BN + ReLU. The transposed conv is built first, so a seed gives the same weights as before
    this helper existed."""
    up = nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1, bias=False)
    bilinear_init_(up)
    conv = make_conv()
    return [conv, nn.BatchNorm2d(channels), nn.ReLU(inplace=True), up, nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]


class UpsampleNeck(nn.Module):
    """Three [3x3 conv + BN + ReLU, 4x4 stride-2 transposed conv (bilinear init) + BN + ReLU] stages.

    (B, in_channels, H/32, W/32) -> (B, channels[-1], H/4, W/4)

    ``deformable=True`` makes each 3x3 conv a modulated deformable conv (with a bias, as
    the original's ``DCN``): the paper's "ResNet-DCN" neck. The layer order is the
    original's ``deconv_layers``, so ``layers.N`` is its ``deconv_layers.N``.
    """

    def __init__(self, in_channels: int, channels: tuple[int, ...] = (256, 128, 64), deformable: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        conv_type = partial(ModulatedDeformConv2d, bias=True) if deformable else partial(nn.Conv2d, bias=False)
        for out in channels:
            layers += upsample_stage(partial(conv_type, in_channels, out, 3, padding=1), out)
            in_channels = out
        self.layers = nn.Sequential(*layers)
        self.out_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ShortcutUpsampleNeck(nn.Module):
    """The upsampling neck with a shortcut from the backbone at each output stride (16, 8, 4).

    [c2, c3, c4, c5] (strides 4..32) -> (B, channels[-1], H/4, W/4). After each upsampling stage
    the backbone's feature map of the same stride, through a 3x3 conv + BN + ReLU, is added:
    the fine detail that stride 32 has lost reaches the heads directly (as TTFNet's shortcuts
    and the skip connections of DLA's aggregation). Without the shortcuts it is
    :class:`UpsampleNeck`.
    """

    def __init__(self, stage_channels: tuple[int, ...], channels: tuple[int, ...] = (256, 128, 64)) -> None:
        super().__init__()
        in_channels = stage_channels[-1]
        self.stages = nn.ModuleList()
        self.shortcuts = nn.ModuleList()
        for out, skip in zip(channels, reversed(stage_channels[:-1])):
            conv = partial(nn.Conv2d, in_channels, out, 3, padding=1, bias=False)
            self.stages.append(nn.Sequential(*upsample_stage(conv, out)))
            self.shortcuts.append(nn.Sequential(
                nn.Conv2d(skip, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True),
            ))
            in_channels = out
        self.out_channels = in_channels

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]  # (B, c5, H/32, W/32)
        for stage, shortcut, skip in zip(self.stages, self.shortcuts, reversed(features[:-1])):
            x = stage(x) + shortcut(skip)  # stride halves: 16, then 8, then 4
        return x
