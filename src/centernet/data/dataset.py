"""The torch Dataset: read an image, warp it, encode its targets.

Item (train): image (3, S, S) float32 normalised; targets of the task; image_id.
Item (eval):  image (3, S, S); image_id; ``to_original`` (2, 3) mapping output-map
coordinates (stride 4) back to original image pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import CenterNetError
from .samples import DatasetSplit, DetectionSample
from .transforms import (
    AugmentConfig,
    clip_boxes,
    invert_affine,
    letterbox_matrix,
    random_affine,
    to_output_matrix,
    warp_boxes,
    warp_image,
)

OUTPUT_STRIDE = 4
# The original's COCO statistics, reordered from BGR to RGB.
COCO_MEAN_RGB = (0.470, 0.447, 0.408)
COCO_STD_RGB = (0.278, 0.274, 0.289)


@dataclass
class Normalize:
    mean: tuple[float, float, float] = COCO_MEAN_RGB
    std: tuple[float, float, float] = COCO_STD_RGB

    def __call__(self, image_rgb: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 RGB -> (3, H, W) float32 normalised tensor."""
        x = torch.from_numpy(np.ascontiguousarray(image_rgb)).permute(2, 0, 1).float().div_(255)
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return (x - mean) / std


def read_image_rgb(path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; a missing or unreadable file raises CenterNetError naming it."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise CenterNetError(f"cannot read image {str(path)!r} (missing, not an image, or corrupt)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@dataclass
class DetectionDataset(Dataset):
    """Samples of a split, warped to ``input_size`` and encoded by ``encoder``."""

    split: DatasetSplit
    input_size: int
    encoder: Callable[..., dict[str, np.ndarray]] | None = None  # required when train=True
    train: bool = False
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    normalize: Normalize = field(default_factory=Normalize)
    seed: int = 0
    epoch: int = 0

    def __post_init__(self) -> None:
        if self.input_size % 32:
            raise CenterNetError(f"input size {self.input_size} is not a multiple of 32")
        if self.train and self.encoder is None:
            raise ValueError("a training dataset needs a target encoder")

    def set_epoch(self, epoch: int) -> None:
        """Augmentation is a function of (seed, epoch, index): reproducible with any worker count."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.split.samples)

    def __getitem__(self, index: int) -> dict:
        sample: DetectionSample = self.split.samples[index]
        image = read_image_rgb(sample.image_path)
        h, w = image.shape[:2]
        s = self.input_size
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            to_input = random_affine(w, h, s, self.augment, rng)
        else:
            to_input = letterbox_matrix(w, h, s)
        image = warp_image(image, to_input, (s, s))
        item = {"image": self.normalize(image), "image_id": sample.image_id}
        out = s // OUTPUT_STRIDE
        to_output = to_output_matrix(to_input, OUTPUT_STRIDE)
        if self.train:
            boxes = clip_boxes(warp_boxes(sample.boxes, to_output), out, out)
            ignore = clip_boxes(warp_boxes(sample.ignore_boxes, to_output), out, out)
            targets = self.encoder(boxes, sample.labels, (out, out), ignore)
            item["targets"] = {k: torch.from_numpy(v) for k, v in targets.items()}
        else:
            item["to_original"] = torch.from_numpy(invert_affine(to_output)).float()
        return item
