"""2D object detection: heatmap (C) + size (2) + offset (2).

Shapes: B batch, C classes, h, w output size, M max objects, K detections.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from ...data.shapes import ShapesConfig
from ...losses import (
    centre_samples, focal_loss_from_logits, masked_l1_loss, owned_pixels, sparse_focal_loss_from_logits,
    weighted_giou_loss, weighted_l1_loss,
)
from ...ops.sparse import heatmap_entries, object_pixels
from ..base import DemoRecipe, Task, register_task
from ..recipes import demo_schedule
from .decode import decode_detections
from .targets import DetectionTargetEncoder

# COCO box metrics every task reports (fractions).
BOX_HEADLINE = ("map", "map50", "map75", "map_small", "map_medium", "map_large")
# Detection's task options and their choices, the paper's first (see ``DetectionTask``).
DETECTION_OPTIONS = {"regress_at": ("centre", "gaussian"), "box_loss": ("l1", "giou")}
# The demo's synthetic set: 192 px images, object sizes drawn uniformly.
DEMO_SHAPES = dict(image_size=192, num_train=4000, num_val=300, size_distribution="uniform")


@dataclass
class DetectionLossWeights:
    heatmap: float = 1.0
    size: float = 0.1
    offset: float = 1.0
    giou: float = 1.0    # only with box_loss="giou"


@register_task
@dataclass
class DetectionTask(Task):
    """Everything detection-specific, so the model and trainer stay generic.

    ``regress_at``: the paper learns the size and offset at each object's centre pixel alone (``"centre"``), so
    a peak one pixel off reads an offset never trained there and gives a box a pixel (a stride) off.
    ``"gaussian"`` learns both at every pixel of the object's heatmap Gaussian, weighted by it and normalised
    per object (TTFNet's regression samples; not in the paper), the offset at a pixel being the true centre
    minus that pixel. Decoding is the same either way: the box is read at the peak, wherever it is.

    ``box_loss``: ``"l1"``, the paper's L1 on size and offset; ``"giou"`` adds ``giou_loss``, 1 - GIoU of the box
    decoded at each regression pixel (the centre, or with ``regress_at="gaussian"`` each pixel of the Gaussian,
    weighted alike) against the true box (not in the paper; see ``weighted_giou_loss``).
    """

    num_classes: int
    max_objects: int = 128
    min_overlap: float = 0.7
    exact_radius: bool = False
    sparse_targets: bool = True          # encoder gives centres + radii; the loss reads only the covered pixels
    regress_at: str = "centre"           # where size and offset are learnt: "centre" (the paper), "gaussian"
    box_loss: str = "l1"                 # "l1" (the paper) or "giou" (L1 plus a GIoU term, above)
    weights: DetectionLossWeights = field(default_factory=DetectionLossWeights)
    name: ClassVar[str] = "detect"
    aliases: ClassVar[tuple[str, ...]] = ("detection",)
    OPTIONS: ClassVar[dict[str, tuple[str, ...]]] = DETECTION_OPTIONS
    OPTION_HELP: ClassVar[dict[str, str]] = {
        "regress_at": "learn size and offset at each centre (the paper's) or at every pixel of its heatmap Gaussian, "
                      "weighted by it (TTFNet), so a peak a pixel off still gives the right box",
        "box_loss": "L1 on size and offset (the paper's), or those plus 1 - GIoU of the box decoded where they are "
                    "learnt (each centre, or each Gaussian pixel with --regress-at gaussian)",
    }
    headline: ClassVar[tuple[str, ...]] = BOX_HEADLINE
    best_metric: ClassVar[str] = "map"

    def __post_init__(self) -> None:
        for name, value in self.options().items():
            if value not in DETECTION_OPTIONS[name]:
                raise ValueError(f"{name}={value!r}; expected one of {DETECTION_OPTIONS[name]}")
        if self.regress_at == "gaussian" and not self.sparse_targets:
            raise ValueError("regress_at='gaussian' reads the sparse targets' radii; it needs sparse_targets=True")

    @classmethod
    def from_config(cls, num_classes: int, config: dict) -> "DetectionTask":
        """Options the paper's unless ``config`` (a checkpoint's ``config()``, or a new run's options) says."""
        return cls(num_classes, **{k: v for k, v in config.items() if k in DETECTION_OPTIONS})

    @classmethod
    def demo(cls) -> DemoRecipe:
        return DemoRecipe(
            data="shapes", data_config=lambda: ShapesConfig(**DEMO_SHAPES), model="resnet18_shortcut",
            train=demo_schedule(192, (96, 128)), task_options={"box_loss": "giou"}, out="runs/demo",
        )

    def heads(self) -> dict[str, int]:
        return {"heatmap": self.num_classes, "size": 2, "offset": 2}

    def encoder(self) -> DetectionTargetEncoder:
        return DetectionTargetEncoder(
            self.num_classes, self.max_objects, self.min_overlap, self.exact_radius, sparse=self.sparse_targets
        )

    def stack_loss(self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Focal loss on the heatmap; L1 (and with ``box_loss="giou"`` GIoU) on size and offset."""
        heatmap = heatmap_loss(outputs["heatmap"], targets)
        if self.regress_at == "centre" and self.box_loss == "l1":  # the paper's
            size = masked_l1_loss(outputs["size"], targets["index"], targets["mask"], targets["size"])
            offset = masked_l1_loss(outputs["offset"], targets["index"], targets["mask"], targets["offset"])
            giou = None
        else:
            size, offset, giou = self._sampled_box_losses(outputs, targets)
        parts = {
            "heatmap_loss": self.weights.heatmap * heatmap,
            "size_loss": self.weights.size * size,
            "offset_loss": self.weights.offset * offset,
        }
        if giou is not None:
            parts["giou_loss"] = self.weights.giou * giou
        return {"loss": sum(parts.values()), **parts}

    def _sampled_box_losses(
        self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """L1 of size and offset, and with ``box_loss="giou"`` 1 - GIoU of the decoded box, at the regression
        samples: each object's centre, or (``regress_at="gaussian"``) every pixel of its Gaussian, weighted by it.

        The size target is the object's at each of its pixels; the offset target at pixel p is the true centre
        minus p (the usual sub-pixel offset at the integer centre), so the box decoded at any of them is the
        object's. At centres alone the L1 terms equal ``masked_l1_loss``.
        """
        size_map, mask, index = outputs["size"], targets["mask"], targets["index"]    # (B, 2, h, w), (B, M) x 2
        out_h, out_w = size_map.shape[2:]
        if self.regress_at == "gaussian":
            pixels = object_pixels(index, mask, targets["peak_radius"], (out_h, out_w))
            samples = owned_pixels(pixels, tuple(mask.shape), (out_h, out_w))
        else:
            samples = centre_samples(index, mask, out_w)
        b, m, y, x, _ = samples                                                         # (T',) each
        centre = index[b, m]                                                            # (T',) y * w + x
        to_centre = torch.stack([centre % out_w - x, centre // out_w - y], 1)           # (T', 2), 0 at centres
        size_target, offset_target = targets["size"][b, m], targets["offset"][b, m] + to_centre
        num_objects = mask.float().sum()
        size = weighted_l1_loss(size_map, samples, size_target, num_objects)
        offset = weighted_l1_loss(outputs["offset"], samples, offset_target, num_objects)
        giou = None
        if self.box_loss == "giou":
            giou = weighted_giou_loss(size_map, outputs["offset"], samples, size_target, offset_target, num_objects)
        return size, offset, giou

    def decode_maps(self, outputs: dict[str, torch.Tensor], k: int, fixed_k: bool = False) -> dict[str, torch.Tensor]:
        """Top-K detections: boxes (B, K, 4) in output-map coordinates, scores (B, K), labels (B, K)."""
        return decode_detections(outputs, k, fixed_k)


def heatmap_loss(logits: torch.Tensor, targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """The focal loss of (B, C, h, w) ``logits`` against dense targets (``heatmap``) or sparse ones (``peak_*``)."""
    if "heatmap" in targets:
        return focal_loss_from_logits(logits, targets["heatmap"], targets.get("ignore"))
    keys, values, ignore = heatmap_entries(targets, logits.shape[1], tuple(logits.shape[2:]))
    return sparse_focal_loss_from_logits(logits, keys, values, ignore)

