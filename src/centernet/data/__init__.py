"""Datasets: readers per format, the built-in synthetic set, transforms, the torch Dataset.

Formats (detected from the path by :func:`detect_format`; all produce one
:class:`DatasetSplit`): COCO json, YOLO txt with a ``data.yaml``, Pascal VOC xml.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CenterNetError
from .coco import read_coco
from .samples import IMAGE_DROP_KINDS, DatasetProblem, DatasetSplit, DetectionSample, problem_summary
from .voc import read_voc
from .yolo import read_yolo

__all__ = [
    "DatasetProblem",
    "DatasetSplit",
    "DetectionSample",
    "available_splits",
    "default_cache_dir",
    "detect_format",
    "load_split",
    "problem_summary",
    "read_coco",
    "read_split",
    "read_voc",
    "read_yolo",
]

LAYOUTS = (
    "a YOLO data.yaml (or a folder holding one), a VOC folder (Annotations/, JPEGImages/, ImageSets/Main/), "
    "a COCO folder (annotations/instances_<split>.json, images/<split>/), a COCO .json file, or 'shapes'"
)


def default_cache_dir() -> Path:
    """Where built-in datasets are written: $CENTERNET_CACHE, else ~/.cache/centernet."""
    return Path(os.environ.get("CENTERNET_CACHE", Path.home() / ".cache" / "centernet"))


def load_split(data: str | Path, split: str = "train", shapes_config=None) -> DatasetSplit:
    """Read one split of a dataset, for training or evaluation.

    ``data`` is ``"shapes"`` (the built-in synthetic set, built on first use), a YOLO
    ``.yaml`` or a folder holding ``data.yaml``, a VOC folder, a folder in COCO layout
    (``annotations/instances_<split>.json`` + ``images/<split>/``), or a COCO json file.
    Bad entries are skipped and listed in ``.problems``; a split left with no valid
    image raises :class:`CenterNetError`.
    """
    result = read_split(data, split, shapes_config)
    if not result.samples:
        raise CenterNetError(_no_images_message(result, split))
    return result


def read_split(data: str | Path, split: str = "train", shapes_config=None) -> DatasetSplit:
    """Like :func:`load_split` but a split with no valid image is returned (empty) rather than raised."""
    if str(data) == "shapes":
        from .shapes import ShapesConfig, build_shapes

        root = build_shapes(default_cache_dir() / "datasets", shapes_config or ShapesConfig())
        return _read_coco_folder(root, split)
    path = Path(data)
    kind = detect_format(path, split)
    if kind == "yolo":
        return read_yolo(path if path.is_file() else _yolo_yaml(path), split)
    if kind == "voc":
        return read_voc(path, split)
    if path.is_file():
        return read_coco(path, _coco_images_dir(path, split))
    return _read_coco_folder(path, split)


def detect_format(path: Path, split: str = "train") -> str:
    """``"yolo"``, ``"voc"`` or ``"coco"`` from the path alone; CenterNetError for anything else.

    ``.yaml``/``.yml`` file or folder with ``data.yaml`` -> YOLO; folder with
    ``Annotations/`` and ``JPEGImages/`` -> VOC; folder with ``annotations/instances_*.json``
    or a ``.json`` file -> COCO. A COCO folder without ``instances_<split>.json`` is a
    missing split.
    """
    path = Path(path)
    if not path.exists():
        raise CenterNetError(f"dataset path {str(path)!r} does not exist; expected {LAYOUTS}")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".yaml", ".yml"):
            return "yolo"
        if suffix == ".json":
            return "coco"
        raise CenterNetError(f"dataset file {str(path)!r} is neither a .yaml (YOLO) nor a .json (COCO) file")
    if _yolo_yaml(path) is not None:
        return "yolo"
    if (path / "Annotations").is_dir() and (path / "JPEGImages").is_dir():
        return "voc"
    if _coco_splits(path):
        if not (path / "annotations" / f"instances_{split}.json").is_file():
            raise CenterNetError(
                f"dataset folder {str(path)!r} has no split {split!r}: expected "
                f"{str(path / 'annotations' / f'instances_{split}.json')!r} (COCO layout; splits found: "
                f"{', '.join(_coco_splits(path))})"
            )
        return "coco"
    raise CenterNetError(f"dataset folder {str(path)!r} has no known layout; expected {LAYOUTS}")


def available_splits(data: str | Path) -> list[str]:
    """The split names a dataset defines (for a COCO .json file: the one it is, named after it)."""
    if str(data) == "shapes":
        return ["train", "val"]
    path = Path(data)
    kind = detect_format(path)
    if kind == "yolo":
        from .yolo import load_yaml, splits_in

        return splits_in(load_yaml(path if path.is_file() else _yolo_yaml(path)))
    if kind == "voc":
        from .voc import splits_in as voc_splits

        return voc_splits(path)
    if path.is_file():
        return [_json_split_name(path) or "train"]
    return _coco_splits(path)


def _yolo_yaml(folder: Path) -> Path | None:
    for name in ("data.yaml", "data.yml"):
        if (folder / name).is_file():
            return folder / name
    return None


def _coco_splits(folder: Path) -> list[str]:
    return sorted(p.stem[len("instances_"):] for p in (folder / "annotations").glob("instances_*.json"))


def _json_split_name(json_path: Path) -> str:
    """``train2017`` for ``instances_train2017.json``, else ``""``."""
    return json_path.stem[len("instances_"):] if json_path.stem.startswith("instances_") else ""


def _coco_images_dir(json_path: Path, split: str) -> Path:
    """Where a json's images are: ``images/<name>`` beside its folder or itself, where ``<name>`` is the
    json's split name (``instances_<name>.json``) or ``split``; else ``images/``; else the json's folder."""
    names = [n for n in (_json_split_name(json_path), split) if n]
    candidates = [base / "images" / n for n in names for base in (json_path.parent.parent, json_path.parent)]
    candidates.append(json_path.parent / "images")
    return next((c for c in candidates if c.is_dir()), json_path.parent)


def _read_coco_folder(root: Path, split: str) -> DatasetSplit:
    json_path = root / "annotations" / f"instances_{split}.json"
    if not json_path.is_file():
        raise CenterNetError(
            f"dataset folder {str(root)!r} has no split {split!r}: expected {str(json_path)!r} (COCO layout)"
        )
    return read_coco(json_path, root / "images" / split)


def _no_images_message(split_data: DatasetSplit, split: str) -> str:
    """One line for a split with no valid image, naming the main reason."""
    problems = split_data.problems
    message = f"{split_data.source}: split {split!r} has no valid images"
    missing = [p for p in problems if p.kind == "missing_image"]
    if missing:
        listed = sum(p.kind in IMAGE_DROP_KINDS for p in problems)
        first = missing[0]
        return (f"{message}: {len(missing)} of {listed} listed images are missing, "
                f"first {first.location()} ({first.message})")
    if problems:
        return f"{message}: {problem_summary(problems)}; first {problems[0].location()}: {problems[0].message}"
    return f"{message} (none listed)"
