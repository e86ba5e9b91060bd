"""Drawing helpers: boxes on images, heatmap overlays and training curves.

All images here are RGB ``uint8`` arrays of shape (H, W, 3); conversion to OpenCV's
BGR order happens only when writing to disk (:func:`save_image`). Boxes, labels,
scores and heatmaps may be given as torch tensors or numpy arrays.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from centernet.errors import CenterNetError

__all__ = [
    "PALETTE", "check_image", "class_color", "draw_boxes", "heatmap_overlay", "plot_training_curves", "save_image",
    "to_numpy",
]

# A fixed palette of well-separated RGB colours; class ``c`` uses PALETTE[c % len].
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128),
)


def to_numpy(value: Any) -> np.ndarray:
    """Return a torch tensor, numpy array or sequence as a numpy array."""
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch here
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def check_image(image: Any, name: str = "image") -> np.ndarray:
    """Validate an RGB uint8 (H, W, 3) image and return it as a numpy array."""
    image = to_numpy(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise CenterNetError(f"{name}: shape {tuple(image.shape)}, expected (H, W, 3) RGB")
    if image.dtype != np.uint8:
        raise CenterNetError(f"{name}: dtype {image.dtype}, expected uint8")
    return image


def class_color(label: int) -> tuple[int, int, int]:
    """The palette colour (RGB) for a class index."""
    return PALETTE[int(label) % len(PALETTE)]


def _text_color(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``background`` (RGB)."""
    r, g, b = background
    luminance = 0.299 * r + 0.587 * g + 0.114 * b
    return (0, 0, 0) if luminance > 140 else (255, 255, 255)


def draw_boxes(
    image: np.ndarray,
    boxes: Any,
    labels: Any,
    scores: Any | None = None,
    class_names: Sequence[str] | None = None,
    score_threshold: float = 0.3,
) -> np.ndarray:
    """Draw labelled boxes on a copy of an RGB image.

    Args:
        image: (H, W, 3) uint8 RGB image; not modified.
        boxes: (N, 4) boxes as x1, y1, x2, y2 in pixels.
        labels: (N,) integer class indices.
        scores: (N,) confidences, or None to draw every box without a score.
        class_names: names indexed by label; a label without a name is shown as
            its number.
        score_threshold: boxes with a score below this are not drawn (ignored
            when ``scores`` is None).

    Returns:
        A new (H, W, 3) uint8 RGB image.
    """
    canvas = np.ascontiguousarray(check_image(image)).copy()
    boxes_np = to_numpy(boxes).astype(np.float64).reshape(-1, 4)
    labels_np = to_numpy(labels).reshape(-1).astype(np.int64)
    scores_np = None if scores is None else to_numpy(scores).astype(np.float64).reshape(-1)
    if len(labels_np) != len(boxes_np) or (scores_np is not None and len(scores_np) != len(boxes_np)):
        raise CenterNetError(f"draw_boxes: {len(boxes_np)} boxes, {len(labels_np)} labels and "
                             f"{'no' if scores_np is None else len(scores_np)} scores, expected equal counts")

    height, width = canvas.shape[:2]
    thickness = max(1, round(0.003 * max(height, width)))
    font = cv2.FONT_HERSHEY_SIMPLEX
    font_scale = max(0.35, 0.2 * thickness + 0.2)
    font_thickness = max(1, thickness // 2)

    # Draw low scores first so the most confident boxes and tags end up on top.
    order = np.arange(len(boxes_np)) if scores_np is None else np.argsort(scores_np, kind="stable")
    for i in order:
        if scores_np is not None and not scores_np[i] >= score_threshold:
            continue
        if not np.all(np.isfinite(boxes_np[i])):
            continue
        x1, y1, x2, y2 = (int(round(v)) for v in boxes_np[i])
        x1, x2 = sorted((min(max(x1, 0), width - 1), min(max(x2, 0), width - 1)))
        y1, y2 = sorted((min(max(y1, 0), height - 1), min(max(y2, 0), height - 1)))
        label = int(labels_np[i])
        color = class_color(label)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, thickness, lineType=cv2.LINE_8)

        name = class_names[label] if class_names is not None and 0 <= label < len(class_names) else str(label)
        text = name if scores_np is None else f"{name} {scores_np[i]:.2f}"
        (text_w, text_h), baseline = cv2.getTextSize(text, font, font_scale, font_thickness)
        pad = max(1, thickness)
        tag_h = text_h + baseline + 2 * pad
        # Put the tag above the box; if there is no room, put it just inside the top edge.
        tag_y1 = y1 - tag_h if y1 - tag_h >= 0 else y1
        tag_x1 = min(x1, max(0, width - text_w - 2 * pad))
        cv2.rectangle(canvas, (tag_x1, tag_y1), (tag_x1 + text_w + 2 * pad, tag_y1 + tag_h), color, cv2.FILLED)
        cv2.putText(canvas, text, (tag_x1 + pad, tag_y1 + pad + text_h), font, font_scale,
                    _text_color(color), font_thickness, lineType=cv2.LINE_AA)
    return canvas


def heatmap_overlay(image: np.ndarray, heatmap: Any, alpha: float = 0.5) -> np.ndarray:
    """Blend a JET-coloured heatmap over an RGB image.

    Args:
        image: (H, W, 3) uint8 RGB image; not modified.
        heatmap: (h, w) values in [0, 1] (e.g. the class-max of the sigmoid heatmap
            at stride 4), or (C, h, w), which is reduced by a max over C. Values
            outside [0, 1] are clipped, NaN counts as 0. Resized bilinearly to (H, W).
        alpha: weight of the heatmap colours, 0 (image only) to 1 (heatmap only).

    Returns:
        A new (H, W, 3) uint8 RGB image.
    """
    image = check_image(image)
    if not 0.0 <= alpha <= 1.0:
        raise CenterNetError(f"alpha: {alpha}, expected a value in [0, 1]")
    heat = to_numpy(heatmap).astype(np.float32)
    if heat.ndim == 3:
        heat = heat.max(axis=0)
    if heat.ndim != 2 or heat.size == 0:
        raise CenterNetError(f"heatmap: shape {tuple(heat.shape)}, expected (h, w) or (C, h, w)")
    heat = np.clip(np.nan_to_num(heat, nan=0.0), 0.0, 1.0)
    height, width = image.shape[:2]
    heat = cv2.resize(heat, (width, height), interpolation=cv2.INTER_LINEAR)
    colored_bgr = cv2.applyColorMap(np.round(heat * 255.0).astype(np.uint8), cv2.COLORMAP_JET)
    colored = cv2.cvtColor(colored_bgr, cv2.COLOR_BGR2RGB)
    blended = cv2.addWeighted(np.ascontiguousarray(image), 1.0 - alpha, colored, alpha, 0.0)
    return blended


def _parse_float(text: str | None) -> float | None:
    """A CSV cell as a finite float, or None when it is empty or not a number."""
    if text is None or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _minor_log_label(value: float, _position: Any = None) -> str:
    """Tick label for a minor log-axis tick: shown only for mantissas 2, 3 and 5."""
    if value <= 0:
        return ""
    mantissa = value / 10 ** math.floor(math.log10(value))
    return f"{value:g}" if any(abs(mantissa - m) < 1e-6 for m in (2, 3, 5)) else ""


def _is_loss_column(name: str) -> bool:
    return name.startswith("loss") or name.endswith("_loss")


def _is_metric_column(name: str) -> bool:
    return name in ("map", "map50", "map75") or name.startswith("map_")


def plot_training_curves(results_csv: str | Path, out_png: str | Path) -> Path:
    """Plot losses and mAP metrics from a run's results.csv into a two-panel PNG.

    The CSV needs an ``epoch`` column. Loss columns are those named ``loss*`` or
    ``*_loss`` (drawn on a log scale when all values are positive); metric columns
    are ``map``, ``map50``, ``map75`` and ``map_*``. Empty cells are skipped, so
    metrics only appear at epochs that ran validation.

    Returns:
        The path of the written PNG (parent directories are created).
    """
    results_csv, out_png = Path(results_csv), Path(out_png)
    if not results_csv.is_file():
        raise CenterNetError(f"results csv: {results_csv} does not exist, expected a results.csv file")
    with results_csv.open(newline="") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        rows = [{(k or "").strip(): v for k, v in row.items()} for row in reader]
    if "epoch" not in columns:
        raise CenterNetError(f"results csv: {results_csv} has columns {columns}, expected an 'epoch' column")

    def series(column: str) -> tuple[list[float], list[float]]:
        xs, ys = [], []
        for row in rows:
            x, y = _parse_float(row.get("epoch")), _parse_float(row.get(column))
            if x is not None and y is not None:
                xs.append(x)
                ys.append(y)
        return xs, ys

    loss_series = {c: series(c) for c in columns if _is_loss_column(c)}
    metric_series = {c: series(c) for c in columns if _is_metric_column(c)}

    # Object-oriented matplotlib (no pyplot): renders with Agg, never opens a window
    # and leaves the global backend alone.
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

    fig = Figure(figsize=(11, 4.2), dpi=100, layout="constrained")
    ax_loss, ax_metric = fig.subplots(1, 2, sharex=True)

    plotted_losses = {c: s for c, s in loss_series.items() if s[0]}
    for column, (xs, ys) in plotted_losses.items():
        ax_loss.plot(xs, ys, marker="." if len(xs) < 30 else None, label=column)
    if plotted_losses and all(y > 0 for _, ys in plotted_losses.values() for y in ys):
        ax_loss.set_yscale("log")
        # Plain decimals ("0.4", "2") rather than the default "4x10^-1" tick labels;
        # minor ticks get labels (2, 3, 5 per decade) only when the range is narrow.
        ax_loss.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        values = [y for _, ys in plotted_losses.values() for y in ys]
        if math.log10(max(values) / min(values)) < 2.0:
            ax_loss.yaxis.set_minor_formatter(FuncFormatter(_minor_log_label))
        else:
            ax_loss.yaxis.set_minor_formatter(NullFormatter())
    ax_loss.set_title("Losses")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")

    plotted_metrics = {c: s for c, s in metric_series.items() if s[0]}
    for column, (xs, ys) in plotted_metrics.items():
        ax_metric.plot(xs, ys, marker="o", label=column)
    ax_metric.set_title("Validation mAP")
    ax_metric.set_xlabel("epoch")
    ax_metric.set_ylabel("AP")
    if plotted_metrics:
        top = max(y for _, ys in plotted_metrics.values() for y in ys)
        ax_metric.set_ylim(0.0, max(0.05, min(1.0, top * 1.15)))

    epochs = [x for xs, _ in (*plotted_losses.values(), *plotted_metrics.values()) for x in xs]
    if epochs and max(epochs) - min(epochs) < 1:
        ax_loss.set_xlim(min(epochs) - 1, max(epochs) + 1)  # a single epoch: keep integer ticks
    for ax, plotted in ((ax_loss, plotted_losses), (ax_metric, plotted_metrics)):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if plotted:
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="gray")

    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, format="png")
    return out_png


def save_image(path: str | Path, image_rgb: np.ndarray) -> Path:
    """Write an RGB (H, W, 3) or grayscale (H, W) uint8 image with OpenCV.

    Parent directories are created; the format follows the file extension.
    Returns the path written.
    """
    path = Path(path)
    image = to_numpy(image_rgb)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise CenterNetError(f"image: shape {tuple(image.shape)} dtype {image.dtype}, "
                             "expected (H, W, 3) or (H, W) uint8")
    path.parent.mkdir(parents=True, exist_ok=True)
    out = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    try:
        ok = cv2.imwrite(str(path), out)
    except cv2.error as exc:
        raise CenterNetError(f"save_image: cannot write {path}, "
                             "expected an image extension such as .png or .jpg") from exc
    if not ok:
        raise CenterNetError(f"save_image: cannot write {path}, expected a writable path with an image extension")
    return path


def training_batch_grid(
    images: torch.Tensor,              # (B, 3, H, W) normalised, as the model sees them
    targets: dict[str, torch.Tensor],  # the batch's targets: index, size, offset, mask (B, M); dense or sparse heatmap
    mean: Sequence[float],
    std: Sequence[float],
    class_names: Sequence[str],
    stride: int = 4,
    max_images: int = 16,
    max_width: int = 1600,
    task: Any = None,
) -> np.ndarray:
    """A grid (rows of 4) of the first ``max_images`` training images after augmentation, de-normalised, with the
    target heatmap blended over each and each object's box as the targets encode it (``peak + offset`` and
    ``size``, at the output stride): what the model is asked to learn. Targets without a heatmap or boxes (a task of
    another kind) leave those out; ``task`` draws its own targets over them (:meth:`Task.draw_targets`: joints,
    depths). (H', W', 3) uint8 RGB."""
    count = min(len(images), max_images)
    pixels = images[:count].detach().float().cpu() * torch.tensor(std).view(1, 3, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1)
    pixels = (pixels.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()  # (n, H, W, 3)
    out_h, out_w = images.shape[2] // stride, images.shape[3] // stride
    heatmaps = None
    if "heatmap" in targets:
        heatmaps = targets["heatmap"].float().cpu()
    elif {"index", "mask", "peak_class", "peak_radius"} <= set(targets):  # sparse: drawn as the dense encoder would
        from .ops.sparse import render_heatmap

        heatmaps = render_heatmap({k: v.cpu() for k, v in targets.items()}, len(class_names), (out_h, out_w))[0]
    has_boxes = heatmaps is not None and {"index", "size", "offset", "mask"} <= set(targets)
    tiles = []
    for n in range(count):
        tile = pixels[n] if heatmaps is None else heatmap_overlay(pixels[n], heatmaps[n], alpha=0.4)
        if not has_boxes:  # a task whose targets are not boxes: the images and heatmap only
            tiles.append(tile)
            continue
        mask = targets["mask"][n].cpu() > 0
        index = targets["index"][n].cpu()[mask]
        centre = torch.stack([index % out_w, index // out_w], dim=-1).float() + targets["offset"][n].cpu()[mask].float()
        size = targets["size"][n].cpu()[mask].float()
        boxes = torch.cat([centre - size / 2, centre + size / 2], dim=-1) * stride  # (P, 4) input pixels
        labels = heatmaps[n].flatten(1)[:, index].argmax(0) if len(index) else torch.zeros(0)
        tile = draw_boxes(tile, boxes.numpy(), labels.numpy().astype(np.int64), class_names=class_names)
        if task is not None:
            tile = task.draw_targets(tile, {k: v[n].cpu() for k, v in targets.items()}, out_w, stride)
        tiles.append(tile)
    return image_grid(tiles, columns=4, max_width=max_width)


def image_grid(tiles: list[np.ndarray], columns: int = 4, max_width: int = 1600) -> np.ndarray:
    """Images (H, W, 3) uint8 in rows of ``columns``, each fitted into the first one's size, the whole scaled
    down to ``max_width``."""
    height, width = tiles[0].shape[:2]
    fitted = []
    for tile in tiles:
        scale = min(width / tile.shape[1], height / tile.shape[0])
        small = cv2.resize(tile, (max(1, round(tile.shape[1] * scale)), max(1, round(tile.shape[0] * scale))),
                           interpolation=cv2.INTER_AREA) if scale != 1 else tile
        cell = np.zeros((height, width, 3), np.uint8)
        cell[: small.shape[0], : small.shape[1]] = small
        fitted.append(cell)
    columns = min(columns, len(fitted))
    while len(fitted) % columns:
        fitted.append(np.zeros_like(fitted[0]))
    grid = np.concatenate([np.concatenate(fitted[r : r + columns], axis=1) for r in range(0, len(fitted), columns)])
    if grid.shape[1] > max_width:
        scale = max_width / grid.shape[1]
        grid = cv2.resize(grid, (max_width, max(1, round(grid.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    return grid


def plot_labels(
    class_names: Sequence[str],
    labels: Sequence[np.ndarray],  # each image's (N,) class indices
    boxes: Sequence[np.ndarray],   # each image's (N, 4) xyxy boxes, pixels
    sizes: Sequence[tuple[int, int]],  # each image's (width, height)
    out_jpg: str | Path,
) -> Path:
    """The training labels in three panels: instances per class; box width against height and box centres, both
    as fractions of their image. Written as a JPEG; returns its path."""
    from matplotlib.figure import Figure

    names = list(class_names)
    from .data.samples import instances_per_class

    counts = instances_per_class(labels, len(names))
    scaled = [np.asarray(b, np.float64).reshape(-1, 4) / np.array([w, h, w, h], np.float64)
              for b, (w, h) in zip(boxes, sizes)]
    every = np.concatenate(scaled) if scaled else np.zeros((0, 4))
    classes = np.concatenate([np.asarray(l, np.int64).reshape(-1) for l in labels]) if labels else np.zeros(0, np.int64)
    fig = Figure(figsize=(13, 4.2), dpi=80, layout="constrained")
    ax_count, ax_size, ax_centre = fig.subplots(1, 3)
    colours = [np.array(class_color(c)) / 255 for c in range(len(names))]
    ax_count.bar(range(len(names)), counts, color=colours)
    ax_count.set_xticks(range(len(names)), names, rotation=90 if len(names) > 8 else 0, fontsize="small")
    ax_count.set_title(f"instances ({int(counts.sum())})")
    for c in range(len(names)):
        chosen = every[classes == c]
        ax_size.scatter(chosen[:, 2] - chosen[:, 0], chosen[:, 3] - chosen[:, 1], s=4, alpha=0.5, color=colours[c])
        ax_centre.scatter((chosen[:, 0] + chosen[:, 2]) / 2, (chosen[:, 1] + chosen[:, 3]) / 2, s=4, alpha=0.5,
                          color=colours[c])
    ax_size.set(title="box width and height", xlabel="width / image width", ylabel="height / image height",
                xlim=(0, 1), ylim=(0, 1))
    ax_centre.set(title="box centres", xlabel="x / image width", ylabel="y / image height", xlim=(0, 1), ylim=(1, 0))
    out_jpg = Path(out_jpg)
    out_jpg.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_jpg, format="jpg")
    return out_jpg
