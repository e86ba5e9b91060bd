"""The one sample type every dataset reader produces, and the problems readers report.

Readers never raise on bad data inside a dataset: they keep what is valid and append a
:class:`DatasetProblem` per thing they skipped, clipped or dropped, so that
``centernet check`` can report it and training can go on with the valid part.
"""

from __future__ import annotations

import math
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

# Every problem kind a reader or the image check reports: kind -> what happened.
PROBLEM_KINDS: dict[str, str] = {
    "missing_image": "image listed but no file; image dropped",
    "duplicate_image": "image listed twice; second entry dropped",
    "missing_annotation": "image listed but no annotation file; image dropped",
    "missing_calib": "calib file missing or without a usable P2; image dropped",
    "bad_xml": "annotation xml does not parse or declares entities; file skipped",
    "malformed_label": "label line or entry malformed (field count, not a number, NaN/inf); skipped",
    "unknown_class": "class not in the class list; box skipped",
    "orphan_annotation": "annotation for an image id that is not listed; skipped",
    "box_clipped": "box outside the image; clipped to it",
    "zero_area": "box has zero or negative area (after clipping); dropped",
    "unreadable_image": "image file cannot be decoded (empty, not an image, corrupt); image dropped",
    "truncated_image": "image file is cut short (no JPEG EOI after the image data / no PNG IEND); image dropped",
    "image_too_large": "image has more pixels than the limit (CENTERNET_MAX_IMAGE_PIXELS, default 1e8); image dropped",
    "size_mismatch": "decoded image size (EXIF orientation applied) differs from the declared width/height; "
                     "image dropped",
}

# Kinds after which the reader drops the whole image (used to count listed images).
IMAGE_DROP_KINDS = frozenset({"missing_image", "duplicate_image", "missing_annotation", "bad_xml", "missing_calib"})

# Boxes that overshoot the image by less than this (pixels) are clipped without a
# problem: normalised YOLO coordinates written with 6 decimals overshoot by ~3e-4 px.
CLIP_TOLERANCE_PX = 0.01


def _empty_boxes() -> np.ndarray:
    return np.zeros((0, 4), np.float32)


@dataclass
class DatasetProblem:
    """One thing wrong in a dataset: where (file, 1-based line if any), what kind, and a one-line message."""

    file: str
    line: int | None
    kind: str  # a key of PROBLEM_KINDS
    message: str

    def location(self) -> str:
        """``file:line`` or ``file``."""
        return f"{self.file}:{self.line}" if self.line is not None else self.file


@dataclass
class DetectionSample:
    """One image and its objects, boxes in original image pixels."""

    image_path: Path
    image_id: int
    width: int
    height: int
    boxes: np.ndarray = field(default_factory=_empty_boxes)          # (N, 4) float32 xyxy pixels
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))  # (N,) 0..C-1
    ignore_boxes: np.ndarray = field(default_factory=_empty_boxes)   # (G, 4) crowd / difficult regions
    # (G,) the class each ignore region is ignored for (a crowd's category, a difficult object's class, KITTI's
    # Van for Car), -1 for every class (KITTI's DontCare); None: every region for every class.
    ignore_labels: np.ndarray | None = None
    # COCO data: (N,) each object's area as the json gives it (its mask's; NaN where absent): COCO's
    # evaluation uses it for the small / medium / large ranges and as the OKS scale. None: the box area.
    areas: np.ndarray | None = None
    # Pose data only: (N, K, 3) per object, x y in image pixels and v (0 unlabelled, 1 occluded, 2 visible).
    keypoints: np.ndarray | None = None
    # 3D data only (KITTI): (N, 8) per object: h, w, l (metres), x, y, z (camera frame, metres, the bottom
    # centre as KITTI writes it), rotation_y, alpha (radians); ``calib`` (3, 4) the camera's P2 in original pixels;
    # ``labels3d`` every label row of the image as read (DontCare, truncation, occlusion: what evaluation needs).
    objects3d: np.ndarray | None = None
    calib: np.ndarray | None = None
    labels3d: list | None = field(default=None, repr=False)


@dataclass
class KeypointSpec:
    """What a pose dataset says about its joints; K is whatever the data says."""

    num_joints: int                                   # K
    flip_idx: list[int]                               # permutation of 0..K-1: joint j's mirror image
    names: list[str] = field(default_factory=list)    # K joint names ("" when the data has none)
    skeleton: list[tuple[int, int]] = field(default_factory=list)  # 0-based joint pairs to draw
    sigmas: list[float] | None = None                 # K OKS sigmas; None: COCO's when K = 17


def annotations_of(keypoint_spec: "KeypointSpec | None") -> tuple[str, ...]:
    """What a 2D reader's objects carry: boxes, and keypoints where the data names joints."""
    return ("boxes",) if keypoint_spec is None else ("boxes", "keypoints")


def needs(keypoints: bool | None) -> tuple[str, ...]:
    """The ``needs`` a reader's ``keypoints`` flag stands for (``load_split``'s spelling of it)."""
    return ("keypoints",) if keypoints else ()


@dataclass
class DatasetSplit:
    """All samples of one split plus the class list.

    ``category_ids[i]`` is the id written to COCO results for contiguous label ``i``.
    """

    samples: list[DetectionSample]
    class_names: list[str]
    category_ids: list[int]
    source: str = ""  # where it was read from, for messages
    problems: list[DatasetProblem] = field(default_factory=list)  # what the reader skipped / clipped / dropped
    dropped_boxes: int = 0  # object boxes present in the files but not kept (unknown class, zero area)
    keypoint_spec: KeypointSpec | None = None  # pose data: the joints
    # What each object carries: "boxes" always, "keypoints" (pose data), "objects3d" and "calib" (KITTI); a task
    # names the ones it needs (Task.needs) and the reader is asked for those.
    annotations: tuple[str, ...] = ("boxes",)
    notes: list[str] = field(default_factory=list)  # what the reader decided that a user should hear (one line each)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_coco(self) -> dict:
        """The split as a COCO ground-truth dict (for pycocotools), ignore regions as crowd boxes."""
        images, annotations = [], []
        for s in self.samples:
            images.append({"id": s.image_id, "file_name": s.image_path.name, "width": s.width, "height": s.height})
            # Objects, then ignore regions as crowd boxes of their class (pycocotools matches a crowd box only
            # to detections of its own category); a region for every class becomes one crowd box per class.
            regions = [(box, label, 0, j) for j, (box, label) in enumerate(zip(s.boxes.tolist(), s.labels.tolist()))]
            regions += [(box, c, 1, -1) for box, c in ignore_regions_by_class(s, self.num_classes)]
            for (x1, y1, x2, y2), label, crowd, j in regions:
                w, h = x2 - x1, y2 - y1
                area = w * h
                if not crowd and s.areas is not None and j < len(s.areas) and s.areas[j] > 0:
                    area = float(s.areas[j])  # NaN fails the test: the box area then
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": s.image_id,
                        "category_id": self.category_ids[label],
                        "bbox": [x1, y1, w, h],
                        "area": area,
                        "iscrowd": crowd,
                    }
                )
                if not crowd and s.keypoints is not None:  # pose: the joints, for OKS
                    joints = np.asarray(s.keypoints[j], np.float64).reshape(-1, 3)
                    annotations[-1]["keypoints"] = [round(float(v), 2) for v in joints.reshape(-1)]
                    annotations[-1]["num_keypoints"] = int((joints[:, 2] > 0).sum())
        categories = [{"id": i, "name": n} for i, n in zip(self.category_ids, self.class_names)]
        if self.keypoint_spec is not None:
            spec = self.keypoint_spec
            for category in categories:
                category["keypoints"] = list(spec.names) or [f"joint{j}" for j in range(spec.num_joints)]
                category["skeleton"] = [[a + 1, b + 1] for a, b in spec.skeleton]  # COCO's are 1-based
        return {"info": {}, "images": images, "annotations": annotations, "categories": categories}


def ignore_labels_of(sample: DetectionSample) -> np.ndarray:
    """(G,) the class each of ``sample``'s ignore regions is for, -1 for every class."""
    g = len(sample.ignore_boxes)
    if sample.ignore_labels is None:
        return np.full(g, -1, np.int64)
    return np.asarray(sample.ignore_labels, np.int64).reshape(g)


def ignore_regions_by_class(sample: DetectionSample, num_classes: int) -> list[tuple[list[float], int]]:
    """``(xyxy box, class)`` per ignore region and class it is for: a region of every class once per class."""
    return [(box, c) for box, label in zip(sample.ignore_boxes.tolist(), ignore_labels_of(sample).tolist())
            for c in ([label] if label >= 0 else range(num_classes))]


def problem_summary(problems: Sequence[DatasetProblem]) -> str:
    """One line: ``"3 dataset problems (2 zero_area, 1 box_clipped)"``, or ``""`` when there are none."""
    if not problems:
        return ""
    counts = Counter(p.kind for p in problems)
    kinds = ", ".join(f"{n} {kind}" for kind, n in counts.most_common())
    return f"{len(problems)} dataset problem{'s' if len(problems) != 1 else ''} ({kinds})"


class SampleBuilder:
    """Collects one image's boxes, clipping them to the image and logging what is wrong.

    ``file`` is where the boxes come from (a label file, an xml, a json): every problem
    names it, with ``line`` when the format has lines.
    """

    def __init__(self, file: str | Path, width: int, height: int, problems: list[DatasetProblem]):
        self.file, self.width, self.height = str(file), width, height
        self.problems = problems
        self.boxes: list[list[float]] = []   # (N, 4) xyxy pixels
        self.labels: list[int] = []          # (N,) contiguous labels
        self.ignore: list[list[float]] = []  # (G, 4) xyxy pixels
        self.ignore_labels: list[int] = []   # (G,) the class each region is for, -1 every class
        self.dropped = 0                     # object boxes dropped (unknown class, zero area)

    def problem(self, kind: str, message: str, line: int | None = None) -> None:
        self.problems.append(DatasetProblem(self.file, line, kind, message))

    def add(self, box: Sequence[float], label: int | None, line: int | None = None, what: str = "box",
            ignore_for: int = -1) -> bool:
        """Add an xyxy pixel box with contiguous ``label``, or an ignore region when ``label`` is None.

        An ignore region is ignored for class ``ignore_for`` only (-1: for every class).

        A box outside the image is clipped (problem ``box_clipped``); one with zero or
        negative area after clipping is dropped (``zero_area``). ``what`` names the box in
        messages (``"object 3 (RBC)"``). Returns whether it was kept.
        """
        x1, y1, x2, y2 = (float(v) for v in box)
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
            self.problem("malformed_label", f"{what}: NaN or infinite coordinate", line)
            return False
        cx1, cy1 = min(max(x1, 0.0), self.width), min(max(y1, 0.0), self.height)
        cx2, cy2 = min(max(x2, 0.0), self.width), min(max(y2, 0.0), self.height)
        shown = f"{what} [{x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f}]"
        if cx2 <= cx1 or cy2 <= cy1:
            outside = (x1, y1, x2, y2) != (cx1, cy1, cx2, cy2)
            reason = "lies outside" if outside and x2 > x1 and y2 > y1 else "has zero or negative area in"
            message = f"{shown} {reason} the {self.width}x{self.height} image; dropped"
            self.drop("zero_area", message, line, is_object=label is not None)
            return False
        overshoot = max(abs(x1 - cx1), abs(y1 - cy1), abs(x2 - cx2), abs(y2 - cy2))
        if overshoot > CLIP_TOLERANCE_PX:
            self.problem("box_clipped", f"{shown} extends outside the {self.width}x{self.height} image; clipped", line)
        if label is None:
            self.ignore.append([cx1, cy1, cx2, cy2])
            self.ignore_labels.append(int(ignore_for))
        else:
            self.boxes.append([cx1, cy1, cx2, cy2])
            self.labels.append(label)
        return True

    def drop(self, kind: str, message: str, line: int | None = None, is_object: bool = True) -> None:
        """Log a dropped box; object boxes (not ignore regions) count in ``dropped``."""
        self.problem(kind, message, line)
        if is_object:
            self.dropped += 1

    def build(self, image_path: Path, image_id: int) -> DetectionSample:
        return DetectionSample(
            image_path=image_path,
            image_id=image_id,
            width=self.width,
            height=self.height,
            boxes=np.asarray(self.boxes, np.float32).reshape(-1, 4),
            labels=np.asarray(self.labels, np.int64),
            ignore_boxes=np.asarray(self.ignore, np.float32).reshape(-1, 4),
            ignore_labels=np.asarray(self.ignore_labels, np.int64),
        )


def path_kind(path: Path) -> str:
    """``"file"``, ``"folder"``, ``"other"`` (a device, a pipe), or ``""`` when there is nothing or the system
    refuses the name (too long, a NUL byte): never an exception, unlike ``Path.is_file``."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return ""
    return "file" if stat.S_ISREG(mode) else "folder" if stat.S_ISDIR(mode) else "other"


def file_exists(path: Path) -> bool:
    """Whether ``path`` is a regular file (see :func:`path_kind`)."""
    return path_kind(path) == "file"


def one_line(text: str, limit: int = 200) -> str:
    """``text`` with its line breaks turned into spaces, cut to ``limit`` characters (for messages)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) as displayed (EXIF orientation applied), from the header; None when unreadable.

    See :func:`centernet.data.images.read_image_header`, which also says why.
    """
    from .images import ImageFileError, read_image_header

    try:
        header = read_image_header(path)
    except ImageFileError:
        return None
    return header.width, header.height


def instances_per_class(labels: Sequence[np.ndarray], num_classes: int) -> np.ndarray:
    """(C,) int64 how many objects of each class the images' (N,) labels hold."""
    every = [np.asarray(l, np.int64).reshape(-1) for l in labels]
    return np.bincount(np.concatenate(every) if every else np.zeros(0, np.int64), minlength=num_classes)
