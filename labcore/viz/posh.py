"""HEMlets PoSh, seen: a body mesh drawn over the image it was regressed from, and the
error-feedback steps one by one (notebook 06).

* :func:`mesh_overlay` — a mesh in camera coordinates rendered with labcore's rasteriser,
  coloured by body part, blended over the crop (upscaled so the 64 px crops are legible);
* :class:`PoshExplorer` — pick a test person and an error-feedback step: the image with
  the regressed mesh over it, and the mesh in 3-D against the true skeleton;
* :func:`representation_figure` — one rotation turned through 360°, written as axis-angle
  and as 6-D: where each representation jumps.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import smplx
import torch
from plotly.subplots import make_subplots

from labcore.body import render as R
from labcore.body import vertex_parts
from labcore.checks import as_tensor, check_int, check_number
from labcore.geometry import axis_angle_to_matrix
from labcore.methods import posh as ps
from labcore.skeletons import J18
from labcore.viz.figures import PART_COLOURS, png_data_uri
from labcore.viz.widgets import Explorer

__all__ = ["mesh_overlay", "PoshExplorer", "representation_figure"]


def _as_uint8_image(image: Any) -> np.ndarray:
    """``(3, H, W)`` or ``(H, W, 3)`` floats in [0, 1] or uint8 → ``(H, W, 3)`` uint8."""
    a = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[-1] != 3:
        a = a.transpose(1, 2, 0)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"image: expected (3, H, W) or (H, W, 3), got {a.shape}")
    if a.dtype != np.uint8:
        a = np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return a


def mesh_overlay(image: Any, vertices: Any, faces: Any, K: Any, parts: Any = None, *, scale: int = 4,
                 alpha: float = 0.65) -> np.ndarray:
    """The image with a mesh rendered over it.

    Args:
        image: ``(3, H, W)`` or ``(H, W, 3)`` (floats in [0, 1] or uint8).
        vertices: ``(V, 3)`` camera frame, metres (OpenCV: z forward).
        faces: ``(F, 3)``.
        K: ``(3, 3)`` the image's intrinsics (pixels).
        parts: ``(V,)`` part index per vertex for the colours (default grey).
        scale: the output is ``scale×`` the image (nearest-neighbour upscaling; the mesh is
            rendered at that size, ``K`` scaled with pixel centres kept at integers).
        alpha: opacity of the mesh.

    Returns:
        ``(scale·H, scale·W, 3)`` uint8.
    """
    img = _as_uint8_image(image)
    s = check_int(scale, "scale", low=1)
    alpha = check_number(alpha, "alpha", low=0.0, high=1.0)
    h, w = img.shape[:2]
    shaded, mask = _mesh_layer(vertices, faces, K, parts, (w, h), s)
    return _blend(_upscale(img, s), shaded, mask, alpha)


def _mesh_layer(vertices: Any, faces: Any, K: Any, parts: Any, size: tuple[int, int],
                scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The mesh alone, rendered ``scale×`` over a ``size = (W, H)`` image: shaded colours
    ``(sH, sW, 3)`` in [0, 1] and the coverage ``mask (sH, sW)`` bool."""
    v = as_tensor(vertices, "vertices", shape=("V", 3))
    f = torch.as_tensor(np.asarray(faces), dtype=torch.int64)
    k = as_tensor(K, "K", shape=(3, 3))
    w, h, s = size[0], size[1], scale
    S = torch.tensor([[s, 0, (s - 1) / 2], [0, s, (s - 1) / 2], [0, 0, 1.0]])
    frag = R.rasterize(v[None], f, S @ k, (w * s, h * s))
    if parts is None:
        colours = torch.full((v.shape[0], 3), 0.75)
    else:
        colours = torch.as_tensor(PART_COLOURS[np.asarray(parts) % len(PART_COLOURS)] / 255.0, dtype=torch.float32)
    albedo = R.interpolate(frag, f, colours)
    shaded = R.shade_lambert(frag, f, v[None], albedo, ambient=0.5, diffuse=0.5)[0]
    return shaded, frag.mask[0]


def _upscale(img: np.ndarray, s: int) -> torch.Tensor:
    """``(H, W, 3)`` uint8 → ``(sH, sW, 3)`` floats in [0, 1], nearest neighbour."""
    return torch.from_numpy(np.repeat(np.repeat(img, s, axis=0), s, axis=1)).float() / 255.0


def _blend(big: torch.Tensor, shaded: torch.Tensor, mask: torch.Tensor, alpha: float) -> np.ndarray:
    """The mesh layer over the (upscaled) image with opacity ``alpha`` → uint8."""
    a = alpha * mask.float()[..., None]
    out = shaded * a + big * (1 - a)
    return (out.clamp(0, 1).numpy() * 255.0 + 0.5).astype(np.uint8)


def _part_colorscale(n: int) -> list[list]:
    """A stepped colorscale that maps the integers ``0 … n−1`` (with ``cmin = −0.5``,
    ``cmax = n − 0.5``) onto :data:`PART_COLOURS` exactly."""
    scale = []
    for c in range(n):
        r, g, b = (int(x) for x in PART_COLOURS[c % len(PART_COLOURS)])
        scale += [[c / n, f"rgb({r},{g},{b})"], [(c + 1) / n, f"rgb({r},{g},{b})"]]
    return scale


class PoshExplorer(Explorer):
    """A trained regressor on test people: the mesh of error-feedback step ``step``
    (0 = the mean body the feedback starts from) over the image, and in 3-D beside the
    true J18 skeleton.

    Args:
        regressor: a :class:`~labcore.methods.posh.PoshRegressor`.
        body: the body model it was trained with.
        joints: ``(N, 18, 3)`` its input joints, metres, root-relative; ``features (N, C)``
            its pooled features (``None`` when it takes none).
        images: ``(N, 3, H, W)`` the crops; ``K (N, 3, 3)`` their cameras.
        roots: ``(N, 3)`` where the pelvis is in the camera frame, metres (the mesh is put
            there: the regressor gives a root-relative body).
        gt_joints: ``(N, 18, 3)`` true joints, metres, root-relative (for the 3-D view and
            the error in the note).

    Parameters: ``index`` (the person), ``step`` (0 … ``regressor.iterations``),
    ``alpha`` (the mesh's opacity).

    Speed: after the first draw, :meth:`update` changes the shown figure in place and
    sends only what moved (the overlay as one PNG, the mesh's vertex positions as float32,
    the skeleton, a title) — not the 13 776 faces, the part colours or the layout (so a 3-D
    view the user turned stays turned). The mesh is coloured by part through a numeric
    per-face ``intensity`` and a stepped colorscale rather than 6 890 colour strings. The
    body and mesh rendering of the (person, step) last shown are kept, so moving ``alpha``
    only re-blends the image (a regressor trained further meanwhile shows once another
    person or step is picked).
    """

    def __init__(self, regressor: ps.PoshRegressor, body: smplx.SMPL, joints: Any, features: Any, images: Any,
                 K: Any, roots: Any, gt_joints: Any, **params: Any) -> None:
        dims: dict[str, int] = {}
        self.regressor = regressor.eval()
        self.body = body
        self.joints = as_tensor(joints, "joints", shape=("N", J18.num_joints, 3), dims=dims)
        self.features = None if features is None else as_tensor(features, "features", shape=("N", None), dims=dims)
        self.images = as_tensor(images, "images", shape=("N", 3, None, None), dims=dims)
        self.K = as_tensor(K, "K", shape=("N", 3, 3), dims=dims)
        self.roots = as_tensor(roots, "roots", shape=("N", 3), dims=dims)
        self.gt_joints = as_tensor(gt_joints, "gt_joints", shape=("N", J18.num_joints, 3), dims=dims)
        self.faces = body.faces_tensor.cpu().numpy()
        self.parts = vertex_parts(body).cpu().numpy()
        # the 3-D mesh's constant arrays, made once: int32 faces and each face's part (the
        # part two of its vertices share, else its first vertex's) — numeric arrays travel
        # to the browser as binary buffers, int64 and strings as slow nested lists
        self._faces32 = self.faces.astype(np.int32)
        p0, p1, p2 = (self.parts[self.faces[:, c]] for c in range(3))
        self._face_parts = np.where(p1 == p2, p1, p0).astype(np.float32)
        self._n_parts = int(self.parts.max()) + 1
        self._frame_key: tuple[int, int] | None = None
        self._frame: dict[str, Any] = {}
        self._shown: tuple[int, int] | None = None  # the (person, step) on screen
        super().__init__(**params)

    def controls(self) -> dict[str, W.ValueWidget]:
        n = self.joints.shape[0]
        return {
            "index": W.IntSlider(value=0, min=0, max=n - 1, description="person", continuous_update=False),
            "step": W.IntSlider(value=self.regressor.iterations, min=0, max=self.regressor.iterations,
                                description="IEF step", continuous_update=False),
            "alpha": W.FloatSlider(value=0.65, min=0.0, max=1.0, step=0.05, description="mesh opacity",
                                   continuous_update=False),
        }

    def body_at(self, index: int, step: int) -> dict[str, torch.Tensor]:
        """The body (root-relative, metres) after ``step`` error-feedback steps for person ``index``."""
        i = check_int(index, "index", low=0, high=self.joints.shape[0] - 1)
        k = check_int(step, "step", low=0, high=self.regressor.iterations)
        with torch.no_grad():
            feats = None if self.features is None else self.features[i : i + 1]
            out = self.regressor(self.joints[i : i + 1], feats)
            params = self.regressor.mean[None] if k == 0 else out["steps"][k - 1]
            rotmats, betas = self.regressor.split(params)
            return ps.smpl_output(self.body, rotmats, betas)

    def _frame_at(self, i: int, k: int) -> dict[str, Any]:
        """The body of person ``i`` at step ``k``, its mesh rendered over the crop (4×) and
        the upscaled crop; the last one asked for is kept (``alpha`` only re-blends)."""
        if self._frame_key != (i, k):
            b = {name: t.cpu() for name, t in self.body_at(i, k).items()}  # a regressor on a GPU too
            image = _as_uint8_image(self.images[i])
            h, w = image.shape[:2]
            shaded, mask = _mesh_layer(b["vertices"][0] + self.roots[i], self.faces, self.K[i], self.parts,
                                       (w, h), 4)
            self._frame = {"body": b, "shaded": shaded, "mask": mask, "image": _upscale(image, 4)}
            self._frame_key = (i, k)
        return self._frame

    def build(self, **params: Any) -> tuple[go.Figure, str]:
        i = check_int(params["index"], "index", low=0, high=self.joints.shape[0] - 1)
        k = check_int(params["step"], "step", low=0, high=self.regressor.iterations)
        alpha = check_number(params["alpha"], "alpha", low=0.0, high=1.0)
        frame = self._frame_at(i, k)
        b = frame["body"]
        fig = make_subplots(rows=1, cols=2, specs=[[{"type": "xy"}, {"type": "scene"}]],
                            subplot_titles=(f"mesh after {k} step(s) over the image", "mesh and the true skeleton (3-D)"))
        overlay = _blend(frame["image"], frame["shaded"], frame["mask"], alpha)
        fig.add_trace(go.Image(source=png_data_uri(overlay), hoverinfo="x+y", name="overlay"), row=1, col=1)
        h, w = overlay.shape[:2]
        fig.update_xaxes(range=[-0.5, w - 0.5], row=1, col=1)
        fig.update_yaxes(range=[h - 0.5, -0.5], scaleanchor="x", row=1, col=1)
        v = b["vertices"][0].numpy()
        f = self._faces32
        # camera frame (y down, z forward) drawn with y up and z towards the viewer
        fig.add_trace(go.Mesh3d(x=v[:, 0].copy(), y=-v[:, 1], z=-v[:, 2], i=f[:, 0].copy(), j=f[:, 1].copy(),
                                k=f[:, 2].copy(), intensity=self._face_parts, intensitymode="cell",
                                colorscale=_part_colorscale(self._n_parts), cmin=-0.5, cmax=self._n_parts - 0.5,
                                showscale=False, opacity=0.45, hoverinfo="skip", name="mesh"), row=1, col=2)
        gt = self.gt_joints[i].numpy()
        xs, ys, zs = [], [], []
        for a, c in J18.bones:
            xs += [gt[a, 0], gt[c, 0], None]
            ys += [-gt[a, 1], -gt[c, 1], None]
            zs += [-gt[a, 2], -gt[c, 2], None]
        fig.add_trace(go.Scatter3d(x=xs, y=ys, z=zs, mode="lines", line={"color": "black", "width": 6},
                                   name="true skeleton", hoverinfo="skip"), row=1, col=2)
        fig.update_layout(height=460, margin={"l": 10, "r": 10, "t": 40, "b": 10}, showlegend=False,
                          scene={"aspectmode": "data", "camera": {"up": {"x": 0, "y": 1, "z": 0},
                                                                  "eye": {"x": 0.3, "y": 0.2, "z": 2.2}}})
        err = 1000.0 * float((b["joints"][0, :ps.EVAL_JOINTS] - self.gt_joints[i, :ps.EVAL_JOINTS]).norm(dim=-1).mean())
        note = (f"person {i}, step {k} of {self.regressor.iterations}: MPJPE of the body's joints {err:.1f} mm "
                f"(step 0 is the mean body the feedback starts from)")
        return fig, note

    def update(self, **params: Any) -> go.Figure:
        """Recompute with ``params`` (others unchanged) and return the new figure, as
        :meth:`Explorer.update`; after the first draw the shown figure is changed in place
        (see the class notes)."""
        if self._shown is None or len(self.figure.data) != 3:  # the first draw: the whole figure
            fig = super().update(**params)
            self._shown = self._frame_key
            return fig
        self._set_params(params)
        fig, note = self.build(**self.params)
        key = self._frame_key
        image, mesh, skeleton = fig.data
        shown_image, shown_mesh, shown_skeleton = self.figure.data
        with self.figure.batch_update():
            shown_image.source = image.source
            if key != self._shown:  # another body: its vertices, and the step in the title
                shown_mesh.x, shown_mesh.y, shown_mesh.z = mesh.x, mesh.y, mesh.z
                self.figure.layout.annotations[0].text = fig.layout.annotations[0].text
            if key[0] != self._shown[0]:  # another person: the true skeleton
                shown_skeleton.x, shown_skeleton.y, shown_skeleton.z = skeleton.x, skeleton.y, skeleton.z
        self._shown = key
        self.info.value = note
        return fig


def representation_figure(axis: Any = (1.0, 0.0, 0.0), start: Any = None, steps: int = 181) -> go.Figure:
    """A rotation ``start · R(axis, θ)`` for θ from 0 to 360°, in both representations the
    regressor can output: the 3 axis-angle numbers jump where the angle passes 180° (the
    same rotation is then written with the opposite axis), the 6 numbers of the 6-D form
    (the matrix's first two columns) move smoothly all the way round.

    Args:
        axis: ``(3,)`` the turning axis; start: ``(3, 3)`` the rotation at θ = 0 (identity).
        steps: samples of θ.
    """
    a = torch.nn.functional.normalize(as_tensor(axis, "axis", shape=(3,)), dim=0)
    R0 = torch.eye(3) if start is None else as_tensor(start, "start", shape=(3, 3))
    n = check_int(steps, "steps", low=3)
    theta = torch.linspace(0.0, 360.0, n)
    Rs = R0 @ axis_angle_to_matrix(a[None] * torch.deg2rad(theta)[:, None])
    aa = ps.encode_rotations(Rs[:, None], "axis_angle").numpy()
    six = ps.encode_rotations(Rs[:, None], "6d").numpy()
    fig = make_subplots(rows=1, cols=2, subplot_titles=("axis-angle (3 numbers)", "6-D (6 numbers)"))
    for c in range(3):
        fig.add_trace(go.Scatter(x=theta.numpy(), y=aa[:, c], mode="lines", name=f"aa[{c}]"), row=1, col=1)
    for c in range(6):
        fig.add_trace(go.Scatter(x=theta.numpy(), y=six[:, c], mode="lines", name=f"6d[{c}]"), row=1, col=2)
    fig.update_xaxes(title_text="θ (degrees)")
    fig.update_layout(height=340, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig
