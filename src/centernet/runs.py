"""A training run's data: the built-in sets' settings, held-out validation lists, the check before use."""

from __future__ import annotations

from pathlib import Path

from .data import hold_out, subset
from .data.check import check_split, summary_line, valid_samples
from .data.shapes import ShapesConfig
from .data.shapes3d import Shapes3DConfig
from .data.shapes_pose import ShapesPoseConfig

# The built-in datasets' settings classes, by name.
BUILTIN_CONFIGS = {"shapes": ShapesConfig, "shapes_pose": ShapesPoseConfig, "shapes3d": Shapes3DConfig}


def builtin_config(data: str, settings: dict):
    """The settings dataclass of a built-in dataset ('shapes', 'shapes_pose', 'shapes3d') from its dict."""
    return BUILTIN_CONFIGS.get(data, ShapesConfig)(**settings)


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
