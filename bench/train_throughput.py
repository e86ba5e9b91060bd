"""Training throughput of ResNet-18 CenterNet: images/s in fp32 and bf16 + channels_last side by side, and the
data loader's samples/s at the same input sizes.

    python bench/train_throughput.py [--quick] [--data ../shared/data/bccd] [--batch-size 8]

The step is ``train_step.step_fn`` (forward, loss, backward, AdamW step on random data, 4 classes);
images/s = batch / median step time. The loader is ``loader.loader_rate`` on BCCD train (640x480
JPEGs: decode, affine warp, colour + PCA jitter, target encoding, normalisation; no decoded-image
cache) with 0 and 2 worker processes; those rows are skipped, with the reason, when the data set
is not there. Both run in the same process one after the other, so the loader's samples/s is
what it reaches alone, not while the step shares the cores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine_header, time_it  # noqa: E402
from loader import DEFAULT_DATA, loader_rate  # noqa: E402
from train_step import step_fn  # noqa: E402

from centernet.data import load_split  # noqa: E402
from centernet.data.dataset import DetectionDataset  # noqa: E402
from centernet.tasks import DetectionTask  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats: proves the script runs")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    sizes, batch, repeats, batches = ((128, 192), 4, 2, 3) if args.quick else ((384, 512), args.batch_size, 5, 20)
    print(machine_header())
    try:
        split = load_split(args.data, "train")
        task = DetectionTask(split.num_classes)
        source = f"{split.source}, {len(split.samples)} images, no cache"
    except Exception as e:  # noqa: BLE001 - no data set: the step columns still run
        split, source = None, f"skipped: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
    print(
        f"\nResNet-18, batch {batch}, AdamW step on random data, median (min-max) of {repeats} steps; loader: {source}, "
        f"{batches} batches\n"
    )
    print(
        "| input | fp32 step s | bf16 step s | speed-up | fp32 images/s | bf16 images/s "
        "| loader samples/s, 0 workers | loader samples/s, 2 workers |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for size in sizes:
        fp32 = time_it(step_fn(size, batch, "fp32"), repeats=repeats)
        bf16 = time_it(step_fn(size, batch, "bf16"), repeats=repeats)
        loaders = ["-", "-"]
        if split is not None:
            dataset = DetectionDataset(split, size, encoder=task.encoder())
            loaders = [f"{loader_rate(dataset, batch, workers, batches):.0f}" for workers in (0, 2)]
        print(
            f"| {size} | {fp32[0]:.3f} ({fp32[1]:.3f}-{fp32[2]:.3f}) | {bf16[0]:.3f} ({bf16[1]:.3f}-{bf16[2]:.3f}) "
            f"| {fp32[0] / bf16[0]:.2f}x | {batch / fp32[0]:.1f} | {batch / bf16[0]:.1f} | {loaders[0]} | {loaders[1]} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
