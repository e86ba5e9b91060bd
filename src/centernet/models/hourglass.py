"""Hourglass-104 CenterNet: two stacked hourglasses with intermediate supervision.

The network of CornerNet (Law & Deng 2018) as CenterNet uses it: a stride-4 stem, then two
hourglasses (each five stride-2 levels down and back up, with a residual skip at every
level). Between the stacks the first stack's features are merged back into the stem's.
Each stack has its own prediction heads; in training every stack's outputs are returned and
supervised, at inference only the last stack's.

Shapes: B batch, H and W the input size (multiples of 128), h = H/4, w = W/4.

Parameter names follow the original's (xingyizhou/CenterNet, ``large_hourglass.py``), so
its checkpoints map one to one. Everything but the heads has exactly the original's name:

=====================================  =====================================
ours                                   original
=====================================  =====================================
``pre.*``, ``kps.*``, ``cnvs.*``       the same
``inters.*``, ``inters_.*``, ``cnvs_.*``  the same
``heads.heatmap.<stack>.*``            ``hm.<stack>.*``
``heads.size.<stack>.*``               ``wh.<stack>.*``
``heads.offset.<stack>.*``             ``reg.<stack>.*``
=====================================  =====================================

e.g. ``heads.heatmap.1.0.conv.weight`` <- ``hm.1.0.conv.weight``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn

from .weights import load_local_weights
from ..config import OUTPUT_STRIDE
from .registry import register_model
from .heads import HEATMAP_PRIOR, is_heatmap_head

# Hourglass-104: channels at each of the six resolutions (stride 4, 8, ..., 128) and the
# number of residual blocks there (the innermost, stride 128, has four).
HOURGLASS104_DIMS = (256, 256, 384, 384, 384, 512)
HOURGLASS104_BLOCKS = (2, 2, 2, 2, 2, 4)

__all__ = [
    "ConvBnReLU",
    "Residual",
    "HourglassModule",
    "HourglassCenterNet",
    "HOURGLASS104_DIMS",
    "HOURGLASS104_BLOCKS",
    "hourglass104",
]

# Module and attribute names below (conv/bn, conv1/bn1/conv2/bn2/skip, up1/low1/low2/low3,
# pre/kps/cnvs/inters/inters_/cnvs_) are the original's, so that its checkpoints load.


class ConvBnReLU(nn.Module):
    """k x k conv (+ BatchNorm) + ReLU: (B, in, h, w) -> (B, out, h / stride, w / stride).

    Without BatchNorm the conv has a bias (the heads' first layer).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, batch_norm: bool = True
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, (kernel - 1) // 2, bias=not batch_norm)
        self.bn = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Residual(nn.Module):
    """Two 3x3 conv-BN + a (1x1 conv-BN when the shape changes) skip: (B, in, h, w) -> (B, out, h/s, w/s)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.skip = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        else:
            self.skip = nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu(branch + self.skip(x))


def _residuals(in_channels: int, out_channels: int, blocks: int, stride: int = 1) -> nn.Sequential:
    """``blocks`` residuals; the first changes channels (and resolution, by ``stride``)."""
    layers = [Residual(in_channels, out_channels, stride)]
    layers += [Residual(out_channels, out_channels) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def _residuals_ending_in(in_channels: int, out_channels: int, blocks: int) -> nn.Sequential:
    """``blocks`` residuals; the last changes channels (the way back up)."""
    layers = [Residual(in_channels, in_channels) for _ in range(blocks - 1)]
    layers.append(Residual(in_channels, out_channels))
    return nn.Sequential(*layers)


class HourglassModule(nn.Module):
    """One hourglass level, recursing inwards: (B, dims[0], h, w) -> (B, dims[0], h, w).

    ``up1`` keeps the resolution; ``low1`` halves it (stride-2 residual) to dims[1]; ``low2``
    is the next level (or, innermost, plain residuals); ``low3`` returns to dims[0], and the
    result is upsampled (nearest) and added to ``up1``. h and w must be multiples of
    2 ** (len(dims) - 1).
    """

    def __init__(self, dims: Sequence[int], blocks: Sequence[int]) -> None:
        super().__init__()
        outer, inner = dims[0], dims[1]
        self.up1 = _residuals(outer, outer, blocks[0])
        self.low1 = _residuals(outer, inner, blocks[0], stride=2)
        if len(dims) > 2:
            self.low2: nn.Module = HourglassModule(dims[1:], blocks[1:])
        else:
            self.low2 = _residuals(inner, inner, blocks[1])
        self.low3 = _residuals_ending_in(inner, outer, blocks[0])
        self.up2 = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.up1(x)  # (B, dims[0], h, w)
        low = self.low3(self.low2(self.low1(x)))  # (B, dims[0], h/2, w/2)
        return skip + self.up2(low)


def _head(in_channels: int, hidden: int, out_channels: int, heatmap: bool) -> nn.Sequential:
    """3x3 conv (bias, no BN) + ReLU + 1x1 conv: (B, in, h, w) -> (B, out, h, w); the original's init."""
    head = nn.Sequential(ConvBnReLU(in_channels, hidden, 3, batch_norm=False), nn.Conv2d(hidden, out_channels, 1))
    if heatmap:
        # bias = -log((1 - p) / p) = -2.19 for p = 0.1 (the original fills -2.19 on every stack).
        nn.init.constant_(head[1].bias, -math.log((1 - HEATMAP_PRIOR) / HEATMAP_PRIOR))
    return head


class HourglassCenterNet(nn.Module):
    """(B, 3, H, W) normalised image -> stride-4 head logits, H and W multiples of ``size_divisor``.

    * eval: ``{head name: (B, channels, h, w)}`` of the last stack;
    * training: a list with one such dict per stack (intermediate supervision).

    Args:
        heads: head name -> output channels; ``heatmap`` / ``*_heatmap`` heads start at the prior bias.
        head_conv: hidden channels of each head (the original: 256, the hourglass width).
        num_stacks: hourglasses in sequence (the original: 2).
        dims, blocks: channels and residual blocks per hourglass level, outermost first.
        feature_channels: channels of the map the heads see (the original's ``cnv_dim``).
    """

    def __init__(
        self,
        heads: dict[str, int],
        head_conv: int = 256,
        num_stacks: int = 2,
        dims: Sequence[int] = HOURGLASS104_DIMS,
        blocks: Sequence[int] = HOURGLASS104_BLOCKS,
        feature_channels: int = 256,
    ) -> None:
        super().__init__()
        if len(dims) != len(blocks) or len(dims) < 2:
            raise ValueError(f"dims {tuple(dims)} and blocks {tuple(blocks)} need the same length, at least 2")
        width = dims[0]
        self.num_stacks = num_stacks
        self.stride = OUTPUT_STRIDE
        self.size_divisor = OUTPUT_STRIDE * 2 ** (len(dims) - 1)  # 128 for Hourglass-104
        self.head_channels = dict(heads)

        # Stem: (B, 3, H, W) -> (B, 128, H/2, W/2) -> (B, width, H/4, W/4).
        self.pre = nn.Sequential(ConvBnReLU(3, 128, 7, stride=2), Residual(128, width, stride=2))
        self.kps = nn.ModuleList([HourglassModule(dims, blocks) for _ in range(num_stacks)])
        self.cnvs = nn.ModuleList([ConvBnReLU(width, feature_channels, 3) for _ in range(num_stacks)])
        # Between stacks: next input = inters(relu(inters_(input) + cnvs_(features))).
        self.inters = nn.ModuleList([Residual(width, width) for _ in range(num_stacks - 1)])
        self.inters_ = nn.ModuleList([_conv1x1_bn(width, width) for _ in range(num_stacks - 1)])
        self.cnvs_ = nn.ModuleList([_conv1x1_bn(feature_channels, width) for _ in range(num_stacks - 1)])
        self.relu = nn.ReLU(inplace=True)
        self.head_conv = head_conv
        self.heads = nn.ModuleDict(
            {
                name: nn.ModuleList(
                    [_head(feature_channels, head_conv, ch, is_heatmap_head(name)) for _ in range(num_stacks)]
                )
                for name, ch in heads.items()
            }
        )

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor] | list[dict[str, torch.Tensor]]:
        height, width = images.shape[-2:]
        if height % self.size_divisor or width % self.size_divisor:
            raise ValueError(
                f"Hourglass input height and width must be multiples of {self.size_divisor}; got {height}x{width}"
            )
        x = self.pre(images)  # (B, 256, h, w)
        outputs = []
        for stack in range(self.num_stacks):
            features = self.cnvs[stack](self.kps[stack](x))  # (B, 256, h, w)
            last = stack == self.num_stacks - 1
            if self.training or last:
                outputs.append({name: heads[stack](features) for name, heads in self.heads.items()})
            if not last:
                x = self.relu(self.inters_[stack](x) + self.cnvs_[stack](features))
                x = self.inters[stack](x)  # (B, 256, h, w): the next stack's input
        return outputs if self.training else outputs[-1]

    def load_pretrained(self, path: str | Path) -> None:
        """Load the hourglass body (every name but the heads) from a local file with the original's names.

        ``{'state_dict': ...}`` or a bare state dict; ``module.`` prefixes are stripped and head
        weights (or any name outside the body) are ignored, so a detection checkpoint of another
        class count initialises a new model.
        """
        body = ("pre.", "kps.", "cnvs.", "inters.", "inters_.", "cnvs_.")
        load_local_weights(self, path, "the hourglass", ignore=lambda name: not name.startswith(body))


def _conv1x1_bn(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))


@register_model("hourglass104")
def hourglass104(
    heads: dict[str, int], head_conv: int = 256, pretrained: str | Path | None = None
) -> HourglassCenterNet:
    """The paper's Hourglass-104 (about 191M parameters with 80 classes); inputs in multiples of 128."""
    model = HourglassCenterNet(heads, head_conv)
    if pretrained is not None:
        model.load_pretrained(pretrained)
    return model
