import math

import pytest
import torch

from centernet import CenterNetError, create_model, list_models
from centernet.models.necks import bilinear_init_


@pytest.mark.parametrize("name", list_models())
def test_every_model_forward_backward(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=5)
    divisor = model.size_divisor
    # 64 x 96 (batch 2) where the model allows it; else one size_divisor high and two wide, batch 1
    # (Hourglass: 128 x 256, which leaves 1 x 2 pixels for BatchNorm at its innermost level).
    batch, height, width = (2, 64, 96) if 64 % divisor == 0 and 96 % divisor == 0 else (1, divisor, 2 * divisor)
    out = model(torch.randn(batch, 3, height, width))
    stacks = out if isinstance(out, list) else [out]  # train mode: Hourglass returns one dict per stack
    h, w = height // model.stride, width // model.stride
    for stack in stacks:
        assert stack["heatmap"].shape == (batch, 5, h, w)
        assert stack["size"].shape == (batch, 2, h, w) and stack["offset"].shape == (batch, 2, h, w)
        assert all(torch.isfinite(v).all() for v in stack.values())
    loss = sum(v.float().pow(2).mean() for stack in stacks for v in stack.values())
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a finite gradient: {missing[:5]}"


def test_heatmap_prior_bias_and_custom_heads():
    model = create_model("resnet18", heads={"heatmap": 3, "joint_heatmap": 4, "size": 2})
    assert torch.allclose(model.heads["heatmap"].out.bias, torch.full((3,), -math.log(9.0)))
    assert torch.allclose(model.heads["joint_heatmap"].out.bias, torch.full((4,), -math.log(9.0)))
    assert torch.all(model.heads["size"].out.bias == 0)
    out = model(torch.randn(1, 3, 64, 64))
    assert set(out) == {"heatmap", "joint_heatmap", "size"}


def test_bilinear_init_upsamples_bilinearly():
    up = torch.nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1, bias=False)
    bilinear_init_(up)
    x = torch.randn(1, 2, 5, 5)
    y = up(x)
    # interior pixels equal bilinear interpolation with align_corners=False
    ref = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(y[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-6)


def test_unknown_model_and_bad_classes():
    with pytest.raises(CenterNetError, match="unknown model 'resnet7'"):
        create_model("resnet7", num_classes=2)
    with pytest.raises(CenterNetError, match="num_classes=0"):
        create_model("resnet18", num_classes=0)


def test_pretrained_backbone_from_local_file(tmp_path):
    from centernet.models.backbones.resnet import resnet

    ref = resnet(18)
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in ref.state_dict().items()}
    state["fc.weight"] = torch.randn(1000, 512)
    state["fc.bias"] = torch.randn(1000)
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    model = create_model("resnet18", num_classes=2, pretrained=path)
    assert torch.equal(model.backbone.layer3[1].conv2.weight, state["layer3.1.conv2.weight"])
    shortcut = create_model("resnet18_shortcut", num_classes=2, pretrained=path)
    assert torch.equal(shortcut.backbone.layer3[1].conv2.weight, state["layer3.1.conv2.weight"])
    with pytest.raises(CenterNetError, match="not found"):
        create_model("resnet18", num_classes=2, pretrained=tmp_path / "nope.pth")
    del state["layer1.0.conv1.weight"]
    torch.save(state, path)
    with pytest.raises(CenterNetError, match="missing"):
        create_model("resnet18", num_classes=2, pretrained=path)


def test_shortcut_neck_carries_the_fine_stages():
    """resnet18_shortcut: the stride-4 output depends on layer1's output through the shortcut, not only via stride 32."""
    torch.manual_seed(0)
    model = create_model("resnet18_shortcut", num_classes=3).eval()
    stages = model.backbone(torch.randn(1, 3, 64, 64))  # return_stages: all four
    assert [tuple(s.shape[1:]) for s in stages] == [(64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2)]
    assert model.backbone.stage_channels == (64, 128, 256, 512)
    c2 = stages[0].detach().requires_grad_(True)
    features = model.neck([c2, *[s.detach() for s in stages[1:]]])  # (1, 64, 16, 16)
    assert features.shape == (1, 64, 16, 16)
    features[0, :, 5, 7].sum().backward()
    # a 3x3 shortcut conv at stride 4: the pixel (5, 7) reads layer1's 3x3 window around it, nothing further
    touched = c2.grad.abs().sum(1)[0] > 0
    assert touched[4:7, 6:9].all() and touched.sum() == 9
