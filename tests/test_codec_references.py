"""labcore's batched codecs against the per-keypoint numpy references of
``reference_codecs.py`` (mmpose / official SimCC conventions), on random cases that
include keypoints on the border, outside the image, and invisible ones.

Encoders: maps and label vectors to float32 tolerance, weights exactly. Decoders are fed
network-like outputs — the targets plus noise, random positive maps, maps whose maximum is
≤ 0 — so that every refinement branch (border tests, DARK's clamp, the ``-1`` marker) runs;
decoded keypoints agree to ~1e-4 input pixels and scores to float32 tolerance.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from reference_codecs import (
    ref_dark_decode,
    ref_dark_encode,
    ref_integral_decode,
    ref_integral_encode,
    ref_msra,
    ref_msra_decode,
    ref_regression_decode,
    ref_regression_encode,
    ref_sa_simdr,
    ref_simcc_decode,
    ref_simcc_gaussian,
    ref_simcc_standard,
    ref_simdr_decode,
    ref_simdr_onehot,
    ref_udp_decode,
    ref_udp_encode,
)

from labcore.codec import CoordinateRegression
from labcore.methods.heatmap import GaussianHeatmap, IntegralHeatmap
from labcore.methods.simdr import SimDR

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

MAP_ATOL = 1e-5  # float32 maps and label vectors
KP_ATOL = 1e-4  # decoded keypoints, input pixels

# (input (W, H), heatmap (w, h)); strides 4, 4, 3.75 × 4 and 4 × 3.5 (non-integer on purpose)
HEATMAP_SIZES = [
    ((48, 64), (12, 16)),
    ((32, 32), (8, 8)),
    ((30, 40), (8, 10)),
    ((40, 56), (10, 16)),
]
SIGMAS = [1.0, 2.0, 1.5, 3.0, 2.5]


def np_(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


# ----------------------------------------------------------------------------- strategies


def axis_values(size: int, bins: int, sigma: float, unit: float) -> st.SearchStrategy[float]:
    """Coordinates along one axis of an image of ``size`` pixels whose codec grid has
    ``bins`` cells of ``unit`` pixels: uniform over the image and a margin around it, plus
    the values where the published rules switch (borders, half cells, the 3σ box edges)."""
    r = 3 * sigma
    special = [
        0.0, -0.5, 0.5, -1.0, size - 1.0, size - 0.5, size + 0.0, size + 0.5,
        0.5 * unit, -0.5 * unit, (bins - 0.5) * unit, (bins - 1) * unit,
        -(r + 1) * unit, -(r + 0.5) * unit, -(r + 1.5) * unit, -r,
        (bins + r) * unit, (bins + r - 0.5) * unit, (bins + r + 0.5) * unit, size + r,
        -100.0, size + 100.0,
    ]  # fmt: skip
    return st.one_of(
        st.floats(float(np.float32(-0.3 * size)), float(np.float32(1.3 * size)), width=32),
        st.sampled_from([float(np.float32(v)) for v in special]),
    )


@st.composite
def keypoints(draw, input_size, grid_size, sigma, n_max=3, k_max=4):
    """``kp (N, K, 2)`` float32 and ``vis (N, K)`` in {0, 1}."""
    n, k = draw(st.integers(1, n_max)), draw(st.integers(1, k_max))
    cols = []
    for axis in (0, 1):
        unit = input_size[axis] / grid_size[axis]
        elems = axis_values(input_size[axis], grid_size[axis], sigma, unit)
        cols.append(draw(hnp.arrays(np.float32, (n, k), elements=elems)))
    kp = np.stack(cols, -1).astype(np.float32)
    vis = draw(hnp.arrays(np.float32, (n, k), elements=st.sampled_from([0.0, 1.0, 1.0])))
    return kp, vis


@st.composite
def heatmap_case(draw):
    input_size, heatmap_size = draw(st.sampled_from(HEATMAP_SIZES))
    sigma = draw(st.sampled_from(SIGMAS))
    kp, vis = draw(keypoints(input_size, heatmap_size, sigma))
    return kp, vis, input_size, heatmap_size, sigma


def network_like(targets: np.ndarray, seed: int, kind: str) -> np.ndarray:
    """Plausible network outputs around ``targets (N, K, h, w)``.

    ``'clean'`` the targets; ``'uniform'`` plus U(0, 0.05); ``'normal'`` plus N(0, 0.03²)
    (negative values: DARK's clamp path); ``'random'`` U(0, 1) maps; ``'mixed'`` the
    normal case with one map per crop negated and one zeroed (maximum ≤ 0 → ``-1``)."""
    rng = np.random.default_rng(seed)
    t = targets.astype(np.float32)
    if kind == "clean":
        out = t.copy()
    elif kind == "uniform":
        out = t + 0.05 * rng.random(t.shape, dtype=np.float32)
    elif kind == "normal":
        out = t + 0.03 * rng.standard_normal(t.shape, dtype=np.float32)
    elif kind == "random":
        out = rng.random(t.shape, dtype=np.float32)
    else:
        out = t + 0.03 * rng.standard_normal(t.shape, dtype=np.float32)
        out[:, 0] = -np.abs(out[:, 0]) - 0.01
        if t.shape[1] > 1:
            out[:, -1] = 0.0
    return out.astype(np.float32)


NOISE_KINDS = ["clean", "uniform", "normal", "random", "mixed"]


# ----------------------------------------------------------------------------- heatmap encode


@SETTINGS
@given(heatmap_case())
def test_msra_encode_matches_mmpose(case):
    kp, vis, input_size, heatmap_size, sigma = case
    got = GaussianHeatmap(input_size, heatmap_size, sigma, variant="msra").encode(kp, vis)
    maps, weights = ref_msra(kp, vis, input_size, heatmap_size, sigma)
    np.testing.assert_array_equal(np_(got["weights"]), weights)
    np.testing.assert_allclose(np_(got["heatmaps"]), maps, rtol=0, atol=MAP_ATOL)
    np.testing.assert_array_equal(np_(got["heatmaps"]) > 0, maps > 0)  # same support


@SETTINGS
@given(heatmap_case())
def test_dark_encode_matches_mmpose(case):
    kp, vis, input_size, heatmap_size, sigma = case
    got = GaussianHeatmap(input_size, heatmap_size, sigma, variant="dark").encode(kp, vis)
    maps, weights = ref_dark_encode(kp, vis, input_size, heatmap_size, sigma)
    np.testing.assert_array_equal(np_(got["weights"]), weights)
    np.testing.assert_allclose(np_(got["heatmaps"]), maps, rtol=0, atol=MAP_ATOL)


@SETTINGS
@given(heatmap_case())
def test_udp_encode_matches_mmpose(case):
    kp, vis, input_size, heatmap_size, sigma = case
    got = GaussianHeatmap(input_size, heatmap_size, sigma, variant="udp").encode(kp, vis)
    maps, weights = ref_udp_encode(kp, vis, input_size, heatmap_size, sigma)
    np.testing.assert_array_equal(np_(got["weights"]), weights)
    np.testing.assert_allclose(np_(got["heatmaps"]), maps, rtol=0, atol=MAP_ATOL)
    np.testing.assert_array_equal(np_(got["heatmaps"]) > 0, maps > 0)


# ----------------------------------------------------------------------------- heatmap decode


@st.composite
def decode_case(draw):
    kp, vis, input_size, heatmap_size, sigma = draw(heatmap_case())
    return kp, vis, input_size, heatmap_size, sigma, draw(st.integers(0, 2**31 - 1)), draw(
        st.sampled_from(NOISE_KINDS)
    )


@SETTINGS
@given(decode_case(), st.booleans())
def test_msra_decode_matches_mmpose(case, refine):
    kp, vis, input_size, heatmap_size, sigma, seed, kind = case
    maps = network_like(ref_msra(kp, vis, input_size, heatmap_size, sigma)[0], seed, kind)
    codec = GaussianHeatmap(input_size, heatmap_size, sigma, refine=refine, variant="msra")
    got_kp, got_sc = codec.decode(torch.from_numpy(maps))
    ref_kp, ref_sc = ref_msra_decode(maps, input_size, refine=refine)
    np.testing.assert_allclose(np_(got_kp), ref_kp, rtol=0, atol=KP_ATOL)
    np.testing.assert_array_equal(np_(got_sc), ref_sc)


# DARK and UDP take a Newton step on the log of the blurred map, and float32 rounding can
# be amplified by it. Three regimes:
# * a map holding a target peak (plus noise) — its log is nearly quadratic and the step
#   well conditioned: compared (the PEAKED rule below);
# * a map of pure noise (an invisible or off-map keypoint's empty target plus noise, or a
#   random map) — the Hessian is nearly singular, steps of thousands of pixels come out and
#   two float32 implementations differ by up to ~1e-2 px without either being wrong: not
#   compared;
# * UDP's edge-padded stencils at the map border can extrapolate a peak cut by the border
#   a few pixels outward, where mmpose's own float32 result is up to ~1e-3 px from the same
#   algorithm in float64. So the algorithm is compared in float64 (labcore on float64 maps
#   against the reference run in float64, all peaked keypoints), and the float32 results
#   wherever mmpose's float32 result is stable (within 1e-5 px of its float64 twin; ~94 % of
#   the UDP cases, all DARK ones).
PEAKED = 0.3  # a map "holds a target" when the clean target's maximum is at least this
STABLE = 1e-5  # px: the reference's float32 vs float64 gap that counts as stable


def check_refined(codec, maps, reference, keep):
    """Decode ``maps`` with ``codec`` and ``reference`` in float32 and float64; compare
    the keypoints selected by ``keep`` (see the comment above) and the scores."""
    got32, got_sc = codec.decode(torch.from_numpy(maps))
    got64, _ = codec.decode(torch.from_numpy(maps.astype(np.float64)))
    ref32, ref_sc = reference(maps)
    ref64, _ = reference(maps.astype(np.float64), dtype=np.float64)
    np.testing.assert_array_equal(np_(got_sc), ref_sc)
    np.testing.assert_allclose(np_(got64)[keep], ref64[keep], rtol=0, atol=KP_ATOL)
    stable = keep & (np.abs(ref32 - ref64).max(-1) <= STABLE)
    np.testing.assert_allclose(np_(got32)[stable], ref32[stable], rtol=0, atol=KP_ATOL)
    return np_(got32), ref_sc


@st.composite
def refine_case(draw):
    kp, vis, input_size, heatmap_size, sigma, seed, _ = draw(decode_case())
    return kp, vis, input_size, heatmap_size, sigma, seed, draw(
        st.sampled_from(["clean", "uniform", "normal", "mixed"])
    )


@SETTINGS
@given(refine_case(), st.booleans())
def test_dark_decode_matches_mmpose(case, refine):
    kp, vis, input_size, heatmap_size, sigma, seed, kind = case
    target = ref_dark_encode(kp, vis, input_size, heatmap_size, sigma)[0]
    maps = network_like(target, seed, kind)
    codec = GaussianHeatmap(input_size, heatmap_size, sigma, refine=refine, variant="dark")

    def reference(m, dtype=np.float32):
        return ref_dark_decode(m, input_size, kernel=11, refine=refine, dtype=dtype)

    # peaked maps, and maps whose maximum is <= 0 (the -1 marker, never refined)
    keep = (target.max(axis=(-1, -2)) >= PEAKED) | (maps.max(axis=(-1, -2)) <= 0) | (not refine)
    check_refined(codec, maps, reference, keep)


@SETTINGS
@given(refine_case(), st.booleans(), st.booleans())
def test_udp_decode_matches_mmpose(case, refine, input_scale):
    kp, vis, input_size, heatmap_size, sigma, seed, kind = case
    target = ref_udp_encode(kp, vis, input_size, heatmap_size, sigma)[0]
    maps = network_like(target, seed, kind)
    codec = GaussianHeatmap(
        input_size, heatmap_size, sigma, refine=refine, variant="udp", udp_input_scale=input_scale
    )

    def reference(m, dtype=np.float32):
        return ref_udp_decode(m, input_size, 11, input_scale=input_scale, refine=refine,
                              dtype=dtype)

    # mmpose's flat-index refinement reads a neighbouring map for the -1 marker; labcore
    # leaves the marker alone (documented), so only valid keypoints are compared ...
    valid = maps.max(axis=(-1, -2)) > 0
    keep = valid & ((target.max(axis=(-1, -2)) >= PEAKED) | (not refine))
    got, _ = check_refined(codec, maps, reference, keep)
    # ... and the marker is -1 heatmap pixel scaled like any other keypoint.
    w, h = heatmap_size
    inp = np.array(input_size, np.float64)
    scale = inp / [w - 1, h - 1] if input_scale else (inp - 1) / [w - 1, h - 1]
    marker = np.broadcast_to(-scale, (int((~valid).sum()), 2))
    np.testing.assert_allclose(got[~valid], marker, rtol=1e-6)


def test_decode_borders_clamps_and_marker_by_hand():
    """Peaks on and next to every border (each refinement's border conditions), stencils
    that hit DARK's 1e-10 clamp and UDP's 1e-3 clip, and a map whose maximum is <= 0,
    through the three variants."""
    w, h = 12, 16
    inp = (48, 64)  # stride 4 (UDP: 47/11, 63/15)
    cells = [
        (0.3, 7.2), (1.2, 7.4), (2.3, 7.3), (w - 3 + 0.2, 7.3), (w - 2 + 0.2, 7.3),
        (w - 1 - 0.1, 8.2), (6.3, 0.2), (6.2, 1.3), (6.2, 2.3), (5.7, h - 3 + 0.2),
        (5.7, h - 2 + 0.2), (5.6, h - 1 - 0.2), (6.3, 7.6), (6.3, 7.6), (6.0, 6.0),
    ]  # fmt: skip
    kp = (np.array(cells, np.float32) * 4)[None]
    maps = ref_dark_encode(kp, None, inp, (w, h), 1.0)[0]
    maps[0, 12, :, 9] = -1.0  # argmax column 6: blurred x+2 < 0 → DARK's 1e-10 clamp
    maps[0, 13, :, 8] = -1.0  # blurred x+1 < 0 → UDP's 1e-3 clip
    maps[0, 14] = -0.2  # maximum <= 0: the -1 marker
    got, sc = GaussianHeatmap(inp, (w, h), 1.0, variant="msra").decode(maps)
    exp, exp_sc = ref_msra_decode(maps, inp)
    np.testing.assert_allclose(np_(got), exp, rtol=0, atol=KP_ATOL)
    np.testing.assert_array_equal(np_(sc), exp_sc)
    assert np_(got)[0, 14].tolist() == [-4.0, -4.0]  # -1 marker × stride
    keep = np.ones((1, len(cells)), bool)
    got, _ = check_refined(GaussianHeatmap(inp, (w, h), 1.0, variant="dark"), maps,
                           lambda m, dtype=np.float32: ref_dark_decode(m, inp, dtype=dtype), keep)
    assert got[0, 14].tolist() == [-4.0, -4.0]
    keep[0, 14] = False  # mmpose's UDP step reads another map for the marker
    check_refined(GaussianHeatmap(inp, (w, h), 1.0, variant="udp"), maps,
                  lambda m, dtype=np.float32: ref_udp_decode(m, inp, dtype=dtype), keep)


# ------------------------------------------------------------------- integral / regression


@SETTINGS
@given(heatmap_case())
def test_integral_encode_matches_mmpose(case):
    kp, vis, input_size, heatmap_size, sigma = case
    got = IntegralHeatmap(input_size, heatmap_size, sigma).encode(kp, vis)
    maps, labels, weights = ref_integral_encode(kp, vis, input_size, heatmap_size, sigma)
    np.testing.assert_array_equal(np_(got["weights"]), weights)
    np.testing.assert_allclose(np_(got["keypoint_labels"]), labels, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np_(got["heatmaps"]), maps, rtol=0, atol=MAP_ATOL)
    sums = np_(got["heatmaps"]).sum(axis=(-1, -2))
    assert np.all((np.abs(sums - 1) < 1e-5) | (sums == 0))


@SETTINGS
@given(decode_case(), st.sampled_from([1.0, 0.5, 3.0]), st.sampled_from([0.0, 5.0, 20.0]))
def test_integral_decode_matches_mmpose_head(case, beta, gain):
    kp, vis, input_size, heatmap_size, sigma, seed, kind = case
    # logits: a scaled target plus noise (gain 0: pure noise, a nearly uniform softmax)
    maps = network_like(ref_msra(kp, vis, input_size, heatmap_size, sigma)[0], seed, kind)
    logits = (gain * maps).astype(np.float32)
    got_kp, got_sc = IntegralHeatmap(input_size, heatmap_size, sigma, beta=beta).decode(logits)
    ref_kp, ref_sc = ref_integral_decode(logits, input_size, beta=beta)
    np.testing.assert_allclose(np_(got_kp), ref_kp, rtol=1e-5, atol=KP_ATOL)
    np.testing.assert_allclose(np_(got_sc), ref_sc, rtol=1e-5, atol=1e-7)


@SETTINGS
@given(heatmap_case())
def test_regression_matches_mmpose(case):
    kp, vis, input_size, _, _ = case
    codec = CoordinateRegression(input_size)
    got = codec.encode(kp, vis)
    labels, weights = ref_regression_encode(kp, vis, input_size)
    np.testing.assert_array_equal(np_(got["weights"]), weights)
    np.testing.assert_allclose(np_(got["keypoint_labels"]), labels, rtol=1e-6, atol=1e-7)
    got_kp, got_sc = codec.decode(labels)
    ref_kp, ref_sc = ref_regression_decode(labels, input_size)
    np.testing.assert_allclose(np_(got_kp), ref_kp, rtol=1e-6, atol=KP_ATOL)
    np.testing.assert_array_equal(np_(got_sc), ref_sc)


# ----------------------------------------------------------------------------- SimDR / SimCC

SIMDR_SIZES = [(24, 32), (20, 20), (17, 23)]


@st.composite
def simdr_case(draw, ratios=(1.0, 2.0, 3.0, 1.5)):
    input_size = draw(st.sampled_from(SIMDR_SIZES))
    k = draw(st.sampled_from(ratios))
    sigma = draw(st.sampled_from([1.0, 2.0, 6.0, 0.5]))
    bins = (int(input_size[0] * k), int(input_size[1] * k))
    kp, vis = draw(keypoints(input_size, bins, sigma))
    return kp, vis, input_size, k, sigma


@SETTINGS
@given(simdr_case(), st.sampled_from([0.0, 0.1, 0.2, 0.4]))
def test_simdr_one_hot_matches_official(case, eps):
    kp, vis, input_size, k, _ = case
    got = SimDR(input_size, split_ratio=k, sigma=0.0, label_smoothing=eps).encode(kp, vis)
    x_ref, y_ref, w_ref = ref_simdr_onehot(kp, vis, input_size, k, eps)
    np.testing.assert_array_equal(np_(got["weights"]), w_ref)
    np.testing.assert_allclose(np_(got["x_labels"]), x_ref, rtol=0, atol=1e-7)
    np.testing.assert_allclose(np_(got["y_labels"]), y_ref, rtol=0, atol=1e-7)


@SETTINGS
@given(simdr_case(ratios=(1.0, 2.0, 0.5)), st.sampled_from([0.0, 0.1]))
def test_simdr_one_hot_weights_and_kept_vectors_match_mmpose(case, eps):
    """mmpose ``SimCCLabel('standard')``: same weights; vectors equal wherever weight is 1
    (mmpose leaves zero vectors where labcore/official build clamped ones)."""
    kp, vis, input_size, k, _ = case
    got = SimDR(input_size, split_ratio=k, sigma=0.0, label_smoothing=eps).encode(kp, vis)
    x_ref, y_ref, w_ref = ref_simcc_standard(kp, vis, input_size, k, eps)
    np.testing.assert_array_equal(np_(got["weights"]), w_ref)
    keep = w_ref > 0
    np.testing.assert_allclose(np_(got["x_labels"])[keep], x_ref[keep], rtol=0, atol=1e-7)
    np.testing.assert_allclose(np_(got["y_labels"])[keep], y_ref[keep], rtol=0, atol=1e-7)


@SETTINGS
@given(simdr_case())
def test_sa_simdr_matches_official(case):
    kp, vis, input_size, k, sigma = case
    got = SimDR(input_size, split_ratio=k, sigma=sigma, center="float").encode(kp, vis)
    x_ref, y_ref, w_ref = ref_sa_simdr(kp, vis, input_size, k, sigma)
    np.testing.assert_array_equal(np_(got["weights"]), w_ref)
    np.testing.assert_allclose(np_(got["x_labels"]), x_ref, rtol=0, atol=MAP_ATOL)
    np.testing.assert_allclose(np_(got["y_labels"]), y_ref, rtol=0, atol=MAP_ATOL)


# k with an exact float32 product x·k (the float32 half-bin tie for k = 3 is tested below)
@SETTINGS
@given(simdr_case(ratios=(1.0, 2.0, 0.5, 4.0)))
def test_simcc_gaussian_round_matches_mmpose(case):
    kp, vis, input_size, k, sigma = case
    got = SimDR(input_size, split_ratio=k, sigma=sigma, center="round").encode(kp, vis)
    x_ref, y_ref, w_ref = ref_simcc_gaussian(kp, vis, input_size, k, sigma)
    np.testing.assert_array_equal(np_(got["weights"]), w_ref)
    np.testing.assert_allclose(np_(got["x_labels"]), x_ref, rtol=0, atol=MAP_ATOL)
    np.testing.assert_allclose(np_(got["y_labels"]), y_ref, rtol=0, atol=MAP_ATOL)


def test_simcc_gaussian_round_float32_tie_matches_mmpose():
    # mmpose rounds the float32 product: x = f32(0.5/3), k = 3 gives exactly 0.5 → bin 0
    # (a float64 product, 0.50000001, would give bin 1).
    kp = np.array([[[np.float32(0.5 / 3), np.float32(65.5 / 3)]]], np.float32)
    got = SimDR((40, 40), split_ratio=3.0, sigma=2.0, center="round").encode(kp)
    x_ref, y_ref, _ = ref_simcc_gaussian(kp, None, (40, 40), 3.0, 2.0)
    assert int(np_(got["x_labels"])[0, 0].argmax()) == int(x_ref[0, 0].argmax())
    assert int(np_(got["y_labels"])[0, 0].argmax()) == int(y_ref[0, 0].argmax())


def simdr_outputs(x_labels, y_labels, seed, kind):
    """Network-like SimDR logits: labels × gain plus noise, random logits, or (``'mixed'``)
    raw vectors that are ≤ 0 for one joint (mmpose's −1 marker)."""
    rng = np.random.default_rng(seed)
    x, y = x_labels.astype(np.float32), y_labels.astype(np.float32)
    if kind == "random":
        return rng.standard_normal(x.shape, np.float32), rng.standard_normal(y.shape, np.float32)
    gain = 10.0 / max(float(x.max()), 1e-3)
    x = gain * x + rng.standard_normal(x.shape, np.float32)
    y = gain * y + rng.standard_normal(y.shape, np.float32)
    if kind == "mixed":
        x[:, 0] = -np.abs(x[:, 0]) - 0.1
    return x.astype(np.float32), y.astype(np.float32)


@SETTINGS
@given(
    simdr_case(),
    st.sampled_from([0.0, 2.0]),
    st.sampled_from(["max", "min", "auto"]),
    st.integers(0, 2**31 - 1),
    st.sampled_from(["labels", "random", "mixed"]),
)
def test_simdr_decode_matches_official(case, sigma, confidence, seed, kind):
    kp, vis, input_size, k, _ = case
    codec = SimDR(input_size, split_ratio=k, sigma=sigma, confidence=confidence)
    enc = codec.encode(kp, vis)
    x, y = simdr_outputs(np_(enc["x_labels"]), np_(enc["y_labels"]), seed, kind)
    got_kp, got_sc = codec.decode(x, y)
    rule = confidence if confidence != "auto" else ("max" if sigma == 0 else "min")
    ref_kp, ref_sc = ref_simdr_decode(x, y, k, confidence=rule)
    np.testing.assert_allclose(np_(got_kp), ref_kp, rtol=0, atol=KP_ATOL)
    np.testing.assert_allclose(np_(got_sc), ref_sc, rtol=1e-5, atol=1e-7)


@SETTINGS
@given(simdr_case(), st.integers(0, 2**31 - 1), st.sampled_from(["labels", "random", "mixed"]))
def test_simcc_raw_decode_matches_mmpose(case, seed, kind):
    kp, vis, input_size, k, sigma = case
    codec = SimDR(input_size, split_ratio=k, sigma=sigma, confidence="min", decode_softmax=False)
    enc = codec.encode(kp, vis)
    x, y = simdr_outputs(np_(enc["x_labels"]), np_(enc["y_labels"]), seed, kind)
    got_kp, got_sc = codec.decode(x, y)
    ref_kp, ref_sc = ref_simcc_decode(x, y, k)
    np.testing.assert_allclose(np_(got_kp), ref_kp, rtol=0, atol=KP_ATOL)
    np.testing.assert_array_equal(np_(got_sc), ref_sc)
    if kind == "mixed":
        assert np.all(np_(got_kp)[:, 0] == np.float32(-1.0 / k))
