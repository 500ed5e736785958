"""Tests for labcore.geometry: rotations, cameras, image affines, Procrustes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from labcore import geometry as G

FAST = settings(max_examples=40, deadline=None)


def _axis(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


axes = (
    st.tuples(*[st.floats(-1, 1) for _ in range(3)])
    .filter(lambda v: np.linalg.norm(v) > 0.1)
    .map(_axis)
)
angles = st.floats(1e-4, math.pi - 1e-4)
axis_angles = st.builds(lambda a, t: torch.from_numpy(a * t), axes, angles)
six = st.lists(st.floats(-2, 2), min_size=6, max_size=6).map(
    lambda v: torch.tensor(v, dtype=torch.float64)
).filter(
    lambda x: bool(x[0:3].norm() > 0.1 and x[0::2].norm() > 0.1
                   and torch.linalg.cross(x[0:3], x[3:6]).norm() > 0.1
                   and torch.linalg.cross(x[0::2], x[1::2]).norm() > 0.1)
)  # fmt: skip


def assert_rotation(R, atol=1e-6):
    eye = torch.eye(3, dtype=R.dtype).expand_as(R)
    torch.testing.assert_close(R @ R.transpose(-1, -2), eye, atol=atol, rtol=0)
    torch.testing.assert_close(
        torch.det(R), torch.ones(R.shape[:-2], dtype=R.dtype), atol=atol, rtol=0
    )


# --------------------------------------------------------------------------- rotations


def test_axis_angle_to_matrix_hand_case_and_scipy():
    R = G.axis_angle_to_matrix([0.0, 0.0, math.pi / 2])
    torch.testing.assert_close(R @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]))
    aa = torch.randn(4, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    R = G.axis_angle_to_matrix(aa)
    assert R.shape == (4, 5, 3, 3) and R.dtype == torch.float64
    ref = Rotation.from_rotvec(aa.reshape(-1, 3).numpy()).as_matrix().reshape(4, 5, 3, 3)
    np.testing.assert_allclose(R.numpy(), ref, atol=1e-12)


@FAST
@given(axis_angles)
def test_axis_angle_matrix_round_trip(aa):
    R = G.axis_angle_to_matrix(aa)
    assert_rotation(R, atol=1e-12)
    torch.testing.assert_close(G.matrix_to_axis_angle(R), aa, atol=1e-9, rtol=0)


@FAST
@given(axis_angles)
def test_quaternion_round_trips(aa):
    q = G.axis_angle_to_quaternion(aa)
    torch.testing.assert_close(q.norm(), torch.tensor(1.0, dtype=q.dtype))
    torch.testing.assert_close(G.quaternion_to_axis_angle(q), aa, atol=1e-9, rtol=0)
    R = G.quaternion_to_matrix(q)
    torch.testing.assert_close(R, G.axis_angle_to_matrix(aa), atol=1e-12, rtol=0)
    torch.testing.assert_close(G.matrix_to_quaternion(R), q, atol=1e-9, rtol=0)  # angle < π ⇒ w > 0


@FAST
@given(axis_angles, st.sampled_from(["eventhpe", "spin"]))
def test_rot6d_round_trip(aa, layout):
    R = G.axis_angle_to_matrix(aa)
    x = G.matrix_to_rot6d(R, layout=layout)
    assert x.shape == (6,)
    torch.testing.assert_close(G.rot6d_to_matrix(x, layout=layout), R, atol=1e-12, rtol=0)


@FAST
@given(six)
def test_rot6d_layouts_differ_and_are_rotations(x):
    Re = G.rot6d_to_matrix(x, layout="eventhpe")
    Rs = G.rot6d_to_matrix(x, layout="spin")
    assert_rotation(Re, 1e-12)
    assert_rotation(Rs, 1e-12)
    # first column is the normalised first 3-vector of each slicing
    torch.testing.assert_close(Re[:, 0], x[0:3] / x[0:3].norm())
    torch.testing.assert_close(Rs[:, 0], x[0::2] / x[0::2].norm())
    # second column lies in the plane of a1 and a2 (Gram–Schmidt)
    torch.testing.assert_close(
        Re[:, 1] @ torch.linalg.cross(x[0:3], x[3:6]),
        torch.tensor(0.0, dtype=x.dtype),
        atol=1e-12,
        rtol=0,
    )


def test_rot6d_same_numbers_give_different_matrices_and_slicing():
    x = torch.tensor([1.0, 0.3, 0.2, 1.0, -0.1, 0.4], dtype=torch.float64)
    assert not torch.allclose(G.rot6d_to_matrix(x), G.rot6d_to_matrix(x, layout="spin"))
    R = G.axis_angle_to_matrix(torch.tensor([0.3, -0.7, 1.1], dtype=torch.float64))
    torch.testing.assert_close(G.matrix_to_rot6d(R), torch.cat([R[:, 0], R[:, 1]]))
    torch.testing.assert_close(
        G.matrix_to_rot6d(R, "spin"),
        torch.stack([R[0, 0], R[0, 1], R[1, 0], R[1, 1], R[2, 0], R[2, 1]]),
    )
    # the identity from its two first columns, each layout
    torch.testing.assert_close(G.rot6d_to_matrix([1.0, 0, 0, 0, 1, 0]), torch.eye(3))
    torch.testing.assert_close(G.rot6d_to_matrix([1.0, 0, 0, 1, 0, 0], layout="spin"), torch.eye(3))


def test_near_zero_and_near_pi():
    for t in (0.0, 1e-12, 1e-7, 1e-4):
        aa = torch.tensor([t, 0.0, 0.0], dtype=torch.float64)
        R = G.axis_angle_to_matrix(aa)
        torch.testing.assert_close(
            R, torch.from_numpy(Rotation.from_rotvec(aa.numpy()).as_matrix()), atol=1e-15, rtol=0
        )
        torch.testing.assert_close(G.matrix_to_axis_angle(R), aa, atol=1e-15, rtol=1e-8)
    for t in (math.pi, math.pi - 1e-9, math.pi - 1e-5):
        aa = torch.from_numpy(_axis([0.3, -0.5, 0.8]) * t)
        R = G.axis_angle_to_matrix(aa)
        back = G.matrix_to_axis_angle(R)
        assert abs(float(back.norm()) - t) < 1e-8
        torch.testing.assert_close(G.axis_angle_to_matrix(back), R, atol=1e-12, rtol=0)
    assert torch.isfinite(G.matrix_to_axis_angle(torch.diag(torch.tensor([1.0, -1.0, -1.0])))).all()


def test_gradients_finite_at_identity():
    aa = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    G.axis_angle_to_matrix(aa).sum().backward()
    assert torch.isfinite(aa.grad).all()
    R = torch.eye(3, dtype=torch.float64).repeat(2, 1, 1).requires_grad_(True)
    G.matrix_to_axis_angle(R).sum().backward()
    assert torch.isfinite(R.grad).all()
    q = torch.tensor([1.0, 0, 0, 0], dtype=torch.float64, requires_grad=True)
    G.quaternion_to_axis_angle(q).sum().backward()
    assert torch.isfinite(q.grad).all()
    aa2 = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    G.axis_angle_to_quaternion(aa2).sum().backward()
    assert torch.isfinite(aa2.grad).all()


def test_gradcheck_rotations():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 6, dtype=torch.float64, generator=g, requires_grad=True)
    for layout in ("eventhpe", "spin"):
        assert torch.autograd.gradcheck(lambda v, lay=layout: G.rot6d_to_matrix(v, lay), (x,))
    aa = torch.randn(3, 3, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(G.axis_angle_to_matrix, (aa,))
    assert torch.autograd.gradcheck(
        lambda a: G.matrix_to_axis_angle(G.axis_angle_to_matrix(a)), (aa,)
    )


def test_quaternion_order_is_wxyz():
    q = G.axis_angle_to_quaternion([0.0, 0.0, math.pi / 2])
    s = math.sqrt(0.5)
    torch.testing.assert_close(q, torch.tensor([s, 0.0, 0.0, s]))
    aa = np.array([0.2, -0.4, 0.9])
    xyzw = Rotation.from_rotvec(aa).as_quat()
    torch.testing.assert_close(
        G.matrix_to_quaternion(Rotation.from_rotvec(aa).as_matrix()),
        torch.from_numpy(np.r_[xyzw[3], xyzw[:3]]),
    )
    # q and -q are the same rotation; zero quaternion is refused
    torch.testing.assert_close(G.quaternion_to_matrix(-q), G.quaternion_to_matrix(q))
    with pytest.raises(ValueError, match="q"):
        G.quaternion_to_matrix([0.0, 0, 0, 0])


def test_slerp_endpoints_speed_and_shortest_path():
    a0 = torch.tensor([0.1, 0.2, -0.3], dtype=torch.float64)
    a1 = torch.tensor([-0.5, 0.9, 0.4], dtype=torch.float64)
    q0, q1 = G.axis_angle_to_quaternion(a0), G.axis_angle_to_quaternion(a1)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    qs = G.quaternion_slerp(q0, q1, t)
    assert qs.shape == (11, 4)
    torch.testing.assert_close(qs[0], q0)
    torch.testing.assert_close(qs[-1], q1)
    R0 = G.quaternion_to_matrix(q0)
    total = G.geodesic_angle(R0, G.quaternion_to_matrix(q1), eps=0.0)
    ang = G.geodesic_angle(G.quaternion_to_matrix(qs[1:]), R0, eps=0.0)
    torch.testing.assert_close(ang, t[1:] * total, atol=1e-7, rtol=0)
    # -q1 is the same rotation: the same path
    torch.testing.assert_close(G.quaternion_slerp(q0, -q1, 0.3), G.quaternion_slerp(q0, q1, 0.3))
    # axis-angle wrapper: same axis ⇒ angles interpolate linearly
    ax = torch.from_numpy(_axis([1.0, 2.0, -1.0]))
    mid = G.slerp_axis_angle(0.4 * ax, 1.6 * ax, 0.25)
    torch.testing.assert_close(mid, 0.7 * ax)
    # batched poses (24 joints) with a per-frame t
    poses = G.slerp_axis_angle(a0.expand(24, 3), a1.expand(24, 3), torch.tensor([[0.0], [1.0]]))
    assert poses.shape == (2, 24, 3)
    torch.testing.assert_close(poses[1, 5], a1)
    # nearly equal inputs: no NaN
    assert torch.isfinite(G.quaternion_slerp(q0, q0, 0.5)).all()


def test_geodesic_angle():
    R1 = G.axis_angle_to_matrix(torch.tensor([0.2, 0.1, 0.0], dtype=torch.float64))
    R2 = R1 @ G.axis_angle_to_matrix(torch.tensor([0.0, 0.0, 0.7], dtype=torch.float64))
    assert abs(float(G.geodesic_angle(R1, R2, eps=0.0)) - 0.7) < 1e-12
    assert abs(float(G.geodesic_angle(R1, R2)) - 0.7) < 1e-12
    same = G.geodesic_angle(R1, R1)  # clamped like EventHPE's loss
    assert abs(float(same) - math.acos(1 - 1e-6)) < 1e-9
    Rg = R1.clone().requires_grad_(True)
    G.geodesic_angle(Rg, R1).backward()
    assert torch.isfinite(Rg.grad).all()


# --------------------------------------------------------------------------- cameras


def test_camera_and_projection_hand_case():
    K = G.camera_matrix(500.0, 400.0, 320.0, 240.0)
    assert K.dtype == torch.float32 and K.shape == (3, 3)
    uv = G.project_points([[100.0, -50.0, 1000.0], [0.0, 0.0, 2.0]], K)
    torch.testing.assert_close(uv, torch.tensor([[370.0, 220.0], [320.0, 240.0]]))
    # z <= 0: +inf, no NaN, no error; gradient finite
    p = torch.tensor([[1.0, 2.0, 0.0], [1.0, 2.0, -3.0], [1.0, 2.0, 4.0]], requires_grad=True)
    uv = G.project_points(p, K)
    assert torch.isinf(uv[:2]).all() and torch.isfinite(uv[2]).all()
    uv[2].sum().backward()
    assert torch.isfinite(p.grad).all()
    # batched K
    Ks = torch.stack([K, G.camera_matrix(100.0, 100.0, 0.0, 0.0)])
    out = G.project_points(torch.tensor([[[1.0, 1.0, 1.0]]]).expand(2, 1, 3), Ks)
    torch.testing.assert_close(out[:, 0], torch.tensor([[820.0, 640.0], [100.0, 100.0]]))


def test_crop_camera_equals_affine_of_projection():
    K = G.camera_matrix(500.0, 500.0, 320.0, 240.0).double()
    A = G.box_to_affine(np.array([300.0, 250.0]), [200.0, 200.0], (64, 64), rotation=20.0)
    assert A.dtype == torch.float64  # lists follow the array's dtype
    pts = torch.tensor([[10.0, -30.0, 900.0], [-50.0, 20.0, 1200.0]], dtype=torch.float64)
    direct = G.project_points(pts, G.affine_to_3x3(A) @ K)
    torch.testing.assert_close(direct, G.apply_affine(G.project_points(pts, K), A))


def test_look_at_puts_target_on_axis():
    eye = torch.tensor([1.0, -2.0, -3.0], dtype=torch.float64)
    target = torch.tensor([0.5, 0.0, 2.0], dtype=torch.float64)
    R, t = G.look_at(eye, target)
    assert_rotation(R, 1e-12)
    p = G.transform_points(target[None], R, t)[0]
    torch.testing.assert_close(
        p, torch.tensor([0.0, 0.0, float((target - eye).norm())], dtype=torch.float64)
    )
    torch.testing.assert_close(
        G.transform_points(eye[None], R, t)[0], torch.zeros(3, dtype=torch.float64)
    )
    # a point "up" (world -y) from the target appears above it in the image (smaller v)
    K = G.camera_matrix(100.0, 100.0, 50.0, 50.0).double()
    above = G.transform_points(
        (target + torch.tensor([0.0, -0.1, 0.0], dtype=torch.float64))[None], R, t
    )
    assert float(G.project_points(above, K)[0, 1]) < 50.0
    # looking along +z from the origin with the default up is the identity
    R0, t0 = G.look_at([0.0, 0, 0], [0.0, 0, 5])
    torch.testing.assert_close(R0, torch.eye(3))
    with pytest.raises(ValueError, match="up"):
        G.look_at([0.0, 0, 0], [0.0, 3.0, 0])
    with pytest.raises(ValueError, match="target"):
        G.look_at([1.0, 1, 1], [1.0, 1, 1])


def test_transform_points_hand_case():
    R = G.axis_angle_to_matrix([0.0, 0.0, math.pi / 2])
    out = G.transform_points([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]], R, [1.0, 2.0, 3.0])
    torch.testing.assert_close(
        out, torch.tensor([[1.0, 3.0, 3.0], [1.0, 2.0, 5.0]]), atol=1e-6, rtol=0
    )


# --------------------------------------------------------------------------- affines


def test_box_to_affine_maps_box_edges_to_output_edges():
    W, H = 48, 64
    c, s = torch.tensor([100.0, 80.0]), torch.tensor([30.0, 40.0])
    A = G.box_to_affine(c, s, (W, H))
    corners = torch.tensor([[85.0, 60.0], [115.0, 100.0], [100.0, 80.0]])
    out = G.apply_affine(corners, A)
    torch.testing.assert_close(
        out, torch.tensor([[-0.5, -0.5], [W - 0.5, H - 0.5], [(W - 1) / 2, (H - 1) / 2]])
    )
    torch.testing.assert_close(A[0, 0], torch.tensor(W / 30.0))


def test_box_to_affine_rotation_is_counter_clockwise():
    # box turned 90° counter-clockwise in the image: its "right" edge is now on top
    A = G.box_to_affine([50.0, 40.0], [20.0, 10.0], (40, 20), rotation=90.0)
    out = G.apply_affine(torch.tensor([[50.0, 30.0], [50.0, 40.0]]), A)
    torch.testing.assert_close(out, torch.tensor([[39.5, 9.5], [19.5, 9.5]]), atol=1e-5, rtol=0)
    # rotated corners land on output corners, batched rotation
    rots = torch.tensor([0.0, 30.0, -75.0], dtype=torch.float64)
    c = torch.tensor([10.0, 20.0], dtype=torch.float64)
    As = G.box_to_affine(c, torch.tensor([8.0, 6.0], dtype=torch.float64), (16, 12), rotation=rots)
    assert As.shape == (3, 2, 3)
    for i, r in enumerate(rots.tolist()):
        th = math.radians(r)
        Rb = torch.tensor(
            [[math.cos(th), math.sin(th)], [-math.sin(th), math.cos(th)]], dtype=torch.float64
        )
        corner = c + Rb @ torch.tensor([-4.0, -3.0], dtype=torch.float64)
        torch.testing.assert_close(
            G.apply_affine(corner[None], As[i])[0], torch.tensor([-0.5, -0.5], dtype=torch.float64)
        )


def test_invert_and_compose_identities():
    g = torch.Generator().manual_seed(3)
    A1 = G.box_to_affine(
        torch.rand(5, 2, generator=g) * 100,
        torch.rand(5, 2, generator=g) * 50 + 5,
        (32, 32),
        torch.rand(5, generator=g) * 360,
    )
    A2 = G.box_to_affine([16.0, 16.0], [20.0, 24.0], (64, 48), 15.0)
    pts = torch.rand(5, 7, 2, generator=g) * 100
    eye = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    torch.testing.assert_close(
        compose := G.compose_affine(G.invert_affine(A1), A1),
        eye.expand_as(compose),
        atol=1e-5,
        rtol=0,
    )
    torch.testing.assert_close(
        G.apply_affine(G.apply_affine(pts, A1), G.invert_affine(A1)), pts, atol=1e-3, rtol=0
    )
    torch.testing.assert_close(
        G.apply_affine(pts, G.compose_affine(A2, A1)),
        G.apply_affine(G.apply_affine(pts, A1), A2),
        atol=1e-3,
        rtol=0,
    )
    A3 = G.affine_to_3x3(A1)
    torch.testing.assert_close(A3[..., 2, :], torch.tensor([0.0, 0, 1]).expand(5, 3))
    with pytest.raises(ValueError, match="singular"):
        G.invert_affine([[1.0, 2.0, 0.0], [2.0, 4.0, 1.0]])


# --------------------------------------------------------------------------- Procrustes


def _points(n=12, seed=0):
    return (
        torch.randn(n, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * 100
    )


def test_similarity_transform_recovers_known_transform():
    src = _points()
    R = G.axis_angle_to_matrix(torch.tensor([0.4, -1.2, 2.0], dtype=torch.float64))
    s, t = 1.7, torch.tensor([10.0, -20.0, 300.0], dtype=torch.float64)
    tgt = s * src @ R.T + t
    s_hat, R_hat, t_hat = G.similarity_transform(src, tgt)
    assert abs(float(s_hat) - s) < 1e-10
    torch.testing.assert_close(R_hat, R)
    torch.testing.assert_close(t_hat, t)
    # batched, numpy input
    ss, RR, tt = G.similarity_transform(np.stack([src.numpy()] * 2), np.stack([tgt.numpy()] * 2))
    assert ss.shape == (2,) and RR.shape == (2, 3, 3) and tt.shape == (2, 3)


def test_similarity_transform_weights_ignore_outliers():
    src = _points()
    R = G.axis_angle_to_matrix(torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64))
    tgt = 0.5 * src @ R.T + 4.0
    tgt[0] += 1000.0  # an outlier with zero weight
    w = torch.ones(12, dtype=torch.float64)
    w[0] = 0.0
    s, Rh, t = G.similarity_transform(src, tgt, weights=w)
    assert abs(float(s) - 0.5) < 1e-10
    torch.testing.assert_close(Rh, R)
    s2, _, _ = G.similarity_transform(src, tgt, weights=w.bool())
    assert abs(float(s2) - 0.5) < 1e-10
    with pytest.raises(ValueError, match="weights"):
        G.similarity_transform(src, tgt, weights=torch.zeros(12))
    with pytest.raises(ValueError, match="weights"):
        G.similarity_transform(src, tgt, weights=-w)


def test_similarity_transform_reflection_gives_proper_rotation():
    src = _points()
    tgt = src * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)  # a mirror image
    s, R, t = G.similarity_transform(src, tgt)
    assert_rotation(R, 1e-10)
    assert float(s) > 0


def test_procrustes_directions():
    g = _points(17, seed=1)
    R = G.axis_angle_to_matrix(torch.tensor([0.3, 0.0, -0.2], dtype=torch.float64))
    p_exact = 2.0 * g @ R.T + 5.0
    torch.testing.assert_close(G.procrustes_align(p_exact, g), g)
    torch.testing.assert_close(G.procrustes_align(p_exact, g, direction="gt_to_pred"), p_exact)
    p = (
        p_exact
        + torch.randn(17, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 20
    )
    e_fwd = (G.procrustes_align(p, g) - g).norm(dim=-1).mean()
    e_bwd = (G.procrustes_align(p, g, direction="gt_to_pred") - p).norm(dim=-1).mean()
    assert abs(float(e_fwd - e_bwd)) > 1e-3  # with scale the two errors differ
    # gt_to_pred is pred_to_gt with the roles swapped
    torch.testing.assert_close(
        G.procrustes_align(p, g, direction="gt_to_pred"), G.procrustes_align(g, p)
    )
    with pytest.raises(ValueError, match="direction"):
        G.procrustes_align(p, g, direction="both")


def test_procrustes_gradients():
    g = _points(8, seed=4)
    p = (
        g + torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5)) * 10
    ).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: G.procrustes_align(x, g), (p,))
    loss = (G.procrustes_align(p, g) - g).norm(dim=-1).mean()
    loss.backward()
    assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


# --------------------------------------------------------------------------- errors


def test_clear_errors_on_bad_input():
    with pytest.raises(ValueError, match=r"aa: expected shape"):
        G.axis_angle_to_matrix(torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"aa: expected finite"):
        G.axis_angle_to_matrix([float("nan"), 0.0, 0.0])
    with pytest.raises(TypeError, match="aa"):
        G.axis_angle_to_matrix(torch.zeros(3, dtype=torch.bool))
    with pytest.raises(TypeError, match="aa"):
        G.axis_angle_to_matrix("xyz")
    with pytest.raises(ValueError, match="R: expected shape"):
        G.matrix_to_axis_angle(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="layout"):
        G.rot6d_to_matrix(torch.ones(6), layout="zhou")
    with pytest.raises(ValueError, match="x"):
        G.rot6d_to_matrix([1.0, 0, 0, 2.0, 0, 0])  # a2 parallel to a1
    with pytest.raises(ValueError, match="fx"):
        G.camera_matrix(0.0, 1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="K"):
        G.project_points(torch.ones(2, 3), torch.ones(3, 3))
    with pytest.raises(ValueError, match="size"):
        G.box_to_affine([0.0, 0.0], [0.0, 10.0], (8, 8))
    with pytest.raises(TypeError, match="output_size"):
        G.box_to_affine([0.0, 0.0], [10.0, 10.0], (8.5, 8))
    with pytest.raises(ValueError, match="rotation"):
        G.box_to_affine([0.0, 0.0], [10.0, 10.0], (8, 8), rotation=float("inf"))
    with pytest.raises(ValueError, match="t"):
        G.quaternion_slerp([1.0, 0, 0, 0], [0.0, 1, 0, 0], float("nan"))
    with pytest.raises(ValueError, match="broadcast"):
        G.transform_points(torch.zeros(2, 5, 3), torch.eye(3).expand(3, 3, 3), torch.zeros(3))
    with pytest.raises(ValueError, match="target"):
        G.similarity_transform(torch.zeros(5, 3), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="coincide"):
        G.similarity_transform(torch.ones(5, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="eps"):
        G.geodesic_angle(torch.eye(3), torch.eye(3), eps=-1.0)


def test_dtype_and_device_follow_input():
    assert G.axis_angle_to_matrix(np.zeros(3)).dtype == torch.float64
    assert G.axis_angle_to_matrix(np.zeros(3, dtype=np.int64)).dtype == torch.float32
    assert G.axis_angle_to_matrix(torch.zeros(3)).dtype == torch.float32
    assert isinstance(G.matrix_to_axis_angle(np.eye(3)), torch.Tensor)
