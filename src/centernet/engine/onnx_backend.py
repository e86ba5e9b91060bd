"""The onnxruntime backend: an exported graph (decode inside, see :mod:`centernet.export`) run by ONNX Runtime.

It fills the one step in which backends differ, "run the network + decode"
(:class:`centernet.engine.inference.NetworkBackend`); pre-processing and the map back to
original pixels are the PyTorch path's. The graph normalises inside, so the canvases go in
as float32 pixels in [0, 255] with their black (0) padding. Only ``onnxruntime`` is needed
(the metadata is read through it), not ``onnx``.

Shapes: B batch, K detections per image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import CenterNetError
from ..export import INPUT_NAME, INSTALL_HINT, ExportMetadata
from ..tasks import build_task
from .inference import InferenceSettings, StageTimes


class OnnxRuntimeBackend:
    """A centernet ``.onnx`` export in an ``onnxruntime.InferenceSession``.

    ``metadata`` holds what the file carries (class names, category ids, input size, K, size
    divisor, ...). ``device``: 'cpu', or 'cuda' when onnxruntime has the CUDA provider.
    """

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        ort = import_onnxruntime()
        path = Path(path)
        if not path.is_file():
            raise CenterNetError(f"ONNX file {str(path)!r} does not exist")
        self.path = path
        try:
            options = ort.SessionOptions()
            # Idle onnxruntime threads otherwise keep spinning after each run and slow the torch
            # post-processing that follows by 100x or more on a small CPU (measured: bench/inference.py).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=_providers(ort, device))
        except CenterNetError:
            raise
        except Exception as e:  # onnxruntime raises its own types for a broken or foreign file
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CenterNetError(f"cannot read ONNX model {str(path)!r}: {first}") from None
        props = self.session.get_modelmeta().custom_metadata_map
        self.metadata = ExportMetadata.from_props(props, str(path))
        self.size_divisor = self.metadata.size_divisor
        self.task = build_task(self.metadata.task, len(self.metadata.class_names), self.metadata.task_config)

    def check_settings(self, settings: InferenceSettings) -> None:
        """Refuse, with one line, what an exported graph cannot do."""
        if settings.flip:
            raise CenterNetError(
                "flip=True is not available with the onnxruntime backend: flip TTA averages heatmaps, and the "
                "exported graph outputs decoded boxes; use the .pt weights (scales work with both)"
            )
        if settings.max_detections > self.metadata.max_detections:
            raise CenterNetError(
                f"max_detections={settings.max_detections} is out of range; {str(self.path)!r} was exported with "
                f"K={self.metadata.max_detections} (centernet export --max-detections N)"
            )

    def decode_batch(
        self, canvases: list[np.ndarray], settings: InferenceSettings, times: StageTimes
    ) -> tuple[dict[str, torch.Tensor], None]:
        """Canvases (H', W', 3) uint8 -> detections in output-map coordinates (boxes / stride, exact), no head maps.
        The graph normalises and decodes: its whole run is the model's time."""
        self.check_settings(settings)
        with times.stage("pre-process"):
            images = np.stack(canvases).transpose(0, 3, 1, 2).astype(np.float32)  # (B, 3, H', W') in [0, 255]
        with times.stage("model"):
            (rows,) = self.session.run(None, {INPUT_NAME: images})  # (B, K_export, 6 + task's columns)
        rows = torch.from_numpy(rows[:, : settings.max_detections])  # sorted by score
        stride = self.metadata.output_stride
        boxes = rows[..., :4] / stride  # (B, K, 4) output-map coordinates
        dets = {"boxes": boxes, "scores": rows[..., 4].contiguous(), "labels": rows[..., 5].round().long()}
        dets.update(self.task.read_export_columns(rows[..., 6:], stride))
        return dets, None


def import_onnxruntime():
    """The onnxruntime module, or a one-line error saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise CenterNetError(f"the onnxruntime backend needs onnxruntime: {INSTALL_HINT}") from None
    return onnxruntime


def onnxruntime_has_gpu() -> bool:
    """Whether the installed onnxruntime can run on a CUDA GPU."""
    return "CUDAExecutionProvider" in import_onnxruntime().get_available_providers()


def _providers(ort, device: str) -> list[str]:
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise CenterNetError(
        f"device={device!r} is not available to onnxruntime (providers: {', '.join(ort.get_available_providers())})"
    )
