"""Which device runs the model: ``auto`` (the default everywhere) takes a GPU when there is one."""

from __future__ import annotations

import torch

from ..errors import CenterNetError

__all__ = ["describe_device", "resolve_device"]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when CUDA is available, else ``mps`` (Apple's GPU) when available, else ``cpu``; an
    explicit ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` is kept, and one that is not there is a one-line error."""
    name = str(device).strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
    if name == "cpu":
        return name
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise CenterNetError(f"device {device!r} is not available: this PyTorch sees no CUDA GPU "
                                 f"(use --device auto or cpu)")
        index = name.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise CenterNetError(f"device {device!r} is not available: {torch.cuda.device_count()} CUDA GPU(s), "
                                 f"numbered from 0")
        return name
    if name == "mps":
        if not _mps_available():
            raise CenterNetError(f"device {device!r} is not available: this PyTorch sees no Apple GPU "
                                 f"(use --device auto or cpu)")
        return name
    raise CenterNetError(f"device {device!r} is not one of auto, cpu, cuda, cuda:N, mps")


def describe_device(device: str) -> str:
    """One line for logs: the device and, for a GPU, its name."""
    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return device
