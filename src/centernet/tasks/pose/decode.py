"""Turn the pose heads' output maps into persons with joints, and merge a flip test for pose.

Batched tensor code with no per-image, per-person or per-joint Python loop, so it runs inside
an exported graph. Follows the original's ``multi_pose_decode``:

1. persons are decoded exactly as detections (peak, top-K, size, offset);
2. each person's joints are regressed from its INTEGER peak: ``peak + joint_offset``;
3. every joint channel of the keypoint heatmap gives its own peaks (3x3 max-pool, top-K per
   channel), each placed at ``peak + joint_subpixel``; a peak counts only if its score is
   above ``score_threshold`` (0.1);
4. each regressed joint is moved onto a counting peak of its channel that lies inside the
   person's box (borders included) and within ``max_distance`` (0.3) x max(box width, box height)
   of the regressed position, or keeps its regressed position when there is none. Which peak
   (``JointSnapSettings.peak``):

   * ``"score_distance"`` (the default): the one with the highest
     ``score / (1 + distance / (distance_scale x max(box w, box h)))``, with ``distance_scale`` 1, so
     a strong peak a little farther away beats a weak false one next to the regressed joint, and
     distance decides only between peaks of about the same score (BENCHMARKS.md, "Human pose");
   * ``"nearest"`` (the original's): the nearest counting peak, chosen first and then tested, so a
     nearest peak outside the box is not replaced by a farther one inside it (the paper's wording,
     "closest detected keypoint ... within the bounding box", would be the other way round).

Difference: the original writes a score of 1 for every joint. Here a snapped joint scores its
peak's heatmap probability, and a kept regressed joint the heatmap probability (before peak
suppression) at its integer pixel ``(floor(x), floor(y))``, where its target Gaussian peaks,
or 0 when that pixel is outside the map.

Shapes: B batch, C person classes, J joints, h, w output size, K persons per image (top-K),
P joint peaks per channel (top-P, P = K as the original).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ...ops.flip import merge_flip
from ...ops.peaks import find_peaks, gather_at_index, heatmap_peaks
from ..detection.decode import boxes_at_peaks

__all__ = [
    "JOINT_PEAK_RULES",
    "JointSnapSettings",
    "decode_poses",
    "flip_merge_pose",
    "flip_permutation",
    "snap_joints_to_peaks",
]


# How a regressed joint picks its heatmap peak: the original's first.
JOINT_PEAK_RULES = ("nearest", "score_distance")


@dataclass
class JointSnapSettings:
    """When and where a regressed joint is moved onto a peak of its keypoint heatmap (see the module's step 4)."""

    peak: str = "score_distance"  # "score_distance" (default) or "nearest" (the original's)
    score_threshold: float = 0.1  # a heatmap peak counts only with a probability above this
    max_distance: float = 0.3     # snap only within this fraction of max(box w, box h)
    distance_scale: float = 1.0   # "score_distance": the distance, as a fraction of max(box w, box h), that halves a
                                  # peak's weight (1.0: within max_distance the score decides, distance breaks near-ties)
    kernel: int = 3               # max-pool window that finds the peaks

    def __post_init__(self) -> None:
        if self.peak not in JOINT_PEAK_RULES:
            raise ValueError(f"JointSnapSettings: peak={self.peak!r}; expected one of {JOINT_PEAK_RULES}")
        if self.distance_scale <= 0:
            raise ValueError(f"JointSnapSettings: distance_scale={self.distance_scale!r}; expected > 0")


def decode_poses(
    outputs: dict[str, torch.Tensor], k: int = 100, snap: JointSnapSettings | None = None, fixed_k: bool = False
) -> dict[str, torch.Tensor]:
    """Persons with joints in output-map coordinates (stride 4).

    outputs: heatmap (B, C, h, w) logits, size (B, 2, h, w), offset (B, 2, h, w),
    joint_offset (B, 2J, h, w) as (x, y) per joint, joint_heatmap (B, J, h, w) logits,
    joint_subpixel (B, 2, h, w).
    Returns boxes (B, K, 4) xyxy, scores (B, K), labels (B, K) int64, sorted by score, and
    keypoints (B, K, J, 3) as (x, y, score). ``fixed_k``: exactly K rows at any map size (an exported graph).
    """
    snap = snap or JointSnapSettings()
    scores, labels, pixel, xs, ys = find_peaks(outputs["heatmap"], k, fixed_k)  # (B, K) each
    boxes = boxes_at_peaks(outputs, pixel, xs, ys)  # (B, K, 4)
    b, k = pixel.shape
    joint_offset = gather_at_index(outputs["joint_offset"].float(), pixel)  # (B, K, 2J)
    regressed = joint_offset.reshape(b, k, -1, 2) + torch.stack([xs, ys], dim=-1)[:, :, None, :]  # (B, K, J, 2)
    keypoints = snap_joints_to_peaks(regressed, boxes, outputs["joint_heatmap"], outputs["joint_subpixel"], snap)
    return {"boxes": boxes, "scores": scores, "labels": labels, "keypoints": keypoints}


def snap_joints_to_peaks(
    regressed: torch.Tensor,        # (B, K, J, 2) joints regressed from the person centres
    boxes: torch.Tensor,            # (B, K, 4) xyxy person boxes
    joint_heatmap: torch.Tensor,    # (B, J, h, w) logits
    joint_subpixel: torch.Tensor,   # (B, 2, h, w) sub-pixel offset of each joint peak
    snap: JointSnapSettings,
) -> torch.Tensor:
    """Keypoints (B, K, J, 3) as (x, y, score): each joint on the heatmap peak the rule picks, where it allows."""
    b, k, j, _ = regressed.shape
    h, w = joint_heatmap.shape[-2:]
    peak_xy, peak_score = joint_peaks(joint_heatmap, joint_subpixel, min(k, h * w), snap.kernel)  # (B, J, P, 2/-)
    counts = peak_score > snap.score_threshold  # (B, J, P)
    per_joint = regressed.permute(0, 2, 1, 3)  # (B, J, K, 2)
    difference = per_joint[:, :, :, None, :] - peak_xy[:, :, None, :, :]  # (B, J, K, P, 2)
    distance = difference.square().sum(-1).sqrt()  # (B, J, K, P)
    distance = torch.where(counts[:, :, None, :], distance, torch.full_like(distance, float("inf")))
    x1, y1, x2, y2 = (boxes[:, None, :, i, None] for i in range(4))  # (B, 1, K, 1) each
    person_size = torch.maximum(x2 - x1, y2 - y1)  # (B, 1, K, 1)

    def allowed(xy: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:  # peaks (B, J, K|1, P', 2) -> (B, J, K, P')
        inside = (xy[..., 0] >= x1) & (xy[..., 0] <= x2) & (xy[..., 1] >= y1) & (xy[..., 1] <= y2)
        return inside & (dist <= snap.max_distance * person_size)  # False for inf

    if snap.peak == "nearest":  # choose, then test
        chosen_distance, chosen = distance.min(dim=3, keepdim=True)  # (B, J, K, 1)
        chosen_xy = peak_xy.gather(2, chosen[..., 0, None].expand(b, j, k, 2))  # (B, J, K, 2)
        snapped = allowed(chosen_xy[..., None, :], chosen_distance)[..., 0]  # (B, J, K)
    else:  # test, then choose the best weighed
        reach = allowed(peak_xy[:, :, None], distance)  # (B, J, K, P)
        weight = peak_score[:, :, None, :] / (1 + distance / (snap.distance_scale * person_size).clamp(min=1e-6))
        best_weight, chosen = torch.where(reach, weight, torch.full_like(weight, -1.0)).max(dim=3)  # (B, J, K)
        chosen_xy = peak_xy.gather(2, chosen[..., None].expand(b, j, k, 2))  # (B, J, K, 2)
        snapped = best_weight >= 0
    chosen_score = peak_score.gather(2, chosen.reshape(b, j, k))  # (B, J, K)

    regressed_score = heatmap_at_points(torch.sigmoid(joint_heatmap.float()), per_joint)  # (B, J, K)
    xy = torch.where(snapped[..., None], chosen_xy, per_joint)  # (B, J, K, 2)
    score = torch.where(snapped, chosen_score, regressed_score)  # (B, J, K)
    return torch.cat([xy, score[..., None]], dim=-1).permute(0, 2, 1, 3)  # (B, K, J, 3)


def joint_peaks(
    joint_heatmap: torch.Tensor,   # (B, J, h, w) logits
    joint_subpixel: torch.Tensor,  # (B, 2, h, w)
    num_peaks: int,
    kernel: int = 3,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The top ``num_peaks`` local maxima of every joint channel: positions (B, J, P, 2) and probabilities (B, J, P)."""
    b, j, h, w = joint_heatmap.shape
    peak_score, peak_pixel = torch.topk(heatmap_peaks(joint_heatmap, kernel).reshape(b, j, h * w), num_peaks)
    peak_y = torch.div(peak_pixel, w, rounding_mode="floor")
    peak_x = peak_pixel - peak_y * w
    subpixel = gather_at_index(joint_subpixel.float(), peak_pixel.reshape(b, -1)).reshape(b, j, num_peaks, 2)
    peak_xy = torch.stack([peak_x, peak_y], dim=-1).float() + subpixel  # (B, J, P, 2)
    return peak_xy, peak_score


def heatmap_at_points(heatmap: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Values (B, J, N) of heatmap (B, J, h, w) at the integer pixels of points (B, J, N, 2); 0 off the map."""
    b, j, h, w = heatmap.shape
    pixel_x, pixel_y = points[..., 0].floor(), points[..., 1].floor()  # (B, J, N)
    on_map = (pixel_x >= 0) & (pixel_x < w) & (pixel_y >= 0) & (pixel_y < h)
    index = (pixel_y.clamp(0, h - 1) * w + pixel_x.clamp(0, w - 1)).long()  # (B, J, N)
    values = heatmap.reshape(b, j, h * w).gather(2, index)
    return torch.where(on_map, values, torch.zeros_like(values))


def flip_permutation(flip_idx: Sequence[int] | Sequence[Sequence[int]] | None, num_joints: int) -> list[int]:
    """Joint j of an image is joint ``perm[j]`` of its mirror.

    ``flip_idx`` is either the original's list of left/right pairs (``[[1, 2], [3, 4], ...]``) or a
    full permutation of length J (ultralytics' ``flip_idx``); None means no joint changes side.
    """
    perm = list(range(num_joints))
    if flip_idx is None or len(flip_idx) == 0:
        return perm
    is_pair = [hasattr(e, "__len__") for e in flip_idx]
    if not any(is_pair):
        perm = [int(e) for e in flip_idx]
        if sorted(perm) != list(range(num_joints)):
            raise ValueError(f"flip_idx {perm} is not a permutation of 0..{num_joints - 1}")
        return perm
    if not all(is_pair):
        raise ValueError(f"flip_idx mixes pairs and single indices: {flip_idx!r}")
    for pair in flip_idx:
        left, right = (int(e) for e in pair)
        if not (0 <= left < num_joints and 0 <= right < num_joints):
            raise ValueError(f"flip_idx pair {[left, right]} is out of range for {num_joints} joints")
        perm[left], perm[right] = right, left
    return perm


def flip_merge_pose(
    outputs: dict[str, torch.Tensor], flip_idx: Sequence[int] | Sequence[Sequence[int]] | None, eps: float = 1e-6
) -> dict[str, torch.Tensor]:
    """Outputs of a pose model on ``flip_images(x)`` (every map (2B, ch, h, w)) -> outputs for ``x`` (B, ch, h, w).

    * ``heatmap`` and ``size``: as :func:`centernet.ops.flip.merge_flip` (probabilities and
      sizes averaged with the mirrored half flipped back; logits again).
    * ``joint_heatmap``: the same, after the mirrored half's channels are permuted by
      ``flip_idx`` (a left wrist is a right wrist in the mirror).
    * ``joint_offset``: averaged with the mirrored half flipped back, permuted by ``flip_idx``,
      y kept and x turned into ``1 - x``. Why ``1 - x`` and not the original's ``-x``: a
      centre at ``i + d`` (0 < d < 1) mirrors to ``w - i - d``, whose integer pixel is
      ``w - 1 - i`` (flipped back onto pixel i), and a joint at ``X`` mirrors to ``w - X``, so
      the mirror regresses ``(w - X) - (w - 1 - i) = 1 - (X - i)``. Negating alone would shift
      every merged joint by half an output pixel in x. (The original flips input pixels as
      ``x -> W - 1 - x``, so its own exact term differs; this package flips ``x -> W - x``.)
    * ``offset`` and ``joint_subpixel``: from the un-flipped half only (sub-pixel offsets are not
      mirror-invariant), as the original.
    """
    merged = merge_flip(outputs, average=("heatmap", "size"), eps=eps)
    b = outputs["heatmap"].shape[0] // 2
    num_joints = outputs["joint_heatmap"].shape[1]
    perm = torch.tensor(flip_permutation(flip_idx, num_joints), device=outputs["joint_heatmap"].device)

    first, mirrored = outputs["joint_heatmap"][:b], outputs["joint_heatmap"][b:].flip(-1)[:, perm]  # (B, J, h, w)
    probability = (torch.sigmoid(first.float()) + torch.sigmoid(mirrored.float())) / 2
    merged["joint_heatmap"] = torch.logit(probability.clamp(eps, 1 - eps))

    offsets = outputs["joint_offset"]
    h, w = offsets.shape[-2:]
    first = offsets[:b].reshape(b, num_joints, 2, h, w)  # (B, J, 2, h, w)
    mirrored = offsets[b:].flip(-1).reshape(b, num_joints, 2, h, w)[:, perm]  # (B, J, 2, h, w)
    mirrored = torch.stack([1 - mirrored[:, :, 0], mirrored[:, :, 1]], dim=2)
    merged["joint_offset"] = ((first + mirrored) / 2).reshape(b, 2 * num_joints, h, w)
    return merged
