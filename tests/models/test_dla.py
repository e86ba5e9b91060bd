"""DLA-34 CenterNet: level and output shapes, gradients, size, the original's parameter names, pretrained loading."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from centernet import CenterNetError, create_model
from centernet.models.backbones.dla import dla34 as dla34_backbone
from centernet.models.dla import depthwise_upsample

# The original DLASeg's prefixes -> ours (the heads are renamed elsewhere).
PREFIX_MAP = (("base.", "backbone."), ("dla_up.", "neck.dla_up."), ("ida_up.", "neck.ida_up."))


# ---------------------------------------------------------------------------------------------
# The original's parameter names and shapes for DLA-34 + DLAUp + IDAUp, written out level by
# level from its module structure (pose_dla_dcn.py), independently of our modules.


def _conv(name: str, out_ch: int, in_ch: int, k: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": (out_ch, in_ch, k, k)}


def _bn(name: str, ch: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.{p}": (ch,) for p in ("weight", "bias", "running_mean", "running_var")}


def _block(name: str, in_ch: int, out_ch: int) -> dict[str, tuple[int, ...]]:
    return {
        **_conv(f"{name}.conv1", out_ch, in_ch, 3), **_bn(f"{name}.bn1", out_ch),
        **_conv(f"{name}.conv2", out_ch, out_ch, 3), **_bn(f"{name}.bn2", out_ch),
    }


def _project(name: str, in_ch: int, out_ch: int) -> dict[str, tuple[int, ...]]:
    return {**_conv(f"{name}.project.0", out_ch, in_ch, 1), **_bn(f"{name}.project.1", out_ch)}


def _tree1(name: str, in_ch: int, out_ch: int, root_in: int) -> dict[str, tuple[int, ...]]:
    """A depth-1 tree: two blocks, a 1x1 root over ``root_in`` channels, a projection if in != out."""
    names = {
        **_block(f"{name}.tree1", in_ch, out_ch), **_block(f"{name}.tree2", out_ch, out_ch),
        **_conv(f"{name}.root.conv", out_ch, root_in, 1), **_bn(f"{name}.root.bn", out_ch),
    }
    return {**names, **(_project(name, in_ch, out_ch) if in_ch != out_ch else {})}


def _deform_conv(name: str, in_ch: int, out_ch: int, dcn: bool) -> dict[str, tuple[int, ...]]:
    names = {f"{name}.conv.weight": (out_ch, in_ch, 3, 3), f"{name}.conv.bias": (out_ch,)}
    if dcn:  # offsets + mask: 3 * 9 channels
        names[f"{name}.conv.conv_offset_mask.weight"] = (27, in_ch, 3, 3)
        names[f"{name}.conv.conv_offset_mask.bias"] = (27,)
    return {**names, **_bn(f"{name}.actf.0", out_ch)}


def _ida(name: str, out_ch: int, in_chs: list[int], factors: list[int], dcn: bool) -> dict[str, tuple[int, ...]]:
    names: dict[str, tuple[int, ...]] = {}
    for i, (in_ch, f) in enumerate(zip(in_chs, factors), start=1):
        names |= _deform_conv(f"{name}.proj_{i}", in_ch, out_ch, dcn)
        names[f"{name}.up_{i}.weight"] = (out_ch, 1, 2 * f, 2 * f)
        names |= _deform_conv(f"{name}.node_{i}", out_ch, out_ch, dcn)
    return names


def original_dla34_names(dcn: bool = True) -> dict[str, tuple[int, ...]]:
    """The original DLASeg('dla34')'s state dict names and shapes, heads and num_batches_tracked left out."""
    names = {
        **_conv("base.base_layer.0", 16, 3, 7), **_bn("base.base_layer.1", 16),
        **_conv("base.level0.0", 16, 16, 3), **_bn("base.level0.1", 16),
        **_conv("base.level1.0", 32, 16, 3), **_bn("base.level1.1", 32),
        # root inputs: the two blocks, + the level's downsampled input (levels 3-5), + tree1's output (levels 3-4)
        **_tree1("base.level2", 32, 64, 64 + 64),
        **_tree1("base.level3.tree1", 64, 128, 128 + 128),
        **_tree1("base.level3.tree2", 128, 128, 128 + 128 + 64 + 128),
        **_project("base.level3", 64, 128),
        **_tree1("base.level4.tree1", 128, 256, 256 + 256),
        **_tree1("base.level4.tree2", 256, 256, 256 + 256 + 128 + 256),
        **_project("base.level4", 128, 256),
        **_tree1("base.level5", 256, 512, 512 + 512 + 256),
        **_ida("dla_up.ida_0", 256, [512], [2], dcn),
        **_ida("dla_up.ida_1", 128, [256, 256], [2, 2], dcn),
        **_ida("dla_up.ida_2", 64, [128, 128, 128], [2, 2, 2], dcn),
        **_ida("ida_up", 64, [128, 256], [2, 4], dcn),
    }
    return names


# A few names and shapes copied from the original's module structure by hand, as an anchor.
ORIGINAL_SPOT_CHECK = {
    "base.base_layer.0.weight": (16, 3, 7, 7),
    "base.base_layer.1.running_var": (16,),
    "base.level0.0.weight": (16, 16, 3, 3),
    "base.level1.1.weight": (32,),
    "base.level2.tree1.conv1.weight": (64, 32, 3, 3),
    "base.level2.root.conv.weight": (64, 128, 1, 1),
    "base.level2.project.0.weight": (64, 32, 1, 1),
    "base.level3.tree1.project.0.weight": (128, 64, 1, 1),
    "base.level3.tree2.root.conv.weight": (128, 448, 1, 1),
    "base.level3.project.1.running_mean": (128,),
    "base.level4.tree2.root.conv.weight": (256, 896, 1, 1),
    "base.level5.root.conv.weight": (512, 1280, 1, 1),
    "base.level5.tree1.conv1.weight": (512, 256, 3, 3),
    "dla_up.ida_0.proj_1.conv.weight": (256, 512, 3, 3),
    "dla_up.ida_0.proj_1.conv.conv_offset_mask.weight": (27, 512, 3, 3),
    "dla_up.ida_0.proj_1.actf.0.weight": (256,),
    "dla_up.ida_1.up_2.weight": (128, 1, 4, 4),
    "dla_up.ida_2.node_3.conv.bias": (64,),
    "ida_up.proj_2.conv.weight": (64, 256, 3, 3),
    "ida_up.up_1.weight": (64, 1, 4, 4),
    "ida_up.up_2.weight": (64, 1, 8, 8),
    "ida_up.node_2.actf.0.running_var": (64,),
}


def _ours_in_original_names(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    names = {}
    for name, tensor in model.state_dict().items():
        if name.startswith("heads.") or name.endswith("num_batches_tracked"):
            continue
        original = next(src + name[len(dst):] for src, dst in PREFIX_MAP if name.startswith(dst))
        names[original] = tuple(tensor.shape)
    return names


@pytest.mark.parametrize("name,dcn", [("dla34", True), ("dla34_nodcn", False)])
def test_names_and_shapes_match_the_original(name, dcn):
    ours = _ours_in_original_names(create_model(name, num_classes=80))
    expected = original_dla34_names(dcn)
    assert sorted(set(ours) - set(expected)) == [] and sorted(set(expected) - set(ours)) == []
    assert {k: v for k, v in ours.items() if v != expected[k]} == {}
    spots = {k: v for k, v in ORIGINAL_SPOT_CHECK.items() if dcn or "conv_offset_mask" not in k}
    assert {k: ours.get(k) for k in spots} == spots


# ---------------------------------------------------------------------------------------------


def test_backbone_levels_have_strides_1_to_32():
    backbone = dla34_backbone().eval()
    with torch.no_grad():
        levels = backbone(torch.randn(1, 3, 64, 96))
    assert [tuple(x.shape) for x in levels] == [
        (1, 16, 64, 96), (1, 32, 32, 48), (1, 64, 16, 24), (1, 128, 8, 12), (1, 256, 4, 6), (1, 512, 2, 3)
    ]


@pytest.mark.parametrize("name", ["dla34", "dla34_nodcn"])
def test_forward_shapes_with_seven_classes(name):
    model = create_model(name, num_classes=7).eval()
    assert model.neck.out_channels == 64 and model.heads["heatmap"].conv.out_channels == 256  # head_conv 256
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 96))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "heatmap": (2, 7, 16, 24), "size": (2, 2, 16, 24), "offset": (2, 2, 16, 24)
    }
    assert all(torch.isfinite(v).all() for v in out.values())


@pytest.mark.parametrize("name", ["dla34", "dla34_nodcn"])
def test_every_parameter_gets_a_finite_gradient(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, head_conv=32)
    out = model(torch.randn(2, 3, 32, 32))
    sum(v.pow(2).mean() for v in out.values()).backward()
    bad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not bad, f"parameters without a finite gradient: {bad[:5]}"


def test_parameter_count_is_the_papers():
    model = create_model("dla34", num_classes=80)
    trainable = sum(p.numel() for p in model.parameters())
    # The never-used level3/level4 ``project`` weights are held as buffers, not parameters.
    unused = sum(
        t.numel()
        for n, t in model.named_buffers()
        if n.startswith(("backbone.level3.project.", "backbone.level4.project."))
        and n.endswith(("0.weight", "1.weight", "1.bias"))
    )
    assert unused == 64 * 128 + 2 * 128 + 128 * 256 + 2 * 256
    assert trainable + unused == 19_675_892  # the original DLASeg's parameter count with hm/wh/reg heads, 80 classes
    assert abs(trainable - 19.7e6) / 19.7e6 < 0.02


def test_unused_projections_do_not_affect_the_output():
    torch.manual_seed(0)
    backbone = dla34_backbone().eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        before = backbone(x)[-1]
        backbone.level3.project.get_buffer("0.weight").normal_()
        backbone.level4.project.get_buffer("1.running_mean").normal_()
        after = backbone(x)[-1]
    assert torch.equal(before, after)


def test_depthwise_upsample_is_bilinear_per_channel():
    x = torch.randn(1, 3, 5, 6)
    for factor in (2, 4):
        up = depthwise_upsample(3, factor)
        assert up.weight.shape == (3, 1, 2 * factor, 2 * factor) and up.bias is None
        y = up(x)
        ref = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
        m = factor  # the borders differ (zero padding vs edge clamping)
        assert y.shape == ref.shape
        assert torch.allclose(y[..., m:-m, m:-m], ref[..., m:-m, m:-m], atol=1e-5)


def _random_imagenet_state() -> dict[str, torch.Tensor]:
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in dla34_backbone().state_dict().items()}
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}  # as in older files
    state["fc.weight"] = torch.randn(1000, 512, 1, 1)  # the ImageNet classifier, a 1x1 conv
    state["fc.bias"] = torch.randn(1000)
    return state


def test_load_pretrained_from_local_file(tmp_path):
    state = _random_imagenet_state()
    path = tmp_path / "dla34.pth"
    torch.save(state, path)
    model = create_model("dla34_nodcn", num_classes=2, pretrained=path)
    loaded = model.backbone.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items() if not k.startswith("fc."))
    assert torch.equal(model.backbone.level4.tree2.root.conv.weight, state["level4.tree2.root.conv.weight"])

    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)  # wrapped, DataParallel names
    dla34_backbone().load_pretrained(path)


def test_load_pretrained_names_what_does_not_fit(tmp_path):
    state = _random_imagenet_state()
    del state["level2.root.conv.weight"]
    state["level9.weight"] = torch.zeros(1)
    state["level1.0.weight"] = torch.zeros(32, 16, 1, 1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(CenterNetError) as info:
        dla34_backbone().load_pretrained(path)
    message = str(info.value)
    assert "missing (1): level2.root.conv.weight" in message
    assert "unexpected (1): level9.weight" in message
    assert "wrong shape (1): level1.0.weight (32, 16, 1, 1) vs (32, 16, 3, 3)" in message
    with pytest.raises(CenterNetError, match="not found"):
        create_model("dla34", num_classes=2, pretrained=tmp_path / "nope.pth")
