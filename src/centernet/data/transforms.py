"""Affine pre-processing shared by training and inference.

Every sample is warped once by a 2x3 affine map (scale + translation, optionally a
flip): image and boxes by the same matrix. Matrices act on continuous coordinates, in
which pixel i spans [i, i + 1) (COCO's convention for boxes); ``warp_image`` converts
to OpenCV's convention (pixel centres at integers), so image and boxes stay aligned to
the sub-pixel. At test time the whole image is fitted into
the square input keeping its aspect ratio; the inverse map sends predicted boxes back
to original image pixels exactly.
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


@dataclass
class AugmentConfig:
    """Training-time augmentation (the original's random-crop variant)."""

    random_crop: bool = True     # False: the whole image, letterboxed as at test time (then only the flip)

    scale_min: float = 0.6       # random scale in {scale_min, scale_min + 0.1, ..., scale_max} x max(h, w)
    scale_max: float = 1.3
    border: int = 128            # keep the random centre this far from the edges (halved until it fits)
    flip: float = 0.5            # horizontal flip probability


def letterbox_matrix(width: int, height: int, input_size: int) -> np.ndarray:
    """Test-time map: the whole image into a square input, aspect ratio kept, centred."""
    return affine_matrix((width / 2, height / 2), max(width, height), (input_size, input_size))


def random_affine(
    width: int, height: int, input_size: int, cfg: AugmentConfig, rng: np.random.Generator
) -> np.ndarray:
    """Training map: random scale in {0.6, 0.7, ..., 1.3} x max(h, w), a random centre kept off the border."""
    if not cfg.random_crop:
        matrix = letterbox_matrix(width, height, input_size)
        return compose(flip_matrix(input_size), matrix) if rng.random() < cfg.flip else matrix
    scales = np.arange(cfg.scale_min, cfg.scale_max + 1e-6, 0.1)
    scale = max(width, height) * float(rng.choice(scales))
    cx = rng.integers(_low(cfg.border, width), width - _low(cfg.border, width) + 1)
    cy = rng.integers(_low(cfg.border, height), height - _low(cfg.border, height) + 1)
    matrix = affine_matrix((float(cx), float(cy)), scale, (input_size, input_size))
    if rng.random() < cfg.flip:
        matrix = compose(flip_matrix(input_size), matrix)
    return matrix


def _low(border: int, size: int) -> int:
    """The original's get_border: halve the border until the range [border, size - border] is not empty."""
    i = 1
    while size - border // i <= border // i:
        i *= 2
    return border // i
