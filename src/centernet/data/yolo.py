"""Reader for YOLO txt datasets described by a ``data.yaml`` (the ultralytics layout).

Without a yaml, a folder with ``images/`` and ``labels/`` and its class names one per line in ``classes.txt``
or ``obj.names`` (beside them or in ``labels/``, as labelImg and darknet tools write them) reads as if its yaml
said so (:func:`names_file_config`): ``images/<split>/`` sub-folders are splits, else ``images/`` is ``train``.

The yaml has ``path`` (dataset root: absolute, or relative to the yaml's folder;
default the yaml's folder), one key per split (``train``, ``val``, optional ``test``)
whose value is a folder, a list of folders, or a ``.txt`` file listing image paths
(all relative to ``path``), and ``names`` as a list or an ``{index: name}`` dict.

Each image's labels are in the file found by replacing the last ``images`` component
of its path with ``labels`` and the suffix with ``.txt``; each line is
``class cx cy w h`` with the centre and size normalised to [0, 1] by the image size.
An image without a label file (or with an empty one) is a background image.
Class indices are the category ids; labels are their positions in index order.

Pose (ultralytics): a yaml with ``kpt_shape: [K, D]`` (D = 2 or 3) has K joints after the box
on every line, ``class cx cy w h x1 y1 [v1] ... xK yK [vK]``, coordinates normalised like the
box. Read into ``sample.keypoints`` (N, K, 3) in pixels with v:

* D = 3: v as written when it is 0, 1 or 2 (COCO's unlabelled / occluded / visible; what
  ultralytics writes); any other value in (0, 2] (exporters that write a 0..1 float) means
  labelled and is stored as 2 (visible); v < 0, v > 2 or NaN is ``malformed_label``.
* D = 2: a joint at exactly (0, 0) is unlabelled (v = 0), any other v = 2.

A line with another number of values than ``5 + K * D`` is ``malformed_label`` (file:line) and
skipped; bad joint values in a good line (NaN, v out of range) are ``malformed_label`` too, the
box is kept with every joint v = 0. ``flip_idx`` (a permutation of 0..K-1) comes from the yaml;
without one no joint changes side (identity), which is wrong for left/right joints, so give it.
``kpt_names`` (a list, or ultralytics' ``{class: [names]}``) names the joints, else names are "";
``skeleton`` (0-based ``[a, b]`` pairs, not an ultralytics key) is optional. ``sigmas`` is None
(evaluation then uses COCO's when K = 17 and needs them given otherwise).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..errors import CenterNetError
from .images import ImageFileError, read_image_header
from .samples import (
    DatasetProblem,
    DatasetSplit,
    DetectionSample,
    KeypointSpec,
    SampleBuilder,
    annotations_of,
    file_exists,
    one_line,
    path_kind,
)

IMAGE_SUFFIXES = frozenset({".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"})
MAX_CLASSES = 100_000  # an 'nc' above this is a typo, not a class count
NON_SPLIT_KEYS = frozenset({"path", "names", "nc", "download", "yaml_file", "kpt_shape", "flip_idx", "channels",
                            "kpt_names", "skeleton"})
MAX_JOINTS = 1000  # a 'kpt_shape' K above this is a typo


@dataclass
class YoloPose:
    """What a pose yaml says about the values after the box: K joints of D values each."""

    spec: KeypointSpec
    dims: int  # D: 2 (x y) or 3 (x y v)

    @property
    def num_values(self) -> int:
        """Values per label line: 5 box values and K x D joint values."""
        return 5 + self.spec.num_joints * self.dims


def read_yolo(
    yaml_path: str | Path, split: str = "train", keypoints: bool | None = None, config: dict[str, Any] | None = None
) -> DatasetSplit:
    """Read split ``split`` of the dataset described by ``yaml_path`` (or by ``config``, the settings a yaml
    would hold, with ``yaml_path`` the file that named the classes).

    A missing or invalid yaml, a split it does not define, or a split folder that does
    not exist raise :class:`CenterNetError`; problems inside the data are reported in
    ``DatasetSplit.problems``.

    ``keypoints``: None reads keypoints when the yaml has ``kpt_shape``; False reads boxes only
    (lines still have the ``kpt_shape`` length); True requires ``kpt_shape`` (CenterNetError
    saying the data has no keypoints otherwise).
    """
    yaml_path = Path(yaml_path)
    config = load_yaml(yaml_path) if config is None else config
    root = dataset_root(yaml_path, config)
    category_ids, names = class_list(yaml_path, config)
    label_of = {cid: i for i, cid in enumerate(category_ids)}
    pose = pose_settings(yaml_path, config)
    if keypoints and pose is None:
        raise CenterNetError(f"{yaml_path}: the data has no keypoints (no 'kpt_shape' in the yaml)")

    problems: list[DatasetProblem] = []
    image_paths = _split_images(yaml_path, config, root, split, problems)
    samples, dropped = [], 0
    for path in image_paths:
        try:
            header = read_image_header(path)  # the displayed size: normalised coordinates are relative to it
        except ImageFileError as e:
            problems.append(DatasetProblem(str(path), None, e.kind, f"{e.reason}; dropped"))
            continue
        size = (header.width, header.height)
        sample, n_dropped = _read_sample(path, len(samples) + 1, size, label_of, problems, pose)
        if sample is not None:
            if keypoints is False:
                sample.keypoints = None
            samples.append(sample)
            dropped += n_dropped
    source = f"{yaml_path} (split {split!r})"
    spec = pose.spec if pose is not None and keypoints is not False else None
    return DatasetSplit(samples, names, category_ids, source=source, problems=problems, dropped_boxes=dropped,
                        keypoint_spec=spec, annotations=annotations_of(spec))


def pose_settings(yaml_path: Path, config: dict[str, Any]) -> YoloPose | None:
    """The yaml's ``kpt_shape``, ``flip_idx``, ``kpt_names``, ``skeleton``; None without ``kpt_shape``.

    Any of them malformed is a CenterNetError naming the yaml.
    """
    shape = config.get("kpt_shape")
    if shape is None:
        return None
    if (not isinstance(shape, list) or len(shape) != 2 or not all(_is_int(v) for v in shape)
            or not 1 <= shape[0] <= MAX_JOINTS or shape[1] not in (2, 3)):
        raise CenterNetError(f"{yaml_path}: 'kpt_shape' must be [K, 2] or [K, 3] (K joints), got {shape!r}")
    num_joints, dims = shape
    flip = config.get("flip_idx")
    if flip is None:
        flip_idx = list(range(num_joints))
    elif (isinstance(flip, list) and all(_is_int(v) for v in flip)
            and sorted(flip) == list(range(num_joints))):
        flip_idx = [int(v) for v in flip]
    else:
        raise CenterNetError(f"{yaml_path}: 'flip_idx' must be a permutation of 0..{num_joints - 1} "
                             f"(joint j's mirror joint), got {one_line(repr(flip), 80)}")
    joint_names = _joint_names(yaml_path, config.get("kpt_names"), num_joints)
    skeleton = config.get("skeleton") or []
    if not isinstance(skeleton, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(_is_int(v) and 0 <= v < num_joints for v in p)
            for p in skeleton):
        raise CenterNetError(f"{yaml_path}: 'skeleton' must be a list of 0-based [a, b] joint pairs in "
                             f"0..{num_joints - 1}, got {one_line(repr(skeleton), 80)}")
    spec = KeypointSpec(num_joints, flip_idx, joint_names, [(int(a), int(b)) for a, b in skeleton])
    return YoloPose(spec, dims)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _joint_names(yaml_path: Path, value: Any, num_joints: int) -> list[str]:
    """K joint names from ``kpt_names``: a list, or ultralytics' ``{class: [names]}`` (the first class's);
    ``[""] * K`` when absent."""
    if value is None:
        return [""] * num_joints
    if isinstance(value, dict) and value:
        value = next(iter(value.values()))
    if not isinstance(value, list) or len(value) != num_joints:
        raise CenterNetError(f"{yaml_path}: 'kpt_names' must list {num_joints} joint names, "
                             f"got {one_line(repr(value), 80)}")
    return [str(v) for v in value]


NAMES_FILES = ("classes.txt", "obj.names")  # one class name per line: labelImg's, darknet's


def names_file_config(root: Path) -> tuple[Path, dict[str, Any]] | None:
    """(the names file, the settings a data.yaml would hold) for a YOLO folder without a yaml: ``images/`` and
    ``labels/`` with ``classes.txt`` or ``obj.names`` beside them or in ``labels/``; None when it is not one."""
    if not (root / "images").is_dir() or not (root / "labels").is_dir():
        return None
    names_file = next((folder / name for folder in (root, root / "labels") for name in NAMES_FILES
                       if file_exists(folder / name)), None)
    if names_file is None:
        return None
    try:
        names = [line.strip() for line in names_file.read_bytes().decode("utf-8-sig").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise CenterNetError(f"{names_file}: the class names are not readable UTF-8 text ({one_line(str(e))})") from None
    if not names:
        raise CenterNetError(f"{names_file}: no class names (expected one name per line)")
    subfolders = sorted(p.name for p in (root / "images").iterdir() if p.is_dir() and not p.name.startswith("."))
    splits = {name: f"images/{name}" for name in subfolders} or {"train": "images"}
    return names_file, {"path": str(root.resolve()), "names": names, **splits}


def load_yaml(yaml_path: Path) -> dict[str, Any]:
    """The yaml as a dict; CenterNetError when missing or not a mapping."""
    if not file_exists(yaml_path):
        raise CenterNetError(f"dataset yaml {str(yaml_path)!r} does not exist")
    try:
        config = yaml.safe_load(yaml_path.read_bytes())
    except OSError as e:
        raise CenterNetError(f"{yaml_path}: cannot read the file ({e.strerror or e})") from None
    except Exception as e:  # noqa: BLE001 - YAMLError, bad UTF-8, a date like 2020-13-45, deep nesting: not valid yaml
        reason = (str(e).splitlines() or [type(e).__name__])[0]
        raise CenterNetError(f"{yaml_path}: not valid yaml ({one_line(reason)})") from None
    if not isinstance(config, dict):
        raise CenterNetError(f"{yaml_path}: expected a mapping with 'path', 'train', 'val' and 'names'")
    return config


def dataset_root(yaml_path: Path, config: dict[str, Any]) -> Path:
    """``path`` resolved against the yaml's folder (absolute paths kept); the yaml's folder by default."""
    base = yaml_path.resolve().parent
    value = config.get("path")
    return base if not value else base / _expand_user(str(value))


def class_list(yaml_path: Path, config: dict[str, Any]) -> tuple[list[int], list[str]]:
    """(class indices, names) in index order, from ``names`` (list or dict) or, lacking it, ``nc``."""
    names = config.get("names")
    if isinstance(names, list) and names:
        return list(range(len(names))), [str(n) for n in names]
    if isinstance(names, dict) and names:
        indices = [_class_index(k) for k in names]
        if None in indices:
            raise CenterNetError(f"{yaml_path}: 'names' keys must be class indices (integers >= 0)")
        if len(set(indices)) < len(indices):
            raise CenterNetError(f"{yaml_path}: a class index is listed twice in 'names'")
        pairs = sorted(zip(indices, (str(v) for v in names.values())))
        return [k for k, _ in pairs], [v for _, v in pairs]
    nc = config.get("nc")
    if names is None and isinstance(nc, int) and not isinstance(nc, bool) and 0 < nc <= MAX_CLASSES:
        return list(range(nc)), [str(i) for i in range(nc)]
    raise CenterNetError(f"{yaml_path}: 'names' must be a non-empty list or {{index: name}} mapping of the classes")


def _class_index(key: object) -> int | None:
    """A ``names`` key as a class index: an int >= 0 or a string of digits (yaml ``"0":``); else None."""
    if isinstance(key, str) and key.strip().isascii() and key.strip().isdigit():
        key = int(key)
    return key if isinstance(key, int) and not isinstance(key, bool) and key >= 0 else None


def _expand_user(text: str) -> Path:
    """``Path(text)`` with a leading ``~`` expanded, left as written when that user has no home."""
    try:
        return Path(text).expanduser()
    except RuntimeError:
        return Path(text)


def splits_in(config: dict[str, Any]) -> list[str]:
    """The split names a yaml defines (keys with a non-empty value, other than settings)."""
    return [k for k, v in config.items() if k not in NON_SPLIT_KEYS and isinstance(v, (str, list)) and v]


def label_path(image_path: Path) -> Path:
    """The label file of an image: last ``images`` component -> ``labels``, suffix -> ``.txt``."""
    parts = list(image_path.parts)
    for i in range(len(parts) - 2, -1, -1):  # a directory component, not the file name
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def _split_images(
    yaml_path: Path, config: dict[str, Any], root: Path, split: str, problems: list[DatasetProblem]
) -> list[Path]:
    """The split's image paths in listing order, without duplicates (reported) or missing files (reported)."""
    value = config.get(split)
    if not value or not isinstance(value, (str, list)):
        have = ", ".join(splits_in(config)) or "none"
        raise CenterNetError(f"{yaml_path}: no split {split!r} (splits defined: {have})")
    entries = value if isinstance(value, list) else [value]
    images: list[Path] = []
    seen: set[str] = set()
    for entry in entries:
        source = _entry_path(root, str(entry))
        kind = path_kind(source)
        if kind == "folder":
            listed = [(p, None, None) for p in _images_under(source)]
        elif kind == "file" and source.suffix == ".txt":
            listed = _images_in_list(source, root)
        else:
            raise CenterNetError(
                f"{yaml_path}: split {split!r} path {str(source)!r} is neither a folder nor a .txt list of images"
            )
        for path, list_file, line in listed:
            key = os.path.normpath(os.path.abspath(path))
            where, at = (str(list_file), line) if list_file else (str(path), None)
            if key in seen:
                problems.append(DatasetProblem(where, at, "duplicate_image", f"{path} listed again; dropped"))
            elif not file_exists(path):
                problems.append(DatasetProblem(where, at, "missing_image", f"{path} does not exist; dropped"))
            else:
                images.append(path)
            seen.add(key)
    return images


def _entry_path(root: Path, entry: str) -> Path:
    """A split entry resolved against the root; like ultralytics, a missing ``../x`` is retried as ``x``
    (Roboflow exports write ``../train/images`` beside a ``data.yaml`` in the dataset folder)."""
    path = root / entry
    if not path_kind(path) and entry.startswith("../") and path_kind(root / entry[3:]):
        return root / entry[3:]
    return path


def _images_under(folder: Path) -> list[Path]:
    """Image files anywhere under ``folder``, sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _images_in_list(list_file: Path, root: Path) -> list[tuple[Path, Path, int]]:
    """(image path, list file, 1-based line) per non-empty line; relative paths are taken from the list's folder,
    else from the dataset root."""
    try:
        lines = list_file.read_bytes().decode("utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise CenterNetError(f"{list_file}: the image list is not readable UTF-8 text ({one_line(str(e))})") from None
    out = []
    for number, text in enumerate(lines, start=1):
        text = text.strip()
        if not text:
            continue
        path = _expand_user(text)
        if not path.is_absolute():
            near = list_file.parent / path
            path = near if path_kind(near) or not path_kind(root / path) else root / path
        out.append((path, list_file, number))
    return out


def _read_sample(
    image: Path,
    image_id: int,
    size: tuple[int, int],
    label_of: dict[int, int],
    problems: list[DatasetProblem],
    pose: YoloPose | None = None,
) -> tuple[DetectionSample | None, int]:
    """The image's sample and how many of its boxes were dropped; (None, 0) when its label file is unreadable."""
    width, height = size
    labels_file = label_path(image)
    builder = SampleBuilder(labels_file, width, height, problems)
    joints: list[np.ndarray] = []  # (K, 3) per kept box (pose data)
    if file_exists(labels_file):
        try:
            lines = labels_file.read_bytes().decode("utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            builder.problem("malformed_label",
                            f"label file is not readable UTF-8 text ({one_line(str(e))}); image {image.name!r} dropped")
            return None, 0
        for number, text in enumerate(lines, start=1):
            if text.strip():
                _add_line(builder, text, number, label_of, pose, joints)
    sample = builder.build(image, image_id)
    if pose is not None:
        sample.keypoints = np.asarray(joints, np.float32).reshape(-1, pose.spec.num_joints, 3)  # (N, K, 3)
    return sample, builder.dropped


def _add_line(
    builder: SampleBuilder,
    text: str,
    line: int,
    label_of: dict[int, int],
    pose: YoloPose | None = None,
    joints: list[np.ndarray] | None = None,
) -> None:
    """Parse one ``class cx cy w h [joints]`` line (normalised) into a pixel box (and its joints, appended to
    ``joints`` when the box is kept) on ``builder``."""
    fields = text.split()
    if pose is None and len(fields) != 5:
        builder.problem("malformed_label", f"expected 5 fields 'class cx cy w h', got {len(fields)}", line)
        return
    if pose is not None and len(fields) != pose.num_values:
        k, d = pose.spec.num_joints, pose.dims
        builder.problem("malformed_label", f"expected {pose.num_values} fields 'class cx cy w h' + {k} joints x {d} "
                        f"(kpt_shape [{k}, {d}]), got {len(fields)}", line)
        return
    try:
        values = [float(v) for v in fields]
    except ValueError:
        builder.problem("malformed_label", f"not a number in {text.strip()!r}", line)
        return
    if not all(math.isfinite(v) for v in values[:5]):
        builder.problem("malformed_label", f"NaN or infinite value in {text.strip()!r}", line)
        return
    cls, cx, cy, w, h = values[:5]
    if cls != int(cls) or cls < 0:
        builder.problem("malformed_label", f"class {fields[0]!r} is not a class index", line)
        return
    if int(cls) not in label_of:
        builder.drop("unknown_class", f"class {int(cls)} is not in names ({len(label_of)} classes); skipped", line)
        return
    W, H = builder.width, builder.height  # noqa: N806 - image size in pixels
    box = [(cx - w / 2) * W, (cy - h / 2) * H, (cx + w / 2) * W, (cy + h / 2) * H]
    kept = builder.add(box, label_of[int(cls)], line, what=f"class {int(cls)} box")
    if kept and pose is not None and joints is not None:
        joints.append(_line_joints(builder, values[5:], pose.dims, line))


def _line_joints(builder: SampleBuilder, values: list[float], dims: int, line: int) -> np.ndarray:
    """(K, 3) pixel joints from a line's K x D normalised values; all v = 0 (and a problem) when they are bad."""
    raw = np.asarray(values, np.float64).reshape(-1, dims)  # (K, D)
    xy = raw[:, :2] * (builder.width, builder.height)
    if dims == 3:
        v = raw[:, 2]
        labelled = np.where(np.isin(v, (0, 1, 2)), v, 2.0)  # a 0..1 float visibility: labelled, stored as 2
        bad = ~np.isfinite(v) | (v < 0) | (v > 2)
    else:
        labelled = np.where((raw[:, 0] == 0) & (raw[:, 1] == 0), 0.0, 2.0)  # (0, 0): unlabelled
        bad = np.zeros(len(raw), bool)
    if bad.any() or not np.isfinite(xy).all():
        what = "visibility not in [0, 2]" if bad.any() else "NaN or infinite joint coordinate"
        builder.problem("malformed_label", f"{what} (joint {int(np.argmax(bad | ~np.isfinite(xy).all(1)))}); "
                        "its joints are all unlabelled", line)
        return np.zeros((len(raw), 3), np.float32)
    return np.concatenate([xy, labelled[:, None]], axis=1).astype(np.float32)
