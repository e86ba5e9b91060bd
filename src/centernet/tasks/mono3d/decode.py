"""Turn the monocular 3D heads' output maps into 3D boxes, and write them as KITTI rows.

Follows the original's ``ddd_decode`` and ``ddd_post_process`` (with the corrections listed below):

1. peaks, top-K, 2D boxes, scores and classes exactly as detections;
2. read at each peak: depth ``1 / sigmoid(x) - 1`` (= ``exp(-x)``), dimensions h w l, and the
   observation angle ``alpha`` from the 8 orientation channels (:func:`decode_alpha`);
3. with a camera (``calib``, P2): the image point ``peak + offset`` is unprojected at that depth
   (:func:`unproject_to_camera`), moved to the box bottom (``y + h/2``, KITTI's location), and
   ``rotation_y = alpha + atan2(x, z)`` of that location (:func:`alpha_to_rotation_y`);
4. with a corners head, the heading is instead the one whose box, at that location and size, best reprojects
   onto the 8 predicted corners (:func:`fit_rotation_y`), and alpha follows from it.

Differences from the original: ``alpha`` uses ``atan2(sin, cos)`` (the original's ``get_alpha``
uses ``arctan(sin / cos)``, which folds a residual beyond +-pi/2 onto the opposite direction;
CenterTrack later switched to ``atan2``); the unprojection is solved exactly for P2 = K [I | t]
with the depth being the label's z (the original takes the depth as camera 2's own z and
subtracts ``P2[2, 3]``, 3 mm on KITTI); the ray angle in ``rotation_y`` is ``atan2(x, z)`` of the
unprojected location (the original's ``atan2(u - cx, fx)`` is the same ray seen from camera 2,
see :func:`alpha_to_rotation_y`).

No flip test-time augmentation for 3D: mirroring the image needs the calibration mirrored too
(``cx -> W - cx``, ``t_x -> -t_x``) and ``alpha -> pi - alpha``, and it is not part of the
original's 3D test.

Batched tensor code with no per-image or per-object Python loop (except :func:`detections_to_kitti`).
Shapes: B batch, C classes, h, w output size, K detections per image.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ...data.kitti import KittiObject
from ...ops.camera import box_corners_batched, wrap_angle
from ...ops.peaks import find_peaks, gather_at_index
from ..detection.decode import boxes_at_peaks
from .targets import BIN_CENTRES, NUM_BINS

__all__ = [
    "alpha_from_crop_values",
    "alpha_to_rotation_y",
    "decode_alpha",
    "decode_mono3d",
    "depth_from_logits",
    "detections_to_kitti",
    "fit_rotation_y",
    "pooled_depth",
    "project_to_image",
    "unproject_to_camera",
    "wrap_angle",
]

MAX_DEPTH_LOGIT = math.log(1e6)  # depth_from_logits caps depth at 1e6 m, as the original's sigmoid + 1e-6


def depth_from_logits(x: torch.Tensor) -> torch.Tensor:
    """Depth (metres) from the depth head: ``1 / sigmoid(x) - 1``, computed as the identical ``exp(-x)``.

    ``1 / sigmoid(x) = 1 + exp(-x)``, so no division and no epsilon are needed; ``x`` is clamped
    at ``-log(1e6)`` (depth at most 1e6, where the original's ``1 / (sigmoid + 1e-6)`` saturates)
    so it never overflows. The inverse is ``x = -log(depth)``.
    """
    return torch.exp(-x.float().clamp(min=-MAX_DEPTH_LOGIT))


def decode_alpha(orientation: torch.Tensor) -> torch.Tensor:
    """Observation angles (...,) in [-pi, pi) from the 8 orientation values (..., 8), or from the 24 of the
    multibin form (..., 24): 12 bin logits, then 12 residuals; the best bin's centre plus its residual.

    Layout ``[b0 logit0, b0 logit1, sin0, cos0, b1 logit0, b1 logit1, sin1, cos1]``; logit1 of a
    bin says "alpha is in this bin". Bin 0 when ``orientation[1] > orientation[5]``, else bin 1
    (as the original), and ``alpha = atan2(sin_b, cos_b) + centre_b`` with centres -pi/2, +pi/2.
    """
    orientation = orientation.float()
    if orientation.shape[-1] == 2 * NUM_BINS:
        best = orientation[..., :NUM_BINS].argmax(-1, keepdim=True)  # (..., 1)
        residual = torch.gather(orientation[..., NUM_BINS:], -1, best)[..., 0]
        return wrap_angle(best[..., 0].to(residual.dtype) * (2 * math.pi / NUM_BINS) + residual)
    alpha0 = torch.atan2(orientation[..., 2], orientation[..., 3]) + BIN_CENTRES[0]
    alpha1 = torch.atan2(orientation[..., 6], orientation[..., 7]) + BIN_CENTRES[1]
    return wrap_angle(torch.where(orientation[..., 1] > orientation[..., 5], alpha0, alpha1))


def alpha_from_crop_values(values: torch.Tensor) -> torch.Tensor:
    """Observation angles (...,) in [-pi, pi) from the object head's (..., 4): cos and sin of alpha (the direction),
    cos and sin of 2 alpha (the axis). The axis, ``atan2(sin 2a, cos 2a) / 2``, turned by pi where the direction
    points the other way: the axis is what a bird's-eye box needs and is learnt first."""
    values = values.float()
    direction = torch.atan2(values[..., 1], values[..., 0])
    axis = 0.5 * torch.atan2(values[..., 3], values[..., 2])
    return wrap_angle(torch.where(torch.cos(direction - axis) < 0, axis + math.pi, axis))


def project_to_image(points: torch.Tensor, calib: torch.Tensor) -> torch.Tensor:
    """Camera points (B, N, 3) -> image points (B, N, 2) with per-image P2 (B, 3, 4).

    ``(u, v) = (P [X; 1])_{xy} / (P [X; 1])_z``.
    """
    calib = calib.to(points.dtype)
    image = points @ calib[:, :, :3].transpose(1, 2) + calib[:, None, :, 3]  # (B, N, 3)
    return image[..., :2] / image[..., 2:3]


def unproject_to_camera(points: torch.Tensor, depth: torch.Tensor, calib: torch.Tensor) -> torch.Tensor:
    """Image points (B, N, 2) at depths z (B, N) -> camera points (B, N, 3), the inverse of :func:`project_to_image`.

    P2 = K [I | t] with K upper triangular (fx, s, cx; 0, fy, cy; 0, 0, 1), so
    P2 = [[fx, s, cx, P03], [0, fy, cy, P13], [0, 0, 1, P23]]. A point (x, y, z) projects to
    ``u = (fx x + s y + cx z + P03) / w``, ``v = (fy y + cy z + P13) / w`` with ``w = z + P23``.
    Given u, v and z (the label's depth, in the rectified frame of the labels, not the camera's
    own z = w), solve from the last row up::

        w = z + P23
        y = (v w - P12 z - P13) / P11
        x = (u w - P01 y - P02 z - P03) / P00

    For KITTI's P2 (s = 0) this is the original's ``unproject_2d_to_3d`` except that it uses
    ``w = z + P23`` where the original puts ``z = depth - P23``.
    """
    p = calib.to(points.dtype)[:, None]  # (B, 1, 3, 4)
    u, v, z = points[..., 0], points[..., 1], depth.to(points.dtype)
    w = z + p[..., 2, 3]
    y = (v * w - p[..., 1, 2] * z - p[..., 1, 3]) / p[..., 1, 1]
    x = (u * w - p[..., 0, 1] * y - p[..., 0, 2] * z - p[..., 0, 3]) / p[..., 0, 0]
    return torch.stack([x, y, z], dim=-1)


def alpha_to_rotation_y(alpha: torch.Tensor, location: torch.Tensor) -> torch.Tensor:
    """``rotation_y = alpha + atan2(x, z)`` wrapped to [-pi, pi): alpha (B, K), location (B, K, 3).

    KITTI's ``alpha = rotation_y - atan2(x, z)`` (the angle of the object seen along the ray to
    its centre). The original writes the ray angle as ``atan2(u - cx, fx)`` of the image point,
    which is the same ray in camera 2's own frame: it differs from ``atan2(x, z)`` of the labels'
    rectified frame by P2's baseline ``t_x`` (6 cm on KITTI, under 0.003 rad at 20 m).
    """
    return wrap_angle(alpha + torch.atan2(location[..., 0], location[..., 2]))


def pooled_depth(depth: torch.Tensor, heatmap: torch.Tensor, kernel: int = 3) -> torch.Tensor:
    """The depth head (B, 1 or 2, h, w) with its depth channel replaced by the weighted mean of each pixel's
    ``kernel`` x ``kernel`` neighbourhood; heatmap (B, C, h, w) logits.

    For a model that learnt the depth at every pixel of each object's Gaussian (``regress_at="gaussian"``): the
    pixels around a peak are as many estimates of its object's depth. Each counts by its heatmap score (how much it
    is an object's pixel: a neighbour outside a small object's one-pixel peak counts for next to nothing) and, with
    a Laplacian scale b in the second channel, by 1 / b^2 (how sure it is). Averaged as ``-log depth``, the scale
    channel left as it is (BENCHMARKS.md, "Monocular 3D": better at IoU 0.7 after 30 minutes, not after 8).
    """
    depth = depth.float()
    weight = torch.sigmoid(heatmap.float()).amax(dim=1, keepdim=True)  # (B, 1, h, w)
    if depth.shape[1] == 2:
        weight = weight * torch.exp(-2 * depth[:, 1:2].clamp(-10.0, 10.0))
    pad = kernel // 2
    total = F.avg_pool2d(weight * depth[:, :1], kernel, stride=1, padding=pad)
    mean = total / F.avg_pool2d(weight, kernel, stride=1, padding=pad).clamp(min=1e-12)  # (B, 1, h, w)
    return torch.cat([mean, depth[:, 1:]], dim=1)


def decode_mono3d(outputs: dict[str, torch.Tensor], k: int = 100, fixed_k: bool = False,
                  pool_depth: bool = False) -> dict[str, torch.Tensor]:
    """Top-K 3D detections in output-map coordinates (the camera lift is :func:`lift_to_3d`, in original pixels).

    outputs: heatmap (B, C, h, w) logits, depth (B, 1, h, w) (or (B, 2, h, w): -log depth and the log of its
    Laplacian scale, which then scales the scores by exp(-scale), the depth's confidence, and re-sorts them),
    dimensions (B, 3, h, w), orientation (B, 8, h, w), size (B, 2, h, w), offset (B, 2, h, w).

    Returns, sorted by score: boxes (B, K, 4) xyxy, scores (B, K), labels (B, K) int64,
    centres (B, K, 2) the image points ``peak + offset``, depth (B, K), dimensions (B, K, 3)
    h w l, alpha (B, K). ``fixed_k``: exactly K rows at any map size (an exported graph). ``pool_depth``: each
    depth is read off :func:`pooled_depth`'s map.
    """
    scores, labels, pixel, xs, ys = find_peaks(outputs["heatmap"], k, fixed_k)  # (B, K) each
    boxes = boxes_at_peaks(outputs, pixel, xs, ys)  # (B, K, 4)
    offset = gather_at_index(outputs["offset"].float(), pixel)  # (B, K, 2)
    centres = torch.stack([xs, ys], dim=-1) + offset  # (B, K, 2)
    depth_map = pooled_depth(outputs["depth"], outputs["heatmap"]) if pool_depth else outputs["depth"].float()
    depth_maps = gather_at_index(depth_map, pixel)  # (B, K, 1), or (B, K, 2) with an uncertainty
    depth = depth_from_logits(depth_maps[..., 0])  # (B, K)
    dimensions = gather_at_index(outputs["dimensions"].float(), pixel)  # (B, K, 3)
    if "orientation" in outputs:
        alpha = decode_alpha(gather_at_index(outputs["orientation"], pixel))  # (B, K)
    else:  # orientation="crop": the object head's, filled in by alpha_from_crop_values
        alpha = torch.zeros_like(depth)
    dets = {"boxes": boxes, "scores": scores, "labels": labels, "centres": centres, "depth": depth,
            "dimensions": dimensions, "alpha": alpha}
    if "corners" in outputs:  # the 8 projected corners: the centre point plus their offsets
        offsets = gather_at_index(outputs["corners"].float(), pixel)  # (B, K, 16)
        dets["corners"] = centres[:, :, None, :] + offsets.unflatten(-1, (8, 2))  # (B, K, 8, 2)
    if depth_maps.shape[-1] == 2:  # a Laplacian depth: the score is the peak's times the depth's confidence
        sigma = torch.exp(depth_maps[..., 1].clamp(max=MAX_DEPTH_LOGIT))  # (B, K) of log-depth
        dets["scores"] = scores * torch.exp(-sigma)
        order = torch.argsort(dets["scores"], dim=1, descending=True)  # (B, K)
        dets = {name: torch.gather(value, 1, order.view(*order.shape, *(1,) * (value.dim() - 2)).expand_as(value))
                for name, value in dets.items()}
    return dets


def lift_to_3d(
    centres: torch.Tensor,     # (B, K, 2) image points of the 3D centres, in calib's pixels
    depth: torch.Tensor,       # (B, K)
    dimensions: torch.Tensor,  # (B, K, 3) h w l
    alpha: torch.Tensor,       # (B, K)
    calib: torch.Tensor,       # (B, 3, 4) P2
    corners: torch.Tensor | None = None,  # (B, K, 8, 2) predicted image points of the box corners, calib's pixels
) -> dict[str, torch.Tensor]:
    """location (B, K, 3): the unprojected centre moved down by h/2 to the box bottom; rotation_y (B, K) from
    alpha, or with ``corners`` the heading fitted to them (:func:`fit_rotation_y`), and then alpha (B, K) too."""
    centre3d = unproject_to_camera(centres.double(), depth.double(), calib.double())  # (B, K, 3)
    location = centre3d + torch.stack([torch.zeros_like(depth), dimensions[..., 0] / 2, torch.zeros_like(depth)],
                                      dim=-1).double()
    if corners is None:
        rotation_y = alpha_to_rotation_y(alpha.double(), location)
        return {"location": location.to(centres.dtype), "rotation_y": rotation_y.to(alpha.dtype)}
    rotation_y = fit_rotation_y(corners.double(), location, dimensions.double(), calib.double())
    alpha = wrap_angle(rotation_y - torch.atan2(location[..., 0], location[..., 2]))
    return {"location": location.to(centres.dtype), "rotation_y": rotation_y.to(centres.dtype),
            "alpha": alpha.to(centres.dtype)}


# The heading search: every 5 degrees, then two finer passes around the best (to about 0.05 degrees).
_FIT_STEPS = ((72, math.pi), (11, math.radians(2.5)), (11, math.radians(0.25)))


def fit_rotation_y(
    corners: torch.Tensor,     # (B, K, 8, 2) image points of the corners
    location: torch.Tensor,    # (B, K, 3) bottom centres
    dimensions: torch.Tensor,  # (B, K, 3) h w l
    calib: torch.Tensor,       # (B, 3, 4) P2
) -> torch.Tensor:
    """The heading rotation_y (B, K) in [-pi, pi) whose box (at ``location``, of ``dimensions``) projects its
    corners nearest to ``corners`` (sum of the 8 distances), found by a grid search refined twice (RTM3D fits
    the whole box by Gauss-Newton; with location and size given, one angle is left and a search cannot diverge)."""
    b, k = location.shape[:2]
    best = torch.zeros(b, k, dtype=location.dtype, device=location.device)
    for count, half_range in _FIT_STEPS:
        full_turn = half_range == math.pi
        steps = torch.linspace(-half_range, half_range, count + int(full_turn), dtype=location.dtype,
                               device=location.device)[: count]  # (N,) a full turn leaves out its duplicate end
        angles = (steps if full_turn else best[..., None] + steps).expand(b, k, count)  # (B, K, N)
        boxes = box_corners_batched(dimensions[:, :, None].expand(b, k, count, 3),
                                    location[:, :, None].expand(b, k, count, 3), angles)  # (B, K, N, 8, 3)
        points = project_to_image(boxes.reshape(b, -1, 3), calib).reshape(b, k, count, 8, 2)
        error = (points - corners[:, :, None]).norm(dim=-1).sum(-1)  # (B, K, N)
        error = torch.nan_to_num(error, nan=math.inf)
        best = torch.gather(angles, 2, error.argmin(-1, keepdim=True))[..., 0]
    return wrap_angle(best)


def detections_to_kitti(
    dets: dict[str, torch.Tensor | np.ndarray],
    class_names: Sequence[str],
    score_threshold: float = 0.0,
) -> list[KittiObject]:
    """One image's detections (each entry without the batch axis: boxes (K, 4) in original pixels,
    scores (K,), labels (K,), dimensions (K, 3), location (K, 3), rotation_y (K,), alpha (K,))
    -> KITTI result rows, for those with ``score > score_threshold``.

    ``truncated`` and ``occluded`` are written as 0 (KITTI's evaluation ignores them in results).
    """
    if "location" not in dets or "rotation_y" not in dets:
        raise ValueError("detections_to_kitti: the detections have no location / rotation_y; decode with calib")
    values = {name: np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v, np.float64)
              for name, v in dets.items()}
    rows = []
    for n in np.flatnonzero(values["scores"].reshape(-1) > score_threshold):
        rows.append(KittiObject(
            type=class_names[int(values["labels"][n])], truncated=0.0, occluded=0,
            alpha=float(values["alpha"][n]), box=tuple(float(v) for v in values["boxes"][n]),
            dimensions=tuple(float(v) for v in values["dimensions"][n]),
            location=tuple(float(v) for v in values["location"][n]),
            rotation_y=float(values["rotation_y"][n]), score=float(values["scores"][n]),
        ))
    return rows
