"""Multi-person pose: a person detector whose centres also regress the joints, snapped to joint-heatmap peaks."""

from .task import (
    COCO_PERSON_FLIP_PAIRS, KEYPOINT_HEADLINE, POSE_OPTIONS, PoseLossWeights, PoseTask, sampled_joint_offset_loss,
)

__all__ = [
    "COCO_PERSON_FLIP_PAIRS", "KEYPOINT_HEADLINE", "POSE_OPTIONS", "PoseLossWeights", "PoseTask",
    "sampled_joint_offset_loss",
]
