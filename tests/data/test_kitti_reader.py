"""The KITTI object reader: kitti_mini as read, bad input reported per file and line, label files round-trip."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED_DATA

from centernet.data import available_splits, detect_format, load_split
from centernet.data.kitti import (
    KittiClassMap,
    KittiObject,
    read_calib_file,
    read_kitti,
    read_label_file,
    write_calib_file,
    write_label_file,
)
from centernet.data.samples import IMAGE_DROP_KINDS, PROBLEM_KINDS
from centernet.errors import CenterNetError

KITTI_MINI = SHARED_DATA / "kitti_mini"
needs_kitti = pytest.mark.skipif(not KITTI_MINI.is_dir(), reason=f"KITTI sample folder {KITTI_MINI} is absent")

CLASSES = ("Car", "Pedestrian", "Cyclist")
P2 = np.array([[300.0, 0, 160, 10], [0, 300, 48, 0], [0, 0, 1, 0.005]])


@needs_kitti
def test_kitti_mini_counts() -> None:
    split = read_kitti(KITTI_MINI, "train")
    assert len(split.samples) == 14 and split.problems == [] and split.dropped_boxes == 0
    assert split.annotations == ("boxes", "objects3d", "calib") and split.class_names == list(CLASSES) and split.category_ids == [1, 2, 3]
    counts = Counter(CLASSES[int(label)] for s in split.samples for label in s.labels)
    assert counts == {"Car": 41, "Pedestrian": 11, "Cyclist": 4}
    rows = Counter(r.type for s in split.samples for r in s.labels3d)
    assert rows["Misc"] == 1 and rows["DontCare"] == 33
    # Van 2 + Truck 2 + DontCare 33 become ignore regions; Misc is skipped without a problem.
    assert sum(len(s.ignore_boxes) for s in split.samples) == 37
    assert sorted(s.image_id for s in split.samples) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 21, 76, 1545]
    assert {(s.width, s.height) for s in split.samples} == {(1242, 375), (1224, 370), (1238, 374)}
    # Without ImageSets every split name means every frame.
    assert available_splits(KITTI_MINI) == ["train", "val"]
    assert detect_format(KITTI_MINI) == "kitti"
    assert len(load_split(KITTI_MINI, "val").samples) == 14


@needs_kitti
def test_kitti_mini_rows_aligned_and_calib() -> None:
    for sample in read_kitti(KITTI_MINI, "train").samples:
        frame = sample.image_path.stem
        rows = read_label_file(KITTI_MINI / "training" / "label_2" / f"{frame}.txt")
        assert [r.to_line() for r in sample.labels3d] == [r.to_line() for r in rows]
        objects = [r for r in rows if r.type in CLASSES]
        assert sample.objects3d.shape == (len(objects), 8) == (len(sample.boxes), 8)
        for obj, box, label, row3d in zip(objects, sample.boxes, sample.labels, sample.objects3d):
            assert CLASSES[int(label)] == obj.type
            np.testing.assert_allclose(box, obj.box, atol=1e-3)
            expected = [*obj.dimensions, *obj.location, obj.rotation_y, obj.alpha]
            np.testing.assert_allclose(row3d, expected, atol=1e-4)
        p2 = read_calib_file(KITTI_MINI / "training" / "calib" / f"{frame}.txt")["P2"]
        assert sample.calib.shape == (3, 4)
        np.testing.assert_array_equal(sample.calib, p2)


def _frame(folder: Path, frame: str, rows: list[str], size: tuple[int, int] = (320, 96)) -> None:
    """One frame: a grey PNG, a calib file and the label rows."""
    for name in ("image_2", "label_2", "calib"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / "image_2" / f"{frame}.png"), np.full((size[1], size[0], 3), 128, np.uint8))
    write_calib_file(folder / "calib" / f"{frame}.txt", P2)
    (folder / "label_2" / f"{frame}.txt").write_text("".join(r + "\n" for r in rows))


CAR = "Car 0.00 0 -1.50 10.00 20.00 60.00 50.00 1.50 1.60 3.90 -2.00 1.65 20.00 -1.60"
PED = "Pedestrian 0.00 1 0.50 100.00 10.00 120.00 60.00 1.70 0.60 0.80 1.00 1.65 10.00 0.60"


def test_bad_input_reported_rest_read(tmp_path: Path) -> None:
    root = tmp_path / "kitti"  # the flat layout: root/{image_2,label_2,calib}
    _frame(root, "000000", [CAR, "Car 0.00 0 -1.50 10 20 60 abc 1.5 1.6 3.9 -2 1.65 20 -1.6", PED])
    _frame(root, "000001", [CAR])
    (root / "calib" / "000001.txt").unlink()
    _frame(root, "000002", [PED])
    (root / "image_2" / "000002.png").unlink()
    _frame(root, "000003", ["Bus 0.00 0 0.00 1 2 30 40 3 2.5 10 0 1.65 30 0", CAR])
    _frame(root, "000004", [PED])
    (root / "calib" / "000004.txt").write_text("P0: 1 0 0 0 0 1 0 0 0 0 1 0\n")  # no P2

    split = read_kitti(root, "train")
    assert sorted(s.image_id for s in split.samples) == [0, 3]
    by_kind = {p.kind: p for p in split.problems}
    assert sorted(p.kind for p in split.problems) == sorted(
        ["malformed_label", "missing_calib", "missing_image", "unknown_class", "missing_calib"])
    assert all(p.kind in PROBLEM_KINDS and "\n" not in p.message for p in split.problems)
    assert "missing_calib" in IMAGE_DROP_KINDS

    malformed = by_kind["malformed_label"]
    assert (malformed.file, malformed.line) == (str(root / "label_2" / "000000.txt"), 2)
    assert "not a number" in malformed.message
    unknown = by_kind["unknown_class"]
    assert (unknown.file, unknown.line) == (str(root / "label_2" / "000003.txt"), 1) and "'Bus'" in unknown.message
    assert split.dropped_boxes == 1
    calib_files = sorted(p.file for p in split.problems if p.kind == "missing_calib")
    assert calib_files == [str(root / "calib" / "000001.txt"), str(root / "calib" / "000004.txt")]
    assert "no P2" in next(p.message for p in split.problems if p.file.endswith("000004.txt"))
    assert "000002" in by_kind["missing_image"].message

    first = next(s for s in split.samples if s.image_id == 0)
    assert [int(v) for v in first.labels] == [0, 1] and len(first.labels3d) == 2
    np.testing.assert_allclose(first.objects3d[:, 5], [20.0, 10.0])
    np.testing.assert_array_equal(first.calib, P2)


def test_clipped_and_zero_area_boxes_keep_rows_aligned(tmp_path: Path) -> None:
    root = tmp_path / "kitti"
    outside = "Cyclist 0.00 0 0.10 400.00 10.00 450.00 60.00 1.70 0.60 1.80 30.00 1.65 40.00 0.20"
    overshoot = "Car 0.50 0 1.00 300.00 20.00 340.00 50.00 1.50 1.60 3.90 6.00 1.65 25.00 1.20"
    _frame(root, "000007", [outside, overshoot, PED])
    sample = read_kitti(root).samples[0]
    assert [int(v) for v in sample.labels] == [0, 1]
    np.testing.assert_allclose(sample.boxes[0], [300, 20, 320, 50])  # clipped to the 320 px wide image
    np.testing.assert_allclose(sample.objects3d[:, 5], [25.0, 10.0])  # the dropped cyclist's row is gone too
    assert Counter(p.kind for p in read_kitti(root).problems) == {"zero_area": 1, "box_clipped": 1}


def test_image_sets_splits(tmp_path: Path) -> None:
    root = tmp_path / "kitti"
    for frame in ("000000", "000001", "000002"):
        _frame(root / "training", frame, [CAR])
    (root / "ImageSets").mkdir()
    (root / "ImageSets" / "train.txt").write_text("000000\n000001\n000000\n")
    (root / "ImageSets" / "val.txt").write_text("000002\n000009\n")
    assert available_splits(root) == ["train", "val"]
    train = load_split(root, "train")
    assert [s.image_id for s in train.samples] == [0, 1]
    assert [(p.kind, p.line) for p in train.problems] == [("duplicate_image", 3)]
    val = read_kitti(root, "val")
    assert [s.image_id for s in val.samples] == [2]
    assert [(p.kind, p.file, p.line) for p in val.problems] == [
        ("missing_annotation", str(root / "ImageSets" / "val.txt"), 2)]
    with pytest.raises(CenterNetError, match=r"no split 'test'.*splits found: train, val"):
        read_kitti(root, "test")
    shutil.rmtree(root / "ImageSets")
    assert len(read_kitti(root, "trainval").samples) == 3
    with pytest.raises(CenterNetError, match="no ImageSets"):
        read_kitti(root, "test")


def test_class_map_and_task_checks(tmp_path: Path) -> None:
    root = tmp_path / "kitti"
    _frame(root, "000000", [CAR, PED, "Van 0.00 0 0.00 150 20 200 60 2 1.8 4.5 2 1.65 15 0",
                            "Tram 0.00 0 0.00 200 20 300 60 3.5 2.6 15 5 1.65 40 0"])
    cars_only = read_kitti(root, class_map=KittiClassMap(classes=("Car",), ignore={"Pedestrian": None}))
    sample = cars_only.samples[0]
    assert cars_only.class_names == ["Car"] and cars_only.category_ids == [1]
    assert len(sample.boxes) == 1 and len(sample.ignore_boxes) == 1
    assert [p.kind for p in cars_only.problems] == ["unknown_class"]  # the Van: no longer ignored
    with_vans = read_kitti(root, class_map=KittiClassMap(classes=("Car", "Van")))  # a class wins over ignore
    assert [int(v) for v in with_vans.samples[0].labels] == [0, 1] and len(with_vans.samples[0].ignore_boxes) == 0
    assert [(p.kind, p.line) for p in with_vans.problems] == [("unknown_class", 2)]  # the pedestrian; Tram skipped
    with pytest.raises(CenterNetError, match="no keypoints"):
        load_split(root, "train", needs=("keypoints",))
    assert load_split(root, "train", needs=("objects3d", "calib")).annotations == ("boxes", "objects3d", "calib")


def test_label_round_trip(tmp_path: Path) -> None:
    objects = [
        KittiObject("Car", 0.12, 1, -1.57, (10.5, 20.25, 100.0, 80.75), (1.5, 1.6, 3.9), (-2.5, 1.65, 20.0), -1.68),
        KittiObject("DontCare", -1, -1, -10, (1, 2, 3, 4), (-1, -1, -1), (-1000, -1000, -1000), -10),
        KittiObject("Pedestrian", 0, 0, 0.3, (5, 6, 7, 8), (1.7, 0.6, 0.8), (1, 1.6, 9), 0.4, score=0.875),
    ]
    path = write_label_file(tmp_path / "label_2" / "000000.txt", objects)
    assert read_label_file(path) == objects
    assert write_label_file(tmp_path / "again.txt", read_label_file(path)).read_text() == path.read_text()
    calib = write_calib_file(tmp_path / "calib" / "000000.txt", P2)
    np.testing.assert_allclose(read_calib_file(calib)["P2"], P2, rtol=1e-12)
