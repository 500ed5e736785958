"""Pose sampler, motion clips and cameras."""

import numpy as np
import pytest
import torch

from labcore import geometry as geo
from labcore.body import load_body_model, pose_body
from labcore.data.poses import (
    JOINT_LIMITS,
    POSE_FAMILIES,
    PoseParams,
    motion_clip,
    pose_params_to_smpl,
    sample_camera,
    sample_pose_params,
    sample_poses,
    to_camera_frame,
)
from labcore.skeletons import SMPL_JOINT_NAMES

J = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}


@pytest.fixture(scope="module")
def model():
    return load_body_model("toy")


def _angles(**values):
    """One pose: T-pose arms (elevation 90°, plane 0) and given angles, all else 0."""
    names = list(sample_pose_params(1, 0).angles)
    a = {k: np.zeros(1) for k in names}
    for s in "LR":
        a[f"{s}_shoulder_elev"] = np.array([90.0])
    for k, v in values.items():
        a[k] = np.array([float(v)])
    return PoseParams(a, np.array(["test"]))


def _joints(model, params):
    return pose_body(model, body_pose=pose_params_to_smpl(params)).joints[0]


def test_samples_respect_joint_limits_and_families():
    p = sample_pose_params(60, seed=1)
    assert set(p.family) <= set(POSE_FAMILIES) and len(set(p.family)) >= 5
    for key, value in p.angles.items():
        lo, hi = JOINT_LIMITS[key[2:] if key[:2] in ("L_", "R_") else key]
        assert value.min() >= lo and value.max() <= hi, key
    only = sample_pose_params(10, seed=1, families=("sitting",))
    assert set(only.family) == {"sitting"}
    assert (only.angles["L_knee_flex"] > 40).all()


def test_sample_i_does_not_depend_on_n():
    a = sample_poses(3, seed=5)["body_pose"]
    b = sample_poses(7, seed=5)["body_pose"]
    torch.testing.assert_close(a, b[:3])
    assert not torch.equal(sample_poses(3, seed=6)["body_pose"], a)


def test_t_pose_angles_give_the_rest_pose():
    bp = pose_params_to_smpl(_angles())
    assert bp.abs().max() < 1e-5


def test_anatomical_angles_move_limbs_the_right_way(model):
    rest = _joints(model, _angles())
    # Knee flexion takes the ankle behind the knee.
    knee = _joints(model, _angles(L_knee_flex=90))
    assert knee[J["left_ankle"], 2] < knee[J["left_knee"], 2] - 0.3
    # Hip flexion brings the knee forward, up to about hip height at 90°.
    hip = _joints(model, _angles(L_hip_flex=90))
    assert hip[J["left_knee"], 2] > rest[J["left_hip"], 2] + 0.3
    assert abs(hip[J["left_knee"], 1] - hip[J["left_hip"], 1]) < 0.05
    # Elbow flexion brings the wrist forward; the right side mirrors the left.
    el = _joints(model, _angles(L_elbow_flex=90, R_elbow_flex=90))
    assert el[J["left_wrist"], 2] > rest[J["left_wrist"], 2] + 0.2
    torch.testing.assert_close(el[J["right_wrist"]] * torch.tensor([-1.0, 1, 1]), el[J["left_wrist"]],
                               atol=1e-4, rtol=0)
    # Shoulder elevation: 0 hangs the arm down, 180 raises it above the head; plane 90 is forward.
    down = _joints(model, _angles(L_shoulder_elev=0))
    up = _joints(model, _angles(L_shoulder_elev=180))
    fwd = _joints(model, _angles(L_shoulder_elev=90, L_shoulder_plane=90))
    assert down[J["left_wrist"], 1] < down[J["left_shoulder"], 1] - 0.4
    assert up[J["left_wrist"], 1] > up[J["head"], 1] + 0.3
    assert fwd[J["left_wrist"], 2] > fwd[J["left_shoulder"], 2] + 0.4
    # Spine flexion leans the neck forward.
    lean = _joints(model, _angles(spine_flex=30))
    assert lean[J["neck"], 2] > rest[J["neck"], 2] + 0.1


def test_clamp_enforces_limits():
    p = _angles(L_knee_flex=400, spine_flex=-90).clamp()
    assert p.angles["L_knee_flex"][0] == JOINT_LIMITS["knee_flex"][1]
    assert p.angles["spine_flex"][0] == JOINT_LIMITS["spine_flex"][0]


@pytest.mark.parametrize("kind", ["walk", "transition"])
def test_motion_is_smooth_and_deterministic(model, kind):
    clip = motion_clip(40, fps=30, seed=2, kind=kind)
    again = motion_clip(40, fps=30, seed=2, kind=kind)
    for key in clip:
        torch.testing.assert_close(clip[key], again[key])
    out = pose_body(model, clip["global_orient"], clip["body_pose"], None, clip["transl"])
    step = (out.joints[1:] - out.joints[:-1]).norm(dim=-1)
    assert step.max() < 0.2  # < 6 m/s: a swinging foot peaks near 3× walking speed
    assert step.mean() > 0.002  # and it does move
    accel = (out.joints[2:] - 2 * out.joints[1:-1] + out.joints[:-2]).norm(dim=-1)
    assert accel.max() < 0.05  # no jumps


def test_motion_clip_rejects_bad_arguments():
    with pytest.raises(ValueError):
        motion_clip(1)
    with pytest.raises(ValueError):
        motion_clip(10, fps=0)
    with pytest.raises(ValueError):
        motion_clip(10, kind="dance")


def test_camera_looks_at_the_target_and_frames_the_person():
    rng = np.random.default_rng(0)
    target = np.array([0.3, -0.2, 1.0])
    cam = sample_camera(rng, (320, 240), target, person_height_px=150)
    p = geo.transform_points(torch.tensor(target)[None].float(), cam.R, cam.t)
    uv = geo.project_points(p, cam.K)[0]
    torch.testing.assert_close(uv, torch.tensor([159.5, 119.5]), atol=1e-3, rtol=0)
    # A 1.7 m vertical segment at the target spans about 150 px (within perspective effects).
    top = torch.tensor(np.stack([target + [0, 0.85, 0], target - [0, 0.85, 0]])).float()
    h = geo.project_points(geo.transform_points(top, cam.R, cam.t), cam.K)[:, 1]
    assert 120 < abs(float(h[1] - h[0])) < 190


def test_to_camera_frame_equals_transforming_the_mesh(model):
    rng = np.random.default_rng(1)
    betas = torch.randn(2, 10)
    go = torch.randn(2, 3) * 0.5
    tr = torch.randn(2, 3)
    bp = sample_poses(2, seed=3)["body_pose"]
    R, _ = geo.look_at(torch.tensor([1.0, 2.0, 5.0]), torch.zeros(3), up=torch.tensor([0.0, 1.0, 0.0]))
    t = torch.tensor(rng.normal(size=3)).float()
    world = pose_body(model, go, bp, betas, tr)
    j0 = pose_body(model, betas=betas).joints[:, 0]
    go_c, tr_c = to_camera_frame(go, tr, j0, R.float(), t)
    cam = pose_body(model, go_c, bp, betas, tr_c)
    expected = geo.transform_points(world.vertices, R.float(), t)
    torch.testing.assert_close(cam.vertices, expected, atol=1e-4, rtol=0)
