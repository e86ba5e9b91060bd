"""KITTI object files: ``label_2/*.txt`` rows and ``calib/*.txt`` matrices, read and written.

A label row (15 fields, a 16th ``score`` in result files)::

    type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y [score]

``truncated`` in [0, 1], ``occluded`` 0 fully visible .. 3 unknown, ``alpha`` the observation angle,
the 2D box in image pixels, dimensions h w l in metres, location x y z in camera coordinates
(metres; the bottom centre of the box, y pointing down), ``rotation_y`` about the camera's y axis.

Predictions are written in the same format, so KITTI's own tools read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CenterNetError

# The calib file's matrices and their shapes (P0..P3 project camera-0 rectified points to each image).
CALIB_SHAPES: dict[str, tuple[int, int]] = {
    "P0": (3, 4), "P1": (3, 4), "P2": (3, 4), "P3": (3, 4),
    "R0_rect": (3, 3), "Tr_velo_to_cam": (3, 4), "Tr_imu_to_velo": (3, 4),
}


@dataclass
class KittiObject:
    """One label row."""

    type: str                                   # 'Car', 'Pedestrian', ..., 'DontCare'
    truncated: float = 0.0                      # 0 (not truncated) .. 1 (truncated)
    occluded: int = 0                           # 0 visible, 1 partly, 2 largely occluded, 3 unknown
    alpha: float = 0.0                          # observation angle, [-pi, pi]
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # x1 y1 x2 y2 image pixels
    dimensions: tuple[float, float, float] = (0.0, 0.0, 0.0)       # h w l metres
    location: tuple[float, float, float] = (0.0, 0.0, 0.0)         # x y z camera metres, bottom centre
    rotation_y: float = 0.0                     # [-pi, pi]
    score: float | None = None                  # results only

    def to_line(self) -> str:
        """The row as KITTI writes it (2 decimals, 16 fields when there is a score)."""
        fields = [
            self.type, f"{self.truncated:.2f}", str(int(self.occluded)), f"{self.alpha:.2f}",
            *(f"{v:.2f}" for v in self.box), *(f"{v:.2f}" for v in self.dimensions),
            *(f"{v:.2f}" for v in self.location), f"{self.rotation_y:.2f}",
        ]
        if self.score is not None:
            fields.append(f"{self.score:.4f}")
        return " ".join(fields)


class KittiFormatError(CenterNetError):
    """A KITTI file that cannot be read; the message names the file (and line)."""


def parse_label_line(text: str, where: str) -> KittiObject:
    """One row -> :class:`KittiObject`; :class:`KittiFormatError` naming ``where`` (``file:line``) otherwise."""
    parts = text.split()
    if len(parts) not in (15, 16):
        raise KittiFormatError(f"{where}: {len(parts)} fields; expected 15 (16 with a score)")
    try:
        values = [float(v) for v in parts[1:]]
    except ValueError:
        raise KittiFormatError(f"{where}: a field is not a number: {' '.join(parts[1:])[:80]!r}") from None
    if not all(np.isfinite(values)):
        raise KittiFormatError(f"{where}: NaN or infinite value")
    return KittiObject(
        type=parts[0], truncated=values[0], occluded=int(values[1]), alpha=values[2],
        box=tuple(values[3:7]), dimensions=tuple(values[7:10]), location=tuple(values[10:13]),
        rotation_y=values[13], score=values[14] if len(values) == 15 else None,
    )


def read_label_file(path: str | Path) -> list[KittiObject]:
    """Every row of a label (or result) file; an empty file has none."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise KittiFormatError(f"{path}: cannot read label file ({type(e).__name__})") from None
    return [
        parse_label_line(line, f"{path}:{n}") for n, line in enumerate(text.splitlines(), start=1) if line.strip()
    ]


def write_label_file(path: str | Path, objects: list[KittiObject]) -> Path:
    """Write rows (an empty file for no objects), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(obj.to_line() + "\n" for obj in objects))
    return path


def read_calib_file(path: str | Path) -> dict[str, np.ndarray]:
    """``name -> matrix`` of a calib file (``P2`` (3, 4) float64 is required)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise KittiFormatError(f"{path}: cannot read calib file ({type(e).__name__})") from None
    matrices: dict[str, np.ndarray] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, _, rest = line.partition(":")
        name = name.strip()
        try:
            values = np.array([float(v) for v in rest.split()], np.float64)
        except ValueError:
            raise KittiFormatError(f"{path}:{n}: {name} has a value that is not a number") from None
        shape = CALIB_SHAPES.get(name)
        if shape is not None:
            if values.size != shape[0] * shape[1]:
                raise KittiFormatError(f"{path}:{n}: {name} has {values.size} values; expected {shape[0] * shape[1]}")
            values = values.reshape(shape)
        matrices[name] = values
    if "P2" not in matrices:
        raise KittiFormatError(f"{path}: no P2 matrix (the left colour camera's projection)")
    if not np.isfinite(matrices["P2"]).all() or matrices["P2"][0, 0] <= 0:
        raise KittiFormatError(f"{path}: P2 has a non-finite or non-positive focal length")
    return matrices


def write_calib_file(path: str | Path, p2: np.ndarray) -> Path:
    """A calib file with P0..P3 (P2 given; the others copies of it), identity R0_rect and zero Tr rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    p2 = np.asarray(p2, np.float64).reshape(3, 4)
    rows = {
        "P0": p2, "P1": p2, "P2": p2, "P3": p2, "R0_rect": np.eye(3),
        "Tr_velo_to_cam": np.zeros((3, 4)), "Tr_imu_to_velo": np.zeros((3, 4)),
    }
    path.write_text("".join(f"{name}: {' '.join(f'{v:.12e}' for v in m.reshape(-1))}\n" for name, m in rows.items()))
    return path
