"""Model registry: ``register_model`` / ``create_model`` / ``list_models``.

Each architecture is a small builder function registered under a name (the built-in ones register when
``centernet.models`` is imported; this module imports none of them)::

    @register_model("resnet18")
    def resnet18(heads, **kwargs): ...

``create_model("resnet18", num_classes=4)`` builds a detection model; tasks other than
detection pass their own ``heads``.
"""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

from ..errors import CenterNetError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a builder ``fn(heads, **kwargs) -> nn.Module`` under ``name``."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        _MODELS[name] = fn
        return fn

    return wrap


def list_models() -> list[str]:
    """Names of every registered architecture, sorted."""
    return sorted(_MODELS)


def create_model(
    name: str,
    num_classes: int | None = None,
    heads: dict[str, int] | None = None,
    **kwargs,
) -> nn.Module:
    """Build a registered model.

    Args:
        name: a name from :func:`list_models`.
        num_classes: for detection: the heads become heatmap (num_classes), size (2), offset (2).
        heads: explicit head name -> output channels (used by pose and 3D tasks).
        **kwargs: passed to the builder (``head_conv``, ``pretrained`` = local file path).
    """
    if name not in _MODELS:
        raise CenterNetError(f"unknown model {name!r}; expected one of: {', '.join(sorted(_MODELS))}")
    if heads is None:
        if num_classes is None:
            raise CenterNetError("create_model needs num_classes or heads")
        if num_classes < 1:
            raise CenterNetError(f"num_classes={num_classes} is out of range; expected >= 1")
        heads = {"heatmap": num_classes, "size": 2, "offset": 2}
    return _MODELS[name](heads=heads, **kwargs)
