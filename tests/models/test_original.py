"""Original CenterNet checkpoints: name mapping, strictness, and the same detections for the same image."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest
import torch

from centernet import CenterNet, CenterNetError, create_model
from centernet.tasks.detection.decode import decode_detections
from centernet.engine.checkpoint import save_checkpoint
from centernet.models.original import (
    COCO_CATEGORY_IDS,
    COCO_CLASSES,
    COCO_MEAN_BGR,
    COCO_STD_BGR,
    FIRST_CONV,
    convert_original_checkpoint,
    detect_architecture,
    to_original_state_dict,
)

# Architecture, head_conv, a name the original's checkpoint of it has.
ARCHS = [
    ("resnet18_dcn", 64, "deconv_layers.0.conv_offset_mask.weight"),
    ("dla34", 256, "dla_up.ida_0.proj_1.conv.conv_offset_mask.weight"),
    ("hourglass104", 256, "kps.0.up1.0.conv1.weight"),
]


def _randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights everywhere, BN statistics included, so a wrong mapping cannot go unnoticed."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif t.is_floating_point():
                t.copy_(0.1 * torch.randn(t.shape, generator=g))
    return model.eval()


def _save_original(model, arch: str, path, num_classes: int) -> dict:
    """Save the model as the original's train.py does: {'epoch', 'state_dict', 'optimizer'}, DataParallel names."""
    state = to_original_state_dict(model, arch)
    torch.save({"epoch": 140, "state_dict": {f"module.{k}": v for k, v in state.items()}, "optimizer": {}}, path)
    return state


def _original_preprocess(image_rgb: np.ndarray, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """The original's keep_res test input, written out: BGR, canvas (side | (m - 1)) + 1, image centred."""
    h, w = image_rgb.shape[:2]
    ch, cw = (h | (multiple - 1)) + 1, (w | (multiple - 1)) + 1
    dx, dy = cw // 2 - w // 2, ch // 2 - h // 2
    canvas = np.zeros((ch, cw, 3), np.float32)
    canvas[dy : dy + h, dx : dx + w] = image_rgb[..., ::-1] / 255.0
    canvas = (canvas - np.array(COCO_MEAN_BGR, np.float32)) / np.array(COCO_STD_BGR, np.float32)
    return torch.from_numpy(canvas).permute(2, 0, 1)[None], (dx, dy)


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (100, 120, 3), dtype=np.uint8)  # not a multiple of 32 in either side
    image[20:60, 30:90] = (250, 40, 40)
    return image


@pytest.mark.parametrize("arch,head_conv,marker", ARCHS)
def test_original_checkpoint_gives_the_same_detections(tmp_path, picture, arch, head_conv, marker):
    heads = {"heatmap": 80, "size": 2, "offset": 2}
    model = _randomise(create_model(arch, heads=heads, head_conv=head_conv))
    original = _save_original(model, arch, tmp_path / "ctdet.pth", 80)
    assert marker in original
    assert "hm.0.weight" in original or "hm.0.0.conv.weight" in original
    assert detect_architecture(original) == arch

    converted = convert_original_checkpoint(tmp_path / "ctdet.pth")
    assert converted["model_name"] == arch and converted["head_conv"] == head_conv
    assert converted["class_names"] == list(COCO_CLASSES) and converted["category_ids"] == list(COCO_CATEGORY_IDS)
    save_checkpoint(converted, tmp_path / "converted.pt")
    ours = CenterNet.load(tmp_path / "converted.pt")
    assert not torch.equal(original[FIRST_CONV[arch].removeprefix("backbone.").replace("base_layer", "base.base_layer")
                                    if arch.startswith("dla") else FIRST_CONV[arch].removeprefix("backbone.")],
                           model.state_dict()[FIRST_CONV[arch]])  # the file holds the BGR-order first conv
    for name, tensor in model.state_dict().items():  # converting flips it back: our model, exactly
        assert torch.equal(ours.model.state_dict()[name], tensor), name

    # The original network (first conv in BGR order) on the original's pre-processing...
    network = copy.deepcopy(model)
    first = dict(network.named_parameters())[FIRST_CONV[arch]]
    with torch.no_grad():
        first.copy_(first.flip(1))
    multiple = getattr(model, "size_divisor", 32)
    batch, (dx, dy) = _original_preprocess(picture, multiple)
    with torch.no_grad():
        reference = decode_detections(network.eval()(batch), k=100)
    ref_boxes = reference["boxes"][0] * 4 - torch.tensor([dx, dy, dx, dy], dtype=torch.float32)
    # ... and ours, from an RGB image at its own resolution, give the same detections.
    from centernet.data.dataset import Normalize
    from centernet.engine.inference import preprocess

    settings = ours._settings(None, "fp32", keep_resolution=True)
    our_batch, _ = preprocess([picture], settings, Normalize(ours.mean, ours.std))
    assert our_batch.shape == batch.shape  # the same canvas, e.g. 100 x 120 -> 128 x 128 (or 128 x 256)
    with torch.no_grad():
        our_outputs, their_outputs = ours.model.eval()(our_batch), network(batch)
    for name in their_outputs:
        torch.testing.assert_close(our_outputs[name], their_outputs[name], rtol=1e-4, atol=1e-4)

    got = ours.predict(picture, conf=0.0, keep_resolution=True, precision="fp32")[0]
    assert len(got) == 100
    clipped = ref_boxes.numpy().copy()
    # Random weights predict negative sizes too; boxes come back with x1 <= x2, y1 <= y2.
    clipped = np.concatenate([np.minimum(clipped[:, :2], clipped[:, 2:]), np.maximum(clipped[:, :2], clipped[:, 2:])], 1)
    clipped[:, 0::2] = clipped[:, 0::2].clip(0, picture.shape[1])
    clipped[:, 1::2] = clipped[:, 1::2].clip(0, picture.shape[0])
    # Random weights give tied scores: compare the detections above the last score, as sorted rows.
    ref_scores = reference["scores"][0].numpy()
    above = ref_scores > ref_scores[-1] + 1e-4

    ours_kept = got.scores > ref_scores[-1] + 1e-4
    assert above.sum() > 10 and ours_kept.sum() == above.sum()
    unmatched = list(np.flatnonzero(above))
    for score, label, box in zip(got.scores[ours_kept], got.labels[ours_kept], got.boxes[ours_kept]):
        match = [
            j for j in unmatched
            if abs(ref_scores[j] - score) < 1e-4 and reference["labels"][0][j] == label
            and np.abs(clipped[j] - box).max() < 0.011
        ]
        near = [(ref_scores[j], int(reference["labels"][0][j]), clipped[j].round(2).tolist()) for j in unmatched
                if abs(ref_scores[j] - score) < 1e-3]
        assert match, f"no original detection matches ours: {score}, {label}, {box}; near: {near}"
        unmatched.remove(match[0])


def test_mismatches_are_listed(tmp_path):
    heads = {"heatmap": 20, "size": 2, "offset": 2}
    model = create_model("resnet18_dcn", heads=heads)
    state = to_original_state_dict(model, "resnet18_dcn")
    broken = dict(state)
    del broken["layer2.0.conv1.weight"]
    broken["deconv_layers.0.extra"] = torch.zeros(1)
    broken["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    torch.save({"epoch": 1, "state_dict": broken}, tmp_path / "broken.pth")
    with pytest.raises(CenterNetError) as info:
        convert_original_checkpoint(tmp_path / "broken.pth")
    message = str(info.value)
    assert "missing (1): backbone.layer2.0.conv1.weight" in message
    assert "unexpected (1): deconv_layers.0.extra" in message
    assert "layer1.0.conv1.weight (64, 64, 1, 1) vs backbone.layer1.0.conv1.weight (64, 64, 3, 3)" in message


def test_class_names_dataset_and_bad_files(tmp_path):
    model = create_model("resnet18_dcn", heads={"heatmap": 20, "size": 2, "offset": 2})
    torch.save({"state_dict": to_original_state_dict(model, "resnet18_dcn")}, tmp_path / "voc.pth")
    converted = convert_original_checkpoint(tmp_path / "voc.pth")
    assert converted["class_names"][0] == "aeroplane" and converted["category_ids"] == list(range(1, 21))
    assert converted["mean"] == [0.406, 0.456, 0.485]  # the original's Pascal numbers, reversed to RGB order
    with pytest.raises(CenterNetError, match="19 class names"):
        convert_original_checkpoint(tmp_path / "voc.pth", class_names=[f"c{i}" for i in range(19)])

    model = create_model("resnet18_dcn", heads={"heatmap": 3, "size": 2, "offset": 2})
    torch.save({"state_dict": to_original_state_dict(model, "resnet18_dcn")}, tmp_path / "three.pth")
    with pytest.raises(CenterNetError, match="3 classes: give their names"):
        convert_original_checkpoint(tmp_path / "three.pth")
    assert convert_original_checkpoint(tmp_path / "three.pth", ["a", "b", "c"])["class_names"] == ["a", "b", "c"]

    torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2)}}, tmp_path / "other.pth")
    with pytest.raises(CenterNetError, match="cannot tell the architecture"):
        convert_original_checkpoint(tmp_path / "other.pth")
    with pytest.raises(CenterNetError, match="does not exist"):
        convert_original_checkpoint(tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CenterNetError, match="cannot read checkpoint .*junk.pth.*not a torch checkpoint"):
        convert_original_checkpoint(tmp_path / "junk.pth")
    torch.save({"state_dict": {}, "hook": print}, tmp_path / "code.pth")  # unpickling would import a callable
    with pytest.raises(CenterNetError, match="refusing to load .*code.pth.: it holds print"):
        convert_original_checkpoint(tmp_path / "code.pth")


def test_convert_command(tmp_path):
    model = create_model("resnet18_dcn", heads={"heatmap": 20, "size": 2, "offset": 2})
    torch.save({"epoch": 70, "state_dict": to_original_state_dict(model, "resnet18_dcn")}, tmp_path / "in.pth")
    run = subprocess.run(
        [sys.executable, "-m", "centernet", "convert", str(tmp_path / "in.pth"), "--out", str(tmp_path / "out.pt")],
        capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "resnet18_dcn" in run.stdout and (tmp_path / "out.pt").is_file()
    assert CenterNet.load(tmp_path / "out.pt").class_names[-1] == "tvmonitor"
    bad = subprocess.run(
        [sys.executable, "-m", "centernet", "convert", str(tmp_path / "missing.pth")], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
