"""Reference codecs: straightforward numpy loops, written the way the published code writes
them, used as test oracles (``tests/test_codec_references.py``, ``tests/test_heatmaps.py``)
and as the baseline of ``benchmarks/bench_codecs.py``.

Each function re-states one published operation in plain numpy, one crop (one row of the
batch) at a time and, where the original loops over keypoints, one keypoint at a time. The
sources, read for their conventions (re-written here, not copied):

* mmpose 1.x ``mmpose/codecs``: ``MSRAHeatmap`` (``utils/gaussian_heatmap.py``
  ``generate_gaussian_heatmaps`` / ``generate_unbiased_gaussian_heatmaps``;
  ``utils/post_processing.py`` ``get_heatmap_maximum`` / ``gaussian_blur``;
  ``utils/refinement.py`` ``refine_keypoints`` / ``refine_keypoints_dark``),
  ``UDPHeatmap`` (``generate_udp_gaussian_heatmaps``, ``refine_keypoints_dark_udp``),
  ``IntegralRegressionLabel`` + ``RegressionLabel``, ``SimCCLabel``
  (``get_simcc_maximum``), and the ``IntegralRegressionHead`` read-out;
* leeyegy/SimCC ``lib/dataset/JointsDataset.py`` (``filter_target_simdr``,
  ``generate_sa_simdr``, ``adjust_target_weight``), ``lib/core/loss.py`` (the smoothed
  one-hot built inside ``NMTCritierion``) and ``lib/core/function.py``
  (``validate_simdr`` / ``validate_sa_simdr``);
* HigherHRNet / SWAHR ``HeatmapGenerator``; HRNet ``get_final_preds``.

Batch convention (labcore's, DESIGN.md §2): ``kp (N, K, 2)`` float32 input pixels and
``vis (N, K)``; each row is one top-down crop, so every function loops over the ``N`` crops
and calls the single-instance algorithm on each (mmpose's codecs refuse more than one
instance per call for exactly this reason). Maps are ``(N, K, h, w)`` float32.

Arithmetic follows the source: float32 where mmpose works on float32 arrays, float64 where
the official SimCC code works on the dataset's float64 joints.
"""

from __future__ import annotations

import math
from itertools import product

import cv2
import numpy as np

__all__ = [
    "ref_msra",
    "ref_dark_encode",
    "ref_udp_encode",
    "ref_higherhrnet",
    "ref_argmax",
    "ref_refine_mmpose",
    "ref_refine_official",
    "ref_blur",
    "ref_dark",
    "ref_dark_udp",
    "ref_msra_decode",
    "ref_dark_decode",
    "ref_udp_decode",
    "ref_regression_encode",
    "ref_regression_decode",
    "ref_integral_encode",
    "ref_integral_decode",
    "ref_simdr_onehot",
    "ref_simcc_standard",
    "ref_sa_simdr",
    "ref_simcc_gaussian",
    "ref_simdr_decode",
    "ref_simcc_decode",
]


def _scale_factor(input_size, heatmap_size, udp=False):
    """mmpose's ``scale_factor``: ``input/heatmap`` (MSRA) or ``(input-1)/(heatmap-1)``
    (UDP), as float32."""
    inp, hm = np.array(input_size), np.array(heatmap_size)
    s = (inp - 1) / (hm - 1) if udp else inp / hm
    return s.astype(np.float32)


def _visible(vis, kp):
    return np.ones(kp.shape[:2], np.float32) if vis is None else np.asarray(vis, np.float32)


# ============================================================== heatmap targets (encode)


def ref_msra(kp, vis, input_size, heatmap_size, sigma):
    """mmpose ``MSRAHeatmap.encode`` (``generate_gaussian_heatmaps``), one crop at a time:
    centre ``int(x/s + 0.5)``, peak-1 Gaussian cut to the 3σ box, weight 0 where the box
    misses the map. Returns ``maps (N, K, h, w)``, ``weights (N, K)``."""
    vis = _visible(vis, kp)
    stride = _scale_factor(input_size, heatmap_size)
    w, h = heatmap_size
    n_inst, n_kp = kp.shape[:2]
    maps = np.zeros((n_inst, n_kp, h, w), np.float32)
    weights = vis.astype(np.float32).copy()
    radius = sigma * 3
    size = 2 * radius + 1
    grid = np.arange(0, size, 1, dtype=np.float32)
    mid = size // 2
    kernel = np.exp(-((grid - mid) ** 2 + (grid[:, None] - mid) ** 2) / (2 * sigma**2))
    for n in range(n_inst):
        pts = kp[n] / stride
        for k in range(n_kp):
            if vis[n, k] < 0.5:
                continue
            mu = (pts[k] + 0.5).astype(np.int64)
            x_lo, y_lo = (mu - radius).astype(np.int64)
            x_hi, y_hi = (mu + radius + 1).astype(np.int64)
            if x_lo >= w or y_lo >= h or x_hi < 0 or y_hi < 0:
                weights[n, k] = 0
                continue
            hx0, hx1 = max(0, x_lo), min(w, x_hi)
            hy0, hy1 = max(0, y_lo), min(h, y_hi)
            patch = kernel[hy0 - y_lo : hy1 - y_lo, hx0 - x_lo : hx1 - x_lo]
            region = maps[n, k, hy0:hy1, hx0:hx1]
            np.maximum(region, patch, out=region)
    return maps, weights


def ref_dark_encode(kp, vis, input_size, heatmap_size, sigma):
    """mmpose ``MSRAHeatmap(unbiased=True).encode`` (``generate_unbiased_gaussian_heatmaps``):
    a Gaussian centred on the un-rounded ``x/s`` evaluated over the whole map; weight 0
    (and no Gaussian) where the float 3σ box ``[mu-3σ, mu+3σ+1]`` misses the map."""
    vis = _visible(vis, kp)
    stride = _scale_factor(input_size, heatmap_size)
    w, h = heatmap_size
    n_inst, n_kp = kp.shape[:2]
    maps = np.zeros((n_inst, n_kp, h, w), np.float32)
    weights = vis.astype(np.float32).copy()
    radius = sigma * 3
    xs = np.arange(0, w, 1, dtype=np.float32)
    ys = np.arange(0, h, 1, dtype=np.float32)[:, None]
    for n in range(n_inst):
        pts = kp[n] / stride
        for k in range(n_kp):
            if vis[n, k] < 0.5:
                continue
            mu = pts[k]
            left, top = mu - radius
            right, bottom = mu + radius + 1
            if left >= w or top >= h or right < 0 or bottom < 0:
                weights[n, k] = 0
                continue
            g = np.exp(-((xs - mu[0]) ** 2 + (ys - mu[1]) ** 2) / (2 * sigma**2))
            np.maximum(g, maps[n, k], out=maps[n, k])
    return maps, weights


def ref_udp_encode(kp, vis, input_size, heatmap_size, sigma):
    """mmpose ``UDPHeatmap(heatmap_type='gaussian').encode``
    (``generate_udp_gaussian_heatmaps``): stride ``(input-1)/(heatmap-1)``; the 3σ box is
    placed around the rounded centre ``int(x/s + 0.5)`` but the Gaussian inside it peaks at
    the float position."""
    vis = _visible(vis, kp)
    stride = _scale_factor(input_size, heatmap_size, udp=True)
    w, h = heatmap_size
    n_inst, n_kp = kp.shape[:2]
    maps = np.zeros((n_inst, n_kp, h, w), np.float32)
    weights = vis.astype(np.float32).copy()
    radius = sigma * 3
    size = 2 * radius + 1
    grid = np.arange(0, size, 1, dtype=np.float32)
    for n in range(n_inst):
        pts = kp[n] / stride
        for k in range(n_kp):
            if vis[n, k] < 0.5:
                continue
            mu = (pts[k] + 0.5).astype(np.int64)
            x_lo, y_lo = (mu - radius).astype(np.int64)
            x_hi, y_hi = (mu + radius + 1).astype(np.int64)
            if x_lo >= w or y_lo >= h or x_hi < 0 or y_hi < 0:
                weights[n, k] = 0
                continue
            cx = size // 2 + (pts[k, 0] - mu[0])  # the peak, in box coordinates
            cy = size // 2 + (pts[k, 1] - mu[1])
            g = np.exp(-((grid - cx) ** 2 + (grid[:, None] - cy) ** 2) / (2 * sigma**2))
            hx0, hx1 = max(0, x_lo), min(w, x_hi)
            hy0, hy1 = max(0, y_lo), min(h, y_hi)
            patch = g[hy0 - y_lo : hy1 - y_lo, hx0 - x_lo : hx1 - x_lo]
            region = maps[n, k, hy0:hy1, hx0:hx1]
            np.maximum(region, patch, out=region)
    return maps, weights


def ref_higherhrnet(kp, vis, heatmap_size, sigma):
    """HigherHRNet / SWAHR ``HeatmapGenerator`` (generalised to w != h): ``kp (N, P, K, 2)``
    heatmap pixels of ``P`` people per image, merged by maximum into ``(N, K, h, w)``."""
    w, h = heatmap_size
    n_img, n_people, n_kp = kp.shape[:3]
    size = 6 * sigma + 3
    grid = np.arange(0, size, 1, float)
    mid = 3 * sigma + 1
    kernel = np.exp(-((grid - mid) ** 2 + (grid[:, None] - mid) ** 2) / (2 * sigma**2))
    maps = np.zeros((n_img, n_kp, h, w), np.float32)
    for n in range(n_img):
        for p in range(n_people):
            for k in range(n_kp):
                if vis[n, p, k] <= 0:
                    continue
                x, y = int(kp[n, p, k, 0]), int(kp[n, p, k, 1])
                if x < 0 or y < 0 or x >= w or y >= h:
                    continue
                ul = int(np.round(x - 3 * sigma - 1)), int(np.round(y - 3 * sigma - 1))
                br = int(np.round(x + 3 * sigma + 2)), int(np.round(y + 3 * sigma + 2))
                gx0, gx1 = max(0, -ul[0]), min(br[0], w) - ul[0]
                gy0, gy1 = max(0, -ul[1]), min(br[1], h) - ul[1]
                hx0, hx1 = max(0, ul[0]), min(br[0], w)
                hy0, hy1 = max(0, ul[1]), min(br[1], h)
                maps[n, k, hy0:hy1, hx0:hx1] = np.maximum(
                    maps[n, k, hy0:hy1, hx0:hx1], kernel[gy0:gy1, gx0:gx1]
                )
    return maps


# ============================================================== heatmap decoding


def ref_argmax(maps):
    """mmpose ``get_heatmap_maximum`` on ``(N, K, h, w)``: first maximum in row-major order,
    location ``-1`` where the maximum is ≤ 0. Returns ``coords (N, K, 2)``, ``vals (N, K)``."""
    n_inst, n_kp, h, w = maps.shape
    flat = maps.reshape(n_inst, n_kp, -1)
    idx = flat.argmax(-1)
    vals = flat.max(-1)
    coords = np.stack([idx % w, idx // w], -1).astype(np.float32)
    coords[vals <= 0] = -1
    return coords, vals


def ref_refine_mmpose(coords, maps):
    """mmpose ``refine_keypoints``: ±0.25 toward the larger neighbour, each axis tested on
    its own (``1 < x < w-1 and 0 < y < h`` for x, the transpose for y)."""
    out = coords.astype(np.float32).copy()
    n_inst, n_kp = coords.shape[:2]
    h, w = maps.shape[-2:]
    for n in range(n_inst):
        for k in range(n_kp):
            x, y = coords[n, k].astype(int)
            hm = maps[n, k]
            dx = hm[y, x + 1] - hm[y, x - 1] if (1 < x < w - 1 and 0 < y < h) else 0.0
            dy = hm[y + 1, x] - hm[y - 1, x] if (1 < y < h - 1 and 0 < x < w) else 0.0
            out[n, k] += np.sign([dx, dy]).astype(np.float32) * 0.25
    return out


def ref_refine_official(coords, maps):
    """HRNet / SimCC ``get_final_preds`` quarter-pixel step: nearest pixel, both axes
    together, only where ``1 < px < w-1 and 1 < py < h-1``."""
    out = coords.astype(np.float32).copy()
    n_inst, n_kp = coords.shape[:2]
    h, w = maps.shape[-2:]
    for n in range(n_inst):
        for k in range(n_kp):
            hm = maps[n, k]
            px = int(math.floor(coords[n, k, 0] + 0.5))
            py = int(math.floor(coords[n, k, 1] + 0.5))
            if 1 < px < w - 1 and 1 < py < h - 1:
                diff = np.array([hm[py, px + 1] - hm[py, px - 1], hm[py + 1, px] - hm[py - 1, px]])
                out[n, k] += np.sign(diff) * 0.25
    return out


def ref_blur(maps, kernel, dtype=np.float32):
    """mmpose ``gaussian_blur``, map by map: zero-pad by ``(kernel-1)/2``,
    ``cv2.GaussianBlur((kernel, kernel), 0)``, crop, rescale to the original maximum. (A map
    whose blurred maximum is 0 becomes NaN, as in mmpose; no decoder reads it.)

    ``dtype`` is that of the working buffers: float32 as mmpose; ``np.float64`` runs the
    same algorithm in double precision (a twin that separates float32 rounding from
    genuine disagreements in the DARK tests)."""
    border = (kernel - 1) // 2
    out = maps.astype(dtype).copy()
    h, w = maps.shape[-2:]
    for idx in np.ndindex(*maps.shape[:-2]):
        peak = maps[idx].max()
        padded = np.zeros((h + 2 * border, w + 2 * border), dtype)
        padded[border : border + h, border : border + w] = maps[idx]
        blurred = cv2.GaussianBlur(padded, (kernel, kernel), 0)[
            border : border + h, border : border + w
        ]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[idx] = blurred * (peak / blurred.max())
    return out


def ref_dark(coords, maps, kernel, dtype=np.float32):
    """mmpose ``refine_keypoints_dark``: blur, ``log(max(., 1e-10))``, and a Newton step
    ``-H⁻¹∇`` with the two-pixel second differences, only where
    ``1 < x < w-2 and 1 < y < h-2`` and ``det H != 0``. ``dtype``: see :func:`ref_blur`."""
    logm = np.log(np.maximum(ref_blur(maps, kernel, dtype), 1e-10))
    out = coords.astype(np.float32).copy()
    h, w = maps.shape[-2:]
    for n, k in np.ndindex(*coords.shape[:2]):
        x, y = coords[n, k].astype(int)
        m = logm[n, k]
        if 1 < x < w - 2 and 1 < y < h - 2:
            dx = 0.5 * (m[y, x + 1] - m[y, x - 1])
            dy = 0.5 * (m[y + 1, x] - m[y - 1, x])
            dxx = 0.25 * (m[y, x + 2] - 2 * m[y, x] + m[y, x - 2])
            dxy = 0.25 * (m[y + 1, x + 1] - m[y - 1, x + 1] - m[y + 1, x - 1] + m[y - 1, x - 1])
            dyy = 0.25 * (m[y + 2, x] - 2 * m[y, x] + m[y - 2, x])
            if dxx * dyy - dxy**2 != 0:
                hess = np.array([[dxx, dxy], [dxy, dyy]])
                out[n, k] += -(np.linalg.inv(hess) @ np.array([dx, dy]))
    return out


def ref_dark_udp(coords, maps, kernel, dtype=np.float32):
    """mmpose ``refine_keypoints_dark_udp``, one crop at a time and, as mmpose, vectorised
    over its K keypoints: blur, clip to ``[1e-3, 50]``, log, edge-pad by one pixel, read
    the one-pixel stencils at flat indices of the padded stack, and step by
    ``-(H + ε·I)⁻¹ ∇`` (ε = float32 eps) at every keypoint.

    Like mmpose, a keypoint carrying the ``-1`` marker (map maximum ≤ 0) reads whatever
    the flat index arithmetic lands on (a neighbouring map); compare only valid ones.
    ``dtype``: see :func:`ref_blur`."""
    out = coords.astype(np.float32).copy()
    n_inst, n_kp, h, w = maps.shape
    logm = np.log(np.clip(ref_blur(maps, kernel, dtype), 1e-3, 50.0))
    row = w + 2
    for n in range(n_inst):
        flat = np.pad(logm[n], ((0, 0), (1, 1), (1, 1)), mode="edge").ravel()
        index = out[n, :, 0] + 1 + (out[n, :, 1] + 1) * row
        index = (index + row * (h + 2) * np.arange(n_kp)).astype(int)
        c = flat[index]
        xp, xm = flat[index + 1], flat[index - 1]
        yp, ym = flat[index + row], flat[index - row]
        xpyp, xmym = flat[index + row + 1], flat[index - row - 1]
        grad = np.stack([0.5 * (xp - xm), 0.5 * (yp - ym)], -1)  # (K, 2)
        dxx = xp - 2 * c + xm
        dyy = yp - 2 * c + ym
        dxy = 0.5 * (xpyp - xp - yp + 2 * c - xm - ym + xmym)
        hess = np.stack([np.stack([dxx, dxy], -1), np.stack([dxy, dyy], -1)], -2)  # (K, 2, 2)
        inv = np.linalg.inv(hess + np.finfo(np.float32).eps * np.eye(2))
        out[n] -= np.einsum("kij,kj->ki", inv, grad)
    return out


def ref_msra_decode(maps, input_size, refine=True):
    """mmpose ``MSRAHeatmap.decode`` per crop: ``get_heatmap_maximum``, ``refine_keypoints``
    (when ``refine``; labcore's ``refine=False`` is plain argmax), ``× input/heatmap``."""
    h, w = maps.shape[-2:]
    coords, scores = ref_argmax(maps)
    if refine:
        coords = ref_refine_mmpose(coords, maps)
    return coords * _scale_factor(input_size, (w, h)), scores


def ref_dark_decode(maps, input_size, kernel=11, refine=True, dtype=np.float32):
    """mmpose ``MSRAHeatmap(unbiased=True).decode`` per crop: argmax,
    ``refine_keypoints_dark`` (when ``refine``), ``× input/heatmap``."""
    h, w = maps.shape[-2:]
    coords, scores = ref_argmax(maps)
    if refine:
        coords = ref_dark(coords, maps, kernel, dtype)
    return coords * _scale_factor(input_size, (w, h)), scores


def ref_udp_decode(maps, input_size, kernel=11, input_scale=False, refine=True, dtype=np.float32):
    """``UDPHeatmap.decode`` per crop: argmax, ``refine_keypoints_dark_udp`` (when
    ``refine``), then back to input pixels.

    ``input_scale=False`` multiplies by ``(input-1)/(heatmap-1)``, the factor UDP's encode
    divides by (labcore's default); ``input_scale=True`` is mmpose 1.x's
    ``keypoints / [w-1, h-1] * input_size``."""
    h, w = maps.shape[-2:]
    coords, scores = ref_argmax(maps)
    if refine:
        coords = ref_dark_udp(coords, maps, kernel, dtype)
    if input_scale:
        return coords / np.array([w - 1, h - 1]) * np.array(input_size), scores
    return coords * _scale_factor(input_size, (w, h), udp=True), scores


# ============================================================== regression / integral


def ref_regression_encode(kp, vis, input_size):
    """mmpose ``RegressionLabel.encode``: labels ``kp / [W, H]``; weight 1 where visible
    (> 0.5) and ``0 <= x <= W-1``, ``0 <= y <= H-1``."""
    vis = _visible(vis, kp)
    w, h = input_size
    labels = np.zeros(kp.shape, np.float32)
    weights = np.zeros(kp.shape[:2], np.float32)
    for n, k in product(range(kp.shape[0]), range(kp.shape[1])):
        x, y = kp[n, k]
        labels[n, k] = kp[n, k] / np.array([w, h])
        inside = 0 <= x <= w - 1 and 0 <= y <= h - 1
        weights[n, k] = 1.0 if (inside and vis[n, k] > 0.5) else 0.0
    return labels, weights


def ref_regression_decode(labels, input_size):
    """mmpose ``RegressionLabel.decode`` (2-D labels): ``labels · [W, H]``, scores 1."""
    w, h = input_size
    out = np.zeros(labels.shape, np.float32)
    for n in range(labels.shape[0]):
        out[n] = labels[n] * np.array([w, h])
    return out, np.ones(labels.shape[:2], np.float32)


def ref_integral_encode(kp, vis, input_size, heatmap_size, sigma):
    """mmpose ``IntegralRegressionLabel(normalize=True).encode``: the MSRA target, each map
    divided by ``its sum + 1e-24``; ``RegressionLabel`` labels and weights, the latter with
    the MSRA weights as visibility. Returns ``maps, labels, weights``."""
    maps, hm_weights = ref_msra(kp, vis, input_size, heatmap_size, sigma)
    labels, weights = ref_regression_encode(kp, hm_weights, input_size)
    for n in range(maps.shape[0]):
        total = maps[n].sum(axis=(-1, -2)).reshape(-1, 1, 1) + 1e-24
        maps[n] = maps[n] / total
    return maps, labels, weights


def ref_integral_decode(logits, input_size, beta=1.0):
    """mmpose ``IntegralRegressionHead`` read-out + ``RegressionLabel.decode``, per crop:
    ``p = softmax(beta · logits)`` over the flattened map, ``x = Σ p · col/w``,
    ``y = Σ p · row/h``, times ``[W, H]``. Score: the largest probability (labcore's choice;
    mmpose's regression decode returns ones)."""
    n_inst, n_kp, h, w = logits.shape
    gx = np.arange(w, dtype=np.float32) / w
    gy = (np.arange(h, dtype=np.float32) / h)[:, None]
    kps = np.zeros((n_inst, n_kp, 2), np.float32)
    scores = np.zeros((n_inst, n_kp), np.float32)
    for n in range(n_inst):
        z = beta * logits[n].reshape(n_kp, -1).astype(np.float32)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        p = (z / z.sum(axis=1, keepdims=True)).reshape(n_kp, h, w)
        labels = np.stack([(p * gx).sum(axis=(1, 2)), (p * gy).sum(axis=(1, 2))], -1)
        kps[n] = labels * np.array(input_size, np.float32)
        scores[n] = p.reshape(n_kp, -1).max(axis=1)
    return kps, scores


# ============================================================== SimCC / SimDR


def _num_bins(input_size, split_ratio):
    return int(input_size[0] * split_ratio), int(input_size[1] * split_ratio)


def ref_simdr_onehot(kp, vis, input_size, split_ratio, label_smoothing):
    """Official SimDR labels: ``JointsDataset.__getitem__`` class indices
    ``np.around(joint·k)`` (float64 joints), ``filter_target_simdr`` (an index outside
    ``[0, N)`` is clamped into it and the weight set to 0; weight starts as the visibility),
    then the vector ``NMTCritierion`` builds from the index: ``ε/(N-1)`` everywhere and
    ``1-ε`` at the index (a plain one-hot for ε = 0). Vectors are built for every joint,
    weight 0 or not, as the loss does."""
    vis = _visible(vis, kp)
    nx, ny = _num_bins(input_size, split_ratio)
    sizes = (nx, ny)
    n_inst, n_kp = kp.shape[:2]
    x_labels = np.zeros((n_inst, n_kp, nx), np.float32)
    y_labels = np.zeros((n_inst, n_kp, ny), np.float32)
    weights = np.zeros((n_inst, n_kp), np.float32)
    for n in range(n_inst):
        joints = np.around(kp[n].astype(np.float64) * split_ratio).astype(np.int64)
        for k in range(n_kp):
            weights[n, k] = vis[n, k]
            for axis in (1, 0):  # the official order: y then x; both clamp
                if joints[k, axis] < 0:
                    weights[n, k] = 0
                    joints[k, axis] = 0
                elif joints[k, axis] >= sizes[axis]:
                    weights[n, k] = 0
                    joints[k, axis] = sizes[axis] - 1
            for labels, axis, size in ((x_labels, 0, nx), (y_labels, 1, ny)):
                labels[n, k] = label_smoothing / (size - 1)
                labels[n, k, joints[k, axis]] = 1.0 - label_smoothing
    return x_labels, y_labels, weights


def ref_simcc_standard(kp, vis, input_size, split_ratio, label_smooth_weight):
    """mmpose ``SimCCLabel(smoothing_type='standard')``: the same index ``np.around(x·k)``
    (in the keypoints' dtype); out-of-range → weight 0 and a **zero** vector (no clamp)."""
    vis = _visible(vis, kp)
    nx, ny = _num_bins(input_size, split_ratio)
    n_inst, n_kp = kp.shape[:2]
    x_labels = np.zeros((n_inst, n_kp, nx), np.float32)
    y_labels = np.zeros((n_inst, n_kp, ny), np.float32)
    weights = vis.astype(np.float32).copy()
    for n in range(n_inst):
        split = np.around(kp[n] * split_ratio).astype(np.int64)
        for k in range(n_kp):
            if vis[n, k] < 0.5:
                continue
            mx, my = split[k]
            if mx >= nx or my >= ny or mx < 0 or my < 0:
                weights[n, k] = 0
                continue
            if label_smooth_weight > 0:
                x_labels[n, k] = label_smooth_weight / (nx - 1)
                y_labels[n, k] = label_smooth_weight / (ny - 1)
            x_labels[n, k, mx] = 1.0 - label_smooth_weight
            y_labels[n, k, my] = 1.0 - label_smooth_weight
    return x_labels, y_labels, weights


def ref_sa_simdr(kp, vis, input_size, split_ratio, sigma):
    """Official SA-SimDR labels, ``generate_sa_simdr`` + ``adjust_target_weight``: weight =
    visibility, set to 0 when ``int(x - 3σ) >= W`` or ``int(x + 3σ + 1) < 0`` on either axis
    (x in input **pixels**, 3σ in **bins** — the official code mixes the units); a
    normalised Gaussian ``exp(-(i - x·k)²/2σ²)/(σ√(2π))`` on the un-rounded ``x·k`` for
    weight > 0.5."""
    vis = _visible(vis, kp)
    nx, ny = _num_bins(input_size, split_ratio)
    n_inst, n_kp = kp.shape[:2]
    x_labels = np.zeros((n_inst, n_kp, nx), np.float32)
    y_labels = np.zeros((n_inst, n_kp, ny), np.float32)
    weights = np.zeros((n_inst, n_kp), np.float32)
    tmp = sigma * 3
    xs = np.arange(0, nx, 1, np.float32)
    ys = np.arange(0, ny, 1, np.float32)
    norm = sigma * np.sqrt(np.pi * 2)
    for n in range(n_inst):
        joints = kp[n].astype(np.float64)
        for k in range(n_kp):
            wgt = vis[n, k]
            ul = int(joints[k, 0] - tmp), int(joints[k, 1] - tmp)
            br = int(joints[k, 0] + tmp + 1), int(joints[k, 1] + tmp + 1)
            if ul[0] >= input_size[0] or ul[1] >= input_size[1] or br[0] < 0 or br[1] < 0:
                wgt = 0.0
            weights[n, k] = wgt
            if wgt <= 0.5:
                continue
            mu_x, mu_y = joints[k] * split_ratio
            x_labels[n, k] = np.exp(-((xs - mu_x) ** 2) / (2 * sigma**2)) / norm
            y_labels[n, k] = np.exp(-((ys - mu_y) ** 2) / (2 * sigma**2)) / norm
    return x_labels, y_labels, weights


def ref_simcc_gaussian(kp, vis, input_size, split_ratio, sigma, normalize=True):
    """mmpose ``SimCCLabel(smoothing_type='gaussian')``: centre ``np.around(x·k)`` (in the
    keypoints' dtype, float32 for mmpose's pipelines), weight 0 when the 3σ box in bins
    ``[mu-3σ, mu+3σ+1]`` misses ``[0, N)`` on either axis, peak-1 Gaussian divided by
    ``σ√(2π)`` when ``normalize``."""
    vis = _visible(vis, kp)
    nx, ny = _num_bins(input_size, split_ratio)
    n_inst, n_kp = kp.shape[:2]
    x_labels = np.zeros((n_inst, n_kp, nx), np.float32)
    y_labels = np.zeros((n_inst, n_kp, ny), np.float32)
    weights = vis.astype(np.float32).copy()
    radius = sigma * 3
    xs = np.arange(0, nx, 1, dtype=np.float32)
    ys = np.arange(0, ny, 1, dtype=np.float32)
    for n in range(n_inst):
        split = np.around(kp[n] * split_ratio).astype(np.int64)
        for k in range(n_kp):
            if vis[n, k] < 0.5:
                continue
            mu = split[k]
            left, top = mu - radius
            right, bottom = mu + radius + 1
            if left >= nx or top >= ny or right < 0 or bottom < 0:
                weights[n, k] = 0
                continue
            x_labels[n, k] = np.exp(-((xs - mu[0]) ** 2) / (2 * sigma**2))
            y_labels[n, k] = np.exp(-((ys - mu[1]) ** 2) / (2 * sigma**2))
        if normalize:
            x_labels[n] /= sigma * np.sqrt(np.pi * 2)
            y_labels[n] /= sigma * np.sqrt(np.pi * 2)
    return x_labels, y_labels, weights


def _softmax(z):
    z = z.astype(np.float32)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def ref_simdr_decode(x_logits, y_logits, split_ratio, confidence="max"):
    """Official ``validate_simdr`` (``confidence='max'``) / ``validate_sa_simdr``
    (``'min'``) without flip test, per crop: softmax over bins, argmax (first maximum),
    keypoint ``= index / k``, score ``max`` or ``min`` of the two axes' peak probabilities."""
    n_inst, n_kp = x_logits.shape[:2]
    kps = np.zeros((n_inst, n_kp, 2), np.float32)
    scores = np.zeros((n_inst, n_kp), np.float32)
    for n in range(n_inst):
        px, py = _softmax(x_logits[n]), _softmax(y_logits[n])
        kps[n, :, 0] = px.argmax(axis=-1) / split_ratio
        kps[n, :, 1] = py.argmax(axis=-1) / split_ratio
        vx, vy = px.max(axis=-1), py.max(axis=-1)
        scores[n] = np.maximum(vx, vy) if confidence == "max" else np.minimum(vx, vy)
    return kps, scores


def ref_simcc_decode(x_logits, y_logits, split_ratio):
    """mmpose ``SimCCLabel.decode`` per crop (``get_simcc_maximum`` on the raw vectors):
    argmax, score ``min(max_x, max_y)``, location ``-1`` where the score is ≤ 0, then
    ``/ k`` (so the marker becomes ``-1/k``)."""
    n_inst, n_kp = x_logits.shape[:2]
    kps = np.zeros((n_inst, n_kp, 2), np.float32)
    scores = np.zeros((n_inst, n_kp), np.float32)
    for n in range(n_inst):
        locs = np.stack([x_logits[n].argmax(axis=1), y_logits[n].argmax(axis=1)], -1)
        locs = locs.astype(np.float32)
        vx, vy = x_logits[n].max(axis=1), y_logits[n].max(axis=1)
        vals = np.where(vx > vy, vy, vx)
        locs[vals <= 0] = -1
        kps[n] = locs / split_ratio
        scores[n] = vals
    return kps, scores
