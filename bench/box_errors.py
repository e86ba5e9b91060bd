"""How well a detector's boxes fit, by object size: where the IoU thresholds of AP@[.5:.95] are lost.

    python bench/box_errors.py WEIGHTS COCO_FOLDER [--split val] [--conf 0.2]

For every ground-truth box of the split, the detection of its class (score >= conf) with the highest IoU;
then, per bucket of the box's longer side: the median IoU, the fraction below 0.5 / 0.75 / 0.9 (a missed
object counts as IoU 0), and the median error per side of the width and height and of the centre, in
image pixels. COCO_FOLDER is a folder with ``annotations/instances_<split>.json`` and ``images/<split>``
(the built-in shapes sets are such folders).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from centernet import CenterNet
from centernet.eval.voc import box_iou

BUCKETS = ((0, 12), (12, 24), (24, 48), (48, 10_000))  # the ground truth's longer side, pixels


def best_match(gt_xywh: np.ndarray, boxes: np.ndarray) -> tuple[float, float, float]:
    """(IoU, mean |size error| per side, mean |centre error| per axis) of the best-IoU box (N, 4) xyxy."""
    x, y, w, h = gt_xywh
    iou = box_iou(np.array([x, y, x + w, y + h]), boxes)[0]  # (N,)
    b = boxes[iou.argmax()]
    size_error = (abs((b[2] - b[0]) - w) + abs((b[3] - b[1]) - h)) / 2
    centre_error = (abs((b[0] + b[2]) / 2 - (x + w / 2)) + abs((b[1] + b[3]) / 2 - (y + h / 2))) / 2
    return float(iou.max()), float(size_error), float(centre_error)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights")
    parser.add_argument("data", type=Path)
    parser.add_argument("--split", default="val")
    parser.add_argument("--conf", type=float, default=0.2)
    args = parser.parse_args()
    coco = json.loads((args.data / "annotations" / f"instances_{args.split}.json").read_text())
    model = CenterNet(args.weights)
    label_of = {cid: i for i, cid in enumerate(model.category_ids)}
    by_image: dict[int, list[dict]] = {}
    for a in coco["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    images = coco["images"]
    paths = [str(args.data / "images" / args.split / Path(im["file_name"]).name) for im in images]
    rows = []  # (longer side, IoU, size error, centre error)
    for image, result in zip(images, model.predict(paths, conf=args.conf)):
        for a in by_image.get(image["id"], []):
            gt = np.array(a["bbox"], np.float64)
            mine = result.boxes[result.labels == label_of[a["category_id"]]]
            rows.append((max(gt[2:]), *best_match(gt, mine)) if len(mine) else (max(gt[2:]), 0.0, np.nan, np.nan))
    table = np.array(rows)
    print("| longer side (px) | objects | median IoU | IoU < 0.5 | < 0.75 | < 0.9 | size error / side | centre error / axis |")
    print("|---|---|---|---|---|---|---|---|")
    for lo, hi in BUCKETS:
        r = table[(table[:, 0] >= lo) & (table[:, 0] < hi)]
        iou = r[:, 1]
        side = f"{lo}-{hi}" if hi < 10_000 else f">= {lo}"
        print(f"| {side} | {len(r)} | {np.median(iou):.3f} | {np.mean(iou < 0.5):.2f} | {np.mean(iou < 0.75):.2f} | "
              f"{np.mean(iou < 0.9):.2f} | {np.nanmedian(r[:, 2]):.2f} | {np.nanmedian(r[:, 3]):.2f} |")


if __name__ == "__main__":
    main()
