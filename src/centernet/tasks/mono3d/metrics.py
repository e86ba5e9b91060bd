"""KITTI 3D object evaluation (2D box AP, AOS, bird's-eye-view AP, 3D AP) in numpy.

Follows the KITTI devkit's ``evaluate_object.cpp`` (and its python ports), per class and difficulty:

**Ground truth** of an image, for class ``C`` at a difficulty (min 2D box height, max occlusion,
max truncation):

* an object of class ``C`` that passes the difficulty filter is *valid* (it counts in the recall
  denominator); one that fails it (too small: ``y2 - y1 < min_height``, too occluded, too truncated)
  is *ignored*: a detection matched to it is neither a true nor a false positive;
* a *neighbouring* class (``Van`` for ``Car``, ``Person_sitting`` for ``Pedestrian``) is ignored the
  same way; every other class is left out (a detection on a ``Truck`` is a false positive for ``Car``);
* ``DontCare`` boxes are regions: a detection of ``C`` that is left unmatched and whose 2D box lies
  inside one (intersection / detection area > the class's overlap threshold) is not a false positive.

**Detections** of other classes are left out; a detection of ``C`` whose 2D box is lower than the
difficulty's min height is *ignored* (never a true or false positive).

**Matching**, per image (metric overlap: 2D box IoU, BEV rotated-rectangle IoU, or 3D IoU, strictly
above the class's threshold):

1. *thresholds*: every ground truth in turn takes the highest-scoring unassigned detection that
   overlaps it enough; the scores of the (valid gt, valid detection) pairs are the true-positive
   scores ``s_1 >= s_2 >= ... >= s_K`` (K <= n, the number of valid ground truths);
2. *precision at a score threshold t*, with only detections scoring ``>= t``: every ground truth in
   turn takes the unassigned valid detection with the largest overlap (an ignored too-small one only
   if there is none); TP = (valid gt, valid det) pairs, FN = valid gts left unmatched, FP = valid
   detections left unmatched and not in a DontCare region. precision = TP / (TP + FP);
   orientation similarity = sum over TPs of ``(1 + cos(alpha_gt - alpha_det)) / 2`` / (TP + FP).

**AP** samples recall at ``R40 = {1/40, 2/40, ..., 1}`` (``recall_points=40``, the official metric
since 2019) or ``R11 = {0, 0.1, ..., 1}`` (``recall_points=11``, the original one). For a recall point
``r`` the threshold is the score ``s_k`` of the first true positive reaching it (``k = ceil(r n)``);
precision there (0 if ``k > K``) is made non-increasing (``p[i] = max(p[i:])``) and averaged over the
points. AOS is the same with the orientation similarity in place of the precision; it is computed
with the 2D box matching only, as in the devkit.

Deviations from the devkit (all deliberate):

* *Recall sampling.* The devkit walks the sorted TP scores once and keeps the one whose recall is
  nearest to the next recall step, moving one step per kept score; with fewer than ~40 valid ground
  truths it runs out of scores before recall 1 and reports e.g. AP 0.1 for 4 perfectly detected
  objects. Here each recall point takes the first TP score whose recall reaches it, which gives the
  exact interpolated AP on small sets and differs from the devkit by at most one TP per recall step
  (a fraction of a point) on the full validation set.
* *DontCare for BEV/3D.* The devkit tests DontCare regions with the metric's own overlap function;
  for BEV/3D that compares the detection with the DontCare row's placeholder 3D box (dimensions -1,
  location -1000), which never overlaps, so DontCare suppression happens for the 2D box metric (and
  AOS) only. That is the default here (``dontcare_all_metrics=False``); ``True`` applies the 2D
  DontCare test to BEV and 3D as well.
* The ground-truth height test is ``height < min_height`` as in the C++ devkit (the python port
  ``kitti_object_eval_python`` uses ``<=``).

Boxes: 2D ``(x1, y1, x2, y2)`` pixels, widths ``x2 - x1`` (no ``+ 1``, as the devkit). BEV boxes
``(x, z, w, l, ry)`` in the camera's ground plane: the devkit's corners are ``R(ry) @ (+-l/2, +-w/2)
+ (x, z)`` with ``R = [[cos, sin], [-sin, cos]]``, i.e. the length runs along ``(cos ry, -sin ry)``
in (x, z). 3D boxes ``(x, y, z, h, w, l, ry)`` with ``y`` the *bottom* (camera y points down), so a
box spans ``[y - h, y]`` vertically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ...data.kitti import KittiObject
from ...errors import CenterNetError
from ...ops.boxes import box_coverage, box_iou
from ...ops.camera import wrap_angle

__all__ = [
    "KittiDifficulty",
    "KittiEvalSettings",
    "ERROR_METRICS",
    "LOOSE_OVERLAP",
    "evaluate_kitti",
    "match_detections",
    "matched_errors",
    "format_kitti_table",
    "bev_corners",
    "bev_intersection_area",
    "bev_iou",
    "iou3d",
]

METRICS: tuple[str, ...] = ("bbox", "aos", "bev", "3d")
OVERLAP_METRICS: tuple[str, ...] = ("bbox", "bev", "3d")  # index into a class's min_overlap triple
SUMMARY_PREFIX: dict[str, str] = {"bbox": "ap2d", "aos": "aos", "bev": "bev_ap", "3d": "ap3d"}


# --------------------------------------------------------------------------- settings

@dataclass(frozen=True)
class KittiDifficulty:
    """Which ground truth a difficulty level evaluates (the rest is ignored, not missed)."""

    min_height: float       # px; gts with y2 - y1 below are ignored, and so are detections
    max_occlusion: int      # gts with occluded above are ignored
    max_truncation: float   # gts with truncated above are ignored


def _default_difficulties() -> dict[str, KittiDifficulty]:
    return {
        "easy": KittiDifficulty(40, 0, 0.15),
        "moderate": KittiDifficulty(25, 1, 0.30),
        "hard": KittiDifficulty(25, 2, 0.50),
    }


@dataclass
class KittiEvalSettings:
    """The devkit's parameters; the defaults are the official benchmark's."""

    classes: tuple[str, ...] = ("Car", "Pedestrian", "Cyclist")
    # class -> minimum overlap (strictly above) for (bbox, bev, 3d); AOS uses the bbox one
    min_overlap: dict[str, tuple[float, float, float]] = field(default_factory=lambda: {
        "Car": (0.7, 0.7, 0.7), "Pedestrian": (0.5, 0.5, 0.5), "Cyclist": (0.5, 0.5, 0.5),
    })
    recall_points: int = 40  # 40: R40 {1/40..1} (official); 11: R11 {0, 0.1..1} (the older variant)
    difficulties: dict[str, KittiDifficulty] = field(default_factory=_default_difficulties)
    # ground-truth types ignored (neither TP nor FN, nor FP for a detection on them) for a class
    neighbor_classes: dict[str, tuple[str, ...]] = field(default_factory=lambda: {
        "Car": ("Van",), "Pedestrian": ("Person_sitting",),
    })
    dontcare_type: str = "DontCare"
    # intersection / detection area a DontCare box needs to absorb a detection; None: the class's
    # min_overlap for the metric (the devkit)
    dontcare_overlap: float | None = None
    dontcare_all_metrics: bool = False  # False: DontCare applies to bbox/AOS only (the devkit, see above)

    def validate(self) -> None:
        """:class:`CenterNetError` for a setting the evaluation cannot use."""
        if self.recall_points not in (11, 40):
            raise CenterNetError(f"recall_points={self.recall_points!r}; expected 40 (R40) or 11 (R11)")
        if not self.classes:
            raise CenterNetError("KittiEvalSettings.classes is empty; expected at least one class name")
        if not self.difficulties:
            raise CenterNetError("KittiEvalSettings.difficulties is empty; expected e.g. easy/moderate/hard")
        for name in self.classes:
            overlaps = self.min_overlap.get(name)
            if overlaps is None or len(overlaps) != 3 or not all(0.0 <= float(v) < 1.0 for v in overlaps):
                raise CenterNetError(
                    f"min_overlap[{name!r}] = {overlaps!r}; expected three values in [0, 1) for bbox, bev, 3d"
                )
        if self.dontcare_overlap is not None and not 0.0 <= self.dontcare_overlap < 1.0:
            raise CenterNetError(f"dontcare_overlap={self.dontcare_overlap!r}; expected None or a value in [0, 1)")


# --------------------------------------------------------------------------- geometry

def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den where den > 0, else 0 (same shapes)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def bev_corners(boxes: np.ndarray) -> np.ndarray:
    """Corners (N, 4, 2) in (x, z), counter-clockwise, of BEV boxes (N, 5) = (x, z, w, l, ry).

    The devkit's convention: corner = R(ry) @ (u, v) + (x, z), R = [[cos, sin], [-sin, cos]], u along
    the length (+-l/2), v across (+-w/2); so the heading (u axis) is (cos ry, -sin ry) in (x, z).
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 5)
    x, z, w, l, ry = boxes.T                                      # each (N,)
    u = np.stack([l, l, -l, -l], axis=1) / 2                      # (N, 4)
    v = np.stack([-w, w, w, -w], axis=1) / 2                      # (N, 4): (+,-),(+,+),(-,+),(-,-) is CCW
    c, s = np.cos(ry)[:, None], np.sin(ry)[:, None]
    cx = x[:, None] + c * u + s * v
    cz = z[:, None] - s * u + c * v
    return np.stack([cx, cz], axis=2)                             # (N, 4, 2)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z of the 2D cross product, over the last axis (..., 2) x (..., 2) -> (...)."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _convex_quad_intersection_area(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Intersection areas (K,) of K pairs of convex CCW quadrilaterals p (K, 4, 2) and q (K, 4, 2).

    The intersection of two convex polygons is the convex hull of (vertices of p inside q) +
    (vertices of q inside p) + (crossings of p's edges with q's edges). Those candidates (24 per pair,
    with a validity mask) are sorted by angle about their mean and the shoelace formula gives the area.
    Points on a boundary count as inside (tolerance), so identical, touching and nested boxes work;
    parallel edges give no crossing, and their shared vertices come from the inside tests.
    """
    k = p.shape[0]
    origin = p.mean(axis=1, keepdims=True)                        # (K, 1, 2): work near 0 for precision
    p = p - origin
    q = q - origin
    scale = np.maximum(np.abs(p).max(axis=(1, 2)), np.abs(q).max(axis=(1, 2)))  # (K,)
    tol = 1e-9 * (1.0 + scale)                                    # (K,) metres

    def inside(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
        # points (K, P, 2) in convex CCW poly (K, 4, 2) -> (K, P) bool, boundary included
        edges = np.roll(poly, -1, axis=1) - poly                  # (K, 4, 2)
        length = np.linalg.norm(edges, axis=2)                    # (K, 4)
        rel = points[:, None, :, :] - poly[:, :, None, :]         # (K, 4, P, 2)
        dist = _cross(edges[:, :, None, :], rel) / np.maximum(length, 1e-300)[:, :, None]  # (K, 4, P)
        return (dist >= -tol[:, None, None]).all(axis=1)

    p_in_q = inside(p, q)                                         # (K, 4)
    q_in_p = inside(q, p)                                         # (K, 4)

    # crossings of edge i of p (a + t r) with edge j of q (b + s e), t, s in [0, 1]
    r = np.roll(p, -1, axis=1) - p                                # (K, 4, 2)
    e = np.roll(q, -1, axis=1) - q                                # (K, 4, 2)
    d = q[:, None, :, :] - p[:, :, None, :]                       # (K, 4, 4, 2) b_j - a_i
    den = _cross(r[:, :, None, :], e[:, None, :, :])              # (K, 4, 4)
    norms = np.linalg.norm(r, axis=2)[:, :, None] * np.linalg.norm(e, axis=2)[:, None, :]
    crossing = np.abs(den) > 1e-12 * np.maximum(norms, 1e-300)    # not parallel
    safe_den = np.where(crossing, den, 1.0)
    t = _cross(d, e[:, None, :, :]) / safe_den                    # (K, 4, 4) along p's edge
    s = _cross(d, r[:, :, None, :]) / safe_den                    # (K, 4, 4) along q's edge
    eps = 1e-9
    crossing &= (t >= -eps) & (t <= 1 + eps) & (s >= -eps) & (s <= 1 + eps)
    cross_pts = p[:, :, None, :] + t[..., None] * r[:, :, None, :]  # (K, 4, 4, 2)

    points = np.concatenate([p, q, cross_pts.reshape(k, 16, 2)], axis=1)     # (K, 24, 2)
    valid = np.concatenate([p_in_q, q_in_p, crossing.reshape(k, 16)], axis=1)  # (K, 24)
    count = valid.sum(axis=1)                                     # (K,)
    centre = (points * valid[..., None]).sum(axis=1) / np.maximum(count, 1)[:, None]  # (K, 2)
    rel = points - centre[:, None, :]
    angle = np.where(valid, np.arctan2(rel[..., 1], rel[..., 0]), np.inf)    # (K, 24)
    order = np.argsort(angle, axis=1, kind="stable")
    ordered = np.take_along_axis(rel, order[..., None], axis=1)  # (K, 24, 2), valid ones first
    ordered_valid = np.take_along_axis(valid, order, axis=1)
    # pad with the first point: the padded tail adds zero-area edges to the closed loop
    ordered = np.where(ordered_valid[..., None], ordered, ordered[:, :1, :])
    area = 0.5 * _cross(ordered, np.roll(ordered, -1, axis=1)).sum(axis=1)   # (K,)
    return np.where(count >= 3, np.maximum(area, 0.0), 0.0)


def bev_intersection_area(a: np.ndarray, b: np.ndarray, chunk: int = 16384) -> np.ndarray:
    """Intersection areas (N, M) in the ground plane of BEV boxes a (N, 5) and b (M, 5) = (x, z, w, l, ry)."""
    a = np.asarray(a, np.float64).reshape(-1, 5)
    b = np.asarray(b, np.float64).reshape(-1, 5)
    n, m = len(a), len(b)
    out = np.zeros(n * m, np.float64)
    if n == 0 or m == 0:
        return out.reshape(n, m)
    ca, cb = bev_corners(a), bev_corners(b)                       # (N, 4, 2), (M, 4, 2)
    ia, ib = np.divmod(np.arange(n * m), m)                       # pair -> (row, column)
    # only pairs whose bounding circles meet can intersect
    radius_a = 0.5 * np.hypot(a[:, 2], a[:, 3])
    radius_b = 0.5 * np.hypot(b[:, 2], b[:, 3])
    gap = np.hypot(a[ia, 0] - b[ib, 0], a[ia, 1] - b[ib, 1])
    near = np.flatnonzero(gap <= radius_a[ia] + radius_b[ib] + 1e-9)
    for start in range(0, len(near), chunk):
        pairs = near[start:start + chunk]
        out[pairs] = _convex_quad_intersection_area(ca[ia[pairs]], cb[ib[pairs]])
    return out.reshape(n, m)


def bev_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotated IoU (N, M) in the ground plane of BEV boxes a (N, 5) and b (M, 5) = (x, z, w, l, ry)."""
    a = np.asarray(a, np.float64).reshape(-1, 5)
    b = np.asarray(b, np.float64).reshape(-1, 5)
    inter = bev_intersection_area(a, b)
    area_a = a[:, 2].clip(min=0) * a[:, 3].clip(min=0)
    area_b = b[:, 2].clip(min=0) * b[:, 3].clip(min=0)
    return _safe_divide(inter, area_a[:, None] + area_b[None, :] - inter)


def iou3d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3D IoU (N, M) of boxes a (N, 7) and b (M, 7) = (x, y, z, h, w, l, ry), camera frame.

    ``y`` is the bottom face (y points down), so a box spans [y - h, y]; volume overlap = BEV
    intersection area x vertical overlap, IoU = overlap / (volume a + volume b - overlap).
    """
    a = np.asarray(a, np.float64).reshape(-1, 7)
    b = np.asarray(b, np.float64).reshape(-1, 7)
    area = bev_intersection_area(a[:, [0, 2, 4, 5, 6]], b[:, [0, 2, 4, 5, 6]])      # (N, M)
    top = np.maximum(a[:, None, 1] - a[:, None, 3], b[None, :, 1] - b[None, :, 3])  # (N, M)
    bottom = np.minimum(a[:, None, 1], b[None, :, 1])
    inter = area * (bottom - top).clip(min=0)
    vol_a = a[:, 3].clip(min=0) * a[:, 4].clip(min=0) * a[:, 5].clip(min=0)
    vol_b = b[:, 3].clip(min=0) * b[:, 4].clip(min=0) * b[:, 5].clip(min=0)
    return _safe_divide(inter, vol_a[:, None] + vol_b[None, :] - inter)


# --------------------------------------------------------------------------- per-image arrays

@dataclass
class _Objects:
    """One image's objects as arrays (N objects)."""

    types: list[str]          # lower-case type names
    boxes: np.ndarray         # (N, 4) xyxy pixels
    boxes3d: np.ndarray       # (N, 7) x y z h w l ry
    alpha: np.ndarray         # (N,)
    occluded: np.ndarray      # (N,)
    truncated: np.ndarray     # (N,)
    scores: np.ndarray        # (N,) (0 for ground truth)


def _to_arrays(objects: Sequence[KittiObject]) -> _Objects:
    n = len(objects)
    return _Objects(
        types=[o.type.lower() for o in objects],
        boxes=np.array([o.box for o in objects], np.float64).reshape(n, 4),
        boxes3d=np.array([(*o.location, *o.dimensions, o.rotation_y) for o in objects], np.float64).reshape(n, 7),
        alpha=np.array([o.alpha for o in objects], np.float64),
        occluded=np.array([o.occluded for o in objects], np.float64),
        truncated=np.array([o.truncated for o in objects], np.float64),
        scores=np.array([0.0 if o.score is None else o.score for o in objects], np.float64),
    )


@dataclass
class _ClassImage:
    """One image, one class: the gts of the class and its neighbours, its detections (score order)."""

    gt_is_class: np.ndarray     # (G,) bool: True class C, False a neighbouring class
    gt_height: np.ndarray       # (G,)
    gt_occluded: np.ndarray     # (G,)
    gt_truncated: np.ndarray    # (G,)
    gt_alpha: np.ndarray        # (G,)
    det_scores: np.ndarray      # (D,) decreasing
    det_height: np.ndarray      # (D,)
    det_alpha: np.ndarray       # (D,)
    overlaps: dict[str, np.ndarray]   # metric -> (D, G)
    dontcare: np.ndarray        # (D,) largest intersection / detection area over DontCare boxes (0 if none)


def _class_image(gt: _Objects, det: _Objects, name: str, settings: KittiEvalSettings) -> _ClassImage:
    cls = name.lower()
    neighbours = {t.lower() for t in settings.neighbor_classes.get(name, ())}
    gi = np.array([i for i, t in enumerate(gt.types) if t == cls or t in neighbours], np.int64)
    di = np.array([i for i, t in enumerate(det.types) if t == cls], np.int64)
    di = di[np.argsort(-det.scores[di], kind="stable")]
    dc = np.array([i for i, t in enumerate(gt.types) if t == settings.dontcare_type.lower()], np.int64)
    gt_boxes, det_boxes = gt.boxes[gi], det.boxes[di]
    overlaps = {
        "bbox": box_iou(det_boxes, gt_boxes),
        "bev": bev_iou(det.boxes3d[di][:, [0, 2, 4, 5, 6]], gt.boxes3d[gi][:, [0, 2, 4, 5, 6]]),
        "3d": iou3d(det.boxes3d[di], gt.boxes3d[gi]),
    }
    covered = box_coverage(det_boxes, gt.boxes[dc])                                    # (D, C)
    return _ClassImage(
        gt_is_class=np.array([gt.types[i] == cls for i in gi], bool),
        gt_height=gt_boxes[:, 3] - gt_boxes[:, 1],
        gt_occluded=gt.occluded[gi],
        gt_truncated=gt.truncated[gi],
        gt_alpha=gt.alpha[gi],
        det_scores=det.scores[di],
        det_height=np.abs(det_boxes[:, 3] - det_boxes[:, 1]),
        det_alpha=det.alpha[di],
        overlaps=overlaps,
        dontcare=covered.max(axis=1) if covered.shape[1] else np.zeros(len(di)),
    )


def _gt_ignored(img: _ClassImage, level: KittiDifficulty) -> np.ndarray:
    """(G,) bool: True for ignored gts (neighbour class, or fails the difficulty), False for valid ones."""
    fails = (
        (img.gt_occluded > level.max_occlusion)
        | (img.gt_truncated > level.max_truncation)
        | (img.gt_height < level.min_height)
    )
    return ~img.gt_is_class | fails


# --------------------------------------------------------------------------- matching

def _tp_scores(overlaps: np.ndarray, gt_ignored: np.ndarray, det_ignored: np.ndarray, min_overlap: float,
               scores: np.ndarray) -> list[float]:
    """Pass 1 on one image: scores of the true positives, each gt taking the best-scoring free match.

    overlaps (D, G); gt_ignored (G,); det_ignored (D,) (too small); scores (D,) decreasing.
    """
    assigned = np.zeros(len(scores), bool)
    found: list[float] = []
    for g in range(overlaps.shape[1]):
        candidates = np.flatnonzero(~assigned & (overlaps[:, g] > min_overlap))
        if len(candidates) == 0:
            continue
        j = candidates[0]  # detections are in decreasing score order: the first is the best scored
        assigned[j] = True
        if not (gt_ignored[g] or det_ignored[j]):
            found.append(float(scores[j]))
    return found


def _statistics(overlaps: np.ndarray, gt_ignored: np.ndarray, det_ignored: np.ndarray, min_overlap: float,
                active: int, dontcare: np.ndarray | None, dontcare_overlap: float,
                gt_alpha: np.ndarray, det_alpha: np.ndarray) -> tuple[int, int, int, float]:
    """Pass 2 on one image with the ``active`` best-scored detections: (tp, fp, fn, orientation similarity).

    Each gt takes the free valid detection with the largest overlap above ``min_overlap``, else the
    first free too-small one; unmatched valid detections are false positives unless a DontCare box
    covers them (``dontcare`` (D,) > ``dontcare_overlap``; None: no DontCare test).
    """
    overlaps = overlaps[:active]
    det_ignored = det_ignored[:active]
    assigned = np.zeros(active, bool)
    tp = fn = 0
    similarity = 0.0
    for g in range(overlaps.shape[1]):
        hits = ~assigned & (overlaps[:, g] > min_overlap)
        valid = hits & ~det_ignored
        if valid.any():
            j = int(np.argmax(np.where(valid, overlaps[:, g], -np.inf)))
        elif hits.any():
            j = int(np.argmax(hits))
        else:
            fn += int(not gt_ignored[g])
            continue
        assigned[j] = True
        if not (gt_ignored[g] or det_ignored[j]):
            tp += 1
            similarity += (1.0 + math.cos(gt_alpha[g] - det_alpha[j])) / 2.0
    unmatched = ~assigned & ~det_ignored
    if dontcare is not None:
        unmatched &= ~(dontcare[:active] > dontcare_overlap)
    return tp, int(unmatched.sum()), fn, similarity


def _recall_grid(recall_points: int) -> np.ndarray:
    """Recall sample points: R40 (1/40..1) or R11 (0, 0.1..1)."""
    if recall_points == 11:
        return np.linspace(0.0, 1.0, 11)
    return np.arange(1, recall_points + 1) / recall_points


def _average_precision(images: list[_ClassImage], level: KittiDifficulty, metric: str, min_overlap: float,
                       settings: KittiEvalSettings) -> tuple[float, float, int]:
    """(AP, AOS, number of valid gts) of one class at one difficulty for a metric (bbox, bev, 3d)."""
    gt_ignored = [_gt_ignored(img, level) for img in images]
    det_ignored = [img.det_height < level.min_height for img in images]
    n_gt = int(sum((~ig).sum() for ig in gt_ignored))
    if n_gt == 0:
        return math.nan, math.nan, 0

    scores: list[float] = []
    for img, gi, di in zip(images, gt_ignored, det_ignored):
        scores += _tp_scores(img.overlaps[metric], gi, di, min_overlap, img.det_scores)
    tp_scores = np.sort(np.array(scores))[::-1]                   # (K,) decreasing

    grid = _recall_grid(settings.recall_points)                   # (R,)
    needed = np.maximum(np.ceil(grid * n_gt - 1e-9), 1).astype(np.int64)  # TPs needed for each point
    reached = needed <= len(tp_scores)                            # (R,)
    thresholds = np.unique(tp_scores[needed[reached] - 1])        # (T,) increasing

    use_dontcare = metric == "bbox" or settings.dontcare_all_metrics
    dc_overlap = settings.dontcare_overlap if settings.dontcare_overlap is not None else min_overlap
    totals = np.zeros((len(thresholds), 4))                       # (T, [tp, fp, fn, similarity])
    for img, gi, di in zip(images, gt_ignored, det_ignored):
        # detections are in decreasing score order: those >= t are the first `active`
        active = np.searchsorted(-img.det_scores, -thresholds, side="right")  # (T,)
        for count in np.unique(active):
            stats = _statistics(
                img.overlaps[metric], gi, di, min_overlap, int(count), img.dontcare if use_dontcare else None,
                dc_overlap, img.gt_alpha, img.det_alpha,
            )
            totals[active == count] += stats

    precision = np.zeros(len(grid))
    similarity = np.zeros(len(grid))
    at = np.searchsorted(thresholds, tp_scores[needed[reached] - 1])     # threshold index per reached point
    positives = totals[at, 0] + totals[at, 1]                     # tp + fp
    precision[reached] = _safe_divide(totals[at, 0], positives)
    similarity[reached] = _safe_divide(totals[at, 3], positives)
    precision = np.maximum.accumulate(precision[::-1])[::-1]      # p[i] = max(p[i:])
    similarity = np.maximum.accumulate(similarity[::-1])[::-1]
    return float(precision.mean()), float(similarity.mean()), n_gt


# --------------------------------------------------------------------------- public API

def _check_inputs(ground_truth: Sequence[Sequence[KittiObject]], detections: Sequence[Sequence[KittiObject]]) -> None:
    if len(ground_truth) != len(detections):
        raise CenterNetError(
            f"KITTI evaluation: {len(ground_truth)} ground-truth images but {len(detections)} detection lists; "
            "expected one list per image, in the same order"
        )
    for i, objects in enumerate(detections):
        for obj in objects:
            if obj.score is None or not math.isfinite(obj.score):
                raise CenterNetError(f"KITTI evaluation: image {i} has a {obj.type} detection without a finite score")


def evaluate_kitti(ground_truth: Sequence[Sequence[KittiObject]], detections: Sequence[Sequence[KittiObject]],
                   settings: KittiEvalSettings | None = None) -> dict:
    """KITTI AP (2D box, AOS, BEV, 3D) per class and difficulty, as fractions in [0, 1].

    ``ground_truth[i]`` and ``detections[i]`` are image i's label rows and result rows (with scores).
    Returns ``{"per_class": {cls: {difficulty: {"bbox", "aos", "bev", "3d"}}}, "num_gt": {cls:
    {difficulty: n}}, "recall_points": R, "classes": [...], "difficulties": [...]}`` plus the means
    over the classes with valid ground truth: ``ap2d_<d>``, ``aos_<d>``, ``bev_ap_<d>``, ``ap3d_<d>``
    for every difficulty d. A class without valid ground truth at a difficulty has NaN there.
    """
    settings = settings if settings is not None else KittiEvalSettings()
    settings.validate()
    _check_inputs(ground_truth, detections)
    gts = [_to_arrays(objects) for objects in ground_truth]
    dets = [_to_arrays(objects) for objects in detections]

    per_class: dict[str, dict[str, dict[str, float]]] = {}
    num_gt: dict[str, dict[str, int]] = {}
    for name in settings.classes:
        images = [_class_image(g, d, name, settings) for g, d in zip(gts, dets)]
        per_class[name], num_gt[name] = {}, {}
        for level_name, level in settings.difficulties.items():
            result: dict[str, float] = {}
            for k, metric in enumerate(OVERLAP_METRICS):
                ap, aos, n = _average_precision(images, level, metric, float(settings.min_overlap[name][k]), settings)
                result[metric] = ap
                if metric == "bbox":
                    result["aos"] = aos
            per_class[name][level_name] = {m: result[m] for m in METRICS}
            num_gt[name][level_name] = n

    metrics: dict = {
        "per_class": per_class, "num_gt": num_gt, "recall_points": settings.recall_points,
        "classes": list(settings.classes), "difficulties": list(settings.difficulties),
    }
    for level_name in settings.difficulties:
        counted = [name for name in settings.classes if num_gt[name][level_name] > 0]
        for metric in METRICS:
            values = [per_class[name][level_name][metric] for name in counted]
            metrics[f"{SUMMARY_PREFIX[metric]}_{level_name}"] = float(np.mean(values)) if values else math.nan
    return metrics


# Looser overlaps that monocular 3D papers also report: IoU 0.5 for Car, 0.25 for Pedestrian and Cyclist.
LOOSE_OVERLAP: dict[str, tuple[float, float, float]] = {
    "Car": (0.5, 0.5, 0.5), "Pedestrian": (0.25, 0.25, 0.25), "Cyclist": (0.25, 0.25, 0.25),
}
# The median errors of matched objects (see matched_errors).
ERROR_METRICS = ("depth_error", "lateral_error", "dimension_error", "alpha_error", "axis_error")


def match_detections(truth: Sequence[KittiObject], found: Sequence[KittiObject],
                     min_iou: float = 0.5) -> list[tuple[int, int]]:
    """One image's (i, j) pairs: ground-truth object i (in order) and the highest-scoring detection j of its type whose
    2D box overlaps it by IoU >= ``min_iou``, each detection matched once; indices into the lists as given."""
    if not truth or not found:
        return []
    order = sorted(range(len(found)), key=lambda j: -(found[j].score or 0.0))  # detections by score
    iou = box_iou(np.array([t.box for t in truth]), np.array([found[j].box for j in order]))  # (N, D)
    iou[np.array([t.type for t in truth])[:, None] != np.array([found[j].type for j in order])[None, :]] = 0
    taken = np.zeros(len(order), bool)
    pairs = []
    for i in range(len(truth)):
        candidates = np.flatnonzero((iou[i] >= min_iou) & ~taken)  # in score order
        if len(candidates):
            taken[candidates[0]] = True
            pairs.append((i, order[candidates[0]]))
    return pairs


def matched_errors(ground_truth: Sequence[Sequence[KittiObject]], detections: Sequence[Sequence[KittiObject]],
                   classes: Sequence[str], min_iou: float = 0.5) -> dict[str, float]:
    """Median errors of the detected objects: each ground-truth object of ``classes`` is matched to the
    highest-scoring detection of its class whose 2D box overlaps it by IoU >= ``min_iou`` (a detection matched
    once, :func:`match_detections`). NaN where nothing matched.

    ``depth_error``: |z - z*| / z* (a fraction); ``lateral_error``: |x - x*| (metres); ``dimension_error``: the
    mean of |h - h*|, |w - w*|, |l - l*| (metres); ``alpha_error``: the observation angle's error in degrees
    (0-180); ``axis_error``: the heading's error modulo 180 degrees (0-90), what BEV and 3D IoU depend on.
    ``matched``: how many objects the medians are over.
    """
    errors: list[tuple[float, ...]] = []
    for truth, found in zip(ground_truth, detections):
        truth = [t for t in truth if t.type in classes]
        found = [d for d in found if d.type in classes]
        for i, j in match_detections(truth, found, min_iou):
            gt, det = truth[i], found[j]
            heading = abs(math.degrees(wrap_angle(det.rotation_y - gt.rotation_y)))
            errors.append((
                abs(det.location[2] - gt.location[2]) / max(gt.location[2], 1e-6),
                abs(det.location[0] - gt.location[0]),
                float(np.mean(np.abs(np.subtract(det.dimensions, gt.dimensions)))),
                abs(math.degrees(wrap_angle(det.alpha - gt.alpha))),
                min(heading, 180.0 - heading),
            ))
    medians = np.median(np.array(errors), axis=0) if errors else [math.nan] * len(ERROR_METRICS)
    return {name: float(value) for name, value in zip(ERROR_METRICS, medians)} | {"matched": len(errors)}


def format_kitti_table(metrics: dict) -> str:
    """A class x difficulty table of the four APs in percent (``-`` where a class has no ground truth)."""
    def cell(value: float) -> str:
        return f"{100 * value:7.2f}" if math.isfinite(value) else f"{'-':>7}"

    classes = metrics.get("classes", list(metrics["per_class"]))
    levels = metrics.get("difficulties", ["easy", "moderate", "hard"])
    width = max([len("class"), len("mean"), *(len(c) for c in classes)])
    head = f"{'class':<{width}}  {'level':<8}  {'n_gt':>5}  " + "  ".join(f"{m:>7}" for m in METRICS)
    lines = [f"KITTI AP R{metrics.get('recall_points', 40)} (%)", head, "-" * len(head)]
    for name in classes:
        for level in levels:
            row = metrics["per_class"][name][level]
            n = metrics.get("num_gt", {}).get(name, {}).get(level, "")
            lines.append(f"{name:<{width}}  {level:<8}  {n:>5}  " + "  ".join(cell(row[m]) for m in METRICS))
    for level in levels:
        values = [metrics.get(f"{SUMMARY_PREFIX[m]}_{level}", math.nan) for m in METRICS]
        lines.append(f"{'mean':<{width}}  {level:<8}  {'':>5}  " + "  ".join(cell(v) for v in values))
    return "\n".join(lines)
