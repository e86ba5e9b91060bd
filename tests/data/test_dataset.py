"""The training Dataset: the image cache changes nothing but speed; augmentation is reproducible."""

import numpy as np
import torch

from centernet.data import load_split
from centernet.data.dataset import DetectionDataset
from centernet.tasks import DetectionTask

from conftest import TINY_SHAPES


def _items(ds, indices):
    return [ds[i] for i in indices]


def test_cache_gives_identical_items():
    split = load_split("shapes", "train", TINY_SHAPES)
    task = DetectionTask(num_classes=4)
    plain = DetectionDataset(split, 64, task=task, seed=5)
    cached = DetectionDataset(split, 64, task=task, seed=5)
    used = cached.fill_cache(progress=False)
    assert used == sum(64 * 64 * 3 for _ in split.samples)
    for a, b in zip(_items(plain, range(4)), _items(cached, range(4))):
        assert torch.equal(a["image"], b["image"])
        for k in a["targets"]:
            assert torch.equal(a["targets"][k], b["targets"][k]), k


def test_augmentation_depends_on_seed_epoch_and_index_only():
    split = load_split("shapes", "train", TINY_SHAPES)
    task = DetectionTask(num_classes=4)
    ds = DetectionDataset(split, 64, task=task, seed=1)
    ds.set_epoch(3)
    first = ds[2]["image"]
    ds[0], ds[1]  # other items in between do not change item 2
    assert torch.equal(first, ds[2]["image"])
    ds.set_epoch(4)
    assert not torch.equal(first, ds[2]["image"])
    assert np.isfinite(first.numpy()).all()
