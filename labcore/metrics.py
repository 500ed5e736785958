"""Pose, mesh, flow and COCO keypoint metrics.

Conventions:

* Every metric takes ``(pred, gt)`` in that order, as torch tensors, NumPy arrays or
  lists, and returns the mean as a Python ``float``; ``reduction='none'`` returns the
  per-element tensor instead (per joint ``(N, K)``, per vertex ``(N, V)``, per pixel
  ``(N, H, W)``), on the device of the tensor inputs.
* Units are the inputs' units. labcore gives 3-D joints and vertices in **millimetres**
  (camera frame, OpenCV axes), so MPJPE & co. come out in mm; 2-D metrics work in pixels.
* ``visible`` / ``mask`` are optional non-negative weights (bool or {0, 1} floats) that
  exclude elements from the mean; the mean is ``Σ w·e / Σ w``. If every element is
  excluded the mean is undefined and a ``ValueError`` ("no valid joints") is raised.
  With ``reduction='none'`` the raw errors of *all* elements are returned (the weights
  are not applied); mask them yourself.
* Procrustes direction (METHODS.md §7): ``pa_mpjpe`` aligns the prediction onto the
  ground truth by default (EventHPE, SPIN); ``direction='gt_to_pred'`` gives HEMlets'.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labcore import geometry
from labcore.checks import as_floats, as_tensor, check_choice, check_int, check_number, require_file
from labcore.skeletons import COCO17

__all__ = [
    "mpjpe",
    "pel_mpjpe",
    "pa_mpjpe",
    "pck",
    "pve",
    "epe",
    "oks",
    "coco_keypoint_ap",
    "COCO_KEYPOINT_STATS",
]

REDUCTIONS = ("mean", "none")

#: The names of COCOeval's ten keypoint statistics, in ``COCOeval.stats`` order.
COCO_KEYPOINT_STATS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


# --------------------------------------------------------------------------- helpers


def _pair(pred: Any, gt: Any, shape: tuple, dims: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate ``pred`` and ``gt`` with the same named shape (``gt`` must match ``pred``)."""
    p, g = as_floats((pred, "pred", shape), (gt, "gt", shape), dims=dims)
    if p.shape != g.shape:
        raise ValueError(f"gt: expected the shape of pred {tuple(p.shape)}, got {tuple(g.shape)}")
    return p, g


def _weights(value: Any, name: str, shape: tuple, dims: dict, ref: torch.Tensor) -> torch.Tensor:
    """Non-negative weights (bool accepted) with a positive total, like ``ref``."""
    if isinstance(value, torch.Tensor) and value.dtype == torch.bool:
        value = value.to(torch.float32)
    elif isinstance(value, np.ndarray) and value.dtype == np.bool_:
        value = value.astype(np.float32)
    w = as_tensor(value, name, shape=shape, dims=dims, dtype=None)
    if w.dtype == torch.bool:
        w = w.to(torch.float32)
    if isinstance(value, torch.Tensor) and w.device != ref.device:
        raise ValueError(f"{name}: expected a tensor on {ref.device}, got {w.device}")
    w = w.to(device=ref.device, dtype=ref.dtype)
    if bool((w < 0).any()):
        raise ValueError(f"{name}: expected weights >= 0, got min {float(w.min())}")
    if not bool((w > 0).any()):
        raise ValueError(f"{name}: no valid joints (every element is excluded)")
    return w


def _reduce(err: torch.Tensor, w: torch.Tensor | None, reduction: str) -> float | torch.Tensor:
    if reduction == "none":
        return err
    if w is None:
        return float(err.mean())
    return float((err * w).sum() / w.sum())


def _root_indices(root: Any, k: int) -> list[int]:
    if isinstance(root, (np.ndarray, torch.Tensor)):
        root = root.tolist()
    if isinstance(root, (numbers.Integral, np.integer)) and not isinstance(root, bool):
        roots = [root]
    elif isinstance(root, Sequence) and not isinstance(root, str) and len(root) > 0:
        roots = list(root)
    else:
        raise TypeError(
            f"root: expected a joint index or a non-empty sequence of them, got {root!r}"
        )
    return [check_int(r, "root", low=0, high=k - 1) for r in roots]


# --------------------------------------------------------------------------- 3-D joints


def mpjpe(pred: Any, gt: Any, visible: Any = None, reduction: str = "mean") -> float | torch.Tensor:
    """Mean per-joint position error: mean Euclidean distance, no alignment.

    Args:
        pred, gt: ``(N, K, 3)`` joints (labcore: camera frame, mm → result in mm).
        visible: optional ``(N, K)`` weights (bool / {0,1}) excluding joints from the mean.
        reduction: ``'mean'`` → float; ``'none'`` → ``(N, K)`` per-joint errors.
    """
    check_choice(reduction, "reduction", REDUCTIONS)
    dims: dict[str, int] = {}
    p, g = _pair(pred, gt, ("N", "K", 3), dims)
    w = None if visible is None else _weights(visible, "visible", ("N", "K"), dims, p)
    err = torch.linalg.vector_norm(p - g, dim=-1)
    return _reduce(err, w, reduction)


def pel_mpjpe(
    pred: Any, gt: Any, root: int | Sequence[int] = 0, visible: Any = None, reduction: str = "mean"
) -> float | torch.Tensor:
    """MPJPE after re-centring both skeletons at their root ("pelvis-aligned", protocol #1).

    Args:
        pred, gt: ``(N, K, 3)`` joints (mm in labcore).
        root: a joint index, or a sequence of indices whose mean is the root. HEMlets (J18)
            uses joint 0 (pelvis); EventHPE (SMPL24) uses the mid-hips ``root=(1, 2)``.
        visible: optional ``(N, K)`` weights for the mean (the root is always used as given).
        reduction: ``'mean'`` → float; ``'none'`` → ``(N, K)``.

    Invariant to a translation of ``pred`` (or ``gt``).
    """
    check_choice(reduction, "reduction", REDUCTIONS)
    dims: dict[str, int] = {}
    p, g = _pair(pred, gt, ("N", "K", 3), dims)
    idx = _root_indices(root, p.shape[1])
    w = None if visible is None else _weights(visible, "visible", ("N", "K"), dims, p)
    p = p - p[:, idx].mean(1, keepdim=True)
    g = g - g[:, idx].mean(1, keepdim=True)
    err = torch.linalg.vector_norm(p - g, dim=-1)
    return _reduce(err, w, reduction)


def pa_mpjpe(
    pred: Any,
    gt: Any,
    visible: Any = None,
    reduction: str = "mean",
    direction: str = "pred_to_gt",
) -> float | torch.Tensor:
    """MPJPE after a per-sample similarity (Procrustes, with scale) alignment — protocol #2.

    Args:
        pred, gt: ``(N, K, 3)`` joints (mm in labcore).
        visible: optional ``(N, K)`` weights; they weigh both the alignment (invisible
            joints do not influence it) and the mean.
        reduction: ``'mean'`` → float; ``'none'`` → ``(N, K)``.
        direction: ``'pred_to_gt'`` (default: pred aligned onto gt, EventHPE/SPIN) or
            ``'gt_to_pred'`` (gt aligned onto pred, HEMlets' ``metric_3d.py``); with the
            free scale the two give different numbers (see
            :func:`labcore.geometry.procrustes_align`).

    Invariant to any similarity transform (scale, rotation, translation) of ``pred`` in
    the default direction. Differentiable with ``reduction='none'``.
    """
    check_choice(reduction, "reduction", REDUCTIONS)
    check_choice(direction, "direction", geometry.PROCRUSTES_DIRECTIONS)
    dims: dict[str, int] = {}
    p, g = _pair(pred, gt, ("N", "K", 3), dims)
    w = None if visible is None else _weights(visible, "visible", ("N", "K"), dims, p)
    if w is not None:
        empty = (w.sum(-1) <= 0).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"visible: no valid joints in sample(s) {empty[:10]}")
    aligned = geometry.procrustes_align(p, g, direction=direction, weights=w)
    other = g if direction == "pred_to_gt" else p
    err = torch.linalg.vector_norm(aligned - other, dim=-1)
    return _reduce(err, w, reduction)


def pck(
    pred: Any,
    gt: Any,
    threshold: float,
    visible: Any = None,
    normalize: Any = None,
    reduction: str = "mean",
) -> float | torch.Tensor:
    """Percentage (fraction) of correct keypoints.

    A joint is correct when ``|pred - gt| <= threshold · normalize`` (2-D or 3-D).

    Args:
        pred, gt: ``(N, K, D)`` keypoints (pixels for 2-D, mm for 3-D in labcore).
        threshold: > 0, in the inputs' unit if ``normalize`` is None (e.g. 150 mm, or
            EventHPE's PCK@0.1 m = 100 mm after root alignment), else a fraction of it
            (e.g. 0.5 for PCKh@0.5 with the head size, 0.2 with the torso size).
        visible: optional ``(N, K)`` weights excluding joints from the mean.
        normalize: optional ``(N,)`` per-sample scale > 0 (bbox size, head size ...).
        reduction: ``'mean'`` → fraction in [0, 1]; ``'none'`` → ``(N, K)`` floats in {0, 1}.
    """
    check_choice(reduction, "reduction", REDUCTIONS)
    thr = check_number(threshold, "threshold", low=0.0, low_inclusive=False)
    dims: dict[str, int] = {}
    p, g = _pair(pred, gt, ("N", "K", None), dims)
    w = None if visible is None else _weights(visible, "visible", ("N", "K"), dims, p)
    limit = torch.full((p.shape[0], 1), thr, dtype=p.dtype, device=p.device)
    if normalize is not None:
        (scale,) = as_floats((normalize, "normalize", ("N",)), dims=dims)
        if isinstance(normalize, torch.Tensor) and scale.device != p.device:
            raise ValueError(f"normalize: expected a tensor on {p.device}, got {scale.device}")
        scale = scale.to(device=p.device, dtype=p.dtype)
        if bool((scale <= 0).any()):
            raise ValueError(f"normalize: expected values > 0, got min {float(scale.min())}")
        limit = limit * scale[:, None]
    correct = (torch.linalg.vector_norm(p - g, dim=-1) <= limit).to(p.dtype)
    return _reduce(correct, w, reduction)


# --------------------------------------------------------------------------- mesh and flow


def pve(
    pred_vertices: Any, gt_vertices: Any, align_with: Any = None, reduction: str = "mean"
) -> float | torch.Tensor:
    """Per-vertex error: mean Euclidean distance between corresponding mesh vertices.

    Args:
        pred_vertices, gt_vertices: ``(N, V, 3)`` (mm in labcore).
        align_with: optional ``(pred_joints, gt_joints)``, each ``(N, K, 3)``: the
            similarity transform that takes the predicted joints onto the GT joints is
            estimated and applied to the predicted mesh first (EventHPE's PVE,
            METHODS.md §5.5). ``None``: no alignment.
        reduction: ``'mean'`` → float; ``'none'`` → ``(N, V)``.
    """
    check_choice(reduction, "reduction", REDUCTIONS)
    dims: dict[str, int] = {}
    pv, gv = as_floats(
        (pred_vertices, "pred_vertices", ("N", "V", 3)),
        (gt_vertices, "gt_vertices", ("N", "V", 3)),
        dims=dims,
    )
    if align_with is not None:
        if not isinstance(align_with, (tuple, list)) or len(align_with) != 2:
            raise TypeError(
                "align_with: expected a pair (pred_joints, gt_joints), "
                f"got {type(align_with).__name__}"
            )
        pj, gj = as_floats(
            (align_with[0], "align_with[0] (pred_joints)", ("N", "K", 3)),
            (align_with[1], "align_with[1] (gt_joints)", ("N", "K", 3)),
            dims=dims,
        )
        pj, gj = pj.to(device=pv.device, dtype=pv.dtype), gj.to(device=pv.device, dtype=pv.dtype)
        scale, R, t = geometry.similarity_transform(pj, gj)
        pv = scale[:, None, None] * (pv @ R.transpose(-1, -2)) + t[:, None, :]
    err = torch.linalg.vector_norm(pv - gv, dim=-1)
    return _reduce(err, None, reduction)


def epe(
    pred_flow: Any, gt_flow: Any, mask: Any = None, reduction: str = "mean"
) -> float | torch.Tensor:
    """Average end-point error of optical flow: ``|f_pred - f_gt|`` per pixel (pixels).

    Args:
        pred_flow, gt_flow: ``(N, 2, H, W)``, channel 0 = x (u), 1 = y (v), in pixels.
        mask: optional ``(N, H, W)`` weights (e.g. pixels with events or valid GT).
        reduction: ``'mean'`` → float (mean over masked pixels); ``'none'`` → ``(N, H, W)``.
    """
    check_choice(reduction, "reduction", REDUCTIONS)
    dims: dict[str, int] = {}
    p, g = _pair(pred_flow, gt_flow, ("N", 2, "H", "W"), dims)
    w = None if mask is None else _weights(mask, "mask", ("N", "H", "W"), dims, p)
    err = torch.linalg.vector_norm(p - g, dim=1)
    return _reduce(err, w, reduction)


# --------------------------------------------------------------------------- COCO


def oks(pred: Any, gt: Any, visible: Any, area: Any, sigmas: Any = None) -> torch.Tensor:
    """COCO object keypoint similarity between paired instances (pycocotools' formula).

    ``e_k = d_k² / (2σ_k)² / (area + ε) / 2`` and ``OKS = mean over GT keypoints with
    visible > 0 of exp(-e_k)`` (``ε`` = float64 machine epsilon, as
    ``COCOeval.computeOks``).

    Args:
        pred, gt: ``(N, K, 2)`` keypoints in pixels (pred ``n`` paired with gt ``n``).
        visible: ``(N, K)`` GT visibility; a keypoint counts when ``visible > 0`` (COCO's
            ``v`` in {0, 1, 2} works as is). Each instance needs one counted keypoint
            (COCO's box-distance rule for unlabelled instances is not reproduced).
        area: ``(N,)`` GT object areas in pixels² (COCO's segment ``area``), >= 0.
        sigmas: ``(K,)`` per-keypoint sigmas; ``None`` → COCO's 17 sigmas (K must be 17).

    Returns:
        ``(N,)`` OKS values in [0, 1] (a tensor, one per instance).
    """
    dims: dict[str, int] = {}
    p, g = _pair(pred, gt, ("N", "K", 2), dims)
    vis = visible
    if isinstance(vis, torch.Tensor) and vis.dtype == torch.bool:
        vis = vis.to(torch.float32)
    elif isinstance(vis, np.ndarray) and vis.dtype == np.bool_:
        vis = vis.astype(np.float32)
    (v,) = as_floats((vis, "visible", ("N", "K")), dims=dims)
    (a,) = as_floats((area, "area", ("N",)), dims=dims)
    v, a = v.to(device=p.device), a.to(device=p.device, dtype=p.dtype)
    if bool((a < 0).any()):
        raise ValueError(f"area: expected areas >= 0, got min {float(a.min())}")
    k = p.shape[1]
    if sigmas is None:
        if k != 17:
            raise ValueError(f"sigmas: required when K != 17 (COCO's default), got K={k}")
        sigmas = COCO17.oks_sigmas
    s = as_tensor(sigmas, "sigmas", shape=(k,), dtype=None)
    s = s.to(device=p.device, dtype=p.dtype)
    if bool((s <= 0).any()):
        raise ValueError("sigmas: expected values > 0")
    counted = v > 0
    none = (~counted.any(-1)).nonzero().flatten().tolist()
    if none:
        raise ValueError(f"visible: instance(s) {none[:10]} have no visible GT keypoint")
    d2 = ((p - g) ** 2).sum(-1)
    e = d2 / (2 * s) ** 2 / (a[:, None] + float(np.spacing(1))) / 2
    sim = torch.exp(-e) * counted.to(p.dtype)
    return sim.sum(-1) / counted.sum(-1).to(p.dtype)


_REQUIRED_GT_ANN_KEYS = ("image_id", "category_id", "keypoints", "area")
_REQUIRED_RESULT_KEYS = ("image_id", "category_id", "keypoints", "score")


def _load_gt(gt: Any) -> dict:
    if isinstance(gt, (str, Path)):
        path = require_file(gt, "gt", "Expected a COCO keypoints JSON file.")
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    elif isinstance(gt, Mapping):
        data = copy.deepcopy(dict(gt))
    else:
        raise TypeError(
            f"gt: expected a COCO dict or a path to a JSON file, got {type(gt).__name__}"
        )
    if not isinstance(data, dict):
        raise ValueError("gt: expected a COCO dict at the top level of the JSON")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"gt: expected a list under {key!r}")
    return data


def _prepare_gt(data: dict) -> int:
    """Fill the fields COCOeval needs; return K. Mutates ``data`` (already a copy)."""
    k = None
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            raise ValueError(f"gt: annotation {i} is not a dict")
        missing = [key for key in _REQUIRED_GT_ANN_KEYS if key not in ann]
        if missing:
            raise ValueError(f"gt: annotation {i} lacks {missing}")
        kp = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1)
        if kp.size == 0 or kp.size % 3:
            raise ValueError(f"gt: annotation {i} keypoints length {kp.size} is not 3·K")
        if k is None:
            k = kp.size // 3
        elif kp.size != 3 * k:
            raise ValueError(f"gt: annotation {i} has {kp.size // 3} keypoints, others have {k}")
        vis = kp[2::3] > 0
        ann["keypoints"] = kp.tolist()
        # COCOeval's match bookkeeping treats annotation id 0 as "unmatched": renumber.
        ann["id"] = i + 1
        ann.setdefault("iscrowd", 0)
        ann.setdefault("num_keypoints", int(vis.sum()))
        if "bbox" not in ann:
            xs, ys = kp[0::3][vis], kp[1::3][vis]
            ann["bbox"] = (
                [float(xs.min()), float(ys.min()), float(np.ptp(xs)), float(np.ptp(ys))]
                if vis.any() else [0.0, 0.0, 0.0, 0.0]
            )  # fmt: skip
    if k is None:
        cats = data["categories"]
        k = len(cats[0].get("keypoints", [])) if cats else 0
    if not k:
        raise ValueError("gt: no keypoint annotations found")
    return k


def _prepare_results(results: Any, k: int, image_ids: set) -> list[dict]:
    if not isinstance(results, (list, tuple)):
        raise TypeError(
            f"results: expected a list of COCO result dicts, got {type(results).__name__}"
        )
    out = []
    for i, r in enumerate(results):
        if not isinstance(r, Mapping):
            raise TypeError(f"results: item {i} is not a dict")
        missing = [key for key in _REQUIRED_RESULT_KEYS if key not in r]
        if missing:
            raise ValueError(f"results: item {i} lacks {missing}")
        kp = np.asarray(r["keypoints"], dtype=np.float64).reshape(-1)
        if kp.size != 3 * k:
            raise ValueError(
                f"results: item {i} has {kp.size} keypoint numbers, expected 3·K = {3 * k}"
            )
        if not np.isfinite(kp).all():
            raise ValueError(f"results: item {i} keypoints hold NaN or inf")
        score = check_number(r["score"], f"results[{i}]['score']")
        if r["image_id"] not in image_ids:
            raise ValueError(f"results: item {i} image_id {r['image_id']!r} is not in gt's images")
        out.append(
            {
                "image_id": r["image_id"],
                "category_id": r["category_id"],
                "keypoints": kp.tolist(),
                "score": score,
            }
        )
    return out


def coco_keypoint_ap(gt: Any, results: Any, sigmas: Any = None,
                     area_ranges: Mapping[str, tuple[float, float]] | None = None) -> dict[str, float]:
    """COCO keypoint AP/AR with pycocotools' ``COCOeval(iouType='keypoints')``.

    Args:
        gt: a COCO keypoints dict (``images``, ``annotations``, ``categories``) or the path
            to such a JSON file. Each annotation needs ``image_id``, ``category_id``,
            ``keypoints`` ``[x, y, v] * K`` and ``area``; missing ``iscrowd`` (0),
            ``num_keypoints`` (count of v > 0) and ``bbox`` (of the labelled keypoints) are
            filled in, and annotation ids are renumbered 1..n (COCOeval mistakes id 0 for
            "unmatched"). The caller's dict is not modified.
        results: list of ``{image_id, category_id, keypoints: [x, y, score] * K, score}``
            (other keys are ignored; the dicts are not modified). Empty → every stat 0.0.
        sigmas: ``(K,)`` OKS sigmas; ``None`` uses COCO's 17 (then K must be 17).
        area_ranges: extra object-size ranges ``{name: (lo, hi)}`` in pixels² of GT
            ``area`` (COCO's medium/large are ``(32², 96²)`` and ``(96², 1e10)``, which
            small images never reach). For each, COCOeval's own range machinery gives
            ``AP_<name>`` and ``AR_<name>``: GT outside the range is ignored, and so is an
            unmatched detection whose area (its keypoints' box) is outside it.

    Returns:
        ``{'AP', 'AP50', 'AP75', 'APm', 'APl', 'AR', 'AR50', 'AR75', 'ARm', 'ARl'}`` (plus
        the ``area_ranges`` entries) as floats in [0, 1] (COCOeval's stats; as there, -1.0
        marks a stat with no GT objects, e.g. ``APm`` when every person is large).
        pycocotools' printing is silenced.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    data = _load_gt(gt)
    k = _prepare_gt(data)
    if sigmas is None:
        if k != 17:
            raise ValueError(f"sigmas: required when K != 17 (COCO's default), got K={k}")
        sig = np.asarray(COCO17.oks_sigmas, dtype=np.float64)
    else:
        sig = as_tensor(sigmas, "sigmas", shape=(k,), dtype=torch.float64).cpu().numpy()
        if (sig <= 0).any():
            raise ValueError("sigmas: expected values > 0")
    extra = _area_ranges(area_ranges)
    extra_keys = [f"{kind}_{name}" for name in extra for kind in ("AP", "AR")]
    image_ids = {img.get("id") for img in data["images"] if isinstance(img, dict)}
    dets = _prepare_results(results, k, image_ids)
    if not dets:
        return dict.fromkeys([*COCO_KEYPOINT_STATS, *extra_keys], 0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = data
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dets)
        ev = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        ev.params.kpt_oks_sigmas = sig
        n_default = len(ev.params.areaRng)
        ev.params.areaRng = [*ev.params.areaRng, *([lo, hi] for lo, hi in extra.values())]
        ev.params.areaRngLbl = [*ev.params.areaRngLbl, *extra]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    out = {name: float(v) for name, v in zip(COCO_KEYPOINT_STATS, ev.stats)}
    for i, name in enumerate(extra):
        # precision (T, R, K, A, M) and recall (T, K, A, M); -1 marks "no GT", as summarize().
        prec = ev.eval["precision"][:, :, :, n_default + i, -1]
        rec = ev.eval["recall"][:, :, n_default + i, -1]
        out[f"AP_{name}"] = float(prec[prec > -1].mean()) if (prec > -1).any() else -1.0
        out[f"AR_{name}"] = float(rec[rec > -1].mean()) if (rec > -1).any() else -1.0
    return out


def _area_ranges(area_ranges: Any) -> dict[str, tuple[float, float]]:
    if area_ranges is None:
        return {}
    if not isinstance(area_ranges, Mapping):
        raise TypeError(f"area_ranges: expected a dict {{name: (lo, hi)}}, got {type(area_ranges).__name__}")
    out = {}
    for name, rng in area_ranges.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"area_ranges: names must be identifiers, got {name!r}")
        if not isinstance(rng, (tuple, list)) or len(rng) != 2:
            raise ValueError(f"area_ranges[{name!r}]: expected (lo, hi), got {rng!r}")
        lo = check_number(rng[0], f"area_ranges[{name!r}][0]", low=0.0)
        hi = check_number(rng[1], f"area_ranges[{name!r}][1]", low=lo, low_inclusive=False)
        out[name] = (lo, hi)
    return out
