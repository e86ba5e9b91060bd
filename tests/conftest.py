"""Shared fixtures: a tiny shapes set and one short training run reused by the API and CLI tests."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from centernet.data.shapes import ShapesConfig

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# Large, few objects on small images: learnable in a few dozen steps on 2 CPU cores.
TINY_SHAPES = ShapesConfig(
    image_size=64, num_train=16, num_val=8, min_size=14, max_size_frac=0.6, mean_objects=1.5,
    size_distribution="uniform", seed=3,
)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Built-in datasets go to a per-run temporary cache, never the user's ~/.cache."""
    monkeypatch.setenv("CENTERNET_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """Train resnet18 for 80 steps (about 15 s) on TINY_SHAPES; validate on the training images before and after.

    In fp32 whatever the CPU ('auto' would take bf16 on some and fp32 on others), so every machine trains the same
    model. Measured (fp32, fused AdamW): mAP 0.00 -> 0.30 (AP50 0.52); the top score on each of
    the first three val images 0.27-0.29.
    """
    import os

    os.environ["CENTERNET_CACHE"] = str(tmp_path_factory.getbasetemp() / "cache")
    from centernet import CenterNet
    from centernet.data import load_split

    out = tmp_path_factory.mktemp("run")
    import torch

    torch.manual_seed(0)  # the weights are built here, before train() seeds anything
    model = CenterNet("resnet18")
    train = load_split("shapes", "train", TINY_SHAPES)
    model._build(train.num_classes, train.class_names, train.category_ids)
    model.input_size = 64
    before = model.val("shapes", split="train", shapes_config=TINY_SHAPES, progress=False, precision="fp32")
    metrics = model.train(
        data="shapes", out=out, shapes_config=TINY_SHAPES, val_split="train", epochs=40, batch_size=8,
        input_size=64, optimizer="adamw", lr=5e-3, schedule="cosine", warmup_iters=5, val_interval=20,
        workers=0, progress=False, augment_mode="none", color_aug=False, ema_decay=0.99, ema_tau=20.0,
        precision="fp32",
    )
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    return {"model": model, "out": out, "before": before, "after": metrics, "rows": rows}


def random_boxes(rng, n, out_h, out_w, num_classes):
    """Boxes of every awkward kind: tiny, huge, zero and negative sides, on and past the borders, integer corners."""
    cx, cy = rng.uniform(-2, out_w + 2, n), rng.uniform(-2, out_h + 2, n)
    bw, bh = rng.choice([0.0, 0.3, 1.0, 2.5, 7.0, 30.0, 200.0], n) * rng.uniform(0.5, 1.5, n), rng.uniform(0, 60, n)
    bw[rng.random(n) < 0.1] = 0.0           # zero width
    bh[rng.random(n) < 0.05] = -1.0         # negative height
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    clip = rng.random(n) < 0.7              # most clipped to the map, as the dataset gives them
    boxes[clip, 0::2] = boxes[clip, 0::2].clip(0, out_w)
    boxes[clip, 1::2] = boxes[clip, 1::2].clip(0, out_h)
    same = rng.random(n) < 0.15
    boxes[same] = np.round(boxes[same][:1])  # a few identical boxes (same class or not), integer corners
    labels = rng.integers(0, num_classes, n)
    return boxes.astype(np.float32), labels
