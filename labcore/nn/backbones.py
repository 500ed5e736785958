"""Small backbones for pose networks: ResNet, SimpleBaseline and a miniature HRNet.

Every backbone maps ``x (N, in_channels, H, W) -> (N, out_channels, H/stride, W/stride)``
and has the attributes ``in_channels``, ``out_channels``, ``stride`` and
``size_divisor`` (H and W must be multiples of it, so that the output is *exactly*
``H/stride × W/stride`` and heatmap pixels line up with input pixels; anything else is a
``ValueError`` that names the sizes). A backbone carries no keypoint head: the methods add
their own (a 1×1 conv for heatmaps, linear layers for SimCC, ...).

The defaults are small so that a batch of 32 images of 64×64 trains at a useful speed on
2 CPU cores. The times below are forward + backward of a batch of 32 with ``.sum()`` as the
loss, train mode, float32, torch 2.13, 2 threads on a 2-core AMD EPYC virtual machine,
best of 15 runs after warm-up (the machine was shared, so medians were noisier).

All trunks are initialised for training from scratch (He/Kaiming, fan-out; BN 1/0); the
SimpleBaseline upsampling stack gets the official pose initialisation N(0, 0.001²)
(:func:`labcore.nn.blocks.init_pose_weights`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from labcore.checks import check_choice, check_int
from labcore.nn.blocks import (
    BasicBlock,
    Bottleneck,
    check_input,
    conv_bn_relu,
    deconv_stack,
    init_kaiming,
    init_pose_weights,
)

__all__ = ["ResNet", "SimpleBaseline", "HRNetLite", "BACKBONES", "build_backbone"]


def _int_tuple(
    value: object, name: str, *, low: int = 1, min_len: int = 1, max_len: int | None = None
) -> tuple[int, ...]:
    """A sequence of ints ``>= low`` with a length in ``[min_len, max_len]``, as a tuple."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name}: expected a sequence of ints, got {type(value).__name__}")
    if len(value) < min_len or (max_len is not None and len(value) > max_len):
        want = f"{min_len}" if max_len == min_len else (
            f"{min_len} to {max_len}" if max_len is not None else f"at least {min_len}"
        )
        raise ValueError(f"{name}: expected {want} entries, got {len(value)}: {tuple(value)!r}")
    return tuple(check_int(v, f"{name}[{i}]", low=low) for i, v in enumerate(value))


_BLOCKS: dict[str, type[nn.Module]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(nn.Module):
    """A ResNet trunk (He et al. 2016) without the classifier.

    Layout: stem ``Conv 7×7/2 (stem_channels) → BN → ReLU → MaxPool 3×3/2`` (stride 4; the
    torchvision / SimpleBaseline / EventHPE stem, not the 3×3-pair "deep stem"), then
    ``len(layers)`` stages; stage ``i`` holds ``layers[i]`` residual blocks of output width
    ``widths[i]`` and stride 1 for the first stage, 2 for the others.

    With four stages the stage maps have strides 4, 8, 16, 32 and
    ``forward(x) (N, in_channels, H, W) -> (N, widths[-1], H/32, W/32)``.
    ``forward_stages(x)`` (or ``return_stages=True``) returns the list of all stage maps.

    ``widths`` are the *output* widths of each stage for both block types; a bottleneck's
    inner width is ``widths[i] // 4``. ResNet-50 is
    ``ResNet(block='bottleneck', layers=(3, 4, 6, 3), widths=(256, 512, 1024, 2048),
    stem_channels=64)`` (23,508,032 parameters, torchvision's count without ``fc``), and
    ResNet-18 is ``ResNet(layers=(2, 2, 2, 2), widths=(64, 128, 256, 512),
    stem_channels=64)`` (11,176,512).

    Default config (basic, (2, 2, 2, 2), (32, 64, 128, 256), stem 32): **2,798,880
    parameters**; forward+backward of a batch of 32 on 2 CPU cores ≈ 0.035 s at 64×64,
    ≈ 0.13 s at 128×128 (``in_channels=10``: ≈ 0.045 s at 64×64).
    ``in_channels=10`` (EventHPE's 8 event + 2 flow channels, METHODS.md §5.3) changes
    only the stem conv. Initialisation: Kaiming (fan-out), BN (1, 0).
    """

    def __init__(
        self,
        in_channels: int = 3,
        block: str = "basic",
        layers: Sequence[int] = (2, 2, 2, 2),
        widths: Sequence[int] = (32, 64, 128, 256),
        stem_channels: int = 32,
        return_stages: bool = False,
    ) -> None:
        super().__init__()
        in_channels = check_int(in_channels, "in_channels", low=1)
        check_choice(block, "block", tuple(_BLOCKS))
        layers = _int_tuple(layers, "layers")
        widths = _int_tuple(widths, "widths")
        if len(layers) != len(widths):
            raise ValueError(
                f"layers and widths: expected the same number of stages, got "
                f"{len(layers)} layers {layers} and {len(widths)} widths {widths}"
            )
        stem_channels = check_int(stem_channels, "stem_channels", low=1)
        if block == "bottleneck":
            for i, w in enumerate(widths):
                if w % 4:
                    raise ValueError(
                        f"widths[{i}]: a bottleneck stage's width must be a multiple of 4 "
                        f"(its inner width is width // 4), got {w}"
                    )
        self.in_channels = in_channels
        self.block = block
        self.layers = layers
        self.widths = widths
        self.return_stages = bool(return_stages)
        self.stage_strides = tuple(4 * 2**i for i in range(len(widths)))
        self.stride = self.stage_strides[-1]
        self.size_divisor = self.stride
        self.out_channels = widths[-1]

        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(stem_channels),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        block_cls = _BLOCKS[block]
        stages = []
        prev = stem_channels
        for i, (n, w) in enumerate(zip(layers, widths)):
            stride = 1 if i == 0 else 2
            blocks = [block_cls(prev, w, stride)] + [block_cls(w, w) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            prev = w
        self.stages = nn.ModuleList(stages)
        init_kaiming(self)

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """All stage maps: ``[(N, widths[i], H/stride_i, W/stride_i)]`` with
        ``stride_i = 4·2^i`` (4, 8, 16, 32 for four stages)."""
        check_input(x, self.in_channels, self.size_divisor)
        x = self.stem(x)
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """``(N, in_channels, H, W) -> (N, out_channels, H/stride, W/stride)``, or the list
        of :meth:`forward_stages` when ``return_stages`` is set."""
        stages = self.forward_stages(x)
        return stages if self.return_stages else stages[-1]


class SimpleBaseline(nn.Module):
    """SimpleBaseline's backbone (Xiao et al. 2018, ``pose_resnet.py``): a :class:`ResNet`
    followed by :func:`~labcore.nn.blocks.deconv_stack` — each deconv doubles H and W.

    ``(N, in_channels, H, W) -> (N, C, H/s, W/s)`` with ``s = 32 / 2^len(deconv_channels)``
    (4 with the default three deconvs) and ``C = deconv_channels[-1]``.
    ``deconv_channels=()`` is the upsample-free variant of SimCC
    (``pose_resnet_upfree.py``): the ResNet's stride-32 map, ``C = widths[-1]``.

    No keypoint head: a method adds its 1×1 conv (heatmaps) or SimCC's linear layers.
    Initialisation: Kaiming on the ResNet, N(0, 0.001²) on the deconvs (official pose init).

    Default config (basic ResNet (2, 2, 2, 2) × (32, 64, 128, 256), stem 32, deconvs
    (128, 128, 128) with 4×4 kernels): **3,848,224 parameters**; forward+backward of a
    batch of 32 on 2 CPU cores ≈ 0.06 s at 64×64, ≈ 0.18 s at 128×128. The upsample-free
    variant has the ResNet's 2,798,880 (≈ 0.04 s / 0.13 s).
    """

    def __init__(
        self,
        in_channels: int = 3,
        layers: Sequence[int] = (2, 2, 2, 2),
        widths: Sequence[int] = (32, 64, 128, 256),
        deconv_channels: Sequence[int] = (128, 128, 128),
        block: str = "basic",
        deconv_kernel: int = 4,
        stem_channels: int = 32,
    ) -> None:
        super().__init__()
        self.backbone = ResNet(in_channels, block=block, layers=layers, widths=widths,
                               stem_channels=stem_channels)
        deconv_channels = _int_tuple(deconv_channels, "deconv_channels", min_len=0)
        max_deconvs = self.backbone.stride.bit_length() - 1
        if len(deconv_channels) > max_deconvs:
            raise ValueError(
                f"deconv_channels: at most {max_deconvs} deconvs fit a stride-"
                f"{self.backbone.stride} ResNet (output stride 1), got {len(deconv_channels)}"
            )
        self.deconv = deconv_stack(self.backbone.out_channels, deconv_channels, deconv_kernel)
        init_pose_weights(self.deconv)
        self.deconv_channels = deconv_channels
        self.in_channels = self.backbone.in_channels
        self.out_channels = deconv_channels[-1] if deconv_channels else self.backbone.out_channels
        self.stride = self.backbone.stride // 2 ** len(deconv_channels)
        self.size_divisor = self.backbone.size_divisor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_channels, H, W) -> (N, out_channels, H/stride, W/stride)``."""
        return self.deconv(self.backbone(x))


class _HRModule(nn.Module):
    """One HRNet module on ``len(widths)`` parallel branches: ``blocks`` BasicBlocks per
    branch, then the exchange unit — output ``i`` is ``ReLU(Σ_j f_ij(x_j))`` where
    ``f_ii`` is the identity, ``f_ij`` for a lower-resolution ``j > i`` is 1×1 conv + BN
    + nearest upsampling by ``2^(j-i)``, and for a higher-resolution ``j < i`` it is
    ``i - j`` strided 3×3 convs (BN + ReLU between them, BN only after the last).

    ``outputs`` (default all) is how many branches the exchange produces: 1 gives only the
    highest resolution, as HRNet's last module does (``multi_scale_output=False``)."""

    def __init__(self, widths: tuple[int, ...], blocks: int, outputs: int | None = None) -> None:
        super().__init__()
        outputs = len(widths) if outputs is None else outputs
        self.branches = nn.ModuleList(
            nn.Sequential(*[BasicBlock(w, w) for _ in range(blocks)]) for w in widths
        )
        fuse = []
        for i, wi in enumerate(widths[:outputs]):
            row = []
            for j, wj in enumerate(widths):
                if j == i:
                    row.append(nn.Identity())
                elif j > i:
                    row.append(nn.Sequential(
                        nn.Conv2d(wj, wi, 1, bias=False),
                        nn.BatchNorm2d(wi),
                        nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
                    ))
                else:
                    steps: list[nn.Module] = []
                    for k in range(i - j):
                        last = k == i - j - 1
                        out = wi if last else wj
                        steps += [nn.Conv2d(wj, out, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(out)]
                        if not last:
                            steps.append(nn.ReLU(inplace=True))
                    row.append(nn.Sequential(*steps))
            fuse.append(nn.ModuleList(row))
        self.fuse = nn.ModuleList(fuse)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for row in self.fuse:
            total = row[0](xs[0])
            for f, x in zip(row[1:], xs[1:]):
                total = total + f(x)
            out.append(self.relu(total))
        return out


class HRNetLite(nn.Module):
    """HRNet in miniature (Sun et al. 2019): parallel branches at strides 4, 8, 16 (, 32)
    that keep a high-resolution representation and repeatedly exchange information.

    Layout:

    * stem: two ``Conv 3×3/2 → BN → ReLU`` (``stem_channels``) → stride 4;
    * stage 1: ``blocks`` BasicBlocks at stride 4, ``stem_channels → widths[0]``
      (HRNet uses Bottlenecks here; BasicBlocks keep it small);
    * for each further branch ``k``: a transition — the new branch is
      ``Conv 3×3/2 → BN → ReLU`` (``widths[k-1] → widths[k]``) from the lowest-resolution
      branch — then a stage of ``modules_per_stage`` HR modules over branches ``0..k``
      (each: ``blocks`` BasicBlocks per branch, then the exchange unit described in
      :class:`_HRModule`: every branch receives the sum of all branches resampled to its
      resolution, followed by ReLU). With ``output='highest'`` the very last exchange
      only feeds the stride-4 branch (HRNet's ``multi_scale_output=False``), so that no
      parameter goes unused.

    ``len(widths)`` is the number of branches (2, 3 or 4). Output:

    * ``output='highest'``: the stride-4 branch, ``(N, widths[0], H/4, W/4)`` — the
      HRNet-W32 pose-network style;
    * ``output='concat'``: every branch upsampled (bilinear, ``align_corners=False``) to
      stride 4 and concatenated, ``(N, sum(widths), H/4, W/4)`` — HRNetV2.

    H and W must be multiples of ``size_divisor = 4·2^(len(widths)-1)`` so that the
    branches align exactly. Initialisation: Kaiming (fan-out), BN (1, 0).

    Default config (widths (16, 32, 64), blocks 2, 1 module per stage, stem 32):
    **293,344 parameters** (``output='concat'``: 330,368); forward+backward of a batch of
    32 on 2 CPU cores ≈ 0.03 s at 64×64, ≈ 0.12 s at 128×128 (either output).
    """

    def __init__(
        self,
        in_channels: int = 3,
        widths: Sequence[int] = (16, 32, 64),
        blocks: int = 2,
        modules_per_stage: int = 1,
        output: str = "highest",
        stem_channels: int = 32,
    ) -> None:
        super().__init__()
        in_channels = check_int(in_channels, "in_channels", low=1)
        widths = _int_tuple(widths, "widths", min_len=2, max_len=4)
        blocks = check_int(blocks, "blocks", low=1)
        modules_per_stage = check_int(modules_per_stage, "modules_per_stage", low=1)
        check_choice(output, "output", ("highest", "concat"))
        stem_channels = check_int(stem_channels, "stem_channels", low=1)
        self.in_channels = in_channels
        self.widths = widths
        self.output = output
        self.stride = 4
        self.branch_strides = tuple(4 * 2**i for i in range(len(widths)))
        self.size_divisor = self.branch_strides[-1]
        self.out_channels = widths[0] if output == "highest" else sum(widths)

        self.stem = nn.Sequential(
            conv_bn_relu(in_channels, stem_channels, 3, stride=2),
            conv_bn_relu(stem_channels, stem_channels, 3, stride=2),
        )
        self.stage1 = nn.Sequential(
            BasicBlock(stem_channels, widths[0]),
            *[BasicBlock(widths[0], widths[0]) for _ in range(blocks - 1)],
        )
        self.transitions = nn.ModuleList(
            conv_bn_relu(widths[k - 1], widths[k], 3, stride=2) for k in range(1, len(widths))
        )
        stages = []
        for k in range(1, len(widths)):
            mods = [_HRModule(widths[: k + 1], blocks) for _ in range(modules_per_stage)]
            if output == "highest" and k == len(widths) - 1:
                mods[-1] = _HRModule(widths, blocks, outputs=1)
            stages.append(nn.Sequential(*mods))
        self.stages = nn.ModuleList(stages)
        init_kaiming(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_channels, H, W) -> (N, out_channels, H/4, W/4)``."""
        check_input(x, self.in_channels, self.size_divisor)
        xs = [self.stage1(self.stem(x))]
        for transition, stage in zip(self.transitions, self.stages):
            xs = stage([*xs, transition(xs[-1])])
        if self.output == "highest":
            return xs[0]
        size = xs[0].shape[-2:]
        ups = [xs[0]] + [
            F.interpolate(y, size=size, mode="bilinear", align_corners=False) for y in xs[1:]
        ]
        return torch.cat(ups, dim=1)


BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "resnet": ResNet,
    "simplebaseline": SimpleBaseline,
    "hrnet_lite": HRNetLite,
}


def build_backbone(name: str, **cfg: object) -> nn.Module:
    """Build a backbone from :data:`BACKBONES` by name, e.g.
    ``build_backbone('hrnet_lite', widths=(16, 32), in_channels=10)``.

    An unknown name raises ``ValueError`` listing the known ones; an unknown option raises
    ``TypeError`` listing the options the backbone takes."""
    if not isinstance(name, str):
        raise TypeError(f"name: expected a backbone name (str), got {type(name).__name__}")
    if name not in BACKBONES:
        raise ValueError(f"name: unknown backbone {name!r}; known: {sorted(BACKBONES)}")
    cls = BACKBONES[name]
    params = inspect.signature(cls).parameters
    unknown = sorted(set(cfg) - set(params))
    if unknown:
        raise TypeError(
            f"build_backbone({name!r}): unknown option(s) {unknown}; options: {list(params)}"
        )
    return cls(**cfg)
