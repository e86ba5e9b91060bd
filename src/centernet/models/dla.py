"""DLA-34 CenterNet: the DLA trunk, an iterative deep aggregation neck, and the heads.

The neck merges the trunk's levels 2-5 (strides 4-32) back down to stride 4 in two stages:

* ``dla_up`` (DLAUp) aggregates level by level from the coarsest: step 0 fuses level 5
  into level 4, step 1 re-fuses the result and level 4 into level 3, step 2 into level 2,
  giving one map per stride 4, 8, 16 (and level 5 untouched);
* ``ida_up`` (IDAUp) fuses those stride 4, 8, 16 maps into one (B, 64, H/4, W/4) map.

Each fusion (an IDAUp step) projects the coarser map to the finer map's channels
(``proj``), upsamples it with a depthwise transposed conv started as bilinear upsampling
(``up``), adds the finer map and mixes the sum (``node``). ``proj`` and ``node`` are 3x3
deformable convs + BN + ReLU (``dla34``) or plain 3x3 convs (``dla34_nodcn``).

Module names follow the original's ``DLASeg`` (``dla_up.ida_0.proj_1.conv``, ``.actf``,
``up_1``, ``node_1`` ...) so that its checkpoints map by prefix alone: our ``backbone.*``
is its ``base.*``, ``neck.dla_up.*`` its ``dla_up.*`` and ``neck.ida_up.*`` its ``ida_up.*``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn

from .registry import register_model
from .backbones.dla import dla34 as dla34_backbone
from .centernet import CenterNetModel
from .layers.dcn import ModulatedDeformConv2d
from .necks import bilinear_init_

FIRST_LEVEL = 2  # the neck starts at level 2, stride 4 = the output stride
LAST_LEVEL = 5  # the final fusion takes levels FIRST_LEVEL .. LAST_LEVEL - 1 (strides 4, 8, 16)
DLA_HEAD_CONV = 256


def depthwise_bilinear_init_(up: nn.ConvTranspose2d) -> None:
    """Start a depthwise transposed conv (weight (C, 1, k, k)) as bilinear upsampling of every channel."""
    k = up.weight.shape[-1]
    single = nn.ConvTranspose2d(1, 1, k, bias=False)
    bilinear_init_(single)  # single.weight[0, 0] = the (k, k) bilinear kernel
    with torch.no_grad():
        up.weight.copy_(single.weight.expand_as(up.weight))


def depthwise_upsample(channels: int, factor: int) -> nn.ConvTranspose2d:
    """(B, C, h, w) -> (B, C, h * factor, w * factor), one bilinear-initialised filter per channel."""
    up = nn.ConvTranspose2d(
        channels, channels, 2 * factor, stride=factor, padding=factor // 2, groups=channels, bias=False
    )
    depthwise_bilinear_init_(up)
    return up


class AggregationConv(nn.Module):
    """3x3 conv (deformable or plain, with a bias) + BN + ReLU: (B, in, h, w) -> (B, out, h, w).

    The original's ``DeformConv``: the conv is ``conv`` and the BN + ReLU ``actf``.
    """

    def __init__(self, in_channels: int, out_channels: int, deformable: bool = True) -> None:
        super().__init__()
        if deformable:
            self.conv: nn.Module = ModulatedDeformConv2d(in_channels, out_channels, 3, padding=1)
        else:
            self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.actf = nn.Sequential(nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.actf(self.conv(x))


class IDAUp(nn.Module):
    """Iterative deep aggregation: fuse progressively coarser maps into the first one, one at a time.

    Input ``[x_0, x_1, ..., x_n]``: x_0 is (B, out_channels, h, w); x_i is
    (B, in_channels[i - 1], h / up_factors[i - 1], w / up_factors[i - 1]). Output
    ``[y_0, ..., y_n]`` with y_0 = x_0 and y_i = node_i(up_i(proj_i(x_i)) + y_{i-1}),
    each (B, out_channels, h, w).
    """

    def __init__(
        self, out_channels: int, in_channels: Sequence[int], up_factors: Sequence[int], deformable: bool = True
    ) -> None:
        super().__init__()
        if len(in_channels) != len(up_factors):
            raise ValueError(f"{len(in_channels)} input channel counts but {len(up_factors)} upsampling factors")
        self.num_fused = len(in_channels)
        # Numbered from 1 as in the original (proj_1, up_1, node_1, ...).
        for i, (channels, factor) in enumerate(zip(in_channels, up_factors), start=1):
            self.add_module(f"proj_{i}", AggregationConv(channels, out_channels, deformable))
            self.add_module(f"up_{i}", depthwise_upsample(out_channels, factor))
            self.add_module(f"node_{i}", AggregationConv(out_channels, out_channels, deformable))

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        if len(features) != self.num_fused + 1:
            raise ValueError(f"IDAUp fuses {self.num_fused + 1} maps, got {len(features)}")
        fused = [features[0]]  # (B, out, h, w)
        for i in range(1, len(features)):
            proj, up, node = (getattr(self, f"{part}_{i}") for part in ("proj", "up", "node"))
            fused.append(node(up(proj(features[i])) + fused[-1]))  # (B, out, h, w)
        return fused


class DLAUp(nn.Module):
    """Aggregate levels coarsest first: [(B, c_j, H/s_j, W/s_j)] for j = 0..n -> the same shapes.

    ``channels`` are the channels of consecutive levels, each at twice the stride of the
    previous one. Step i (module ``ida_i``) fuses everything coarser than level
    n - 1 - i, as aggregated by step i - 1 (already at level n - i's stride and channels),
    into level n - 1 - i. Output j is the result of the step that ended at level j
    (the coarsest level is returned as it came in).
    """

    def __init__(self, channels: Sequence[int], deformable: bool = True) -> None:
        super().__init__()
        self.channels = list(channels)
        n = len(channels) - 1
        for i in range(n):
            target = n - 1 - i
            # After step i - 1, levels target+1 .. n all have level target+1's channels and stride.
            coarser = [channels[target + 1]] * (i + 1)
            self.add_module(f"ida_{i}", IDAUp(channels[target], coarser, [2] * (i + 1), deformable))

    def forward(self, levels: list[torch.Tensor]) -> list[torch.Tensor]:
        levels = list(levels)
        n = len(levels) - 1
        out = [levels[n]]
        for i in range(n):
            target = n - 1 - i
            levels[target:] = getattr(self, f"ida_{i}")(levels[target:])
            out.insert(0, levels[n])  # (B, channels[target], H/s_target, W/s_target)
        return out


class DLANeck(nn.Module):
    """DLA levels (strides 1..32) -> (B, 64, H/4, W/4).

    ``dla_up`` aggregates levels 2-5; ``ida_up`` fuses its three finest outputs (strides 4, 8, 16).
    """

    def __init__(self, level_channels: Sequence[int], deformable: bool = True) -> None:
        super().__init__()
        channels = list(level_channels[FIRST_LEVEL:])  # [64, 128, 256, 512]
        self.dla_up = DLAUp(channels, deformable)
        fused = LAST_LEVEL - FIRST_LEVEL  # 3 maps: strides 4, 8, 16
        self.ida_up = IDAUp(channels[0], channels[1:fused], [2**i for i in range(1, fused)], deformable)
        self.out_channels = channels[0]

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        aggregated = self.dla_up(levels[FIRST_LEVEL:])  # strides 4, 8, 16, 32
        return self.ida_up(aggregated[: LAST_LEVEL - FIRST_LEVEL])[-1]  # (B, 64, H/4, W/4)


def _dla34_centernet(
    heads: dict[str, int],
    deformable: bool,
    head_conv: int = DLA_HEAD_CONV,
    pretrained: str | Path | None = None,
) -> CenterNetModel:
    backbone = dla34_backbone()
    if pretrained is not None:
        backbone.load_pretrained(pretrained)
    neck = DLANeck(backbone.channels, deformable)
    return CenterNetModel(backbone, neck, heads, head_conv)


@register_model("dla34")
def dla34(heads: dict[str, int], **kwargs) -> CenterNetModel:
    """The paper's "DLA-34": deformable 3x3 convs in every aggregation node of the neck."""
    return _dla34_centernet(heads, deformable=True, **kwargs)


@register_model("dla34_nodcn")
def dla34_nodcn(heads: dict[str, int], **kwargs) -> CenterNetModel:
    """DLA-34 with plain 3x3 convs (with a bias, where the DCN had one) in the neck's aggregation nodes."""
    return _dla34_centernet(heads, deformable=False, **kwargs)
