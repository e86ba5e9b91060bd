"""Reader for COCO-format detection json (``images``, ``annotations``, ``categories``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import CenterNetError
from .samples import DatasetSplit, DetectionSample


def read_coco(json_path: str | Path, images_dir: str | Path) -> DatasetSplit:
    """Read a COCO instances json; image ``file_name``s are relative to ``images_dir``.

    Category ids are mapped to contiguous labels 0..C-1 in id order; ``iscrowd``
    annotations become ignore regions.
    """
    json_path, images_dir = Path(json_path), Path(images_dir)
    if not json_path.is_file():
        raise CenterNetError(f"annotation file {str(json_path)!r} does not exist")
    try:
        data = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CenterNetError(f"{json_path}: not valid json ({e})") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise CenterNetError(f"{json_path}: expected a list under {key!r} (a COCO instances file)")
    categories = sorted(data["categories"], key=lambda c: c["id"])
    category_ids = [int(c["id"]) for c in categories]
    label_of = {cid: i for i, cid in enumerate(category_ids)}

    by_image: dict[int, list[dict]] = {}
    for ann in data["annotations"]:
        by_image.setdefault(int(ann["image_id"]), []).append(ann)

    samples = []
    for img in data["images"]:
        boxes, labels, ignore = [], [], []
        for ann in by_image.get(int(img["id"]), []):
            x, y, w, h = (float(v) for v in ann["bbox"])
            if ann.get("iscrowd", 0):
                ignore.append([x, y, x + w, y + h])
            elif w > 0 and h > 0 and int(ann["category_id"]) in label_of:
                boxes.append([x, y, x + w, y + h])
                labels.append(label_of[int(ann["category_id"])])
        samples.append(
            DetectionSample(
                image_path=images_dir / img["file_name"],
                image_id=int(img["id"]),
                width=int(img["width"]),
                height=int(img["height"]),
                boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
                labels=np.asarray(labels, np.int64),
                ignore_boxes=np.asarray(ignore, np.float32).reshape(-1, 4),
            )
        )
    missing = [s.image_path for s in samples if not s.image_path.is_file()]
    if missing:
        raise CenterNetError(
            f"{json_path}: {len(missing)} of {len(samples)} listed images are missing, first {str(missing[0])!r}"
        )
    return DatasetSplit(samples, [str(c["name"]) for c in categories], category_ids, source=str(json_path))
