"""Test-time augmentation building blocks: horizontal flip and multi-scale merging.

Pure tensor functions, as the original CenterNet's ``--flip_test`` and ``--test_scales``:

* flip: the model runs on a batch followed by its mirror (:func:`flip_images`); the two
  halves of its output maps are merged back into maps for the batch (:func:`merge_flip`),
  which :func:`centernet.decode.decode_detections` then decodes unchanged;
* scales: each scale's detections, mapped back to original-image pixels, are pooled per
  image and thinned by Gaussian soft-NMS per class (:func:`merge_detections`).

Shapes: B batch, C classes, ch channels of a head, h, w output size, K detections per image
per scale, N boxes, M boxes kept, D detections per image after merging.

Boxes are xyxy in continuous pixel coordinates, width ``x2 - x1`` with *no* ``+ 1``, as
everywhere else in this package (see :mod:`centernet.eval.voc`). The original's soft-NMS
adds 1 to widths and heights (a legacy of inclusive integer boxes), which gives slightly
larger IoUs, noticeably so only for boxes a few pixels wide.
"""

from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["flip_images", "merge_flip", "box_iou", "soft_nms_gaussian", "merge_detections"]


def flip_images(images: torch.Tensor) -> torch.Tensor:
    """The batch (B, 3, H, W) followed by its horizontal mirror -> (2B, 3, H, W)."""
    return torch.cat([images, images.flip(-1)], dim=0)


def merge_flip(
    outputs: dict[str, torch.Tensor],
    average: Sequence[str] = ("heatmap", "size"),
    eps: float = 1e-6,
) -> dict[str, torch.Tensor]:
    """Outputs of a model on ``flip_images(x)`` (every map (2B, ch, h, w)) -> outputs for ``x`` (B, ch, h, w).

    As the original's flip test, head by head:

    * a head named in ``average`` is averaged with its mirrored half flipped back,
      ``(first + flip(second)) / 2``. A head whose name ends in ``"heatmap"`` holds logits: it is
      averaged as probabilities, and the average is returned as **logits** again,
      ``logit(clamp(p, eps, 1 - eps))``, so ``decode_detections`` works on the result unchanged
      (probabilities below ``eps`` all become ``eps``, so they may decode as tied low-score
      peaks). Other averaged heads (``size``) are averaged as they are.
    * every other head (``offset`` by default) is taken from the un-flipped first half only. The
      sub-pixel offset is not mirror-invariant: a centre at ``i + dx`` mirrors to
      ``(w - 1 - i) + (1 - dx)``, so flipping the map back does not recover it.

    Averaging by flipping back is right only for maps whose channels do not change meaning
    under a mirror (class scores, box width and height). Pose (not implemented here): a joint
    heatmap flipped back also needs its left and right joint channels swapped, and per-joint
    x-displacements need the swap and a sign change; do not list such heads in ``average``
    until that is added.

    Heatmaps are averaged in float32; a head in ``average`` that is missing raises ``ValueError``.
    """
    missing = [name for name in average if name not in outputs]
    if missing:
        raise ValueError(f"merge_flip: heads {missing} are to be averaged but not among outputs {sorted(outputs)}")
    merged: dict[str, torch.Tensor] = {}
    for name, maps in outputs.items():
        if maps.shape[0] % 2:
            raise ValueError(f"merge_flip: head {name!r} has an odd batch {maps.shape[0]}; expected 2B from flip_images")
        b = maps.shape[0] // 2
        first, mirrored = maps[:b], maps[b:].flip(-1)  # (B, ch, h, w) each, both in x's orientation
        if name not in average:
            merged[name] = first
        elif name.endswith("heatmap"):
            probability = (torch.sigmoid(first.float()) + torch.sigmoid(mirrored.float())) / 2
            merged[name] = torch.logit(probability.clamp(eps, 1 - eps))
        else:
            merged[name] = (first + mirrored) / 2
    return merged


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU matrix (N, M) of xyxy boxes a (N, 4) and b (M, 4); widths are x2 - x1 (no + 1).

    Inverted sides count as 0; a pair whose union is empty has IoU 0. Same convention as the
    numpy ``centernet.eval.voc.box_iou``.
    """
    inter_w = (torch.minimum(a[:, None, 2], b[None, :, 2]) - torch.maximum(a[:, None, 0], b[None, :, 0])).clamp(min=0)
    inter_h = (torch.minimum(a[:, None, 3], b[None, :, 3]) - torch.maximum(a[:, None, 1], b[None, :, 1])).clamp(min=0)
    inter = inter_w * inter_h  # (N, M)
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)  # (N,)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)  # (M,)
    union = area_a[:, None] + area_b[None, :] - inter  # (N, M)
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(inter.dtype).tiny), torch.zeros_like(inter))


def soft_nms_gaussian(
    boxes: torch.Tensor,   # (N, 4) xyxy
    scores: torch.Tensor,  # (N,) finite
    labels: torch.Tensor,  # (N,) int
    sigma: float = 0.5,
    score_threshold: float = 0.001,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian soft-NMS, independently per class -> keep_index (M,) int64 and new_scores (M,).

    As the original's ``soft_nms(method=2)``: in each class, repeatedly take the remaining box
    with the highest score (ties: the lowest index) and keep it; multiply the score of every
    other remaining box of that class that overlaps it (IoU > 0) by ``exp(-iou ** 2 / sigma)``,
    and drop such a box if its score is now below ``score_threshold``. As there, only a box just
    decayed is tested, so a box scored below the threshold that overlaps no kept box stays.
    Unlike the original as CenterNet calls it (in place, with the returned indices ignored), the
    dropped boxes are really dropped. IoU uses no ``+ 1`` (see the module docstring).

    All classes advance together, one kept box per class per iteration, so the Python loop runs
    as many times as the largest class has boxes, with no loop over boxes or classes. Memory is
    O(N^2) for the IoU matrix and O(C N) for the per-class scores.

    Returned sorted by new score, descending (ties: lowest index first).
    """
    n = boxes.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device), scores.new_zeros(0)
    box_index = torch.arange(n, device=boxes.device)  # (N,)
    classes, class_of_box = torch.unique(labels, return_inverse=True)  # (C,), (N,)
    in_class = class_of_box[None, :] == torch.arange(len(classes), device=boxes.device)[:, None]  # (C, N)
    overlaps = box_iou(boxes, boxes).to(scores.dtype)  # (N, N)

    scores = scores.clone()
    remaining = torch.ones(n, dtype=torch.bool, device=boxes.device)
    kept = torch.zeros(n, dtype=torch.bool, device=boxes.device)
    while bool(remaining.any()):
        candidates = in_class & remaining[None, :]  # (C, N)
        best = torch.where(candidates, scores[None, :], float("-inf")).argmax(1)  # (C,) first max per class
        picked = best[candidates.any(1)]  # one box per class with boxes left
        kept[picked] = True
        remaining[picked] = False
        overlap = overlaps[best[class_of_box], box_index]  # (N,) IoU with the box its class just kept
        decayed = remaining & (overlap > 0)
        scores = torch.where(decayed, scores * torch.exp(-overlap.square() / sigma), scores)
        remaining &= ~(decayed & (scores < score_threshold))

    keep_index = kept.nonzero().squeeze(1)  # (M,)
    order = torch.sort(scores[keep_index], descending=True, stable=True).indices
    return keep_index[order], scores[keep_index[order]]


def merge_detections(
    per_scale: list[dict[str, torch.Tensor]],
    max_detections: int = 100,
    sigma: float = 0.5,
    score_threshold: float = 0.001,
) -> dict[str, torch.Tensor]:
    """Pool the detections of several scales per image and thin them by per-class Gaussian soft-NMS.

    ``per_scale``: one dict per scale with boxes (B, K, 4) xyxy in ORIGINAL image pixels, scores
    (B, K), labels (B, K) (K may differ between scales). Soft-NMS is always applied, also for a
    single scale; the original applies it only with several scales (or ``--nms``).

    Returns boxes (B, D, 4), scores (B, D), labels (B, D) int64 with D = ``max_detections``, sorted
    by score descending; an image with fewer detections is padded with score 0, label 0 and a
    zero box. Exactly the top D are kept (ties: earlier scale first); the original keeps every
    detection scoring at least the D-th score, so it may keep a few more on ties.

    A Python loop over images: B is small at test time and each image keeps a different number.
    """
    if not per_scale:
        raise ValueError("merge_detections: per_scale is empty; expected one dict of detections per scale")
    boxes = torch.cat([scale["boxes"] for scale in per_scale], dim=1)    # (B, N, 4)
    scores = torch.cat([scale["scores"] for scale in per_scale], dim=1)  # (B, N)
    labels = torch.cat([scale["labels"] for scale in per_scale], dim=1)  # (B, N)

    b = boxes.shape[0]
    merged_boxes = boxes.new_zeros((b, max_detections, 4))
    merged_scores = scores.new_zeros((b, max_detections))
    merged_labels = torch.zeros((b, max_detections), dtype=torch.int64, device=labels.device)
    for i in range(b):
        keep, kept_scores = soft_nms_gaussian(boxes[i], scores[i], labels[i], sigma, score_threshold)
        keep, kept_scores = keep[:max_detections], kept_scores[:max_detections]  # (D',) each
        m = keep.shape[0]
        merged_boxes[i, :m] = boxes[i, keep]
        merged_scores[i, :m] = kept_scores
        merged_labels[i, :m] = labels[i, keep].to(torch.int64)
    return {"boxes": merged_boxes, "scores": merged_scores, "labels": merged_labels}
