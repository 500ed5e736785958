"""Explorers and figures for 2-D keypoint localisation — heatmaps, integral regression and
SimDR (notebooks 01 and 02).

* :class:`HeatmapExplorer` — a person crop, one joint, its Gaussian target at a chosen
  stride and σ, and where each decoder puts the keypoint back.
* :class:`SimDRExplorer` — the same joint as SimDR sees it: the x and y label vectors
  (one-hot with label smoothing, or Gaussian), the 2-D map they imply, the decoded point.
* :func:`decoder_floor_figure`, :func:`simdr_floor_figure` — quantisation floors.
* :func:`curves_figure` — training losses of several runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from labcore.methods.heatmap import DECODERS, VARIANTS, GaussianHeatmap, decoder_floor
from labcore.methods.simdr import CENTERS, SimDR, quantisation_floor
from labcore.skeletons import COCO17
from labcore.viz.figures import add_image_panel
from labcore.viz.widgets import Explorer, _crop, _slider

__all__ = ["HeatmapExplorer", "SimDRExplorer", "decoder_floor_figure", "simdr_floor_figure",
           "curves_figure"]

CROP = 64  # px, the explorers' input size


def _keypoint(params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, int, float]:
    """The crop image, the chosen joint's keypoint (moved by dx, dy), its index, visibility."""
    a = _crop(int(params["seed"]), "any", "procedural", CROP)
    k = COCO17.index(params["joint"])
    kp = a["keypoints_coco17"][0, k] + np.array([params["dx"], params["dy"]], dtype=np.float32)
    return a["image"][0], kp.astype(np.float32), k, float(a["visibility_coco17"][0, k] > 0)


def _markers(fig: go.Figure, gt: Sequence[float], decoded: Sequence[float], row: int, col: int,
             legend: bool) -> None:
    fig.add_trace(go.Scatter(x=[gt[0]], y=[gt[1]], mode="markers", name="keypoint",
                             marker={"symbol": "circle-open", "size": 13, "color": "#40ff60", "line": {"width": 2}},
                             showlegend=legend), row=row, col=col)
    fig.add_trace(go.Scatter(x=[decoded[0]], y=[decoded[1]], mode="markers", name="decoded",
                             marker={"symbol": "x", "size": 10, "color": "#ff4040"}, showlegend=legend),
                  row=row, col=col)


def _common_controls() -> dict[str, W.ValueWidget]:
    return {
        "seed": W.IntText(value=0, description="crop seed"),
        "joint": W.Dropdown(options=list(COCO17.joint_names), value="left_wrist", description="joint"),
        "dx": _slider(0.0, -4.0, 4.0, 0.125, "move x (px)"),
        "dy": _slider(0.0, -4.0, 4.0, 0.125, "move y (px)"),
    }


class HeatmapExplorer(Explorer):
    """Image ↔ heatmap: a 64×64 crop, one joint, its target map, and the decoded keypoint.

    Parameters: ``seed`` (crop), ``joint`` (COCO17 name), ``dx``/``dy`` (move the keypoint,
    sub-pixel steps — watch the peak stay put, then jump), ``stride`` (1, 2, 4, 8),
    ``sigma`` (heatmap pixels), ``variant`` (``'msra'``, ``'dark'``, ``'udp'``), ``refine``.
    """

    def controls(self) -> dict[str, W.ValueWidget]:
        return {
            **_common_controls(),
            "stride": W.Dropdown(options=[1, 2, 4, 8], value=4, description="stride"),
            "sigma": _slider(2.0, 0.5, 4.0, 0.25, "sigma (hm px)"),
            "variant": W.Dropdown(options=list(VARIANTS), value="msra", description="variant"),
            "refine": W.Checkbox(value=True, description="sub-pixel refinement"),
        }

    def compute(self, **params: Any) -> dict[str, Any]:
        """The numbers behind the figure: target map, decoded keypoint, error."""
        image, kp, k, vis = _keypoint(params)
        stride = int(params["stride"])
        hm_size = (CROP // stride, CROP // stride)
        codec = GaussianHeatmap((CROP, CROP), hm_size, float(params["sigma"]), refine=bool(params["refine"]),
                                variant=params["variant"])
        enc = codec.encode(torch.from_numpy(kp)[None, None])
        decoded, score = codec.decode(enc["heatmaps"])
        sx, sy = codec.stride
        return {"image": image, "keypoint": kp, "heatmap": enc["heatmaps"][0, 0].numpy(),
                "weight": float(enc["weights"][0, 0]), "decoded": decoded[0, 0].numpy(),
                "score": float(score[0, 0]), "stride_xy": (sx, sy), "labelled": vis,
                "error": float(np.linalg.norm(decoded[0, 0].numpy() - kp))}

    def build(self, **params: Any) -> tuple[go.Figure, str]:
        c = self.compute(**params)
        sx, sy = c["stride_xy"]
        h, w = c["heatmap"].shape
        fig = make_subplots(1, 2, subplot_titles=(f"input crop ({CROP}×{CROP})",
                                                  f"target heatmap ({w}×{h}, stride {params['stride']})"),
                            horizontal_spacing=0.06)
        add_image_panel(fig, c["image"], row=1, col=1, png=True)
        # The heatmap pixel grid drawn over the image: each cell is one heatmap pixel. One
        # line trace, segments separated by None (one shape per line is ~10× slower to update).
        xs = [-0.5 + i * sx for i in range(w + 1)]
        ys = [-0.5 + j * sy for j in range(h + 1)]
        gx = [v for x in xs for v in (x, x, None)] + [v for _ in ys for v in (-0.5, CROP - 0.5, None)]
        gy = [v for _ in xs for v in (-0.5, CROP - 0.5, None)] + [v for y in ys for v in (y, y, None)]
        fig.add_trace(go.Scatter(x=gx, y=gy, mode="lines", line={"color": "rgba(255,255,255,0.25)", "width": 1},
                                 hoverinfo="skip", showlegend=False, name="heatmap pixels"), row=1, col=1)
        _markers(fig, c["keypoint"], c["decoded"], 1, 1, True)
        fig.add_trace(go.Heatmap(z=c["heatmap"], colorscale="Magma", showscale=False,
                                 hovertemplate="col %{x}, row %{y}: %{z:.3f}<extra></extra>"), row=1, col=2)
        _markers(fig, c["keypoint"] / np.array([sx, sy]), c["decoded"] / np.array([sx, sy]), 1, 2, False)
        fig.update_xaxes(range=[-0.5, w - 0.5], row=1, col=2)
        fig.update_yaxes(range=[h - 0.5, -0.5], scaleanchor="x2", row=1, col=2)
        fig.update_yaxes(scaleanchor="x", row=1, col=1)
        fig.update_layout(height=380, margin={"l": 5, "r": 5, "t": 30, "b": 5},
                          legend={"orientation": "h", "y": -0.05})
        kp, dec = c["keypoint"], c["decoded"]
        note = (f"keypoint ({kp[0]:.2f}, {kp[1]:.2f}) px → heatmap ({kp[0] / sx:.2f}, {kp[1] / sy:.2f}) → "
                f"decoded ({dec[0]:.2f}, {dec[1]:.2f}) px: error <b>{c['error']:.2f} px</b> "
                f"(stride/2 = {sx / 2:.1f}); peak {c['score']:.3f}, weight {c['weight']:.0f}")
        return fig, note


class SimDRExplorer(Explorer):
    """SimDR's labels for one joint: the x and y vectors over ``W·k`` and ``H·k`` bins, the
    2-D map their outer product implies, and the decoded keypoint.

    Parameters: ``seed``, ``joint``, ``dx``/``dy`` as :class:`HeatmapExplorer`;
    ``split_ratio`` k, ``sigma`` (bins; 0 = one-hot), ``label_smoothing`` (one-hot only),
    ``center`` (``'float'`` official SA-SimDR, ``'round'`` mmpose).
    """

    def controls(self) -> dict[str, W.ValueWidget]:
        return {
            **_common_controls(),
            "split_ratio": W.Dropdown(options=[1.0, 1.5, 2.0, 3.0, 4.0], value=2.0, description="split ratio k"),
            "sigma": _slider(0.0, 0.0, 8.0, 0.5, "sigma (bins)"),
            "label_smoothing": _slider(0.1, 0.0, 0.5, 0.05, "label smoothing"),
            "center": W.Dropdown(options=list(CENTERS), value="float", description="Gaussian centre"),
        }

    def compute(self, **params: Any) -> dict[str, Any]:
        image, kp, k, vis = _keypoint(params)
        codec = SimDR((CROP, CROP), float(params["split_ratio"]), sigma=float(params["sigma"]),
                      label_smoothing=float(params["label_smoothing"]), center=params["center"])
        enc = codec.encode(torch.from_numpy(kp)[None, None])
        x, y = enc["x_labels"][0, 0], enc["y_labels"][0, 0]
        # Decode the labels as if they were a perfect network's softmax output.
        logits = [v.clamp_min(1e-12).log()[None, None] for v in (x, y)]
        decoded, score = codec.decode(*logits)
        return {"image": image, "keypoint": kp, "x": x.numpy(), "y": y.numpy(), "k": codec.split_ratio,
                "map": np.outer(y.numpy(), x.numpy()), "decoded": decoded[0, 0].numpy(),
                "score": float(score[0, 0]), "weight": float(enc["weights"][0, 0]), "bins": codec.num_bins,
                "error": float(np.linalg.norm(decoded[0, 0].numpy() - kp))}

    def build(self, **params: Any) -> tuple[go.Figure, str]:
        c = self.compute(**params)
        k = c["k"]
        nx, ny = c["bins"]
        fig = make_subplots(2, 3, specs=[[{"rowspan": 2}, {}, {"rowspan": 2}], [None, {}, None]],
                            subplot_titles=("input crop", f"x labels ({nx} bins)", "implied 2-D map (y ⊗ x)",
                                            f"y labels ({ny} bins)"),
                            column_widths=[0.34, 0.32, 0.34], horizontal_spacing=0.05, vertical_spacing=0.15)
        add_image_panel(fig, c["image"], row=1, col=1)
        _markers(fig, c["keypoint"], c["decoded"], 1, 1, True)
        bins_px_x = np.arange(nx) / k
        bins_px_y = np.arange(ny) / k
        fig.add_trace(go.Bar(x=bins_px_x, y=c["x"], marker_color="#4a7bd0", showlegend=False,
                             hovertemplate="bin at x=%{x:.2f} px: %{y:.4f}<extra></extra>"), row=1, col=2)
        fig.add_trace(go.Bar(x=bins_px_y, y=c["y"], marker_color="#d07b4a", showlegend=False,
                             hovertemplate="bin at y=%{x:.2f} px: %{y:.4f}<extra></extra>"), row=2, col=2)
        for row, coord in ((1, 0), (2, 1)):
            lo, hi = c["keypoint"][coord] - 6, c["keypoint"][coord] + 6
            fig.update_xaxes(range=[lo, hi], title_text="pixels (bin / k)" if row == 2 else None, row=row, col=2)
            fig.add_vline(x=float(c["keypoint"][coord]), line={"color": "#40c060", "dash": "dot"}, row=row, col=2)
        fig.add_trace(go.Heatmap(z=c["map"], x=bins_px_x, y=bins_px_y, colorscale="Magma", showscale=False),
                      row=1, col=3)
        _markers(fig, c["keypoint"], c["decoded"], 1, 3, False)
        fig.update_xaxes(range=[c["keypoint"][0] - 8, c["keypoint"][0] + 8], row=1, col=3)
        fig.update_yaxes(range=[c["keypoint"][1] + 8, c["keypoint"][1] - 8], row=1, col=3)
        fig.update_yaxes(scaleanchor="x", row=1, col=1)
        fig.update_layout(height=420, margin={"l": 5, "r": 5, "t": 30, "b": 5}, bargap=0.05,
                          legend={"orientation": "h", "y": -0.08})
        kp, dec = c["keypoint"], c["decoded"]
        kind = "one-hot + smoothing" if float(params["sigma"]) == 0 else f"Gaussian σ={float(params['sigma']):g} bins"
        note = (f"{kind}, k = {k:g}: keypoint ({kp[0]:.3f}, {kp[1]:.3f}) → decoded ({dec[0]:.3f}, {dec[1]:.3f}): "
                f"error <b>{c['error']:.3f} px</b> (floor 1/(2k) = {0.5 / k:.3f} px per axis); "
                f"label peak {c['x'].max():.3f}, weight {c['weight']:.0f}")
        return fig, note


# --------------------------------------------------------------------------- quantisation floors


def decoder_floor_figure(input_size: int = 256, heatmap_sizes: Sequence[int] = (8, 16, 32, 64),
                         sigma: float = 2.0, n: int = 1000, seed: int = 0) -> tuple[go.Figure, dict]:
    """Mean decoding error of an ideal heatmap (:func:`~labcore.methods.heatmap.decoder_floor`)
    for each decoder over heatmap sizes; returns the figure and ``{decoder: [mean px]}``."""
    means: dict[str, list[float]] = {d: [] for d in DECODERS}
    for s in heatmap_sizes:
        floor = decoder_floor((input_size, input_size), (s, s), sigma=sigma, n=n, seed=seed)
        for d in DECODERS:
            means[d].append(float(floor[d].mean()))
    fig = go.Figure()
    for d in DECODERS:
        fig.add_trace(go.Scatter(x=list(heatmap_sizes), y=means[d], mode="lines+markers", name=d))
    fig.update_layout(title=f"decoding an ideal heatmap: mean error in a {input_size}² input (σ = {sigma:g} hm px)",
                      xaxis={"title": "heatmap side (px)", "type": "log", "tickvals": list(heatmap_sizes)},
                      yaxis={"title": "mean error (input px)", "type": "log"}, height=380,
                      margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig, means


def simdr_floor_figure(input_size: int = 64, split_ratios: Sequence[float] = (1, 1.5, 2, 3, 4),
                       stride: int = 4) -> tuple[go.Figure, dict[float, float]]:
    """SimDR's measured floor per k beside the heatmap argmax floor at ``stride``."""
    floor = quantisation_floor(input_size, split_ratios)
    ks = list(floor)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=ks, y=list(floor.values()), mode="lines+markers", name="SimDR, measured"))
    fig.add_trace(go.Scatter(x=ks, y=[1 / (4 * k) for k in ks], mode="lines", name="1/(4k)",
                             line={"dash": "dot"}))
    fig.add_hline(y=stride / 4, line={"dash": "dash", "color": "#c04040"},
                  annotation_text=f"heatmap argmax, stride {stride}: {stride / 4:g} px")
    fig.update_layout(title="quantisation floor: mean |error| per axis of decoding the labels themselves",
                      xaxis_title="split ratio k (bins per pixel)", yaxis={"title": "input px", "type": "log"},
                      height=360, margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig, floor


def curves_figure(histories: Mapping[str, Any], title: str = "training loss") -> go.Figure:
    """Loss curves of several :class:`~labcore.train.History` objects, one line each
    (each normalised by its first value, since the losses have different units)."""
    fig = go.Figure()
    for name, h in histories.items():
        loss = np.asarray(h.loss, dtype=np.float64)
        fig.add_trace(go.Scatter(x=h.steps, y=loss / loss[0], mode="lines", name=name))
    fig.update_layout(title=title, xaxis_title="step", yaxis={"title": "loss / first loss", "type": "log"},
                      height=320, margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig
