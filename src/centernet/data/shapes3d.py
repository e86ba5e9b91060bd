"""The built-in synthetic 3D dataset "shapes3d", written in KITTI's own format.

A small, deterministic monocular 3D detection problem that needs no download: shaded cuboids of
car-, pedestrian- and cyclist-like sizes standing on a flat ground plane in front of a KITTI-like
camera, seen in perspective, in every orientation and at 5 to 60 metres. The set is written as a
KITTI object folder, so it trains through exactly the same reader as the real KITTI::

    <root>/shapes3d-<hash>/training/image_2/000000.png ...   (RGB PNG)
    <root>/shapes3d-<hash>/training/label_2/000000.txt ...   (KITTI label rows)
    <root>/shapes3d-<hash>/training/calib/000000.txt ...     (P2 and friends)
    <root>/shapes3d-<hash>/ImageSets/train.txt, val.txt      (frame ids; val follows train)
    <root>/shapes3d-<hash>/dataset.yaml                       (the settings, for humans)
    <root>/shapes3d-<hash>/.complete                          (written last)

The folder name carries a short hash of the settings and of the generator's format version; the
build is atomic (a hidden folder renamed into place) and done once, as for "shapes".

Camera: ``P2 = K [I | t]`` with ``fx = fy = focal_frac * width`` and the principal point where
KITTI's is (as fractions of the image), ``t`` KITTI's small camera-2 offset (6 cm to the side);
the camera looks along +z, level, ``camera_height`` metres above the ground (y points down, so
the ground is the plane ``y = camera_height``).

Objects: class drawn by ``class_weights``; dimensions h w l are KITTI's class means with about 6 %
jitter; depth z uniform in ``[min_depth, max_depth]``; x uniform such that the bottom centre
projects inside the image; ``rotation_y`` uniform in [-pi, pi). Every value is rounded to the
label file's 2 decimals *before* rendering, so the labels describe the pixels exactly. An object
is re-drawn (up to a few attempts, else left out) when a corner is less than 0.5 m in front of
the camera, its 2D box is under ``min_box_height`` pixels high, more than half of its projected
box lies outside the image, or its bird's-eye footprint (grown by 0.3 m) overlaps another's.

Rendering: sky, far clutter on the horizon, a textured ground with a road and dashed lane
markings; each object's shadow and its visible faces (back faces culled), each face shaded by its
normal against a fixed light and coloured in class-typical bands (car: body, dark windows;
pedestrian: legs, shirt, hair; cyclist: black bicycle, jersey, helmet) with a little haze with
distance; the front face differs from the back (a car's headlights, a person's face), so the
heading is visible, not only its axis (an all-alike box looks the same turned by pi); objects are drawn far to near (painter's algorithm by the distance of their centres),
so near ones occlude far ones; Gaussian noise last.

Labels as KITTI defines them: ``truncated`` = the fraction of the projected box's area outside the
image; ``occluded`` from the fraction of the object's in-image silhouette hidden by nearer objects:
0 below 10 %, 1 below 50 %, else 2. An object with less than 25 % of its silhouette visible is left
out altogether (not drawn), and the rest re-checked. ``alpha = rotation_y - arctan2(x, z)`` wrapped
to [-pi, pi]; the 2D box is the bounds of the 8 projected corners clipped to the image; dimensions,
location (bottom centre, camera frame) and ``rotation_y`` as drawn.

Every image has its own random generator, seeded from ``(seed, split, index)``: the same settings
give byte-identical files, in any order and with any number of threads.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from ..errors import CenterNetError
from ..ops.camera import box_corners, project, wrap_angle
from ..progress import progress_bar
from .kitti import KittiObject, write_calib_file, write_label_file
from .shapes import _MARKER, _PNG_PARAMS, _add_noise, build_once, hashed_dir, settings_of

__all__ = [
    "SHAPES3D_CLASSES",
    "Shapes3DConfig",
    "build_shapes3d",
    "camera_matrix",
    "dataset_dir",
    "render_image3d",
]

#: Class names (KITTI's); category ids are 1..C in this order.
SHAPES3D_CLASSES: tuple[str, ...] = ("Car", "Pedestrian", "Cyclist")

# KITTI's class mean dimensions h, w, l in metres.
_MEAN_DIMS: dict[str, tuple[float, float, float]] = {
    "Car": (1.53, 1.63, 3.88), "Pedestrian": (1.76, 0.66, 0.84), "Cyclist": (1.74, 0.60, 1.76),
}
_DIM_JITTER = 0.06  # relative standard deviation of each dimension

# Bump when the generator changes what it draws (part of the folder hash).
_FORMAT_VERSION = 2  # 2: a front face that differs from the back (headlights, faces)
_SPLIT_CODES = {"train": 0, "val": 1}
_THREADS = 2

# KITTI's principal point as fractions of its 1242 x 375 image, and camera 2's offset t (metres).
_CX_FRAC, _CY_FRAC = 604.0814 / 1242, 180.5066 / 375
_CAM2_OFFSET = (0.06, 0.0, 0.005)

# Placement rules.
_PLACE_ATTEMPTS = 20
_MIN_CORNER_DEPTH = 0.5  # metres in front of the camera
_MAX_TRUNCATION = 0.5
_FOOTPRINT_MARGIN = 0.3  # metres added around each bird's-eye footprint before the overlap test
_MIN_VISIBLE = 0.25  # of an object's in-image silhouette; below it the object is left out
_OCCLUSION_LEVELS = (0.10, 0.50)  # hidden fraction below these: occluded 0, 1; else 2

# Appearance.
_LIGHT = np.array([-0.6, -0.7, -0.35]) / np.linalg.norm([-0.6, -0.7, -0.35])  # towards the light (y is down)
_AMBIENT = 0.3  # shade = ambient + (1 - ambient) * (1 + normal . light) / 2 (half-Lambert: every face differs)
_HAZE = 0.35  # blend towards the sky colour at max_depth

# The faces of a box as corner indices (see box_corners); the bottom is never seen (the camera is above
# the ground). Each vertical face lists its two ground corners, then the corners above them in reverse.
_VERTICAL_FACES = ((0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7))
_TOP_FACE = (4, 5, 6, 7)
# Outward normals of those faces in the object frame (x along l, y down, z along w).
_VERTICAL_NORMALS = np.array([[1, 0, 0], [0, 0, -1], [-1, 0, 0], [0, 0, 1]], np.float64)
_TOP_NORMAL = np.array([0, -1, 0], np.float64)


@dataclass
class Shapes3DConfig:
    """Settings of the synthetic 3D set: a KITTI-like camera at a small, CPU-friendly size."""

    width: int = 640  # pixels (KITTI is 1242 x 375; the same aspect ratio)
    height: int = 192
    num_train: int = 400  # frames in ImageSets/train.txt
    num_val: int = 100  # frames in ImageSets/val.txt
    focal_frac: float = 0.57  # fx = fy = focal_frac * width (KITTI: 721 / 1242 = 0.58)
    camera_height: float = 1.65  # metres above the ground plane
    min_depth: float = 5.0  # metres, range of the objects' z
    max_depth: float = 60.0
    max_objects: int = 8  # objects wanted per image: uniform in 1..max_objects (some may not fit)
    min_box_height: float = 10.0  # pixels; smaller 2D boxes are re-drawn
    car_weight: float = 0.6  # relative frequency of each class
    pedestrian_weight: float = 0.25
    cyclist_weight: float = 0.15
    seed: int = 0

    @property
    def class_weights(self) -> np.ndarray:
        """(3,) probabilities of Car, Pedestrian, Cyclist."""
        weights = np.array([self.car_weight, self.pedestrian_weight, self.cyclist_weight], np.float64)
        return weights / weights.sum()

    def validate(self) -> None:
        """Raise :class:`CenterNetError` naming the first out-of-range setting."""
        weights = (self.car_weight, self.pedestrian_weight, self.cyclist_weight)
        checks: list[tuple[bool, str]] = [
            (self.width >= 64 and self.height >= 32, f"image must be at least 64x32, got {self.width}x{self.height}"),
            (self.num_train >= 0 and self.num_val >= 0, f"num_train and num_val must be >= 0, got "
                                                        f"{self.num_train}, {self.num_val}"),
            (self.num_train + self.num_val <= 1_000_000, "at most 1000000 frames (6-digit frame ids)"),
            (0.1 <= self.focal_frac <= 5, f"focal_frac must be in [0.1, 5], got {self.focal_frac}"),
            (0.2 <= self.camera_height <= 10, f"camera_height must be in [0.2, 10] m, got {self.camera_height}"),
            (2 <= self.min_depth < self.max_depth <= 200,
             f"need 2 <= min_depth < max_depth <= 200 m, got {self.min_depth}, {self.max_depth}"),
            (1 <= self.max_objects <= 30, f"max_objects must be in [1, 30], got {self.max_objects}"),
            (1 <= self.min_box_height < self.height, f"min_box_height must be in [1, height), "
                                                     f"got {self.min_box_height}"),
            (min(weights) >= 0 and sum(weights) > 0, f"class weights must be >= 0 and not all 0, got {weights}"),
            (self.seed >= 0, f"seed must be >= 0, got {self.seed}"),
        ]
        for ok, message in checks:
            if not ok:
                raise CenterNetError(f"shapes3d dataset: {message}")


# --------------------------------------------------------------------------- geometry


def camera_matrix(cfg: Shapes3DConfig) -> np.ndarray:
    """P2 (3, 4) float64: ``K [I | t]`` for the configured image size."""
    f = cfg.focal_frac * cfg.width
    k = np.array([[f, 0, _CX_FRAC * cfg.width], [0, f, _CY_FRAC * cfg.height], [0, 0, 1]], np.float64)
    return k @ np.hstack([np.eye(3), np.array(_CAM2_OFFSET, np.float64)[:, None]])


# --------------------------------------------------------------------------- on disk


def dataset_dir(root: str | Path, cfg: Shapes3DConfig | None = None) -> Path:
    """The folder :func:`build_shapes3d` uses for ``cfg`` under ``root`` (not created)."""
    return hashed_dir(root, "shapes3d", _FORMAT_VERSION, cfg or Shapes3DConfig())


def build_shapes3d(root: str | Path, cfg: Shapes3DConfig | None = None, progress: bool = True) -> Path:
    """Write the dataset under ``root`` (once) and return its folder (a KITTI object folder).

    A folder that already carries the completion marker is returned untouched; a new one is built
    in a hidden temporary folder beside it and renamed into place when complete.
    """
    cfg = cfg or Shapes3DConfig()
    cfg.validate()
    return build_once(dataset_dir(root, cfg), lambda tmp: _write_dataset(tmp, cfg, progress))


def _write_dataset(folder: Path, cfg: Shapes3DConfig, progress: bool) -> None:
    """Write both splits' frames, the ImageSets, the settings file and, last, the completion marker."""
    training = folder / "training"
    for name in ("image_2", "label_2", "calib"):
        (training / name).mkdir(parents=True)
    (folder / "ImageSets").mkdir()
    p2 = camera_matrix(cfg)
    jobs = [(split, index, first + index) for split, first, count in
            (("train", 0, cfg.num_train), ("val", cfg.num_train, cfg.num_val)) for index in range(count)]

    def write_frame(job: tuple[str, int, int]) -> None:
        split, index, frame = job
        image, objects = render_image3d(cfg, split, index)
        name = f"{frame:06d}"
        if not cv2.imwrite(str(training / "image_2" / f"{name}.png"), np.ascontiguousarray(image[:, :, ::-1]),
                           _PNG_PARAMS):
            raise OSError(f"could not write {training / 'image_2' / f'{name}.png'}")
        write_label_file(training / "label_2" / f"{name}.txt", objects)
        write_calib_file(training / "calib" / f"{name}.txt", p2)

    bar = progress_bar(total=len(jobs), desc="shapes3d dataset", unit="img", disable=not progress)
    pool = ThreadPoolExecutor(max_workers=_THREADS)
    try:
        with bar:
            for _ in pool.map(write_frame, jobs):
                bar.update(1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    for split in ("train", "val"):
        frames = [f"{frame:06d}\n" for s, _, frame in jobs if s == split]
        (folder / "ImageSets" / f"{split}.txt").write_text("".join(frames))
    settings = {
        "name": "shapes3d", "format_version": _FORMAT_VERSION, "settings": settings_of(cfg),
        "classes": list(SHAPES3D_CLASSES), "layout": "KITTI object (training/{image_2,label_2,calib}, ImageSets)",
        "splits": {"train": cfg.num_train, "val": cfg.num_val},
    }
    (folder / "dataset.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    (folder / _MARKER).write_text("ok\n")


# --------------------------------------------------------------------------- one image


@dataclass
class _Object:
    """One placed object: its label values (rounded as written) and its projection."""

    type: str
    dims: np.ndarray  # (3,) h w l metres
    location: np.ndarray  # (3,) x y z metres, bottom centre
    rotation_y: float
    corners: np.ndarray  # (8, 3) camera frame
    points: np.ndarray  # (8, 2) projected corners, pixels
    box: tuple[float, float, float, float]  # clipped x1 y1 x2 y2
    truncated: float
    colours: dict  # band name -> RGB (3,) float

    @property
    def distance(self) -> float:
        return float(np.hypot(self.location[0], self.location[2]))


def render_image3d(cfg: Shapes3DConfig, split: str, index: int) -> tuple[np.ndarray, list[KittiObject]]:
    """Render one frame exactly as :func:`build_shapes3d` writes it: (H, W, 3) uint8 RGB and its label rows."""
    if split not in _SPLIT_CODES:
        raise CenterNetError(f"shapes3d dataset: unknown split {split!r}, expected train or val")
    rng = np.random.default_rng([int(cfg.seed), _SPLIT_CODES[split], index, 3])
    p2 = camera_matrix(cfg)
    sky = rng.uniform([150, 170, 190], [215, 225, 245])  # (3,) RGB at the horizon
    image = _background(rng, cfg, p2, sky)

    objects: list[_Object] = []
    for _ in range(int(rng.integers(1, cfg.max_objects + 1))):
        obj = _place(rng, cfg, p2, objects)
        if obj is not None:
            objects.append(obj)
    objects.sort(key=lambda o: -o.distance)  # far to near: the drawing order
    objects, hidden = _visible_objects(objects, cfg)
    for obj in objects:
        _draw_object(image, obj, p2, cfg, sky)
    _add_noise(rng, image)
    rows = [_label_row(obj, hid) for obj, hid in zip(objects, hidden)]
    rows.sort(key=lambda r: r.location[2])  # near first, as a habit of KITTI's files
    return image, rows


def _label_row(obj: _Object, hidden: float) -> KittiObject:
    """The KITTI row of a drawn object; ``hidden`` the fraction of its silhouette covered by nearer ones."""
    x, _, z = obj.location
    occluded = 0 if hidden < _OCCLUSION_LEVELS[0] else 1 if hidden < _OCCLUSION_LEVELS[1] else 2
    return KittiObject(
        type=obj.type, truncated=obj.truncated, occluded=occluded,
        alpha=round(wrap_angle(obj.rotation_y - math.atan2(x, z)), 2), box=obj.box,
        dimensions=tuple(float(v) for v in obj.dims), location=tuple(float(v) for v in obj.location),
        rotation_y=obj.rotation_y,
    )


def _place(rng: np.random.Generator, cfg: Shapes3DConfig, p2: np.ndarray, placed: list[_Object]) -> _Object | None:
    """A new object obeying the placement rules, or None after a few attempts."""
    kind = SHAPES3D_CLASSES[int(rng.choice(len(SHAPES3D_CLASSES), p=cfg.class_weights))]
    colours = _colours(rng, kind)
    fx, cx = p2[0, 0], p2[0, 2]
    for _ in range(_PLACE_ATTEMPTS):
        dims = np.round(np.array(_MEAN_DIMS[kind]) * (1 + _DIM_JITTER * rng.standard_normal(3)).clip(0.8, 1.2), 2)
        z = rng.uniform(cfg.min_depth, cfg.max_depth)
        x = rng.uniform(-cx, cfg.width - cx) * z / fx  # bottom centre in view
        location = np.round([x, cfg.camera_height, z], 2)
        rotation_y = round(wrap_angle(rng.uniform(-math.pi, math.pi)), 2)
        corners = box_corners(dims, location, rotation_y)
        if corners[:, 2].min() < _MIN_CORNER_DEPTH:
            continue
        points = project(p2, corners)
        full = (*points.min(axis=0), *points.max(axis=0))
        box = (max(full[0], 0.0), max(full[1], 0.0), min(full[2], float(cfg.width)), min(full[3], float(cfg.height)))
        if box[2] <= box[0] or box[3] - box[1] < cfg.min_box_height:
            continue
        truncated = 1 - (box[2] - box[0]) * (box[3] - box[1]) / ((full[2] - full[0]) * (full[3] - full[1]))
        if truncated > _MAX_TRUNCATION or any(_footprints_overlap(corners, o.corners) for o in placed):
            continue
        box = tuple(round(v, 2) for v in box)
        return _Object(kind, dims, location, rotation_y, corners, points, box, round(truncated, 2), colours)
    return None


def _footprints_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two boxes' bird's-eye rectangles (corners 0-3, x z), grown by the margin, overlap (separating axes)."""
    rects = [_grown(c[:4][:, [0, 2]]) for c in (a, b)]  # (4, 2) each
    for rect in rects:
        for k in range(2):
            axis = rect[k + 1] - rect[k]
            axis = np.array([-axis[1], axis[0]])
            pa, pb = rects[0] @ axis, rects[1] @ axis
            if pa.max() < pb.min() or pb.max() < pa.min():
                return False
    return True


def _grown(rect: np.ndarray) -> np.ndarray:
    """A rectangle (4, 2) grown by the footprint margin on every side."""
    grown = []
    for k in range(4):
        edge_a = rect[(k + 1) % 4] - rect[k]
        edge_b = rect[k - 1] - rect[k]
        push = -(edge_a / np.linalg.norm(edge_a) + edge_b / np.linalg.norm(edge_b)) * _FOOTPRINT_MARGIN
        grown.append(rect[k] + push)
    return np.array(grown)


def _silhouette(obj: _Object, shape: tuple[int, int]) -> np.ndarray:
    """The object's projected silhouette (H, W) bool: the convex hull of its projected corners."""
    mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(np.round(obj.points * 16).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1, cv2.LINE_8, 4)
    return mask.astype(bool)


def _visible_objects(objects: list[_Object], cfg: Shapes3DConfig) -> tuple[list[_Object], list[float]]:
    """The objects (far to near) that stay visible enough, and the hidden fraction of each's silhouette.

    The most hidden object under the limit is left out and the rest re-checked, until all pass.
    """
    masks = [_silhouette(o, (cfg.height, cfg.width)) for o in objects]
    keep = [m.any() for m in masks]
    while True:
        owner = np.full((cfg.height, cfg.width), -1, np.int16)  # who is seen at each pixel
        for k, mask in enumerate(masks):
            if keep[k]:
                owner[mask] = k
        seen = np.bincount(owner[owner >= 0].ravel(), minlength=len(objects))
        visible = [seen[k] / max(int(masks[k].sum()), 1) if keep[k] else 1.0 for k in range(len(objects))]
        worst = int(np.argmin(visible)) if objects else 0
        if not objects or visible[worst] >= _MIN_VISIBLE:
            kept = [k for k in range(len(objects)) if keep[k]]
            return [objects[k] for k in kept], [1 - visible[k] for k in kept]
        keep[worst] = False


# --------------------------------------------------------------------------- appearance


def _colours(rng: np.random.Generator, kind: str) -> dict[str, np.ndarray]:
    """Class-typical band colours (RGB (3,) float) of one object."""
    def pick(palette: list[tuple[int, int, int]], jitter: float = 18) -> np.ndarray:
        base = np.array(palette[int(rng.integers(len(palette)))], np.float64)
        return np.clip(base + rng.uniform(-jitter, jitter, 3), 0, 255)

    if kind == "Car":
        body = pick([(170, 30, 30), (30, 60, 150), (190, 190, 195), (235, 235, 235), (40, 40, 45),
                     (30, 90, 50), (210, 180, 40), (120, 120, 125)])
        return {"body": body, "glass": pick([(45, 55, 70), (30, 35, 45)], 8), "tyres": pick([(25, 25, 25)], 5),
                "lights": pick([(250, 240, 150), (255, 255, 230)], 5)}
    skin = pick([(230, 190, 160), (190, 140, 100), (120, 80, 55)], 10)
    if kind == "Pedestrian":
        return {"legs": pick([(35, 45, 90), (40, 40, 40), (90, 80, 70), (110, 110, 120)]),
                "shirt": pick([(200, 50, 60), (60, 120, 190), (230, 230, 220), (80, 150, 80), (150, 90, 160)]),
                "head": pick([(30, 25, 20), (90, 60, 30), (160, 130, 70)], 8), "face": skin}  # head: the hair
    return {"bike": pick([(25, 25, 25), (60, 60, 70)], 8),
            "jersey": pick([(250, 200, 30), (40, 200, 90), (240, 110, 30), (40, 190, 220)]),
            "head": pick([(240, 240, 240), (220, 40, 40), (30, 30, 30)], 10), "face": skin}  # head: the helmet


# Vertical bands per class: (from, to) as fractions of the height, colour name. The top face has the last band's
# colour, except for cars (their body: the roof). The front face (normal +x, the way rotation_y points) differs
# from the back in one band (_FRONT_BAND), so the heading itself is seen, not only its axis: a car's headlights,
# a person's face (the back of the head shows hair or helmet).
_BANDS: dict[str, tuple[tuple[float, float, str], ...]] = {
    "Car": ((0.0, 0.22, "tyres"), (0.22, 0.58, "body"), (0.58, 0.9, "glass"), (0.9, 1.0, "body")),
    "Pedestrian": ((0.0, 0.47, "legs"), (0.47, 0.86, "shirt"), (0.86, 1.0, "head")),
    "Cyclist": ((0.0, 0.42, "bike"), (0.42, 0.85, "jersey"), (0.85, 1.0, "head")),
}
_FRONT_BAND: dict[str, tuple[int, str]] = {"Car": (1, "lights"), "Pedestrian": (2, "face"), "Cyclist": (2, "face")}


def _draw_object(image: np.ndarray, obj: _Object, p2: np.ndarray, cfg: Shapes3DConfig, sky: np.ndarray) -> None:
    """Draw the object's shadow and its visible faces, shaded, into ``image`` (H, W, 3) uint8."""
    c, s = math.cos(obj.rotation_y), math.sin(obj.rotation_y)
    to_camera = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    centre = -np.array(_CAM2_OFFSET)  # camera 2's centre in the label frame
    haze = min(obj.distance / cfg.max_depth, 1.0) * _HAZE
    _draw_shadow(image, obj, p2)
    corners = obj.corners
    faces: list[tuple[np.ndarray, np.ndarray, str]] = []  # (4, 3) corners, normal, colour name
    front_band, front_name = _FRONT_BAND[obj.type]
    for f, (face, normal) in enumerate(zip(_VERTICAL_FACES, _VERTICAL_NORMALS)):
        quad = corners[list(face)]  # bottom-front, bottom-back, top-back, top-front
        for band, (lo, hi, name) in enumerate(_BANDS[obj.type]):
            name = front_name if f == 0 and band == front_band else name  # face 0: the front
            bottom = quad[[0, 1]] + (quad[[3, 2]] - quad[[0, 1]]) * lo
            top = quad[[0, 1]] + (quad[[3, 2]] - quad[[0, 1]]) * hi
            faces.append((np.vstack([bottom, top[::-1]]), to_camera @ normal, name))
    top_name = "body" if obj.type == "Car" else _BANDS[obj.type][-1][2]
    faces.append((corners[list(_TOP_FACE)], to_camera @ _TOP_NORMAL, top_name))
    for quad, normal, name in faces:
        if normal @ (quad.mean(axis=0) - centre) >= 0:  # faces away from the camera
            continue
        shade = _AMBIENT + (1 - _AMBIENT) * (1 + float(normal @ _LIGHT)) / 2
        colour = obj.colours[name] * shade * (1 - haze) + sky * haze
        points = np.round(project(p2, quad) * 16).astype(np.int32)
        cv2.fillConvexPoly(image, points, tuple(float(v) for v in colour), cv2.LINE_8, 4)


def _draw_shadow(image: np.ndarray, obj: _Object, p2: np.ndarray) -> None:
    """Darken the ground under the object: its footprint grown by 15 %, projected."""
    foot = obj.corners[:4]
    foot = foot.mean(axis=0) + (foot - foot.mean(axis=0)) * 1.15
    points = np.round(project(p2, foot) * 16).astype(np.int32)
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, points, 1, cv2.LINE_8, 4)
    region = mask.astype(bool)
    image[region] = (image[region] * 0.45).astype(np.uint8)


def _background(rng: np.random.Generator, cfg: Shapes3DConfig, p2: np.ndarray, sky: np.ndarray) -> np.ndarray:
    """Sky, clutter on the horizon and a textured ground with a road; (H, W, 3) uint8."""
    h, w = cfg.height, cfg.width
    fx, cx, fy, cy = p2[0, 0], p2[0, 2], p2[1, 1], p2[1, 2]
    rows = np.arange(h, dtype=np.float64)[:, None] + 0.5  # (H, 1) pixel centres
    cols = np.arange(w, dtype=np.float64)[None, :] + 0.5  # (1, W)
    image = np.empty((h, w, 3), np.float32)

    # Sky: darker and bluer towards the top.
    top = sky * rng.uniform(0.65, 0.85) - np.array([20, 10, 0])
    t = np.clip(rows / cy, 0, 1)[:, :, None]  # (H, 1, 1)
    image[:] = top * (1 - t) + sky * t

    # Ground (rows below the horizon): world X, Z of each pixel on the plane y = camera_height.
    below = rows[:, 0] > cy + 0.5
    depth = fy * cfg.camera_height / (rows[below] - cy)  # (B, 1) Z in metres
    lateral = (cols - cx) * depth / fx  # (B, W) X in metres
    grass = rng.uniform([70, 90, 40], [120, 130, 80])
    asphalt = rng.uniform(70, 110) * np.array([1.0, 1.0, 1.03]) + rng.uniform(-8, 8, 3)
    road_centre = rng.uniform(-3, 3)
    road_half = rng.uniform(4, 8)
    on_road = np.abs(lateral - road_centre) < road_half  # (B, W)
    ground = np.where(on_road[:, :, None], asphalt, grass).astype(np.float32)  # (B, W, 3)
    lanes = road_centre + np.array([-road_half + 0.3, 0.0, road_half - 0.3])
    near_lane = np.min(np.abs(lateral[:, :, None] - lanes), axis=2) < 0.08 + 0.5 * depth / fx
    dashed = (np.abs(lateral - road_centre) > road_half - 1) | (np.mod(depth + rng.uniform(0, 8), 8) < 4)
    ground[near_lane & dashed] = rng.uniform(190, 235)
    ground *= 1 + 0.12 * _blotches(rng, ground.shape[:2], 12)[:, :, None]
    fade = np.clip(depth / 200, 0, 1)[:, :, None]  # the ground fades into the sky's colour far away
    image[below] = ground * (1 - fade) + sky * fade

    # Clutter on the horizon: far buildings and trees (behind every object).
    horizon = int(round(cy))
    for _ in range(int(rng.integers(4, 12))):
        x0 = rng.uniform(-20, w)
        width = rng.uniform(10, 90)
        height = rng.uniform(4, 0.4 * cy)
        colour = rng.uniform(60, 190, 3) * 0.6 + sky * 0.4
        if rng.random() < 0.5:
            cv2.rectangle(image, (int(x0), int(horizon - height)), (int(x0 + width), horizon + 1), colour.tolist(), -1)
        else:
            centre = (int(x0 + width / 2), horizon)
            cv2.ellipse(image, centre, (int(width / 2), int(height)), 0, 180, 360, colour.tolist(), -1)
    return np.clip(image, 0, 255).astype(np.uint8)


def _blotches(rng: np.random.Generator, shape: tuple[int, int], grid: int) -> np.ndarray:
    """Smooth noise (H, W) float32 in about [-1, 1]: a coarse random grid upsampled."""
    coarse = rng.uniform(-1, 1, (grid, grid * 3)).astype(np.float32)
    return cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
