"""Tasks: what the heads mean. Each task bundles its heads, target encoder, loss and decoder."""

from .detection import DetectionLossWeights, DetectionTask

__all__ = ["DetectionLossWeights", "DetectionTask"]
