"""Sparse heatmap targets, on the loss's device: the pixels each Gaussian and ignore region covers, and their values.

The sparse encoder (``DetectionTargetEncoder(sparse=True)``) stores per object only its class, integer centre
(``index``) and radius, and per ignore region a rectangle. Here a whole batch of them becomes, in a few
vectorised torch operations, the list of heatmap pixels with a non-background target, keyed by their flat
position in the (B, C, h, w) map and max-merged where Gaussians overlap: exactly the values the dense encoder
draws, without a (C, h, w) array per image. :func:`render_heatmap` draws the dense maps from them.

Shapes: B batch, C classes, h, w output size, M object slots, R ignore-region slots per image, T pixels
covered (with repeats), U distinct pixels.
"""

from __future__ import annotations

import torch

from .gaussian import IGNORE_TARGET

_EPS64 = torch.finfo(torch.float64).eps


def _expand(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For items with ``counts`` (n,) entries each: (T,) the item of every entry and (T,) its rank within it."""
    item = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    start = torch.cumsum(counts, 0) - counts                                   # (n,)
    return item, torch.arange(len(item), device=counts.device) - start[item]


def object_pixels(
    index: torch.Tensor,        # (B, M) flat centre y * w + x
    mask: torch.Tensor,         # (B, M) 1 for a real object
    peak_radius: torch.Tensor,  # (B, M) integer radius
    output_size: tuple[int, int],  # (h, w)
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every pixel of every object's Gaussian inside the map: (T,) batch, slot, y, x and Gaussian value of each.

    The values are those of ``cached_gaussian_2d``: sigma = (2r + 1) / 6, computed in float64, zero below
    float64 epsilon, stored as float32.
    """
    out_h, out_w = output_size
    b, m = torch.nonzero(mask > 0, as_tuple=True)                               # (n,) each
    radius, centre = peak_radius[b, m].long(), index[b, m].long()
    side = 2 * radius + 1                                                       # (n,)
    obj, rank = _expand(side * side)                                            # (T,) each
    s, r = side[obj], radius[obj]
    dy, dx = rank // s - r, rank % s - r                                        # (T,) offsets from the centre
    y, x = centre[obj] // out_w + dy, centre[obj] % out_w + dx
    inside = (y >= 0) & (y < out_h) & (x >= 0) & (x < out_w)
    sigma = s.double() / 6
    value = torch.exp(-(dx.double() ** 2 + dy.double() ** 2) / (2 * sigma * sigma))
    value = torch.where(value < _EPS64, 0.0, value).float()
    return b[obj][inside], m[obj][inside], y[inside], x[inside], value[inside]


def gaussian_pixels(
    index: torch.Tensor,        # (B, M) flat centre y * w + x
    mask: torch.Tensor,         # (B, M) 1 for a real object
    peak_class: torch.Tensor,   # (B, M)
    peak_radius: torch.Tensor,  # (B, M) integer radius
    num_classes: int,
    output_size: tuple[int, int],  # (h, w)
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pixel of every object's Gaussian inside the map: keys (T,) into the flat (B, C, h, w) map, values (T,)."""
    out_h, out_w = output_size
    b, m, y, x, value = object_pixels(index, mask, peak_radius, output_size)
    key = ((b * num_classes + peak_class[b, m].long()) * out_h + y) * out_w + x
    return key, value


def rect_pixels(rects: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every pixel of ``rects`` (B, R, 5) rows [class, x1, y1, x2, y2]: (T,) batch, class, y, x of each."""
    b, slot = torch.nonzero((rects[..., 3] > rects[..., 1]) & (rects[..., 4] > rects[..., 2]), as_tuple=True)
    label, x1, y1, x2, y2 = rects[b, slot].long().unbind(-1)                    # (n,) each
    width = x2 - x1
    item, rank = _expand(width * (y2 - y1))
    return b[item], label[item], y1[item] + rank // width[item], x1[item] + rank % width[item]


def heatmap_entries(
    targets: dict[str, torch.Tensor], num_classes: int, output_size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """A batch of sparse targets as (U,) sorted distinct keys into the flat (B, C, h, w) heatmap, (U,) their
    target values (max over the Gaussians and class ignore regions there), and the (B, h, w) every-class ignore
    mask (None when the batch has no such region)."""
    out_h, out_w = output_size
    keys, values = gaussian_pixels(
        targets["index"], targets["mask"], targets["peak_class"], targets["peak_radius"], num_classes, output_size
    )
    ignore = None
    rects = targets.get("ignore_rects")
    if rects is not None and rects.numel():
        b, label, y, x = rect_pixels(rects)
        for_class = (label >= 0) & (label < num_classes)
        if for_class.any():
            rect_keys = ((b * num_classes + label) * out_h + y) * out_w + x
            keys = torch.cat([keys, rect_keys[for_class]])
            values = torch.cat([values, values.new_full((int(for_class.sum()),), IGNORE_TARGET)])
        every = label < 0
        if every.any():
            ignore = torch.zeros(rects.shape[0] * out_h * out_w, device=rects.device)
            ignore[(b[every] * out_h + y[every]) * out_w + x[every]] = 1
            ignore = ignore.view(rects.shape[0], out_h, out_w)
    distinct, where = torch.unique(keys, return_inverse=True)                  # (U,), (T,)
    merged = values.new_zeros(len(distinct)).scatter_reduce_(0, where, values, "amax")
    return distinct, merged, ignore


def render_heatmap(
    targets: dict[str, torch.Tensor], num_classes: int, output_size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The dense (B, C, h, w) heatmap and (B, h, w) ignore map of a batch of sparse targets, as the dense
    encoder draws them (for pictures, checks, and losses that need the whole map)."""
    batch = targets["index"].shape[0]
    out_h, out_w = output_size
    keys, values, ignore = heatmap_entries(targets, num_classes, output_size)
    heatmap = values.new_zeros(batch * num_classes * out_h * out_w)
    heatmap[keys] = values
    if ignore is None:
        ignore = values.new_zeros(batch, out_h, out_w)
    return heatmap.view(batch, num_classes, out_h, out_w), ignore


def dense_targets(targets: dict, num_classes: int, output_size: tuple[int, int]) -> dict:
    """One image's targets (numpy arrays, as an encoder returns them) with ``heatmap`` (C, h, w) and ``ignore``
    (h, w) drawn; dense targets are returned as they are."""
    if "heatmap" in targets:
        return targets
    batch = {k: torch.as_tensor(v)[None] for k, v in targets.items()}
    heatmap, ignore = render_heatmap(batch, num_classes, output_size)
    return {**targets, "heatmap": heatmap[0].numpy(), "ignore": ignore[0].numpy()}
