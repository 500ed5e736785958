"""Plotly figures of the synthetic world: meshes, images with keypoints, joint sets,
cameras. Every function returns a ``plotly.graph_objects.Figure`` built from plain arrays,
so notebooks show them and tests inspect them.

Conventions: images are ``(H, W, 3)`` uint8 with pixel centres at integer coordinates (so a
keypoint at ``(x, y)`` is drawn on the pixel ``(row=y, col=x)``); 3-D body figures are in
SMPL's frame (y up) unless stated; camera figures use OpenCV's (x right, y down, z forward).
"""

from __future__ import annotations

import base64

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from labcore.skeletons import Skeleton, get_skeleton

__all__ = [
    "PART_COLOURS",
    "VISIBILITY_COLOURS",
    "parts_to_rgb",
    "mesh_figure",
    "image_figure",
    "images_row",
    "add_image_panel",
    "png_data_uri",
    "skeletons_figure",
    "camera_figure",
    "flow_to_rgb",
]

#: One colour per body part (:data:`labcore.body.PART_NAMES`), left warm, right cool.
PART_COLOURS = np.array([
    (230, 200, 170), (120, 120, 140),
    (230, 120, 60), (60, 140, 230), (240, 170, 70), (80, 190, 230),
    (250, 220, 90), (120, 220, 240),
    (200, 70, 70), (70, 90, 200), (220, 110, 110), (110, 130, 220), (160, 50, 50), (50, 60, 160),
], dtype=np.uint8)  # fmt: skip

#: COCO visibility 0 (outside), 1 (occluded), 2 (seen).
VISIBILITY_COLOURS = {0: "rgba(0,0,0,0)", 1: "#ff4040", 2: "#40ff60"}
_SIDE_COLOURS = {"left": "#ff9933", "right": "#3399ff", "center": "#ffee55"}


def parts_to_rgb(parts: np.ndarray, background: tuple[int, int, int] = (20, 20, 20)) -> np.ndarray:
    """A part-index map ``(H, W)`` (-1 background) as an RGB image ``(H, W, 3)`` uint8."""
    parts = np.asarray(parts).astype(np.int64)
    out = np.empty((*parts.shape, 3), dtype=np.uint8)
    out[:] = background
    fg = parts >= 0
    out[fg] = PART_COLOURS[parts[fg] % len(PART_COLOURS)]
    return out


def _bones_xy(points: np.ndarray, bones, dims: tuple[int, int]) -> tuple[list, list]:
    xs, ys = [], []
    for a, b in bones:
        xs += [points[a, dims[0]], points[b, dims[0]], None]
        ys += [points[a, dims[1]], points[b, dims[1]], None]
    return xs, ys


def mesh_figure(
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    parts: np.ndarray | None = None,
    keypoints: np.ndarray | None = None,
    skeleton: str | Skeleton | None = None,
    title: str | None = None,
    height: int = 520,
) -> go.Figure:
    """A body mesh (SMPL frame, metres) as a plotly ``Mesh3d`` coloured by part, with an
    optional skeleton ``keypoints (K, 3)`` of ``skeleton`` drawn over it."""
    v = np.asarray(vertices, dtype=np.float32)
    f = np.asarray(faces)
    colours = None
    if parts is not None:
        rgb = PART_COLOURS[np.asarray(parts) % len(PART_COLOURS)]
        colours = [f"rgb({r},{g},{b})" for r, g, b in rgb]
    fig = go.Figure(go.Mesh3d(
        x=v[:, 0], y=v[:, 1], z=v[:, 2], i=f[:, 0], j=f[:, 1], k=f[:, 2],
        vertexcolor=colours, color=None if colours else "lightgrey", flatshading=False,
        lighting={"ambient": 0.55, "diffuse": 0.7, "specular": 0.1}, opacity=1.0 if keypoints is None else 0.55,
        name="body", hoverinfo="skip",
    ))  # fmt: skip
    if keypoints is not None:
        sk = get_skeleton(skeleton or "smpl24")
        k = np.asarray(keypoints, dtype=np.float32)
        xs, ys = _bones_xy(k, sk.bones, (0, 1))
        zs = _bones_xy(k, sk.bones, (2, 2))[0]
        fig.add_trace(go.Scatter3d(x=xs, y=ys, z=zs, mode="lines", line={"color": "black", "width": 5},
                                   name=f"{sk.name} bones", hoverinfo="skip"))
        fig.add_trace(go.Scatter3d(
            x=k[:, 0], y=k[:, 1], z=k[:, 2], mode="markers", text=list(sk.joint_names),
            marker={"size": 4, "color": [_SIDE_COLOURS[s] for s in sk.sides]}, name=f"{sk.name} joints",
            hovertemplate="%{text}<br>(%{x:.3f}, %{y:.3f}, %{z:.3f}) m<extra></extra>",
        ))  # fmt: skip
    fig.update_layout(
        title=title, height=height, margin={"l": 0, "r": 0, "t": 40 if title else 10, "b": 0},
        scene={"aspectmode": "data", "xaxis_title": "x (left)", "yaxis_title": "y (up)",
               "zaxis_title": "z (front)",
               "camera": {"up": {"x": 0, "y": 1, "z": 0}, "eye": {"x": 0.5, "y": 0.3, "z": 2.4}}},
        showlegend=False,
    )
    return fig


def png_data_uri(image: np.ndarray) -> str:
    """``(H, W, 3)`` uint8 RGB as a lossless PNG data URI, for ``go.Image(source=...)``: one
    short string for the browser instead of ``z``'s H·W·3 numbers, which a ``FigureWidget``
    sends as nested lists (about 0.1 s for a 256×256 image). With ``source``, ``x0``/``y0``
    (default 0) are the first pixel's centre and ``dx``/``dy`` (default 1) the pixel size,
    as with ``z``: pixel centres stay at integer coordinates."""
    import cv2

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image: expected an (H, W, 3) uint8 array, got {image.dtype} {image.shape}")
    ok, png = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:  # pragma: no cover - cv2 encodes any uint8 HWC image
        raise RuntimeError(f"image: could not encode an array of shape {image.shape} as PNG")
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii")


def add_image_panel(
    fig: go.Figure,
    image: np.ndarray,
    *,
    keypoints: np.ndarray | None = None,
    visibility: np.ndarray | None = None,
    skeleton: str | Skeleton | None = None,
    row: int | None = None,
    col: int | None = None,
    bone_colours: list[str] | None = None,
    png: bool = False,
) -> go.Figure:
    """Add an image and its keypoints ``(K, 2)`` (coloured by COCO ``visibility``) to
    ``fig`` (at ``row``/``col`` of a subplot grid). ``png``: send a uint8 RGB image as a PNG
    ``source`` (:func:`png_data_uri`; same pixels and coordinates, far less to send from a
    widget) instead of ``z``."""
    where = {"row": row, "col": col} if row is not None else {}
    image = np.asarray(image)
    trace = go.Image(source=png_data_uri(image), hoverinfo="x+y") if png else go.Image(z=image, hoverinfo="x+y")
    fig.add_trace(trace, **where)
    # Pin the axes to the image's pixel edges (centres are integers), so that keypoints
    # near a border do not make plotly pad the view.
    h, w = image.shape[:2]
    fig.update_xaxes(range=[-0.5, w - 0.5], **where)
    fig.update_yaxes(range=[h - 0.5, -0.5], **where)
    if keypoints is not None:
        kp = np.asarray(keypoints, dtype=np.float32)
        vis = np.full(len(kp), 2) if visibility is None else np.asarray(visibility).astype(int)
        sk = get_skeleton(skeleton) if skeleton is not None else None
        if sk is not None:
            for n, (a, b) in enumerate(sk.bones):
                if vis[a] > 0 and vis[b] > 0:
                    colour = bone_colours[n] if bone_colours else "#ffee55"
                    fig.add_trace(go.Scatter(x=[kp[a, 0], kp[b, 0]], y=[kp[a, 1], kp[b, 1]], mode="lines",
                                             line={"color": colour, "width": 2}, hoverinfo="skip",
                                             showlegend=False), **where)
        names = list(sk.joint_names) if sk is not None else [str(i) for i in range(len(kp))]
        shown = vis > 0
        fig.add_trace(go.Scatter(
            x=kp[shown, 0], y=kp[shown, 1], mode="markers", showlegend=False,
            marker={"size": 7, "color": [VISIBILITY_COLOURS[v] for v in vis[shown]],
                    "line": {"color": "black", "width": 1}},
            text=[f"{names[i]} (v={vis[i]})" for i in np.flatnonzero(shown)],
            hovertemplate="%{text}<br>x=%{x:.2f}, y=%{y:.2f}<extra></extra>",
        ), **where)  # fmt: skip
    return fig


def image_figure(
    image: np.ndarray,
    *,
    keypoints: np.ndarray | None = None,
    visibility: np.ndarray | None = None,
    skeleton: str | Skeleton | None = None,
    title: str | None = None,
    height: int = 420,
) -> go.Figure:
    """An image with optional keypoints; green = seen (v=2), red = occluded (v=1)."""
    fig = go.Figure()
    add_image_panel(fig, image, keypoints=keypoints, visibility=visibility, skeleton=skeleton)
    fig.update_layout(title=title, height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    fig.update_yaxes(scaleanchor="x")
    return fig


def images_row(
    images: list[np.ndarray] | np.ndarray,
    *,
    titles: list[str] | None = None,
    keypoints: np.ndarray | None = None,
    visibility: np.ndarray | None = None,
    skeleton: str | Skeleton | None = None,
    height: int = 260,
) -> go.Figure:
    """Images side by side (a gallery), each with its keypoints ``keypoints[i] (K, 2)`` if
    given; axes hidden."""
    n = len(images)
    fig = make_subplots(1, n, subplot_titles=titles, horizontal_spacing=0.01)
    for i in range(n):
        add_image_panel(fig, images[i], row=1, col=i + 1, skeleton=skeleton,
                        keypoints=None if keypoints is None else keypoints[i],
                        visibility=None if visibility is None else visibility[i])
    fig.update_xaxes(visible=False).update_yaxes(visible=False)
    fig.update_layout(height=height, margin={"l": 0, "r": 0, "t": 30, "b": 0})
    return fig


def skeletons_figure(body_keypoints: np.ndarray, names: tuple[str, ...] = ("coco17", "j18", "smpl24"),
                     height: int = 460) -> go.Figure:
    """The same body's joint sets side by side (front view of ``body_keypoints (46, 3)`` in
    SMPL's frame): each joint is a weighted average of the body keypoints
    (:meth:`labcore.skeletons.Skeleton.from_body`); hover a joint for its name and index."""
    sks = [get_skeleton(n) for n in names]
    fig = make_subplots(1, len(sks), subplot_titles=[f"{s.name} ({s.num_joints} joints)" for s in sks])
    for c, sk in enumerate(sks, start=1):
        k = sk.from_body(np.asarray(body_keypoints, dtype=np.float64))
        # Front view: a camera facing the body (which faces +z) sees the subject's left
        # (+x in SMPL's frame) on the image's right, so x is plotted as it is.
        x, y = k[:, 0], k[:, 1]
        pts = np.stack([x, y], 1)
        xs, ys = _bones_xy(pts, sk.bones, (0, 1))
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": "grey"}, hoverinfo="skip",
                                 showlegend=False), row=1, col=c)
        fig.add_trace(go.Scatter(
            x=x, y=y, mode="markers+text", text=[str(i) for i in range(sk.num_joints)],
            textposition="middle right", textfont={"size": 9},
            marker={"size": 8, "color": [_SIDE_COLOURS[s] for s in sk.sides]},
            customdata=list(sk.joint_names), hovertemplate="%{text}: %{customdata}<extra></extra>",
            showlegend=False,
        ), row=1, col=c)  # fmt: skip
        fig.update_yaxes(scaleanchor=f"x{c if c > 1 else ''}", row=1, col=c)
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 70, "b": 10},
                      title={"text": "joint sets of one body — orange = left, blue = right (front view)",
                             "y": 0.98})
    return fig


def camera_figure(vertices_cam: np.ndarray, K: np.ndarray, image_size: tuple[int, int],
                  *, joints_cam: np.ndarray | None = None, depth: float | None = None,
                  height: int = 480) -> go.Figure:
    """A body in camera coordinates (OpenCV: x right, y down, z forward; metres) with the
    camera's viewing pyramid, to see what ``K`` and the camera frame mean."""
    v = np.asarray(vertices_cam, dtype=np.float32)[::3]
    W, H = image_size
    Kinv = np.linalg.inv(np.asarray(K, dtype=np.float64))
    z = float(depth if depth is not None else v[:, 2].max())
    corners = np.array([[-0.5, -0.5, 1], [W - 0.5, -0.5, 1], [W - 0.5, H - 0.5, 1], [-0.5, H - 0.5, 1]])
    rays = corners @ Kinv.T * z
    fig = go.Figure(go.Scatter3d(x=v[:, 0], y=v[:, 2], z=v[:, 1], mode="markers",
                                 marker={"size": 1.5, "color": v[:, 2], "colorscale": "Viridis"},
                                 name="body (coloured by z)", hoverinfo="skip"))
    for r in rays:
        fig.add_trace(go.Scatter3d(x=[0, r[0]], y=[0, r[2]], z=[0, r[1]], mode="lines",
                                   line={"color": "black"}, showlegend=False, hoverinfo="skip"))
    ring = np.vstack([rays, rays[:1]])
    fig.add_trace(go.Scatter3d(x=ring[:, 0], y=ring[:, 2], z=ring[:, 1], mode="lines",
                               line={"color": "black"}, name="image plane at the body's depth"))
    if joints_cam is not None:
        j = np.asarray(joints_cam, dtype=np.float32)
        fig.add_trace(go.Scatter3d(x=j[:, 0], y=j[:, 2], z=j[:, 1], mode="markers",
                                   marker={"size": 4, "color": "red"}, name="joints"))
    # Plotly's 3-D view is z-up: plot (x, z, y) and reverse the vertical axis so that the
    # camera's y (down) points down on screen.
    fig.update_layout(height=height, margin={"l": 0, "r": 0, "t": 30, "b": 0},
                      scene={"aspectmode": "data", "xaxis_title": "x (right)", "yaxis_title": "z (forward)",
                             "zaxis_title": "y (down)", "zaxis": {"autorange": "reversed"},
                             "camera": {"eye": {"x": -1.4, "y": -1.6, "z": 0.8}}})
    return fig


def flow_to_rgb(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """Optical flow ``(H, W, 2)`` (pixels) as an RGB image: hue = direction, brightness =
    magnitude (saturating at ``max_magnitude``, default the largest magnitude)."""
    import cv2

    f = np.asarray(flow, dtype=np.float32)
    mag, ang = cv2.cartToPolar(np.ascontiguousarray(f[..., 0]), np.ascontiguousarray(f[..., 1]))
    top = float(max_magnitude) if max_magnitude else max(float(mag.max()), 1e-6)
    hsv = np.zeros((*f.shape[:2], 3), dtype=np.uint8)
    hsv[..., 0] = (ang * 90 / np.pi).astype(np.uint8)
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(mag / top * 255, 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
