"""The demos' shared training schedule; each task's ``demo()`` adds its own input size and data.

Sized to finish within 10 minutes on 2 CPU cores, set-up included. The schedule follows the clock
(``time_limit``), so a faster machine trains more steps. Every choice below won equal-time runs
(BENCHMARKS.md, "Detection demo" and "Human pose").
"""

from __future__ import annotations

from typing import Any

DEMO_SCHEDULE: dict[str, Any] = dict(
    epochs=100, batch_size=16, optimizer="adamw", lr=6e-3, weight_decay=1e-4, schedule="cosine",
    warmup_iters=100, val_interval=1000, workers=2, time_limit=7.5,
    # Each synthetic image is seen only a few times: the original's random crop and colour jitter only slow it.
    augment_mode="none", color_aug=False,
    # Too few steps for a moving average over the last few hundred: the raw weights validate better.
    ema=False, ema_decay=0.998, ema_tau=100.0,
    # Images decoded once before the clock starts; the loader processes only warp and encode.
    cache_images=True,
    # Progressive resizing: the first quarter of the clock at about half the input side, the second at two thirds.
    resize_at=(0.25, 0.5),
)


def demo_schedule(input_size: int, start_input_size: tuple[int, ...] | int = 0, **changes: Any) -> dict[str, Any]:
    """The shared schedule at ``input_size`` (with progressive resizing from ``start_input_size``), plus ``changes``."""
    settings = {**DEMO_SCHEDULE, "input_size": input_size, "start_input_size": start_input_size, **changes}
    if not start_input_size:
        settings["resize_at"] = None
    return settings
