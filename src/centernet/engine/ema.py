"""Exponential moving average of the model's weights, used for validation and the saved model."""

from __future__ import annotations

import copy
import math

import torch


class ModelEMA:
    """ema = d * ema + (1 - d) * weights after every step, with d ramped up as decay * (1 - exp(-step / tau)).

    The ramp lets the average follow the fast early changes; buffers (BN statistics) are averaged
    the same way, integer buffers are copied.
    """

    def __init__(self, model: torch.nn.Module, decay: float = 0.9998, tau: float = 2000.0) -> None:
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay, self.tau = decay, tau
        self.updates = 0

    def current_decay(self) -> float:
        return self.decay * (1 - math.exp(-self.updates / self.tau))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = self.current_decay()
        source = model.state_dict()
        for name, value in self.module.state_dict().items():
            if value.is_floating_point():
                value.mul_(d).add_(source[name].detach(), alpha=1 - d)
            else:
                value.copy_(source[name])
