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


import torch

from ..ops.boxes import box_iou
from ..ops.flip import flip_images, merge_flip  # noqa: F401  (re-exported: the flip half of test-time augmentation)

__all__ = ["flip_images", "merge_flip", "soft_nms_gaussian", "merge_detections"]


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
