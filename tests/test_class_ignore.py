"""Ignore regions that belong to one class: KITTI's Van for Car, a COCO crowd, a VOC difficult object.

Each is read with the class it is for, encoded as the original's 0.9999 in that class's heatmap (no
positive, no negative loss there, the other classes learn as usual), and evaluated as a COCO crowd box
of that class only; DontCare (and any region of no class) stays ignored for every class.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from centernet.data import load_split
from centernet.data.kitti import read_kitti, write_calib_file
from centernet.data.voc import read_voc
from centernet.data.samples import DatasetSplit, DetectionSample, ignore_labels_of
from centernet.eval.coco import evaluate_coco_boxes
from centernet.losses import focal_loss_from_logits
from centernet.tasks.detection.targets import IGNORE_TARGET, DetectionTargetEncoder
from centernet.tasks.mono3d.targets import Mono3DTargetEncoder

P2 = np.array([[300.0, 0, 160, 10], [0, 300, 48, 0], [0, 0, 1, 0.005]])


def _kitti_frame(root: Path, rows: list[str]) -> None:
    for name in ("image_2", "label_2", "calib"):
        (root / name).mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / "image_2" / "000000.png"), np.full((96, 320, 3), 128, np.uint8))
    write_calib_file(root / "calib" / "000000.txt", P2)
    (root / "label_2" / "000000.txt").write_text("".join(r + "\n" for r in rows))


def test_kitti_van_is_ignored_for_car_dontcare_for_every_class(tmp_path: Path) -> None:
    _kitti_frame(tmp_path, [
        "Car 0.00 0 -1.50 10.00 20.00 60.00 50.00 1.50 1.60 3.90 -2.00 1.65 20.00 -1.60",
        "Van 0.00 0 0.00 150 20 200 60 2 1.8 4.5 2 1.65 15 0",
        "Person_sitting 0.00 0 0.00 210 30 230 60 1.2 0.6 0.8 3 1.65 12 0",
        "DontCare -1 -1 -10 250 10 300 40 -1 -1 -1 -1000 -1000 -1000 -10",
    ])
    sample = read_kitti(tmp_path).samples[0]  # classes Car 0, Pedestrian 1, Cyclist 2
    assert ignore_labels_of(sample).tolist() == [0, 1, -1]
    np.testing.assert_allclose(sample.ignore_boxes[0], [150, 20, 200, 60])


def test_coco_crowd_and_voc_difficult_keep_their_class(tmp_path: Path) -> None:
    coco = tmp_path / "coco"
    (coco / "images").mkdir(parents=True)
    cv2.imwrite(str(coco / "images" / "a.jpg"), np.zeros((40, 50, 3), np.uint8))
    ann = {"images": [{"id": 1, "file_name": "a.jpg", "width": 50, "height": 40}],
           "categories": [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 1, 9, 9], "iscrowd": 0},
                           {"id": 2, "image_id": 1, "category_id": 7, "bbox": [20, 5, 10, 10], "iscrowd": 1}]}
    (coco / "annotations.json").write_text(json.dumps(ann))
    sample = load_split(coco / "annotations.json", "train").samples[0]
    assert ignore_labels_of(sample).tolist() == [1]  # the dog crowd: ignored for dogs

    voc = tmp_path / "voc"
    for name in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (voc / name).mkdir(parents=True)
    cv2.imwrite(str(voc / "JPEGImages" / "x.jpg"), np.zeros((24, 32, 3), np.uint8))
    objects = "".join(
        f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>2</xmin><ymin>2</ymin>"
        f"<xmax>9</xmax><ymax>9</ymax></bndbox></object>" for n, d in (("a", 0), ("b", 1), ("zzz", 1)))
    (voc / "Annotations" / "x.xml").write_text(
        f"<annotation><size><width>32</width><height>24</height></size>{objects}</annotation>")
    (voc / "ImageSets/Main/train.txt").write_text("x\n")
    sample = read_voc(voc, "train", class_names=["a", "b"]).samples[0]
    assert ignore_labels_of(sample).tolist() == [1, -1]  # difficult b: for b; of no known class: for every one


def test_encoder_writes_0_9999_in_the_class_only() -> None:
    encoder = DetectionTargetEncoder(num_classes=3)
    boxes = np.array([[4, 4, 10, 10]], np.float32)  # a class-2 object whose centre (7, 7) lies in both regions
    regions = np.array([[2, 2, 12, 12], [20, 20, 24, 26]], np.float32)
    t = encoder(boxes, np.array([2]), (32, 32), regions, np.array([2, -1]))
    heatmap, ignore = t["heatmap"], t["ignore"]
    assert heatmap[2, 7, 7] == 1.0  # the positive stays a positive
    inside = heatmap[2, 2:12, 2:12]
    assert np.all((inside == IGNORE_TARGET) | (inside == 1.0)) and (inside == 1.0).sum() == 1
    assert heatmap[2, 12:, :].max() == 0 and heatmap[:2].max() == 0  # other classes untouched
    assert ignore[2:12, 2:12].max() == 0 and ignore[20:26, 20:24].min() == 1 and ignore.sum() == 4 * 6
    # No labels: every region for every class, as before.
    assert encoder(boxes, np.array([2]), (32, 32), regions)["ignore"].sum() == 10 * 10 + 4 * 6
    # The 3D encoder keeps the region in its own heatmap, with the peak at the projected centre too.
    objects3d = np.array([[1.5, 1.6, 3.9, 0.0, 1.65, 20.0, 0.0, 0.0]], np.float32)
    for centre in ("box", "projected"):
        t3 = Mono3DTargetEncoder(num_classes=3, centre=centre)(
            boxes, np.array([2]), objects3d, (32, 32), regions, np.array([2, -1]), centres=np.array([[8.0, 6.0]]))
        assert t3["heatmap"][2, 2, 2] == np.float32(IGNORE_TARGET) and t3["heatmap"][:2].max() == 0


def test_focal_loss_has_no_negative_loss_in_the_class_region() -> None:
    target = torch.zeros(1, 2, 8, 8)
    target[0, 0, 1, 1] = 1.0                       # one object of class 0
    logits = torch.full((1, 2, 8, 8), -8.0)
    logits[0, 0, 1, 1] = 8.0
    logits[:, :, 4:8, 4:8] = 6.0                   # confident responses in the lower right, both classes
    base = focal_loss_from_logits(logits, target)
    target[0, 1, 4:8, 4:8] = IGNORE_TARGET         # ignored for class 1 there
    only_class0 = focal_loss_from_logits(logits, target)
    class1_alone = focal_loss_from_logits(logits[:, 1:], torch.zeros(1, 1, 8, 8))
    # The class-1 negatives in the region are gone (that loss was all of class 1's); class 0's remain.
    assert only_class0 > 0.1
    assert torch.isclose(base - only_class0, class1_alone, rtol=1e-4)


def test_coco_evaluation_ignores_a_region_for_its_class_only() -> None:
    sample = DetectionSample(Path("a.jpg"), 1, 100, 100,
                             boxes=np.array([[0, 0, 20, 20]], np.float32), labels=np.array([0]),
                             ignore_boxes=np.array([[50, 50, 90, 90], [0, 60, 30, 90]], np.float32),
                             ignore_labels=np.array([1, -1]))
    split = DatasetSplit([sample], ["car", "van"], [1, 2])
    gt = split.to_coco()
    crowd = [(a["category_id"], a["bbox"]) for a in gt["annotations"] if a["iscrowd"]]
    assert crowd == [(2, [50, 50, 40, 40]), (1, [0, 60, 30, 30]), (2, [0, 60, 30, 30])]
    car = {"image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.9}
    on_region = {"image_id": 1, "category_id": 1, "bbox": [55, 55, 30, 30], "score": 0.95}
    # A car on the van-only region is a false positive (car AP falls); a van there is ignored, and a car on
    # the every-class region too.
    assert evaluate_coco_boxes(gt, [car, on_region])["per_class"]["car"] < 0.99
    van_there = {**on_region, "category_id": 2}
    car_on_dontcare = {**on_region, "bbox": [2, 62, 26, 26]}
    m = evaluate_coco_boxes(gt, [car, van_there, car_on_dontcare])
    assert m["per_class"]["car"] == pytest.approx(1.0) and np.isnan(m["per_class"]["van"])


def test_voc07_ground_truth_marks_ignore_regions_difficult_of_their_class() -> None:
    from centernet.engine.inference import voc_ground_truth
    from centernet.eval.voc import voc_ap

    sample = DetectionSample(Path("a.jpg"), 1, 100, 100,
                             boxes=np.array([[0, 0, 20, 20], [30, 0, 50, 20]], np.float32), labels=np.array([0, 1]),
                             ignore_boxes=np.array([[50, 50, 90, 90], [0, 60, 30, 90]], np.float32),
                             ignore_labels=np.array([1, -1]))
    (gt,) = voc_ground_truth(DatasetSplit([sample], ["car", "van"], [1, 2]))
    assert gt["labels"].tolist() == [0, 1, 1, 0, 1] and gt["difficult"].tolist() == [False, False, True, True, True]
    np.testing.assert_allclose(gt["boxes"][2:], [[50, 50, 90, 90], [0, 60, 30, 90], [0, 60, 30, 90]])
    # Ground truth as predictions, plus a van on the van region and a car on the every-class one: mAP 1.
    detections = {"boxes": np.concatenate([sample.boxes, [[50, 50, 90, 90], [0, 60, 30, 90]]]),
                  "scores": np.array([0.9, 0.8, 0.95, 0.97]), "labels": np.array([0, 1, 1, 0])}
    assert voc_ap([gt], [detections], 2)["map"] == 1.0
    # A car on the van region is a false positive above the true car: precision 1/2 at every recall.
    detections["labels"] = np.array([0, 1, 0, 0])
    assert voc_ap([gt], [detections], 2)["per_class"][0] == pytest.approx(0.5)
