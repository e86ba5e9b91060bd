"""The start of a training run: the model's parameters and GFLOPs, and the data's images, instances and classes."""

from __future__ import annotations

import numpy as np
import torch

from centernet.engine.summary import count_flops, data_summary, model_summary


def test_flops_of_a_convolution_by_hand():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    # 8 x 3 x 3 x 3 multiply-adds at each of 16 x 10 outputs, 2 FLOPs each.
    assert count_flops(conv, width=16, height=10) == 2 * 8 * 3 * 3 * 3 * 16 * 10
    assert conv.weight.dtype == torch.float32 and conv.training  # counted on a copy


def test_model_and_data_lines():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    assert model_summary(conv, "conv", 16, 10) == "conv: 0.00 M parameters, 0.0 GFLOPs at 16x10"
    line = data_summary(["car", "person"], [np.array([0, 0, 1]), np.array([], np.int64), np.array([1])])
    assert line == "3 images, 4 instances, 2 classes (car 2, person 2)"
    many = data_summary([f"c{i}" for i in range(12)], [np.arange(12)])
    assert many.endswith("(c0 1, c1 1, c2 1, c3 1, c4 1, c5 1, c6 1, c7 1, c8 1, c9 1, ...)")
