"""Datasets: readers per format, the built-in synthetic set, transforms, the torch Dataset."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CenterNetError
from .coco import read_coco
from .samples import DatasetSplit, DetectionSample

__all__ = ["DatasetSplit", "DetectionSample", "default_cache_dir", "load_split", "read_coco"]


def default_cache_dir() -> Path:
    """Where built-in datasets are written: $CENTERNET_CACHE, else ~/.cache/centernet."""
    return Path(os.environ.get("CENTERNET_CACHE", Path.home() / ".cache" / "centernet"))


def load_split(data: str | Path, split: str = "train", shapes_config=None) -> DatasetSplit:
    """Read one split of a dataset.

    ``data`` is ``"shapes"`` (the built-in synthetic set, built on first use), a folder
    in COCO layout (``annotations/instances_<split>.json`` + ``images/<split>/``), or a
    COCO json file (images next to it, or in a sibling ``images/<split>`` folder).
    """
    if str(data) == "shapes":
        from .shapes import ShapesConfig, build_shapes

        root = build_shapes(default_cache_dir() / "datasets", shapes_config or ShapesConfig())
        return _read_coco_folder(root, split)
    path = Path(data)
    if not path.exists():
        raise CenterNetError(f"dataset path {str(path)!r} does not exist; expected a folder, a .json file or 'shapes'")
    if path.is_file():
        if path.suffix.lower() != ".json":
            raise CenterNetError(f"dataset file {str(path)!r} is not a COCO .json file")
        for images in (path.parent.parent / "images" / split, path.parent / "images" / split, path.parent / "images"):
            if images.is_dir():
                return read_coco(path, images)
        return read_coco(path, path.parent)
    return _read_coco_folder(path, split)


def _read_coco_folder(root: Path, split: str) -> DatasetSplit:
    json_path = root / "annotations" / f"instances_{split}.json"
    if not json_path.is_file():
        raise CenterNetError(
            f"dataset folder {str(root)!r} has no split {split!r}: expected {str(json_path)!r} (COCO layout)"
        )
    return read_coco(json_path, root / "images" / split)
