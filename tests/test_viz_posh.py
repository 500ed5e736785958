"""HEMlets PoSh's figures (labcore.viz.posh): the mesh overlay lands where the camera
projects the mesh, the explorer's steps are the regressor's, and the representation figure
shows axis-angle's jump."""

import numpy as np
import pytest
import torch

from labcore.body import load_body_model, pose_body
from labcore.geometry import camera_matrix, project_points
from labcore.methods import posh as ps
from labcore.viz import posh as pv

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def body():
    return load_body_model("toy")


def standing_body(body, depth: float = 3.0) -> torch.Tensor:
    """The rest body turned to stand upright in the camera frame (y down), ``depth`` m away."""
    flip = torch.tensor([[np.pi, 0.0, 0.0]])
    state = pose_body(body, global_orient=flip, transl=torch.tensor([[0.0, 0.0, depth]]))
    return state.vertices[0]


def test_mesh_overlay_covers_the_projected_mesh(body):
    K = camera_matrix(60.0, 60.0, 31.5, 31.5)
    v = standing_body(body)
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    out = pv.mesh_overlay(image, v, body.faces, K, scale=2, alpha=1.0)
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    covered = out.sum(-1) > 0
    uv = project_points(v, K).numpy() * 2 + 0.5  # pixel centres at integers, 2× upscale
    lo, hi = uv.min(0), uv.max(0)
    ys, xs = np.nonzero(covered)
    # the drawn mesh spans the projected vertices' box (to a pixel)
    assert abs(xs.min() - lo[0]) <= 1.5 and abs(xs.max() - hi[0]) <= 1.5
    assert abs(ys.min() - lo[1]) <= 1.5 and abs(ys.max() - hi[1]) <= 1.5
    # alpha 0 leaves the (upscaled) image untouched
    img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    same = pv.mesh_overlay(img, v, body.faces, K, scale=2, alpha=0.0)
    assert np.array_equal(same, np.repeat(np.repeat(img, 2, 0), 2, 1))
    with pytest.raises(ValueError, match="image"):
        pv.mesh_overlay(np.zeros((64, 64)), v, body.faces, K)
    with pytest.raises(ValueError, match="alpha"):
        pv.mesh_overlay(image, v, body.faces, K, alpha=1.5)


def test_posh_explorer_steps_are_the_regressors(body):
    torch.manual_seed(0)
    reg = ps.PoshRegressor(feature_channels=3, hidden=16, iterations=3)
    torch.nn.init.normal_(reg.decoder.weight, std=0.02)
    n = 3
    joints = torch.randn(n, 18, 3) * 0.3
    feats = torch.randn(n, 3)
    K = camera_matrix(60.0, 60.0, 31.5, 31.5).expand(n, 3, 3)
    roots = torch.tensor([[0.0, 0.0, 3.0]]).expand(n, 3)
    ex = pv.PoshExplorer(reg, body, joints, feats, torch.rand(n, 3, 64, 64), K, roots, joints)
    assert ex.params == {"index": 0, "step": 3, "alpha": 0.65}
    with torch.no_grad():
        out = reg(joints[1:2], feats[1:2])
    for k in range(4):
        params = reg.mean[None] if k == 0 else out["steps"][k - 1]
        R, b = reg.split(params)
        ref = ps.smpl_output(body, R, b)["joints"]
        assert torch.allclose(ex.body_at(1, k)["joints"], ref, atol=1e-6)
    fig = ex.update(index=2, step=0, alpha=0.3)
    assert "step 0 of 3" in ex.info.value and len(fig.data) == 3
    # after the first draw the shown figure is updated in place: it matches the new figure
    # in everything that changed (overlay, vertices, skeleton, title), faces and colours kept
    shown = ex.figure
    assert fig.data[0].source == shown.data[0].source
    for axis in "xyz":
        assert np.array_equal(np.asarray(fig.data[1][axis]), np.asarray(shown.data[1][axis]))
        assert list(fig.data[2][axis]) == list(shown.data[2][axis])
    for key in ("i", "j", "k", "intensity"):
        assert np.array_equal(np.asarray(fig.data[1][key]), np.asarray(shown.data[1][key]))
    assert fig.layout.annotations[0].text == shown.layout.annotations[0].text == "mesh after 0 step(s) over the image"
    x_before = np.asarray(shown.data[1].x).copy()
    fig = ex.update(alpha=0.9)  # the same body: only the overlay changes
    assert np.array_equal(np.asarray(shown.data[1].x), x_before) and shown.data[0].source == fig.data[0].source
    assert ex.params == {"index": 2, "step": 0, "alpha": 0.9} and ex._controls["alpha"].value == 0.9
    with pytest.raises(ValueError, match="step"):
        ex.body_at(0, 4)
    with pytest.raises(ValueError, match="unknown"):
        ex.update(person=1)


def test_representation_figure_shows_the_axis_angle_jump():
    fig = pv.representation_figure(axis=(0.0, 0.0, 1.0), steps=361)
    aa = np.stack([fig.data[c].y for c in range(3)], 1)
    six = np.stack([fig.data[3 + c].y for c in range(6)], 1)
    assert aa.shape == (361, 3) and six.shape == (361, 6)
    jump_aa = np.abs(np.diff(aa, axis=0)).max()
    jump_6d = np.abs(np.diff(six, axis=0)).max()
    assert jump_aa > 5.0  # z-component goes from ~+π to ~−π at 180°
    assert jump_6d < 0.05  # cos/sin of a 1° step
