"""Loading local weight files (ImageNet backbones, pre-trained bodies) into a module, strictly."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from ..errors import CenterNetError


def load_local_weights(
    module: nn.Module, path: str | Path, what: str, ignore: Callable[[str], bool] = lambda name: False
) -> None:
    """Load a local state dict (bare or ``{'state_dict': ...}``, ``module.`` prefixes stripped) into ``module``.

    Names for which ``ignore(name)`` is true are skipped on both sides (a classifier ``fc.*``, the
    heads). BatchNorm ``num_batches_tracked`` counters, absent from older files, keep their value.
    Anything else missing, unexpected or of the wrong shape raises one CenterNetError naming it.
    Nothing is ever downloaded.
    """
    from ..engine.checkpoint import load_plain

    path = Path(path)
    if not path.is_file():
        raise CenterNetError(f"pretrained weights {str(path)!r} not found; expected a local .pth file")
    state = load_plain(path, "pretrained weights")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CenterNetError(f"pretrained weights {str(path)!r} are not a state dict of tensors")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not ignore(k)}
    own = {k: v for k, v in module.state_dict().items() if not ignore(k)}
    missing = sorted(k for k in set(own) - set(state) if not k.endswith("num_batches_tracked"))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in set(own) & set(state)
        if state[k].shape != own[k].shape
    )
    if missing or unexpected or wrong:
        parts = [
            f"{label} ({len(names)}): {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
            for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if names
        ]
        raise CenterNetError(f"pretrained weights {str(path)!r} do not fit {what}: " + "; ".join(parts))
    module.load_state_dict(state, strict=False)
