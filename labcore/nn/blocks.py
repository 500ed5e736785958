"""Building blocks shared by every backbone and head.

Shapes follow PyTorch: feature maps are ``(N, C, H, W)``. A block's *stride* divides the
spatial size (stride 2: ``(N, C, H, W) -> (N, C', H/2, W/2)``).

* :func:`conv_bn_relu` — Conv → BatchNorm → ReLU with "same" padding.
* :class:`BasicBlock`, :class:`Bottleneck` — the two ResNet residual blocks (He et al.
  2016), with a 1×1 projection shortcut when the stride or the channel count changes.
  The bottleneck puts its stride on the 3×3 convolution ("ResNet v1.5", the layout of
  torchvision and of the pose networks built on it).
* :func:`deconv_stack` — SimpleBaseline's upsampling head (Xiao et al. 2018): each
  entry of ``channels`` is a ConvTranspose2d of stride 2 (doubling H and W) → BN → ReLU.
* :func:`init_pose_weights` — the initialisation of the official pose networks
  (SimpleBaseline, HRNet, HEMlets): conv/deconv weights N(0, 0.001²), biases 0, BN (1, 0).
* :func:`init_kaiming` — He initialisation (fan-out, ReLU) used for ResNet trunks that are
  trained from scratch.
* :func:`count_parameters`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from labcore.checks import check_choice, check_int, check_number

__all__ = [
    "conv_bn_relu",
    "BasicBlock",
    "Bottleneck",
    "deconv_stack",
    "deconv_config",
    "init_pose_weights",
    "init_kaiming",
    "count_parameters",
    "check_input",
]

_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
               nn.ConvTranspose3d)
_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm)


def check_input(x: torch.Tensor, in_channels: int, size_divisor: int = 1, name: str = "x") -> None:
    """Validate a backbone input: a float tensor ``(N, in_channels, H, W)`` with ``H`` and
    ``W`` multiples of ``size_divisor``. Raises ``TypeError``/``ValueError`` that say what
    was expected and what came."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor (N, C, H, W), got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(
            f"{name}: expected a 4-D tensor (N, {in_channels}, H, W), got shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    if x.shape[1] != in_channels:
        raise ValueError(
            f"{name}: expected {in_channels} input channels (N, {in_channels}, H, W), "
            f"got {x.shape[1]} channels in shape {tuple(x.shape)}"
        )
    h, w = x.shape[-2:]
    if size_divisor > 1 and (h % size_divisor or w % size_divisor):
        raise ValueError(
            f"{name}: expected H and W to be multiples of {size_divisor} (the network's "
            f"output stride), got H={h}, W={w}; crop or pad the input, e.g. to "
            f"H={-(-h // size_divisor) * size_divisor}, W={-(-w // size_divisor) * size_divisor}"
        )


def _channels(value: object, name: str) -> int:
    return check_int(value, name, low=1)


def conv_bn_relu(
    in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    """``Conv2d(kernel, stride, padding=kernel//2, bias=False) → BatchNorm2d → ReLU``.

    ``(N, in_ch, H, W) -> (N, out_ch, H/stride, W/stride)`` (rounded up for odd sizes).
    ``kernel`` must be odd so that the padding keeps the grid centred; ``groups`` must
    divide both channel counts (``groups=in_ch=out_ch`` is a depthwise convolution).
    """
    in_ch = _channels(in_ch, "in_ch")
    out_ch = _channels(out_ch, "out_ch")
    kernel = check_int(kernel, "kernel", low=1)
    stride = check_int(stride, "stride", low=1)
    groups = check_int(groups, "groups", low=1)
    if kernel % 2 == 0:
        raise ValueError(f"kernel: expected an odd kernel size, got {kernel}")
    if in_ch % groups or out_ch % groups:
        raise ValueError(
            f"groups: expected a divisor of in_ch={in_ch} and out_ch={out_ch}, got {groups}"
        )
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, groups=groups,
                  bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


def _shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    """Identity when nothing changes, else the 1×1 strided projection + BN."""
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
    )


class BasicBlock(nn.Module):
    """ResNet basic block: ``relu(bn(conv3×3(relu(bn(conv3×3/stride(x))))) + shortcut(x))``.

    ``(N, in_ch, H, W) -> (N, out_ch, H/stride, W/stride)``. The shortcut is the identity
    when ``stride == 1`` and ``in_ch == out_ch``, else a 1×1 strided conv + BN.
    Parameters: ``9·in·out + 9·out² + 4·out`` (+ ``in·out + 2·out`` with a projection).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        in_ch = _channels(in_ch, "in_ch")
        out_ch = _channels(out_ch, "out_ch")
        stride = check_int(stride, "stride", low=1)
        self.in_channels, self.out_channels, self.stride = in_ch, out_ch, stride
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


class Bottleneck(nn.Module):
    """ResNet bottleneck: 1×1 (reduce to ``out_ch // expansion``) → 3×3/stride → 1×1
    (expand to ``out_ch``), each followed by BN, ReLU after the sum with the shortcut.

    ``(N, in_ch, H, W) -> (N, out_ch, H/stride, W/stride)``. Note that ``out_ch`` is the
    block's *output* width (torchvision's ``planes·expansion``): ResNet-50's first stage
    is ``Bottleneck(64, 256)``, its mid width 64. The stride sits on the 3×3 conv (v1.5).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, expansion: int = 4) -> None:
        super().__init__()
        in_ch = _channels(in_ch, "in_ch")
        out_ch = _channels(out_ch, "out_ch")
        stride = check_int(stride, "stride", low=1)
        expansion = check_int(expansion, "expansion", low=1)
        if out_ch % expansion:
            raise ValueError(
                f"out_ch: expected a multiple of expansion={expansion}, got {out_ch}"
            )
        mid = out_ch // expansion
        self.in_channels, self.out_channels, self.stride = in_ch, out_ch, stride
        self.expansion, self.mid_channels = expansion, mid
        self.conv1 = nn.Conv2d(in_ch, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + self.shortcut(x))


def deconv_config(kernel: int) -> tuple[int, int]:
    """``(padding, output_padding)`` that make ``ConvTranspose2d(kernel, stride=2)`` exactly
    double H and W — SimpleBaseline's ``_get_deconv_cfg``: 4 → (1, 0), 3 → (1, 1),
    2 → (0, 0)."""
    kernel = check_int(kernel, "kernel")
    check_choice(kernel, "kernel", (2, 3, 4))
    return {4: (1, 0), 3: (1, 1), 2: (0, 0)}[kernel]


def deconv_stack(
    in_ch: int, channels: Sequence[int] = (256, 256, 256), kernel: int = 4
) -> nn.Sequential:
    """SimpleBaseline's upsampling stack: for each ``c`` in ``channels``,
    ``ConvTranspose2d(prev, c, kernel, stride=2, padding, output_padding, bias=False) →
    BatchNorm2d(c) → ReLU``.

    ``(N, in_ch, H, W) -> (N, channels[-1], H·2^L, W·2^L)`` with ``L = len(channels)``;
    ``channels=()`` gives an empty ``nn.Sequential`` (the identity). ``kernel`` ∈ {2, 3, 4}
    (padding from :func:`deconv_config`). Weights are left at PyTorch's default; call
    :func:`init_pose_weights` for the official N(0, 0.001²) initialisation.
    """
    in_ch = _channels(in_ch, "in_ch")
    if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence):
        raise TypeError(f"channels: expected a sequence of ints, got {type(channels).__name__}")
    padding, output_padding = deconv_config(kernel)
    layers: list[nn.Module] = []
    prev = in_ch
    for i, c in enumerate(channels):
        c = _channels(c, f"channels[{i}]")
        layers += [
            nn.ConvTranspose2d(prev, c, kernel, stride=2, padding=padding,
                               output_padding=output_padding, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=True),
        ]
        prev = c
    return nn.Sequential(*layers)


def _init_layers(module: nn.Module, init_conv) -> nn.Module:
    """Walk ``module``: ``init_conv(weight)`` on conv/deconv weights, zero biases, norm
    layers to weight 1 and bias 0 (Linear layers untouched)."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
    for m in module.modules():
        if isinstance(m, _CONV_TYPES):
            init_conv(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, _NORM_TYPES) and getattr(m, "weight", None) is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module


def init_pose_weights(module: nn.Module, std: float = 0.001) -> nn.Module:
    """The official pose-network initialisation, applied to every submodule in place:
    Conv/ConvTranspose weights ~ N(0, std²), their biases 0; BatchNorm/GroupNorm/LayerNorm
    weight 1, bias 0; Linear layers are left alone. Returns ``module``."""
    std = check_number(std, "std", low=0.0, low_inclusive=False)
    return _init_layers(module, lambda w: nn.init.normal_(w, mean=0.0, std=std))


def init_kaiming(module: nn.Module) -> nn.Module:
    """He initialisation for training from scratch, in place: Conv weights
    ``kaiming_normal_(mode='fan_out', nonlinearity='relu')``, biases 0; norm layers (1, 0).
    Returns ``module``."""
    return _init_layers(module, lambda w: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"))


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``module`` (shared tensors counted once); with
    ``trainable_only`` only those with ``requires_grad``."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
