"""Reader for COCO-format detection json (``images``, ``annotations``, ``categories``).

Category ids are mapped to contiguous labels 0..C-1 in id order (names kept);
``iscrowd`` annotations become ignore regions. A file that is not a COCO instances
json at all (or has no categories) raises :class:`CenterNetError`; bad entries inside a
valid file are skipped and reported as :class:`DatasetProblem` (see
``samples.PROBLEM_KINDS``), named by their index (``annotations[7] (id 12)``). Types are
checked, not coerced: ids and sizes are integers (``3`` or ``3.0``, or a string of digits),
``bbox`` is a list of four numbers, ``iscrowd`` is 0 or 1.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..errors import CenterNetError
from .samples import DatasetProblem, DatasetSplit, SampleBuilder, file_exists, one_line


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
        for index, ann in by_image.get(image_id, []):
            _add_annotation(builder, index, ann, label_of)
        samples.append(builder.build(path, image_id))
        dropped += builder.dropped
    names = [name for _, name in categories]
    return DatasetSplit(samples, names, category_ids, source=where, problems=problems, dropped_boxes=dropped)


def _load_json(json_path: Path) -> dict[str, Any]:
    """The parsed file; raises CenterNetError when it is missing or not a COCO instances json."""
    if not file_exists(json_path):
        raise CenterNetError(f"annotation file {str(json_path)!r} does not exist")
    try:
        data = json.loads(json_path.read_bytes())  # bytes: json's own UTF-8/16/32 detection
    except OSError as e:
        raise CenterNetError(f"{json_path}: cannot read the file ({e.strerror or e})") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = "nested too deeply" if isinstance(e, RecursionError) else one_line(str(e))
        raise CenterNetError(f"{json_path}: not valid json ({reason})") from None
    if not isinstance(data, dict):
        raise CenterNetError(f"{json_path}: expected a json object (a COCO instances file)")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise CenterNetError(f"{json_path}: expected a list under {key!r} (a COCO instances file), "
                                 f"got {_kind(data.get(key))}")
    return data


def _categories(entries: list[Any], where: str) -> list[tuple[int, str]]:
    """(id, name) sorted by id; a category without an integer id or a name is a file error."""
    out: dict[int, str] = {}
    for index, entry in enumerate(entries):
        cid = _integer(entry.get("id")) if isinstance(entry, dict) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        if cid is None or not isinstance(name, (str, int, float)) or isinstance(name, bool):
            raise CenterNetError(f"{where}: categories[{index}] {_short(entry)} needs an integer 'id' and a 'name'")
        if cid in out:
            raise CenterNetError(f"{where}: category id {cid} is listed twice (categories[{index}])")
        out[cid] = str(name)
    if not out:
        raise CenterNetError(f"{where}: 'categories' is empty; a COCO instances file lists its classes there")
    return sorted(out.items())


def _valid_images(
    entries: list[Any], images_dir: Path, where: str, problems: list[DatasetProblem]
) -> tuple[dict[int, tuple[Path, int, int]], set[int]]:
    """image id -> (path, width, height) for the usable image entries in file order, and every listed id."""
    images: dict[int, tuple[Path, int, int]] = {}
    listed: set[int] = set()
    seen_files: set[str] = set()
    json_name = Path(where).name
    for index, entry in enumerate(entries):
        fields = _image_fields(entry)
        if fields is None:
            problems.append(DatasetProblem(where, None, "malformed_label", f"images[{index}] {_short(entry)} needs "
                                           "integer 'id', 'width', 'height' and a 'file_name' string; skipped"))
            continue
        image_id, file_name, width, height = fields
        shown = repr(file_name)
        if image_id in listed:
            problems.append(DatasetProblem(where, None, "duplicate_image", f"images[{index}]: image id {image_id} "
                                           f"({shown}) listed again; second entry dropped"))
            continue
        listed.add(image_id)  # its annotations belong to a known image even if the image is dropped below
        if file_name in seen_files:
            problems.append(DatasetProblem(where, None, "duplicate_image", f"images[{index}]: file {shown} "
                                           f"listed again as image id {image_id}; dropped"))
            continue
        seen_files.add(file_name)
        path = images_dir / file_name
        if not file_exists(path):
            problems.append(DatasetProblem(str(path), None, "missing_image",
                                           f"image file does not exist (image id {image_id} in {json_name})"))
            continue
        if width <= 0 or height <= 0:
            problems.append(DatasetProblem(where, None, "malformed_label",
                                           f"images[{index}]: image id {image_id} has size {width}x{height}; skipped"))
            continue
        images[image_id] = (path, width, height)
    return images, listed


def _image_fields(entry: Any) -> tuple[int, str, int, int] | None:
    """(id, file_name, width, height) of an image entry, or None when one is missing or of the wrong type."""
    if not isinstance(entry, dict):
        return None
    image_id, width, height = (_integer(entry.get(k)) for k in ("id", "width", "height"))
    file_name = entry.get("file_name")
    if image_id is None or width is None or height is None or not isinstance(file_name, str) or not file_name:
        return None
    return image_id, file_name, width, height


def _annotations_by_image(
    entries: list[Any], listed_ids: set[int], where: str, problems: list[DatasetProblem]
) -> dict[int, list[tuple[int, dict]]]:
    """(index in 'annotations', annotation) grouped by image id; those of image ids never listed are reported
    and left out."""
    by_image: dict[int, list[tuple[int, dict]]] = {}
    for index, ann in enumerate(entries):
        image_id = _integer(ann.get("image_id")) if isinstance(ann, dict) else None
        if image_id is None:
            problems.append(DatasetProblem(where, None, "malformed_label",
                                           f"annotations[{index}] {_short(ann)} has no integer 'image_id'; skipped"))
            continue
        if image_id not in listed_ids:
            problems.append(DatasetProblem(where, None, "orphan_annotation",
                                           f"{_annotation_name(index, ann)} is for image id {image_id}, "
                                           "which is not in 'images'; skipped"))
            continue
        by_image.setdefault(image_id, []).append((index, ann))
    return by_image


def _add_annotation(builder: SampleBuilder, index: int, ann: dict, label_of: dict[int, int]) -> None:
    """Add one annotation's box (or crowd ignore region) to ``builder``, reporting what is wrong."""
    what = f"{_annotation_name(index, ann)} (image {_integer(ann.get('image_id'))})"
    bbox = ann.get("bbox")
    values = [_number(v) for v in bbox] if isinstance(bbox, list) and len(bbox) == 4 else []
    if len(values) != 4 or None in values:
        builder.problem("malformed_label", f"{what}: 'bbox' must be 4 numbers [x, y, w, h], got {_short(bbox)}")
        return
    x, y, w, h = values  # type: ignore[misc]
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        builder.problem("malformed_label", f"{what}: NaN or infinite value in bbox {_short(bbox)}")
        return
    crowd = ann.get("iscrowd", 0)
    if crowd not in (0, 1, None):  # True and False are 1 and 0
        builder.problem("malformed_label", f"{what}: 'iscrowd' must be 0 or 1, got {_short(crowd)}")
        return
    if crowd:
        builder.add([x, y, x + w, y + h], None, what=f"{what} (crowd)")
        return
    category_id = _integer(ann.get("category_id"))
    if category_id is None:
        builder.problem("malformed_label", f"{what}: no integer 'category_id' (got {_short(ann.get('category_id'))})")
        return
    if category_id not in label_of:
        builder.drop("unknown_class", f"{what}: category id {category_id} is not in 'categories'; skipped")
        return
    builder.add([x, y, x + w, y + h], label_of[category_id], what=what)


def _integer(value: Any) -> int | None:
    """An id or size as written in json: an int, a whole float (``3.0``) or a string of digits; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None  # False for NaN and inf
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _number(value: Any) -> float | None:
    """A json number as a float (NaN and inf kept, checked by the caller); None for anything else."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _annotation_name(index: int, ann: dict) -> str:
    """``annotations[3] (id 17)`` for messages."""
    return f"annotations[{index}] (id {_short(ann.get('id', '?'), 20)})"


def _kind(value: Any) -> str:
    """A json value's type for messages: ``an object``, ``nothing``."""
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    return "nothing (missing or null)" if value is None else kinds.get(type(value), type(value).__name__)


def _short(entry: Any, limit: int = 60) -> str:
    """A json value for a message, on one line, cut to ``limit`` characters."""
    try:
        text = json.dumps(entry, default=str)
    except (ValueError, RecursionError):
        text = "..."
    return text if len(text) <= limit else text[: limit - 3] + "..."
