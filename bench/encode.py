"""Target encoding speed: the project's encoders against a per-pixel reference, side by side.

    python bench/encode.py [--quick]       # prints markdown tables for BENCHMARKS.md

The reference below writes the same targets the straightforward way: for each object, two
Python loops over pixels (radius from ``gaussian_radius``, sigma = (2r + 1) / 6, values below
float64 epsilon set to 0, max-merged into the class plane), in two variants: loops over the
Gaussian's (2r + 1)^2 window only ("window"), and loops over the whole output map, drawing
where the pixel is within the window ("whole map", the most literal one). Before timing, both
are checked against the dense encoder, and the sparse encoder's targets drawn by
``render_heatmap`` against the reference, on every timed image.

Two encoders of the project are timed:
- sparse (what ``DetectionTask`` trains with): per object its class, centre and radius, no map;
  the loss reads the covered pixels on its device (``heatmap_entries``);
- dense (the original's form, still used by the pose and 3D tasks): the (C, h, w) heatmap drawn.

Each image: an output map of 128 x 128 (a 512 x 512 input), 80 classes, N random boxes
(sides 2-48 output pixels, centres uniform, clipped to the map). Times are per image: the
median (min-max) over repeats of encoding a fixed set of images, divided by their count.

"zero-filled dense outputs" is the floor every dense encoder pays, timed the same way: allocating
the six zeroed arrays, 5.2 MB of them the (80, 128, 128) float32 heatmap.

The second table shows where the sparse encoder's work went: per batch of 8 such images, the
DataLoader's collate and the heatmap focal loss (forward + backward, float32 logits) with dense
targets against sparse ones (``heatmap_entries`` + ``sparse_focal_loss_from_logits``), side by side.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import default_collate

sys.path.insert(0, str(Path(__file__).parent))
from common import machine_header, time_it  # noqa: E402

from centernet.losses import focal_loss_from_logits, sparse_focal_loss_from_logits  # noqa: E402
from centernet.ops.gaussian import gaussian_radius  # noqa: E402
from centernet.ops.sparse import dense_targets, heatmap_entries  # noqa: E402
from centernet.tasks import DetectionTask  # noqa: E402

NUM_CLASSES = 80
OUTPUT_SIZE = (128, 128)  # (h, w)
TARGET_NAMES = ("heatmap", "size", "offset", "index", "mask")
EPS = np.finfo(np.float64).eps


def random_image(num_objects: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N, 4) float32 xyxy in output pixels (clipped to the map) and labels (N,) int64."""
    out_h, out_w = OUTPUT_SIZE
    sides = rng.uniform(2, 48, (num_objects, 2))                       # (N, 2) w, h
    centres = rng.uniform((0, 0), (out_w, out_h), (num_objects, 2))    # (N, 2) cx, cy
    boxes = np.concatenate([centres - sides / 2, centres + sides / 2], axis=1)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, out_w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, out_h)
    return boxes.astype(np.float32), rng.integers(0, NUM_CLASSES, num_objects)


def reference_encode(
    boxes: np.ndarray, labels: np.ndarray, output_size: tuple[int, int], num_classes: int,
    max_objects: int = 128, min_overlap: float = 0.7, whole_map: bool = False,
) -> dict[str, np.ndarray]:
    """The detection targets of one image, one pixel at a time (over the whole map with ``whole_map``)."""
    out_h, out_w = output_size
    heatmap = np.zeros((num_classes, out_h, out_w), np.float32)
    size = np.zeros((max_objects, 2), np.float32)
    offset = np.zeros((max_objects, 2), np.float32)
    index = np.zeros((max_objects,), np.int64)
    mask = np.zeros((max_objects,), np.float32)
    k = 0
    for i in range(len(boxes)):
        x1, y1, x2, y2 = (float(v) for v in boxes[i])
        bw, bh = x2 - x1, y2 - y1
        if bw <= 0 or bh <= 0 or k >= max_objects:
            continue
        radius = max(0, int(gaussian_radius(math.ceil(bh), math.ceil(bw), min_overlap)))
        sigma = (2 * radius + 1) / 6
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        ix, iy = min(max(int(cx), 0), out_w - 1), min(max(int(cy), 0), out_h - 1)
        plane = heatmap[int(labels[i])]
        rows = range(out_h) if whole_map else range(max(iy - radius, 0), min(iy + radius + 1, out_h))
        columns = range(out_w) if whole_map else range(max(ix - radius, 0), min(ix + radius + 1, out_w))
        for y in rows:
            for x in columns:
                if abs(x - ix) > radius or abs(y - iy) > radius:
                    continue
                value = math.exp(-(float(x - ix) ** 2 + float(y - iy) ** 2) / (2 * sigma * sigma))
                if value < EPS:
                    value = 0.0
                if value > plane[y, x]:
                    plane[y, x] = value
        size[k] = bw, bh
        offset[k] = cx - ix, cy - iy
        index[k] = iy * out_w + ix
        mask[k] = 1
        k += 1
    return {"heatmap": heatmap, "size": size, "offset": offset, "index": index, "mask": mask}


def zero_outputs(num_classes: int, max_objects: int) -> list[np.ndarray]:
    """The encoder's six outputs, zero-filled: what any encoder of these targets allocates."""
    out_h, out_w = OUTPUT_SIZE
    return [
        np.zeros((num_classes, out_h, out_w), np.float32), np.zeros((max_objects, 2), np.float32),
        np.zeros((max_objects, 2), np.float32), np.zeros((max_objects,), np.int64),
        np.zeros((max_objects,), np.float32), np.zeros((out_h, out_w), np.float32),
    ]


def check_equal(images: list[tuple[np.ndarray, np.ndarray]], encoder) -> None:
    """Raise if the reference and the project's encoder differ on any image."""
    for boxes, labels in images:
        ours = encoder(boxes, labels, OUTPUT_SIZE, None)
        for whole_map in (False, True):
            ref = reference_encode(
                boxes, labels, OUTPUT_SIZE, NUM_CLASSES, encoder.max_objects, encoder.min_overlap, whole_map
            )
            for name in TARGET_NAMES:
                np.testing.assert_allclose(ours[name], ref[name], rtol=1e-6, atol=1e-7, err_msg=name)


def check_sparse(images: list[tuple[np.ndarray, np.ndarray]], encoder) -> None:
    """Raise if the sparse encoder's targets, drawn, differ from the reference on any image."""
    for boxes, labels in images:
        targets = dense_targets(encoder(boxes, labels, OUTPUT_SIZE, None), NUM_CLASSES, OUTPUT_SIZE)
        ref = reference_encode(boxes, labels, OUTPUT_SIZE, NUM_CLASSES, encoder.max_objects, encoder.min_overlap)
        for name in TARGET_NAMES:
            np.testing.assert_allclose(targets[name], ref[name], rtol=1e-6, atol=1e-7, err_msg=name)


def fmt(t: list[float], digits: int = 3) -> str:
    return f"{t[0]:.{digits}f} ({t[1]:.{digits}f}-{t[2]:.{digits}f})"


def encoder_table(sparse, dense, images_per_count: int, repeats: int, rng) -> dict[int, tuple[float, ...]]:
    """Print the per-image table; return {objects: (sparse ms, x window, x whole map)}."""
    print("| objects | sparse encoder ms (training) | dense encoder ms | reference, window ms "
          "| reference, whole map ms | sparse: speed-up over window / whole map | dense: over window / whole map "
          "| zero-filled dense outputs ms |")
    print("|---|---|---|---|---|---|---|---|")
    result = {}
    for count in (1, 10, 100):
        images = [random_image(count, rng) for _ in range(images_per_count)]
        check_equal(images, dense)
        check_sparse(images, sparse)
        row = []
        for fn in (
            lambda b, l: sparse(b, l, OUTPUT_SIZE, None),
            lambda b, l: dense(b, l, OUTPUT_SIZE, None),
            lambda b, l: reference_encode(b, l, OUTPUT_SIZE, NUM_CLASSES),
            lambda b, l: reference_encode(b, l, OUTPUT_SIZE, NUM_CLASSES, whole_map=True),
            lambda b, l: zero_outputs(dense.num_classes, dense.max_objects),
        ):
            times = time_it(lambda: [fn(b, l) for b, l in images], repeats=repeats, warmup=1)
            row.append([t * 1e3 / images_per_count for t in times])  # ms per image
        ours, theirs, window, whole, floor = row
        result[count] = (ours[0], window[0] / ours[0], whole[0] / ours[0])
        print(
            f"| {count} | {fmt(ours)} | {fmt(theirs)} | {fmt(window, 2)} | {fmt(whole, 1)} "
            f"| {window[0] / ours[0]:.0f}x / {whole[0] / ours[0]:.0f}x "
            f"| {window[0] / theirs[0]:.1f}x / {whole[0] / theirs[0]:.0f}x | {fmt(floor)} |",
            flush=True,
        )
    return result


def loss_table(sparse, dense, repeats: int, rng, batch: int = 8) -> None:
    """Print collate and focal-loss times per batch, dense targets against sparse ones, side by side."""
    print(f"\nper batch of {batch} images, ms median (min-max) of {repeats}; the two losses agree (checked)\n")
    print("| objects per image | collate dense | collate sparse | focal loss fwd+bwd, dense targets "
          "| the same, sparse targets (entries + loss) |")
    print("|---|---|---|---|---|")
    for count in (1, 10, 100):
        images = [random_image(count, rng) for _ in range(batch)]
        items = {name: [{k: torch.from_numpy(v) for k, v in enc(b, l, OUTPUT_SIZE, None).items()} for b, l in images]
                 for name, enc in (("dense", dense), ("sparse", sparse))}
        collated = {name: default_collate(batch_items) for name, batch_items in items.items()}
        logits = torch.randn(batch, NUM_CLASSES, *OUTPUT_SIZE, generator=torch.Generator().manual_seed(count)) - 2

        def dense_loss():
            x = logits.clone().requires_grad_()
            loss = focal_loss_from_logits(x, collated["dense"]["heatmap"], collated["dense"]["ignore"])
            loss.backward()
            return loss

        def sparse_loss():
            x = logits.clone().requires_grad_()
            keys, values, ignore = heatmap_entries(collated["sparse"], NUM_CLASSES, OUTPUT_SIZE)
            loss = sparse_focal_loss_from_logits(x, keys, values, ignore)
            loss.backward()
            return loss

        torch.testing.assert_close(sparse_loss(), dense_loss(), rtol=1e-5, atol=1e-5)
        row = [[t * 1e3 for t in time_it(fn, repeats=repeats, warmup=1)] for fn in (
            lambda: default_collate(items["dense"]), lambda: default_collate(items["sparse"]), dense_loss, sparse_loss)]
        print(f"| {count} | {' | '.join(fmt(t, 2) for t in row)} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="few images and repeats: proves the script runs")
    args = parser.parse_args()
    images_per_count, repeats = (3, 2) if args.quick else (20, 7)
    sparse = DetectionTask(NUM_CLASSES).encoder()
    dense = DetectionTask(NUM_CLASSES, sparse_targets=False).encoder()
    assert sparse.sparse and not dense.sparse
    rng = np.random.default_rng(0)
    print(machine_header())
    print(
        f"\noutput map {OUTPUT_SIZE[1]}x{OUTPUT_SIZE[0]}, {NUM_CLASSES} classes, {images_per_count} random images per "
        f"row (box sides 2-48 px); ms per image, median (min-max) of {repeats}; the reference equals both encoders "
        f"on every image (checked)\n"
    )
    result = encoder_table(sparse, dense, images_per_count, repeats, rng)
    loss_table(sparse, dense, repeats, rng)
    ms10, window10, whole10 = result[10]
    print(
        f"\ngoal (>= 100x the reference, well under 1 ms at 10 objects): at 10 objects {ms10:.3f} ms per image, "
        f"{window10:.0f}x the window reference, {whole10:.0f}x the whole-map reference"
    )


if __name__ == "__main__":
    main()
