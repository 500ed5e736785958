"""Tests of labcore.methods.posh (HEMlets PoSh's SMPL regressor — labcore's design, DESIGN.md §4).

Expected values come from outside the module: rotations built from explicit angle formulas
(``R_z(θ)`` written out), the Frobenius distance between two rotations ``4 (1 − cos θ)``,
the body through smplx's axis-angle path (:func:`labcore.body.pose_body`) against the
module's rotation-matrix path, the error-feedback loop re-run by hand from the module's
layers, and metrics on hand-made skeletons.
"""

from __future__ import annotations

import math

import pytest
import torch

from labcore.body import load_body_model, pose_body
from labcore.checks import MissingFileError
from labcore.geometry import axis_angle_to_matrix
from labcore.methods import posh as P
from labcore.skeletons import J18

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def body():
    return load_body_model("toy")


def rot_z(theta: float) -> torch.Tensor:
    c, s = math.cos(theta), math.sin(theta)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def random_rotmats(n: int, seed: int, max_angle: float = 2.5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    axis = torch.nn.functional.normalize(torch.randn(n, P.NUM_ROTATIONS, 3, generator=g), dim=-1)
    angle = torch.rand(n, P.NUM_ROTATIONS, 1, generator=g) * max_angle
    return axis_angle_to_matrix(axis * angle)


def gt_params(n: int, seed: int) -> dict[str, torch.Tensor]:
    """Moderate SMPL parameters (radians, axis-angle) and betas."""
    g = torch.Generator().manual_seed(seed)
    return {"global_orient": torch.randn(n, 3, generator=g) * 0.5, "body_pose": torch.randn(n, 69, generator=g) * 0.3,
            "betas": torch.randn(n, 10, generator=g)}


# ----------------------------------------------------------------------------- rotations


@pytest.mark.parametrize("rotation,width", [("6d", 6), ("axis_angle", 3)])
def test_rotation_representations_round_trip(rotation, width):
    R = random_rotmats(5, 0)
    x = P.encode_rotations(R, rotation)
    assert x.shape == (5, 24 * width) and P.rotation_size(rotation) == width
    assert torch.allclose(P.decode_rotations(x, rotation), R, atol=1e-5)
    assert torch.allclose(P.encode_rotations(P.decode_rotations(x, rotation), rotation), x, atol=1e-5)


def test_six_d_is_the_first_two_columns_and_any_six_numbers_decode_to_a_rotation():
    R = rot_z(0.7)[None, None].expand(1, 24, 3, 3)
    x = P.encode_rotations(R, "6d").reshape(24, 6)
    assert torch.allclose(x[0], torch.cat([R[0, 0, :, 0], R[0, 0, :, 1]]))
    raw = torch.randn(4, 24 * 6, generator=torch.Generator().manual_seed(1))
    M = P.decode_rotations(raw, "6d")
    eye = torch.eye(3).expand_as(M)
    assert torch.allclose(M @ M.transpose(-1, -2), eye, atol=1e-5)
    assert torch.allclose(torch.linalg.det(M), torch.ones(4, 24), atol=1e-5)


def test_axis_angle_decodes_to_the_rotation_about_that_axis():
    x = torch.zeros(1, 72)
    x[0, 5] = 0.9  # rotation 1 (the left hip): 0.9 rad about z
    R = P.decode_rotations(x, "axis_angle")
    assert torch.allclose(R[0, 1], rot_z(0.9), atol=1e-6)
    assert torch.allclose(R[0, 0], torch.eye(3))


def test_smpl_rotmats_follows_smplx_order():
    go, bp = torch.zeros(2, 3), torch.zeros(2, 69)
    go[:, 2] = 0.3
    bp[:, 3 * 17 + 2] = -1.1  # body joint 18 overall: the left elbow (SMPL index 18)
    R = P.smpl_rotmats(go, bp)
    assert R.shape == (2, 24, 3, 3)
    assert torch.allclose(R[:, 0], rot_z(0.3).expand(2, 3, 3), atol=1e-6)
    assert torch.allclose(R[:, 18], rot_z(-1.1).expand(2, 3, 3), atol=1e-6)


def test_mean_rotation_of_a_symmetric_spread_is_its_centre():
    centre = axis_angle_to_matrix(torch.tensor([0.2, -0.5, 0.9]))
    spread = torch.stack([centre @ rot_z(a) for a in (-0.6, -0.2, 0.2, 0.6)])
    m = P.mean_rotation(spread)
    assert torch.allclose(m, centre, atol=1e-5)
    many = P.mean_rotation(random_rotmats(50, 3)[:, :, None].squeeze(2))  # (24, 3, 3)
    assert many.shape == (24, 3, 3)
    assert torch.allclose(torch.linalg.det(many), torch.ones(24), atol=1e-5)
    with pytest.raises(ValueError, match="rotmats"):
        P.mean_rotation(torch.eye(3))


def test_rotation_errors():
    with pytest.raises(ValueError, match="rotation"):
        P.encode_rotations(torch.eye(3).expand(1, 24, 3, 3), "quaternion")
    with pytest.raises(ValueError, match="width"):
        P.decode_rotations(torch.zeros(2, 10), "6d")
    with pytest.raises(ValueError, match="finite"):
        P.decode_rotations(torch.full((1, 144), float("nan")), "6d")


# ----------------------------------------------------------------------------- the regressor


def test_regressor_output_runs_through_smplx_to_vertices(body):
    reg = P.PoshRegressor(num_joints=18, feature_channels=7, hidden=32)
    out = reg(torch.randn(4, 18, 3) * 0.3, torch.randn(4, 7))
    assert out["params"].shape == (4, 24 * 6 + 10) and out["rotmats"].shape == (4, 24, 3, 3)
    assert out["betas"].shape == (4, 10) and len(out["steps"]) == 3
    bodies = P.smpl_output(body, out["rotmats"], out["betas"])
    assert bodies["vertices"].shape == (4, 6890, 3) and bodies["joints"].shape == (4, 18, 3)
    assert torch.allclose(bodies["joints"][:, 0], torch.zeros(4, 3), atol=1e-6)  # root-relative
    loss = bodies["vertices"].abs().mean()
    loss.backward()
    assert reg.decoder.weight.grad is not None and reg.decoder.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("rotation", ["6d", "axis_angle"])
def test_zero_residual_gives_the_mean_pose(body, rotation):
    reg = P.PoshRegressor(hidden=16, rotation=rotation)
    mean_R = random_rotmats(1, 4, max_angle=1.0)[0]
    mean_b = torch.linspace(-1, 1, 10)
    reg.set_mean(mean_R, mean_b)
    torch.nn.init.zeros_(reg.decoder.weight)
    torch.nn.init.zeros_(reg.decoder.bias)
    out = reg(torch.randn(3, 18, 3))
    assert torch.allclose(out["rotmats"], mean_R.expand(3, 24, 3, 3), atol=1e-5)
    assert torch.allclose(out["betas"], mean_b.expand(3, 10))
    # ... and the body is the mean body, posed by smplx's own axis-angle path
    go_bp = P.encode_rotations(mean_R[None], "axis_angle")
    ref = pose_body(body, go_bp[:, :3], go_bp[:, 3:], mean_b[None])
    mine = P.smpl_output(body, out["rotmats"][:1], out["betas"][:1])
    assert torch.allclose(mine["vertices"][0] + mine["pelvis"][0], ref.vertices[0], atol=1e-5)


def test_default_mean_is_the_rest_pose():
    reg = P.PoshRegressor(hidden=8)
    R, b = reg.split(reg.mean[None])
    assert torch.allclose(R, torch.eye(3).expand(1, 24, 3, 3)) and torch.equal(b, torch.zeros(1, 10))


def test_error_feedback_adds_a_correction_per_step():
    torch.manual_seed(0)
    reg = P.PoshRegressor(feature_channels=2, hidden=16, iterations=3).eval()
    torch.nn.init.normal_(reg.decoder.weight, std=0.05)
    joints, feats = torch.randn(2, 18, 3), torch.randn(2, 2)
    joints_shifted = joints + torch.tensor([1.0, -2.0, 0.5])  # inputs are made root-relative
    out = reg(joints_shifted, feats)
    x = torch.cat([(joints - joints[:, :1]).flatten(1), feats], 1)
    theta = reg.mean.expand(2, -1)
    for k in range(3):
        theta = theta + reg.decoder(reg.mlp(torch.cat([x, theta], 1)))
        assert torch.allclose(out["steps"][k], theta, atol=1e-6)
    assert torch.allclose(out["params"], theta, atol=1e-6)
    assert not torch.allclose(out["steps"][0], out["steps"][2])
    one = P.PoshRegressor(hidden=8, iterations=1)
    assert len(one(torch.randn(1, 18, 3))["steps"]) == 1


def test_regressor_errors():
    reg = P.PoshRegressor(feature_channels=4, hidden=8)
    with pytest.raises(ValueError, match="joints"):
        reg(torch.zeros(2, 17, 3), torch.zeros(2, 4))  # wrong joint count
    bad = torch.zeros(2, 18, 3)
    bad[0, 3, 1] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        reg(bad, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="features"):
        reg(torch.zeros(2, 18, 3))
    with pytest.raises(ValueError, match="features"):
        reg(torch.zeros(2, 18, 3), torch.zeros(3, 4))  # batch mismatch
    with pytest.raises(ValueError, match="feature_channels=0"):
        P.PoshRegressor(hidden=8)(torch.zeros(1, 18, 3), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="rotation"):
        P.PoshRegressor(rotation="euler")
    with pytest.raises(ValueError, match="iterations"):
        P.PoshRegressor(iterations=0)


def test_missing_smpl_file_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("LABCORE_SMPL_DIR", str(tmp_path))
    with pytest.raises(MissingFileError, match="SMPL_NEUTRAL.pkl"):
        load_body_model("smpl")


# ----------------------------------------------------------------------------- the body and losses


def test_rotation_matrix_path_equals_smplx_axis_angle_path(body):
    p = gt_params(3, 5)
    R = P.smpl_rotmats(p["global_orient"], p["body_pose"])
    mine = P.smpl_output(body, R, p["betas"])
    ref = pose_body(body, p["global_orient"], p["body_pose"], p["betas"])
    ref_j18 = J18.from_body(ref.keypoints)
    assert torch.allclose(mine["joints"], ref_j18 - ref_j18[:, :1], atol=1e-5)
    assert torch.allclose(mine["vertices"], ref.vertices - ref_j18[:, :1], atol=1e-5)


def test_losses_are_zero_at_the_ground_truth(body):
    p = gt_params(4, 6)
    t = P.posh_targets(body, **p)
    total, terms = P.posh_loss(body, {"rotmats": t["rotmats"], "betas": t["betas"]}, t)
    assert set(terms) == {"joints", "vertices", "rotations", "betas"}
    assert float(total) < 1e-6 and max(terms.values()) < 1e-6


def test_rotation_and_beta_terms_match_their_formulas(body):
    p = gt_params(2, 7)
    t = P.posh_targets(body, **p)
    theta = 0.8
    R = t["rotmats"].clone()
    R[:, 5] = R[:, 5] @ rot_z(theta)  # one joint of each sample turned by θ
    b = t["betas"] + torch.tensor([0.5] + [0.0] * 9)
    total, terms = P.posh_loss(body, {"rotmats": R, "betas": b}, t, joint_weight=0.0, vertex_weight=0.0,
                               rotation_weight=2.0, beta_weight=3.0)
    expected_rot = 4 * (1 - math.cos(theta)) / (24 * 9)  # ‖R₁ − R₂‖²_F = 4(1 − cos θ), one of 24·9 entries' worth
    assert terms["rotations"] == pytest.approx(expected_rot, rel=1e-4)
    assert terms["betas"] == pytest.approx(0.25 / 10, rel=1e-5)
    assert float(total) == pytest.approx(2 * expected_rot + 3 * 0.025, rel=1e-4)
    assert terms["joints"] > 0 and terms["vertices"] > 0  # computed, weighted 0


def test_has_smpl_masks_the_parameter_terms_but_not_the_joints(body):
    p = gt_params(2, 8)
    t = P.posh_targets(body, **p)
    R = t["rotmats"].clone()
    R[1, 3] = R[1, 3] @ rot_z(1.0)  # only sample 1 is wrong
    _, masked = P.posh_loss(body, {"rotmats": R, "betas": t["betas"]}, t, has_smpl=torch.tensor([1.0, 0.0]))
    assert masked["rotations"] == 0.0 and masked["vertices"] == 0.0 and masked["joints"] > 0
    _, both = P.posh_loss(body, {"rotmats": R, "betas": t["betas"]}, t, has_smpl=torch.tensor([0.0, 1.0]))
    assert both["rotations"] == pytest.approx(4 * (1 - math.cos(1.0)) / (24 * 9), rel=1e-4)
    # joints only (an image with 3-D joints but no SMPL fit)
    _, only = P.posh_loss(body, {"rotmats": R, "betas": t["betas"]}, {"joints": t["joints"]})
    assert set(only) == {"joints"}


def test_joint_term_is_the_l1_of_the_bodies_joints(body):
    p, q = gt_params(2, 9), gt_params(2, 10)
    t = P.posh_targets(body, **p)
    R = P.smpl_rotmats(q["global_orient"], q["body_pose"])
    _, terms = P.posh_loss(body, {"rotmats": R, "betas": q["betas"]}, t)
    other = pose_body(body, q["global_orient"], q["body_pose"], q["betas"])
    j = J18.from_body(other.keypoints)
    assert terms["joints"] == pytest.approx(float((j - j[:, :1] - t["joints"]).abs().mean()), rel=1e-4)


def test_loss_errors(body):
    t = P.posh_targets(body, **gt_params(2, 11))
    out = {"rotmats": t["rotmats"], "betas": t["betas"]}
    with pytest.raises(ValueError, match="joints"):
        P.posh_loss(body, out, {"joints": t["joints"][:, :17]})
    with pytest.raises(ValueError, match="beta_weight"):
        P.posh_loss(body, out, t, beta_weight=-1.0)
    with pytest.raises(ValueError, match="has_smpl"):
        P.posh_loss(body, out, t, has_smpl=torch.ones(3))
    with pytest.raises(ValueError, match="body_pose"):
        P.posh_targets(body, t["betas"][:, :3], torch.zeros(2, 72), t["betas"])


# ----------------------------------------------------------------------------- metrics


def test_evaluate_smpl_on_hand_made_bodies():
    g = torch.Generator().manual_seed(12)
    gt_j = torch.randn(2, 18, 3, generator=g) * 0.3
    gt_v = torch.randn(2, 50, 3, generator=g) * 0.3
    gt_R = random_rotmats(2, 13)
    pred_j = gt_j.clone()
    pred_j[:, 4] += torch.tensor([0.0, 0.034, 0.0])  # one joint off by 34 mm
    pred_j[:, 17] += 5.0  # joint 17 is not scored
    pred_v = gt_v.clone()
    pred_v[:, 7] += torch.tensor([0.0, 0.0, 0.1])  # one vertex off by 100 mm
    pred_R = gt_R.clone()
    pred_R[:, 9] = pred_R[:, 9] @ rot_z(math.radians(46.0))
    m = P.evaluate_smpl({"joints": pred_j, "vertices": pred_v, "rotmats": pred_R},
                        {"joints": gt_j, "vertices": gt_v, "rotmats": gt_R})
    assert m["MPJPE"] == pytest.approx(34.0 / 17, rel=1e-4)
    assert m["PVE"] == pytest.approx(100.0 / 50, rel=1e-4)
    assert m["rot_deg"] == pytest.approx(46.0 / 23, rel=1e-4)
    # a rotated, scaled, moved copy: MPJPE large, PA-MPJPE zero
    moved = 1.3 * gt_j @ rot_z(0.5).T + 0.2
    m2 = P.evaluate_smpl({"joints": moved}, {"joints": gt_j})
    assert m2["PA-MPJPE"] < 1e-3 and m2["MPJPE"] > 50 and set(m2) == {"MPJPE", "PA-MPJPE"}
    with pytest.raises(ValueError, match="joints"):
        P.evaluate_smpl({"joints": gt_j[:, :17]}, {"joints": gt_j[:, :17]})
