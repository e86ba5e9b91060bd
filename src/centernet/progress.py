"""Progress bars that read well on a terminal and in a log file."""

from __future__ import annotations

import sys
from typing import Iterable

from tqdm import tqdm


def progress_bar(iterable: Iterable | None = None, desc: str = "", disable: bool = False, **kwargs) -> tqdm:
    """A tqdm bar; when stderr is not a terminal (CI, a pipe) it updates every 30 s instead of 10x a second."""
    interactive = sys.stderr.isatty()
    return tqdm(
        iterable, desc=desc, disable=disable, dynamic_ncols=True,
        mininterval=0.1 if interactive else 30.0, ascii=None if interactive else True, **kwargs,
    )
