"""Reusable layers (deformable convolution)."""

from .dcn import ModulatedDeformConv2d, deform_conv2d

__all__ = ["ModulatedDeformConv2d", "deform_conv2d"]
