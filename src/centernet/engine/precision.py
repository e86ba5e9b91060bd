"""Mixed precision: bf16 autocast + channels_last on CPUs where it beats fp32 and on GPUs; fp16 autocast with a
gradient scaler on GPUs."""

from __future__ import annotations

import contextlib
import copy
import statistics
import time
from functools import lru_cache

import torch

from ..errors import CenterNetError
from .distributed import DistributedContext, broadcast_value

PRECISIONS = ("auto", "bf16", "fp16", "fp32")


@lru_cache(maxsize=None)
def cpu_has_native_bf16() -> bool:
    """True when oneDNN reports hardware bf16 support on this CPU."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


# 'auto' takes bf16 on a CPU when the probe runs it at least this much faster than fp32.
BF16_MIN_SPEEDUP = 1.1


@lru_cache(maxsize=None)
def cpu_bf16_speedup(repeats: int = 5) -> float | None:
    """fp32 time / bf16 time of a small convolution block's forward and backward on this CPU; None without
    native bf16.

    Native bf16 does not make bf16 fast by itself: on a 2-core AMD EPYC (AVX512-BF16, no AMX) a detector's
    training step ran 2.5x faster in bf16 + channels_last than in fp32, on a 2-core Intel Xeon with the same
    flags 1.4x slower (BENCHMARKS.md). So 'auto' measures: two 3x3 convolutions of 64 channels on a batch of
    8 maps of 48 x 48 with BatchNorm and ReLU, timed alternately in each form (about half a second, once).
    """
    if not cpu_has_native_bf16():
        return None
    # Its own random numbers (a run's draws do not depend on whether the probe ran), and gradients even when
    # called under no_grad (prediction).
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(0)
        return _probe_speedup(repeats)


def _probe_speedup(repeats: int) -> float:
    block = torch.nn.Sequential(
        torch.nn.Conv2d(64, 64, 3, padding=1, bias=False), torch.nn.BatchNorm2d(64), torch.nn.ReLU(),
        torch.nn.Conv2d(64, 64, 3, padding=1, bias=False), torch.nn.BatchNorm2d(64), torch.nn.ReLU(),
    )
    x = torch.randn(8, 64, 48, 48)
    forms = {
        "fp32": (block, x, contextlib.nullcontext),
        "bf16": (
            copy.deepcopy(block).to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last),
            lambda: torch.autocast("cpu", dtype=torch.bfloat16),
        ),
    }
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for i in range(repeats + 1):  # the first round warms up (oneDNN builds its kernels)
        for name, (module, inputs, context) in forms.items():
            start = time.perf_counter()
            with context():
                out = module(inputs)
            out.float().square().mean().backward()
            if i:
                times[name].append(time.perf_counter() - start)
    return statistics.median(times["fp32"]) / statistics.median(times["bf16"])


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' -> 'bf16' on a bf16-capable GPU, or on a CPU with native bf16 where :func:`cpu_bf16_speedup` is
    at least ``BF16_MIN_SPEEDUP``; else 'fp32'."""
    if precision not in PRECISIONS:
        raise CenterNetError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise CenterNetError("precision 'fp16' needs a GPU (on CPU use 'bf16' or 'fp32')")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type != "cpu":  # Apple's GPU: float32, which every op there runs
        return "fp32"
    speedup = cpu_bf16_speedup()
    return "bf16" if speedup is not None and speedup >= BF16_MIN_SPEEDUP else "fp32"


def agree_on_precision(precision: str, context: DistributedContext) -> str:
    """Rank 0's resolved precision on every rank.

    'auto' on a CPU times bf16 against fp32 in each process (:func:`cpu_bf16_speedup`), and two processes
    sharing a machine can time it differently; DDP would then all-reduce gradients computed in two precisions.
    Everywhere else the ranks already agree, and the broadcast changes nothing.
    """
    if not context.enabled:
        return precision
    return PRECISIONS[round(broadcast_value(PRECISIONS.index(precision), context))]


def auto_precision_note(precision: str, device: torch.device) -> str:
    """Why 'auto' chose what it did on a CPU with native bf16 (its probe's speed-up), for the training log."""
    if precision != "auto" or device.type != "cpu" or (speedup := cpu_bf16_speedup()) is None:
        return ""
    return f" (auto: in a probe bf16 + channels_last ran at {speedup:.2f}x fp32's speed on this CPU)"


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
