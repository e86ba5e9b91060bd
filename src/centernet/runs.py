"""A training run's data: the built-in sets' settings, held-out validation lists, the check before use."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import yaml

from .config import TrainConfig
from .data import hold_out, subset
from .data.check import check_split, summary_line, valid_samples
from .data.shapes import ShapesConfig
from .data.shapes3d import Shapes3DConfig
from .data.shapes_pose import ShapesPoseConfig
from .errors import CenterNetError

# The built-in datasets' settings classes, by name.
BUILTIN_CONFIGS = {"shapes": ShapesConfig, "shapes_pose": ShapesPoseConfig, "shapes3d": Shapes3DConfig}


def builtin_config(data: str, settings: dict):
    """The settings dataclass of a built-in dataset ('shapes', 'shapes_pose', 'shapes3d') from its dict."""
    return BUILTIN_CONFIGS.get(data, ShapesConfig)(**settings)


# What a run's args.yaml holds (written by training), and so what `centernet train --config` reads.
RUN_KEYS = ("model", "task", "task_options", "data", "data_format", "train_split", "val_split", "shapes_config", "train")


def read_run_config(path: str | Path) -> dict:
    """A run's settings from its ``args.yaml`` (or any YAML of the same keys, all optional): the keys of
    :data:`RUN_KEYS`, ``train`` a mapping of :class:`~centernet.config.TrainConfig` settings (lists as tuples).
    A file that cannot be read, is not a mapping, or has a key not known here is a one-line error naming it."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except OSError as e:
        raise CenterNetError(f"{path}: cannot read the run settings ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise CenterNetError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    config = {} if config is None else config
    if not isinstance(config, dict):
        raise CenterNetError(f"{path}: expected a mapping of run settings, got {type(config).__name__}")
    for key in config:
        if key not in RUN_KEYS:
            raise CenterNetError(f"{path}: unknown key {key!r}; expected some of {', '.join(RUN_KEYS)}")
    for key in ("train", "task_options", "shapes_config"):
        if config.get(key) is not None and not isinstance(config[key], dict):
            raise CenterNetError(f"{path}: {key} must be a mapping, got {type(config[key]).__name__}")
    names = {f.name for f in fields(TrainConfig)}
    train = dict(config.get("train") or {})
    for key, value in train.items():
        if key not in names:
            raise CenterNetError(f"{path}: unknown training setting {key!r} under train")
        if isinstance(value, list):
            train[key] = tuple(value)
    return {**config, "train": train}


# Where a run keeps the images of a held-out validation split: (training images, validation images).
HELD_OUT_LISTS = ("train_images.txt", "val_images.txt")


def held_out_split(train, out: Path, val_split: str, fraction: float, seed: int):
    """(train, val) for a dataset without ``val_split``: the lists in ``out`` when the run folder has them (a
    resumed run), else a seeded ``fraction`` of ``train`` held out and both lists written to ``out``."""
    lists = [out / name for name in HELD_OUT_LISTS]
    if all(path.is_file() for path in lists):
        return tuple(subset(train, read_list(path), str(path)) for path in lists)
    train, val = hold_out(train, fraction, seed)
    out.mkdir(parents=True, exist_ok=True)
    for path, part in zip(lists, (train, val)):
        path.write_text("".join(f"{s.image_path}\n" for s in part.samples))
    total = len(train.samples) + len(val.samples)
    print(f"{train.source}: no split {val_split!r}; holding out {len(val.samples)} of {total} images for validation "
          f"(val_fraction {fraction:g}, seed {seed}), listed in {lists[1]}")
    return train, val


def read_list(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


def checked_split(split, data, progress: bool):
    """The dataset check before use: print one summary line, keep only images that decode."""
    report = check_split(split, verify_images=True, progress=progress)
    print(summary_line(report) + (f" (details: centernet check {data})" if report.problems else ""), flush=True)
    return valid_samples(split, report)
