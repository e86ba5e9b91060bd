"""Shared helpers for the benchmark scripts: machine description and robust timing."""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Callable

import torch


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> set[str]:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def time_it(fn: Callable[[], object], repeats: int = 7, warmup: int = 2) -> tuple[float, float, float]:
    """(median, min, max) seconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times), max(times)


def matmul_tflops(dtype: torch.dtype, n: int = 2048, repeats: int = 9) -> tuple[float, float, float]:
    """(median, min, max) TFLOP/s of an n x n by n x n matmul in ``dtype`` (2 n^3 FLOPs per product)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    median, low, high = time_it(lambda: a @ b, repeats=repeats)
    flops = 2 * n**3
    return flops / median / 1e12, flops / high / 1e12, flops / low / 1e12


RELEVANT_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


def machine_header(peaks: dict[str, tuple[float, float, float]] | None = None) -> str:
    """Markdown lines: CPU model, cores, the flags that decide bf16 speed, torch, and the matmul peaks.

    ``peaks``: {'bf16': (median, min, max), 'fp32': ...} TFLOP/s already measured by the caller
    (see :func:`matmul_tflops`); measured here (median of 9) when not given.
    """
    from centernet.engine.precision import cpu_has_native_bf16

    flags = cpu_flags()
    present = [f for f in RELEVANT_FLAGS if f in flags]
    absent = [f for f in ("avx512_bf16", "amx_bf16", "amx_tile") if f not in flags]
    peaks = peaks or {"bf16": matmul_tflops(torch.bfloat16), "fp32": matmul_tflops(torch.float32)}
    bf16, fp32 = peaks["bf16"], peaks["fp32"]
    return (
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores, torch uses {torch.get_num_threads()} threads\n"
        f"- flags: {', '.join(present) or 'none of note'}; absent: {', '.join(absent) or 'none'}\n"
        f"- torch {torch.__version__}, Python {platform.python_version()}, oneDNN native bf16: {cpu_has_native_bf16()}\n"
        f"- matmul 2048x2048, TFLOP/s median (min-max): bf16 {bf16[0]:.2f} ({bf16[1]:.2f}-{bf16[2]:.2f}), "
        f"fp32 {fp32[0]:.2f} ({fp32[1]:.2f}-{fp32[2]:.2f})"
    )
