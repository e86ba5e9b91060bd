"""What a training run prints first: the model's size and cost, and the data's."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from ..data.samples import instances_per_class

__all__ = ["count_flops", "data_summary", "model_summary"]


def count_flops(model: torch.nn.Module, width: int, height: int) -> int:
    """Floating-point operations (a multiply-add counts 2) of one forward pass on a (1, 3, height, width) input, in
    float32 on the CPU, counted by PyTorch's FLOP counter (convolutions and matrix products)."""
    probe = copy.deepcopy(model).float().cpu().eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        probe(torch.zeros(1, 3, height, width))
    return int(counter.get_total_flops())


def model_summary(model: torch.nn.Module, name: str, width: int, height: int) -> str:
    """``resnet18: 14.21 M parameters, 23.4 GFLOPs at 512x512`` (the object head, if any, counted in the
    parameters; its cost depends on the number of objects and is not in the GFLOPs)."""
    parameters = sum(p.numel() for p in model.parameters())
    return f"{name}: {parameters / 1e6:.2f} M parameters, {count_flops(model, width, height) / 1e9:.1f} GFLOPs at {width}x{height}"


def data_summary(class_names: list[str], labels: list[np.ndarray]) -> str:
    """``400 images, 1603 instances, 3 classes (Car 961, Pedestrian 402, Cyclist 240)``: labels is each image's
    (N,) class indices."""
    counts = instances_per_class(labels, len(class_names))
    shown = ", ".join(f"{name} {int(n)}" for name, n in list(zip(class_names, counts))[:10])
    if len(class_names) > 10:
        shown += ", ..."
    return f"{len(labels)} images, {int(counts.sum())} instances, {len(class_names)} classes ({shown})"
