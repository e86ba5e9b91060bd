"""Training-step time of ResNet-18 CenterNet, fp32 versus bf16 + channels_last, side by side.

    python bench/train_step.py [--quick]  # prints a markdown table (--quick: one small size, 2 repeats)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine_header, time_it  # noqa: E402

from centernet import create_model  # noqa: E402
from centernet.tasks import DetectionTask  # noqa: E402


def step_fn(size: int, batch: int, precision: str, num_classes: int = 4):
    torch.manual_seed(0)
    task = DetectionTask(num_classes=num_classes)
    model = create_model("resnet18", heads=task.heads())
    fmt = torch.channels_last if precision == "bf16" else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=fmt)
    out = size // 4
    targets = {
        "heatmap": torch.rand(batch, num_classes, out, out) * 0.5,
        "size": torch.rand(batch, 8, 2) * 10,
        "offset": torch.rand(batch, 8, 2),
        "index": torch.randint(0, out * out, (batch, 8)),
        "mask": torch.ones(batch, 8),
    }

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            outputs = model(x)
        loss = task.loss(outputs, targets)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one small size, 2 repeats: proves the script runs")
    args = parser.parse_args()
    configs, repeats = (((128, 4),), 2) if args.quick else (((128, 16), (192, 16), (256, 16), (384, 8)), 5)
    print(machine_header())
    print()
    print("| input | batch | fp32 step s (median, min-max) | bf16 step s (median, min-max) | speed-up | bf16 images/s |")
    print("|---|---|---|---|---|---|")
    for size, batch in configs:
        fp32 = time_it(step_fn(size, batch, "fp32"), repeats=repeats)
        bf16 = time_it(step_fn(size, batch, "bf16"), repeats=repeats)
        print(
            f"| {size} | {batch} | {fp32[0]:.3f} ({fp32[1]:.3f}-{fp32[2]:.3f}) | {bf16[0]:.3f} ({bf16[1]:.3f}-{bf16[2]:.3f}) "
            f"| {fp32[0] / bf16[0]:.2f}x | {batch / bf16[0]:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
