"""Tasks: what the heads mean. Each task bundles its heads, target encoder, loss, decoder and extra metrics.

A task has ``name``, ``heads()``, ``encoder()``, ``loss()``, ``decode()``, ``flip_merge()``,
``evaluate()`` (metrics beyond COCO box AP), ``config()`` (what a checkpoint stores to rebuild it),
``needs`` (per-object annotations its encoder takes), ``headline`` and ``best_metric``.
"""

from __future__ import annotations

from ..errors import CenterNetError
from .detection import BOX_HEADLINE, DetectionLossWeights, DetectionTask
from .mono3d import KITTI_HEADLINE, Mono3DLossWeights, Mono3DTask
from .pose import KEYPOINT_HEADLINE, PoseLossWeights, PoseTask

__all__ = [
    "BOX_HEADLINE", "KEYPOINT_HEADLINE", "KITTI_HEADLINE", "TASKS", "DetectionLossWeights", "DetectionTask",
    "Mono3DLossWeights", "Mono3DTask", "PoseLossWeights", "PoseTask", "build_task", "task_from_split",
]

TASKS = ("detect", "pose", "3d")  # what ``--task`` accepts


def build_task(name: str, num_classes: int, config: dict | None = None):
    """A task by name, with what a checkpoint stored in ``config`` (see each task's ``config()``)."""
    config = dict(config or {})
    if name in ("detect", "detection"):
        return DetectionTask(num_classes, size_region=config.get("size_region", "centre"))
    if name == "pose":
        if "num_joints" not in config:
            raise CenterNetError("a pose task needs num_joints (from the data's keypoints or the checkpoint)")
        pairs = [tuple(p) for p in config.get("skeleton") or []]
        return PoseTask(
            int(config["num_joints"]), num_classes, flip_idx=config.get("flip_idx"),
            joint_names=list(config.get("joint_names") or []), skeleton=pairs, sigmas=config.get("sigmas"),
        )
    if name in ("3d", "mono3d"):
        return Mono3DTask(num_classes, centre=config.get("centre", "box"))
    raise CenterNetError(f"task {name!r} is not known; expected one of: {', '.join(TASKS)}")


def task_from_split(name: str, split, options: dict | None = None):
    """The task ``name`` for training on ``split`` (its classes, and for pose its joints).

    ``options``: task settings beyond the data (3D: ``{"centre": "box" | "projected"}``; detection:
    ``{"size_region": "centre" | "gaussian"}``).
    """
    options = dict(options or {})
    if name in ("detect", "detection"):
        unknown = sorted(set(options) - {"size_region"})
        if unknown:
            raise CenterNetError(f"unknown detect task option(s) {unknown}; expected 'size_region'")
        if options.get("size_region", "centre") not in ("centre", "gaussian"):
            raise CenterNetError(f"size_region={options['size_region']!r} is out of range; "
                                 "expected 'centre' or 'gaussian'")
        return build_task(name, split.num_classes, options)
    if name == "3d":
        unknown = sorted(set(options) - {"centre"})
        if unknown:
            raise CenterNetError(f"unknown 3d task option(s) {unknown}; expected 'centre'")
        if options.get("centre", "box") not in ("box", "projected"):
            raise CenterNetError(f"centre={options['centre']!r} is out of range; expected 'box' or 'projected'")
        return build_task(name, split.num_classes, options)
    if options:
        raise CenterNetError(f"task {name!r} takes no options, got {sorted(options)}")
    if name == "pose":
        spec = split.keypoint_spec
        if spec is None:
            raise CenterNetError(f"{split.source}: the data has no keypoints; task 'pose' needs person keypoints "
                                 "(a COCO person_keypoints json or a YOLO data.yaml with kpt_shape)")
        config = {"num_joints": spec.num_joints, "flip_idx": spec.flip_idx, "joint_names": spec.names,
                  "skeleton": spec.skeleton, "sigmas": spec.sigmas}
        return build_task("pose", split.num_classes, config)
    return build_task(name, split.num_classes)
