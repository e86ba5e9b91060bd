"""2D object detection: a class heatmap plus a box size and sub-pixel offset read at each peak."""

from .task import BOX_HEADLINE, DETECTION_OPTIONS, DetectionLossWeights, DetectionTask, heatmap_loss

__all__ = ["BOX_HEADLINE", "DETECTION_OPTIONS", "DetectionLossWeights", "DetectionTask", "heatmap_loss"]
