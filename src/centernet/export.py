"""Export a trained model with the decode inside the graph: ONNX and TorchScript. No NMS.

The exported graph maps

    images      (B, 3, H, W) float32, RGB, pixel values in [0, 255] (not normalised)
    -> detections (B, K, 6) float32, rows [x1, y1, x2, y2, score, class], sorted by score
       (pose: (B, K, 6 + 3J), each row followed by its J joints as x, y, score; 3D: (B, K, 13), each
       row followed by the 3D centre's image point cx, cy, depth, h, w, l, alpha)

with boxes in input pixels (the 3x3 max-pool peak, plus the offset, +- size / 2, times the
output stride 4), score in [0, 1] and the class index 0..C-1 stored as a float. Every image
has exactly K rows; rows past its peaks have score 0. Normalisation (the checkpoint's mean and
std) runs inside, so the caller feeds raw pixels; any padding must be black (0), as the
PyTorch pre-processing pads. Batch, H and W are dynamic; H and W must be multiples of the
model's ``size_divisor`` (32; 128 for Hourglass-104).

ONNX is written with the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``):
with ``dynamic_axes`` it gives a dynamic batch, height and width with no extra dependency,
while the dynamo exporter needs ``onnxscript`` and symbolic-shape hints. The ONNX file carries
its metadata (class names, category ids, input size, ...; see :class:`ExportMetadata`) in
``metadata_props``, so a runtime needs nothing else.

Shapes: B batch, C classes, H, W input size, h, w output size (H/4, W/4), K detections.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import os
import tempfile
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Iterator

import torch
import torch.nn as nn

from .tasks import DetectionTask, Task
from .errors import CenterNetError
from .config import OUTPUT_STRIDE
from .models.crops import decode_with_objects

EXPORT_FORMATS = ("onnx", "torchscript", "safetensors")  # safetensors: the weights only, with the metadata
OUTPUT_LAYOUT = ("x1", "y1", "x2", "y2", "score", "class")
INPUT_LAYOUT = "(B, 3, H, W) float32 RGB in [0, 255], H and W multiples of size_divisor, black padding"
EXPORT_VERSION = "1"          # written as metadata 'centernet_export'; its presence marks our files
ONNX_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "images", "detections"
INSTALL_HINT = 'pip install "centernet[onnx]"'


@dataclass
class ExportMetadata:
    """What a runtime needs to use an exported graph; stored as ONNX ``metadata_props`` (strings)."""

    model_name: str
    class_names: list[str]
    category_ids: list[int]
    input_size: int                       # the training input side; letterboxing target at test time
    max_detections: int = 100             # K, rows per image in the output
    size_divisor: int = 32                # H and W must be multiples of this
    output_stride: int = OUTPUT_STRIDE
    mean: list[float] = field(default_factory=list)  # applied inside the graph (recorded for reference)
    std: list[float] = field(default_factory=list)
    pad_style: str = "corner"             # keep-resolution canvas of the checkpoint ('original' for converted ones)
    keep_resolution: bool = False         # val / predict default: no letterbox (a model trained on a rectangular input)
    input_height: int = 0                 # with keep_resolution: images scaled to fit input_size x input_height first
    task: str = "detect"
    task_config: dict = field(default_factory=dict)  # the task's settings (pose: joints, flip_idx, skeleton)
    output_layout: str = ",".join(OUTPUT_LAYOUT)
    input_layout: str = INPUT_LAYOUT

    def to_props(self) -> dict[str, str]:
        """Every field as a string (lists as JSON), plus the format marker."""
        props = {"centernet_export": EXPORT_VERSION}
        for name, value in asdict(self).items():
            props[name] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
        return props

    @classmethod
    def from_props(cls, props: dict[str, str], source: str) -> "ExportMetadata":
        """Parse ``to_props``'s strings; a file without our marker gets a one-line error naming ``source``."""
        if "centernet_export" not in props:
            raise CenterNetError(
                f"{source!r} is not a centernet export (no centernet metadata in the file); "
                "write one with: centernet export --weights best.pt --format onnx"
            )
        values = {}
        try:
            for f in fields(cls):
                if f.name not in props:
                    continue
                text = props[f.name]
                structured = f.type.startswith(("list", "dict"))
                if f.type == "bool" and text not in ("True", "False"):
                    raise ValueError(f"{f.name}={text!r}, expected True or False")
                values[f.name] = (json.loads(text) if structured else int(text) if f.type == "int"
                                  else text == "True" if f.type == "bool" else text)
            return cls(**values)
        except (ValueError, TypeError) as e:
            raise CenterNetError(f"{source!r} has damaged centernet metadata: {e}") from None


class ExportModule(nn.Module):
    """A trained model with normalisation and decode inside: (B, 3, H, W) [0, 255] RGB -> (B, K, 6).

    Rows [x1, y1, x2, y2, score, class] in input pixels, sorted by score (see the module
    docstring). The wrapped model is put in eval mode (Hourglass then returns its last stack).
    """

    def __init__(
        self,
        model: nn.Module,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        max_detections: int = 100,
        task: Task | None = None,
    ) -> None:
        super().__init__()
        if max_detections < 1:
            raise CenterNetError(f"max_detections={max_detections} is out of range; expected >= 1")
        # Detection's decode reads the class count off the heatmap, so a plain detector needs no task settings.
        self.task = task if task is not None else DetectionTask(num_classes=1)
        self.model = model.eval()
        self.max_detections = max_detections
        self.stride = getattr(model, "stride", OUTPUT_STRIDE)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images / 255 - self.mean) / self.std  # (B, 3, H, W), as Normalize on uint8 pixels
        dets = self.task.decode_maps(self.model(x), self.max_detections, fixed_k=True)
        dets = decode_with_objects(self.model, self.task, x, dets, self.stride)
        columns = [dets["boxes"] * self.stride, dets["scores"].unsqueeze(-1), dets["labels"].unsqueeze(-1).float()]
        return torch.cat(columns + self.task.export_columns(dets, self.stride), dim=-1)  # (B, K, 6 + task's)


def output_layout(task: Task | None = None) -> str:
    """The exported rows' columns, comma-separated: the box row, then the task's own columns."""
    return ",".join(list(OUTPUT_LAYOUT) + (task.export_column_names() if task is not None else []))


def export_module(model: nn.Module, mean, std, max_detections: int = 100, task=None) -> ExportModule:
    """An :class:`ExportModule` around a float32 CPU copy of ``model`` (the caller's model is left as it is)."""
    copied = copy.deepcopy(model).float().cpu().to(memory_format=torch.contiguous_format)
    for p in copied.parameters():
        p.requires_grad_(False)
    return ExportModule(copied, mean, std, max_detections, task).eval()


def example_input(input_size: int, batch: int = 2) -> torch.Tensor:
    """A random (batch, 3, S, S) image batch in [0, 255] to trace with (batch 2, so no size-1 axis gets baked in)."""
    generator = torch.Generator().manual_seed(0)
    return torch.rand(batch, 3, input_size, input_size, generator=generator) * 255


def export_onnx(module: ExportModule, path: str | Path, metadata: ExportMetadata, opset: int = ONNX_OPSET) -> Path:
    """Write ``module`` as ONNX (dynamic batch, height, width), with ``metadata`` in ``metadata_props``.

    Checked with ``onnx.checker`` (full check, shape inference included) before it is written.
    """
    onnx = _import_onnx()
    if opset < ONNX_OPSET:
        raise CenterNetError(f"opset={opset} is out of range; expected >= {ONNX_OPSET}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        raw = Path(tmp) / "raw.onnx"
        # The TorchScript-based exporter: 'dynamo' exists from torch 2.5 on, where it must be False.
        legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
        with torch.no_grad(), _quiet_tracing():
            torch.onnx.export(
                module, (example_input(metadata.input_size),), str(raw), opset_version=opset,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"}, OUTPUT_NAME: {0: "batch"}},
                **legacy,
            )
        graph = onnx.load(str(raw))
        rows = graph.graph.output[0].type.tensor_type.shape.dim[1]  # the exporter leaves K symbolic
        rows.dim_value = metadata.max_detections
        for key, value in metadata.to_props().items():
            entry = graph.metadata_props.add()
            entry.key, entry.value = key, value
        columns = len(metadata.output_layout.split(","))
        graph.doc_string = f"centernet {metadata.model_name}: {INPUT_LAYOUT} -> (B, K, {columns}) {metadata.output_layout}"
        onnx.checker.check_model(graph, full_check=True)
        onnx.save(graph, str(Path(tmp) / "checked.onnx"))
        os.replace(Path(tmp) / "checked.onnx", path)
    return path


def export_torchscript(module: ExportModule, path: str | Path, metadata: ExportMetadata) -> Path:
    """Write ``module`` traced to TorchScript (``torch.jit.load`` reads it, centernet not needed).

    The metadata goes into the archive as the extra file ``centernet.json``. Batch, H and W are
    dynamic (the trace records shapes as operations).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), _quiet_tracing():
        traced = torch.jit.trace(module, (example_input(metadata.input_size),))
        torch.jit.save(traced, str(path), _extra_files={"centernet.json": json.dumps(metadata.to_props())})
    return path


@contextlib.contextmanager
def _quiet_tracing() -> Iterator[None]:
    """Silence what tracing says about deliberate choices: the deprecation notices of the legacy ONNX exporter
    and of torch.jit (TorchScript is asked for by name), and TracerWarnings for Python checks on shapes (Hourglass's size check, the deformable conv's fixed kernel)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=".*The feature will be removed.*")
        warnings.filterwarnings("ignore", message=".*Constant folding - Only steps=1.*")
        warnings.filterwarnings("ignore", message=".*torch.jit.* is deprecated.*", category=DeprecationWarning)
        yield


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise CenterNetError(f"ONNX export needs the onnx package: {INSTALL_HINT}") from None
    return onnx
