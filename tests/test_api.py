"""The Python API: predict, save/load, val; the CLI's val and predict on a trained checkpoint."""

import json

import numpy as np
import pytest

from centernet import CenterNet, CenterNetError
from centernet.cli import main
from centernet.data import load_split

from conftest import TINY_SHAPES


def test_predict_on_arrays_returns_documented_fields():
    model = CenterNet("resnet18", num_classes=3)
    image = np.random.default_rng(0).integers(0, 255, (100, 150, 3), dtype=np.uint8)
    results = model.predict([image, image], conf=0.0, input_size=64, max_detections=7, heatmap=True)
    assert len(results) == 2
    r = results[0]
    assert r.boxes.shape == (7, 4) and r.scores.shape == (7,) and r.labels.shape == (7,)
    assert r.boxes.dtype == np.float32 and r.labels.dtype == np.int64
    assert np.all(np.diff(r.scores) <= 0)
    assert np.all(r.boxes[:, [0, 2]] <= 150) and np.all(r.boxes[:, [1, 3]] <= 100) and np.all(r.boxes >= 0)
    assert r.heatmap.shape == (3, 16, 16)
    drawn = r.plot(heatmap=True)
    assert drawn.shape == image.shape and drawn.dtype == np.uint8


def test_predict_keep_resolution_pads_instead_of_resizing():
    model = CenterNet("resnet18", num_classes=3)
    image = np.random.default_rng(1).integers(0, 255, (100, 150, 3), dtype=np.uint8)
    (r,) = model.predict(image, conf=0.0, keep_resolution=True, heatmap=True, max_detections=5)
    assert r.heatmap.shape == (3, 128 // 4, 160 // 4)  # padded to 128 x 160, stride 4
    assert np.all(r.boxes[:, [0, 2]] <= 150) and np.all(r.boxes[:, [1, 3]] <= 100)


def test_a_rectangular_training_input_scales_larger_images_as_training_did():
    """A model trained at 640 x 192 sees a 1242 x 375 KITTI frame at about half its size in training; val and
    predict scale it the same way (then pad), instead of running it at its own resolution."""
    from centernet.engine.inference import InferenceSettings, input_matrix

    settings = InferenceSettings(640, keep_resolution=True, input_height=192)
    (width, height), to_input = input_matrix(1242, 375, settings)
    assert (width, height) == (640, 192)  # 635 x 192, padded to a multiple of 32
    np.testing.assert_allclose(np.diag(to_input[:, :2]), [192 / 375] * 2, rtol=1e-2)
    (width, height), to_input = input_matrix(640, 192, settings)  # the training size itself: untouched
    assert (width, height) == (640, 192) and np.array_equal(to_input, np.eye(2, 3))
    model = CenterNet("resnet18", num_classes=3)
    model.keep_resolution, model.input_height, model.input_size = True, 192, 640
    image = np.zeros((375, 1242, 3), np.uint8)
    (r,) = model.predict(image, conf=0.0, heatmap=True, max_detections=5)
    assert r.heatmap.shape == (3, 192 // 4, 640 // 4)
    (r,) = model.predict(image, conf=0.0, heatmap=True, max_detections=5, input_size=640)  # a size given: as asked
    assert r.heatmap.shape == (3, 384 // 4, 1248 // 4)


def test_checkpoint_round_trip_gives_identical_predictions(trained_run, tmp_path):
    model = trained_run["model"]
    loaded = CenterNet.load(trained_run["out"] / "last.pt")
    assert loaded.class_names == ["circle", "square", "triangle", "star"]
    assert loaded.input_size == 64
    paths = [s.image_path for s in load_split("shapes", "val", TINY_SHAPES).samples[:3]]
    a = model.predict(paths, conf=0.0, precision="fp32")
    b = loaded.predict(paths, conf=0.0, precision="fp32")
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.boxes, y.boxes, atol=1e-4)
        np.testing.assert_allclose(x.scores, y.scores, atol=1e-6)


def test_predicted_boxes_overlap_ground_truth(trained_run):
    """The trained model finds the objects of its training images (IoU > 0.5 for most)."""
    model = trained_run["model"]
    split = load_split("shapes", "train", TINY_SHAPES)
    results = model.predict([s.image_path for s in split.samples], conf=0.2, precision="fp32")
    hits = total = 0
    for sample, r in zip(split.samples, results):
        for box in sample.boxes:
            total += 1
            if len(r.boxes):
                ix1 = np.maximum(r.boxes[:, 0], box[0]); iy1 = np.maximum(r.boxes[:, 1], box[1])
                ix2 = np.minimum(r.boxes[:, 2], box[2]); iy2 = np.minimum(r.boxes[:, 3], box[3])
                inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
                union = (r.boxes[:, 2] - r.boxes[:, 0]) * (r.boxes[:, 3] - r.boxes[:, 1]) + (box[2] - box[0]) * (box[3] - box[1]) - inter
                hits += (inter / union).max() > 0.5
    assert hits / total > 0.5, (hits, total)


def test_cli_val_and_predict(trained_run, tmp_path, capsys):
    weights = str(trained_run["out"] / "best.pt")
    dataset = load_split("shapes", "val", TINY_SHAPES)
    data_dir = str(dataset.samples[0].image_path.parents[2])
    assert main(["val", "--weights", weights, "--data", data_dir, "--out", str(tmp_path / "val"), "--voc07"]) == 0
    metrics = json.loads((tmp_path / "val" / "metrics.json").read_text())
    assert 0 <= metrics["map"] <= 1 and "map50" in metrics and "map75" in metrics
    assert 0 <= metrics["map50_voc07"] <= 1 and set(metrics["per_class_voc07"]) == set(dataset.class_names)
    assert np.mean(list(metrics["ap_by_iou"].values())) == pytest.approx(metrics["map"], abs=1e-9)
    printed = capsys.readouterr().out
    assert "VOC07 11-point mAP@0.5" in printed and f".95 {metrics['ap_by_iou']['0.95']:.3f}" in printed
    images = str(dataset.samples[0].image_path.parent)
    assert main(["predict", images, "--weights", weights, "--out", str(tmp_path / "pred"), "--heatmap"]) == 0
    drawn = sorted(p.name for p in (tmp_path / "pred").glob("*.jpg"))
    assert len(drawn) == 2 * len(dataset.samples)
    records = json.loads((tmp_path / "pred" / "predictions.json").read_text())
    assert all(set(r) >= {"image_id", "category_id", "bbox", "score", "file_name"} for r in records)
    assert main(["predict", str(tmp_path / "nothing*.png"), "--weights", weights]) == 2
    assert "no images match" in capsys.readouterr().err


def test_api_errors(tmp_path):
    with pytest.raises(CenterNetError, match="unknown model"):
        CenterNet("resnet9000")
    with pytest.raises(CenterNetError, match="has no classes yet"):
        CenterNet("resnet18").predict(np.zeros((10, 10, 3), np.uint8))
    model = CenterNet("resnet18", num_classes=1)
    with pytest.raises(CenterNetError, match="conf=1.5"):
        model.predict(np.zeros((10, 10, 3), np.uint8), conf=1.5)
    with pytest.raises(CenterNetError, match="does not exist"):
        model.predict(tmp_path / "missing.jpg")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(CenterNetError, match="cannot read image"):
        model.predict(broken)
    with pytest.raises(CenterNetError, match="input_size=100"):
        model.predict(np.zeros((10, 10, 3), np.uint8), input_size=100)


def test_a_run_folder_shows_its_labels_and_first_training_batches(trained_run):
    out = trained_run["out"]
    assert sorted(p.name for p in out.glob("train_batch*.jpg")) == ["train_batch0.jpg", "train_batch1.jpg",
                                                                    "train_batch2.jpg"]
    import cv2

    picture = cv2.imread(str(out / "train_batch0.jpg"))
    assert picture is not None and picture.shape[1] == 4 * 64  # four 64 px images across
    labels = cv2.imread(str(out / "labels.jpg"))
    assert labels is not None and labels.shape[:2] == (336, 1040)  # 13 x 4.2 inches at 80 dpi
