"""The validation's pictures in a run folder: where the model fails, before any number is read.

``val_batch0_labels.jpg`` / ``val_batch0_pred.jpg`` (the first val images with their ground truth, and with the
detections above a display threshold), ``PR_curve.png`` and ``F1_curve.png`` (from the pycocotools evaluation
that gives the AP, at IoU 0.5), ``confusion_matrix.png`` (IoU 0.5, a background row and column), and what the
task adds (:meth:`centernet.tasks.Task.validation_plots`). Each is made by a function of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .eval.coco import PRCurves
from .eval.confusion import ImageBoxes, confusion_matrix, normalise_columns
from .data.dataset import read_image_rgb
from .visualize import class_color, image_grid, save_image

VAL_BATCH_IMAGES = 16   # images in each val_batch0 picture
DISPLAY_SCORE = 0.25    # detections drawn in val_batch0_pred.jpg and counted in the confusion matrix


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save_figure(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _class_colour(c: int) -> np.ndarray:
    return np.array(class_color(c)) / 255


def _legend_entries(curves: PRCurves, values: np.ndarray, shown: int = 10) -> list[int]:
    """The classes drawn one by one: those with ground truth, all when few, else none (the mean alone)."""
    defined = [k for k in range(len(curves.class_names)) if np.isfinite(values[k]).all()]
    return defined if len(defined) <= shown else []


def plot_pr_curves(curves: PRCurves, path: str | Path) -> Path:
    """Precision against recall of each class and of their mean at ``curves.iou``; the legend gives each AP."""
    fig = _figure(6, 5)
    ax = fig.subplots()
    for k in _legend_entries(curves, curves.precision):
        ax.plot(curves.recall, curves.precision[k], lw=1, color=_class_colour(k),
                label=f"{curves.class_names[k]} {curves.ap[k]:.3f}")
    mean = np.nanmean(curves.precision, axis=0) if np.isfinite(curves.ap).any() else np.zeros_like(curves.recall)
    ax.plot(curves.recall, mean, lw=3, color="navy", label=f"all classes {float(np.mean(mean)):.3f} AP@{curves.iou:.2f}")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="precision-recall")
    ax.legend(loc="lower left", fontsize="small")
    ax.grid(alpha=0.3)
    return _save_figure(fig, path)


def plot_f1_curves(curves: PRCurves, path: str | Path) -> Path:
    """F1 against the score threshold, per class and for their mean; the legend gives the best mean F1 and its
    threshold."""
    f1, thresholds = curves.f1, curves.thresholds  # (C, T), (T,)
    fig = _figure(6, 5)
    ax = fig.subplots()
    for k in _legend_entries(curves, f1):
        ax.plot(thresholds, f1[k], lw=1, color=_class_colour(k), label=curves.class_names[k])
    mean = np.nanmean(f1, axis=0) if np.isfinite(f1).any() else np.zeros(len(thresholds))
    best = int(np.argmax(mean))
    ax.plot(thresholds, mean, lw=3, color="navy", label=f"all classes {mean[best]:.2f} at {thresholds[best]:.2f}")
    ax.set(xlabel="score threshold", ylabel="F1", xlim=(0, 1), ylim=(0, 1.02), title=f"F1 at IoU {curves.iou:.2f}")
    ax.legend(loc="lower left", fontsize="small")
    ax.grid(alpha=0.3)
    return _save_figure(fig, path)


def plot_confusion_matrix(
    matrix: np.ndarray, class_names: Sequence[str], path: str | Path, iou: float, score: float
) -> Path:
    """The (C + 1, C + 1) matrix of :func:`~centernet.eval.confusion.confusion_matrix` twice: each true class's
    column normalised to 1, and the counts; the thresholds it used in the title."""
    names = [*class_names, "background"]
    n = len(names)
    side = min(4 + 0.45 * n, 16)
    fig = _figure(2 * side + 1, side)
    annotate = n <= 25
    for ax, values, title, fmt in zip(
        fig.subplots(1, 2), (normalise_columns(matrix), matrix), ("normalised by true class", "counts"), (".2f", "d")
    ):
        image = ax.imshow(values, cmap="Blues", vmin=0)
        fig.colorbar(image, ax=ax, shrink=0.8)
        ax.set_xticks(range(n), names, rotation=90, fontsize="small")
        ax.set_yticks(range(n), names, fontsize="small")
        ax.set(xlabel="true", ylabel="predicted", title=f"{title} (IoU {iou:g}, score >= {score:g})")
        if annotate:
            top = values.max() if values.size and values.max() > 0 else 1
            for (r, c), v in np.ndenumerate(values):
                if v:
                    ax.text(c, r, format(v, fmt), ha="center", va="center", fontsize="x-small",
                            color="white" if v > 0.6 * top else "black")
    return _save_figure(fig, path)


def val_batch_grids(task, split, predictions: Sequence[dict], image_ids: Sequence[int],
                    score: float = DISPLAY_SCORE, count: int = VAL_BATCH_IMAGES) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` val images drawn by the task: with their ground truth, and with the detections scoring
    at least ``score``. Two grids (H, W, 3) uint8 RGB."""
    from .results import Detections

    by_id = {s.image_id: s for s in split.samples}
    labels_tiles, pred_tiles = [], []
    for prediction, image_id in list(zip(predictions, image_ids))[:count]:
        sample = by_id[image_id]
        image = read_image_rgb(sample.image_path)
        truth = Detections(sample.boxes, np.ones(len(sample.labels), np.float32), sample.labels, split.class_names,
                           image, calib=sample.calib, task=task, **task.ground_truth_fields(sample))
        arrays = {k: np.asarray(v) for k, v in prediction.items()}
        keep = arrays["scores"] >= score
        kept = {k: v[keep] for k, v in arrays.items()}
        found = Detections(kept["boxes"], kept["scores"], kept["labels"], split.class_names, image,
                           calib=sample.calib, task=task, **task.result_fields(kept))
        labels_tiles.append(truth.plot())
        pred_tiles.append(found.plot())
    return image_grid(labels_tiles), image_grid(pred_tiles)


def image_boxes(split, predictions: Sequence[dict], image_ids: Sequence[int]) -> tuple[list[ImageBoxes], list[ImageBoxes]]:
    """Ground truth (ignore regions included) and detections of each image, for :func:`confusion_matrix`."""
    by_id = {s.image_id: s for s in split.samples}
    truth, found = [], []
    for prediction, image_id in zip(predictions, image_ids):
        s = by_id[image_id]
        truth.append(ImageBoxes(s.boxes, s.labels, ignore=s.ignore_boxes, ignore_labels=s.ignore_labels))
        found.append(ImageBoxes(np.asarray(prediction["boxes"]), np.asarray(prediction["labels"]),
                                np.asarray(prediction["scores"])))
    return truth, found


def write_validation_plots(
    task, split, predictions: Sequence[dict], image_ids: Sequence[int], curves: PRCurves | None, out_dir: str | Path,
    score: float = DISPLAY_SCORE, iou: float = 0.5,
) -> list[Path]:
    """Every validation picture of :mod:`centernet.plots` in ``out_dir``, and the task's own; their paths."""
    out_dir = Path(out_dir)
    written = []
    if predictions:
        labels_grid, pred_grid = val_batch_grids(task, split, predictions, image_ids, score)
        written += [save_image(out_dir / "val_batch0_labels.jpg", labels_grid),
                    save_image(out_dir / "val_batch0_pred.jpg", pred_grid)]
    if curves is not None:
        written += [plot_pr_curves(curves, out_dir / "PR_curve.png"), plot_f1_curves(curves, out_dir / "F1_curve.png")]
    truth, found = image_boxes(split, predictions, image_ids)
    matrix = confusion_matrix(truth, found, split.num_classes, iou, score)
    written.append(plot_confusion_matrix(matrix, split.class_names, out_dir / "confusion_matrix.png", iou, score))
    written += task.validation_plots(split, predictions, image_ids, out_dir)
    return written
