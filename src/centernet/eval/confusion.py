"""The detection confusion matrix: which class each object was detected as, what was missed, what was invented.

Per image, the detections scoring at least ``score_threshold`` are matched one to one with the ground truth
boxes whatever their classes, the pairs of highest IoU first, down to ``iou_threshold``; a matched pair counts at
(predicted class, true class), an unmatched ground truth box at (background, its class) and an unmatched detection
at (its class, background). An unmatched detection that lies mostly (half its area or more) inside an ignore
region of its class (a crowd, a difficult object, KITTI's DontCare) counts nowhere, as in the AP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..ops.boxes import box_coverage, box_iou


@dataclass
class ImageBoxes:
    """One image's boxes, xyxy pixels: ``scores`` None for ground truth; ``ignore`` (G, 4) regions with
    ``ignore_labels`` (G,) the class each is for (-1 every class)."""

    boxes: np.ndarray                       # (N, 4)
    labels: np.ndarray                      # (N,) 0..C-1
    scores: np.ndarray | None = None        # (N,)
    ignore: np.ndarray | None = None        # (G, 4)
    ignore_labels: np.ndarray | None = None  # (G,)


def match_by_iou(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """One-to-one (row, column) pairs of ``iou`` (G, D) at or above ``threshold``, the highest first."""
    rows, cols = np.nonzero(iou >= threshold)
    order = np.argsort(-iou[rows, cols], kind="stable")
    used_rows, used_cols, pairs = set(), set(), []
    for r, c in zip(rows[order].tolist(), cols[order].tolist()):
        if r not in used_rows and c not in used_cols:
            used_rows.add(r)
            used_cols.add(c)
            pairs.append((r, c))
    return pairs


def confusion_matrix(
    ground_truth: Sequence[ImageBoxes],
    detections: Sequence[ImageBoxes],
    num_classes: int,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.25,
) -> np.ndarray:
    """(C + 1, C + 1) int64 counts, rows the predicted class and columns the true class; index C is background
    (the last row: objects missed; the last column: detections of nothing). One entry of ``detections`` per image
    of ``ground_truth``."""
    matrix = np.zeros((num_classes + 1, num_classes + 1), np.int64)
    for truth, dets in zip(ground_truth, detections):
        gt_boxes = np.asarray(truth.boxes, np.float64).reshape(-1, 4)
        gt_labels = np.asarray(truth.labels, np.int64).reshape(-1)
        keep = np.asarray(dets.scores).reshape(-1) >= score_threshold
        det_boxes = np.asarray(dets.boxes, np.float64).reshape(-1, 4)[keep]
        det_labels = np.asarray(dets.labels, np.int64).reshape(-1)[keep]
        pairs = match_by_iou(box_iou(gt_boxes, det_boxes), iou_threshold)
        for g, d in pairs:
            matrix[det_labels[d], gt_labels[g]] += 1
        matched_gt, matched_det = {g for g, _ in pairs}, {d for _, d in pairs}
        for g in set(range(len(gt_labels))) - matched_gt:
            matrix[num_classes, gt_labels[g]] += 1
        ignored = _in_ignore_regions(det_boxes, det_labels, truth)
        for d in set(range(len(det_labels))) - matched_det:
            if not ignored[d]:
                matrix[det_labels[d], num_classes] += 1
    return matrix


def _in_ignore_regions(boxes: np.ndarray, labels: np.ndarray, truth: ImageBoxes) -> np.ndarray:
    """(D,) whether each box lies half or more inside an ignore region for its class."""
    if truth.ignore is None or len(truth.ignore) == 0 or len(boxes) == 0:
        return np.zeros(len(boxes), bool)
    regions = np.asarray(truth.ignore, np.float64).reshape(-1, 4)
    region_labels = (np.full(len(regions), -1) if truth.ignore_labels is None
                     else np.asarray(truth.ignore_labels, np.int64).reshape(-1))
    for_class = (region_labels[None, :] == -1) | (region_labels[None, :] == labels[:, None])  # (D, G)
    return ((box_coverage(boxes, regions) >= 0.5) & for_class).any(axis=1)


def normalise_columns(matrix: np.ndarray) -> np.ndarray:
    """Each column (true class) divided by its total: where the objects of a class went (0 for empty columns)."""
    totals = matrix.sum(axis=0, keepdims=True)
    return np.where(totals > 0, matrix / np.maximum(totals, 1), 0.0)
