"""Monocular 3D detection targets ("3D bounding box estimation" in the paper): 2D detection + depth,
dimensions and orientation read at each object's peak.

As the original's ``ddd`` sample (``src/lib/datasets/sample/ddd.py``), per object:

* ``heatmap``, ``size``, ``offset``, ``index``, ``mask``, ``ignore``: the detection targets
  (:class:`~centernet.targets.detection.DetectionTargetEncoder`), radius from the 2D box;
* ``depth`` (M, 1): the location's z (metres);
* ``dimensions`` (M, 3): h, w, l (metres);
* ``orientation_bin`` (M, 2) int64 and ``orientation_residual`` (M, 2): the observation angle
  ``alpha`` in two overlapping bins (:func:`encode_alpha`);
* ``corner_offsets`` (M, 16), with ``with_corners``: the 8 projected box corners (given per object as
  ``corners``, output pixels) minus the object's centre point, x y of corner 0 first (RTM3D, MonoCon:
  keypoints that show the heading as geometry).

Where the peak sits (``Mono3DTargetEncoder.centre``):

* ``"box"`` (default, the original): the 2D box centre;
* ``"projected"``: the projected 3D box centre, given per object as ``centres`` (what later
  monocular detectors use; better for truncated objects, whose clipped 2D box centre is far
  from the object). The dataset computes it (:func:`projected_centres`, then the same affine as
  the boxes). ``size`` stays the 2D box's w, h and the Gaussian radius comes from the 2D box;
  ``offset`` is ``centre - integer peak``. A centre outside the map is clamped to the map as the
  detection encoder clamps box centres: the peak goes to the nearest border pixel and
  ``offset`` carries the whole remainder (it can then exceed 1), so ``peak + offset`` is still the
  true projected centre.

Shapes (one image): N objects given, C classes, h, w output size, M = max_objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..detection.targets import DetectionTargetEncoder, mark_ignored
from ...ops.camera import box_corners, project
from ...ops.gaussian import draw_gaussian, gaussian_radius

CENTRE_MODES = ("box", "projected")

# The two orientation bins: bin b holds alpha with residual alpha - BIN_CENTRES[b].
BIN_CENTRES: tuple[float, float] = (-0.5 * math.pi, 0.5 * math.pi)
# The orientation's forms: the original's two overlapping bins (8 channels), or MonoDLE's 12 bins of 30 degrees,
# classified, each with its residual (24 channels): a classification that rewards knowing roughly where alpha is.
# "crop": no map head; a small network on each object's image crop (models/crops.py) gives the axis and the
# direction (CROP_ORIENTATION_VALUES), trained on ``alpha`` (M, 1) at ``object_boxes`` (M, 4).
ORIENTATIONS = ("two_bins", "multibin", "crop")
NUM_BINS = 12
ORIENTATION_CHANNELS = {"two_bins": 8, "multibin": 2 * NUM_BINS, "crop": 0}
CROP_ORIENTATION_VALUES = 4  # cos alpha, sin alpha (the direction), cos 2 alpha, sin 2 alpha (the axis)


def encode_alpha_multibin(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Observation angles (N,) -> bin (N,) int64 in 0..11 (bin k centred on k x 30 degrees) and the residual
    (N,) alpha - centre, in [-15, 15) degrees (radians)."""
    width = 2 * math.pi / NUM_BINS
    alpha = np.mod(np.asarray(alpha, np.float64).reshape(-1), 2 * math.pi)  # [0, 2 pi)
    bins = np.floor(alpha / width + 0.5).astype(np.int64) % NUM_BINS
    residual = np.mod(alpha - bins * width + math.pi, 2 * math.pi) - math.pi
    return bins, residual.astype(np.float32)


def encode_alpha(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Observation angles (N,) in [-pi, pi] -> bins (N, 2) int64 and residuals (N, 2), as the original.

    bin 0 (centre -pi/2) holds ``alpha < pi/6 or alpha > 5pi/6``, residual ``alpha + pi/2``;
    bin 1 (centre +pi/2) holds ``alpha > -pi/6 or alpha < -5pi/6``, residual ``alpha - pi/2``.
    The bins overlap (both are set for |alpha| < pi/6 or |alpha| > 5pi/6); a bin that is not set
    has residual 0. Each bin covers 240 degrees, so its residual is within 2pi/3 of 0 modulo 2pi
    (as the original it is not wrapped: alpha > 5pi/6 gives a bin-0 residual above pi; only its
    sin and cos are used).
    """
    alpha = np.asarray(alpha, np.float64).reshape(-1)
    in_bin = np.stack([(alpha < math.pi / 6) | (alpha > 5 * math.pi / 6),
                       (alpha > -math.pi / 6) | (alpha < -5 * math.pi / 6)], axis=1)  # (N, 2)
    residual = np.where(in_bin, alpha[:, None] - np.asarray(BIN_CENTRES)[None, :], 0.0)  # (N, 2)
    return in_bin.astype(np.int64), residual.astype(np.float32)


def projected_centres(objects3d: np.ndarray, calib: np.ndarray) -> np.ndarray:
    """Image points (N, 2) of the 3D box centres: P2 applied to ``(x, y - h/2, z)``.

    objects3d (N, 8): h, w, l, x, y, z, rotation_y, alpha (KITTI's location is the bottom centre,
    y pointing down, so the centre is h/2 above it); calib (3, 4) P2 in original pixels. Returns
    original pixels; the dataset warps them with the boxes' affine and passes them as ``centres``.
    Objects must be in front of the camera (z + P2[2, 3] > 0).
    """
    objects3d = np.asarray(objects3d, np.float64).reshape(-1, 8)
    h, x, y, z = objects3d[:, 0], objects3d[:, 3], objects3d[:, 4], objects3d[:, 5]
    points = np.stack([x, y - h / 2, z, np.ones_like(x)], axis=1)  # (N, 4) homogeneous
    image = points @ np.asarray(calib, np.float64).reshape(3, 4).T  # (N, 3)
    return (image[:, :2] / image[:, 2:3]).astype(np.float32)


def projected_corners(objects3d: np.ndarray, calib: np.ndarray) -> np.ndarray:
    """Image points (N, 8, 2) of the boxes' 8 corners (in :func:`~centernet.ops.camera.box_corners`' order), P2
    applied; objects3d (N, 8) as :func:`projected_centres`, calib (3, 4). Original pixels."""
    objects3d = np.asarray(objects3d, np.float64).reshape(-1, 8)
    if not len(objects3d):
        return np.zeros((0, 8, 2), np.float32)
    corners = np.stack([box_corners(o[0:3], o[3:6], float(o[6])) for o in objects3d])  # (N, 8, 3)
    return np.stack([project(np.asarray(calib, np.float64).reshape(3, 4), c) for c in corners]).astype(np.float32)


@dataclass
class Mono3DTargetEncoder:
    """Turns objects (2D boxes in output coordinates and their 3D boxes) into the training targets of one image."""

    num_classes: int
    max_objects: int = 128       # objects per image kept; the rest are dropped
    min_overlap: float = 0.7     # IoU the Gaussian radius guarantees
    exact_radius: bool = False   # mathematically exact roots instead of the original's formula
    centre: str = "box"          # where the peak sits: "box" (2D box centre) or "projected" (given centres)
    orientation: str = "two_bins"  # "two_bins" (the original's) or "multibin" (12 classified bins)
    with_radius: bool = False    # also ``peak_radius`` (M,): each object's Gaussian radius, to learn over it
    with_corners: bool = False   # also ``corner_offsets`` (M, 16): the projected corners from the centre point

    def __post_init__(self) -> None:
        if self.centre not in CENTRE_MODES:
            raise ValueError(f"Mono3DTargetEncoder: centre={self.centre!r}; expected one of {CENTRE_MODES}")
        if self.orientation not in ORIENTATIONS:
            raise ValueError(f"Mono3DTargetEncoder: orientation={self.orientation!r}; expected one of {ORIENTATIONS}")

    def __call__(
        self,
        boxes: np.ndarray,       # (N, 4) xyxy in output pixels (already warped and clipped to the map)
        labels: np.ndarray,      # (N,) int, 0..C-1
        objects3d: np.ndarray,   # (N, 8) h, w, l, x, y, z, rotation_y, alpha (KITTI camera frame)
        output_size: tuple[int, int],  # (h, w)
        ignore_boxes: np.ndarray | None = None,  # (G, 4) regions where negatives carry no loss
        ignore_labels: np.ndarray | None = None,  # (G,) the class each region is for (Van: Car), -1 every class
        centres: np.ndarray | None = None,  # (N, 2) output pixels; required for centre="projected", unused for "box"
        corners: np.ndarray | None = None,  # (N, 8, 2) projected box corners, output pixels; for with_corners
    ) -> dict[str, np.ndarray]:
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        labels = np.asarray(labels).reshape(-1)
        objects3d = np.asarray(objects3d, np.float32)
        n = len(boxes)
        if objects3d.size != n * 8:
            raise ValueError(f"Mono3DTargetEncoder: objects3d of shape {objects3d.shape} for {n} boxes; "
                             f"expected ({n}, 8)")
        objects3d = objects3d.reshape(n, 8)
        detection = DetectionTargetEncoder(self.num_classes, self.max_objects, self.min_overlap, self.exact_radius)
        targets = detection(boxes, labels, output_size, ignore_boxes, ignore_labels)
        kept = kept_objects(boxes, self.max_objects)  # slot m of the targets is object kept[m]
        if int(targets["mask"].sum()) != len(kept):  # the detection encoder's rule changed: slots would not match
            raise RuntimeError("Mono3DTargetEncoder: the detection encoder kept a different set of objects")
        if self.centre == "projected":
            if centres is None:
                raise ValueError("Mono3DTargetEncoder: centre='projected' needs `centres` (N, 2)")
            centres = np.asarray(centres, np.float32)
            if centres.size != n * 2:
                raise ValueError(f"Mono3DTargetEncoder: centres of shape {centres.shape} for {n} boxes; "
                                 f"expected ({n}, 2)")
            targets.update(self.peaks_at(boxes[kept], labels[kept], centres.reshape(n, 2)[kept], output_size))
            if ignore_boxes is not None:  # the new heatmap's regions ignored for one class
                mark_ignored(targets["heatmap"], np.zeros(output_size, np.float32), ignore_boxes, ignore_labels)
        if self.with_radius:
            targets["peak_radius"] = self.radii(boxes[kept])
        if self.orientation == "crop":  # where the object head looks, in slot order
            targets["object_boxes"] = np.zeros((self.max_objects, 4), np.float32)
            targets["object_boxes"][: len(kept)] = boxes[kept]
        if self.with_corners:
            if corners is None or np.asarray(corners).size != n * 16:
                raise ValueError(f"Mono3DTargetEncoder: with_corners needs `corners` ({n}, 8, 2), got "
                                 f"{None if corners is None else np.asarray(corners).shape}")
            targets["corner_offsets"] = self.corner_offsets(np.asarray(corners, np.float32).reshape(n, 8, 2)[kept],
                                                            targets["index"], targets["offset"], output_size[1])
        return {**targets, **self.encode_3d(objects3d[kept])}

    def radii(self, boxes: np.ndarray) -> np.ndarray:
        """(M,) int64 the Gaussian radius of each kept object's 2D box (P, 4), in slot order; empty slots 0."""
        radius = np.zeros((self.max_objects,), np.int64)
        for m, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
            radius[m] = max(0, int(gaussian_radius(math.ceil(y2 - y1), math.ceil(x2 - x1), self.min_overlap,
                                                   self.exact_radius)))
        return radius

    def corner_offsets(self, corners: np.ndarray, index: np.ndarray, offset: np.ndarray, out_w: int) -> np.ndarray:
        """(M, 16) the kept objects' corners (P, 8, 2) minus their centre points ``peak + offset`` (what decode
        reads), flattened x0 y0 x1 y1 ...; empty slots 0."""
        p = len(corners)
        peak = np.stack([index[:p] % out_w, index[:p] // out_w], axis=1).astype(np.float32)  # (P, 2)
        result = np.zeros((self.max_objects, 16), np.float32)
        result[:p] = (corners - (peak + offset[:p])[:, None, :]).reshape(p, 16)
        return result

    def peaks_at(
        self,
        boxes: np.ndarray,    # (P, 4) the kept objects' 2D boxes, P <= M, in slot order
        labels: np.ndarray,   # (P,)
        centres: np.ndarray,  # (P, 2) where their peaks sit, output pixels
        output_size: tuple[int, int],
    ) -> dict[str, np.ndarray]:
        """``heatmap``, ``offset`` and ``index`` with the peaks at ``centres`` instead of the box centres.

        Same rules as the detection encoder: radius of the 2D box, integer peak ``int(c)`` clamped
        to the map, ``offset = c - peak`` (not clamped).
        """
        out_h, out_w = output_size
        heatmap = np.zeros((self.num_classes, out_h, out_w), np.float32)  # (C, h, w)
        offset = np.zeros((self.max_objects, 2), np.float32)              # (M, 2)
        index = np.zeros((self.max_objects,), np.int64)                   # (M,)
        for m, ((x1, y1, x2, y2), label, (cx, cy)) in enumerate(zip(boxes.tolist(), labels.tolist(),
                                                                     centres.tolist())):
            radius = max(0, int(gaussian_radius(math.ceil(y2 - y1), math.ceil(x2 - x1), self.min_overlap,
                                                self.exact_radius)))
            ix, iy = min(max(int(cx), 0), out_w - 1), min(max(int(cy), 0), out_h - 1)
            draw_gaussian(heatmap[int(label)], (ix, iy), radius)
            offset[m] = cx - ix, cy - iy
            index[m] = iy * out_w + ix
        return {"heatmap": heatmap, "offset": offset, "index": index}

    def encode_3d(self, objects3d: np.ndarray) -> dict[str, np.ndarray]:
        """``depth`` (M, 1) z, ``dimensions`` (M, 3) h w l, ``orientation_bin`` and ``orientation_residual`` (M, 2)
        (two bins) or (M, 1) (multibin), or ``alpha`` (M, 1) (crop), of the kept objects (P, 8), slot p being
        object p; empty slots are 0."""
        m, p = self.max_objects, len(objects3d)
        depth = np.zeros((m, 1), np.float32)
        dimensions = np.zeros((m, 3), np.float32)
        depth[:p, 0] = objects3d[:, 5]
        dimensions[:p] = objects3d[:, 0:3]
        if self.orientation == "crop":
            alpha = np.zeros((m, 1), np.float32)
            alpha[:p, 0] = objects3d[:, 7]
            return {"depth": depth, "dimensions": dimensions, "alpha": alpha}
        columns = 2 if self.orientation == "two_bins" else 1
        orientation_bin = np.zeros((m, columns), np.int64)
        orientation_residual = np.zeros((m, columns), np.float32)
        encode = encode_alpha if self.orientation == "two_bins" else encode_alpha_multibin
        bins, residuals = encode(objects3d[:, 7])
        orientation_bin[:p], orientation_residual[:p] = bins.reshape(p, columns), residuals.reshape(p, columns)
        return {"depth": depth, "dimensions": dimensions, "orientation_bin": orientation_bin,
                "orientation_residual": orientation_residual}


def kept_objects(boxes: np.ndarray, max_objects: int) -> np.ndarray:
    """Indices of the objects the detection encoder turns into targets, in slot order.

    Those with a 2D box of positive width and height, the first ``max_objects`` of them.
    """
    has_area = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # (N,)
    return np.flatnonzero(has_area)[:max_objects]
