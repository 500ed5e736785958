"""Floor 2 — neural-network building blocks and backbones.

* :mod:`labcore.nn.blocks` — ``conv_bn_relu``, ``BasicBlock``, ``Bottleneck``,
  ``deconv_stack``, ``init_pose_weights``, ``init_kaiming``, ``count_parameters``.
* :mod:`labcore.nn.backbones` — ``ResNet``, ``SimpleBaseline``, ``HRNetLite`` and the
  ``BACKBONES`` registry with ``build_backbone(name, **cfg)``.

Every backbone maps ``(N, in_channels, H, W) -> (N, out_channels, H/stride, W/stride)``.
"""

from labcore.nn.backbones import BACKBONES, HRNetLite, ResNet, SimpleBaseline, build_backbone
from labcore.nn.blocks import (
    BasicBlock,
    Bottleneck,
    check_input,
    conv_bn_relu,
    count_parameters,
    deconv_config,
    deconv_stack,
    init_kaiming,
    init_pose_weights,
)

__all__ = [
    "BACKBONES",
    "BasicBlock",
    "Bottleneck",
    "HRNetLite",
    "ResNet",
    "SimpleBaseline",
    "build_backbone",
    "check_input",
    "conv_bn_relu",
    "count_parameters",
    "deconv_config",
    "deconv_stack",
    "init_kaiming",
    "init_pose_weights",
]
