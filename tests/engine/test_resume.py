"""Exact resume after SIGKILL, early stopping, the non-finite-loss limit, args.yaml."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from centernet import CenterNet, CenterNetError
from centernet.data.shapes import build_shapes
from centernet.engine.checkpoint import load_checkpoint

from conftest import TINY_SHAPES

# A tiny deterministic fp32 run: 16 images, batch 2 -> 8 steps per epoch (about 1 s), validation every 2 epochs.
SETTINGS = [
    "--epochs", "4", "--batch-size", "2", "--input-size", "128", "--workers", "0", "--deterministic",
    "--precision", "fp32", "--val-interval", "2", "--optimizer", "adamw", "--lr", "3e-3", "--schedule", "cosine",
    "--warmup-iters", "3", "--ema-tau", "5",
]


def _train(data, out, *extra) -> subprocess.Popen:
    command = [sys.executable, "-m", "centernet", "train", "--data", str(data), "--out", str(out), *extra]
    out.mkdir(parents=True, exist_ok=True)
    log = open(out.parent / f"{out.name}.log", "w")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True)


def _rows(out) -> int:
    try:
        with open(out / "results.csv") as f:
            return len(list(csv.DictReader(f)))
    except (FileNotFoundError, csv.Error):
        return 0


def test_resume_after_sigkill_gives_the_uninterrupted_weights(tmp_path):
    data = build_shapes(tmp_path / "cache", TINY_SHAPES, progress=False)
    full = _train(data, tmp_path / "full", *SETTINGS)
    assert full.wait(timeout=600) == 0, (tmp_path / "full.log").read_text()

    # The same run again, killed half-way through epoch 3: last.pt is written once per epoch (atomically), so
    # the second new version of it is epoch 2's.
    killed = _train(data, tmp_path / "killed", *SETTINGS)
    last, seen = tmp_path / "killed" / "last.pt", []
    while len(seen) < 2:
        assert killed.poll() is None, (tmp_path / "killed.log").read_text()
        if last.exists() and (not seen or last.stat().st_mtime_ns != seen[-1]):
            seen.append(last.stat().st_mtime_ns)
        time.sleep(0.005)
    time.sleep(0.3)  # into epoch 3's eight steps (about 0.1 s each here)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    interrupted_at = load_checkpoint(last)["train_state"]["epoch"]
    assert interrupted_at == 2  # killed before epoch 3 was saved

    resumed = subprocess.run(
        [sys.executable, "-m", "centernet", "train", "--resume", str(tmp_path / "killed")],
        capture_output=True, text=True, timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming after epoch {interrupted_at}" in resumed.stdout + resumed.stderr
    want = load_checkpoint(tmp_path / "full" / "last.pt")
    got = load_checkpoint(tmp_path / "killed" / "last.pt")
    assert got["train_state"]["epoch"] == want["train_state"]["epoch"] == 4
    assert got["train_state"]["step"] == want["train_state"]["step"] == 32
    for part in ("model",):  # the raw weights, and below the EMA weights that are saved for use
        for name, tensor in want["train_state"][part].items():
            assert torch.equal(got["train_state"][part][name], tensor), name
    for name, tensor in want["model"].items():
        assert torch.equal(got["model"][name], tensor), name
    assert _rows(tmp_path / "killed") == 4

    # A larger --epochs continues the finished run.
    more = subprocess.run(
        [sys.executable, "-m", "centernet", "train", "--resume", str(tmp_path / "killed"), "--epochs", "5"],
        capture_output=True, text=True, timeout=600,
    )
    assert more.returncode == 0, more.stderr
    assert load_checkpoint(tmp_path / "killed" / "last.pt")["train_state"]["epoch"] == 5


def test_args_yaml_early_stopping_and_resume_errors(tmp_path):
    model = CenterNet("resnet18")
    metrics = model.train(
        data="shapes", shapes_config=TINY_SHAPES, out=tmp_path / "run", epochs=30, batch_size=8, input_size=64,
        workers=0, precision="fp32", val_interval=1, patience=2, lr=1e-9, progress=False, val_split="val",
    )
    args = yaml.safe_load((tmp_path / "run" / "args.yaml").read_text())
    assert args["model"] == "resnet18" and args["data"] == "shapes" and args["train"]["patience"] == 2
    assert args["shapes_config"]["num_train"] == TINY_SHAPES.num_train
    # lr 1e-9 cannot improve anything: the first validation is the best, two more without progress stop it.
    epochs_run = _rows(tmp_path / "run")
    assert epochs_run == 3 and metrics["epoch"] == 3
    with pytest.raises(CenterNetError, match="only epochs and workers may change"):
        CenterNet(tmp_path / "run" / "last.pt").train(resume=True, lr=1.0)
    with pytest.raises(CenterNetError, match="holds no training state"):
        CenterNet(tmp_path / "run" / "best.pt").train(resume=True)
    with pytest.raises(CenterNetError, match="epochs=2 is out of range"):
        CenterNet(tmp_path / "run" / "last.pt").train(resume=True, epochs=2)
    # A last.pt of an earlier version kept every parameter in one optimizer group.
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    groups = state["train_state"]["optimizer"]["param_groups"]
    groups[:] = [{**groups[0], "params": [i for g in groups for i in g["params"]]}]
    torch.save(state, tmp_path / "one_group.pt")
    with pytest.raises(CenterNetError, match="1 parameter group.*expected 2.*fine-tune from it"):
        CenterNet(tmp_path / "one_group.pt").train(resume=True, epochs=31)


def test_training_stops_after_consecutive_non_finite_losses(tmp_path):
    model = CenterNet("resnet18")
    with pytest.raises(CenterNetError, match="3 steps in a row had a non-finite loss"):
        model.train(
            data="shapes", shapes_config=TINY_SHAPES, out=tmp_path / "run", epochs=50, batch_size=4, input_size=64,
            workers=0, precision="fp32", lr=1e12, optimizer="adam", max_bad_steps=3, progress=False, val_split=None,
        )


def test_tensorboard_scalars_when_installed(tmp_path, monkeypatch):
    """With tensorboard installed every numeric results.csv column goes to it too (a recording stand-in here:
    the package is an optional extra)."""
    from centernet.engine import trainer as trainer_module

    written = []

    class Recorder:
        def add_scalar(self, tag, value, step):
            written.append((tag, step))

        def flush(self):
            pass

    monkeypatch.setattr(trainer_module, "open_tensorboard", lambda out_dir: Recorder())
    CenterNet("resnet18").train(
        data="shapes", shapes_config=TINY_SHAPES, out=tmp_path, epochs=2, batch_size=8, input_size=64, workers=0,
        precision="fp32", val_interval=2, progress=False,
    )
    tags = {tag for tag, _ in written}
    assert {"loss", "heatmap_loss", "size_loss", "offset_loss", "lr", "map", "map50"} <= tags
    assert ("loss", 1) in written and ("map", 2) in written and ("map", 1) not in written
    with open(tmp_path / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == 2
