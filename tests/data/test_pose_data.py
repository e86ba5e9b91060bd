"""Pose data: COCO person_keypoints, the ultralytics pose format, the built-in synthetic pose set."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from centernet.data import load_split, read_coco, read_yolo
from centernet.data.coco import flip_from_names
from centernet.data.shapes_pose import ShapesPoseConfig, build_shapes_pose, joint_names
from centernet.errors import CenterNetError
from centernet.tasks.pose.metrics import evaluate_coco_keypoints

from conftest import SHARED_DATA

COCO_MINI = SHARED_DATA / "coco_mini"
needs_coco_mini = pytest.mark.skipif(not COCO_MINI.is_dir(), reason=f"real data {COCO_MINI} is absent "
                                     "(../shared/data beside the checkout)")


def ground_truth_as_results(split) -> list[dict]:
    """Every labelled person's joints as a prediction with score 1."""
    results = []
    for s in split.samples:
        for joints, label in zip(s.keypoints, s.labels):
            if (joints[:, 2] > 0).any():
                flat = [float(v) for v in np.column_stack([joints[:, :2], np.ones(len(joints))]).reshape(-1)]
                results.append({"image_id": s.image_id, "category_id": split.category_ids[int(label)],
                                "keypoints": flat, "score": 1.0})
    return results


def kp_ap_of_ground_truth(split) -> float:
    gt = split.to_coco()
    return evaluate_coco_keypoints(gt, ground_truth_as_results(split), sigmas=split.keypoint_spec.sigmas)["kp_map"]


# --------------------------------------------------------------------------- COCO person_keypoints


@needs_coco_mini
@pytest.mark.parametrize("split, persons, with_joints, crowd", [("train2017", 172, 86, 5), ("val2017", 118, 68, 1)])
def test_coco_mini_pose_counts_and_spec(split, persons, with_joints, crowd):
    data = load_split(COCO_MINI, split, needs=("keypoints",))
    spec = data.keypoint_spec
    assert data.annotations == ("boxes", "keypoints") and data.class_names == ["person"] and not data.problems
    assert spec.num_joints == 17 and spec.flip_idx == [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
    assert spec.names[5] == "left_shoulder" and (15, 13) in spec.skeleton and len(spec.sigmas) == 17
    kept = sum(len(s.boxes) for s in data.samples)
    ignored = sum(len(s.ignore_boxes) for s in data.samples)
    assert (kept + ignored, ignored) == (persons, crowd)  # README: 5 crowd is train's; val has 1 more
    assert sum(int((s.keypoints[:, :, 2] > 0).any(axis=1).sum()) for s in data.samples) == with_joints
    assert all(s.keypoints.shape == (len(s.boxes), 17, 3) for s in data.samples)


@needs_coco_mini
def test_coco_mini_keypoints_equal_the_json_and_score_ap_one():
    data = load_split(COCO_MINI, "val2017", needs=("keypoints",))
    raw = json.loads((COCO_MINI / "annotations" / "person_keypoints_val2017.json").read_text())
    by_image: dict[int, list] = {}
    for ann in raw["annotations"]:
        if not ann["iscrowd"]:
            by_image.setdefault(ann["image_id"], []).append(ann["keypoints"])
    for s in data.samples:
        expected = np.asarray(by_image.get(s.image_id, []), np.float32).reshape(-1, 17, 3)
        np.testing.assert_array_equal(s.keypoints, expected)
    assert kp_ap_of_ground_truth(data) == pytest.approx(1.0)


@needs_coco_mini
def test_coco_mini_official_layout_detection_and_no_keypoints_error():
    data = load_split(COCO_MINI, "val2017")  # images in val2017/, not images/val2017/
    assert data.annotations == ("boxes",) and data.keypoint_spec is None and not data.problems and len(data.samples) == 79
    with pytest.raises(CenterNetError, match="has no keypoints"):
        load_split(COCO_MINI / "annotations" / "instances_val2017.json", "val2017", needs=("keypoints",))


def write_image(path: Path, w: int = 64, h: int = 48) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), 128, np.uint8))


def test_coco_pose_keeps_persons_aligns_joints_and_reports_bad_keypoints(tmp_path):
    write_image(tmp_path / "images" / "val" / "a.png")
    good = [10, 10, 2, 20, 10, 1, 90, 90, 2]  # the last joint lies outside the 64x48 image: kept
    anns = [
        {"id": 1, "image_id": 1, "category_id": 3, "bbox": [5, 5, 20, 20], "keypoints": good, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 9, "bbox": [1, 1, 5, 5], "iscrowd": 0},  # a car: skipped
        {"id": 3, "image_id": 1, "category_id": 3, "bbox": [30, 5, 0, 10], "keypoints": good, "iscrowd": 0},
        {"id": 4, "image_id": 1, "category_id": 3, "bbox": [30, 5, 9, 9], "keypoints": [1, 2, 3], "iscrowd": 0},
        {"id": 5, "image_id": 1, "category_id": 3, "bbox": [0, 0, 9, 9], "keypoints": good[:6] + [1, 1, 5],
         "iscrowd": 0},
        {"id": 6, "image_id": 1, "category_id": 3, "bbox": [40, 20, 9, 9], "iscrowd": 1},
    ]
    categories = [{"id": 3, "name": "person", "keypoints": ["l_hand", "r_hand", "head"], "skeleton": [[1, 3], [2, 3]]},
                  {"id": 9, "name": "car"}]
    path = tmp_path / "annotations" / "person_keypoints_val.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}],
                                "annotations": anns, "categories": categories}))
    data = load_split(tmp_path, "val", needs=("keypoints",))
    spec = data.keypoint_spec
    assert (spec.num_joints, spec.flip_idx, spec.skeleton, spec.sigmas) == (3, [1, 0, 2], [(0, 2), (1, 2)], None)
    assert data.class_names == ["person"] and data.category_ids == [3]
    sample = data.samples[0]
    assert len(sample.boxes) == 3 and len(sample.ignore_boxes) == 1  # id 3 has zero area: box and joints dropped
    np.testing.assert_array_equal(sample.keypoints[0], np.reshape(good, (3, 3)))
    assert not sample.keypoints[1:, :, 2].any()  # ids 4 (length) and 5 (v = 5): persons kept, joints unlabelled
    bad = [p for p in data.problems if p.kind == "malformed_label"]
    assert len(bad) == 2 and all(p.file == str(path) for p in bad)
    assert "annotations[3] (id 4)" in bad[0].message and "annotations[4] (id 5)" in bad[1].message
    assert [p.kind for p in data.problems if p.kind != "malformed_label"] == ["zero_area"]
    assert read_coco(path, tmp_path / "images" / "val", keypoints=False).num_classes == 2  # detection: every class


def test_flip_from_names_spellings():
    assert flip_from_names(["nose", "LShoulder", "RShoulder", "hip_l", "hip_r", "leftKnee", "rightKnee",
                            "Left Eye", "Right Eye", "left_only"]) == [0, 2, 1, 4, 3, 6, 5, 8, 7, 9]
    assert flip_from_names(["left_a", "right_a", "right_a"]) == [0, 1, 2]  # repeated name: no pair


# --------------------------------------------------------------------------- ultralytics pose


def write_yolo_pose(root: Path, dims: int, extra: str = "", lines: list[str] | None = None) -> Path:
    write_image(root / "images" / "train" / "a.png", 100, 50)
    (root / "labels" / "train").mkdir(parents=True)
    if lines is None:
        if dims == 3:
            joints = "0.1 0.2 2 0.3 0.4 1 0 0 0 0.5 0.5 0.7 1.2 0.5 2"
        else:
            joints = "0.1 0.2 0.3 0.4 0 0 0.5 0.5 1.2 0.5"
        lines = [f"0 0.5 0.5 0.4 0.6 {joints}"]
    (root / "labels" / "train" / "a.txt").write_text("\n".join(lines) + "\n")
    yaml_path = root / "data.yaml"
    yaml_path.write_text(f"path: .\ntrain: images/train\nnames: [person]\nkpt_shape: [5, {dims}]\n"
                         f"flip_idx: [0, 2, 1, 4, 3]\n{extra}")
    return yaml_path


@pytest.mark.parametrize("dims", [2, 3])
def test_yolo_pose_reads_joints_in_pixels(tmp_path, dims):
    extra = "kpt_names:\n  0: [nose, left_eye, right_eye, left_ear, right_ear]\nskeleton: [[0, 1], [0, 2]]\n"
    data = read_yolo(write_yolo_pose(tmp_path, dims, extra), "train")
    assert data.annotations == ("boxes", "keypoints") and not data.problems
    spec = data.keypoint_spec
    assert (spec.num_joints, spec.flip_idx, spec.names[1], spec.skeleton) == (5, [0, 2, 1, 4, 3], "left_eye",
                                                                               [(0, 1), (0, 2)])
    joints = data.samples[0].keypoints[0]
    np.testing.assert_allclose(joints[:, :2], [[10, 10], [30, 20], [0, 0], [50, 25], [120, 25]], atol=1e-4)
    # dims 3: v as written, a 0..1 float (0.7) stored as 2; dims 2: (0, 0) unlabelled, else 2
    expected_v = [2, 1, 0, 2, 2] if dims == 3 else [2, 2, 0, 2, 2]
    assert joints[:, 2].tolist() == expected_v
    assert read_yolo(tmp_path / "data.yaml", "train", keypoints=False).samples[0].keypoints is None


def test_yolo_pose_bad_line_is_one_problem_with_file_and_line(tmp_path):
    good = "0 0.5 0.5 0.4 0.6 " + " ".join(["0.5"] * 15)
    bad_v = good.replace("0.5 0.5 0.5 0.5 0.5", "0.5 0.5 7 0.5 0.5", 1)  # the first joint's v is 7
    yaml_path = write_yolo_pose(tmp_path, 3, lines=[good, "0 0.5 0.5 0.4 0.6 0.1 0.2", bad_v])
    data = read_yolo(yaml_path, "train")
    assert [(p.kind, p.location()) for p in data.problems] == [
        ("malformed_label", f"{tmp_path / 'labels' / 'train' / 'a.txt'}:2"),
        ("malformed_label", f"{tmp_path / 'labels' / 'train' / 'a.txt'}:3"),
    ]
    assert "expected 20 fields" in data.problems[0].message
    keypoints = data.samples[0].keypoints
    assert keypoints.shape == (2, 5, 3) and keypoints[0, :, 2].tolist() == [2, 2, 2, 2, 2]
    assert not keypoints[1, :, 2].any()  # v = 7: box kept, joints unlabelled


@pytest.mark.parametrize("flip", ["[0, 1, 2, 3]", "[0, 1, 1, 3, 4]", "[0, 2, 1, 4, 5]", "yes"])
def test_yolo_pose_bad_flip_idx_is_one_line_error(tmp_path, flip):
    yaml_path = write_yolo_pose(tmp_path, 3)
    yaml_path.write_text(yaml_path.read_text().replace("flip_idx: [0, 2, 1, 4, 3]", f"flip_idx: {flip}"))
    with pytest.raises(CenterNetError, match="flip_idx") as info:
        read_yolo(yaml_path, "train")
    assert str(yaml_path) in str(info.value) and "\n" not in str(info.value)


def test_yolo_without_kpt_shape_has_no_keypoints(tmp_path):
    yaml_path = write_yolo_pose(tmp_path, 3, lines=["0 0.5 0.5 0.4 0.6"])
    yaml_path.write_text("path: .\ntrain: images/train\nnames: [person]\n")
    data = read_yolo(yaml_path, "train")
    assert data.annotations == ("boxes",) and data.keypoint_spec is None and data.samples[0].keypoints is None
    with pytest.raises(CenterNetError, match="has no keypoints"):
        load_split(yaml_path, "train", needs=("keypoints",))


# --------------------------------------------------------------------------- synthetic pose set

TINY_POSE = ShapesPoseConfig(image_size=96, num_train=10, num_val=2, num_joints=11, seed=5)


def test_shapes_pose_is_deterministic_and_atomic(tmp_path):
    a = build_shapes_pose(tmp_path / "a", TINY_POSE, progress=False)
    b = build_shapes_pose(tmp_path / "b", TINY_POSE, progress=False)
    assert a.name == b.name and (a / ".complete").is_file()
    for rel in ("annotations/person_keypoints_train.json", "annotations/person_keypoints_val.json",
                "images/train/000003.png"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    assert [p.name for p in (tmp_path / "a").iterdir()] == [a.name]  # no temporary folder left
    assert build_shapes_pose(tmp_path / "a", TINY_POSE, progress=False) == a  # reused


def test_shapes_pose_k11_end_to_end_with_occlusion():
    data = load_split("shapes_pose", "train", shapes_config=TINY_POSE)  # for any task: pose data
    spec = data.keypoint_spec
    assert data.annotations == ("boxes", "keypoints") and not data.problems and spec.num_joints == 11 and len(spec.sigmas) == 11
    assert spec.names == joint_names(11) and spec.names[0] == "head"
    perm = spec.flip_idx
    assert sorted(perm) == list(range(11)) and [perm[p] for p in perm] == list(range(11)) and perm != list(range(11))
    assert all(spec.names[perm[j]] == n.replace("left", "right") for j, n in enumerate(spec.names) if "left" in n)
    v = np.concatenate([s.keypoints[..., 2].reshape(-1) for s in data.samples])
    assert (v == 1).any() and (v == 2).mean() > 0.6
    assert kp_ap_of_ground_truth(data) == pytest.approx(1.0)


def test_shapes_pose_k17_is_coco_layout():
    names = joint_names(17)
    assert names[0] == "nose" and names[-1] == "right_ankle" and len(names) == 17
    assert joint_names(13)[1:3] == ["left_shoulder", "right_shoulder"] and len(joint_names(2)) == 2
    with pytest.raises(CenterNetError, match="num_joints"):
        ShapesPoseConfig(num_joints=25).validate()


@pytest.mark.parametrize("back_fraction, left_on_the_right", [(0.0, True), (1.0, False)])
def test_shapes_pose_back_fraction_decides_where_left_is(back_fraction, left_on_the_right):
    """Facing the viewer (back_fraction 0) a person's left shoulder is on the image's right; from behind, on its left."""
    cfg = ShapesPoseConfig(image_size=96, num_train=6, num_val=1, num_joints=13, seed=3, back_fraction=back_fraction)
    data = load_split("shapes_pose", "train", shapes_config=cfg)
    names = data.keypoint_spec.names
    left, right = names.index("left_shoulder"), names.index("right_shoulder")
    joints = np.concatenate([s.keypoints for s in data.samples])        # (N, K, 3)
    both = (joints[:, left, 2] > 0) & (joints[:, right, 2] > 0)
    assert both.sum() >= 5
    assert np.all((joints[both, left, 0] > joints[both, right, 0]) == left_on_the_right)
    with pytest.raises(CenterNetError, match="back_fraction"):
        ShapesPoseConfig(back_fraction=1.5).validate()
