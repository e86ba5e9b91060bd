"""Modulated deformable convolution (DCNv2, Zhu et al. 2019) in plain PyTorch: nothing to compile.

A 3x3 deformable conv samples the input at the nine kernel taps, each shifted by a
learned (dy, dx), multiplies each sample by a learned mask in (0, 1), and then applies
the conv weight to the samples::

    out[b, o, y, x] = bias[o] + sum_{c, k} weight[o, c, k] * mask[b, g, k, y, x]
                      * bilinear(input[b, c], y * sh - ph + ki * dh + dy[b, g, k, y, x],
                                              x * sw - pw + kj * dw + dx[b, g, k, y, x])

with k = ki * kw + kj the tap and g = c // (C / deformable_groups) the channel's offset
group. Bilinear sampling treats everything outside the input as zero (each of the four
neighbours that falls outside contributes nothing), as the original CUDA kernel does.

Layouts are the original's ``DCN`` and torchvision's ``deform_conv2d``:

* ``offset``: (B, 2 * G * K, Ho, Wo); channel ``g * 2K + 2k`` is dy and ``g * 2K + 2k + 1``
  is dx of tap k in group g;
* ``mask``: (B, G * K, Ho, Wo), already in (0, 1);
* :class:`ModulatedDeformConv2d` predicts both with one conv, ``conv_offset_mask``
  (3 * G * K output channels, zero-initialised so training starts as a plain conv): its
  output is split into three equal chunks ``o1, o2, m``; the offset is ``cat(o1, o2)`` and
  the mask ``sigmoid(m)``.

Memory: the taps are processed one at a time, each sample (B, C, Ho, Wo) turned into
its contribution by a 1x1 matmul and added to the output, so the 9x "columns" tensor
of an im2col implementation never exists. During training the whole operation is
recomputed in the backward pass (activation checkpointing), so autograd keeps only the
inputs, not the nine samples.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

__all__ = ["deform_conv2d", "ModulatedDeformConv2d"]


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _deform_conv2d(
    input: torch.Tensor,   # (B, C, H, W)
    offset: torch.Tensor,  # (B, 2*G*K, Ho, Wo)
    mask: torch.Tensor,    # (B, G*K, Ho, Wo)
    weight: torch.Tensor,  # (O, C, kh, kw)
    bias: torch.Tensor | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
) -> torch.Tensor:
    b, c, h, w = input.shape
    o = weight.shape[0]
    kh, kw = int(weight.shape[2]), int(weight.shape[3])  # Python ints also when traced for export (a fixed kernel)
    k = kh * kw
    ho, wo = offset.shape[-2:]
    groups = offset.shape[1] // (2 * k)
    dtype = input.dtype  # the sampling's: float32 or float64, never bf16/fp16 (see deform_conv2d)
    # Base sampling positions of tap (0, 0) for every output pixel, in input pixels.
    ys = torch.arange(ho, device=input.device, dtype=dtype) * stride[0] - padding[0]  # (Ho,)
    xs = torch.arange(wo, device=input.device, dtype=dtype) * stride[1] - padding[1]  # (Wo,)
    offset = offset.view(b, groups, k, 2, ho, wo)
    mask = mask.view(b, groups, k, ho, wo)
    # Each offset group samples its own C/G channels: fold the groups into the batch.
    grouped = input.reshape(b * groups, c // groups, h, w)
    out = None
    for tap in range(k):
        ki, kj = divmod(tap, kw)
        py = ys[:, None] + ki * dilation[0] + offset[:, :, tap, 0]  # (B, G, Ho, Wo)
        px = xs[None, :] + kj * dilation[1] + offset[:, :, tap, 1]
        # grid_sample with align_corners=False: pixel p sits at (2p + 1) / size - 1.
        grid = torch.stack(((2 * px + 1) / w - 1, (2 * py + 1) / h - 1), dim=-1)  # (B, G, Ho, Wo, 2)
        sampled = F.grid_sample(
            grouped, grid.view(b * groups, ho, wo, 2), mode="bilinear", padding_mode="zeros", align_corners=False
        ).view(b, groups, c // groups, ho, wo)
        sampled = (sampled * mask[:, :, tap, None]).view(b, c, ho * wo).to(weight.dtype)  # (B, C, Ho*Wo)
        contribution = torch.matmul(weight[:, :, ki, kj], sampled)  # (B, O, Ho*Wo)
        out = contribution if out is None else out + contribution
    out = out.view(b, o, ho, wo)
    if bias is not None:
        out = out + bias.view(1, o, 1, 1)
    return out


def deform_conv2d(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    mask: torch.Tensor | None = None,
    recompute: bool | None = None,
) -> torch.Tensor:
    """Modulated deformable conv; the argument order and layouts of torchvision's ``deform_conv2d``.

    input (B, C, H, W), offset (B, 2*G*kh*kw, Ho, Wo), weight (O, C, kh, kw),
    mask (B, G*kh*kw, Ho, Wo) or None (all ones: DCNv1) -> (B, O, Ho, Wo).

    ``recompute`` (default: whenever autograd is recording) saves memory by recomputing
    the sampling in the backward pass instead of keeping the samples.
    """
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    b, c, h, w = input.shape
    o, c_w, kh, kw = weight.shape
    k = kh * kw
    if c_w != c:
        raise ValueError(f"weight has {c_w} input channels, input has {c}")
    if offset.shape[1] % (2 * k) or c % (offset.shape[1] // (2 * k)):
        raise ValueError(
            f"offset has {offset.shape[1]} channels: expected 2 * groups * {k} with groups dividing {c} channels"
        )
    groups = offset.shape[1] // (2 * k)
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if offset.shape[-2:] != (ho, wo):
        raise ValueError(f"offset is {tuple(offset.shape[-2:])} spatially; the output is {(ho, wo)}")
    if mask is None:
        mask = offset.new_ones(b, groups * k, ho, wo)
    elif mask.shape[1] != groups * k:
        raise ValueError(f"mask has {mask.shape[1]} channels; expected {groups * k}")
    # The products run in the autocast dtype (bf16/fp16) when autocast is on, but the sampling always runs in
    # float32 at least: a position such as x = 200.3 is 200 in bf16 (8 bits of mantissa), and CPU grid_sample
    # has no fast bf16 kernel anyway.
    dtype = torch.promote_types(input.dtype, weight.dtype)
    if torch.is_autocast_enabled(input.device.type):
        dtype = torch.get_autocast_dtype(input.device.type)
    sample_dtype = torch.promote_types(torch.promote_types(input.dtype, offset.dtype), torch.float32)
    args = [t.to(sample_dtype) for t in (input, offset, mask)] + [weight.to(dtype)]
    args.append(None if bias is None else bias.to(dtype))
    if recompute is None:
        recompute = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in args)
    with torch.autocast(input.device.type, enabled=False):
        if recompute:
            return checkpoint(_deform_conv2d, *args, stride, padding, dilation, use_reentrant=False)
        return _deform_conv2d(*args, stride, padding, dilation)


class ModulatedDeformConv2d(nn.Module):
    """DCNv2 layer that predicts its own offsets and mask, the original's ``DCN`` module.

    Parameters are named as the original's (``weight``, ``bias``, ``conv_offset_mask.*``),
    so its checkpoints map one to one. (B, in, H, W) -> (B, out, Ho, Wo).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 1,
        dilation: int | tuple[int, int] = 1,
        deformable_groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.dilation = _pair(padding), _pair(dilation)
        self.deformable_groups = deformable_groups
        kh, kw = self.kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kh, kw))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.conv_offset_mask = nn.Conv2d(
            in_channels, 3 * deformable_groups * kh * kw, self.kernel_size, self.stride, self.padding, self.dilation
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # The original's DCNv2 init: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), zero bias,
        # and zero offsets/mask logits (mask 0.5 everywhere, offsets 0) at the start.
        stdv = 1.0 / math.sqrt(self.in_channels * self.kernel_size[0] * self.kernel_size[1])
        nn.init.uniform_(self.weight, -stdv, stdv)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        nn.init.zeros_(self.conv_offset_mask.weight)
        nn.init.zeros_(self.conv_offset_mask.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o1, o2, m = torch.chunk(self.conv_offset_mask(x), 3, dim=1)
        offset = torch.cat((o1, o2), dim=1)  # (B, 2*G*K, Ho, Wo)
        mask = torch.sigmoid(m)              # (B, G*K, Ho, Wo)
        return deform_conv2d(x, offset, self.weight, self.bias, self.stride, self.padding, self.dilation, mask)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, dilation={self.dilation}, deformable_groups={self.deformable_groups}"
        )
