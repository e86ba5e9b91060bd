"""The command line: help for every command, and a one-line error (no traceback) for bad input."""

import subprocess
import sys
from dataclasses import replace

import pytest

from centernet.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "centernet", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", ["demo", "train", "val", "predict", "export"])
def test_help(command):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0


def test_start_sizes_share_the_first_half_by_default():
    from centernet.cli import _train_settings, build_parser
    from centernet.config import TrainConfig

    args = build_parser().parse_args(["train", "--start-input-size", "64", "96", "128"])
    cfg = TrainConfig.from_dict(_train_settings(args)).validate()
    sides, fractions = zip(*cfg.resize_stages())
    assert sides == (64, 96, 128) and fractions == pytest.approx((1 / 6, 2 / 6, 3 / 6))
    args = build_parser().parse_args(["train", "--start-input-size", "64", "96", "--resize-at", "0.3", "0.7"])
    assert TrainConfig.from_dict(_train_settings(args)).resize_stages() == [(64, 0.3), (96, 0.7)]


def test_list_models(capsys):
    assert main(["train", "--list-models"]) == 0
    assert "resnet18" in capsys.readouterr().out.split()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["train", "--model", "resnet7"], "unknown model 'resnet7'"),
        (["train", "--data", "/no/such/dataset"], "dataset path '/no/such/dataset' does not exist"),
        (["train", "--epochs", "0"], "epochs=0 is out of range"),
        (["train", "--input-size", "100"], "input_size=100 is out of range"),
        (["train", "--start-input-size", "100"], "start_input_size=100 is out of range"),
        (["train", "--start-input-size", "64", "--input-height", "64"], "with a rectangular input"),
        (["train", "--start-input-size", "64", "--resize-at", "1.5"], "resize_at=1.5 is out of range"),
        (["train", "--start-input-size", "64", "96", "--resize-at", "0.5"], "one fraction per start_input_size (2)"),
        (["val", "--weights", "/no/such.pt"], "weights file '/no/such.pt' does not exist"),
    ],
)
def test_bad_input_is_one_line(args, expected, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and "\n" not in err and "Traceback" not in err


def test_bad_input_from_a_real_process(tmp_path):
    not_weights = tmp_path / "model.pt"
    not_weights.write_bytes(b"this is not a checkpoint")
    p = run_cli("predict", str(tmp_path), "--weights", str(not_weights))
    assert p.returncode == 2
    assert "cannot read weights" in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_error_from_a_loader_worker_is_one_line():
    """A CenterNetError re-raised by a DataLoader worker carries a traceback; the CLI keeps its last line."""
    from torch.utils.data import DataLoader, Dataset

    from centernet.cli import one_line
    from centernet.errors import CenterNetError

    class Broken(Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, i):
            raise CenterNetError("cannot read image '/x/y.jpg' (missing, not an image, or corrupt)")

    with pytest.raises(CenterNetError) as e:
        next(iter(DataLoader(Broken(), num_workers=1)))
    assert one_line(e.value) == "cannot read image '/x/y.jpg' (missing, not an image, or corrupt)"


def test_dataset_with_missing_images(tmp_path, capsys):
    import json

    (tmp_path / "annotations").mkdir()
    (tmp_path / "images" / "val").mkdir(parents=True)
    coco = {"images": [{"id": 1, "file_name": "gone.jpg", "width": 10, "height": 10}], "annotations": [],
            "categories": [{"id": 1, "name": "a"}]}
    (tmp_path / "annotations" / "instances_val.json").write_text(json.dumps(coco))
    (tmp_path / "annotations" / "instances_train.json").write_text(json.dumps(coco))
    assert main(["train", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "1 of 1 listed images are missing" in err and "gone.jpg" in err


def test_check_command_on_bccd(capsys):
    from conftest import SHARED_DATA

    bccd = SHARED_DATA / "bccd"
    if not bccd.is_dir():
        pytest.skip(f"real data not present at {bccd} (it is on CI and developer machines)")
    assert main(["check", str(bccd)]) == 0
    out = capsys.readouterr().out
    assert "all splits (train, val, test): 364 images, 4888 boxes (in files); 2 dataset problems (2 zero_area)" in out
    assert "BloodImage_00338.xml" in out and "BloodImage_00343.xml" in out


def test_check_command_errors(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_demo_trains_the_shortcut_model_end_to_end(tmp_path, monkeypatch, capsys):
    """`centernet demo` on a tiny shapes set: the default detection model, metrics.json and drawn predictions."""
    import json

    import torch

    from centernet.data.shapes import ShapesConfig
    from centernet.tasks import DetectionTask

    recipe = DetectionTask.demo()
    tiny = replace(recipe, data_config=lambda: replace(recipe.data_config(), image_size=64, num_train=16, num_val=4),
                   train={**recipe.train, "input_size": 64, "batch_size": 4, "epochs": 1})
    monkeypatch.setattr(DetectionTask, "demo", classmethod(lambda cls: tiny))
    assert isinstance(recipe.data_config(), ShapesConfig) and recipe.model == "resnet18_shortcut"
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--minutes", "5", "--workers", "0", "--input-size", "96",
                 "--start-input-size", "32", "64", "--resize-at", "0.3", "0.6", "--batch-size", "2"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["map"] <= 1.0 and "map50" in metrics and "total_time_s" in metrics
    assert len(list((out / "predictions").glob("*_heatmap.jpg"))) == 4
    checkpoint = torch.load(out / "last.pt", weights_only=True)
    assert checkpoint["model_name"] == "resnet18_shortcut"
    assert checkpoint["input_size"] == 96  # --input-size overrides the demo's setting (64 in this test)
    assert tuple(checkpoint["train_config"]["start_input_size"]) == (32, 64)  # 32, then 64, then 96 px
    assert tuple(checkpoint["train_config"]["resize_at"]) == (0.3, 0.6)
    assert checkpoint["task_config"] == {"box_loss": "giou"}  # the demo's own task option
    # --batch-size 2 against the demo's 4 in this test: the lr times sqrt(1/2), the warm-up's images kept
    train_config = checkpoint["train_config"]
    assert train_config["batch_size"] == 2
    assert train_config["cache_images"] is True  # the demo decodes its images once
    assert train_config["lr"] == pytest.approx(recipe.train["lr"] * 0.5**0.5)
    assert train_config["warmup_iters"] == 2 * recipe.train["warmup_iters"]
    printed = capsys.readouterr().out
    assert "final: mAP" in printed
    assert "cached 16 decoded images" in printed  # the trainer filled the cache, not only recorded the setting
    assert main(["demo", "--out", str(tmp_path / "bad"), "--input-size", "100"]) == 2
    err = capsys.readouterr().err.strip()
    assert "input_size" in err and "100" in err and "multiple of 32" in err and len(err.splitlines()) == 1
    assert main(["demo", "--out", str(tmp_path / "bad"), "--batch-size", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "centernet demo: error: batch_size=0 is out of range; expected >= 1"


def run_tiny_demo(monkeypatch, task_class, recipe, out):
    """`centernet demo --task NAME` with ``recipe`` (a task's demo recipe made tiny) in place of the task's own."""
    monkeypatch.setattr(task_class, "demo", classmethod(lambda cls: recipe))
    assert main(["demo", "--task", task_class.name, "--out", str(out), "--minutes", "5", "--workers", "0"]) == 0
    return out


def test_pose_demo_trains_its_recipe_and_reports_keypoint_ap(tmp_path, monkeypatch):
    """`centernet demo --task pose` on a tiny set: the demo's model, task options and schedule reach the checkpoint,
    and metrics.json carries OKS AP beside the box metrics."""
    import json

    import torch

    from centernet.tasks import PoseTask

    recipe = PoseTask.demo()
    tiny = {**recipe.train, "input_size": 64, "batch_size": 4, "epochs": 2, "start_input_size": (32,),
            "resize_at": (0.5,)}
    data_config = replace(recipe.data_config(), image_size=64, num_train=8, num_val=2, num_joints=5)
    assert data_config.back_fraction == 0.0  # the demo's figures all face the viewer
    out = run_tiny_demo(monkeypatch, PoseTask, replace(recipe, data_config=lambda: data_config, train=tiny),
                        tmp_path / "demo_pose")
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"kp_map", "kp_map50", "kp_map75", "map", "map50", "map75"} <= set(metrics)
    checkpoint = torch.load(out / "last.pt", weights_only=True)
    assert checkpoint["model_name"] == recipe.model == "resnet18_shortcut"
    expected_options = {"joint_peak": "score_distance", **recipe.task_options}
    assert {k: checkpoint["task_config"][k] for k in expected_options} == expected_options
    train_config = checkpoint["train_config"]
    for name in ("ema", "cache_images", "batch_size", "lr"):
        assert train_config[name] == tiny[name], name
    assert train_config["start_input_size"] == 32 and train_config["resize_at"] == 0.5  # one stage: plain numbers
    assert len(list((out / "predictions").glob("*_heatmap.jpg"))) == 2


def test_demo_batch_settings_scale_the_lr_and_keep_the_warm_up_images():
    from centernet.cli import demo_batch_settings
    from centernet.tasks import DetectionTask

    DEMO_DETECT_TRAIN = DetectionTask.demo().train

    assert DEMO_DETECT_TRAIN["batch_size"] == 16 and DEMO_DETECT_TRAIN["lr"] == 6e-3
    assert demo_batch_settings(DEMO_DETECT_TRAIN, None) == {"batch_size": 16, "lr": 6e-3, "warmup_iters": 100}
    # batch 8: 6e-3 x sqrt(8 / 16) = 4.243e-3, 100 x 16 / 8 = 200 warm-up steps
    halved = demo_batch_settings(DEMO_DETECT_TRAIN, 8)
    assert halved["batch_size"] == 8 and halved["warmup_iters"] == 200
    assert halved["lr"] == pytest.approx(4.2426e-3, rel=1e-4)
    assert demo_batch_settings(DEMO_DETECT_TRAIN, 32)["warmup_iters"] == 50
    # given values win over the rules (the measured longer run: batch 8, lr 4e-3, 200 warm-up steps)
    assert demo_batch_settings(DEMO_DETECT_TRAIN, 8, 4e-3, 150) == {"batch_size": 8, "lr": 4e-3, "warmup_iters": 150}


def test_train_flags_come_from_the_settings_dataclass():
    """Every training flag is a TrainConfig field: not given, the field keeps its default; given, it is passed on."""
    from dataclasses import fields

    from centernet.cli import TRAIN_FLAGS, _train_settings, build_parser
    from centernet.config import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    assert {name for name, *_ in TRAIN_FLAGS} <= names
    parser = build_parser()
    assert _train_settings(parser.parse_args(["train"])) == {}  # TrainConfig's defaults (or the task's) apply
    given = parser.parse_args(["train", "--epochs", "3", "--no-ema", "--cache", "--optimizer", "sgd", "--fliplr", "0",
                               "--start-input-size", "96", "128", "--resize-at", "0.2", "0.4", "--lr", "1e-3"])
    settings = _train_settings(given)
    assert settings == {"epochs": 3, "ema": False, "cache_images": True, "optimizer": "sgd", "flip": 0.0,
                        "start_input_size": [96, 128], "resize_at": [0.2, 0.4], "lr": 1e-3}
    config = TrainConfig.from_dict(settings).validate()
    assert config.start_input_size == (96, 128) and config.ema is False
    for name, flag, _ in TRAIN_FLAGS:  # each flag's choices are the field's
        action = next(a for a in parser._subparsers._group_actions[0].choices["train"]._actions if a.dest == name)
        assert action.choices == TrainConfig.CHOICES.get(name), flag
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--optimizer", "lion"])



def test_3d_demo_trains_its_recipe_with_the_crop_heading_and_reports_car_bev(tmp_path, monkeypatch):
    """`centernet demo --task 3d` on a tiny set: the recipe's model and options (the heading read off each object's
    crop) reach the checkpoint with the object head's weights, and metrics.json carries the 3D figures."""
    import json

    import torch

    from centernet.tasks import Mono3DTask

    recipe = Mono3DTask.demo()
    assert recipe.task_options["orientation"] == "crop"
    tiny = {**recipe.train, "input_size": 256, "input_height": 96, "batch_size": 4, "epochs": 2}
    data_config = replace(recipe.data_config(), width=256, height=96, num_train=8, num_val=2)
    out = run_tiny_demo(monkeypatch, Mono3DTask, replace(recipe, data_config=lambda: data_config, train=tiny),
                        tmp_path / "demo_3d")
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"car_bev_ap50", "car_ap3d50", "bev_ap_moderate", "depth_error", "axis_error", "map50"} <= set(metrics)
    checkpoint = torch.load(out / "last.pt", weights_only=True)
    assert checkpoint["model_name"] == recipe.model == "resnet18_shortcut"
    assert {k: checkpoint["task_config"][k] for k in recipe.task_options} == recipe.task_options
    assert any(name.startswith("object_head.") for name in checkpoint["model"])


def test_train_config_replays_a_run_and_flags_override_it(tmp_path, capsys):
    """`centernet train --config RUN/args.yaml` trains with the run's model, data, task and settings again; a flag
    given too wins; an unknown key is a one-line error naming it."""
    import yaml
    from dataclasses import asdict

    from conftest import TINY_SHAPES

    settings = {"model": "resnet18", "data": "shapes", "shapes_config": asdict(TINY_SHAPES),
                "train": {"epochs": 1, "batch_size": 4, "input_size": 64, "workers": 0, "lr": 2e-4, "ema": False,
                          "lr_steps": [0.5, 0.8], "device": "cpu", "plots": False}}
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(settings))
    assert main(["train", "--config", str(tmp_path / "mine.yaml"), "--out", str(tmp_path / "first")]) == 0
    first = yaml.safe_load((tmp_path / "first" / "args.yaml").read_text())
    assert not list((tmp_path / "first").glob("train_batch*.jpg"))  # plots: false
    assert first["shapes_config"] == asdict(TINY_SHAPES) and first["task"] == "detect"
    for name, value in settings["train"].items():
        assert first["train"][name] == value, name
    assert main(["train", "--config", str(tmp_path / "first" / "args.yaml"), "--out", str(tmp_path / "again"),
                 "--lr", "1e-4"]) == 0
    again = yaml.safe_load((tmp_path / "again" / "args.yaml").read_text())
    assert again["train"] == {**first["train"], "lr": 1e-4} and {**again, "train": 0} == {**first, "train": 0}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({**settings, "train": {"learning_rate": 0.1}}))
    capsys.readouterr()
    assert main(["train", "--config", str(tmp_path / "bad.yaml")]) == 2
    assert capsys.readouterr().err.strip() == (f"centernet train: error: {tmp_path / 'bad.yaml'}: unknown training "
                                               f"setting 'learning_rate' under train")
