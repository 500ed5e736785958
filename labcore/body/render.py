"""A small, fully vectorised z-buffer rasteriser for labcore's synthetic people.

It draws a triangle mesh (an SMPL-format body: 6890 vertices, 13776 triangles) with a
pinhole camera into per-pixel *fragments* (which face, where on it, how far), and builds
everything the data pipeline needs on top of them: attribute interpolation (part colours,
surface points), Lambert shading, compositing over a background, forward optical flow to
the next frame, point visibility and box-filter downsampling for anti-aliasing.

Conventions (the same as the rest of labcore, DESIGN.md §2):

* **Camera frame** is OpenCV's: x right, y down, z forward, in metres. Vertices are given
  in camera coordinates.
* **Intrinsics** ``K`` are ``(3, 3)`` (shared) or ``(B, 3, 3)`` (one per mesh); the last row
  must be ``[0, 0, 1]`` and the upper ``2 x 3`` block may be any affine map (a crop or a
  resize of an image changes it; skew and flips are fine). A point ``p`` projects to
  ``u = (K @ p)[0] / z`` and ``v = (K @ p)[1] / z``.
* **Pixel coordinates have integer values at pixel centres**: pixel ``(row i, col j)`` is
  the point ``(u=j, v=i)``, so the image covers ``u`` in ``[-0.5, W - 0.5]``.
* A triangle **covers** a pixel when the pixel centre lies inside it, edges included. The
  edge functions are evaluated so that two triangles sharing an edge compute exactly
  opposite values on it, so a closed mesh never shows a crack (on a shared edge both
  triangles cover the pixel and the z-buffer picks one).
* **Images** are ``(B, H, W, ...)`` on the mesh's device; ``image_size`` is ``(W, H)``.

The rasteriser works on the whole batch at once with no Python loop over faces or pixels:
it enumerates, for each face, the pixel centres of its screen bounding box, tests them with
edge functions, and keeps the nearest candidate per pixel with ``scatter_reduce``. Faces are
processed in chunks so that at most ``max_candidates`` (face, pixel) pairs are in flight.
Triangles smaller than a pixel that contain no pixel centre are (correctly) not drawn.

The rasteriser itself is not differentiable (fragments are computed without gradients);
:func:`interpolate`, :func:`shade_lambert` and :func:`optical_flow` are differentiable with
respect to the attributes / vertices they interpolate, for fixed fragments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from labcore.checks import as_tensor, check_int, check_number, check_size2

__all__ = [
    "Fragments",
    "rasterize",
    "interpolate",
    "face_normals",
    "vertex_normals",
    "shade_lambert",
    "composite",
    "optical_flow",
    "point_visibility",
    "downsample",
]


# --------------------------------------------------------------------------------------
# Fragments
# --------------------------------------------------------------------------------------


@dataclass
class Fragments:
    """What the rasteriser saw at each pixel.

    Attributes:
        face_index: ``(B, H, W)`` int64, index (into ``faces``, per mesh) of the visible
            face, ``-1`` where no face covers the pixel centre.
        bary: ``(B, H, W, 3)`` float32, **perspective-correct** barycentric coordinates of
            the visible surface point with respect to the face's three vertices (in the
            order of ``faces``); they sum to 1. Zeros where empty.
        depth: ``(B, H, W)`` float32, camera z (metres) of the visible surface point,
            ``+inf`` where empty.
    """

    face_index: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """``(B, H, W)`` bool, True where a face covers the pixel."""
        return self.face_index >= 0

    @property
    def image_size(self) -> tuple[int, int]:
        """``(W, H)``."""
        return int(self.face_index.shape[2]), int(self.face_index.shape[1])

    @property
    def batch_size(self) -> int:
        return int(self.face_index.shape[0])


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


def _check_vertices(vertices: Any, name: str, dims: dict[str, int]) -> torch.Tensor:
    return as_tensor(vertices, name, shape=("B", "V", 3), dims=dims)


def _check_faces(faces: Any, num_vertices: int, device: torch.device) -> torch.Tensor:
    f = as_tensor(faces, "faces", shape=("F", 3), dtype=torch.int64, device=device)
    lo, hi = int(f.min()), int(f.max())
    if lo < 0 or hi >= num_vertices:
        raise ValueError(
            f"faces: expected vertex indices in [0, {num_vertices - 1}] (V={num_vertices}), "
            f"got values in [{lo}, {hi}]"
        )
    return f


def _check_K(K: Any, name: str, batch: int, device: torch.device) -> torch.Tensor:
    """Return ``(B, 3, 3)`` float32 intrinsics on ``device``."""
    k = as_tensor(K, name, device=device)
    if k.dim() == 2:
        if tuple(k.shape) != (3, 3):
            raise ValueError(
                f"{name}: expected shape (3, 3) or (B={batch}, 3, 3), got {tuple(k.shape)}"
            )
        k = k.unsqueeze(0).expand(batch, 3, 3)
    elif k.dim() == 3:
        if tuple(k.shape) != (batch, 3, 3):
            raise ValueError(
                f"{name}: expected shape (3, 3) or (B={batch}, 3, 3), got {tuple(k.shape)}"
            )
    else:
        raise ValueError(
            f"{name}: expected shape (3, 3) or (B={batch}, 3, 3), got {tuple(k.shape)}"
        )
    last = k[:, 2, :]
    want = torch.tensor([0.0, 0.0, 1.0], device=device)
    if not bool(((last - want).abs() <= 1e-6).all()):
        bad = last[((last - want).abs() > 1e-6).any(dim=1)][0].tolist()
        raise ValueError(f"{name}: expected last row [0, 0, 1] (a pinhole camera), got {bad}")
    return k


def _check_fragments(fragments: Any) -> Fragments:
    if not isinstance(fragments, Fragments):
        raise TypeError(
            f"fragments: expected a Fragments (from rasterize), got {type(fragments).__name__}"
        )
    return fragments


def _project(
    points: torch.Tensor, K: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pinhole projection. points ``(B, N, 3)``, K ``(B, 3, 3)`` -> u, v, z each ``(B, N)``.

    ``u = (K @ p)[0] / z``, ``v = (K @ p)[1] / z`` (inf/NaN where z == 0; callers mask)."""
    z = points[..., 2]
    xn = points[..., 0] / z
    yn = points[..., 1] / z
    u = K[:, 0, 0, None] * xn + K[:, 0, 1, None] * yn + K[:, 0, 2, None]
    v = K[:, 1, 0, None] * xn + K[:, 1, 1, None] * yn + K[:, 1, 2, None]
    return u, v, z


def _edge(ax, ay, bx, by, px, py):
    """Edge function ``cross(a - p, b - p)``, twice the signed area of (a, b, p).

    Written so that swapping ``a`` and ``b`` gives *exactly* the negated value in floating
    point (the two products swap places), which makes shared edges crack-free."""
    return (ax - px) * (by - py) - (ay - py) * (bx - px)


# --------------------------------------------------------------------------------------
# Rasterisation
# --------------------------------------------------------------------------------------


@torch.no_grad()
def rasterize(
    vertices: Any,
    faces: Any,
    K: Any,
    image_size: Any = (64, 64),
    near: float = 1e-3,
    cull_backfaces: bool = False,
    max_candidates: int = 1_000_000,
) -> Fragments:
    """Rasterise a batch of meshes into fragments with a z-buffer.

    Args:
        vertices: ``(B, V, 3)`` float, camera coordinates in metres (OpenCV frame).
        faces: ``(F, 3)`` int64 vertex indices, shared by the batch.
        K: ``(3, 3)`` or ``(B, 3, 3)`` intrinsics, last row ``[0, 0, 1]``.
        image_size: ``(W, H)`` in pixels (or one int for a square image).
        near: faces with any vertex at ``z <= near`` (metres) are dropped (no clipping).
        cull_backfaces: drop faces whose normal (right-hand rule on the vertex order of
            ``faces``) points away from the camera. Off by default: the z-buffer resolves
            visibility of a closed mesh either way, and a winding mistake then never
            makes a face disappear.
        max_candidates: most (face, pixel-centre) pairs tested at once. The working set
            is about 100 bytes per candidate (the default: ~100 MB), plus ~40 bytes per
            output pixel. The result does not depend on it (depth ties go to the lowest
            face index whatever the chunking). A larger value can help on a GPU.

    Returns:
        :class:`Fragments` with ``face_index (B, H, W)``, perspective-correct ``bary
        (B, H, W, 3)`` and ``depth (B, H, W)`` (camera z, ``+inf`` where empty).

    A face covers a pixel when the pixel centre ``(u=col, v=row)`` lies inside its projected
    triangle, edges inclusive. Zero-area (degenerate) triangles are skipped.
    """
    dims: dict[str, int] = {}
    verts = _check_vertices(vertices, "vertices", dims)
    device = verts.device
    B, V = dims["B"], dims["V"]
    fcs = _check_faces(faces, V, device)
    Kb = _check_K(K, "K", B, device)
    W, H = check_size2(image_size, "image_size")
    near = check_number(near, "near", low=0.0, low_inclusive=False)
    max_candidates = check_int(max_candidates, "max_candidates", low=1, high=2**31 - 1)
    if W * H >= 2**31:
        raise ValueError(f"image_size: expected fewer than 2**31 pixels, got W*H = {W * H}")
    if not isinstance(cull_backfaces, bool):
        raise TypeError(f"cull_backfaces: expected a bool, got {type(cull_backfaces).__name__}")

    return _rasterize(verts, fcs, Kb, W, H, near, cull_backfaces, max_candidates)


def _rasterize(verts, fcs, Kb, W, H, near, cull_backfaces, max_candidates) -> Fragments:
    """The rasteriser proper, on validated input (see :func:`rasterize`)."""
    device = verts.device
    B, V, F = verts.shape[0], verts.shape[1], fcs.shape[0]
    HW = H * W
    n_pix = B * HW

    # ---- 1. project the vertices; per-face setup on (B, F) planes ----------------------
    u, v, z = _project(verts, Kb)  # (B, V) each
    cols = [fcs[:, k].contiguous() for k in range(3)]
    fu = [u.index_select(1, c) for c in cols]  # 3 x (B, F)
    fv = [v.index_select(1, c) for c in cols]
    fz = [z.index_select(1, c) for c in cols]

    keep = (fz[0] > near) & (fz[1] > near) & (fz[2] > near)
    if cull_backfaces:
        keep &= _facing_camera(verts, cols)

    # Bounding box in pixel-centre units (ceil(min) .. floor(max)), clamped before
    # rounding so that far-away vertices never overflow.
    umin = torch.minimum(torch.minimum(fu[0], fu[1]), fu[2]).clamp_(-1.0, float(W))
    umax = torch.maximum(torch.maximum(fu[0], fu[1]), fu[2]).clamp_(-1.0, float(W))
    vmin = torch.minimum(torch.minimum(fv[0], fv[1]), fv[2]).clamp_(-1.0, float(H))
    vmax = torch.maximum(torch.maximum(fv[0], fv[1]), fv[2]).clamp_(-1.0, float(H))
    c0 = umin.ceil_().clamp_(min=0.0)
    r0 = vmin.ceil_().clamp_(min=0.0)
    bw = (umax.floor_().clamp_(max=W - 1.0) - c0 + 1.0).clamp_(min=0.0)
    bh = (vmax.floor_().clamp_(max=H - 1.0) - r0 + 1.0).clamp_(min=0.0)
    # exact integers: float32 holds them up to 2**24 pixels, float64 beyond
    count = bw * bh if HW < 2**24 else bw.double() * bh.double()
    # twice the signed screen area: the edge function of (v1, v2) at vertex 0
    area2 = _edge(fu[1], fv[1], fu[2], fv[2], fu[0], fv[0])
    keep &= (count > 0) & (area2 != 0) & torch.isfinite(area2)

    sel = keep.reshape(-1).nonzero().squeeze(1)  # kept faces, global ids g = b * F + f
    if sel.numel() == 0:
        return _finish(None, B, H, W, F, V, u, v, z, fcs)

    def pick(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(-1).index_select(0, sel)

    # ---- 2. per kept face: vertices counter-clockwise on screen ------------------------
    # Swapping vertices 1 and 2 where the area is negative negates every edge function
    # exactly, so the inside test "all E_i >= 0" stays crack-free.
    sa = pick(area2)
    flip = sa < 0
    x0, y0, z0 = pick(fu[0]), pick(fv[0]), pick(fz[0])
    x1, y1, z1 = pick(fu[1]), pick(fv[1]), pick(fz[1])
    x2, y2, z2 = pick(fu[2]), pick(fv[2]), pick(fz[2])
    x1, x2 = torch.where(flip, x2, x1), torch.where(flip, x1, x2)
    y1, y2 = torch.where(flip, y2, y1), torch.where(flip, y1, y2)
    z1, z2 = torch.where(flip, z2, z1), torch.where(flip, z1, z2)
    sa = sa.abs()
    xs, ys = (x0, x1, x2), (y0, y1, y2)
    # inverse depth is affine in screen space: 1/z = sum_i E_i(p) / (area2 * z_i)
    kz = (1.0 / (z0 * sa), 1.0 / (z1 * sa), 1.0 / (z2 * sa))
    fc0, fr0 = pick(c0), pick(r0)  # float32, exact integers
    fbw = pick(bw).to(torch.int32)
    pix0 = torch.div(sel, F, rounding_mode="floor") * HW + fr0.long() * W + fc0.long()
    cnt = pick(count).long()
    ends = torch.cumsum(cnt, 0)
    starts = ends - cnt
    total = int(ends[-1])

    # ---- 3. candidates, chunk by chunk, into one z-buffer ------------------------------
    best_inv = torch.zeros(n_pix, dtype=torch.float32, device=device)  # 1/z; 0 = empty
    big = torch.iinfo(torch.int64).max
    best_face = torch.full((n_pix,), big, dtype=torch.int64, device=device)
    for s in range(0, total, max_candidates):
        e = min(s + max_candidates, total)
        n = e - s
        # faces [f0, f1) own candidates s .. e-1; candidate k of face f is pixel k of its
        # box, row-major: row = k // bw, col = k % bw
        f0 = int(torch.searchsorted(ends, torch.tensor(s, device=device), right=True))
        f1 = int(torch.searchsorted(starts, torch.tensor(e, device=device), right=False))
        st = starts[f0:f1] - s  # start of each face's run in this chunk (< 0: began earlier)
        n_per = ends[f0:f1].clamp(max=e) - s - st.clamp(min=0)
        loc = torch.repeat_interleave(
            torch.arange(f1 - f0, dtype=torch.int32, device=device), n_per, output_size=n
        )  # face (relative to f0) of each candidate
        off = torch.arange(n, dtype=torch.int32, device=device)
        off -= st.to(torch.int32).index_select(0, loc)
        bwl = fbw[f0:f1].index_select(0, loc)
        q = torch.div(off, bwl, rounding_mode="floor")  # row within the box
        rem = off.sub_(q * bwl)  # column within the box
        del bwl
        px = fc0[f0:f1].index_select(0, loc).add_(rem)  # pixel centre, float32
        py = fr0[f0:f1].index_select(0, loc).add_(q)
        dx = [xk[f0:f1].index_select(0, loc).sub_(px) for xk in xs]
        dy = [yk[f0:f1].index_select(0, loc).sub_(py) for yk in ys]
        del px, py
        # E_i = edge(v_{i+1}, v_{i+2}, p) = dx_a * dy_b - dy_a * dx_b (exactly antisymmetric)
        e0 = (dx[1] * dy[2]).sub_(dy[1] * dx[2])
        e1 = (dx[2] * dy[0]).sub_(dy[2] * dx[0])
        e2 = (dx[0] * dy[1]).sub_(dy[0] * dx[1])
        del dx, dy
        ins = ((e0 >= 0) & (e1 >= 0) & (e2 >= 0)).nonzero().squeeze(1)
        if ins.numel() == 0:
            continue
        li = loc.index_select(0, ins)
        inv = e0.index_select(0, ins).mul_(kz[0][f0:f1].index_select(0, li))
        inv += e1.index_select(0, ins).mul_(kz[1][f0:f1].index_select(0, li))
        inv += e2.index_select(0, ins).mul_(kz[2][f0:f1].index_select(0, li))
        del e0, e1, e2
        pix = pix0[f0:f1].index_select(0, li)
        pix += q.index_select(0, ins).long() * W + rem.index_select(0, ins).long()
        gface = sel[f0:f1].index_select(0, li)
        del loc, q, rem, off, li
        if s > 0:
            before = best_inv.index_select(0, pix)
        best_inv.scatter_reduce_(0, pix, inv, reduce="amax", include_self=True)
        now = best_inv.index_select(0, pix)
        if s > 0:  # a nearer surface arrived at these pixels: forget the older ties
            best_face.index_fill_(0, pix[now > before], big)
            del before
        # the winners: candidates at the nearest depth; ties go to the lowest face id
        win = (inv == now).nonzero().squeeze(1)
        best_face.scatter_reduce_(
            0,
            pix.index_select(0, win),
            gface.index_select(0, win),
            reduce="amin",
            include_self=True,
        )
    return _finish(best_face, B, H, W, F, V, u, v, z, fcs, empty=big)


def _facing_camera(verts: torch.Tensor, cols: list[torch.Tensor]) -> torch.Tensor:
    """(B, F) bool: the right-hand-rule normal points towards the camera (n . p0 < 0).

    ``n . p0 = det[p0, p1, p2]``, computed without forming n."""
    p = [verts.index_select(1, c) for c in cols]  # (B, F, 3)
    return (p[0] * _cross(p[1], p[2])).sum(-1) < 0


_FINISH_CHUNK = 1 << 18  # pixels per float64 pass in _finish (bounds its memory)


def _finish(best_face, B, H, W, F, V, u, v, z, fcs, empty=None) -> Fragments:
    """Perspective-correct barycentrics and depth for the winning face of each pixel.

    ``best_face (B*H*W,)`` holds global face ids ``b * F + f`` (``empty`` where none), or
    is ``None`` when nothing was drawn."""
    n_pix = B * H * W
    device = u.device
    face_index = torch.full((n_pix,), -1, dtype=torch.int64, device=device)
    bary = torch.zeros(n_pix, 3, dtype=torch.float32, device=device)
    depth = torch.full((n_pix,), float("inf"), dtype=torch.float32, device=device)
    if best_face is not None:
        covered = (best_face != empty).nonzero().squeeze(1)
        uf, vf, zf = u.reshape(-1), v.reshape(-1), z.reshape(-1)
        for c in range(0, covered.numel(), _FINISH_CHUNK):
            pid = covered[c : c + _FINISH_CHUNK]
            g = best_face.index_select(0, pid)
            b = torch.div(g, F, rounding_mode="floor")
            f = g - b * F
            vid = (fcs.index_select(0, f) + (b * V)[:, None]).reshape(-1)  # face order
            P = pid.numel()
            fu = uf.index_select(0, vid).reshape(P, 3).double()
            fv = vf.index_select(0, vid).reshape(P, 3).double()
            fz = zf.index_select(0, vid).reshape(P, 3).double()
            col = (pid % W).double()
            row = (torch.div(pid, W, rounding_mode="floor") % H).double()
            # screen-space edge functions in float64 (one face per pixel: cheap)
            dx, dy = fu - col[:, None], fv - row[:, None]
            ls = torch.stack(
                [
                    dx[:, 1] * dy[:, 2] - dy[:, 1] * dx[:, 2],
                    dx[:, 2] * dy[:, 0] - dy[:, 2] * dx[:, 0],
                    dx[:, 0] * dy[:, 1] - dy[:, 0] * dx[:, 1],
                ],
                dim=1,
            )
            w = ls / fz  # proportional to the perspective-correct barycentrics
            sw = w.sum(1, keepdim=True)
            bary.index_copy_(0, pid, (w / sw).float())
            # screen bary l_i = ls_i / sum(ls); 1/z = sum l_i / z_i  =>  z = sum(ls) / sw
            depth.index_copy_(0, pid, (ls.sum(1) / sw.squeeze(1)).float())
            face_index.index_copy_(0, pid, f)
    return Fragments(
        face_index=face_index.reshape(B, H, W),
        bary=bary.reshape(B, H, W, 3),
        depth=depth.reshape(B, H, W),
    )


# --------------------------------------------------------------------------------------
# Interpolation, normals, shading
# --------------------------------------------------------------------------------------


def _covered_pixels(frag: Fragments, fcs: torch.Tensor):
    """Flat ids ``pid (P,)`` of covered pixels, their batch index ``b (P,)``, the vertex ids
    ``vid (P, 3)`` of their visible face and its barycentrics ``w (P, 3)``."""
    B, H, W = frag.face_index.shape
    fi = frag.face_index.reshape(-1)
    if int(fi.max()) >= fcs.shape[0]:
        raise ValueError(
            f"faces: fragments refer to face {int(fi.max())} but faces has only "
            f"{fcs.shape[0]} rows (pass the faces that were rasterised)"
        )
    pid = (fi >= 0).nonzero().squeeze(1)
    b = torch.div(pid, H * W, rounding_mode="floor")
    vid = fcs.index_select(0, fi.index_select(0, pid))
    w = frag.bary.reshape(-1, 3).index_select(0, pid)
    return pid, b, vid, w


def _interp_rows(table: torch.Tensor, rows: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``sum_i w[:, i] * table[rows[:, i]]``: table ``(R, C)``, rows/w ``(P, 3)`` -> ``(P, C)``."""
    vals = table.index_select(0, rows.reshape(-1)).reshape(rows.shape[0], 3, table.shape[1])
    w = w.to(vals.dtype)
    return vals[:, 0] * w[:, 0:1] + vals[:, 1] * w[:, 1:2] + vals[:, 2] * w[:, 2:3]


def _scatter_pixels(
    values: torch.Tensor, pid: torch.Tensor, shape: tuple[int, ...]
) -> torch.Tensor:
    """Place per-pixel ``values (P, C)`` at flat pixel ids ``pid`` of a zero image ``shape``."""
    out = values.new_zeros(math.prod(shape[:-1]), shape[-1])
    return out.index_copy(0, pid, values).reshape(shape)


def interpolate(fragments: Fragments, faces: Any, attributes: Any) -> torch.Tensor:
    """Perspective-correct interpolation of per-vertex attributes at every pixel.

    Args:
        fragments: from :func:`rasterize`.
        faces: ``(F, 3)`` int64, the faces that were rasterised.
        attributes: ``(B, V, C)`` or ``(V, C)`` (shared by the batch), float.

    Returns:
        ``(B, H, W, C)`` float32: ``sum_i bary_i * attributes[faces[face_index, i]]``;
        zeros where the pixel is empty. Differentiable with respect to ``attributes``.
    """
    frag = _check_fragments(fragments)
    B, H, W = frag.face_index.shape
    device = frag.face_index.device
    attr = as_tensor(attributes, "attributes", device=device)
    if attr.dim() not in (2, 3) or (attr.dim() == 3 and attr.shape[0] != B):
        raise ValueError(
            f"attributes: expected shape (B={B}, V, C) or (V, C), got {tuple(attr.shape)}"
        )
    Vn, C = attr.shape[-2], attr.shape[-1]
    fcs = _check_faces(faces, Vn, device)
    pid, b, vid, w = _covered_pixels(frag, fcs)
    if attr.dim() == 2:
        res = _interp_rows(attr, vid, w)
    else:
        res = _interp_rows(attr.reshape(B * Vn, C), vid + (b * Vn)[:, None], w)
    return _scatter_pixels(res, pid, (B, H, W, C))


def _cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    ax, ay, az = a.unbind(-1)
    bx, by, bz = b.unbind(-1)
    return torch.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], dim=-1)


def face_normals(vertices: Any, faces: Any) -> torch.Tensor:
    """Unit face normals ``(B, F, 3)``: right-hand rule on the face's vertex order,
    ``n = (v1 - v0) x (v2 - v0) / |...|``; zero for degenerate faces.

    vertices ``(B, V, 3)``, faces ``(F, 3)`` int64."""
    dims: dict[str, int] = {}
    verts = _check_vertices(vertices, "vertices", dims)
    fcs = _check_faces(faces, dims["V"], verts.device)
    p0, p1, p2 = (verts.index_select(1, fcs[:, k]) for k in range(3))
    n = _cross(p1 - p0, p2 - p0)
    return n / n.norm(dim=-1, keepdim=True).clamp_min(1e-20)


def vertex_normals(vertices: Any, faces: Any) -> torch.Tensor:
    """Area-weighted unit vertex normals ``(B, V, 3)`` (sum of the adjacent faces'
    right-hand-rule normals weighted by their areas, normalised; zero for isolated
    vertices). vertices ``(B, V, 3)``, faces ``(F, 3)`` int64."""
    dims: dict[str, int] = {}
    verts = _check_vertices(vertices, "vertices", dims)
    fcs = _check_faces(faces, dims["V"], verts.device)
    return _vertex_normals_vb(verts.transpose(0, 1).contiguous(), fcs).transpose(0, 1).contiguous()


def _vertex_normals_vb(vt: torch.Tensor, fcs: torch.Tensor) -> torch.Tensor:
    """Vertex normals ``(V, B, 3)`` from vertices ``(V, B, 3)``.

    Works component-major, ``(3, F, B)``, so that gathers, cross products and scatters all
    run on contiguous rows of B values."""
    vc = vt.permute(2, 0, 1).contiguous()  # (3, V, B)
    p0, a, b = (vc.index_select(1, fcs[:, k]) for k in range(3))  # (3, F, B)
    a.sub_(p0)
    b.sub_(p0)
    fn = p0  # reuse the buffer: fn = a x b, length = twice the area (area weighting)
    torch.mul(a[1], b[2], out=fn[0]).sub_(a[2] * b[1])
    torch.mul(a[2], b[0], out=fn[1]).sub_(a[0] * b[2])
    torch.mul(a[0], b[1], out=fn[2]).sub_(a[1] * b[0])
    acc = torch.zeros_like(vc)
    for k in range(3):
        acc.index_add_(1, fcs[:, k], fn)
    norm = (acc[0] * acc[0] + acc[1] * acc[1] + acc[2] * acc[2]).sqrt_().clamp_min_(1e-20)
    return (acc / norm).permute(1, 2, 0)  # (V, B, 3)


def shade_lambert(
    fragments: Fragments,
    faces: Any,
    vertices: Any,
    albedo: Any,
    light_dir: Any = (0.0, -0.5, -1.0),
    ambient: float = 0.4,
    diffuse: float = 0.6,
) -> torch.Tensor:
    """Two-sided Lambert shading.

    Args:
        fragments: from :func:`rasterize` of ``vertices``/``faces``.
        faces: ``(F, 3)`` int64.
        vertices: ``(B, V, 3)`` camera coordinates (metres), the rasterised ones.
        albedo: ``(B, H, W, 3)`` colours in ``[0, 1]`` (e.g. interpolated part colours).
        light_dir: ``(3,)`` or ``(B, 3)`` direction *towards* the light in camera
            coordinates (need not be unit). The default lights from above the camera
            (y is down, so ``-y`` is up) and behind it.
        ambient, diffuse: ``intensity = ambient + diffuse * max(0, n . l)``, clipped to
            ``[0, 1]``.

    Returns:
        ``(B, H, W, 3)`` float32 in ``[0, 1]``: ``albedo * intensity``; 0 on background.

    Normals are interpolated area-weighted vertex normals; a normal that faces away from
    the camera (``n . p > 0`` at the surface point ``p``) is flipped, so that a winding
    mistake or an open mesh seen from inside never gives black faces.
    """
    frag = _check_fragments(fragments)
    B, H, W = frag.face_index.shape
    dims: dict[str, int] = {"B": B}
    device = frag.face_index.device
    verts = as_tensor(vertices, "vertices", shape=("B", "V", 3), dims=dims, device=device)
    fcs = _check_faces(faces, dims["V"], device)
    alb = as_tensor(albedo, "albedo", shape=(B, H, W, 3), device=device)
    lo, hi = (float(t) for t in torch.aminmax(alb))
    if lo < 0 or hi > 1:
        raise ValueError(f"albedo: expected values in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")
    light = as_tensor(light_dir, "light_dir", device=device)
    if light.dim() == 1 and light.shape[0] == 3:
        light = light.unsqueeze(0).expand(B, 3)
    elif tuple(light.shape) != (B, 3):
        raise ValueError(f"light_dir: expected shape (3,) or (B={B}, 3), got {tuple(light.shape)}")
    ln = light.norm(dim=-1, keepdim=True)
    if bool((ln == 0).any()):
        raise ValueError("light_dir: expected a non-zero direction, got a zero vector")
    light = light / ln
    ambient = check_number(ambient, "ambient", low=0.0)
    diffuse = check_number(diffuse, "diffuse", low=0.0)

    # one table of [normal, position] per (vertex, mesh), rows indexed by v * B + b
    vt = verts.transpose(0, 1).contiguous()  # (V, B, 3)
    table = torch.cat([_vertex_normals_vb(vt, fcs), vt], dim=-1).reshape(-1, 6)
    pid, b, vid, w = _covered_pixels(frag, fcs)
    np_ = _interp_rows(table, vid * B + b[:, None], w)  # (P, 6)
    n, p = np_[:, :3], np_[:, 3:]
    n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    n = torch.where((n * p).sum(-1, keepdim=True) > 0, -n, n)  # two-sided
    ndl = (n * light.index_select(0, b)).sum(-1, keepdim=True).clamp_min(0.0)
    intensity = (ambient + diffuse * ndl).clamp(0.0, 1.0)
    shaded = (alb.reshape(-1, 3).index_select(0, pid) * intensity).clamp(0.0, 1.0)
    return _scatter_pixels(shaded, pid, (B, H, W, 3))


def composite(foreground: Any, mask: Any, background: Any) -> torch.Tensor:
    """Paste ``foreground (B, H, W, C)`` over ``background`` (``(B, H, W, C)`` or
    ``(H, W, C)``, shared) where ``mask (B, H, W)`` is True (bool) — or blend with a
    float mask in ``[0, 1]`` (alpha, e.g. a downsampled coverage mask)."""
    dims: dict[str, int] = {}
    fg = as_tensor(foreground, "foreground", shape=("B", "H", "W", "C"), dims=dims)
    device = fg.device
    m = as_tensor(mask, "mask", shape=("B", "H", "W"), dims=dims, dtype=None, device=device)
    alpha = m.to(fg.dtype)
    if m.dtype != torch.bool:
        lo, hi = (float(t) for t in torch.aminmax(alpha))
        if lo < 0 or hi > 1:
            raise ValueError(
                f"mask: expected a bool mask or alpha values in [0, 1], got values in [{lo:.4g}, {hi:.4g}]"
            )
    bg = as_tensor(background, "background", device=device, dtype=fg.dtype)
    if bg.dim() == 3:
        as_tensor(bg, "background", shape=("H", "W", "C"), dims=dims)
        bg = bg.unsqueeze(0)
    else:
        as_tensor(bg, "background", shape=("B", "H", "W", "C"), dims=dims)
    a = alpha[..., None]
    return fg * a + bg * (1 - a)


# --------------------------------------------------------------------------------------
# Motion, visibility, anti-aliasing
# --------------------------------------------------------------------------------------


def optical_flow(
    fragments: Fragments,
    faces: Any,
    vertices_next: Any,
    K_next: Any,
    near: float = 1e-3,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward optical flow (pixels) from the rasterised frame to the next one.

    For each covered pixel, its surface point (visible face + perspective-correct
    barycentrics) is found on the next-frame mesh (same face, same barycentrics) and
    projected with ``K_next``; ``flow = (u - col, v - row)``.

    Args:
        fragments: from :func:`rasterize` of this frame.
        faces: ``(F, 3)`` int64 (same topology in both frames).
        vertices_next: ``(B, V, 3)`` next-frame vertices, camera coordinates (metres).
        K_next: ``(3, 3)`` or ``(B, 3, 3)`` next-frame intrinsics, last row ``[0, 0, 1]``.
        near: next points with ``z <= near`` count as behind the camera.

    Returns:
        ``flow (B, H, W, 2)`` float32 ``(du, dv)`` in pixels, and ``valid (B, H, W)`` bool
        (False, with zero flow, where empty or where the next point is behind the camera).
        Occlusion in the next frame is not checked.
    """
    frag = _check_fragments(fragments)
    B = frag.batch_size
    _, H, W = frag.face_index.shape
    device = frag.face_index.device
    dims: dict[str, int] = {"B": B}
    vn = as_tensor(vertices_next, "vertices_next", shape=("B", "V", 3), dims=dims, device=device)
    Kn = _check_K(K_next, "K_next", B, device)
    near = check_number(near, "near", low=0.0, low_inclusive=False)
    fcs = _check_faces(faces, dims["V"], device)
    pid, b, vid, w = _covered_pixels(frag, fcs)
    p = _interp_rows(vn.reshape(-1, 3), vid + (b * dims["V"])[:, None], w)  # (P, 3)
    ok = p[:, 2] > near
    z = torch.where(ok, p[:, 2], torch.ones_like(p[:, 2]))  # no 0-division, even in grads
    xn, yn = p[:, 0] / z, p[:, 1] / z
    Kp = Kn.index_select(0, b)
    u = Kp[:, 0, 0] * xn + Kp[:, 0, 1] * yn + Kp[:, 0, 2]
    v = Kp[:, 1, 0] * xn + Kp[:, 1, 1] * yn + Kp[:, 1, 2]
    col = (pid % W).to(u.dtype)
    row = (torch.div(pid, W, rounding_mode="floor") % H).to(u.dtype)
    d = torch.stack([u - col, v - row], dim=1) * ok[:, None]
    flow = _scatter_pixels(d, pid, (B, H, W, 2))
    valid = torch.zeros(B * H * W, dtype=torch.bool, device=device)
    valid = valid.index_copy(0, pid, ok).reshape(B, H, W)
    return flow, valid


def point_visibility(
    points: Any, fragments: Fragments, K: Any, tolerance: float = 0.02
) -> torch.Tensor:
    """Which 3-D points (joints, surface landmarks) the camera sees.

    A point is visible when it lies in front of the camera, projects inside the image
    (its nearest pixel centre ``(round(v), round(u))`` is a pixel of the image) and the
    rendered depth at that pixel is ``>= z - tolerance`` (metres) or the pixel is empty.

    Args:
        points: ``(B, J, 3)`` camera coordinates (metres).
        fragments: from :func:`rasterize` with the same camera.
        K: ``(3, 3)`` or ``(B, 3, 3)`` intrinsics used for that render.
        tolerance: metres of slack. A surface landmark needs only a little (the default
            2 cm); a joint lies *inside* the body, behind its own surface, so for joints
            the caller should pass about the radius of the limb around it (e.g. 0.05-0.1 m),
            otherwise every joint reads as hidden by its own skin.

    Returns:
        ``(B, J)`` bool.
    """
    frag = _check_fragments(fragments)
    B = frag.batch_size
    _, H, W = frag.face_index.shape
    device = frag.face_index.device
    dims: dict[str, int] = {"B": B}
    pts = as_tensor(points, "points", shape=("B", "J", 3), dims=dims, device=device)
    Kb = _check_K(K, "K", B, device)
    tol = check_number(tolerance, "tolerance", low=0.0)
    u, v, z = _project(pts, Kb)
    front = z > 0
    u = torch.where(front, u, torch.zeros_like(u))
    v = torch.where(front, v, torch.zeros_like(v))
    col = torch.floor(u + 0.5)
    row = torch.floor(v + 0.5)
    inside = front & (col >= 0) & (col <= W - 1) & (row >= 0) & (row <= H - 1)
    ci = col.clamp(0, W - 1).long()
    ri = row.clamp(0, H - 1).long()
    b = torch.arange(B, device=device)[:, None].expand_as(ci)
    d = frag.depth[b, ri, ci]
    return inside & (d >= z - tol)


def downsample(image: Any, factor: int) -> torch.Tensor:
    """Box-filter ``image (B, H, W, C)`` by an integer ``factor`` to ``(B, H/f, W/f, C)``
    (each output pixel is the mean of an ``f x f`` block): render at ``f`` times the size
    with ``K`` scaled accordingly, then downsample, for supersampled anti-aliasing.
    ``H`` and ``W`` must be multiples of ``factor``; ``factor=1`` returns the input.

    Scaling ``K`` for a supersampled render with integer-at-centre pixels: ``K_hi =
    S @ K`` with ``S = [[f, 0, (f - 1) / 2], [0, f, (f - 1) / 2], [0, 0, 1]]``.
    """
    img = as_tensor(image, "image", shape=(None, None, None, None), dtype=None)
    if not img.is_floating_point():
        img = img.float()
    f = check_int(factor, "factor", low=1)
    B, H, W, C = img.shape
    if H % f or W % f:
        raise ValueError(f"image: expected H and W to be multiples of factor={f}, got H={H}, W={W}")
    if f == 1:
        return img
    return img.reshape(B, H // f, f, W // f, f, C).mean(dim=(2, 4))
