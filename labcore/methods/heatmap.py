"""Gaussian heatmaps and integral regression — the baseline every other method builds on.

Read top to bottom: the target (:class:`GaussianHeatmap` and its DARK / UDP variants),
decoding, soft-argmax and :class:`IntegralHeatmap`, the two losses, the network (a backbone
plus a 1×1 conv), the flip test, and the decoders' quantisation floor.

**The heatmap idea** (Tompson et al. 2014; SimpleBaseline, Xiao et al. 2018; HRNet, Sun et
al. 2019). A network outputs one map per joint at ``stride`` times lower resolution than
its input; the target is a Gaussian bump at the joint, the loss a pixel-wise MSE, and the
prediction the map's maximum, scaled back by the stride. Because the maximum sits on a
heatmap pixel, plain argmax decoding cannot be more precise than ``±stride/2`` input
pixels — the *quantisation floor* that SimDR (``methods/simdr.py``) attacks and that
sub-pixel decoders (quarter-pixel shift, DARK, soft-argmax) soften.

Conventions (DESIGN.md §2/§3): keypoints ``(N, K, 2)`` float32 in **input-image** pixels,
x right, y down, integer values at pixel centres; heatmaps ``(N, K, h, w)``; each row of
the batch is one person crop (top-down). Where published codes differ, the difference is
an argument:

=====================  ===================================================================
``variant='msra'``     mmpose ``MSRAHeatmap`` / HRNet ``generate_target``: centre
                       ``int(x/s + 0.5)``, peak 1, 3σ support; decode argmax (+ quarter-pixel
                       shift when ``refine``), × stride ``s = input/heatmap``
``variant='dark'``     mmpose ``MSRAHeatmap(unbiased=True)`` (DARK, Zhang et al. 2020):
                       Gaussian centred on the un-rounded ``x/s`` over the whole map; decode
                       argmax + DARK's Taylor step on the blurred log-map
``variant='udp'``      mmpose ``UDPHeatmap`` (Huang et al. 2020): stride
                       ``(input - 1)/(heatmap - 1)``, float centre on the 3σ box of the
                       rounded centre; decode argmax + UDP's DARK step
``refine_border``      quarter-pixel border test: ``'mmpose'`` or ``'official'`` (HRNet)
``soft_argmax(grid=)`` ``'pixel'`` · ``'mmpose'`` ``i/w`` · ``'hemlets'`` ``i/(n-1) - 0.5``
``joints_mse_loss``    HRNet ``JointsMSELoss`` (½·MSE; mmpose ``KeypointMSELoss`` is 2×)
``flip(shift=)``       HRNet/mmpose flip test with (default) or without the one-pixel shift
=====================  ===================================================================

One labcore choice: UDP's decode scales by ``(input - 1)/(heatmap - 1)``, the same factor
as its encode, so that a round trip is unbiased; mmpose 1.x ``UDPHeatmap.decode``
multiplies by ``input/(heatmap - 1)`` instead (a bias of up to one input pixel at the far
border, ``udp_input_scale=True`` reproduces it).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from labcore.checks import as_tensor, check_choice, check_int, check_number, check_size2
from labcore.codec import Codec, register_codec
from labcore.heatmaps import (
    GRID_KINDS,
    REFINE_BORDERS,
    argmax_2d,
    dark_refine,
    dark_udp_refine,
    flip_heatmaps,
    gaussian_heatmaps,
    make_grid,
    msra_heatmaps,
    refine_quarter,
    softmax_expectation,
)

__all__ = [
    "VARIANTS",
    "GaussianHeatmap",
    "IntegralHeatmap",
    "soft_argmax",
    "joints_mse_loss",
    "integral_l1_loss",
    "HeatmapHead",
    "TopDownHeatmapNet",
    "heatmap_flip_test",
    "DECODERS",
    "decoder_floor",
]

VARIANTS = ("msra", "dark", "udp")


def _heatmap_tensor(value: Any, name: str, finite: bool = True) -> torch.Tensor:
    """``(N, K, h, w)`` floating heatmaps (dtype kept for float tensors), non-empty, finite
    unless ``finite=False`` (for callers whose next step checks the values it reads)."""
    dtype = None if isinstance(value, torch.Tensor) and value.is_floating_point() else torch.float32
    hm = as_tensor(value, name, shape=("N", "K", None, None), dtype=dtype, allow_empty=True, finite=finite)
    if 0 in hm.shape:
        raise ValueError(f"{name}: expected a non-empty (N, K, h, w) batch, got {tuple(hm.shape)}")
    return hm


# ------------------------------------------------------------------------------ 1. the target


@register_codec("gaussian_heatmap")
class GaussianHeatmap(Codec):
    """Gaussian heatmap codec for top-down pose (see the module docstring for variants).

    ``encode(keypoints (N, K, 2), visible (N, K))`` → ``{'heatmaps': (N, K, h, w) float32,
    'weights': (N, K)}``; ``decode(heatmaps (N, K, h, w))`` → ``(keypoints (N, K, 2) input
    pixels, scores (N, K) = each map's maximum)``.

    With the default ``variant='msra'`` the targets and decoded keypoints equal mmpose's
    ``MSRAHeatmap`` for any keypoints, including ones on the border, outside the image
    (weight 0 when the 3σ box misses the map) and invisible ones (weight 0, empty map); a
    map whose maximum is ≤ 0 decodes to ``-1 · stride`` (mmpose's ``-1`` marker, scaled).

    Args:
        input_size: ``(W, H)`` of the network input (the crop) in pixels.
        heatmap_size: ``(w, h)`` of the output maps.
        sigma: Gaussian σ in **heatmap** pixels (> 0; HRNet: 2 at 256×192, 1 at 64×64 and
            128×128 inputs, SimCC's baselines).
        refine: sub-pixel refinement after argmax — quarter-pixel (msra), DARK (dark) or
            UDP-DARK (udp). ``False`` is plain argmax (SimCC's "w/o extra post." rows).
        variant: ``'msra'``, ``'dark'`` or ``'udp'``.
        blur_kernel: DARK/UDP's Gaussian blur kernel (odd; 11 for σ = 2).
        refine_border: ``'mmpose'`` (default) or ``'official'`` (HRNet ``get_final_preds``)
            border test of the quarter-pixel shift.
        udp_input_scale: decode UDP with mmpose 1.x's ``input/(heatmap - 1)`` factor.
    """

    def __init__(
        self,
        input_size: Any = (192, 256),
        heatmap_size: Any = (48, 64),
        sigma: float = 2.0,
        refine: bool = True,
        variant: str = "msra",
        blur_kernel: int = 11,
        refine_border: str = "mmpose",
        udp_input_scale: bool = False,
    ) -> None:
        self.input_size = check_size2(input_size, "input_size")
        self.heatmap_size = check_size2(heatmap_size, "heatmap_size")
        self.sigma = check_number(sigma, "sigma", low=0.0, low_inclusive=False)
        self.refine = bool(refine)
        self.variant = check_choice(variant, "variant", VARIANTS)
        self.blur_kernel = check_int(blur_kernel, "blur_kernel", low=1)
        if self.blur_kernel % 2 == 0:
            raise ValueError(f"blur_kernel: expected an odd kernel size, got {blur_kernel}")
        self.refine_border = check_choice(refine_border, "refine_border", REFINE_BORDERS)
        self.udp_input_scale = bool(udp_input_scale)
        if self.variant == "udp" and min(self.heatmap_size) < 2:
            raise ValueError(f"heatmap_size: UDP needs at least 2 pixels per side, got {self.heatmap_size}")

    @property
    def stride(self) -> tuple[float, float]:
        """Input pixels per heatmap pixel ``(sx, sy)`` used by encode: ``input/heatmap``
        (float32, as mmpose), or ``(input - 1)/(heatmap - 1)`` for UDP."""
        inp, hm = np.array(self.input_size), np.array(self.heatmap_size)
        s = (inp - 1) / (hm - 1) if self.variant == "udp" else inp / hm
        return tuple(float(v) for v in s.astype(np.float32))

    def _stride_tensor(self, device: torch.device) -> torch.Tensor:
        return torch.tensor(self.stride, dtype=torch.float32, device=device)

    # -- encode ----------------------------------------------------------------------------
    def encode(self, keypoints: Any, visible: Any = None, **extra: Any) -> dict[str, torch.Tensor]:
        """Targets for ``keypoints (N, K, 2)`` input pixels and ``visible (N, K)``."""
        self.reject_extra(extra)
        kp, vis = self.prepare(keypoints, visible, dim=2)
        if self.variant == "msra":
            maps, weights = msra_heatmaps(kp, vis, self.input_size, self.heatmap_size, self.sigma)
        elif self.variant == "dark":
            maps, weights = self._encode_dark(kp / self._stride_tensor(kp.device), vis)
        else:
            maps, weights = self._encode_udp(kp / self._stride_tensor(kp.device), vis)
        return {"heatmaps": maps, "weights": weights}

    def _encode_dark(self, mu: torch.Tensor, vis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mmpose ``generate_unbiased_gaussian_heatmaps``: float centre, the whole map (no
        3σ cut), weight 0 where the float 3σ box misses the map."""
        w, h = self.heatmap_size
        r = 3.0 * self.sigma
        lim = torch.tensor([w, h], dtype=mu.dtype, device=mu.device)
        inside = ~((mu - r >= lim) | (mu + r + 1 < 0)).any(-1)
        active = (vis >= 0.5) & inside
        # A radius covering the whole map reproduces the uncut Gaussian.
        maps, _ = gaussian_heatmaps(mu, self.heatmap_size, self.sigma, visible=active.float(),
                                    radius=float(w + h) + abs(float(mu.abs().max())))
        return maps, vis * inside

    def _encode_udp(self, kp_hm: torch.Tensor, vis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mmpose ``generate_udp_gaussian_heatmaps``: a Gaussian centred on the float
        position, sampled on the ``2·3σ + 1`` box pasted at ``int(mu - 3σ)`` around the
        rounded centre ``mu = int(x + 0.5)`` (numpy's casts: truncation toward zero)."""
        w, h = self.heatmap_size
        r = 3.0 * self.sigma
        size = 2.0 * r + 1.0
        n_kernel = math.ceil(size)
        mu = torch.trunc(kp_hm + 0.5)  # (N, K, 2) integer-valued
        left = torch.trunc(mu.double() - r)  # int64 casts of float64, as numpy
        right = torch.trunc(mu.double() + r + 1)
        lim = torch.tensor([w, h], dtype=torch.float64, device=kp_hm.device)
        inside = ~((left >= lim) | (right < 0)).any(-1)
        x0 = float(size // 2) + (kp_hm.double() - mu.double())  # peak offset in the box
        two_s2 = 2.0 * self.sigma**2
        profiles = []
        for axis, n in ((0, w), (1, h)):
            c = torch.arange(n, dtype=torch.float64, device=kp_hm.device)
            j = c - left[..., axis : axis + 1]  # sample index in the pasted kernel
            ok = (j >= 0) & (j < n_kernel) & (c < right[..., axis : axis + 1])
            g = torch.exp(-((j - x0[..., axis : axis + 1]) ** 2) / two_s2)
            profiles.append((g * ok).to(torch.float32))
        active = ((vis >= 0.5) & inside).to(torch.float32)
        maps = profiles[1].unsqueeze(-1) * (profiles[0] * active.unsqueeze(-1)).unsqueeze(-2)
        return maps, vis * inside

    # -- decode ----------------------------------------------------------------------------
    def decode(self, *outputs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``decode(heatmaps (N, K, h, w))`` → ``(keypoints (N, K, 2), scores (N, K))``.

        argmax (first maximum; ``-1`` where the maximum is ≤ 0, as mmpose), the
        variant's refinement when ``refine``, then back to input pixels."""
        if len(outputs) != 1:
            raise TypeError(f"decode: expected one output (heatmaps), got {len(outputs)}")
        hm = _heatmap_tensor(outputs[0], "heatmaps", finite=False)  # argmax_2d checks NaN/inf
        self._check_size(hm)
        coords, scores = argmax_2d(hm, invalid_to=-1.0)
        if self.refine:
            if self.variant == "msra":
                coords = refine_quarter(coords, hm, border=self.refine_border)
            elif self.variant == "dark":
                coords = dark_refine(coords, hm, blur_kernel=self.blur_kernel)
            else:
                coords = dark_udp_refine(coords, hm, blur_kernel=self.blur_kernel)
        return coords * self._decode_scale(hm.device), scores

    def _decode_scale(self, device: torch.device) -> torch.Tensor:
        if self.variant == "udp" and self.udp_input_scale:
            w, h = self.heatmap_size
            return torch.tensor([self.input_size[0] / (w - 1), self.input_size[1] / (h - 1)],
                                dtype=torch.float32, device=device)
        return self._stride_tensor(device)

    def _check_size(self, hm: torch.Tensor) -> None:
        got = (hm.shape[-1], hm.shape[-2])
        if got != self.heatmap_size:
            raise ValueError(f"heatmaps: expected maps of size (w, h) = {self.heatmap_size}, got {got}")


# ----------------------------------------------------------- 2. soft-argmax and integral regression


def soft_argmax(logits: Any, grid: str = "pixel", beta: float = 1.0, ndim: int | None = None) -> torch.Tensor:
    """Soft-argmax: the expected coordinate under a softmax over the whole map/volume.

    ``p = softmax(beta · logits)`` jointly over the last ``ndim`` axes, then each axis's
    marginal dotted with its grid (:func:`labcore.heatmaps.make_grid`). Differentiable; the
    integral-regression decoder (Sun et al. 2018) and HEMlets' 3-D read-out.

    Args:
        logits: 2-D heatmaps ``(..., h, w)`` or 3-D volumes ``(..., d, h, w)``.
        grid: ``'pixel'`` (cell index ``i``, heatmap pixels), ``'mmpose'`` (``i/n`` in
            [0, 1), mmpose ``IntegralRegressionHead``) or ``'hemlets'`` (``i/(n-1) - 0.5``
            in [-0.5, 0.5], HEMlets ``CoordinateRegress``).
        beta: inverse temperature (> 0).
        ndim: 2 or 3; default 2 for 4-D input ``(N, K, h, w)`` and 3 for 5-D input
            ``(N, K, d, h, w)`` (any other rank needs it).

    Returns:
        ``(..., ndim)`` coordinates in the order ``(x, y[, z])``.
    """
    check_choice(grid, "grid", GRID_KINDS)
    if not isinstance(logits, torch.Tensor):
        logits = as_tensor(logits, "logits", shape=(..., None, None))
    if ndim is None:
        if logits.dim() not in (4, 5):
            raise ValueError(
                f"ndim: cannot infer 2-D or 3-D from logits of shape {tuple(logits.shape)}; "
                f"pass ndim=2 for (..., h, w) or ndim=3 for (..., d, h, w)"
            )
        ndim = logits.dim() - 2
    ndim = check_int(ndim, "ndim", low=2, high=3)
    if logits.dim() < ndim:
        raise ValueError(f"logits: expected at least {ndim} dimensions, got shape {tuple(logits.shape)}")
    sizes = tuple(logits.shape[-ndim:])[::-1]  # (w, h[, d])
    grids = [make_grid(n, grid, device=logits.device) for n in sizes]
    return softmax_expectation(logits, grids, beta=beta)


@register_codec("integral_heatmap")
class IntegralHeatmap(Codec):
    """Integral regression (Sun et al., ECCV 2018) — mmpose ``IntegralRegressionLabel``.

    ``encode`` → ``{'heatmaps': (N, K, h, w)`` the MSRA target normalised to sum 1
    (mmpose's optional auxiliary heatmap target), ``'keypoint_labels': (N, K, 2)``
    ``kp / [W, H]`` in [0, 1), ``'weights': (N, K)``}``: mmpose's ``RegressionLabel`` rule,
    1 where visible and inside the image ``0 <= x <= W-1, 0 <= y <= H-1``.

    ``decode(logits (N, K, h, w))``: :func:`soft_argmax` with mmpose's ``i/w`` grid, times
    the input size — i.e. ``i · stride`` input pixels, the same frame as argmax decoding.
    Scores: the peak of the softmax, ``max p`` (mmpose returns ones; a peak probability
    lets results be ranked).

    Args:
        input_size, heatmap_size, sigma: as :class:`GaussianHeatmap` (the target only).
        beta: softmax inverse temperature of the decoder (mmpose head default 1.0).
    """

    def __init__(self, input_size: Any = (192, 256), heatmap_size: Any = (48, 64), sigma: float = 2.0,
                 beta: float = 1.0) -> None:
        self.input_size = check_size2(input_size, "input_size")
        self.heatmap_size = check_size2(heatmap_size, "heatmap_size")
        self.sigma = check_number(sigma, "sigma", low=0.0, low_inclusive=False)
        self.beta = check_number(beta, "beta", low=0.0, low_inclusive=False)

    def encode(self, keypoints: Any, visible: Any = None, **extra: Any) -> dict[str, torch.Tensor]:
        """Targets for ``keypoints (N, K, 2)`` input pixels and ``visible (N, K)``."""
        self.reject_extra(extra)
        kp, vis = self.prepare(keypoints, visible, dim=2)
        maps, _ = msra_heatmaps(kp, vis, self.input_size, self.heatmap_size, self.sigma)
        total = maps.sum(dim=(-2, -1), keepdim=True)
        maps = maps / (total + 1e-24)  # mmpose's normalisation (empty maps stay 0)
        size = torch.tensor(self.input_size, dtype=torch.float32, device=kp.device)
        inside = ((kp >= 0) & (kp <= size - 1)).all(-1)
        weights = (inside & (vis > 0.5)).to(torch.float32)
        return {"heatmaps": maps, "keypoint_labels": kp / size, "weights": weights}

    def decode(self, *outputs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``decode(logits (N, K, h, w))`` → ``(keypoints (N, K, 2) input pixels, scores)``."""
        if len(outputs) != 1:
            raise TypeError(f"decode: expected one output (heatmap logits), got {len(outputs)}")
        logits = _heatmap_tensor(outputs[0], "logits")
        got = (logits.shape[-1], logits.shape[-2])
        if got != self.heatmap_size:
            raise ValueError(f"logits: expected maps of size (w, h) = {self.heatmap_size}, got {got}")
        # One softmax serves both the expectation and the score (soft_argmax's maths).
        n, k, h, w = logits.shape
        p = torch.softmax((logits if self.beta == 1.0 else self.beta * logits).reshape(n, k, -1), dim=-1)
        p = p.reshape(n, k, h, w)
        gx = make_grid(w, "mmpose", device=p.device, dtype=p.dtype)
        gy = make_grid(h, "mmpose", device=p.device, dtype=p.dtype)
        labels = torch.stack([p.sum(-2) @ gx, p.sum(-1) @ gy], -1)
        size = torch.tensor(self.input_size, dtype=labels.dtype, device=labels.device)
        return labels * size, p.flatten(-2).amax(-1)

    def labels(self, logits: torch.Tensor) -> torch.Tensor:
        """Differentiable normalised coordinates ``(N, K, 2)`` in [0, 1) for the loss
        (compare with ``encode(...)['keypoint_labels']``)."""
        return soft_argmax(logits, grid="mmpose", beta=self.beta, ndim=2)


# ------------------------------------------------------------------------------ 3. the losses


def _loss_inputs(pred: Any, target: Any, weights: Any, spec: tuple) -> tuple[torch.Tensor, ...]:
    dims: dict[str, int] = {}
    p = pred if isinstance(pred, torch.Tensor) else as_tensor(pred, "pred")
    if not p.is_floating_point():
        p = p.float()
    p = as_tensor(p, "pred", shape=spec, dims=dims, dtype=None, allow_empty=True)
    if p.shape[0] == 0:
        raise ValueError(f"pred: expected a non-empty batch, got shape {tuple(p.shape)}")
    t = as_tensor(target, "target", shape=spec, dims=dims, dtype=p.dtype, device=p.device)
    if weights is None:
        w = torch.ones(p.shape[:2], dtype=p.dtype, device=p.device)
    else:
        w = as_tensor(weights, "weights", shape=("N", "K"), dims=dims, dtype=p.dtype, device=p.device)
        if bool((w < 0).any()):
            raise ValueError("weights: expected non-negative weights")
    if not bool(torch.isfinite(p.detach()).all()):
        raise ValueError("pred: expected finite values, got NaN or inf")
    return p, t, w


def joints_mse_loss(pred: Any, target: Any, weights: Any = None) -> torch.Tensor:
    """HRNet / SimpleBaseline ``JointsMSELoss`` (``use_target_weight=True``).

    ``loss = (1/K) Σ_k ½ · mean_{n,pixels} (w_nk · (pred - target))²`` — i.e.
    ``½ · mean((w · (pred - target))²)`` over every element. mmpose's ``KeypointMSELoss``
    (no ½) is twice this.

    Args:
        pred, target: ``(N, K, h, w)``.
        weights: ``(N, K)`` per-joint target weights (``None``: all ones).

    Returns:
        A scalar tensor (differentiable w.r.t. ``pred``).
    """
    p, t, w = _loss_inputs(pred, target, weights, ("N", "K", "h", "w"))
    diff = (p - t) * w[..., None, None]
    return 0.5 * (diff * diff).mean()


def integral_l1_loss(pred: Any, target: Any, weights: Any = None) -> torch.Tensor:
    """Integral regression's L1 loss on coordinates — mmpose ``L1Loss(use_target_weight)``:
    ``mean(|w · pred - w · target|)`` over ``N·K·D`` elements.

    Args:
        pred, target: ``(N, K, D)`` coordinates (normalised ``[0, 1)`` in mmpose's setup;
            see :meth:`IntegralHeatmap.labels`).
        weights: ``(N, K)`` (``None``: all ones).
    """
    p, t, w = _loss_inputs(pred, target, weights, ("N", "K", "D"))
    return ((p - t) * w[..., None]).abs().mean()


# ------------------------------------------------------------------------------ 4. the network


class HeatmapHead(nn.Module):
    """SimpleBaseline's ``final_layer``: a 1×1 conv from the backbone's features to one
    map per joint, initialised N(0, 0.001²) with zero bias (the official pose init).

    ``(N, in_channels, h, w) -> (N, num_joints, h, w)``."""

    def __init__(self, in_channels: int, num_joints: int) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels", low=1)
        self.num_joints = check_int(num_joints, "num_joints", low=1)
        self.conv = nn.Conv2d(self.in_channels, self.num_joints, kernel_size=1)
        nn.init.normal_(self.conv.weight, std=0.001)
        nn.init.zeros_(self.conv.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if not isinstance(features, torch.Tensor) or features.dim() != 4 or features.shape[1] != self.in_channels:
            shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
            raise ValueError(f"features: expected shape (N, {self.in_channels}, h, w), got {shape}")
        return self.conv(features)


class TopDownHeatmapNet(nn.Module):
    """A top-down heatmap network: ``backbone`` (any module with ``out_channels`` and
    ``stride``, e.g. :class:`labcore.nn.SimpleBaseline` or :class:`labcore.nn.HRNetLite`)
    + :class:`HeatmapHead`.

    ``forward(images (N, 3, H, W)) -> heatmaps (N, K, H/stride, W/stride)`` — raw outputs:
    targets for :func:`joints_mse_loss`, logits for :class:`IntegralHeatmap`.
    """

    def __init__(self, backbone: nn.Module, num_joints: int) -> None:
        super().__init__()
        for attr in ("out_channels", "stride"):
            if not hasattr(backbone, attr):
                raise TypeError(f"backbone: expected a module with an '{attr}' attribute "
                                f"(labcore.nn backbones have one), got {type(backbone).__name__}")
        self.backbone = backbone
        self.head = HeatmapHead(backbone.out_channels, num_joints)
        self.stride = int(backbone.stride)
        self.num_joints = self.head.num_joints

    def heatmap_size(self, input_size: Any) -> tuple[int, int]:
        """``(w, h)`` of the output for an input of ``(W, H)``."""
        w, h = check_size2(input_size, "input_size")
        return (w // self.stride, h // self.stride)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images))


def heatmap_flip_test(model: nn.Module, images: torch.Tensor, flip_index: Any, shift: bool = True) -> torch.Tensor:
    """Flip test (HRNet ``validate`` with ``FLIP_TEST``; mmpose ``flip_test=True``): the
    average of ``model(images)`` and the flipped-back output on the mirrored images
    (:func:`labcore.heatmaps.flip_heatmaps`, one-pixel shift when ``shift``).

    Args:
        model: maps ``(N, 3, H, W)`` to heatmaps ``(N, K, h, w)``.
        images: ``(N, 3, H, W)``.
        flip_index: a :class:`~labcore.skeletons.Skeleton` or a left/right permutation.
        shift: HRNet's ``SHIFT_HEATMAP`` (True) or UDP-style no shift (False).

    Returns:
        ``(N, K, h, w)`` averaged heatmaps.
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(f"images: expected a tensor (N, 3, H, W), got "
                         f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
    out = model(images)
    back = flip_heatmaps(model(images.flip(-1)), flip_index, shift=shift)
    return 0.5 * (out + back)


# --------------------------------------------------------------------- 5. the quantisation floor

#: The decoders :func:`decoder_floor` compares.
DECODERS = ("argmax", "argmax+quarter", "dark", "soft-argmax")


def decoder_floor(
    input_size: Any,
    heatmap_size: Any,
    sigma: float = 2.0,
    n: int = 2000,
    seed: int = 0,
    margin: float = 0.15,
) -> dict[str, torch.Tensor]:
    """How precisely each decoder reads an *ideal* heatmap: the error floor of decoding.

    Keypoints are drawn uniformly in the central ``1 - 2·margin`` of the input; the ideal
    network output is a peak-1 Gaussian centred exactly on each keypoint's heatmap position
    (``x / stride``, un-rounded — what a perfect network trained on unbiased targets would
    output). Decoding it back:

    * ``'argmax'``: the best pixel × stride — error up to ``stride/2`` per axis;
    * ``'argmax+quarter'``: HRNet's ±¼-pixel shift toward the larger neighbour;
    * ``'dark'``: DARK's Taylor step on the blurred log-map (kernel ``6σ+1``, odd);
    * ``'soft-argmax'``: the expectation of ``softmax(log map)`` (= the Gaussian normalised).

    Returns:
        ``{decoder: (n,) Euclidean errors in input pixels}``.
    """
    iw, ih = check_size2(input_size, "input_size")
    w, h = check_size2(heatmap_size, "heatmap_size")
    sigma = check_number(sigma, "sigma", low=0.0, low_inclusive=False)
    n = check_int(n, "n", low=1)
    margin = check_number(margin, "margin", low=0.0, high=0.5, high_inclusive=False)
    g = torch.Generator().manual_seed(int(seed))
    lo = torch.tensor([iw, ih]) * margin
    span = torch.tensor([iw, ih]) * (1 - 2 * margin) - 1
    kp = (lo + torch.rand(n, 1, 2, generator=g) * span).float()
    stride = torch.tensor([iw / w, ih / h], dtype=torch.float32)
    maps, _ = gaussian_heatmaps(kp / stride, (w, h), sigma, radius=float(w + h))
    coords, _ = argmax_2d(maps)
    kernel = int(2 * round(3 * sigma) + 1)
    out = {
        "argmax": coords,
        "argmax+quarter": refine_quarter(coords, maps),
        "dark": dark_refine(coords, maps, blur_kernel=kernel),
        "soft-argmax": soft_argmax(maps.clamp_min(1e-30).log(), grid="pixel"),
    }
    return {name: ((c * stride - kp).norm(dim=-1)).flatten() for name, c in out.items()}
