"""Multi-person pose targets: the detection targets of each person plus its joints.

As the original's ``multi_pose`` sample (``src/lib/datasets/sample/multi_pose.py``): every
person is a detection (centre heatmap, size, offset), and each of its labelled joints that
lies inside the map adds

* ``joint_offset``: the joint minus the person's INTEGER centre, read at that centre (the
  original's ``hps``);
* ``joint_heatmap``: a Gaussian in the joint's own channel, with the PERSON's radius (the
  radius of its box, ``max(0, int(r))``, no other minimum, as there), max-merged (``hm_hp``);
* ``joint_subpixel``: the joint minus its own integer position, read there (``hp_offset``).

``person_radius`` (M,) is each person's Gaussian radius, for a loss that learns the joint offsets at
every pixel of the centre's Gaussian (``PoseTask(joint_offsets_at="gaussian")``).

One deliberate difference: a person with no labelled joint (every ``v == 0``) becomes an
ignore region (its box gets ``ignore = 1``, it has no positive centre and no regression),
where the original still draws its centre on the heatmap and only drops its size and offset
(reported on the original's GitHub tracker, number 957).

Shapes (one image): N persons given, K joints, C classes, h, w output size (input / 4),
M = max_objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..detection.targets import DetectionTargetEncoder
from ...ops.gaussian import draw_gaussian, gaussian_radius


@dataclass
class PoseTargetEncoder:
    """Turns persons (boxes and joints in output coordinates) into the training targets of one image."""

    num_joints: int              # K, joints per person
    num_classes: int = 1         # person classes (1 for COCO's person_keypoints)
    max_objects: int = 32        # persons per image kept (the original's 32 for pose); the rest are dropped
    min_overlap: float = 0.7     # IoU the Gaussian radius guarantees
    exact_radius: bool = False   # mathematically exact roots instead of the original's formula

    def __post_init__(self) -> None:
        if self.num_joints < 1:
            raise ValueError(f"PoseTargetEncoder: num_joints={self.num_joints}; expected >= 1")

    def __call__(
        self,
        boxes: np.ndarray,       # (N, 4) xyxy in output pixels (already clipped to the map)
        labels: np.ndarray,      # (N,) int, 0..C-1
        keypoints: np.ndarray,   # (N, K, 3) output pixels (x, y, v), v: 0 unlabelled, 1 occluded, 2 visible
        output_size: tuple[int, int],  # (h, w)
        ignore_boxes: np.ndarray | None = None,  # (G, 4) regions where negatives carry no loss
        ignore_labels: np.ndarray | None = None,  # unused: a pose region is ignored for every class and joint
    ) -> dict[str, np.ndarray]:
        out_h, out_w = output_size
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        labels = np.asarray(labels).reshape(-1)
        keypoints = np.asarray(keypoints, np.float32)
        if keypoints.size != len(boxes) * self.num_joints * 3:
            raise ValueError(f"PoseTargetEncoder: keypoints of shape {keypoints.shape} for {len(boxes)} boxes; "
                             f"expected ({len(boxes)}, {self.num_joints}, 3)")
        keypoints = keypoints.reshape(len(boxes), self.num_joints, 3)
        people, unlabelled = split_people(boxes, keypoints, self.max_objects)
        ignore = [np.asarray(ignore_boxes, np.float32).reshape(-1, 4)] if ignore_boxes is not None else []
        detection = DetectionTargetEncoder(self.num_classes, self.max_objects, self.min_overlap, self.exact_radius)
        targets = detection(boxes[people], labels[people], output_size, np.concatenate([*ignore, boxes[unlabelled]]))
        joints = self.encode_joints(boxes[people], keypoints[people], targets["index"], (out_h, out_w))
        return {**targets, **joints}

    def encode_joints(
        self,
        boxes: np.ndarray,       # (P, 4) persons kept, P <= M, in the detection targets' order
        keypoints: np.ndarray,   # (P, K, 3)
        centre_index: np.ndarray,  # (M,) the persons' integer centres, y * w + x
        output_size: tuple[int, int],
    ) -> dict[str, np.ndarray]:
        """The joint targets of the kept persons; slot p is person p, as in the detection targets."""
        out_h, out_w = output_size
        m, k = self.max_objects, self.num_joints
        joint_offset = np.zeros((m, 2 * k), np.float32)       # (M, 2K) joint - integer centre, (x, y) per joint
        joint_offset_mask = np.zeros((m, 2 * k), np.float32)  # (M, 2K)
        joint_heatmap = np.zeros((k, out_h, out_w), np.float32)  # (K, h, w)
        joint_subpixel = np.zeros((m * k, 2), np.float32)     # (M*K, 2) joint - its integer position
        joint_index = np.zeros((m * k,), np.int64)            # (M*K,) y * w + x of the joint
        joint_mask = np.zeros((m * k,), np.float32)           # (M*K,)
        radii = np.zeros((m,), np.int64)                      # (M,) each person's Gaussian radius
        for p, ((x1, y1, x2, y2), person) in enumerate(zip(boxes.tolist(), keypoints)):
            radius = radii[p] = person_radius(x2 - x1, y2 - y1, self.min_overlap, self.exact_radius)
            centre_y, centre_x = divmod(int(centre_index[p]), out_w)
            for j, (x, y, v) in enumerate(person.tolist()):
                if v <= 0 or not (0 <= x < out_w and 0 <= y < out_h):
                    continue
                joint_x, joint_y = int(x), int(y)
                joint_offset[p, 2 * j : 2 * j + 2] = x - centre_x, y - centre_y
                joint_offset_mask[p, 2 * j : 2 * j + 2] = 1
                joint_subpixel[p * k + j] = x - joint_x, y - joint_y
                joint_index[p * k + j] = joint_y * out_w + joint_x
                joint_mask[p * k + j] = 1
                draw_gaussian(joint_heatmap[j], (joint_x, joint_y), radius)
        return {
            "joint_offset": joint_offset,
            "joint_offset_mask": joint_offset_mask,
            "joint_heatmap": joint_heatmap,
            "joint_subpixel": joint_subpixel,
            "joint_index": joint_index,
            "joint_mask": joint_mask,
            "person_radius": radii,
        }


def person_radius(width: float, height: float, min_overlap: float = 0.7, exact: bool = False) -> int:
    """Gaussian radius of a person box, used for its centre and for every one of its joints."""
    return max(0, int(gaussian_radius(math.ceil(height), math.ceil(width), min_overlap, exact)))


def split_people(
    boxes: np.ndarray,      # (N, 4) xyxy
    keypoints: np.ndarray,  # (N, K, 3)
    max_objects: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the persons that become positives (at most ``max_objects``) and of those to ignore.

    Boxes of zero or negative width or height are neither (as the detection encoder skips them).
    A person with at least one labelled joint (``v > 0``, inside the map or not, as the original
    counts) is a positive; one without is an ignore region.
    """
    has_area = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # (N,)
    labelled = (keypoints[:, :, 2] > 0).any(axis=1)                        # (N,)
    people = np.flatnonzero(has_area & labelled)[:max_objects]
    unlabelled = np.flatnonzero(has_area & ~labelled)
    return people, unlabelled
