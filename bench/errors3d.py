"""Where a 3D model goes wrong: its errors in depth, position, size and angle on a KITTI-format split.

    python bench/errors3d.py runs/demo_3d/best.pt DATA [--split val] [--conf 0.1]

DATA is a KITTI folder (e.g. the shapes3d folder under ~/.cache/centernet/datasets, or a real KITTI
copy). Each ground-truth object is matched to the detection of the same class with the largest 2D IoU;
matches with IoU >= 0.5 and score >= --conf count. Prints median errors: relative depth, lateral x,
dimensions (mean over h w l), and the observation angle alpha (wrapped to [0, 180] degrees; a random guess
gives a median of 90). Also KITTI's moderate AP at the official overlaps and at looser ones (Car 0.5,
others 0.25), so a model that is not yet good enough for the official overlaps still shows its progress.
"""

from __future__ import annotations

import argparse

import numpy as np

from centernet import CenterNet
from centernet.data import load_split
from centernet.tasks.mono3d.metrics import KittiEvalSettings, evaluate_kitti
from centernet.ops.boxes import box_iou

LOOSE = {"Car": (0.5,) * 3, "Pedestrian": (0.25,) * 3, "Cyclist": (0.25,) * 3}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("weights")
    parser.add_argument("data")
    parser.add_argument("--split", default="val")
    parser.add_argument("--conf", type=float, default=0.1)
    args = parser.parse_args()
    model = CenterNet(args.weights)
    split = load_split(args.data, args.split, needs=("objects3d", "calib"))
    results = model.predict([s.image_path for s in split.samples], conf=0.0)
    depth, lateral, dims, angle = [], [], [], []
    for sample, r in zip(split.samples, results):
        keep = r.scores >= args.conf
        if not len(sample.boxes) or not keep.any():
            continue
        o = {k: v[keep] for k, v in r.objects3d.items()}
        iou = box_iou(sample.boxes, r.boxes[keep])                        # (N, D)
        iou[sample.labels[:, None] != r.labels[keep][None, :]] = 0
        for i, j in enumerate(iou.argmax(axis=1)):
            if iou[i, j] < 0.5:
                continue
            h, w, l, x, y, z, _, alpha = sample.objects3d[i]
            depth.append(abs(o["location"][j, 2] - z) / z)
            lateral.append(abs(o["location"][j, 0] - x))
            dims.append(np.abs(o["dimensions"][j] - (h, w, l)).mean())
            angle.append(abs((o["alpha"][j] - alpha + np.pi) % (2 * np.pi) - np.pi))
    print(f"{args.weights} on {split.source}: {len(depth)} objects matched (2D IoU >= 0.5, score >= {args.conf})")
    if depth:
        depth_a, angle_deg = np.asarray(depth), np.degrees(angle)
        print(f"  depth: median error {100 * np.median(depth_a):.1f} %, within 10 %: {100 * (depth_a < 0.1).mean():.0f} %")
        print(f"  lateral x: median error {np.median(lateral):.2f} m; dimensions: {np.median(dims):.2f} m")
        print(f"  alpha: median error {np.median(angle_deg):.0f} deg, within 30 deg: "
              f"{100 * (angle_deg < 30).mean():.0f} %, off by more than 150 deg: {100 * (angle_deg > 150).mean():.0f} %")
    truth = [s.labels3d for s in split.samples]
    found = [r.to_kitti() for r in results]
    for name, settings in (("official overlaps", KittiEvalSettings()), ("looser overlaps", KittiEvalSettings(min_overlap=LOOSE))):
        m = evaluate_kitti(truth, found, settings)
        row = ", ".join(f"{k} {m[k]:.3f}" for k in ("ap2d_moderate", "aos_moderate", "bev_ap_moderate", "ap3d_moderate"))
        print(f"  {name}: {row}")


if __name__ == "__main__":
    main()
