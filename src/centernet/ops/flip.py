"""Flip test-time augmentation: a batch with its mirror, and the mirrored outputs merged back (boxes' heads).

Shapes: B batch, ch channels, h, w output size.
"""

from __future__ import annotations

from typing import Sequence

import torch


def flip_images(images: torch.Tensor) -> torch.Tensor:
    """The batch (B, 3, H, W) followed by its horizontal mirror -> (2B, 3, H, W)."""
    return torch.cat([images, images.flip(-1)], dim=0)


def merge_flip(
    outputs: dict[str, torch.Tensor],
    average: Sequence[str] = ("heatmap", "size"),
    eps: float = 1e-6,
) -> dict[str, torch.Tensor]:
    """Outputs of a model on ``flip_images(x)`` (every map (2B, ch, h, w)) -> outputs for ``x`` (B, ch, h, w).

    As the original's flip test, head by head:

    * a head named in ``average`` is averaged with its mirrored half flipped back,
      ``(first + flip(second)) / 2``. A head whose name ends in ``"heatmap"`` holds logits: it is
      averaged as probabilities, and the average is returned as **logits** again,
      ``logit(clamp(p, eps, 1 - eps))``, so ``decode_detections`` works on the result unchanged
      (probabilities below ``eps`` all become ``eps``, so they may decode as tied low-score
      peaks). Other averaged heads (``size``) are averaged as they are.
    * every other head (``offset`` by default) is taken from the un-flipped first half only. The
      sub-pixel offset is not mirror-invariant: a centre at ``i + dx`` mirrors to
      ``(w - 1 - i) + (1 - dx)``, so flipping the map back does not recover it.

    Averaging by flipping back is right only for maps whose channels do not change meaning
    under a mirror (class scores, box width and height). Pose (not implemented here): a joint
    heatmap flipped back also needs its left and right joint channels swapped, and per-joint
    x-displacements need the swap and a sign change; do not list such heads in ``average``
    until that is added.

    Heatmaps are averaged in float32; a head in ``average`` that is missing raises ``ValueError``.
    """
    missing = [name for name in average if name not in outputs]
    if missing:
        raise ValueError(f"merge_flip: heads {missing} are to be averaged but not among outputs {sorted(outputs)}")
    merged: dict[str, torch.Tensor] = {}
    for name, maps in outputs.items():
        if maps.shape[0] % 2:
            raise ValueError(f"merge_flip: head {name!r} has an odd batch {maps.shape[0]}; expected 2B from flip_images")
        b = maps.shape[0] // 2
        first, mirrored = maps[:b], maps[b:].flip(-1)  # (B, ch, h, w) each, both in x's orientation
        if name not in average:
            merged[name] = first
        elif name.endswith("heatmap"):
            probability = (torch.sigmoid(first.float()) + torch.sigmoid(mirrored.float())) / 2
            merged[name] = torch.logit(probability.clamp(eps, 1 - eps))
        else:
            merged[name] = (first + mirrored) / 2
    return merged
