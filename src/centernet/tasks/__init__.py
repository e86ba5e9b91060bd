"""Tasks: what the heads mean. Each task is one folder behind the :class:`Task` contract (``base.py``).

``detection/``, ``pose/`` and ``mono3d/`` each hold their targets, loss, decode, metrics and export
columns; importing this package registers them. ``build_task``, ``task_from_split`` and ``list_tasks``
go through the registry, so a task registered from outside the package works everywhere.
"""

from __future__ import annotations

from .base import (
    DemoRecipe, ImageMeta, Task, all_options, build_task, check_options, list_tasks, register_task, task_class,
    task_from_split,
)
# Registered in this order, which --task lists: detect, pose, 3d.
from .detection import BOX_HEADLINE, DetectionLossWeights, DetectionTask  # isort: skip
from .pose import KEYPOINT_HEADLINE, PoseLossWeights, PoseTask  # isort: skip
from .mono3d import KITTI_HEADLINE, Mono3DLossWeights, Mono3DTask  # isort: skip

__all__ = [
    "BOX_HEADLINE", "KEYPOINT_HEADLINE", "KITTI_HEADLINE", "DemoRecipe", "DetectionLossWeights", "DetectionTask",
    "ImageMeta", "Mono3DLossWeights", "Mono3DTask", "PoseLossWeights", "PoseTask", "Task", "all_options",
    "build_task", "check_options", "list_tasks", "register_task", "task_class", "task_from_split",
]
