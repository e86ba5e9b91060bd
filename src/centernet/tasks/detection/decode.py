"""Detection decode: boxes read at the heatmap's peaks, in output-map coordinates (stride 4).

Batched tensor code with no per-image or per-object Python loop, so it runs inside an
exported graph. Shapes: B batch, C classes, h, w output size, K detections per image.
"""

from __future__ import annotations

import torch

from ...ops.peaks import find_peaks, gather_at_index


def decode_detections(outputs: dict[str, torch.Tensor], k: int = 100, fixed_k: bool = False) -> dict[str, torch.Tensor]:
    """Detections in output-map coordinates (stride 4).

    outputs: heatmap (B, C, h, w) logits (any float dtype), size (B, 2, h, w), offset (B, 2, h, w).
    Returns boxes (B, K, 4) xyxy, scores (B, K) float32, labels (B, K) int64, sorted by score.
    The same detections as ``topk_peaks(heatmap_peaks(heatmap), k)`` (see ``ops.peaks.top_peaks_from_logits``);
    ``fixed_k``: exactly K rows at any map size, as an exported graph needs (``ops.peaks.find_peaks``).
    """
    scores, labels, pixel, xs, ys = find_peaks(outputs["heatmap"], k, fixed_k)
    boxes = boxes_at_peaks(outputs, pixel, xs, ys)  # (B, K, 4)
    return {"boxes": boxes, "scores": scores, "labels": labels}


def boxes_at_peaks(
    outputs: dict[str, torch.Tensor], pixel: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor
) -> torch.Tensor:
    """Boxes (B, K, 4) xyxy in output-map coordinates: peak (xs, ys) + offset +- size / 2 read at ``pixel`` (B, K)."""
    offset = gather_at_index(outputs["offset"].float(), pixel)  # (B, K, 2)
    size = gather_at_index(outputs["size"].float(), pixel)      # (B, K, 2)
    cx, cy = xs + offset[..., 0], ys + offset[..., 1]
    half_w, half_h = size[..., 0] / 2, size[..., 1] / 2
    return torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=-1)
