"""The training Dataset: read an image, warp it (random affine + flip), colour-jitter it, encode its targets.

Item: image (3, S, S) float32 normalised; targets of the task; image_id. (Evaluation and
prediction pre-process whole batches in :mod:`centernet.engine.inference`.) :class:`SizedBatches` lets
training change S between batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import BatchSampler, Dataset, Sampler

from ..errors import CenterNetError
from ..config import OUTPUT_STRIDE
from ..progress import progress_bar
from .augment import color_augment
from .images import read_image_rgb  # the one image reader (training, evaluation, prediction)
from .samples import DatasetSplit, DetectionSample, ignore_labels_of
from .transforms import (
    AugmentConfig,
    clip_boxes,
    random_affine,
    to_output_matrix,
    warp_boxes,
    warp_image,
)

if TYPE_CHECKING:
    from ..tasks.base import Task

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
    task: "Task"  # encodes the targets and warps the annotations it needs beyond boxes
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    normalize: Normalize = field(default_factory=Normalize)
    seed: int = 0
    epoch: int = 0
    cache: list[np.ndarray] | None = field(default=None, repr=False)  # decoded images, see fill_cache
    input_height: int | None = None  # a rectangular input (input_size wide); None: square

    def __post_init__(self) -> None:
        self.encoder = self.task.encoder()
        if self.input_size % 32 or (self.input_height or 32) % 32:
            raise CenterNetError(f"input size {self.input_size}x{self.input_height or self.input_size} is not a multiple of 32")

    def fill_cache(self, progress: bool = True) -> int:
        """Decode every image once and keep it in memory; returns the bytes used.

        Call it before the DataLoader starts its workers: they are forked with the cache and
        share its pages, so N workers do not hold N copies.
        """
        self.cache = [read_image_rgb(s.image_path) for s in progress_bar(self.split.samples, "caching images", not progress)]
        return sum(image.nbytes for image in self.cache)

    def set_epoch(self, epoch: int) -> None:
        """Augmentation is a function of (seed, epoch, index): reproducible with any worker count."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.split.samples)

    def __getitem__(self, index: int | tuple[int, int]) -> dict:
        """Sample ``index`` at ``input_size``, or ``(index, side)`` at a square ``side`` (see :class:`SizedBatches`)."""
        index, side = index if isinstance(index, tuple) else (index, None)
        sample: DetectionSample = self.split.samples[index]
        image = self.cache[index] if self.cache is not None else read_image_rgb(sample.image_path)
        return self._train_item(sample, image, index, side)

    def _train_item(self, sample: DetectionSample, image: np.ndarray, index: int, side: int | None = None) -> dict:
        """Random warp + flip, colour jitter, targets encoded on the output map."""
        h, w = image.shape[:2]
        in_w, in_h = (side, side) if side else (self.input_size, self.input_height or self.input_size)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        to_input = random_affine(w, h, (in_w, in_h), self.augment, rng)
        image = warp_image(image, to_input, (in_w, in_h))
        if self.augment.color:
            image = color_augment(image.astype(np.float32) / 255, rng)
        item = {"image": self.normalize(image), "image_id": sample.image_id}
        out_w, out_h = in_w // OUTPUT_STRIDE, in_h // OUTPUT_STRIDE
        to_output = to_output_matrix(to_input, OUTPUT_STRIDE)
        boxes = clip_boxes(warp_boxes(sample.boxes, to_output), out_w, out_h)
        ignore = clip_boxes(warp_boxes(sample.ignore_boxes, to_output), out_w, out_h)
        extras = self.task.sample_annotations(sample, to_output, flipped=bool(to_input[0, 0] < 0))
        targets = self.encoder(
            boxes=boxes, labels=sample.labels, output_size=(out_h, out_w), ignore_boxes=ignore,
            ignore_labels=ignore_labels_of(sample), **extras,
        )
        item["targets"] = {k: torch.from_numpy(v) for k, v in targets.items()}
        return item


class SizedBatches(BatchSampler):
    """Batches of ``(index, side)`` pairs for :class:`DetectionDataset`: every image of a batch is warped to the
    square ``side`` read when the batch is drawn, so training can change it between any two batches (progressive
    resizing). A DataLoader draws a few batches ahead (``workers x prefetch_factor``), so a change reaches the
    steps that many batches later. ``side`` None: the dataset's own input size.
    """

    def __init__(self, sampler: Sampler[int], batch_size: int, side: int | None = None) -> None:
        super().__init__(sampler, batch_size, drop_last=True)
        self.side = side

    def __iter__(self):
        for batch in super().__iter__():
            yield [(index, self.side) for index in batch]
