"""The one sample type every dataset reader produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def _empty_boxes() -> np.ndarray:
    return np.zeros((0, 4), np.float32)


@dataclass
class DetectionSample:
    """One image and its objects, boxes in original image pixels."""

    image_path: Path
    image_id: int
    width: int
    height: int
    boxes: np.ndarray = field(default_factory=_empty_boxes)          # (N, 4) float32 xyxy pixels
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))  # (N,) 0..C-1
    ignore_boxes: np.ndarray = field(default_factory=_empty_boxes)   # (G, 4) crowd / difficult regions


@dataclass
class DatasetSplit:
    """All samples of one split plus the class list.

    ``category_ids[i]`` is the id written to COCO results for contiguous label ``i``.
    """

    samples: list[DetectionSample]
    class_names: list[str]
    category_ids: list[int]
    source: str = ""  # where it was read from, for messages

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_coco(self) -> dict:
        """The split as a COCO ground-truth dict (for pycocotools), ignore regions as crowd boxes."""
        images, annotations = [], []
        for s in self.samples:
            images.append({"id": s.image_id, "file_name": s.image_path.name, "width": s.width, "height": s.height})
            for boxes, labels, crowd in ((s.boxes, s.labels, 0), (s.ignore_boxes, None, 1)):
                for j, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
                    label = int(labels[j]) if labels is not None else 0
                    w, h = x2 - x1, y2 - y1
                    annotations.append(
                        {
                            "id": len(annotations) + 1,
                            "image_id": s.image_id,
                            "category_id": self.category_ids[label],
                            "bbox": [x1, y1, w, h],
                            "area": w * h,
                            "iscrowd": crowd,
                        }
                    )
        categories = [{"id": i, "name": n} for i, n in zip(self.category_ids, self.class_names)]
        return {"info": {}, "images": images, "annotations": annotations, "categories": categories}
