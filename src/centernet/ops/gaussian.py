"""The Gaussian "splat" that marks an object centre on a class heatmap.

``gaussian_radius`` answers: how far can a box's corners move so that the moved box
still overlaps the true one with IoU >= min_overlap? CornerNet's first release (and
CenterNet, which copied it) solves three quadratics, one per way the corners can move
(one corner in and one out; both in; both out), and takes the smallest answer. Its
published roots are ``(b + sqrt(b^2 - 4ac)) / 2`` for all three: that divides by 2 instead
of 2a, and in the first two cases takes the larger root where the smaller one is the
answer. It is the default because every released CenterNet model was trained with it
(it gives larger radii). ``exact=True`` gives the mathematically correct roots.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# The heatmap target inside a region ignored for one class only (KITTI's Van for Car, a COCO crowd, a VOC
# difficult object): as the original, 0.9999 in that class's channel. It is no positive (not exactly 1) and
# its negative weight (1 - 0.9999)^4 = 1e-16 is nil, while the other classes learn there as usual.
IGNORE_TARGET = 0.9999


def gaussian_radius(height: float, width: float, min_overlap: float = 0.7, exact: bool = False) -> float:
    """Radius (output pixels, float) of the Gaussian for a box of the given size.

    Callers in this package pass ``ceil(h), ceil(w)`` of the box in output coordinates
    and use ``max(0, int(radius))``, as the original.
    """
    return float(gaussian_radii(np.array([height]), np.array([width]), min_overlap, exact)[0])


def gaussian_radii(
    heights: np.ndarray, widths: np.ndarray, min_overlap: float = 0.7, exact: bool = False
) -> np.ndarray:
    """:func:`gaussian_radius` of many boxes at once: (N,) float64 radii of (N,) heights and widths.

    Three cases of corner placement, each a quadratic in r (m = min_overlap); the smallest root wins.
    """
    h, w, m = np.asarray(heights, np.float64), np.asarray(widths, np.float64), float(min_overlap)
    hw = h + w
    # Case 1: one corner inside the box, the other outside.
    a1, b1, c1 = 1.0, hw, w * h * (1 - m) / (1 + m)
    sq1 = np.sqrt(np.maximum(b1 * b1 - 4 * a1 * c1, 0.0))
    # Case 2: both corners inside.
    a2, b2, c2 = 4.0, 2 * hw, (1 - m) * w * h
    sq2 = np.sqrt(np.maximum(b2 * b2 - 4 * a2 * c2, 0.0))
    # Case 3: both corners outside.
    a3, b3, c3 = 4 * m, -2 * m * hw, (m - 1) * w * h
    sq3 = np.sqrt(np.maximum(b3 * b3 - 4 * a3 * c3, 0.0))
    if exact:
        r1 = (b1 - sq1) / (2 * a1)
        r2 = (b2 - sq2) / (2 * a2)
        r3 = (b3 + sq3) / (2 * a3)
    else:  # the original code's formula
        r1 = (b1 + sq1) / 2
        r2 = (b2 + sq2) / 2
        r3 = (b3 + sq3) / 2
    return np.minimum(np.minimum(r1, r2), r3)


def gaussian_2d(radius: int) -> np.ndarray:
    """(2r+1, 2r+1) float32 Gaussian with sigma = (2r+1)/6, peak exactly 1 at the centre.

    Values below float32 machine epsilon times the peak are set to 0, as the original.
    A new (writable) array each call; :func:`draw_gaussian` uses a cached read-only copy.
    """
    return cached_gaussian_2d(int(radius)).copy()


@lru_cache(maxsize=1024)
def cached_gaussian_2d(radius: int) -> np.ndarray:
    """:func:`gaussian_2d`, computed once per radius and shared: read-only, do not modify."""
    diameter = 2 * radius + 1
    sigma = diameter / 6
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma * sigma))
    g[g < np.finfo(np.float64).eps * g.max()] = 0
    g = g.astype(np.float32)
    g.flags.writeable = False
    return g


def draw_gaussian(heatmap: np.ndarray, center_xy: tuple[int, int], radius: int) -> np.ndarray:
    """Max-merge a Gaussian of the given radius into ``heatmap`` (h, w) at integer ``center_xy``, in place.

    The Gaussian is cut at the heatmap's border. Returns ``heatmap``.
    """
    radius = int(radius)
    g = cached_gaussian_2d(radius)
    x, y = int(center_xy[0]), int(center_xy[1])
    h, w = heatmap.shape
    left, right = min(x, radius), min(w - x, radius + 1)
    top, bottom = min(y, radius), min(h - y, radius + 1)
    if left + right <= 0 or top + bottom <= 0:
        return heatmap
    region = heatmap[y - top : y + bottom, x - left : x + right]
    patch = g[radius - top : radius + bottom, radius - left : radius + right]
    np.maximum(region, patch, out=region)
    return heatmap
