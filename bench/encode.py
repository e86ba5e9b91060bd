"""Target encoding speed: the project's detection encoder against a per-pixel reference, side by side.

    python bench/encode.py [--quick]       # prints a markdown table for BENCHMARKS.md

The reference below writes the same targets the straightforward way: for each object, two
Python loops over pixels (radius from ``gaussian_radius``, sigma = (2r + 1) / 6, values below
float64 epsilon set to 0, max-merged into the class plane), in two variants: loops over the
Gaussian's (2r + 1)^2 window only ("window"), and loops over the whole output map, drawing
where the pixel is within the window ("whole map", the most literal one). Before timing, both
are checked against ``DetectionTask(C).encoder()`` on every timed image (heatmap, size,
offset, index, mask), so all three compute the same thing.

Each image: an output map of 128 x 128 (a 512 x 512 input), 80 classes, N random boxes
(sides 2-48 output pixels, centres uniform, clipped to the map). Times are per image: the
median (min-max) over repeats of encoding a fixed set of images, divided by their count.

"zero-filled outputs" is the floor every encoder of these targets pays, timed the same way:
allocating the six zeroed arrays the encoder returns, 5.2 MB of them the (80, 128, 128) float32
heatmap. Both the encoder and the reference pay it, so the speed-up over the reference can be
at most reference / floor. It is a lower bound: the 20 heatmaps of a row are alive together, so
their memory is fresh from the OS, and every 4 KiB page an encoder writes (each Gaussian touches
a few) costs a page fault on top, which the untouched zero-filled arrays here do not.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import machine_header, time_it  # noqa: E402

from centernet.targets.gaussian import gaussian_radius  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="few images and repeats: proves the script runs")
    args = parser.parse_args()
    images_per_count, repeats = (3, 2) if args.quick else (20, 7)
    encoder = DetectionTask(NUM_CLASSES).encoder()
    rng = np.random.default_rng(0)
    print(machine_header())
    print(
        f"\noutput map {OUTPUT_SIZE[1]}x{OUTPUT_SIZE[0]}, {NUM_CLASSES} classes, {images_per_count} random images per "
        f"row (box sides 2-48 px); ms per image, median (min-max) of {repeats}; the reference equals the encoder "
        f"on every image (checked)\n"
    )
    print("| objects | project encoder ms | reference, window ms | speed-up | reference, whole map ms | speed-up "
          "| zero-filled outputs alone ms (pages untouched) | speed-up over the window reference at most |")
    print("|---|---|---|---|---|---|---|---|")
    speedups = {}
    for count in (1, 10, 100):
        images = [random_image(count, rng) for _ in range(images_per_count)]
        check_equal(images, encoder)
        row = []
        for fn in (
            lambda b, l: encoder(b, l, OUTPUT_SIZE, None),
            lambda b, l: reference_encode(b, l, OUTPUT_SIZE, NUM_CLASSES),
            lambda b, l: reference_encode(b, l, OUTPUT_SIZE, NUM_CLASSES, whole_map=True),
            lambda b, l: zero_outputs(encoder.num_classes, encoder.max_objects),
        ):
            times = time_it(lambda: [fn(b, l) for b, l in images], repeats=repeats, warmup=1)
            row.append([t * 1e3 / images_per_count for t in times])  # ms per image
        (ours, window, whole, floor) = row
        speedups[count] = (ours[0], window[0] / ours[0], whole[0] / ours[0])
        print(
            f"| {count} | {ours[0]:.3f} ({ours[1]:.3f}-{ours[2]:.3f}) "
            f"| {window[0]:.2f} ({window[1]:.2f}-{window[2]:.2f}) | {window[0] / ours[0]:.1f}x "
            f"| {whole[0]:.1f} ({whole[1]:.1f}-{whole[2]:.1f}) | {whole[0] / ours[0]:.0f}x "
            f"| {floor[0]:.3f} ({floor[1]:.3f}-{floor[2]:.3f}) | {window[0] / floor[0]:.0f}x |",
            flush=True,
        )
    ms10, window10, whole10 = speedups[10]
    print(
        f"\ngoal (>= 100x the reference, well under 1 ms at 10 objects): at 10 objects {ms10:.3f} ms per image, "
        f"{window10:.1f}x the window reference, {whole10:.0f}x the whole-map reference"
    )


if __name__ == "__main__":
    main()
