"""What ``CenterNet.predict`` returns: one image's detections, drawn by the model's task."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import CenterNetError
from .tasks.mono3d.draw import birds_eye_view
from .tasks.mono3d.decode import detections_to_kitti
from .visualize import draw_boxes, heatmap_overlay, save_image

if TYPE_CHECKING:
    from .tasks import Task


@dataclass
class Detections:
    """Detections of one image.

    boxes (N, 4) float32, x1 y1 x2 y2 in original image pixels; scores (N,) float32 in
    [0, 1], descending; labels (N,) int64 in 0..C-1 (names in ``class_names``).
    ``heatmap`` (C, h, w) class probabilities at stride 4, when asked for.
    Pose models: ``keypoints`` (N, K, 3) x, y in original pixels and a score per joint, ``skeleton`` the
    joint pairs to draw.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    image: np.ndarray = field(repr=False)        # (H, W, 3) uint8 RGB, the original
    path: Path | None = None
    heatmap: np.ndarray | None = field(default=None, repr=False)
    keypoints: np.ndarray | None = None          # pose: (N, K, 3)
    skeleton: list[tuple[int, int]] = field(default_factory=list, repr=False)
    objects3d: dict[str, np.ndarray] | None = None  # 3D: dimensions (N, 3) h w l, location (N, 3), rotation_y,
                                                    # alpha, depth (N,), in KITTI's camera frame (metres, radians)
    calib: np.ndarray | None = field(default=None, repr=False)  # 3D: the camera's P2 (3, 4)
    task: Task | None = field(default=None, repr=False)  # what draws it (boxes only without one)

    def __len__(self) -> int:
        return len(self.boxes)

    def plot(self, heatmap: bool = False) -> np.ndarray:
        """The image with the detections drawn by the model's task (boxes; joints; 3D boxes) and the heatmap
        overlaid in JET when kept: (H, W, 3) uint8 RGB."""
        image = self.image
        if heatmap and self.heatmap is not None:
            image = heatmap_overlay(image, self.heatmap)
        if self.task is not None:
            return self.task.draw(image, self)
        return draw_boxes(image, self.boxes, self.labels, self.scores, self.class_names, score_threshold=0.0)

    def bev(self, size: int = 400, depth: float = 60.0) -> np.ndarray:
        """3D models: a bird's-eye view of the objects (size, size, 3) uint8 RGB, camera at the bottom centre."""
        if self.objects3d is None:
            raise CenterNetError("bev() needs 3D detections (a model trained with task='3d')")
        o = self.objects3d
        return birds_eye_view([(o["dimensions"], o["location"], o["rotation_y"], self.labels)], size, (0.0, depth),
                              (-depth / 2, depth / 2))

    def to_kitti(self) -> list:
        """3D models: the objects as KITTI label rows (:class:`centernet.data.kitti.KittiObject`, with scores)."""
        if self.objects3d is None:
            raise CenterNetError("to_kitti() needs 3D detections (a model trained with task='3d')")
        dets = {"boxes": self.boxes, "scores": self.scores, "labels": self.labels, **self.objects3d}
        return detections_to_kitti(dets, self.class_names, score_threshold=-1.0)

    def to_dict(self) -> dict:
        """Plain lists and numbers (what ``centernet predict`` writes to JSON)."""
        result = {
            "boxes": np.round(self.boxes, 2).tolist(), "scores": np.round(self.scores, 4).tolist(),
            "labels": self.labels.tolist(), "names": [self.class_names[int(i)] for i in self.labels],
        }
        if self.keypoints is not None:
            result["keypoints"] = np.round(self.keypoints, 3).tolist()
        if self.objects3d is not None:
            result.update({name: np.round(value, 4).tolist() for name, value in self.objects3d.items()})
        return result

    def save(self, path: str | Path, heatmap: bool = False) -> Path:
        return save_image(path, self.plot(heatmap))
