"""Camera geometry in KITTI's conventions: box corners, projection through P2, angle wrapping.

Camera frame: x right, y down, z forward (metres); a box is its dimensions h w l, the centre of its bottom
face and its heading ``rotation_y`` about the camera's y axis.
"""

from __future__ import annotations

import math

import numpy as np


def box_corners(dims: np.ndarray, location: np.ndarray, rotation_y: float) -> np.ndarray:
    """The 8 corners (8, 3) in camera coordinates of a KITTI box: dims h w l, location its bottom centre.

    Corners 0-3 lie on the ground (y = location y), 4-7 above them; 0 and 1 at +l/2 (the front).
    """
    h, w, l = (float(v) for v in dims)
    x = np.array([1, 1, -1, -1, 1, 1, -1, -1], np.float64) * l / 2
    y = np.array([0, 0, 0, 0, -1, -1, -1, -1], np.float64) * h
    z = np.array([1, -1, -1, 1, 1, -1, -1, 1], np.float64) * w / 2
    c, s = math.cos(rotation_y), math.sin(rotation_y)
    rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], np.float64)  # about the camera's y axis
    return (rot @ np.stack([x, y, z])).T + np.asarray(location, np.float64)


def project(p2: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Camera points (N, 3) -> image points (N, 2) through P2 (3, 4)."""
    uvw = np.hstack([points, np.ones((len(points), 1))]) @ p2.T  # (N, 3)
    return uvw[:, :2] / uvw[:, 2:3]


def wrap_angle(angle):
    """``angle`` (a number, array or tensor) wrapped to [-pi, pi)."""
    return (angle + math.pi) % (2 * math.pi) - math.pi
