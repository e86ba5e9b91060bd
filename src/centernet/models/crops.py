"""An object head: a small network run on each object's image crop, at its box, scaled to a fixed size.

The whole-image heads read every object at one pixel of the stride-4 map, whatever its size, so an attribute that
shows only in the object's fine shape (a 3D box's heading on a 10-40 px object) is learnt slowly there. A crop
scaled to ``crop_size`` shows every object at one scale, as the RoI heads of two-stage detectors (and of GUPNet
for 3D) do on features; here the crop is of the input image itself, so the head needs nothing from the
backbone and learns at its own pace (BENCHMARKS.md, "Monocular 3D").

A task that wants one returns it from ``Task.object_head()``; the model keeps it as ``model.object_head`` (saved in
its state dict), training runs it at the labelled boxes (:func:`with_object_outputs`: ``outputs["objects"]``, for
the task's loss) and inference at the decoded ones (:func:`decode_with_objects`), the exported graph included.

Shapes: B images, N boxes per image, S crop side, D outputs per object.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import OUTPUT_STRIDE

__all__ = ["CropNet", "crop_objects", "decode_with_objects", "object_head_of", "with_object_outputs"]


def crop_objects(
    images: torch.Tensor,  # (B, 3, H, W)
    boxes: torch.Tensor,   # (B, N, 4) x1 y1 x2 y2, input pixels
    size: int,
    margin: float,
) -> torch.Tensor:
    """(B * N, 3, S, S) the square around each box's centre, of side ``margin x`` its longer side, resampled to
    ``size`` pixels (bilinear; zeros outside the image). One ``grid_sample`` for the whole batch."""
    b, n = boxes.shape[:2]
    height, width = images.shape[2:]
    boxes = boxes.float()
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2  # (B, N, 2)
    side = (boxes[..., 2:] - boxes[..., :2]).amax(-1).clamp(min=1.0) * margin  # (B, N)
    steps = (torch.arange(size, device=images.device, dtype=torch.float32) + 0.5) / size - 0.5  # (S,) pixel centres
    xs = centre[..., 0, None] + side[..., None] * steps  # (B, N, S) input pixels
    ys = centre[..., 1, None] + side[..., None] * steps
    # grid_sample's coordinates (align_corners=False): -1 and 1 are the image's outer edges.
    gx = (2 * xs / width - 1)[:, :, None, :].expand(b, n, size, size)
    gy = (2 * ys / height - 1)[:, :, :, None].expand(b, n, size, size)
    grid = torch.stack([gx, gy], dim=-1).reshape(b, n * size, size, 2)  # the crops stacked along the height
    crops = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return crops.reshape(b, 3, n, size, size).transpose(1, 2).reshape(b * n, 3, size, size)


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 conv + BN + ReLU, then a 2x2 max pool: (., in, s, s) -> (., out, s/2, s/2)."""
    layers = []
    for c in (in_channels, out_channels):
        layers += [nn.Conv2d(c, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
                   nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.MaxPool2d(2))


class CropNet(nn.Module):
    """Each box's image crop -> ``out_channels`` values: (B, 3, H, W), (B, N, 4) -> (B, N, D).

    Three conv blocks (32, 64, 128 channels) on an S x S crop, global average pooling, a linear layer. In training
    the boxes are jittered (``jitter``: the centre moves and the side scales by up to that fraction), as decoded
    boxes are never exactly the labelled ones.
    """

    def __init__(self, out_channels: int, crop_size: int = 32, margin: float = 1.15, jitter: float = 0.1) -> None:
        super().__init__()
        self.crop_size, self.margin, self.jitter = crop_size, margin, jitter
        self.features = nn.Sequential(_block(3, 32), _block(32, 64), _block(64, 128), nn.AdaptiveAvgPool2d(1),
                                      nn.Flatten())
        self.out = nn.Linear(128, out_channels)
        self.out_channels = out_channels

    def forward(self, images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        b, n = boxes.shape[:2]
        if n == 0:
            return images.new_zeros(b, 0, self.out_channels)
        if self.training and self.jitter:
            boxes = jitter_boxes(boxes.detach().float(), self.jitter)
        crops = crop_objects(images, boxes, self.crop_size, self.margin).to(images.dtype)
        return self.out(self.features(crops)).reshape(b, n, self.out_channels)


def jitter_boxes(boxes: torch.Tensor, amount: float) -> torch.Tensor:
    """Boxes (..., 4) moved by up to ``amount`` of their size and scaled by up to ``1 +- amount``, at random."""
    size = boxes[..., 2:] - boxes[..., :2]  # (..., 2)
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2 + (torch.rand_like(size) * 2 - 1) * amount * size
    half = size / 2 * (1 + (torch.rand_like(size[..., :1]) * 2 - 1) * amount)
    return torch.cat([centre - half, centre + half], dim=-1)


def object_head_of(model: nn.Module) -> nn.Module | None:
    """The model's object head (see the module's text), or None."""
    return getattr(model, "object_head", None) if isinstance(model, nn.Module) else None


def with_object_outputs(model: nn.Module, task, images: torch.Tensor, outputs, targets: dict[str, torch.Tensor]):
    """Training: ``outputs`` (a dict, or one per stack) with ``objects`` (B, M, D), the object head at each labelled
    box (``task.object_boxes(targets)``, output pixels, in target slot order); unchanged without an object head."""
    head = object_head_of(model)
    if head is None:
        return outputs
    objects = head(images, task.object_boxes(targets) * OUTPUT_STRIDE)
    if isinstance(outputs, (list, tuple)):
        return [{**stack, "objects": objects} for stack in outputs]
    return {**outputs, "objects": objects}


def decode_with_objects(model: nn.Module, task, images: torch.Tensor, dets: dict[str, torch.Tensor],
                        stride: int = OUTPUT_STRIDE) -> dict[str, torch.Tensor]:
    """Inference: ``dets`` (boxes (B, K, 4) in output pixels) completed by ``task.decode_objects`` from the object
    head run at each decoded box; unchanged without an object head."""
    head = object_head_of(model)
    if head is None:
        return dets
    return task.decode_objects(dets, head(images, dets["boxes"] * stride).float())
