"""PASCAL VOC average precision at one IoU threshold (0.5 by default), in numpy.

Follows the VOC devkit's ``voc_eval`` per class:

* detections of a class, over all images, are taken in decreasing score (ties keep
  their input order: image order, then order within the image);
* each is matched to the ground-truth box of its image and class with the largest IoU;
  if that IoU is above the threshold (strictly, as the devkit) and that box is
  *difficult*, the detection counts as neither a true nor a false positive; if it is not
  difficult and not yet matched, a true positive (the box is now matched); otherwise
  (IoU too low, or the best box already matched) a false positive;
* recall = TP / (number of non-difficult ground-truth boxes), precision = TP / (TP + FP);
* AP: VOC2007's 11-point interpolation (mean over t in {0, 0.1, ..., 1} of the largest
  precision at recall >= t, 0 if none), or with ``use_07_metric=False`` the area under
  the precision envelope at every recall change (VOC2010+).

A class with no non-difficult ground truth has AP ``nan`` and is left out of the mean.

Box convention: xyxy in continuous pixel coordinates (pixel i spans [i, i + 1), as
everywhere else in this package), so a box's width is ``x2 - x1`` -- *no* ``+ 1``. The
devkit's VOC boxes are 1-based inclusive integer corners and it adds 1 to widths and
heights; to reproduce its numbers exactly, convert such boxes with ``x1 - 1, y1 - 1,
x2, y2`` (for ground truth and detections alike), which makes the two IoUs equal.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..ops.boxes import box_iou

__all__ = ["voc_ap", "average_precision"]


def average_precision(recall: np.ndarray, precision: np.ndarray, use_07_metric: bool = True) -> float:
    """AP from the cumulative recall and precision of score-sorted detections.

    ``use_07_metric``: VOC2007's 11-point interpolated AP; otherwise the exact area under
    the monotone (non-increasing) precision envelope.
    """
    recall = np.asarray(recall, np.float64)
    precision = np.asarray(precision, np.float64)
    if use_07_metric:
        points = []
        for t in np.linspace(0.0, 1.0, 11):
            above = recall >= t - 1e-12  # tolerate float rounding of t (0.1 * 3 != 0.3)
            points.append(precision[above].max() if above.any() else 0.0)
        return float(np.mean(points))
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # envelope: the best precision at this recall or beyond
    changes = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1]))


def voc_ap(
    gt: Sequence[dict],
    detections: Sequence[dict],
    num_classes: int,
    iou_threshold: float = 0.5,
    use_07_metric: bool = True,
) -> dict:
    """VOC mean average precision over classes ``0 .. num_classes - 1``.

    gt: one dict per image: ``boxes`` (N, 4) xyxy pixels, ``labels`` (N,) ints, and
        optionally ``difficult`` (N,) bools (default all False).
    detections: one dict per image, in the same order: ``boxes`` (K, 4), ``scores`` (K,),
        ``labels`` (K,). Arrays or tensors with ``.numpy()``-compatible contents.

    Returns ``{"map": float, "per_class": [AP per class], "num_positives": [non-difficult
    GT per class]}``; classes without non-difficult ground truth get AP nan and are left
    out of ``map`` (nan when no class has any).
    """
    if len(gt) != len(detections):
        raise ValueError(f"{len(gt)} ground-truth images but {len(detections)} detection images")
    gt_arrays = [_gt_arrays(g) for g in gt]
    det_arrays = [_det_arrays(d) for d in detections]
    per_class, positives = [], []
    for c in range(num_classes):
        ap, npos = _class_ap(gt_arrays, det_arrays, c, iou_threshold, use_07_metric)
        per_class.append(ap)
        positives.append(npos)
    valid = [ap for ap in per_class if not np.isnan(ap)]
    return {"map": float(np.mean(valid)) if valid else float("nan"), "per_class": per_class, "num_positives": positives}


def _class_ap(
    gt: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    dets: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    cls: int,
    iou_threshold: float,
    use_07_metric: bool,
) -> tuple[float, int]:
    """(AP, number of non-difficult GT boxes) of one class."""
    npos = 0
    scores, tp, fp = [], [], []
    for (gt_boxes, gt_labels, difficult), (boxes, det_scores, labels) in zip(gt, dets):
        g = gt_labels == cls
        g_boxes, g_difficult = gt_boxes[g], difficult[g]
        npos += int((~g_difficult).sum())
        d = labels == cls
        if not d.any():
            continue
        d_boxes, d_scores = boxes[d], det_scores[d]
        order = np.argsort(-d_scores, kind="stable")
        d_boxes, d_scores = d_boxes[order], d_scores[order]
        is_tp = np.zeros(len(d_scores), bool)
        is_fp = np.zeros(len(d_scores), bool)
        if len(g_boxes):
            iou = box_iou(d_boxes, g_boxes)  # (D, G)
            best = iou.argmax(1)
            best_iou = iou[np.arange(len(d_boxes)), best]
            matched = np.zeros(len(g_boxes), bool)
            for k in range(len(d_boxes)):  # greedy, in decreasing score
                j = best[k]
                if best_iou[k] > iou_threshold:
                    if g_difficult[j]:
                        continue  # neither TP nor FP
                    if not matched[j]:
                        matched[j] = is_tp[k] = True
                    else:
                        is_fp[k] = True
                else:
                    is_fp[k] = True
        else:
            is_fp[:] = True
        keep = is_tp | is_fp  # detections on difficult boxes drop out entirely
        scores.append(d_scores[keep])
        tp.append(is_tp[keep])
        fp.append(is_fp[keep])
    if npos == 0:
        return float("nan"), 0
    if not scores:
        return 0.0, npos
    all_scores = np.concatenate(scores)
    order = np.argsort(-all_scores, kind="stable")
    tp_cum = np.cumsum(np.concatenate(tp)[order])
    fp_cum = np.cumsum(np.concatenate(fp)[order])
    recall = tp_cum / npos
    precision = tp_cum / np.maximum(tp_cum + fp_cum, np.finfo(np.float64).eps)
    return average_precision(recall, precision, use_07_metric), npos


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def _gt_arrays(g: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    boxes = _numpy(g["boxes"]).astype(np.float64).reshape(-1, 4)
    labels = _numpy(g["labels"]).astype(np.int64).reshape(-1)
    difficult = g.get("difficult")
    difficult = np.zeros(len(labels), bool) if difficult is None else _numpy(difficult).astype(bool).reshape(-1)
    if not (len(boxes) == len(labels) == len(difficult)):
        raise ValueError("ground truth boxes, labels and difficult flags differ in length")
    return boxes, labels, difficult


def _det_arrays(d: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    boxes = _numpy(d["boxes"]).astype(np.float64).reshape(-1, 4)
    scores = _numpy(d["scores"]).astype(np.float64).reshape(-1)
    labels = _numpy(d["labels"]).astype(np.int64).reshape(-1)
    if not (len(boxes) == len(scores) == len(labels)):
        raise ValueError("detection boxes, scores and labels differ in length")
    return boxes, scores, labels
