"""Training augmentation: colour jitter + PCA lighting, and the affine modes (crop, shift_scale, none)."""

import cv2
import numpy as np
import pytest

from centernet.config import TrainConfig
from centernet.data.augment import EIGVAL, EIGVEC_BGR, EIGVEC_RGB, color_augment
from centernet.data.dataset import DetectionDataset
from centernet.data.samples import DatasetSplit, DetectionSample
from centernet.data.transforms import AugmentConfig, random_affine
from centernet.errors import CenterNetError
from centernet.tasks import DetectionTask


def original_color_aug_bgr(image_bgr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The original CenterNet's color_aug, step by step on a BGR [0, 1] image (our draws' order)."""
    img = image_bgr.astype(np.float64).copy()
    gray = cv2.cvtColor(image_bgr.astype(np.float32), cv2.COLOR_BGR2GRAY).astype(np.float64)
    gray_mean = gray.mean()
    for step in rng.permutation(3):  # 0 brightness, 1 contrast, 2 saturation
        alpha = 1.0 + rng.uniform(-0.4, 0.4)
        if step == 0:
            img *= alpha
        elif step == 1:
            img = img * alpha + gray_mean * (1 - alpha)
        else:
            img = img * alpha + gray[..., None] * (1 - alpha)
    coeffs = rng.normal(0.0, 0.1, size=3)
    img += EIGVEC_BGR.astype(np.float64) @ (EIGVAL.astype(np.float64) * coeffs)
    return img


@pytest.mark.parametrize("seed", range(8))
def test_color_augment_equals_the_original_on_the_same_picture(seed):
    """Ours on RGB == the original's on the same picture in BGR, channels reversed (folded ops == stepwise)."""
    rng = np.random.default_rng(100 + seed)
    rgb = rng.random((23, 31, 3), dtype=np.float32)
    ours = color_augment(rgb, np.random.default_rng(seed))
    theirs_bgr = original_color_aug_bgr(rgb[..., ::-1], np.random.default_rng(seed))
    assert ours.dtype == np.float32 and ours.shape == rgb.shape
    np.testing.assert_allclose(ours, theirs_bgr[..., ::-1], atol=2e-6)


def test_eigenvectors_are_the_originals_with_rows_reversed():
    np.testing.assert_array_equal(EIGVEC_RGB, EIGVEC_BGR[::-1])
    # Orthonormal columns: a proper PCA basis.
    np.testing.assert_allclose(EIGVEC_RGB.T @ EIGVEC_RGB, np.eye(3), atol=1e-5)


def test_color_augment_statistics():
    """Lighting is one RGB offset per image; a gray image stays gray up to that offset; factors in range."""
    gray_image = np.full((8, 8, 3), 0.5, np.float32)
    for seed in range(20):
        out = color_augment(gray_image, np.random.default_rng(seed))
        # Every pixel gets the same value: brightness/contrast/saturation keep a flat gray flat.
        np.testing.assert_allclose(out, np.broadcast_to(out[0, 0], out.shape), atol=1e-6)
        # Brightness x contrast x saturation scale 0.5 by at most 1.4 ** 3 (contrast/saturation fix a flat gray).
        assert 0.5 * 0.6 - 0.2 < out.mean() < 0.5 * 1.4 + 0.2


def test_color_augment_is_fast():
    import time

    image = np.random.default_rng(0).random((256, 256, 3), dtype=np.float32)
    rng = np.random.default_rng(0)
    color_augment(image, rng)
    start = time.perf_counter()
    for _ in range(20):
        color_augment(image, rng)
    per_call = (time.perf_counter() - start) / 20
    assert per_call < 0.02  # ~0.6 ms measured; generous for a loaded CI machine


def _one_rect_split(tmp_path, width=300, height=170):
    image = np.zeros((height, width, 3), np.uint8)
    image[40:110, 60:200] = (200, 60, 30)
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), image[..., ::-1])
    sample = DetectionSample(path, 1, width, height, np.array([[60, 40, 200, 110]], np.float32), np.array([0]))
    return DatasetSplit([sample], ["rect"], [1])


def test_dataset_color_is_deterministic_and_leaves_geometry_alone(tmp_path):
    split = _one_rect_split(tmp_path)
    task = DetectionTask(num_classes=1)

    def item(color: bool, epoch: int, seed: int = 0):
        ds = DetectionDataset(split, 128, task, augment=AugmentConfig(color=color), seed=seed)
        ds.set_epoch(epoch)
        return ds[0]

    a, b = item(True, 3), item(True, 3)
    np.testing.assert_array_equal(a["image"].numpy(), b["image"].numpy())  # same (seed, epoch, index)
    assert not np.array_equal(a["image"].numpy(), item(True, 4)["image"].numpy())
    plain = item(False, 3)
    assert not np.allclose(a["image"].numpy(), plain["image"].numpy())  # the colours changed ...
    for k in a["targets"]:  # ... the targets did not: the affine draws come first
        np.testing.assert_array_equal(a["targets"][k].numpy(), plain["targets"][k].numpy())


def _scale_and_center(matrix: np.ndarray, input_size: int) -> tuple[float, float, float]:
    """Invert affine_matrix (no flip): the square side and its centre in image pixels."""
    k = abs(matrix[0, 0])
    return input_size / k, (input_size / 2 - matrix[0, 2]) / k, (input_size / 2 - matrix[1, 2]) / k


def test_shift_scale_mode_follows_the_original():
    w, h, size = 300, 170, 128
    cfg = AugmentConfig(mode="shift_scale", flip=0.0)
    rng = np.random.default_rng(0)
    scales, dx, dy = [], [], []
    for _ in range(2000):
        side, cx, cy = _scale_and_center(random_affine(w, h, size, cfg, rng), size)
        scales.append(side / 300)
        dx.append((cx - w / 2) / 300)
        dy.append((cy - h / 2) / 300)
    scales, dx, dy = map(np.array, (scales, dx, dy))
    assert scales.min() >= 0.6 - 1e-9 and scales.max() <= 1.4 + 1e-9
    assert np.mean(np.isclose(scales, 0.6)) > 0.05 and np.mean(np.isclose(scales, 1.4)) > 0.05  # clipped at 1 +- 1 sf
    for d in (dx, dy):
        assert np.abs(d).max() <= 0.2 + 1e-9                 # clipped at 2 x shift, in units of max(h, w)
        assert 0.08 < d.std() < 0.1 and abs(d.mean()) < 0.01  # ~N(0, 0.1) truncated at 2 sigma (std 0.088)
    # Reproducible from the generator.
    m1 = random_affine(w, h, size, cfg, np.random.default_rng(5))
    m2 = random_affine(w, h, size, cfg, np.random.default_rng(5))
    np.testing.assert_array_equal(m1, m2)


def test_crop_mode_scales_and_centres():
    w, h, size = 300, 170, 128
    rng = np.random.default_rng(1)
    for _ in range(200):
        side, cx, cy = _scale_and_center(random_affine(w, h, size, AugmentConfig(flip=0.0), rng), size)
        ratio = side / 300
        assert np.isclose(ratio * 10, round(ratio * 10)) and 0.6 - 1e-9 <= ratio <= 1.3 + 1e-9
        assert 128 - 1e-6 <= cx <= 300 - 128 + 1e-6 and 64 - 1e-6 <= cy <= 170 - 64 + 1e-6  # border 128; 64 for h


def test_none_mode_is_the_letterbox_and_flip_mirrors():
    from centernet.data.transforms import compose, flip_matrix, letterbox_matrix

    w, h, size = 300, 170, 128
    np.testing.assert_array_equal(
        random_affine(w, h, size, AugmentConfig(mode="none", flip=0.0), np.random.default_rng(0)),
        letterbox_matrix(w, h, size),
    )
    np.testing.assert_allclose(
        random_affine(w, h, size, AugmentConfig(mode="none", flip=1.0), np.random.default_rng(0)),
        compose(flip_matrix(size), letterbox_matrix(w, h, size)),
    )


def test_settings_validation():
    with pytest.raises(ValueError, match="augment mode"):
        AugmentConfig(mode="mosaic")
    with pytest.raises(CenterNetError, match="augment_mode"):
        TrainConfig(augment_mode="random").validate()
    with pytest.raises(CenterNetError, match="aug_scale"):
        TrainConfig(aug_scale=1.0).validate()
    with pytest.raises(CenterNetError, match="aug_shift"):
        TrainConfig(aug_shift=-0.1).validate()
    cfg = TrainConfig().validate()
    assert (cfg.augment_mode, cfg.aug_shift, cfg.aug_scale, cfg.color_aug) == ("crop", 0.1, 0.4, True)


def test_trainer_builds_the_augment_config(tmp_path):
    """The TrainConfig fields reach the dataset's AugmentConfig."""
    import torch

    from centernet.engine.trainer import ModelInfo, Trainer

    split = _one_rect_split(tmp_path)
    cfg = TrainConfig(
        epochs=1, batch_size=1, input_size=64, augment_mode="shift_scale", aug_shift=0.05, aug_scale=0.3,
        color_aug=False, flip=0.25, workers=0, ema=False, precision="fp32",
    )
    info = ModelInfo("dummy", 8, "detect", ["rect"], [1], (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    trainer = Trainer(torch.nn.Conv2d(3, 5, 1), DetectionTask(1), split, None, cfg, info, tmp_path / "run", progress=False)
    assert trainer.dataset.augment == AugmentConfig(mode="shift_scale", shift=0.05, scale=0.3, flip=0.25, color=False)
