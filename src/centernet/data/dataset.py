"""The training Dataset: read an image, warp it (random affine + flip), colour-jitter it, encode its targets.

Item: image (3, S, S) float32 normalised; targets of the task; image_id. (Evaluation and
prediction pre-process whole batches in :mod:`centernet.engine.inference`.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import CenterNetError
from ..models.centernet import OUTPUT_STRIDE  # the model's stride is the one targets are drawn at
from .augment import color_augment
from .images import read_image_rgb  # the one image reader (training, evaluation, prediction)
from .samples import DatasetSplit, DetectionSample
from .transforms import (
    AugmentConfig,
    clip_boxes,
    random_affine,
    to_output_matrix,
    warp_boxes,
    warp_image,
)

# The original's COCO statistics, reordered from BGR to RGB.
COCO_MEAN_RGB = (0.470, 0.447, 0.408)
COCO_STD_RGB = (0.278, 0.274, 0.289)


@dataclass
class Normalize:
    mean: tuple[float, float, float] = COCO_MEAN_RGB
    std: tuple[float, float, float] = COCO_STD_RGB

    def __call__(self, image_rgb: np.ndarray) -> torch.Tensor:
        """(H, W, 3) RGB -> (3, H, W) float32 normalised tensor.

        uint8 images are in [0, 255]; float images are taken as already scaled to [0, 1]
        (as the colour augmentation leaves them).
        """
        x = torch.from_numpy(np.ascontiguousarray(image_rgb)).permute(2, 0, 1).float()
        if image_rgb.dtype == np.uint8:
            x = x.div_(255)
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return (x - mean) / std

    def black(self) -> tuple[float, float, float]:
        """The normalised value of a black pixel, per channel (the padding colour)."""
        value = (torch.zeros(3) - torch.tensor(self.mean)) / torch.tensor(self.std)
        return tuple(float(v) for v in value)


@dataclass
class DetectionDataset(Dataset):
    """Training samples of a split, warped to ``input_size`` and encoded by ``encoder``."""

    split: DatasetSplit
    input_size: int
    encoder: Callable[..., dict[str, np.ndarray]]  # the task's target encoder
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    normalize: Normalize = field(default_factory=Normalize)
    seed: int = 0
    epoch: int = 0
    cache: list[np.ndarray] | None = field(default=None, repr=False)  # decoded images, see fill_cache

    def __post_init__(self) -> None:
        if self.input_size % 32:
            raise CenterNetError(f"input size {self.input_size} is not a multiple of 32")

    def fill_cache(self, progress: bool = True) -> int:
        """Decode every image once and keep it in memory; returns the bytes used.

        Call it before the DataLoader starts its workers: they are forked with the cache and
        share its pages, so N workers do not hold N copies.
        """
        from ..progress import progress_bar

        self.cache = [read_image_rgb(s.image_path) for s in progress_bar(self.split.samples, "caching images", not progress)]
        return sum(image.nbytes for image in self.cache)

    def set_epoch(self, epoch: int) -> None:
        """Augmentation is a function of (seed, epoch, index): reproducible with any worker count."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.split.samples)

    def __getitem__(self, index: int) -> dict:
        sample: DetectionSample = self.split.samples[index]
        image = self.cache[index] if self.cache is not None else read_image_rgb(sample.image_path)
        return self._train_item(sample, image, index)

    def _train_item(self, sample: DetectionSample, image: np.ndarray, index: int) -> dict:
        """Random warp + flip, colour jitter, targets encoded on the output map."""
        h, w = image.shape[:2]
        s = self.input_size
        rng = np.random.default_rng([self.seed, self.epoch, index])
        to_input = random_affine(w, h, s, self.augment, rng)
        image = warp_image(image, to_input, (s, s))
        if self.augment.color:
            image = color_augment(image.astype(np.float32) / 255, rng)
        item = {"image": self.normalize(image), "image_id": sample.image_id}
        out = s // OUTPUT_STRIDE
        to_output = to_output_matrix(to_input, OUTPUT_STRIDE)
        boxes = clip_boxes(warp_boxes(sample.boxes, to_output), out, out)
        ignore = clip_boxes(warp_boxes(sample.ignore_boxes, to_output), out, out)
        targets = self.encoder(boxes, sample.labels, (out, out), ignore)
        item["targets"] = {k: torch.from_numpy(v) for k, v in targets.items()}
        return item
