"""ipywidgets explorers: move a knob, see the method's moving part.

Every explorer has ``.ui`` (the ipywidgets container to display) and
``.update(**params) -> go.Figure``, which recomputes the figure with plain package code
(the same call the sliders make, and the one tests and CI notebooks make). Parameters not
given keep their current value; unknown names raise ``ValueError``.
"""

from __future__ import annotations

import functools
from typing import Any

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from labcore import geometry as geo
from labcore.body import BETA_NAMES, load_body_model, pose_body, vertex_parts
from labcore.data.poses import POSE_FAMILIES, PoseParams, pose_params_to_smpl, sample_pose_params
from labcore.heatmaps import argmax_2d, msra_heatmaps, refine_quarter
from labcore.skeletons import COCO17, J18
from labcore.viz.figures import add_image_panel, mesh_figure, parts_to_rgb, png_data_uri

__all__ = ["Explorer", "BodyExplorer", "SceneExplorer", "FramesExplorer"]


class Explorer:
    """Base: subclasses define :meth:`controls` (name → widget) and :meth:`build`."""

    def __init__(self, **params: Any) -> None:
        self._controls = self.controls()
        self.params = {name: c.value for name, c in self._controls.items()}
        self._check(params)
        self.params.update(params)
        self.figure = go.FigureWidget()
        self.info = W.HTML()
        self._syncing = False
        for name, control in self._controls.items():
            control.observe(functools.partial(self._on_change, name), names="value")
        box = W.GridBox(list(self._controls.values()),
                        layout=W.Layout(grid_template_columns="repeat(3, 33%)"))
        self.ui = W.VBox([box, self.figure, self.info])
        self.update()

    # subclasses -------------------------------------------------------------------------
    def controls(self) -> dict[str, W.ValueWidget]:
        raise NotImplementedError

    def build(self, **params: Any) -> tuple[go.Figure, str]:
        """Return the figure and an HTML note for ``params``."""
        raise NotImplementedError

    # machinery --------------------------------------------------------------------------
    def _check(self, params: dict[str, Any]) -> None:
        unknown = set(params) - set(self._controls)
        if unknown:
            raise ValueError(f"{type(self).__name__}.update: unknown parameter(s) {sorted(unknown)}; "
                             f"known: {sorted(self._controls)}")

    def _set_params(self, params: dict[str, Any]) -> None:
        """Check and store ``params`` and move the widgets to them (without re-triggering)."""
        self._check(params)
        self.params.update(params)
        self._syncing = True
        try:  # keep the sliders in step with values set from code
            for name, value in params.items():
                self._controls[name].value = value
        finally:
            self._syncing = False

    def update(self, **params: Any) -> go.Figure:
        """Recompute with ``params`` (others unchanged); return the new figure."""
        self._set_params(params)
        fig, note = self.build(**self.params)
        with self.figure.batch_update():
            self.figure.data = []
            self.figure.add_traces(fig.data)
            self.figure.layout = fig.layout
        self.info.value = note
        return fig

    def _on_change(self, name: str, change: dict) -> None:
        if not self._syncing:
            self.update(**{name: change["new"]})


def _slider(value: float, lo: float, hi: float, step: float, label: str) -> W.FloatSlider:
    return W.FloatSlider(value=value, min=lo, max=hi, step=step, description=label,
                         continuous_update=False, style={"description_width": "110px"})


# --------------------------------------------------------------------------- body


_BODY_ANGLES = {  # name: (default, min, max) in degrees; T-pose arms by default
    "L_shoulder_elev": (90.0, -60.0, 180.0), "R_shoulder_elev": (90.0, -60.0, 180.0),
    "L_elbow_flex": (0.0, 0.0, 145.0), "R_elbow_flex": (0.0, 0.0, 145.0),
    "L_hip_flex": (0.0, -25.0, 125.0), "R_hip_flex": (0.0, -25.0, 125.0),
    "L_knee_flex": (0.0, 0.0, 150.0), "R_knee_flex": (0.0, 0.0, 150.0),
    "spine_flex": (0.0, -15.0, 35.0), "head_twist": (0.0, -30.0, 30.0),
}  # fmt: skip


class BodyExplorer(Explorer):
    """The body model: its 10 shape coefficients and a few joint angles (degrees) on a 3-D
    mesh coloured by part, with a joint set drawn over it.

    Parameters: ``beta_0`` … ``beta_9`` (see :data:`labcore.body.BETA_NAMES`), the angles of
    ``_BODY_ANGLES`` (e.g. ``L_elbow_flex``), ``skeleton`` (``'none'``, ``'coco17'``,
    ``'j18'``, ``'smpl24'``).
    """

    def __init__(self, body: str = "auto", **params: Any) -> None:
        self.model = load_body_model(body)
        self.faces = self.model.faces_tensor.numpy()
        self.parts = vertex_parts(self.model).numpy()
        super().__init__(**params)

    def controls(self) -> dict[str, W.ValueWidget]:
        c: dict[str, W.ValueWidget] = {f"beta_{i}": _slider(0.0, -3, 3, 0.1, f"β{i} {BETA_NAMES[i].split(' (')[0]}")
                                       for i in range(len(BETA_NAMES))}
        for name, (value, lo, hi) in _BODY_ANGLES.items():
            c[name] = _slider(value, lo, hi, 1.0, name)
        c["skeleton"] = W.Dropdown(options=["none", "coco17", "j18", "smpl24"], value="smpl24",
                                   description="skeleton")
        return c

    def pose(self, **params: Any):
        """The posed body (metres, SMPL frame) for ``params``."""
        names = list(sample_pose_params(1, 0).angles)
        angles = {k: np.zeros(1) for k in names}
        for name in _BODY_ANGLES:
            angles[name] = np.array([float(params[name])])
        body_pose = pose_params_to_smpl(PoseParams(angles, np.array(["explorer"])).clamp())
        betas = torch.tensor([[params[f"beta_{i}"] for i in range(len(BETA_NAMES))]], dtype=torch.float32)
        return pose_body(self.model, body_pose=body_pose, betas=betas)

    def build(self, **params: Any) -> tuple[go.Figure, str]:
        state = self.pose(**params)
        sk = params["skeleton"]
        kp = None if sk == "none" else state.joints_of(sk)[0].numpy()
        v = state.vertices[0].numpy()
        fig = mesh_figure(v, self.faces, parts=self.parts, keypoints=kp, skeleton=None if sk == "none" else sk)
        height = v[:, 1].max() - v[:, 1].min()
        note = f"height {height * 100:.1f} cm · {len(v)} vertices · joints in metres, SMPL frame (y up)"
        return fig, note


# --------------------------------------------------------------------------- scenes


@functools.lru_cache(maxsize=64)
def _crop(seed: int, family: str, background: str, size: int) -> dict[str, np.ndarray]:
    from labcore.data.scenes import person_crops

    fams = None if family == "any" else (family,)
    return person_crops(1, seed=seed, size=(size, size), families=fams, background=background)


class SceneExplorer(Explorer):
    """A rendered person with its labels: COCO17 keypoints (green seen, red occluded), the
    part mask, and the J18 skeleton with each bone coloured by depth order (red: the child
    joint is nearer the camera than its parent by > 10 cm, blue: farther, grey: level).

    Parameters: ``seed``, ``family`` (``'any'`` or a pose family), ``background``, ``size``.
    """

    def controls(self) -> dict[str, W.ValueWidget]:
        return {
            "seed": W.IntText(value=0, description="seed"),
            "family": W.Dropdown(options=["any", *POSE_FAMILIES], value="any", description="family"),
            "background": W.Dropdown(options=["procedural", "photo", "plain"], value="procedural",
                                     description="background"),
            "size": W.Dropdown(options=[64, 96, 128, 192], value=128, description="size"),
        }

    def build(self, **params: Any) -> tuple[go.Figure, str]:
        a = _crop(int(params["seed"]), params["family"], params["background"], int(params["size"]))
        image = a["image"][0]
        fig = make_subplots(1, 3, subplot_titles=("COCO17 keypoints", "body parts", "J18 bone depth order"),
                            horizontal_spacing=0.02)
        add_image_panel(fig, image, keypoints=a["keypoints_coco17"][0], visibility=a["visibility_coco17"][0],
                        skeleton=COCO17, row=1, col=1)
        add_image_panel(fig, parts_to_rgb(a["parts"][0]), row=1, col=2)
        order_colour = {-1: "#ff3030", 0: "#b0b0b0", 1: "#3080ff"}
        add_image_panel(fig, image, keypoints=a["keypoints_j18"][0], visibility=a["visibility_j18"][0],
                        skeleton=J18, bone_colours=[order_colour[int(o)] for o in a["bone_order_j18"][0]],
                        row=1, col=3)
        fig.update_layout(height=380, margin={"l": 5, "r": 5, "t": 30, "b": 5})
        for c in (1, 2, 3):
            fig.update_yaxes(scaleanchor=f"x{c if c > 1 else ''}", row=1, col=c)
        vis = a["visibility_coco17"][0]
        z = a["joints3d_j18"][0, 0, 2]
        note = (f"family <b>{a['family'][0]}</b> · {int((vis == 2).sum())} keypoints seen, "
                f"{int((vis == 1).sum())} occluded, {int((vis == 0).sum())} outside · pelvis at "
                f"z = {z / 1000:.2f} m")
        return fig, note


# --------------------------------------------------------------------------- coordinate frames


@functools.lru_cache(maxsize=32)
def _person_in_image(seed: int, padding: float) -> dict[str, np.ndarray]:
    from labcore.data.scenes import person_in_image

    return person_in_image(seed, image_size=(320, 240), crop_size=(64, 64), padding=padding)


class FramesExplorer(Explorer):
    """One keypoint through the top-down chain of coordinate frames:

    image (x, y) → crop: ``A @ (x, y, 1)`` → heatmap: ``x_crop / stride`` → target centre
    ``int(x/stride + 0.5)`` → decoded (argmax + quarter-pixel) → back to the crop
    (× stride) → back to the image (``A⁻¹``).

    Parameters: ``seed``, ``joint`` (a COCO17 name), ``stride`` (1, 2, 4, 8), ``sigma``
    (heatmap pixels), ``padding`` (crop box around the keypoints).
    """

    def controls(self) -> dict[str, W.ValueWidget]:
        return {
            "seed": W.IntText(value=0, description="seed"),
            "joint": W.Dropdown(options=list(COCO17.joint_names), value="left_wrist", description="joint"),
            "stride": W.Dropdown(options=[1, 2, 4, 8], value=4, description="stride"),
            "sigma": _slider(2.0, 0.5, 4.0, 0.5, "sigma (hm px)"),
            "padding": _slider(1.25, 1.0, 2.0, 0.05, "padding"),
        }

    def chain(self, **params: Any) -> dict[str, np.ndarray]:
        """The numbers of the chain for one keypoint (what the figure shows)."""
        a = _person_in_image(int(params["seed"]), round(float(params["padding"]), 4))
        k = COCO17.index(params["joint"])
        stride = int(params["stride"])
        size = (64, 64)
        hm_size = (size[0] // stride, size[1] // stride)
        kp_crop = torch.from_numpy(a["keypoints_crop"])[None]
        heatmaps, weights = msra_heatmaps(kp_crop, None, size, hm_size, float(params["sigma"]))
        coords, _ = argmax_2d(heatmaps)
        refined = refine_quarter(coords, heatmaps) if min(hm_size) > 2 else coords
        decoded_crop = refined[0, k] * stride
        A = torch.from_numpy(a["affine"]).double()
        decoded_image = geo.apply_affine(decoded_crop[None].double(), geo.invert_affine(A))[0]
        return {
            "image": a["image"], "crop": a["crop"], "heatmap": heatmaps[0, k].numpy(), "affine": a["affine"],
            "kp_image": a["keypoints"][k], "kp_crop": a["keypoints_crop"][k],
            "kp_heatmap": a["keypoints_crop"][k] / stride,
            "centre": np.floor(a["keypoints_crop"][k] / stride + 0.5),
            "decoded_heatmap": refined[0, k].numpy(), "decoded_crop": decoded_crop.numpy(),
            "decoded_image": decoded_image.numpy(), "weight": float(weights[0, k]),
            "visibility": int(a["visibility"][k]),
        }

    def build(self, **params: Any) -> tuple[go.Figure, str]:
        c = self.chain(**params)
        A = torch.from_numpy(c["affine"]).double()
        corners = torch.tensor([[-0.5, -0.5], [63.5, -0.5], [63.5, 63.5], [-0.5, 63.5], [-0.5, -0.5]],
                               dtype=torch.float64)
        box = geo.apply_affine(corners, geo.invert_affine(A)).numpy()
        fig = make_subplots(1, 3, subplot_titles=("image (320×240)", "crop (64×64)",
                                                  f"heatmap ({64 // int(params['stride'])}²)"),
                            horizontal_spacing=0.04)
        fig.add_trace(go.Image(source=png_data_uri(c["image"])), row=1, col=1)
        fig.add_trace(go.Scatter(x=box[:, 0], y=box[:, 1], mode="lines", line={"color": "yellow"},
                                 name="crop box"), row=1, col=1)
        fig.add_trace(go.Image(source=png_data_uri(c["crop"])), row=1, col=2)
        fig.add_trace(go.Heatmap(z=c["heatmap"], colorscale="Magma", showscale=False), row=1, col=3)
        for col, key, dec in ((1, "kp_image", "decoded_image"), (2, "kp_crop", "decoded_crop"),
                              (3, "kp_heatmap", "decoded_heatmap")):
            fig.add_trace(go.Scatter(x=[c[key][0]], y=[c[key][1]], mode="markers", name="ground truth",
                                     marker={"symbol": "circle-open", "size": 12, "color": "#40ff60",
                                             "line": {"width": 2}}, showlegend=col == 1), row=1, col=col)
            fig.add_trace(go.Scatter(x=[c[dec][0]], y=[c[dec][1]], mode="markers", name="decoded",
                                     marker={"symbol": "x", "size": 9, "color": "#ff4040"},
                                     showlegend=col == 1), row=1, col=col)
        fig.update_yaxes(autorange="reversed", scaleanchor="x3", row=1, col=3)
        for col in (1, 2):
            fig.update_yaxes(scaleanchor=f"x{col if col > 1 else ''}", row=1, col=col)
        fig.update_layout(height=360, margin={"l": 5, "r": 5, "t": 30, "b": 5},
                          legend={"orientation": "h", "y": -0.05})
        err = float(np.linalg.norm(c["decoded_image"] - c["kp_image"]))
        fmt = lambda p: f"({p[0]:.2f}, {p[1]:.2f})"  # noqa: E731
        note = (f"image {fmt(c['kp_image'])} → crop {fmt(c['kp_crop'])} → heatmap {fmt(c['kp_heatmap'])}"
                f" → target centre {fmt(c['centre'])} → decoded {fmt(c['decoded_heatmap'])} → crop "
                f"{fmt(c['decoded_crop'])} → image {fmt(c['decoded_image'])}: error <b>{err:.2f} px</b> "
                f"in the image (weight {c['weight']:.0f}, visibility {c['visibility']})")
        return fig, note
