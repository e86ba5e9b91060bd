"""PASCAL VOC AP: hand-computed cases, difficult boxes, conventions, and a brute-force devkit-style reference."""

import numpy as np
import pytest
import torch

from centernet.eval import voc_ap
from centernet.eval.voc import average_precision
from centernet.ops.boxes import box_iou

G1, G2, MISS = [0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]


def gt(boxes, labels=None, difficult=None):
    d = {"boxes": np.array(boxes, np.float32).reshape(-1, 4), "labels": np.array(labels or [0] * len(boxes))}
    if difficult is not None:
        d["difficult"] = np.array(difficult, bool)
    return d


def dets(boxes, scores, labels=None):
    return {
        "boxes": np.array(boxes, np.float32).reshape(-1, 4),
        "scores": np.array(scores, np.float32),
        "labels": np.array(labels or [0] * len(boxes)),
    }


def test_ground_truth_as_detections_is_perfect():
    rng = np.random.default_rng(0)
    images = []
    for _ in range(5):
        xy = rng.uniform(0, 200, (6, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(5, 80, (6, 2))], 1)
        images.append(gt(boxes, rng.integers(0, 3, 6).tolist()))
    predictions = [dets(g["boxes"], rng.uniform(0.1, 1, len(g["boxes"])), g["labels"].tolist()) for g in images]
    for use_07 in (True, False):
        result = voc_ap(images, predictions, num_classes=3, use_07_metric=use_07)
        assert result["map"] == 1.0 and result["per_class"] == [1.0, 1.0, 1.0]
        assert sum(result["num_positives"]) == 30


def test_tp_fp_tp_by_hand():
    """2 GT; detections TP (0.9), FP (0.8), TP (0.7): recall .5 .5 1, precision 1 .5 2/3.

    11-point: t in 0..0.5 -> max precision at recall >= t is 1 (6 points); t in 0.6..1 -> 2/3 (5 points):
    (6 + 5 * 2/3) / 11. All points: 0.5 * 1 + 0.5 * 2/3.
    """
    g = [gt([G1, G2])]
    d = [dets([G1, MISS, G2], [0.9, 0.8, 0.7])]
    assert voc_ap(g, d, 1)["map"] == pytest.approx((6 + 5 * 2 / 3) / 11)
    assert voc_ap(g, d, 1, use_07_metric=False)["map"] == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_ranking_across_images_by_hand():
    """Image A: TP at 0.6. Image B: FP at 0.9, TP at 0.5 -> FP, TP, TP: recall 0 .5 1, precision 0 .5 2/3.

    Every 11-point threshold finds 2/3 (precision at recall 1); all-points: 0.5 * 2/3 + 0.5 * 2/3.
    """
    g = [gt([G1]), gt([G2])]
    d = [dets([G1], [0.6]), dets([MISS, G2], [0.9, 0.5])]
    assert voc_ap(g, d, 1)["map"] == pytest.approx(2 / 3)
    assert voc_ap(g, d, 1, use_07_metric=False)["map"] == pytest.approx(2 / 3)


def test_duplicate_and_wrong_class_detections_are_false_positives():
    g = [gt([G1, G2])]
    # 0.9 TP on G1; 0.8 on G1 again (already matched: FP); 0.75 class 1 on G2 (FP for class 1); 0.7 TP on G2.
    d = [dets([G1, [0, 0, 10, 11], G2, G2], [0.9, 0.8, 0.75, 0.7], [0, 0, 1, 0])]
    result = voc_ap(g, d, 2)
    assert result["per_class"][0] == pytest.approx((6 + 5 * 2 / 3) / 11)
    assert np.isnan(result["per_class"][1]) and result["num_positives"] == [2, 0]  # no GT of class 1: left out
    assert result["map"] == pytest.approx(result["per_class"][0])


def test_difficult_boxes_are_neither_true_nor_false_positives():
    # G2 difficult: the 0.95 detection on it is ignored -> FP (0.9), TP (0.8): recall 0 1, precision 0 .5.
    d = [dets([G2, MISS, G1], [0.95, 0.9, 0.8])]
    assert voc_ap([gt([G1, G2], difficult=[False, True])], d, 1)["map"] == pytest.approx(0.5)
    # Not difficult: TP, FP, TP as in the hand-computed case.
    assert voc_ap([gt([G1, G2], difficult=[False, False])], d, 1)["map"] == pytest.approx((6 + 5 * 2 / 3) / 11)
    # A missed difficult box costs no recall; a class with only difficult boxes has no AP.
    assert voc_ap([gt([G1, G2], difficult=[False, True])], [dets([G1], [0.5])], 1)["map"] == 1.0
    only_difficult = voc_ap([gt([G1], difficult=[True])], [dets([G1], [0.5])], 1)
    assert np.isnan(only_difficult["map"]) and only_difficult["num_positives"] == [0]


def test_iou_threshold_is_strict_and_widths_have_no_plus_one():
    """IoU([0,0,10,10], [0,0,10,20]) = 100 / 200 = 0.5 exactly (no + 1): not above 0.5, so a miss.

    (With the devkit's + 1 it would be 121 / 231 = 0.52, a hit: convert 1-based inclusive boxes first.)
    """
    assert box_iou(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 20]]))[0, 0] == 0.5
    assert voc_ap([gt([[0, 0, 10, 20]])], [dets([[0, 0, 10, 10]], [0.9])], 1)["map"] == 0.0
    assert voc_ap([gt([[0, 0, 10, 19]])], [dets([[0, 0, 10, 10]], [0.9])], 1)["map"] == 1.0
    assert voc_ap([gt([[0, 0, 10, 20]])], [dets([[0, 0, 10, 10]], [0.9])], 1, iou_threshold=0.4)["map"] == 1.0


def test_no_detections_and_tensor_inputs():
    assert voc_ap([gt([G1])], [dets([], [])], 1)["map"] == 0.0
    g = [{"boxes": torch.tensor([G1], dtype=torch.float32), "labels": torch.tensor([0])}]
    d = [{"boxes": torch.tensor([G1], dtype=torch.float32), "scores": torch.tensor([0.3]), "labels": torch.tensor([0])}]
    assert voc_ap(g, d, 1)["map"] == 1.0
    with pytest.raises(ValueError, match="images"):
        voc_ap(g, [], 1)


def test_average_precision_eleven_points_by_hand():
    # recall reaches 0.3 only with precision 0.6, then 0.7 with 0.4: t = 0..0.3 -> 0.6 (4 pts), 0.4..0.7 -> 0.4 (4 pts)
    assert average_precision(np.array([0.3, 0.7]), np.array([0.6, 0.4])) == pytest.approx((4 * 0.6 + 4 * 0.4) / 11)
    # Area: 0.3 * 0.6 + 0.4 * 0.4.
    assert average_precision(np.array([0.3, 0.7]), np.array([0.6, 0.4]), False) == pytest.approx(0.3 * 0.6 + 0.4 * 0.4)


def devkit_reference(gts, detections, cls, thr, use_07):
    """A literal re-statement of the devkit's voc_eval loop (global sort, one detection at a time)."""
    records = [(g["boxes"][g["labels"] == cls], g.get("difficult", np.zeros(len(g["labels"]), bool))[g["labels"] == cls])
               for g in gts]
    used = [np.zeros(len(r[0]), bool) for r in records]
    npos = sum(int((~r[1]).sum()) for r in records)
    image_ids, scores, boxes = [], [], []
    for i, d in enumerate(detections):
        for b, s, l in zip(d["boxes"], d["scores"], d["labels"]):
            if l == cls:
                image_ids.append(i), scores.append(s), boxes.append(b)
    order = np.argsort(-np.array(scores), kind="stable")
    tp, fp = np.zeros(len(order)), np.zeros(len(order))
    for rank, k in enumerate(order):
        gt_boxes, difficult = records[image_ids[k]]
        overlaps = box_iou(boxes[k][None], gt_boxes)[0] if len(gt_boxes) else np.zeros(0)
        if len(overlaps) and overlaps.max() > thr:
            j = overlaps.argmax()
            if not difficult[j]:
                if not used[image_ids[k]][j]:
                    tp[rank], used[image_ids[k]][j] = 1, True
                else:
                    fp[rank] = 1
        else:
            fp[rank] = 1
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    return average_precision(tp / npos, tp / np.maximum(tp + fp, np.finfo(np.float64).eps), use_07)


@pytest.mark.parametrize("seed", range(6))
def test_matches_a_devkit_style_reference_on_random_data(seed):
    rng = np.random.default_rng(seed)
    gts, detections = [], []
    for _ in range(4):
        n = rng.integers(0, 6)
        xy = rng.uniform(0, 60, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(8, 40, (n, 2))], 1)
        gts.append({"boxes": boxes, "labels": rng.integers(0, 2, n), "difficult": rng.random(n) < 0.2})
        m = rng.integers(0, 10)
        jitter = boxes[rng.integers(0, max(n, 1), m)] + rng.normal(0, 4, (m, 4)) if n else rng.uniform(0, 80, (m, 4))
        jitter[:, 2:] = np.maximum(jitter[:, 2:], jitter[:, :2] + 1)
        detections.append({"boxes": jitter, "scores": rng.choice([0.2, 0.5, 0.9], m), "labels": rng.integers(0, 2, m)})
    for use_07 in (True, False):
        result = voc_ap(gts, detections, 2, use_07_metric=use_07)
        for c in range(2):
            if result["num_positives"][c]:
                assert result["per_class"][c] == pytest.approx(devkit_reference(gts, detections, c, 0.5, use_07))
