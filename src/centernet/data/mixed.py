"""A dataset YAML whose splits come from sources of any format.

A YOLO ``data.yaml`` names each split's images; here a split may instead be a mapping that names a source in
any supported format, read by that format's reader::

    path: /data                                     # optional, as in a YOLO yaml: the root of relative paths
    names: [platelet, rbc, wbc]                     # optional: the class order
    train: {coco: bccd/train/_annotations.coco.json}   # its images beside it, or given with images:
    val: {voc: bccd_voc/xml, images: bccd_voc/jpg}  # a VOC folder (with or without ImageSets/); images: when
                                                    # they are not beside the xml, in images/ or JPEGImages/
    test: {yolo: other/data.yaml, split: test}      # another dataset's split (split: defaults to this one's
                                                    # name, or to the source's only split)
    extra: images/extra                             # a plain YOLO entry, as in any data.yaml

Every split is relabelled to one class list: ``names`` when given, else the sorted class names of every
split's source. An object of a class outside ``names`` is dropped as ``unknown_class``. Category ids are the
class positions (0..C-1), as in a YOLO yaml.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CenterNetError
from .samples import DatasetProblem, DatasetSplit, DetectionSample, needs
from .yolo import NON_SPLIT_KEYS, dataset_root, read_yolo, splits_in

DATA_FORMATS = ("coco", "voc", "yolo")  # the formats a source (and --format) names


def is_mixed(config: dict[str, Any]) -> bool:
    """Whether some split of a yaml names a source (a mapping) rather than YOLO images."""
    return any(isinstance(config.get(name), dict) for name in splits_in_mixed(config))


def splits_in_mixed(config: dict[str, Any]) -> list[str]:
    """The split names of a yaml, those given as mappings included."""
    return [*splits_in(config), *(k for k, v in config.items() if k not in NON_SPLIT_KEYS and isinstance(v, dict) and v)]


def read_mixed(yaml_path: Path, config: dict[str, Any], split: str, keypoints: bool | None = None) -> DatasetSplit:
    """Split ``split`` of the yaml at ``yaml_path`` (already loaded as ``config``), relabelled to its classes."""
    if split not in splits_in_mixed(config):
        have = ", ".join(splits_in_mixed(config)) or "none"
        raise CenterNetError(f"{yaml_path}: no split {split!r} (splits defined: {have})")
    names = config.get("names")
    if names is None:  # every source's classes, each source read once
        sources = {other: _read_source(yaml_path, config, other, keypoints) for other in splits_in_mixed(config)}
        return relabel(sources[split], sorted({n for source in sources.values() for n in source.class_names}))
    if not (isinstance(names, list) and names and all(isinstance(n, (str, int)) for n in names)):
        raise CenterNetError(f"{yaml_path}: 'names' must be a non-empty list of class names")
    return relabel(_read_source(yaml_path, config, split, keypoints), [str(n) for n in names])


def _read_source(yaml_path: Path, config: dict[str, Any], split: str, keypoints: bool | None) -> DatasetSplit:
    from . import read_split

    entry = config[split]
    if not isinstance(entry, dict):  # YOLO images, as in any data.yaml
        if not config.get("names"):
            raise CenterNetError(f"{yaml_path}: split {split!r} is YOLO images, whose labels are class indices: "
                                 "the yaml needs 'names'")
        return read_yolo(yaml_path, split, keypoints, config)
    formats = [f for f in DATA_FORMATS if f in entry]
    unknown = sorted(set(entry) - {*DATA_FORMATS, "images", "split"})
    if len(formats) != 1 or unknown:
        raise CenterNetError(f"{yaml_path}: split {split!r} must name one source as coco:, voc: or yolo: (with "
                             f"optional images: and split:), got {sorted(entry)}")
    root = dataset_root(yaml_path, config)
    source = root / str(entry[formats[0]])
    if not source.exists():
        raise CenterNetError(f"{yaml_path}: split {split!r}: {formats[0]} source {str(source)!r} does not exist")
    images = root / str(entry["images"]) if "images" in entry else None
    if formats[0] == "coco" and source.is_file():
        from .coco import read_coco

        return read_coco(source, images or source.parent, keypoints)
    from . import available_splits

    name = entry.get("split")
    if name is None:  # a source with one split (a folder of xml files: 'train') gives it, whatever this one is called
        have = available_splits(source, needs(keypoints))
        name = have[0] if len(have) == 1 else split
    if formats[0] == "voc":
        from .voc import read_voc

        if keypoints:
            raise CenterNetError(f"{source}: the data has no keypoints (Pascal VOC has boxes only)")
        return read_voc(source, str(name), images=images)
    if images is not None:
        raise CenterNetError(f"{yaml_path}: split {split!r}: images: is for a coco: json or a voc: folder")
    return read_split(source, str(name), needs=needs(keypoints))


def relabel(split: DatasetSplit, names: list[str]) -> DatasetSplit:
    """``split`` with its labels turned into positions in ``names``; objects of other classes dropped and
    reported as ``unknown_class``, ignore regions of other classes dropped."""
    position = {name: i for i, name in enumerate(names)}
    mapping = np.array([position.get(name, -1) for name in split.class_names], np.int64)  # old label -> new
    problems, dropped = list(split.problems), split.dropped_boxes
    samples = []
    for sample in split.samples:
        labels = mapping[sample.labels]
        keep = labels >= 0
        for old in sample.labels[~keep].tolist():
            problems.append(DatasetProblem(str(sample.image_path), None, "unknown_class",
                                           f"class {split.class_names[old]!r} is not in 'names'; dropped"))
        dropped += int((~keep).sum())
        samples.append(_kept_objects(sample, labels, keep, mapping))
    return replace(split, samples=samples, class_names=list(names), category_ids=list(range(len(names))),
                   problems=problems, dropped_boxes=dropped)


def _kept_objects(sample: DetectionSample, labels: np.ndarray, keep: np.ndarray, mapping: np.ndarray):
    """The sample with only the kept objects (every per-object array cut alike) and relabelled regions."""
    def cut(values):
        return None if values is None else values[keep]

    ignore_boxes, ignore_labels = sample.ignore_boxes, sample.ignore_labels
    if ignore_labels is not None:
        new = np.where(ignore_labels < 0, -1, mapping[np.maximum(ignore_labels, 0)])
        kept_regions = (ignore_labels < 0) | (new >= 0)
        ignore_boxes, ignore_labels = ignore_boxes[kept_regions], new[kept_regions]
    return replace(sample, boxes=sample.boxes[keep], labels=labels[keep], areas=cut(sample.areas),
                   keypoints=cut(sample.keypoints), objects3d=cut(sample.objects3d), ignore_boxes=ignore_boxes,
                   ignore_labels=ignore_labels)
