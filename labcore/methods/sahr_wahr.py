"""SAHR + WAHR — scale- and weight-adaptive heatmap regression for bottom-up pose.

Luo et al., *Rethinking the Heatmap Regression for Bottom-up Human Pose Estimation*, CVPR
2021 (arXiv 2012.15175); official code ``greatlog/SWAHR-HumanPose``, a fork of
HigherHRNet (Cheng et al. 2020). Read top to bottom:

1. **targets** — HigherHRNet's bottom-up heatmaps (every person of an image in one map per
   joint, merged by max; :func:`labcore.heatmaps.higherhrnet_heatmaps`), the joint indices
   the associative-embedding loss reads, the ignore mask (:class:`BottomUpTargets`);
2. **SAHR** — :func:`sahr_target`: the network predicts a scale map ``α`` per joint and the
   target becomes ``H^(1+α)``, a Gaussian of σ₀/√(1+α), written as its second-order Taylor
   expansion in ``α`` (what the official loss computes); :func:`scale_regularizer` keeps
   ``α`` small;
3. **WAHR** — :func:`wahr_weight`: ``W = |1-P|·H^γ + |P|·(1-H^γ)`` (γ = 0.01) weights every
   pixel by how wrong the prediction is, on the foreground where ``H^γ ≈ 1`` and on the
   background where ``H^γ = 0`` — a focal-style answer to the foreground/background
   imbalance of sparse heatmaps. Not detached: gradients flow through ``W``;
4. :func:`sahr_wahr_loss` — per-sample ``mean((P - H̃)² · W · M)``, each part switchable
   (both off: HigherHRNet's plain MSE); :func:`ae_loss` — associative embedding's push/pull
   (Newell et al. 2017), one tag per joint;
5. **the network** — :class:`BottomUpNet`: a backbone (HRNet-lite), a stride-4 stage
   (heatmaps + tags + scale), and HigherHRNet's deconvolution stage to stride 2 (heatmaps +
   scale). :class:`ScaleBranch` is SWAHR's ``Conv1×1 → BN → ReLU → depthwise 9×9`` with the
   last conv initialised to zero (``α = 0`` at the start); the scale maps are used in the
   loss only, never at test time;
6. **decoding** — HigherHRNet's ``HeatmapParser``: stage heatmaps averaged at the finest
   resolution and projected to the input size, max-pool NMS, top-k per joint, greedy
   joint-by-joint matching by tag distance (Hungarian assignment), the quarter-pixel
   ``adjust`` and the ``refine`` step that fills missing joints; then COCO results.

Conventions: keypoints in **input-image** pixels (x right, y down, integer at pixel
centres), people padded to ``(N, P, K, 2)`` with ``visible (N, P, K)``; heatmap coordinates
are ``input / stride`` (HigherHRNet's affine to the output size), so a keypoint at input
``x`` sits at heatmap ``x·w/W`` and the target's centre is ``int()`` of that. Decoding
adds the official half-pixel offset (``+0.5``, the middle of the truncated cell) and the
quarter-pixel shift toward the higher neighbour. ``α`` is the official parameterisation:
the SWAHR authors' answer in their issue #4 — "the scale branch regresses α = 1/s − 1" — so
``H̃ ≈ H^(1/s)`` and ``σ_eff = σ₀·√s``.

Official defaults kept as defaults: σ = 2 at every resolution, γ = 0.01, AE type ``exp``
with push/pull factors 0.001 on stage 1 only, detection threshold 0.12 (SWAHR's configs),
tag threshold 1, NMS kernel 5, at most 30 people, ``PROJECT2IMAGE``, adjust and refine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn

from labcore.checks import (
    as_float,
    as_floats,
    as_tensor,
    check_choice,
    check_int,
    check_number,
    check_size2,
)
from labcore.heatmaps import higherhrnet_heatmaps
from labcore.nn import BasicBlock, init_pose_weights

__all__ = [
    "SIGMA",
    "GAMMA",
    "BottomUpTargets",
    "joint_indices",
    "sahr_target",
    "sahr_exact",
    "effective_sigma",
    "wahr_weight",
    "mask_alpha",
    "sahr_wahr_loss",
    "scale_regularizer",
    "ae_loss",
    "ScaleBranch",
    "BottomUpNet",
    "bottom_up_loss",
    "GroupingParams",
    "aggregate_outputs",
    "group_people",
    "decode_people",
    "coco_results",
    "oracle_outputs",
]

#: HigherHRNet/SWAHR ``DATASET.SIGMA`` (heatmap pixels, both resolutions).
SIGMA = 2.0
#: WAHR's exponent on the ground-truth heatmap (``loss.py``: ``gt ** 0.01``).
GAMMA = 0.01
#: COCO order in which HigherHRNet groups joints: head, shoulders, hips, then the limbs
#: outward (``group.py::Params.joint_order``): nose, eyes, ears, shoulders, hips, elbows,
#: knees, wrists, ankles.
COCO_JOINT_ORDER = (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16)


# ------------------------------------------------------------------------------ 1. targets


def _people(keypoints: Any, visible: Any) -> tuple[torch.Tensor, torch.Tensor]:
    dims: dict[str, int] = {}
    kp = as_tensor(keypoints, "keypoints", shape=("N", "P", "K", 2), dims=dims, allow_empty=True)
    if kp.shape[0] == 0 or kp.shape[2] == 0:
        raise ValueError(f"keypoints: expected a non-empty (N, P, K, 2) batch, got {tuple(kp.shape)}")
    if visible is None:
        vis = torch.ones(kp.shape[:3], device=kp.device)
    else:
        vis = as_tensor(visible, "visible", shape=("N", "P", "K"), dims=dims, allow_empty=True,
                        device=kp.device)
    return kp, (vis > 0).to(torch.float32)


def joint_indices(keypoints: Any, visible: Any, heatmap_size: Any) -> torch.Tensor:
    """HigherHRNet's ``JointsGenerator``: where the AE loss reads each person's tags.

    Args:
        keypoints: ``(N, P, K, 2)`` in **heatmap** pixels.
        visible: ``(N, P, K)`` (> 0: labelled) or ``None``.
        heatmap_size: ``(w, h)``.

    Returns:
        ``(N, P, K, 2)`` int64: ``[k·h·w + int(y)·w + int(x), 1]`` for a labelled joint whose
        truncated position lies on the map, ``[0, 0]`` otherwise.
    """
    kp, vis = _people(keypoints, visible)
    w, h = check_size2(heatmap_size, "heatmap_size")
    c = torch.trunc(kp).to(torch.int64)
    on = (vis > 0) & (c[..., 0] >= 0) & (c[..., 1] >= 0) & (c[..., 0] < w) & (c[..., 1] < h)
    k = torch.arange(kp.shape[2], device=kp.device)
    flat = k * (h * w) + c[..., 1] * w + c[..., 0]
    return torch.stack([flat * on, on.to(torch.int64)], -1)


class BottomUpTargets:
    """HigherHRNet's training targets at each output resolution.

    ``encode(keypoints (N, P, K, 2) input pixels, visible (N, P, K), ignore=None)`` →
    ``{'heatmaps': [(N, K, h_s, w_s)], 'joints': [(N, P, K, 2) int64], 'masks': [(N, h_s,
    w_s)]}``, one entry per resolution ``s``. Heatmaps: :func:`labcore.heatmaps.
    higherhrnet_heatmaps` (centre ``int(x·w/W)``, kernel ``6σ+3``, people merged by max).
    Joints: :func:`joint_indices`. Masks: 1 where the loss counts; ``ignore (N, H, W)``
    (input pixels, truthy = ignore, e.g. COCO crowd regions) is area-resized to each map
    and thresholded at 0.5, as HigherHRNet resizes its mask.

    Args:
        input_size: ``(W, H)`` of the network input.
        heatmap_sizes: ``(w, h)`` per output stage (default strides 4 and 2, HigherHRNet).
        sigma: σ in heatmap pixels at every resolution (official 2).
    """

    def __init__(self, input_size: Any = (128, 128), heatmap_sizes: Sequence[Any] | None = None,
                 sigma: float = SIGMA) -> None:
        self.input_size = check_size2(input_size, "input_size")
        W, H = self.input_size
        if heatmap_sizes is None:
            heatmap_sizes = [(W // 4, H // 4), (W // 2, H // 2)]
        if isinstance(heatmap_sizes, (int, np.integer)) or len(heatmap_sizes) == 0:
            raise ValueError(f"heatmap_sizes: expected a non-empty list of (w, h), got {heatmap_sizes!r}")
        self.heatmap_sizes = [check_size2(s, f"heatmap_sizes[{i}]") for i, s in enumerate(heatmap_sizes)]
        self.sigma = check_number(sigma, "sigma", low=0.0, low_inclusive=False)

    def __repr__(self) -> str:
        return (f"BottomUpTargets(input_size={self.input_size}, heatmap_sizes={self.heatmap_sizes}, "
                f"sigma={self.sigma:g})")

    def scale(self, i: int) -> tuple[float, float]:
        """``(w/W, h/H)``: input pixels → heatmap pixels of stage ``i``."""
        w, h = self.heatmap_sizes[i]
        return w / self.input_size[0], h / self.input_size[1]

    def encode(self, keypoints: Any, visible: Any = None, ignore: Any = None) -> dict[str, list[torch.Tensor]]:
        kp, vis = _people(keypoints, visible)
        ign = None
        if ignore is not None:
            W, H = self.input_size
            ign = as_tensor(ignore, "ignore", shape=(kp.shape[0], H, W), device=kp.device)
        out: dict[str, list[torch.Tensor]] = {"heatmaps": [], "joints": [], "masks": []}
        for i, (w, h) in enumerate(self.heatmap_sizes):
            sx, sy = self.scale(i)
            k = kp * kp.new_tensor([sx, sy])
            out["heatmaps"].append(higherhrnet_heatmaps(k, vis, (w, h), self.sigma))
            out["joints"].append(joint_indices(k, vis, (w, h)))
            if ign is None:
                mask = torch.ones(kp.shape[0], h, w, device=kp.device)
            else:
                small = F.interpolate((ign > 0).float()[:, None], size=(h, w), mode="area")[:, 0]
                mask = (small < 0.5).float()
            out["masks"].append(mask)
        return out


# ------------------------------------------------------------------------------ 2. SAHR


def _log_gt(gt: torch.Tensor) -> torch.Tensor:
    """``ln H`` where ``H > 0``, else 0 (the official ``log(where(gt > 0, gt, gt + 1))``)."""
    return torch.log(torch.where(gt > 0, gt, torch.ones_like(gt)))


def _gt_and_alpha(gt: Any, alpha: Any, dims: dict) -> tuple[torch.Tensor, torch.Tensor]:
    g, a = as_floats((gt, "gt", ("N", "K", "h", "w")), (alpha, "alpha", ("N", "K", "h", "w")), dims=dims)
    if bool((g < 0).any()):
        raise ValueError(f"gt: expected a heatmap >= 0 (SAHR takes its logarithm), got min {float(g.min()):.4g}")
    return g, a


def sahr_target(gt: Any, alpha: Any) -> torch.Tensor:
    """SAHR's scale-adapted target, the official second-order Taylor form of ``gt^(1+α)``.

    ``H̃ = H + H·L·α + ½·H·L²·α²`` with ``L = ln H`` where ``H > 0`` (0 elsewhere, so the
    support of ``H`` is unchanged). For ``H = exp(-d²/2σ₀²)``, ``H^(1+α)`` is a Gaussian of
    ``σ₀/√(1+α)``: ``α > 0`` sharpens, ``α < 0`` widens. The expansion is accurate for
    small ``|α|`` (max error ≈ 0.002 at ``|α| = 0.2``, 0.045 at ``α = -0.5``; see
    :func:`sahr_exact`), which the scale regulariser encourages.

    Args:
        gt: ``(N, K, h, w)`` ground-truth heatmaps, values >= 0.
        alpha: ``(N, K, h, w)`` predicted scale maps (gradients flow into it).

    Returns:
        ``(N, K, h, w)``.
    """
    g, a = _gt_and_alpha(gt, alpha, {})
    log = _log_gt(g)
    return g + g * log * a + 0.5 * g * log**2 * a**2


def sahr_exact(gt: Any, alpha: Any) -> torch.Tensor:
    """The exact power ``H^(1+α)`` on ``H > 0`` (0 elsewhere) — what :func:`sahr_target`
    approximates; for figures and tests (``1 + α`` must stay > 0)."""
    g, a = _gt_and_alpha(gt, alpha, {})
    if bool((a <= -1).any()):
        raise ValueError("alpha: the exact power needs alpha > -1")
    return torch.where(g > 0, torch.exp((1 + a) * _log_gt(g)), torch.zeros_like(g))


def effective_sigma(sigma0: float, alpha: Any) -> torch.Tensor:
    """σ of ``H^(1+α)`` for a Gaussian ``H`` of σ₀: ``σ₀/√(1+α)``; in the paper's scale
    ``s = 1/(1+α)`` (authors' issue #4) this is ``σ₀·√s``."""
    sigma0 = check_number(sigma0, "sigma0", low=0.0, low_inclusive=False)
    a = as_float(alpha, "alpha")
    if bool((a <= -1).any()):
        raise ValueError("alpha: expected alpha > -1")
    return sigma0 / torch.sqrt(1 + a)


def mask_alpha(alpha: Any, gt: Any) -> torch.Tensor:
    """``α · [H > 0]`` — the official ``MultiLossFactory`` zeroes the scale map off each
    Gaussian's support before both the SAHR target and the regulariser."""
    g, a = _gt_and_alpha(gt, alpha, {})
    return a * (g > 0).to(a.dtype)


# ------------------------------------------------------------------------------ 3. WAHR


def wahr_weight(pred: Any, gt: Any, gamma: float = GAMMA) -> torch.Tensor:
    """WAHR's weight ``W = |1-P|·H^γ + |P|·(1-H^γ)`` on the **original** ground truth.

    ``H^γ`` with γ = 0.01 is ≥ 0.885 on a σ = 2 Gaussian's whole support and 0 off it, so
    ``W ≈ |1-P|`` on the foreground (large while the prediction is still low) and ``|P|``
    on the background (zero once the prediction is zero): easy background pixels, the vast
    majority, stop counting. Not detached — the official loss back-propagates through W.

    Args:
        pred: ``(N, K, h, w)`` predicted heatmaps.
        gt: ``(N, K, h, w)`` ground truth, >= 0.
        gamma: the exponent, > 0 (official 0.01). Smaller → a sharper fore/background split.

    Returns:
        ``(N, K, h, w)``.
    """
    gamma = check_number(gamma, "gamma", low=0.0, low_inclusive=False)
    if not math.isfinite(gamma):
        raise ValueError(f"gamma: expected a finite exponent > 0, got {gamma}")
    p, g = as_floats((pred, "pred", ("N", "K", "h", "w")), (gt, "gt", ("N", "K", "h", "w")))
    if bool((g < 0).any()):
        raise ValueError(f"gt: expected a heatmap >= 0, got min {float(g.min()):.4g}")
    hg = g**gamma
    return (1 - p).abs() * hg + p.abs() * (1 - hg)


# ------------------------------------------------------------------------------ 4. losses


def _mask(mask: Any, like: torch.Tensor, name: str = "mask") -> torch.Tensor:
    if mask is None:
        return torch.ones(like.shape[0], like.shape[2], like.shape[3], dtype=like.dtype, device=like.device)
    n, _, h, w = like.shape
    if isinstance(mask, (torch.Tensor, np.ndarray)) and mask.dtype in (torch.bool, np.bool_):
        mask = mask.to(like.dtype) if isinstance(mask, torch.Tensor) else mask.astype(np.float32)
    return as_tensor(mask, name, shape=(n, h, w), dtype=like.dtype, device=like.device)


def sahr_wahr_loss(pred: Any, gt: Any, alpha: Any = None, mask: Any = None, sahr: bool = True,
                   wahr: bool = True, gamma: float = GAMMA) -> torch.Tensor:
    """The official ``HeatmapLoss``: per sample ``mean_{K,h,w}((P - H̃)² · W · M)``.

    ``H̃ = sahr_target(H, α·[H>0])`` when ``sahr`` else ``H``; ``W = wahr_weight(P, H, γ)``
    when ``wahr`` else 1; ``M`` the ignore mask. With both off it is HigherHRNet's plain
    heatmap MSE (no ½). The official trainer then takes ``.mean()`` over the batch.

    Args:
        pred: ``(N, K, h, w)`` predicted heatmaps.
        gt: ``(N, K, h, w)`` ground truth (:class:`BottomUpTargets`), >= 0.
        alpha: ``(N, K, h, w)`` scale maps; required when ``sahr``.
        mask: ``(N, h, w)``, 1 = counted (``None``: all ones).

    Returns:
        ``(N,)`` per-sample losses.
    """
    dims: dict[str, int] = {}
    if sahr:
        if alpha is None:
            raise ValueError("alpha: required when sahr=True (the scale maps of the network)")
        p, g, a = as_floats((pred, "pred", ("N", "K", "h", "w")), (gt, "gt", ("N", "K", "h", "w")),
                            (alpha, "alpha", ("N", "K", "h", "w")), dims=dims)
    else:
        p, g = as_floats((pred, "pred", ("N", "K", "h", "w")), (gt, "gt", ("N", "K", "h", "w")), dims=dims)
    if p.shape[0] == 0:
        raise ValueError(f"pred: expected a non-empty batch, got shape {tuple(p.shape)}")
    if bool((g < 0).any()):
        raise ValueError(f"gt: expected a heatmap >= 0, got min {float(g.min()):.4g}")
    gamma = check_number(gamma, "gamma", low=0.0, low_inclusive=False)
    m = _mask(mask, p)
    target = sahr_target(g, a * (g > 0).to(a.dtype)) if sahr else g
    w = wahr_weight(p, g, gamma) if wahr else 1.0
    return ((p - target) ** 2 * w * m[:, None]).mean(dim=(1, 2, 3))


def scale_regularizer(alpha: Any, mask: Any = None, gt: Any = None) -> torch.Tensor:
    """The official ``ScaleLoss``: per sample ``mean_{K,h,w}(α² · M)``.

    The official trainer passes ``α·[H>0]``; give ``gt`` to apply that masking here (else
    ``alpha`` is taken as already masked, see :func:`mask_alpha`). Returns ``(N,)``."""
    if gt is not None:
        alpha = mask_alpha(alpha, gt)
    a = as_float(alpha, "alpha", ("N", "K", "h", "w"))
    m = _mask(mask, a)
    return (a**2 * m[:, None]).mean(dim=(1, 2, 3))


AE_TYPES = ("exp", "max")


def ae_loss(tags: Any, joints: Any, loss_type: str = "exp") -> tuple[torch.Tensor, torch.Tensor]:
    """Associative embedding's grouping loss (Newell et al. 2017; HigherHRNet ``AELoss``).

    For each person ``p`` of an image, ``h_p`` = mean of its tags at its labelled joints;
    ``pull = mean_p mean_{joints of p}((tag - h_p)²)``; ``push`` over ordered pairs of
    distinct people: ``exp``: ``Σ exp(-(h_p - h_q)²) / (n(n-1)) · ½``, ``max``:
    ``Σ max(0, 1 - |h_p - h_q|) / (n(n-1)) · ½``. An image with one person has push 0; one
    with none has both 0.

    Args:
        tags: ``(N, K, h, w)`` (one tag per joint, TAG_PER_JOINT) or ``(N, K, h, w, D)``.
        joints: ``(N, P, K, 2)`` int64 from :func:`joint_indices` (flat index into
            ``K·h·w``, labelled flag).
        loss_type: ``'exp'`` (official config) or ``'max'``.

    Returns:
        ``(push (N,), pull (N,))``; the official trainer multiplies each by 0.001.
    """
    check_choice(loss_type, "loss_type", AE_TYPES)
    if not isinstance(tags, torch.Tensor):
        tags = as_tensor(tags, "tags")
    if tags.dim() == 4:
        tags = tags.unsqueeze(-1)
    t = as_tensor(tags, "tags", shape=("N", None, None, None, "D"), dtype=None)
    n, k, h, w, d = t.shape
    j = as_tensor(joints, "joints", shape=(n, "P", k, 2), dtype=torch.int64, device=t.device,
                  allow_empty=True)
    idx, on = j[..., 0], (j[..., 1] > 0)
    if bool(((idx < 0) | (idx >= k * h * w)).any()):
        raise ValueError(f"joints: flat indices must lie in [0, K·h·w = {k * h * w})")
    flat = t.reshape(n, k * h * w, d)
    p = idx.shape[1]
    picked = torch.gather(flat, 1, idx.reshape(n, -1, 1).expand(-1, -1, d)).reshape(n, p, k, d)
    onf = on.to(t.dtype).unsqueeze(-1)  # (N, P, K, 1)
    count = on.sum(-1)  # (N, P)
    present = count > 0
    mean = (picked * onf).sum(2) / count.clamp(min=1).unsqueeze(-1).to(t.dtype)  # (N, P, D)
    sq = ((picked - mean.unsqueeze(2)) ** 2 * onf).sum((2, 3)) / (count.clamp(min=1) * d).to(t.dtype)
    n_people = present.sum(-1)  # (N,)
    pull = (sq * present).sum(-1) / n_people.clamp(min=1).to(t.dtype)
    diff = mean.unsqueeze(2) - mean.unsqueeze(1)  # (N, P, P, D)
    pair = present.unsqueeze(2) & present.unsqueeze(1) & ~torch.eye(p, dtype=torch.bool, device=t.device)
    if loss_type == "exp":
        # Official: exp(-diff²) over the 1-D tags; with D > 1 the squared distance.
        val = torch.exp(-(diff**2).sum(-1))
    else:
        val = (1 - diff.abs().sum(-1)).clamp(min=0)
    npairs = (n_people * (n_people - 1)).to(t.dtype)
    push = (val * pair).sum((1, 2)) / npairs.clamp(min=1) * 0.5
    return push, pull


# ------------------------------------------------------------------------------ 5. the network


class ScaleBranch(nn.Sequential):
    """SWAHR's scale branch (``_make_conv_scale_layers``): ``Conv 1×1 (C→K) → BN → ReLU →
    depthwise Conv 9×9 (groups=K, padding 4)``, no final activation (α is unbounded); the
    last conv's weight and bias start at zero, so α = 0 and SAHR begins as plain MSE.
    ``(N, C, h, w) -> (N, K, h, w)``."""

    def __init__(self, in_channels: int, num_joints: int, kernel: int = 9) -> None:
        in_channels = check_int(in_channels, "in_channels", low=1)
        num_joints = check_int(num_joints, "num_joints", low=1)
        kernel = check_int(kernel, "kernel", low=1)
        if kernel % 2 == 0:
            raise ValueError(f"kernel: expected an odd size, got {kernel}")
        super().__init__(
            nn.Conv2d(in_channels, num_joints, 1),
            nn.BatchNorm2d(num_joints),
            nn.ReLU(inplace=True),
            nn.Conv2d(num_joints, num_joints, kernel, padding=kernel // 2, groups=num_joints),
        )
        nn.init.zeros_(self[-1].weight)
        nn.init.zeros_(self[-1].bias)


class BottomUpNet(nn.Module):
    """HigherHRNet in miniature with SWAHR's scale branches.

    * stage 1 (the backbone's stride-4 map ``x``): a 1×1 conv to ``K`` heatmaps + ``K``
      tags (one per joint, TAG_PER_JOINT), and a :class:`ScaleBranch` on ``x``;
    * stage 2 (``higher=True``): ``cat(x, heatmaps, tags)`` → ConvTranspose 4×4/2 → BN →
      ReLU → ``blocks`` BasicBlocks (official 4) → a 1×1 conv to ``K`` heatmaps, and a
      scale branch on the upsampled features.

    ``forward(images (N, 3, H, W))`` → ``{'heatmaps': [(N, K, H/4, W/4), (N, K, H/2, W/2)],
    'tags': (N, K, H/4, W/4), 'scales': [(N, K, ...), ...] or None}``. Output convs and the
    deconvolution are initialised N(0, 0.001²) (the official pose init); the backbone keeps
    its own.

    Args:
        backbone: a module mapping images to stride-4 features with ``out_channels``
            (default :class:`labcore.nn.HRNetLite` ``widths=(16, 32, 64)``).
        num_joints: ``K``.
        scale: build the scale branches (SAHR needs them; a baseline may skip them).
        higher: add HigherHRNet's stride-2 stage.
        deconv_channels, blocks: the stride-2 stage's width (official = the backbone's 32)
            and number of BasicBlocks.
    """

    def __init__(self, backbone: nn.Module | None = None, num_joints: int = 17, *, scale: bool = True,
                 higher: bool = True, deconv_channels: int | None = None, blocks: int = 1) -> None:
        super().__init__()
        if backbone is None:
            from labcore.nn import HRNetLite

            backbone = HRNetLite()
        if not isinstance(backbone, nn.Module) or not hasattr(backbone, "out_channels"):
            raise TypeError("backbone: expected an nn.Module with an out_channels attribute (stride-4 features)")
        self.backbone = backbone
        self.num_joints = k = check_int(num_joints, "num_joints", low=1)
        c = int(backbone.out_channels)
        self.has_scale, self.higher = bool(scale), bool(higher)
        self.final1 = nn.Conv2d(c, 2 * k, 1)
        init_pose_weights(self.final1)
        self.scale1 = ScaleBranch(c, k) if scale else None
        if higher:
            dc = check_int(deconv_channels if deconv_channels is not None else c, "deconv_channels", low=1)
            blocks = check_int(blocks, "blocks", low=0)
            deconv = nn.Sequential(nn.ConvTranspose2d(c + 2 * k, dc, 4, stride=2, padding=1, bias=False),
                                   nn.BatchNorm2d(dc), nn.ReLU(inplace=True))
            init_pose_weights(deconv)
            self.deconv = nn.Sequential(deconv, *[BasicBlock(dc, dc) for _ in range(blocks)])
            self.final2 = nn.Conv2d(dc, k, 1)
            init_pose_weights(self.final2)
            self.scale2 = ScaleBranch(dc, k) if scale else None

    @property
    def strides(self) -> tuple[int, ...]:
        return (4, 2) if self.higher else (4,)

    def forward(self, images: torch.Tensor) -> dict[str, Any]:
        x = self.backbone(images)
        y = self.final1(x)
        k = self.num_joints
        heatmaps, scales = [y[:, :k]], []
        if self.has_scale:
            scales.append(self.scale1(x))
        if self.higher:
            x = self.deconv(torch.cat([x, y], 1))
            heatmaps.append(self.final2(x))
            if self.has_scale:
                scales.append(self.scale2(x))
        return {"heatmaps": heatmaps, "tags": y[:, k:], "scales": scales if self.has_scale else None}


def bottom_up_loss(outputs: dict[str, Any], targets: dict[str, list[torch.Tensor]], *, sahr: bool = True,
                   wahr: bool = True, gamma: float = GAMMA, ae_factor: float = 1e-3,
                   scale_factor: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """The official trainer's total (``trainer.py``): over the stages, the heatmap loss
    (:func:`sahr_wahr_loss`) + the scale regulariser (when ``sahr``), plus push + pull on
    stage 1 times ``ae_factor``; every term averaged over the batch.

    Returns ``(loss, logs)`` with ``logs`` = ``heatmap``, ``scale``, ``push``, ``pull``."""
    n_out, n_tgt = len(outputs["heatmaps"]), len(targets["heatmaps"])
    if n_out != n_tgt or len(targets["masks"]) != n_tgt:
        raise ValueError(f"targets: {n_tgt} heatmap stages (and {len(targets['masks'])} masks) for a network "
                         f"with {n_out} output stages; build BottomUpTargets with one heatmap size per stage")
    hm_loss = scale_loss = 0.0
    for i, (pred, gt, mask) in enumerate(zip(outputs["heatmaps"], targets["heatmaps"], targets["masks"])):
        alpha = None
        if sahr:
            if outputs.get("scales") is None:
                raise ValueError("outputs: sahr=True needs a network built with scale=True")
            alpha = outputs["scales"][i] * (gt > 0).to(pred.dtype)
            scale_loss = scale_loss + scale_regularizer(alpha, mask).mean()
        hm_loss = hm_loss + sahr_wahr_loss(pred, gt, alpha, mask, sahr=sahr, wahr=wahr, gamma=gamma).mean()
    push, pull = ae_loss(outputs["tags"], targets["joints"][0])
    push, pull = push.mean() * ae_factor, pull.mean() * ae_factor
    total = hm_loss + scale_factor * scale_loss + push + pull
    logs = {name: float(torch.as_tensor(v).detach()) for name, v in
            (("heatmap", hm_loss), ("scale", scale_loss), ("push", push), ("pull", pull))}
    return total, logs


# ------------------------------------------------------------------------------ 6. decoding


@dataclass
class GroupingParams:
    """HigherHRNet ``HeatmapParser`` settings (defaults: SWAHR's COCO configs)."""

    max_people: int = 30
    detection_threshold: float = 0.12
    tag_threshold: float = 1.0
    use_detection_val: bool = True
    ignore_too_much: bool = False
    nms_kernel: int = 5
    adjust: bool = True
    refine: bool = True
    joint_order: tuple[int, ...] = field(default_factory=lambda: COCO_JOINT_ORDER)

    def __post_init__(self) -> None:
        self.max_people = check_int(self.max_people, "max_people", low=1)
        self.nms_kernel = check_int(self.nms_kernel, "nms_kernel", low=1)
        if self.nms_kernel % 2 == 0:
            raise ValueError(f"nms_kernel: expected an odd size, got {self.nms_kernel}")
        self.detection_threshold = check_number(self.detection_threshold, "detection_threshold")
        self.tag_threshold = check_number(self.tag_threshold, "tag_threshold", low=0.0)


def aggregate_outputs(outputs: dict[str, Any], input_size: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """HigherHRNet's ``get_multi_stage_outputs`` for one scale, no flip: every stage's
    heatmaps resized (bilinear, ``align_corners=False``) to the last stage's size and
    averaged; stage 1's tags resized likewise; with ``input_size`` (``PROJECT2IMAGE``)
    both resized again to the input size.

    Returns ``(heatmaps (N, K, h, w), tags (N, K, h, w, D))``."""
    hms = outputs["heatmaps"]
    size = hms[-1].shape[-2:]
    avg = sum(F.interpolate(h, size=size, mode="bilinear", align_corners=False) if h.shape[-2:] != size else h
              for h in hms) / len(hms)
    tags = outputs["tags"]
    if tags.dim() == 4:
        tags = tags.unsqueeze(-1)
    n, k, th, tw, d = tags.shape

    def resize(t: torch.Tensor, sz) -> torch.Tensor:
        flat = t.permute(0, 1, 4, 2, 3).reshape(n, k * d, t.shape[2], t.shape[3])
        flat = F.interpolate(flat, size=sz, mode="bilinear", align_corners=False)
        return flat.reshape(n, k, d, *sz).permute(0, 1, 3, 4, 2)

    if (th, tw) != tuple(size):
        tags = resize(tags, tuple(size))
    if input_size is not None:
        W, H = check_size2(input_size, "input_size")
        if (H, W) != tuple(avg.shape[-2:]):
            avg = F.interpolate(avg, size=(H, W), mode="bilinear", align_corners=False)
            tags = resize(tags, (H, W))
    return avg, tags


def _nms(det: torch.Tensor, kernel: int) -> torch.Tensor:
    """Keep a pixel only where it equals the max of its ``kernel``² neighbourhood."""
    peak = F.max_pool2d(det, kernel, 1, kernel // 2)
    return det * (peak == det).to(det.dtype)


def _match_by_tag(tag_k: np.ndarray, loc_k: np.ndarray, val_k: np.ndarray, p: GroupingParams) -> np.ndarray:
    """Greedy joint-by-joint grouping (HigherHRNet ``match_by_tag``) for one image.

    ``tag_k (K, M, D)``, ``loc_k (K, M, 2)`` (x, y), ``val_k (K, M)`` → ``(P, K, 3 + D)``
    rows ``[x, y, score, tag...]`` (zeros where a joint is missing)."""
    k, _, d = tag_k.shape
    # As the official code, people live in a dict keyed by the first tag value of the
    # joint that opened them (dicts keep insertion order); a detection whose tag equals an
    # existing key exactly joins that person — a real network never ties exactly.
    groups: dict[float, np.ndarray] = {}  # key -> (K, 3 + D)
    group_tags: dict[float, list[np.ndarray]] = {}

    def open_person(joint: np.ndarray, idx: int) -> None:
        key = float(joint[3])
        groups.setdefault(key, np.zeros((k, 3 + d)))[idx] = joint
        group_tags[key] = [joint[3:]]

    for i, idx in enumerate(p.joint_order):
        joints = np.concatenate([loc_k[idx], val_k[idx, :, None], tag_k[idx]], 1)
        joints = joints[joints[:, 2] > p.detection_threshold]
        if len(joints) == 0:
            continue
        if i == 0 or not groups:
            for j in joints:
                open_person(j, idx)
            continue
        keys = list(groups)[: p.max_people]
        if p.ignore_too_much and len(keys) == p.max_people:
            continue
        mean_tags = np.stack([np.mean(group_tags[key], axis=0) for key in keys])
        dist = np.linalg.norm(joints[:, None, 3:] - mean_tags[None], axis=2)
        cost = np.round(dist) * 100 - joints[:, 2:3] if p.use_detection_val else dist.copy()
        n_add, n_grp = cost.shape
        if n_add > n_grp:  # every detection gets a column: surplus ones start new people
            cost = np.concatenate([cost, np.full((n_add, n_add - n_grp), 1e10)], 1)
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows.tolist(), cols.tolist()):
            if c < n_grp and dist[r, c] < p.tag_threshold:
                groups[keys[c]][idx] = joints[r]
                group_tags[keys[c]].append(joints[r, 3:])
            else:
                open_person(joints[r], idx)
    if not groups:
        return np.zeros((0, k, 3 + d), np.float32)
    return np.stack(list(groups.values())).astype(np.float32)


def _quarter_step(m: np.ndarray, xi: int, yi: int) -> tuple[float, float]:
    """The official quarter-pixel step at integer ``(xi, yi)`` of map ``m (h, w)``: +0.25
    toward the higher of the two neighbours on each axis, −0.25 on a tie (border pixels
    compare with themselves)."""
    h, w = m.shape
    dx = 0.25 if m[yi, min(xi + 1, w - 1)] > m[yi, max(xi - 1, 0)] else -0.25
    dy = 0.25 if m[min(yi + 1, h - 1), xi] > m[max(yi - 1, 0), xi] else -0.25
    return dx, dy


def _adjust(people: np.ndarray, det: np.ndarray) -> np.ndarray:
    """The official ``adjust``: the quarter-pixel step, then +0.5 (the middle of the
    truncated cell). ``det (K, h, w)``."""
    for person in people:
        for j, joint in enumerate(person):
            if joint[2] <= 0:
                continue
            xi, yi = int(joint[0]), int(joint[1])
            dx, dy = _quarter_step(det[j], xi, yi)
            person[j, 0], person[j, 1] = float(joint[0]) + dx + 0.5, float(joint[1]) + dy + 0.5
    return people


def _refine(det: np.ndarray, tag: np.ndarray, person: np.ndarray) -> np.ndarray:
    """The official ``refine``: for each joint the person lacks, take the pixel maximising
    ``det − round(‖tag − person's mean tag‖)`` and add it (with the +0.5 and quarter
    offsets) if its score is > 0. ``det (K, h, w)``, ``tag (K, h, w, D)``, ``person (K, 3+D)``."""
    seen = person[:, 2] > 0
    if not seen.any():
        return person
    xy = person[seen, :2].astype(np.int32)
    mean = np.mean([tag[j, y, x] for j, (x, y) in zip(np.nonzero(seen)[0], xy)], axis=0)
    for j in np.nonzero(~seen)[0]:
        m = det[j]
        score = m - np.round(np.sqrt(((tag[j] - mean) ** 2).sum(-1)))
        yi, xi = np.unravel_index(np.argmax(score), m.shape)
        val = m[yi, xi]
        if val <= 0:
            continue
        dx, dy = _quarter_step(m, int(xi), int(yi))
        person[j, :3] = (xi + 0.5 + dx, yi + 0.5 + dy, val)
    return person


def group_people(heatmaps: Any, tags: Any, params: GroupingParams | None = None) -> list[dict[str, np.ndarray]]:
    """HigherHRNet's ``HeatmapParser.parse`` on aggregated maps, per image.

    Args:
        heatmaps: ``(N, K, h, w)`` (e.g. from :func:`aggregate_outputs`).
        tags: ``(N, K, h, w, D)`` or ``(N, K, h, w)``.
        params: :class:`GroupingParams`.

    Returns:
        per image ``{'keypoints': (P, K, 2) map pixels (adjusted), 'keypoint_scores': (P,
        K), 'tags': (P, K, D), 'scores': (P,)}``; a person's score is the mean of its
        joints' detection values before ``refine`` (the official person score).
    """
    p = params or GroupingParams()
    dims: dict[str, int] = {}
    det = as_tensor(heatmaps, "heatmaps", shape=("N", "K", "h", "w"), dims=dims, dtype=None)
    if not det.is_floating_point():
        det = det.float()
    tg = tags if isinstance(tags, torch.Tensor) else as_tensor(tags, "tags")
    if tg.dim() == 4:
        tg = tg.unsqueeze(-1)
    tg = as_tensor(tg, "tags", shape=("N", "K", "h", "w", None), dims=dims, dtype=None)
    if len(p.joint_order) != det.shape[1] or sorted(p.joint_order) != list(range(det.shape[1])):
        raise ValueError(f"params.joint_order: expected a permutation of range({det.shape[1]}), "
                         f"got {p.joint_order}")
    det, tg = det.detach(), tg.detach()
    n, k, h, w = det.shape
    d = tg.shape[-1]
    peaks = _nms(det, p.nms_kernel).reshape(n, k, -1)
    m = min(p.max_people, h * w)
    val_k, ind = peaks.topk(m, dim=2)
    tag_k = torch.gather(tg.reshape(n, k, h * w, d), 2, ind.unsqueeze(-1).expand(-1, -1, -1, d))
    loc_k = torch.stack([ind % w, ind // w], -1)
    det_np, tag_np = det.cpu().numpy(), tg.cpu().numpy()
    out = []
    for i in range(n):
        people = _match_by_tag(tag_k[i].cpu().numpy(), loc_k[i].cpu().numpy().astype(np.float64),
                               val_k[i].cpu().numpy(), p)
        if p.adjust:
            people = _adjust(people, det_np[i])
        scores = people[:, :, 2].mean(1) if len(people) else np.zeros(0, np.float32)
        if p.refine:
            people = np.stack([_refine(det_np[i], tag_np[i], q) for q in people]) if len(people) else people
        out.append({"keypoints": people[:, :, :2].copy(), "keypoint_scores": people[:, :, 2].copy(),
                    "tags": people[:, :, 3:].copy(), "scores": scores.astype(np.float32)})
    return out


def decode_people(outputs: dict[str, Any], input_size: Any, params: GroupingParams | None = None,
                  project2image: bool = True) -> list[dict[str, np.ndarray]]:
    """Network outputs → people in input pixels: :func:`aggregate_outputs` (projected to the
    input size when ``project2image``, the official test setting), :func:`group_people`,
    then map coordinates back by ``input/map``. Scale maps are ignored (training only).

    Returns per image ``{'keypoints': (P, K, 2) input pixels, 'keypoint_scores': (P, K),
    'scores': (P,), 'tags': (P, K, D)}``."""
    W, H = check_size2(input_size, "input_size")
    hm, tags = aggregate_outputs(outputs, (W, H) if project2image else None)
    people = group_people(hm, tags, params)
    sx, sy = W / hm.shape[-1], H / hm.shape[-2]
    for person in people:
        person["keypoints"] = person["keypoints"] * np.array([sx, sy], np.float32)
    return people


def coco_results(people: Sequence[dict[str, np.ndarray]], image_ids: Sequence[int]) -> list[dict]:
    """COCO keypoint results (``labcore.data.formats.keypoint_results``) of decoded people;
    ``image_ids[i]`` is image ``i``'s id."""
    from labcore.data.formats import keypoint_results

    if len(image_ids) != len(people):
        raise ValueError(f"image_ids: expected {len(people)} ids (one per image), got {len(image_ids)}")
    ids, kps, kss, scs = [], [], [], []
    for img, person in zip(image_ids, people):
        for j in range(len(person["scores"])):
            ids.append(int(img))
            kps.append(person["keypoints"][j])
            kss.append(person["keypoint_scores"][j])
            scs.append(person["scores"][j])
    if not ids:
        return []
    return keypoint_results(np.array(ids), np.stack(kps), np.stack(kss), np.array(scs))


def oracle_outputs(keypoints: Any, visible: Any, targets: BottomUpTargets, tag_spacing: float = 2.0,
                   ) -> dict[str, Any]:
    """What a perfect network would output: the ground-truth heatmaps of every stage and
    tag maps holding ``p · tag_spacing`` for person ``p`` (the whole map of joint ``k`` is
    filled with the tag of the nearest labelled person's joint ``k``, so that upsampling
    keeps it), with a 1e-6-per-pixel ramp on each Gaussian so that no peak is an exact tie.
    Decoding these measures the decoder's own floor.

    Returns the :class:`BottomUpNet` output dict (``scales`` = None)."""
    kp, vis = _people(keypoints, visible)
    tg = targets.encode(kp, vis)
    n, pp, k, _ = kp.shape
    w, h = targets.heatmap_sizes[0]
    sx, sy = targets.scale(0)
    pos = kp * kp.new_tensor([sx, sy])  # (N, P, K, 2) stage-1 map pixels
    ys, xs = torch.meshgrid(torch.arange(h, dtype=kp.dtype), torch.arange(w, dtype=kp.dtype), indexing="ij")
    grid = torch.stack([xs, ys], -1).to(kp.device)  # (h, w, 2), pixel (x, y)
    # Distance of each pixel to each person's joint k (cells: the truncated position).
    cell = torch.trunc(pos)
    d2 = ((grid[None, None, None] - cell[:, :, :, None, None]) ** 2).sum(-1)  # (N, P, K, h, w)
    d2 = torch.where(vis[..., None, None] > 0, d2, torch.full_like(d2, float("inf")))
    nearest = d2.argmin(1)  # (N, K, h, w)
    tags = nearest.to(kp.dtype) * float(tag_spacing)
    # A ground-truth peak is exactly symmetric, and bilinear upsampling turns it into a
    # plateau of equal maxima that max-pool NMS keeps as several detections; a real
    # network never ties exactly. A ramp falling by 1e-6 per pixel to the right and down
    # (above float32 resolution, far below any threshold) leaves one maximum, and it
    # resolves the symmetric-neighbour test of the quarter-pixel step the way the
    # official tie rule does (-0.25), so the decoded points are the decoder's own.
    heatmaps = []
    for hm in tg["heatmaps"]:
        hh, ww = hm.shape[-2:]
        ramp = (torch.arange(ww, dtype=hm.dtype, device=hm.device)[None, :]
                + torch.arange(hh, dtype=hm.dtype, device=hm.device)[:, None])
        heatmaps.append(torch.where(hm > 0, hm - 1e-6 * ramp, hm))
    return {"heatmaps": heatmaps, "tags": tags, "scales": None}
