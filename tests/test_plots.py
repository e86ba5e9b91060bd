"""The validation pictures and the numbers behind them, on hand-made detections."""

import cv2
import numpy as np
import pytest

from centernet.eval.coco import evaluate_coco_boxes
from centernet.eval.confusion import ImageBoxes, confusion_matrix, match_by_iou, normalise_columns
from centernet.plots import image_grid, plot_confusion_matrix, plot_f1_curves, plot_pr_curves

# Two images, two classes: class 0 has three boxes, class 1 two.
GT_BOXES = {1: [([0, 0, 10, 10], 0), ([20, 20, 40, 40], 0), ([50, 0, 60, 30], 1)],
            2: [([5, 5, 25, 25], 0), ([30, 30, 60, 50], 1)]}


def coco_ground_truth() -> dict:
    annotations = [
        {"id": len(boxes_before) + k + 1, "image_id": image_id, "category_id": label + 1,
         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0}
        for image_id, boxes_before in ((1, []), (2, GT_BOXES[1]))
        for k, ((x1, y1, x2, y2), label) in enumerate(GT_BOXES[image_id])
    ]
    return {"images": [{"id": 1, "width": 80, "height": 60}, {"id": 2, "width": 80, "height": 60}],
            "annotations": annotations, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}


def detection(image_id, box, label, score) -> dict:
    x1, y1, x2, y2 = box
    return {"image_id": image_id, "category_id": label + 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score}


def perfect_detections(score: float = 0.9) -> list[dict]:
    return [detection(i, box, label, score) for i, objects in GT_BOXES.items() for box, label in objects]


def test_a_perfect_detector_has_precision_one_up_to_recall_one():
    metrics = evaluate_coco_boxes(coco_ground_truth(), perfect_detections(), keep_curves=True)
    curves = metrics["pr_curves"]
    assert curves.precision.shape == (2, 101) and curves.iou == 0.5
    np.testing.assert_array_equal(curves.precision, 1.0)
    np.testing.assert_allclose(curves.ap, [metrics["per_class50"]["a"], metrics["per_class50"]["b"]])
    at = np.searchsorted(curves.thresholds, [0.0, 0.5, 0.9, 0.95])
    np.testing.assert_allclose(curves.f1[:, at], [[1, 1, 1, 0], [1, 1, 1, 0]])


def test_curves_of_a_detector_that_misses_and_invents_match_a_hand_count():
    """Class a: a false positive at score 0.95, then two of its three boxes at 0.9 and 0.8 (the third missed).
    Recall 1/3 is reached at precision 1/2, 2/3 at 2/3; the interpolated precision is 2/3 up to recall 2/3
    and 0 beyond. Class b: both boxes found."""
    detections = [
        detection(1, [60, 40, 80, 60], 0, 0.95),
        detection(1, GT_BOXES[1][0][0], 0, 0.9),
        detection(1, GT_BOXES[1][1][0], 0, 0.8),
        detection(1, GT_BOXES[1][2][0], 1, 0.7),
        detection(2, GT_BOXES[2][1][0], 1, 0.6),
    ]
    metrics = evaluate_coco_boxes(coco_ground_truth(), detections, keep_curves=True)
    curves = metrics["pr_curves"]
    reached = curves.recall <= 2 / 3 + 1e-9
    np.testing.assert_allclose(curves.precision[0, reached], 2 / 3)
    np.testing.assert_allclose(curves.precision[0, ~reached], 0.0)
    assert curves.ap[0] == pytest.approx(metrics["per_class50"]["a"]) == pytest.approx(2 / 3 * reached.mean())
    np.testing.assert_allclose(curves.precision[1], 1.0)
    # Class a by score: above 0.95 nothing; at 0.9 the invention and one box (precision 1/2, recall 1/3, F1 0.4);
    # at 0.8 precision 2/3, recall 2/3.
    at = [int(np.argmin(np.abs(curves.thresholds - x))) for x in (0.96, 0.9, 0.85, 0.8, 0.0)]
    np.testing.assert_allclose(curves.precision_by_score[0, at], [0, 1 / 2, 1 / 2, 2 / 3, 2 / 3])
    np.testing.assert_allclose(curves.recall_by_score[0, at], [0, 1 / 3, 1 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(curves.f1[0, at], [0, 0.4, 0.4, 2 / 3, 2 / 3])
    np.testing.assert_allclose(curves.f1[1, at], [0, 0, 0, 0, 1])


def test_a_class_without_ground_truth_has_no_curve():
    gt = coco_ground_truth()
    gt["categories"].append({"id": 3, "name": "c"})
    curves = evaluate_coco_boxes(gt, perfect_detections(), keep_curves=True)["pr_curves"]
    assert np.isnan(curves.precision[2]).all() and np.isnan(curves.ap[2])
    assert np.isnan(curves.f1[2]).all() and np.isfinite(curves.f1[:2]).all()


def image_boxes(objects, scores=None) -> ImageBoxes:
    boxes = np.array([b for b, _ in objects], np.float64).reshape(-1, 4)
    labels = np.array([l for _, l in objects], np.int64)
    return ImageBoxes(boxes, labels, None if scores is None else np.asarray(scores, np.float64))


def test_a_perfect_detector_gives_a_diagonal_confusion_matrix():
    truth = [image_boxes(GT_BOXES[i]) for i in (1, 2)]
    found = [image_boxes(GT_BOXES[i], [0.9] * len(GT_BOXES[i])) for i in (1, 2)]
    matrix = confusion_matrix(truth, found, num_classes=2)
    np.testing.assert_array_equal(matrix, np.diag([3, 2, 0]))
    np.testing.assert_array_equal(normalise_columns(matrix), np.diag([1.0, 1.0, 0.0]))


def test_confusion_matrix_counts_a_wrong_class_a_miss_an_invention_and_honours_thresholds_and_ignore_regions():
    truth = [image_boxes(GT_BOXES[1]), image_boxes(GT_BOXES[2])]
    truth[1].ignore = np.array([[0, 40, 20, 60]], np.float64)  # for every class
    truth[1].ignore_labels = np.array([-1])
    found = [
        # box 0 found as class 1 (wrong class), box 1 right, box 2 missed; an invention
        image_boxes([(GT_BOXES[1][0][0], 1), (GT_BOXES[1][1][0], 0), ([60, 40, 80, 60], 0)], [0.9, 0.9, 0.5]),
        # both right, one of them below the score threshold (so missed); a detection inside the ignore region
        image_boxes([(GT_BOXES[2][0][0], 0), (GT_BOXES[2][1][0], 1), ([2, 42, 18, 58], 1)], [0.9, 0.1, 0.9]),
    ]
    matrix = confusion_matrix(truth, found, num_classes=2, iou_threshold=0.5, score_threshold=0.25)
    expected = np.zeros((3, 3), np.int64)
    expected[1, 0] += 1  # a detected as b
    expected[0, 0] += 2  # a right (image 1 and 2)
    expected[2, 1] += 2  # b missed (image 1; image 2 below the threshold)
    expected[0, 2] += 1  # an invented a
    np.testing.assert_array_equal(matrix, expected)
    assert matrix.sum() == 6


def test_matching_takes_the_highest_iou_first_and_each_box_once():
    iou = np.array([[0.6, 0.9], [0.7, 0.0]])
    assert match_by_iou(iou, 0.5) == [(0, 1), (1, 0)]
    assert match_by_iou(iou, 0.8) == [(0, 1)]


def test_the_pictures_are_written_at_their_size(tmp_path):
    curves = evaluate_coco_boxes(coco_ground_truth(), perfect_detections(), keep_curves=True)["pr_curves"]
    for path in (plot_pr_curves(curves, tmp_path / "PR_curve.png"), plot_f1_curves(curves, tmp_path / "F1_curve.png")):
        image = cv2.imread(str(path))
        assert image.shape == (500, 600, 3), path
    matrix = np.diag([3, 2, 0])
    image = cv2.imread(str(plot_confusion_matrix(matrix, ["a", "b"], tmp_path / "cm.png", 0.5, 0.25)))
    assert image.shape[1] > image.shape[0] > 300


def test_image_grid_fits_every_image_into_the_first_ones_cell():
    tiles = [np.full((40, 60, 3), 50, np.uint8), np.full((80, 60, 3), 200, np.uint8), np.full((20, 30, 3), 100, np.uint8)]
    grid = image_grid(tiles, columns=2)
    assert grid.shape == (80, 120, 3)
    assert grid[0, 60:, 0].max() == 200 and grid[:, 90:].max() <= 200  # the tall one scaled into 40 x 30
    assert grid[40:, :30].mean() == 100 and grid[40:, 60:].max() == 0  # the padded cell is black
