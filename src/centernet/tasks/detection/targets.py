"""Detection targets: class heatmap + size + offset at each object's integer centre.

Shapes (one image): C classes, h, w output size (input / 4), M = max_objects.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ...ops.gaussian import IGNORE_TARGET, cached_gaussian_2d, gaussian_radii, gaussian_radius




@dataclass
class DetectionTargetEncoder:
    """Turns boxes in output coordinates into the training targets of one image.

    Dense (the original's form): ``heatmap`` (C, h, w) with every Gaussian drawn, and ``ignore`` (h, w).
    Sparse (``sparse=True``): no map at all, only what draws it: ``peak_class`` and ``peak_radius`` (M,)
    beside ``index`` and ``mask``, and the ignore regions as ``ignore_rects`` (M, 5) rows
    ``[class or -1, x1, y1, x2, y2]`` (whole output pixels, end exclusive; all zero = unused). The loss
    (:func:`~centernet.losses.sparse_focal_loss`) then touches only the pixels the Gaussians cover, and
    :func:`~centernet.targets.sparse.render_heatmap` turns a batch of them back into the dense maps,
    identical to the dense encoder's.
    """

    num_classes: int
    max_objects: int = 128       # objects (and, sparse, ignore regions) per image kept; the rest are dropped
    min_overlap: float = 0.7     # IoU the Gaussian radius guarantees
    exact_radius: bool = False   # mathematically exact roots instead of the original's formula
    sparse: bool = False         # centres and radii instead of the drawn heatmap (see above)

    def __call__(
        self,
        boxes: np.ndarray,       # (N, 4) xyxy in output pixels (already clipped to the map)
        labels: np.ndarray,      # (N,) int, 0..C-1
        output_size: tuple[int, int],  # (h, w)
        ignore_boxes: np.ndarray | None = None,  # (G, 4) regions where negatives carry no loss
        ignore_labels: np.ndarray | None = None,  # (G,) the class each region is for, -1 (or None) every class
    ) -> dict[str, np.ndarray]:
        out_h, out_w = output_size
        m = self.max_objects
        size = np.zeros((m, 2), np.float32)               # (M, 2) box w, h
        offset = np.zeros((m, 2), np.float32)             # (M, 2) sub-pixel centre
        index = np.zeros((m,), np.int64)                  # (M,) y * w + x
        mask = np.zeros((m,), np.float32)                 # (M,) 1 for a real object
        # All objects at once (float64 throughout, as Python floats would be); in the dense form only the
        # Gaussians are drawn one object at a time, each a max-merge of a cached kernel into a slice.
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        labels = np.asarray(labels).reshape(-1)
        n = min(len(boxes), len(labels))
        wh = boxes[:n, 2:] - boxes[:n, :2]                              # (N, 2) box w, h
        keep = np.flatnonzero(~(wh <= 0).any(axis=1))[:m]               # (k,) NaN sides kept, then refused
        k = len(keep)
        radius: list[int] = []
        if k:
            wh, corners = wh[keep], boxes[keep]
            if not np.isfinite(wh).all():
                raise ValueError(f"DetectionTargetEncoder: a box is not finite: {corners[~np.isfinite(wh).all(1)][0]}")
            if k > 32:  # numpy pays ~15 us of call overhead that a few cached scalar look-ups do not
                radius = gaussian_radii(np.ceil(wh[:, 1]), np.ceil(wh[:, 0]), self.min_overlap, self.exact_radius)
                radius = np.maximum(radius.astype(np.int64), 0).tolist()    # (k,) max(0, int(r))
            else:
                radius = [integer_radius(h, w, self.min_overlap, self.exact_radius)
                          for w, h in np.ceil(wh).tolist()]
            centre = (corners[:, :2] + corners[:, 2:]) / 2                  # (k, 2) cx, cy
            integer = centre.astype(np.int64)                               # (k, 2) int(): towards zero
            np.minimum(np.maximum(integer, 0, out=integer), (out_w - 1, out_h - 1), out=integer)
            size[:k] = wh
            offset[:k] = centre - integer
            index[:k] = integer[:, 1] * out_w + integer[:, 0]
            mask[:k] = 1
        targets = {"size": size, "offset": offset, "index": index, "mask": mask}
        if self.sparse:
            peak_class = np.zeros((m,), np.int64)                          # (M,)
            peak_radius = np.zeros((m,), np.int64)                         # (M,)
            if k:
                peak_class[:k] = labels[keep]
                peak_radius[:k] = radius
            targets.update(peak_class=peak_class, peak_radius=peak_radius,
                           ignore_rects=ignore_rects(ignore_boxes, ignore_labels, output_size, m))
            return targets
        heatmap = np.zeros((self.num_classes, out_h, out_w), np.float32)  # (C, h, w)
        ignore = np.zeros((out_h, out_w), np.float32)                    # (h, w) 1 = no negative loss
        if k:
            for label, x, y, r in zip(labels[keep].astype(np.int64).tolist(), integer[:, 0].tolist(),
                                      integer[:, 1].tolist(), radius):
                # draw_gaussian inlined: the kernel cut at the map's border, max-merged into the class plane
                left, right = min(x, r), min(out_w - x, r + 1)
                top, bottom = min(y, r), min(out_h - y, r + 1)
                region = heatmap[label, y - top : y + bottom, x - left : x + right]
                np.maximum(region, cached_gaussian_2d(r)[r - top : r + bottom, r - left : r + right], out=region)
        if ignore_boxes is not None:
            mark_ignored(heatmap, ignore, ignore_boxes, ignore_labels)
        return {"heatmap": heatmap, **targets, "ignore": ignore}


def ignore_rects(
    ignore_boxes: np.ndarray | None,          # (G, 4) xyxy output pixels
    ignore_labels: np.ndarray | None,         # (G,) the class each region is for, -1 (or None) every class
    output_size: tuple[int, int],             # (h, w)
    slots: int,
) -> np.ndarray:
    """(slots, 5) int64 rows ``[class or -1, x1, y1, x2, y2]``: the pixels :func:`mark_ignored` marks.

    Rows past the regions are all zero (an empty rectangle). Regions beyond ``slots`` are dropped with a
    warning: they then count as background.
    """
    rects = np.zeros((slots, 5), np.int64)
    if ignore_boxes is None:
        return rects
    regions = np.asarray(ignore_boxes, np.float32).reshape(-1, 4)
    if not len(regions):
        return rects
    out_h, out_w = output_size
    if len(regions) > slots:
        warnings.warn(f"{len(regions)} ignore regions in one image, {slots} kept: the rest count as background",
                      stacklevel=2)
        regions = regions[:slots]
    g = len(regions)
    rects[:g, 0] = -1 if ignore_labels is None else np.asarray(ignore_labels).reshape(-1)[:g]
    rects[:g, 1:3] = np.maximum(np.floor(regions[:, :2]), 0)
    rects[:g, 3] = np.minimum(np.ceil(regions[:, 2]), out_w)
    rects[:g, 4] = np.minimum(np.ceil(regions[:, 3]), out_h)
    return rects


def mark_ignored(
    heatmap: np.ndarray,           # (C, h, w) targets, written in place
    ignore: np.ndarray,            # (h, w) 1 = no negative loss in any class, written in place
    ignore_boxes: np.ndarray,      # (G, 4) xyxy output pixels
    ignore_labels: np.ndarray | None = None,  # (G,) the class each region is for, -1 (or None) every class
) -> None:
    """Mark ignore regions (every pixel a box touches): in ``ignore`` for every class, else as IGNORE_TARGET."""
    num_classes, out_h, out_w = heatmap.shape
    regions = np.asarray(ignore_boxes, np.float32).reshape(-1, 4)
    for_class = np.full(len(regions), -1) if ignore_labels is None else np.asarray(ignore_labels).reshape(-1)
    for (x1, y1, x2, y2), c in zip(regions.tolist(), for_class.tolist()):
        xa, ya = max(int(math.floor(x1)), 0), max(int(math.floor(y1)), 0)
        xb, yb = max(min(int(math.ceil(x2)), out_w), 0), max(min(int(math.ceil(y2)), out_h), 0)  # no wrap-around
        if c < 0:
            ignore[ya:yb, xa:xb] = 1
        elif c < num_classes:  # a centre inside keeps its 1: it is still a positive
            region = heatmap[c, ya:yb, xa:xb]
            np.maximum(region, IGNORE_TARGET, out=region)


@lru_cache(maxsize=1 << 16)
def integer_radius(height: float, width: float, min_overlap: float, exact: bool) -> int:
    """``max(0, int(gaussian_radius(...)))`` of a box's ceiled height and width (whole numbers), memoised."""
    return max(0, int(gaussian_radius(height, width, min_overlap, exact)))
