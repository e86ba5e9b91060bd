"""Colour augmentation of training images, as the original CenterNet's ``color_aug``.

On an (H, W, 3) float32 RGB image scaled to [0, 1] (after the affine warp, before the
mean/std normalisation):

1. brightness, contrast and saturation, in a random order, each with a factor
   ``alpha = 1 + U(-0.4, 0.4)``:

   * brightness: ``img = img * alpha``
   * contrast:   ``img = img * alpha + mean(gray) * (1 - alpha)``
   * saturation: ``img = img * alpha + gray * (1 - alpha)``

   where ``gray`` (per pixel) and ``mean(gray)`` are taken once from the image as it
   enters (as the original does: it computes them before the three steps);
2. PCA ("AlexNet") lighting: ``alpha_i ~ N(0, 0.1)`` for the three eigen-components,
   ``img += eigvec @ (alpha * eigval)`` (one RGB offset for the whole image).

No clipping to [0, 1] afterwards (the original does not clip either).

Channel order. The original works on BGR images, and its eigenvector matrix has one
row per BGR channel (row 0 = blue). Our images are RGB, so :data:`EIGVEC_RGB` is that
matrix with its rows reversed (row 0 = red): the offset added to each colour channel is
then exactly the one the original adds to that channel, for the same draws. The gray
weights (0.299 R + 0.587 G + 0.114 B, OpenCV's) are the same in both orders.

The four steps are all linear in (image, gray, 1), so they are folded into
``img = p * img0 + q * gray + r`` (scalars p, q and an RGB vector r) and applied in one
vectorised pass: equal to applying them one after the other up to float rounding.

Everything is drawn from the per-sample generator, so a sample's augmentation is a
function of (seed, epoch, index) only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# ImageNet RGB PCA, as in the original (eigenvalues of the covariance of [0, 1] pixels).
EIGVAL = np.array([0.2141788, 0.01817699, 0.00341571], np.float32)
# The original's eigenvectors, one row per BGR channel (columns: the three components).
EIGVEC_BGR = np.array(
    [
        [-0.58752847, -0.69563484, 0.41340352],
        [-0.5832747, 0.00994535, -0.81221408],
        [-0.56089297, 0.71832671, 0.41158938],
    ],
    np.float32,
)
# The same, one row per RGB channel: rows reversed, so the per-channel offsets match.
EIGVEC_RGB = EIGVEC_BGR[::-1].copy()
# OpenCV's luma weights (COLOR_RGB2GRAY / COLOR_BGR2GRAY), in RGB order.
GRAY_WEIGHTS_RGB = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class ColorAugmentConfig:
    """Strengths of the colour augmentation (the original's values by default)."""

    brightness: float = 0.4   # alpha = 1 + U(-brightness, brightness)
    contrast: float = 0.4
    saturation: float = 0.4
    lighting_std: float = 0.1  # std of the PCA lighting coefficients


def color_augment(
    image: np.ndarray, rng: np.random.Generator, cfg: ColorAugmentConfig = ColorAugmentConfig()
) -> np.ndarray:
    """Colour-jitter an (H, W, 3) float RGB image in [0, 1]; returns a new float32 array.

    Draws, in this order: a permutation of (brightness, contrast, saturation), one
    uniform factor per step in the permuted order, then three normal lighting coefficients.
    """
    image = np.asarray(image, np.float32)
    gray = image @ GRAY_WEIGHTS_RGB  # (H, W)
    gray_mean = float(gray.mean())
    # img = p * img0 + q * gray + r, starting from the identity.
    p, q, r = 1.0, 0.0, np.zeros(3, np.float64)
    strengths = (cfg.brightness, cfg.contrast, cfg.saturation)
    for step in rng.permutation(3):
        alpha = 1.0 + rng.uniform(-strengths[step], strengths[step])
        p, q, r = p * alpha, q * alpha, r * alpha
        if step == 1:    # contrast: blend with the mean gray level
            r = r + gray_mean * (1.0 - alpha)
        elif step == 2:  # saturation: blend with the per-pixel gray
            q = q + (1.0 - alpha)
    coeffs = rng.normal(0.0, cfg.lighting_std, size=3)
    r = r + EIGVEC_RGB.astype(np.float64) @ (EIGVAL * coeffs)
    out = image * np.float32(p)
    if q != 0.0:
        out += (np.float32(q) * gray)[..., None]
    out += r.astype(np.float32)
    return out

