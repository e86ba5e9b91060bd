"""DLA-34, Deep Layer Aggregation (Yu et al. 2018), the backbone of the paper's best speed/accuracy model.

The trunk is six levels; level ``i`` halves the resolution (levels 0 and 1 are plain conv
stages, levels 2-5 are aggregation *trees*)::

    image (B, 3, H, W) -> base_layer -> level0 (B, 16, H, W)
                                     -> level1 (B, 32, H/2, W/2)
                                     -> level2 (B, 64, H/4, W/4)
                                     -> level3 (B, 128, H/8, W/8)
                                     -> level4 (B, 256, H/16, W/16)
                                     -> level5 (B, 512, H/32, W/32)

A tree of depth 1 is two residual blocks whose outputs (and, for a "level root", the
tree's downsampled input) are concatenated and fused by a 1x1 conv, the *root*. A tree
of depth 2 chains two depth-1 trees and hands everything to the root of the second.

The module tree follows the original (ucbdrive/dla, as vendored by CenterNet) name for
name (``base_layer``, ``level0`` ... ``level5``, ``tree1``, ``tree2``, ``root``,
``project``), so its ImageNet weights and CenterNet's ``base.*`` weights load one to one.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from ..weights import load_local_weights

DLA34_LEVELS = (1, 1, 1, 2, 2, 1)  # conv layers in levels 0-1, tree depth in levels 2-5
DLA34_CHANNELS = (16, 32, 64, 128, 256, 512)


class BasicBlock(nn.Module):
    """3x3 conv + BN + ReLU, 3x3 conv + BN, plus a residual, ReLU: (B, in, H, W) -> (B, out, H/stride, W/stride).

    Unlike ResNet's block, the residual comes from the caller (the tree projects and
    downsamples it once for its first block); without one it is the input itself.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        residual = x if residual is None else residual
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Root(nn.Module):
    """Aggregation node: concatenate the children, 1x1 conv + BN + ReLU.

    [(B, c_i, h, w) ...] with sum(c_i) = in_channels -> (B, out_channels, h, w)
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, children: list[torch.Tensor]) -> torch.Tensor:
        return self.relu(self.bn(self.conv(torch.cat(children, dim=1))))


class UnusedProjection(nn.Module):
    """The 1x1 conv + BN ``project`` of a tree of depth >= 2, which the original builds but never uses.

    In the original, a deep tree computes a projected residual and passes it to its
    first subtree, which discards it and projects its own input again; the weights are in
    every checkpoint (``level3.project.*``, ``level4.project.*`` in DLA-34) yet never
    affect the output. They are kept here as buffers under the same names, so checkpoints
    still map one to one while every *parameter* of the model gets a gradient.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.add_module("0", nn.Conv2d(in_channels, out_channels, 1, bias=False))
        self.add_module("1", nn.BatchNorm2d(out_channels))
        for module in self.children():
            tensors = module.state_dict()  # parameters, then BN statistics: the original's order
            for name, tensor in tensors.items():
                delattr(module, name)
                module.register_buffer(name, tensor.detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("UnusedProjection only holds checkpoint weights; it is never called")


class Tree(nn.Module):
    """An aggregation tree of ``depth`` levels: (B, in, H, W) -> (B, out, H/stride, W/stride).

    Args:
        depth: 1 = two blocks and a root; d > 1 = two trees of depth d - 1.
        stride: downsampling of the first block (the residual is max-pooled to match).
        level_root: the tree's downsampled input also feeds the final root (a DLA "level").
        root_channels: channels concatenated at the root by the enclosing tree (0: none yet).
    """

    def __init__(
        self,
        depth: int,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        level_root: bool = False,
        root_channels: int = 0,
    ) -> None:
        super().__init__()
        if root_channels == 0:
            root_channels = 2 * out_channels  # the outputs of tree1 and tree2
        if level_root:
            root_channels += in_channels  # the downsampled input
        self.depth = depth
        self.level_root = level_root
        self.tree1: nn.Module
        self.tree2: nn.Module
        if depth == 1:
            self.tree1 = BasicBlock(in_channels, out_channels, stride)
            self.tree2 = BasicBlock(out_channels, out_channels)
            self.root = Root(root_channels, out_channels)
        else:
            self.tree1 = Tree(depth - 1, in_channels, out_channels, stride)
            # tree1's output joins the children that tree2's root concatenates.
            self.tree2 = Tree(depth - 1, out_channels, out_channels, root_channels=root_channels + out_channels)
        self.downsample = nn.MaxPool2d(stride, stride=stride) if stride > 1 else None
        self.project: nn.Module | None = None
        if in_channels != out_channels:
            if depth == 1:
                self.project = nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, bias=False),
                    nn.BatchNorm2d(out_channels),
                )
            else:
                self.project = UnusedProjection(in_channels, out_channels)

    def forward(self, x: torch.Tensor, children: list[torch.Tensor] | None = None) -> torch.Tensor:
        children = [] if children is None else children
        bottom = x if self.downsample is None else self.downsample(x)  # (B, in, H/stride, W/stride)
        if self.level_root:
            children = children + [bottom]
        if self.depth == 1:
            residual = bottom if self.project is None else self.project(bottom)  # (B, out, H/stride, W/stride)
            x1 = self.tree1(x, residual)
            x2 = self.tree2(x1)
            return self.root([x2, x1, *children])
        x1 = self.tree1(x)
        return self.tree2(x1, children=children + [x1])


def _conv_level(in_channels: int, out_channels: int, num_convs: int, stride: int = 1) -> nn.Sequential:
    """``num_convs`` x (3x3 conv + BN + ReLU), the first with ``stride``."""
    layers: list[nn.Module] = []
    for i in range(num_convs):
        layers += [
            nn.Conv2d(in_channels, out_channels, 3, stride if i == 0 else 1, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
        in_channels = out_channels
    return nn.Sequential(*layers)


class DLA(nn.Module):
    """DLA trunk without the classifier: (B, 3, H, W) -> the six level outputs.

    ``forward`` returns ``[level0, ..., level5]``, level i of shape (B, channels[i], H / 2**i, W / 2**i):
    strides 1, 2, 4, 8, 16, 32. H and W must be multiples of 32.
    """

    def __init__(self, levels: tuple[int, ...] = DLA34_LEVELS, channels: tuple[int, ...] = DLA34_CHANNELS) -> None:
        super().__init__()
        self.channels = tuple(channels)
        self.base_layer = nn.Sequential(
            nn.Conv2d(3, channels[0], 7, 1, 3, bias=False),
            nn.BatchNorm2d(channels[0]),
            nn.ReLU(inplace=True),
        )
        self.level0 = _conv_level(channels[0], channels[0], levels[0])
        self.level1 = _conv_level(channels[0], channels[1], levels[1], stride=2)
        self.level2 = Tree(levels[2], channels[1], channels[2], stride=2)
        self.level3 = Tree(levels[3], channels[2], channels[3], stride=2, level_root=True)
        self.level4 = Tree(levels[4], channels[3], channels[4], stride=2, level_root=True)
        self.level5 = Tree(levels[5], channels[4], channels[5], stride=2, level_root=True)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # Zero-init the last BN of each residual block, as the ResNet backbone does: every
        # block starts as the identity, which steadies training from scratch.
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.base_layer(x)  # (B, 16, H, W)
        levels = []
        for level in (self.level0, self.level1, self.level2, self.level3, self.level4, self.level5):
            x = level(x)  # level i: (B, channels[i], H / 2**i, W / 2**i)
            levels.append(x)
        return levels

    def load_pretrained(self, path: str | Path) -> None:
        """Load ImageNet DLA weights in the original's names from a local file (the classifier ``fc.*`` ignored)."""
        load_local_weights(self, path, "DLA", ignore=lambda name: name.startswith("fc."))

def dla34() -> DLA:
    """DLA-34: levels (1, 1, 1, 2, 2, 1), channels (16, 32, 64, 128, 256, 512), BasicBlock trees."""
    return DLA(DLA34_LEVELS, DLA34_CHANNELS)
