"""Data loading speed against the training step, on BCCD (640x480 JPEGs) at the BCCD recipe's input size.

    python bench/loader.py [--data ../shared/data/bccd] [--input-size 384] [--batch-size 8] [--quick]

Prints samples/s of the loader alone (decode + affine warp + colour jitter + target encoding +
normalisation) for 0, 1 and 2 worker processes, with and without the decoded-image cache,
and the samples/s of the training step alone at the same input size and batch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).parent))
from common import machine_header, time_it  # noqa: E402
from train_step import step_fn  # noqa: E402

from centernet.data import load_split  # noqa: E402
from centernet.data.dataset import DetectionDataset  # noqa: E402
from centernet.tasks import DetectionTask  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bccd"


def loader_rate(dataset: DetectionDataset, batch: int, workers: int, batches: int = 20) -> float:
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True)
    it = iter(loader)
    next(it)  # start-up (worker fork) not counted
    start = time.perf_counter()
    n = 0
    for _ in range(batches):
        try:
            next(it)
        except StopIteration:
            it = iter(loader)
            next(it)
        n += batch
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--input-size", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="3 batches per row, 2 step repeats: proves the script runs")
    args = parser.parse_args()
    batches, repeats = (3, 2) if args.quick else (20, 5)
    split = load_split(args.data, "train")
    task = DetectionTask(split.num_classes)
    print(machine_header())
    print(f"\nloader on {split.source}: {len(split.samples)} images, input {args.input_size}, batch {args.batch_size}\n")
    print("| workers | cache | loader samples/s |")
    print("|---|---|---|")
    for cache in (False, True):
        ds = DetectionDataset(split, args.input_size, encoder=task.encoder())
        if cache:
            ds.fill_cache(progress=False)
        for workers in (0, 1, 2):
            print(f"| {workers} | {'yes' if cache else 'no'} | {loader_rate(ds, args.batch_size, workers, batches):.0f} |", flush=True)
    median, low, high = time_it(step_fn(args.input_size, args.batch_size, "bf16"), repeats=repeats)
    print(f"\ntraining step alone (bf16, batch {args.batch_size}, {args.input_size}): {median:.3f} s "
          f"({low:.3f}-{high:.3f}) = {args.batch_size / median:.1f} samples/s")


if __name__ == "__main__":
    main()
