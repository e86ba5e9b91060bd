"""Multi-person pose ("human pose" in the paper): a person detector whose centres also regress joints.

Heads (the original's names in brackets): heatmap (C) [hm], size (2) [wh], offset (2) [reg],
joint_offset (2J) [hps], joint_heatmap (J) [hm_hp], joint_subpixel (2) [hp_offset].

Shapes: B batch, C person classes, J joints, h, w output size, M max persons, K detections.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from ..decode import transform_boxes
from ..decode_pose import (
    JOINT_PEAK_RULES, JointSnapSettings, decode_poses, flip_merge_pose, flip_permutation, transform_points,
)
from ..losses import centre_samples, focal_loss_from_logits, gather_at_index, masked_l1_loss, owned_pixels
from ..targets.pose import PoseTargetEncoder
from ..targets.sparse import object_pixels
from .detection import BOX_HEADLINE

# OKS keypoint AP (pycocotools) a pose run reports beside the box metrics.
KEYPOINT_HEADLINE = ("kp_map", "kp_map50", "kp_map75", "kp_map_medium", "kp_map_large")

# COCO person_keypoints' left/right joint pairs (eyes, ears, shoulders, elbows, wrists, hips, knees, ankles).
COCO_PERSON_FLIP_PAIRS: tuple[tuple[int, int], ...] = tuple((j, j + 1) for j in range(1, 17, 2))
# Pose's task options and their choices, the original's first (see ``PoseTask``).
POSE_OPTIONS = {"joint_peak": JOINT_PEAK_RULES, "joint_offsets_at": ("centre", "gaussian")}


@dataclass
class PoseLossWeights:
    """The original's hm, wh, off, hp, hm_hp weights (its off weight also scales hp_offset)."""

    heatmap: float = 1.0
    size: float = 0.1
    offset: float = 1.0
    joint_offset: float = 1.0
    joint_heatmap: float = 1.0
    joint_subpixel: float = 1.0


@dataclass
class PoseTask:
    """Everything pose-specific, so the model and trainer stay generic.

    ``snap.peak`` (the ``joint_peak`` option): which joint-heatmap peak a regressed joint moves onto, the one
    weighed best by score and distance (default) or the nearest (the original's); see ``decode_pose``.

    ``joint_offsets_at``: the original learns each person's joint offsets at its centre pixel alone
    (``"centre"``), so a centre peak one pixel off reads offsets never trained there. ``"gaussian"`` learns
    them at every pixel of the centre's Gaussian, weighted by it and normalised per person, the target at a
    pixel being the joint minus that pixel (TTFNet's regression samples, as detection's ``regress_at``).
    Decoding is the same either way.
    """

    num_joints: int
    num_classes: int = 1
    flip_idx: Sequence[int] | Sequence[Sequence[int]] | None = None  # left/right pairs or a permutation of 0..J-1
    max_objects: int = 32
    min_overlap: float = 0.7
    exact_radius: bool = False
    weights: PoseLossWeights = field(default_factory=PoseLossWeights)
    snap: JointSnapSettings = field(default_factory=JointSnapSettings)
    joint_offsets_at: str = "centre"                    # where joint offsets are learnt: "centre" or "gaussian"
    joint_names: Sequence[str] = ()                     # K names ("" or empty when the data has none)
    skeleton: Sequence[tuple[int, int]] = ()            # 0-based joint pairs, for drawing
    sigmas: Sequence[float] | None = None               # K OKS sigmas; None: COCO's (K = 17 only)
    name: str = "pose"
    needs: tuple[str, ...] = ("keypoints",)
    headline: tuple[str, ...] = BOX_HEADLINE + KEYPOINT_HEADLINE
    best_metric: str = "kp_map"

    def __post_init__(self) -> None:
        if self.num_joints < 1:
            raise ValueError(f"PoseTask: num_joints={self.num_joints}; expected >= 1")
        flip_permutation(self.flip_idx, self.num_joints)  # fails early on a bad flip_idx
        if self.joint_offsets_at not in POSE_OPTIONS["joint_offsets_at"]:
            raise ValueError(f"PoseTask: joint_offsets_at={self.joint_offsets_at!r}; expected one of "
                             f"{POSE_OPTIONS['joint_offsets_at']}")
        if self.sigmas is not None and len(self.sigmas) != self.num_joints:
            raise ValueError(f"PoseTask: {len(self.sigmas)} OKS sigmas for {self.num_joints} joints")

    @property
    def flip_perm(self) -> list[int]:
        """Joint j of an image is joint ``flip_perm[j]`` of its mirror."""
        return flip_permutation(self.flip_idx, self.num_joints)

    def options(self) -> dict[str, str]:
        return {"joint_peak": self.snap.peak, "joint_offsets_at": self.joint_offsets_at}

    def config(self) -> dict:
        """What a checkpoint carries to rebuild this task (plain lists and numbers), its options included."""
        return {
            "num_joints": self.num_joints, "flip_idx": self.flip_perm, "joint_names": list(self.joint_names),
            "skeleton": [list(map(int, pair)) for pair in self.skeleton],
            "sigmas": None if self.sigmas is None else [float(x) for x in self.sigmas],
            **self.options(),
        }

    def evaluate(self, split, predictions: list[dict], image_ids: list[int]) -> dict:
        """OKS keypoint AP (pycocotools) of the decoded persons against the split's joints."""
        from ..eval.keypoints import coco_keypoint_results_from_predictions, evaluate_coco_keypoints

        results = coco_keypoint_results_from_predictions(predictions, image_ids, split.category_ids)
        sigmas = self.sigmas
        if sigmas is None and self.num_joints != 17:
            sigmas = [0.07] * self.num_joints  # a middle value of COCO's (0.025 eyes .. 0.107 hips)
        return evaluate_coco_keypoints(split.to_coco(), results, sigmas)

    def heads(self) -> dict[str, int]:
        return {
            "heatmap": self.num_classes,
            "size": 2,
            "offset": 2,
            "joint_offset": 2 * self.num_joints,
            "joint_heatmap": self.num_joints,
            "joint_subpixel": 2,
        }

    def encoder(self) -> PoseTargetEncoder:
        return PoseTargetEncoder(
            self.num_joints, self.num_classes, self.max_objects, self.min_overlap, self.exact_radius
        )

    def loss(
        self, outputs: dict[str, torch.Tensor] | list[dict[str, torch.Tensor]], targets: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Total ``loss`` and each weighted part by name.

        Focal loss on both heatmaps (negatives inside ignore regions carry no loss in either),
        masked L1 on the rest. ``outputs`` may be a list with one dict per stack (Hourglass's
        intermediate supervision): every part is then the mean over the stacks.
        """
        if isinstance(outputs, (list, tuple)):
            per_stack = [self.loss(stack, targets) for stack in outputs]
            return {name: sum(p[name] for p in per_stack) / len(per_stack) for name in per_stack[0]}
        ignore = targets.get("ignore")
        heatmap = focal_loss_from_logits(outputs["heatmap"], targets["heatmap"], ignore)
        size = masked_l1_loss(outputs["size"], targets["index"], targets["mask"], targets["size"])
        offset = masked_l1_loss(outputs["offset"], targets["index"], targets["mask"], targets["offset"])
        joint_offset = sampled_joint_offset_loss(outputs["joint_offset"], targets, self.joint_offsets_at == "gaussian")
        joint_heatmap = focal_loss_from_logits(outputs["joint_heatmap"], targets["joint_heatmap"], ignore)
        joint_subpixel = masked_l1_loss(
            outputs["joint_subpixel"], targets["joint_index"], targets["joint_mask"], targets["joint_subpixel"]
        )
        parts = {
            "heatmap_loss": self.weights.heatmap * heatmap,
            "size_loss": self.weights.size * size,
            "offset_loss": self.weights.offset * offset,
            "joint_offset_loss": self.weights.joint_offset * joint_offset,
            "joint_heatmap_loss": self.weights.joint_heatmap * joint_heatmap,
            "joint_subpixel_loss": self.weights.joint_subpixel * joint_subpixel,
        }
        return {"loss": sum(parts.values()), **parts}

    def decode(
        self, outputs: dict[str, torch.Tensor], to_original: torch.Tensor | None = None, k: int = 100
    ) -> dict[str, torch.Tensor]:
        """Top-K persons: boxes (B, K, 4), scores (B, K), labels (B, K), keypoints (B, K, J, 3) as (x, y, score).

        Boxes and joint positions are in original pixels when ``to_original`` (B, 2, 3) is given.
        """
        dets = decode_poses(outputs, k, self.snap)
        if to_original is not None:
            dets["boxes"] = transform_boxes(dets["boxes"], to_original)
            keypoints = dets["keypoints"]
            xy = transform_points(keypoints[..., :2], to_original)  # (B, K, J, 2)
            dets["keypoints"] = torch.cat([xy, keypoints[..., 2:]], dim=-1)
        return dets

    def flip_merge(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Merge a model's outputs on ``flip_images(x)`` into outputs for ``x`` (see ``flip_merge_pose``)."""
        return flip_merge_pose(outputs, self.flip_idx)


def sampled_joint_offset_loss(
    prediction: torch.Tensor,           # (B, 2J, h, w) joint offsets, (x, y) per joint
    targets: dict[str, torch.Tensor],   # index, mask (B, M); joint_offset, joint_offset_mask (B, M, 2J); person_radius
    gaussian: bool,
) -> torch.Tensor:
    """L1 of the joint offsets at each person's regression samples, over its labelled coordinates.

    Samples: the integer centre alone (the original's ``RegWeightedL1Loss``: unlabelled joints carry no loss),
    or with ``gaussian`` every pixel of the centre's Gaussian, weighted by it so a person's weights sum to 1,
    where the target is the joint minus that pixel. Either way an average over the labelled coordinates.
    """
    index, mask = targets["index"], targets["mask"]                                   # (B, M) each
    out_h, out_w = prediction.shape[2:]
    if gaussian:
        pixels = object_pixels(index, mask, targets["person_radius"], (out_h, out_w))
        samples = owned_pixels(pixels, tuple(mask.shape), (out_h, out_w))
    else:
        samples = centre_samples(index, mask, out_w)
    b, m, y, x, weight = samples                                                      # (T,) each
    centre = index[b, m]
    to_centre = torch.stack([centre % out_w - x, centre // out_w - y], 1)            # (T, 2), 0 at centres
    num_joints = prediction.shape[1] // 2
    target = targets["joint_offset"][b, m].float() + to_centre.repeat(1, num_joints)  # (T, 2J)
    labelled = targets["joint_offset_mask"][b, m].float() * weight[:, None]           # (T, 2J)
    error = torch.abs(prediction.float()[b, :, y, x] - target) * labelled
    return error.sum() / (labelled.sum() + 1e-4)
