"""Real KITTI frames end to end: a model trained on two frames of ``../shared/data/kitti_mini`` finds their cars
in 3D (the real camera path, image sizes and labels), where the same model untrained finds none."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from centernet import CenterNet

SHARED_DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
KITTI_MINI = SHARED_DATA / "kitti_mini" / "training"
FRAMES = ("000003", "000007")  # four cars at 13-61 m
STEPS = 120  # one step per epoch: both frames in a batch


def two_frames(root: Path) -> Path:
    for folder, suffix in (("image_2", ".png"), ("label_2", ".txt"), ("calib", ".txt")):
        (root / "training" / folder).mkdir(parents=True)
        for frame in FRAMES:
            shutil.copy(KITTI_MINI / folder / f"{frame}{suffix}", root / "training" / folder)
    return root


@pytest.mark.slow
@pytest.mark.skipif(not KITTI_MINI.is_dir(), reason="../shared/data/kitti_mini not present")
def test_two_kitti_frames_overfit_to_their_cars_in_birds_eye_view(tmp_path):
    data = two_frames(tmp_path / "kitti2")
    torch.manual_seed(0)
    options = {"depth": "laplace", "regress_at": "gaussian", "orientation": "crop"}  # the 3D demo's
    settings = dict(input_size=640, input_height=192, batch_size=2, optimizer="adamw", lr=3e-3, schedule="cosine",
                    warmup_iters=10, augment_mode="none", color_aug=False, ema=False, workers=0, progress=False,
                    cache_images=True)
    untrained = CenterNet("resnet18_shortcut", task="3d", task_options=options)
    before = untrained.train(data=data, out=tmp_path / "before", epochs=1, val_interval=1, **{**settings, "lr": 1e-9})
    model = CenterNet("resnet18_shortcut", task="3d", task_options=options)
    after = model.train(data=data, out=tmp_path / "after", epochs=STEPS, val_interval=STEPS, **settings)
    assert before["car_bev_ap50"] < 0.05
    # Two of the cars are moderate (the others too far, under 25 px): at least one is found in the ground plane at
    # IoU 0.5 (0.5 on the machine of BENCHMARKS.md), with every box found, the depth within 5 % and the heading.
    assert after["car_bev_ap50"] > 0.25 and after["map50"] > 0.9, after
    assert after["depth_error"] < 0.05 and after["axis_error"] < 10, after
