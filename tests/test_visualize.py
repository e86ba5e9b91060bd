"""Tests for centernet.visualize."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from centernet.errors import CenterNetError
from centernet.visualize import draw_boxes, heatmap_overlay, plot_training_curves, save_image


def gray_image(h: int = 200, w: int = 300) -> np.ndarray:
    return np.full((h, w, 3), 128, dtype=np.uint8)


def test_draw_boxes_changes_edges_only() -> None:
    image = gray_image()
    out = draw_boxes(image, np.array([[50.0, 60.0, 150.0, 160.0]]), np.array([1]), np.array([0.9]), ["a", "b"])
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(image, gray_image())  # input untouched
    changed = np.any(out != image, axis=2)
    # Every side of the box is drawn.
    assert changed[110, 50] and changed[110, 150] and changed[160, 100] and changed[60, 100]
    # The box interior (away from the label tag) and far-away pixels are untouched.
    assert not changed[90:150, 60:140].any()
    assert not changed[:, 200:].any()
    assert not changed[170:, :].any()


def test_draw_boxes_threshold_empty_and_tensors() -> None:
    image = gray_image()
    empty = draw_boxes(image, np.zeros((0, 4)), np.zeros(0, dtype=int), np.zeros(0), None)
    assert np.array_equal(empty, image)
    below = draw_boxes(image, [[10, 10, 50, 50]], [0], [0.1], None, score_threshold=0.3)
    assert np.array_equal(below, image)
    out = draw_boxes(
        image,
        torch.tensor([[10.0, 10.0, 50.0, 50.0], [-20.0, 100.0, 400.0, 190.0]]),
        torch.tensor([0, 5]),
        None,
        None,
    )
    assert out.shape == image.shape and not np.array_equal(out, image)
    with pytest.raises(CenterNetError, match="expected equal counts"):
        draw_boxes(image, [[0, 0, 1, 1]], [0, 1], None, None)
    with pytest.raises(CenterNetError, match="uint8"):
        draw_boxes(image.astype(np.float32), [], [], None, None)


def test_heatmap_overlay_peak_is_red() -> None:
    image = gray_image(160, 240)
    heat = np.zeros((3, 40, 60), dtype=np.float32)
    heat[1, 20, 30] = 1.0
    heat[1] = cv2.GaussianBlur(heat[1], (0, 0), 2.0)
    heat[1] /= heat[1].max()
    out = heatmap_overlay(image, heat, alpha=0.6)
    assert out.shape == image.shape and out.dtype == np.uint8
    r, g, b = (int(v) for v in out[80, 120])
    assert r > g + 40 and r > b + 40
    r0, g0, b0 = (int(v) for v in out[5, 5])  # heat 0 -> JET dark blue
    assert b0 > r0 + 40
    with pytest.raises(CenterNetError, match="alpha"):
        heatmap_overlay(image, heat, alpha=2.0)


def test_plot_training_curves(tmp_path: Path) -> None:
    csv_path = tmp_path / "results.csv"
    csv_path.write_text(
        "epoch,loss,heatmap_loss,size_loss,offset_loss,map,map50,map75,lr\n"
        "1,5.0,3.0,1.5,0.5,,,,0.001\n"
        "2,3.0,2.0,0.7,0.3,0.10,0.25,0.08,0.001\n"
        "3,2.0,1.4,0.4,0.2,,,,0.001\n"
        "4,1.5,1.0,0.3,0.2,0.20,0.40,0.18,0.0001\n"
    )
    out = plot_training_curves(csv_path, tmp_path / "plots" / "curves.png")
    assert out.is_file() and out.stat().st_size > 1000
    assert cv2.imread(str(out)) is not None
    with pytest.raises(CenterNetError, match="does not exist"):
        plot_training_curves(tmp_path / "missing.csv", tmp_path / "x.png")


def test_save_image_round_trip(tmp_path: Path) -> None:
    image = gray_image(20, 30)
    image[..., 0] = 255  # pure-ish red in RGB
    path = save_image(tmp_path / "sub" / "img.png", image)
    back = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert np.array_equal(back, image)


def test_training_batch_grid_draws_each_image_its_heatmap_and_boxes():
    """Dense and sparse targets give the same picture; the boxes sit where the targets put them."""
    import torch

    from centernet.data.shapes import ShapesConfig
    from centernet.tasks import DetectionTask
    from centernet.visualize import training_batch_grid

    task = DetectionTask(num_classes=2)
    encoder = task.encoder()
    boxes = np.array([[8.0, 4.0, 24.0, 12.0]])  # output pixels (stride 4): 64 x 32 input pixels at (32, 16)
    sparse = encoder(boxes=boxes, labels=np.array([1]), output_size=(16, 32))
    from centernet.ops.sparse import dense_targets

    dense = dense_targets(sparse, 2, (16, 32))
    images = torch.zeros(5, 3, 64, 128)  # normalised 0: the mean colour
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    batches = [{k: torch.as_tensor(v)[None].expand(5, *np.shape(v)) for k, v in t.items()} for t in (sparse, dense)]
    grids = [training_batch_grid(images, b, mean, std, ["a", "b"]) for b in batches]
    assert grids[0].shape == (2 * 64, 4 * 128, 3)  # 5 images: two rows of 4, the last three tiles empty
    np.testing.assert_array_equal(grids[0], grids[1])
    tile = grids[0][:64, :128].astype(int)
    # De-normalised grey (128) under the heatmap's colour for 0 (JET's dark blue, 0 0 128) at weight 0.4.
    assert np.abs(tile[0, 0] - [77, 77, 128]).max() <= 2
    assert (np.abs(tile[16, 32:96] - tile[0, 0]).sum(-1) > 60).mean() > 0.8  # the box's top edge, 64 px wide at y 16
    assert not grids[0][64:, 128:].any()  # empty tiles stay black


def test_plot_labels_counts_every_class_and_scales_boxes_by_their_image(tmp_path):
    from centernet.visualize import plot_labels

    path = plot_labels(["a", "b", "c"], [np.array([0, 2]), np.array([2])],
                       [np.array([[0, 0, 10, 20], [5, 5, 15, 15]]), np.array([[0, 0, 50, 50]])],
                       [(100, 50), (200, 100)], tmp_path / "sub" / "labels.jpg")
    image = cv2.imread(str(path))
    assert image is not None and image.shape[:2] == (336, 1040)
    # No image, no instance: still a picture (empty panels), not an error.
    assert cv2.imread(str(plot_labels(["a"], [], [], [], tmp_path / "empty.jpg"))) is not None
