"""The toy body: SMPL's structure, run by the real smplx, with meaningful parameters."""

import warnings

import numpy as np
import pytest
import torch

import labcore.body.model as body_model
from labcore.body import (
    BETA_NAMES,
    LANDMARK_VERTEX_IDS,
    PART_NAMES,
    load_body_model,
    pose_body,
    resolve_body_kind,
    toy_smpl,
    vertex_parts,
)
from labcore.checks import MissingFileError
from labcore.skeletons import BODY_KEYPOINT_NAMES, HEAD_TOP_VERTEX, SMPL_JOINT_NAMES, SMPL_PARENTS


@pytest.fixture(scope="module")
def toy():
    return toy_smpl()


@pytest.fixture(scope="module")
def model():
    return load_body_model("toy")


def _pose(**joints):
    """body_pose (1, 69) with axis-angle rotations for named SMPL joints."""
    bp = torch.zeros(1, 69)
    for name, aa in joints.items():
        j = SMPL_JOINT_NAMES.index(name)
        bp[0, (j - 1) * 3 : j * 3] = torch.tensor(aa, dtype=torch.float32)
    return bp


def test_toy_has_smpl_structure(toy):
    assert toy["v_template"].shape == (6890, 3)
    assert toy["f"].ndim == 2 and toy["f"].shape[1] == 3
    assert toy["f"].min() == 0 and toy["f"].max() == 6889
    assert len(np.unique(toy["f"])) == 6890, "every vertex belongs to a face"
    assert toy["J_regressor"].shape == (24, 6890)
    np.testing.assert_allclose(toy["J_regressor"].sum(1), 1.0)
    assert (toy["J_regressor"] >= 0).all()
    assert toy["weights"].shape == (6890, 24)
    np.testing.assert_allclose(toy["weights"].sum(1), 1.0)
    assert (toy["weights"] >= 0).all()
    assert toy["shapedirs"].shape == (6890, 3, 10)
    assert toy["posedirs"].shape == (6890, 3, 207)
    parents = toy["kintree_table"][0].copy()
    parents[0] = -1
    assert tuple(parents) == SMPL_PARENTS


def test_toy_is_deterministic_and_seed_gives_another_individual():
    a, b, c = toy_smpl(seed=0), toy_smpl(seed=0), toy_smpl(seed=3)
    np.testing.assert_array_equal(a["v_template"], b["v_template"])
    assert np.abs(a["v_template"] - c["v_template"]).max() > 0.005
    np.testing.assert_array_equal(a["f"], c["f"])


def test_landmarks_sit_on_the_right_parts(toy):
    v = toy["v_template"]
    part = toy["part_of_vertex"]
    name_of = lambda i: PART_NAMES[part[i]]  # noqa: E731
    ids = LANDMARK_VERTEX_IDS
    for key in ("nose", "leye", "reye", "lear", "rear", "head_top"):
        assert name_of(ids[key]) == "head", key
    for finger in ("thumb", "index", "middle", "ring", "pinky"):
        assert name_of(ids["l" + finger]) == "left_hand"
        assert name_of(ids["r" + finger]) == "right_hand"
        assert v[ids["l" + finger], 0] > 0.7 and v[ids["r" + finger], 0] < -0.7
    for side, part_name in (("L", "left_foot"), ("R", "right_foot")):
        for key in ("BigToe", "SmallToe", "Heel"):
            assert name_of(ids[side + key]) == part_name
        # Toes at the front, the heel at the back, the big toe on the inner side.
        assert v[ids[side + "BigToe"], 2] > v[ids[side + "Heel"], 2] + 0.2
        assert abs(v[ids[side + "BigToe"], 0]) < abs(v[ids[side + "SmallToe"], 0])
    # The subject's left is +x (SMPL's frame); the nose is the front-most head point.
    assert v[ids["leye"], 0] > 0 > v[ids["reye"], 0]
    assert v[ids["lear"], 0] > 0 > v[ids["rear"], 0]
    head = part == PART_NAMES.index("head")
    assert ids["nose"] == np.flatnonzero(head)[np.argmax(v[head, 2])]
    assert HEAD_TOP_VERTEX == ids["head_top"] == int(np.argmax(v[:, 1]))


def test_smplx_rest_pose_equals_template(toy, model):
    out = pose_body(model, betas=torch.zeros(1, 10))
    np.testing.assert_allclose(out.vertices[0].numpy(), toy["v_template"], atol=1e-6)
    np.testing.assert_allclose(out.joints[0].numpy(), toy["J_regressor"] @ toy["v_template"], atol=1e-6)
    # The 46 body keypoints: 24 joints, smplx's 21 landmark vertices, the head top.
    assert out.keypoints.shape == (1, len(BODY_KEYPOINT_NAMES), 3)
    for name, vid in (("nose", "nose"), ("left_big_toe", "LBigToe"), ("right_pinky", "rpinky")):
        k = BODY_KEYPOINT_NAMES.index(name)
        np.testing.assert_allclose(out.keypoints[0, k].numpy(), toy["v_template"][LANDMARK_VERTEX_IDS[vid]], atol=1e-6)
    np.testing.assert_allclose(out.keypoints[0, -1].numpy(), toy["v_template"][HEAD_TOP_VERTEX], atol=1e-6)


def test_bending_an_elbow_moves_only_that_arm(model):
    rest = pose_body(model, body_pose=_pose())
    bent = pose_body(model, body_pose=_pose(left_elbow=[0.0, -1.5, 0.0]))
    moved = (bent.vertices - rest.vertices).norm(dim=-1)[0] > 1e-6
    parts = {PART_NAMES[i] for i in vertex_parts(model)[moved].tolist()}
    assert parts == {"left_upper_arm", "left_forearm", "left_hand"}
    assert moved.sum() > 300
    # Flexion about -y brings the left forearm forward (+z): the wrist moves to the front.
    wrist = SMPL_JOINT_NAMES.index("left_wrist")
    assert bent.joints[0, wrist, 2] - rest.joints[0, wrist, 2] > 0.2


def test_pose_correctives_bulge_outward_only_when_bent(model):
    bp = _pose(left_knee=[1.6, 0.0, 0.0])
    with_corr = pose_body(model, body_pose=bp).vertices
    saved = model.posedirs.clone()
    try:
        model.posedirs.zero_()
        plain = pose_body(model, body_pose=bp).vertices
        rest_plain = pose_body(model, body_pose=_pose()).vertices
    finally:
        model.posedirs.copy_(saved)
    rest = pose_body(model, body_pose=_pose()).vertices
    torch.testing.assert_close(rest, rest_plain)  # zero pose: no corrective
    offset = (with_corr - plain)[0]
    assert offset.norm(dim=-1).max() > 0.005
    knee = pose_body(model, body_pose=bp).joints[0, SMPL_JOINT_NAMES.index("left_knee")]
    moved = offset.norm(dim=-1) > 1e-4
    # Outward: the corrected vertices end up farther from the knee axis region.
    d_corr = (with_corr[0, moved] - knee).norm(dim=-1)
    d_plain = (plain[0, moved] - knee).norm(dim=-1)
    assert (d_corr > d_plain).float().mean() > 0.9


def _measure(model, betas):
    out = pose_body(model, betas=betas[None])
    v, j = out.vertices[0], out.joints[0]
    J = {n: j[i] for i, n in enumerate(SMPL_JOINT_NAMES)}
    height = v[:, 1].max() - v[:, 1].min()
    torso = v[(v[:, 1] - J["spine1"][1]).abs() < 0.02]
    torso = torso[torso[:, 0].abs() < 0.25]
    thigh_y = (J["left_hip"][1] + J["left_knee"][1]) / 2
    thigh = v[((v[:, 1] - thigh_y).abs() < 0.02) & (v[:, 0] > 0.02) & (v[:, 0] < 0.25)]
    head = v[v[:, 1] > J["head"][1]]
    return {
        0: height,
        1: torso[:, 0].max() - torso[:, 0].min(),
        2: J["left_hip"][1] - J["left_ankle"][1],
        3: (J["left_wrist"] - J["left_shoulder"]).norm(),
        4: (J["left_shoulder"] - J["right_shoulder"]).norm(),
        5: (J["left_hip"] - J["right_hip"]).norm(),
        6: J["neck"][1] - J["pelvis"][1],
        7: torso[:, 2].max(),
        8: head[:, 1].max() - head[:, 1].min(),
        9: thigh[:, 0].max() - thigh[:, 0].min(),
    }


@pytest.mark.parametrize("k", range(len(BETA_NAMES)))
def test_each_beta_means_what_its_name_says(model, k):
    zero = _measure(model, torch.zeros(10))
    plus = torch.zeros(10)
    plus[k] = 2.0
    grown = _measure(model, plus)
    assert grown[k] > zero[k] * 1.02, BETA_NAMES[k]


def test_load_smpl_without_files_names_the_missing_file(monkeypatch, tmp_path):
    monkeypatch.delenv("LABCORE_SMPL_DIR", raising=False)
    with pytest.raises(MissingFileError, match="LABCORE_SMPL_DIR"):
        load_body_model("smpl")
    monkeypatch.setenv("LABCORE_SMPL_DIR", str(tmp_path))
    with pytest.raises(MissingFileError, match="SMPL_FEMALE.pkl") as info:
        load_body_model("smpl", gender="female")
    assert "smpl.is.tue.mpg.de" in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, FileNotFoundError)


def test_auto_falls_back_to_toy_and_says_so_once(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("LABCORE_SMPL_DIR", str(tmp_path))
    monkeypatch.setattr(body_model, "_warned_fallback", False)
    assert resolve_body_kind("auto") == "toy"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = load_body_model("auto")
        b = load_body_model("auto")
    assert [str(w.message) for w in caught].count(f"labcore: using the toy body ({tmp_path / 'SMPL_NEUTRAL.pkl'} not found)") == 1
    assert body_model.body_kind(a) == body_model.body_kind(b) == "toy"
    # smplx's "only 10 shape coefficients" print is kept out of the output.
    assert "shape coefficients" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "kwargs, error",
    [({"kind": "mesh"}, ValueError), ({"gender": "other"}, ValueError), ({"num_betas": 11}, ValueError),
     ({"num_betas": 2.0}, TypeError)],
)
def test_load_body_model_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error):
        load_body_model(**kwargs)


def test_pose_body_rejects_bad_input(model):
    with pytest.raises(ValueError, match="body_pose"):
        pose_body(model, body_pose=torch.zeros(2, 72))
    with pytest.raises(ValueError, match="NaN"):
        pose_body(model, body_pose=torch.full((1, 69), float("nan")))
    with pytest.raises(ValueError, match="betas"):
        pose_body(model, betas=torch.zeros(1, 12))
    with pytest.raises(ValueError, match="differs"):
        pose_body(model, body_pose=torch.zeros(2, 69), betas=torch.zeros(3, 10))
    with pytest.raises(ValueError, match="at least one"):
        pose_body(model)


def test_body_state_units_and_joint_sets(model):
    out = pose_body(model, betas=torch.zeros(2, 10))
    mm = out.to_mm()
    torch.testing.assert_close(mm.joints, out.joints * 1000)
    assert out.joints_of("coco17").shape == (2, 17, 3)
    j18 = out.joints_of("j18")
    torch.testing.assert_close(j18[:, 17], (j18[:, 11] + j18[:, 14]) / 2)


# --------------------------------------------------------------------------- rotation matrices, part of the mesh


def _rotmats(n: int, seed: int) -> torch.Tensor:
    from labcore.geometry import axis_angle_to_matrix

    g = torch.Generator().manual_seed(seed)
    return axis_angle_to_matrix(torch.randn(n, 24, 3, generator=g) * 0.4)


def test_pose_body_matrices_equals_the_axis_angle_path(model):
    from labcore.body import pose_body_matrices
    from labcore.geometry import matrix_to_axis_angle

    R = _rotmats(3, 0)
    betas = torch.randn(3, 10, generator=torch.Generator().manual_seed(1))
    transl = torch.tensor([[0.1, -0.2, 3.0]]).expand(3, 3)
    aa = matrix_to_axis_angle(R).reshape(3, 72)
    ref = pose_body(model, aa[:, :3], aa[:, 3:], betas, transl)
    mine = pose_body_matrices(model, R, betas, transl)
    for a, b in ((mine.vertices, ref.vertices), (mine.joints, ref.joints), (mine.keypoints, ref.keypoints)):
        assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match="rotmats"):
        pose_body_matrices(model, R[:, :23])
    with pytest.raises(ValueError, match="betas"):
        pose_body_matrices(model, R, torch.zeros(3, 11))


def test_partial_body_equals_the_full_model_on_its_vertices(model):
    from labcore.body import PartialBody, pose_body_matrices

    R = _rotmats(4, 2)
    betas = torch.randn(4, 10, generator=torch.Generator().manual_seed(3))
    ids = torch.tensor([6000, 5, 411, 5, 3000])  # any order, repeats allowed, a keypoint vertex among them
    part = PartialBody(model, ids)(R, betas)
    full = pose_body_matrices(model, R, betas)
    assert part.vertices.shape == (4, 5, 3)
    assert torch.allclose(part.vertices, full.vertices[:, ids], atol=1e-6)
    assert torch.allclose(part.joints, full.joints, atol=1e-6)
    assert torch.allclose(part.keypoints, full.keypoints, atol=1e-6)
    # it skins far fewer vertices than the mesh has
    assert PartialBody(model, ids)._v_template.shape[0] < model.v_template.shape[0] // 4
    with pytest.raises(ValueError, match="vertex_ids"):
        PartialBody(model, torch.tensor([0, 6890]))
