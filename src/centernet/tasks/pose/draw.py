"""Drawing persons: joints and skeleton on the image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ...errors import CenterNetError
from ...visualize import check_image, class_color, to_numpy


def draw_keypoints(
    image: np.ndarray,
    keypoints: Any,
    skeleton: Sequence[tuple[int, int]] = (),
    score_threshold: float = 0.1,
) -> np.ndarray:
    """Draw each person's joints and skeleton on a copy of an RGB image.

    Args:
        image: (H, W, 3) uint8 RGB image; not modified.
        keypoints: (N, J, 3) joints as x, y in pixels and a score (or a COCO visibility v).
        skeleton: 0-based joint pairs joined by a line when both joints score at least the threshold.
        score_threshold: joints scoring less are not drawn.

    Joint j is drawn in ``class_color(j)``; limbs in the colour of their first joint.
    """
    canvas = np.ascontiguousarray(check_image(image)).copy()
    joints = to_numpy(keypoints).astype(np.float64)
    if joints.size == 0:
        return canvas
    if joints.ndim != 3 or joints.shape[2] != 3:
        raise CenterNetError(f"draw_keypoints: keypoints of shape {joints.shape}; expected (N, J, 3)")
    height, width = canvas.shape[:2]
    thickness = max(1, round(0.003 * max(height, width)))
    shown = (joints[..., 2] >= score_threshold) & np.isfinite(joints).all(-1)  # (N, J)
    for person, visible in zip(joints, shown):
        for a, b in skeleton:
            if a < len(person) and b < len(person) and visible[a] and visible[b]:
                pa = (int(round(person[a, 0])), int(round(person[a, 1])))
                pb = (int(round(person[b, 0])), int(round(person[b, 1])))
                cv2.line(canvas, pa, pb, class_color(a), thickness, lineType=cv2.LINE_AA)
        for j, (x, y, _) in enumerate(person):
            if visible[j]:
                cv2.circle(canvas, (int(round(x)), int(round(y))), thickness + 1, class_color(j), cv2.FILLED,
                           lineType=cv2.LINE_AA)
    return canvas


def plot_joint_ap(names: Sequence[str], aps: Sequence[float], path: str | Path) -> Path:
    """A bar of OKS AP per joint (``per_joint_oks_ap``), joints never labelled left empty. Written as a PNG."""
    from matplotlib.figure import Figure

    values = np.nan_to_num(np.asarray(aps, np.float64), nan=0.0)
    fig = Figure(figsize=(max(6, 0.45 * len(values) + 2), 4), dpi=100, layout="constrained")
    ax = fig.subplots()
    ax.bar(range(len(values)), values, color=[np.array(class_color(j)) / 255 for j in range(len(values))])
    ax.set_xticks(range(len(values)), list(names), rotation=60, ha="right", fontsize="small")
    ax.set(ylabel="OKS AP", ylim=(0, 1), title=f"OKS AP per joint (mean {np.nanmean(aps) if np.isfinite(aps).any() else 0:.3f})")
    ax.grid(axis="y", alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
