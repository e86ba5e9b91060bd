"""Multi-person pose ("human pose" in the paper): a person detector whose centres also regress joints.

Heads (the original's names in brackets): heatmap (C) [hm], size (2) [wh], offset (2) [reg],
joint_offset (2J) [hps], joint_heatmap (J) [hm_hp], joint_subpixel (2) [hp_offset].

Shapes: B batch, C person classes, J joints, h, w output size, M max persons, K detections.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import torch

from ...errors import CenterNetError
from ...data.shapes_pose import ShapesPoseConfig
from ...losses import centre_samples, focal_loss_from_logits, masked_l1_loss, owned_pixels
from ...ops.affine import transform_points
from ...ops.sparse import object_pixels
from ..base import DemoRecipe, ImageMeta, Task, register_task
from ..detection import BOX_HEADLINE
from ..recipes import demo_schedule
from .draw import draw_keypoints, plot_joint_ap
from .decode import JOINT_PEAK_RULES, JointSnapSettings, decode_poses, flip_merge_pose, flip_permutation
from .metrics import coco_keypoint_results_from_predictions, evaluate_coco_keypoints, per_joint_oks_ap
from .targets import PoseTargetEncoder

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


@register_task
@dataclass
class PoseTask(Task):
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
    name: ClassVar[str] = "pose"
    OPTIONS: ClassVar[dict[str, tuple[str, ...]]] = POSE_OPTIONS
    OPTION_HELP: ClassVar[dict[str, str]] = {
        "joint_peak": "the joint-heatmap peak a regressed joint moves onto: the best by score and distance "
                      "(default) or the nearest (the original's)",
        "joint_offsets_at": "learn the joint offsets at each person's centre (the original's) or at every pixel of "
                            "its heatmap Gaussian, weighted by it",
    }
    needs: ClassVar[tuple[str, ...]] = ("keypoints",)
    headline: ClassVar[tuple[str, ...]] = BOX_HEADLINE + KEYPOINT_HEADLINE
    best_metric: ClassVar[str] = "kp_map"

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

    @classmethod
    def from_config(cls, num_classes: int, config: dict) -> "PoseTask":
        if "num_joints" not in config:
            raise CenterNetError("a pose task needs num_joints (from the data's keypoints or the checkpoint)")
        snap = JointSnapSettings(**({"peak": config["joint_peak"]} if "joint_peak" in config else {}))
        return cls(
            int(config["num_joints"]), num_classes, flip_idx=config.get("flip_idx"),
            joint_names=list(config.get("joint_names") or []), skeleton=[tuple(p) for p in config.get("skeleton") or []],
            sigmas=config.get("sigmas"), snap=snap, joint_offsets_at=config.get("joint_offsets_at", "centre"),
        )

    @classmethod
    def from_split(cls, split, options: dict[str, str]) -> "PoseTask":
        """The joints (count, names, flip pairs, skeleton, OKS sigmas) as the data defines them."""
        spec = split.keypoint_spec
        if spec is None:
            raise CenterNetError(f"{split.source}: the data has no keypoints; task 'pose' needs person keypoints "
                                 "(a COCO person_keypoints json or a YOLO data.yaml with kpt_shape)")
        config = {"num_joints": spec.num_joints, "flip_idx": spec.flip_idx, "joint_names": spec.names,
                  "skeleton": spec.skeleton, "sigmas": spec.sigmas}
        return cls.from_config(split.num_classes, {**config, **options})

    @classmethod
    def demo(cls) -> DemoRecipe:
        # Every demo figure faces the viewer (no backs): from scratch in 10 minutes a model cannot yet tell left
        # from right by the small face alone (BENCHMARKS.md, "Human pose").
        return DemoRecipe(
            data="shapes_pose", data_config=lambda: ShapesPoseConfig(back_fraction=0.0), model="resnet18_shortcut",
            train=demo_schedule(256, (128, 192)), out="runs/demo_pose",
        )

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

    @property
    def oks_sigmas(self) -> list[float] | None:
        """The data's OKS sigmas; COCO's for 17 unnamed ones (None), else a middle value of COCO's (0.025 eyes ..
        0.107 hips) for every joint."""
        if self.sigmas is None and self.num_joints != 17:
            return [0.07] * self.num_joints
        return self.sigmas

    def evaluate(self, split, predictions: list[dict], image_ids: list[int]) -> dict:
        """The box metrics and OKS keypoint AP (pycocotools) of the decoded persons against the split's joints."""
        results = coco_keypoint_results_from_predictions(predictions, image_ids, split.category_ids)
        boxes = super().evaluate(split, predictions, image_ids)
        return boxes | evaluate_coco_keypoints(split.to_coco(), results, self.oks_sigmas)

    def ground_truth_fields(self, sample) -> dict:
        keypoints = np.zeros((len(sample.labels), self.num_joints, 3), np.float32)
        if sample.keypoints is not None:
            keypoints = sample.keypoints.astype(np.float32)  # v (0 unlabelled) as the joint's score
        return self.result_fields({"keypoints": keypoints})

    def draw_targets(self, image: np.ndarray, targets: dict[str, torch.Tensor], out_w: int, stride: int) -> np.ndarray:
        """Each person's labelled joints where the targets put them: its centre plus its joint offsets."""
        mask = targets["mask"] > 0
        index = targets["index"][mask]
        centre = torch.stack([index % out_w, index // out_w], dim=-1).float()  # (P, 2) integer centres
        offsets = targets["joint_offset"][mask].float().view(len(index), self.num_joints, 2)
        labelled = targets["joint_offset_mask"][mask].view(len(index), self.num_joints, 2)[..., 0]
        joints = torch.cat([(centre[:, None] + offsets) * stride, labelled[..., None].float()], dim=-1)  # (P, K, 3)
        return draw_keypoints(image, joints.numpy(), self.skeleton)

    def validation_plots(self, split, predictions: list[dict], image_ids: list[int], out_dir: Path) -> list[Path]:
        """``joint_ap.png``: the OKS AP of each joint alone."""
        results = coco_keypoint_results_from_predictions(predictions, image_ids, split.category_ids)
        aps = per_joint_oks_ap(split.to_coco(), results, self.oks_sigmas)
        names = [name or f"joint {j}" for j, name in enumerate(self.joint_names or [""] * self.num_joints)]
        return [plot_joint_ap(names, aps, Path(out_dir) / "joint_ap.png")]

    def metrics_line(self, metrics: dict) -> str:
        return super().metrics_line(metrics) + (
            f"  keypoints: AP {metrics['kp_map']:.3f}  AP50 {metrics['kp_map50']:.3f}  AP75 {metrics['kp_map75']:.3f}")

    def result_fields(self, dets: dict[str, np.ndarray]) -> dict:
        return {"keypoints": dets["keypoints"], "skeleton": [tuple(map(int, pair)) for pair in self.skeleton]}

    def draw(self, image: np.ndarray, result) -> np.ndarray:
        """Boxes, then each person's joints and skeleton."""
        return draw_keypoints(super().draw(image, result), result.keypoints, result.skeleton)

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

    def sample_annotations(self, sample, to_output: np.ndarray, flipped: bool) -> dict[str, np.ndarray]:
        """The sample's joints (N, J, 3) in output-map pixels; in a mirrored sample, left and right swapped.

        Joints that land outside the map keep their v: the encoder skips them (no target there).
        """
        if sample.keypoints is None:
            raise CenterNetError(f"{sample.image_path}: the sample has no keypoints; the pose task needs them")
        keypoints = np.array(sample.keypoints, np.float32)  # (N, J, 3), a copy
        if keypoints.ndim != 3 or len(keypoints) != len(sample.boxes):
            raise CenterNetError(f"{sample.image_path}: keypoints of shape {keypoints.shape} for {len(sample.boxes)} "
                                 "objects; expected (N, K, 3)")
        xy = keypoints[..., :2].astype(np.float64)  # (N, J, 2)
        keypoints[..., :2] = xy @ to_output[:, :2].T + to_output[:, 2]
        if flipped:
            keypoints = keypoints[:, self.flip_perm]
        return {"keypoints": keypoints}

    def stack_loss(self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Focal loss on both heatmaps (negatives inside ignore regions carry no loss in either), masked L1 on
        the rest."""
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

    def decode_maps(self, outputs: dict[str, torch.Tensor], k: int, fixed_k: bool = False) -> dict[str, torch.Tensor]:
        """Top-K persons: boxes (B, K, 4), scores (B, K), labels (B, K), keypoints (B, K, J, 3) as (x, y, score),
        in output-map coordinates."""
        return decode_poses(outputs, k, self.snap, fixed_k)

    def to_original(self, dets: dict[str, torch.Tensor], meta: ImageMeta) -> dict[str, torch.Tensor]:
        """Boxes and joint positions in original pixels (joint scores unchanged)."""
        dets = super().to_original(dets, meta)
        keypoints = dets["keypoints"]
        xy = transform_points(keypoints[..., :2], meta.to_original.to(keypoints.device))  # (B, K, J, 2)
        dets["keypoints"] = torch.cat([xy, keypoints[..., 2:]], dim=-1)
        return dets

    def export_columns(self, dets: dict[str, torch.Tensor], stride: int) -> list[torch.Tensor]:
        """J joints (x, y in input pixels, score) after each box row: (B, K, 3J)."""
        joints = dets["keypoints"]  # (B, K, J, 3) output-map coordinates
        b, k = joints.shape[:2]
        return [torch.cat([joints[..., :2] * stride, joints[..., 2:]], dim=-1).reshape(b, k, -1)]

    def export_column_names(self) -> list[str]:
        return [f"{axis}{j}" for j in range(self.num_joints) for axis in ("kx", "ky", "ks")]

    def read_export_columns(self, columns: torch.Tensor, stride: int) -> dict[str, torch.Tensor]:
        joints = columns.reshape(columns.shape[0], columns.shape[1], -1, 3)  # (B, K, J, 3)
        return {"keypoints": torch.cat([joints[..., :2] / stride, joints[..., 2:]], dim=-1)}

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
