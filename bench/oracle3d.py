"""What limits a 3D model's AP: each factor of its matched detections replaced by the ground truth's, one at a time.

    python bench/oracle3d.py runs/demo_3d/best.pt DATA [--split val] [--depth-readout pooled]

Each ground-truth object is matched to the highest-scoring detection of its class with 2D IoU >= 0.5
(``match_detections``, as for the median errors). For the matched detections one factor at a time is made exact:
the depth (the location moved along its ray to the true z), the lateral position x, the dimensions, the heading
(rotation_y and alpha), or everything. Printed: Car BEV and 3D AP (moderate, R40) at IoU 0.7 and 0.5 for the model as it is and for each
replacement; the factor whose replacement lifts AP most is the one to work on.
"""

from __future__ import annotations

import argparse
import dataclasses

from centernet import CenterNet
from centernet.data import load_split
from centernet.data.kitti import KittiObject
from centernet.tasks.mono3d.metrics import LOOSE_OVERLAP, KittiEvalSettings, evaluate_kitti, match_detections

FACTORS = ("depth", "lateral", "dimensions", "heading", "everything")


def replaced(det: KittiObject, gt: KittiObject, factor: str) -> KittiObject:
    """``det`` with ``factor`` taken from ``gt``."""
    x, y, z = det.location
    if factor in ("depth", "everything"):
        scale = gt.location[2] / z
        x, y, z = x * scale, y * scale, gt.location[2]
    if factor in ("lateral", "everything"):
        x = gt.location[0]
    changes = {"location": (x, y, z)}
    if factor in ("dimensions", "everything"):
        changes["dimensions"] = gt.dimensions
    if factor in ("heading", "everything"):
        changes |= {"rotation_y": gt.rotation_y, "alpha": gt.alpha}
    return dataclasses.replace(det, **changes)


def with_truth(truth: list[KittiObject], found: list[KittiObject], factor: str) -> list[KittiObject]:
    """One image's detections with ``factor`` exact for each matched one (:func:`match_detections`)."""
    result = list(found)
    for i, j in match_detections(truth, found):
        result[j] = replaced(found[j], truth[i], factor)
    return result


def car_row(truth: list[list[KittiObject]], found: list[list[KittiObject]]) -> str:
    strict = evaluate_kitti(truth, found, KittiEvalSettings(classes=("Car",)))["per_class"]["Car"]["moderate"]
    loose = evaluate_kitti(truth, found, KittiEvalSettings(classes=("Car",), min_overlap=LOOSE_OVERLAP))
    loose = loose["per_class"]["Car"]["moderate"]
    return (f"BEV@0.7 {strict['bev']:.3f}  3D@0.7 {strict['3d']:.3f}  BEV@0.5 {loose['bev']:.3f}  "
            f"3D@0.5 {loose['3d']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("weights")
    parser.add_argument("data")
    parser.add_argument("--split", default="val")
    parser.add_argument("--depth-readout", choices=("peak", "pooled"), help="read the depths so (default: the model's)")
    args = parser.parse_args()
    model = CenterNet(args.weights)
    if args.depth_readout:
        model.task.depth_readout = args.depth_readout
    split = load_split(args.data, args.split, needs=("objects3d", "calib"))
    results = model.predict([s.image_path for s in split.samples], conf=0.01)
    truth = [list(s.labels3d) for s in split.samples]
    found = [r.to_kitti() for r in results]
    print(f"{args.weights} on {split.source}, Car (moderate, R40)")
    print(f"  {'as predicted':<22}{car_row(truth, found)}")
    for factor in FACTORS:
        exact = [with_truth(t, f, factor) for t, f in zip(truth, found)]
        print(f"  {'exact ' + factor:<22}{car_row(truth, exact)}")


if __name__ == "__main__":
    main()
