"""The built-in synthetic detection dataset "shapes".

A small, deterministic detection problem that needs no download: filled circles,
squares (modestly stretched into rectangles), triangles and five-pointed stars of
random colours, sizes and rotations, drawn on cluttered backgrounds (smooth colour
gradients, low-contrast blotches, stray straight lines and thin open curves, Gaussian
noise). The set is written to disk as ordinary PNG files plus COCO-style annotation
files, so the demo trains through exactly the same loading code as a user's own data::

    <root>/shapes-<hash>/images/train/000000.png ...    (RGB PNG)
    <root>/shapes-<hash>/images/val/000000.png ...
    <root>/shapes-<hash>/annotations/instances_train.json
    <root>/shapes-<hash>/annotations/instances_val.json
    <root>/shapes-<hash>/dataset.yaml                    (the settings, for humans)
    <root>/shapes-<hash>/.complete                       (written last)

The folder name carries a short hash of the settings (and of the generator's format
version), so different settings never collide and a finished folder is reused as is.

Generation rules:

* Every image has its own random generator, seeded from ``(seed, split, index)``, so
  images are independent of each other and of the order they are made in; the same
  settings always give byte-identical annotation files and identical pixels.
* Objects per image: ``1 + Poisson(mean_objects - 1)``, capped at :data:`MAX_OBJECTS`.
* Object size: the geometric mean of the tight box's sides is log-uniform (or, as a
  setting, uniform) between ``min_size`` and ``max_size_frac * image_size`` (so small,
  medium and large objects all occur), and both box sides are kept inside that range.
* Occlusion: objects are drawn one after another and may cover earlier ones, but a new
  object is rejected (and re-placed) if it would leave any earlier object with less
  than half of its own in-image pixels visible. Objects keep at least 70 % of their
  area inside the image.
* Boxes are amodal and tight: the box of the shape's own rasterised mask (fill and
  outline, as drawn), clipped to the image, whether or not later objects cover part
  of it.
* Colours are redrawn until they differ clearly from the mean colour of what lies
  beneath the shape at that spot.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable
from statistics import NormalDist

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from ..errors import CenterNetError
from ..progress import progress_bar

__all__ = [
    "MAX_OBJECTS",
    "SHAPE_CLASSES",
    "ShapesConfig",
    "build_shapes",
    "dataset_dir",
    "render_image",
    "visible_fractions",
]

#: Class names; category ids are 1..C in this order.
SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star")

#: Most objects placed in one image.
MAX_OBJECTS = 12

# Bump when the generator changes what it draws: the version is part of the folder
# hash, so caches made by an older generator are not mistaken for current ones.
_FORMAT_VERSION = 1

# Mixed into each image's seed so the splits never share a random stream.
_SPLIT_CODES = {"train": 0, "val": 1}

_MARKER = ".complete"
_THREADS = 2  # drawing is partly GIL-bound: more threads than 2 are slower


def _png_params() -> list[int]:
    """Fast PNG settings: noisy images barely compress, so favour speed."""
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1]
    if hasattr(cv2, "IMWRITE_PNG_FILTER"):  # OpenCV >= 4.10: ~3x faster encoding
        params += [cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY,
                   cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
    return params


_PNG_PARAMS = _png_params()

# Standard normal quantiles at the 256 midpoints (i + 0.5) / 256: a random byte
# looked up here is a Gaussian sample at 8-bit resolution.
_GAUSS_QUANTILES = np.array(
    [NormalDist().inv_cdf((i + 0.5) / 256) for i in range(256)], np.float32
)

# Placement and appearance rules.
_PLACE_ATTEMPTS = 30  # re-placements of one object before it is dropped
_MIN_INSIDE_FRAC = 0.7  # of an object's pixels that must lie inside the image
_MIN_VISIBLE_FRAC = 0.5  # of an object's in-image pixels that must stay uncovered
_COLOUR_ATTEMPTS = 12
_MIN_COLOUR_DIST = 100.0  # RGB Euclidean distance from the local background mean
_OUTLINE_PROB = 0.3
_SQUARE_ASPECT = (0.7, 1.4)  # width / height of the unrotated rectangle
_SUBPIXEL_BITS = 4  # cv2 fixed-point shift: coordinates in 1/16 pixel
_RASTER_GROWTH = 2.5  # most pixels a drawn shape's box exceeds its polygon's extent


@dataclass
class ShapesConfig:
    """Settings of the synthetic set; all sizes in pixels."""

    image_size: int = 256  # square images, pixels per side
    num_train: int = 2000  # images in the train split
    num_val: int = 200  # images in the val split
    min_size: float = 6.0  # smallest object side, pixels
    max_size_frac: float = 0.5  # largest object side as a fraction of image_size
    mean_objects: float = 4.0  # average objects per image (before rare rejections)
    seed: int = 0
    size_distribution: str = "log-uniform"  # of the object side: 'log-uniform' (COCO-like, many small) or 'uniform'

    @property
    def max_size(self) -> float:
        """Largest object side in pixels."""
        return self.max_size_frac * self.image_size

    def validate(self) -> None:
        """Raise :class:`CenterNetError` naming the first out-of-range setting."""
        checks: list[tuple[bool, str]] = [
            (self.image_size >= 32, f"image_size must be >= 32, got {self.image_size}"),
            (self.num_train >= 0, f"num_train must be >= 0, got {self.num_train}"),
            (self.num_val >= 0, f"num_val must be >= 0, got {self.num_val}"),
            (self.min_size >= 3, f"min_size must be >= 3 pixels, got {self.min_size}"),
            (
                0 < self.max_size_frac <= 1,
                f"max_size_frac must be in (0, 1], got {self.max_size_frac}",
            ),
            (
                self.max_size >= 1.5 * self.min_size + _RASTER_GROWTH,
                f"max_size_frac * image_size ({self.max_size:g}) must be at least "
                f"1.5 * min_size + {_RASTER_GROWTH:g} ({1.5 * self.min_size + _RASTER_GROWTH:g})",
            ),
            (
                1 <= self.mean_objects <= MAX_OBJECTS,
                f"mean_objects must be in [1, {MAX_OBJECTS}], got {self.mean_objects}",
            ),
            (self.seed >= 0, f"seed must be >= 0, got {self.seed}"),
            (
                self.size_distribution in ("log-uniform", "uniform"),
                f"size_distribution must be 'log-uniform' or 'uniform', got {self.size_distribution!r}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise CenterNetError(f"shapes dataset: {message}")


# --------------------------------------------------------------------------- on disk


def dataset_dir(root: str | Path, cfg: ShapesConfig | None = None) -> Path:
    """The folder :func:`build_shapes` uses for ``cfg`` under ``root`` (not created)."""
    return hashed_dir(root, "shapes", _FORMAT_VERSION, cfg or ShapesConfig())


def settings_of(cfg) -> dict[str, int | float]:
    """A built-in set's settings dataclass as a dict, each value cast to its field's type (6 and 6.0 hash alike)."""
    return {f.name: type(f.default)(getattr(cfg, f.name)) for f in fields(cfg)}


def hashed_dir(root: str | Path, name: str, format_version: int, cfg) -> Path:
    """``root/<name>-<hash>``: the hash of the generator's format version and the settings."""
    key = json.dumps({"format": format_version, **settings_of(cfg)}, sort_keys=True)
    return Path(root) / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def build_once(final: Path, write: Callable[[Path], None]) -> Path:
    """``final`` when it carries the completion marker; else ``write(tmp)`` into a hidden temporary folder beside
    it (``write`` writes the marker last), renamed into place, so an interrupted build never looks finished."""
    if (final / _MARKER).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the dataset is ordinary data
    try:
        write(tmp)
        _move_into_place(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def build_shapes(
    root: str | Path, cfg: ShapesConfig | None = None, progress: bool = True
) -> Path:
    """Write the dataset under ``root`` (once) and return the dataset folder.

    A folder that already carries the completion marker is returned untouched. A new
    one is built in a hidden temporary folder next to it and renamed into place only
    when complete, so an interrupted build never looks finished.
    """
    cfg = cfg or ShapesConfig()
    cfg.validate()
    return build_once(dataset_dir(root, cfg), lambda tmp: _write_dataset(tmp, cfg, progress))


def _move_into_place(tmp: Path, final: Path) -> None:
    """Rename the finished ``tmp`` to ``final``; keep a finished copy already there."""
    if final.exists():
        if (final / _MARKER).is_file():  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
            return
        shutil.rmtree(final)  # leftover of an interrupted build
    try:
        os.rename(tmp, final)
    except OSError:
        if not (final / _MARKER).is_file():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _write_dataset(folder: Path, cfg: ShapesConfig, progress: bool) -> None:
    """Write both splits, the settings file and, last, the completion marker."""
    bar = progress_bar(total=cfg.num_train + cfg.num_val, desc="shapes dataset", unit="img", disable=not progress)
    with bar:
        for split, count in (("train", cfg.num_train), ("val", cfg.num_val)):
            _write_split(folder, cfg, split, count, bar)
    settings = {
        "name": "shapes",
        "format_version": _FORMAT_VERSION,
        "settings": settings_of(cfg),
        "classes": list(SHAPE_CLASSES),
        "splits": {
            "train": {
                "images": "images/train",
                "annotations": "annotations/instances_train.json",
                "count": cfg.num_train,
            },
            "val": {
                "images": "images/val",
                "annotations": "annotations/instances_val.json",
                "count": cfg.num_val,
            },
        },
    }
    (folder / "dataset.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    (folder / _MARKER).write_text("ok\n")


def _write_split(
    folder: Path, cfg: ShapesConfig, split: str, count: int, bar: tqdm
) -> None:
    """Render ``count`` images of ``split`` to PNG and write its COCO json."""
    image_dir = folder / "images" / split
    image_dir.mkdir(parents=True)
    (folder / "annotations").mkdir(exist_ok=True)

    def render_to_file(index: int) -> tuple[np.ndarray, np.ndarray]:
        image, boxes, category_ids = render_image(cfg, split, index)
        path = image_dir / _file_name(index)
        bgr = np.ascontiguousarray(image[:, :, ::-1])  # cv2 writes BGR arrays as RGB PNG
        if not cv2.imwrite(str(path), bgr, _PNG_PARAMS):
            raise OSError(f"could not write {path}")
        return boxes, category_ids

    images: list[dict] = []
    annotations: list[dict] = []
    # Each image has its own seed and results come back in index order, so threads
    # change nothing in the output; they overlap PNG encoding (which releases the
    # GIL) with drawing, ~1.6x faster than one thread.
    pool = ThreadPoolExecutor(max_workers=_THREADS)
    try:
        results = pool.map(render_to_file, range(count))
        for index, (boxes, category_ids) in enumerate(results):
            _add_entries(images, annotations, cfg, index, boxes, category_ids)
            bar.update(1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

    coco = {
        "info": {"description": f"synthetic shapes ({split})",
                 "version": str(_FORMAT_VERSION)},
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": i + 1, "name": name, "supercategory": "shape"}
            for i, name in enumerate(SHAPE_CLASSES)
        ],
    }
    path = folder / "annotations" / f"instances_{split}.json"
    path.write_text(json.dumps(coco, separators=(",", ":")))


def _file_name(index: int) -> str:
    """Image file name of the ``index``-th image of a split (0-based)."""
    return f"{index:06d}.png"


def _add_entries(
    images: list[dict],
    annotations: list[dict],
    cfg: ShapesConfig,
    index: int,
    boxes: np.ndarray,
    category_ids: np.ndarray,
) -> None:
    """Append one image's COCO records; image and annotation ids start at 1."""
    image_id = index + 1
    images.append(
        {"id": image_id, "file_name": _file_name(index), "width": cfg.image_size,
         "height": cfg.image_size}
    )
    for box, category_id in zip(boxes.tolist(), category_ids.tolist()):
        x, y, w, h = (float(v) for v in box)
        annotations.append(
            {"id": len(annotations) + 1, "image_id": image_id,
             "category_id": int(category_id), "bbox": [x, y, w, h], "area": w * h,
             "iscrowd": 0}
        )


# --------------------------------------------------------------------------- one image


@dataclass
class _Placed:
    """An object drawn into the image; ``area`` counts its in-image mask pixels."""

    category_id: int
    box: tuple[float, float, float, float]  # x, y, w, h in pixels (tight, clipped)
    area: int
    visible: int  # pixels of the mask not covered by later objects


@dataclass
class _Raster:
    """A shape rasterised into its own small patch of the image grid."""

    x0: int  # image column of the patch's left edge (may be negative)
    y0: int  # image row of the patch's top edge (may be negative)
    fill: np.ndarray  # (h, w) uint8 anti-aliased coverage of the fill, 0..255
    outline: np.ndarray | None  # (h, w) uint8 coverage of the outline, or None
    mask: np.ndarray  # (h, w) bool: the pixels that belong to the shape


def render_image(
    cfg: ShapesConfig, split: str, index: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one image of a split, exactly as :func:`build_shapes` writes it.

    Returns ``(image, boxes, category_ids)``: image (S, S, 3) uint8 RGB, boxes (N, 4)
    float32 ``[x, y, w, h]`` in pixels, category_ids (N,) int64 in 1..C.
    """
    image, placed = _render(cfg, split, index)
    boxes = np.array([p.box for p in placed], np.float32).reshape(-1, 4)
    category_ids = np.array([p.category_id for p in placed], np.int64)
    return image, boxes, category_ids


def visible_fractions(cfg: ShapesConfig, split: str, index: int) -> np.ndarray:
    """(N,) the share of each object's in-image pixels that no later object covers, in the order of the
    image's boxes (1 for an unoccluded object; at least 0.5 by the occlusion rule). Renders the image again."""
    _, placed = _render(cfg, split, index)
    return np.array([p.visible / p.area for p in placed], np.float64)


def _render(cfg: ShapesConfig, split: str, index: int) -> tuple[np.ndarray, list[_Placed]]:
    """The image of :func:`render_image` and the objects placed in it, in drawing order."""
    if split not in _SPLIT_CODES:
        raise CenterNetError(f"shapes dataset: unknown split {split!r}, expected train or val")
    rng = np.random.default_rng([int(cfg.seed), _SPLIT_CODES[split], index])
    size = cfg.image_size

    image = _background(rng, size)
    _draw_clutter(rng, image)

    owner = np.zeros((size, size), np.int16)  # 0 = background, k = k-th placed object
    placed: list[_Placed] = []
    wanted = min(1 + int(rng.poisson(cfg.mean_objects - 1)), MAX_OBJECTS)
    for _ in range(wanted):
        obj = _place_object(rng, cfg, image, owner, placed)
        if obj is not None:
            placed.append(obj)

    _add_noise(rng, image)
    return image, placed


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth colour gradient with low-contrast blotches; (S, S, 3) uint8.

    Both are smooth, so they are made on a coarse grid and upsampled once.
    """
    coarse = 32  # grid side; the field is smooth, so this loses nothing visible
    corners = rng.uniform(20, 235, size=(2, 2, 3)).astype(np.float32)
    t = np.linspace(0.0, 1.0, coarse, dtype=np.float32)
    v, u = t[:, None, None], t[None, :, None]  # row and column weights
    field = (
        (1 - v) * (1 - u) * corners[0, 0] + (1 - v) * u * corners[0, 1]
        + v * (1 - u) * corners[1, 0] + v * u * corners[1, 1]
    )  # (coarse, coarse, 3) bilinear gradient
    grid = int(rng.integers(3, 8))
    amplitude = rng.uniform(8, 25)
    blotches = rng.uniform(-1, 1, size=(grid, grid, 3)).astype(np.float32) * amplitude
    field += cv2.resize(blotches, (coarse, coarse), interpolation=cv2.INTER_CUBIC)
    field = np.clip(field, 0, 255)
    image = cv2.resize(field, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.rint(image).astype(np.uint8)


def _draw_clutter(rng: np.random.Generator, image: np.ndarray) -> None:
    """Draw a few stray straight lines and thin open curves of random colours.

    Line widths are 1..3 pixels at 256 pixels per side, scaled with the image.
    """
    size = image.shape[0]
    for _ in range(int(rng.integers(2, 8))):
        ends = rng.uniform(-0.1 * size, 1.1 * size, size=(4, 2))  # control points, xy
        if rng.random() < 0.4:
            points = ends[[0, 3]]
        else:
            points = _bezier(ends, 40)
        colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
        thickness = max(1, round(int(rng.choice([1, 1, 2, 2, 3])) * size / 256))
        cv2.polylines(
            image, [_fixed_point(points)], False, colour, thickness, cv2.LINE_AA,
            _SUBPIXEL_BITS,
        )


def _bezier(control: np.ndarray, steps: int) -> np.ndarray:
    """Points (steps, 2) along the cubic Bezier curve of 4 control points (4, 2)."""
    t = np.linspace(0.0, 1.0, steps)[:, None]
    weights = [(1 - t) ** 3, 3 * t * (1 - t) ** 2, 3 * t**2 * (1 - t), t**3]
    return sum(w * p for w, p in zip(weights, control))


def _add_noise(rng: np.random.Generator, image: np.ndarray) -> None:
    """Add per-pixel Gaussian noise of a random strength, in place.

    Drawing ~200k normal variates dominates the cost of an image, so each random
    byte is mapped through a table of 256 Gaussian quantiles instead: the same
    distribution at 8-bit resolution, several times faster.
    """
    sigma = rng.uniform(2, 10)
    table = np.rint(_GAUSS_QUANTILES * sigma).astype(np.int16)  # (256,)
    codes = np.frombuffer(rng.bytes(image.size), np.uint8).reshape(image.shape)
    noisy = cv2.add(image, table[codes], dtype=cv2.CV_8U)  # saturates to 0..255
    image[:] = noisy


# --------------------------------------------------------------------------- objects


def _place_object(
    rng: np.random.Generator,
    cfg: ShapesConfig,
    image: np.ndarray,
    owner: np.ndarray,
    placed: list[_Placed],
) -> _Placed | None:
    """Draw one object where it obeys the border and occlusion rules, or give up.

    Class, size and outline are fixed first; only rotation and position are redrawn
    on each attempt, so rejections do not bias the size distribution much.
    """
    class_index = int(rng.integers(len(SHAPE_CLASSES)))
    if cfg.size_distribution == "uniform":
        side = rng.uniform(cfg.min_size, cfg.max_size)
    else:
        side = math.exp(rng.uniform(math.log(cfg.min_size), math.log(cfg.max_size)))
    outline = bool(rng.random() < _OUTLINE_PROB)
    aspect = rng.uniform(*_SQUARE_ASPECT) if SHAPE_CLASSES[class_index] == "square" else 1.0
    star_inner = rng.uniform(0.38, 0.5)

    for _ in range(_PLACE_ATTEMPTS):
        polygon = _unit_polygon(SHAPE_CLASSES[class_index], aspect, star_inner)
        polygon = _rotate(polygon, rng.uniform(0, 2 * math.pi))
        polygon = _fit_size(polygon, side, cfg.min_size, cfg.max_size)
        extent = polygon.max(axis=0) - polygon.min(axis=0)  # (w, h) in pixels
        centre = rng.uniform(0.3 * extent, image.shape[0] - 0.3 * extent)  # (x, y)
        box_centre = (polygon.max(axis=0) + polygon.min(axis=0)) / 2
        raster = _rasterise(polygon - box_centre + centre, outline)
        obj = _try_commit(rng, raster, class_index + 1, image, owner, placed)
        if obj is not None:
            return obj
    return None


def _unit_polygon(name: str, aspect: float, star_inner: float) -> np.ndarray:
    """The shape's outline (K, 2) as xy points around the origin, about unit size."""
    if name == "circle":
        angles = np.linspace(0, 2 * math.pi, 64, endpoint=False)
        return 0.5 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    if name == "square":
        w, h = math.sqrt(aspect), 1 / math.sqrt(aspect)
        return 0.5 * np.array([[-w, -h], [w, -h], [w, h], [-w, h]])
    if name == "triangle":
        angles = -math.pi / 2 + np.arange(3) * 2 * math.pi / 3
        return 0.5 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    if name == "star":
        angles = -math.pi / 2 + np.arange(10) * math.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, 0.5, 0.5 * star_inner)
        return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    raise ValueError(f"unknown shape {name!r}")


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    """Rotate xy points (K, 2) about the origin by ``angle`` radians."""
    c, s = math.cos(angle), math.sin(angle)
    return points @ np.array([[c, s], [-s, c]])


def _fit_size(
    polygon: np.ndarray, side: float, min_size: float, max_size: float
) -> np.ndarray:
    """Scale so the drawn box's sides have geometric mean ``side``, both in [min, max].

    Rasterised, a polygon covers 0..2.5 (on average ~1) more pixels per axis than its
    continuous extent, so the extent aims one pixel short of ``side`` and the limits
    are set so the drawn box stays inside [min_size, max_size].
    """
    w, h = polygon.max(axis=0) - polygon.min(axis=0)
    scale = (side - 1.0) / math.sqrt(w * h)
    scale = max(scale, min_size / min(w, h))
    scale = min(scale, (max_size - _RASTER_GROWTH) / max(w, h))
    return polygon * scale


def _fixed_point(points: np.ndarray) -> np.ndarray:
    """xy points (K, 2) in pixels as cv2's fixed-point int32 coordinates."""
    return np.rint(points * (1 << _SUBPIXEL_BITS)).astype(np.int32)


def _rasterise(polygon: np.ndarray, outline: bool) -> _Raster:
    """Draw the polygon (image xy, cv2 pixel-centre convention) into its own patch."""
    x0, y0 = np.floor(polygon.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(polygon.max(axis=0)).astype(int) + 2
    local = _fixed_point(polygon - (x0, y0))
    fill = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    cv2.fillPoly(fill, [local], 255, cv2.LINE_AA, _SUBPIXEL_BITS)
    mask = fill >= 128
    edge = None
    if outline:
        edge = np.zeros_like(fill)
        cv2.polylines(edge, [local], True, 255, 1, cv2.LINE_AA, _SUBPIXEL_BITS)
        mask |= edge >= 128
    return _Raster(int(x0), int(y0), fill, edge, mask)


def _try_commit(
    rng: np.random.Generator,
    raster: _Raster,
    category_id: int,
    image: np.ndarray,
    owner: np.ndarray,
    placed: list[_Placed],
) -> _Placed | None:
    """Draw the raster if it obeys the border and occlusion rules; else return None."""
    size = image.shape[0]
    ph, pw = raster.mask.shape
    # The part of the patch inside the image, in image and in patch coordinates.
    ix0, iy0 = max(raster.x0, 0), max(raster.y0, 0)
    ix1, iy1 = min(raster.x0 + pw, size), min(raster.y0 + ph, size)
    if ix0 >= ix1 or iy0 >= iy1:
        return None
    local = np.s_[iy0 - raster.y0 : iy1 - raster.y0, ix0 - raster.x0 : ix1 - raster.x0]
    region = np.s_[iy0:iy1, ix0:ix1]
    inside = raster.mask[local]
    area = int(inside.sum())
    if area == 0 or area < _MIN_INSIDE_FRAC * raster.mask.sum():
        return None

    # Occlusion: every earlier object keeps at least half of its pixels visible.
    hidden = np.bincount(owner[region][inside], minlength=len(placed) + 1)
    for k, obj in enumerate(placed, start=1):
        if hidden[k] and obj.visible - hidden[k] < _MIN_VISIBLE_FRAC * obj.area:
            return None
    for k, obj in enumerate(placed, start=1):
        obj.visible -= int(hidden[k])
    owner[region][inside] = len(placed) + 1

    colour = _pick_colour(rng, image[region][inside].mean(axis=0))
    _blend(image[region], raster.fill[local], colour)
    if raster.outline is not None:
        _blend(image[region], raster.outline[local], colour * rng.uniform(0.35, 0.6))

    rows, cols = np.nonzero(inside)
    box = (
        float(ix0 + cols.min()),
        float(iy0 + rows.min()),
        float(cols.max() - cols.min() + 1),
        float(rows.max() - rows.min() + 1),
    )
    return _Placed(category_id, box, area, area)


def _pick_colour(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    """A random RGB colour (3,) far from ``under``, the mean colour beneath the shape."""
    best, best_dist = None, -1.0
    for _ in range(_COLOUR_ATTEMPTS):
        colour = rng.uniform(0, 255, 3)
        dist = float(np.linalg.norm(colour - under))
        if dist >= _MIN_COLOUR_DIST:
            return colour
        if dist > best_dist:
            best, best_dist = colour, dist
    return best


def _blend(region: np.ndarray, coverage: np.ndarray, colour: np.ndarray) -> None:
    """Paint ``colour`` over an image region (h, w, 3) with 0..255 coverage (h, w)."""
    alpha = coverage.astype(np.float32)[:, :, None] / 255.0
    mixed = region * (1 - alpha) + colour.astype(np.float32) * alpha
    region[:] = np.rint(mixed).astype(np.uint8)
