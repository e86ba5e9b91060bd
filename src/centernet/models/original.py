"""Load the original CenterNet's released checkpoints (its "model zoo") into this package's models.

The original saves ``{'epoch': int, 'state_dict': {...}, 'optimizer': {...}?}`` with its own
parameter names. This module maps them onto ours, strictly (every tensor used, every shape
equal, a clear error listing what is missing or unexpected), and carries the original's
input conventions over, so an image gives the same detections as the original's test script:

* Architecture, from the names: ``deconv_layers.*.conv_offset_mask`` -> ``resnet{18,101}_dcn``
  (depth from the residual blocks), ``base.level0`` -> ``dla34``, ``pre.0`` + ``kps`` ->
  ``hourglass104``.
* Names (ours <- original):

  =============================  ===================================================
  ``backbone.conv1`` ...          ``conv1``, ``bn1``, ``layer1-4`` (ResNet-DCN)
  ``neck.layers.N``               ``deconv_layers.N`` (same layer order)
  ``backbone.*``                  ``base.*`` (DLA-34)
  ``neck.dla_up.*``, ``neck.ida_up.*``  ``dla_up.*``, ``ida_up.*``
  ``pre``, ``kps``, ``cnvs``, ...  the same (Hourglass-104)
  ``heads.heatmap.conv/out``      ``hm.0`` / ``hm.2`` (``heads.heatmap.<stack>`` <- ``hm.<stack>``
                                  for Hourglass); ``size`` <- ``wh``, ``offset`` <- ``reg``
  =============================  ===================================================

* Colour order: the original feeds BGR images normalised with a BGR mean and std. Reversing
  the input channels of the first convolution (and the mean and std) gives a model that
  takes our RGB input and computes exactly the same function, so nothing else changes.
* Mean and std: COCO's for 80 classes, and for 20 classes the Pascal VOC values the
  original uses (ImageNet's RGB numbers, applied by the original to BGR images).
* Test-time size: the 512 x 512 letterbox (the original's default), or with
  ``keep_resolution`` the original's padding: each side to ``(side | 31) + 1`` (``| 127`` for
  Hourglass) with the image centred (``test_padding = "original"`` in the checkpoint).

Nothing is downloaded: ``centernet convert ORIGINAL.pth --out model.pt`` converts a file
the user has.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn as nn

from ..errors import CenterNetError
from .registry import create_model

__all__ = [
    "COCO_CLASSES",
    "COCO_CATEGORY_IDS",
    "VOC_CLASSES",
    "detect_architecture",
    "from_original_state_dict",
    "to_original_state_dict",
    "read_original_checkpoint",
    "convert_original_checkpoint",
]

# Head names: ours <- the original's. (Pose and 3D heads join when those tasks land.)
HEAD_NAMES = {"hm": "heatmap", "wh": "size", "reg": "offset"}

# The original's normalisation, in BGR order as it applies it (datasets/dataset/coco.py, pascal.py).
COCO_MEAN_BGR = (0.40789654, 0.44719302, 0.47026115)
COCO_STD_BGR = (0.28863828, 0.27408164, 0.27809835)
PASCAL_MEAN_BGR = (0.485, 0.456, 0.406)
PASCAL_STD_BGR = (0.229, 0.224, 0.225)

COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)
# COCO's category ids of those 80 classes (1..90 with gaps), in the same order.
COCO_CATEGORY_IDS = tuple(
    [i for i in range(1, 12)] + [i for i in range(13, 26)] + [27, 28] + [i for i in range(31, 45)]
    + [i for i in range(46, 66)] + [67, 70] + [i for i in range(72, 83)] + [i for i in range(84, 91)]
)
VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable", "dog",
    "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)

# Each architecture's first convolution: its input channels are reversed (BGR -> RGB).
FIRST_CONV = {
    "resnet18_dcn": "backbone.conv1.weight",
    "resnet101_dcn": "backbone.conv1.weight",
    "dla34": "backbone.base_layer.0.weight",
    "dla34_nodcn": "backbone.base_layer.0.weight",
    "hourglass104": "pre.0.conv.weight",
}
# Padding multiple of the original's keep_res test mode: (side | (multiple - 1)) + 1.
TEST_PAD_MULTIPLE = {"hourglass104": 128}


def read_original_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict of an original checkpoint (``{'state_dict': ...}`` or a bare one), ``module.`` stripped."""
    from ..engine.checkpoint import load_plain

    state = load_plain(path, "checkpoint")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CenterNetError(f"{str(path)!r} is not an original CenterNet checkpoint (no 'state_dict' of tensors)")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def detect_architecture(state: dict[str, torch.Tensor]) -> str:
    """Our registered model name for an original state dict, from its parameter names."""
    names = set(state)
    if any(n.startswith("base.level0.") for n in names):
        dcn = any("conv_offset_mask" in n for n in names)
        return "dla34" if dcn else "dla34_nodcn"
    if "pre.0.conv.weight" in names and any(n.startswith("kps.") for n in names):
        return "hourglass104"
    if any(n.startswith("deconv_layers.") and "conv_offset_mask" in n for n in names):
        blocks = [int(m.group(1)) for n in names if (m := re.match(r"layer3\.(\d+)\.", n))]
        bottleneck = "layer1.0.conv3.weight" in names
        depth = {(False, 2): 18, (True, 23): 101}.get((bottleneck, max(blocks, default=-1) + 1))
        if depth is not None:
            return f"resnet{depth}_dcn"
    raise CenterNetError(
        "cannot tell the architecture of this checkpoint: supported are the original's ResNet-18/101-DCN "
        "(deconv_layers.* with conv_offset_mask), DLA-34 (base.level0.*) and Hourglass-104 (pre.*, kps.*)"
    )


def _head_rule(arch: str) -> list[tuple[str, str]]:
    """(original prefix, our prefix) pairs for the heads."""
    rules = []
    for orig, ours in HEAD_NAMES.items():
        if arch == "hourglass104":
            rules.append((f"{orig}.", f"heads.{ours}."))
        else:
            rules += [(f"{orig}.0.", f"heads.{ours}.conv."), (f"{orig}.2.", f"heads.{ours}.out.")]
    return rules


def _prefix_rules(arch: str) -> list[tuple[str, str]]:
    """(original prefix, our prefix) pairs, heads included."""
    if arch.startswith("resnet"):
        body = [(p, f"backbone.{p}") for p in ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.")]
        body.append(("deconv_layers.", "neck.layers."))
    elif arch.startswith("dla34"):
        body = [("base.", "backbone."), ("dla_up.", "neck.dla_up."), ("ida_up.", "neck.ida_up.")]
    elif arch == "hourglass104":
        body = [(f"{p}.", f"{p}.") for p in ("pre", "kps", "cnvs", "inters", "inters_", "cnvs_")]
    else:
        raise CenterNetError(f"no mapping to the original's names for model {arch!r}")
    return body + _head_rule(arch)


def _rename(name: str, rules: list[tuple[str, str]]) -> str | None:
    for src, dst in rules:
        if name.startswith(src):
            return dst + name[len(src):]
    return None


def from_original_state_dict(
    state: dict[str, torch.Tensor], model: nn.Module, arch: str
) -> dict[str, torch.Tensor]:
    """Map an original state dict onto ``model``'s names; strict, with one error listing every mismatch.

    BatchNorm ``num_batches_tracked`` counters (absent from older checkpoints) are taken from
    the model when missing. The first convolution's input channels are reversed (BGR -> RGB).
    """
    rules = _prefix_rules(arch)
    ours = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    unexpected, mismatched, seen = [], [], set()
    for name, tensor in state.items():
        target = _rename(name, rules)
        if target is None or target not in ours:
            unexpected.append(name)
        elif tuple(tensor.shape) != tuple(ours[target].shape):
            seen.add(target)
            mismatched.append(f"{name} {tuple(tensor.shape)} vs {target} {tuple(ours[target].shape)}")
        else:
            mapped[target] = tensor
    missing = [n for n in ours if n not in mapped and n not in seen and not n.endswith("num_batches_tracked")]
    if missing or unexpected or mismatched:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
            if items:
                parts.append(f"{label} ({len(items)}): {', '.join(items[:6])}{' ...' if len(items) > 6 else ''}")
        raise CenterNetError(f"checkpoint does not fit {arch!r}: " + "; ".join(parts))
    for name in ours:
        if name.endswith("num_batches_tracked") and name not in mapped:
            mapped[name] = ours[name]
    first = FIRST_CONV[arch]
    mapped[first] = mapped[first].flip(1)  # (out, 3 BGR, k, k) -> (out, 3 RGB, k, k)
    return mapped


def to_original_state_dict(model: nn.Module, arch: str) -> dict[str, torch.Tensor]:
    """The inverse of :func:`from_original_state_dict`: ``model``'s weights under the original's names and
    conventions (BGR first convolution, no ``num_batches_tracked``), as the original would save them."""
    inverse = [(dst, src) for src, dst in _prefix_rules(arch)]
    out = {}
    for name, tensor in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        original = _rename(name, inverse)
        if original is None:
            raise CenterNetError(f"parameter {name!r} of {arch!r} has no name in the original")
        out[original] = tensor.flip(1) if name == FIRST_CONV[arch] else tensor.clone()
    return out


def _head_channels(state: dict[str, torch.Tensor], arch: str) -> tuple[dict[str, int], int]:
    """Heads {our name: channels} and head_conv from the original's head weights."""
    heads, head_conv = {}, None
    for orig, ours in HEAD_NAMES.items():
        if arch == "hourglass104":
            first, last = f"{orig}.0.0.conv.weight", f"{orig}.0.1.weight"
        else:
            first, last = f"{orig}.0.weight", f"{orig}.2.weight"
        if last in state:
            heads[ours] = int(state[last].shape[0])
            head_conv = int(state[first].shape[0]) if first in state else head_conv
    if "heatmap" not in heads or head_conv is None:
        raise CenterNetError("checkpoint has no detection heads (hm, wh, reg): only detection checkpoints convert so far")
    return heads, head_conv


def convert_original_checkpoint(
    path: str | Path, class_names: list[str] | None = None, dataset: str | None = None
) -> dict:
    """An original checkpoint as a checkpoint of this package (what ``CenterNet.load`` reads).

    ``dataset`` ('coco' or 'pascal') picks class names, category ids and mean/std; by default
    80 classes mean COCO and 20 mean Pascal VOC. Other class counts need ``class_names``.
    """
    state = read_original_checkpoint(path)
    arch = detect_architecture(state)
    heads, head_conv = _head_channels(state, arch)
    num_classes = heads["heatmap"]
    dataset = dataset or {80: "coco", 20: "pascal"}.get(num_classes)
    if dataset not in (None, "coco", "pascal"):
        raise CenterNetError(f"dataset {dataset!r} is not known; expected 'coco' or 'pascal'")
    if class_names is None:
        if dataset is None:
            raise CenterNetError(f"the checkpoint has {num_classes} classes: give their names (--names)")
        class_names = list(COCO_CLASSES if dataset == "coco" else VOC_CLASSES)
    if len(class_names) != num_classes:
        raise CenterNetError(f"{len(class_names)} class names given for a checkpoint with {num_classes} classes")
    category_ids = list(COCO_CATEGORY_IDS) if dataset == "coco" else list(range(1, num_classes + 1))
    mean, std = (PASCAL_MEAN_BGR, PASCAL_STD_BGR) if dataset == "pascal" else (COCO_MEAN_BGR, COCO_STD_BGR)
    model = create_model(arch, heads=heads, head_conv=head_conv)
    weights = from_original_state_dict(state, model, arch)
    model.load_state_dict(weights)  # strictness was checked above; this checks it again
    return {
        "model": model.state_dict(),
        "model_name": arch,
        "heads": heads,
        "head_conv": head_conv,
        "task": "detection",
        "class_names": list(class_names),
        "category_ids": category_ids,
        "input_size": 512,
        "mean": list(mean[::-1]),  # RGB order, matching the flipped first convolution
        "std": list(std[::-1]),
        "test_padding": "original",
        "test_pad_multiple": TEST_PAD_MULTIPLE.get(arch, 32),
        "source": str(path),
    }
