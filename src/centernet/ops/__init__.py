"""Pure tensor and array operations shared by every task: peaks and top-K, affine maps of boxes and points,
Gaussian heatmap targets, flips."""
