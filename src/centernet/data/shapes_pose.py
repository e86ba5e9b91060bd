"""The built-in synthetic pose dataset "shapes_pose": articulated stick figures with joints.

A small, deterministic multi-person pose problem that needs no download. Each image has
1..3 (a setting) articulated figures: a torso polygon, a neck, a head disc and thick limbs
(capsules: upper arm, forearm, thigh, shin per side), with random proportions, lean, limb
angles within plausible limits, size and position, drawn on the cluttered, noisy backgrounds
of :mod:`centernet.data.shapes`. Written as PNG files plus COCO person_keypoints json, so it is
read by the ordinary COCO reader in pose mode::

    <root>/shapes_pose-<hash>/images/{train,val}/000000.png ...
    <root>/shapes_pose-<hash>/annotations/person_keypoints_{train,val}.json
    <root>/shapes_pose-<hash>/dataset.yaml   (the settings, for humans)
    <root>/shapes_pose-<hash>/.complete      (written last)

Built once per settings (the folder name carries their hash), atomically, as ``shapes``.

Joints (see :func:`joint_names`): K = 17 is COCO's layout (nose, eyes, ears, shoulders,
elbows, wrists, hips, knees, ankles; COCO's sigmas and skeleton). Any other K in 2..24 picks
points of one body template, most telling first (head, pelvis, neck, chest for the centre
line; wrists, ankles, elbows, knees, shoulders, hips, then the mid-points of forearms, shins,
upper arms, thighs as left/right pairs), listed from head to feet; K = 13 is head, shoulders,
elbows, wrists, hips, knees, ankles (the default), K = 14 adds the pelvis. The skeleton links
each joint to its nearest chosen joint along the body tree. The category also carries per-joint
OKS ``sigmas`` (COCO's values for the joints COCO has, similar ones for the others), which the
COCO reader picks up.

Left and right: a figure faces the viewer (a face on the head, a light band down the shirt) or
turns its back (hair over the head, no band); the person's left side is on the image's right
when it faces the viewer, as in real photos, so a mirrored image is an ordinary figure with its
labels swapped by ``flip_idx``.

Visibility (per figure, after the whole image is drawn): a joint whose pixel shows a part the
joint belongs to is visible (v = 2); one covered by another part drawn later (the near-side
limbs, the torso over the far-side limbs, a figure drawn later) is occluded (v = 1); the face
points of a figure that turns its back are occluded; a joint outside the image is unlabelled
(``[0, 0, 0]``). The far-side limbs are drawn first, then torso, neck and head, then the near
side. Each person's box is the tight box of its drawn pixels (amodal, clipped to the image);
its ``area`` is its in-image pixel count (COCO's convention: the person's mask area).
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from ..errors import CenterNetError
from ..ops.boxes import box_iou
from ..progress import progress_bar
from .coco import COCO_KEYPOINT_SIGMAS, COCO_PERSON_JOINTS
from .shapes import (
    _MARKER, _PNG_PARAMS, _add_noise, _background, _draw_clutter, _pick_colour, build_once, hashed_dir, settings_of,
)

__all__ = ["ShapesPoseConfig", "build_shapes_pose", "dataset_dir", "joint_names", "joint_sigmas", "render_image",
           "skeleton"]

# Bump when the generator changes what it draws (part of the folder hash).
_FORMAT_VERSION = 1
_SPLIT_CODES = {"train": 0, "val": 1}
_THREADS = 2
_SUBPIXEL_BITS = 4
_PLACE_ATTEMPTS = 30
_MAX_IOU = 0.35  # most box overlap of a new figure with an earlier one
_MIN_JOINTS_INSIDE = 0.75  # of a figure's template points that must lie in the image

# The body template: canonical points from head to feet with their OKS sigmas. Centre points
# have one joint, the others a left and a right one.
_TEMPLATE: tuple[tuple[str, float], ...] = (
    ("head", 0.060), ("neck", 0.070), ("shoulder", 0.079), ("upper_arm", 0.080), ("elbow", 0.072),
    ("forearm", 0.070), ("wrist", 0.062), ("chest", 0.100), ("pelvis", 0.090), ("hip", 0.107), ("thigh", 0.100),
    ("knee", 0.087), ("shin", 0.090), ("ankle", 0.089),
)
_CENTRE = ("head", "neck", "chest", "pelvis")
_CENTRE_PRIORITY = ("head", "pelvis", "neck", "chest")
_PAIR_PRIORITY = ("wrist", "ankle", "elbow", "knee", "shoulder", "hip", "forearm", "shin", "upper_arm", "thigh")
# Body tree (point -> parent, side-less), for the skeleton.
_PARENT = {"head": "neck", "chest": "neck", "pelvis": "chest", "shoulder": "neck", "upper_arm": "shoulder",
           "elbow": "upper_arm", "forearm": "elbow", "wrist": "forearm", "hip": "pelvis", "thigh": "hip",
           "knee": "thigh", "shin": "knee", "ankle": "shin", "nose": "head", "eye": "nose", "ear": "eye"}
MIN_JOINTS, MAX_JOINTS = 2, 2 * len(_PAIR_PRIORITY) + len(_CENTRE)  # 2..24

# Figure proportions as fractions of its height H (head top to feet); each is jittered by +-10 %.
_HEAD_R, _NECK, _TORSO, _SHOULDER, _HIP = 0.075, 0.13, 0.30, 0.11, 0.07
_UPPER_ARM, _FOREARM, _THIGH, _SHIN = 0.16, 0.15, 0.22, 0.21
_ARM_W, _LEG_W, _NECK_W = 0.055, 0.07, 0.05


@dataclass
class ShapesPoseConfig:
    """Settings of the synthetic pose set; sizes in pixels or fractions of ``image_size``."""

    image_size: int = 256  # square images, pixels per side
    num_train: int = 800  # images in the train split
    num_val: int = 100  # images in the val split
    num_joints: int = 13  # K: 17 (COCO's layout) or 2..24 (see joint_names)
    min_persons: int = 1  # figures per image: uniform in [min_persons, max_persons] (fewer when they do not fit)
    max_persons: int = 3
    min_height_frac: float = 0.3  # figure height (head top to feet) as a fraction of image_size
    max_height_frac: float = 0.8
    back_fraction: float = 0.5  # share of figures that turn their back (left and right then told by the face only)
    seed: int = 0

    def validate(self) -> None:
        """Raise :class:`CenterNetError` naming the first out-of-range setting."""
        checks: list[tuple[bool, str]] = [
            (self.image_size >= 32, f"image_size must be >= 32, got {self.image_size}"),
            (self.num_train >= 0 and self.num_val >= 0, f"num_train and num_val must be >= 0, got "
                                                        f"{self.num_train}, {self.num_val}"),
            (self.num_joints == 17 or MIN_JOINTS <= self.num_joints <= MAX_JOINTS,
             f"num_joints must be in {MIN_JOINTS}..{MAX_JOINTS}, got {self.num_joints}"),
            (1 <= self.min_persons <= self.max_persons <= 10,
             f"need 1 <= min_persons <= max_persons <= 10, got {self.min_persons}, {self.max_persons}"),
            (0.05 <= self.min_height_frac <= self.max_height_frac <= 1.0,
             f"need 0.05 <= min_height_frac <= max_height_frac <= 1, got {self.min_height_frac}, "
             f"{self.max_height_frac}"),
            (0.0 <= self.back_fraction <= 1.0, f"back_fraction must be in [0, 1], got {self.back_fraction}"),
            (self.min_height_frac * self.image_size >= 16,
             f"min_height_frac * image_size must be >= 16 pixels, got {self.min_height_frac * self.image_size:g}"),
            (self.seed >= 0, f"seed must be >= 0, got {self.seed}"),
        ]
        for ok, message in checks:
            if not ok:
                raise CenterNetError(f"shapes_pose dataset: {message}")


# --------------------------------------------------------------------------- joints


def joint_names(num_joints: int) -> list[str]:
    """The K joint names, head to feet (see the module docstring)."""
    if num_joints == 17:
        return list(COCO_PERSON_JOINTS)
    if not MIN_JOINTS <= num_joints <= MAX_JOINTS:
        raise CenterNetError(f"shapes_pose dataset: num_joints must be 17 or in {MIN_JOINTS}..{MAX_JOINTS}, "
                             f"got {num_joints}")
    centre = 1 if num_joints % 2 else 2
    pairs = (num_joints - centre) // 2
    if pairs > len(_PAIR_PRIORITY):
        pairs = len(_PAIR_PRIORITY)
        centre = num_joints - 2 * pairs
    chosen = set(_CENTRE_PRIORITY[:centre]) | set(_PAIR_PRIORITY[:pairs])
    names: list[str] = []
    for point, _ in _TEMPLATE:
        if point in chosen:
            names += [point] if point in _CENTRE else [f"left_{point}", f"right_{point}"]
    return names


def _base(name: str) -> tuple[str, str]:
    """(point, side) of a joint name: ``left_elbow`` -> (elbow, left), ``nose`` -> (nose, "")."""
    for side in ("left", "right"):
        if name.startswith(side + "_"):
            return name[len(side) + 1:], side
    return name, ""


def joint_sigmas(names: list[str]) -> list[float]:
    """Per-joint OKS sigmas: COCO's for COCO's 17 joints, the template's otherwise."""
    if tuple(names) == COCO_PERSON_JOINTS:
        return list(COCO_KEYPOINT_SIGMAS)
    sigma = dict(_TEMPLATE)
    return [sigma[_base(n)[0]] for n in names]


def skeleton(names: list[str]) -> list[tuple[int, int]]:
    """0-based joint pairs: COCO's for COCO's joints, else each joint to its nearest chosen joint along the
    body tree (ties: same side first, then the earlier joint)."""
    if tuple(names) == COCO_PERSON_JOINTS:
        coco = [(16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8), (7, 9),
                (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7)]
        return [(a - 1, b - 1) for a, b in coco]
    pairs = []
    for j in range(1, len(names)):
        distances = [(_tree_distance(names[j], names[i]), _base(names[i])[1] != _base(names[j])[1], i)
                     for i in range(j)]
        pairs.append((min(distances)[2], j))
    return pairs


def _ancestors(name: str) -> list[str]:
    """The body-tree path from a joint up to the root (``neck``), sides kept for limb points."""
    point, side = _base(name)
    path = [name]
    while point in _PARENT:
        point = _PARENT[point]
        path.append(f"{side}_{point}" if side and point not in _CENTRE else point)
    return path


def _tree_distance(a: str, b: str) -> int:
    up_a, up_b = _ancestors(a), _ancestors(b)
    common = next(p for p in up_a if p in up_b)
    return up_a.index(common) + up_b.index(common)


# --------------------------------------------------------------------------- on disk


def dataset_dir(root: str | Path, cfg: ShapesPoseConfig | None = None) -> Path:
    """The folder :func:`build_shapes_pose` uses for ``cfg`` under ``root`` (not created)."""
    return hashed_dir(root, "shapes_pose", _FORMAT_VERSION, cfg or ShapesPoseConfig())


def build_shapes_pose(root: str | Path, cfg: ShapesPoseConfig | None = None, progress: bool = True) -> Path:
    """Write the dataset under ``root`` (once) and return its folder; built in a hidden temporary folder and
    renamed into place when complete, so an interrupted build never looks finished."""
    cfg = cfg or ShapesPoseConfig()
    cfg.validate()
    return build_once(dataset_dir(root, cfg), lambda tmp: _write_dataset(tmp, cfg, progress))


def _write_dataset(folder: Path, cfg: ShapesPoseConfig, progress: bool) -> None:
    """Write both splits, the settings file and, last, the completion marker."""
    bar = progress_bar(total=cfg.num_train + cfg.num_val, desc="shapes_pose dataset", unit="img",
                       disable=not progress)
    with bar:
        for split, count in (("train", cfg.num_train), ("val", cfg.num_val)):
            _write_split(folder, cfg, split, count, bar)
    settings = {
        "name": "shapes_pose", "format_version": _FORMAT_VERSION, "settings": settings_of(cfg),
        "joints": joint_names(cfg.num_joints),
        "splits": {s: {"images": f"images/{s}", "annotations": f"annotations/person_keypoints_{s}.json",
                       "count": n} for s, n in (("train", cfg.num_train), ("val", cfg.num_val))},
    }
    (folder / "dataset.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    (folder / _MARKER).write_text("ok\n")


def _write_split(folder: Path, cfg: ShapesPoseConfig, split: str, count: int, bar: tqdm) -> None:
    """Render ``count`` images of ``split`` to PNG and write its person_keypoints json."""
    image_dir = folder / "images" / split
    image_dir.mkdir(parents=True)
    (folder / "annotations").mkdir(exist_ok=True)

    def render_to_file(index: int) -> list[dict]:
        image, persons = render_image(cfg, split, index)
        path = image_dir / f"{index:06d}.png"
        if not cv2.imwrite(str(path), np.ascontiguousarray(image[:, :, ::-1]), _PNG_PARAMS):
            raise OSError(f"could not write {path}")
        return persons

    images: list[dict] = []
    annotations: list[dict] = []
    pool = ThreadPoolExecutor(max_workers=_THREADS)  # per-image seeds, results in order: output unchanged
    try:
        for index, persons in enumerate(pool.map(render_to_file, range(count))):
            images.append({"id": index + 1, "file_name": f"{index:06d}.png", "width": cfg.image_size,
                           "height": cfg.image_size})
            for person in persons:
                annotations.append({"id": len(annotations) + 1, "image_id": index + 1, "category_id": 1,
                                    "iscrowd": 0, **person})
            bar.update(1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    names = joint_names(cfg.num_joints)
    category = {"id": 1, "name": "person", "supercategory": "person", "keypoints": names,
                "skeleton": [[a + 1, b + 1] for a, b in skeleton(names)], "sigmas": joint_sigmas(names)}
    coco = {"info": {"description": f"synthetic pose figures ({split})", "version": str(_FORMAT_VERSION)},
            "images": images, "annotations": annotations, "categories": [category]}
    (folder / "annotations" / f"person_keypoints_{split}.json").write_text(json.dumps(coco, separators=(",", ":")))


# --------------------------------------------------------------------------- one image


@dataclass
class _Part:
    """One drawn piece of a figure."""

    name: str  # 'torso', 'neck', 'head', 'left_upper_arm', ...
    kind: str  # 'capsule' (2 end points), 'polygon' (corners) or 'disc' (centre)
    points: np.ndarray  # (P, 2) xy pixels
    width: float  # capsule thickness or disc radius, pixels
    colour: np.ndarray  # (3,) RGB


@dataclass
class _Figure:
    """A posed figure: its template points, the parts each belongs to, and its parts in drawing order."""

    points: dict[str, np.ndarray]  # joint name -> (2,) xy
    owners: dict[str, tuple[str, ...]]  # joint name -> names of the parts it belongs to
    parts: list[_Part]
    hidden: frozenset[str]  # joints hidden whatever is drawn (the face of a figure seen from behind)
    facing: int  # +1 faces the viewer, -1 turns its back


def render_image(cfg: ShapesPoseConfig, split: str, index: int) -> tuple[np.ndarray, list[dict]]:
    """One image of a split exactly as :func:`build_shapes_pose` writes it.

    Returns the image (S, S, 3) uint8 RGB and one dict per person with COCO's ``bbox`` (xywh),
    ``area`` (pixels), ``keypoints`` ([x, y, v] * K) and ``num_keypoints``.
    """
    if split not in _SPLIT_CODES:
        raise CenterNetError(f"shapes_pose dataset: unknown split {split!r}, expected train or val")
    rng = np.random.default_rng([int(cfg.seed), _SPLIT_CODES[split], index])
    size = cfg.image_size
    image = _background(rng, size)
    _draw_clutter(rng, image)
    names = joint_names(cfg.num_joints)

    owner = np.zeros((size, size), np.int32)  # id of the part on top at each pixel, 0 = background
    part_names: dict[int, tuple[int, str]] = {}  # part id -> (figure, part name)
    figures: list[tuple[_Figure, np.ndarray]] = []  # (figure, its drawn pixels (S, S) bool)
    boxes: list[tuple[float, float, float, float]] = []
    for _ in range(int(rng.integers(cfg.min_persons, cfg.max_persons + 1))):
        figure = _place_figure(rng, cfg, boxes)
        if figure is None:
            continue
        mask = np.zeros((size, size), bool)
        _draw_figure(rng, image, owner, mask, figure, len(figures), part_names)
        if not mask.any():
            continue
        figures.append((figure, mask))
        boxes.append(_figure_box(figure))
    _add_noise(rng, image)

    persons = []
    for number, (figure, mask) in enumerate(figures):
        joints = _visibility(figure, names, owner, part_names, number)  # (K, 3)
        rows, cols = np.nonzero(mask)
        x0, y0 = float(cols.min()), float(rows.min())
        persons.append({
            "bbox": [x0, y0, float(cols.max() + 1) - x0, float(rows.max() + 1) - y0],
            "area": float(mask.sum()),
            "keypoints": [round(float(v), 2) for v in joints.reshape(-1)],
            "num_keypoints": int((joints[:, 2] > 0).sum()),
        })
    return image, persons


def _visibility(
    figure: _Figure, names: list[str], owner: np.ndarray, part_names: dict[int, tuple[int, str]], number: int
) -> np.ndarray:
    """(K, 3) joints: v 2 when the pixel shows one of the joint's own parts, 1 when covered, 0 (at 0, 0) outside."""
    size = owner.shape[0]
    out = np.zeros((len(names), 3), np.float32)
    for j, name in enumerate(names):
        x, y = figure.points[name]
        if not (0 <= x < size and 0 <= y < size):
            continue
        on_top = part_names.get(int(owner[int(y), int(x)]))
        own = on_top is not None and on_top[0] == number and on_top[1] in figure.owners[name]
        out[j] = (x, y, 2 if own and name not in figure.hidden else 1)
    return out


def _unit(angle: float) -> np.ndarray:
    return np.array([math.cos(angle), math.sin(angle)])


def _pose(rng: np.random.Generator, height: float, pelvis: np.ndarray, back_fraction: float = 0.5) -> _Figure:
    """A random posed figure of ``height`` pixels with its pelvis at ``pelvis`` (xy)."""
    def length(fraction: float) -> float:
        return fraction * height * rng.uniform(0.9, 1.1)

    lean = math.radians(rng.uniform(-25, 25))
    up = np.array([math.sin(lean), -math.cos(lean)])  # body up, image y points down
    right = np.array([math.cos(lean), math.sin(lean)])  # body right as seen
    facing = 1 if rng.random() < 1 - back_fraction else -1
    width = rng.uniform(0.55, 1.0)  # the body turned a little: shoulders and hips foreshortened
    # The person's left is on the image's right when it faces the viewer.
    side_of = {"left": facing, "right": -facing}
    p: dict[str, np.ndarray] = {"pelvis": pelvis}
    p["neck"] = pelvis + length(_TORSO) * up
    p["chest"] = (p["neck"] + p["pelvis"]) / 2
    tilt = lean + math.radians(rng.uniform(-20, 20))
    head_up, head_right = np.array([math.sin(tilt), -math.cos(tilt)]), np.array([math.cos(tilt), math.sin(tilt)])
    radius = length(_HEAD_R)
    p["head"] = p["neck"] + length(_NECK) * head_up
    for side, s in side_of.items():
        p[f"{side}_shoulder"] = p["neck"] + s * length(_SHOULDER) * width * right - 0.02 * height * up
        p[f"{side}_hip"] = pelvis + s * length(_HIP) * width * right
        for root, a, b, first, second, limits in (
            ("shoulder", "elbow", "wrist", _UPPER_ARM, _FOREARM, ((-20, 160), (-140, 140))),
            ("hip", "knee", "ankle", _THIGH, _SHIN, ((-25, 70), (-100, 40))),
        ):
            (lo1, hi1), (lo2, hi2) = limits
            angle1 = math.radians(rng.uniform(lo1, hi1))  # from straight down, towards the outside
            angle2 = angle1 + math.radians(rng.uniform(lo2, hi2))

            def direction(angle: float, s: int = s) -> np.ndarray:
                return -math.cos(angle) * up + math.sin(angle) * s * right

            p[f"{side}_{a}"] = p[f"{side}_{root}"] + length(first) * direction(angle1)
            p[f"{side}_{b}"] = p[f"{side}_{a}"] + length(second) * direction(angle2)
        for mid, (u, v) in {"upper_arm": ("shoulder", "elbow"), "forearm": ("elbow", "wrist"),
                            "thigh": ("hip", "knee"), "shin": ("knee", "ankle")}.items():
            p[f"{side}_{mid}"] = (p[f"{side}_{u}"] + p[f"{side}_{v}"]) / 2
        # COCO's face points on the head disc.
        p[f"{side}_eye"] = p["head"] + s * 0.35 * radius * head_right + 0.15 * radius * head_up
        p[f"{side}_ear"] = p["head"] + s * 0.9 * radius * head_right
    p["nose"] = p["head"] - 0.15 * radius * head_up

    owners = {"head": ("head",), "nose": ("head",), "neck": ("torso", "neck"), "chest": ("torso",),
              "pelvis": ("torso",)}
    for side in side_of:
        owners |= {f"{side}_eye": ("head",), f"{side}_ear": ("head",),
                   f"{side}_shoulder": ("torso", f"{side}_upper_arm"), f"{side}_upper_arm": (f"{side}_upper_arm",),
                   f"{side}_elbow": (f"{side}_upper_arm", f"{side}_forearm"),
                   f"{side}_forearm": (f"{side}_forearm",), f"{side}_wrist": (f"{side}_forearm",),
                   f"{side}_hip": ("torso", f"{side}_thigh"), f"{side}_thigh": (f"{side}_thigh",),
                   f"{side}_knee": (f"{side}_thigh", f"{side}_shin"), f"{side}_shin": (f"{side}_shin",),
                   f"{side}_ankle": (f"{side}_shin",)}
    parts = _parts(rng, p, height, radius, up, facing)
    hidden = frozenset({"nose", "left_eye", "right_eye"}) if facing < 0 else frozenset()
    return _Figure(p, owners, parts, hidden, facing)


def _parts(rng: np.random.Generator, p: dict[str, np.ndarray], height: float, radius: float, up: np.ndarray,
           facing: int) -> list[_Part]:
    """The figure's parts in drawing order: far limbs, torso, neck, head, near limbs. Colours are set later."""
    grey = np.zeros(3)
    near = "left" if rng.random() < 0.5 else "right"
    far = "right" if near == "left" else "left"
    below = 0.03 * height * -up  # the torso reaches a little below the hips
    torso = np.stack([p["left_shoulder"], p["right_shoulder"], p["right_hip"] + below, p["left_hip"] + below])

    def limbs(side: str, order: tuple[str, ...]) -> list[_Part]:
        ends = {"upper_arm": ("shoulder", "elbow", _ARM_W), "forearm": ("elbow", "wrist", _ARM_W),
                "thigh": ("hip", "knee", _LEG_W), "shin": ("knee", "ankle", _LEG_W)}
        out = []
        for limb in order:
            a, b, w = ends[limb]
            out.append(_Part(f"{side}_{limb}", "capsule", np.stack([p[f"{side}_{a}"], p[f"{side}_{b}"]]),
                             max(2.0, w * height), grey))
        return out

    return [
        *limbs(far, ("upper_arm", "forearm", "thigh", "shin")),
        _Part("torso", "polygon", torso, 0.0, grey),
        _Part("neck", "capsule", np.stack([p["neck"], p["head"]]), max(2.0, _NECK_W * height), grey),
        _Part("head", "disc", p["head"][None], radius, grey),
        *limbs(near, ("thigh", "shin", "upper_arm", "forearm")),
    ]


def _figure_box(figure: _Figure) -> tuple[float, float, float, float]:
    """xyxy extent of the figure's parts (unclipped)."""
    points = np.concatenate([part.points for part in figure.parts])
    pad = max(part.width for part in figure.parts)
    x0, y0 = points.min(axis=0) - pad
    x1, y1 = points.max(axis=0) + pad
    return float(x0), float(y0), float(x1), float(y1)


def _place_figure(rng: np.random.Generator, cfg: ShapesPoseConfig, boxes: list) -> _Figure | None:
    """A figure mostly inside the image, overlapping no earlier one by more than ``_MAX_IOU``; None if none fits."""
    size = cfg.image_size
    height = size * rng.uniform(cfg.min_height_frac, cfg.max_height_frac)
    for _ in range(_PLACE_ATTEMPTS):
        pelvis = np.array([rng.uniform(0, size), rng.uniform(0.25 * height, size - 0.2 * height)])
        figure = _pose(rng, height, pelvis, cfg.back_fraction)
        points = np.stack([figure.points[n] for n in joint_names(MAX_JOINTS)])  # (24, 2) template points
        inside = ((points >= 0) & (points < size)).all(axis=1).mean()
        box = _figure_box(figure)
        if inside >= _MIN_JOINTS_INSIDE and (not boxes or box_iou([box], boxes).max() <= _MAX_IOU):
            return figure
    return None


def _draw_figure(rng: np.random.Generator, image: np.ndarray, owner: np.ndarray, mask: np.ndarray,
                 figure: _Figure, number: int, part_names: dict[int, tuple[int, str]]) -> None:
    """Paint the figure's parts in order, recording which part is on top of each pixel."""
    x0, y0, x1, y1 = (int(np.clip(v, 0, image.shape[0])) for v in _figure_box(figure))
    under = image[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0) if x1 > x0 and y1 > y0 else np.full(3, 128.0)
    shirt, trousers, skin = (_pick_colour(rng, under) for _ in range(3))
    hair = skin * rng.uniform(0.2, 0.45)
    far = figure.parts[0].name.split("_")[0] + "_"  # the far side's limbs are drawn first, a little darker
    for part in figure.parts:
        part_id = len(part_names) + 1
        part_names[part_id] = (number, part.name)
        colour = trousers if part.name.endswith(("thigh", "shin")) else shirt
        colour = skin if part.name in ("head", "neck") else colour
        if part.name.startswith(far):
            colour = colour * 0.8
        coverage, region = _rasterise(part, image.shape[0])
        if coverage is None:
            continue
        inside = coverage >= 128
        _blend(image[region], coverage, colour)
        owner[region][inside] = part_id
        mask[region] |= inside
        if part.name == "torso" and figure.facing > 0:  # a light band down the shirt's front
            top, bottom = (part.points[0] + part.points[1]) / 2, (part.points[2] + part.points[3]) / 2
            band = _Part("band", "capsule", np.stack([top, bottom]), max(1.0, 0.25 * np.linalg.norm(
                part.points[0] - part.points[1])), colour)
            _paint_over(image, band, colour + (255 - colour) * 0.55, inside_of=(coverage, region))
        if part.name == "head":
            _draw_face(image, part, figure, hair, (coverage, region))


def _draw_face(image: np.ndarray, head: _Part, figure: _Figure, hair: np.ndarray, clip: tuple) -> None:
    """Eyes and mouth for a figure facing the viewer, hair over the whole head for one seen from behind."""
    if figure.facing < 0:
        _paint_over(image, _Part("hair", "disc", head.points, head.width * 0.92, hair), hair, clip)
        return
    r = head.width
    for eye in ("left_eye", "right_eye"):
        _paint_over(image, _Part("eye", "disc", figure.points[eye][None], max(1.0, 0.16 * r), hair), hair, clip)
    mouth = figure.points["nose"] + (figure.points["nose"] - figure.points["head"]) * 2.5
    _paint_over(image, _Part("mouth", "disc", mouth[None], max(1.0, 0.14 * r), hair), hair * 0.5 + 60, clip)


def _paint_over(image: np.ndarray, part: _Part, colour: np.ndarray, inside_of: tuple) -> None:
    """Paint a detail (same owner as the part under it) only where that part was drawn."""
    coverage, region = inside_of
    detail, detail_region = _rasterise(part, image.shape[0])
    if detail is None:
        return
    # Both patches are clipped to the image; the detail lies inside the part's patch.
    ys, xs = detail_region
    py, px = region
    sub = (slice(ys.start - py.start, ys.stop - py.start), slice(xs.start - px.start, xs.stop - px.start))
    base = coverage[sub]
    if base.shape != detail.shape:
        return
    _blend(image[detail_region], np.minimum(detail, base), colour)


def _rasterise(part: _Part, size: int) -> tuple[np.ndarray | None, tuple[slice, slice]]:
    """The part's anti-aliased coverage (h, w) uint8 over its in-image patch, and that patch's (rows, cols)."""
    pad = part.width + 2
    lo = np.floor(part.points.min(axis=0) - pad).astype(int).clip(0, size)
    hi = np.ceil(part.points.max(axis=0) + pad).astype(int).clip(0, size)
    region = (slice(int(lo[1]), int(hi[1])), slice(int(lo[0]), int(hi[0])))
    if hi[0] <= lo[0] or hi[1] <= lo[1]:
        return None, region
    coverage = np.zeros((hi[1] - lo[1], hi[0] - lo[0]), np.uint8)
    local = np.rint((part.points - lo) * (1 << _SUBPIXEL_BITS)).astype(np.int32)
    if part.kind == "capsule":
        cv2.line(coverage, tuple(local[0]), tuple(local[1]), 255, max(1, round(part.width)), cv2.LINE_AA,
                 _SUBPIXEL_BITS)
    elif part.kind == "polygon":
        cv2.fillPoly(coverage, [local], 255, cv2.LINE_AA, _SUBPIXEL_BITS)
    else:
        cv2.circle(coverage, tuple(local[0]), round(part.width * (1 << _SUBPIXEL_BITS)), 255, -1, cv2.LINE_AA,
                   _SUBPIXEL_BITS)
    return coverage, region


def _blend(region: np.ndarray, coverage: np.ndarray, colour: np.ndarray) -> None:
    """Paint ``colour`` over an image region (h, w, 3) with 0..255 coverage (h, w)."""
    alpha = coverage.astype(np.float32)[:, :, None] / 255.0
    mixed = region * (1 - alpha) + np.clip(colour, 0, 255).astype(np.float32) * alpha
    region[:] = np.rint(mixed).astype(np.uint8)
