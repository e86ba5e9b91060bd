"""Operations on axis-aligned xyxy boxes, widths x2 - x1 (no + 1): areas, intersections, IoU, GIoU.

One implementation in torch; numpy arrays go through it in float64 and come back as numpy.
"""

from __future__ import annotations

import numpy as np
import torch


def box_intersection(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Intersection areas (N, M) of boxes a (N, 4) and b (M, 4), and their areas (N,) and (M,).

    Inverted sides count as 0 (an inverted box has no area)."""
    inter_w = (torch.minimum(a[:, None, 2], b[None, :, 2]) - torch.maximum(a[:, None, 0], b[None, :, 0])).clamp(min=0)
    inter_h = (torch.minimum(a[:, None, 3], b[None, :, 3]) - torch.maximum(a[:, None, 1], b[None, :, 1])).clamp(min=0)
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)  # (N,)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)  # (M,)
    return inter_w * inter_h, area_a, area_b


def box_iou(a, b):
    """IoU matrix (N, M) of boxes a (N, 4) and b (M, 4): torch tensors, or numpy arrays (then float64 numpy).

    A pair whose union is empty has IoU 0.
    """
    if not isinstance(a, torch.Tensor):
        as_tensor = lambda x: torch.as_tensor(np.asarray(x, np.float64).reshape(-1, 4))  # noqa: E731
        return box_iou(as_tensor(a), as_tensor(b)).numpy()
    inter, area_a, area_b = box_intersection(a, b)
    union = area_a[:, None] + area_b[None, :] - inter  # (N, M)
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(inter.dtype).tiny), torch.zeros_like(inter))


def box_coverage(a, b):
    """The share (N, M) of each box of a (N, 4) covered by each box of b (M, 4) (0 for a box of no area);
    numpy or torch as :func:`box_iou`."""
    if not isinstance(a, torch.Tensor):
        as_tensor = lambda x: torch.as_tensor(np.asarray(x, np.float64).reshape(-1, 4))  # noqa: E731
        return box_coverage(as_tensor(a), as_tensor(b)).numpy()
    inter, area_a, _ = box_intersection(a, b)
    area = area_a[:, None].expand_as(inter)
    return torch.where(area > 0, inter / area.clamp(min=torch.finfo(inter.dtype).tiny), torch.zeros_like(inter))


def paired_giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Generalised IoU of xyxy boxes a (..., 4) and b (..., 4) paired element by element -> (...,) in [-1, 1].

    GIoU = IoU - (C - U) / C with C the smallest box enclosing both and U their union (Rezatofighi et al., 2019).
    Inverted sides count as 0 (an inverted box has no area); a pair with an empty enclosing box has GIoU 0.
    """
    tiny = torch.finfo(a.dtype).tiny
    area_a = (a[..., 2:] - a[..., :2]).clamp(min=0).prod(-1)                             # (...,)
    area_b = (b[..., 2:] - b[..., :2]).clamp(min=0).prod(-1)
    inter = (torch.minimum(a[..., 2:], b[..., 2:]) - torch.maximum(a[..., :2], b[..., :2])).clamp(min=0).prod(-1)
    union = area_a + area_b - inter
    hull = (torch.maximum(a[..., 2:], b[..., 2:]) - torch.minimum(a[..., :2], b[..., :2])).clamp(min=0).prod(-1)
    iou = torch.where(union > 0, inter / union.clamp(min=tiny), torch.zeros_like(inter))
    return torch.where(hull > 0, iou - (hull - union) / hull.clamp(min=tiny), torch.zeros_like(inter))
