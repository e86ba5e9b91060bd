"""The pictures of README.md and docs/, made by the demos themselves: ``make docs-images``.

Runs ``centernet demo`` for detection, pose and 3D (about 9 minutes each on 2 CPU cores) into ``runs/docs/``, then
copies a few of each run's pictures into ``docs/images/``, scaled down so that each stays under 200 KB.
``--no-demos`` takes the pictures from run folders already there (``--runs``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
MAX_BYTES = 200_000

# docs/images name: (demo task, file in its run folder; "PREDICTION" is the first drawn val image)
PICTURES: dict[str, tuple[str, str]] = {
    "detect_predictions.jpg": ("detect", "predictions/PREDICTION.jpg"),
    "detect_heatmap.jpg": ("detect", "predictions/PREDICTION_heatmap.jpg"),
    "labels.jpg": ("detect", "labels.jpg"),
    "train_batch0.jpg": ("detect", "train_batch0.jpg"),
    "val_batch0_pred.jpg": ("detect", "val_batch0_pred.jpg"),
    "PR_curve.png": ("detect", "PR_curve.png"),
    "F1_curve.png": ("detect", "F1_curve.png"),
    "confusion_matrix.png": ("detect", "confusion_matrix.png"),
    "results.png": ("detect", "results.png"),
    "pose_predictions.jpg": ("pose", "predictions/PREDICTION.jpg"),
    "joint_ap.png": ("pose", "joint_ap.png"),
    "3d_predictions.jpg": ("3d", "predictions/PREDICTION.jpg"),
    "3d_bev.jpg": ("3d", "predictions/PREDICTION_bev.jpg"),
    "val_bev.jpg": ("3d", "val_bev.jpg"),
}


def first_prediction(run: Path) -> str:
    """The stem of the first image the demo drew (its val images in order)."""
    drawn = sorted(p.stem for p in (run / "predictions").glob("*.jpg") if not p.stem.endswith(("_heatmap", "_bev")))
    if not drawn:
        sys.exit(f"{run / 'predictions'}: no drawn predictions; run the demo first (without --no-demos)")
    return drawn[0]


def write_small(source: Path, target: Path, max_width: int = 800) -> int:
    """``source`` scaled to at most ``max_width`` pixels wide (JPEG quality lowered until under MAX_BYTES)."""
    image = cv2.imread(str(source))
    if image is None:
        sys.exit(f"{source}: missing or unreadable; run the demo first (without --no-demos)")
    if image.shape[1] > max_width:
        scale = max_width / image.shape[1]
        image = cv2.resize(image, (max_width, round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    target.parent.mkdir(parents=True, exist_ok=True)
    for quality in (90, 80, 70, 60):
        params = [cv2.IMWRITE_JPEG_QUALITY, quality] if target.suffix == ".jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 9]
        cv2.imwrite(str(target), image, params)
        if target.stat().st_size <= MAX_BYTES:
            break
    return target.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=str(ROOT / "runs" / "docs"), help="where the demos' run folders go")
    parser.add_argument("--no-demos", action="store_true", help="use the run folders already in --runs")
    parser.add_argument("--demos", nargs="+", choices=("detect", "pose", "3d"), default=("detect", "pose", "3d"),
                        help="the demos to run (the others' run folders must be in --runs already)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"))
    args = parser.parse_args()
    runs, out = Path(args.runs), Path(args.out)
    tasks = sorted({task for task, _ in PICTURES.values()})
    if not args.no_demos:
        for task in args.demos:
            command = [sys.executable, "-m", "centernet", "demo", "--task", task, "--out", str(runs / task)]
            print("$", " ".join(command[2:]), flush=True)
            subprocess.run(command, check=True)
    stems = {task: first_prediction(runs / task) for task in tasks}
    for name, (task, file) in PICTURES.items():
        size = write_small(runs / task / file.replace("PREDICTION", stems[task]), out / name)
        print(f"{out / name}: {size / 1000:.0f} KB")
        if size > MAX_BYTES:
            sys.exit(f"{out / name}: {size} bytes, over {MAX_BYTES}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
