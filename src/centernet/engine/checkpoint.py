"""Checkpoints: written atomically, read with ``weights_only=True``.

A checkpoint is a plain dict of tensors, numbers, strings and lists, so loading never
executes code:
    model (state dict), model_name, heads, head_conv, task, class_names, category_ids,
    input_size, mean, std, epoch, metrics, and for resuming: optimizer, scheduler.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import struct
import tempfile
from pathlib import Path

import torch

from ..errors import CenterNetError


def save_checkpoint(state: dict, path: str | Path) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_plain(path: str | Path, what: str = "weights") -> object:
    """``torch.load`` with ``weights_only=True``; every failure becomes a one-line CenterNetError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CenterNetError(f"{what} file {str(path)!r} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        unsafe = re.search(r"GLOBAL (\S+) was not an allowed global", str(e))
        if unsafe:
            raise CenterNetError(
                f"refusing to load {str(path)!r}: it holds {unsafe.group(1)}, not only tensors and plain data "
                "(loading it could execute code)"
            ) from None
        raise CenterNetError(f"cannot read {what} {str(path)!r}: not a torch checkpoint, or a damaged one") from None
    except Exception as e:
        raise CenterNetError(f"cannot read {what} {str(path)!r}: {str(e).splitlines()[0] if str(e) else e!r}") from None


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by this package; anything else gets a one-line error."""
    state = load_plain(path)
    if not isinstance(state, dict) or "model" not in state or "model_name" not in state:
        raise CenterNetError(f"{str(path)!r} is not a centernet checkpoint (no 'model' / 'model_name' entries)")
    return state


# safetensors: an 8-byte little-endian header length, a JSON header
# {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the raw
# little-endian tensor bytes in header order. Written here (a few lines) rather than adding a dependency.
_SAFETENSORS_DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}


def save_safetensors(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``tensors`` (a state dict) as a .safetensors file, atomically; ``metadata`` values must be strings."""
    header: dict = {"__metadata__": dict(metadata or {})} if metadata else {}
    blobs, offset = [], 0
    for name, tensor in tensors.items():
        if tensor.dtype not in _SAFETENSORS_DTYPES:
            raise CenterNetError(f"tensor {name!r} has dtype {tensor.dtype}, which safetensors cannot hold")
        data = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        header[name] = {
            "dtype": _SAFETENSORS_DTYPES[tensor.dtype], "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # pad the header so the data starts 8-byte aligned
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(encoded)) + encoded)
            for data in blobs:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a .safetensors file: (tensors, metadata). A malformed file gets a one-line error."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        (size,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8 : 8 + size])
        metadata = header.pop("__metadata__", {})
        by_code = {code: dtype for dtype, code in _SAFETENSORS_DTYPES.items()}
        data = raw[8 + size :]
        tensors = {}
        for name, entry in header.items():
            begin, end = entry["data_offsets"]
            buffer = bytearray(data[begin:end])
            tensors[name] = torch.frombuffer(buffer, dtype=torch.uint8).view(by_code[entry["dtype"]]).reshape(entry["shape"])
    except (struct.error, ValueError, KeyError, TypeError, RuntimeError) as e:
        raise CenterNetError(f"{str(path)!r} is not a valid safetensors file: {e}") from None
    return tensors, metadata
