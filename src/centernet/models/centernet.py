"""CenterNet = backbone -> neck -> heads, and the registered architectures.

The model knows nothing about detection: it maps an image batch to a dict of named
stride-4 maps, one per head. What the heads mean (and their targets, losses and
decoding) belongs to a task in :mod:`centernet.tasks`.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from ..config import OUTPUT_STRIDE
from .registry import register_model
from .backbones.resnet import resnet
from .heads import Head, is_heatmap_head
from .necks import ShortcutUpsampleNeck, UpsampleNeck



class CenterNetModel(nn.Module):
    """(B, 3, H, W) normalised image -> {head name: (B, channels, H/4, W/4) raw logits}.

    H and W must be multiples of 32.
    """

    def __init__(self, backbone: nn.Module, neck: nn.Module, heads: dict[str, int], head_conv: int = 64) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.heads = nn.ModuleDict(
            {name: Head(neck.out_channels, ch, head_conv, is_heatmap_head(name)) for name, ch in heads.items()}
        )
        self.head_channels = dict(heads)
        self.stride = OUTPUT_STRIDE
        self.size_divisor = 32  # input H and W must be multiples of this
        self.head_conv = head_conv

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.neck(self.backbone(images))  # (B, 64, H/4, W/4)
        return {name: head(features) for name, head in self.heads.items()}


def _resnet_centernet(
    depth: int,
    heads: dict[str, int],
    head_conv: int = 64,
    pretrained: str | Path | None = None,
    deformable: bool = False,
    shortcut: bool = False,
):
    backbone = resnet(depth, return_stages=shortcut)
    if pretrained is not None:
        backbone.load_pretrained(pretrained)
    if shortcut:
        neck: nn.Module = ShortcutUpsampleNeck(backbone.stage_channels, (256, 128, 64))
    else:
        neck = UpsampleNeck(backbone.out_channels, (256, 128, 64), deformable=deformable)
    return CenterNetModel(backbone, neck, heads, head_conv)


@register_model("resnet18")
def resnet18(heads: dict[str, int], **kwargs) -> CenterNetModel:
    return _resnet_centernet(18, heads, **kwargs)


@register_model("resnet34")
def resnet34(heads: dict[str, int], **kwargs) -> CenterNetModel:
    return _resnet_centernet(34, heads, **kwargs)


@register_model("resnet50")
def resnet50(heads: dict[str, int], **kwargs) -> CenterNetModel:
    return _resnet_centernet(50, heads, **kwargs)


@register_model("resnet101")
def resnet101(heads: dict[str, int], **kwargs) -> CenterNetModel:
    return _resnet_centernet(101, heads, **kwargs)


@register_model("resnet18_dcn")
def resnet18_dcn(heads: dict[str, int], **kwargs) -> CenterNetModel:
    """The paper's "ResNet-18": deformable 3x3 convs in the upsampling neck."""
    return _resnet_centernet(18, heads, deformable=True, **kwargs)


@register_model("resnet101_dcn")
def resnet101_dcn(heads: dict[str, int], **kwargs) -> CenterNetModel:
    """The paper's "ResNet-101": deformable 3x3 convs in the upsampling neck."""
    return _resnet_centernet(101, heads, deformable=True, **kwargs)


@register_model("resnet18_shortcut")
def resnet18_shortcut(heads: dict[str, int], **kwargs) -> CenterNetModel:
    """ResNet-18 with a shortcut from the backbone into each upsampling stage (not in the paper)."""
    return _resnet_centernet(18, heads, shortcut=True, **kwargs)
