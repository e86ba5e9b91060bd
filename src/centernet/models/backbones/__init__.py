"""Backbones: modules mapping an image (B, 3, H, W) to a feature map (B, C, H/32, W/32)."""

from .resnet import ResNet

__all__ = ["ResNet"]
