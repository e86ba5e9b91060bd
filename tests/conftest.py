"""Shared fixtures: a tiny shapes set and one short training run reused by the API and CLI tests."""

from __future__ import annotations

import csv
from pathlib import Path

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
    """Built-in datasets go to a per-session temporary cache, never the user's ~/.cache."""
    monkeypatch.setenv("CENTERNET_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """Train resnet18 briefly (80 steps, ~15 s) on TINY_SHAPES; validate on the training images before and after.

    In fp32 whatever the CPU ('auto' would take bf16 on some and fp32 on others), so every machine trains the same
    model. Measured in session 16 (fp32, fused AdamW): mAP 0.00 -> 0.30 (AP50 0.52); the top score on each of
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
