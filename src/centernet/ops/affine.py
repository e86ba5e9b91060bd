"""Per-image 2x3 affine maps applied to boxes and points (output map -> original pixels).

Shapes: B batch, K boxes or points per image.
"""

from __future__ import annotations

import torch


def transform_boxes(boxes: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """Apply per-image 2x3 affine maps (B, 2, 3) to boxes (B, K, 4) xyxy.

    Both corners are mapped, then re-ordered so x1 <= x2 and y1 <= y2 (the maps here
    have no rotation, so the box stays axis-aligned).
    """
    affine = affine.to(boxes.dtype)
    corners = boxes.reshape(boxes.shape[0], -1, 2)  # (B, 2K, 2)
    mapped = corners @ affine[:, :, :2].transpose(1, 2) + affine[:, None, :, 2]  # (B, 2K, 2)
    mapped = mapped.reshape(boxes.shape)
    x1 = torch.minimum(mapped[..., 0], mapped[..., 2])
    x2 = torch.maximum(mapped[..., 0], mapped[..., 2])
    y1 = torch.minimum(mapped[..., 1], mapped[..., 3])
    y2 = torch.maximum(mapped[..., 1], mapped[..., 3])
    return torch.stack([x1, y1, x2, y2], dim=-1)


def transform_points(points: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """Apply per-image 2x3 affine maps (B, 2, 3) to points (B, ..., 2)."""
    b = points.shape[0]
    affine = affine.to(points.dtype)
    flat = points.reshape(b, -1, 2)  # (B, N, 2)
    mapped = flat @ affine[:, :, :2].transpose(1, 2) + affine[:, None, :, 2]
    return mapped.reshape(points.shape)
