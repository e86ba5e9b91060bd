"""Drawing 3D boxes: projected through the camera, and from above."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from ...ops.camera import box_corners, project
from ...visualize import check_image, class_color, to_numpy


# Edges of a box's 8 corners (see ``centernet.ops.camera.box_corners``): bottom, top, verticals.
BOX3D_EDGES = ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7))


def draw_boxes3d(
    image: np.ndarray,
    dimensions: Any,
    location: Any,
    rotation_y: Any,
    labels: Any,
    calib: Any,
) -> np.ndarray:
    """Draw 3D boxes projected through the camera on a copy of an RGB image.

    Args:
        image: (H, W, 3) uint8 RGB; not modified.
        dimensions: (N, 3) h w l metres; location: (N, 3) bottom centre x y z (camera frame, KITTI's);
        rotation_y: (N,); labels: (N,) class indices (colours); calib: (3, 4) P2.

    The front face (the +l/2 end, the heading) is crossed. Boxes with a corner behind the camera are skipped.
    """
    canvas = np.ascontiguousarray(check_image(image)).copy()
    dims = to_numpy(dimensions).astype(np.float64).reshape(-1, 3)
    locs = to_numpy(location).astype(np.float64).reshape(-1, 3)
    yaws = to_numpy(rotation_y).astype(np.float64).reshape(-1)
    labels_np = to_numpy(labels).reshape(-1).astype(np.int64)
    p2 = to_numpy(calib).astype(np.float64).reshape(3, 4)
    thickness = max(1, round(0.002 * max(canvas.shape[:2])))
    for dim, loc, yaw, label in zip(dims, locs, yaws, labels_np):
        corners = box_corners(dim, loc, float(yaw))  # (8, 3)
        if not np.isfinite(corners).all() or (corners[:, 2] <= 0.1).any():
            continue
        points = np.round(project(p2, corners)).astype(np.int64)  # (8, 2)
        if np.abs(points).max() > 1e5:
            continue
        color = class_color(int(label))
        for a, b in BOX3D_EDGES + ((0, 5), (1, 4)):
            cv2.line(canvas, tuple(map(int, points[a])), tuple(map(int, points[b])), color, thickness, cv2.LINE_AA)
    return canvas


def birds_eye_view(
    boxes: Sequence[tuple[Any, Any, Any, Any]],
    size: int = 400,
    depth_range: tuple[float, float] = (0.0, 60.0),
    width_range: tuple[float, float] = (-30.0, 30.0),
) -> np.ndarray:
    """A bird's-eye-view picture (size, size, 3) uint8 RGB: x to the right, z (depth) upwards, camera at the bottom.

    ``boxes``: groups of (dimensions (N, 3), location (N, 3), rotation_y (N,), labels (N,)); the first group is
    drawn filled-outline in class colours (e.g. predictions), any further group in white (e.g. ground truth).
    A grid line every 10 m.
    """
    canvas = np.full((size, size, 3), 30, np.uint8)
    (z0, z1), (x0, x1) = depth_range, width_range

    def to_pixels(x: np.ndarray, z: np.ndarray) -> np.ndarray:
        u = (x - x0) / (x1 - x0) * (size - 1)
        v = (1 - (z - z0) / (z1 - z0)) * (size - 1)
        return np.round(np.stack([u, v], -1)).astype(np.int32)

    for z in np.arange(np.ceil(z0 / 10) * 10, z1 + 1e-6, 10):
        v = int(to_pixels(np.array([x0]), np.array([z]))[0, 1])
        cv2.line(canvas, (0, v), (size - 1, v), (60, 60, 60), 1)
        cv2.putText(canvas, f"{z:.0f} m", (3, max(v - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (120, 120, 120), 1)
    for group, (dimensions, location, rotation_y, labels) in enumerate(boxes):
        dims = to_numpy(dimensions).astype(np.float64).reshape(-1, 3)
        locs = to_numpy(location).astype(np.float64).reshape(-1, 3)
        yaws = to_numpy(rotation_y).astype(np.float64).reshape(-1)
        labels_np = to_numpy(labels).reshape(-1).astype(np.int64)
        for dim, loc, yaw, label in zip(dims, locs, yaws, labels_np):
            corners = box_corners(dim, loc, float(yaw))[:4]  # (4, 3) the footprint; 0-1 the front edge
            if not np.isfinite(corners).all():
                continue
            polygon = to_pixels(corners[:, 0], corners[:, 2])
            color = class_color(int(label)) if group == 0 else (255, 255, 255)
            cv2.polylines(canvas, [polygon.reshape(-1, 1, 2)], True, color, 1 if group else 2, cv2.LINE_AA)
            cv2.line(canvas, tuple(map(int, polygon[0])), tuple(map(int, polygon[1])), color, 3 if group == 0 else 1)
    cv2.circle(canvas, tuple(map(int, to_pixels(np.array([0.0]), np.array([0.0]))[0])), 4, (255, 255, 255), -1)
    return canvas
