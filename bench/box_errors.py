"""How well a detector's boxes fit: where the IoU thresholds of AP@[.5:.95] are lost.

    python bench/box_errors.py WEIGHTS COCO_FOLDER [--split val] [--conf 0.2]

Prints four markdown tables:
1. AP at each IoU threshold from .50 to .95 (``ap_by_iou`` of ``CenterNet.val``);
2. for every ground-truth box of the split, the detection of its class (score >= conf) with the highest IoU;
   then, per bucket of the box's longer side: the median IoU, the fraction below 0.5 / 0.75 / 0.9 (a missed
   object counts as IoU 0), and the median error per side of the width and height and of the centre, in
   image pixels;
3. the same matches with the centre made exact (the predicted size about the true centre) or the size made
   exact (the true size about the predicted centre): the share of objects at IoU >= 0.75 / 0.85 / 0.9, which
   says which of the two loses the high thresholds;
4. for a built-in shapes folder, the median IoU by the share of the object left visible by later ones (its
   box is amodal: the whole shape's, covered or not).

COCO_FOLDER is a folder with ``annotations/instances_<split>.json`` and ``images/<split>`` (the built-in
shapes sets are such folders).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import yaml

from centernet import CenterNet
from centernet.data.shapes import ShapesConfig, visible_fractions
from centernet.ops.boxes import box_iou

BUCKETS = ((0, 12), (12, 24), (24, 48), (48, 10_000))  # the ground truth's longer side, pixels
VISIBLE = (("0.5-0.7", 0.5, 0.7), ("0.7-0.9", 0.7, 0.9), ("0.9-1", 0.9, 1.0), ("1 (not covered)", 1.0, 1.1))
MISSED = (0.0, 0.0, 0.0, np.nan, np.nan)


def best_match(gt_xywh: np.ndarray, boxes: np.ndarray) -> tuple[float, ...]:
    """Of the best-IoU box (N, 4) xyxy: IoU, IoU with the centre made exact, IoU with the size made exact,
    mean |size error| per side, mean |centre error| per axis."""
    x, y, w, h = gt_xywh
    true = np.array([x, y, x + w, y + h])
    iou = box_iou(true, boxes)[0]  # (N,)
    b = boxes[iou.argmax()]
    centre, size = (b[:2] + b[2:]) / 2, b[2:] - b[:2]
    true_centre, true_size = (true[:2] + true[2:]) / 2, true[2:] - true[:2]
    exact_centre = box_iou(true, np.concatenate([true_centre - size / 2, true_centre + size / 2])[None])[0, 0]
    exact_size = box_iou(true, np.concatenate([centre - true_size / 2, centre + true_size / 2])[None])[0, 0]
    size_error = np.abs(size - true_size).mean()
    centre_error = np.abs(centre - true_centre).mean()
    return float(iou.max()), float(exact_centre), float(exact_size), float(size_error), float(centre_error)


def shapes_visibility(folder: Path, split: str, images: list[dict]) -> list[np.ndarray] | None:
    """Each image's visible fractions, in its annotation order, if ``folder`` is a built-in shapes set."""
    settings = folder / "dataset.yaml"
    if not settings.is_file():
        return None
    info = yaml.safe_load(settings.read_text())
    if info.get("name") != "shapes":
        return None
    cfg = ShapesConfig(**info["settings"])
    return [visible_fractions(cfg, split, int(Path(im["file_name"]).stem)) for im in images]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights")
    parser.add_argument("data", type=Path)
    parser.add_argument("--split", default="val")
    parser.add_argument("--conf", type=float, default=0.2)
    args = parser.parse_args()
    model = CenterNet(args.weights)

    by_iou = model.val(str(args.data), split=args.split, progress=False)["ap_by_iou"]
    print("| IoU | " + " | ".join(by_iou) + " |\n|---|" + "---|" * len(by_iou))
    print("| AP | " + " | ".join(f"{ap:.3f}" for ap in by_iou.values()) + " |\n")

    coco = json.loads((args.data / "annotations" / f"instances_{args.split}.json").read_text())
    label_of = {cid: i for i, cid in enumerate(model.category_ids)}
    by_image: dict[int, list[dict]] = {}
    for a in coco["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    images = coco["images"]
    visibility = shapes_visibility(args.data, args.split, images)
    paths = [str(args.data / "images" / args.split / Path(im["file_name"]).name) for im in images]
    rows = []  # (longer side, visible share, IoU, IoU exact centre, IoU exact size, size error, centre error)
    for k, (image, result) in enumerate(zip(images, model.predict(paths, conf=args.conf))):
        for j, a in enumerate(by_image.get(image["id"], [])):
            gt = np.array(a["bbox"], np.float64)
            mine = result.boxes[result.labels == label_of[a["category_id"]]]
            visible = visibility[k][j] if visibility is not None else np.nan
            rows.append((max(gt[2:]), visible, *(best_match(gt, mine) if len(mine) else MISSED)))
    table = np.array(rows)

    print("| longer side (px) | objects | median IoU | IoU < 0.5 | < 0.75 | < 0.9 | size error / side | centre error / axis |")
    print("|---|---|---|---|---|---|---|---|")
    for lo, hi in BUCKETS:
        r = table[(table[:, 0] >= lo) & (table[:, 0] < hi)]
        iou = r[:, 2]
        side = f"{lo}-{hi}" if hi < 10_000 else f">= {lo}"
        print(f"| {side} | {len(r)} | {np.median(iou):.3f} | {np.mean(iou < 0.5):.2f} | {np.mean(iou < 0.75):.2f} | "
              f"{np.mean(iou < 0.9):.2f} | {np.nanmedian(r[:, 5]):.2f} | {np.nanmedian(r[:, 6]):.2f} |")

    print("\n| share of objects with IoU >= | 0.75 | 0.85 | 0.9 |\n|---|---|---|---|")
    for name, column in (("as predicted", 2), ("centre made exact", 3), ("size made exact", 4)):
        print(f"| {name} | " + " | ".join(f"{np.mean(table[:, column] >= t):.3f}" for t in (0.75, 0.85, 0.9)) + " |")

    if visibility is not None:
        print("\n| visible share of the object | objects | median IoU | IoU >= 0.75 | IoU >= 0.9 |\n|---|---|---|---|---|")
        for name, lo, hi in VISIBLE:  # share of the object's pixels left visible
            r = table[(table[:, 1] >= lo) & (table[:, 1] < hi)]
            print(f"| {name} | {len(r)} | {np.median(r[:, 2]):.3f} | {np.mean(r[:, 2] >= 0.75):.2f} | "
                  f"{np.mean(r[:, 2] >= 0.9):.2f} |")


if __name__ == "__main__":
    main()
