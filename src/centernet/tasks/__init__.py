"""Tasks: what the heads mean. Each task bundles its heads, target encoder, loss, decoder and extra metrics.

A task has ``name``, ``heads()``, ``encoder()``, ``loss()``, ``decode()``, ``flip_merge()``,
``evaluate()`` (metrics beyond COCO box AP), ``config()`` (what a checkpoint stores to rebuild it),
``needs`` (per-object annotations its encoder takes), ``headline`` and ``best_metric``.
"""

from __future__ import annotations

from ..decode_pose import JointSnapSettings
from ..errors import CenterNetError
from .detection import BOX_HEADLINE, DETECTION_OPTIONS, DetectionLossWeights, DetectionTask
from .mono3d import CENTRE_MODES, KITTI_HEADLINE, Mono3DLossWeights, Mono3DTask
from .pose import KEYPOINT_HEADLINE, POSE_OPTIONS, PoseLossWeights, PoseTask

__all__ = [
    "BOX_HEADLINE", "KEYPOINT_HEADLINE", "KITTI_HEADLINE", "TASKS", "DetectionLossWeights", "DetectionTask",
    "Mono3DLossWeights", "Mono3DTask", "PoseLossWeights", "PoseTask", "build_task", "task_from_split",
]

TASKS = ("detect", "pose", "3d")  # what ``--task`` accepts
# Settings of a task beyond its data, each with its choices (the original's first).
TASK_OPTIONS = {"detect": DETECTION_OPTIONS, "pose": POSE_OPTIONS, "3d": {"centre": CENTRE_MODES}}


def build_task(name: str, num_classes: int, config: dict | None = None):
    """A task by name, with what a checkpoint stored in ``config`` (see each task's ``config()``)."""
    config = dict(config or {})
    if name in ("detect", "detection"):
        return DetectionTask(num_classes, **{k: v for k, v in config.items() if k in DETECTION_OPTIONS})
    if name == "pose":
        if "num_joints" not in config:
            raise CenterNetError("a pose task needs num_joints (from the data's keypoints or the checkpoint)")
        pairs = [tuple(p) for p in config.get("skeleton") or []]
        snap = JointSnapSettings(**({"peak": config["joint_peak"]} if "joint_peak" in config else {}))
        return PoseTask(
            int(config["num_joints"]), num_classes, flip_idx=config.get("flip_idx"),
            joint_names=list(config.get("joint_names") or []), skeleton=pairs, sigmas=config.get("sigmas"),
            snap=snap, joint_offsets_at=config.get("joint_offsets_at", "centre"),
        )
    if name in ("3d", "mono3d"):
        return Mono3DTask(num_classes, centre=config.get("centre", "box"))
    raise CenterNetError(f"task {name!r} is not known; expected one of: {', '.join(TASKS)}")


def task_from_split(name: str, split, options: dict | None = None):
    """The task ``name`` for training on ``split`` (its classes, and for pose its joints).

    ``options``: task settings beyond the data, from ``TASK_OPTIONS`` (3D: ``{"centre": "box" | "projected"}``;
    detection: ``{"regress_at": "centre" | "gaussian", "box_loss": "l1" | "giou"}``; pose:
    ``{"joint_peak": "nearest" | "score_distance", "joint_offsets_at": "centre" | "gaussian"}``).
    """
    options = dict(options or {})
    key = {"detection": "detect", "mono3d": "3d"}.get(name, name)
    allowed = TASK_OPTIONS.get(key, {})
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        if not allowed:
            raise CenterNetError(f"task {name!r} takes no options, got {unknown}")
        raise CenterNetError(f"unknown {key} task option(s) {unknown}; expected {', '.join(map(repr, allowed))}")
    for option, value in options.items():
        if value not in allowed[option]:
            raise CenterNetError(f"{option}={value!r} is out of range; expected " + " or ".join(map(repr, allowed[option])))
    if name == "pose":
        spec = split.keypoint_spec
        if spec is None:
            raise CenterNetError(f"{split.source}: the data has no keypoints; task 'pose' needs person keypoints "
                                 "(a COCO person_keypoints json or a YOLO data.yaml with kpt_shape)")
        config = {"num_joints": spec.num_joints, "flip_idx": spec.flip_idx, "joint_names": spec.names,
                  "skeleton": spec.skeleton, "sigmas": spec.sigmas}
        return build_task("pose", split.num_classes, {**config, **options})
    return build_task(name, split.num_classes, options)
