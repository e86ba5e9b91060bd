"""Reader for COCO-format detection json (``images``, ``annotations``, ``categories``).

Category ids are mapped to contiguous labels 0..C-1 in id order (names kept);
``iscrowd`` annotations become ignore regions. A file that is not a COCO instances
json at all (or has no categories) raises :class:`CenterNetError`; bad entries inside a
valid file are skipped and reported as :class:`DatasetProblem` (see
``samples.PROBLEM_KINDS``), named by their index (``annotations[7] (id 12)``). Types are
checked, not coerced: ids and sizes are integers (``3`` or ``3.0``, or a string of digits),
``bbox`` is a list of four numbers, ``iscrowd`` is 0 or 1.

Pose (COCO person_keypoints): when a category lists joint names under ``keypoints``, the
file is read in pose mode (see :func:`read_coco`): each annotation's ``keypoints``
(``[x, y, v] * K``) becomes ``sample.keypoints`` (N, K, 3) aligned with the boxes, and the
split gets a :class:`KeypointSpec` and ``"keypoints"`` in its ``annotations``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CenterNetError
from .samples import (
    DatasetProblem, DatasetSplit, KeypointSpec, SampleBuilder, annotations_of, file_exists, one_line,
)

#: COCO person_keypoints' 17 joint names, in COCO's order.
COCO_PERSON_JOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle",
)
# COCO's per-joint OKS sigmas (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles).
COCO_KEYPOINT_SIGMAS: tuple[float, ...] = tuple(
    v / 10.0 for v in (0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87,
                       0.89, 0.89)
)


def read_coco(json_path: str | Path, images_dir: str | Path, keypoints: bool | None = None) -> DatasetSplit:
    """Read a COCO instances (or person_keypoints) json; image ``file_name``s are relative to ``images_dir``.

    Images listed but missing on disk, and repeated image ids or file names, are
    dropped and reported; the split keeps every valid image.

    ``keypoints``: None reads keypoints when a category lists joint names (pose mode), else boxes
    only; False always reads boxes only (every category, keypoints ignored); True requires joint
    names (a json without them is a CenterNetError saying it has no keypoints).

    Pose mode: only the categories that list ``keypoints`` (the persons) are kept; annotations
    of the other categories, crowd ones included, are skipped silently (they are not persons).
    All keypoint categories must list the same joints. ``KeypointSpec``: K and names from the
    category, ``skeleton`` turned from COCO's 1-based pairs into 0-based ones, ``flip_idx`` from
    the names (:func:`flip_from_names`), ``sigmas`` from an optional ``sigmas`` list in the
    category (K positive numbers; an extension this package's synthetic set writes), else COCO's
    for COCO's 17 joint names, else None. Each kept person's ``keypoints`` become its row of
    ``sample.keypoints`` (N, K, 3) as written (x, y pixels; v 0/1/2; joints with v > 0 outside the
    image are kept); a missing or bad ``keypoints`` entry (wrong length, not numbers, NaN, v not 0,
    1 or 2) is a ``malformed_label`` problem and that person keeps its box with every joint v = 0.
    Crowd annotations stay ignore regions (no joints).
    """
    json_path, images_dir = Path(json_path), Path(images_dir)
    data = _load_json(json_path)
    problems: list[DatasetProblem] = []
    where = str(json_path)

    categories = _categories(data["categories"], where)
    notes = []
    parent = _unused_parent_category(data["categories"], categories, data["annotations"])
    if parent is not None:
        categories = [(cid, name) for cid, name in categories if cid != parent[0]]
        notes.append(f"category {parent[0]} {parent[1]!r} left out of the classes: no annotation uses it and every "
                     "other category names it as its supercategory (as Roboflow exports write the dataset's name)")
    pose = None if keypoints is False else _pose_categories(data["categories"], where)
    if keypoints and pose is None:
        raise CenterNetError(f"{where}: the data has no keypoints (no category lists joint names under 'keypoints'); "
                             "a pose dataset needs a COCO person_keypoints json")
    spec, skipped = None, frozenset()
    if pose is not None:
        spec, pose_ids = pose
        skipped = frozenset(cid for cid, _ in categories if cid not in pose_ids)
        categories = [(cid, name) for cid, name in categories if cid in pose_ids]
    category_ids = [cid for cid, _ in categories]
    label_of = {cid: i for i, cid in enumerate(category_ids)}
    images, listed_ids = _valid_images(data["images"], images_dir, where, problems)
    by_image = _annotations_by_image(data["annotations"], listed_ids, where, problems)

    samples, dropped = [], 0
    for image_id, (path, width, height) in images.items():
        builder = SampleBuilder(json_path, width, height, problems)
        joints: list[np.ndarray] = []  # (K, 3) per kept person, in box order
        areas: list[float] = []  # per kept object: the json's area (its mask's), NaN where it has none
        for index, ann in by_image.get(image_id, []):
            if _integer(ann.get("category_id")) in skipped:
                continue  # pose mode: not a person
            kept_before = len(builder.boxes)
            if _add_annotation(builder, index, ann, label_of) and spec is not None:
                joints.append(_person_joints(builder, index, ann, spec.num_joints))
            if len(builder.boxes) > kept_before:
                area = _number(ann.get("area"))
                areas.append(area if area is not None and 0 < area < float("inf") else float("nan"))
        sample = builder.build(path, image_id)
        sample.areas = np.asarray(areas, np.float64)
        if spec is not None:
            sample.keypoints = np.asarray(joints, np.float32).reshape(-1, spec.num_joints, 3)  # (N, K, 3)
        samples.append(sample)
        dropped += builder.dropped
    names = [name for _, name in categories]
    return DatasetSplit(samples, names, category_ids, source=where, problems=problems, dropped_boxes=dropped,
                        keypoint_spec=spec, annotations=annotations_of(spec), notes=notes)


def _unused_parent_category(
    entries: list[Any], categories: list[tuple[int, str]], annotations: Any
) -> tuple[int, str] | None:
    """(id, name) of a category that no annotation uses and that every other category names as its
    ``supercategory`` (Roboflow's category 0, named after the dataset), or None. Any other empty category is the
    user's class and stays."""
    if len(categories) < 2 or not isinstance(annotations, list):
        return None
    used = {_integer(a.get("category_id")) for a in annotations if isinstance(a, dict)}
    supercategory = {_integer(e.get("id")): e.get("supercategory") for e in entries}  # ids checked by _categories
    for cid, name in categories:
        others = [other for other, _ in categories if other != cid]
        if cid not in used and all(supercategory[other] == name for other in others):
            return cid, name
    return None


def _pose_categories(entries: list[Any], where: str) -> tuple[KeypointSpec, set[int]] | None:
    """The joints the keypoint categories list and those categories' ids; None when no category lists joints.

    A bad ``keypoints``/``skeleton``/``sigmas`` entry, or keypoint categories that disagree on their
    joints, is a CenterNetError naming the file.
    """
    found = [(i, e) for i, e in enumerate(entries) if isinstance(e, dict) and e.get("keypoints")]
    if not found:
        return None
    index, first = found[0]
    names = first["keypoints"]
    for i, entry in found:
        joint_names = entry["keypoints"]
        if not isinstance(joint_names, list) or not all(isinstance(n, str) for n in joint_names):
            raise CenterNetError(f"{where}: categories[{i}] 'keypoints' must be a list of joint names, "
                                 f"got {_short(joint_names)}")
        if joint_names != names:
            raise CenterNetError(f"{where}: categories[{i}] lists other joints than categories[{index}]; "
                                 "every keypoint category must list the same joints")
    num_joints = len(names)
    skeleton = _skeleton(first.get("skeleton"), num_joints, f"{where}: categories[{index}]")
    sigmas = _declared_sigmas(first.get("sigmas"), num_joints, f"{where}: categories[{index}]")
    if sigmas is None and tuple(names) == COCO_PERSON_JOINTS:
        sigmas = list(COCO_KEYPOINT_SIGMAS)
    spec = KeypointSpec(num_joints, flip_from_names(names), list(names), skeleton, sigmas)
    return spec, {_integer(e.get("id")) for _, e in found}  # ids already checked by _categories


def _skeleton(value: Any, num_joints: int, where: str) -> list[tuple[int, int]]:
    """COCO's 1-based ``skeleton`` pairs as 0-based ones; [] when absent."""
    if value is None:
        return []
    pairs = []
    for pair in value if isinstance(value, list) else [None]:
        ends = [_integer(v) for v in pair] if isinstance(pair, list) and len(pair) == 2 else [None]
        if None in ends or not all(1 <= e <= num_joints for e in ends):  # type: ignore[operator]
            raise CenterNetError(f"{where}: 'skeleton' must be a list of [a, b] joint numbers in 1..{num_joints} "
                                 f"(COCO's are 1-based), got {_short(value)}")
        pairs.append((ends[0] - 1, ends[1] - 1))  # type: ignore[operator]
    return pairs


def _declared_sigmas(value: Any, num_joints: int, where: str) -> list[float] | None:
    """An optional per-joint OKS ``sigmas`` list in a category (not standard COCO); None when absent."""
    if value is None:
        return None
    numbers = [_number(v) for v in value] if isinstance(value, list) else []
    if len(numbers) != num_joints or not all(n is not None and math.isfinite(n) and n > 0 for n in numbers):
        raise CenterNetError(f"{where}: 'sigmas' must be {num_joints} positive numbers (one per joint), "
                             f"got {_short(value)}")
    return [float(n) for n in numbers]  # type: ignore[arg-type]


# Left/right spellings: whole words ("left", "l") between separators, "left"/"right" anywhere,
# and a capital L/R before a capital letter (OpenPose's "LShoulder").
_SIDE_WORDS = {"left": "right", "right": "left", "l": "r", "r": "l"}
_SIDE_TOKEN = re.compile(r"(?<![a-z])(left|right|l|r)(?![a-z])", re.IGNORECASE)
_SIDE_ANYWHERE = re.compile(r"left|right", re.IGNORECASE)
_SIDE_CAMEL = re.compile(r"^([LR])(?=[A-Z])")


def _swap_case(word: str, like: str) -> str:
    """``word`` written in the case of ``like`` (``Left`` -> ``Right``, ``L`` -> ``R``)."""
    if like.isupper():
        return word.upper()
    return word.capitalize() if like[:1].isupper() else word


def _mirror_names(name: str) -> list[str]:
    """The names ``name``'s mirror joint could have, most specific first."""
    def swap(match: re.Match) -> str:
        return _swap_case(_SIDE_WORDS[match.group(0).lower()], match.group(0))

    out = [_SIDE_TOKEN.sub(swap, name), _SIDE_ANYWHERE.sub(swap, name), _SIDE_CAMEL.sub(swap, name)]
    return [n for n in out if n != name]


def flip_from_names(names: list[str]) -> list[int]:
    """flip_idx (K,) from joint names: ``left_x`` <-> ``right_x``, ``l_x`` <-> ``r_x``, ``x_l`` <-> ``x_r``,
    ``left``/``right`` anywhere (``leftKnee``), ``LShoulder`` <-> ``RShoulder``; case-insensitive, case kept.

    A joint is paired only when its mirror name is present and names it back; every other joint
    (no side, partner missing, names repeated) maps to itself, so the result is always an involution.
    """
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    where = {name: j for j, name in enumerate(names) if counts[name] == 1}  # only names that occur once
    perm = [next((where[m] for m in _mirror_names(n) if m in where), j) if n in where else j
            for j, n in enumerate(names)]
    return [p if perm[p] == j else j for j, p in enumerate(perm)]


def _person_joints(builder: SampleBuilder, index: int, ann: dict, num_joints: int) -> np.ndarray:
    """A kept person's joints (K, 3) as written; all v = 0 (and a ``malformed_label`` problem) when they are bad."""
    value = ann.get("keypoints")
    what = f"{_annotation_name(index, ann)} (image {_integer(ann.get('image_id'))})"
    numbers = [_number(v) for v in value] if isinstance(value, list) else []
    reason = ""
    if len(numbers) != 3 * num_joints or None in numbers:
        reason = f"'keypoints' must be {3 * num_joints} numbers [x, y, v] * {num_joints}, got {_short(value)}"
    elif not all(math.isfinite(v) for v in numbers):  # type: ignore[arg-type]
        reason = f"NaN or infinite value in 'keypoints' {_short(value)}"
    elif not all(v in (0, 1, 2) for v in numbers[2::3]):
        reason = f"visibility must be 0, 1 or 2, got {_short(sorted(set(numbers[2::3]) - {0, 1, 2}))}"
    if reason:
        builder.problem("malformed_label", f"{what}: {reason}; its joints are all unlabelled")
        return np.zeros((num_joints, 3), np.float32)
    return np.asarray(numbers, np.float32).reshape(num_joints, 3)


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


def _add_annotation(builder: SampleBuilder, index: int, ann: dict, label_of: dict[int, int]) -> bool:
    """Add one annotation's box (or crowd ignore region) to ``builder``, reporting what is wrong.

    Returns whether an object box (not an ignore region) was kept.
    """
    what = f"{_annotation_name(index, ann)} (image {_integer(ann.get('image_id'))})"
    bbox = ann.get("bbox")
    values = [_number(v) for v in bbox] if isinstance(bbox, list) and len(bbox) == 4 else []
    if len(values) != 4 or None in values:
        builder.problem("malformed_label", f"{what}: 'bbox' must be 4 numbers [x, y, w, h], got {_short(bbox)}")
        return False
    x, y, w, h = values  # type: ignore[misc]
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        builder.problem("malformed_label", f"{what}: NaN or infinite value in bbox {_short(bbox)}")
        return False
    crowd = ann.get("iscrowd", 0)
    if crowd not in (0, 1, None):  # True and False are 1 and 0
        builder.problem("malformed_label", f"{what}: 'iscrowd' must be 0 or 1, got {_short(crowd)}")
        return False
    category_id = _integer(ann.get("category_id"))
    if crowd:  # ignored for its own category (for every one when the category is unknown)
        builder.add([x, y, x + w, y + h], None, what=f"{what} (crowd)", ignore_for=label_of.get(category_id, -1))
        return False
    if category_id is None:
        builder.problem("malformed_label", f"{what}: no integer 'category_id' (got {_short(ann.get('category_id'))})")
        return False
    if category_id not in label_of:
        builder.drop("unknown_class", f"{what}: category id {category_id} is not in 'categories'; skipped")
        return False
    return builder.add([x, y, x + w, y + h], label_of[category_id], what=what)


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
