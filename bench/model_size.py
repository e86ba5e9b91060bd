"""Parameters and GFLOPs of every registered model at 512 x 512 (80 COCO classes).

    python bench/model_size.py [--quick]  # markdown table for BENCHMARKS.md (--quick: two models)

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one eval-mode forward
pass (batch 1): convolutions, transposed convolutions and matrix products, 2 FLOPs per
multiply-add. A deformable conv is counted as its matrix products (the same as a plain
conv of its size) plus its offset/mask conv; its bilinear sampling is not counted.
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from centernet import create_model, list_models


def measure(name: str, size: int = 512, num_classes: int = 80) -> tuple[float, float]:
    """(millions of parameters, GFLOPs) of ``name`` on a size x size image."""
    model = create_model(name, num_classes=num_classes).eval()
    params = sum(p.numel() for p in model.parameters()) / 1e6
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, 3, size, size))
    return params, counter.get_total_flops() / 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="two models only: proves the script runs")
    args = parser.parse_args()
    print("| model | parameters (M) | GFLOPs at 512x512 |")
    print("|---|---|---|")
    for name in ["dla34", "resnet18"] if args.quick else list_models():
        params, gflops = measure(name)
        print(f"| `{name}` | {params:.2f} | {gflops:.1f} |", flush=True)


if __name__ == "__main__":
    main()
