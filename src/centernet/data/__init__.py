"""Datasets: readers per format, the built-in synthetic set, transforms, the torch Dataset.

Formats (detected from the path by :func:`detect_format`; all produce one
:class:`DatasetSplit`): COCO json, YOLO txt with a ``data.yaml``, Pascal VOC xml, KITTI object folders (3D).

Split names have synonyms (:data:`SPLIT_SYNONYMS`): asked for ``val``, a dataset that has only ``valid``
(Roboflow's name) or ``validation`` gives that split.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import CenterNetError
from .coco import read_coco
from .kitti import kitti_folder, kitti_splits, read_kitti
from .mixed import DATA_FORMATS, is_mixed, read_mixed, splits_in_mixed
from .samples import IMAGE_DROP_KINDS, DatasetProblem, DatasetSplit, DetectionSample, problem_summary
from .voc import IMAGE_SUFFIXES, read_voc, xml_folders
from .yolo import load_yaml, names_file_config, read_yolo

__all__ = [
    "DatasetProblem",
    "DATA_FORMATS",
    "DatasetSplit",
    "DetectionSample",
    "SPLIT_SYNONYMS",
    "available_splits",
    "default_cache_dir",
    "detect_format",
    "has_split",
    "hold_out",
    "load_split",
    "problem_summary",
    "read_coco",
    "read_kitti",
    "read_split",
    "read_voc",
    "read_yolo",
    "resolve_split",
    "subset",
]

LAYOUTS = (
    "a YOLO data.yaml (or a folder holding one, or images/ + labels/ + classes.txt), "
    "a VOC folder (Annotations/, JPEGImages/, ImageSets/Main/), "
    "a COCO folder (annotations/instances_<split>.json, images/<split>/), COCO split folders (<split>/ holding "
    "one .json beside its images, as Roboflow exports), a COCO .json file, "
    "a folder of VOC .xml files (or of split folders of them) with their images, "
    "a KITTI folder (training/{image_2,label_2,calib}), or 'shapes'"
)


# What the readers can give per object (DatasetSplit.annotations); a task's ``needs`` is a subset of these.
ANNOTATIONS = ("boxes", "keypoints", "objects3d", "calib")

# Names that mean the same split; asked for one, a dataset that has only another of its group gives that.
SPLIT_SYNONYMS = (("train", "training"), ("val", "valid", "validation"), ("test", "testing"))


def resolve_split(split: str, available: list[str]) -> str:
    """``split`` if the dataset has it, else the one synonym of it that it has (``val`` -> ``valid``), else
    ``split`` unchanged (the reader then says the split is missing)."""
    if split in available:
        return split
    group = next((names for names in SPLIT_SYNONYMS if split.lower() in names), ())
    found = [name for name in available if name.lower() in group]
    return found[0] if len(found) == 1 else split


def default_cache_dir() -> Path:
    """Where built-in datasets are written: $CENTERNET_CACHE, else ~/.cache/centernet."""
    return Path(os.environ.get("CENTERNET_CACHE", Path.home() / ".cache" / "centernet"))


def load_split(
    data: str | Path, split: str = "train", shapes_config=None, needs: Sequence[str] = (), data_format: str | None = None
) -> DatasetSplit:
    """Read one split of a dataset, for training or evaluation.

    ``data`` is ``"shapes"`` (the built-in synthetic set, built on first use), a YOLO
    ``.yaml`` or a folder holding ``data.yaml``, a VOC folder, a folder in COCO layout
    (``annotations/instances_<split>.json`` + ``images/<split>/``), or a COCO json file.
    Bad entries are skipped and listed in ``.problems``; a split left with no valid
    image raises :class:`CenterNetError`.

    ``"shapes3d"`` is the built-in synthetic 3D set (KITTI format, ``shapes_config`` a ``Shapes3DConfig``); it and
    KITTI folders (``training/{image_2,label_2,calib}``, splits from ``ImageSets/<split>.txt``) give 3D splits
    (``"objects3d"`` in the result's ``annotations``); ``needs`` with ``"objects3d"`` accepts nothing else.

    ``needs``: the annotations the caller's task needs beyond boxes (``Task.needs``). With ``"keypoints"``, a COCO
    folder is read from ``annotations/person_keypoints_<split>.json`` (images in ``images/<split>/`` or, COCO's
    own layout, ``<split>/``), and data without keypoints (a detection json, a YOLO set without ``kpt_shape``,
    VOC) is a CenterNetError. Without it, boxes are read and keypoints ignored, except ``"shapes_pose"`` (the
    built-in synthetic pose set, ``shapes_config`` a ``ShapesPoseConfig``), which always has its keypoints.
    """
    result = read_split(data, split, shapes_config, needs, data_format)
    if not result.samples:
        raise CenterNetError(_no_images_message(result, split))
    return result


def read_split(
    data: str | Path, split: str = "train", shapes_config=None, needs: Sequence[str] = (), data_format: str | None = None
) -> DatasetSplit:
    """Like :func:`load_split` but a split with no valid image is returned (empty) rather than raised.

    ``data_format`` ('coco', 'voc', 'yolo'): the layout to read a folder as, for one that matches several."""
    unknown = sorted(set(needs) - set(ANNOTATIONS))
    if unknown:
        raise CenterNetError(f"no reader gives {', '.join(unknown)}; the readers give {', '.join(ANNOTATIONS)}")
    if str(data) == "shapes3d" or "objects3d" in needs:
        return _read_3d(data, split, shapes_config)
    keypoints = "keypoints" in needs
    if str(data) == "shapes_pose":
        from .shapes_pose import ShapesPoseConfig, build_shapes_pose

        root = build_shapes_pose(default_cache_dir() / "datasets", shapes_config or ShapesPoseConfig())
        return _read_coco_folder(root, split, True)
    if keypoints and str(data) == "shapes":
        raise CenterNetError("dataset 'shapes' has no keypoints; the built-in pose set is 'shapes_pose'")
    if str(data) == "shapes":
        from .shapes import ShapesConfig, build_shapes

        root = build_shapes(default_cache_dir() / "datasets", shapes_config or ShapesConfig())
        return _read_coco_folder(root, split)
    path = Path(data)
    if path.is_dir() or path.suffix.lower() in (".yaml", ".yml"):
        split = resolve_split(split, available_splits(path, needs, data_format))
    kind = detect_format(path, split, needs, data_format)
    if kind == "yolo":
        if path.is_dir() and _yolo_yaml(path) is None:
            names_file, config = names_file_config(path)
            return read_yolo(names_file, split, keypoints, config)
        yaml_path = path if path.is_file() else _yolo_yaml(path)
        config = load_yaml(yaml_path)
        if is_mixed(config):
            return read_mixed(yaml_path, config, split, keypoints)
        return read_yolo(yaml_path, split, keypoints, config)
    if kind == "kitti":
        if keypoints:
            raise CenterNetError(f"{path}: the data has no keypoints (KITTI has 2D and 3D boxes)")
        return read_kitti(path, split)
    if kind == "voc":
        if keypoints:
            raise CenterNetError(f"{path}: the data has no keypoints (Pascal VOC has boxes only)")
        return read_voc(path, split)
    if path.is_file():
        return read_coco(path, _coco_images_dir(path, split), keypoints)
    return _read_coco_folder(path, split, keypoints)


def detect_format(
    path: Path, split: str | None = "train", needs: Sequence[str] = (), data_format: str | None = None
) -> str:
    """``"yolo"``, ``"voc"`` or ``"coco"`` from the path alone; CenterNetError for anything else.

    ``data_format``: the layout to take when the path matches it (a folder may match several); a path that
    does not match it is a CenterNetError naming what it does match.

    ``.yaml``/``.yml`` file or folder with ``data.yaml`` -> YOLO; folder with
    ``Annotations/`` and ``JPEGImages/`` -> VOC; folder with ``annotations/instances_*.json``
    (or ``person_keypoints_*.json``) or a ``.json`` file -> COCO. A COCO folder without
    ``instances_<split>.json`` (``person_keypoints_<split>.json`` when ``needs`` has keypoints) is a
    missing split (not checked when ``split`` is None). A folder with ``image_2/``, ``label_2/`` and ``calib/``
    (itself or under ``training/``) and none of the above -> ``"kitti"``. Then sub-folders each holding one
    ``.json`` beside images -> ``"coco"`` (split folders); then ``.xml`` files (``voc.xml_folders``) -> ``"voc"``.
    """
    path = Path(path)
    if not path.exists():
        raise CenterNetError(f"dataset path {str(path)!r} does not exist; expected {LAYOUTS}")
    if data_format is not None:
        if data_format not in DATA_FORMATS:
            raise CenterNetError(f"format={data_format!r} is not known; expected one of: {', '.join(DATA_FORMATS)}")
        found = _layouts(path)
        if data_format not in found:
            raise CenterNetError(f"dataset {str(path)!r} is not in {data_format.upper()} layout (it matches: "
                                 f"{', '.join(found) or 'no known layout'})")
        return data_format
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".yaml", ".yml"):
            return "yolo"
        if suffix == ".json":
            return "coco"
        raise CenterNetError(f"dataset file {str(path)!r} is neither a .yaml (YOLO) nor a .json (COCO) file")
    if _yolo_yaml(path) is not None or names_file_config(path) is not None:
        return "yolo"
    if (path / "Annotations").is_dir() and (path / "JPEGImages").is_dir():
        return "voc"
    if _coco_splits(path) or _coco_splits(path, True):
        keypoints = "keypoints" in needs
        expected = _coco_json(path, split or "", keypoints)
        if split is not None and not expected.is_file():
            raise CenterNetError(
                f"dataset folder {str(path)!r} has no split {split!r}: expected "
                f"{str(expected)!r} (COCO layout; splits found: {', '.join(_coco_splits(path, keypoints)) or 'none'})"
            )
        return "coco"
    if kitti_folder(path) is not None:
        return "kitti"
    coco, voc = coco_split_folders(path), xml_folders(path)
    if coco and voc:
        raise CenterNetError(
            f"dataset folder {str(path)!r} is both COCO split folders ({', '.join(coco)}: one .json each) and VOC "
            f"xml folders ({', '.join(voc)}); choose one with --format coco or --format voc")
    if coco or voc:
        return "coco" if coco else "voc"
    raise CenterNetError(f"dataset folder {str(path)!r} has no known layout; expected {LAYOUTS}")


def _layouts(path: Path) -> list[str]:
    """Every layout ``path`` matches (see :func:`detect_format`)."""
    if path.is_file():
        return {".yaml": ["yolo"], ".yml": ["yolo"], ".json": ["coco"]}.get(path.suffix.lower(), [])
    matches = {
        "yolo": _yolo_yaml(path) is not None or names_file_config(path) is not None,
        "voc": ((path / "Annotations").is_dir() and (path / "JPEGImages").is_dir()) or bool(xml_folders(path)),
        "coco": bool(_coco_splits(path) or _coco_splits(path, True) or coco_split_folders(path)),
        "kitti": kitti_folder(path) is not None,
    }
    return [kind for kind, found in matches.items() if found]


def available_splits(data: str | Path, needs: Sequence[str] = (), data_format: str | None = None) -> list[str]:
    """The split names a dataset defines (for a COCO .json file: the one it is, named after it).

    For a COCO folder: the ``instances_<split>.json`` names, ``person_keypoints_<split>.json`` when ``needs`` has
    keypoints.
    """
    if str(data) in ("shapes", "shapes_pose"):
        return ["train", "val"]
    if str(data) == "shapes3d":
        return ["train", "val"]
    path = Path(data)
    kind = detect_format(path, None, data_format=data_format)
    if kind == "kitti":
        return kitti_splits(path)
    if kind == "yolo":
        if path.is_dir() and _yolo_yaml(path) is None:
            return splits_in_mixed(names_file_config(path)[1])
        return splits_in_mixed(load_yaml(path if path.is_file() else _yolo_yaml(path)))
    if kind == "voc":
        from .voc import splits_in as voc_splits

        return voc_splits(path)
    if path.is_file():
        return [_json_split_name(path) or "train"]
    return _coco_splits(path, "keypoints" in needs) or sorted(coco_split_folders(path))


def has_split(data: str | Path, split: str, needs: Sequence[str] = (), data_format: str | None = None) -> bool:
    """Whether ``data`` defines ``split`` (or a synonym of it); a single COCO .json has every split."""
    if str(data) in ("shapes", "shapes_pose", "shapes3d") or Path(data).suffix.lower() == ".json":
        return True
    have = available_splits(data, needs, data_format)
    return resolve_split(split, have) in have


def hold_out(split: DatasetSplit, fraction: float, seed: int) -> tuple[DatasetSplit, DatasetSplit]:
    """(train, val): a seeded ``fraction`` of ``split``'s images held out for validation, at least one, and at
    least one left to train on. The same images, fraction and seed give the same two parts."""
    if not 0 < fraction < 1:
        raise CenterNetError(f"val_fraction={fraction!r} is out of range; expected a fraction in (0, 1)")
    if len(split.samples) < 2:
        raise CenterNetError(f"{split.source}: {len(split.samples)} image(s) cannot be split into train and val; "
                             "give a validation split or --val-split none")
    count = min(len(split.samples) - 1, max(1, round(fraction * len(split.samples))))
    order = sorted(range(len(split.samples)), key=lambda i: str(split.samples[i].image_path))
    held = set(np.random.default_rng(seed).permutation(order)[:count].tolist())
    train = [s for i, s in enumerate(split.samples) if i not in held]
    val = [s for i, s in enumerate(split.samples) if i in held]
    return replace(split, samples=train), replace(split, samples=val, problems=[])


def subset(split: DatasetSplit, image_paths: list[str], where: str) -> DatasetSplit:
    """The samples of ``split`` whose image paths are listed, in ``split``'s order (a held-out list read back);
    a listed image the split does not have is a CenterNetError naming ``where``."""
    listed = set(image_paths)
    kept = [s for s in split.samples if str(s.image_path) in listed]
    if len(kept) != len(listed):
        have = {str(s.image_path) for s in split.samples}
        missing = sorted(listed - have)
        raise CenterNetError(f"{where}: {len(missing)} listed image(s) are not in {split.source}, the first "
                             f"{missing[0]!r}; the data changed since the split was held out")
    return replace(split, samples=kept, problems=[])


def _read_3d(data: str | Path, split: str, shapes_config=None) -> DatasetSplit:
    """A 3D split: the built-in ``"shapes3d"`` (built on first use; ``shapes_config`` a ``Shapes3DConfig``) or a
    KITTI folder; anything else is a CenterNetError (3D needs KITTI labels and calibration)."""
    if str(data) == "shapes3d":
        from .shapes3d import Shapes3DConfig, build_shapes3d

        return read_kitti(build_shapes3d(default_cache_dir() / "datasets", shapes_config or Shapes3DConfig()), split)
    kind = detect_format(Path(data), None)
    if kind != "kitti":
        raise CenterNetError(f"dataset {str(data)!r} is {kind.upper()}, which has no 3D labels; 3D training needs a "
                             "KITTI folder (training/{image_2,label_2,calib}) or 'shapes3d'")
    return read_kitti(Path(data), split)


def _yolo_yaml(folder: Path) -> Path | None:
    for name in ("data.yaml", "data.yml"):
        if (folder / name).is_file():
            return folder / name
    return None


# The annotation file name's prefix in a COCO folder, boxes or keypoints: annotations/<prefix><split>.json.
_COCO_PREFIX = {False: "instances_", True: "person_keypoints_"}


def _coco_splits(folder: Path, keypoints: bool = False) -> list[str]:
    prefix = _COCO_PREFIX[keypoints]
    return sorted(p.stem[len(prefix):] for p in (folder / "annotations").glob(f"{prefix}*.json"))


def _coco_json(root: Path, split: str, keypoints: bool = False) -> Path:
    """``root/annotations/instances_<split>.json`` (``person_keypoints_<split>.json`` with keypoints)."""
    return root / "annotations" / f"{_COCO_PREFIX[keypoints]}{split}.json"


def _json_split_name(json_path: Path) -> str:
    """``train2017`` for ``instances_train2017.json`` or ``person_keypoints_train2017.json``, else ``""``."""
    prefix = next((p for p in _COCO_PREFIX.values() if json_path.stem.startswith(p)), "")
    return json_path.stem[len(prefix):] if prefix else ""


def _coco_images_dir(json_path: Path, split: str) -> Path:
    """Where a json's images are: ``images/<name>`` beside its folder or itself, where ``<name>`` is the
    json's split name (``instances_<name>.json``) or ``split``; else ``<name>/`` beside its folder (COCO's
    own layout: ``annotations/``, ``train2017/``); else ``images/``; else the json's folder."""
    names = [n for n in (_json_split_name(json_path), split) if n]
    candidates = [base / "images" / n for n in names for base in (json_path.parent.parent, json_path.parent)]
    candidates += [json_path.parent.parent / n for n in names if json_path.parent.name == "annotations"]
    candidates.append(json_path.parent / "images")
    return next((c for c in candidates if c.is_dir()), json_path.parent)


def coco_split_folders(root: Path) -> dict[str, Path]:
    """Split name -> json of each sub-folder of ``root`` that holds exactly one ``.json`` beside its images (a
    Roboflow COCO export: ``train/_annotations.coco.json``, ``valid/...``, ``test/...``); {} when none does."""
    found = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = [p for p in folder.iterdir() if p.is_file()]
        jsons = [p for p in files if p.suffix.lower() == ".json"]
        if len(jsons) == 1 and any(p.suffix.lower() in IMAGE_SUFFIXES for p in files):
            found[folder.name] = jsons[0]
    return found


def _read_coco_folder(root: Path, split: str, keypoints: bool | None = False) -> DatasetSplit:
    """``annotations/<prefix><split>.json`` with images in ``images/<split>/``, else ``<split>/`` (COCO's layout);
    or, without ``annotations/``, the one json in the folder ``<split>/`` with its images beside it."""
    if not _coco_splits(root) and not _coco_splits(root, True):
        folders = coco_split_folders(root)
        if split not in folders:
            raise CenterNetError(f"dataset folder {str(root)!r} has no split {split!r}: expected a folder "
                                 f"{str(root / split)!r} holding one COCO .json (splits found: {', '.join(folders)})")
        return read_coco(folders[split], folders[split].parent, keypoints)
    json_path = _coco_json(root, split, bool(keypoints))
    if not json_path.is_file():
        raise CenterNetError(
            f"dataset folder {str(root)!r} has no split {split!r}: expected {str(json_path)!r} (COCO layout)"
        )
    images = root / "images" / split
    if not images.is_dir() and (root / split).is_dir():
        images = root / split
    return read_coco(json_path, images, keypoints)


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
