"""Batched inference: pre-process -> network + decode -> map back, and evaluation of a split.

The pre-processing (letterbox or keep-resolution canvases, black padding) and the map of the
boxes back to original pixels are shared; only "run the network + decode" differs between the
backends: :class:`TorchBackend` (an ``nn.Module``: normalise, forward, flip TTA, decode) and
``OnnxRuntimeBackend`` (an exported graph with decode inside, :mod:`centernet.engine.onnx_backend`).

Shapes: B batch, K detections per image.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..config import OUTPUT_STRIDE
from ..data.dataset import Normalize, read_image_rgb
from ..data.samples import DatasetSplit, ignore_regions_by_class
from ..data.transforms import (
    compose,
    invert_affine,
    keep_resolution_canvas,
    letterbox_matrix,
    pad_image,
    to_output_matrix,
    warp_image,
)
from ..errors import CenterNetError
from ..eval.coco import coco_results_from_predictions
from ..eval.voc import voc_ap
from ..models.crops import decode_with_objects
from ..progress import progress_bar
from ..tasks.base import ImageMeta, Task
from .precision import autocast, memory_format
from .tta import flip_images, merge_detections


@dataclass
class InferenceSettings:
    input_size: int = 512           # square network input; images are letterboxed into it
    max_detections: int = 100       # K, the top-K peaks kept per image
    precision: str = "fp32"         # a resolved precision: 'bf16' or 'fp32'
    device: str = "cpu"
    keep_resolution: bool = False   # no resize: padded to multiples of pad_multiple (input_size unused)
    input_height: int = 0           # with keep_resolution: each image first scaled to fit input_size x input_height,
                                    # as a rectangular training input letterboxed it (0: its own resolution)
    pad_style: str = "corner"       # keep_resolution canvas: 'corner' (top-left) or 'original' (centred, the original's)
    pad_multiple: int = 32          # the model's size divisor (128 for Hourglass)
    flip: bool = False              # test-time flip: average with the mirrored image's heatmap and size
    scales: tuple[float, ...] = (1.0,)  # test-time scales; several are merged by Gaussian soft-NMS per class


INFERENCE_STAGES = ("pre-process", "model", "decode", "post-process")


@dataclass
class StageTimes:
    """Seconds spent in each inference stage (:data:`INFERENCE_STAGES`), summed over ``images``. On a GPU each
    stage waits for its kernels, so the split is true (at a small cost); on the CPU nothing waits."""

    device: torch.device | None = None
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(INFERENCE_STAGES, 0.0))
    images: int = 0

    def _wait(self) -> None:
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._wait()
        start = time.perf_counter()
        yield
        self._wait()
        self.seconds[name] += time.perf_counter() - start

    def per_image_ms(self) -> dict[str, float]:
        return {name: 1000 * value / max(self.images, 1) for name, value in self.seconds.items()}

    def line(self) -> str:
        return speed_line(self.per_image_ms())


def speed_line(per_image_ms: dict[str, float]) -> str:
    """``speed per image: 1.2 ms pre-process, 30.4 ms model, ...``"""
    return "speed per image: " + ", ".join(f"{ms:.1f} ms {name}" for name, ms in per_image_ms.items())


def input_matrix(
    width: int, height: int, settings: InferenceSettings, scale: float = 1.0
) -> tuple[tuple[int, int], np.ndarray]:
    """Network input size (W', H') and the 2x3 map image pixels -> input pixels for one image.

    ``scale`` (test-time multi-scale): letterbox into a square of side ``input_size * scale``
    (rounded to a multiple of 32), or with ``keep_resolution`` resize the image to
    ``(int(width * scale), int(height * scale))`` first, as the original does.
    """
    if settings.keep_resolution:
        if settings.input_height:  # the scale training saw the image at
            scale = scale * min(settings.input_size / width, settings.input_height / height)
        new_w, new_h = max(1, int(width * scale + 1e-6)), max(1, int(height * scale + 1e-6))
        canvas, place = keep_resolution_canvas(new_w, new_h, settings.pad_multiple, settings.pad_style)
        resize = np.array([[new_w / width, 0.0, 0.0], [0.0, new_h / height, 0.0]])
        return canvas, compose(place, resize)
    side = max(32, int(round(settings.input_size * scale / 32)) * 32)
    return (side, side), letterbox_matrix(width, height, side)


def to_original_matrix(width: int, height: int, settings: InferenceSettings, scale: float = 1.0) -> np.ndarray:
    """2x3 map from output-map coordinates (stride 4) of a pre-processed image back to its pixels."""
    return invert_affine(to_output_matrix(input_matrix(width, height, settings, scale)[1], OUTPUT_STRIDE))


def place_images(
    images_rgb: list[np.ndarray], settings: InferenceSettings, scale: float = 1.0
) -> tuple[list[np.ndarray], torch.Tensor]:
    """Network-input canvases (H', W', 3) uint8 RGB, all the same size, and to_original (B, 2, 3).

    Letterbox (default): every image fitted into a square S x S input (H' = W' = S).
    ``keep_resolution``: every image unscaled on a zero canvas (see ``keep_resolution_canvas``),
    and canvases padded right and bottom to the batch's largest (which leaves the maps unchanged).
    Padding is black (0) in pixel space. to_original maps output-map coordinates (stride 4) back
    to each image's pixels.
    """
    placed = []
    for image in images_rgb:
        (cw, ch), to_input = input_matrix(image.shape[1], image.shape[0], settings, scale)
        if settings.keep_resolution and np.array_equal(to_input[:, :2], np.eye(2)):  # a whole-pixel shift: no resampling
            placed.append(pad_image(image, (cw, ch), (int(to_input[0, 2]), int(to_input[1, 2]))))
        else:
            placed.append(warp_image(image, to_input, (cw, ch)))
    width, height = max(p.shape[1] for p in placed), max(p.shape[0] for p in placed)
    canvases = [pad_image(p, (width, height)) for p in placed]
    maps = [
        torch.from_numpy(to_original_matrix(image.shape[1], image.shape[0], settings, scale)).float()
        for image in images_rgb
    ]
    return canvases, torch.stack(maps)


def preprocess(
    images_rgb: list[np.ndarray], settings: InferenceSettings, normalize: Normalize, scale: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pre-process (H, W, 3) uint8 RGB images -> normalised batch (B, 3, H', W') and to_original (B, 2, 3).

    The canvases of :func:`place_images`, normalised.
    """
    canvases, to_original = place_images(images_rgb, settings, scale)
    return torch.stack([normalize(c) for c in canvases]), to_original


@torch.no_grad()
def run_model(model: torch.nn.Module, images: torch.Tensor, settings: InferenceSettings) -> dict[str, torch.Tensor]:
    """Forward pass in the configured precision; outputs as float32."""
    device = torch.device(settings.device)
    images = images.to(device).contiguous(memory_format=memory_format(device, settings.precision))
    with autocast(device, settings.precision):
        outputs = model(images)
    return {k: v.float() for k, v in outputs.items()}


def clip_to_images(boxes: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """Clip boxes (B, K, 4) to each image's (width, height) in sizes (B, 2)."""
    w = sizes[:, 0, None].to(boxes.dtype)
    h = sizes[:, 1, None].to(boxes.dtype)
    x1 = torch.minimum(boxes[..., 0].clamp(min=0), w)
    y1 = torch.minimum(boxes[..., 1].clamp(min=0), h)
    x2 = torch.minimum(boxes[..., 2].clamp(min=0), w)
    y2 = torch.minimum(boxes[..., 3].clamp(min=0), h)
    return torch.stack([x1, y1, x2, y2], dim=-1)


class NetworkBackend(Protocol):
    """Runs the network and decodes: the one step in which the inference backends differ."""

    def decode_batch(
        self, canvases: list[np.ndarray], settings: InferenceSettings, times: StageTimes
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
        """Canvases of :func:`place_images` -> detections (boxes (B, K, 4) xyxy in output-map coordinates,
        stride 4; scores (B, K); labels (B, K) int64; sorted by score) and the head outputs, if there are any;
        the time of each stage added to ``times``."""
        ...


@dataclass
class TorchBackend:
    """The PyTorch backend: normalise, forward (with flip TTA), decode."""

    model: torch.nn.Module
    task: Task
    normalize: Normalize

    def decode_batch(
        self, canvases: list[np.ndarray], settings: InferenceSettings, times: StageTimes
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        with times.stage("pre-process"):
            batch = torch.stack([self.normalize(c) for c in canvases])  # (B, 3, H', W')
        with times.stage("model"):
            outputs = run_model(self.model, flip_images(batch) if settings.flip else batch, settings)
        with times.stage("decode"):
            if settings.flip:
                outputs = self.task.flip_merge(outputs)
            dets = self.task.decode_maps(outputs, settings.max_detections)
            dets = decode_with_objects(self.model, self.task, batch.to(settings.device), dets)
        return dets, outputs


def as_backend(model: torch.nn.Module | NetworkBackend, task: Task, normalize: Normalize) -> NetworkBackend:
    """A :class:`TorchBackend` around an ``nn.Module``; any other ``model`` is a backend already."""
    return TorchBackend(model, task, normalize) if isinstance(model, torch.nn.Module) else model


def camera_batch(calibs: list[np.ndarray | None] | None) -> torch.Tensor | None:
    """Each image's P2 stacked (B, 3, 4) float64, or None unless every image has one."""
    if not calibs or any(c is None for c in calibs):
        return None
    return torch.as_tensor(np.stack([np.asarray(c, np.float64).reshape(3, 4) for c in calibs]))


@torch.no_grad()
def detect(
    model: torch.nn.Module | NetworkBackend, task: Task, images_rgb: list[np.ndarray], settings: InferenceSettings,
    normalize: Normalize, calibs: list[np.ndarray | None] | None = None, times: StageTimes | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
    """Detections for (H, W, 3) uint8 RGB images, with the test-time augmentation of ``settings``.

    ``model``: an ``nn.Module`` (run by :class:`TorchBackend`) or a :class:`NetworkBackend`.
    Returns detections (boxes (B, K, 4) in original pixels clipped to each image, scores (B, K),
    labels (B, K), sorted by score; with several scales, merged by soft-NMS and padded with
    score 0) and the model's outputs at the first scale (flip-merged when flipping; None for a
    backend without head outputs). ``times``: where each stage's time is added.
    """
    times = times or StageTimes()
    backend = as_backend(model, task, normalize)
    calib = camera_batch(calibs)
    per_scale, first_outputs = [], None
    for scale in settings.scales:
        with times.stage("pre-process"):
            canvases, to_original = place_images(images_rgb, settings, scale)
        dets, outputs = backend.decode_batch(canvases, settings, times)
        if not per_scale:
            first_outputs = outputs
        with times.stage("post-process"):
            per_scale.append(task.to_original(dets, ImageMeta(to_original, calib)))
    if len(per_scale) > 1 and set(per_scale[0]) != {"boxes", "scores", "labels"}:
        raise CenterNetError(f"test-time scales merge boxes only; the {task.name} task's "
                             f"detections carry {sorted(set(per_scale[0]) - {'boxes', 'scores', 'labels'})}: use one scale")
    with times.stage("post-process"):
        dets = per_scale[0] if len(per_scale) == 1 else merge_detections(per_scale, settings.max_detections)
        sizes = torch.tensor([[image.shape[1], image.shape[0]] for image in images_rgb], device=dets["boxes"].device)
        dets["boxes"] = clip_to_images(dets["boxes"], sizes)
    times.images += len(images_rgb)
    return dets, first_outputs


class _SplitImages(Dataset):
    """(image (H, W, 3) uint8 RGB, image_id, calib (3, 4) or None) of a split, read in DataLoader workers."""

    def __init__(self, split: DatasetSplit) -> None:
        self.samples = split.samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int, np.ndarray | None]:
        sample = self.samples[index]
        return read_image_rgb(sample.image_path), sample.image_id, sample.calib


def _as_list(items: list) -> list:
    return items


@torch.no_grad()
def voc_ground_truth(split: DatasetSplit) -> list[dict]:
    """Per image: ``boxes``, ``labels``, ``difficult`` for :func:`voc_ap`; an ignore region is a difficult box
    of its class (of every class when it is for every class)."""
    images = []
    for s in split.samples:
        regions = ignore_regions_by_class(s, split.num_classes)
        boxes = np.concatenate([s.boxes.reshape(-1, 4), np.asarray([b for b, _ in regions], np.float32).reshape(-1, 4)])
        labels = np.concatenate([s.labels.reshape(-1), np.asarray([c for _, c in regions], np.int64)])
        difficult = np.arange(len(boxes)) >= len(s.boxes)
        images.append({"boxes": boxes, "labels": labels, "difficult": difficult})
    return images


def evaluate_split(
    model: torch.nn.Module | NetworkBackend,
    task,
    split: DatasetSplit,
    settings: InferenceSettings,
    normalize: Normalize | None = None,
    batch_size: int = 16,
    workers: int = 0,
    progress: bool = True,
    voc07: bool = False,
    plots_dir: str | Path | None = None,
) -> tuple[dict, list[dict]]:
    """The task's metrics of ``model`` on ``split`` (:meth:`Task.evaluate`) and the COCO-format detections behind
    them. ``metrics["speed"]`` is the :class:`StageTimes` of the pass; with ``plots_dir``, the pictures of
    :func:`centernet.plots.write_validation_plots` are written there.

    Images go through :func:`detect` in batches (with ``keep_resolution``, padded to the batch's
    largest canvas, which leaves every image's map back to its pixels unchanged). ``voc07`` adds
    ``map50_voc07`` and ``per_class_voc07``: PASCAL VOC2007's 11-point AP at IoU 0.5, ignore
    regions as difficult boxes of their class.
    """
    was_training = isinstance(model, torch.nn.Module) and model.training
    if isinstance(model, torch.nn.Module):
        model.eval()
    normalize = normalize or Normalize()
    loader = DataLoader(
        _SplitImages(split), batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=_as_list
    )
    predictions, image_ids = [], []
    times = StageTimes(torch.device(settings.device))
    for batch in progress_bar(loader, desc="val", leave=False, disable=not progress):
        calibs = [calib for _, _, calib in batch]
        dets, _ = detect(model, task, [image for image, _, _ in batch], settings, normalize, calibs, times)
        for b, (_, image_id, _) in enumerate(batch):
            keep = dets["scores"][b] > 0  # multi-scale merging pads with score 0
            predictions.append({k: v[b][keep].cpu() for k, v in dets.items()})
            image_ids.append(image_id)
    if was_training:
        model.train()
    results = coco_results_from_predictions(predictions, image_ids, split.category_ids)
    metrics = task.evaluate(split, predictions, image_ids)
    curves = metrics.pop("pr_curves", None)
    metrics["speed"] = times
    if plots_dir is not None:
        from ..plots import write_validation_plots

        write_validation_plots(task, split, predictions, image_ids, curves, plots_dir)
    if voc07:
        voc = voc_ap(voc_ground_truth(split), predictions, split.num_classes, use_07_metric=True)
        metrics["map50_voc07"] = voc["map"]
        metrics["per_class_voc07"] = dict(zip(split.class_names, voc["per_class"]))
    return metrics, results
