"""Tests of labcore.methods.eventhpe (EventHPE, Zou et al. ICCV 2021; official code JimmyZou/EventHPE).

Expected values come from outside the module: images shifted by whole pixels (so the true
flow is known), flows that are linear in x and y (bilinear sampling is exact on them),
cosines and Charbonnier values written out by hand, rotations about z composed by adding
angles, and metrics on hand-made skeletons.
"""

from __future__ import annotations

import math

import pytest
import torch

from labcore.body import PartialBody, load_body_model, pose_body_matrices
from labcore.geometry import axis_angle_to_matrix, camera_matrix, project_points
from labcore.methods import eventhpe as E

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def body():
    return load_body_model("toy")


def blobs(h: int = 48, w: int = 48, shift: tuple[float, float] = (0.0, 0.0)) -> torch.Tensor:
    """(1, 1, H, W) smooth blobs in the middle, moved by ``shift`` = (dx, dy) pixels; zero
    near the border, so shifts of a few pixels lose nothing."""
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    img = torch.zeros(h, w, dtype=torch.float64)
    for cx, cy, s, a in ((20.0, 21.0, 2.5, 1.0), (27.0, 25.0, 3.0, 0.7), (23.0, 29.0, 2.0, 0.5)):
        img += a * torch.exp(-((xs - cx - shift[0]) ** 2 + (ys - cy - shift[1]) ** 2) / (2 * s * s))
    return img[None, None]


def rot_z(a: float) -> torch.Tensor:
    return axis_angle_to_matrix(torch.tensor([0.0, 0.0, a], dtype=torch.float64))


# ----------------------------------------------------------------------------- FlowNet's loss


def test_charbonnier_formula():
    x = torch.tensor([0.0, 1.0, -2.0])
    expected = sum((v * v + 1e-6) ** 0.45 for v in (0.0, 1.0, 4.0 ** 0.5)) / 3
    assert float(E.charbonnier(x)) == pytest.approx(expected, rel=1e-6)
    assert float(E.charbonnier(torch.tensor([3.0]), alpha=0.5, eps=0.0)) == pytest.approx(3.0)


def test_warp_undoes_a_whole_pixel_shift_and_zero_flow_is_identity():
    f1 = blobs()
    f2 = blobs(shift=(2.0, -1.0))  # frame 2 = frame 1 moved by (+2, −1): the forward flow
    flow = torch.zeros(1, 2, 48, 48, dtype=torch.float64)
    flow[:, 0], flow[:, 1] = 2.0, -1.0
    assert torch.allclose(E.warp(f2, flow), f1, atol=1e-7)  # (the blobs' tails at the border: < 1e-7)
    assert torch.allclose(E.warp(f1, torch.zeros_like(flow)), f1)
    # the official convention reads every pixel half a pixel up-left of where it should
    official = E.warp(f2, flow, align="official")
    assert torch.allclose(official, E.warp(f2, flow - 0.5), atol=1e-12)


def test_photometric_loss_is_smallest_at_the_true_flow():
    f1, f2 = blobs(), blobs(shift=(2.0, 1.0))
    candidates = [(dx / 4, dy / 4) for dx in range(0, 13) for dy in range(-4, 9)]

    def loss(dx: float, dy: float, align: str) -> float:
        flow = torch.zeros(1, 2, 48, 48, dtype=torch.float64)
        flow[:, 0], flow[:, 1] = dx, dy
        return float(E.photometric_loss(f1, f2, flow, align=align))

    best = min(candidates, key=lambda c: loss(*c, "exact"))
    assert best == (2.0, 1.0)
    assert loss(2.0, 1.0, "exact") == pytest.approx(1e-6**0.45, rel=1e-4)  # the Charbonnier floor (ε²)^α
    # the official half-pixel shift moves the minimum by half a pixel on both axes
    assert min(candidates, key=lambda c: loss(*c, "official")) == (2.5, 1.5)


def test_photometric_loss_averages_pyramid_levels_on_resized_frames():
    f1, f2 = blobs(), blobs(shift=(2.0, 0.0))
    fine = torch.zeros(1, 2, 48, 48, dtype=torch.float64)
    fine[:, 0] = 2.0
    coarse = torch.zeros(1, 2, 24, 24, dtype=torch.float64)
    coarse[:, 0] = 1.0
    down = lambda x: torch.nn.functional.interpolate(x, size=(24, 24), mode="bilinear", align_corners=False)  # noqa: E731
    expected = (E.charbonnier(f1 - E.warp(f2, fine)) + E.charbonnier(down(f1) - E.warp(down(f2), coarse))) / 2
    assert float(E.photometric_loss(f1, f2, [coarse, fine])) == pytest.approx(float(expected), rel=1e-9)


def test_smoothness_is_the_four_direction_charbonnier():
    flow = torch.zeros(1, 2, 5, 6, dtype=torch.float64)
    flow[0, 0] = torch.arange(6, dtype=torch.float64)  # flow_x = x: steps of 1 along x
    c = lambda v: (v * v + 1e-6) ** 0.45  # noqa: E731
    zero = c(0.0)
    # per direction: half the entries (channel x) see |step| 1 (or 0 vertically), channel y sees 0
    right = (c(1.0) + zero) / 2
    down = zero
    diag = (c(1.0) + zero) / 2
    anti = (c(1.0) + zero) / 2
    expected = (right + down + diag + anti) / 4
    assert float(E.smoothness_loss(flow)) == pytest.approx(expected, rel=1e-9)
    assert float(E.smoothness_loss(torch.full((1, 2, 4, 4), 3.0))) == pytest.approx(1e-6**0.45, rel=1e-6)
    total, terms = E.flownet_loss(blobs(), blobs(), [flow[..., :4, :4]])
    assert float(total) == pytest.approx(terms["photometric"] + 0.5 * terms["smoothness"], rel=1e-6)


def test_flownet_pyramid_shapes_and_tanh_scaling():
    net = E.FlowNet(in_channels=8, base_channels=8, num_layers=4)
    x = torch.rand(3, 8, 32, 48)
    with torch.no_grad():
        out = net(x, dt=2.0)
    assert [tuple(f.shape) for f in out] == [(3, 2, 4, 6), (3, 2, 8, 12), (3, 2, 16, 24), (3, 2, 32, 48)]
    assert all(float(f.abs().max()) <= 32 / 2.0 for f in out)
    # per-sample dt divides the same tanh output
    net.eval()
    a = net(x, dt=1.0)[-1]
    b = net(x, dt=torch.tensor([1.0, 2.0, 4.0]))[-1]
    assert torch.allclose(b[0], a[0], atol=1e-5) and torch.allclose(b[2], a[2] / 4, atol=1e-5)
    with pytest.raises(ValueError, match="multiples of 16"):
        net(torch.rand(1, 8, 40, 40))
    with pytest.raises(ValueError, match="events"):
        net(torch.rand(1, 6, 32, 32))
    with pytest.raises(ValueError, match="base_channels"):
        E.FlowNet(base_channels=7)
    still = E.FlowNet(in_channels=8, base_channels=8, head_init_scale=0.0)
    with torch.no_grad():
        assert all(float(f.abs().max()) == 0.0 for f in still(x))


# ----------------------------------------------------------------------------- flow coherence


def test_sample_flow_is_exact_on_a_linear_field():
    h, w = 9, 12
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    flow = torch.stack([0.5 * xs + 1.0, -0.25 * ys + 2.0])[None, None]  # (1, 1, 2, H, W)
    pts = torch.tensor([[[[2.3, 4.6], [0.0, 0.0], [10.5, 7.25]]]], dtype=torch.float64)
    out = E.sample_flow(flow, pts)
    expected = torch.stack([0.5 * pts[..., 0] + 1.0, -0.25 * pts[..., 1] + 2.0], dim=-1)
    assert torch.allclose(out, expected, atol=1e-12)
    official = E.sample_flow(flow, pts, align="official")
    assert torch.allclose(official[0, 0, 0], torch.tensor([0.5 * 1.8 + 1.0, -0.25 * 4.1 + 2.0], dtype=torch.float64))
    far = E.sample_flow(flow, torch.tensor([[[[-50.0, 3.0]]]], dtype=torch.float64))
    assert torch.equal(far, torch.zeros(1, 1, 1, 2, dtype=torch.float64))


def test_flow_coherence_loss_matches_its_formula():
    fo = torch.tensor([[[[3.0, 0.0], [0.0, 0.5], [0.0, -2.0], [1.5, 1.5]]]])
    fv = torch.tensor([[[[1.0, 1.0], [5.0, 0.0], [0.0, -1.0], [0.0, 0.0]]]])
    # valid: |(3,0)| = 3 > 1 yes; 0.5 no; 2 yes; 2.12 yes (a still vertex under a flow costs 1)
    expected = ((1 - 1 / math.sqrt(2)) + 0.0 + 0.0 + 1.0) / 4
    assert float(E.flow_coherence_loss(fv, fo, threshold=1.0)) == pytest.approx(expected, rel=1e-6)
    # only the direction counts
    assert float(E.flow_coherence_loss(10 * fv, fo, 1.0)) == pytest.approx(expected, rel=1e-6)
    assert float(E.flow_coherence_loss(fv, fo, threshold=5.0)) == 0.0
    assert E.flow_threshold(256) == 4.0 and E.flow_threshold(64) == 1.0
    with pytest.raises(ValueError, match="optical_flow"):
        E.flow_coherence_loss(fv, fo[..., :3, :], 1.0)
    with pytest.raises(ValueError, match="threshold"):
        E.flow_coherence_loss(fv, fo, -1.0)


# ----------------------------------------------------------------------------- ShapeNet


def test_accumulate_rotations_composes_deltas_on_the_left():
    R0 = axis_angle_to_matrix(torch.tensor([[[0.3, -0.2, 0.5]]], dtype=torch.float64))  # (1, 1, 3, 3)
    angles = [0.1, -0.4, 0.25]
    D = torch.stack([rot_z(a) for a in angles])[None, :, None]  # (1, 3, 1, 3, 3)
    out = E.accumulate_rotations(R0, D)
    for t in range(3):
        assert torch.allclose(out[0, t, 0], rot_z(sum(angles[: t + 1])) @ R0[0, 0], atol=1e-12)


def _init(b: int) -> dict[str, torch.Tensor]:
    R = torch.eye(3).repeat(b, 24, 1, 1)
    R[:, 0] = torch.diag(torch.tensor([1.0, -1.0, -1.0]))  # upright in the camera frame (y down)
    return {"rotmats": R, "betas": torch.zeros(b, 10), "transl": torch.tensor([[0.0, 0.2, 3.0]]).repeat(b, 1)}


def test_shapenet_outputs_and_starts_without_motion(body):
    torch.manual_seed(0)
    K = camera_matrix(60.0, 60.0, 15.5, 15.5)
    part = PartialBody(body, torch.arange(0, 6890, 50))
    net = E.ShapeNet(part, K, (32, 32), widths=(8, 16)).eval()
    b, t = 2, 3
    init = _init(b)
    out = net(torch.rand(b, t, 8, 32, 32), init, torch.rand(b, 1, 32, 32), torch.randn(b, t, 2, 32, 32))
    assert out["rotmats"].shape == (b, t, 24, 3, 3) and out["trans"].shape == (b, t, 3)
    assert out["vertices"].shape == (b, t + 1, len(part.vertex_ids), 3) and out["joints2d"].shape == (b, t, 24, 2)
    assert float((out["rotmats"] - init["rotmats"][:, None]).abs().max()) < 0.05
    assert float((out["trans"] - init["transl"][:, None]).abs().max()) < 0.05
    first = pose_body_matrices(part, init["rotmats"], init["betas"]).vertices + init["transl"][:, None]
    assert torch.allclose(out["vertices"][:, 0], first, atol=1e-5)
    assert torch.allclose(out["joints2d"], project_points(out["joints3d"], K) / 32.0, atol=1e-6)
    # translation is cumulative: trans_t − trans_{t−1} = delta_t
    assert torch.allclose(out["trans"][:, 1:] - out["trans"][:, :-1], out["delta_trans"][:, 1:], atol=1e-6)
    with pytest.raises(ValueError, match="flow"):
        net(torch.rand(b, t, 8, 32, 32), init, torch.rand(b, 1, 32, 32))
    with pytest.raises(ValueError, match="events"):
        net(torch.rand(b, t, 6, 32, 32), init, torch.rand(b, 1, 32, 32), torch.zeros(b, t, 2, 32, 32))
    no_flow = E.ShapeNet(part, K, (32, 32), use_flow=False, widths=(8, 16))
    with pytest.raises(ValueError, match="use_flow=False"):
        no_flow(torch.rand(b, t, 8, 32, 32), init, torch.rand(b, 1, 32, 32), torch.zeros(b, t, 2, 32, 32))


def test_shapenet_loss_terms_weights_and_gradient(body):
    torch.manual_seed(1)
    K = camera_matrix(60.0, 60.0, 15.5, 15.5)
    part = PartialBody(body, torch.arange(0, 6890, 50))
    net = E.ShapeNet(part, K, (32, 32), widths=(8, 16))
    b, t = 2, 2
    flow = torch.zeros(b, t, 2, 32, 32)
    flow[:, :, 0] = 3.0
    out = net(torch.rand(b, t, 8, 32, 32), _init(b), torch.rand(b, 1, 32, 32), flow)
    exact = {"trans": out["trans"].detach(), "rotmats": out["rotmats"].detach(),
             "joints3d": out["joints3d"].detach(), "joints2d": out["joints2d"].detach().clamp(0, 1)}
    _, terms = E.shapenet_loss(out, exact, weights={"flow": 0.0})
    assert set(terms) == {"trans", "theta", "joints3d", "joints2d"}
    assert terms["trans"] == 0.0 and terms["joints3d"] == 0.0 and terms["joints2d"] == 0.0
    assert terms["theta"] == pytest.approx(10 * math.acos(1 - 1e-6), rel=2e-2)  # the clamp's floor (float32), × 10
    # one joint turned by 0.5 rad in every step: θ = 10 · mean angle
    turned = dict(exact)
    turned["rotmats"] = exact["rotmats"].clone()
    turned["rotmats"][:, :, 5] = exact["rotmats"][:, :, 5] @ rot_z(0.5).float()
    _, terms = E.shapenet_loss(out, turned, weights={"flow": 0.0})
    assert terms["theta"] == pytest.approx(10 * (0.5 + 23 * math.acos(1 - 1e-6)) / 24, rel=2e-3)
    total, terms = E.shapenet_loss(out, turned, K=K, flow=flow, threshold=1.0)
    assert terms["flow"] > 0 and float(total) == pytest.approx(sum(terms.values()), rel=1e-5)
    total.backward()
    assert net.decpose.weight.grad is not None and float(net.decpose.weight.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="flow term"):
        E.shapenet_loss(out, turned)
    with pytest.raises(ValueError, match="unknown term"):
        E.shapenet_loss(out, turned, weights={"shape": 1.0})


# ----------------------------------------------------------------------------- metrics


def test_evaluate_tracking_on_hand_made_skeletons():
    g = torch.Generator().manual_seed(3)
    gt = torch.randn(4, 24, 3, generator=g, dtype=torch.float64) * 0.3
    moved = gt + torch.tensor([0.03, -0.04, 0.0], dtype=torch.float64)  # 50 mm everywhere
    m = E.evaluate_tracking(moved, gt)
    assert m["MPJPE"] == pytest.approx(50.0) and m["PEL-MPJPE"] == pytest.approx(0.0, abs=1e-9)
    assert m["PA-MPJPE"] == pytest.approx(0.0, abs=1e-6) and m["PCK"] == 100.0
    one = gt.clone()
    one[:, 7] += torch.tensor([0.0, 0.0, 0.24], dtype=torch.float64)  # one joint 240 mm off
    m = E.evaluate_tracking(one, gt)
    assert m["PEL-MPJPE"] == pytest.approx(240.0 / 24) and m["PCK"] == pytest.approx(100.0 * 23 / 24)
    verts = torch.randn(4, 30, 3, generator=g, dtype=torch.float64)
    R = rot_z(0.4)
    m = E.evaluate_tracking(1.2 * gt @ R.T, gt, 1.2 * verts @ R.T, verts)
    assert m["PVE"] == pytest.approx(0.0, abs=1e-6) and m["MPJPE"] > 10
    with pytest.raises(ValueError, match="gt_joints"):
        E.evaluate_tracking(gt, gt[:, :17])
