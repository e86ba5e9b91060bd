"""Tests for centernet.eval.coco (COCO box evaluation through pycocotools)."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch

from centernet.errors import CenterNetError
from centernet.eval import (
    coco_results_from_predictions,
    evaluate_coco_boxes,
    format_per_class_table,
    metrics_to_jsonable,
)


def make_gt() -> dict:
    """Three images, three categories with non-contiguous ids, boxes of mixed sizes."""
    images = [{"id": i, "width": 640, "height": 480, "file_name": f"{i}.jpg"} for i in (1, 2, 3)]
    boxes = [
        (1, 3, [10, 20, 100, 80]),
        (1, 7, [200, 150, 60, 120]),
        (2, 3, [50, 60, 200, 150]),
        (2, 9, [300, 40, 40, 40]),
        (3, 7, [0, 0, 320, 240]),
        (3, 9, [400, 300, 35, 35]),
    ]
    annotations = [
        {"id": k + 1, "image_id": img, "category_id": cat, "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": 0}
        for k, (img, cat, bbox) in enumerate(boxes)
    ]
    categories = [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}, {"id": 9, "name": "bird"}]
    return {"images": images, "annotations": annotations, "categories": categories}


def gt_as_detections(gt: dict) -> list[dict]:
    return [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": list(a["bbox"]), "score": 1.0}
        for a in gt["annotations"]
    ]


def test_perfect_predictions_score_one() -> None:
    gt = make_gt()
    gt_before = copy.deepcopy(gt)
    dets = gt_as_detections(gt)
    dets_before = copy.deepcopy(dets)
    m = evaluate_coco_boxes(gt, dets)
    for key in ("map", "map50", "map75", "mar100"):
        assert m[key] == pytest.approx(1.0), key
    assert m["map_medium"] == pytest.approx(1.0)
    assert m["map_large"] == pytest.approx(1.0)
    assert set(m["per_class"]) == {"cat", "dog", "bird"}
    assert all(v == pytest.approx(1.0) for v in m["per_class"].values())
    assert all(v == pytest.approx(1.0) for v in m["per_class50"].values())
    # Inputs are left untouched.
    assert gt == gt_before
    assert dets == dets_before


def test_class_names_follow_category_id_order() -> None:
    m = evaluate_coco_boxes(make_gt(), gt_as_detections(make_gt()), class_names=["a", "b", "c"])
    assert list(m["per_class"]) == ["a", "b", "c"]
    with pytest.raises(CenterNetError, match="class_names"):
        evaluate_coco_boxes(make_gt(), [], class_names=["a"])


def test_shifted_boxes_score_much_lower() -> None:
    gt = make_gt()
    dets = gt_as_detections(gt)
    for d in dets:
        d["bbox"][0] += d["bbox"][2] / 2  # IoU with the gt box becomes 1/3
    m = evaluate_coco_boxes(gt, dets)
    assert m["map50"] < 0.5
    assert m["map"] < 0.2


def test_empty_detections_give_zero() -> None:
    m = evaluate_coco_boxes(make_gt(), [])
    for key in ("map", "map50", "map75", "mar100", "map_medium", "map_large"):
        assert m[key] == 0.0, key
    assert all(v == 0.0 for v in m["per_class"].values())


def test_size_bucket_without_gt_is_nan_and_jsonable() -> None:
    gt = make_gt()  # no box has area < 32**2
    m = evaluate_coco_boxes(gt, gt_as_detections(gt))
    assert math.isnan(m["map_small"])
    out = metrics_to_jsonable(m)
    assert out["map_small"] is None
    json.dumps(out, allow_nan=False)


def test_crowd_box_need_not_be_matched() -> None:
    gt = {
        "images": [{"id": 1, "width": 200, "height": 200}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 50], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [100, 100, 80, 80], "iscrowd": 1},
        ],
        "categories": [{"id": 1, "name": "person"}],
    }  # no "area": it is filled in
    dets = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 50], "score": 0.9}]
    m = evaluate_coco_boxes(gt, dets)
    assert m["map"] == pytest.approx(1.0)
    assert m["per_class"]["person"] == pytest.approx(1.0)


def test_class_without_predictions_gets_zero_and_class_without_gt_gets_nan() -> None:
    gt = make_gt()
    gt["categories"].append({"id": 11, "name": "fish"})  # no ground truth at all
    dets = [d for d in gt_as_detections(gt) if d["category_id"] != 9]
    m = evaluate_coco_boxes(gt, dets)
    assert m["per_class"]["bird"] == 0.0
    assert m["per_class50"]["bird"] == 0.0
    assert m["per_class"]["cat"] == pytest.approx(1.0)
    assert math.isnan(m["per_class"]["fish"])
    assert m["map"] == pytest.approx(2 / 3)  # mean over the three classes that have gt


def test_missing_ids_and_unknown_detections() -> None:
    gt = make_gt()
    for a in gt["annotations"]:
        a["id"] = 0  # pycocotools treats id 0 as "unmatched"; ids get renumbered
        del a["area"], a["iscrowd"]
    assert evaluate_coco_boxes(gt, gt_as_detections(make_gt()))["map"] == pytest.approx(1.0)
    with pytest.raises(CenterNetError, match="image_id 99"):
        evaluate_coco_boxes(make_gt(), [{"image_id": 99, "category_id": 3, "bbox": [0, 0, 1, 1], "score": 1}])
    with pytest.raises(CenterNetError, match="category_id 4"):
        evaluate_coco_boxes(make_gt(), [{"image_id": 1, "category_id": 4, "bbox": [0, 0, 1, 1], "score": 1}])
    with pytest.raises(CenterNetError, match="categories"):
        evaluate_coco_boxes({"images": [], "annotations": []}, [])


def test_verbose_controls_output(capsys: pytest.CaptureFixture[str]) -> None:
    evaluate_coco_boxes(make_gt(), gt_as_detections(make_gt()))
    assert capsys.readouterr().out == ""
    evaluate_coco_boxes(make_gt(), gt_as_detections(make_gt()), verbose=True)
    assert "Average Precision" in capsys.readouterr().out


def test_format_per_class_table() -> None:
    table = format_per_class_table({"cat": 0.5, "a_long_name": float("nan")}, {"cat": 0.75, "a_long_name": 0.1})
    lines = table.splitlines()
    assert lines[0].split() == ["class", "AP", "AP50"]
    assert lines[2].split() == ["cat", "50.0", "75.0"]
    assert lines[3].split() == ["a_long_name", "-", "10.0"]
    assert len({len(line) for line in lines}) == 1  # aligned


def test_coco_results_from_predictions() -> None:
    predictions = [
        {
            "boxes": torch.tensor([[10.0, 20.0, 110.5, 100.25], [0.0, 0.0, 5.0, 5.0]]),
            "scores": torch.tensor([0.9, 0.123456789]),
            "labels": torch.tensor([0, 2]),
        },
        {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "labels": np.zeros(0, dtype=int)},
        {"boxes": np.array([[1.0, 2.0, 4.0, 8.0]]), "scores": np.array([0.5]), "labels": np.array([1])},
    ]
    results = coco_results_from_predictions(predictions, [5, 6, 7], [3, 7, 9])
    assert results == [
        {"image_id": 5, "category_id": 3, "bbox": [10.0, 20.0, 100.5, 80.25], "score": 0.9},
        {"image_id": 5, "category_id": 9, "bbox": [0.0, 0.0, 5.0, 5.0], "score": 0.12346},
        {"image_id": 7, "category_id": 7, "bbox": [1.0, 2.0, 3.0, 6.0], "score": 0.5},
    ]
    json.dumps(results)
    as_dict = coco_results_from_predictions(predictions, [5, 6, 7], {0: 3, 1: 7, 2: 9})
    assert as_dict == results
    with pytest.raises(CenterNetError, match="label 2"):
        coco_results_from_predictions(predictions[:1], [5], [3, 7])
    with pytest.raises(CenterNetError, match="image ids"):
        coco_results_from_predictions(predictions, [5], [3, 7, 9])


def test_round_trip_predictions_to_metrics() -> None:
    gt = make_gt()
    cat_ids = [3, 7, 9]
    predictions, image_ids = [], []
    for image in gt["images"]:
        anns = [a for a in gt["annotations"] if a["image_id"] == image["id"]]
        xyxy = [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)]
        predictions.append({
            "boxes": np.array(xyxy, dtype=np.float32),
            "scores": np.ones(len(anns), dtype=np.float32),
            "labels": np.array([cat_ids.index(a["category_id"]) for a in anns]),
        })
        image_ids.append(image["id"])
    dets = coco_results_from_predictions(predictions, image_ids, cat_ids)
    assert evaluate_coco_boxes(gt, dets)["map"] == pytest.approx(1.0)


def test_ap_by_iou_thresholds() -> None:
    """AP at each IoU threshold: 1 everywhere for the ground truth itself; for boxes widened to IoU 0.83 with
    their true box, 1 up to 0.80 and 0 from 0.85; its mean is map, its 0.50 and 0.75 are map50 and map75."""
    gt = make_gt()
    assert all(v == pytest.approx(1.0) for v in evaluate_coco_boxes(gt, gt_as_detections(gt))["ap_by_iou"].values())
    dets = gt_as_detections(gt)
    for d in dets:  # the same box, 1.2 times as wide: IoU 1 / 1.2 = 0.83
        d["bbox"][2] *= 1.2
    m = evaluate_coco_boxes(gt, dets)
    assert list(m["ap_by_iou"]) == [f"{0.5 + 0.05 * i:.2f}" for i in range(10)]
    assert [round(v, 6) for v in m["ap_by_iou"].values()] == [1.0] * 7 + [0.0] * 3
    assert np.mean(list(m["ap_by_iou"].values())) == pytest.approx(m["map"])
    assert (m["ap_by_iou"]["0.50"], m["ap_by_iou"]["0.75"]) == (pytest.approx(m["map50"]), pytest.approx(m["map75"]))
    assert evaluate_coco_boxes(gt, [])["ap_by_iou"]["0.50"] == 0.0
