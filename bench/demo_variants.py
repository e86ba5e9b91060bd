"""Equal-time runs of a demo's recipe with one thing changed, for choosing that recipe.

    python bench/demo_variants.py [--task pose] NAME MINUTES [setting=value ...] [variant=value ...]

Trains the demo's model (the task's ``demo()`` recipe; ``model=NAME`` for another) on the demo's built-in set
(for detection the shapes folder built by ``make demo``, or any folder given with ``--data``) with the demo's
settings and task options (the same recipe) for MINUTES, then validates once; the run goes to
``runs/variants/NAME`` and its metrics are printed as one JSON line. ``setting=value`` overrides a
``TrainConfig`` field (``input_size=128``, ``batch_size=8``, ``lr=3e-3``, ``cache_images=true``,
``start_input_size=96,128 resize_at=0.25,0.5``, the demo's own; ``start_input_size=128 resize_at=0.5`` gives the
two-size schedule of some BENCHMARKS.md rows). The
variants are changes that are not settings of the package, patched in for the run only:

- ``size_weight=W``, ``giou_weight=W``, ...: a loss weight (``DetectionLossWeights``; the paper's size 0.1);
- ``head_bn=1``: BatchNorm after each head's 3x3 conv;
- ``shortcut_depth=123``: 1, 2 and 3 conv + BN + ReLU layers in the shortcuts at strides 16, 8 and 4
  (TTFNet's layout) instead of one each;
- ``head_conv=C``: the heads' hidden channels (a model setting);
- ``regress_at=gaussian``, ``box_loss=l1``: detection task options (``DETECTION_OPTIONS``; the demo's
  ``box_loss`` is ``giou``, so ``box_loss=l1`` gives the paper's L1 alone);
- ``joint_peak=nearest``, ``joint_offsets_at=gaussian``: pose task options (``POSE_OPTIONS``);
- ``model=resnet18``: the architecture.

The loss-weight, ``head_bn`` and ``shortcut_depth`` variants patch detection's classes and apply to ``--task
detect`` only.

Run them one at a time on an idle machine: the clock decides the step count.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

import torch.nn as nn

import centernet.models.centernet as model_module
import centernet.tasks.detection as detection
from centernet import CenterNet
from centernet.config import TrainConfig
from centernet.data import default_cache_dir
from centernet.data.shapes import build_shapes
from centernet.models.heads import Head
from centernet.models.necks import ShortcutUpsampleNeck
from centernet.tasks import list_tasks, task_class


class NormedHead(Head):
    """The paper's head with BatchNorm between the 3x3 conv (no bias) and the ReLU."""

    def __init__(self, in_channels: int, out_channels: int, head_conv: int, heatmap: bool) -> None:
        super().__init__(in_channels, out_channels, head_conv, heatmap)
        self.conv = nn.Conv2d(in_channels, head_conv, 3, padding=1, bias=False)
        if not heatmap:
            nn.init.normal_(self.conv.weight, std=0.001)
        self.norm = nn.BatchNorm2d(head_conv)

    def forward(self, x):
        return self.out(self.relu(self.norm(self.conv(x))))


def deep_shortcut_neck(depths: list[int]) -> type:
    """A ShortcutUpsampleNeck whose shortcut at the k-th stage has ``depths[k]`` conv + BN + ReLU layers."""

    class DeepShortcutNeck(ShortcutUpsampleNeck):
        def __init__(self, stage_channels, channels=(256, 128, 64)) -> None:
            super().__init__(stage_channels, channels)
            for k, (out, skip) in enumerate(zip(channels, reversed(stage_channels[:-1]))):
                layers: list[nn.Module] = []
                for j in range(depths[k]):
                    layers += [nn.Conv2d(skip if j == 0 else out, out, 3, padding=1, bias=False),
                               nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
                self.shortcuts[k] = nn.Sequential(*layers)

    return DeepShortcutNeck


def parse_setting(name: str, text: str):
    kinds = {f.name: f.type for f in fields(TrainConfig)}
    if name not in kinds:
        sys.exit(f"unknown setting {name!r}; expected a TrainConfig field or a variant (see --help)")
    kind = str(kinds[name])  # the annotation's text: 'int', 'float', 'float | None', 'bool', 'str', 'int | tuple...'
    if kind == "bool":
        return text.lower() in ("1", "true", "yes")
    convert = {"int": int, "str": str}.get(kind.split(" | ")[0], float)
    if "tuple" in kind:  # start_input_size=96,128 resize_at=0.25,0.5
        return tuple(convert(part) for part in text.split(","))
    return convert(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name")
    parser.add_argument("minutes", type=float)
    parser.add_argument("changes", nargs="*", help="setting=value or variant=value")
    parser.add_argument("--data", default=None, help="detect: a shapes folder (default: the demo's, built if missing)")
    parser.add_argument("--task", choices=list_tasks(), default="detect", help="whose demo (default detect)")
    args = parser.parse_args()
    recipe = task_class(args.task).demo()
    data, data_config = recipe.data, recipe.data_config()
    settings = {**recipe.train, "time_limit": args.minutes}
    head_conv, model_name = None, recipe.model
    task_options = dict(recipe.task_options)
    weights = {f.name: f.default for f in fields(detection.DetectionLossWeights)}
    for change in args.changes:
        key, _, value = change.partition("=")
        if key.endswith("_weight") and key.removesuffix("_weight") in weights:
            weights[key.removesuffix("_weight")] = float(value)
            detection.DetectionLossWeights.__init__.__defaults__ = tuple(weights.values())
        elif key == "head_bn" and value == "1":
            model_module.Head = NormedHead
        elif key == "shortcut_depth":
            model_module.ShortcutUpsampleNeck = deep_shortcut_neck([int(c) for c in value])
        elif key in task_class(args.task).OPTIONS:
            task_options[key] = value
        elif key == "head_conv":
            head_conv = int(value)
        elif key == "model":
            model_name = value
        else:
            settings[key] = parse_setting(key, value)
    if recipe.data == "shapes":  # a folder, so that --data can name another
        data, data_config = args.data or build_shapes(default_cache_dir() / "datasets", data_config), None
    model = CenterNet(model_name, task=args.task, head_conv=head_conv, task_options=task_options)
    metrics = model.train(data=data, out=f"runs/variants/{args.name}", shapes_config=data_config, progress=False,
                          **settings)
    print(json.dumps({"name": args.name, "changes": args.changes, **{k: v for k, v in metrics.items() if k != "per_class"}}))


if __name__ == "__main__":
    main()
