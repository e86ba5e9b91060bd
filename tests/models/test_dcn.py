"""Deformable conv v2: against a direct loop over pixels and taps, gradients, layouts, memory."""

from __future__ import annotations

import math

import pytest
import torch

from centernet.models.layers.dcn import ModulatedDeformConv2d, deform_conv2d


def _bilinear_zero_outside(image: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """image (C, H, W) at real (y, x); each of the four neighbours outside the image counts as 0."""
    c, h, w = image.shape
    y0, x0 = math.floor(y), math.floor(x)
    value = torch.zeros(c, dtype=image.dtype)
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                value = value + wy * wx * image[:, yy, xx]
    return value


def reference_deform_conv2d(x, offset, weight, bias, stride, padding, dilation, mask):
    """The DCNv2 formula written out with Python loops (small inputs only)."""
    b, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    k = kh * kw
    ho, wo = offset.shape[-2:]
    groups = offset.shape[1] // (2 * k)
    cg = c // groups
    out = torch.zeros(b, o, ho, wo, dtype=x.dtype)
    for n in range(b):
        for yo in range(ho):
            for xo in range(wo):
                acc = torch.zeros(o, dtype=x.dtype)
                for g in range(groups):
                    for tap in range(k):
                        ki, kj = divmod(tap, kw)
                        dy = offset[n, g * 2 * k + 2 * tap, yo, xo].item()
                        dx = offset[n, g * 2 * k + 2 * tap + 1, yo, xo].item()
                        y = yo * stride - padding + ki * dilation + dy
                        xx = xo * stride - padding + kj * dilation + dx
                        sample = _bilinear_zero_outside(x[n, g * cg:(g + 1) * cg], y, xx)
                        sample = sample * mask[n, g * k + tap, yo, xo]
                        acc = acc + weight[:, g * cg:(g + 1) * cg, ki, kj] @ sample
                out[n, :, yo, xo] = acc + (bias if bias is not None else 0)
    return out


@pytest.mark.parametrize(
    "stride,padding,dilation,groups", [(1, 1, 1, 1), (2, 1, 1, 1), (1, 2, 2, 2), (1, 0, 1, 1)]
)
def test_matches_loop_reference(stride, padding, dilation, groups):
    g = torch.Generator().manual_seed(stride * 10 + padding + 7 * groups)
    b, c, h, w, o = 2, 4, 6, 7, 3
    x = torch.randn(b, c, h, w, generator=g, dtype=torch.float64)
    weight = torch.randn(o, c, 3, 3, generator=g, dtype=torch.float64)
    bias = torch.randn(o, generator=g, dtype=torch.float64)
    ho = (h + 2 * padding - dilation * 2 - 1) // stride + 1
    wo = (w + 2 * padding - dilation * 2 - 1) // stride + 1
    # Offsets up to +-3 px: many taps land between pixels and some fall outside the image.
    offset = 3 * torch.randn(b, 2 * groups * 9, ho, wo, generator=g, dtype=torch.float64)
    mask = torch.rand(b, groups * 9, ho, wo, generator=g, dtype=torch.float64)
    got = deform_conv2d(x, offset, weight, bias, stride, padding, dilation, mask)
    want = reference_deform_conv2d(x, offset, weight, bias, stride, padding, dilation, mask)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_zero_offsets_and_unit_mask_equal_a_plain_conv():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 9, 8, generator=g)
    weight = torch.randn(6, 5, 3, 3, generator=g)
    bias = torch.randn(6, generator=g)
    for stride, padding, dilation in ((1, 1, 1), (2, 1, 1), (1, 2, 2)):
        want = torch.nn.functional.conv2d(x, weight, bias, stride, padding, dilation)
        offset = torch.zeros(2, 18, *want.shape[-2:])
        got = deform_conv2d(x, offset, weight, bias, stride, padding, dilation)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_integer_offset_shifts_the_tap():
    # A 1x1 kernel with offset (dy, dx) = (1, -2) reads input[y + 1, x - 2] (zero outside).
    x = torch.arange(30, dtype=torch.float64).view(1, 1, 5, 6)
    weight = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    offset = torch.zeros(1, 2, 5, 6, dtype=torch.float64)
    offset[:, 0], offset[:, 1] = 1.0, -2.0
    got = deform_conv2d(x, offset, weight)[0, 0]
    want = torch.zeros(5, 6, dtype=torch.float64)
    want[:4, 2:] = x[0, 0, 1:, :4]
    torch.testing.assert_close(got, want)


def test_gradcheck_all_inputs():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 2, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    # Keep sampling points off integer coordinates, where bilinear is not differentiable.
    offset = (0.3 + 0.4 * torch.rand(1, 18, 4, 5, generator=g, dtype=torch.float64)).requires_grad_()
    mask = torch.rand(1, 9, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, 2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)

    def fn(x, offset, mask, weight, bias):
        return deform_conv2d(x, offset, weight, bias, 1, 1, 1, mask)

    assert torch.autograd.gradcheck(fn, (x, offset, mask, weight, bias), eps=1e-6, atol=1e-5)


def test_recompute_gives_the_same_gradients():
    g = torch.Generator().manual_seed(5)
    inputs = [
        torch.randn(2, 4, 6, 6, generator=g),
        torch.randn(2, 18, 6, 6, generator=g),
        torch.rand(2, 9, 6, 6, generator=g),
        torch.randn(3, 4, 3, 3, generator=g),
    ]
    grads = []
    for recompute in (False, True):
        leaves = [t.clone().requires_grad_() for t in inputs]
        x, offset, mask, weight = leaves
        deform_conv2d(x, offset, weight, None, 1, 1, 1, mask, recompute=recompute).square().sum().backward()
        grads.append([t.grad for t in leaves])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_module_layout_and_start_as_half_masked_conv():
    layer = ModulatedDeformConv2d(8, 16, 3, stride=1, padding=1)
    assert layer.conv_offset_mask.out_channels == 27  # two offset chunks, then the mask
    assert set(dict(layer.named_parameters())) == {
        "weight", "bias", "conv_offset_mask.weight", "conv_offset_mask.bias"
    }
    x = torch.randn(2, 8, 10, 10)
    # Zero-initialised offset/mask conv: offsets 0 and mask sigmoid(0) = 0.5.
    want = torch.nn.functional.conv2d(x, layer.weight * 0.5, layer.bias, 1, 1)
    torch.testing.assert_close(layer(x), want, rtol=1e-5, atol=1e-5)


def test_module_uses_chunked_offsets_and_sigmoid_mask():
    torch.manual_seed(0)
    layer = ModulatedDeformConv2d(3, 4, 3, padding=1, deformable_groups=1)
    torch.nn.init.normal_(layer.conv_offset_mask.weight, std=0.3)
    x = torch.randn(1, 3, 5, 5)
    o1, o2, m = torch.chunk(layer.conv_offset_mask(x), 3, dim=1)
    want = reference_deform_conv2d(
        x.double(), torch.cat((o1, o2), 1).double(), layer.weight.double(), layer.bias.double(), 1, 1, 1,
        torch.sigmoid(m).double(),
    )
    torch.testing.assert_close(layer(x).double(), want, rtol=1e-4, atol=1e-4)


def test_module_backward_reaches_every_parameter_and_runs_in_bf16():
    torch.manual_seed(0)
    layer = ModulatedDeformConv2d(4, 4, 3, padding=1, deformable_groups=2)
    torch.nn.init.normal_(layer.conv_offset_mask.weight, std=0.1)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), layer(x), rtol=0.05, atol=0.05)


def test_bad_shapes_are_reported():
    x = torch.randn(1, 4, 6, 6)
    weight = torch.randn(2, 4, 3, 3)
    with pytest.raises(ValueError, match="offset has 10 channels"):
        deform_conv2d(x, torch.zeros(1, 10, 6, 6), weight, padding=1)
    with pytest.raises(ValueError, match="spatially"):
        deform_conv2d(x, torch.zeros(1, 18, 5, 5), weight, padding=1)
    with pytest.raises(ValueError, match="input channels"):
        deform_conv2d(x, torch.zeros(1, 18, 6, 6), torch.randn(2, 3, 3, 3), padding=1)


def test_training_keeps_no_per_tap_samples_for_backward():
    # Autograd should keep about the inputs (x, offset, mask, weight), not nine (B, C, Ho, Wo) samples.
    x = torch.randn(2, 16, 24, 24, requires_grad=True)
    offset = torch.randn(2, 18, 24, 24, requires_grad=True)
    mask = torch.rand(2, 9, 24, 24, requires_grad=True)
    weight = torch.randn(16, 16, 3, 3, requires_grad=True)
    saved_bytes = 0

    def pack(t):
        nonlocal saved_bytes
        saved_bytes += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = deform_conv2d(x, offset, weight, None, 1, 1, 1, mask)
    inputs_bytes = sum(t.numel() * t.element_size() for t in (x, offset, mask, weight))
    assert saved_bytes <= 1.5 * inputs_bytes, (saved_bytes, inputs_bytes)
    out.sum().backward()
    assert x.grad is not None


def test_bf16_autocast_samples_at_float32_positions():
    # Alternating columns 0, 1, 0, 1, ...: sampled 0.25 px to the right, each output is 0.25 or 0.75. Positions
    # held in bf16 would round x + 0.25 back to x for x >= 64 (8 bits of mantissa) and give 0 or 1 there.
    w = 256
    x = (torch.arange(w) % 2).float().expand(1, 1, 2, w).contiguous()
    offset = torch.zeros(1, 2, 2, w)
    offset[:, 1] = 0.25  # dx of the single tap
    weight = torch.ones(1, 1, 1, 1)
    want = deform_conv2d(x, offset, weight)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = deform_conv2d(x, offset, weight)
    assert got.dtype == torch.bfloat16
    assert set(want[0, 0, 0, : w - 1].tolist()) == {0.25, 0.75}
    torch.testing.assert_close(got.float()[..., : w - 1], want[..., : w - 1], rtol=0, atol=0.005)
