"""Prediction heads: one small conv branch per output on the shared stride-4 feature map."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn

from ..errors import CenterNetError

HEATMAP_PRIOR = 0.1  # initial foreground probability of every heatmap pixel


def is_heatmap_head(name: str) -> bool:
    """Heads named ``heatmap`` or ``*_heatmap`` are sigmoid class maps and get the prior bias."""
    return name == "heatmap" or name.endswith("_heatmap")


class Head(nn.Module):
    """3x3 conv (in -> head_conv) + ReLU + 1x1 conv (head_conv -> out): (B, in, h, w) -> (B, out, h, w)."""

    def __init__(self, in_channels: int, out_channels: int, head_conv: int, heatmap: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, head_conv, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.out = nn.Conv2d(head_conv, out_channels, 1)
        if heatmap:
            # bias = -log((1 - p) / p) = -2.19 for p = 0.1: the focal loss starts small.
            nn.init.constant_(self.out.bias, -math.log((1 - HEATMAP_PRIOR) / HEATMAP_PRIOR))
        else:
            nn.init.normal_(self.conv.weight, std=0.001)
            nn.init.zeros_(self.conv.bias)
            nn.init.normal_(self.out.weight, std=0.001)
            nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.relu(self.conv(x)))


def set_head_biases(model: torch.nn.Module, biases: dict[str, float | Sequence[float]]) -> None:
    """Fill the output bias of each named head (every stack's, for Hourglass) with a constant, or with one value
    per output channel.

    A head's output convolutions are those under ``heads.<name>`` with the head's channel count.
    """
    for name, value in biases.items():
        found = False
        channels = model.head_channels[name]
        for module_name, module in model.named_modules():
            if (module_name.startswith(f"heads.{name}.") and isinstance(module, torch.nn.Conv2d)
                    and module.out_channels == channels and module.bias is not None):
                with torch.no_grad():
                    module.bias.copy_(torch.as_tensor(value, dtype=module.bias.dtype).expand_as(module.bias))
                found = True
        if not found:
            raise CenterNetError(f"the model has no head {name!r} to initialise")
