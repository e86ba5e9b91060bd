"""Pose through the whole package: training samples (joints warped and swapped on a flip), the task's
checkpoint settings, evaluation, prediction, export.

Shapes: N persons, J joints, h, w output size.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from centernet.data.dataset import DetectionDataset
from centernet.data.samples import DatasetSplit, DetectionSample, KeypointSpec
from centernet.data.transforms import AugmentConfig
from centernet.errors import CenterNetError
from centernet.tasks import build_task, task_from_split
from centernet.tasks.pose import PoseTask

J = 5
FLIP = [0, 2, 1, 4, 3]  # joint 0 central, (1, 2) and (3, 4) left/right pairs


def pose_split(tmp_path: Path, size: int = 64) -> DatasetSplit:
    """One image with two persons whose joints sit at known pixels."""
    image_path = tmp_path / "a.png"
    cv2.imwrite(str(image_path), np.full((size, size, 3), 90, np.uint8))
    boxes = np.array([[4, 8, 28, 56], [34, 6, 60, 50]], np.float32)
    keypoints = np.zeros((2, J, 3), np.float32)
    keypoints[0] = [[16, 12, 2], [10, 20, 2], [22, 20, 1], [12, 50, 2], [0, 0, 0]]
    keypoints[1] = [[46, 10, 2], [40, 22, 2], [54, 22, 2], [42, 44, 2], [52, 46, 2]]
    sample = DetectionSample(image_path, 1, size, size, boxes, np.zeros(2, np.int64), keypoints=keypoints)
    spec = KeypointSpec(J, FLIP, [f"j{j}" for j in range(J)], [(0, 1), (0, 2), (1, 3), (2, 4)], [0.08] * J)
    return DatasetSplit([sample], ["person"], [1], keypoint_spec=spec, annotations=("boxes", "keypoints"), source=str(tmp_path))


def joint_peaks(targets: dict) -> dict[int, set[tuple[int, int]]]:
    """(x, y) of every 1.0 in each joint heatmap channel."""
    heatmap = targets["joint_heatmap"].numpy()
    return {j: {(int(x), int(y)) for y, x in zip(*np.nonzero(heatmap[j] == 1.0))} for j in range(heatmap.shape[0])}


@pytest.mark.parametrize("flip", [0.0, 1.0])
def test_training_sample_warps_joints_and_swaps_them_on_a_flip(tmp_path, flip):
    split = pose_split(tmp_path)
    task = task_from_split("pose", split)
    dataset = DetectionDataset(
        split, 64, task, AugmentConfig(mode="none", flip=flip, color=False),
    )
    targets = dataset[0]["targets"]
    keypoints = split.samples[0].keypoints
    expected: dict[int, set[tuple[int, int]]] = {j: set() for j in range(J)}
    for person in keypoints:
        for j, (x, y, v) in enumerate(person):
            if v > 0:
                if flip:  # x -> 64 - x, and the joint becomes its mirror partner
                    expected[FLIP[j]].add((int((64 - x) / 4), int(y / 4)))
                else:
                    expected[j].add((int(x / 4), int(y / 4)))
    assert joint_peaks(targets) == expected
    # Joint offsets from each person's centre: labelled joints only (person 0's joint 4 is unlabelled).
    mask = targets["joint_offset_mask"].numpy()
    assert mask[:2].sum() == 2 * (4 + 5)


def test_task_config_round_trip_rebuilds_the_same_task(tmp_path):
    task = task_from_split("pose", pose_split(tmp_path))
    rebuilt = build_task("pose", 1, task.config())
    assert isinstance(rebuilt, PoseTask)
    assert rebuilt.heads() == task.heads() and rebuilt.flip_perm == FLIP
    assert list(map(tuple, rebuilt.skeleton)) == [(0, 1), (0, 2), (1, 3), (2, 4)]
    assert rebuilt.sigmas == [0.08] * J
    assert rebuilt.snap.peak == "score_distance"  # the default, recorded
    original = task_from_split("pose", pose_split(tmp_path), {"joint_peak": "nearest"})
    assert build_task("pose", 1, original.config()).snap.peak == "nearest"
    # A checkpoint written before the option existed gets the default.
    assert build_task("pose", 1, {k: v for k, v in task.config().items() if k != "joint_peak"}).snap.peak == (
        "score_distance")
    with pytest.raises(CenterNetError, match="joint_peak"):
        task_from_split("pose", pose_split(tmp_path), {"joint_peak": "closest"})


def test_pose_task_needs_keypoints_in_the_data(tmp_path):
    from centernet.errors import CenterNetError

    split = pose_split(tmp_path)
    split.keypoint_spec = None
    with pytest.raises(CenterNetError, match="no keypoints"):
        task_from_split("pose", split)


def test_ground_truth_as_predictions_gives_keypoint_ap_one(tmp_path):
    """The task's evaluate (OKS AP through pycocotools) on the split's own joints."""
    split = pose_split(tmp_path)
    task = task_from_split("pose", split)
    sample = split.samples[0]
    prediction = {
        "boxes": torch.from_numpy(sample.boxes), "scores": torch.tensor([0.9, 0.8]), "labels": torch.zeros(2),
        "keypoints": torch.from_numpy(sample.keypoints).clone(),
    }
    metrics = task.evaluate(split, [prediction], [sample.image_id])
    assert metrics["kp_map"] == pytest.approx(1.0)
    prediction["keypoints"][:, :, 0] += 6  # every joint 6 px off: OKS well below 1 for these sizes
    assert task.evaluate(split, [prediction], [sample.image_id])["kp_map"] < 0.5


def test_an_image_without_persons_gives_empty_joint_targets(tmp_path):
    """Background images (no person) are common in real pose data (coco_mini has 40 of 79 in val)."""
    split = pose_split(tmp_path)
    sample = split.samples[0]
    sample.boxes, sample.labels = sample.boxes[:0], sample.labels[:0]
    sample.keypoints = np.zeros((0, J, 3), np.float32)
    task = task_from_split("pose", split)
    dataset = DetectionDataset(split, 64, task, AugmentConfig(mode="none", flip=1.0, color=False))
    targets = dataset[0]["targets"]
    assert targets["mask"].sum() == 0 and targets["joint_heatmap"].sum() == 0
