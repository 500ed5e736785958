"""runtime, checks and skeletons."""

import os

import numpy as np
import pytest
import torch

import labcore as lc
from labcore import checks, runtime
from labcore.skeletons import (
    BODY_KEYPOINT_NAMES,
    COCO17,
    J18,
    SMPL24,
    SMPL_PARENTS,
    depth_order,
    get_skeleton,
)

# ----------------------------------------------------------------------------- runtime


def test_the_test_suite_runs_in_the_ci_profile():
    assert os.environ["LABCORE_PROFILE"] == "ci"
    assert runtime.profile().name == "ci"


def test_profile_selection_and_pick(monkeypatch):
    assert runtime.profile("cpu").pick(ci=1, cpu=2, gpu=3) == 2
    assert runtime.profile("gpu").pick(ci=1, cpu=2, gpu=3) == 3
    assert runtime.profile("gpu").pick(ci=1, cpu=2) == 2  # gpu falls back to cpu
    assert runtime.profile("ci").pick(ci=1, cpu=2) == 1
    monkeypatch.delenv("LABCORE_PROFILE")
    expected = "gpu" if torch.cuda.is_available() else "cpu"
    assert runtime.profile().name == expected
    monkeypatch.setenv("LABCORE_PROFILE", "fast")
    with pytest.raises(ValueError, match="LABCORE_PROFILE"):
        runtime.profile()
    with pytest.raises(ValueError, match="'name'"):
        runtime.profile("laptop")


def test_seed_all_repeats_every_generator():
    import random

    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()  # noqa: NPY002 - the legacy global RNG is what seed_all must cover

    runtime.seed_all(3)
    a = draw()
    runtime.seed_all(3)
    assert draw() == a
    with pytest.raises(TypeError, match="seed"):
        runtime.seed_all(1.5)


def test_generator_streams_are_independent_of_order():
    a = runtime.generator(5, 2).random(3)
    runtime.generator(5, 1).random(100)
    np.testing.assert_array_equal(runtime.generator(5, 2).random(3), a)
    assert not np.array_equal(runtime.generator(5, 3).random(3), a)


def test_device_respects_labcore_device(monkeypatch):
    monkeypatch.setenv("LABCORE_DEVICE", "cpu")
    assert runtime.device().type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            runtime.device("cuda")


def test_package_exposes_floors_lazily():
    assert lc.__version__ == "0.1.0"
    assert lc.skeletons.get_skeleton is get_skeleton
    assert lc.geometry.__name__ == "labcore.geometry"
    with pytest.raises(AttributeError):
        lc.no_such_module  # noqa: B018


# ----------------------------------------------------------------------------- checks


def test_as_tensor_converts_and_binds_named_sizes():
    dims = {}
    kp = checks.as_tensor(np.zeros((2, 17, 2), np.float64), "keypoints", shape=("N", "K", 2), dims=dims)
    assert kp.dtype == torch.float32 and dims == {"N": 2, "K": 17}
    checks.as_tensor([[1, 0] * 8 + [1]] * 2, "visible", shape=("N", "K"), dims=dims)
    with pytest.raises(ValueError, match=r"visible: expected shape \(N=2, K=17\), got \(2, 16\)"):
        checks.as_tensor(np.ones((2, 16)), "visible", shape=("N", "K"), dims=dims)
    x = checks.as_tensor(torch.zeros(4, 5, 3), "points", shape=(..., 3))
    assert x.shape == (4, 5, 3)


@pytest.mark.parametrize(
    "value, kwargs, error, match",
    [
        (np.array([1.0, np.nan]), {}, ValueError, "1 NaN"),
        (np.array([np.inf]), {}, ValueError, "1 inf"),
        (np.array(["a"]), {}, TypeError, "numbers"),
        ("text", {}, TypeError, "got str"),
        (np.array([True]), {}, TypeError, "bool"),
        (np.zeros((0, 3)), {}, ValueError, "non-empty"),
        (np.zeros(3), {"shape": (None, 2)}, ValueError, "expected shape"),
        (np.array([1.5]), {"dtype": torch.int64}, TypeError, "integer"),
    ],
)
def test_as_tensor_rejects_bad_input_clearly(value, kwargs, error, match):
    with pytest.raises(error, match=match):
        checks.as_tensor(value, "arg", **kwargs)


def test_scalar_checks():
    assert checks.check_number(2, "sigma", low=0.0, low_inclusive=False) == 2.0
    with pytest.raises(ValueError, match="sigma: expected a value > 0"):
        checks.check_number(0.0, "sigma", low=0.0, low_inclusive=False)
    with pytest.raises(ValueError, match="finite"):
        checks.check_number(float("nan"), "sigma")
    with pytest.raises(TypeError, match="real number"):
        checks.check_number("2", "sigma")
    assert checks.check_int(np.int64(3), "k", low=1) == 3
    with pytest.raises(TypeError):
        checks.check_int(True, "k")
    with pytest.raises(ValueError, match="k: expected an int <= 4"):
        checks.check_int(5, "k", high=4)
    assert checks.check_size2(64, "size") == (64, 64)
    with pytest.raises(TypeError, match="size"):
        checks.check_size2((64,), "size")
    with pytest.raises(ValueError, match="one of"):
        checks.check_choice("x", "mode", ("a", "b"))


def test_require_file_names_the_missing_file(tmp_path):
    with pytest.raises(checks.MissingFileError, match="model.pkl.*register first") as info:
        checks.require_file(tmp_path / "model.pkl", "path", hint="register first")
    assert isinstance(info.value, ValueError) and isinstance(info.value, FileNotFoundError)
    f = tmp_path / "x.txt"
    f.write_text("ok")
    assert checks.require_file(f, "path") == f


# ----------------------------------------------------------------------------- skeletons


def test_skeleton_structures():
    assert (COCO17.num_joints, J18.num_joints, SMPL24.num_joints) == (17, 18, 24)
    assert len(BODY_KEYPOINT_NAMES) == 46
    assert SMPL24.bones == tuple((p, j) for j, p in enumerate(SMPL_PARENTS) if p >= 0)
    for sk in (COCO17, J18, SMPL24):
        perm = sk.flip_index
        np.testing.assert_array_equal(perm[perm], np.arange(sk.num_joints))  # an involution
        for a, b in sk.flip_pairs:
            assert sk.sides[a] != sk.sides[b] and "center" not in (sk.sides[a], sk.sides[b])
    # HEMlets' J18 order and its 17 drawn connections (inference/table.py).
    assert J18.joint_names[:4] == ("pelvis", "right_hip", "right_knee", "right_ankle")
    assert J18.flip_pairs == ((1, 4), (2, 5), (3, 6), (14, 11), (15, 12), (16, 13))
    assert len(J18.bones) == 17
    assert COCO17.coco_category()["skeleton"][0] == [16, 14]  # 1-based, as in COCO's files
    assert get_skeleton("j18") is J18
    with pytest.raises(ValueError, match="skeleton"):
        get_skeleton("h36m32")


def test_from_body_maps_keypoints_for_numpy_and_torch():
    pts = torch.randn(2, 46, 3)
    coco = COCO17.from_body(pts)
    torch.testing.assert_close(coco[:, 0], pts[:, BODY_KEYPOINT_NAMES.index("nose")])
    j18 = J18.from_body(pts.numpy())
    l_sh, r_sh = BODY_KEYPOINT_NAMES.index("left_shoulder"), BODY_KEYPOINT_NAMES.index("right_shoulder")
    np.testing.assert_allclose(j18[:, 17], (pts[:, l_sh] + pts[:, r_sh]).numpy() / 2, atol=1e-6)
    with pytest.raises(ValueError, match="46"):
        COCO17.from_body(torch.zeros(2, 45, 3))


def test_flip_mirrors_and_swaps():
    kp = torch.zeros(1, 17, 2)
    kp[0, 5] = torch.tensor([10.0, 20.0])  # left shoulder
    flipped = COCO17.flip(kp, image_width=64)
    torch.testing.assert_close(flipped[0, 6], torch.tensor([53.0, 20.0]))  # now the right one
    torch.testing.assert_close(COCO17.flip(flipped, 64), kp)


def test_depth_order_is_strict_at_the_threshold():
    z = torch.tensor([[1000.0, 1100.0, 900.0, 1100.1, 899.9]])
    pairs = [(0, 1), (0, 2), (0, 3), (0, 4)]
    assert depth_order(z, pairs, 100.0).tolist() == [[0, 0, 1, -1]]
    with pytest.raises(ValueError, match="threshold"):
        depth_order(z, pairs, -1.0)
    with pytest.raises(ValueError, match="pairs"):
        depth_order(z, [(0, 9)], 10.0)


def test_check_finite_fast_path_and_overflowing_sums():
    from labcore.checks import check_finite

    big = torch.full((4,), 3e38)  # finite values whose float32 sum overflows to inf
    assert check_finite(big, "x") is big
    for bad, counts in ((float("nan"), "1 NaN and 0 inf"), (float("inf"), "0 NaN and 1 inf")):
        t = torch.zeros(5)
        t[2] = bad
        with pytest.raises(ValueError, match=counts):
            check_finite(t, "x")
    assert check_finite(torch.zeros(0), "x").numel() == 0
