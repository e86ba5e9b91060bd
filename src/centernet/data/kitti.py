"""KITTI object files: ``label_2/*.txt`` rows and ``calib/*.txt`` matrices, read and written.

A label row (15 fields, a 16th ``score`` in result files)::

    type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y [score]

``truncated`` in [0, 1], ``occluded`` 0 fully visible .. 3 unknown, ``alpha`` the observation angle,
the 2D box in image pixels, dimensions h w l in metres, location x y z in camera coordinates
(metres; the bottom centre of the box, y pointing down), ``rotation_y`` about the camera's y axis.

Predictions are written in the same format, so KITTI's own tools read them.

:func:`read_kitti` reads a whole KITTI object folder (``training/{image_2,label_2,calib}``, splits from
``ImageSets/<split>.txt``) as a 3D :class:`~centernet.data.samples.DatasetSplit`; like every reader it never
raises on bad data inside the folder but reports it as a problem naming the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import CenterNetError
from .images import ImageFileError, read_image_header
from .samples import DatasetProblem, DatasetSplit, DetectionSample, SampleBuilder, file_exists, one_line

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


# --------------------------------------------------------------------------- the dataset reader

# Split names that mean "every frame" in a folder without ``ImageSets/``.
ALL_FRAMES_SPLITS = ("train", "val", "trainval", "training")
KITTI_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass
class KittiClassMap:
    """What each KITTI object type becomes.

    ``classes`` are trained (labels 0..C-1 in this order, category ids 1..C; a class wins over the lists
    below, so ``classes=("Car", "Van")`` trains vans). Types in ``ignore``
    become ignore regions, as in the original CenterNet: no positive, and no negative loss in the heatmap
    of the class the value names (None, or a name that is not a class: every class); evaluation treats
    them the same way. Types in ``skip`` are left out without a problem;
    any other type is reported as ``unknown_class`` and skipped.
    """

    classes: tuple[str, ...] = ("Car", "Pedestrian", "Cyclist")
    ignore: dict[str, str | None] = field(default_factory=lambda: {
        "Van": "Car", "Truck": "Car", "Person_sitting": "Pedestrian", "DontCare": None,
    })
    skip: tuple[str, ...] = ("Tram", "Misc")


def kitti_folder(root: str | Path) -> Path | None:
    """The folder holding ``image_2/``, ``label_2/`` and ``calib/``: ``root/training`` or ``root``; else None."""
    root = Path(root)
    for folder in (root / "training", root):
        if all((folder / name).is_dir() for name in ("image_2", "label_2", "calib")):
            return folder
    return None


def kitti_splits(root: str | Path) -> list[str]:
    """The names under ``root/ImageSets/*.txt``; ``["train", "val"]`` (both every frame) without ImageSets."""
    names = sorted(p.stem for p in (Path(root) / "ImageSets").glob("*.txt"))
    return names or ["train", "val"]


def read_kitti(root: str | Path, split: str = "train", class_map: KittiClassMap | None = None) -> DatasetSplit:
    """Read one split of a KITTI object folder as a 3D :class:`DatasetSplit` (``annotations`` boxes, objects3d and calib).

    Layout: ``root/training/{image_2,label_2,calib}`` (KITTI's own) or ``root/{image_2,label_2,calib}``;
    frames are the stems of ``label_2/*.txt``. ``root/ImageSets/<split>.txt`` (one frame id per line,
    KITTI's and CenterNet's convention) lists a split's frames; a folder without ``ImageSets`` has no
    split of its own, so ``train``, ``val``, ``trainval`` and ``training`` all mean every frame (train
    and val are then the same images).

    Per frame: the image ``image_2/<id>.png`` (or ``.jpg``), its size from the header; ``calib/<id>.txt``
    whose P2 becomes ``calib``; label rows through ``class_map``. Objects keep their 3D row in
    ``objects3d`` (aligned with ``boxes``), and ``labels3d`` holds every parsed row (DontCare included)
    for evaluation. A frame without image or usable calib is dropped (``missing_image``,
    ``missing_calib``); a malformed row is skipped (``malformed_label`` at ``file:line``). ``image_id``
    is the frame id as a number (1-based positions when the ids are not all distinct numbers).
    """
    class_map = class_map or KittiClassMap()
    root = Path(root)
    folder = kitti_folder(root)
    if folder is None:
        raise CenterNetError(f"KITTI folder {str(root)!r} has no image_2/, label_2/ and calib/ "
                             "(under training/ or itself)")
    problems: list[DatasetProblem] = []
    frames = _split_frames(root, folder, split, problems)
    numeric = all(f.isdigit() for _, f, _ in frames) and len({int(f) for _, f, _ in frames}) == len(frames)
    label_of = {name: i for i, name in enumerate(class_map.classes)}
    samples: list[DetectionSample] = []
    dropped = 0
    for where, frame, line in frames:
        image_id = int(frame) if numeric else len(samples) + 1
        found = _read_frame(folder, frame, where, line, image_id, label_of, class_map, problems)
        if found is not None:
            sample, frame_dropped = found
            samples.append(sample)
            dropped += frame_dropped
    source = str(root / "ImageSets" / f"{split}.txt") if (root / "ImageSets").is_dir() else str(root)
    return DatasetSplit(samples, list(class_map.classes), list(range(1, len(class_map.classes) + 1)),
                        source=source, problems=problems, dropped_boxes=dropped,
                        annotations=("boxes", "objects3d", "calib"))


def _split_frames(root: Path, folder: Path, split: str,
                  problems: list[DatasetProblem]) -> list[tuple[str, str, int | None]]:
    """(where it is listed, frame id, 1-based line or None) per frame of ``split``; duplicates reported."""
    label_dir = folder / "label_2"
    if not (root / "ImageSets").is_dir():
        if split not in ALL_FRAMES_SPLITS:
            raise CenterNetError(f"KITTI folder {str(root)!r} has no ImageSets/ folder, so its splits are "
                                 f"{', '.join(ALL_FRAMES_SPLITS)} (every frame); got {split!r}")
        return [(str(p), p.stem, None) for p in sorted(label_dir.glob("*.txt"))]
    split_file = root / "ImageSets" / f"{split}.txt"
    if not file_exists(split_file):
        raise CenterNetError(f"KITTI folder {str(root)!r} has no split {split!r}: expected {str(split_file)!r} "
                             f"(splits found: {', '.join(kitti_splits(root))})")
    try:
        lines = split_file.read_bytes().decode("utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise CenterNetError(f"{split_file}: the split list is not readable UTF-8 text ({one_line(str(e))})") from None
    frames, seen = [], set()
    for number, text in enumerate(lines, start=1):
        tokens = text.split()
        if not tokens:
            continue
        if tokens[0] in seen:
            problems.append(DatasetProblem(str(split_file), number, "duplicate_image",
                                           f"frame {tokens[0]} listed again; dropped"))
            continue
        seen.add(tokens[0])
        frames.append((str(split_file), tokens[0], number))
    return frames


def _read_frame(
    folder: Path,
    frame: str,
    where: str,
    line: int | None,
    image_id: int,
    label_of: dict[str, int],
    class_map: KittiClassMap,
    problems: list[DatasetProblem],
) -> tuple[DetectionSample, int] | None:
    """One frame's sample and its dropped-object count, or None when the frame is dropped (reported)."""
    label_path = folder / "label_2" / f"{frame}.txt"
    if not file_exists(label_path):
        problems.append(DatasetProblem(where, line, "missing_annotation", f"frame {frame}: no {label_path}; dropped"))
        return None
    image_path = next((p for p in (folder / "image_2" / f"{frame}{s}" for s in KITTI_IMAGE_SUFFIXES)
                       if file_exists(p)), None)
    if image_path is None:
        problems.append(DatasetProblem(where, line, "missing_image",
                                       f"frame {frame}: no image_2/{frame}.png (or .jpg); dropped"))
        return None
    calib_path = folder / "calib" / f"{frame}.txt"
    if not file_exists(calib_path):
        message = f"frame {frame}: no calib file; dropped"
        problems.append(DatasetProblem(str(calib_path), None, "missing_calib", message))
        return None
    try:
        p2 = read_calib_file(calib_path)["P2"]  # (3, 4) float64
    except KittiFormatError as e:
        calib_line, reason = _split_location(str(e), calib_path)
        problems.append(DatasetProblem(str(calib_path), calib_line, "missing_calib", f"{reason}; frame dropped"))
        return None
    try:
        header = read_image_header(image_path)
    except ImageFileError as e:
        problems.append(DatasetProblem(str(image_path), None, e.kind, f"{e.reason}; dropped"))
        return None
    try:
        text = label_path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        problems.append(DatasetProblem(str(label_path), None, "malformed_label",
                                       f"cannot read the label file ({type(e).__name__}); frame dropped"))
        return None
    builder = SampleBuilder(label_path, header.width, header.height, problems)
    rows: list[KittiObject] = []
    objects3d: list[list[float]] = []  # (N, 8) h w l x y z rotation_y alpha, aligned with builder.boxes
    for number, row_text in enumerate(text.splitlines(), start=1):
        if not row_text.strip():
            continue
        try:
            obj = parse_label_line(row_text, f"{label_path}:{number}")
        except KittiFormatError as e:
            builder.problem("malformed_label", f"{_split_location(str(e), label_path)[1]}; skipped", number)
            continue
        rows.append(obj)
        row3d = _add_row(builder, obj, number, label_of, class_map)
        if row3d is not None:
            objects3d.append(row3d)
    sample = builder.build(image_path, image_id)
    sample.objects3d = np.asarray(objects3d, np.float32).reshape(-1, 8)
    sample.calib = p2
    sample.labels3d = rows
    return sample, builder.dropped


def _add_row(builder: SampleBuilder, obj: KittiObject, line: int, label_of: dict[str, int],
             class_map: KittiClassMap) -> list[float] | None:
    """Add one row's box (object or ignore region); the object's 3D row (8,) when its box is kept."""
    what = f"object {one_line(obj.type, 40)}"
    if obj.type not in label_of:  # a class wins over the ignore and skip lists
        if obj.type in class_map.ignore:  # ignored for the class it names (every class for None or a non-class)
            builder.add(obj.box, None, line, what=what, ignore_for=label_of.get(class_map.ignore[obj.type], -1))
        elif obj.type not in class_map.skip:
            builder.drop("unknown_class", f"{what}: type {one_line(obj.type, 40)!r} is not a class, an ignored "
                                          "or a skipped type; skipped", line)
        return None
    if min(obj.dimensions) <= 0:
        dims = " ".join(f"{v:g}" for v in obj.dimensions)
        builder.drop("malformed_label", f"{what}: dimensions h w l {dims} are not all positive; skipped", line)
        return None
    if not builder.add(obj.box, label_of[obj.type], line, what=what):
        return None
    return [*obj.dimensions, *obj.location, obj.rotation_y, obj.alpha]


def _split_location(message: str, path: Path) -> tuple[int | None, str]:
    """``"<path>:12: what"`` -> ``(12, "what")``; ``"<path>: what"`` -> ``(None, "what")`` (one line)."""
    rest = message.removeprefix(str(path))
    number, colon, tail = rest.removeprefix(":").partition(":")
    if rest.startswith(":") and colon and number.strip().isdigit():
        return int(number), one_line(tail.strip())
    return None, one_line(rest.removeprefix(":").strip())
