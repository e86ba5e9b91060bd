"""BCCD (Pascal VOC) rewritten into the layouts users download: the same training gives the same AP.

    python bench/layouts.py [--data ../shared/data/bccd] [--epochs 3] [--out runs/layouts]

Writes the VOC set's train and val splits (images linked, not copied) as
1. a Roboflow COCO export: ``train/`` and ``valid/``, each with its images and ``_annotations.coco.json``
   (with the dataset-named parent category 0 Roboflow adds);
2. a Roboflow VOC export: ``train/`` and ``valid/``, each xml beside its image, no ImageSets;
3. a YOLO folder without a yaml: ``images/{train,valid}``, ``labels/{train,valid}``, ``classes.txt``;
4. a dataset file mixing them: train from 1, val from 2;
then trains ``resnet18_shortcut`` on each and on the original folder with one seed (deterministic, fp32, the
data loader in the main process) and prints a markdown table of the val AP. The split ``val`` is found as
``valid`` in each.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from centernet import CenterNet
from centernet.data import load_split


def link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        os.symlink(source.resolve(), target)


def write_layouts(data: Path, out: Path) -> dict[str, Path]:
    """The four rewritten datasets under ``out``, by name."""
    splits = {"train": load_split(data, "train"), "valid": load_split(data, "val")}
    names = splits["train"].class_names
    coco, voc, yolo = out / "roboflow_coco", out / "roboflow_voc", out / "yolo_no_yaml"
    for folder, split in splits.items():
        images, annotations = [], []
        for i, sample in enumerate(split.samples, start=1):
            name = sample.image_path.name
            link(sample.image_path, coco / folder / name)
            link(sample.image_path, voc / folder / name)
            link(data / "Annotations" / f"{sample.image_path.stem}.xml", voc / folder / f"{sample.image_path.stem}.xml")
            link(sample.image_path, yolo / "images" / folder / name)
            images.append({"id": i, "file_name": name, "width": sample.width, "height": sample.height})
            rows = []
            for (x1, y1, x2, y2), label in zip(sample.boxes.tolist(), sample.labels.tolist()):
                annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": label + 1,
                                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
                cx, cy = (x1 + x2) / 2 / sample.width, (y1 + y2) / 2 / sample.height
                w, h = (x2 - x1) / sample.width, (y2 - y1) / sample.height
                rows.append(f"{label} {cx:.9f} {cy:.9f} {w:.9f} {h:.9f}\n")
            regions = [] if sample.ignore_labels is None else zip(sample.ignore_boxes.tolist(), sample.ignore_labels)
            for (x1, y1, x2, y2), label in regions:  # difficult objects: crowd boxes of their class
                annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": int(label) + 1,
                                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 1})
            (yolo / "labels" / folder).mkdir(parents=True, exist_ok=True)
            (yolo / "labels" / folder / f"{sample.image_path.stem}.txt").write_text("".join(rows))
        categories = [{"id": 0, "name": "bccd-cells", "supercategory": "none"}]
        categories += [{"id": k + 1, "name": n, "supercategory": "bccd-cells"} for k, n in enumerate(names)]
        coco_json = {"images": images, "annotations": annotations, "categories": categories}
        (coco / folder / "_annotations.coco.json").write_text(json.dumps(coco_json))
    (yolo / "classes.txt").write_text("".join(f"{n}\n" for n in names))
    mixed = out / "mixed.yaml"
    mixed.write_text(f"names: {names}\ntrain: {{coco: roboflow_coco/train/_annotations.coco.json}}\n"
                     "val: {voc: roboflow_voc/valid}\n")
    return {"roboflow_coco": coco, "roboflow_voc": voc, "yolo_no_yaml": yolo, "mixed.yaml": mixed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "bccd"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--input-size", type=int, default=256)
    parser.add_argument("--out", default="runs/layouts")
    args = parser.parse_args()
    out = Path(args.out)
    datasets = {"VOC with ImageSets (the original)": Path(args.data)} | write_layouts(Path(args.data), out / "data")
    settings = dict(epochs=args.epochs, batch_size=8, input_size=args.input_size, optimizer="adamw", lr=2e-3,
                    schedule="cosine", warmup_iters=10, workers=0, precision="fp32", deterministic=True, ema=False,
                    val_interval=args.epochs, progress=False)
    print(f"{args.epochs} epochs at {args.input_size} px, seed 0, deterministic, fp32\n")
    print("| layout | train / val images | val mAP | AP50 |")
    print("|---|---|---|---|")
    for name, data in datasets.items():
        torch.manual_seed(0)
        model = CenterNet("resnet18_shortcut")
        metrics = model.train(data=str(data), out=out / "runs" / Path(name).stem.split()[0], **settings)
        sizes = f"{len(load_split(data, 'train').samples)} / {len(load_split(data, 'val').samples)}"
        print(f"| {name} | {sizes} | {metrics['map']:.4f} | {metrics['map50']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
