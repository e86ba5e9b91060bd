"""Shared helpers for the benchmark scripts: machine description and robust timing."""

from __future__ import annotations

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


def matmul_peak_tflops(dtype: torch.dtype, n: int = 2048) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    median, _, _ = time_it(lambda: a @ b, repeats=9)
    return 2 * n**3 / median / 1e12


def machine_header() -> str:
    from centernet.engine.precision import cpu_has_native_bf16

    flags = cpu_flags()
    native = sorted(f for f in flags if f in {"avx512_bf16", "amx_bf16", "amx_tile", "avx512f"})
    return (
        f"- CPU: {cpu_model()}, {torch.get_num_threads()} threads; flags: {', '.join(native) or 'none of note'}\n"
        f"- torch {torch.__version__}, oneDNN native bf16: {cpu_has_native_bf16()}\n"
        f"- matmul 2048x2048 (median of 9): bf16 {matmul_peak_tflops(torch.bfloat16):.2f} TFLOP/s, "
        f"fp32 {matmul_peak_tflops(torch.float32):.2f} TFLOP/s"
    )
