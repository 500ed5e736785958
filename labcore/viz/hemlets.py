"""Explorers for HEMlets (:mod:`labcore.methods.hemlets`): part-centric heatmap triplets
and the volumetric soft-argmax read-out.

* :class:`TripletExplorer` — one of the 14 parts of a synthetic person (J18): the posed
  skeleton in the camera frame with the part's depth difference ``Δz``, the crop with the
  part drawn on it, and the part's three maps ``T⁻, T⁰, T⁺`` — the parent's Gaussian in
  ``T⁰``, the child's in ``T^polarity`` — with a check that
  :meth:`~labcore.methods.hemlets.HEMletsTriplets.decode` reads the polarity back.
* :class:`VolumeExplorer` — a synthetic volumetric heatmap ``(J, D, h, w)`` built around
  the person's normalised 3-D joints, one depth slice of a joint's softmax, the x/y/z
  marginals, and the soft-argmax against the truth and the argmax: quantisation against
  interpolation as ``D``, β and the spread change.
* :func:`volume_logits` — the synthetic logits :class:`VolumeExplorer` reads out.

Conventions (:mod:`labcore.methods.hemlets`): crops are 96×96 px, maps 24×24 (stride 4);
keypoints in crop pixels (x right, y down, integers at pixel centres); 3-D joints in mm in
the OpenCV camera frame (x right, y down, z forward); normalised joints are the official
``(u/W − 0.5, v/H − 0.5, (z − z_pelvis)/2000 mm)``; the volumetric grid is HEMlets'
``i/(n−1) − 0.5`` on every axis, so voxel ``i`` of an axis of ``n`` cells *is* the
normalised coordinate ``i/(n−1) − 0.5`` (a cell is ``1/(n−1)``: ``96/23 ≈ 4.17 px`` across,
``2000/(D−1)`` mm deep).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from labcore.checks import as_tensor, check_choice, check_int, check_number
from labcore.heatmaps import make_grid
from labcore.methods.heatmap import soft_argmax
from labcore.methods.hemlets import DEPTH_RANGE_MM, HEMLETS_PARTS, HEMletsTriplets, normalise_joints
from labcore.skeletons import J18
from labcore.viz.figures import _SIDE_COLOURS, VISIBILITY_COLOURS
from labcore.viz.jigsaw import _image_axes, _image_trace
from labcore.viz.widgets import Explorer, _crop, _slider

__all__ = ["TripletExplorer", "VolumeExplorer", "volume_logits", "PART_LABELS", "POLARITY_COLOURS",
           "CROP", "STRIDE", "HEATMAP", "FLOOR"]

CROP = 96  # px, the explorers' crop side
STRIDE = 4  # the maps' stride: 24 × 24
HEATMAP = CROP // STRIDE
MAX_POSE = 30  # the pose slider's range: seeds 0..30 of labcore.data.scenes.person_crops
#: ``"right_hip→right_knee"`` … — the 14 :data:`~labcore.methods.hemlets.HEMLETS_PARTS` by J18 name.
PART_LABELS: tuple[str, ...] = tuple(f"{J18.joint_names[p]}→{J18.joint_names[c]}" for p, c in HEMLETS_PARTS)
#: Polarity colours, as :class:`~labcore.viz.widgets.SceneExplorer`'s bone order: red the
#: child nearer the camera (−1), grey level (0), blue farther (+1).
POLARITY_COLOURS = {-1: "#ff3030", 0: "#b0b0b0", 1: "#3080ff"}
#: The synthetic volume's background: logits ``max(−d²/(2·spread²), −FLOOR)``, a floor
#: ``FLOOR`` below the peak (a network's logits are not −∞ far from the joint).
FLOOR = 10.0

_MARGIN = 4
_TRUE_COLOUR = "#40ff60"
_SOFT_COLOUR = "#ff4040"
_ARGMAX_COLOUR = "#ffa500"
_CHANNEL_NAMES = ("T⁻", "T⁰", "T⁺")
_POLARITY_WORDS = {-1: "child nearer", 0: "level", 1: "child farther"}


def _layout(fig: go.Figure, height: int, **extra: Any) -> go.Figure:
    fig.update_layout(height=height, margin={"l": _MARGIN, "r": _MARGIN, "t": 40, "b": _MARGIN}, **extra)
    return fig


def _signed(q: int) -> str:
    return f"{q:+d}" if q else "0"


@functools.lru_cache(maxsize=64)
def _person(seed: int) -> dict[str, np.ndarray]:
    """Person ``seed`` at 96×96 (:func:`labcore.viz.widgets._crop`, cached; read-only
    arrays): ``image (96, 96, 3)`` uint8, ``keypoints (18, 2)`` crop px, ``visibility (18,)``
    0/1/2, ``joints3d (18, 3)`` mm (camera frame), ``family`` str."""
    a = _crop(seed, "any", "procedural", CROP)
    out = {"image": np.array(a["image"][0]), "keypoints": np.array(a["keypoints_j18"][0]),
           "visibility": np.array(a["visibility_j18"][0]), "joints3d": np.array(a["joints3d_j18"][0])}
    for v in out.values():
        v.setflags(write=False)
    out["family"] = str(a["family"][0])
    return out


def _bone_lines(points: np.ndarray, bones: Any) -> list[list]:
    """Per-dimension polyline coordinates (``None`` breaks) of ``bones`` over ``points (K, D)``."""
    cols: list[list] = [[] for _ in range(points.shape[1])]
    for a, b in bones:
        for d, col in enumerate(cols):
            col += [float(points[a, d]), float(points[b, d]), None]
    return cols


# --------------------------------------------------------------------------- triplets


class TripletExplorer(Explorer):
    """One HEMlets part of a synthetic person and its heatmap triplet (96×96 crop, 24×24
    maps, stride 4).

    Parameters:
        ``part``: index into :data:`~labcore.methods.hemlets.HEMLETS_PARTS` (0–13; the
        dropdown shows :data:`PART_LABELS`, ``parent→child``); ``threshold``: the depth
        threshold ``r`` in mm (0–300); ``sigma``: the Gaussians' σ in heatmap pixels
        (0.5–4); ``pose``: the person, seed ``s`` of
        ``person_crops(1, s, size=(96, 96), background='procedural')`` (0–30).

    The figure: left, the 18 J18 joints in the camera frame (mm; x right, z forward, y down
    — seen from behind the camera), the part's bone in its polarity colour
    (:data:`POLARITY_COLOURS`) with the parent and child named and ``Δz = z_child −
    z_parent``; middle, the crop with the 2-D keypoints (green seen, red occluded) and the
    part; right, its maps ``T⁻, T⁰, T⁺`` (``HEMletsTriplets(...).encode(...)['triplets'][0,
    part]``, 24×24 each, peak 1) with the keypoint positions ``/ 4`` marked where their
    Gaussians sit. The note gives ``Δz``, ``r``, the polarity (strict: ``|Δz| = r`` is 0),
    the channels of parent and child, and whether ``decode`` recovers the polarity.
    """

    def controls(self) -> dict[str, W.ValueWidget]:
        return {
            "part": W.Dropdown(options=[(label, i) for i, label in enumerate(PART_LABELS)], value=0,
                               description="part"),
            "threshold": _slider(100.0, 0.0, 300.0, 5.0, "r (mm)"),
            "sigma": _slider(2.0, 0.5, 4.0, 0.25, "σ (hm px)"),
            "pose": W.IntSlider(value=0, min=0, max=MAX_POSE, description="pose (seed)",
                                continuous_update=False),
        }

    def compute(self, **params: Any) -> dict[str, Any]:
        """The numbers behind the figure.

        Returns a dict with ``part`` (index), ``label`` (``'parent→child'``), ``parent`` /
        ``child`` (J18 indices) and ``parent_name`` / ``child_name``; ``threshold`` r (mm),
        ``sigma`` (heatmap px), ``seed``; the person's ``image (96, 96, 3)`` uint8,
        ``keypoints (18, 2)`` crop px, ``visibility (18,)`` 0/1/2, ``joints3d (18, 3)`` mm;
        ``z_parent``, ``z_child`` and ``delta_z = z_child − z_parent`` (mm, float32
        arithmetic as :func:`~labcore.methods.hemlets.part_polarity`); ``polarity`` (int,
        from ``encode``), ``hand_polarity`` (the rule ``+1 if Δz > r, −1 if Δz < −r, else
        0`` applied here), ``triplets (3, 24, 24)`` float32 (channel ``c`` holds polarity
        ``c − 1``), ``parent_channel`` (1) and ``child_channel`` (``polarity + 1``),
        ``weight`` (1 when both joints are visible and on the map), ``decoded`` and
        ``confidence`` (``decode``), ``recovered`` (bool) and ``hm_parent`` / ``hm_child``
        (keypoint / stride, heatmap px ``(x, y)``).
        """
        part = check_int(params["part"], "part", low=0, high=len(HEMLETS_PARTS) - 1)
        r = check_number(params["threshold"], "threshold", low=0.0)
        sigma = check_number(params["sigma"], "sigma", low=0.0, low_inclusive=False)
        seed = check_int(params["pose"], "pose", low=0)
        person = _person(seed)
        kp = torch.from_numpy(np.array(person["keypoints"]))[None]                   # (1, 18, 2)
        vis = torch.from_numpy((person["visibility"] > 0).astype(np.float32))[None]  # in the crop
        z = torch.from_numpy(np.array(person["joints3d"][:, 2]))                     # (18,) mm
        codec = HEMletsTriplets((CROP, CROP), (HEATMAP, HEATMAP), sigma, r)
        enc = codec.encode(kp, vis, depth=z[None])
        decoded, confidence = codec.decode(enc["triplets"])
        parent, child = HEMLETS_PARTS[part]
        delta_z = float(z[child] - z[parent])  # float32, as part_polarity computes it
        hand = 1 if delta_z > r else (-1 if delta_z < -r else 0)
        polarity = int(enc["polarity"][0, part])
        dec = int(decoded[0, part])
        kp_np = person["keypoints"]
        return {
            "part": part, "label": PART_LABELS[part], "parent": parent, "child": child,
            "parent_name": J18.joint_names[parent], "child_name": J18.joint_names[child],
            "threshold": r, "sigma": sigma, "seed": seed, "image": person["image"], "keypoints": kp_np,
            "visibility": person["visibility"], "joints3d": person["joints3d"], "family": person["family"],
            "z_parent": float(z[parent]), "z_child": float(z[child]), "delta_z": delta_z,
            "polarity": polarity, "hand_polarity": hand, "triplets": enc["triplets"][0, part].numpy(),
            "parent_channel": 1, "child_channel": polarity + 1, "weight": float(enc["weights"][0, part]),
            "decoded": dec, "confidence": float(confidence[0, part]), "recovered": dec == polarity,
            "hm_parent": kp_np[parent] / STRIDE, "hm_child": kp_np[child] / STRIDE,
        }

    def build(self, **params: Any) -> tuple[go.Figure, str]:
        c = self.compute(**params)
        q, p, ch = c["polarity"], c["parent"], c["child"]
        colour = POLARITY_COLOURS[q]
        titles = []
        for k in range(3):
            held = (["parent"] if k == 1 else []) + (["child"] if k == c["child_channel"] else [])
            titles.append(f"{_CHANNEL_NAMES[k]} ({_signed(k - 1)})" + (f": {' + '.join(held)}" if held else ""))
        fig = make_subplots(1, 5, specs=[[{"type": "scene"}, {}, {}, {}, {}]],
                            column_widths=[0.28, 0.27, 0.15, 0.15, 0.15], horizontal_spacing=0.015,
                            subplot_titles=["J18, camera frame (mm)", f"crop {CROP}×{CROP}: {c['label']}",
                                            *titles])
        traces: list = []

        # 1. the skeleton in 3-D: plotly is z-up, so plot (x, z, y) with y reversed (down).
        j3 = np.asarray(c["joints3d"], dtype=np.float64)
        pts = j3[:, [0, 2, 1]]
        bx, by, bz = _bone_lines(pts, J18.bones)
        traces.append(go.Scatter3d(x=bx, y=by, z=bz, mode="lines", line={"color": "#707070", "width": 4},
                                   hoverinfo="skip", name="J18 bones", scene="scene"))
        traces.append(go.Scatter3d(x=[pts[p, 0], pts[ch, 0]], y=[pts[p, 1], pts[ch, 1]], z=[pts[p, 2], pts[ch, 2]],
                                   mode="lines", line={"color": colour, "width": 12}, hoverinfo="skip",
                                   name="part", scene="scene"))
        traces.append(go.Scatter3d(
            x=pts[:, 0], y=pts[:, 1], z=pts[:, 2], mode="markers", name="J18 joints", scene="scene",
            marker={"size": 3.5, "color": [_SIDE_COLOURS[s] for s in J18.sides],
                    "line": {"color": "black", "width": 1}},
            text=list(J18.joint_names),
            hovertemplate="%{text}<br>x %{x:.0f}, y %{z:.0f}, z %{y:.0f} mm<extra></extra>",
        ))  # fmt: skip
        labels = [f"parent {c['parent_name']}<br>z = {c['z_parent']:.0f}",
                  f"child {c['child_name']}<br>Δz = {c['delta_z']:+.0f} mm"]
        traces.append(go.Scatter3d(x=[pts[p, 0], pts[ch, 0]], y=[pts[p, 1], pts[ch, 1]], z=[pts[p, 2], pts[ch, 2]],
                                   mode="markers+text", text=labels, textposition="middle right",
                                   textfont={"size": 10, "color": colour}, hoverinfo="skip", name="parent, child",
                                   marker={"size": [6, 8], "color": colour, "symbol": ["circle", "diamond"]},
                                   scene="scene"))

        # 2. the crop, its keypoints and the part
        kp, vis = np.asarray(c["keypoints"], dtype=np.float64), np.asarray(c["visibility"]).astype(int)
        traces.append(_image_trace(c["image"], "", "crop"))
        shown_bones = [(a, b) for a, b in J18.bones if vis[a] > 0 and vis[b] > 0]
        lx, ly = _bone_lines(kp, shown_bones)
        traces.append(go.Scatter(x=lx, y=ly, mode="lines", line={"color": "#ffee55", "width": 1}, hoverinfo="skip",
                                 showlegend=False, name="J18 bones", xaxis="x", yaxis="y"))
        traces.append(go.Scatter(x=kp[[p, ch], 0], y=kp[[p, ch], 1], mode="lines", line={"color": colour, "width": 5},
                                 hoverinfo="skip", showlegend=False, name="part", xaxis="x", yaxis="y"))
        seen = np.flatnonzero(vis > 0)
        traces.append(go.Scatter(
            x=kp[seen, 0], y=kp[seen, 1], mode="markers", showlegend=False, name="keypoints", xaxis="x", yaxis="y",
            marker={"size": 6, "color": [VISIBILITY_COLOURS[v] for v in vis[seen]],
                    "line": {"color": "black", "width": 1}},
            text=[f"{J18.joint_names[i]} (v={vis[i]})" for i in seen],
            hovertemplate="%{text}<br>x=%{x:.2f}, y=%{y:.2f}<extra></extra>",
        ))  # fmt: skip
        traces.append(go.Scatter(x=kp[[p, ch], 0], y=kp[[p, ch], 1], mode="markers+text",
                                 text=["P", "C"], textposition="top center",
                                 textfont={"color": colour, "size": 12, "family": "Arial Black, Arial, sans-serif"},
                                 marker={"size": 10, "color": colour, "symbol": ["circle", "diamond"],
                                         "line": {"color": "white", "width": 1}},
                                 showlegend=False, name="parent, child", hoverinfo="skip", xaxis="x", yaxis="y"))

        # 3. the triplet: parent marked in T⁰, child in T^polarity
        for k in range(3):
            ax = str(k + 2)
            traces.append(go.Heatmap(z=c["triplets"][k], colorscale="Magma", zmin=0, zmax=1, showscale=False,
                                     name=f"{_CHANNEL_NAMES[k]} ({_signed(k - 1)})", xaxis=f"x{ax}", yaxis=f"y{ax}",
                                     hovertemplate=f"{_CHANNEL_NAMES[k]}: (%{{x}}, %{{y}}) %{{z:.3f}}<extra></extra>"))
        for which, k, symbol in (("hm_parent", 1, "circle-open"), ("hm_child", c["child_channel"], "diamond-open")):
            xy = c[which]
            traces.append(go.Scatter(x=[xy[0]], y=[xy[1]], mode="markers", showlegend=False, hoverinfo="skip",
                                     name=which.split("_")[1], xaxis=f"x{k + 2}", yaxis=f"y{k + 2}",
                                     marker={"symbol": symbol, "size": 11, "color": _TRUE_COLOUR,
                                             "line": {"width": 2}}))
        fig.add_traces(traces)
        hm_axes: dict[str, dict] = {}
        bare = {"showticklabels": False, "showgrid": False, "zeroline": False}
        for k in range(2, 5):
            hm_axes[f"xaxis{k}"] = {"range": [-0.5, HEATMAP - 0.5], **bare}
            hm_axes[f"yaxis{k}"] = {"range": [HEATMAP - 0.5, -0.5], "scaleanchor": f"x{k}", **bare}
        img_axes = _image_axes(c["image"], "")
        for v in img_axes.values():
            v.update(bare)
        _layout(fig, 400, showlegend=False, plot_bgcolor="white", **img_axes, **hm_axes,
                scene={"aspectmode": "data", "xaxis_title": "x (right)", "yaxis_title": "z (forward)",
                       "zaxis_title": "y (down)", "zaxis": {"autorange": "reversed"},
                       "camera": {"eye": {"x": 0.9, "y": -1.7, "z": 0.5}}})
        return fig, self._note(c)

    @staticmethod
    def _note(c: dict[str, Any]) -> str:
        q, r, dz = c["polarity"], c["threshold"], c["delta_z"]
        if dz > r:
            rule = f"Δz > r → polarity <b>{_signed(q)}</b> ({_POLARITY_WORDS[q]}: the {c['child_name']} is " \
                   f"more than {r:g} mm behind the {c['parent_name']})"
        elif dz < -r:
            rule = f"Δz < −r → polarity <b>{_signed(q)}</b> ({_POLARITY_WORDS[q]}: the {c['child_name']} is " \
                   f"more than {r:g} mm in front of the {c['parent_name']})"
        else:
            edge = " — exactly on the threshold, and the rule is strict" if abs(dz) == r else ""
            rule = f"|Δz| ≤ r → polarity <b>{_signed(q)}</b> ({_POLARITY_WORDS[q]}{edge})"
        if q == 0:
            channels = (f"T⁰ holds both the parent ({c['parent_name']}) and the child ({c['child_name']}), "
                        f"merged by max; T⁻ and T⁺ are empty")
        else:
            channels = (f"T⁰ holds the parent ({c['parent_name']}), {_CHANNEL_NAMES[c['child_channel']]} the "
                        f"child ({c['child_name']}); the third map is empty")
        if c["hand_polarity"] != q:
            channels += f" — <b>the hand rule gives {_signed(c['hand_polarity'])} ✗</b>"
        if c["recovered"]:
            check = f"decode(triplets) → {_signed(c['decoded'])}: <b>recovers the polarity ✓</b>"
        else:
            check = (f"decode(triplets) → {_signed(c['decoded'])}: <b>does NOT recover the polarity ✗</b>"
                     f" (confidence {c['confidence']:.2f})")
        if c["weight"] == 0:
            check += " — a joint of this part is outside the crop or its map, so the part's weight is 0"
        return (f"Part <b>{c['label']}</b> (part {c['part']}), pose {c['seed']} ({c['family']}): "
                f"z_parent = {c['z_parent']:.0f} mm, z_child = {c['z_child']:.0f} mm, "
                f"<b>Δz = z_child − z_parent = {dz:+.1f} mm</b>; r = {r:g} mm: {rule}.<br>"
                f"{channels}. Maps {HEATMAP}×{HEATMAP} (stride {STRIDE}), σ = {c['sigma']:g} hm px, peak 1; "
                f"{check}.")


# --------------------------------------------------------------------------- volumes


def volume_logits(joints: Any, size: Any, spread: float, floor: float | None = FLOOR) -> torch.Tensor:
    """Synthetic volumetric logits around normalised 3-D joints.

    Joint ``j`` at normalised ``(x, y, z)`` sits at the continuous voxel position
    ``(c + 0.5)·(n − 1)`` of each axis (the inverse of HEMlets' grid ``i/(n−1) − 0.5``);
    its logits are ``max(−d²/(2·spread²), −floor)`` with ``d`` the distance in voxels — a
    log-Gaussian bump on a flat floor, so ``softmax(β·logits)`` is a Gaussian of ``σ =
    spread/√β`` voxels, cut off at the volume's faces, plus ``e^{−β·floor}`` per voxel
    elsewhere.

    Args:
        joints: ``(J, 3)`` normalised ``(x, y, z)`` (:func:`~labcore.methods.hemlets.normalise_joints`).
        size: ``(w, h, d)`` cells per axis (each >= 2).
        spread: the bump's σ in voxels (> 0).
        floor: the background's depth below the peak (> 0; ``None``: no floor, a pure
            log-Gaussian).

    Returns:
        ``(J, d, h, w)`` float64 logits, as :func:`~labcore.methods.heatmap.soft_argmax`
        reads ``(..., d, h, w)``.
    """
    t = as_tensor(joints, "joints", shape=("J", 3), dtype=torch.float64)
    if not isinstance(size, (tuple, list)) or len(size) != 3:
        raise ValueError(f"size: expected (w, h, d), got {size!r}")
    w, h, d = (check_int(n, "size", low=2) for n in size)
    spread = check_number(spread, "spread", low=0.0, low_inclusive=False)
    if floor is not None:
        floor = check_number(floor, "floor", low=0.0, low_inclusive=False)
    centre = (t + 0.5) * torch.tensor([w - 1, h - 1, d - 1], dtype=torch.float64)   # (J, 3) voxels
    dx = torch.arange(w, dtype=torch.float64) - centre[:, 0:1]                       # (J, w)
    dy = torch.arange(h, dtype=torch.float64) - centre[:, 1:2]
    dz = torch.arange(d, dtype=torch.float64) - centre[:, 2:3]
    d2 = dz[:, :, None, None] ** 2 + dy[:, None, :, None] ** 2 + dx[:, None, None, :] ** 2
    logits = -d2 / (2.0 * spread**2)
    return logits if floor is None else torch.clamp(logits, min=-floor)


class VolumeExplorer(Explorer):
    """HEMlets' volumetric read-out on a synthetic volume: ``(J, D, 24, 24)`` logits from
    :func:`volume_logits` around a person's normalised joints, read out by
    ``soft_argmax(volumes, grid='hemlets', beta=β)``.

    Parameters:
        ``depth_bins``: D (4–32); ``joint``: a J18 name; ``beta``: the softmax inverse
        temperature β (0.1–10, log slider); ``slice``: the depth bin shown (−1: the bin
        nearest the joint's true depth; values beyond ``D − 1`` are clamped to it);
        ``spread``: the bump's σ in voxels (0.5–4); ``pose``: the person (seed, 0–30, as
        :class:`TripletExplorer`).

    The figure: left, slice ``k`` of the joint's probability volume ``softmax(β·logits)``
    (over all ``D·h·w`` voxels; colour scale to the volume's maximum) with the true
    position (green ring, filled when ``k`` is the nearest bin), the soft-argmax (red ×)
    and the argmax (orange square) in voxel units; right, the x, y and z marginals against
    the normalised coordinate, with the same three positions. The note: the numbers, the
    errors in voxels, crop px (x, y) and mm (z; a bin is ``2000/(D−1)`` mm), and the
    quantisation-against-soft-argmax trade-off. :meth:`compute` returns them.
    """

    def controls(self) -> dict[str, W.ValueWidget]:
        return {
            "depth_bins": W.IntSlider(value=16, min=4, max=32, description="depth bins D",
                                      continuous_update=False),
            "joint": W.Dropdown(options=list(J18.joint_names), value="right_wrist", description="joint"),
            "beta": W.FloatLogSlider(value=1.0, base=10, min=-1, max=1, step=0.05, description="β (1/T)",
                                     continuous_update=False),
            "slice": W.IntSlider(value=-1, min=-1, max=31, description="slice (−1: auto)",
                                 continuous_update=False, style={"description_width": "110px"}),
            "spread": _slider(1.0, 0.5, 4.0, 0.1, "spread (voxels)"),
            "pose": W.IntSlider(value=0, min=0, max=MAX_POSE, description="pose (seed)",
                                continuous_update=False),
        }

    def compute(self, **params: Any) -> dict[str, Any]:
        """The numbers behind the figure; coordinates are ``(x, y, z)``.

        Returns a dict with ``depth_bins`` D, ``size (w, h, D)``, ``joint`` (name) and
        ``index``, ``beta``, ``spread``, ``sigma_eff = spread/√β`` (voxels), ``seed``;
        for all 18 joints ``truth (18, 3)`` normalised (``normalise_joints``), ``soft (18,
        3)`` (soft-argmax), ``voxel (18, 3)`` the true continuous voxel position,
        ``nearest (18, 3)`` the nearest voxel's grid coordinate (where a perfectly peaked
        volume reads out); for the chosen joint ``argmax (3,)`` (the most probable voxel's
        grid coordinate), ``argmax_voxel (3,)`` int, ``error (3,)`` = soft − truth
        (normalised), ``error_voxels (3,)``, ``error_px (2,)`` (x, y in crop px),
        ``error_mm`` (z, mm), ``argmax_error (3,)`` normalised, ``bin_px`` and
        ``bin_mm`` (a cell's size), ``background`` (probability mass on the floor),
        ``probability (D, 24, 24)`` float64 (sums to 1), ``marginals`` (x ``(24,)``, y
        ``(24,)``, z ``(D,)``), ``grids`` (their coordinates), ``slice`` (the bin shown)
        and ``slice_asked``.
        """
        D = check_int(params["depth_bins"], "depth_bins", low=2)
        name = check_choice(params["joint"], "joint", J18.joint_names)
        beta = check_number(params["beta"], "beta", low=0.0, low_inclusive=False)
        spread = check_number(params["spread"], "spread", low=0.0, low_inclusive=False)
        asked = check_int(params["slice"], "slice", low=-1)
        seed = check_int(params["pose"], "pose", low=0)
        j = J18.index(name)
        person = _person(seed)
        kp = torch.from_numpy(np.array(person["keypoints"], dtype=np.float64))[None]
        z = torch.from_numpy(np.array(person["joints3d"][:, 2], dtype=np.float64))[None]
        truth = normalise_joints(kp, z, (CROP, CROP))[0]                              # (18, 3)
        size = (HEATMAP, HEATMAP, D)
        cells = torch.tensor([n - 1 for n in size], dtype=torch.float64)
        logits = volume_logits(truth, size, spread)                                   # (18, D, h, w)
        soft = soft_argmax(logits[None], grid="hemlets", beta=beta)[0]               # (18, 3)
        voxel = (truth + 0.5) * cells
        nearest = torch.round(voxel).clamp(min=torch.zeros(3, dtype=torch.float64), max=cells) / cells - 0.5
        prob = torch.softmax(beta * logits[j].flatten(), 0).view(D, HEATMAP, HEATMAP)
        flat = int(prob.flatten().argmax())
        iz, rem = divmod(flat, HEATMAP * HEATMAP)
        iy, ix = divmod(rem, HEATMAP)
        argmax_voxel = np.array([ix, iy, iz])
        argmax = torch.from_numpy(argmax_voxel).double() / cells - 0.5
        err = (soft[j] - truth[j]).numpy()
        grids = tuple(make_grid(n, "hemlets", dtype=torch.float64).numpy() for n in size)
        k = int(torch.round(voxel[j, 2]).clamp(0, D - 1)) if asked < 0 else min(asked, D - 1)
        return {
            "depth_bins": D, "size": size, "joint": name, "index": j, "beta": beta, "spread": spread,
            "sigma_eff": spread / math.sqrt(beta), "seed": seed,
            "truth": truth.numpy(), "soft": soft.numpy(), "voxel": voxel.numpy(), "nearest": nearest.numpy(),
            "argmax": argmax.numpy(), "argmax_voxel": argmax_voxel, "error": err,
            "error_voxels": err * cells.numpy(), "error_px": err[:2] * CROP, "error_mm": float(err[2] * DEPTH_RANGE_MM),
            "argmax_error": (argmax - truth[j]).numpy(),
            "bin_px": CROP / (HEATMAP - 1), "bin_mm": DEPTH_RANGE_MM / (D - 1),
            "background": float(prob[logits[j] <= -FLOOR].sum()),
            "probability": prob.numpy(),
            "marginals": (prob.sum((0, 1)).numpy(), prob.sum((0, 2)).numpy(), prob.sum((1, 2)).numpy()),
            "grids": grids, "slice": k, "slice_asked": asked,
        }

    def build(self, **params: Any) -> tuple[go.Figure, str]:
        c = self.compute(**params)
        j, k, D = c["index"], c["slice"], c["depth_bins"]
        gz = c["grids"][2][k]
        fig = make_subplots(3, 2, specs=[[{"rowspan": 3}, {}], [None, {}], [None, {}]], column_widths=[0.5, 0.5],
                            horizontal_spacing=0.08, vertical_spacing=0.12,
                            subplot_titles=(f"{c['joint']}: p at slice {k} of 0–{D - 1} "
                                            f"(z = {gz:+.3f}, {gz * DEPTH_RANGE_MM:+.0f} mm)",
                                            f"x marginal (bin {c['bin_px']:.2f} px)",
                                            f"y marginal (bin {c['bin_px']:.2f} px)",
                                            f"z marginal (bin {c['bin_mm']:.0f} mm)"))
        prob = c["probability"]
        traces: list = [go.Heatmap(z=prob[k], colorscale="Viridis", zmin=0, zmax=float(prob.max()), showscale=False,
                                   name="p", xaxis="x", yaxis="y",
                                   hovertemplate="voxel (%{x}, %{y}): p = %{z:.2e}<extra></extra>")]
        cells = np.array(c["size"], dtype=np.float64) - 1
        soft_vox = (c["soft"][j] + 0.5) * cells
        true_vox = c["voxel"][j]
        near = int(round(float(true_vox[2]))) == k
        for xy, label, marker in (
            (true_vox, "truth", {"symbol": "circle" if near else "circle-open", "size": 12, "color": _TRUE_COLOUR,
                                 "line": {"width": 2, "color": _TRUE_COLOUR}}),
            (c["argmax_voxel"], "argmax", {"symbol": "square-open", "size": 12, "color": _ARGMAX_COLOUR,
                                            "line": {"width": 2}}),
            (soft_vox, "soft-argmax", {"symbol": "x", "size": 10, "color": _SOFT_COLOUR}),
        ):
            traces.append(go.Scatter(x=[xy[0]], y=[xy[1]], mode="markers", name=label, marker=marker,
                                     xaxis="x", yaxis="y", showlegend=True,
                                     hovertemplate=f"{label}: voxel (%{{x:.2f}}, %{{y:.2f}}, {xy[2]:.2f})<extra></extra>"))
        for a in range(3):
            ax = str(a + 2)
            g, m = c["grids"][a], c["marginals"][a]
            top = float(m.max()) * 1.08 or 1.0
            traces.append(go.Scatter(x=g, y=m, mode="lines+markers", line={"color": "#404040", "width": 1.5},
                                     marker={"size": 4}, showlegend=False, name="xyz"[a] + " marginal",
                                     xaxis=f"x{ax}", yaxis=f"y{ax}",
                                     hovertemplate="%{x:+.3f}: %{y:.3f}<extra></extra>"))
            for value, colour, dash, label in ((c["truth"][j, a], _TRUE_COLOUR, "solid", "truth"),
                                               (c["argmax"][a], _ARGMAX_COLOUR, "dot", "argmax"),
                                               (c["soft"][j, a], _SOFT_COLOUR, "dash", "soft-argmax")):
                traces.append(go.Scatter(x=[value, value], y=[0, top], mode="lines", showlegend=False, name=label,
                                         line={"color": colour, "width": 2, "dash": dash}, xaxis=f"x{ax}",
                                         yaxis=f"y{ax}", hovertemplate=f"{label}: {value:+.4f}<extra></extra>"))
        fig.add_traces(traces)
        w, h = c["size"][:2]
        marg = {f"xaxis{a}": {"range": [-0.53, 0.53]} for a in (2, 3, 4)}
        _layout(fig, 460, plot_bgcolor="white",
                legend={"orientation": "h", "y": -0.04, "x": 0.0},
                xaxis={"range": [-0.5, w - 0.5], "title": {"text": "x voxel"}},
                yaxis={"range": [h - 0.5, -0.5], "scaleanchor": "x", "title": {"text": "y voxel"}}, **marg)
        return fig, self._note(c)

    @staticmethod
    def _note(c: dict[str, Any]) -> str:
        j, D = c["index"], c["depth_bins"]
        t, s, a = c["truth"][j], c["soft"][j], c["argmax"]
        fmt = lambda v: f"({v[0]:+.4f}, {v[1]:+.4f}, {v[2]:+.4f})"  # noqa: E731
        ev, epx, emm = c["error_voxels"], c["error_px"], c["error_mm"]
        ae = c["argmax_error"]
        cells = np.array(c["size"], dtype=np.float64) - 1
        sig = c["sigma_eff"]
        if sig < 0.3:
            regime = ("σ < 0.3 voxel: the softmax sits almost all on the nearest voxel, so the soft-argmax "
                      "<b>snaps to the grid like the argmax</b> — quantised")
        elif sig <= 2.0:
            regime = ("σ between 0.3 and 2 voxels: the softmax spans a few voxels and its mean "
                      "<b>interpolates between them</b> — sub-bin precision, unless a face is near")
        else:
            regime = ("σ above 2 voxels: a joint within ~2σ of a face loses the part of its Gaussian beyond "
                      "the face, and the mean moves <b>toward the centre</b>")
        if c["background"] > 0.05:
            regime += (f"; and the floor's {c['background']:.0%} of the mass, spread over the whole volume, "
                       f"pulls the estimate toward its centre")
        slice_note = f"slice {c['slice']}"
        if c["slice_asked"] < 0:
            slice_note += " (auto: the bin nearest the true depth)"
        elif c["slice_asked"] != c["slice"]:
            slice_note += f" (asked {c['slice_asked']}, clamped to D − 1)"
        root = (" With even D the pelvis (z = 0, the depth origin) falls exactly between two depth bins "
                f"(voxel {(D - 1) / 2:g}), as with the official D = 64." if D % 2 == 0 else "")
        return (f"<b>{c['joint']}</b>, pose {c['seed']}: truth {fmt(t)} (voxel "
                f"{c['voxel'][j][0]:.2f}, {c['voxel'][j][1]:.2f}, {c['voxel'][j][2]:.2f}); "
                f"soft-argmax {fmt(s)}; argmax {fmt(a)}. Volume {D}×{HEATMAP}×{HEATMAP} (D×h×w), grid "
                f"i/(n−1) − 0.5: a bin is {c['bin_px']:.2f} px in x, y and <b>{c['bin_mm']:.1f} mm</b> in z; "
                f"{slice_note}.<br>"
                f"<b>Soft-argmax error</b>: ({ev[0]:+.3f}, {ev[1]:+.3f}, {ev[2]:+.3f}) voxels = "
                f"({epx[0]:+.2f}, {epx[1]:+.2f}) px, <b>{emm:+.1f} mm</b> in z; argmax error "
                f"({ae[0] * cells[0]:+.3f}, {ae[1] * cells[1]:+.3f}, {ae[2] * cells[2]:+.3f}) voxels, "
                f"{ae[2] * DEPTH_RANGE_MM:+.1f} mm in z.<br>"
                f"The logits are a log-Gaussian of spread {c['spread']:g} voxels on a floor {FLOOR:g} below its "
                f"peak, so softmax(β·logits) is a Gaussian of σ = spread/√β = <b>{sig:.2f} voxels</b>, and the "
                f"floor holds <b>{c['background']:.1%}</b> of the mass. {regime}. "
                f"The argmax is always quantised: up to half a bin ({c['bin_px'] / 2:.2f} px, "
                f"{c['bin_mm'] / 2:.0f} mm at D = {D}); more bins shrink that, but the same σ in voxels is then "
                f"a narrower distribution in mm. Small β lifts the floor (e^(−{FLOOR:g}β) per voxel), and that "
                f"mass, spread evenly over all {D * HEATMAP * HEATMAP} voxels, drags the soft-argmax toward the "
                f"volume's centre (0, 0, 0); large β sharpens everything toward the argmax.{root}")
