"""Checkpoints: written atomically, read with ``weights_only=True``.

A checkpoint is a plain dict of tensors, numbers, strings and lists, so loading never
executes code:
    model (state dict), model_name, heads, head_conv, task, class_names, category_ids,
    input_size, mean, std, epoch, metrics, and for resuming: optimizer, scheduler.
"""

from __future__ import annotations

import os
import pickle
import re
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
