"""Pose and monocular 3D through the API and the command line: train a few steps, reload, validate, predict,
export to ONNX and run it in onnxruntime; and each task's evaluation with the ground truth as predictions.

The runs are a few steps on tiny built-in sets: they check that every part works and fits together, not
accuracy (the demos' figures are in BENCHMARKS.md).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from centernet import CenterNet
from centernet.cli import main
from centernet.data import load_split
from centernet.data.kitti import read_label_file
from centernet.data.shapes3d import Shapes3DConfig
from centernet.data.shapes_pose import ShapesPoseConfig
from centernet.errors import CenterNetError
from centernet.export import export_module
from centernet.tasks import task_from_split

from conftest import SHARED_DATA

POSE = ShapesPoseConfig(image_size=128, num_train=16, num_val=6, num_joints=7, seed=1)
SCENE = Shapes3DConfig(width=256, height=96, num_train=8, num_val=4, seed=1)
QUICK = dict(epochs=2, batch_size=4, workers=0, progress=False, val_interval=2, ema=False)


@pytest.fixture(scope="module")
def pose_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pose")
    torch.manual_seed(0)
    model = CenterNet("resnet18", task="pose")
    metrics = model.train(data="shapes_pose", out=out, shapes_config=POSE, input_size=128, **QUICK)
    break_ties(model.model)
    return model, out, metrics


@pytest.fixture(scope="module")
def mono3d_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mono3d")
    torch.manual_seed(0)
    model = CenterNet("resnet18", task="3d")
    metrics = model.train(data="shapes3d", out=out, shapes_config=SCENE, input_size=256, input_height=96, **QUICK)
    break_ties(model.model)
    return model, out, metrics


def assert_same_rows(actual: np.ndarray, expected: np.ndarray, atol: float = 1e-3) -> None:
    """Every exported row (B, K, D) of ``actual`` is a row of ``expected`` for the same image, order aside, except
    rows whose score ties (within 1e-5) the last kept one, where two correct top-Ks may pick different positions."""
    for got, want in zip(actual, expected):
        last = min(got[:, 4].min(), want[:, 4].min())
        for row in got[got[:, 4] > last + 1e-5]:
            assert np.abs(want - row).max(axis=1).min() < atol, row[:6]


def break_ties(net: torch.nn.Module) -> None:
    """Random weights in the heatmap heads' last layer, so that the peaks of a model trained a few steps have
    distinct scores (with near-constant maps, equal scores make two correct top-Ks list different positions, and
    probabilities at the prior 0.1 sit on the joint snap's threshold, where 1e-7 decides)."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, module in net.named_modules():
            if name.endswith("heatmap.out"):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * 0.2)
                module.bias.fill_(-1.0)  # probabilities away from the joint snap's 0.1 threshold


# ------------------------------------------------------------------------------------------------ pose


def test_pose_run_writes_keypoint_metrics_and_a_checkpoint_that_knows_its_joints(pose_run):
    model, out, metrics = pose_run
    saved = json.loads((out / "metrics.json").read_text())
    for key in ("map", "map50", "kp_map", "kp_map50", "kp_map75"):
        assert key in metrics and key in saved
    reloaded = CenterNet(out / "last.pt")
    assert reloaded.task.name == "pose" and reloaded.task.num_joints == 7
    assert reloaded.task.flip_perm == model.task.flip_perm != list(range(7))  # left/right joints swap
    assert reloaded.model.head_channels["joint_heatmap"] == 7


def test_pose_predict_gives_joints_per_person_and_draws_them(pose_run):
    model, _, _ = pose_run
    val = load_split("shapes_pose", "val", POSE, needs=("keypoints",))
    results = model.predict([s.image_path for s in val.samples[:2]], conf=0.0, max_detections=4)
    for r in results:
        assert r.keypoints.shape == (4, 7, 3) and r.boxes.shape == (4, 4)
        assert np.isfinite(r.keypoints).all() and ((r.keypoints[..., 2] >= 0) & (r.keypoints[..., 2] <= 1)).all()
        assert r.plot().shape == r.image.shape
        assert len(r.to_dict()["keypoints"]) == 4
    flipped = model.predict(val.samples[0].image_path, conf=0.0, max_detections=4, flip=True)[0]
    assert flipped.keypoints.shape == (4, 7, 3)


@pytest.mark.parametrize("joint_peak", ["score_distance", "nearest"])
def test_pose_onnx_rows_carry_joints_and_match_pytorch(pose_run, tmp_path, joint_peak):
    model, _, _ = pose_run
    default_snap = model.task.snap
    model.task.snap = replace(default_snap, peak=joint_peak)
    try:
        path = model.export("onnx", out=tmp_path / "pose.onnx", max_detections=10)
    finally:
        model.task.snap = default_snap
    import onnxruntime

    images = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(1)) * 255
    (rows,) = onnxruntime.InferenceSession(str(path)).run(None, {"images": images.numpy()})
    assert rows.shape == (2, 10, 6 + 3 * 7)
    by_rule = {peak: export_module(model.model, model.mean, model.std, 10, replace(model.task, snap=replace(
        default_snap, peak=peak)))(images).detach().numpy() for peak in ("score_distance", "nearest")}
    assert_same_rows(rows, by_rule[joint_peak])
    if joint_peak == "nearest":
        return
    # Through the backend: the same persons and joints as the PyTorch path (fp32 both).
    image = load_split("shapes_pose", "val", POSE, needs=("keypoints",)).samples[0].image_path
    by_onnx = CenterNet(path).predict(image, conf=0.0, max_detections=10)[0]
    by_torch = model.predict(image, conf=0.0, max_detections=10, precision="fp32")[0]
    np.testing.assert_allclose(by_onnx.keypoints, by_torch.keypoints, atol=1e-2)


def test_pose_cli_predict_writes_keypoints(pose_run, tmp_path):
    _, out, _ = pose_run
    image = load_split("shapes_pose", "val", POSE, needs=("keypoints",)).samples[0].image_path
    assert main(["predict", str(image), "--weights", str(out / "best.pt"), "--out", str(tmp_path), "--conf", "0"]) == 0
    records = json.loads((tmp_path / "predictions.json").read_text())
    assert records and all(len(r["keypoints"]) == 3 * 7 for r in records)


def check_validation_plots(task, split, predictions: list[dict], metrics: dict, out: Path, own: str) -> None:
    """The ground truth given back: a perfect PR curve, a diagonal confusion matrix holding every object, and every
    picture of the validation written, the task's ``own`` one too."""
    from centernet.eval.confusion import confusion_matrix
    from centernet.plots import image_boxes, write_validation_plots
    from centernet.data.samples import instances_per_class

    curves = metrics["pr_curves"]
    assert np.nanmin(curves.precision) == 1.0
    ids = [s.image_id for s in split.samples]
    matrix = confusion_matrix(*image_boxes(split, predictions, ids), split.num_classes)
    counts = instances_per_class([s.labels for s in split.samples], split.num_classes)
    np.testing.assert_array_equal(matrix, np.diag([*counts, 0]))
    written = write_validation_plots(task, split, predictions, ids, curves, out)
    names = {"val_batch0_labels.jpg", "val_batch0_pred.jpg", "PR_curve.png", "F1_curve.png", "confusion_matrix.png", own}
    assert {path.name for path in written} == names
    for name in names:
        image = cv2.imread(str(out / name))
        assert image is not None and min(image.shape[:2]) >= 200, name


def test_pose_ground_truth_as_predictions_scores_one_through_the_task(tmp_path):
    val = load_split("shapes_pose", "val", POSE, needs=("keypoints",))
    task = task_from_split("pose", val)
    predictions = [
        {"boxes": torch.from_numpy(s.boxes), "scores": torch.ones(len(s.boxes)), "labels": torch.from_numpy(s.labels),
         "keypoints": torch.from_numpy(s.keypoints)} for s in val.samples
    ]
    metrics = task.evaluate(val, predictions, [s.image_id for s in val.samples])
    assert metrics["kp_map"] == pytest.approx(1.0)
    check_validation_plots(task, val, predictions, metrics, tmp_path, "joint_ap.png")


def test_pose_on_data_without_keypoints_is_one_line():
    with pytest.raises(CenterNetError, match="no keypoints"):
        CenterNet("resnet18", task="pose").train(data="shapes", epochs=1, progress=False)


# -------------------------------------------------------------------------------------------------- 3D


def test_3d_run_writes_kitti_metrics_and_validates_at_image_resolution(mono3d_run):
    model, out, metrics = mono3d_run
    saved = json.loads((out / "metrics.json").read_text())
    for key in ("map", "ap2d_moderate", "aos_moderate", "bev_ap_moderate", "ap3d_moderate"):
        assert key in metrics and key in saved
    reloaded = CenterNet(out / "last.pt")
    assert reloaded.task.name == "3d" and reloaded.keep_resolution
    assert set(reloaded.model.head_channels) == {"heatmap", "depth", "dimensions", "orientation", "size", "offset"}


def test_3d_predict_reads_the_camera_beside_kitti_images(mono3d_run, tmp_path):
    model, _, _ = mono3d_run
    val = load_split("shapes3d", "val", SCENE, needs=("objects3d", "calib"))
    sample = val.samples[0]
    r = model.predict(sample.image_path, conf=0.0, max_detections=5)[0]
    np.testing.assert_array_equal(r.calib, sample.calib)
    assert r.objects3d["location"].shape == (5, 3) and r.objects3d["dimensions"].shape == (5, 3)
    assert r.bev().shape == (400, 400, 3) and r.plot().shape == r.image.shape
    # The same camera given by hand gives the same objects; an array without one is refused.
    by_hand = model.predict(r.image, conf=0.0, max_detections=5, calib=sample.calib)[0]
    np.testing.assert_allclose(by_hand.objects3d["location"], r.objects3d["location"], atol=1e-4)
    with pytest.raises(CenterNetError, match="needs the camera"):
        model.predict(r.image)
    with pytest.raises(CenterNetError, match="flip"):
        model.predict(sample.image_path, flip=True)


def test_3d_cli_predict_writes_kitti_rows(mono3d_run, tmp_path):
    _, out, _ = mono3d_run
    image = load_split("shapes3d", "val", SCENE, needs=("objects3d", "calib")).samples[0].image_path
    assert main(["predict", str(image), "--weights", str(out / "last.pt"), "--out", str(tmp_path), "--conf", "0"]) == 0
    rows = read_label_file(tmp_path / "labels" / f"{image.stem}.txt")
    assert rows and all(row.score is not None and row.type in ("Car", "Pedestrian", "Cyclist") for row in rows)
    assert (tmp_path / f"{image.stem}_bev.jpg").is_file()


def test_3d_onnx_rows_carry_depth_dimensions_orientation(mono3d_run, tmp_path):
    model, _, _ = mono3d_run
    path = model.export("onnx", out=tmp_path / "m3d.onnx", max_detections=10)
    import onnxruntime

    images = torch.rand(2, 3, 96, 256, generator=torch.Generator().manual_seed(2)) * 255
    (rows,) = onnxruntime.InferenceSession(str(path)).run(None, {"images": images.numpy()})
    assert rows.shape == (2, 10, 13)
    expected = export_module(model.model, model.mean, model.std, 10, model.task)(images).detach().numpy()
    assert_same_rows(rows, expected)
    # onnxruntime's objects are lifted to 3D with the image's camera, as PyTorch's.
    sample = load_split("shapes3d", "val", SCENE, needs=("objects3d", "calib")).samples[0]
    reloaded = CenterNet(path)  # scales each image as training did, as the checkpoint does (a 256x96 input)
    assert reloaded.keep_resolution and reloaded.input_height == model.input_height == 96
    by_onnx, by_torch = (m._settings(None, "fp32", max_detections=10) for m in (reloaded, model))
    assert (by_onnx.keep_resolution, by_onnx.input_height, by_onnx.input_size) == (True, 96, 256)
    assert (by_torch.keep_resolution, by_torch.input_height, by_torch.input_size) == (True, 96, 256)
    r = reloaded.predict(sample.image_path, conf=0.0, max_detections=10)[0]
    z = r.objects3d["location"][:, 2]  # the unprojection puts the centre at the predicted depth
    np.testing.assert_allclose(z, r.objects3d["depth"], rtol=1e-4, atol=1e-4)
    assert np.isfinite(r.objects3d["location"]).all() and len(r.to_kitti()) == 10


def test_3d_laplace_depth_multibin_orientation_and_corners_export_the_same_rows(tmp_path):
    """The options' decode (scores times the depth confidence, re-sorted; the 12-bin alpha; the corners) inside the
    ONNX graph gives PyTorch's rows, a checkpoint keeps the options, and onnxruntime's headings are fitted to its
    corners as PyTorch's are."""
    from centernet.tasks import build_task

    torch.manual_seed(0)
    model = CenterNet("resnet18")
    task = build_task("3d", 3, {"depth": "laplace", "orientation": "multibin", "keypoints": "corners"})
    model._build(3, ["Car", "Pedestrian", "Cyclist"], [1, 2, 3], task)
    model.input_size = 256
    assert model.model.head_channels["depth"] == 2 and model.model.head_channels["orientation"] == 24
    assert model.model.head_channels["corners"] == 16
    path = model.export("onnx", out=tmp_path / "m3d.onnx", max_detections=10)
    import onnxruntime

    images = torch.rand(2, 3, 96, 256, generator=torch.Generator().manual_seed(2)) * 255
    (rows,) = onnxruntime.InferenceSession(str(path)).run(None, {"images": images.numpy()})
    expected = export_module(model.model, model.mean, model.std, 10, model.task)(images).detach().numpy()
    assert_same_rows(rows, expected)
    assert rows.shape == (2, 10, 6 + 7 + 16)
    assert np.all(np.diff(rows[..., 4], axis=1) <= 1e-6)  # still sorted by score
    reloaded = CenterNet(path)
    assert reloaded.task.depth == "laplace" and reloaded.task.orientation == "multibin"
    assert reloaded.task.keypoints == "corners"
    sample = load_split("shapes3d", "val", SCENE, needs=("objects3d", "calib")).samples[0]
    settings = dict(conf=0.0, max_detections=10, keep_resolution=True, precision="fp32")
    by_onnx = reloaded.predict(sample.image_path, **settings)[0].objects3d
    by_torch = model.predict(sample.image_path, **settings)[0].objects3d
    np.testing.assert_allclose(by_onnx["location"], by_torch["location"], atol=1e-3)
    # The headings come from the corners (a random orientation head would not give these), found by the same search.
    fitted = np.abs(np.angle(np.exp(1j * (by_onnx["rotation_y"] - by_torch["rotation_y"]))))
    assert np.median(fitted) < 1e-3


@pytest.mark.skipif(not (SHARED_DATA / "kitti_mini").is_dir(), reason="../shared/data/kitti_mini not present")
def test_3d_ground_truth_as_predictions_scores_one_through_the_task(tmp_path):
    """The task's evaluate on kitti_mini, each frame's labelled objects given back as detections."""
    split = load_split(SHARED_DATA / "kitti_mini", "train", needs=("objects3d", "calib"))
    task = task_from_split("3d", split)
    predictions = []
    for s in split.samples:
        o = torch.from_numpy(s.objects3d).double()
        predictions.append({
            "boxes": torch.from_numpy(s.boxes), "scores": torch.ones(len(s.boxes)), "labels": torch.from_numpy(s.labels),
            "dimensions": o[:, 0:3], "location": o[:, 3:6], "rotation_y": o[:, 6], "alpha": o[:, 7], "depth": o[:, 5],
        })
    metrics = task.evaluate(split, predictions, [s.image_id for s in split.samples])
    for key in ("ap2d_moderate", "aos_moderate", "bev_ap_moderate", "ap3d_moderate", "car_bev_ap50", "car_ap3d50"):
        assert metrics[key] == pytest.approx(1.0), key
    for key in ("depth_error", "lateral_error", "dimension_error", "alpha_error", "axis_error"):
        assert metrics[key] == pytest.approx(0.0, abs=1e-4), key  # float32 round trips
    assert metrics["matched"] == 41 + 11 + 4  # every Car, Pedestrian and Cyclist row of the label files
    assert metrics["kitti_loose"]["Car"]["moderate"]["bev"] == pytest.approx(1.0)
    assert "Car at IoU 0.5: BEV 1.000" in task.metrics_line(metrics)
    check_validation_plots(task, split, predictions, metrics, tmp_path, "val_bev.jpg")
    predictions[0]["location"] = predictions[0]["location"] + torch.tensor([0.0, 0.0, 3.0])  # one frame 3 m too far
    worse = task.evaluate(split, predictions, [s.image_id for s in split.samples])
    assert worse["ap3d_moderate"] < 1.0 and worse["ap2d_moderate"] == pytest.approx(1.0)


@pytest.mark.skipif(not (SHARED_DATA / "coco_mini").is_dir(), reason="../shared/data/coco_mini not present")
def test_coco_mini_keypoints_ground_truth_scores_one_with_the_json_areas():
    """Real COCO persons: the OKS scale is the json's (mask) area, not the box's, and images whose persons have
    no labelled joint (given no predictions) must not break the evaluation."""
    split = load_split(SHARED_DATA / "coco_mini", "val2017", needs=("keypoints",))
    raw = json.loads((SHARED_DATA / "coco_mini" / "annotations" / "person_keypoints_val2017.json").read_text())
    expected = sorted(round(a["area"], 2) for a in raw["annotations"] if not a["iscrowd"])
    assert sorted(round(a["area"], 2) for a in split.to_coco()["annotations"] if not a["iscrowd"]) == expected
    task = task_from_split("pose", split)
    predictions = []
    for s in split.samples:
        labelled = torch.from_numpy((s.keypoints[:, :, 2] > 0).any(axis=1))  # persons the encoder trains on
        predictions.append({"boxes": torch.from_numpy(s.boxes)[labelled], "scores": torch.ones(int(labelled.sum())),
                            "labels": torch.from_numpy(s.labels)[labelled],
                            "keypoints": torch.from_numpy(s.keypoints)[labelled]})
    assert any(len(p["scores"]) == 0 for p in predictions)
    assert task.evaluate(split, predictions, [s.image_id for s in split.samples])["kp_map"] == pytest.approx(1.0)


def test_3d_centre_option_is_kept_and_bad_options_are_one_line():
    split = load_split("shapes3d", "val", SCENE, needs=("objects3d", "calib"))
    task = task_from_split("3d", split, {"centre": "projected"})
    assert task.centre == "projected" and task.config() == {"centre": "projected"}
    from centernet.tasks import build_task

    assert build_task("3d", 3, task.config()).centre == "projected"
    with pytest.raises(CenterNetError, match="centre='middle' is out of range"):
        task_from_split("3d", split, {"centre": "middle"})
    with pytest.raises(CenterNetError, match="unknown 3d task option"):
        task_from_split("3d", split, {"center": "box"})


@pytest.mark.slow
def test_pose_training_on_a_few_images_raises_oks_ap(tmp_path):
    """Eight images learnt for 70 steps (~45 s): the OKS AP on them rises from 0 to about 0.57 (the detection
    test's counterpart)."""
    config = ShapesPoseConfig(image_size=96, num_train=8, num_val=2, num_joints=7, back_fraction=0.0, seed=3)
    torch.manual_seed(0)
    model = CenterNet("resnet18_shortcut", task="pose")
    train = load_split("shapes_pose", "train", config, needs=("keypoints",))
    model._build(train.num_classes, train.class_names, train.category_ids, task_from_split("pose", train))
    model.input_size = 96
    before = model.val("shapes_pose", split="train", shapes_config=config, progress=False, precision="fp32")
    after = model.train(
        data="shapes_pose", out=tmp_path, shapes_config=config, val_split="train", epochs=70, batch_size=8,
        input_size=96, optimizer="adamw", lr=4e-3, schedule="cosine", warmup_iters=10, val_interval=70,
        workers=0, progress=False, augment_mode="none", color_aug=False, flip=0.0, ema=False, precision="fp32",
    )
    assert before["kp_map"] < 0.05
    assert after["kp_map"] > 0.3 and after["map50"] > 0.8, after


def test_3d_heading_from_object_crops_trains_reloads_and_exports(tmp_path):
    """orientation="crop": the object head trains with the model, is saved in its checkpoint, and gives the same
    headings from the checkpoint, in PyTorch and in onnxruntime (the crops taken inside the graph)."""
    torch.manual_seed(0)
    model = CenterNet("resnet18", task="3d", task_options={"orientation": "crop"})
    model.train(data="shapes3d", out=tmp_path / "run", shapes_config=SCENE, input_size=256, input_height=96, **QUICK)
    assert "orientation" not in model.model.head_channels
    state = torch.load(tmp_path / "run" / "last.pt", map_location="cpu", weights_only=False)
    assert any(name.startswith("object_head.") for name in state["model"])
    sample = load_split("shapes3d", "val", SCENE, needs=("objects3d", "calib")).samples[0]
    settings = dict(conf=0.0, max_detections=10, keep_resolution=True, precision="fp32")
    trained = model.predict(sample.image_path, **settings)[0].objects3d
    reloaded = CenterNet(tmp_path / "run" / "last.pt")
    assert reloaded.task.orientation == "crop"
    again = reloaded.predict(sample.image_path, **settings)[0].objects3d
    np.testing.assert_allclose(again["alpha"], trained["alpha"], atol=1e-5)
    assert np.ptp(trained["alpha"]) > 0  # read off each crop, not a constant
    break_ties(reloaded.model)
    by_torch = reloaded.predict(sample.image_path, **settings)[0].objects3d
    path = reloaded.export("onnx", out=tmp_path / "crop.onnx", max_detections=10)
    onnx_result = CenterNet(path).predict(sample.image_path, **settings)[0]
    by_onnx, clear = onnx_result.objects3d, onnx_result.scores > onnx_result.scores.min() + 1e-5  # near ties aside
    assert clear.sum() >= 2
    for location, alpha in zip(by_onnx["location"][clear], by_onnx["alpha"][clear]):
        same = np.abs(by_torch["location"] - location).max(axis=1) < 1e-3
        assert same.any(), location
        assert np.abs(np.angle(np.exp(1j * (by_torch["alpha"][same] - alpha)))).min() < 1e-3
