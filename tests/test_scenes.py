"""Synthetic scenes: the labels agree with the pixels and with the body model."""

import numpy as np
import pytest
import torch

from labcore import geometry as geo
from labcore.body import load_body_model, pose_body
from labcore.data import scenes
from labcore.runtime import generator
from labcore.skeletons import J18, depth_order


@pytest.fixture(scope="module")
def crops():
    return scenes.person_crops(6, seed=4, size=(48, 48), supersample=1)


@pytest.mark.parametrize("kind", scenes.BACKGROUND_KINDS)
def test_backgrounds(kind):
    a = scenes.make_background(generator(1, 0), (40, 30), kind)
    b = scenes.make_background(generator(1, 0), (40, 30), kind)
    assert a.shape == (30, 40, 3) and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)
    if kind != "plain":
        assert a.std() > 0.01


def test_background_rejects_bad_kind():
    with pytest.raises(ValueError, match="kind"):
        scenes.make_background(generator(0), (8, 8), "sky")


def test_crops_are_deterministic_and_independent_of_batching(crops):
    same = scenes.person_crops(6, seed=4, size=(48, 48), supersample=1)
    for key in crops:
        np.testing.assert_array_equal(crops[key], same[key], err_msg=key)
    # Sample i comes from its own random stream: another batching gives the same samples,
    # up to float rounding of batched matrix products (~1e-6).
    rebatched = scenes.person_crops(6, seed=4, size=(48, 48), supersample=1, batch_size=4)
    tail = scenes.person_crops(2, seed=4, size=(48, 48), supersample=1, start=4)
    for other, rows in ((rebatched, slice(None)), (tail, slice(4, None))):
        for key, value in crops.items():
            a, b = value[rows], other[key]
            if a.dtype.kind == "f":
                np.testing.assert_allclose(a, b, atol=1e-3, err_msg=key)
            elif key == "image":
                assert np.abs(a.astype(int) - b).max() <= 1
            else:
                assert (a == b).mean() > 0.999, key


def test_visibility_follows_the_crop_and_the_pixels(crops):
    for sk in ("coco17", "j18"):
        kp, vis = crops[f"keypoints_{sk}"], crops[f"visibility_{sk}"]
        inside = (kp >= -0.5).all(-1) & (kp[..., 0] <= 47.5) & (kp[..., 1] <= 47.5)
        np.testing.assert_array_equal(vis > 0, inside)
    # Keypoints the camera sees land on the person's pixels.
    kp, vis = crops["keypoints_coco17"], crops["visibility_coco17"]
    n, k = np.nonzero(vis == 2)
    cols = np.clip(np.round(kp[n, k, 0]).astype(int), 0, 47)
    rows = np.clip(np.round(kp[n, k, 1]).astype(int), 0, 47)
    on_body = crops["parts"][n, rows, cols] >= 0
    assert on_body.mean() > 0.9
    # The depth map is the person where the part mask says so, and metres away.
    person = crops["parts"] >= 0
    assert np.isinf(crops["depth"][~person]).all()
    assert (crops["depth"][person] > 1.0).all() and (crops["depth"][person] < 30.0).all()
    # Some keypoints are occluded (v = 1) in six natural poses seen from anywhere.
    assert (crops["visibility_coco17"] == 1).any()


def test_labels_agree_with_the_body_model_and_the_camera(crops):
    model = load_body_model("auto")
    state = pose_body(model, crops["global_orient"], crops["body_pose"], crops["betas"], crops["transl"])
    j18_mm = state.joints_of(J18) * 1000
    np.testing.assert_allclose(j18_mm.numpy(), crops["joints3d_j18"], atol=0.05)
    K_crop = geo.affine_to_3x3(torch.from_numpy(crops["affine"])) @ torch.from_numpy(crops["K_full"])
    uv = geo.project_points(torch.from_numpy(crops["joints3d_j18"]) / 1000, K_crop)
    np.testing.assert_allclose(uv.numpy(), crops["keypoints_j18"], atol=1e-3)
    order = depth_order(torch.from_numpy(crops["joints3d_j18"][..., 2]), J18.bones, 100.0)
    np.testing.assert_array_equal(order.numpy(), crops["bone_order_j18"])
    # The crop holds the person: the keypoint box fills most of it.
    span = crops["keypoints_coco17"].max(1) - crops["keypoints_coco17"].min(1)
    assert (span.max(1) > 20).all()


def test_person_crops_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n"):
        scenes.person_crops(0)
    with pytest.raises(ValueError, match="size"):
        scenes.person_crops(1, size=(4, 4))
    with pytest.raises(ValueError, match="families"):
        scenes.person_crops(1, families=("flying",))
    with pytest.raises(ValueError, match="jitter"):
        scenes.person_crops(1, jitter=0.9)
    with pytest.raises(ValueError, match="heading_deg"):
        scenes.person_crops(1, heading_deg=(30, -30))
    with pytest.raises(ValueError, match="heading_deg"):
        scenes.person_crops(1, heading_deg=(0, 270))
    with pytest.raises(ValueError, match="heading_deg"):
        scenes.person_crops(1, heading_deg=(-90, 0, 90))


def test_person_crops_heading_relative_to_the_camera():
    """Heading 0 faces the camera (the person's left shoulder on the image's right, the
    chest nearer than the back); 180 turns the back to it; None is any heading and leaves
    the crops of earlier versions unchanged."""
    left, right = J18.joint_names.index("left_shoulder"), J18.joint_names.index("right_shoulder")
    front = scenes.person_crops(8, seed=2, size=(32, 32), supersample=1, heading_deg=(0, 0))
    back = scenes.person_crops(8, seed=2, size=(32, 32), supersample=1, heading_deg=(180, 180))
    assert (front["keypoints_j18"][:, left, 0] > front["keypoints_j18"][:, right, 0]).all()
    assert (back["keypoints_j18"][:, left, 0] < back["keypoints_j18"][:, right, 0]).all()
    # Facing the camera, both shoulders are about as far as each other; the pose and the
    # camera are those of the same seed, only the turn differs.
    for a in (front, back):
        assert np.abs(a["joints3d_j18"][:, left, 2] - a["joints3d_j18"][:, right, 2]).mean() < 80
    np.testing.assert_array_equal(front["body_pose"], back["body_pose"])
    side = scenes.person_crops(8, seed=2, size=(32, 32), supersample=1, heading_deg=(90, 90))
    assert np.abs(side["joints3d_j18"][:, left, 2] - side["joints3d_j18"][:, right, 2]).mean() > 150
    default = scenes.person_crops(3, seed=2, size=(32, 32), supersample=1)
    explicit = scenes.person_crops(3, seed=2, size=(32, 32), supersample=1, heading_deg=None)
    for key in ("image", "keypoints_j18", "joints3d_j18"):
        np.testing.assert_array_equal(default[key], explicit[key])


def test_crowd_scene_spans_scales_and_labels_each_person():
    s = scenes.crowd_scene(3, size=(128, 96), people=(3, 4), supersample=1)
    P = len(s["keypoints"])
    assert 3 <= P <= 4
    depth = s["transl"][:, 2]
    assert depth.max() / depth.min() > 4.0
    # The tallest person on screen is over three times the shortest (poses vary heights).
    assert s["height_px"].max() / s["height_px"].min() > 3.0
    ids = set(np.unique(s["person"])) - {-1}
    assert ids <= set(range(P)) and len(ids) >= 2
    # A keypoint seen by the camera lies on its own person's pixels (or right next to them).
    hits = []
    for p in range(P):
        for k in np.flatnonzero(s["visibility"][p] == 2):
            c, r = np.clip(np.round(s["keypoints"][p, k]).astype(int), 0, [127, 95])
            window = s["person"][max(0, r - 1) : r + 2, max(0, c - 1) : c + 2]
            hits.append((window == p).any())
    assert np.mean(hits) > 0.9


def test_motion_flow_explains_the_next_frame():
    clip = scenes.motion_frames(5, n_frames=4, fps=8.0, size=(64, 64), kind="walk", supersample=1,
                                background="plain")
    gray = torch.from_numpy(clip["gray"])
    flow = torch.from_numpy(clip["flow"])
    valid = torch.from_numpy(clip["flow_valid"])
    assert flow.shape == (3, 64, 64, 2) and valid.any()
    assert flow[valid].norm(dim=-1).mean() > 0.5  # the body moves by pixels per frame
    # Backward-warp frame t+1 with the flow: it should reproduce frame t on the body better
    # than doing nothing.
    H = W = 64
    ys, xs = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    gx = (xs + flow[..., 0]) / (W - 1) * 2 - 1
    gy = (ys + flow[..., 1]) / (H - 1) * 2 - 1
    warped = torch.nn.functional.grid_sample(gray[1:, None], torch.stack([gx, gy], -1),
                                             align_corners=True)[:, 0]
    err_flow = (warped - gray[:-1])[valid].abs().mean()
    err_zero = (gray[1:] - gray[:-1])[valid].abs().mean()
    assert err_flow < 0.7 * err_zero
