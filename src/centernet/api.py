"""The Python API. The command line is a thin layer over this class.

    from centernet import CenterNet
    model = CenterNet("resnet18")
    model.train(data="shapes", epochs=10, batch_size=16, out="runs/shapes")
    metrics = model.val(data="shapes")
    for result in model.predict("photos/*.jpg"):
        print(result.boxes, result.scores, result.labels)
        result.save(f"out/{result.path.name}")
    model.export("onnx", out="model.onnx")                     # decode inside; no NMS
    CenterNet("model.onnx").predict("photos/")                 # the same, run by onnxruntime
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .config import TrainConfig
from .data import has_split, load_split, subset
from .data.dataset import COCO_MEAN_RGB, COCO_STD_RGB, Normalize, read_image_rgb
from .data.images import ImageFileError
from .engine.checkpoint import load_checkpoint, save_safetensors
from .engine.device import resolve_device
from .engine.inference import InferenceSettings, detect, evaluate_split, speed_line
from .engine.precision import resolve_precision
from .engine.trainer import ModelInfo, Trainer, seed_everything
from .errors import CenterNetError
from .eval.coco import format_per_class_table, metrics_to_jsonable
from .export import (
    EXPORT_FORMATS, ONNX_OPSET, ExportMetadata, export_module, export_onnx, export_torchscript, output_layout,
)
from .models import create_model, list_models
from .models.heads import set_head_biases
from .tasks import build_task, task_class, task_from_split
from .results import Detections
from .runs import HELD_OUT_LISTS, builtin_config, checked_split, held_out_split, read_list
from .sources import camera_of, check_array, expand_sources

if TYPE_CHECKING:
    from .engine.onnx_backend import OnnxRuntimeBackend

BACKENDS = ("torch", "onnxruntime")  # what runs the network: PyTorch (a .pt), or ONNX Runtime (an exported .onnx)
EXPORT_SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript", "safetensors": ".safetensors"}


class CenterNet:
    """A CenterNet detector: build or load, then ``train``, ``val``, ``predict``.

    Args:
        model: a registered architecture (see ``list_models()``) or a checkpoint path (``best.pt``).
        task: what a new model learns: 'detect' (boxes, the default), 'pose' (persons with keypoints;
            the joints come from the training data) or '3d' (KITTI-style monocular 3D boxes). A checkpoint
            knows its task.
        task_options: settings of the task beyond the data; 3D: ``{"centre": "projected"}`` puts the peak at
            the projected 3D centre instead of the 2D box centre (the original's).
        num_classes: classes of a new model; by default taken from the training data.
        head_conv: channels of each head's hidden layer (default: the architecture's, 64 for ResNets, 256
            for DLA-34 and Hourglass-104).
        pretrained: local file with ImageNet backbone weights (torchvision layout). Never downloaded.
        device: 'auto' (the default: CUDA when available, else Apple's MPS, else the CPU), 'cpu', 'cuda', 'cuda:N'
            or 'mps'; one that is not there is a one-line error.
        backend: what runs the network, 'torch' or 'onnxruntime'; default: from the file, 'onnxruntime' for
            a ``.onnx`` written by :meth:`export` (then ``model`` is a network in an ONNX Runtime session with
            decode inside, and ``predict`` / ``val`` work as with a checkpoint, without flip TTA or heatmaps).
    """

    def __init__(
        self,
        model: str | Path = "resnet18",
        task: str | None = None,
        num_classes: int | None = None,
        task_options: dict | None = None,
        head_conv: int | None = None,
        pretrained: str | Path | None = None,
        device: str = "auto",
        backend: str | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self._device_asked = str(device)
        self.backend = _resolve_backend(model, backend)
        self.model: torch.nn.Module | OnnxRuntimeBackend | None = None
        self.class_names: list[str] = []
        self.category_ids: list[int] = []
        self.input_size = 512
        self.mean, self.std = COCO_MEAN_RGB, COCO_STD_RGB
        self.test_padding = "corner"  # keep_resolution canvas style; converted original weights use "original"
        self.keep_resolution = False  # the default of val / predict (True for models trained on a rectangular input)
        self.input_height = 0  # a rectangular training input's height: images are scaled as training scaled them
        self.head_conv, self.pretrained = head_conv, pretrained
        if task is not None:
            task_class(task)  # a one-line error for an unknown name
        self.task_name = task or "detect"
        self.task_options = dict(task_options or {})
        self.skipped: list[tuple[Path, str]] = []  # image files the last predict() could not read, with why
        self.weights_path: Path | None = None  # the checkpoint or .onnx it was loaded from
        self.run: dict = {}  # how a loaded checkpoint was trained: data, splits (see train)
        if self.backend == "onnxruntime":
            self._load_onnx(model)
        elif _looks_like_weights(model):
            self._load(model)
        else:
            if str(model) not in list_models():
                raise CenterNetError(f"unknown model {str(model)!r}; expected one of: {', '.join(list_models())} or a .pt file")
            self.model_name = str(model)
            if num_classes is not None:  # a task that needs more than a class count (pose: joints) says so
                self._build(num_classes, [f"class{i}" for i in range(num_classes)], list(range(1, num_classes + 1)))

    # ----------------------------------------------------------------- build
    @classmethod
    def load(cls, weights: str | Path, device: str = "auto", backend: str | None = None) -> "CenterNet":
        """A trained model from a checkpoint written by ``train``, or an ``.onnx`` written by :meth:`export`."""
        return cls(Path(weights), device=device, backend=backend)

    def _build(self, num_classes: int, class_names: list[str], category_ids: list[int], task=None) -> None:
        self.task = task if task is not None else build_task(self.task_name, num_classes)
        self.task_name = self.task.name
        options = {} if self.head_conv is None else {"head_conv": self.head_conv}
        self.model = create_model(self.model_name, heads=self.task.heads(), pretrained=self.pretrained, **options)
        object_head = self.task.object_head()
        if object_head is not None:  # a network on each object's crop (models/crops.py), saved with the model
            self.model.object_head = object_head
        self.head_conv = self.model.head_conv
        set_head_biases(self.model, getattr(self.task, "initial_biases", dict)())
        self.class_names, self.category_ids = list(class_names), list(category_ids)

    def _load(self, weights: str | Path) -> None:
        state = load_checkpoint(weights)
        self.weights_path = Path(weights)
        self.model_name = state["model_name"]
        self.head_conv = int(state.get("head_conv", 64))
        num_classes = int(state["heads"]["heatmap"])
        task = build_task(state.get("task", "detect"), num_classes, state.get("task_config"))
        self._build(num_classes, state["class_names"], state["category_ids"], task)
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as e:
            raise CenterNetError(f"weights {str(weights)!r} do not fit model {self.model_name!r}: {str(e).splitlines()[0]}") from None
        self.input_size = int(state.get("input_size", 512))
        self.mean, self.std = tuple(state["mean"]), tuple(state["std"])
        self.test_padding = state.get("test_padding", "corner")
        self.keep_resolution = bool(state.get("keep_resolution", False))
        self.input_height = int(state.get("input_height") or 0)
        self.checkpoint_metrics = state.get("metrics", {})
        self.run = state.get("run") or {}  # how it was trained: data, splits (see train)

    def _load_onnx(self, path: str | Path) -> None:
        """An exported ``.onnx`` in ONNX Runtime; everything else comes from the file's metadata."""
        from .engine.onnx_backend import OnnxRuntimeBackend, onnxruntime_has_gpu

        if self._device_asked == "auto" and self.device != "cpu" and not onnxruntime_has_gpu():
            self.device = "cpu"  # 'auto' takes what this onnxruntime can run on
        network = OnnxRuntimeBackend(path, self.device)
        meta = network.metadata
        self.weights_path = Path(path)
        self.model_name = meta.model_name
        self.task = build_task(meta.task, len(meta.class_names), meta.task_config)
        self.task_name = self.task.name
        self.model = network
        self.class_names, self.category_ids = list(meta.class_names), list(meta.category_ids)
        self.input_size = meta.input_size
        self.mean, self.std = tuple(meta.mean), tuple(meta.std)
        self.test_padding = meta.pad_style
        self.keep_resolution, self.input_height = meta.keep_resolution, meta.input_height
        self.checkpoint_metrics = {}

    # ----------------------------------------------------------------- train
    def train(
        self,
        data: str | Path = "shapes",
        out: str | Path = "runs/train",
        train_split: str = "train",
        val_split: str | None = "val",
        shapes_config=None,
        progress: bool = True,
        resume: bool = False,
        val_fraction: float = 0.1,
        data_format: str | None = None,
        **settings,
    ) -> dict:
        """Train on ``data`` (see :func:`centernet.data.load_split`); settings are :class:`TrainConfig` fields.

        When ``data`` has no split ``val_split``, a seeded ``val_fraction`` of the training images is held out
        for validation (at least one), said in one line, and both lists are written to the run folder
        (``train_images.txt``, ``val_images.txt``), which ``resume``, and ``val`` with the run's weights, read back.
        ``data_format`` ('coco', 'voc', 'yolo') reads a folder that matches several layouts as that one.

        ``resume=True`` on a model loaded from a run's ``last.pt`` continues that run exactly where it
        stopped (weights, optimizer, schedule, EMA, epoch, random states), in its folder, with its data
        and settings; only ``epochs`` may be raised. Returns the last validation's metrics.
        """
        self._require_torch("train")
        resume_state = None
        if resume:
            data, out, train_split, val_split, shapes_config, settings, resume_state = self._resume_run(settings)
            data_format = self.run.get("data_format")
        settings = {**task_class(self.task_name).train_defaults(), **settings}
        cfg = TrainConfig.from_dict({"device": self._device_asked, **settings}).validate()
        needs = task_class(self.task_name).needs
        train = checked_split(load_split(data, train_split, shapes_config, needs, data_format), data, progress)
        if val_split and not has_split(data, val_split, needs, data_format):
            train, val = held_out_split(train, Path(out), val_split, val_fraction, cfg.seed)
        else:
            val = (checked_split(load_split(data, val_split, shapes_config, needs, data_format), data, progress)
                   if val_split else None)
        if not train.samples:
            raise CenterNetError(f"dataset {str(data)!r} split {train_split!r} has no valid images")
        seed_everything(cfg.seed)
        task = task_from_split(self.task_name, train, self.task_options)
        if self.model is None or self.task.heads() != task.heads():
            if self.model is not None:
                print(f"re-building the heads for {task.heads()} (the model had {self.task.heads()})")
            self._build(train.num_classes, train.class_names, train.category_ids, task)
        else:
            self.task = task
            self.class_names, self.category_ids = train.class_names, train.category_ids
        self.input_size = cfg.input_size
        self.keep_resolution = bool(cfg.input_height)
        self.input_height = cfg.input_height or 0
        info = ModelInfo(self.model_name, self.head_conv, self.task.name, self.class_names, self.category_ids, self.mean, self.std)
        run = {
            "model": self.model_name, "data": str(data), "data_format": data_format, "train_split": train_split,
            "val_split": val_split,
            "shapes_config": None if shapes_config is None else asdict(shapes_config),
            "task": self.task.name, "task_options": dict(self.task_options),
        }
        trainer = Trainer(self.model, self.task, train, val, cfg, info, out, progress, resume_state, run)
        metrics = trainer.fit()
        if trainer.per_class_table():
            print(trainer.per_class_table())
        self.model = trainer.eval_model.to(memory_format=torch.contiguous_format)
        return metrics

    def _resume_run(self, overrides: dict):
        """The data, folder, splits, shapes settings, training settings and train state of the run to resume."""
        path = getattr(self, "weights_path", None)
        if path is None:
            raise CenterNetError("resume=True needs a model loaded from a run's last.pt (CenterNet('RUN/last.pt'))")
        state = load_checkpoint(path)
        if "train_state" not in state or "run" not in state:
            raise CenterNetError(f"{str(path)!r} cannot be resumed: it holds no training state (use the run's last.pt)")
        unknown = sorted(set(overrides) - {"epochs", "workers", "progress"})
        if unknown:
            raise CenterNetError(f"resume keeps the run's settings; only epochs and workers may change, not {unknown}")
        settings = {**state["train_config"], **overrides}
        settings["lr_steps"] = tuple(settings["lr_steps"])
        if settings["epochs"] < state["train_state"]["epoch"]:
            raise CenterNetError(
                f"epochs={settings['epochs']} is out of range; the run already finished epoch {state['train_state']['epoch']}"
            )
        run = state["run"]
        shapes = None if run["shapes_config"] is None else builtin_config(run["data"], run["shapes_config"])
        # The trainer restores the raw (not averaged) weights from the train state.
        return run["data"], Path(path).parent, run["train_split"], run["val_split"], shapes, settings, state["train_state"]

    # ------------------------------------------------------------------- val
    def val(
        self,
        data: str | Path = "shapes",
        split: str = "val",
        out: str | Path | None = None,
        batch_size: int = 16,
        input_size: int | None = None,
        precision: str = "auto",
        workers: int = 0,
        progress: bool = True,
        shapes_config=None,
        keep_resolution: bool | None = None,
        flip: bool = False,
        scales: tuple[float, ...] | list[float] = (1.0,),
        voc07: bool = False,
        data_format: str | None = None,
        plots: bool = True,
    ) -> dict:
        """COCO box metrics on a split; with ``out``, writes metrics.json and predictions.json there, and with
        ``plots`` the validation pictures (val_batch0_labels/pred.jpg, PR_curve.png, F1_curve.png,
        confusion_matrix.png and the task's own). ``speed_ms``: the time per image of each stage.

        ``voc07``: also PASCAL VOC2007's 11-point mAP at IoU 0.5 (``map50_voc07``, ``per_class_voc07``),
        difficult objects (every ignore region) neither true nor false positives, as the VOC devkit.

        ``keep_resolution``: images are not letterboxed into a square, only padded to multiples of 32 (a model
        trained on a rectangular input first scales each image as training did); None: the model's default (True
        when trained on a rectangular input).
        ``flip``: test-time flip (the image and its mirror in one batch; heatmap and size averaged).
        ``scales``: test-time scales, e.g. (0.5, 0.75, 1, 1.25, 1.5); several are merged per class with
        Gaussian soft-NMS (sigma 0.5) and the top ``max_detections`` kept.
        """
        self._require_model()
        held_out = None if self.weights_path is None else self.weights_path.parent / HELD_OUT_LISTS[1]
        needs = self.task.needs
        if held_out is not None and held_out.is_file() and not has_split(data, split, needs, data_format):
            source = load_split(data, self.run.get("train_split", "train"), shapes_config, needs, data_format)
            print(f"{data}: no split {split!r}; validating on the {held_out.name} held out when the model trained")
            split_data = checked_split(subset(source, read_list(held_out), str(held_out)), data, progress)
        else:
            split_data = checked_split(load_split(data, split, shapes_config, needs, data_format), data, progress)
        if split_data.class_names != self.class_names:
            if split_data.num_classes != len(self.class_names):
                raise CenterNetError(
                    f"dataset {str(data)!r} has {split_data.num_classes} classes but the model has {len(self.class_names)}"
                )
        settings = self._settings(input_size, precision, keep_resolution, flip, scales)
        plots_dir = Path(out) if out is not None and plots else None
        metrics, results = evaluate_split(
            self.model, self.task, split_data, settings, Normalize(self.mean, self.std), batch_size, workers, progress,
            voc07, plots_dir,
        )
        summary = {k: metrics[k] for k in self.task.headline}
        summary |= {k: v for k, v in metrics.items() if isinstance(v, dict) or k == "map50_voc07"}  # the tables
        summary["speed_ms"] = metrics["speed"].per_image_ms()
        if out is not None:
            out = Path(out)
            out.mkdir(parents=True, exist_ok=True)
            (out / "metrics.json").write_text(json.dumps(metrics_to_jsonable(summary), indent=2))
            (out / "predictions.json").write_text(json.dumps(results))
        return summary

    def format_metrics(self, metrics: dict) -> str:
        """The task's metrics line, AP by IoU threshold and the per-class table, where ``metrics`` has them."""
        by_iou = metrics.get("ap_by_iou")
        by_iou = "\nAP by IoU  " + "  ".join(f"{t[1:]} {ap:.3f}" for t, ap in by_iou.items()) if by_iou else ""
        table = ("\n" + format_per_class_table(metrics["per_class"], metrics["per_class50"])
                 if "per_class" in metrics else "")
        speed = "\n" + speed_line(metrics["speed_ms"]) if "speed_ms" in metrics else ""
        return self.task.metrics_line(metrics) + by_iou + table + speed

    # --------------------------------------------------------------- predict
    @torch.no_grad()
    def predict(
        self,
        source,
        conf: float = 0.3,
        input_size: int | None = None,
        max_detections: int = 100,
        heatmap: bool = False,
        precision: str = "auto",
        batch_size: int = 8,
        keep_resolution: bool | None = None,
        flip: bool = False,
        scales: tuple[float, ...] | list[float] = (1.0,),
        calib=None,
        strict: bool = False,
    ) -> list[Detections]:
        """Detect objects in an image path, folder, glob, (H, W, 3) RGB array, or a list of those.

        An image file that cannot be read (missing, cut short, over the pixel limit, not an image) is skipped
        with one line on stderr and listed in ``self.skipped`` as (path, reason); the call fails only when no
        image could be read. ``strict=True`` stops at the first instead.

        3D models need each image's camera: ``calib`` a KITTI calib file or a (3, 4) P2 array for every
        image; by default an image in KITTI's layout (``.../image_2/000123.png``) uses ``.../calib/000123.txt``.

        ``keep_resolution``: images are not letterboxed into a square, only padded to multiples of 32 (a model
        trained on a rectangular input first scales each image as training did).
        ``flip``: test-time flip (the image and its mirror in one batch; heatmap and size averaged).
        ``scales``: test-time scales, e.g. (0.5, 0.75, 1, 1.25, 1.5); several are merged per class with
        Gaussian soft-NMS (sigma 0.5) and the top ``max_detections`` kept.
        """
        self._require_model()
        if not 0 <= conf <= 1:
            raise CenterNetError(f"conf={conf} is out of range; expected a score in [0, 1]")
        if heatmap and self.backend != "torch":
            raise CenterNetError("heatmap=True is not available with the onnxruntime backend: the exported graph outputs boxes only")
        items = expand_sources(source)
        settings = self._settings(input_size, precision, keep_resolution, flip, scales, max_detections)
        if isinstance(self.model, torch.nn.Module):
            self.model.to(settings.device).eval()
        normalize = Normalize(self.mean, self.std)
        results: list[Detections] = []
        self.skipped = []
        for start in range(0, len(items), batch_size):
            chunk, images = self._readable(items[start : start + batch_size], strict)
            if not chunk:
                continue
            calibs = [camera_of(item, calib) for item in chunk] if "calib" in self.task.needs else None
            dets, outputs = detect(self.model, self.task, images, settings, normalize, calibs)
            for b, (item, image) in enumerate(zip(chunk, images)):
                keep = dets["scores"][b].cpu() >= conf
                kept = {name: value[b].cpu()[keep].numpy() for name, value in dets.items()}
                results.append(
                    Detections(
                        boxes=kept["boxes"], scores=kept["scores"], labels=kept["labels"],
                        class_names=self.class_names,
                        image=image,
                        path=item if isinstance(item, Path) else None,
                        heatmap=torch.sigmoid(outputs["heatmap"][b]).cpu().numpy() if heatmap else None,
                        calib=calibs[b] if calibs is not None else None,
                        task=self.task,
                        **self.task.result_fields(kept),
                    )
                )
        if self.skipped and not results:
            path, reason = self.skipped[0]
            raise CenterNetError(f"no image could be read ({len(self.skipped)} skipped), the first: cannot read image "
                                 f"{str(path)!r}: {reason}")
        return results

    def _readable(self, chunk: list, strict: bool) -> tuple[list, list[np.ndarray]]:
        """The items of ``chunk`` whose image could be read, and those images (H, W, 3) RGB; the others are
        added to ``self.skipped`` and named on stderr (or, with ``strict``, raised)."""
        kept, images = [], []
        for item in chunk:
            try:
                images.append(read_image_rgb(item) if isinstance(item, Path) else check_array(item))
            except ImageFileError as e:
                if strict:
                    raise
                self.skipped.append((item, e.reason))
                print(f"skipped {item}: {e.reason}", file=sys.stderr, flush=True)
                continue
            kept.append(item)
        return kept, images

    # ---------------------------------------------------------------- export
    def export(
        self,
        format: str = "onnx",
        out: str | Path | None = None,
        input_size: int | None = None,
        max_detections: int = 100,
        opset: int = ONNX_OPSET,
    ) -> Path:
        """Write the network with normalisation and decode inside (no NMS); returns the file written.

        The graph: (B, 3, H, W) float32 RGB in [0, 255] -> (B, K, 6) float32 rows [x1, y1, x2, y2,
        score, class] in input pixels, sorted by score, K = ``max_detections`` rows per image (score 0
        past its peaks). Batch, H and W are dynamic (H, W multiples of the model's size divisor: 32, 128
        for Hourglass); ``input_size`` (default: the training one) is the side traced at and the
        letterbox side a runtime uses by default.

        ``format``: 'onnx' (opset ``opset``, checked with onnx.checker, class names, category ids, input
        size, K and the layouts in its metadata; ``CenterNet("model.onnx")`` runs it in onnxruntime) or
        'torchscript' (``torch.jit.load`` reads it; the metadata is its extra file ``centernet.json``).
        'safetensors': the weights only (the model's state dict, no decode), with the metadata as strings in
        its header, for loading into this package's model or another framework.
        ``out``: default the weights' path (or the model name) with suffix .onnx / .torchscript / .safetensors.
        """
        self._require_model()
        self._require_torch("export")
        if format not in EXPORT_FORMATS:
            raise CenterNetError(f"format={format!r} is not a known export format; expected one of: {', '.join(EXPORT_FORMATS)}")
        divisor = int(getattr(self.model, "size_divisor", 32))
        size = input_size or self.input_size
        if size < divisor or size % divisor:
            raise CenterNetError(f"input_size={size} is out of range; expected a multiple of {divisor} for {self.model_name}")
        if max_detections < 1:
            raise CenterNetError(f"max_detections={max_detections} is out of range; expected >= 1")
        metadata = ExportMetadata(
            model_name=self.model_name, class_names=list(self.class_names), category_ids=[int(i) for i in self.category_ids],
            input_size=size, max_detections=max_detections, size_divisor=divisor, mean=list(self.mean),
            std=list(self.std), pad_style=self.test_padding, task=self.task.name, task_config=self.task.config(),
            output_layout=output_layout(self.task), keep_resolution=self.keep_resolution,
            input_height=self.input_height if input_size is None else 0,
        )
        source = getattr(self, "weights_path", None) or Path(self.model_name)
        path = Path(out) if out is not None else source.with_suffix(EXPORT_SUFFIXES[format])
        if format == "safetensors":
            state = {k: v.detach().float() if v.is_floating_point() else v for k, v in self.model.state_dict().items()}
            save_safetensors(state, path, metadata.to_props())
            return path
        module = export_module(self.model, self.mean, self.std, max_detections, self.task)
        if format == "onnx":
            return export_onnx(module, path, metadata, opset)
        return export_torchscript(module, path, metadata)

    # --------------------------------------------------------------- helpers
    def _settings(
        self, input_size: int | None, precision: str, keep_resolution: bool | None = None, flip: bool = False,
        scales: tuple[float, ...] | list[float] = (1.0,), max_detections: int = 100,
    ) -> InferenceSettings:
        if keep_resolution is None:  # the model's default: True when trained on a rectangular input
            keep_resolution = self.keep_resolution
        size = input_size or self.input_size
        if size % 32 or size < 32:
            raise CenterNetError(f"input_size={size} is out of range; expected a multiple of 32")
        scales = tuple(float(x) for x in scales)
        if not scales or not all(0.1 <= x <= 4 for x in scales):
            raise CenterNetError(f"scales={list(scales)} are out of range; expected one or more factors in [0.1, 4]")
        if max_detections < 1:
            raise CenterNetError(f"max_detections={max_detections} is out of range; expected >= 1")
        if self.backend == "onnxruntime":
            if precision not in ("auto", "fp32"):
                raise CenterNetError(
                    f"precision={precision!r} is not available with the onnxruntime backend (the graph runs in float32)"
                )
            precision = "fp32"
        device = torch.device(self.device)
        settings = InferenceSettings(
            size, max_detections, resolve_precision(precision, device), self.device, keep_resolution,
            pad_style=self.test_padding, pad_multiple=max(32, getattr(self.model, "size_divisor", 32)),
            flip=flip, scales=scales, input_height=self.input_height if input_size is None else 0,
        )
        if self.backend == "onnxruntime":
            self.model.check_settings(settings)
        return settings

    def _require_model(self) -> None:
        if self.model is None:
            raise CenterNetError("this model has no classes yet: train it, give num_classes, or load a checkpoint")

    def _require_torch(self, action: str) -> None:
        if self.backend != "torch":
            raise CenterNetError(
                f"cannot {action} {str(self.weights_path)!r}: an ONNX export runs inference only; {action} the .pt checkpoint"
            )


def _resolve_backend(model, backend: str | None) -> str:
    """'torch' or 'onnxruntime': as asked, else from the file (an ``.onnx`` runs in onnxruntime)."""
    is_onnx = str(model).lower().endswith(".onnx")
    if backend is None:
        return "onnxruntime" if is_onnx else "torch"
    if backend not in BACKENDS:
        raise CenterNetError(f"backend={backend!r} is not a known backend; expected one of: {', '.join(BACKENDS)}")
    if backend == "onnxruntime" and not is_onnx:
        raise CenterNetError(
            f"backend='onnxruntime' runs an exported .onnx file, not {str(model)!r}; "
            f"write one with: centernet export --weights {model} --format onnx"
        )
    if backend == "torch" and is_onnx:
        raise CenterNetError(f"{str(model)!r} is an ONNX export; run it with backend='onnxruntime'")
    return backend


def _looks_like_weights(model) -> bool:
    return isinstance(model, Path) or str(model).endswith((".pt", ".pth")) or Path(str(model)).is_file()
