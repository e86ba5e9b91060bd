"""OKS AP of one pose checkpoint under each joint-peak rule: the decoder alone, with the weights fixed.

    python bench/pose_decode.py WEIGHTS DATA [--split val] [--distance-scales 0.025,0.05,0.1]

Validates WEIGHTS on DATA once with the original's rule (each regressed joint moves onto the nearest
joint-heatmap peak) and once per distance scale with the score-and-distance rule (``JointSnapSettings``),
and prints a markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from centernet import CenterNet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", help="a pose checkpoint (best.pt / last.pt)")
    parser.add_argument("data", help="the dataset it was trained on (for the demo: its shapes_pose folder)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--distance-scales", default="0.025,0.05,0.1",
                        help="comma-separated fractions of the person's size tried with the score-and-distance rule")
    args = parser.parse_args()
    model = CenterNet.load(args.weights)
    if model.task.name != "pose":
        raise SystemExit(f"{args.weights}: a {model.task.name} model; this compares pose decoders")
    default = model.task.snap
    rules = [replace(default, peak="nearest")]
    rules += [replace(default, peak="score_distance", distance_scale=float(s)) for s in args.distance_scales.split(",")]
    print("| joint peak | distance scale | OKS AP | AP50 | AP75 | box mAP |")
    print("|---|---|---|---|---|---|")
    for snap in rules:
        model.task.snap = snap
        m = model.val(args.data, split=args.split, progress=False)
        scale = "-" if snap.peak == "nearest" else f"{snap.distance_scale:g}"
        figures = " | ".join(f"{m[key]:.3f}" for key in ("kp_map", "kp_map50", "kp_map75", "map"))
        print(f"| {snap.peak} | {scale} | {figures} |", flush=True)


if __name__ == "__main__":
    main()
