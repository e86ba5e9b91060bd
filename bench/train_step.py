"""Training-step time of ResNet-18 CenterNet, fp32 versus bf16 + channels_last, side by side.

    python bench/train_step.py [--quick]  # prints markdown tables (--quick: one small size, 2 repeats)

The second table: an 80-class step (COCO's class count) with the heatmap targets dense (the (B, C, h, w)
map the original's encoder draws) against sparse (``DetectionTask``'s default: centres and radii, expanded
in the loss), encoded from the same random boxes, timed alternately.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine_header, time_it  # noqa: E402

from centernet import create_model  # noqa: E402
from centernet.tasks import DetectionTask  # noqa: E402


def step_fn(size: int, batch: int, precision: str, num_classes: int = 4, targets: dict | None = None):
    """One training step on random images; random dense ``targets`` unless given."""
    torch.manual_seed(0)
    task = DetectionTask(num_classes=num_classes)
    model = create_model("resnet18", heads=task.heads())
    fmt = torch.channels_last if precision == "bf16" else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=fmt)
    out = size // 4
    targets = targets or {
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


def encoded_targets(
    size: int, batch: int, num_classes: int, sparse: bool, objects: int = 10, box_loss: str = "l1"
) -> dict:
    """A batch of targets for ``objects`` random boxes per image (the same boxes for both forms)."""
    from torch.utils.data import default_collate

    rng = np.random.default_rng(0)
    out = size // 4
    encoder = DetectionTask(num_classes, sparse_targets=sparse, box_loss=box_loss).encoder()
    items = []
    for _ in range(batch):
        centre, side = rng.uniform(0, out, (objects, 2)), rng.uniform(2, out / 3, (objects, 2))
        boxes = np.concatenate([centre - side / 2, centre + side / 2], 1).clip(0, out)
        encoded = encoder(boxes, rng.integers(0, num_classes, objects), (out, out))
        items.append({k: torch.from_numpy(v) for k, v in encoded.items()})
    return default_collate(items)


def sparse_table(size: int, batch: int, repeats: int, num_classes: int = 80) -> None:
    steps = {form: step_fn(size, batch, "bf16", num_classes, encoded_targets(size, batch, num_classes, form == "sparse"))
             for form in ("dense", "sparse")}
    times: dict[str, list[float]] = {"dense": [], "sparse": []}
    for step in steps.values():
        step()  # warm-up
    for _ in range(2 * repeats):  # alternate, so a change in the machine's load hits both
        for form, step in steps.items():
            start = time.perf_counter()
            step()
            times[form].append(time.perf_counter() - start)
    print(f"\n{num_classes} classes, input {size}, batch {batch}, bf16 + channels_last, 10 objects per image; step s, "
          f"median (min-max) of {2 * repeats}, the two forms timed alternately\n")
    print("| heatmap targets | step s | images/s |")
    print("|---|---|---|")
    for form, t in times.items():
        print(f"| {form} | {np.median(t):.3f} ({min(t):.3f}-{max(t):.3f}) | {batch / np.median(t):.1f} |", flush=True)


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
    sparse_table(*((128, 2, 2) if args.quick else (512, 8, 5)))


if __name__ == "__main__":
    main()
