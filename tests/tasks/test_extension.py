"""A new task defined outside the package: "centre points", one heatmap and a point per object.

It uses only the public contract (``centernet.tasks.Task``, ``register_task``) and shared operations
(``centernet.ops``, ``centernet.losses``), then trains, validates, predicts and exports through the public API
with no change to the package. Its metric is its own (point precision and recall at a distance), so nothing in
the engine may assume box metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import numpy as np
import pytest
import torch
from conftest import TINY_SHAPES

from centernet import CenterNet
from centernet.cli import build_parser
from centernet.losses import focal_loss_from_logits
from centernet.ops.gaussian import draw_gaussian
from centernet.ops.peaks import find_peaks
from centernet.tasks import Task, list_tasks, register_task, task_class
from centernet.tasks.base import _ALIASES, _REGISTRY

RADIUS = 2  # output pixels: each centre's Gaussian on the heatmap


def encode_points(
    boxes: np.ndarray, labels: np.ndarray, output_size: tuple[int, int], num_classes: int, **_
) -> dict[str, np.ndarray]:
    """A Gaussian of radius 2 at each box centre (output pixels) in its class's channel: heatmap (C, h, w)."""
    height, width = output_size
    heatmap = np.zeros((num_classes, height, width), np.float32)
    for box, label in zip(boxes, labels):
        if box[2] > box[0] and box[3] > box[1]:
            centre = (int((box[0] + box[2]) / 2), int((box[1] + box[3]) / 2))
            draw_gaussian(heatmap[int(label)], centre, RADIUS)
    return {"heatmap": heatmap}


@dataclass
class CentrePointsTask(Task):
    name: ClassVar[str] = "centre_points"
    headline: ClassVar[tuple[str, ...]] = ("point_precision", "point_recall")
    best_metric: ClassVar[str] = "point_recall"

    num_classes: int

    @classmethod
    def from_config(cls, num_classes: int, config: dict) -> "CentrePointsTask":
        return cls(num_classes)

    def heads(self) -> dict[str, int]:
        return {"heatmap": self.num_classes}

    def encoder(self):
        return partial(encode_points, num_classes=self.num_classes)

    def stack_loss(self, outputs, targets):
        heatmap = focal_loss_from_logits(outputs["heatmap"], targets["heatmap"])
        return {"loss": heatmap, "heatmap": heatmap}

    def decode_maps(self, outputs, k, fixed_k=False):
        scores, classes, _, xs, ys = find_peaks(outputs["heatmap"], k, fixed_k)  # (B, K) each
        points = torch.stack([xs, ys, xs, ys], -1)  # a point is a box of no size: export rows stay [x, y, x, y, ...]
        return {"boxes": points, "scores": scores, "labels": classes}

    def evaluate(self, split, predictions, image_ids):
        """A point scoring over 0.3 is right when it lies within 8 px of a free centre of its class."""
        by_id = {s.image_id: s for s in split.samples}
        right = shown = total = 0
        for prediction, image_id in zip(predictions, image_ids):
            sample = by_id[image_id]
            centres = (sample.boxes[:, :2] + sample.boxes[:, 2:]) / 2
            free = np.ones(len(centres), bool)
            total += len(centres)
            for point, score, label in zip(prediction["boxes"][:, :2].numpy(), prediction["scores"], prediction["labels"]):
                if score < 0.3:
                    continue
                shown += 1
                distance = np.linalg.norm(centres - point, axis=1)
                distance[~free | (sample.labels != int(label))] = np.inf
                if len(distance) and distance.min() <= 8:
                    free[distance.argmin()] = False
                    right += 1
        return {"point_precision": right / max(shown, 1), "point_recall": right / max(total, 1)}

    def metrics_line(self, metrics):
        return f"points: precision {metrics['point_precision']:.3f}  recall {metrics['point_recall']:.3f}"


@pytest.fixture
def centre_points():
    register_task(CentrePointsTask)
    yield CentrePointsTask
    for key in [k for k, v in _ALIASES.items() if v == CentrePointsTask.name]:
        del _ALIASES[key]
    del _REGISTRY[CentrePointsTask.name]


def test_a_task_defined_outside_the_package_trains_validates_predicts_and_exports(centre_points, tmp_path):
    assert "centre_points" in list_tasks() and task_class("centre_points") is CentrePointsTask
    assert build_parser().parse_args(["train", "--task", "centre_points"]).task == "centre_points"

    torch.manual_seed(0)
    model = CenterNet("resnet18", task="centre_points")
    metrics = model.train(data="shapes", out=tmp_path / "run", shapes_config=TINY_SHAPES, val_split="train",
                          epochs=30, batch_size=8, input_size=64, optimizer="adamw", lr=5e-3, warmup_iters=5,
                          val_interval=30, workers=0, progress=False, augment_mode="none", color_aug=False,
                          ema=False, precision="fp32")
    assert {"point_precision", "point_recall"} <= set(metrics) and "map" not in metrics  # its metrics, not boxes'
    assert metrics["point_recall"] > 0.3, metrics  # it learnt to find the shapes' centres

    reloaded = CenterNet(tmp_path / "run" / "last.pt")
    assert isinstance(reloaded.task, CentrePointsTask) and reloaded.task.num_classes == len(reloaded.class_names) == 4
    val = reloaded.val("shapes", split="train", shapes_config=TINY_SHAPES, progress=False, precision="fp32")
    assert set(val) == {"point_precision", "point_recall", "speed_ms"} and val["point_recall"] > 0.3
    assert "points: precision" in reloaded.format_metrics(val)

    images = [np.asarray(s) for s in _train_images(3)]
    results = reloaded.predict(images, conf=0.3, precision="fp32")
    assert sum(len(r) for r in results) > 0
    assert all(np.allclose(r.boxes[:, :2], r.boxes[:, 2:]) for r in results)  # points back in original pixels
    assert results[0].plot().shape == images[0].shape

    onnx = reloaded.export("onnx", out=tmp_path / "points.onnx")
    exported = CenterNet(onnx).predict(images, conf=0.3)
    for torch_result, onnx_result in zip(results, exported):  # the same points, scores clear of the threshold
        sure = torch_result.scores > 0.35
        assert len(onnx_result) >= sure.sum()
        np.testing.assert_allclose(onnx_result.boxes[: sure.sum()], torch_result.boxes[sure], atol=0.05)
        np.testing.assert_array_equal(onnx_result.labels[: sure.sum()], torch_result.labels[sure])


def _train_images(count: int) -> list[np.ndarray]:
    from centernet.data import load_split
    from centernet.data.dataset import read_image_rgb

    return [read_image_rgb(s.image_path) for s in load_split("shapes", "train", TINY_SHAPES).samples[:count]]
