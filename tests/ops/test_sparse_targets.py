"""Sparse heatmap targets (centres + radii, drawn on the loss's device) against the dense encoder and loss."""

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from centernet.losses import focal_loss_from_logits, sparse_focal_loss_from_logits
from centernet.tasks.detection.targets import IGNORE_TARGET, DetectionTargetEncoder
from centernet.ops.gaussian import cached_gaussian_2d, draw_gaussian, gaussian_radius
from centernet.ops.sparse import dense_targets, heatmap_entries, render_heatmap
from centernet.tasks import DetectionTask

from conftest import random_boxes


def random_ignore(rng, g, out_h, out_w, num_classes):
    """Regions of every kind: every class (-1), one class, a class past C, empty, off and across the border."""
    corner = rng.uniform(-4, max(out_h, out_w) + 4, (g, 2))
    regions = np.concatenate([corner, corner + rng.uniform(-1, 20, (g, 2))], 1).astype(np.float32)
    return regions, rng.integers(-1, num_classes + 1, g)


def encode_batch(encoder, images, output_size):
    """Encode (boxes, labels, ignore, ignore_labels) of each image and collate as the DataLoader does."""
    items = [{k: torch.from_numpy(v) for k, v in encoder(b, l, output_size, ig, il).items()}
             for b, l, ig, il in images]
    return default_collate(items)


def random_images(rng, count, out_h, out_w, num_classes, max_n=40):
    images = []
    for _ in range(count):
        boxes, labels = random_boxes(rng, int(rng.integers(0, max_n)), out_h, out_w, num_classes)
        ignore = random_ignore(rng, int(rng.integers(0, 4)), out_h, out_w, num_classes) if rng.random() < 0.7 else (None, None)
        images.append((boxes, labels, *ignore))
    return images


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("output_size", [(32, 48), (17, 9), (128, 128), (1, 5)])
def test_sparse_targets_draw_the_dense_encoders_maps(output_size, exact):
    rng = np.random.default_rng(sum(output_size) + exact)
    kwargs = dict(num_classes=3, max_objects=30, exact_radius=exact)
    dense, sparse = DetectionTargetEncoder(**kwargs), DetectionTargetEncoder(**kwargs, sparse=True)
    images = random_images(rng, 6, *output_size, 3)
    want, got = encode_batch(dense, images, output_size), encode_batch(sparse, images, output_size)
    heatmap, ignore = render_heatmap(got, 3, output_size)
    np.testing.assert_allclose(heatmap.numpy(), want["heatmap"].numpy(), rtol=0, atol=1e-7)
    assert torch.equal(ignore, want["ignore"])
    for name in ("size", "offset", "index", "mask"):
        assert torch.equal(got[name], want[name]), name
    assert (heatmap == 1).sum() > 0 or want["mask"].sum() == 0


def test_hand_placed_objects_give_their_kernels_and_max_merge():
    """Two same-class objects with overlapping windows, one cut by the border, one class-only ignore region."""
    encoder = DetectionTargetEncoder(num_classes=2, sparse=True)
    boxes = np.array([[4, 4, 14, 14], [8, 6, 18, 16], [0, 0, 3, 5]], np.float32)
    targets = encoder(boxes, np.array([0, 0, 1]), (20, 24), np.array([[10, 10, 12.5, 11]]), np.array([1]))
    r = max(0, int(gaussian_radius(10, 10)))
    assert targets["peak_radius"][:3].tolist() == [r, r, max(0, int(gaussian_radius(5, 3)))]
    assert targets["peak_class"][:3].tolist() == [0, 0, 1]
    assert targets["ignore_rects"][0].tolist() == [1, 10, 10, 13, 11] and not targets["ignore_rects"][1:].any()
    heatmap = dense_targets(targets, 2, (20, 24))["heatmap"]
    expected = np.zeros((20, 24), np.float32)
    for cx, cy in ((9, 9), (13, 11)):
        expected[cy - r : cy + r + 1, cx - r : cx + r + 1] = np.maximum(
            expected[cy - r : cy + r + 1, cx - r : cx + r + 1], cached_gaussian_2d(r))
    np.testing.assert_array_equal(heatmap[0], expected)
    corner = draw_gaussian(np.zeros((20, 24), np.float32), (1, 2), targets["peak_radius"][2])  # centre (1.5, 2.5)
    corner[10:11, 10:13] = np.maximum(corner[10:11, 10:13], IGNORE_TARGET)
    np.testing.assert_array_equal(heatmap[1], corner)


def dense_and_sparse(rng, batch, num_classes, output_size):
    kwargs = dict(num_classes=num_classes, max_objects=30)
    images = random_images(rng, batch, *output_size, num_classes)
    dense = encode_batch(DetectionTargetEncoder(**kwargs), images, output_size)
    sparse = encode_batch(DetectionTargetEncoder(**kwargs, sparse=True), images, output_size)
    return dense, sparse


@pytest.mark.parametrize("scale", [1.0, 8.0, 100.0])
def test_sparse_focal_loss_equals_the_dense_one_and_its_gradient(scale):
    rng = np.random.default_rng(int(scale))
    dense, sparse = dense_and_sparse(rng, 4, 3, (24, 20))
    logits = (torch.randn(4, 3, 24, 20, generator=torch.Generator().manual_seed(1)) * scale).requires_grad_()
    want = focal_loss_from_logits(logits, dense["heatmap"], dense["ignore"])
    (want_grad,) = torch.autograd.grad(want, logits)
    keys, values, ignore = heatmap_entries(sparse, 3, (24, 20))
    got = sparse_focal_loss_from_logits(logits, keys, values, ignore)
    (got_grad,) = torch.autograd.grad(got, logits)
    assert torch.isfinite(got) and torch.isfinite(got_grad).all()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_grad, want_grad, rtol=1e-4, atol=1e-6)


def test_sparse_focal_loss_with_no_object_is_the_negative_term_and_bf16_logits_work():
    encoder = DetectionTargetEncoder(num_classes=2, sparse=True)
    empty = default_collate([{k: torch.from_numpy(v) for k, v in encoder(np.zeros((0, 4)), np.zeros(0), (8, 8)).items()}])
    keys, values, ignore = heatmap_entries(empty, 2, (8, 8))
    assert keys.numel() == 0 and ignore is None
    logits = torch.full((1, 2, 8, 8), 0.0)
    expected = -(torch.nn.functional.logsigmoid(-logits) * torch.sigmoid(logits) ** 2).sum()
    torch.testing.assert_close(sparse_focal_loss_from_logits(logits, keys, values), expected)
    dense, sparse = dense_and_sparse(np.random.default_rng(5), 2, 2, (16, 16))
    logits = torch.randn(2, 2, 16, 16).bfloat16()
    torch.testing.assert_close(
        sparse_focal_loss_from_logits(logits, *heatmap_entries(sparse, 2, (16, 16))),
        focal_loss_from_logits(logits, dense["heatmap"], dense["ignore"]), rtol=1e-5, atol=1e-5)


def test_task_loss_is_the_same_with_sparse_and_dense_targets():
    rng = np.random.default_rng(7)
    dense, sparse = dense_and_sparse(rng, 3, 4, (16, 20))
    outputs = {"heatmap": torch.randn(3, 4, 16, 20), "size": torch.randn(3, 2, 16, 20) * 5,
               "offset": torch.rand(3, 2, 16, 20)}
    task = DetectionTask(4, max_objects=30)
    assert task.encoder().sparse and not DetectionTask(4, sparse_targets=False).encoder().sparse
    got, want = task.loss(outputs, sparse), task.loss(outputs, dense)
    assert set(got) == set(want)
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-5, atol=1e-5)


def test_more_ignore_regions_than_slots_warns():
    encoder = DetectionTargetEncoder(num_classes=1, max_objects=2, sparse=True)
    with pytest.warns(UserWarning, match="3 ignore regions in one image, 2 kept"):
        targets = encoder(np.zeros((0, 4)), np.zeros(0), (8, 8), np.array([[0, 0, 2, 2]] * 3), np.array([0, 0, 0]))
    assert targets["ignore_rects"].shape == (2, 5)
