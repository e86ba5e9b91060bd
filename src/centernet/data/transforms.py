"""Affine pre-processing shared by training and inference.

Every sample is warped once by a 2x3 affine map (scale + translation, optionally a
flip): image and boxes by the same matrix. Matrices act on continuous coordinates, in
which pixel i spans [i, i + 1) (COCO's convention for boxes); ``warp_image`` converts
to OpenCV's convention (pixel centres at integers), so image and boxes stay aligned to
the sub-pixel. At test time the whole image is fitted into
the square input keeping its aspect ratio (letterbox), or kept at its own resolution
on a canvas padded to a multiple of 32 (``keep_resolution``; at the top-left, or centred
as the original does); the inverse map sends predicted boxes back to original image
pixels exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def affine_matrix(center: tuple[float, float], scale: float, output_size: tuple[int, int]) -> np.ndarray:
    """2x3 map sending a square of side ``scale`` centred at ``center`` onto an output (w, h).

    The square is fitted to the output's width and centred in both directions.
    """
    out_w, out_h = output_size
    k = out_w / scale
    cx, cy = center
    return np.array([[k, 0.0, out_w / 2 - k * cx], [0.0, k, out_h / 2 - k * cy]], np.float64)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine map."""
    return cv2.invertAffineTransform(matrix.astype(np.float64))


def flip_matrix(width: int) -> np.ndarray:
    """2x3 map mirroring an image of the given width: x -> width - x (continuous coordinates)."""
    return np.array([[-1.0, 0.0, float(width)], [0.0, 1.0, 0.0]])


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The 2x3 map 'first b, then a'."""
    a3 = np.vstack([a, [0, 0, 1]])
    b3 = np.vstack([b, [0, 0, 1]])
    return (a3 @ b3)[:2]


def to_output_matrix(to_input: np.ndarray, stride: int = 4) -> np.ndarray:
    """Compose an image -> network-input map with the network's downsampling to the output map."""
    return compose(np.array([[1.0 / stride, 0.0, 0.0], [0.0, 1.0 / stride, 0.0]]), to_input)


def warp_image(image: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Warp an (H, W, 3) image into (size[1], size[0], 3) with bilinear sampling, black border.

    ``matrix`` acts on continuous coordinates; OpenCV's pixel centres sit at integers,
    so its translation is shifted by L @ (0.5, 0.5) - (0.5, 0.5).
    """
    m = matrix.astype(np.float64).copy()
    m[:, 2] += m[:, :2] @ np.array([0.5, 0.5]) - 0.5
    return cv2.warpAffine(image, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def warp_boxes(boxes: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map (N, 4) xyxy boxes through a scale/translate/flip affine map; keeps x1 <= x2, y1 <= y2."""
    if len(boxes) == 0:
        return boxes.reshape(0, 4).astype(np.float32)
    pts = boxes.reshape(-1, 2).astype(np.float64)
    pts = pts @ matrix[:, :2].T + matrix[:, 2]
    pts = pts.reshape(-1, 4)
    x1, x2 = np.minimum(pts[:, 0], pts[:, 2]), np.maximum(pts[:, 0], pts[:, 2])
    y1, y2 = np.minimum(pts[:, 1], pts[:, 3]), np.maximum(pts[:, 1], pts[:, 3])
    return np.stack([x1, y1, x2, y2], 1).astype(np.float32)


def clip_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """Clip (N, 4) xyxy boxes to [0, width] x [0, height]."""
    out = boxes.copy()
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    return out


AUGMENT_MODES = ("crop", "shift_scale", "none")


@dataclass
class AugmentConfig:
    """Training-time augmentation: one affine warp (``mode``), a flip, and colour jitter.

    ``mode``:
      * ``"crop"``: the original's default (random crop): scale in {scale_min, ..., scale_max}
        x max(h, w) in steps of 0.1, centre drawn uniformly at least ``border`` px off the edges;
      * ``"shift_scale"``: the original's ``not_rand_crop`` variant: centre shifted by
        max(h, w) x clip(N(0, shift), -2 shift, 2 shift) in x and y, side max(h, w) x
        clip(N(1, scale), 1 - scale, 1 + scale);
      * ``"none"``: the whole image, letterboxed as at test time (then only the flip).
    """

    mode: str = "crop"
    scale_min: float = 0.6       # crop: random scale in {scale_min, scale_min + 0.1, ..., scale_max} x max(h, w)
    scale_max: float = 1.3
    border: int = 128            # crop: keep the random centre this far from the edges (halved until it fits)
    shift: float = 0.1           # shift_scale: std of the centre shift, a fraction of max(h, w), clipped at 2x
    scale: float = 0.4           # shift_scale: std of the relative scale, clipped to [1 - scale, 1 + scale]
    flip: float = 0.5            # horizontal flip probability
    color: bool = True           # brightness/contrast/saturation + PCA lighting (see data/augment.py)

    def __post_init__(self) -> None:
        if self.mode not in AUGMENT_MODES:
            raise ValueError(f"augment mode {self.mode!r} is not one of {AUGMENT_MODES}")


def letterbox_matrix(width: int, height: int, input_size: int) -> np.ndarray:
    """Test-time map: the whole image into a square input, aspect ratio kept, centred."""
    return affine_matrix((width / 2, height / 2), max(width, height), (input_size, input_size))


def padded_size(width: int, height: int, multiple: int = 32) -> tuple[int, int]:
    """(W, H) rounded up to the next multiple of ``multiple`` (an exact multiple stays as it is)."""
    return (-(-width // multiple) * multiple, -(-height // multiple) * multiple)


#: Canvas styles of test-time ``keep_resolution``.
PAD_STYLES = ("corner", "original")


def keep_resolution_canvas(
    width: int, height: int, multiple: int = 32, style: str = "corner"
) -> tuple[tuple[int, int], np.ndarray]:
    """Canvas (W', H') and the image -> canvas map for testing at the image's own resolution.

    ``corner``: sides rounded up to a multiple of ``multiple``, the image at the top-left (the
    map is the identity, so a canvas padded further, to a batch's largest, keeps it).
    ``original``: the original CenterNet's ``keep_res``: each side becomes
    ``(side | (multiple - 1)) + 1`` (always at least one pixel of padding) and the image is
    centred, at ``(W' // 2 - width // 2, H' // 2 - height // 2)`` (a whole-pixel shift).
    """
    if style == "corner":
        return padded_size(width, height, multiple), np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    if style == "original":
        canvas = ((width | (multiple - 1)) + 1, (height | (multiple - 1)) + 1)
        dx, dy = canvas[0] // 2 - width // 2, canvas[1] // 2 - height // 2
        return canvas, np.array([[1.0, 0.0, float(dx)], [0.0, 1.0, float(dy)]])
    raise ValueError(f"padding style {style!r}; expected one of {PAD_STYLES}")


def keep_resolution_matrix() -> np.ndarray:
    """Test-time map at the image's own resolution, ``corner`` style: the identity."""
    return keep_resolution_canvas(1, 1)[1]


def pad_image(image: np.ndarray, size: tuple[int, int], at: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Place an (H, W, C) image with its top-left at ``at`` = (x, y) on a zero canvas (size[1], size[0], C)."""
    h, w = image.shape[:2]
    if (w, h) == tuple(size) and tuple(at) == (0, 0):
        return image
    x, y = at
    canvas = np.zeros((size[1], size[0]) + image.shape[2:], image.dtype)
    canvas[y : y + h, x : x + w] = image
    return canvas


def random_affine(
    width: int, height: int, input_size: int | tuple[int, int], cfg: AugmentConfig, rng: np.random.Generator
) -> np.ndarray:
    """Training map image -> input, by ``cfg.mode``, then a random flip.

    ``input_size``: the side of a square input, or (W, H) of a rectangular one (wide images such as
    KITTI's); the crop modes scale the square of side ``scale`` onto the input's width, as the original.
    """
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if cfg.mode == "none":
        matrix = letterbox_rect_matrix(width, height, size)
    else:
        if cfg.mode == "crop":
            center, scale = _random_crop(width, height, cfg, rng)
        else:
            center, scale = _shift_scale(width, height, cfg, rng)
        matrix = affine_matrix(center, scale, size)
    if rng.random() < cfg.flip:
        matrix = compose(flip_matrix(size[0]), matrix)
    return matrix


def letterbox_rect_matrix(width: int, height: int, size: tuple[int, int]) -> np.ndarray:
    """The whole image into an input (W, H), aspect ratio kept, centred (``letterbox_matrix`` when square)."""
    k = min(size[0] / width, size[1] / height)
    return affine_matrix((width / 2, height / 2), size[0] / k, size)


def _random_crop(
    width: int, height: int, cfg: AugmentConfig, rng: np.random.Generator
) -> tuple[tuple[float, float], float]:
    """The original's random crop: (centre, side of the square that fills the input)."""
    scales = np.arange(cfg.scale_min, cfg.scale_max + 1e-6, 0.1)
    scale = max(width, height) * float(rng.choice(scales))
    cx = rng.integers(_low(cfg.border, width), width - _low(cfg.border, width))
    cy = rng.integers(_low(cfg.border, height), height - _low(cfg.border, height))
    return (float(cx), float(cy)), scale


def _shift_scale(
    width: int, height: int, cfg: AugmentConfig, rng: np.random.Generator
) -> tuple[tuple[float, float], float]:
    """The original's shift/scale variant: a normal shift of the image centre and a normal rescale."""
    side = float(max(width, height))
    cf, sf = cfg.shift, cfg.scale
    cx = width / 2 + side * float(np.clip(rng.standard_normal() * cf, -2 * cf, 2 * cf))
    cy = height / 2 + side * float(np.clip(rng.standard_normal() * cf, -2 * cf, 2 * cf))
    scale = side * float(np.clip(rng.standard_normal() * sf + 1, 1 - sf, 1 + sf))
    return (cx, cy), scale


def _low(border: int, size: int) -> int:
    """The original's get_border: halve the border until the range [border, size - border] is not empty."""
    i = 1
    while size - border // i <= border // i:
        i *= 2
    return border // i
