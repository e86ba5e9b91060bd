"""Batched inference: pre-process -> model -> decode, and evaluation of a split.

Shapes: B batch, K detections per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..data.dataset import OUTPUT_STRIDE, DetectionDataset, Normalize, PadCollate
from ..data.samples import DatasetSplit
from ..data.transforms import (
    invert_affine,
    keep_resolution_matrix,
    letterbox_matrix,
    pad_image,
    padded_size,
    to_output_matrix,
    warp_image,
)
from ..eval.coco import coco_results_from_predictions, evaluate_coco_boxes
from ..progress import progress_bar
from .precision import autocast, memory_format


@dataclass
class InferenceSettings:
    input_size: int = 512           # square network input; images are letterboxed into it
    max_detections: int = 100       # K, the top-K peaks kept per image
    precision: str = "fp32"         # a resolved precision: 'bf16' or 'fp32'
    device: str = "cpu"
    keep_resolution: bool = False   # no resize: padded right/bottom to multiples of 32 (input_size unused)


def to_original_matrix(width: int, height: int, input_size: int, keep_resolution: bool = False) -> np.ndarray:
    """2x3 map from output-map coordinates of a pre-processed image back to its pixels.

    Letterboxed into ``input_size`` by default; with ``keep_resolution`` the image is
    unscaled, so the map is just the stride (``width``, ``height``, ``input_size`` unused).
    """
    to_input = keep_resolution_matrix() if keep_resolution else letterbox_matrix(width, height, input_size)
    return invert_affine(to_output_matrix(to_input, OUTPUT_STRIDE))


def preprocess(
    images_rgb: list[np.ndarray], input_size: int, normalize: Normalize, keep_resolution: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pre-process (H, W, 3) uint8 RGB images -> batch (B, 3, H', W') and to_original (B, 2, 3).

    Letterbox (default): every image fitted into a square S x S input (H' = W' = S).
    ``keep_resolution``: every image unscaled at the top-left of a zero canvas whose sides
    are the batch's largest sides rounded up to multiples of 32.
    """
    if keep_resolution:
        sizes = [padded_size(im.shape[1], im.shape[0]) for im in images_rgb]
        canvas = (max(w for w, _ in sizes), max(h for _, h in sizes))
        batch = [normalize(pad_image(image, canvas)) for image in images_rgb]
    else:
        square = (input_size, input_size)
        batch = [
            normalize(warp_image(image, letterbox_matrix(image.shape[1], image.shape[0], input_size), square))
            for image in images_rgb
        ]
    maps = [
        torch.from_numpy(to_original_matrix(image.shape[1], image.shape[0], input_size, keep_resolution)).float()
        for image in images_rgb
    ]
    return torch.stack(batch), torch.stack(maps)


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


@torch.no_grad()
def evaluate_split(
    model: torch.nn.Module,
    task,
    split: DatasetSplit,
    settings: InferenceSettings,
    normalize: Normalize | None = None,
    batch_size: int = 16,
    workers: int = 0,
    progress: bool = True,
) -> tuple[dict, list[dict]]:
    """COCO metrics of ``model`` on ``split`` and the COCO-format detections behind them.

    With ``settings.keep_resolution`` each batch is padded to its largest image (top-left
    placement, so boxes map back unchanged); ``batch_size=1`` gives every image exactly
    its own multiple-of-32 canvas.
    """
    was_training = model.training
    model.eval()
    normalize = normalize or Normalize()
    dataset = DetectionDataset(
        split, settings.input_size, train=False, normalize=normalize, keep_resolution=settings.keep_resolution
    )
    # keep_resolution images differ in size: pad each batch to its largest (to_original is unaffected).
    collate = PadCollate(normalize.black()) if settings.keep_resolution else None
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=collate)
    sizes_by_id = {s.image_id: (s.width, s.height) for s in split.samples}
    predictions, image_ids = [], []
    for batch in progress_bar(loader, desc="val", leave=False, disable=not progress):
        outputs = run_model(model, batch["image"], settings)
        to_original = batch["to_original"].to(outputs["heatmap"].device)
        dets = task.decode(outputs, to_original, settings.max_detections)
        ids = batch["image_id"].tolist()
        sizes = torch.tensor([sizes_by_id[i] for i in ids], device=dets["boxes"].device)
        boxes = clip_to_images(dets["boxes"], sizes)
        for b, image_id in enumerate(ids):
            predictions.append({"boxes": boxes[b].cpu(), "scores": dets["scores"][b].cpu(), "labels": dets["labels"][b].cpu()})
            image_ids.append(image_id)
    model.train(was_training)
    results = coco_results_from_predictions(predictions, image_ids, split.category_ids)
    metrics = evaluate_coco_boxes(split.to_coco(), results, split.class_names)
    return metrics, results
