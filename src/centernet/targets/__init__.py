"""Training targets: Gaussian radius and drawing, and the per-task target encoders."""

from .detection import DetectionTargetEncoder
from .gaussian import draw_gaussian, gaussian_2d, gaussian_radius

__all__ = ["DetectionTargetEncoder", "draw_gaussian", "gaussian_2d", "gaussian_radius"]
