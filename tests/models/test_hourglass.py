"""Hourglass-104: output contract, gradients, size, and the original checkpoint's names.

The full model has ~191M parameters, so it is built once (module fixture) for the tests that
run it; structural tests build it on the meta device (no memory, no init). The backward pass
(every parameter of both stacks gets a finite gradient) is checked once, by the smoke test
``test_every_model_forward_backward[hourglass104]`` in test_models.py, not repeated here.
"""

import math

import pytest
import torch

from centernet import CenterNetError, create_model
from centernet.models.hourglass import HourglassCenterNet

PRIOR_BIAS = -math.log(9.0)  # -2.197: heatmap prior 0.1
HEADS = {"heatmap": 80, "size": 2, "offset": 2}
# Our prefix for each of the original's head names (see the module docstring).
HEAD_RENAME = {"hm.": "heads.heatmap.", "wh.": "heads.size.", "reg.": "heads.offset."}
BODY = ("pre.", "kps.", "cnvs.", "inters.", "inters_.", "cnvs_.")

# A representative subset of the original ctdet Hourglass-104 checkpoint (80 classes): names
# and shapes as xingyizhou/CenterNet's large_hourglass.py creates them.
ORIGINAL_NAMES_AND_SHAPES = {
    "pre.0.conv.weight": (128, 3, 7, 7),
    "pre.0.bn.running_var": (128,),
    "pre.1.conv1.weight": (256, 128, 3, 3),
    "pre.1.bn2.bias": (256,),
    "pre.1.skip.0.weight": (256, 128, 1, 1),
    "pre.1.skip.1.running_mean": (256,),
    "kps.0.up1.0.conv1.weight": (256, 256, 3, 3),
    "kps.0.up1.1.bn2.weight": (256,),
    "kps.0.low1.0.skip.0.weight": (256, 256, 1, 1),  # stride 2: a skip conv even at equal width
    "kps.0.low2.low1.0.conv1.weight": (384, 256, 3, 3),
    "kps.0.low2.low2.up1.1.conv2.weight": (384, 384, 3, 3),
    "kps.0.low2.low2.low2.low2.low1.0.conv1.weight": (512, 384, 3, 3),
    "kps.0.low2.low2.low2.low2.low2.3.conv2.weight": (512, 512, 3, 3),  # innermost: 4 blocks
    "kps.0.low2.low3.1.skip.0.weight": (256, 384, 1, 1),
    "kps.0.low3.1.conv2.weight": (256, 256, 3, 3),
    "kps.1.up1.0.bn1.running_mean": (256,),
    "kps.1.low2.low2.low2.low2.low3.1.conv1.weight": (384, 512, 3, 3),
    "kps.1.low2.low2.low2.low2.low3.1.skip.1.weight": (384,),
    "kps.1.low2.low2.low2.low3.0.conv1.weight": (384, 384, 3, 3),
    "cnvs.0.conv.weight": (256, 256, 3, 3),
    "cnvs.1.bn.running_var": (256,),
    "inters.0.conv1.weight": (256, 256, 3, 3),
    "inters.0.bn2.running_mean": (256,),
    "inters_.0.0.weight": (256, 256, 1, 1),
    "inters_.0.1.bias": (256,),
    "cnvs_.0.0.weight": (256, 256, 1, 1),
    "cnvs_.0.1.running_var": (256,),
    "hm.0.0.conv.weight": (256, 256, 3, 3),
    "hm.0.0.conv.bias": (256,),
    "hm.0.1.weight": (80, 256, 1, 1),
    "hm.1.0.conv.weight": (256, 256, 3, 3),
    "hm.1.1.bias": (80,),
    "wh.0.0.conv.bias": (256,),
    "wh.0.1.weight": (2, 256, 1, 1),
    "wh.1.1.bias": (2,),
    "reg.0.1.weight": (2, 256, 1, 1),
    "reg.1.0.conv.weight": (256, 256, 3, 3),
    "reg.1.1.bias": (2,),
}


def ours(original_name: str) -> str:
    for prefix, renamed in HEAD_RENAME.items():
        if original_name.startswith(prefix):
            return renamed + original_name[len(prefix):]
    return original_name


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("hourglass104", num_classes=80)


@pytest.fixture(scope="module")
def meta_model():
    with torch.device("meta"):
        return create_model("hourglass104", num_classes=80)


def test_parameter_count_is_the_papers(meta_model):
    count = sum(p.numel() for p in meta_model.parameters())
    assert abs(count - 191e6) / 191e6 < 0.02, count


def test_original_checkpoint_names_map_with_equal_shapes(meta_model):
    state = meta_model.state_dict()
    for name, shape in ORIGINAL_NAMES_AND_SHAPES.items():
        assert ours(name) in state, f"{name} -> {ours(name)} missing"
        assert tuple(state[ours(name)].shape) == shape, name
    # Every name of ours has a counterpart: the body keeps the original's names, heads the rename.
    assert all(n.startswith(BODY + tuple(HEAD_RENAME.values())) for n in state)
    assert "inters.1.conv1.weight" not in state and "pre.0.conv.bias" not in state


def test_eval_returns_the_last_stacks_dict(model):
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 128, 128))
    assert isinstance(out, dict) and set(out) == set(HEADS)
    for name, channels in HEADS.items():
        assert out[name].shape == (1, channels, 32, 32)
        assert torch.isfinite(out[name]).all()
    assert (model.stride, model.size_divisor, model.head_channels) == (4, 128, HEADS)


def test_train_returns_one_dict_per_stack(model):
    # Batch 1 needs two innermost pixels for BatchNorm in training: 128 x 256 gives 1 x 2 there.
    model.train()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 128, 256))
    assert isinstance(outs, list) and len(outs) == 2
    for out in outs:
        assert {name: tuple(v.shape) for name, v in out.items()} == {
            name: (1, channels, 32, 64) for name, channels in HEADS.items()
        }
    assert not torch.equal(outs[0]["heatmap"], outs[1]["heatmap"])  # each stack has its own heads


def test_input_size_not_a_multiple_of_128_is_refused(model):
    with pytest.raises(ValueError, match="multiples of 128; got 128x96"):
        model(torch.zeros(1, 3, 128, 96))


def test_heatmap_heads_start_at_the_prior_on_every_stack(model):
    for stack in range(2):
        assert torch.allclose(model.heads["heatmap"][stack][1].bias, torch.full((80,), PRIOR_BIAS), atol=1e-6)
        assert not torch.allclose(model.heads["size"][stack][1].bias, torch.full((2,), PRIOR_BIAS))
    tiny = HourglassCenterNet({"joint_heatmap": 3, "size": 2}, head_conv=8, dims=(8, 8, 16), blocks=(1, 1, 1))
    assert torch.allclose(tiny.heads["joint_heatmap"][1][1].bias, torch.full((3,), PRIOR_BIAS), atol=1e-6)
    assert tiny.size_divisor == 16


def _tiny(num_classes: int) -> HourglassCenterNet:
    heads = {"heatmap": num_classes, "size": 2, "offset": 2}
    return HourglassCenterNet(heads, head_conv=8, dims=(8, 8, 16), blocks=(1, 1, 1), feature_channels=8)


def test_load_pretrained_takes_the_body_and_ignores_heads(tmp_path):
    torch.manual_seed(0)
    source = _tiny(num_classes=80)
    path = tmp_path / "original.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    target = _tiny(num_classes=3)
    target.load_pretrained(path)
    assert torch.equal(target.kps[1].low2.low2[0].conv2.weight, source.kps[1].low2.low2[0].conv2.weight)
    assert torch.equal(target.pre[0].conv.weight, source.pre[0].conv.weight)
    with pytest.raises(CenterNetError, match="not found"):
        target.load_pretrained(tmp_path / "nope.pth")
    state = source.state_dict()
    del state["cnvs_.0.0.weight"]
    torch.save(state, path)
    with pytest.raises(CenterNetError, match="missing"):
        target.load_pretrained(path)
