"""Monocular 3D boxes: depth, dimensions and orientation read at each object's centre, lifted through the camera."""

from .targets import CENTRE_MODES
from .task import KITTI_HEADLINE, Mono3DLossWeights, Mono3DTask, orientation_loss

__all__ = ["CENTRE_MODES", "KITTI_HEADLINE", "Mono3DLossWeights", "Mono3DTask", "orientation_loss"]
