"""EventHPE, seen: the event simulator's knobs on a rendered clip, the event representations
side by side, FlowNet's flow against the true flow, and a tracked mesh over the frames
(notebook 07).

* :class:`EventExplorer` — contrast thresholds, threshold mismatch, refractory period and
  shot noise on a motion clip: the events as an x–y–t point cloud (ON red, OFF blue) and the
  event frame of one interval beside its gray frame;
* :func:`representations_figure` — one interval's events as event frames, a voxel grid
  (raw / E2VID / tonic), a time surface and EventHPE's binary frames;
* :func:`flow_figure` — predicted and true flow as colour wheels, with the EPE;
* :func:`track_figure` — a tracked mesh over the frames of a clip, step by step.
"""

from __future__ import annotations

import functools
from typing import Any

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from labcore.data import events as ev
from labcore.viz.figures import add_image_panel, flow_to_rgb
from labcore.viz.widgets import Explorer, _slider

__all__ = ["EventExplorer", "representations_figure", "flow_figure", "track_figure", "event_frame_rgb"]

#: most events drawn in the 3-D point cloud (a random subset beyond it, for a live widget)
MAX_POINTS = 6000


@functools.lru_cache(maxsize=8)
def _clip(seed: int, frames: int = 9, size: int = 64, fps: float = 7.5) -> dict[str, np.ndarray]:
    from labcore.data.scenes import motion_frames

    return motion_frames(seed, n_frames=frames, fps=fps, size=(size, size))


def event_frame_rgb(events: np.ndarray, sensor_size: Any, gray: np.ndarray | None = None) -> np.ndarray:
    """Events drawn as an image ``(H, W, 3)`` uint8: ON red, OFF blue (by count, saturating at
    3 events), over the gray frame darkened (or black)."""
    w, h = int(sensor_size[0]), int(sensor_size[1])
    counts = ev.to_event_frames(events, (w, h), 1)[0] if len(events) else np.zeros((2, h, w), np.float32)
    base = np.zeros((h, w, 3)) if gray is None else 0.35 * np.repeat(np.asarray(gray)[..., None], 3, -1)
    on, off = np.clip(counts[1] / 3.0, 0, 1), np.clip(counts[0] / 3.0, 0, 1)
    rgb = base * (1 - np.maximum(on, off))[..., None]
    rgb[..., 0] += on
    rgb[..., 2] += off
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


class EventExplorer(Explorer):
    """The event simulator (:func:`labcore.data.events.simulate_events`) on a rendered clip.

    Parameters: ``threshold`` (ON and OFF contrast threshold, log units), ``sigma_thres``
    (per-pixel mismatch), ``refractory_ms``, ``noise_hz`` (shot noise per pixel), ``interval``
    (the frame interval shown as a frame), ``seed`` (the clip).
    """

    def controls(self) -> dict[str, W.ValueWidget]:
        return {
            "threshold": _slider(0.2, 0.05, 1.0, 0.05, "threshold C"),
            "sigma_thres": _slider(0.0, 0.0, 0.1, 0.01, "mismatch σ"),
            "refractory_ms": _slider(0.0, 0.0, 60.0, 1.0, "refractory (ms)"),
            "noise_hz": _slider(0.0, 0.0, 20.0, 0.5, "shot noise (Hz)"),
            "interval": W.IntSlider(value=3, min=0, max=7, description="interval", continuous_update=False),
            "seed": W.IntText(value=0, description="clip seed"),
        }

    def simulate(self, **params: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The clip and its events for ``params`` (the explorer's own call)."""
        clip = _clip(int(params["seed"]))
        c = float(params["threshold"])
        events = ev.simulate_events(clip["gray"], clip["times"], c, c, sigma_thres=float(params["sigma_thres"]),
                                    refractory_period_s=float(params["refractory_ms"]) / 1000.0,
                                    shot_noise_rate_hz=float(params["noise_hz"]), seed=int(params["seed"]))
        return events, clip

    def build(self, **params: Any) -> tuple[go.Figure, str]:
        events, clip = self.simulate(**params)
        k = int(params["interval"])
        h, w = clip["gray"].shape[1:]
        t_us = np.rint(clip["times"] * 1e6).astype(np.int64)
        sel = events[(events["t"] >= t_us[k]) & (events["t"] <= t_us[k + 1])]
        shown = events
        if len(events) > MAX_POINTS:
            shown = events[np.random.default_rng(0).choice(len(events), MAX_POINTS, replace=False)]
        fig = make_subplots(1, 3, specs=[[{"type": "scene"}, {"type": "xy"}, {"type": "xy"}]],
                            column_widths=[0.5, 0.25, 0.25],
                            subplot_titles=("events in x–y–t (ON red, OFF blue)", f"gray frame {k + 1}",
                                            f"events of interval {k}→{k + 1}"))
        fig.add_trace(go.Scatter3d(x=shown["x"], y=shown["t"] / 1000.0, z=shown["y"], mode="markers",
                                   marker={"size": 1.5, "color": (shown["p"] > 0).astype(np.uint8), "cmin": 0, "cmax": 1,
                                           "colorscale": [[0, "#1f77b4"], [1, "#d62728"]]},
                                   hoverinfo="skip", name="events"), row=1, col=1)
        gray = clip["gray"][k + 1]
        add_image_panel(fig, (np.repeat(gray[..., None], 3, -1) * 255).astype(np.uint8), row=1, col=2, png=True)
        add_image_panel(fig, event_frame_rgb(sel, (w, h), clip["gray"][k]), row=1, col=3, png=True)
        fig.update_layout(height=380, margin={"l": 0, "r": 0, "t": 30, "b": 0}, showlegend=False,
                          scene={"xaxis_title": "x", "yaxis_title": "t (ms)", "zaxis_title": "y",
                                 "zaxis": {"autorange": "reversed"}})
        for c in (2, 3):
            fig.update_yaxes(scaleanchor=f"x{c - 1 if c > 2 else ''}", row=1, col=c)
        n_on = int((events["p"] > 0).sum())
        note = (f"{len(events)} events over {len(clip['times']) - 1} intervals ({n_on} ON, {len(events) - n_on} OFF); "
                f"{len(sel)} in interval {k}; the 3-D view shows {len(shown)}")
        return fig, note


def representations_figure(events: np.ndarray, sensor_size: Any, n_bins: int = 4,
                           t_start_us: int | None = None, t_end_us: int | None = None) -> go.Figure:
    """One window of events in every representation labcore has: ON/OFF counts
    (``to_event_frames``), the voxel grid's first and last bins (raw, E2VID-normalised),
    the time surface (ON, OFF) and EventHPE's binary frames (first and last of 8)."""
    w, h = int(sensor_size[0]), int(sensor_size[1])
    counts = ev.to_event_frames(events, (w, h), 1)[0]
    raw = ev.to_voxel_grid(events, (w, h), n_bins, "none")
    e2vid = ev.to_voxel_grid(events, (w, h), n_bins, "e2vid")
    surface = ev.to_time_surface(events, (w, h))
    binary = ev.to_binary_frames(events, (w, h), 8, t_start_us=t_start_us, t_end_us=t_end_us)
    panels = [("ON counts", counts[1], "Reds"), ("OFF counts", counts[0], "Blues"),
              ("voxel bin 0 (raw)", raw[0], "RdBu_r"), (f"voxel bin {n_bins - 1} (raw)", raw[-1], "RdBu_r"),
              (f"voxel bin {n_bins - 1} (E2VID)", e2vid[-1], "RdBu_r"), ("time surface ON", surface[1], "Viridis"),
              ("binary frame 0 of 8", binary[0], "Greys"), ("binary frame 7 of 8", binary[-1], "Greys")]
    fig = make_subplots(2, 4, subplot_titles=[p[0] for p in panels], horizontal_spacing=0.03, vertical_spacing=0.08)
    for i, (_, z, scale) in enumerate(panels):
        r, c = divmod(i, 4)
        sym = scale == "RdBu_r"
        top = float(np.abs(z).max()) or 1.0
        fig.add_trace(go.Heatmap(z=z, colorscale=scale, showscale=False, zmin=-top if sym else 0.0,
                                 zmax=top, hovertemplate="x=%{x} y=%{y}: %{z:.2f}<extra></extra>"),
                      row=r + 1, col=c + 1)
    fig.update_yaxes(autorange="reversed", visible=False).update_xaxes(visible=False)
    fig.update_layout(height=420, margin={"l": 0, "r": 0, "t": 30, "b": 0})
    return fig


def flow_figure(pred: np.ndarray, true: np.ndarray, gray: np.ndarray | None = None, mask: np.ndarray | None = None
                ) -> go.Figure:
    """Predicted and true flow ``(2, H, W)`` as colour wheels (hue = direction, brightness =
    length, one scale for both), with the end-point error in the title (on ``mask`` if given)."""
    p, t = np.asarray(pred, dtype=np.float32), np.asarray(true, dtype=np.float32)
    top = max(float(np.linalg.norm(t, axis=0).max()), 1e-3)
    err = np.linalg.norm(p - t, axis=0)
    m = np.ones_like(err) if mask is None else np.asarray(mask, dtype=np.float32)
    epe_value = float((err * m).sum() / max(m.sum(), 1.0))
    zero = float((np.linalg.norm(t, axis=0) * m).sum() / max(m.sum(), 1.0))
    titles = ["gray frame", "FlowNet flow", "true flow"]
    fig = make_subplots(1, 3, subplot_titles=titles, horizontal_spacing=0.02)
    if gray is not None:
        add_image_panel(fig, (np.repeat(np.asarray(gray)[..., None], 3, -1) * 255).astype(np.uint8), row=1, col=1)
    add_image_panel(fig, flow_to_rgb(p.transpose(1, 2, 0), top), row=1, col=2)
    add_image_panel(fig, flow_to_rgb(t.transpose(1, 2, 0), top), row=1, col=3)
    fig.update_xaxes(visible=False).update_yaxes(visible=False)
    fig.update_layout(height=300, margin={"l": 0, "r": 0, "t": 50, "b": 0},
                      title=f"EPE {epe_value:.2f} px (zero flow {zero:.2f} px)")
    return fig


def track_figure(frames: np.ndarray, overlays: list[np.ndarray], titles: list[str] | None = None) -> go.Figure:
    """Images in a row (e.g. :func:`labcore.viz.posh.mesh_overlay` of a tracked mesh on each
    step's frame); ``frames`` is only used for the count when ``overlays`` is empty."""
    images = overlays if overlays else [np.asarray(f) for f in frames]
    fig = make_subplots(1, len(images), subplot_titles=titles, horizontal_spacing=0.005)
    for i, im in enumerate(images):
        add_image_panel(fig, im, row=1, col=i + 1)
    fig.update_xaxes(visible=False).update_yaxes(visible=False)
    fig.update_layout(height=220, margin={"l": 0, "r": 0, "t": 30, "b": 0})
    return fig
