"""Explorers and figures for bottom-up pose with SAHR + WAHR (notebook 03).

* :class:`SAHRExplorer` — how SAHR reshapes a Gaussian target: ``H^(1+α)`` (exact) against
  the second-order Taylor form the official loss trains on, and the Gaussian of
  ``σ_eff = σ₀/√(1+α)``.
* :class:`WAHRExplorer` — WAHR's weight ``W = |1-P|·H^γ + |P|·(1-H^γ)`` on a two-person
  ground truth and a synthetic prediction, and how much of the loss sits on the foreground.
* :func:`scale_figure` — why one fixed σ hurts when people's scales vary: a crowd image and
  its stride-4 targets, where small people's joints blur into one blob.
* :func:`people_figure` — decoded people (:func:`labcore.methods.sahr_wahr.decode_people`)
  drawn as COCO17 skeletons over the image, with the ground truth as hollow markers.

Conventions (DESIGN.md §2): keypoints in input-image pixels, x right, y down, integers at
pixel centres; heatmap coordinates are ``input · w/W`` (HigherHRNet), σ in heatmap pixels.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from labcore.checks import as_tensor, check_choice, check_int, check_number
from labcore.data.images import tensor_to_image
from labcore.heatmaps import gaussian_heatmaps, higherhrnet_heatmaps
from labcore.methods import sahr_wahr as sw
from labcore.skeletons import COCO17
from labcore.viz.figures import _bones_xy, add_image_panel
from labcore.viz.widgets import Explorer, _slider

__all__ = ["SAHRExplorer", "WAHRExplorer", "scale_figure", "people_figure", "PERSON_COLOURS",
           "TAYLOR_TOLERANCE", "WAHR_PREDICTIONS"]

#: One colour per person (cycled).
PERSON_COLOURS = tuple(qualitative.D3)
#: Where :class:`SAHRExplorer` says the Taylor target and the exact power "part": the
#: largest |Taylor − exact| on the target's pixels exceeds this (heatmap values, peak 1).
TAYLOR_TOLERANCE = 0.02
_MARGIN = 4  # tight plot margins (px), as the other explorers


def _layout(fig: go.Figure, height: int, **extra: Any) -> go.Figure:
    fig.update_layout(height=height, margin={"l": _MARGIN, "r": _MARGIN, "t": 40, "b": _MARGIN}, **extra)
    return fig


# --------------------------------------------------------------------------- SAHR


def _sahr_pair(h: torch.Tensor, alpha: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Taylor target and exact power (:mod:`~labcore.methods.sahr_wahr`) of maps ``h``
    shaped ``(1, 1, a, b)``; ``alpha`` a number or broadcastable to ``h``."""
    a = torch.as_tensor(alpha, dtype=h.dtype).expand(h.shape).contiguous()
    return sw.sahr_target(h, a), sw.sahr_exact(h, a)


def _sahr_ground_truth(sigma0: float) -> tuple[torch.Tensor, int, float]:
    """HigherHRNet's peak-1 Gaussian of σ₀ on its square support ``|d| <= 3σ₀ + 1``, in a
    map with two zero pixels beyond it on each side: ``(H (1, 1, n, n) float64, span,
    radius)`` with the peak at ``(span, span)``."""
    radius = 3.0 * sigma0 + 1.0  # the official kernel: 6σ+3 samples, peak in the middle
    span = int(math.floor(radius)) + 2
    n = 2 * span + 1
    H, _ = gaussian_heatmaps([[[span, span]]], (n, n), sigma0, radius=radius)
    # float64: the Taylor − exact differences are ~1e-3, keep them free of rounding.
    return H.double(), span, radius


@functools.lru_cache(maxsize=64)
def _taylor_alpha_range(sigma0: float) -> tuple[float, float]:
    """The α interval around 0 (steps of 0.01 over [-0.99, 1.5]) in which max |Taylor −
    exact| on the σ₀ target's pixels stays <= :data:`TAYLOR_TOLERANCE`. Cached: it moves
    with σ₀ only, and the sliders move α more often."""
    H, _, _ = _sahr_ground_truth(sigma0)
    alphas = torch.arange(-99, 151, dtype=torch.float64) / 100
    # The error depends on the value H only, so each distinct value is enough.
    values = torch.unique(H)
    hs = values.reshape(1, 1, 1, -1).expand(1, 1, len(alphas), -1)
    ts, es = _sahr_pair(hs, alphas[None, None, :, None])
    ok = ((ts - es).abs().amax(-1)[0, 0] <= TAYLOR_TOLERANCE).numpy()
    lo = hi = int(torch.argmin(alphas.abs()))
    while lo > 0 and ok[lo - 1]:
        lo -= 1
    while hi < len(ok) - 1 and ok[hi + 1]:
        hi += 1
    return float(alphas[lo]), float(alphas[hi])


class SAHRExplorer(Explorer):
    """How SAHR reshapes a Gaussian: the ground truth ``H`` (σ₀, peak 1, HigherHRNet's
    square support ``|d| <= 3σ₀ + 1``), the exact power ``H^(1+α)``, the official Taylor
    target ``H + H·lnH·α + ½·H·ln²H·α²`` and the Gaussian of ``σ_eff = σ₀/√(1+α)``.

    Parameters: ``sigma0`` (heatmap px), ``alpha`` (the scale map's value; ``α > 0``
    sharpens, ``α < 0`` widens), ``view`` (``'1-D profile'`` or ``'2-D maps'``).
    """

    VIEWS = ("1-D profile", "2-D maps")

    def controls(self) -> dict[str, W.ValueWidget]:
        return {
            "sigma0": _slider(2.0, 0.5, 4.0, 0.25, "σ₀ (hm px)"),
            "alpha": _slider(0.3, -0.9, 1.5, 0.05, "α"),
            "view": W.Dropdown(options=list(self.VIEWS), value=self.VIEWS[0], description="view"),
        }

    def compute(self, **params: Any) -> dict[str, Any]:
        """The numbers behind the figure.

        Returns a dict with (all heatmap values, peak 1; distances in heatmap px):

        * ``d (n,)`` integer pixel offsets from the centre, ``|d| <= 3σ₀ + 3`` (two zero
          pixels beyond the support on each side); ``H, taylor, exact (n, n)`` the 2-D maps
          (the centre row is the 1-D profile), ``error (n, n)`` = taylor − exact;
        * ``d_fine (m,)`` and ``fine`` — the same curves sampled densely (``H``,
          ``taylor``, ``exact``, ``gaussian_eff``: an untruncated Gaussian of σ_eff);
        * ``sigma_eff``, ``s`` = 1/(1+α) (the paper's scale: σ_eff = σ₀·√s), ``radius`` =
          3σ₀ + 1 (the support's half side);
        * ``max_error`` — max |taylor − exact| over the map's pixels (what the loss sees);
          ``sup_error`` — over every value ``H`` in (0, 1];
        * ``alpha_range (lo, hi)`` — the α interval around 0, scanned in steps of 0.01 over
          [−0.99, 1.5], in which ``max_error`` stays <= :data:`TAYLOR_TOLERANCE` at this σ₀;
        * ``taylor_min``, ``taylor_max`` (the dense Taylor profile on the support),
          ``monotone`` (it never rises moving away from the centre) and ``bump`` (how far it
          climbs back above its running minimum, 0 when monotone).
        """
        s0 = check_number(params["sigma0"], "sigma0", low=0.0, low_inclusive=False)
        alpha = check_number(params["alpha"], "alpha", low=-1.0, low_inclusive=False)
        H, span, radius = _sahr_ground_truth(s0)
        taylor, exact = _sahr_pair(H, alpha)
        d = np.arange(-span, span + 1)
        d_fine = np.linspace(-span, span, 40 * span + 1)
        h_fine = torch.from_numpy(np.exp(-(d_fine**2) / (2 * s0 * s0)) * (np.abs(d_fine) <= radius))[None, None, None]
        t_fine, e_fine = _sahr_pair(h_fine, alpha)
        sigma_eff = float(sw.effective_sigma(s0, alpha))
        # The error depends on H only: its sup over (0, 1] is reached on a dense log grid.
        h_all = torch.logspace(-12, 0, 2001, dtype=torch.float64)[None, None, None]
        t_all, e_all = _sahr_pair(h_all, alpha)
        sup_error = float((t_all - e_all).abs().max())
        tf = t_fine[0, 0, 0].numpy()
        on = tf[h_fine[0, 0, 0].numpy() > 0]  # the support (the target is 0 beyond it)
        half = tf[len(tf) // 2:]  # centre → right edge
        rise = float(np.max(half - np.minimum.accumulate(half)))  # how far it climbs back up
        return {
            "d": d, "H": H[0, 0].numpy(), "taylor": taylor[0, 0].numpy(), "exact": exact[0, 0].numpy(),
            "error": (taylor - exact)[0, 0].numpy(), "d_fine": d_fine,
            "fine": {"H": h_fine[0, 0, 0].numpy(), "taylor": tf, "exact": e_fine[0, 0, 0].numpy(),
                     "gaussian_eff": np.exp(-(d_fine**2) / (2 * sigma_eff**2))},
            "sigma0": s0, "alpha": alpha, "sigma_eff": sigma_eff, "s": 1.0 / (1.0 + alpha), "radius": radius,
            "max_error": float((taylor - exact).abs().max()), "sup_error": sup_error,
            "alpha_range": _taylor_alpha_range(s0),
            "taylor_min": float(on.min()), "taylor_max": float(on.max()),
            "monotone": rise <= 1e-12, "bump": rise,
        }

    def build(self, **params: Any) -> tuple[go.Figure, str]:
        view = check_choice(params["view"], "view", self.VIEWS)
        c = self.compute(**params)
        a, s0 = c["alpha"], c["sigma0"]
        if view == "1-D profile":
            fig = make_subplots(2, 1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.06,
                                subplot_titles=("target profile through the peak", "Taylor − exact on the pixels"))
            f, x = c["fine"], c["d_fine"]
            curves = ((f"H (σ₀ = {s0:g})", f["H"], {"color": "#9a9a9a", "dash": "dot"}),
                      ("exact H^(1+α)", f["exact"], {"color": "#2c7fb8", "width": 3}),
                      (f"Gaussian σ_eff = {c['sigma_eff']:.2f}", f["gaussian_eff"], {"color": "#41ab5d", "dash": "dash"}),
                      ("Taylor (official)", f["taylor"], {"color": "#e34a33"}))
            for name, y, line in curves:
                fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=name, line=line), row=1, col=1)
            mid = len(c["d"]) // 2
            fig.add_trace(go.Scatter(x=c["d"], y=c["taylor"][mid], mode="markers", name="Taylor at pixels",
                                     marker={"color": "#e34a33", "size": 7}), row=1, col=1)
            fig.add_trace(go.Bar(x=c["d"], y=c["error"][mid], marker_color="#e34a33", showlegend=False,
                                 hovertemplate="d=%{x}: %{y:.4f}<extra></extra>"), row=2, col=1)
            for sign in (-1, 1):  # the support's edges: the target is 0 beyond them
                fig.add_vline(x=sign * c["radius"], line={"color": "#bbbbbb", "dash": "dot"})
            fig.update_xaxes(title_text="d (heatmap px from the centre)", row=2, col=1)
            _layout(fig, 440, legend={"orientation": "h", "y": -0.2})
        else:
            titles = ("H", "Taylor target", "exact H^(1+α)", "Taylor − exact")
            fig = make_subplots(1, 4, subplot_titles=titles, horizontal_spacing=0.03)
            lim = max(abs(float(c["error"].min())), abs(float(c["error"].max())), 1e-9)
            for col, key in enumerate(("H", "taylor", "exact"), start=1):
                fig.add_trace(go.Heatmap(z=c[key], x=c["d"], y=c["d"], colorscale="Magma", zmin=0,
                                         zmax=max(1.0, float(c[key].max())), showscale=False,
                                         hovertemplate="(%{x}, %{y}): %{z:.4f}<extra></extra>"), row=1, col=col)
            fig.add_trace(go.Heatmap(z=c["error"], x=c["d"], y=c["d"], colorscale="RdBu", zmid=0, zmin=-lim,
                                     zmax=lim, colorbar={"thickness": 10},
                                     hovertemplate="(%{x}, %{y}): %{z:.5f}<extra></extra>"), row=1, col=4)
            for col in range(1, 5):
                fig.update_yaxes(autorange="reversed", scaleanchor=f"x{col if col > 1 else ''}", row=1, col=col)
            _layout(fig, 300)
        lo, hi = c["alpha_range"]
        shape = ("monotone (it only falls away from the centre)" if c["monotone"] else
                 f"<b>not monotone</b>: it rises again by {c['bump']:.3f} away from the centre (α > 1)")
        note = (f"σ_eff = σ₀/√(1+α) = {c['sigma_eff']:.3f} hm px; the paper's scale s = 1/(1+α) = {c['s']:.3f} "
                f"(σ_eff = σ₀·√s). Max |Taylor − exact| = <b>{c['max_error']:.4f}</b> on the pixels "
                f"({c['sup_error']:.4f} over every H in (0, 1]); at σ₀ = {s0:g} it stays ≤ {TAYLOR_TOLERANCE} "
                f"for α in [{lo:.2f}, {hi:.2f}]. The Taylor form is what the official loss trains on "
                f"(the exact power is never computed). It is never negative (1 + u + u²/2 > 0) and at "
                f"α = {a:g} it peaks at {c['taylor_max']:.3f} and is {shape}. It always moves H less than "
                f"the power does: above it for α > 0 (sharpens less), below it for α < 0 (widens less).")
        return fig, note


# --------------------------------------------------------------------------- WAHR

#: ``name: (peak, sigma, shift)`` of the synthetic prediction (a Gaussian per person,
#: untruncated, as a network's smooth output); ``peak 0`` is an untrained network.
WAHR_PREDICTIONS = {
    "early (all ≈ 0)": (0.0, 2.0, (0.0, 0.0)),
    "half-trained": (0.5, 3.0, (0.0, 0.0)),
    "good": (0.9, 2.0, (0.0, 0.0)),
    "shifted peak": (0.9, 2.0, (2.0, 1.0)),
}
_WAHR_SIZE = 48  # heatmap px: big enough that the background outnumbers the foreground
_WAHR_CENTRES = ((14.0, 17.0), (32.0, 29.0))  # integer points: the generator truncates
_WAHR_SIGMA = 2.0


class WAHRExplorer(Explorer):
    """WAHR's weight on foreground and background: a 48×48 ground truth ``H`` with two
    people's Gaussians (σ = 2, :func:`~labcore.heatmaps.higherhrnet_heatmaps`), a synthetic
    prediction ``P``, ``W = wahr_weight(P, H, γ)`` and the loss map ``(P − H)²·W``.

    Parameters: ``gamma`` (the exponent on ``H``; official 0.01), ``prediction`` (a key of
    :data:`WAHR_PREDICTIONS`), ``noise`` (std of seeded Gaussian noise added to ``P``).
    """

    GAMMAS = (0.001, 0.01, 0.1, 0.5, 1.0)

    def controls(self) -> dict[str, W.ValueWidget]:
        return {
            "gamma": W.SelectionSlider(options=list(self.GAMMAS), value=sw.GAMMA, description="γ",
                                       continuous_update=False),
            "prediction": W.Dropdown(options=list(WAHR_PREDICTIONS), value="early (all ≈ 0)",
                                     description="prediction"),
            "noise": _slider(0.05, 0.0, 0.3, 0.01, "noise (std)"),
        }

    def compute(self, **params: Any) -> dict[str, Any]:
        """The numbers behind the figure.

        Returns ``H, P, W, loss, mse (48, 48)`` (``loss = (P−H)²·W``, ``mse = (P−H)²``),
        ``foreground (48, 48)`` bool (``H > 0``: the Gaussians' supports), the foreground's
        share of the total loss mass under plain MSE (``share_mse``) and WAHR
        (``share_wahr``), the mean losses ``loss_mse``/``loss_wahr``, the foreground's share
        of the pixels ``fg_pixels``, and ``H^γ`` at the support's edge on an axis
        (``hg_edge``, ``|d| = 3σ+1``) and at its corner (``hg_corner``, its minimum).
        """
        gamma = check_number(params["gamma"], "gamma", low=0.0, low_inclusive=False)
        name = check_choice(params["prediction"], "prediction", WAHR_PREDICTIONS)
        noise = check_number(params["noise"], "noise", low=0.0)
        size = (_WAHR_SIZE, _WAHR_SIZE)
        centres = torch.tensor(_WAHR_CENTRES, dtype=torch.float32)
        H = higherhrnet_heatmaps(centres[None, :, None], None, size, _WAHR_SIGMA)  # (1, 1, h, w)
        peak, sigma, shift = WAHR_PREDICTIONS[name]
        blobs, _ = gaussian_heatmaps((centres + torch.tensor(shift))[None], size, sigma, radius=float(_WAHR_SIZE))
        P = peak * blobs.amax(1, keepdim=True)
        # Seeded, so the same settings give the same numbers (and the notebook's asserts hold).
        rng = np.random.default_rng(0)
        P = P + noise * torch.from_numpy(rng.standard_normal(size[::-1]).astype(np.float32))
        weight = sw.wahr_weight(P, H, gamma)
        mse = (P - H) ** 2
        loss = mse * weight
        fg = H > 0

        def share(m: torch.Tensor) -> float:
            total = float(m.sum())
            return float(m[fg].sum()) / total if total > 0 else 0.0

        edge = math.exp(-((3 * _WAHR_SIGMA + 1) ** 2) / (2 * _WAHR_SIGMA**2))
        return {
            "H": H[0, 0].numpy(), "P": P[0, 0].numpy(), "W": weight[0, 0].numpy(), "loss": loss[0, 0].numpy(),
            "mse": mse[0, 0].numpy(), "foreground": fg[0, 0].numpy(), "gamma": gamma,
            "share_mse": share(mse), "share_wahr": share(loss),
            "loss_mse": float(mse.mean()), "loss_wahr": float(loss.mean()), "fg_pixels": float(fg.float().mean()),
            "hg_edge": edge**gamma, "hg_corner": float(H[fg].min()) ** gamma,
        }

    def build(self, **params: Any) -> tuple[go.Figure, str]:
        c = self.compute(**params)
        titles = ("ground truth H", "prediction P", f"weight W (γ = {c['gamma']:g})", "loss (P − H)²·W")
        fig = make_subplots(1, 4, subplot_titles=titles, horizontal_spacing=0.03)
        lo = min(0.0, float(c["P"].min()))
        panels = ((c["H"], "Magma", lo, 1.0), (c["P"], "Magma", lo, 1.0),
                  (c["W"], "Viridis", 0.0, max(1.0, float(c["W"].max()))), (c["loss"], "Inferno", 0.0, max(float(c["loss"].max()), 1e-12)))
        for col, (z, scale, zmin, zmax) in enumerate(panels, start=1):
            fig.add_trace(go.Heatmap(z=z, colorscale=scale, zmin=zmin, zmax=zmax, showscale=col == 4,
                                     colorbar={"thickness": 10},
                                     hovertemplate="col %{x}, row %{y}: %{z:.4f}<extra></extra>"), row=1, col=col)
            fig.update_yaxes(autorange="reversed", scaleanchor=f"x{col if col > 1 else ''}", row=1, col=col)
        _layout(fig, 300)
        note = (f"foreground (H > 0, {c['fg_pixels']:.0%} of the pixels) holds <b>{c['share_mse']:.1%}</b> of the "
                f"loss under plain MSE and <b>{c['share_wahr']:.1%}</b> under WAHR (mean loss {c['loss_mse']:.4f} "
                f"→ {c['loss_wahr']:.4f}). H^γ = {c['hg_edge']:.3f} at the support's edge (|d| = 3σ+1 on an "
                f"axis) and {c['hg_corner']:.3f} at its corner, 0 beyond: ")
        if c["hg_corner"] > 0.8:
            note += ("on the foreground W ≈ |1 − P|, on the background W = |P|, so confidently-zero "
                     "background stops counting.")
        else:
            note += (f"with γ = {c['gamma']:g} the Gaussian's tails are weighted almost like background "
                     "(W ≈ |P|), so the fore/background split blurs.")
        return fig, note


# --------------------------------------------------------------------------- drawing people


def _display_image(image: Any) -> np.ndarray:
    """An image for display: ``(H, W, 3)`` uint8 as is, or ``(3, H, W)`` float in [0, 1]
    (tensor or array, the network input) converted."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image: expected an (H, W, 3) uint8 or (3, H, W) float array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[-1] == 3 and image.dtype == np.uint8:
        return image
    if image.ndim == 3 and image.shape[0] == 3 and np.issubdtype(image.dtype, np.floating):
        return tensor_to_image(image)
    raise ValueError(f"image: expected (H, W, 3) uint8 or (3, H, W) float in [0, 1], got shape "
                     f"{image.shape} dtype {image.dtype}")


def _add_people(fig: go.Figure, keypoints: np.ndarray, shown: np.ndarray, names: Sequence[str],
                hover: Sequence[Sequence[str]] | None = None, row: int | None = None, col: int | None = None,
                symbol: str = "circle") -> None:
    """Each person of ``keypoints (P, K, 2)`` as one bones trace and one joints trace in its
    own colour (at ``row``/``col`` of a subplot grid); ``shown (P, K)`` bool picks the
    joints drawn (a bone needs both ends)."""
    where = {"row": row, "col": col} if row is not None else {}
    for p in range(len(keypoints)):
        colour = PERSON_COLOURS[p % len(PERSON_COLOURS)]
        bones = [(a, b) for a, b in COCO17.bones if shown[p, a] and shown[p, b]]
        xs, ys = _bones_xy(keypoints[p], bones, (0, 1))
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": colour, "width": 2}, name=names[p],
                                 legendgroup=names[p], hoverinfo="skip"), **where)
        idx = np.flatnonzero(shown[p])
        text = [hover[p][k] if hover is not None else COCO17.joint_names[k] for k in idx]
        fig.add_trace(go.Scatter(x=keypoints[p, idx, 0], y=keypoints[p, idx, 1], mode="markers", text=text,
                                 marker={"color": colour, "size": 6, "symbol": symbol,
                                         "line": {"color": "black", "width": 1}},
                                 name=names[p], legendgroup=names[p], showlegend=False,
                                 hovertemplate="%{text}<br>(%{x:.1f}, %{y:.1f})<extra></extra>"), **where)


def _people_arrays(keypoints: Any, visibility: Any, name: str = "keypoints",
                   vis_name: str = "visibility") -> tuple[np.ndarray, np.ndarray]:
    """``(P, 17, 2)`` float32 keypoints and ``(P, 17)`` bool labelled (visibility > 0)."""
    kp = as_tensor(keypoints, name, shape=("P", COCO17.num_joints, 2), allow_empty=True).numpy()
    if visibility is None:
        return kp, np.ones(kp.shape[:2], bool)
    vis = as_tensor(visibility, vis_name, shape=(kp.shape[0], COCO17.num_joints),
                    allow_empty=True).numpy()
    return kp, vis > 0


def people_figure(image: Any, people: Mapping[str, Any], gt_keypoints: Any = None, gt_visible: Any = None, *,
                  title: str = "decoded people", min_score: float = 0.0, min_joint_score: float = 0.0,
                  height: int = 420) -> go.Figure:
    """Decoded people drawn over an image, one colour per person.

    Args:
        image: ``(H, W, 3)`` uint8 or ``(3, H, W)`` float in [0, 1] (tensor or array).
        people: one image's entry of :func:`~labcore.methods.sahr_wahr.decode_people`:
            ``keypoints (P, 17, 2)`` input pixels, ``keypoint_scores (P, 17)``, ``scores (P,)``.
        gt_keypoints: ``(G, 17, 2)`` ground truth in input pixels, drawn as hollow white
            circles; ``gt_visible (G, 17)`` (> 0 drawn; default all).
        min_score: people whose score is below it are left out.
        min_joint_score: joints whose score is <= it are left out (a missing joint has 0).

    Returns:
        a figure with the image, then per drawn person a bones trace and a joints trace
        (hover: joint name and score), then one ground-truth trace if given.
    """
    if not isinstance(people, Mapping):
        raise TypeError(f"people: expected one image's dict from decode_people (e.g. decode_people(...)[0]), "
                        f"got {type(people).__name__}")
    missing = {"keypoints", "keypoint_scores", "scores"} - set(people)
    if missing:
        raise ValueError(f"people: missing key(s) {sorted(missing)}; expected decode_people's per-image dict")
    min_score = check_number(min_score, "min_score")
    min_joint_score = check_number(min_joint_score, "min_joint_score")
    img = _display_image(image)
    kp, _ = _people_arrays(people["keypoints"], None, "people['keypoints']")
    n = len(kp)
    kscore = as_tensor(people["keypoint_scores"], "people['keypoint_scores']", shape=(n, COCO17.num_joints),
                       allow_empty=True).numpy()
    score = as_tensor(people["scores"], "people['scores']", shape=(n,), allow_empty=True).numpy()
    keep = np.flatnonzero(score >= min_score)
    fig = go.Figure()
    add_image_panel(fig, img)
    hover = [[f"{COCO17.joint_names[k]}: {kscore[p, k]:.2f}" for k in range(COCO17.num_joints)] for p in keep]
    names = [f"person {i} (score {score[p]:.2f})" for i, p in enumerate(keep)]
    _add_people(fig, kp[keep], kscore[keep] > min_joint_score, names, hover)
    if gt_keypoints is not None:
        gk, gv = _people_arrays(gt_keypoints, gt_visible, "gt_keypoints", "gt_visible")
        fig.add_trace(go.Scatter(x=gk[..., 0][gv], y=gk[..., 1][gv], mode="markers", name="ground truth",
                                 marker={"symbol": "circle-open", "size": 10, "color": "white", "line": {"width": 2}},
                                 hoverinfo="skip"))
    fig.update_yaxes(scaleanchor="x")
    return _layout(fig, height, title={"text": f"{title} — {len(keep)} people", "y": 0.98},
                   legend={"orientation": "h", "y": -0.02})


# --------------------------------------------------------------------------- scales


def _crowd(seed: int) -> dict[str, np.ndarray]:
    """One crowd scene of notebook 03's kind (128×128, 2–5 people, scales ×4)."""
    from labcore.data.datasets import CrowdScenes

    a = CrowdScenes(1, seed=seed, size=(128, 128), people=(2, 5), scale_range=4.0, progress=False).arrays
    n = int(a["num_people"][0])
    return {"image": a["image"][0], "keypoints": a["keypoints"][0, :n], "visibility": a["visibility"][0, :n],
            "heights": a["height_px"][0, :n]}


def scale_figure(image: Any = None, keypoints: Any = None, visibility: Any = None, heights: Any = None, *,
                 seed: int = 0, sigma: float = sw.SIGMA, merge_radius: float = 1.0,
                 ) -> tuple[go.Figure, dict[str, np.ndarray]]:
    """Why one fixed σ hurts when people's scales vary: the image with each person's
    keypoints beside the stride-4 targets (max over joints) of
    :class:`~labcore.methods.sahr_wahr.BottomUpTargets` at a fixed σ. A small person's joints
    blur into one blob; a large person's stay apart.

    Args:
        image: ``(H, W, 3)`` uint8 or ``(3, H, W)`` float; ``None`` renders
            ``CrowdScenes(1, seed=seed, size=(128, 128), people=(2, 5), scale_range=4.0)``.
        keypoints: ``(P, 17, 2)`` input pixels (required with ``image``).
        visibility: ``(P, 17)`` (> 0: labelled; default all).
        heights: ``(P,)`` on-screen heights in pixels (default: the labelled joints' vertical
            extent).
        seed: the scene, when ``image`` is None.
        sigma: the targets' σ in heatmap pixels (official 2).
        merge_radius: in units of σ: two joints of a person whose target centres lie within
            ``merge_radius·σ`` heatmap px form one blob — between them the max-merged map
            dips no lower than ``exp(-merge_radius²/8)`` (0.88 at the default 1σ: no
            visible gap).

    Returns:
        ``(figure, stats)``; ``stats`` holds per person ``height_px (P,)``, ``labelled (P,)``
        (labelled joints whose target centre lies on the map), ``overlap_fraction (P,)`` —
        the fraction of those whose target centre has another joint of the same person
        within ``merge_radius·σ`` (Euclidean, heatmap px; NaN for a person with no joint on
        the map) — and ``box_fraction (P,)``, the same with "inside its 3σ box" (the
        target's extent; at 128×128 input and σ = 2 this is 1 for every person, so it does
        not tell sizes apart), plus ``stride`` and ``sigma``.
    """
    sigma = check_number(sigma, "sigma", low=0.0, low_inclusive=False)
    merge_radius = check_number(merge_radius, "merge_radius", low=0.0)
    if image is None:
        if keypoints is not None:
            raise ValueError("keypoints: given without an image; pass both, or neither to render a scene")
        scene = _crowd(check_int(seed, "seed"))
        img, kp, vis = scene["image"], scene["keypoints"], scene["visibility"] > 0
        heights = scene["heights"] if heights is None else heights
    else:
        if keypoints is None:
            raise ValueError("keypoints: required with image ((P, 17, 2) input pixels)")
        img = _display_image(image)
        kp, vis = _people_arrays(keypoints, visibility)
    n = len(kp)
    if heights is None:
        ys = np.where(vis, kp[..., 1], np.nan)
        with np.errstate(all="ignore"):
            heights = np.nan_to_num(np.nanmax(ys, 1) - np.nanmin(ys, 1)) if n else np.zeros(0)
    heights = as_tensor(heights, "heights", shape=(n,), allow_empty=True).numpy()
    H_img, W_img = img.shape[:2]
    targets = sw.BottomUpTargets((W_img, H_img), sigma=sigma)
    w, h = targets.heatmap_sizes[0]
    sx, sy = targets.scale(0)
    if n:
        hm = targets.encode(kp[None], vis[None].astype(np.float32))["heatmaps"][0][0].amax(0).numpy()
    else:
        hm = np.zeros((h, w), np.float32)
    # Target centres as the generator places them (truncated heatmap coordinates).
    centres = np.trunc(kp * np.array([sx, sy], np.float32))
    on_map = vis & (centres[..., 0] >= 0) & (centres[..., 1] >= 0) & (centres[..., 0] < w) & (centres[..., 1] < h)
    labelled = on_map.sum(1)
    overlap, box = np.full(n, np.nan), np.full(n, np.nan)
    for p in range(n):
        c = centres[p, on_map[p]]
        if len(c) == 0:
            continue
        diff = c[:, None] - c[None]
        dist = np.linalg.norm(diff, axis=-1)
        cheb = np.abs(diff).max(-1)
        np.fill_diagonal(dist, np.inf)
        np.fill_diagonal(cheb, np.inf)
        overlap[p] = float((dist <= merge_radius * sigma).any(1).mean())
        box[p] = float((cheb <= 3 * sigma).any(1).mean())
    stats = {"height_px": heights.astype(np.float32), "labelled": labelled, "overlap_fraction": overlap,
             "box_fraction": box, "stride": W_img / w, "sigma": sigma}

    fig = make_subplots(1, 2, horizontal_spacing=0.04, subplot_titles=(
        f"image ({W_img}×{H_img}), one colour per person",
        f"stride-{W_img / w:g} targets ({w}×{h}), σ = {sigma:g}, max over joints"))
    add_image_panel(fig, img, row=1, col=1)
    names = [f"person {p}: {heights[p]:.0f} px, {overlap[p]:.0%} merged" for p in range(n)]
    _add_people(fig, kp, vis, names, row=1, col=1)
    fig.add_trace(go.Heatmap(z=hm, colorscale="Magma", showscale=False,
                             hovertemplate="col %{x}, row %{y}: %{z:.3f}<extra></extra>"), row=1, col=2)
    shown = on_map.reshape(-1)
    colours = np.repeat(np.arange(n), kp.shape[1]) % len(PERSON_COLOURS)
    fig.add_trace(go.Scatter(x=centres[..., 0].reshape(-1)[shown], y=centres[..., 1].reshape(-1)[shown],
                             mode="markers", showlegend=False, hoverinfo="skip",
                             marker={"size": 4, "color": [PERSON_COLOURS[i] for i in colours[shown]]}),
                  row=1, col=2)
    fig.update_xaxes(range=[-0.5, w - 0.5], row=1, col=2)
    fig.update_yaxes(range=[h - 0.5, -0.5], scaleanchor="x2", row=1, col=2)
    fig.update_yaxes(scaleanchor="x", row=1, col=1)
    _layout(fig, 400, legend={"orientation": "h", "y": -0.05})
    return fig, stats
