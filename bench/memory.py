"""Peak memory of a training step and of inference, ResNet-18 CenterNet, fp32 and bf16 + channels_last.

    python bench/memory.py [--quick]       # prints a markdown table for BENCHMARKS.md

Method. Every configuration runs in a fresh Python process (``--child``), so nothing allocated
by another configuration, and no allocator cache, is counted. In that process:

1. import torch and centernet, build the work: for training ``train_step.step_fn`` (model,
   AdamW, a random batch and its targets, 80 classes); for inference an eval-mode model (80
   classes; channels_last for bf16) and one random image batch;
2. collect garbage and read the resident set size, VmRSS in /proc/self/status: the *baseline*
   (interpreter + libraries + model + data);
3. reset the kernel's peak-RSS mark (write ``5`` to /proc/self/clear_refs, Linux >= 4.0; the
   peak VmHWM then restarts from the current RSS);
4. run the work twice (training: two full steps, the first of which creates AdamW's state;
   inference: two ``run_model`` calls under no_grad, as ``predict`` runs them);
5. read the peak, VmHWM. *Peak growth* = peak - baseline: the most memory the step (or the
   forward pass) added on top of what was already there. *Held after* = VmRSS after - baseline:
   gradients and optimizer state that stay, plus freed memory the allocator keeps (below).

Where clear_refs cannot be written the peak is ``resource.getrusage(RUSAGE_SELF).ru_maxrss``
instead, which cannot be reset: it is then the process's peak since start, correct as long as
the work's peak is above the peak of the imports and the model creation (the table says which
method each row used). PyTorch's CPU tensors come from glibc malloc: a freed block above its mmap
threshold (which rises, up to 32 MiB, as such blocks are freed) goes back to the system, smaller
ones stay in the heap for reuse. So the peak is the most the process took from the system (the
live tensors plus that reuse pool), which is what decides whether a configuration fits, and
"held after" is what the process keeps, not what is alive. Single runs: peak RSS barely varies
from run to run.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
NUM_CLASSES = 80


def status_kib(field: str) -> int:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM) in KiB."""
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def child(mode: str, precision: str, size: int, batch: int) -> dict:
    """Measure one configuration in this (fresh) process; see the module docstring."""
    import torch

    sys.path.insert(0, str(HERE))
    from centernet import create_model
    from centernet.engine.inference import InferenceSettings, run_model
    from train_step import step_fn

    if mode == "train":
        work = step_fn(size, batch, precision, num_classes=NUM_CLASSES)
    else:
        torch.manual_seed(0)
        model = create_model("resnet18", num_classes=NUM_CLASSES).eval()
        if precision == "bf16":
            model = model.to(memory_format=torch.channels_last)
        images = torch.randn(batch, 3, size, size)
        settings = InferenceSettings(size, 100, precision)

        def work():
            run_model(model, images, settings)

    gc.collect()
    baseline = status_kib("VmRSS")
    exact = reset_peak()
    for _ in range(2):
        work()
    peak = status_kib("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"baseline": baseline, "peak": peak, "after": status_kib("VmRSS"), "method": "VmHWM" if exact else "ru_maxrss"}


def measure(mode: str, precision: str, size: int, batch: int) -> dict:
    """Run :func:`child` in a fresh interpreter and return what it measured (KiB)."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, precision, str(size), str(batch)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes: proves the script runs")
    parser.add_argument("--child", nargs=4, metavar=("MODE", "PRECISION", "SIZE", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, precision, size, batch = args.child
        print(json.dumps(child(mode, precision, int(size), int(batch))))
        return
    sys.path.insert(0, str(HERE))
    from common import machine_header

    size, train_batch = (256, 2) if args.quick else (512, 8)
    print(machine_header())
    print(
        f"\nResNet-18, {NUM_CLASSES} classes, {size}x{size}; each row a fresh process (single run); MiB; baseline = RSS "
        f"after imports, model and data; peak growth = peak RSS during two steps (or forward passes) - baseline\n"
    )
    print("| what | batch | precision | baseline MiB | peak growth MiB | peak MiB | held after MiB | peak read from |")
    print("|---|---|---|---|---|---|---|---|")
    for mode, batch in (("train", train_batch), ("inference", 1)):
        for precision in ("fp32", "bf16"):
            m = measure(mode, precision, size, batch)
            label = "training step (AdamW)" if mode == "train" else "inference (run_model, no_grad)"
            print(
                f"| {label} | {batch} | {precision}{' + channels_last' if precision == 'bf16' else ''} "
                f"| {m['baseline'] / 1024:.0f} | **{(m['peak'] - m['baseline']) / 1024:.0f}** | {m['peak'] / 1024:.0f} "
                f"| {(m['after'] - m['baseline']) / 1024:.0f} | {m['method']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
