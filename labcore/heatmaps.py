"""Gaussian heatmaps, argmax and soft-argmax — the primitives of every heatmap method.

Conventions (DESIGN.md §2): keypoints ``(N, K, 2)`` float32 in pixels, x right, y down,
**integer values at pixel centres** (pixel ``(col, row)`` covers ``[col-0.5, col+0.5)``);
heatmaps ``(N, K, h, w)``; visibility ``(N, K)`` in {0, 1}. Everything is batched torch
(no per-keypoint Python loops), runs on the device of its input and accepts numpy input.

Where the published codes disagree the convention is a named argument (METHODS.md §7):

===========================  =================================================================
``round_centers(mode=)``     ``'msra'`` mmpose/HRNet ``int(x + 0.5)`` · ``'trunc'``
                             HigherHRNet/SWAHR ``int(x)`` · ``'round'`` mmpose SimCC
                             ``np.around`` · ``'float'`` SA-SimDR / DARK
``gaussian_heatmaps``        the clean primitive: square support ``|d| <= radius`` (3σ)
``msra_heatmaps``            mmpose ``MSRAHeatmap.encode`` exactly (also for non-integer σ)
``higherhrnet_heatmaps``     HigherHRNet/SWAHR ``HeatmapGenerator`` exactly (6σ+3 kernel)
``argmax_2d(invalid_to=)``   ``-1.0`` mmpose ``get_heatmap_maximum`` · ``0.0`` HRNet
                             ``get_max_preds`` · ``None`` keep the argmax
``refine_quarter(border=)``  ``'mmpose'`` ``refine_keypoints`` · ``'official'`` HRNet/SimCC
                             ``get_final_preds``
``dark_refine``              mmpose ``refine_keypoints_dark`` (DARK, Zhang et al. 2020)
``dark_udp_refine``          mmpose ``refine_keypoints_dark_udp`` (UDP, Huang et al. 2020)
``flip_heatmaps(shift=)``    HRNet/mmpose flip-back: swap left/right maps, mirror, 1-px shift
``make_grid(kind=)``         ``'pixel'`` · ``'hemlets'`` ``i/(n-1) - 0.5`` · ``'mmpose'`` ``i/n``
===========================  =================================================================

Gaussian maps are built as the outer product of two 1-D profiles, ``g_y[row] · g_x[col]``,
which equals the published ``exp(-(dx² + dy²) / 2σ²)`` up to float32 rounding (≤ 2e-7
absolute; supports and weights are identical). Speed (1 CPU thread, 64 crops × 17
joints, 64×48 maps; bottom-up: 8 images × 10 people, 128×128) against per-keypoint numpy
loops, measured on a busy 2-core machine: msra_heatmaps 10–16×, higherhrnet_heatmaps
11–12×, refine_quarter 25–50×, dark_refine 19–32× (its blur is computed only on a small
window around each keypoint; see :func:`dark_refine`). With several threads
on a busy machine torch's thread pool can stall; benchmark with ``torch.set_num_threads``
fixed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from labcore.checks import (
    as_tensor,
    check_choice,
    check_finite,
    check_int,
    check_number,
    check_shape,
    check_size2,
)
from labcore.skeletons import flip_permutation

__all__ = [
    "ROUNDING_MODES",
    "GRID_KINDS",
    "REFINE_BORDERS",
    "round_centers",
    "gaussian_heatmaps",
    "msra_heatmaps",
    "higherhrnet_heatmaps",
    "merge_max",
    "argmax_2d",
    "refine_quarter",
    "dark_refine",
    "dark_udp_refine",
    "flip_heatmaps",
    "gaussian_blur",
    "make_grid",
    "softmax_expectation",
]

ROUNDING_MODES = ("msra", "trunc", "round", "float")
GRID_KINDS = ("pixel", "hemlets", "mmpose")
REFINE_BORDERS = ("mmpose", "official")


# ----------------------------------------------------------------------------- helpers


def _float_tensor(value: Any, name: str, shape, dims=None, finite: bool = True) -> torch.Tensor:
    """A floating tensor (finite unless ``finite=False``); float16/32/64 tensors keep their
    dtype, anything else becomes float32."""
    dtype = None if isinstance(value, torch.Tensor) and value.is_floating_point() else torch.float32
    t = as_tensor(value, name, shape=shape, dims=dims, dtype=dtype, finite=False)
    return check_finite(t, name) if finite else t


def _visible(
    visible: Any, name: str, shape, dims, device: torch.device, allow_empty: bool = False
) -> torch.Tensor:
    """Visibility as float32 in {0, 1} on ``device`` (``None`` → all ones; bool accepted)."""
    if visible is None:
        sizes = [dims[s] if isinstance(s, str) else s for s in shape]
        return torch.ones(sizes, dtype=torch.float32, device=device)
    if isinstance(visible, torch.Tensor) and visible.dtype == torch.bool:
        visible = visible.float()
    elif isinstance(visible, np.ndarray) and visible.dtype == np.bool_:
        visible = visible.astype(np.float32)
    vis = as_tensor(visible, name, shape=shape, dims=dims, device=device, allow_empty=allow_empty)
    bad = (vis != 0) & (vis != 1)
    if bool(bad.any()):
        got = sorted({float(v) for v in vis[bad].flatten()[:5].tolist()})
        raise ValueError(f"{name}: expected values in {{0, 1}}, got {got}")
    return vis


def _sigma(sigma: Any, name: str = "sigma") -> float:
    return check_number(sigma, name, low=0.0, low_inclusive=False)


def _exp_neg(q: torch.Tensor) -> torch.Tensor:
    """``exp(-q)`` for ``q >= 0``, with results below float32's normal range (``q > 87``,
    values < 1.7e-38) flushed to 0: vectorised ``exp`` takes a ~10x slower path on
    underflow, and such values are far outside every Gaussian's support anyway."""
    return torch.where(q <= 87.0, torch.exp(-q.clamp_max(87.0)), 0.0)


def _outer(gy: torch.Tensor, gx: torch.Tensor) -> torch.Tensor:
    """``(..., h)`` and ``(..., w)`` profiles → ``(..., h, w)`` maps."""
    return gy.unsqueeze(-1) * gx.unsqueeze(-2)


# ----------------------------------------------------------------------------- centres


def round_centers(points: Any, mode: str = "msra") -> torch.Tensor:
    """Round keypoint coordinates to a Gaussian centre the way each published code does.

    Args:
        points: any shape, float pixels (tensor or numpy).
        mode: ``'msra'`` — ``int(x + 0.5)`` with C-style truncation toward zero, exactly
            numpy's ``(x + 0.5).astype(np.int64)`` as in HRNet/SimpleBaseline and mmpose
            ``generate_gaussian_heatmaps`` (so ``-0.7 → 0``, ``-1.5 → -1``, ``2.5 → 3``);
            ``'trunc'`` — ``int(x)`` (HigherHRNet/SWAHR ``HeatmapGenerator``);
            ``'round'`` — ``np.around``, half to even (mmpose ``SimCCLabel``: ``2.5 → 2``);
            ``'float'`` — unchanged (SA-SimDR, DARK/unbiased encoding).

    Returns:
        A floating tensor of the input's shape holding integer values (except for
        ``'float'``); float32 unless the input was a float64/float16 tensor. The
        arithmetic is done in that dtype, like numpy on float32 keypoints.
    """
    check_choice(mode, "mode", ROUNDING_MODES)
    p = _float_tensor(points, "points", None)
    # ``+ 0.0`` turns the -0.0 that truncation gives for (-1, 0) into 0.0.
    if mode == "msra":
        return torch.trunc(p + 0.5) + 0.0
    if mode == "trunc":
        return torch.trunc(p) + 0.0
    if mode == "round":
        return torch.round(p) + 0.0
    return p


# ----------------------------------------------------------------------------- heatmaps


def gaussian_heatmaps(
    centers: Any,
    heatmap_size: Any,
    sigma: float,
    *,
    visible: Any = None,
    radius: float | None = None,
    normalize: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Peak-1 Gaussians on a square support box, one map per keypoint.

    ``value(row, col) = exp(-((col - cx)² + (row - cy)²) / (2σ²))`` where
    ``|col - cx| <= radius`` and ``|row - cy| <= radius`` (a square box, as the published
    codes cut the kernel), 0 elsewhere. Centres may be integers (round them first with
    :func:`round_centers`) or floats (SA-SimDR / DARK style).

    Args:
        centers: ``(N, K, 2)`` centres in **heatmap** pixels ``(x, y)``.
        heatmap_size: ``(w, h)``.
        sigma: Gaussian σ in heatmap pixels, > 0.
        visible: ``(N, K)`` in {0, 1}; invisible keypoints get an all-zero map.
        radius: half side of the support box in heatmap pixels (default ``3σ``).
        normalize: divide each map by its sum (mmpose ``IntegralRegressionLabel``); an
            all-zero map stays zero (mmpose would give NaN).

    Returns:
        ``heatmaps (N, K, h, w)`` float32 and ``in_bounds (N, K)`` bool: mmpose's test
        ``not (left >= w or top >= h or right < 0 or bottom < 0)`` with
        ``left = cx - radius``, ``right = cx + radius + 1`` (same for y). Note the ``+ 1``:
        a centre exactly ``radius + 1`` px left of or above the map is "in bounds" with an
        all-zero map, as in mmpose. ``in_bounds`` ignores visibility.
    """
    dims: dict[str, int] = {}
    c = as_tensor(centers, "centers", shape=("N", "K", 2), dims=dims)
    w, h = check_size2(heatmap_size, "heatmap_size")
    sigma = _sigma(sigma)
    r = 3.0 * sigma if radius is None else check_number(radius, "radius", low=0.0)
    vis = _visible(visible, "visible", ("N", "K"), dims, c.device)
    cx, cy = c[..., 0], c[..., 1]
    in_bounds = ~((cx - r >= w) | (cy - r >= h) | (cx + r + 1 < 0) | (cy + r + 1 < 0))
    two_s2 = 2.0 * sigma * sigma
    dx = torch.arange(w, dtype=torch.float32, device=c.device) - cx.unsqueeze(-1)
    dy = torch.arange(h, dtype=torch.float32, device=c.device) - cy.unsqueeze(-1)
    gx = _exp_neg((dx * dx) / two_s2) * (dx.abs() <= r) * vis.unsqueeze(-1)
    gy = _exp_neg((dy * dy) / two_s2) * (dy.abs() <= r)
    maps = _outer(gy, gx)
    if normalize:
        total = maps.sum(dim=(-2, -1), keepdim=True)
        maps = torch.where(total > 0, maps / total.clamp_min(torch.finfo(maps.dtype).tiny), 0.0)
    return maps, in_bounds


def msra_heatmaps(
    keypoints: Any,
    visible: Any,
    input_size: Any,
    heatmap_size: Any,
    sigma: float = 2.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """mmpose ``MSRAHeatmap.encode`` (``generate_gaussian_heatmaps``), one crop per row.

    Top-down: each of the N rows is one person crop, encoded as mmpose encodes a single
    instance. Stride ``s = float32(input_size / heatmap_size)``; centre
    ``mu = int(kp / s + 0.5)`` (``'msra'`` rounding, float32 arithmetic); peak-1 Gaussian;
    radius ``3σ``; weights = visible, zeroed where the support box misses the map
    (mmpose's ``left >= w or top >= h or right < 0 or bottom < 0`` test on int64
    ``left = int(mu - 3σ)``, ``right = int(mu + 3σ + 1)``).

    Non-integer σ reproduces mmpose's actual behaviour too: its kernel has
    ``ceil(6σ + 1)`` samples centred at ``x0 = (6σ + 1) // 2`` and is pasted at
    ``left = int(mu - 3σ)`` (truncation toward zero), so the peak sits at ``left + x0``,
    which can differ from ``mu`` (e.g. σ = 1.5 near the left border) and the support is
    asymmetric. For integer σ this is the symmetric ``|d| <= 3σ`` box centred on ``mu``.

    Args:
        keypoints: ``(N, K, 2)`` in **input-image** pixels.
        visible: ``(N, K)`` in {0, 1}, or ``None`` for all visible.
        input_size: ``(W, H)`` of the input image.
        heatmap_size: ``(w, h)``.
        sigma: σ in heatmap pixels (mmpose configs: 2 for 256×192, 3 for 384×288).

    Returns:
        ``heatmaps (N, K, h, w)`` float32 (equal to mmpose up to float32 rounding) and
        ``weights (N, K)`` float32.
    """
    dims: dict[str, int] = {}
    kp = as_tensor(keypoints, "keypoints", shape=("N", "K", 2), dims=dims)
    vis = _visible(visible, "visible", ("N", "K"), dims, kp.device)
    iw, ih = check_size2(input_size, "input_size")
    w, h = check_size2(heatmap_size, "heatmap_size")
    sigma = _sigma(sigma)
    dev = kp.device
    stride = torch.from_numpy((np.array([iw, ih]) / np.array([w, h])).astype(np.float32))
    mu = torch.trunc(kp / stride.to(dev) + 0.5).to(torch.int64)  # (N, K, 2)
    r = sigma * 3.0
    size = 2.0 * r + 1.0
    n_kernel = math.ceil(size)  # len(np.arange(0, size, 1))
    x0 = int(size // 2)
    mu64 = mu.to(torch.float64)
    left = torch.trunc(mu64 - r).to(torch.int64)  # (N, K, 2): left, top
    right = torch.trunc(mu64 + r + 1).to(torch.int64)  # right, bottom
    lim = torch.tensor([w, h], device=dev)
    in_bounds = ~((left >= lim) | (right < 0)).any(-1)
    hi = torch.minimum(right, left + n_kernel)
    # mmpose's kernel samples: value at offset j from `left` (the peak sits at j = x0).
    j = torch.arange(n_kernel, device=dev)
    two_s2 = torch.tensor(2.0 * sigma * sigma, dtype=torch.float32, device=dev)
    dj = (j - x0).to(torch.float32)
    kernel = torch.exp(-(dj * dj) / two_s2)  # (S,)
    # Both axes at once: scatter the kernel into zero profiles of length max(w, h) (+1
    # spare cell for samples off the map), then slice to w and h.
    size_l = max(w, h)
    pos = left.unsqueeze(-1) + j  # (N, K, 2, S)
    keep = (pos >= 0) & (pos < hi.unsqueeze(-1)) & (pos < lim.view(2, 1))
    prof = torch.zeros(*pos.shape[:-1], size_l + 1, dtype=torch.float32, device=dev)
    prof.scatter_(-1, torch.where(keep, pos, size_l), kernel * keep)
    gx = prof[..., 0, :w] * (in_bounds & (vis >= 0.5)).unsqueeze(-1)
    gy = prof[..., 1, :h]
    weights = vis * in_bounds
    return _outer(gy, gx), weights


def higherhrnet_heatmaps(
    keypoints: Any,
    visible: Any,
    heatmap_size: Any,
    sigma: float = 2.0,
) -> torch.Tensor:
    """HigherHRNet/SWAHR ``HeatmapGenerator``: bottom-up targets, people merged by max.

    Official ``lib/dataset/target_generators/target_generators.py``: centre
    ``(int(x), int(y))`` (truncation toward zero, so ``x = -0.5`` lands on column 0);
    keypoints with ``visible == 0`` or a centre outside ``[0, w) × [0, h)`` are skipped;
    kernel of ``6σ + 3`` samples whose value at index ``i`` is
    ``exp(-(i - (3σ + 1))² / 2σ²)``, pasted at ``ul = round(x - 3σ - 1)`` up to
    ``br = round(x + 3σ + 2)`` (numpy rounding, half to even); people are merged by
    element-wise max. For integer σ this is a peak-1 Gaussian on the square support
    ``|d| <= 3σ + 1`` around the truncated centre; non-integer σ reproduces the official
    arithmetic (peak at ``ul + 3σ + 1``). The official kernel is float64 and the maps
    float32, as here. Implementation: kernel-sized patches scattered with an ``amax``
    reduction (work ∝ keypoints × kernel area, independent of the map size).

    Args:
        keypoints: ``(N, P, K, 2)`` in heatmap pixels — N images, P people each (P may
            be 0: all-zero maps).
        visible: ``(N, P, K)`` in {0, 1}, or ``None``.
        heatmap_size: ``(w, h)`` (the official generator is square: ``w == h == res``).
        sigma: σ in heatmap pixels (official ``DATASET.SIGMA = 2``).

    Returns:
        ``(N, K, h, w)`` float32.
    """
    dims: dict[str, int] = {}
    kp = as_tensor(keypoints, "keypoints", shape=("N", "P", "K", 2), dims=dims, allow_empty=True)
    if kp.shape[0] == 0 or kp.shape[2] == 0:
        raise ValueError(
            f"keypoints: expected a non-empty batch (N, K >= 1), got {tuple(kp.shape)}"
        )
    vis = _visible(visible, "visible", ("N", "P", "K"), dims, kp.device, allow_empty=True)
    w, h = check_size2(heatmap_size, "heatmap_size")
    sigma = _sigma(sigma)
    n, p, k = kp.shape[:3]
    dev = kp.device
    if p == 0:
        return torch.zeros(n, k, h, w, dtype=torch.float32, device=dev)
    c = torch.trunc(kp).to(torch.int64)  # (N, P, K, 2)
    lim = torch.tensor([w, h], device=dev)
    active = (vis > 0) & ((c >= 0) & (c < lim)).all(-1)
    c64 = c.to(torch.float64)
    ul = torch.round(c64 - 3 * sigma - 1).to(torch.int64)
    br = torch.round(c64 + 3 * sigma + 2).to(torch.int64)
    n_kernel = math.ceil(6 * sigma + 3)  # len(np.arange(0, 6σ + 3, 1, float))
    hi = torch.minimum(torch.minimum(br, ul + n_kernel), lim)
    mid = 3 * sigma + 1
    two_s2 = 2.0 * sigma * sigma
    # Kernel-sized patches (N, P, K, S[, S]) scattered into the maps with a max-reduction:
    # work grows with the number of keypoints times the kernel area, not the map size.
    j = torch.arange(n_kernel, device=dev)
    pix = ul.unsqueeze(-2) + j.view(-1, 1)  # (N, P, K, S, 2): column/row of sample j
    inside = (pix >= 0) & (pix < hi.unsqueeze(-2))
    j64 = j.to(torch.float64).view(-1, 1)
    g = torch.exp(-((j64 - mid) ** 2) / two_s2).to(torch.float32) * inside
    gx = g[..., 0] * active.unsqueeze(-1)
    gy = g[..., 1]
    vals = _outer(gy, gx)  # (N, P, K, S, S), exactly 0 off the support and off the map
    base = (torch.arange(n, device=dev).view(n, 1, 1) * k + torch.arange(k, device=dev)) * (h * w)
    rows = pix[..., 1].clamp(0, h - 1)
    cols = pix[..., 0].clamp(0, w - 1)
    # Samples off the map carry 0 and land on a clamped in-map cell: max(m, 0) = m there
    # (every map is >= 0), so no dump cell or mask is needed.
    idx = (base.unsqueeze(-1) + rows * w).unsqueeze(-1) + cols.unsqueeze(-2)
    out = torch.zeros(n * k * h * w, dtype=torch.float32, device=dev)
    out.scatter_reduce_(0, idx.reshape(-1), vals.reshape(-1), reduce="amax")
    return out.view(n, k, h, w)


def merge_max(heatmaps: Any, dim: int = 1) -> torch.Tensor:
    """Merge maps along ``dim`` by element-wise max (people → one map per joint, as the
    bottom-up generators do). ``heatmaps`` any floating shape; returns it without ``dim``."""
    hm = _float_tensor(heatmaps, "heatmaps", (..., None))
    dim = check_int(dim, "dim", low=-hm.dim(), high=hm.dim() - 1)
    if hm.shape[dim] == 0:
        raise ValueError(f"heatmaps: dimension {dim} to merge is empty, shape {tuple(hm.shape)}")
    return hm.amax(dim=dim)


# ----------------------------------------------------------------------------- decoding


def argmax_2d(heatmaps: Any, invalid_to: float | None = -1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Location and value of each map's maximum.

    mmpose ``get_heatmap_maximum`` semantics: ties resolve to the **first** maximum in
    row-major order (numpy/torch ``argmax``); where ``maxval <= 0`` the coordinates are
    set to ``invalid_to`` (mmpose ``-1.0``; HRNet ``get_max_preds`` multiplies by the mask,
    i.e. ``0.0``; ``None`` keeps the argmax).

    Args:
        heatmaps: ``(..., h, w)`` floating.

    Returns:
        ``coords (..., 2)`` float32 ``(x = col, y = row)`` in heatmap pixels and
        ``maxvals (...)`` in the heatmaps' dtype.
    """
    # Not scanned for NaN/inf up front: argmax treats NaN as the largest value and +inf is
    # the largest, so any NaN or +inf surfaces in ``maxvals`` (checked below; an all -inf
    # map too) — one pass over the maps instead of two.
    hm = _float_tensor(heatmaps, "heatmaps", (..., None, None), finite=False)
    if invalid_to is not None:
        invalid_to = check_number(invalid_to, "invalid_to")
    w = hm.shape[-1]
    flat = hm.flatten(-2)
    if flat.device.type == "cpu" and flat.dtype in (torch.float32, torch.float64):
        # numpy's argmax is ~10x faster than torch's on CPU; same first-maximum rule.
        idx = torch.as_tensor(np.asarray(flat.detach().numpy().argmax(-1)))
    else:
        idx = flat.argmax(dim=-1)
    maxvals = flat.gather(-1, idx.unsqueeze(-1)).squeeze(-1)
    if maxvals.numel() and not bool(torch.isfinite(maxvals.sum())):
        check_finite(hm, "heatmaps")  # names the NaN/inf count
    coords = torch.stack([idx % w, torch.div(idx, w, rounding_mode="floor")], -1).to(torch.float32)
    if invalid_to is not None:
        coords = torch.where((maxvals <= 0).unsqueeze(-1), invalid_to, coords)
    return coords, maxvals


def _coords_and_maps(coords: Any, heatmaps: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated ``coords (..., 2)`` and ``heatmaps (..., h, w)``. The maps are not scanned
    for NaN here: the callers check the values they actually read."""
    hm = _float_tensor(heatmaps, "heatmaps", (..., None, None), finite=False)
    lead = tuple(hm.shape[:-2])
    xy = as_tensor(coords, "coords", shape=(..., 2), device=hm.device)
    if tuple(xy.shape[:-1]) != lead:
        raise ValueError(
            f"coords: expected shape {lead + (2,)} to match heatmaps {tuple(hm.shape)}, "
            f"got {tuple(xy.shape)}"
        )
    return xy, hm


def refine_quarter(coords: Any, heatmaps: Any, border: str = "mmpose") -> torch.Tensor:
    """Quarter-pixel refinement: move ±0.25 px toward the larger neighbour on each axis.

    The shift is ``0.25 · sign(hm[y, x+1] - hm[y, x-1])`` in x (zero difference → no
    shift), likewise in y, applied only where the border condition holds:

    * ``'mmpose'`` (``codecs/utils/refinement.py::refine_keypoints``): ``x, y =
      int(coords)`` (truncation); x shifts if ``1 < x < w-1 and 0 < y < h``, y shifts if
      ``1 < y < h-1 and 0 < x < w`` — the two axes are tested separately.
    * ``'official'`` (HRNet / SimCC ``lib/core/inference.py::get_final_preds``):
      ``px, py = floor(coords + 0.5)``; both axes shift only if
      ``1 < px < w-1 and 1 < py < h-1``.

    Args:
        coords: ``(..., 2)`` heatmap pixels ``(x, y)``, e.g. from :func:`argmax_2d`
            (mmpose's ``-1`` for invalid maps falls outside both conditions).
        heatmaps: ``(..., h, w)`` with the same leading shape. A NaN/inf among the
            neighbours read raises ``ValueError``.
        border: ``'mmpose'`` or ``'official'``.

    Returns:
        Refined ``(..., 2)`` float32 coordinates (a new tensor).
    """
    check_choice(border, "border", REFINE_BORDERS)
    xy, hm = _coords_and_maps(coords, heatmaps)
    h, w = hm.shape[-2:]
    lead = xy.shape[:-1]
    flat = hm.reshape(-1, h * w)
    pts = xy.reshape(-1, 2)
    if border == "mmpose":
        ix = torch.trunc(pts[:, 0]).to(torch.int64)
        iy = torch.trunc(pts[:, 1]).to(torch.int64)
        ok = torch.stack(
            [
                (ix > 1) & (ix < w - 1) & (iy > 0) & (iy < h),
                (iy > 1) & (iy < h - 1) & (ix > 0) & (ix < w),
            ],
            -1,
        )
    else:
        ix = torch.floor(pts[:, 0] + 0.5).to(torch.int64)
        iy = torch.floor(pts[:, 1] + 0.5).to(torch.int64)
        inner = (ix > 1) & (ix < w - 1) & (iy > 1) & (iy < h - 1)
        ok = torch.stack([inner, inner], -1)
    # Neighbours right, left, below, above in one gather; indices clamped into the map
    # (the masks discard the clamped ones).
    rows = torch.stack([iy, iy, iy + 1, iy - 1], -1).clamp(0, h - 1)
    cols = torch.stack([ix + 1, ix - 1, ix, ix], -1).clamp(0, w - 1)
    nb = flat.gather(1, rows * w + cols)
    nb = torch.where(torch.repeat_interleave(ok, 2, dim=-1), nb, 0.0)
    check_finite(nb, "heatmaps (neighbours of coords)")
    diff = torch.stack([nb[:, 0] - nb[:, 1], nb[:, 2] - nb[:, 3]], -1)
    return (pts + 0.25 * torch.sign(diff).to(torch.float32)).reshape(*lead, 2)


def _cv2_gaussian_kernel(ksize: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``cv2.getGaussianKernel(ksize, 0)``: the fixed binomial kernels for ksize ≤ 7, else
    a sampled Gaussian with ``σ = 0.3·((ksize-1)·0.5 - 1) + 0.8``, normalised to sum 1."""
    small = {
        1: [1.0],
        3: [0.25, 0.5, 0.25],
        5: [0.0625, 0.25, 0.375, 0.25, 0.0625],
        7: [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125],
    }
    if ksize in small:
        k = torch.tensor(small[ksize], dtype=torch.float64)
    else:
        s = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8
        x = torch.arange(ksize, dtype=torch.float64) - (ksize - 1) * 0.5
        k = torch.exp(-0.5 * x * x / (s * s))
        k = k / k.sum()
    return k.to(dtype=dtype, device=device)


def gaussian_blur(heatmaps: Any, kernel: int = 11) -> torch.Tensor:
    """mmpose ``gaussian_blur`` (DARK's heatmap modulation), batched.

    Each map is zero-padded by ``(kernel-1)/2``, blurred with ``cv2.GaussianBlur(…,
    (kernel, kernel), 0)`` (σ from the kernel size: 11 → 2, 17 → 3) and rescaled so its
    maximum equals the original maximum. A map whose blurred maximum is 0 is left
    unscaled (mmpose would divide by zero).

    Args:
        heatmaps: ``(..., h, w)`` floating.
        kernel: odd kernel size ≥ 1.

    Returns:
        ``(..., h, w)`` blurred maps (same dtype).
    """
    hm = _float_tensor(heatmaps, "heatmaps", (..., None, None))
    return _blur(hm, kernel, "kernel")


def _odd_kernel(kernel: Any, name: str) -> int:
    kernel = check_int(kernel, name, low=1)
    if kernel % 2 != 1:
        raise ValueError(f"{name}: expected an odd kernel size, got {kernel}")
    return kernel


def _band(n_out: int, n_in: int, g: torch.Tensor, shift: int = 0) -> torch.Tensor:
    """``(n_out, n_in)`` matrix ``T[i, j] = g[j - i - shift + r]`` (0 outside the kernel):
    ``T @ x`` is the zero-padded 1-D correlation of ``x`` with ``g`` sampled at
    ``i + shift - pad_in`` where the input was padded by ``pad_in``."""
    r = (g.numel() - 1) // 2
    off = torch.arange(n_in, device=g.device) - torch.arange(n_out, device=g.device).view(-1, 1)
    off = off - shift + r
    ok = (off >= 0) & (off < g.numel())
    return torch.where(ok, g[off.clamp(0, g.numel() - 1)], 0.0)


def _blur(hm: torch.Tensor, kernel: Any, name: str) -> torch.Tensor:
    kernel = _odd_kernel(kernel, name)
    shape = hm.shape
    h, w = shape[-2:]
    x = hm.reshape(-1, h, w)
    g = _cv2_gaussian_kernel(kernel, hm.dtype, hm.device)
    # Separable zero-padded blur as two banded matmuls (much faster than a 1-channel conv).
    y = _band(h, h, g) @ x @ _band(w, w, g).T
    return _rescale_to_max(x, y).reshape(shape)


def _rescale_to_max(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Scale each blurred map ``y (B, h, w)`` so its max equals that of ``x`` (mmpose);
    a blurred max of 0 leaves the map unscaled (mmpose would divide by zero)."""
    orig_max = x.amax(dim=(-2, -1), keepdim=True)
    new_max = y.amax(dim=(-2, -1), keepdim=True)
    nz = new_max != 0
    return y * torch.where(nz, orig_max / torch.where(nz, new_max, 1.0), 1.0)


# The 13 cells of the 5×5 block around (x, y) that DARK's stencils read.
_DARK_CELLS = torch.tensor(
    [[0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0]],
    dtype=torch.bool,
)


def dark_refine(coords: Any, heatmaps: Any, blur_kernel: int = 11) -> torch.Tensor:
    """DARK sub-pixel refinement (Zhang et al., CVPR 2020), as mmpose
    ``refine_keypoints_dark``.

    mmpose's steps: :func:`gaussian_blur` (keeps each map's maximum), ``L = log(max(hm,
    1e-10))``, then at ``x, y = int(coords)`` (truncation), only where
    ``1 < x < w-2 and 1 < y < h-2``, a second-order Taylor (Newton) step
    ``offset = -H⁻¹ ∇`` with mmpose's stencils ``dx = ½(L[y,x+1] - L[y,x-1])``,
    ``dxx = ¼(L[y,x+2] - 2L[y,x] + L[y,x-2])``,
    ``dxy = ¼(L[y+1,x+1] - L[y-1,x+1] - L[y+1,x-1] + L[y-1,x-1])`` (and the y analogues).
    The step is skipped where ``det H = dxx·dyy - dxy² == 0`` exactly (mmpose's test;
    ``H`` is inverted in closed form).

    Only the 13 blurred values the stencils read are computed (a local
    ``(5 + 2r)²`` window per keypoint, r the blur radius). The max-rescaling adds
    ``log(scale)`` to every ``L`` and cancels in all the differences unless the
    ``1e-10`` clamp bites; maps where it could (a stencil value below 1e-10, or a map
    maximum ≤ 0) fall back to the full-map blur, so the result equals mmpose's.

    Args:
        coords: ``(..., 2)`` heatmap pixels, e.g. :func:`argmax_2d` output.
        heatmaps: ``(..., h, w)`` with the same leading shape (raw network outputs or
            targets; not modified). NaN/inf in the window read around a keypoint raises
            ``ValueError``.
        blur_kernel: odd blur kernel size (mmpose default 11, matching σ = 2 targets).

    Returns:
        Refined ``(..., 2)`` coordinates (float32).
    """
    xy, hm = _coords_and_maps(coords, heatmaps)
    kernel = _odd_kernel(blur_kernel, "blur_kernel")
    h, w = hm.shape[-2:]
    lead = xy.shape[:-1]
    maps = hm.reshape(-1, h, w)
    pts = xy.reshape(-1, 2)
    ix = torch.trunc(pts[:, 0]).to(torch.int64)
    iy = torch.trunc(pts[:, 1]).to(torch.int64)
    ok = (ix > 1) & (ix < w - 2) & (iy > 1) & (iy < h - 2)
    sel = ok.nonzero().squeeze(1)
    out = pts.clone()
    if sel.numel() == 0:
        return out.reshape(*lead, 2)
    m = sel.numel()
    x_m, y_m = ix[sel], iy[sel]
    flat = maps.reshape(-1)
    g = _cv2_gaussian_kernel(kernel, hm.dtype, hm.device)
    r = (kernel - 1) // 2
    span = 2 * r + 5
    # Window of the raw map around each keypoint, zero outside the map (= mmpose's zero
    # padding before cv2.GaussianBlur); gathered from the flat maps, no map is copied.
    o = torch.arange(span, device=hm.device) - (r + 2)
    wr = y_m.unsqueeze(1) + o  # (M, span) rows
    wc = x_m.unsqueeze(1) + o  # (M, span) cols
    valid = ((wr >= 0) & (wr < h)).unsqueeze(2) & ((wc >= 0) & (wc < w)).unsqueeze(1)
    idx = (sel * (h * w)).view(m, 1, 1) + (wr.clamp(0, h - 1) * w).unsqueeze(2)
    idx = idx + wc.clamp(0, w - 1).unsqueeze(1)
    win = torch.where(valid, flat[idx], 0.0)  # (M, span, span)
    check_finite(win, "heatmaps (around coords)")
    t = _band(5, span, g, shift=r)  # (5, span): blurred rows/cols -2..2 of the window
    block = t @ win @ t.T  # (M, 5, 5) blurred values at rows y-2..y+2, cols x-2..x+2
    # All 13 stencil values >= 1e-10 imply a positive map maximum M0 >= blurred max, so
    # mmpose's scale M0 / blurred max is >= 1, nothing is clamped, and log(scale) cancels.
    cells = _DARK_CELLS.to(hm.device)
    fast = torch.where(cells, block, 1.0).amin(dim=(-2, -1)) >= 1e-10
    logb = block.clamp_min(1e-10).log()
    slow = (~fast).nonzero().squeeze(1)
    if slow.numel():  # exact mmpose path: full blur, rescale to the max, clamp, log
        full = _blur(maps[sel[slow]], kernel, "blur_kernel")
        check_finite(full, "heatmaps")
        full = F.pad(full.clamp_min(1e-10).log(), (2, 2, 2, 2))
        rr = (y_m[slow].unsqueeze(1) + torch.arange(5, device=hm.device)).unsqueeze(2)
        cc = (x_m[slow].unsqueeze(1) + torch.arange(5, device=hm.device)).unsqueeze(1)
        fl = full.reshape(slow.numel(), -1)
        logb[slow] = fl.gather(1, (rr * (w + 4) + cc).reshape(slow.numel(), -1)).view(-1, 5, 5)
    c = logb[:, 2, 2]
    dx = 0.5 * (logb[:, 2, 3] - logb[:, 2, 1])
    dy = 0.5 * (logb[:, 3, 2] - logb[:, 1, 2])
    dxx = 0.25 * (logb[:, 2, 4] - 2 * c + logb[:, 2, 0])
    dxy = 0.25 * (logb[:, 3, 3] - logb[:, 1, 3] - logb[:, 3, 1] + logb[:, 1, 1])
    dyy = 0.25 * (logb[:, 4, 2] - 2 * c + logb[:, 0, 2])
    det = dxx * dyy - dxy * dxy
    step = det != 0
    safe = torch.where(step, det, 1.0)
    off = torch.stack([-(dyy * dx - dxy * dy) / safe, -(dxx * dy - dxy * dx) / safe], -1)
    out[sel] = pts[sel] + (off * step.unsqueeze(-1)).to(out.dtype)
    return out.reshape(*lead, 2)


def dark_udp_refine(coords: Any, heatmaps: Any, blur_kernel: int = 11) -> torch.Tensor:
    """DARK refinement as UDP uses it — mmpose ``refine_keypoints_dark_udp``.

    It differs from :func:`dark_refine` in three places: the blurred maps are clipped to
    ``[1e-3, 50]`` before the log; the stencils are the *one-pixel* ones
    ``dxx = L[y,x+1] - 2L[y,x] + L[y,x-1]``,
    ``dxy = ½(L[y+1,x+1] - L[y,x+1] - L[y+1,x] + 2L[y,x] - L[y,x-1] - L[y-1,x] + L[y-1,x-1])``
    read from the log-maps **edge-padded** by one pixel (so every keypoint is refined,
    borders included), and the Hessian is regularised, ``(H + ε·I)⁻¹`` with float32's ε,
    instead of skipped when singular.

    Args:
        coords: ``(..., 2)`` integer-valued heatmap pixels from :func:`argmax_2d`. Where a
            coordinate is negative (mmpose's ``-1`` for a map whose maximum is ≤ 0) the
            keypoint is returned unchanged (mmpose would read a neighbouring map there).
        heatmaps: ``(..., h, w)`` with the same leading shape.
        blur_kernel: odd blur kernel size (mmpose default 11).

    Returns:
        Refined ``(..., 2)`` float32 coordinates.
    """
    xy, hm = _coords_and_maps(coords, heatmaps)
    check_finite(hm, "heatmaps")
    h, w = hm.shape[-2:]
    lead = xy.shape[:-1]
    logm = _blur(hm.reshape(-1, h, w), blur_kernel, "blur_kernel").clamp(1e-3, 50.0).log()
    padded = F.pad(logm.unsqueeze(1), (1, 1, 1, 1), mode="replicate").squeeze(1)
    pts = xy.reshape(-1, 2)
    ok = (pts >= 0).all(-1)
    ix = pts[:, 0].clamp(0, w - 1).to(torch.int64) + 1  # padded coordinates
    iy = pts[:, 1].clamp(0, h - 1).to(torch.int64) + 1
    flat = padded.reshape(padded.shape[0], -1)
    wp = w + 2

    def at(dx: int, dy: int) -> torch.Tensor:
        return flat.gather(1, ((iy + dy) * wp + ix + dx).unsqueeze(1)).squeeze(1)

    c = at(0, 0)
    xp, xm, yp, ym = at(1, 0), at(-1, 0), at(0, 1), at(0, -1)
    dx = 0.5 * (xp - xm)
    dy = 0.5 * (yp - ym)
    dxx = xp - 2 * c + xm
    dyy = yp - 2 * c + ym
    dxy = 0.5 * (at(1, 1) - xp - yp + 2 * c - xm - ym + at(-1, -1))
    eps = float(np.finfo(np.float32).eps)
    a, d = dxx + eps, dyy + eps
    det = a * d - dxy * dxy
    off = torch.stack([(d * dx - dxy * dy) / det, (a * dy - dxy * dx) / det], -1)
    out = torch.where(ok.unsqueeze(-1), pts - off.to(pts.dtype), pts)
    return out.reshape(*lead, 2)


def flip_heatmaps(heatmaps: Any, flip_index: Any, shift: bool = True) -> torch.Tensor:
    """Bring the heatmaps of a horizontally flipped image back to the original frame.

    ``out[:, j] = mirror(heatmaps[:, flip_index[j]])`` (left and right joints swap), then,
    with ``shift=True``, every map moves one pixel right: ``out[..., 1:] = out[..., :-1]``
    (HRNet's ``SHIFT_HEATMAP`` / mmpose ``flip_heatmaps(shift_heatmap=True)``). The shift
    compensates for the mirror being ``x -> W - 1 - x`` in the image but ``x -> w - 1 - x``
    in a heatmap ``stride`` times smaller, which misplaces a flipped peak by about
    ``(stride - 1)/stride`` heatmap pixels; UDP configs turn it off.

    Args:
        heatmaps: ``(N, K, h, w)`` (or ``(N, K, d, h, w)`` volumes: the last axis is x).
        flip_index: a :class:`~labcore.skeletons.Skeleton` or a permutation of ``range(K)``.
        shift: apply the one-pixel shift.

    Returns:
        A new tensor of the input's shape and dtype.
    """
    hm = _float_tensor(heatmaps, "heatmaps", (..., None, None), finite=False)
    if hm.dim() not in (4, 5):
        raise ValueError(
            f"heatmaps: expected shape (N, K, h, w) or (N, K, d, h, w), got {tuple(hm.shape)}"
        )
    perm = flip_permutation(flip_index, hm.shape[1]).to(hm.device)
    out = hm.index_select(1, perm).flip(-1)
    if shift:
        out = torch.cat([out[..., :1], out[..., :-1]], dim=-1)
    return out


# ----------------------------------------------------------------------------- soft-argmax


def make_grid(
    n: int,
    kind: str = "pixel",
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Coordinate values of the ``n`` cells of one axis, for :func:`softmax_expectation`.

    * ``'pixel'``: ``i`` (pixel units, integer values at pixel centres).
    * ``'hemlets'``: ``i/(n-1) - 0.5`` ∈ [-0.5, 0.5] (HEMlets ``CoordinateRegress``,
      ``linspace(0, 1, 64) - 0.5``); needs ``n >= 2``.
    * ``'mmpose'``: ``i/n`` ∈ [0, 1) (mmpose ``IntegralRegressionHead``).

    Returns ``(n,)`` of ``dtype`` on ``device``.
    """
    check_choice(kind, "kind", GRID_KINDS)
    n = check_int(n, "n", low=2 if kind == "hemlets" else 1)
    i = torch.arange(n, dtype=torch.float64)
    if kind == "hemlets":
        g = i / (n - 1) - 0.5
    elif kind == "mmpose":
        g = i / n
    else:
        g = i
    return g.to(dtype=dtype, device=device)


def softmax_expectation(
    logits: torch.Tensor, grids: Sequence[Any], beta: float = 1.0
) -> torch.Tensor:
    """Soft-argmax / integral regression: the expected coordinate under a joint softmax.

    ``p = softmax(beta · logits)`` over all cells of the last ``n = len(grids)`` axes
    jointly (HEMlets: all 64³ voxels; mmpose integral head: all h·w pixels); each axis's
    marginal is dotted with its grid. Differentiable (gradients flow to ``logits``).
    Exact on one-hot-like inputs: a single dominant logit gives that cell's grid values.

    Args:
        logits: ``(..., w)`` for n=1, ``(..., h, w)`` for n=2, ``(..., d, h, w)`` for n=3.
        grids: 1-D grids **in output order** ``(x[, y[, z]])``: ``grids[0]`` has
            ``w`` values (last axis), ``grids[1]`` ``h`` values, ``grids[2]`` ``d``
            values; see :func:`make_grid`.
        beta: inverse temperature > 0 (mmpose integral head's ``beta``).

    Returns:
        ``(..., n)`` expectations in the order ``(x, y[, z])``, dtype and device of
        ``logits``.
    """
    if not isinstance(grids, (list, tuple)):
        raise TypeError(f"grids: expected a list or tuple of 1-D grids, got {type(grids).__name__}")
    n = len(grids)
    if not 1 <= n <= 3:
        raise ValueError(f"grids: expected 1 to 3 grids (x, y[, z]), got {n}")
    x = _float_tensor(logits, "logits", (...,) + (None,) * n)
    beta = check_number(beta, "beta", low=0.0, low_inclusive=False)
    spatial = tuple(x.shape[-n:])
    gs = []
    for i, g in enumerate(grids):
        name = f"grids[{i}] ({'xyz'[i]})"
        size = spatial[n - 1 - i]
        gt = as_tensor(g, name, dtype=None, device=x.device)
        if not gt.is_floating_point():
            gt = gt.to(torch.float32)
        check_shape(gt, name, (size,))
        gs.append(gt.to(x.dtype))
    lead = x.shape[:-n]
    scaled = x if beta == 1.0 else x * beta
    p = torch.softmax(scaled.reshape(*lead, -1), dim=-1).reshape(x.shape)
    out = []
    for i, g in enumerate(gs):
        axis = x.dim() - 1 - i
        others = [a for a in range(x.dim() - n, x.dim()) if a != axis]
        marginal = p.sum(dim=others) if others else p
        out.append((marginal * g).sum(-1))
    return torch.stack(out, -1)
