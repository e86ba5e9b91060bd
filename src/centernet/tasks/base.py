"""The task contract: everything the engine asks of a task, and the registry ``--task`` takes its choices from.

A task says what the heads mean. The model, the trainer, inference, export and the command line call
only the methods below; none of them asks which task it runs. A new task is a subclass registered with
:func:`register_task` (see ``tests/tasks/test_extension.py`` for one written outside the package).

Shapes: B batch, C classes, h, w output size, M max objects, K detections.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from ..errors import CenterNetError
from ..eval.coco import box_metrics_line, coco_results_from_predictions, evaluate_coco_boxes
from ..ops.affine import transform_boxes
from ..ops.flip import merge_flip
from ..visualize import draw_boxes


@dataclass
class ImageMeta:
    """What decoding needs to know of each image of a batch beyond the network's outputs."""

    to_original: torch.Tensor             # (B, 2, 3) output-map coordinates (stride 4) -> original pixels
    calib: torch.Tensor | None = None     # (B, 3, 4) each image's camera P2 in original pixels, where known


@dataclass
class DemoRecipe:
    """A task's built-in demo: its synthetic data, model and training settings."""

    data: str                                   # built-in dataset name ('shapes', 'shapes_pose', 'shapes3d')
    data_config: Callable[[], Any]              # builds the dataset's settings
    model: str                                  # registered architecture
    train: dict[str, Any]                       # TrainConfig settings (the shared schedule plus the task's own)
    task_options: dict[str, str] = field(default_factory=dict)
    out: str = "runs/demo"                      # default run folder


class Task(ABC):
    """What one CenterNet application adds to the shared backbone: heads, targets, loss, decode, metrics.

    Class attributes a task sets: ``name`` (its ``--task`` name), ``aliases``, ``OPTIONS`` (settings beyond
    the data, each with its choices, the paper's first; ``OPTION_HELP`` says what each chooses), ``needs`` (per-object annotations its encoder takes
    beyond boxes and labels: 'keypoints', 'objects3d', 'calib'; the data is read with them), ``headline``
    (metrics :meth:`evaluate` gives that are shown and kept in checkpoints) and ``best_metric`` (what picks
    best.pt).
    """

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    OPTIONS: ClassVar[dict[str, tuple[str, ...]]] = {}
    OPTION_HELP: ClassVar[dict[str, str]] = {}  # option -> what it chooses, for its command-line flag
    needs: ClassVar[tuple[str, ...]] = ()
    headline: ClassVar[tuple[str, ...]]
    best_metric: ClassVar[str]
    num_classes: int

    # ------------------------------------------------------------------ building
    @classmethod
    @abstractmethod
    def from_config(cls, num_classes: int, config: dict) -> "Task":
        """The task rebuilt from what :meth:`config` stored (and, for a new run, its options)."""

    @classmethod
    def from_split(cls, split, options: dict[str, str]) -> "Task":
        """The task for training on ``split`` (its classes; a task that needs more of the data reads it here)."""
        return cls.from_config(split.num_classes, dict(options))

    def config(self) -> dict:
        """What a checkpoint (and an export's metadata) must carry, beyond the class list, to rebuild the task."""
        return {name: value for name, value in self.options().items() if value != self.OPTIONS[name][0]}

    def options(self) -> dict[str, str]:
        """The current value of every option in ``OPTIONS``."""
        return {name: getattr(self, name) for name in self.OPTIONS}

    @classmethod
    def demo(cls) -> DemoRecipe:
        raise CenterNetError(f"task {cls.name!r} has no built-in demo")

    # ------------------------------------------------------------------ model and training
    @abstractmethod
    def heads(self) -> dict[str, int]:
        """Head name -> output channels."""

    def initial_biases(self) -> dict[str, float]:
        """Output biases of new heads beyond the heatmap's prior (none by default)."""
        return {}

    def object_head(self) -> torch.nn.Module | None:
        """A network run on each object's image crop (``models/crops.py``), kept by the model as ``object_head``;
        None (the default) for a task whose heads are all maps. A task with one also writes the two below."""
        return None

    def object_boxes(self, targets: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, M, 4) the labelled objects' boxes in output pixels, in target slot order: where training runs the
        object head (its outputs reach :meth:`stack_loss` as ``outputs["objects"]`` (B, M, D))."""
        raise NotImplementedError(f"task {self.name!r} has no object head")

    def decode_objects(self, dets: dict[str, torch.Tensor], objects: torch.Tensor) -> dict[str, torch.Tensor]:
        """Detections from :meth:`decode_maps` completed by the object head's outputs (B, K, D) at their boxes."""
        raise NotImplementedError(f"task {self.name!r} has no object head")

    @classmethod
    def train_defaults(cls) -> dict[str, Any]:
        """Training settings this task needs unless the user sets them (TrainConfig names)."""
        return {}

    def check_train_settings(self, settings) -> None:
        """Refuse, with a one-line CenterNetError, training settings the task cannot train with."""

    @abstractmethod
    def encoder(self) -> Callable[..., dict[str, np.ndarray]]:
        """Encodes one image's objects into targets on the output map (boxes, labels, output_size, ... ->)."""

    def sample_annotations(self, sample, to_output: np.ndarray, flipped: bool) -> dict[str, np.ndarray]:
        """What the encoder takes beyond boxes and labels, for one training sample warped by ``to_output``
        (2x3, original pixels -> output map) and mirrored when ``flipped``. Boxes are warped by the dataset."""
        return {}

    def loss(
        self, outputs: dict[str, torch.Tensor] | list[dict[str, torch.Tensor]], targets: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Total ``loss`` and each weighted part by name.

        ``outputs`` may be a list with one dict per stack (Hourglass's intermediate supervision): every
        part is then the mean over the stacks.
        """
        if isinstance(outputs, (list, tuple)):
            per_stack = [self.stack_loss(stack, targets) for stack in outputs]
            return {name: sum(p[name] for p in per_stack) / len(per_stack) for name in per_stack[0]}
        return self.stack_loss(outputs, targets)

    @abstractmethod
    def stack_loss(self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``loss`` and its weighted parts for one set of head outputs."""

    # ------------------------------------------------------------------ inference
    @abstractmethod
    def decode_maps(self, outputs: dict[str, torch.Tensor], k: int, fixed_k: bool = False) -> dict[str, torch.Tensor]:
        """Top-K detections in output-map coordinates: boxes (B, K, 4) xyxy, scores (B, K), labels (B, K) and
        the task's own fields. ``fixed_k``: exactly K rows at any map size (an exported graph)."""

    def to_original(self, dets: dict[str, torch.Tensor], meta: ImageMeta) -> dict[str, torch.Tensor]:
        """Detections of :meth:`decode_maps` mapped to original pixels (and through the camera where the task
        uses one), in place."""
        dets["boxes"] = transform_boxes(dets["boxes"], meta.to_original.to(dets["boxes"].device))
        return dets

    def decode(
        self, outputs: dict[str, torch.Tensor], meta: ImageMeta | None = None, k: int = 100
    ) -> dict[str, torch.Tensor]:
        """Top-K detections: in output-map coordinates, or with ``meta`` in each image's original pixels."""
        dets = self.decode_maps(outputs, k)
        return dets if meta is None else self.to_original(dets, meta)

    def flip_merge(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Outputs on ``flip_images(x)`` (2B) merged into outputs for ``x`` (B) (boxes' heads: ``merge_flip``)."""
        return merge_flip(outputs)

    def evaluate(self, split, predictions: list[dict], image_ids: list[int]) -> dict:
        """Metrics of the decoded ``predictions`` (one dict per image, original pixels) against ``split``: the
        COCO box metrics (pycocotools), per class included, and ``pr_curves`` (the precision-recall curves at IoU
        0.5 behind them); tasks add their own."""
        results = coco_results_from_predictions(predictions, image_ids, split.category_ids)
        return evaluate_coco_boxes(split.to_coco(), results, split.class_names, keep_curves=True)

    def metrics_line(self, metrics: dict) -> str:
        """One line of a validation's :attr:`headline` figures."""
        return box_metrics_line(metrics)

    # ------------------------------------------------------------------ results
    def result_fields(self, dets: dict[str, np.ndarray]) -> dict[str, Any]:
        """The task's own fields of one image's kept detections (numpy arrays, original pixels), as keyword
        arguments of :class:`centernet.Detections` (``keypoints``, ``objects3d``, ...)."""
        return {}

    def draw_targets(self, image: np.ndarray, targets: dict[str, torch.Tensor], out_w: int, stride: int) -> np.ndarray:
        """One training image (H, W, 3) uint8 with the task's own targets drawn over its boxes (``targets``: that
        image's, slot ``m`` of an object at output pixel ``index[m]`` of a map ``out_w`` wide)."""
        return image

    def ground_truth_fields(self, sample) -> dict[str, Any]:
        """:meth:`result_fields` of a sample's labelled objects, to draw its ground truth as detections."""
        return {}

    def validation_plots(self, split, predictions: list[dict], image_ids: list[int], out_dir: Path) -> list[Path]:
        """The task's own pictures of a validation in ``out_dir`` (beyond the boxes' of :mod:`centernet.plots`);
        their paths."""
        return []

    def draw(self, image: np.ndarray, result) -> np.ndarray:
        """``result`` (a :class:`centernet.Detections`) drawn on a copy of ``image`` (H, W, 3) uint8 RGB: each
        box in its class colour with its name and score."""
        return draw_boxes(image, result.boxes, result.labels, result.scores, result.class_names, score_threshold=0.0)

    # ------------------------------------------------------------------ export
    def export_columns(self, dets: dict[str, torch.Tensor], stride: int) -> list[torch.Tensor]:
        """The task's columns after [x1, y1, x2, y2, score, class] in an exported row: (B, K, n) tensors, image
        positions in input pixels (output-map coordinates times ``stride``)."""
        return []

    def export_column_names(self) -> list[str]:
        """Names of :meth:`export_columns`' columns, in order."""
        return []

    def read_export_columns(self, columns: torch.Tensor, stride: int) -> dict[str, torch.Tensor]:
        """The task's fields (output-map coordinates) back from an exported row's extra (B, K, n) columns."""
        return {}


_REGISTRY: dict[str, type[Task]] = {}
_ALIASES: dict[str, str] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: make ``cls`` available to :func:`build_task` and ``--task`` under ``cls.name``."""
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TypeError(f"register_task: {cls!r} is not a Task subclass")
    for key in (cls.name, *cls.aliases):
        if key in _ALIASES and _REGISTRY[_ALIASES[key]] is not cls:
            raise ValueError(f"register_task: task name {key!r} is already taken by {_REGISTRY[_ALIASES[key]].__name__}")
    _REGISTRY[cls.name] = cls
    _ALIASES.update({key: cls.name for key in (cls.name, *cls.aliases)})
    return cls


def list_tasks() -> list[str]:
    """The registered task names, in registration order."""
    return list(_REGISTRY)


def task_class(name: str) -> type[Task]:
    """The registered task class called ``name`` (or one of its aliases)."""
    if name not in _ALIASES:
        raise CenterNetError(f"task {name!r} is not known; expected one of: {', '.join(list_tasks())}")
    return _REGISTRY[_ALIASES[name]]


def build_task(name: str, num_classes: int, config: dict | None = None) -> Task:
    """A task by name, with what a checkpoint stored in ``config`` (see each task's ``config()``)."""
    return task_class(name).from_config(num_classes, dict(config or {}))


def check_options(name: str, options: dict) -> None:
    """A one-line CenterNetError for an option ``name``'s task does not take, or a value out of its choices."""
    cls = task_class(name)
    unknown = sorted(set(options) - set(cls.OPTIONS))
    if unknown:
        if not cls.OPTIONS:
            raise CenterNetError(f"task {name!r} takes no options, got {unknown}")
        raise CenterNetError(f"unknown {cls.name} task option(s) {unknown}; expected "
                             f"{', '.join(map(repr, cls.OPTIONS))}")
    for option, value in options.items():
        if value not in cls.OPTIONS[option]:
            raise CenterNetError(f"{option}={value!r} is out of range; expected "
                                 + " or ".join(map(repr, cls.OPTIONS[option])))


def task_from_split(name: str, split, options: dict | None = None) -> Task:
    """The task ``name`` for training on ``split``, with ``options`` from its ``OPTIONS`` (checked here)."""
    options = dict(options or {})
    check_options(name, options)
    return task_class(name).from_split(split, options)


def all_options() -> dict[str, tuple[str, ...]]:
    """Every registered task's options and their choices (an option two tasks share must have the same choices)."""
    merged: dict[str, tuple[str, ...]] = {}
    for cls in _REGISTRY.values():
        merged.update(cls.OPTIONS)
    return merged
