"""Losses: the penalty-reduced pixel-wise focal loss, masked L1 regression and a GIoU box loss.

Shapes: B batch, C classes, h, w output size, M max objects per image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .ops.boxes import paired_giou
from .ops.peaks import gather_at_index


def focal_loss_from_logits(
    logits: torch.Tensor,           # (B, C, h, w) raw heatmap logits
    target: torch.Tensor,           # (B, C, h, w) Gaussian targets in [0, 1], exactly 1 at centres
    ignore: torch.Tensor | None = None,  # (B, h, w) 1 where negatives carry no loss (crowd, difficult)
    alpha: float = 2.0,
    beta: float = 4.0,
) -> torch.Tensor:
    """CenterNet's focal loss (CornerNet's variant), normalised by the number of objects.

    pos: -(1 - p)^alpha log(p)               where target == 1
    neg: -(1 - y)^beta p^alpha log(1 - p)    elsewhere
    Computed in float32 from logits with log-sigmoid, so it is finite for any logit
    (the original clamps the sigmoid to [1e-4, 1 - 1e-4] instead). With no object in
    the batch, only the negative term is returned.
    """
    logits = logits.float()
    target = target.float()
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    p = torch.sigmoid(logits)
    pos = target.eq(1).float()
    neg = 1 - pos
    if ignore is not None:
        neg = neg * (1 - ignore.float()).unsqueeze(1)
    pos_loss = (log_p * (1 - p).pow(alpha) * pos).sum()
    neg_loss = (log_not_p * p.pow(alpha) * (1 - target).pow(beta) * neg).sum()
    num_pos = pos.sum()
    if num_pos == 0:
        return -neg_loss
    return -(pos_loss + neg_loss) / num_pos


def sparse_focal_loss_from_logits(
    logits: torch.Tensor,           # (B, C, h, w) raw heatmap logits
    keys: torch.Tensor,             # (U,) distinct flat positions in (B, C, h, w) whose target is not 0
    values: torch.Tensor,           # (U,) the target there (1 at centres)
    ignore: torch.Tensor | None = None,  # (B, h, w) 1 where negatives carry no loss
    alpha: float = 2.0,
    beta: float = 4.0,
) -> torch.Tensor:
    """:func:`focal_loss_from_logits` with the target given only where it is not 0 (see ``targets.sparse``).

    Every pixel is first taken as a plain negative (target 0, weight 1), summed over the whole map;
    then at the U listed pixels that term is swapped for the true one: the (1 - y)^beta weighted
    negative, or the positive term where y = 1. Equal to the dense loss up to float rounding.
    """
    logits = logits.float()
    negative = F.logsigmoid(-logits) * torch.sigmoid(logits).pow(alpha)       # (B, C, h, w) log(1 - p) p^alpha
    if ignore is not None:
        negative = negative * (1 - ignore.float()).unsqueeze(1)
    values = values.float()
    pos = values.eq(1)
    at = logits.reshape(-1)[keys]                                              # (U,)
    neg_loss = negative.sum() + (negative.reshape(-1)[keys] * ((1 - values).pow(beta) * ~pos - 1)).sum()
    pos_loss = (F.logsigmoid(at) * torch.sigmoid(-at).pow(alpha) * pos).sum()
    num_pos = pos.sum()
    if num_pos == 0:
        return -neg_loss
    return -(pos_loss + neg_loss) / num_pos


def masked_l1_loss(
    prediction: torch.Tensor,  # (B, D, h, w) regression map
    index: torch.Tensor,       # (B, M) flat centre positions
    mask: torch.Tensor,        # (B, M) 1 for real objects
    target: torch.Tensor,      # (B, M, D)
) -> torch.Tensor:
    """L1 at the object centres, averaged over objects and the D coordinates (as the original's RegL1Loss)."""
    pred = gather_at_index(prediction.float(), index)  # (B, M, D)
    m = mask.float().unsqueeze(2).expand_as(pred)
    return (torch.abs(pred - target.float()) * m).sum() / (m.sum() + 1e-4)


def owned_pixels(
    pixels: tuple[torch.Tensor, ...],  # (T,) batch, slot, y, x, Gaussian value: ``targets.sparse.object_pixels``
    slots: tuple[int, int],            # (B, M)
    output_size: tuple[int, int],      # (h, w)
) -> tuple[torch.Tensor, ...]:
    """Each object's Gaussian pixels as regression samples (TTFNet's): (T',) batch, slot, y, x and weight.

    A pixel that several Gaussians cover belongs to the object whose Gaussian is highest there (so each object
    keeps its centre, where its value is 1); pixels of value 0 are dropped. An object's weights are its Gaussian
    values divided by their sum, so they sum to 1; an object of radius 0 has its centre alone, of weight 1.
    """
    (batch, num_slots), (out_h, out_w) = slots, output_size
    b, m, y, x, value = pixels
    flat = (b * out_h + y) * out_w + x                                                 # (T,) into (B*h*w)
    highest = value.new_zeros(batch * out_h * out_w).scatter_reduce_(0, flat, value, "amax")
    own = (value >= highest[flat]) & (value > 0)
    b, m, y, x, value = b[own], m[own], y[own], x[own], value[own]                   # (T',) each
    obj = b * num_slots + m                                                            # (T',) into (B*M)
    total = value.new_zeros(batch * num_slots).index_add_(0, obj, value)
    return b, m, y, x, value / total[obj]


def weighted_l1_loss(
    prediction: torch.Tensor,        # (B, D, h, w) regression map
    samples: tuple[torch.Tensor, ...],  # (T',) batch, slot, y, x, weight: :func:`owned_pixels`
    target: torch.Tensor,            # (T', D) the target at each sample
    num_objects: torch.Tensor,       # () objects in the batch
) -> torch.Tensor:
    """Weighted L1 at the samples, divided by objects x D: with each object's weights summing to 1, an average
    over objects and coordinates as :func:`masked_l1_loss` is (the same, when every object has its centre alone).
    """
    b, _, y, x, weight = samples
    pred = prediction.float()[b, :, y, x]                                                # (T', D)
    error = torch.abs(pred - target.float()).sum(1) * weight                             # (T',)
    return error.sum() / (num_objects * prediction.shape[1] + 1e-4)


def weighted_giou_loss(
    size: torch.Tensor,                 # (B, 2, h, w) box width, height map
    offset: torch.Tensor,               # (B, 2, h, w) offset map: from a pixel to its object's centre
    samples: tuple[torch.Tensor, ...],  # (T',) batch, slot, y, x, weight: the pixels the boxes are read at
    size_target: torch.Tensor,          # (T', 2)
    offset_target: torch.Tensor,        # (T', 2)
    num_objects: torch.Tensor,          # () objects in the batch
) -> torch.Tensor:
    """Weighted 1 - GIoU of the box decoded at each sample pixel (pixel + offset +- size / 2) and the true box,
    divided by the number of objects (so, with each object's weights summing to 1, an average over objects).

    Not in the paper (TTFNet's and FCOS's box loss): unlike L1 on the size it weighs an error by the object's
    size, as the IoU thresholds of AP do. The pixel is common to both boxes and drops out.
    """
    def boxes(centre: torch.Tensor, wh: torch.Tensor) -> torch.Tensor:  # (T', 2) each -> (T', 4)
        return torch.cat([centre - wh / 2, centre + wh / 2], -1)

    b, _, y, x, weight = samples
    pred = boxes(offset.float()[b, :, y, x], size.float()[b, :, y, x])
    true = boxes(offset_target.float(), size_target.float())
    return ((1 - paired_giou(pred, true)) * weight).sum() / (num_objects + 1e-4)


def centre_samples(index: torch.Tensor, mask: torch.Tensor, output_width: int) -> tuple[torch.Tensor, ...]:
    """Each object's integer centre as its one regression sample, of weight 1: (n,) batch, slot, y, x, weight
    (the form of :func:`owned_pixels`)."""
    b, m = torch.nonzero(mask > 0, as_tuple=True)
    centre = index[b, m].long()
    return b, m, centre // output_width, centre % output_width, torch.ones(len(b), device=index.device)
