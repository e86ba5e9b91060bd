"""What ``predict`` reads: image paths, folders, globs and arrays, and a 3D model's camera for each image."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np

from .errors import CenterNetError
from .data.kitti import KittiFormatError, read_calib_file

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def camera_of(item, calib) -> np.ndarray:
    """P2 (3, 4) for one image: ``calib`` (a (3, 4) array or a KITTI calib file), else the KITTI calib beside it."""
    if calib is not None:
        if isinstance(calib, (str, Path)):
            return read_calib_file(calib)["P2"]
        p2 = np.asarray(calib, np.float64)
        if p2.shape != (3, 4) or not np.isfinite(p2).all():
            raise CenterNetError(f"calib of shape {p2.shape} is not a finite (3, 4) projection matrix P2")
        return p2
    if isinstance(item, Path):
        beside = item.parent.parent / "calib" / f"{item.stem}.txt"
        if beside.is_file():
            try:
                return read_calib_file(beside)["P2"]
            except KittiFormatError as e:
                raise CenterNetError(str(e)) from None
        raise CenterNetError(f"{item}: a 3D model needs the camera; no {beside} (KITTI layout) and no calib given")
    raise CenterNetError("a 3D model needs the camera of an image array: give calib (a (3, 4) P2 or a calib file)")


def check_array(x) -> np.ndarray:
    if not (isinstance(x, np.ndarray) and x.ndim == 3 and x.shape[2] == 3 and x.dtype == np.uint8):
        raise CenterNetError("an image array must be (H, W, 3) uint8 RGB")
    return x


def expand_sources(source) -> list:
    """Image paths (sorted) and arrays from a path, folder, glob, array, or a list of them."""
    if isinstance(source, (list, tuple)):
        return [item for s in source for item in expand_sources(s)]
    if isinstance(source, np.ndarray):
        return [source]
    text = str(source)
    path = Path(text)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise CenterNetError(f"folder {text!r} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return files
    if path.is_file():
        return [path]
    if any(c in text for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise CenterNetError(f"no images match {text!r}")
        return files
    raise CenterNetError(f"image source {text!r} does not exist")
