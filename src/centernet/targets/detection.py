"""Detection targets: class heatmap + size + offset at each object's integer centre.

Shapes (one image): C classes, h, w output size (input / 4), M = max_objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .gaussian import draw_gaussian, gaussian_radius


@dataclass
class DetectionTargetEncoder:
    """Turns boxes in output coordinates into the training targets of one image."""

    num_classes: int
    max_objects: int = 128       # objects per image kept; the rest are dropped (the count is reported)
    min_overlap: float = 0.7     # IoU the Gaussian radius guarantees
    exact_radius: bool = False   # mathematically exact roots instead of the original's formula

    def __call__(
        self,
        boxes: np.ndarray,       # (N, 4) xyxy in output pixels (already clipped to the map)
        labels: np.ndarray,      # (N,) int, 0..C-1
        output_size: tuple[int, int],  # (h, w)
        ignore_boxes: np.ndarray | None = None,  # (G, 4) regions where negatives carry no loss
    ) -> dict[str, np.ndarray]:
        out_h, out_w = output_size
        heatmap = np.zeros((self.num_classes, out_h, out_w), np.float32)  # (C, h, w)
        size = np.zeros((self.max_objects, 2), np.float32)               # (M, 2) box w, h
        offset = np.zeros((self.max_objects, 2), np.float32)             # (M, 2) sub-pixel centre
        index = np.zeros((self.max_objects,), np.int64)                  # (M,) y * w + x
        mask = np.zeros((self.max_objects,), np.float32)                 # (M,) 1 for a real object
        ignore = np.zeros((out_h, out_w), np.float32)                    # (h, w) 1 = no negative loss
        k = 0
        for (x1, y1, x2, y2), label in zip(boxes.tolist(), labels.tolist()):
            bw, bh = x2 - x1, y2 - y1
            if bw <= 0 or bh <= 0 or k >= self.max_objects:
                continue
            radius = max(0, int(gaussian_radius(math.ceil(bh), math.ceil(bw), self.min_overlap, self.exact_radius)))
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            ix, iy = int(cx), int(cy)
            ix, iy = min(max(ix, 0), out_w - 1), min(max(iy, 0), out_h - 1)
            draw_gaussian(heatmap[int(label)], (ix, iy), radius)
            size[k] = bw, bh
            offset[k] = cx - ix, cy - iy
            index[k] = iy * out_w + ix
            mask[k] = 1
            k += 1
        if ignore_boxes is not None:
            for x1, y1, x2, y2 in np.asarray(ignore_boxes, np.float32).reshape(-1, 4).tolist():
                xa, ya = max(int(math.floor(x1)), 0), max(int(math.floor(y1)), 0)
                xb, yb = min(int(math.ceil(x2)), out_w), min(int(math.ceil(y2)), out_h)
                ignore[ya:yb, xa:xb] = 1
        return {"heatmap": heatmap, "size": size, "offset": offset, "index": index, "mask": mask, "ignore": ignore}
