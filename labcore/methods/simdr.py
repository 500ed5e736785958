"""SimDR / SimCC — keypoints as two 1-D classification problems (Li et al., ECCV 2022).

The idea
--------
A heatmap head predicts a ``(h, w)`` map per joint at stride 4 and takes its argmax, so
the answer is quantised to 4 input pixels unless a refinement step repairs it. SimDR
(the arXiv name; SimCC in the ECCV paper, "SimDR" throughout the official code) drops the
2-D map: for every joint it predicts **two vectors of logits**, one over ``N_x = W·k``
horizontal bins and one over ``N_y = H·k`` vertical bins, where ``k`` is the *split
ratio* (bins per input pixel). The keypoint is ``(argmax_x / k, argmax_y / k)``, so the
quantisation step is ``1/k`` input pixel whatever the network's stride. Training is
classification: a KL divergence between the softmax of the logits and a label vector.

Two kinds of label vector (``sigma`` picks one):

* ``sigma == 0`` — **SimDR**: a one-hot vector at bin ``round(x·k)`` with *uniform label
  smoothing* ``ε/(N−1)`` everywhere and ``1−ε`` at the ground-truth bin.
* ``sigma > 0`` — **SA-SimDR** ("space-aware", SimDR*): a 1-D Gaussian of σ **bins**,
  normalised like a density, ``t[i] = exp(−(i−μ)²/2σ²) / (σ√(2π))``; its peak is small
  (≈ 0.2 for σ = 2, 0.066 for σ = 6), which is why SimCC confidences look low.

The network (:class:`SimDRHead`) is a 1×1 conv to ``K·t`` channels on the backbone's
feature map, each joint's ``t`` channels flattened to a vector of ``t·h·w`` features, and
two linear layers, shared by all joints, to the ``N_x`` and ``N_y`` logits.

Conventions (DESIGN.md §2)
--------------------------
* Keypoints ``(N, K, 2)`` float pixels of the input image, x right, y down, integer values
  at pixel centres; visibility ``(N, K)`` in {0, 1}. Bin ``i`` sits at ``x = i/k`` pixels:
  bin 0 is the centre of pixel 0, and the bins cover ``[0, (N_x−1)/k]``.
* Logits ``x_logits (N, K, N_x)`` and ``y_logits (N, K, N_y)`` with
  ``(N_x, N_y) = (int(W·k), int(H·k))`` (official ``int(IMAGE_SIZE·SIMDR_SPLIT_RATIO)``).
* Everything is batched torch without per-keypoint Python loops, works on the device of
  its input, accepts numpy, and refuses bad input with a ``ValueError``/``TypeError``
  naming the argument. Rounding is numpy's ``np.around`` (half to even, 2.5 → 2), which
  ``torch.round`` also does; encoding arithmetic is float64 (float32 on Apple ``mps``),
  like the official numpy code, and the labels are float32.

Official code (leeyegy/SimCC) versus mmpose v1.3.2 (METHODS.md §1, §7)
-----------------------------------------------------------------------
Where they differ labcore has a named parameter whose default is the official code:

* **Gaussian centre** — official ``generate_sa_simdr``: ``μ = x·k`` un-rounded
  (``center='float'``); mmpose ``SimCCLabel._map_coordinates``: ``μ = np.around(x·k)``
  for the Gaussian too (``center='round'``), up to half a bin away.
* **Gaussian weight rule** — official ``adjust_target_weight`` tests a 3σ box with σ in
  *bins* around the keypoint in *pixels* (units mixed, replicated literally); mmpose
  tests the 3σ box around the rounded centre, all in bins. Follows ``center``.
* **Out-of-range one-hot** — official ``filter_target_simdr`` clamps the label into
  ``[0, N−1]`` and zeroes the weight; mmpose zeroes the weight and leaves a zero vector.
  Only the weight reaches the loss; labcore builds the clamped vector.
* **Decoding** — official: softmax over bins, then argmax (``decode_softmax=True``);
  mmpose ``get_simcc_maximum``: argmax of the raw vectors, location −1 where the score
  is ≤ 0 (``decode_softmax=False``).
* **Confidence** — official SimDR ``max(max p_x, max p_y)``, official SA-SimDR and
  mmpose ``min`` (``confidence='auto'|'max'|'min'``).
* **Loss normalisation** — official ``NMTCritierion`` (one-hot) sums KL over bins and
  divides by B; official ``KLDiscretLoss`` (Gaussian) averages over bins, B and K;
  mmpose ``KLDiscretLoss`` sums over the batch, B × the official value
  (:func:`simdr_kl_loss` ``reduction=``, plus mmpose's ``beta``).
* **Flip test** — official: 1-bin shift of the flipped-back x vector, SimDR averages the
  softmaxes, SA-SimDR the logits; mmpose ``flip_vectors``: no shift, logits averaged
  (:func:`flip_simdr` ``shift=``, :func:`simdr_flip_test` ``average=``).
* **Number of bins** — official ``int(W·k)``, mmpose ``np.around(W·k)``; they differ
  only when ``W·k`` is not an integer. labcore uses ``int`` (no parameter).

Reading the official code, SimDR one-hot labels were always trained with ``ε ≥ 0.1``
(its ``ε = 0`` branch would crash); labcore's ``label_smoothing=0`` is a plain one-hot.

Flip geometry (why the official code shifts by one bin)
--------------------------------------------------------
Mirroring the image maps pixel ``x`` to ``W−1−x``, i.e. bin ``x·k`` to ``(W−1)·k − x·k``.
Reversing a vector maps bin ``i`` to ``N−1−i``. Together a peak at ``x·k`` in the original
frame comes back at ``x·k + (k−1)`` (when ``N = W·k``): the flipped-back x vector is off by
``k−1`` bins. The official ``SHIFT_HEATMAP`` shifts by one bin, exact for the common
``k = 2``; mmpose does not shift, exact for ``k = 1``. :func:`flip_simdr` takes ``shift``
as a bool (official / mmpose) or an int number of bins (``k−1`` is exact).

Public API
----------
:class:`SimDR` (codec ``'simdr'``), :func:`simdr_kl_loss`, :class:`SimDRHead`,
:class:`SimDRNet`, :func:`flip_simdr`, :func:`simdr_flip_test`, :func:`quantisation_floor`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from labcore.checks import (
    as_floats,
    check_choice,
    check_int,
    check_number,
    check_size2,
)
from labcore.codec import Codec, register_codec
from labcore.nn.blocks import check_input
from labcore.skeletons import flip_permutation

__all__ = [
    "CENTERS",
    "CONFIDENCES",
    "LOSS_REDUCTIONS",
    "FLIP_AVERAGES",
    "SimDR",
    "simdr_kl_loss",
    "SimDRHead",
    "SimDRNet",
    "flip_simdr",
    "simdr_flip_test",
    "quantisation_floor",
]

CENTERS = ("float", "round")
CONFIDENCES = ("auto", "max", "min")
LOSS_REDUCTIONS = ("official", "nmt", "mmpose")
FLIP_AVERAGES = ("probs", "logits")


# ----------------------------------------------------------------------------- helpers


def _split_ratio(value: Any) -> float:
    """The split ratio ``k`` (bins per input pixel), a finite number > 0."""
    return check_number(value, "split_ratio", low=0.0, low_inclusive=False)


def _num_bins(input_size: tuple[int, int], k: float, min_bins: int = 1) -> tuple[int, int]:
    """``(int(W·k), int(H·k))`` as the official code computes it; at least ``min_bins``."""
    nx, ny = int(input_size[0] * k), int(input_size[1] * k)
    if min(nx, ny) < min_bins:
        raise ValueError(
            f"split_ratio: input_size {input_size} × split_ratio {k} gives ({nx}, {ny}) "
            f"bins; expected at least {min_bins} per axis"
        )
    return nx, ny


def _wide(t: torch.Tensor) -> torch.Tensor:
    """``t`` as float64 for encoding arithmetic (float32 on ``mps``, which has no float64)."""
    return t.to(torch.float32 if t.device.type == "mps" else torch.float64)


def _smoothed_one_hot(index: torch.Tensor, n: int, eps: float) -> torch.Tensor:
    """``(...,)`` long bin indices in ``[0, n)`` → ``(..., n)`` float32 vectors with
    ``eps/(n−1)`` everywhere and ``1−eps`` at the index (NMTCritierion's smoothing)."""
    fill = eps / (n - 1) if eps > 0 else 0.0
    out = torch.full((*index.shape, n), fill, dtype=torch.float32, device=index.device)
    return out.scatter_(-1, index.unsqueeze(-1), 1.0 - eps)


def _gaussian_1d(centre: torch.Tensor, n: int, sigma: float, active: torch.Tensor) -> torch.Tensor:
    """``(N, K)`` centres in bins → ``(N, K, n)`` float32 normalised Gaussians
    ``exp(−(i−μ)²/2σ²)/(σ√(2π))``, zero where ``active`` is False."""
    i = torch.arange(n, dtype=centre.dtype, device=centre.device)
    d = i - centre.unsqueeze(-1)
    # The exponent is formed in the wide dtype (exact bin offsets), the exp taken in float32,
    # the labels' dtype: half the cost of a float64 exp. exp(-q) for q > 87 is below
    # float32's normal range (< 2e-38): set to 0, which skips exp's slow underflow path.
    q = ((d * d) / (2.0 * sigma * sigma)).to(torch.float32)
    g = torch.exp(-q.clamp_max(87.0)) * (1.0 / (sigma * math.sqrt(2.0 * math.pi)))
    return torch.where(active.unsqueeze(-1) & (q <= 87.0), g, 0.0)


# ----------------------------------------------------------------------------- codec


@register_codec("simdr")
class SimDR(Codec):
    """SimDR / SA-SimDR labels and decoding (official leeyegy/SimCC; mmpose one argument away).

    ``encode(keypoints (N, K, 2), visible (N, K))`` →
    ``{'x_labels': (N, K, N_x), 'y_labels': (N, K, N_y), 'weights': (N, K)}`` float32.

    * ``sigma == 0`` (SimDR): bin ``b = round(x·k)`` (half to even). The vector is
      ``ε/(N−1)`` everywhere and ``1−ε`` at ``b`` (``ε = label_smoothing``; ``ε = 0`` gives
      a plain one-hot). Weight 0 when invisible or when ``b`` is outside ``[0, N)`` on
      either axis; such a keypoint's vector is built, as the official code does, at the
      bin **clamped** into ``[0, N−1]`` (``filter_target_simdr``; the official loss then
      smooths that clamped class index) — its weight 0 keeps it out of the loss. (mmpose
      leaves a zero vector; only the weights matter for training.) ``center`` plays no
      role here.
    * ``sigma > 0`` (SA-SimDR): ``t[i] = exp(−(i−μ)²/2σ²)/(σ√(2π))`` with σ in **bins**;
      ``μ = x·k`` for ``center='float'`` (official ``generate_sa_simdr``), ``μ = round(x·k)``
      for ``center='round'`` (mmpose ``SimCCLabel._map_coordinates``). Weight 0 when
      invisible, and

      - ``center='float'``: when the official ``adjust_target_weight`` test fails, taken
        literally — ``ul = int(x − 3σ)``, ``br = int(x + 3σ + 1)`` (truncation toward 0)
        with ``x`` in **pixels** but ``3σ`` in **bins**, weight 0 if ``ul ≥ W`` or
        ``br < 0`` on either axis (``W``, ``H`` input pixels);
      - ``center='round'``: mmpose ``_generate_gaussian`` — ``μ − 3σ ≥ N`` or
        ``μ + 3σ + 1 < 0`` in bins on either axis.

      Only keypoints with weight 1 get a Gaussian; the others get zero vectors (official
      ``if v > 0.5``). A keypoint just outside the image can keep weight 1 and a truncated
      Gaussian whose peak lies off the vector, as in both codes.

    ``decode(x_logits, y_logits)`` → ``(keypoints (N, K, 2) input pixels, scores (N, K))``:
    optional softmax over bins, argmax per axis, keypoint ``= index / k``, score from the
    two axes' maxima by the ``confidence`` rule.

    Args:
        input_size: ``(W, H)`` of the network input in pixels.
        split_ratio: ``k`` > 0, bins per input pixel; ``(N_x, N_y) = (int(W·k), int(H·k))``,
            at least 2 each.
        sigma: Gaussian σ in bins, ≥ 0; 0 selects one-hot labels.
        label_smoothing: ``ε`` in ``[0, 1)`` for one-hot labels (official default 0.1).
        center: ``'float'`` (official SA-SimDR) or ``'round'`` (mmpose); Gaussian only.
        confidence: ``'max'`` (official SimDR), ``'min'`` (official SA-SimDR and mmpose) or
            ``'auto'`` = ``'max'`` if ``sigma == 0`` else ``'min'``.
        decode_softmax: ``True`` (official) takes argmax and maxima of the softmax;
            ``False`` (mmpose ``get_simcc_maximum``) of the raw vectors, and sets the
            location to bin −1 — keypoint ``−1/k`` px after mmpose's ``/ k`` — wherever the
            score is ≤ 0 (softmax scores are always > 0, so the rule never fires there).
    """

    def __init__(
        self,
        input_size: Any = (192, 256),
        split_ratio: float = 2.0,
        sigma: float = 0.0,
        label_smoothing: float = 0.1,
        center: str = "float",
        confidence: str = "auto",
        decode_softmax: bool = True,
    ) -> None:
        self.input_size = check_size2(input_size, "input_size")
        self.split_ratio = _split_ratio(split_ratio)
        _num_bins(self.input_size, self.split_ratio, min_bins=2)
        self.sigma = check_number(sigma, "sigma", low=0.0)
        self.label_smoothing = check_number(
            label_smoothing, "label_smoothing", low=0.0, high=1.0, high_inclusive=False
        )
        self.center = check_choice(center, "center", CENTERS)
        self.confidence = check_choice(confidence, "confidence", CONFIDENCES)
        if not isinstance(decode_softmax, (bool, np.bool_)):
            raise TypeError(
                f"decode_softmax: expected a bool, got {type(decode_softmax).__name__}"
            )
        self.decode_softmax = bool(decode_softmax)

    @property
    def num_bins(self) -> tuple[int, int]:
        """``(N_x, N_y) = (int(W·k), int(H·k))``."""
        return _num_bins(self.input_size, self.split_ratio)

    @property
    def confidence_rule(self) -> str:
        """``'max'`` or ``'min'``: :attr:`confidence` with ``'auto'`` resolved."""
        if self.confidence != "auto":
            return self.confidence
        return "max" if self.sigma == 0 else "min"

    # -- encode ---------------------------------------------------------------------------

    def encode(self, keypoints: Any, visible: Any = None, **extra: Any) -> dict[str, torch.Tensor]:
        """``keypoints (N, K, 2)`` input pixels, ``visible (N, K)`` in {0, 1} →
        ``{'x_labels': (N, K, N_x), 'y_labels': (N, K, N_y), 'weights': (N, K)}``."""
        self.reject_extra(extra)
        kp, vis = self.prepare(keypoints, visible, dim=2)
        kp = _wide(kp)
        mu = kp * self.split_ratio  # (N, K, 2) in bins
        if self.sigma == 0:
            x_labels, y_labels, weights = self._encode_one_hot(mu, vis)
        else:
            x_labels, y_labels, weights = self._encode_gaussian(kp, mu, vis)
        return {"x_labels": x_labels, "y_labels": y_labels, "weights": weights}

    def _encode_one_hot(self, mu: torch.Tensor, vis: torch.Tensor):
        nx, ny = self.num_bins
        size = torch.tensor([nx, ny], dtype=mu.dtype, device=mu.device)
        bins = torch.round(mu)  # np.around: half to even
        inside = ((bins >= 0) & (bins < size)).all(-1)
        weights = vis * inside
        index = torch.minimum(bins.clamp_min(0), size - 1).long()  # official clamping
        eps = self.label_smoothing
        return (
            _smoothed_one_hot(index[..., 0], nx, eps),
            _smoothed_one_hot(index[..., 1], ny, eps),
            weights,
        )

    def _encode_gaussian(self, kp: torch.Tensor, mu: torch.Tensor, vis: torch.Tensor):
        nx, ny = self.num_bins
        radius = 3.0 * self.sigma  # in bins, in both codes
        if self.center == "float":
            centre = mu
            # adjust_target_weight, literally: keypoint in pixels, radius in bins.
            size = torch.tensor(self.input_size, dtype=kp.dtype, device=kp.device)
            ul = torch.trunc(kp - radius)
            br = torch.trunc(kp + radius + 1)
        else:
            # mmpose rounds the float32 product (its keypoints are float32): a float32
            # keypoint whose product lands exactly on a half bin rounds as it does there.
            centre = torch.round(kp.to(torch.float32) * self.split_ratio).to(mu.dtype)
            size = torch.tensor([nx, ny], dtype=mu.dtype, device=mu.device)
            ul = centre - radius
            br = centre + radius + 1
        outside = ((ul >= size) | (br < 0)).any(-1)
        weights = vis * ~outside
        active = weights > 0.5
        return (
            _gaussian_1d(centre[..., 0], nx, self.sigma, active),
            _gaussian_1d(centre[..., 1], ny, self.sigma, active),
            weights,
        )

    # -- decode ---------------------------------------------------------------------------

    def _check_bins(self, value: Any, name: str, n: int, axis: str) -> None:
        shape = getattr(value, "shape", None)
        if shape is not None and len(shape) == 3 and shape[-1] != n:
            size = self.input_size[0 if axis == "x" else 1]
            raise ValueError(
                f"{name}: expected shape (N, K, N_{axis}={n}) — {size} px × split_ratio "
                f"{self.split_ratio} — got {tuple(shape)}"
            )

    def decode(self, x_logits: Any, y_logits: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``x_logits (N, K, N_x)``, ``y_logits (N, K, N_y)`` (network outputs, or labels) →
        ``(keypoints (N, K, 2) input pixels, scores (N, K))``.

        Keypoint ``= argmax / k``; score ``max`` or ``min`` of the two axes' maximum
        (:attr:`confidence_rule`), of the softmax probabilities when
        :attr:`decode_softmax` else of the raw values (then location −1 bin where the
        score is ≤ 0). Float tensors keep their dtype (others become float32); the
        outputs are on the inputs' device. Ties go to the lowest bin (``argmax``)."""
        nx, ny = self.num_bins
        self._check_bins(x_logits, "x_logits", nx, "x")
        self._check_bins(y_logits, "y_logits", ny, "y")
        x, y = as_floats(
            (x_logits, "x_logits", ("N", "K", nx)),
            (y_logits, "y_logits", ("N", "K", ny)),
        )
        if self.decode_softmax:
            x, y = F.softmax(x, dim=-1), F.softmax(y, dim=-1)
        ix, iy = x.argmax(-1), y.argmax(-1)
        vx, vy = x.amax(-1), y.amax(-1)
        scores = torch.maximum(vx, vy) if self.confidence_rule == "max" else torch.minimum(vx, vy)
        locs = torch.stack([ix, iy], dim=-1).to(x.dtype)
        if not self.decode_softmax:  # mmpose get_simcc_maximum
            locs = torch.where((scores <= 0).unsqueeze(-1), -1.0, locs)
        return locs / self.split_ratio, scores


# ----------------------------------------------------------------------------- loss


def simdr_kl_loss(
    x_logits: Any,
    y_logits: Any,
    x_labels: Any,
    y_labels: Any,
    weights: Any,
    reduction: str = "official",
    beta: float = 1.0,
) -> torch.Tensor:
    """KL divergence between label vectors and the softmax of the logits, per axis.

    ``q = log_softmax(beta · logits)`` over bins and, per joint and axis,
    ``KL(p ‖ softmax) = Σ_bins p (log p − q)`` with ``0 · log 0 = 0`` (torch's
    ``KLDivLoss``). With ``B`` the batch size and ``K`` the number of joints:

    * ``'official'`` — leeyegy/SimCC ``KLDiscretLoss`` (all SA-SimDR configs): KL **mean**
      over bins, × weight, mean over the batch, summed over joints and the two axes, / K;
      i.e. ``Σ_{n,k} w·(mean KL_x + mean KL_y) / (B·K)``.
    * ``'nmt'`` — leeyegy/SimCC ``NMTCritierion`` (one-hot SimDR configs): KL **summed**
      over bins, × weight, summed over joints and axes, / B (not / K). The official
      criterion builds the smoothed one-hot itself from class indices; here the codec
      (:class:`SimDR`, ``sigma=0``) already did, so the same label vectors go in.
    * ``'mmpose'`` — mmpose ``KLDiscretLoss(beta, label_softmax=False,
      use_target_weight=True)``: KL mean over bins, × weight, **summed** over ``B·K``,
      summed over the axes, / K — ``B ×`` the official value when ``beta = 1``.

    ``beta`` multiplies the logits before the log-softmax in every reduction (the official
    losses have no temperature, i.e. ``beta = 1``; mmpose's RTMPose configs use 10).

    Args:
        x_logits, y_logits: ``(B, K, N_x)``, ``(B, K, N_y)`` raw network outputs.
        x_labels, y_labels: same shapes, label vectors ≥ 0 (:meth:`SimDR.encode`).
        weights: ``(B, K)`` per-joint weights (0 drops a joint).
        reduction: ``'official'``, ``'nmt'`` or ``'mmpose'``.
        beta: logit scale, > 0.

    Returns:
        A scalar tensor; gradients flow to the logits (labels and weights are constants
        of the loss but are not detached).
    """
    check_choice(reduction, "reduction", LOSS_REDUCTIONS)
    beta = check_number(beta, "beta", low=0.0, low_inclusive=False)
    xl, yl, xt, yt, w = as_floats(
        (x_logits, "x_logits", ("B", "K", "N_x")),
        (y_logits, "y_logits", ("B", "K", "N_y")),
        (x_labels, "x_labels", ("B", "K", "N_x")),
        (y_labels, "y_labels", ("B", "K", "N_y")),
        (weights, "weights", ("B", "K")),
    )
    for t, name in ((xt, "x_labels"), (yt, "y_labels")):
        if bool((t < 0).any()):
            raise ValueError(
                f"{name}: expected probabilities >= 0, got a minimum of {float(t.min()):.4g}"
            )
    batch, num_joints = w.shape

    def kl(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        q = F.log_softmax(beta * logits, dim=-1)
        return torch.xlogy(labels, labels) - labels * q  # (B, K, N)

    kl_x, kl_y = kl(xl, xt), kl(yl, yt)
    if reduction == "nmt":
        return ((kl_x.sum(-1) + kl_y.sum(-1)) * w).sum() / batch
    per_joint = (kl_x.mean(-1) + kl_y.mean(-1)) * w
    if reduction == "official":
        return per_joint.sum() / (batch * num_joints)
    return per_joint.sum() / num_joints  # mmpose


# ----------------------------------------------------------------------------- network


class SimDRHead(nn.Module):
    """The SimCC head: 1×1 conv → per-joint flattening → two shared linear layers.

    ``features (N, C, h, w)`` → ``final_layer`` Conv 1×1 ``C → K·t`` → rearrange
    ``'b (k t) h w -> b k (t h w)'`` (joint ``k`` owns channels ``k·t … k·t+t−1``) →
    ``mlp_head_x: Linear(t·h·w → N_x)`` and ``mlp_head_y: Linear(t·h·w → N_y)``, the
    same two layers for every joint → ``(x_logits (N, K, N_x), y_logits (N, K, N_y))``,
    raw logits (softmax lives in the loss and the decoder).

    * ``channels_per_joint=1`` on a stride-4 map: the standard head (official
      ``pose_resnet.py`` / ``pose_hrnet.py`` after the deconvs or the HRNet stride-4
      branch; e.g. 256×192 input → 64×48 map → 3072 inputs per linear layer).
    * ``channels_per_joint=t > 1`` on a stride-32 map: the upsample-free variant
      (``pose_resnet_upfree.py``: ``t = 28`` at 256×192, 32 at 64×64 / 128×128).

    Initialisation as the official ``init_weights``: the 1×1 conv N(0, 0.001²) with bias
    0; the linear layers keep PyTorch's default (the official code does not touch them).
    Extra parameters of the two linears: ``t·h·w·(N_x + N_y) + N_x + N_y``.

    Args:
        in_channels: ``C`` of the feature map.
        num_joints: ``K``.
        feature_size: ``(w, h)`` of the feature map (checked in :meth:`forward`).
        input_size: ``(W, H)`` of the network input; sets ``N_x, N_y``.
        split_ratio: ``k`` > 0.
        channels_per_joint: ``t`` ≥ 1.
    """

    def __init__(
        self,
        in_channels: int,
        num_joints: int,
        feature_size: Any,
        input_size: Any,
        split_ratio: float = 2.0,
        channels_per_joint: int = 1,
    ) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels", low=1)
        self.num_joints = check_int(num_joints, "num_joints", low=1)
        self.feature_size = check_size2(feature_size, "feature_size")
        self.input_size = check_size2(input_size, "input_size")
        self.split_ratio = _split_ratio(split_ratio)
        self.channels_per_joint = check_int(channels_per_joint, "channels_per_joint", low=1)
        self.num_bins = _num_bins(self.input_size, self.split_ratio)
        w, h = self.feature_size
        self.head_input = self.channels_per_joint * h * w
        nx, ny = self.num_bins

        self.final_layer = nn.Conv2d(self.in_channels, self.num_joints * self.channels_per_joint, 1)
        self.mlp_head_x = nn.Linear(self.head_input, nx)
        self.mlp_head_y = nn.Linear(self.head_input, ny)
        nn.init.normal_(self.final_layer.weight, mean=0.0, std=0.001)
        nn.init.zeros_(self.final_layer.bias)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, C, h, w) -> (x_logits (N, K, N_x), y_logits (N, K, N_y))``."""
        check_input(features, self.in_channels, name="features")
        w, h = self.feature_size
        if tuple(features.shape[-2:]) != (h, w):
            raise ValueError(
                f"features: expected a {h}×{w} map (N, {self.in_channels}, {h}, {w}) — "
                f"feature_size (w, h) = {self.feature_size} — got shape "
                f"{tuple(features.shape)}"
            )
        z = self.final_layer(features)
        z = z.reshape(z.shape[0], self.num_joints, self.head_input)  # b (k t) h w -> b k (t h w)
        return self.mlp_head_x(z), self.mlp_head_y(z)


class SimDRNet(nn.Module):
    """A backbone followed by a :class:`SimDRHead`.

    ``forward(images (N, C, H, W)) -> (x_logits (N, K, N_x), y_logits (N, K, N_y))``.

    The backbone is any ``nn.Module`` with attributes ``out_channels`` and ``stride``
    (all of :mod:`labcore.nn.backbones`); the head sees its ``(W/stride, H/stride)`` map.
    ``SimpleBaseline()`` (stride 4) or ``HRNetLite()`` with ``channels_per_joint=1`` is
    the official SimCC network; ``SimpleBaseline(deconv_channels=())`` (stride 32) with
    ``channels_per_joint`` > 1 is the upsample-free variant.

    Args:
        backbone: the feature extractor.
        num_joints: ``K``.
        input_size: ``(W, H)``; multiples of the backbone's ``size_divisor`` (or stride).
        split_ratio: ``k`` > 0.
        channels_per_joint: ``t`` ≥ 1.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_joints: int,
        input_size: Any,
        split_ratio: float = 2.0,
        channels_per_joint: int = 1,
    ) -> None:
        super().__init__()
        if not isinstance(backbone, nn.Module):
            raise TypeError(f"backbone: expected an nn.Module, got {type(backbone).__name__}")
        for attr in ("out_channels", "stride"):
            if not hasattr(backbone, attr):
                raise TypeError(
                    f"backbone: expected attributes 'out_channels' and 'stride' (see "
                    f"labcore.nn.backbones), {type(backbone).__name__} has no {attr!r}"
                )
        self.input_size = check_size2(input_size, "input_size")
        stride = check_int(backbone.stride, "backbone.stride", low=1)
        divisor = int(getattr(backbone, "size_divisor", stride))
        W, H = self.input_size
        if W % divisor or H % divisor:
            raise ValueError(
                f"input_size: expected W and H to be multiples of {divisor} (the backbone's "
                f"size divisor), got {self.input_size}"
            )
        self.backbone = backbone
        self.num_joints = check_int(num_joints, "num_joints", low=1)
        self.split_ratio = _split_ratio(split_ratio)
        self.stride = stride
        self.feature_size = (W // stride, H // stride)
        self.in_channels = getattr(backbone, "in_channels", 3)
        self.head = SimDRHead(
            backbone.out_channels,
            self.num_joints,
            self.feature_size,
            self.input_size,
            self.split_ratio,
            channels_per_joint,
        )
        self.num_bins = self.head.num_bins

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, C, H, W) -> (x_logits (N, K, N_x), y_logits (N, K, N_y))``."""
        check_input(images, self.in_channels, name="images")
        W, H = self.input_size
        if tuple(images.shape[-2:]) != (H, W):
            raise ValueError(
                f"images: expected H×W = {H}×{W} (input_size (W, H) = {self.input_size}), "
                f"got shape {tuple(images.shape)}"
            )
        return self.head(self.backbone(images))


# ----------------------------------------------------------------------------- flip test


def flip_simdr(
    x_logits: Any, y_logits: Any, flip_index: Any, shift: bool | int = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bring the outputs for a horizontally mirrored image back to the original frame.

    Joints are permuted by ``flip_index`` (``out[:, k] = in[:, p[k]]``, both axes), the x
    vector is reversed, and then shifted toward lower bins, ``out[..., :-s] = out[..., s:]``
    (the last ``s`` bins keep their values), as the official ``SHIFT_HEATMAP`` line in
    ``validate_simdr``/``validate_sa_simdr`` does with ``s = 1``. The y vector is only
    permuted (official ``flip_back_simdr``; mmpose ``flip_vectors``).

    Args:
        x_logits, y_logits: ``(N, K, N_x)``, ``(N, K, N_y)`` outputs for the mirrored image.
        flip_index: a :class:`~labcore.skeletons.Skeleton` or a permutation ``p`` of
            ``range(K)`` (``Skeleton.flip_index``).
        shift: ``True`` (official, 1 bin), ``False`` (mmpose, none), or an int ``s ≥ 0`` of
            bins. The exact mirror alignment is ``k − 1`` bins (module docstring).

    Returns:
        ``(x, y)`` with the input shapes, float, on the inputs' device; differentiable.
    """
    x, y = as_floats(
        (x_logits, "x_logits", ("N", "K", None)),
        (y_logits, "y_logits", ("N", "K", None)),
    )
    if isinstance(shift, (bool, np.bool_)):
        s = int(bool(shift))
    else:
        s = check_int(shift, "shift", low=0)
    n = x.shape[-1]
    if s >= n:
        raise ValueError(f"shift: expected fewer bins than the x vector's {n}, got {s}")
    p = flip_permutation(flip_index, x.shape[1]).to(x.device)
    x = x.index_select(1, p).flip(-1)
    y = y.index_select(1, p)
    if s:
        x = torch.cat([x[..., s:], x[..., n - s:]], dim=-1)
    return x, y


def simdr_flip_test(
    model: Any,
    images: torch.Tensor,
    flip_index: Any,
    shift: bool | int = True,
    average: str = "probs",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip test: run ``model`` on ``images`` and on ``images.flip(-1)``, flip the second
    output back with :func:`flip_simdr`, and combine the two.

    * ``average='probs'`` (official SimDR ``validate_simdr``): the mean of the two
      softmaxes, returned as its log, ``log(½(softmax(a) + softmax(b)))`` (clamped at the
      smallest normal float so that it stays finite), so that :meth:`SimDR.decode`'s
      softmax gives back exactly the averaged probabilities (they sum to 1). Decode it with
      ``decode_softmax=True``.
    * ``average='logits'`` (official SA-SimDR ``validate_sa_simdr``, mmpose): ``½(a + b)``.

    Grad mode is the caller's (wrap in ``torch.no_grad()`` for evaluation).

    Args:
        model: callable ``images → (x_logits, y_logits)``, e.g. :class:`SimDRNet`.
        images: ``(N, C, H, W)`` float tensor.
        flip_index: :class:`~labcore.skeletons.Skeleton` or joint permutation.
        shift: as in :func:`flip_simdr`.
        average: ``'probs'`` or ``'logits'``.

    Returns:
        ``(x, y)`` shaped like the model's outputs.
    """
    check_choice(average, "average", FLIP_AVERAGES)
    if not callable(model):
        raise TypeError(f"model: expected a callable (an nn.Module), got {type(model).__name__}")
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images: expected a torch.Tensor (N, C, H, W), got {type(images).__name__}")
    if images.dim() != 4:
        raise ValueError(f"images: expected a 4-D tensor (N, C, H, W), got shape {tuple(images.shape)}")
    x, y = model(images)
    xf, yf = model(images.flip(-1))
    xf, yf = flip_simdr(xf, yf, flip_index, shift=shift)
    if average == "logits":
        return 0.5 * (x + xf), 0.5 * (y + yf)

    def log_mean_softmax(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        p = 0.5 * (F.softmax(a, dim=-1) + F.softmax(b, dim=-1))
        return torch.log(p.clamp_min(torch.finfo(p.dtype).tiny))

    return log_mean_softmax(x, xf), log_mean_softmax(y, yf)


# ----------------------------------------------------------------------------- quantisation floor


def quantisation_floor(input_size: int = 64, split_ratios: Sequence[float] = (1, 2, 3, 4), n: int = 2000,
                       seed: int = 0) -> dict[float, float]:
    """Mean |error| per axis (input px) of decoding SimDR's own one-hot labels, per k:
    the quantisation floor ``E|U(−1/2k, 1/2k)| = 1/(4k)`` (keypoints uniform inside a
    square ``input_size`` crop, ``n`` of them, drawn from ``seed``)."""
    input_size = check_int(input_size, "input_size", low=8)
    n = check_int(n, "n", low=1)
    g = torch.Generator().manual_seed(seed)
    kp = 2 + torch.rand(n, 1, 2, generator=g) * (input_size - 5)
    out = {}
    for k in split_ratios:
        codec = SimDR((input_size, input_size), float(k), sigma=0.0, label_smoothing=0.0)
        enc = codec.encode(kp)
        dec, _ = codec.decode(enc["x_labels"].clamp_min(1e-12).log(), enc["y_labels"].clamp_min(1e-12).log())
        out[float(k)] = float((dec - kp).abs().mean())
    return out
