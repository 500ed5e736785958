"""Tests of labcore.heatmaps: hand-computed cases, and agreement with straightforward
per-keypoint numpy re-implementations of the published algorithms (mmpose
``generate_gaussian_heatmaps`` / ``refine_keypoints`` / ``refine_keypoints_dark``,
HigherHRNet ``HeatmapGenerator``, HRNet ``get_final_preds``) in ``reference_codecs.py``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from reference_codecs import (
    ref_argmax,
    ref_blur,
    ref_dark,
    ref_higherhrnet,
    ref_msra,
    ref_refine_mmpose,
    ref_refine_official,
)

from labcore import heatmaps as hmz

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------- strategies

SPECIAL = [
    -40.0,
    -13.0,
    -8.0,
    -6.5,
    -2.0,
    -1.5,
    -0.7,
    -0.5,
    0.0,
    0.5,
    1.5,
    2.0,
    31.0,
    31.5,
    32.0,
    33.5,
    38.0,
    47.0,
    48.0,
    60.0,
]


def coord_arrays(shape):
    elements = st.one_of(
        st.floats(-30.0, 80.0, width=32, allow_nan=False), st.sampled_from(SPECIAL)
    )
    return hnp.arrays(np.float32, shape, elements=elements)


@st.composite
def msra_case(draw):
    n = draw(st.integers(1, 3))
    k = draw(st.integers(1, 4))
    kp = draw(coord_arrays((n, k, 2)))
    vis = draw(hnp.arrays(np.float32, (n, k), elements=st.sampled_from([0.0, 1.0])))
    input_size, heatmap_size = draw(
        st.sampled_from(
            [((32, 48), (8, 12)), ((48, 64), (12, 16)), ((30, 40), (8, 10)), ((32, 32), (16, 16))]
        )
    )
    sigma = draw(st.sampled_from([1, 2, 3, 2.0, 0.5, 0.7, 1.5, 2.5]))
    return kp, vis, input_size, heatmap_size, sigma


# ----------------------------------------------------------------------------- round_centers


def test_round_centers_modes_by_hand():
    x = np.array([-1.5, -0.7, -0.5, -0.2, 0.49, 0.5, 1.5, 2.5, 3.7], np.float32)
    assert hmz.round_centers(x, "msra").tolist() == [-1, 0, 0, 0, 0, 1, 2, 3, 4]
    assert hmz.round_centers(x, "trunc").tolist() == [-1, 0, 0, 0, 0, 0, 1, 2, 3]
    assert hmz.round_centers(x, "round").tolist() == [-2, -1, 0, 0, 0, 0, 2, 2, 4]
    assert torch.equal(hmz.round_centers(x, "float"), torch.from_numpy(x))
    # msra is exactly numpy's (x + 0.5).astype(int64) (C truncation, not floor)
    assert hmz.round_centers(x, "msra").tolist() == (x + 0.5).astype(np.int64).tolist()
    assert hmz.round_centers(x, "round").tolist() == np.around(x).tolist()
    r = hmz.round_centers(x, "msra")
    assert not torch.signbit(r[r == 0]).any()  # no -0.0


def test_round_centers_bad_mode():
    with pytest.raises(ValueError, match="mode"):
        hmz.round_centers(np.zeros(3), "nearest")
    with pytest.raises(ValueError, match="points"):
        hmz.round_centers(np.array([np.nan]), "msra")


# ----------------------------------------------------------------------------- gaussian_heatmaps


def test_gaussian_5x5_by_hand():
    maps, inb = hmz.gaussian_heatmaps(torch.tensor([[[2.0, 2.0]]]), (5, 5), 1.0)
    assert maps.shape == (1, 1, 5, 5) and maps.dtype == torch.float32 and bool(inb.all())
    rows, cols = np.mgrid[0:5, 0:5]
    expect = np.exp(-((cols - 2) ** 2 + (rows - 2) ** 2) / 2.0)
    np.testing.assert_allclose(maps[0, 0].numpy(), expect, rtol=1e-6, atol=1e-7)
    assert maps[0, 0, 2, 2] == 1.0
    assert maps[0, 0, 1, 2] == pytest.approx(math.exp(-0.5))


def test_gaussian_zero_outside_square_box():
    maps, _ = hmz.gaussian_heatmaps(torch.tensor([[[5.0, 5.0]]]), (11, 11), 1.0)  # radius 3
    m = maps[0, 0]
    assert (m[:, :2] == 0).all() and (m[:, 9:] == 0).all()
    assert (m[:2] == 0).all() and (m[9:] == 0).all()
    assert m[8, 8] == pytest.approx(math.exp(-9.0))  # the square box keeps its corners
    maps, _ = hmz.gaussian_heatmaps(torch.tensor([[[3.0, 3.0]]]), (7, 7), 1.0, radius=1)
    assert int((maps[0, 0] > 0).sum()) == 9


def test_gaussian_float_centre_and_normalize_and_visibility():
    c = torch.tensor([[[2.3, 4.6], [1.0, 1.0]]])
    maps, _ = hmz.gaussian_heatmaps(c, (8, 9), 1.5, visible=torch.tensor([[1.0, 0.0]]))
    assert maps[0, 0, 4, 2] == pytest.approx(math.exp(-(0.09 + 0.36) / 4.5), rel=1e-6)
    assert (maps[0, 1] == 0).all()  # invisible
    norm, _ = hmz.gaussian_heatmaps(c, (8, 9), 1.5, visible=np.array([[1, 0]]), normalize=True)
    assert norm[0, 0].sum() == pytest.approx(1.0, abs=1e-6)
    assert (norm[0, 1] == 0).all() and torch.isfinite(norm).all()


def test_gaussian_in_bounds_matches_mmpose_test():
    r, w, h = 3.0, 10, 6
    xs = [-r - 1, -r - 1.5, w + r - 0.5, w + r, 5.0]
    c = torch.tensor([[[x, 2.0] for x in xs]])
    maps, inb = hmz.gaussian_heatmaps(c, (w, h), 1.0)
    assert inb[0].tolist() == [True, False, True, False, True]
    assert (maps[0, 0] == 0).all()  # "in bounds" by mmpose's +1, yet nothing touched


def test_gaussian_errors():
    c = torch.zeros(1, 2, 2)
    with pytest.raises(ValueError, match="sigma"):
        hmz.gaussian_heatmaps(c, (4, 4), 0.0)
    with pytest.raises(ValueError, match="sigma"):
        hmz.gaussian_heatmaps(c, (4, 4), -1)
    with pytest.raises(ValueError, match="visible"):
        hmz.gaussian_heatmaps(c, (4, 4), 1.0, visible=torch.ones(1, 3))
    with pytest.raises(ValueError, match="visible"):
        hmz.gaussian_heatmaps(c, (4, 4), 1.0, visible=torch.full((1, 2), 0.5))
    with pytest.raises(ValueError, match="centers"):
        hmz.gaussian_heatmaps(torch.full((1, 2, 2), float("nan")), (4, 4), 1.0)
    with pytest.raises(ValueError, match="centers"):
        hmz.gaussian_heatmaps(torch.zeros(0, 2, 2), (4, 4), 1.0)
    with pytest.raises(ValueError, match="centers"):
        hmz.gaussian_heatmaps(torch.zeros(2, 2), (4, 4), 1.0)
    with pytest.raises(TypeError, match="heatmap_size"):
        hmz.gaussian_heatmaps(c, (4, 4, 4), 1.0)
    with pytest.raises(ValueError, match="radius"):
        hmz.gaussian_heatmaps(c, (4, 4), 1.0, radius=-1)


# ----------------------------------------------------------------------------- msra_heatmaps


@SETTINGS
@given(msra_case())
def test_msra_matches_mmpose_reference(case):
    kp, vis, input_size, heatmap_size, sigma = case
    maps, weights = hmz.msra_heatmaps(kp, vis, input_size, heatmap_size, sigma)
    ref_maps, ref_weights = ref_msra(kp, vis, input_size, heatmap_size, sigma)
    np.testing.assert_array_equal(weights.numpy(), ref_weights)
    np.testing.assert_allclose(maps.numpy(), ref_maps, rtol=0, atol=2e-7)
    np.testing.assert_array_equal(maps.numpy() > 0, ref_maps > 0)  # identical support


def test_msra_centre_rounding_negative_and_half():
    # stride 4: x = -2.8 -> -0.7 -> int(-0.2) = 0 (not -1); x = 2 -> 0.5 -> 1; y = 6 -> 1.5 -> 2
    kp = np.array([[[-2.8, 6.0], [2.0, -2.0]]], np.float32)
    maps, weights = hmz.msra_heatmaps(kp, None, (32, 32), (8, 8), 1)
    assert weights.tolist() == [[1.0, 1.0]]
    assert maps[0, 0, 2, 0] == 1.0 and maps[0, 1, 0, 1] == 1.0


def test_msra_out_of_bounds_weight_and_quirk():
    # stride 4, sigma 2 (radius 6): x = -30 -> mu = int(-7.5 + 0.5) = -7 -> right = 0: kept
    # with an empty map; x = -34 -> mu = -8 -> right = -1: weight 0
    kp = np.array([[[-30.0, 8.0], [-34.0, 8.0], [8.0, 8.0]]], np.float32)
    vis = np.array([[1, 1, 0]], np.float32)
    maps, weights = hmz.msra_heatmaps(kp, vis, (64, 64), (16, 16), 2)
    assert weights.tolist() == [[1.0, 0.0, 0.0]]
    assert (maps == 0).all()


def test_msra_errors():
    kp = np.zeros((2, 3, 2), np.float32)
    with pytest.raises(ValueError, match="visible"):
        hmz.msra_heatmaps(kp, np.ones((3, 2)), (32, 32), (8, 8), 2)
    with pytest.raises(ValueError, match="sigma"):
        hmz.msra_heatmaps(kp, None, (32, 32), (8, 8), 0)
    with pytest.raises(ValueError, match="keypoints"):
        hmz.msra_heatmaps(np.zeros((0, 3, 2)), None, (32, 32), (8, 8), 2)
    with pytest.raises(ValueError, match="input_size"):
        hmz.msra_heatmaps(kp, None, (0, 32), (8, 8), 2)


@SETTINGS
@given(
    hnp.arrays(np.float32, (2, 5, 2), elements=st.floats(0.0, 1.0, width=32)),
    st.sampled_from([((32, 48), (8, 12), 2), ((48, 64), (24, 32), 2), ((64, 64), (16, 16), 1)]),
)
def test_round_trip_within_half_stride(unit, sizes):
    """encode -> argmax -> refine_quarter -> x stride recovers every keypoint whose MSRA
    centre lies on the map within stride/2 px (the quantisation floor)."""
    input_size, heatmap_size, sigma = sizes
    stride = np.array(input_size, np.float32) / np.array(heatmap_size, np.float32)
    kp = (unit * (np.array(input_size, np.float32) - 1)).astype(np.float32)
    maps, weights = hmz.msra_heatmaps(kp, None, input_size, heatmap_size, sigma)
    coords, _ = hmz.argmax_2d(maps)
    for border in ("mmpose", "official"):
        dec = hmz.refine_quarter(coords, maps, border=border).numpy() * stride
        mu = (kp / stride + 0.5).astype(np.int64)
        on_map = ((mu >= 0) & (mu < np.array(heatmap_size))).all(-1)
        err = np.abs(dec - kp)[on_map]
        assert (err <= stride / 2 + 1e-4).all()
        assert weights.numpy()[on_map].all()


# ----------------------------------------------------------------------------- higherhrnet


@st.composite
def bottom_up_case(draw):
    n, p, k = draw(st.integers(1, 2)), draw(st.integers(0, 3)), draw(st.integers(1, 3))
    kp = draw(coord_arrays((n, p, k, 2)))
    vis = draw(hnp.arrays(np.float32, (n, p, k), elements=st.sampled_from([0.0, 1.0])))
    size = draw(st.sampled_from([(32, 32), (48, 40), (20, 36)]))
    sigma = draw(st.sampled_from([1, 2, 2.0, 1.5, 2.5]))
    return kp, vis, size, sigma


@SETTINGS
@given(bottom_up_case())
def test_higherhrnet_matches_official_reference(case):
    kp, vis, size, sigma = case
    got = hmz.higherhrnet_heatmaps(kp, vis, size, sigma)
    ref = ref_higherhrnet(kp, vis, size, sigma)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got.numpy(), ref, rtol=0, atol=2e-7)
    np.testing.assert_array_equal(got.numpy() > 0, ref > 0)


def test_higherhrnet_by_hand():
    # sigma 1: kernel of 9 samples centred at 4 -> support |d| <= 4 around int(x), int(y)
    kp = np.array(
        [[[[5.9, 5.2], [-0.5, 3.0], [16.0, 3.0]], [[7.0, 5.0], [0.0, 0.0], [1.0, 1.0]]]], np.float32
    )
    vis = np.array([[[1, 1, 1], [1, 0, 0]]], np.float32)
    maps = hmz.higherhrnet_heatmaps(kp, vis, (16, 12), 1)
    m = maps[0, 0]
    assert m[5, 5] == 1.0 and m[5, 7] == 1.0  # two people merged by max
    assert m[5, 1] == pytest.approx(math.exp(-8.0))  # d = 4 from (5, 5): inside
    assert m[5, 0] == 0.0 and m[10, 5] == 0.0  # d = 5: outside
    assert maps[0, 1, 3, 0] == 1.0  # int(-0.5) = 0: kept on column 0
    assert (maps[0, 2] == 0).all()  # x = 16 >= w: skipped


def test_merge_max():
    a = torch.tensor([[[[0.0, 2.0]], [[1.0, 1.0]]]])  # (1, 2, 1, 2)
    assert hmz.merge_max(a, dim=1).tolist() == [[[1.0, 2.0]]]
    with pytest.raises(ValueError, match="dim"):
        hmz.merge_max(a, dim=4)
    with pytest.raises(ValueError, match="heatmaps"):
        hmz.merge_max(torch.zeros(1, 0, 2), dim=1)


# ----------------------------------------------------------------------------- argmax


def test_argmax_ties_first_and_invalid_rule():
    hm = torch.zeros(1, 4, 3, 4)
    hm[0, 0, 1, 3] = 5.0
    hm[0, 0, 2, 0] = 5.0  # tie: the first in row-major order wins -> (3, 1)
    hm[0, 1] = -1.0  # all negative -> invalid
    hm[0, 3, 2, 1] = 0.5
    coords, vals = hmz.argmax_2d(hm)
    assert coords[0].tolist() == [[3.0, 1.0], [-1.0, -1.0], [-1.0, -1.0], [1.0, 2.0]]
    assert vals[0].tolist() == [5.0, -1.0, 0.0, 0.5]
    assert hmz.argmax_2d(hm, invalid_to=0.0)[0][0, 1].tolist() == [0.0, 0.0]  # HRNet
    assert hmz.argmax_2d(hm, invalid_to=None)[0][0, 1].tolist() == [0.0, 0.0]  # raw argmax
    assert coords.dtype == torch.float32


@SETTINGS
@given(hnp.arrays(np.float32, (2, 3, 5, 6), elements=st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0])))
def test_argmax_matches_reference(maps):
    coords, vals = hmz.argmax_2d(maps)
    ref_c, ref_v = ref_argmax(maps)
    np.testing.assert_array_equal(coords.numpy(), ref_c)
    np.testing.assert_array_equal(vals.numpy(), ref_v)


def test_argmax_any_leading_shape():
    coords, vals = hmz.argmax_2d(torch.rand(4, 5))
    assert coords.shape == (2,) and vals.shape == ()
    with pytest.raises(ValueError, match="heatmaps"):
        hmz.argmax_2d(torch.rand(5))


# ----------------------------------------------------------------------------- refine


@SETTINGS
@given(
    hnp.arrays(np.float32, (2, 3, 6, 7), elements=st.sampled_from([0.0, 0.25, 0.5, 1.0])),
    hnp.arrays(np.int64, (2, 3, 2), elements=st.integers(-1, 7)),
    st.floats(-0.49, 0.49),
)
def test_refine_quarter_matches_references(maps, icoords, frac):
    coords = icoords.astype(np.float32)
    got = hmz.refine_quarter(coords, maps, border="mmpose").numpy()
    np.testing.assert_array_equal(got, ref_refine_mmpose(coords, maps))
    shifted = (coords + np.float32(frac)).astype(np.float32)  # official rounds to nearest
    got = hmz.refine_quarter(shifted, maps, border="official").numpy()
    np.testing.assert_array_equal(got, ref_refine_official(shifted, maps))


def test_refine_quarter_borders_differ_by_hand():
    hm = torch.zeros(1, 1, 5, 5)
    hm[0, 0, 1, 3] = 1.0  # right neighbour of (2, 1) larger
    c = torch.tensor([[[2.0, 1.0]]])
    assert hmz.refine_quarter(c, hm, "mmpose").tolist() == [[[2.25, 1.0]]]  # 0 < y ok for x
    assert hmz.refine_quarter(c, hm, "official").tolist() == [[[2.0, 1.0]]]  # needs 1 < y
    flat = torch.ones(1, 1, 5, 5)
    assert hmz.refine_quarter(torch.tensor([[[2.0, 2.0]]]), flat).tolist() == [[[2.0, 2.0]]]


def test_refine_errors():
    with pytest.raises(ValueError, match="border"):
        hmz.refine_quarter(torch.zeros(1, 1, 2), torch.zeros(1, 1, 4, 4), border="hrnet")
    with pytest.raises(ValueError, match="coords"):
        hmz.refine_quarter(torch.zeros(1, 2, 2), torch.zeros(1, 1, 4, 4))
    nan_map = torch.zeros(1, 1, 6, 6)
    nan_map[0, 0, 3, 4] = float("nan")  # right neighbour of (3, 3)
    with pytest.raises(ValueError, match="heatmaps"):
        hmz.refine_quarter(torch.tensor([[[3.0, 3.0]]]), nan_map)
    with pytest.raises(ValueError, match="heatmaps"):
        hmz.dark_refine(torch.tensor([[[3.0, 3.0]]]), nan_map)
    with pytest.raises(ValueError, match="heatmaps"):
        hmz.argmax_2d(nan_map)
    with pytest.raises(ValueError, match="blur_kernel"):
        hmz.dark_refine(torch.zeros(1, 1, 2), torch.zeros(1, 1, 4, 4), blur_kernel=4)


# ----------------------------------------------------------------------------- DARK


def _float_gaussians(seed, n=3, k=4, size=(24, 20), sigma=2.0):
    g = torch.Generator().manual_seed(seed)
    w, h = size
    centres = torch.rand(n, k, 2, generator=g) * torch.tensor([w - 10.0, h - 10.0]) + 5.0
    maps, _ = hmz.gaussian_heatmaps(centres, size, sigma, radius=100.0)
    return centres, maps


@pytest.mark.parametrize("kernel", [3, 7, 11])
def test_gaussian_blur_matches_mmpose_cv2(kernel):
    _, maps = _float_gaussians(0)
    maps = maps + 0.05 * torch.rand(maps.shape, generator=torch.Generator().manual_seed(1))
    got = hmz.gaussian_blur(maps, kernel).numpy()
    np.testing.assert_allclose(got, ref_blur(maps.numpy(), kernel), atol=2e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_dark_matches_mmpose_reference(seed):
    _, maps = _float_gaussians(seed)
    noise = 0.02 * torch.rand(maps.shape, generator=torch.Generator().manual_seed(seed + 7))
    maps = maps + noise
    coords, _ = hmz.argmax_2d(maps)
    coords[0, 0] = torch.tensor([1.0, 5.0])  # border: untouched
    got = hmz.dark_refine(coords, maps, blur_kernel=11).numpy()
    ref = ref_dark(coords.numpy(), maps.numpy(), 11)
    np.testing.assert_allclose(got, ref, atol=2e-4)
    assert got[0, 0].tolist() == [1.0, 5.0]


def test_dark_reduces_argmax_error():
    centres, maps = _float_gaussians(3, n=8, k=4, size=(48, 40), sigma=2.0)
    coords, _ = hmz.argmax_2d(maps)
    err_argmax = (coords - centres).norm(dim=-1).mean()
    err_quarter = (hmz.refine_quarter(coords, maps) - centres).norm(dim=-1).mean()
    err_dark = (hmz.dark_refine(coords, maps) - centres).norm(dim=-1).mean()
    assert err_dark < 0.2 * err_argmax and err_dark < err_quarter
    assert err_dark < 0.1


def test_dark_flat_map_is_skipped():
    coords = torch.tensor([[[5.0, 5.0]]])
    out = hmz.dark_refine(coords, torch.zeros(1, 1, 12, 12))  # det == 0 everywhere
    assert out.tolist() == [[[5.0, 5.0]]]


# ----------------------------------------------------------------------------- soft-argmax


def test_make_grid_values():
    assert hmz.make_grid(4).tolist() == [0, 1, 2, 3]
    assert hmz.make_grid(5, "hemlets").tolist() == [-0.5, -0.25, 0.0, 0.25, 0.5]
    assert hmz.make_grid(4, "mmpose").tolist() == [0.0, 0.25, 0.5, 0.75]
    assert hmz.make_grid(3, dtype=torch.float64).dtype == torch.float64
    with pytest.raises(ValueError, match="kind"):
        hmz.make_grid(4, "linspace")
    with pytest.raises(ValueError, match="n"):
        hmz.make_grid(1, "hemlets")
    with pytest.raises(TypeError, match="n"):
        hmz.make_grid(4.0)


@pytest.mark.parametrize("kind", hmz.GRID_KINDS)
def test_softmax_expectation_one_hot_3d_axis_order(kind):
    d, h, w = 3, 4, 5  # all different, so a swapped axis cannot pass
    logits = torch.zeros(2, 6, d, h, w)
    cells = [(0, 0, 0), (2, 3, 4), (1, 2, 0), (2, 0, 3), (0, 3, 1), (1, 1, 2)]
    for j, (z, y, x) in enumerate(cells):
        logits[1, j, z, y, x] = 1e4
    gx, gy, gz = (hmz.make_grid(n, kind) for n in (w, h, d))
    out = hmz.softmax_expectation(logits, [gx, gy, gz])
    assert out.shape == (2, 6, 3)
    expect = torch.tensor([[gx[x], gy[y], gz[z]] for z, y, x in cells])
    assert torch.equal(out[1], expect)  # exact
    uniform = torch.tensor([gx.mean(), gy.mean(), gz.mean()])
    torch.testing.assert_close(out[0], uniform.expand(6, 3))


@pytest.mark.parametrize("kind", hmz.GRID_KINDS)
def test_softmax_expectation_one_hot_2d_and_1d(kind):
    h, w = 3, 7
    logits = torch.full((4, h, w), -50.0)
    logits[0, 2, 5] = 60.0
    logits[1, 0, 6] = 60.0
    logits[2, 1, 0] = 60.0
    logits[3, 2, 0] = 60.0
    gx, gy = hmz.make_grid(w, kind), hmz.make_grid(h, kind)
    out = hmz.softmax_expectation(logits, (gx, gy))
    expect = torch.stack([torch.stack([gx[x], gy[y]]) for y, x in [(2, 5), (0, 6), (1, 0), (2, 0)]])
    assert torch.equal(out, expect)
    one = hmz.softmax_expectation(logits[:, 2], [gx])  # (4, w) -> (4, 1)
    assert one.shape == (4, 1) and one[0, 0] == gx[5]


def test_softmax_expectation_beta_and_gradient():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    grids = [hmz.make_grid(5, "mmpose", dtype=torch.float64), hmz.make_grid(4, dtype=torch.float64)]
    out = hmz.softmax_expectation(logits, grids, beta=2.0)
    out.sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    assert torch.autograd.gradcheck(
        lambda x: hmz.softmax_expectation(x, grids, beta=2.0), (logits,)
    )
    # beta is an inverse temperature on the logits
    torch.testing.assert_close(out, hmz.softmax_expectation(2.0 * logits, grids))


def test_softmax_expectation_errors():
    x = torch.zeros(2, 4, 5)
    g5, g4 = hmz.make_grid(5), hmz.make_grid(4)
    with pytest.raises(ValueError, match=r"grids\[1\]"):
        hmz.softmax_expectation(x, [g5, g5])  # y grid must have h = 4 values
    with pytest.raises(ValueError, match=r"grids\[0\]"):
        hmz.softmax_expectation(x, [g4, g5])  # swapped order
    with pytest.raises(ValueError, match="grids"):
        hmz.softmax_expectation(x, [])
    with pytest.raises(ValueError, match="grids"):
        hmz.softmax_expectation(x, [g5, g4, g4, g4])
    with pytest.raises(TypeError, match="grids"):
        hmz.softmax_expectation(x, g5)
    with pytest.raises(ValueError, match="beta"):
        hmz.softmax_expectation(x, [g5, g4], beta=0.0)
    with pytest.raises(ValueError, match="logits"):
        hmz.softmax_expectation(torch.full((2, 4, 5), float("nan")), [g5, g4])
    with pytest.raises(ValueError, match="logits"):
        hmz.softmax_expectation(torch.zeros(5), [g5, g4])


def test_dark_clamped_stencil_takes_exact_full_blur_path(monkeypatch):
    """Where the 1e-10 clamp bites, mmpose's max-rescaling matters: the full-map path."""
    maps = torch.zeros(1, 2, 20, 24)
    maps[0, 0, 10, 10] = 1.0
    maps[0, 0, :, 13] = -0.2  # blurred value at x + 2 goes negative -> clamped
    maps[0, 1] = hmz.gaussian_heatmaps(torch.tensor([[[10.3, 9.6]]]), (24, 20), 2.0)[0][0, 0]
    calls = []
    original = hmz._blur

    def spy(hm, kernel, name):
        calls.append(hm.shape[0])
        return original(hm, kernel, name)

    monkeypatch.setattr(hmz, "_blur", spy)
    coords = torch.tensor([[[10.0, 10.0], [10.0, 10.0]]])
    got = hmz.dark_refine(coords, maps).numpy()
    assert calls == [1]  # only the clamped map is blurred in full
    monkeypatch.setattr(hmz, "_blur", original)
    np.testing.assert_allclose(got, ref_dark(coords.numpy(), maps.numpy(), 11), atol=1e-4)
    assert not np.allclose(got[0, 0], [10.0, 10.0])
