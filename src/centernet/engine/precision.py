"""Mixed precision: bf16 autocast + channels_last on CPUs with native bf16 (AVX512-BF16 / AMX) and on
GPUs; fp16 autocast with a gradient scaler on GPUs."""

from __future__ import annotations

import contextlib
from functools import lru_cache

import torch

from ..errors import CenterNetError

PRECISIONS = ("auto", "bf16", "fp16", "fp32")


@lru_cache(maxsize=None)
def cpu_has_native_bf16() -> bool:
    """True when oneDNN reports hardware bf16 support on this CPU."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' -> 'bf16' on a CPU with native bf16 or a bf16-capable GPU, else 'fp32'."""
    if precision not in PRECISIONS:
        raise CenterNetError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise CenterNetError("precision 'fp16' needs a GPU (on CPU use 'bf16' or 'fp32')")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def autocast(device: torch.device, precision: str):
    """Autocast context for a resolved precision ('bf16', 'fp16' or 'fp32')."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp16":
        return torch.autocast(device.type, dtype=torch.float16)
    return contextlib.nullcontext()


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """A loss scaler for fp16 (whose gradients would underflow); disabled (a pass-through) otherwise."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def memory_format(device: torch.device, precision: str) -> torch.memory_format:
    """channels_last wherever reduced precision runs (oneDNN and cuDNN are fastest with it)."""
    return torch.channels_last if precision in ("bf16", "fp16") else torch.contiguous_format
