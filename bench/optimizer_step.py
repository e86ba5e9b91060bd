"""Where a training step of the detection demo's model goes, and the Adam(W) implementations side by side.

    python bench/optimizer_step.py [--quick] [--precision fp32] [--batch 8]   # a markdown table

(``--quick``: one small size, 2 repeats.)

``resnet18_shortcut`` with the demo's L1 + GIoU box loss, bf16 + channels_last (or fp32, contiguous), batch 8
(or ``--batch``), at the demo's first and last input sizes (96 and 192 px). Each step is split into forward,
loss, backward and optimiser step; the optimiser is torch's AdamW as its for-loop (torch's CPU default), ``foreach`` and ``fused``
implementations (``trainer.make_optimizer`` uses ``fused``). The three are timed in turn, step after step, so a change in the
machine's load hits all of them; medians (ms) of the timed steps.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine_header  # noqa: E402
from train_step import encoded_targets  # noqa: E402

from centernet import create_model  # noqa: E402
from centernet.tasks import DetectionTask  # noqa: E402

PHASES = ("forward", "loss", "backward", "optimizer")
KINDS = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def step_phases(model, task, images, targets, optimizer, bf16: bool) -> list[float]:
    """One training step; seconds of each of PHASES."""
    marks = [time.perf_counter()]
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        outputs = model(images)
    marks.append(time.perf_counter())
    loss = task.loss(outputs, targets)["loss"]
    marks.append(time.perf_counter())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    marks.append(time.perf_counter())
    optimizer.step()
    marks.append(time.perf_counter())
    return [b - a for a, b in zip(marks, marks[1:])]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one small size, 2 repeats: proves the script runs")
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--batch", type=int, default=8, help="images per step (default: 8)")
    args = parser.parse_args()
    bf16 = args.precision == "bf16"
    layout = torch.channels_last if bf16 else torch.contiguous_format
    sizes, batch, repeats = ((64,), 2, 2) if args.quick else ((96, 192), args.batch, 15)
    print(machine_header())
    form = "bf16 + channels_last" if bf16 else "fp32"
    print(f"\nresnet18_shortcut, 4 classes, L1 + GIoU, {form}, batch {batch}; ms, median of {repeats} "
          "steps after 3 warm-up steps, the three optimisers in turn\n")
    print("| input | AdamW | forward | loss | backward | optimiser step | whole step |")
    print("|---|---|---|---|---|---|---|")
    for size in sizes:
        torch.manual_seed(0)
        task = DetectionTask(4, box_loss="giou")
        model = create_model("resnet18_shortcut", heads=task.heads()).to(memory_format=layout).train()
        images = torch.randn(batch, 3, size, size).contiguous(memory_format=layout)
        targets = encoded_targets(size, batch, 4, sparse=True, box_loss="giou")
        optimizers = {kind: torch.optim.AdamW(model.parameters(), lr=1e-6, **kw) for kind, kw in KINDS.items()}
        times: dict[str, list[list[float]]] = {kind: [] for kind in KINDS}
        for i in range(3 + repeats):
            for kind, optimizer in optimizers.items():
                phases = step_phases(model, task, images, targets, optimizer, bf16)
                if i >= 3:
                    times[kind].append(phases)
        for kind, rows in times.items():
            medians = [statistics.median(column) * 1000 for column in zip(*rows)]
            whole = statistics.median(sum(row) for row in rows) * 1000
            print(f"| {size} | {kind} | " + " | ".join(f"{m:.1f}" for m in medians) + f" | {whole:.1f} |", flush=True)


if __name__ == "__main__":
    main()
