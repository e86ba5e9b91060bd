"""Reader for COCO-format detection json (``images``, ``annotations``, ``categories``).

Category ids are mapped to contiguous labels 0..C-1 in id order (names kept);
``iscrowd`` annotations become ignore regions. A file that is not a COCO instances
json at all raises :class:`CenterNetError`; bad entries inside a valid file are
skipped and reported as :class:`DatasetProblem` (see ``samples.PROBLEM_KINDS``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..errors import CenterNetError
from .samples import DatasetProblem, DatasetSplit, SampleBuilder


def read_coco(json_path: str | Path, images_dir: str | Path) -> DatasetSplit:
    """Read a COCO instances json; image ``file_name``s are relative to ``images_dir``.

    Images listed but missing on disk, and repeated image ids or file names, are
    dropped and reported; the split keeps every valid image.
    """
    json_path, images_dir = Path(json_path), Path(images_dir)
    data = _load_json(json_path)
    problems: list[DatasetProblem] = []
    where = str(json_path)

    categories = _categories(data["categories"], where)
    category_ids = [cid for cid, _ in categories]
    label_of = {cid: i for i, cid in enumerate(category_ids)}
    images, listed_ids = _valid_images(data["images"], images_dir, where, problems)
    by_image = _annotations_by_image(data["annotations"], listed_ids, where, problems)

    samples, dropped = [], 0
    for image_id, (path, width, height) in images.items():
        builder = SampleBuilder(json_path, width, height, problems)
        for ann in by_image.get(image_id, []):
            _add_annotation(builder, ann, label_of)
        samples.append(builder.build(path, image_id))
        dropped += builder.dropped
    names = [name for _, name in categories]
    return DatasetSplit(samples, names, category_ids, source=where, problems=problems, dropped_boxes=dropped)


def _load_json(json_path: Path) -> dict[str, Any]:
    """The parsed file; raises CenterNetError when it is missing or not a COCO instances json."""
    if not json_path.is_file():
        raise CenterNetError(f"annotation file {str(json_path)!r} does not exist")
    try:
        data = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CenterNetError(f"{json_path}: not valid json ({e})") from None
    if not isinstance(data, dict):
        raise CenterNetError(f"{json_path}: expected a json object (a COCO instances file)")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise CenterNetError(f"{json_path}: expected a list under {key!r} (a COCO instances file)")
    return data


def _categories(entries: list[Any], where: str) -> list[tuple[int, str]]:
    """(id, name) sorted by id; a category without an integer id or a name is a file error."""
    out: dict[int, str] = {}
    for entry in entries:
        try:
            cid, name = int(entry["id"]), str(entry["name"])
        except (KeyError, TypeError, ValueError):
            raise CenterNetError(f"{where}: category entry {entry!r} needs an integer 'id' and a 'name'") from None
        if cid in out:
            raise CenterNetError(f"{where}: category id {cid} is listed twice")
        out[cid] = name
    return sorted(out.items())


def _valid_images(
    entries: list[Any], images_dir: Path, where: str, problems: list[DatasetProblem]
) -> tuple[dict[int, tuple[Path, int, int]], set[int]]:
    """image id -> (path, width, height) for the usable image entries in file order, and every listed id."""
    images: dict[int, tuple[Path, int, int]] = {}
    listed: set[int] = set()
    seen_files: set[str] = set()
    json_name = Path(where).name
    for entry in entries:
        try:
            image_id, file_name = int(entry["id"]), str(entry["file_name"])
            width, height = int(entry["width"]), int(entry["height"])
        except (KeyError, TypeError, ValueError):
            problems.append(DatasetProblem(where, None, "malformed_label", f"image entry {_short(entry)} needs "
                                           "integer 'id', 'width', 'height' and a 'file_name'; skipped"))
            continue
        if image_id in listed:
            problems.append(DatasetProblem(where, None, "duplicate_image",
                                           f"image id {image_id} ({file_name}) listed again; second entry dropped"))
            continue
        listed.add(image_id)  # its annotations belong to a known image even if the image is dropped below
        if file_name in seen_files:
            problems.append(DatasetProblem(where, None, "duplicate_image",
                                           f"file {file_name} listed again as image id {image_id}; dropped"))
            continue
        seen_files.add(file_name)
        path = images_dir / file_name
        if not path.is_file():
            problems.append(DatasetProblem(str(path), None, "missing_image",
                                           f"image file does not exist (image id {image_id} in {json_name})"))
            continue
        if width <= 0 or height <= 0:
            problems.append(DatasetProblem(where, None, "malformed_label",
                                           f"image id {image_id} has size {width}x{height}; skipped"))
            continue
        images[image_id] = (path, width, height)
    return images, listed


def _annotations_by_image(
    entries: list[Any], listed_ids: set[int], where: str, problems: list[DatasetProblem]
) -> dict[int, list[dict]]:
    """Annotations grouped by image id; those of image ids never listed are reported and left out."""
    by_image: dict[int, list[dict]] = {}
    for ann in entries:
        try:
            image_id = int(ann["image_id"])
        except (KeyError, TypeError, ValueError):
            problems.append(DatasetProblem(where, None, "malformed_label",
                                           f"annotation {_short(ann)} has no integer 'image_id'; skipped"))
            continue
        if image_id not in listed_ids:
            problems.append(DatasetProblem(where, None, "orphan_annotation",
                                           f"annotation {ann.get('id', '?')} is for image id {image_id}, "
                                           "which is not in 'images'; skipped"))
            continue
        by_image.setdefault(image_id, []).append(ann)
    return by_image


def _add_annotation(builder: SampleBuilder, ann: dict, label_of: dict[int, int]) -> None:
    """Add one annotation's box (or crowd ignore region) to ``builder``, reporting what is wrong."""
    what = f"annotation {ann.get('id', '?')} (image {ann.get('image_id')})"
    bbox = ann.get("bbox")
    try:
        x, y, w, h = (float(v) for v in bbox)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        builder.problem("malformed_label", f"{what}: 'bbox' must be 4 numbers [x, y, w, h], got {bbox!r}")
        return
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        builder.problem("malformed_label", f"{what}: NaN or infinite value in bbox {bbox!r}")
        return
    if ann.get("iscrowd", 0):
        builder.add([x, y, x + w, y + h], None, what=f"{what} (crowd)")
        return
    try:
        category_id = int(ann["category_id"])
    except (KeyError, TypeError, ValueError):
        builder.problem("malformed_label", f"{what}: no integer 'category_id'")
        return
    if category_id not in label_of:
        builder.drop("unknown_class", f"{what}: category id {category_id} is not in 'categories'; skipped")
        return
    builder.add([x, y, x + w, y + h], label_of[category_id], what=what)


def _short(entry: Any, limit: int = 60) -> str:
    """A json entry for a message, cut to ``limit`` characters."""
    text = json.dumps(entry, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."
