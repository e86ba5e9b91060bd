"""Camera geometry in KITTI's conventions: box corners, projection through P2, angle wrapping.

Camera frame: x right, y down, z forward (metres); a box is its dimensions h w l, the centre of its bottom
face and its heading ``rotation_y`` about the camera's y axis.
"""

from __future__ import annotations

import math

import numpy as np
import torch

# A unit box's corners in its own frame (x along l, y down, z along w), as fractions of l, h, w: see box_corners.
_CORNER_SIGNS = ((1, 1, -1, -1, 1, 1, -1, -1), (0, 0, 0, 0, -1, -1, -1, -1), (1, -1, -1, 1, 1, -1, -1, 1))


def box_corners(dims: np.ndarray, location: np.ndarray, rotation_y: float) -> np.ndarray:
    """The 8 corners (8, 3) in camera coordinates of a KITTI box: dims h w l, location its bottom centre.

    Corners 0-3 lie on the ground (y = location y), 4-7 above them; 0 and 1 at +l/2 (the front).
    """
    h, w, l = (float(v) for v in dims)
    x, y, z = (np.array(signs, np.float64) for signs in _CORNER_SIGNS)
    x, y, z = x * l / 2, y * h, z * w / 2
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


def box_corners_batched(dims: torch.Tensor, location: torch.Tensor, rotation_y: torch.Tensor) -> torch.Tensor:
    """:func:`box_corners` for many boxes at once: dims (..., 3) h w l, location (..., 3), rotation_y (...)
    -> corners (..., 8, 3), in the same order."""
    signs = torch.tensor(_CORNER_SIGNS, dtype=dims.dtype, device=dims.device)  # (3, 8)
    h, w, l = dims[..., 0:1], dims[..., 1:2], dims[..., 2:3]  # (..., 1) each
    x, y, z = signs[0] * l / 2, signs[1] * h, signs[2] * w / 2  # (..., 8) each
    c, s = torch.cos(rotation_y)[..., None], torch.sin(rotation_y)[..., None]
    return torch.stack([c * x + s * z, y, -s * x + c * z], dim=-1) + location[..., None, :]
