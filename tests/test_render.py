"""Tests for labcore.body.render: coverage, z-buffer, perspective, flow, visibility."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from labcore.body.render import (
    Fragments,
    composite,
    downsample,
    face_normals,
    interpolate,
    optical_flow,
    point_visibility,
    rasterize,
    shade_lambert,
    vertex_normals,
)

EYE = torch.eye(3)


def K_of(f: float, cx: float, cy: float) -> torch.Tensor:
    return torch.tensor([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]])


def screen_tri(uv, z=1.0):
    """Vertices (1, 3, 3) whose projection with K = identity is ``uv`` (pixels)."""
    uv = torch.tensor(uv, dtype=torch.float32)
    zz = torch.full((3, 1), float(z))
    return torch.cat([uv * zz, zz], 1)[None]


def uv_sphere(n_lat=12, n_lon=16, radius=1.0, center=(0.0, 0.0, 0.0)):
    """Closed UV sphere with outward (right-hand rule) normals in a y-down frame."""
    th = torch.linspace(0, math.pi, n_lat + 1, dtype=torch.float64)[1:-1]
    ph = torch.linspace(0, 2 * math.pi, n_lon + 1, dtype=torch.float64)[:-1]
    t, p = torch.meshgrid(th, ph, indexing="ij")
    ring = torch.stack([t.sin() * p.cos(), t.cos(), t.sin() * p.sin()], -1).reshape(-1, 3)
    pole = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)
    v = torch.cat([pole, ring, -pole]) * radius + torch.tensor(center, dtype=torch.float64)
    top, bot = 0, v.shape[0] - 1

    def idx(i, j):
        return 1 + i * n_lon + (j % n_lon)

    faces = []
    for j in range(n_lon):
        faces += [(top, idx(0, j + 1), idx(0, j)), (bot, idx(n_lat - 2, j), idx(n_lat - 2, j + 1))]
    for i in range(n_lat - 2):
        for j in range(n_lon):
            a, b, c, d = idx(i, j), idx(i, j + 1), idx(i + 1, j), idx(i + 1, j + 1)
            faces += [(a, b, d), (a, d, c)]
    f = torch.tensor(faces, dtype=torch.int64)
    vf = v.float()
    # make the winding outward whatever the parametrisation's handedness
    n = torch.linalg.cross(vf[f[:, 1]] - vf[f[:, 0]], vf[f[:, 2]] - vf[f[:, 0]], dim=-1)
    outward = ((n * (vf[f].mean(1) - torch.tensor(center))).sum(-1) > 0).all()
    if not outward:
        f = f[:, [0, 2, 1]]
    return vf, f


def grid_plane(n: int, half: float, z_of=lambda x, y: 1.0 + 0 * x):
    """An n x n grid of quads (2 triangles each) on [-half, half]^2 (camera x, y), with
    z = z_of(x, y); vertex order gives normals towards the camera (-z)."""
    s = torch.linspace(-half, half, n + 1, dtype=torch.float64)
    y, x = torch.meshgrid(s, s, indexing="ij")
    z = z_of(x, y)
    v = torch.stack([x, y, z], -1).reshape(-1, 3).float()
    faces = []
    for i in range(n):
        for j in range(n):
            a, b = i * (n + 1) + j, i * (n + 1) + j + 1
            c, d = a + n + 1, b + n + 1
            faces += [(a, c, b), (b, c, d)]
    return v, torch.tensor(faces, dtype=torch.int64)


def no_enclosed_holes(mask: torch.Tensor) -> bool:
    """True when every empty pixel of a (H, W) mask connects to the border through empty
    pixels (4-connectivity)."""
    empty = ~mask
    reach = torch.zeros_like(mask)
    reach[0, :], reach[-1, :], reach[:, 0], reach[:, -1] = (
        empty[0],
        empty[-1],
        empty[:, 0],
        empty[:, -1],
    )
    while True:
        grown = reach.clone()
        grown[1:] |= reach[:-1]
        grown[:-1] |= reach[1:]
        grown[:, 1:] |= reach[:, :-1]
        grown[:, :-1] |= reach[:, 1:]
        grown &= empty
        if torch.equal(grown, reach):
            break
        reach = grown
    return bool((empty == reach).all())


def assert_same_fragments(a: Fragments, b: Fragments) -> None:
    assert torch.equal(a.face_index, b.face_index)
    assert torch.equal(a.depth, b.depth)
    assert torch.equal(a.bary, b.bary)


# --------------------------------------------------------------------------------------
# coverage
# --------------------------------------------------------------------------------------

# Triangle (1,1), (6,1), (1,4) in pixels on an 8 x 6 image. Inside: x >= 1, y >= 1 and
# (x-1)/5 + (y-1)/3 <= 1, edges included. Row 1: x <= 6; row 2: x <= 4.33; row 3:
# x <= 2.67; row 4: x <= 1; row 5: none.
HAND_MASK = torch.tensor(
    [
        [0, 0, 0, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 1, 1, 1, 0],
        [0, 1, 1, 1, 1, 0, 0, 0],
        [0, 1, 1, 0, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0],
    ],
    dtype=torch.bool,
)


@pytest.mark.parametrize("order", [[0, 1, 2], [0, 2, 1], [2, 1, 0]])
def test_known_triangle_covers_hand_computed_pixels(order):
    v = screen_tri([(1, 1), (6, 1), (1, 4)], z=1.0)
    faces = torch.tensor([order])
    frag = rasterize(v, faces, EYE, image_size=(8, 6))
    assert frag.face_index.shape == (1, 6, 8)
    assert torch.equal(frag.mask[0], HAND_MASK)
    assert torch.equal(frag.face_index[0], torch.where(HAND_MASK, 0, -1))
    assert torch.all(frag.depth[0][HAND_MASK] == 1.0)
    assert torch.all(torch.isinf(frag.depth[0][~HAND_MASK]))
    assert torch.allclose(frag.bary[0][HAND_MASK].sum(-1), torch.ones(int(HAND_MASK.sum())))
    assert torch.all(frag.bary[0][~HAND_MASK] == 0)


def test_half_pixel_triangle_and_offscreen_and_subpixel():
    # sub-pixel triangle without a pixel centre: not drawn; one around a centre: drawn
    v = torch.cat(
        [
            screen_tri([(2.1, 2.1), (2.4, 2.1), (2.1, 2.4)]),
            screen_tri([(3.8, 3.8), (4.3, 3.9), (3.9, 4.4)]),
        ],
        1,
    )
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    frag = rasterize(v, faces, EYE, image_size=(8, 6))
    expected = torch.full((6, 8), -1)
    expected[4, 4] = 1
    assert torch.equal(frag.face_index[0], expected)
    # entirely off screen and behind the camera: nothing
    off = screen_tri([(20, 20), (30, 20), (20, 30)])
    behind = screen_tri([(1, 1), (6, 1), (1, 4)], z=-1.0)
    for verts in (off, behind):
        assert not rasterize(verts, torch.tensor([[0, 1, 2]]), EYE, (8, 6)).mask.any()


def test_degenerate_triangle_is_skipped():
    v = screen_tri([(1, 1), (3, 3), (5, 5)])  # collinear through pixel centres
    frag = rasterize(v, torch.tensor([[0, 1, 2]]), EYE, (8, 6))
    assert not frag.mask.any()


def test_z_buffer_keeps_the_nearer_triangle():
    W, H = 12, 10
    near_tri = screen_tri([(0.5, 0.5), (8.5, 0.5), (0.5, 8.5)], z=2.0)
    far_tri = screen_tri([(2.5, 1.5), (11.5, 1.5), (2.5, 9.5)], z=4.0)
    m_near = rasterize(near_tri, torch.tensor([[0, 1, 2]]), EYE, (W, H)).mask[0]
    m_far = rasterize(far_tri, torch.tensor([[0, 1, 2]]), EYE, (W, H)).mask[0]
    assert (m_near & m_far).any() and (m_far & ~m_near).any() and (m_near & ~m_far).any()
    v = torch.cat([near_tri, far_tri], 1)
    for faces, i_near, i_far in [([[0, 1, 2], [3, 4, 5]], 0, 1), ([[3, 4, 5], [0, 1, 2]], 1, 0)]:
        frag = rasterize(v, torch.tensor(faces), EYE, (W, H))
        fi, d = frag.face_index[0], frag.depth[0]
        assert torch.all(fi[m_near] == i_near)
        assert torch.all(d[m_near] == 2.0)
        assert torch.all(fi[m_far & ~m_near] == i_far)
        assert torch.all(d[m_far & ~m_near] == 4.0)
        assert torch.all(fi[~m_far & ~m_near] == -1)


def test_interpenetrating_planes_split_along_the_intersection():
    # two planes crossing at x = 0: z = 3 + x/2 and z = 3 - x/2; the nearer wins per side
    W = H = 16
    K = K_of(8.0, 7.5, 7.5)
    va, fa = grid_plane(6, 2.0, lambda x, y: 3.0 + 0.5 * x)
    vb, fb = grid_plane(6, 2.0, lambda x, y: 3.0 - 0.5 * x)
    v = torch.cat([va, vb])[None]
    faces = torch.cat([fa, fb + va.shape[0]])
    frag = rasterize(v, faces, K, (W, H))
    both = rasterize(va[None], fa, K, (W, H)).mask[0] & rasterize(vb[None], fb, K, (W, H)).mask[0]
    left = (torch.arange(W) < 7.5)[None, :].expand(H, W)  # x < 0: plane a is nearer
    assert (both & left).sum() > 20 and (both & ~left).sum() > 20
    fi = frag.face_index[0]
    assert torch.all(fi[both & left] < fa.shape[0])
    assert torch.all(fi[both & ~left] >= fa.shape[0])


def test_closed_cube_face_on_has_no_cracks_when_edges_hit_pixel_centres():
    # a 4 x 4-triangulated square (one cube face) whose grid lines pass exactly through
    # pixel centres: every centre in the square is covered (shared edges have no cracks)
    v, f = grid_plane(4, 1.0)
    K = K_of(4.0, 5.0, 5.0)  # x = -1..1 at z = 1 -> u = 1..9, grid every 2 px
    frag = rasterize(v[None], f, K, (11, 11))
    inside = torch.zeros(11, 11, dtype=torch.bool)
    inside[1:10, 1:10] = True
    assert torch.equal(frag.mask[0], inside)


@pytest.mark.parametrize("size", [8, 16, 33])
def test_closed_sphere_has_no_holes(size):
    n_lat, n_lon = 24, 32
    v, f = uv_sphere(n_lat, n_lon, radius=1.0, center=(0.0, 0.0, 4.0))
    g = torch.Generator().manual_seed(size)
    for _ in range(3):
        R, _ = torch.linalg.qr(torch.randn(3, 3, generator=g))
        vr = (v - torch.tensor([0.0, 0.0, 4.0])) @ R.T + torch.tensor([0.0, 0.0, 4.0])
        f_px = size * 1.8
        c = (size - 1) / 2
        frag = rasterize(vr[None], f, K_of(f_px, c, c), (size, size))
        assert no_enclosed_holes(frag.mask[0])
        # the silhouette of an inscribed polyhedron: a disc slightly smaller than the sphere's
        r_px = f_px * math.tan(math.asin(1.0 / 4.0))
        shrink = 1.0 - 2.0 * (1.0 - math.cos(math.pi / min(n_lat, n_lon / 2)))
        yy, xx = torch.meshgrid(torch.arange(size) - c, torch.arange(size) - c, indexing="ij")
        must = (xx**2 + yy**2).sqrt() < r_px * shrink - 0.05
        assert frag.mask[0][must].all()
        assert not frag.mask[0][(xx**2 + yy**2).sqrt() > r_px + 0.05].any()


def test_backface_culling_of_a_closed_mesh_changes_nothing_visible():
    v, f = uv_sphere(16, 24, radius=1.0, center=(0.2, -0.1, 5.0))
    K = K_of(60.0, 15.5, 15.5)
    a = rasterize(v[None], f, K, (32, 32))
    b = rasterize(v[None], f, K, (32, 32), cull_backfaces=True)
    assert torch.equal(a.mask, b.mask)
    assert torch.allclose(a.depth[a.mask], b.depth[b.mask])
    # reversed winding: culling now keeps the far side (normals point inwards)
    c = rasterize(v[None], f[:, [0, 2, 1]], K, (32, 32), cull_backfaces=True)
    assert torch.all(c.depth[a.mask] > a.depth[a.mask])


# --------------------------------------------------------------------------------------
# perspective correctness
# --------------------------------------------------------------------------------------


def tilted_plane():
    a, b, z0 = 0.6, -0.3, 3.0  # z = z0 + a x + b y
    v, f = grid_plane(3, 1.2, lambda x, y: z0 + a * x + b * y)
    return v[None], f, (a, b, z0)


def test_depth_of_tilted_plane_is_analytic():
    v, f, (a, b, z0) = tilted_plane()
    W, H = 40, 30
    K = torch.tensor([[35.0, 2.0, 19.0], [0.0, 33.0, 14.5], [0.0, 0.0, 1.0]])  # with skew
    frag = rasterize(v, f, K, (W, H))
    m = frag.mask[0]
    assert m.float().mean() > 0.5
    rows, cols = torch.meshgrid(torch.arange(H).double(), torch.arange(W).double(), indexing="ij")
    Kd = K.double()
    yn = (rows - Kd[1, 2]) / Kd[1, 1]
    xn = (cols - Kd[0, 2] - Kd[0, 1] * yn) / Kd[0, 0]
    z = z0 / (1 - a * xn - b * yn)
    assert torch.allclose(frag.depth[0][m].double(), z[m], rtol=2e-6, atol=0)


def test_interpolated_positions_project_to_pixel_centres():
    v, f, _ = tilted_plane()
    W, H = 40, 30
    K = K_of(35.0, 19.0, 14.5)
    frag = rasterize(v, f, K, (W, H))
    p = interpolate(frag, f, v)[0].double()
    m = frag.mask[0]
    u = K[0, 0] * p[..., 0] / p[..., 2] + K[0, 2]
    vv = K[1, 1] * p[..., 1] / p[..., 2] + K[1, 2]
    rows, cols = torch.meshgrid(torch.arange(H).double(), torch.arange(W).double(), indexing="ij")
    assert (u - cols)[m].abs().max() < 1e-4
    assert (vv - rows)[m].abs().max() < 1e-4
    # and the points lie on the plane, at the rendered depth
    assert torch.allclose(p[..., 2][m], frag.depth[0][m].double(), rtol=1e-6)
    assert torch.all(interpolate(frag, f, v)[0][~m] == 0)


def test_interpolate_shared_attributes_and_barycentrics_sum_to_one():
    v, f, _ = tilted_plane()
    frag = rasterize(v, f, K_of(35.0, 19.0, 14.5), (40, 30))
    ones = interpolate(frag, f, torch.ones(v.shape[1], 1))
    assert torch.allclose(ones[0, ..., 0][frag.mask[0]], torch.ones(()), atol=1e-6)
    attr = torch.randn(1, v.shape[1], 4, requires_grad=True)
    out = interpolate(frag, f, attr)
    out.sum().backward()
    assert attr.grad is not None and attr.grad.abs().sum() > 0


# --------------------------------------------------------------------------------------
# optical flow
# --------------------------------------------------------------------------------------


def test_flow_of_translated_plane():
    z, dx = 2.5, 0.05
    v, f = grid_plane(4, 1.0, lambda x, y: z + 0 * x)
    K = K_of(40.0, 20.0, 15.0)
    frag = rasterize(v[None], f, K, (41, 31))
    v2 = v + torch.tensor([dx, 0.0, 0.0])
    flow, valid = optical_flow(frag, f, v2[None], K)
    assert torch.equal(valid, frag.mask)
    assert valid.float().mean() > 0.5
    assert torch.allclose(flow[valid][:, 0], torch.tensor(40.0 * dx / z), atol=1e-4)
    assert flow[valid][:, 1].abs().max() < 1e-4
    assert torch.all(flow[~valid] == 0)
    # differentiable with respect to the next-frame vertices, with finite gradients
    v2g = v2[None].clone().requires_grad_(True)
    flow_g, _ = optical_flow(frag, f, v2g, K)
    flow_g.sum().backward()
    assert torch.isfinite(v2g.grad).all() and v2g.grad.abs().sum() > 0


def test_flow_of_rotating_square_is_analytic():
    z, theta = 3.0, math.radians(7.0)
    v, f = grid_plane(3, 0.8, lambda x, y: z + 0 * x)
    fpx, c = 30.0, 15.0
    K = K_of(fpx, c, c)
    frag = rasterize(v[None], f, K, (31, 31))
    R = torch.tensor(
        [
            [math.cos(theta), -math.sin(theta), 0.0],
            [math.sin(theta), math.cos(theta), 0.0],
            [0.0, 0.0, 1.0],
        ]
    )
    v2 = v @ R.T
    flow, valid = optical_flow(frag, f, v2[None], K)
    rows, cols = torch.meshgrid(torch.arange(31.0), torch.arange(31.0), indexing="ij")
    du, dv = cols - c, rows - c
    exp_u = math.cos(theta) * du - math.sin(theta) * dv - du
    exp_v = math.sin(theta) * du + math.cos(theta) * dv - dv
    m = valid[0]
    assert m.sum() == 17 * 17  # |x|, |y| <= 0.8 m at 3 m -> 8 px around the centre
    assert torch.allclose(flow[0, ..., 0][m], exp_u[m], atol=1e-4)
    assert torch.allclose(flow[0, ..., 1][m], exp_v[m], atol=1e-4)


def test_flow_invalid_when_next_point_is_behind_camera():
    v, f = grid_plane(1, 1.0, lambda x, y: 2.0 + 0 * x)
    K = K_of(10.0, 5.0, 5.0)
    frag = rasterize(v[None], f, K, (11, 11))
    flow, valid = optical_flow(frag, f, (v - torch.tensor([0.0, 0.0, 3.0]))[None], K)
    assert frag.mask.any() and not valid.any() and torch.all(flow == 0)


# --------------------------------------------------------------------------------------
# visibility
# --------------------------------------------------------------------------------------


def test_point_visibility():
    v, f = grid_plane(1, 0.5, lambda x, y: 2.0 + 0 * x)  # plane x, y in [-0.5, 0.5] at z = 2
    K = K_of(20.0, 10.0, 10.0)
    frag = rasterize(v[None], f, K, (21, 21))
    pts = torch.tensor(
        [
            [0.1, 0.1, 3.0],  # behind the plane: hidden
            [0.1, 0.1, 1.0],  # in front: visible
            [0.1, 0.1, 2.01],  # just behind, within the 2 cm tolerance: visible
            [1.5, 0.0, 3.0],  # beside the plane (empty pixel), in the image: visible
            [5.0, 0.0, 2.0],  # projects outside the image: not visible
            [0.0, 0.0, -1.0],  # behind the camera: not visible
            [0.0, 0.0, 2.0],  # on the surface: visible
        ]
    )[None]
    vis = point_visibility(pts, frag, K)
    assert vis.tolist() == [[False, True, True, True, False, False, True]]
    # a joint inside a body needs a tolerance about the limb radius
    assert point_visibility(pts[:, :1], frag, K, tolerance=1.5).tolist() == [[True]]
    # edge of the image: u = -0.49 rounds into column 0, u = -0.51 is outside
    edge = torch.tensor(
        [[[(-0.49 - 10.0) / 20.0 * 4.0, 0.0, 4.0], [(-0.51 - 10.0) / 20.0 * 4.0, 0.0, 4.0]]]
    )
    assert point_visibility(edge, frag, K).tolist() == [[True, False]]


# --------------------------------------------------------------------------------------
# chunking and batching
# --------------------------------------------------------------------------------------


def test_chunking_gives_identical_fragments():
    v, f = uv_sphere(10, 14, radius=1.0, center=(0.1, 0.0, 3.0))
    big_v = screen_tri([(-5, -5), (60, -3), (-4, 50)], z=4.0)[0]  # big triangle behind
    verts = torch.cat([v, big_v])[None]
    faces = torch.cat([f, torch.tensor([[0, 1, 2]]) + v.shape[0]])
    K = K_of(25.0, 14.5, 12.0)
    ref = rasterize(verts, faces, K, (30, 24))
    assert ref.mask.float().mean() > 0.5
    for mc in (2, 37, 997):
        assert_same_fragments(rasterize(verts, faces, K, (30, 24), max_candidates=mc), ref)


def test_batch_equals_separate_renders():
    va, fa = uv_sphere(10, 14, radius=1.0, center=(0.3, 0.0, 4.0))
    vb = va * torch.tensor([0.7, 1.2, 0.9]) + torch.tensor([-0.5, 0.2, 1.0])
    Ka, Kb = K_of(20.0, 11.5, 9.5), K_of(26.0, 10.0, 12.0)
    both = rasterize(torch.stack([va, vb]), fa, torch.stack([Ka, Kb]), (24, 20))
    a = rasterize(va[None], fa, Ka, (24, 20))
    b = rasterize(vb[None], fa, Kb, (24, 20))
    assert not torch.equal(a.face_index, b.face_index)
    for i, single in enumerate((a, b)):
        assert_same_fragments(
            Fragments(both.face_index[i : i + 1], both.bary[i : i + 1], both.depth[i : i + 1]),
            single,
        )
    # a shared K broadcasts
    shared = rasterize(torch.stack([va, va]), fa, Ka, (24, 20))
    assert torch.equal(shared.face_index[1:], a.face_index)


def test_depth_ties_go_to_the_lowest_face_index_whatever_the_chunking():
    tri = screen_tri([(0.5, 0.5), (9.5, 0.5), (0.5, 7.5)], z=2.0)
    v = torch.cat([tri, tri], 1)  # the same triangle twice, with its own vertices
    for faces, expected in [([[3, 4, 5], [0, 1, 2], [0, 2, 1]], 0), ([[0, 2, 1], [3, 5, 4]], 0)]:
        for mc in (1, 5, 1_000_000):
            frag = rasterize(v, torch.tensor(faces), EYE, (10, 8), max_candidates=mc)
            assert frag.mask.sum() > 20
            assert torch.all(frag.face_index[frag.mask] == expected)


def test_flipped_crop_intrinsics_mirror_the_image():
    v, f = uv_sphere(10, 14, radius=0.5, center=(0.31, -0.17, 3.0))
    W, H = 23, 17
    K = K_of(20.0, 10.3, 8.1)
    Kf = torch.tensor([[-20.0, 0.0, W - 1 - 10.3], [0.0, 20.0, 8.1], [0.0, 0.0, 1.0]])
    a = rasterize(np.asarray(v[None], dtype=np.float64), f.numpy(), K.numpy(), (W, H))
    b = rasterize(v[None], f, Kf, (W, H))
    assert a.mask.sum() > 30
    assert torch.equal(a.mask, b.mask.flip(2))
    assert torch.allclose(a.depth[a.mask], b.depth.flip(2)[a.mask], rtol=1e-5)


def naive_raster(uv, z, faces, W, H):
    """Reference: loop over faces, float64, inside test with edge functions."""
    depth = np.full((H, W), np.inf)
    rows, cols = np.meshgrid(
        np.arange(H, dtype=np.float64), np.arange(W, dtype=np.float64), indexing="ij"
    )
    margin = np.full((H, W), np.inf)  # distance (px) of the pixel centre to the nearest edge
    for tri in faces:
        p = uv[tri]
        zz = z[tri]
        e = []
        for i in range(3):
            a, b = p[(i + 1) % 3], p[(i + 2) % 3]
            ei = (a[0] - cols) * (b[1] - rows) - (a[1] - rows) * (b[0] - cols)
            e.append(ei)
            margin = np.minimum(margin, np.abs(ei) / max(np.hypot(*(b - a)), 1e-12))
        e = np.stack(e)
        area = e.sum(0)
        inside = np.all(e * np.sign(area) >= 0, axis=0) & (area != 0)
        inv = (e / area / zz[:, None, None]).sum(0)
        with np.errstate(divide="ignore"):
            d = np.where(inside, 1.0 / inv, np.inf)
        depth = np.minimum(depth, d)
    return depth, margin


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 12))
def test_matches_naive_reference(seed, n):
    rng = np.random.default_rng(seed)
    W, H = 13, 11
    uv = rng.uniform(-3, 15, size=(3 * n, 2))
    z = rng.uniform(1.0, 5.0, size=3 * n)
    faces = np.arange(3 * n).reshape(n, 3)
    verts = torch.tensor(np.concatenate([uv * z[:, None], z[:, None]], 1), dtype=torch.float32)[
        None
    ]
    frag = rasterize(verts, torch.tensor(faces), EYE, (W, H))
    uv32 = (verts[0, :, :2] / verts[0, :, 2:]).double().numpy()  # what the rasteriser sees
    ref, margin = naive_raster(uv32, verts[0, :, 2].double().numpy(), faces, W, H)
    got = frag.depth[0].double().numpy()
    clear = margin > 1e-3  # away from every edge the answer is unambiguous
    np.testing.assert_array_equal(np.isinf(got)[clear], np.isinf(ref)[clear])
    fin = clear & np.isfinite(ref)
    np.testing.assert_allclose(got[fin], ref[fin], rtol=1e-5)


# --------------------------------------------------------------------------------------
# normals, shading, compositing, downsampling
# --------------------------------------------------------------------------------------


def test_face_and_vertex_normals():
    v = torch.tensor([[[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 3.0, 0.0]]])
    n = face_normals(v, torch.tensor([[0, 1, 2]]))
    assert torch.allclose(n, torch.tensor([[[0.0, 0.0, 1.0]]]))
    sv, sf = uv_sphere(16, 24, radius=2.0, center=(0.0, 0.0, 0.0))
    vn = vertex_normals(sv[None], sf)
    assert torch.allclose(vn.norm(dim=-1), torch.ones(()), atol=1e-5)
    assert ((vn[0] * sv / 2.0).sum(-1) > 0.995).all()  # outward, nearly radial
    fn = face_normals(sv[None], sf)
    assert ((fn[0] * sv[sf].mean(1)).sum(-1) > 0).all()


def test_shade_lambert_two_sided_and_background():
    v, f = grid_plane(2, 0.5, lambda x, y: 2.0 + 0 * x)
    K = K_of(20.0, 10.0, 10.0)
    frag = rasterize(v[None], f, K, (21, 21))
    albedo = torch.full((1, 21, 21, 3), 0.5)
    m = frag.mask[0]
    towards_camera = torch.tensor([0.0, 0.0, -1.0])
    for faces in (f, f[:, [0, 2, 1]]):  # either winding shades the same (two-sided)
        img = shade_lambert(frag, faces, v[None], albedo, light_dir=towards_camera)
        assert torch.allclose(img[0][m], torch.full((int(m.sum()), 3), 0.5), atol=1e-5)
        assert torch.all(img[0][~m] == 0)
    side = shade_lambert(frag, f, v[None], albedo, light_dir=torch.tensor([[0.0, 0.0, 1.0]]))
    assert torch.allclose(side[0][m], torch.full((int(m.sum()), 3), 0.5 * 0.4), atol=1e-5)
    tilted = shade_lambert(
        frag, f, v[None], albedo, light_dir=(1.0, 0.0, -1.0), ambient=0.2, diffuse=0.5
    )
    assert torch.allclose(
        tilted[0][m], torch.full((int(m.sum()), 3), 0.5 * (0.2 + 0.5 / math.sqrt(2))), atol=1e-5
    )


def test_composite_and_downsample():
    fg = torch.rand(2, 4, 6, 3)
    bg = torch.rand(4, 6, 3)
    mask = torch.rand(2, 4, 6) > 0.5
    out = composite(fg, mask, bg)
    assert torch.equal(out[mask], fg[mask])
    assert torch.equal(out[~mask], bg.expand(2, 4, 6, 3)[~mask])
    half = composite(fg, torch.full((2, 4, 6), 0.5), bg[None].expand(2, 4, 6, 3))
    assert torch.allclose(half, (fg + bg) / 2)
    assert torch.equal(downsample(fg, 1), fg)
    d = downsample(fg, 2)
    assert d.shape == (2, 2, 3, 3)
    assert torch.allclose(d[1, 1, 2], fg[1, 2:4, 4:6].mean(dim=(0, 1)))


def test_supersampled_render_downsamples_to_coverage():
    # a square whose edges lie on pixel boundaries: 4x supersampled coverage is exactly 1 inside
    v, f = grid_plane(1, 0.5, lambda x, y: 2.0 + 0 * x)
    K = K_of(16.0, 7.5, 7.5)  # x = +-0.5 at z = 2 -> u in [3.5, 11.5]: 8 whole pixels
    s = 4
    S = torch.tensor([[s, 0.0, (s - 1) / 2], [0.0, s, (s - 1) / 2], [0.0, 0.0, 1.0]])
    hi = rasterize(v[None], f, S @ K, (16 * s, 16 * s))
    cov = downsample(hi.mask[..., None].float(), s)[0, ..., 0]
    expected = torch.zeros(16, 16)
    expected[4:12, 4:12] = 1.0
    assert torch.allclose(cov, expected)


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------


def test_errors_on_bad_input():
    v = screen_tri([(1, 1), (6, 1), (1, 4)])
    f = torch.tensor([[0, 1, 2]])
    with pytest.raises(ValueError, match="vertices"):
        rasterize(v[0], f, EYE, (8, 6))
    nan_v = v.clone()
    nan_v[0, 1, 0] = float("nan")
    with pytest.raises(ValueError, match="vertices.*NaN"):
        rasterize(nan_v, f, EYE, (8, 6))
    with pytest.raises(ValueError, match="faces.*\\[0, 2\\]"):
        rasterize(v, torch.tensor([[0, 1, 3]]), EYE, (8, 6))
    with pytest.raises(ValueError, match="faces"):
        rasterize(v, torch.tensor([[0, -1, 2]]), EYE, (8, 6))
    with pytest.raises(TypeError, match="faces"):
        rasterize(v, f.float(), EYE, (8, 6))
    with pytest.raises(ValueError, match="faces"):
        rasterize(v, torch.tensor([0, 1, 2]), EYE, (8, 6))
    with pytest.raises(ValueError, match="image_size"):
        rasterize(v, f, EYE, (0, 6))
    with pytest.raises(ValueError, match="image_size"):
        rasterize(v, f, EYE, (8, -2))
    bad_K = EYE.clone()
    bad_K[2, 0] = 0.5
    with pytest.raises(ValueError, match="K.*last row"):
        rasterize(v, f, bad_K, (8, 6))
    with pytest.raises(ValueError, match="K"):
        rasterize(v, f, torch.eye(3)[None].expand(2, 3, 3), (8, 6))  # B = 1, not 2
    with pytest.raises(ValueError, match="near"):
        rasterize(v, f, EYE, (8, 6), near=0.0)
    with pytest.raises(ValueError, match="max_candidates"):
        rasterize(v, f, EYE, (8, 6), max_candidates=0)
    frag = rasterize(v, f, EYE, (8, 6))
    with pytest.raises(TypeError, match="fragments"):
        interpolate(frag.depth, f, v)
    with pytest.raises(ValueError, match="attributes"):
        interpolate(frag, f, torch.zeros(2, 3, 1))
    with pytest.raises(ValueError, match="K_next.*last row"):
        optical_flow(frag, f, v, bad_K)
    with pytest.raises(ValueError, match="points"):
        point_visibility(torch.zeros(1, 3), frag, EYE)
    with pytest.raises(ValueError, match="albedo"):
        shade_lambert(frag, f, v, torch.full((1, 6, 8, 3), 2.0))
    with pytest.raises(ValueError, match="light_dir"):
        shade_lambert(frag, f, v, torch.zeros(1, 6, 8, 3), light_dir=(0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="background"):
        composite(torch.zeros(1, 6, 8, 3), frag.mask, torch.zeros(5, 8, 3))
    with pytest.raises(ValueError, match="factor"):
        downsample(torch.zeros(1, 6, 8, 3), 4)
    with pytest.raises(ValueError, match="factor"):
        downsample(torch.zeros(1, 6, 8, 3), 0)
