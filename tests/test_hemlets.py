"""Tests of labcore.methods.hemlets (HEMlets, Zhou et al. ICCV 2019, arXiv 1910.12032).

The official code is inference only, so every expected value here is computed
independently of the module: Gaussians and their centres ``int(x/stride + 0.5)`` with
``math.exp`` and Python ``int`` in plain loops, polarities from explicit ``if`` chains,
soft-argmax on one-hot volumes from the grid formula ``i/(n-1) - 0.5``, the normalisation
``(u/W - 0.5, v/H - 0.5, Δz/2000)`` written out, losses as loops over samples, parts and
pixels, the flip test against a model whose output is a known function of the image (and a
pixel-equivariant one whose flip test must be the identity), and P1/P2/order on hand-made
skeletons. The last section tests :func:`labcore.geometry.backproject`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from labcore.geometry import backproject, camera_matrix, project_points
from labcore.methods import hemlets as H
from labcore.methods.heatmap import soft_argmax
from labcore.nn import ResNet

pytestmark = pytest.mark.usefixtures("one_thread")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# The DESIGN's 14 parts, written out: legs, thorax → shoulders, arms, neck and head.
DESIGN_PARTS = [(0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (8, 11), (8, 14),
                (11, 12), (12, 13), (14, 15), (15, 16), (8, 9), (9, 10)]
# J18's left/right pairs written out (right hip/knee/ankle ↔ left; left arm ↔ right arm).
J18_PAIRS = [(1, 4), (2, 5), (3, 6), (14, 11), (15, 12), (16, 13)]


def ref_perm(num_joints: int = 18) -> list[int]:
    p = list(range(num_joints))
    for a, b in J18_PAIRS:
        p[a], p[b] = b, a
    return p


# ----------------------------------------------------------------------------- references


def ref_polarity(z_parent: float, z_child: float, r: float) -> int:
    d = z_child - z_parent
    if d > r:
        return 1
    if d < -r:
        return -1
    return 0


def ref_centre(x: float, stride: float) -> int:
    """HRNet/mmpose ``int(x/stride + 0.5)`` (float32 stride and arithmetic, Python ``int``
    truncation toward zero)."""
    return int(np.float32(x) / np.float32(stride) + np.float32(0.5))


def ref_gaussian(w: int, h: int, cx: int, cy: int, sigma: float) -> list[list[float]]:
    """Peak-1 Gaussian at integer ``(cx, cy)``, support ``|d| <= 3σ`` (integer σ), as a list."""
    r = 3 * sigma
    out = [[0.0] * w for _ in range(h)]
    for y in range(h):
        for x in range(w):
            if abs(x - cx) <= r and abs(y - cy) <= r:
                out[y][x] = math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma * sigma))
    return out


def ref_triplets(kp, vis, pol, parts, input_size, heatmap_size, sigma) -> np.ndarray:
    """One sample's triplets ``(P, 3, h, w)`` from plain loops."""
    w, h = heatmap_size
    sx, sy = input_size[0] / w, input_size[1] / h
    out = np.zeros((len(parts), 3, h, w))
    for p, (a, b) in enumerate(parts):
        for joint, chan in ((a, 1), (b, pol[p] + 1)):
            if not vis[joint]:
                continue
            g = ref_gaussian(w, h, ref_centre(kp[joint][0], sx), ref_centre(kp[joint][1], sy), sigma)
            for y in range(h):
                for x in range(w):
                    out[p, chan, y, x] = max(out[p, chan, y, x], g[y][x])
    return out


def three_joint_codec(r: float = 100.0, sigma: float = 1.0) -> H.HEMletsTriplets:
    return H.HEMletsTriplets(input_size=(32, 32), heatmap_size=(8, 8), sigma=sigma,
                             depth_threshold=r, parts=((0, 1), (1, 2)))


# Joint 0 → centre (1, 2), joint 1 → (4, 2) (their 3σ boxes overlap on columns 1..4),
# joint 2 → (5, 3); stride 4.
KP3 = [[5.0, 6.0], [17.9, 9.0], [18.0, 10.0]]
CENTRES3 = [(1, 2), (4, 2), (5, 3)]


def rand_j18(n: int, seed: int, input_size=(64, 64), margin: float = 10.0):
    g = gen(seed)
    w, h = input_size
    kp = torch.rand(n, 18, 2, generator=g) * torch.tensor([w - 2 * margin, h - 2 * margin]) + margin
    depth = 4000.0 + 800.0 * torch.rand(n, 18, generator=g) - 400.0
    return kp, depth


# ------------------------------------------------------------------ 1. parts and polarity


def test_default_parts_match_design():
    assert len(H.HEMLETS_PARTS) == 14
    assert [tuple(p) for p in H.HEMLETS_PARTS] == DESIGN_PARTS
    # every part is a bone of J18 ... except the shoulders hang off the thorax directly
    # (J18 routes them through joint 17, the derived shoulder midpoint, which no part uses)
    assert all(17 not in p for p in H.HEMLETS_PARTS)
    assert H.DEPTH_RANGE_MM == 2000.0 and H.EVAL_JOINTS == 17


@pytest.mark.parametrize("delta,expected", [
    (100.0, 0), (-100.0, 0), (100.001, 1), (-100.001, -1), (0.0, 0), (99.9, 0), (-99.9, 0),
    (250.0, 1), (-250.0, -1),
])
def test_part_polarity_strict_threshold(delta, expected):
    z = torch.tensor([[1000.0, 1000.0 + delta]])
    assert ref_polarity(float(z[0, 0]), float(z[0, 1]), 100.0) == expected  # float32 keeps the sign
    got = H.part_polarity(z, parts=((0, 1),), threshold=100.0)
    assert got.dtype == torch.int64 and got.tolist() == [[expected]]


def test_part_polarity_default_parts_against_loop():
    _, depth = rand_j18(5, seed=1)
    got = H.part_polarity(depth, threshold=100.0)
    assert got.shape == (5, 14)
    for n in range(5):
        for p, (a, b) in enumerate(DESIGN_PARTS):
            assert int(got[n, p]) == ref_polarity(float(depth[n, a]), float(depth[n, b]), 100.0)


def test_part_polarity_threshold_zero_and_numpy_input():
    z = np.array([[10.0, 10.0, 11.0, 9.0]])
    got = H.part_polarity(z, parts=((0, 1), (0, 2), (0, 3)), threshold=0.0)
    assert got.tolist() == [[0, 1, -1]]


# -------------------------------------------------------------------------- 2. the triplets


@pytest.mark.parametrize("d01,d12", [
    (100.0, -100.0),         # both exactly at ±r: level, both children in T⁰
    (100.001, -100.001),     # just beyond: +1, -1
    (-100.001, 100.001),     # -1, +1
    (0.0, 300.0),            # 0, +1
    (-300.0, 0.0),           # -1, 0
])
def test_triplets_three_joints_by_hand(d01, d12):
    codec = three_joint_codec()
    z0 = 1000.0
    depth = torch.tensor([[z0, z0 + d01, z0 + d01 + d12]])
    pol = [ref_polarity(float(depth[0, 0]), float(depth[0, 1]), 100.0),
           ref_polarity(float(depth[0, 1]), float(depth[0, 2]), 100.0)]
    enc = codec.encode(torch.tensor([KP3]), None, depth=depth)
    t = enc["triplets"]
    assert t.shape == (1, 2, 3, 8, 8)
    assert enc["polarity"].dtype == torch.int64 and enc["polarity"].tolist() == [pol]
    assert enc["weights"].tolist() == [[1.0, 1.0]]
    ref = ref_triplets(KP3, [1, 1, 1], pol, ((0, 1), (1, 2)), (32, 32), (8, 8), 1.0)
    np.testing.assert_allclose(t[0].numpy(), ref, atol=1e-6, rtol=0)
    for p, (a, b) in enumerate(((0, 1), (1, 2))):
        # the parent's peak is always in T⁰, the child's in T^polarity, at int(x/4 + 0.5)
        (pcx, pcy), (ccx, ccy) = CENTRES3[a], CENTRES3[b]
        assert float(t[0, p, 1, pcy, pcx]) == pytest.approx(1.0, abs=1e-7)
        assert float(t[0, p, pol[p] + 1, ccy, ccx]) == pytest.approx(1.0, abs=1e-7)
        # empty channels are exactly zero
        for c in range(3):
            if c not in (1, pol[p] + 1):
                assert bool((t[0, p, c] == 0).all())
        if pol[p] != 0:  # T⁰ holds only the parent's Gaussian: its mass is exactly one Gaussian's
            assert float(t[0, p, 1].sum()) == pytest.approx(sum(map(sum, ref_gaussian(8, 8, pcx, pcy, 1))), rel=1e-5)


def test_level_part_merges_parent_and_child_by_max():
    codec = three_joint_codec()
    enc = codec.encode(torch.tensor([KP3]), None, depth=torch.tensor([[1000.0, 1000.0, 1000.0]]))
    t0 = enc["triplets"][0, 0, 1]  # part (0, 1): parent at (1, 2), child at (4, 2)
    e1, e4 = math.exp(-0.5), math.exp(-2.0)
    # between the peaks: max, not sum (the sum would be e1 + e4)
    assert float(t0[2, 2]) == pytest.approx(max(e1, e4), abs=1e-6)
    assert float(t0[2, 3]) == pytest.approx(max(e4, e1), abs=1e-6)
    assert float(t0[2, 1]) == pytest.approx(1.0, abs=1e-7) and float(t0[2, 4]) == pytest.approx(1.0, abs=1e-7)
    # (row 3, col 2): parent d²=1+1, child d²=4+1
    assert float(t0[3, 2]) == pytest.approx(max(math.exp(-1.0), math.exp(-2.5)), abs=1e-6)
    # channels 0 and 2 empty
    assert bool((enc["triplets"][0, :, 0] == 0).all()) and bool((enc["triplets"][0, :, 2] == 0).all())


def test_peak_positions_non_integer_stride_and_trunc_toward_zero():
    # stride 30/8 = 3.75: 5.6 → int(1.99) = 1, 5.7 → int(2.02) = 2, -2.5 → int(-0.17) = 0
    codec = H.HEMletsTriplets(input_size=(30, 30), heatmap_size=(8, 8), sigma=1.0, parts=((0, 1), (1, 2)))
    kp = [[5.6, 5.7], [5.7, 13.0], [-2.5, 20.0]]
    enc = codec.encode(torch.tensor([kp]), None, polarity=torch.tensor([[1, -1]]))
    t = enc["triplets"][0]
    for (p, c, j) in ((0, 1, 0), (0, 2, 1), (1, 1, 1), (1, 0, 2)):
        cx, cy = ref_centre(kp[j][0], 3.75), ref_centre(kp[j][1], 3.75)
        flat = int(t[p, c].flatten().argmax())
        assert (flat % 8, flat // 8) == (cx, cy)
        assert float(t[p, c, cy, cx]) == pytest.approx(1.0, abs=1e-7)
    assert (ref_centre(5.6, 3.75), ref_centre(5.7, 3.75), ref_centre(-2.5, 3.75)) == (1, 2, 0)


def test_part_weights_invisible_or_outside():
    codec = three_joint_codec()
    depth = torch.tensor([[1000.0, 1300.0, 1000.0]] * 3)
    kp = torch.tensor([KP3, KP3, KP3])
    kp[2, 2] = torch.tensor([200.0, 10.0])   # joint 2 far outside the 8×8 map (its 3σ box misses it)
    vis = torch.ones(3, 3)
    vis[1, 1] = 0                            # joint 1 invisible: both parts lose weight
    enc = codec.encode(kp, vis, depth=depth)
    assert enc["weights"].tolist() == [[1.0, 1.0], [0.0, 0.0], [1.0, 0.0]]
    t = enc["triplets"]
    # invisible joint 1: no Gaussian anywhere — part 0 (child, +1) channel 2 and part 1 (parent) T⁰ empty
    assert bool((t[1, 0, 2] == 0).all()) and bool((t[1, 1, 1] == 0).all())
    # the parent of part 0 is still drawn
    assert float(t[1, 0, 1, 2, 1]) == pytest.approx(1.0, abs=1e-7)
    # joint 2 outside: part 1's child channel (polarity -1 → channel 0) is empty
    assert int(enc["polarity"][2, 1]) == -1 and bool((t[2, 1, 0] == 0).all())


def test_part_weight_joint_just_outside_map_but_box_touches():
    # mmpose's rule: a centre off the map whose 3σ box still touches it keeps weight 1
    codec = three_joint_codec()
    kp = torch.tensor([[[5.0, 6.0], [34.0, 9.0], [18.0, 10.0]]])  # joint 1 → centre col int(9.0) = 9 (map w=8)
    enc = codec.encode(kp, None, depth=torch.tensor([[1000.0, 1000.0, 1000.0]]))
    assert enc["weights"].tolist() == [[1.0, 1.0]]
    ref = ref_triplets(kp[0].tolist(), [1, 1, 1], [0, 0], ((0, 1), (1, 2)), (32, 32), (8, 8), 1.0)
    np.testing.assert_allclose(enc["triplets"][0].numpy(), ref, atol=1e-6, rtol=0)


def test_triplets_default_parts_j18_against_loop():
    codec = H.HEMletsTriplets(input_size=(64, 48), heatmap_size=(16, 12), sigma=1.0)
    assert codec.num_parts == 14
    kp, depth = rand_j18(2, seed=2, input_size=(64, 48), margin=2.0)
    vis = torch.ones(2, 18)
    vis[1, 12] = 0
    enc = codec.encode(kp, vis, depth=depth)
    assert enc["triplets"].shape == (2, 14, 3, 12, 16)
    for n in range(2):
        pol = [ref_polarity(float(depth[n, a]), float(depth[n, b]), 100.0) for a, b in DESIGN_PARTS]
        assert enc["polarity"][n].tolist() == pol
        ref = ref_triplets(kp[n].tolist(), vis[n].tolist(), pol, DESIGN_PARTS, (64, 48), (16, 12), 1.0)
        np.testing.assert_allclose(enc["triplets"][n].numpy(), ref, atol=1e-6, rtol=0)
        wref = [float(vis[n, a] * vis[n, b]) for a, b in DESIGN_PARTS]
        assert enc["weights"][n].tolist() == wref
    # joint 12 (left elbow) is in parts (11, 12) and (12, 13)
    assert enc["weights"][1, 8] == 0 and enc["weights"][1, 9] == 0 and enc["weights"][1].sum() == 12


def test_encode_from_polarity_equals_encode_from_depth():
    codec = H.HEMletsTriplets(input_size=(64, 64), heatmap_size=(16, 16), sigma=2.0)
    kp, depth = rand_j18(4, seed=3)
    vis = (torch.rand(4, 18, generator=gen(4)) > 0.2).float()
    from_depth = codec.encode(kp, vis, depth=depth)
    pol = torch.tensor([[ref_polarity(float(depth[n, a]), float(depth[n, b]), 100.0) for a, b in DESIGN_PARTS]
                        for n in range(4)])
    assert {-1, 0, 1} <= set(pol.flatten().tolist())  # all three polarities exercised
    from_pol = codec.encode(kp, vis, polarity=pol)
    for key in ("triplets", "polarity", "weights"):
        assert torch.equal(from_depth[key], from_pol[key]), key
    # numpy and list polarity labels too
    assert torch.equal(codec.encode(kp, vis, polarity=pol.numpy())["triplets"], from_depth["triplets"])
    assert torch.equal(codec.encode(kp, vis, polarity=pol.tolist())["triplets"], from_depth["triplets"])


def test_encode_needs_exactly_one_of_depth_and_polarity():
    codec = three_joint_codec()
    kp = torch.tensor([KP3])
    with pytest.raises(ValueError, match="depth"):
        codec.encode(kp, None)
    with pytest.raises(ValueError, match="polarity"):
        codec.encode(kp, None, depth=torch.zeros(1, 3), polarity=torch.zeros(1, 2, dtype=torch.long))


@pytest.mark.parametrize("bad", [[[2, 0]], [[0, -2]], [[1, 5]]])
def test_encode_polarity_out_of_range(bad):
    with pytest.raises(ValueError, match="polarity"):
        three_joint_codec().encode(torch.tensor([KP3]), None, polarity=torch.tensor(bad))


def test_encode_polarity_wrong_shape():
    with pytest.raises(ValueError, match="polarity"):
        three_joint_codec().encode(torch.tensor([KP3]), None, polarity=torch.tensor([[1, 0, 1]]))
    with pytest.raises(ValueError, match="polarity"):
        three_joint_codec().encode(torch.tensor([KP3]), None, polarity=torch.tensor([[1, 0], [0, 0]]))


# -------------------------------------------------------------------------- 3. decoding


def test_polarity_round_trip_random_skeletons_with_coinciding_parts():
    codec = H.HEMletsTriplets(input_size=(64, 64), heatmap_size=(16, 16), sigma=2.0)
    kp, depth = rand_j18(16, seed=5, margin=12.0)
    # parent and child on the same 2-D point in several parts (a bone along the optical axis)
    for n in range(0, 16, 2):
        for a, b in DESIGN_PARTS[n % 14: n % 14 + 3]:
            kp[n, b] = kp[n, a]
    enc = codec.encode(kp, None, depth=depth)
    pol, conf = codec.decode(enc["triplets"])
    assert pol.dtype == torch.int64
    assert torch.equal(pol, enc["polarity"])
    ref = torch.tensor([[ref_polarity(float(depth[n, a]), float(depth[n, b]), 100.0) for a, b in DESIGN_PARTS]
                        for n in range(16)])
    assert torch.equal(pol, ref)
    # confidence: the side channel's peak (1) for ±1, 1 − 0 for level parts
    assert torch.allclose(conf, torch.ones_like(conf), atol=1e-6)


def test_decode_noisy_maps_against_loop():
    codec = three_joint_codec()
    t = torch.randn(6, 2, 3, 8, 8, generator=gen(6)) * 0.4
    pol, conf = codec.decode(t)
    assert set(pol.flatten().tolist()) <= {-1, 0, 1}
    for n in range(6):
        for p in range(2):
            lo, hi = float(t[n, p, 0].max()), float(t[n, p, 2].max())
            best = max(lo, hi)
            if best >= 0.5:
                q = 1 if hi >= lo else -1
                assert int(pol[n, p]) == q and float(conf[n, p]) == pytest.approx(best)
            else:
                assert int(pol[n, p]) == 0 and float(conf[n, p]) == pytest.approx(1.0 - best)


def test_decode_min_peak():
    codec = three_joint_codec()
    t = torch.zeros(1, 2, 3, 8, 8)
    t[0, 0, 1, 2, 2] = 1.0
    t[0, 0, 2, 4, 4] = 0.4     # part 0: a weak child behind
    t[0, 1, 0, 4, 4] = 0.7     # part 1: a child in front
    t[0, 1, 2, 5, 5] = 0.6     #   ... and a weaker one behind
    assert codec.decode(t)[0].tolist() == [[0, -1]]
    assert codec.decode(t, min_peak=0.4)[0].tolist() == [[1, -1]]        # >= min_peak counts
    assert codec.decode(t, min_peak=0.41)[0].tolist() == [[0, -1]]
    assert codec.decode(t, min_peak=0.75)[0].tolist() == [[0, 0]]
    pol, conf = codec.decode(t)
    assert conf[0].tolist() == pytest.approx([0.6, 0.7])
    # equal side peaks: one of the two sides (not level), confidence that peak
    tie = torch.zeros(1, 2, 3, 8, 8)
    tie[0, :, 0, 1, 1] = 0.8
    tie[0, :, 2, 6, 6] = 0.8
    pol, conf = codec.decode(tie)
    assert set(pol.flatten().tolist()) <= {-1, 1} and conf[0].tolist() == pytest.approx([0.8, 0.8])
    with pytest.raises(ValueError, match="min_peak"):
        codec.decode(t, min_peak=0.0)
    with pytest.raises(ValueError, match="triplets"):
        codec.decode(torch.zeros(1, 3, 3, 8, 8))


# ----------------------------------------------------------- 4. soft-argmax and the network


VOXELS = [(0, 0, 0), (7, 7, 15), (0, 7, 0), (7, 0, 15), (3, 5, 9), (6, 1, 2)]


def one_hot_volumes(n: int, j: int, d: int, h: int, w: int, voxels) -> torch.Tensor:
    v = torch.zeros(n, j, d, h, w)
    for k in range(n * j):
        dd, yy, xx = voxels[k % len(voxels)]
        v[k // j, k % j, dd, yy, xx] = 1e4
    return v


def test_soft_argmax_hemlets_grid_exact_on_one_hot():
    n, j, d, h, w = 2, 3, 8, 8, 16
    v = one_hot_volumes(n, j, d, h, w, VOXELS)
    got = soft_argmax(v, grid="hemlets")
    assert got.shape == (n, j, 3)
    for k in range(n * j):
        dd, yy, xx = VOXELS[k % len(VOXELS)]
        exp = [xx / (w - 1) - 0.5, yy / (h - 1) - 0.5, dd / (d - 1) - 0.5]
        assert got[k // j, k % j].tolist() == pytest.approx(exp, abs=1e-5)


def tiny_backbone(stride: int) -> ResNet:
    if stride == 8:
        return ResNet(layers=(1, 1), widths=(8, 16), stem_channels=8)
    if stride == 16:
        return ResNet(layers=(1, 1, 1), widths=(8, 16, 32), stem_channels=8)
    return ResNet(layers=(1,), widths=(8,), stem_channels=8)


def small_net(stride: int = 8, depth_bins: int = 8) -> H.HEMletsNet:
    torch.manual_seed(0)
    return H.HEMletsNet(tiny_backbone(stride), depth_bins=depth_bins, deconv_channels=8,
                        feature_channels=8, encoder_channels=8, tail_channels=8)


class Fixed(nn.Module):
    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value.expand(x.shape[0], *self.value.shape[1:])


def test_network_volume_channels_and_joints_via_fixed_volume_layer():
    net = small_net(8, depth_bins=8)
    # 64×32 input (W=64, H=32): heatmaps 16 wide, 8 high; channel j·D + d of the last conv
    x = torch.randn(2, 3, 32, 64, generator=gen(7))
    d, h, w = 8, 8, 16
    vox = [VOXELS[j % len(VOXELS)] for j in range(18)]
    raw = torch.zeros(1, 18 * d, h, w)
    for j, (dd, yy, xx) in enumerate(vox):
        raw[0, j * d + dd, yy, xx] = 1e4
    net.volume = Fixed(raw)
    out = net(x)
    for j, (dd, yy, xx) in enumerate(vox):
        assert float(out["volumes"][0, j, dd, yy, xx]) == 1e4
        exp = [xx / (w - 1) - 0.5, yy / (h - 1) - 0.5, dd / (d - 1) - 0.5]
        assert out["joints"][1, j].tolist() == pytest.approx(exp, abs=1e-5)


def test_network_fbi_channel_layout():
    net = small_net(8)
    fbi = torch.arange(60.0).view(1, 60, 1, 1).expand(1, 60, 8, 8).clone()
    net.fbi = Fixed(fbi)
    out = net(torch.randn(1, 3, 32, 32, generator=gen(8)))
    for p in range(14):
        for c in range(3):
            assert bool((out["triplets"][0, p, c] == 3 * p + c).all())
    for j in range(18):
        assert bool((out["heatmaps"][0, j] == 42 + j).all())


@pytest.mark.parametrize("stride", [4, 8, 16])
@pytest.mark.parametrize("depth_bins", [8, 16])
def test_network_shapes_range_and_initial_joints(stride, depth_bins):
    net = small_net(stride, depth_bins)
    assert net.stride == 4
    x = torch.randn(2, 3, 32, 64, generator=gen(9))   # non-square: W = 64, H = 32
    out = net(x)
    h, w = 32 // 4, 64 // 4
    assert out["triplets"].shape == (2, 14, 3, h, w)
    assert out["heatmaps"].shape == (2, 18, h, w)
    assert out["volumes"].shape == (2, 18, depth_bins, h, w)
    assert out["joints"].shape == (2, 18, 3)
    j = out["joints"].detach()
    assert bool(((j >= -0.5) & (j <= 0.5)).all())
    # N(0, 0.001²) init: near-uniform volumes, whose expectation is the grid's centre 0
    assert float(j.abs().max()) < 1e-3
    # soft-argmax of the volumes, HEMlets grid
    assert torch.allclose(j, soft_argmax(out["volumes"].detach(), grid="hemlets"), atol=1e-7)


def test_network_features_are_the_pooled_tail():
    net = small_net(8, 8).eval()
    x = torch.randn(2, 3, 32, 32, generator=gen(12))
    captured = {}
    net.tail.register_forward_hook(lambda m, i, o: captured.setdefault("tail", o))
    out = net(x, features=True)
    assert out["features"].shape == (2, net.tail[0].out_channels)
    assert torch.allclose(out["features"], captured["tail"].mean(dim=(2, 3)))
    assert "features" not in net(x) and torch.equal(net(x)["joints"], out["joints"])


def test_network_gradient_reaches_backbone():
    net = small_net(16, 8)
    out = net(torch.randn(2, 3, 32, 32, generator=gen(10)))
    weights = torch.randn(2, 18, 3, generator=gen(11))
    (out["joints"] * weights).sum().backward()
    stem = net.backbone.stem[0].weight  # the very first convolution
    grads = [p.grad for p in net.backbone.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)
    assert stem.grad is not None and float(stem.grad.abs().sum()) > 0


class StrideModule(nn.Module):
    def __init__(self, stride: int, out_channels: int = 4) -> None:
        super().__init__()
        self.stride, self.out_channels = stride, out_channels


@pytest.mark.parametrize("stride", [6, 2, 12, 1, 3])
def test_network_bad_stride(stride):
    with pytest.raises(ValueError, match="stride"):
        H.HEMletsNet(StrideModule(stride))


def test_network_missing_attributes():
    class NoStride(nn.Module):
        out_channels = 4

    class NoChannels(nn.Module):
        stride = 8

    with pytest.raises(TypeError, match="stride"):
        H.HEMletsNet(NoStride())
    with pytest.raises(TypeError, match="out_channels"):
        H.HEMletsNet(NoChannels())
    with pytest.raises(TypeError, match="backbone"):
        H.HEMletsNet(nn.Identity())


def test_network_bad_depth_bins():
    with pytest.raises(ValueError, match="depth_bins"):
        H.HEMletsNet(tiny_backbone(8), depth_bins=1)


# ----------------------------------------------------------------- 5. 3-D coordinates


def test_normalise_joints_by_hand():
    kp = torch.tensor([[[0.0, 0.0], [64.0, 32.0], [16.0, 24.0]]])
    depth = torch.tensor([[5000.0, 6000.0, 4500.0]])
    got = H.normalise_joints(kp, depth, input_size=(64, 32))
    exp = [[0 / 64 - 0.5, 0 / 32 - 0.5, 0.0],
           [64 / 64 - 0.5, 32 / 32 - 0.5, 1000 / 2000],
           [16 / 64 - 0.5, 24 / 32 - 0.5, -500 / 2000]]
    np.testing.assert_allclose(got[0].numpy(), np.array(exp), atol=1e-7)
    # another root and range
    got2 = H.normalise_joints(kp, depth, input_size=(64, 32), root=2, depth_range=1000.0)
    np.testing.assert_allclose(got2[0, :, 2].numpy(), [500 / 1000, 1500 / 1000, 0.0], atol=1e-7)
    np.testing.assert_allclose(got2[0, :, :2].numpy(), np.array(exp)[:, :2], atol=1e-7)


def test_denormalise_round_trip():
    kp, depth = rand_j18(3, seed=12, input_size=(64, 48))
    nj = H.normalise_joints(kp, depth, input_size=(64, 48))
    kp2, rel = H.denormalise_joints(nj, input_size=(64, 48))
    assert torch.allclose(kp2, kp, atol=1e-4)
    assert torch.allclose(rel, depth - depth[:, :1], atol=1e-3)
    # by hand, one value
    one = torch.tensor([[[0.25, -0.125, 0.1]]])
    kpo, relo = H.denormalise_joints(one, input_size=(64, 48))
    assert kpo[0, 0].tolist() == pytest.approx([0.75 * 64, 0.375 * 48])
    assert float(relo[0, 0]) == pytest.approx(200.0)


def test_to_camera_recovers_projected_skeleton():
    g = gen(13)
    n = 3
    P = (torch.rand(n, 18, 3, generator=g, dtype=torch.float64) - 0.5) * torch.tensor(
        [1200.0, 1600.0, 800.0], dtype=torch.float64) + torch.tensor([100.0, -50.0, 4500.0], dtype=torch.float64)
    K = torch.stack([camera_matrix(300, 320, 31.5, 30.0), camera_matrix(250, 250, 20.0, 40.0),
                     camera_matrix(400, 380, 33.0, 31.0)]).double()
    uv = project_points(P, K)
    nj = H.normalise_joints(uv, P[..., 2], input_size=(64, 64))
    # the hand formula once more on the projected pixels
    u = (P[..., 0] * K[:, 0, 0, None] / P[..., 2] + K[:, 0, 2, None])
    assert torch.allclose(nj[..., 0].double(), u / 64 - 0.5, atol=1e-6)
    X = H.to_camera(nj, (64, 64), K, root_depth=P[:, 0, 2])
    assert X.shape == (n, 18, 3)
    assert float((X.double() - P).abs().max()) < 1e-3  # mm, at 4–5 m
    # a wrong root depth moves every joint along its ray
    X2 = H.to_camera(nj, (64, 64), K, root_depth=P[:, 0, 2] + 100.0)
    assert torch.allclose(X2[..., 2].double(), P[..., 2] + 100.0, atol=1e-3)


# ------------------------------------------------------------------------------- 6. losses


def random_targets(n: int, seed: int, has_3d=True, vis=None):
    codec = H.HEMletsTriplets(input_size=(32, 32), heatmap_size=(8, 8), sigma=1.0)
    kp, depth = rand_j18(n, seed=seed, input_size=(32, 32), margin=3.0)
    if vis is None:
        vis = torch.ones(n, 18)
    if has_3d:
        return codec, H.hemlets_targets(codec, kp, vis, depth=depth), kp, depth
    pol = H.part_polarity(depth)
    return codec, H.hemlets_targets(codec, kp, vis, polarity=pol), kp, depth


def test_hemlets_targets_contents():
    codec, tg, kp, depth = random_targets(2, seed=14)
    assert set(tg) == {"triplets", "part_weights", "polarity", "heatmaps", "joint_weights", "joints", "has_3d"}
    assert tg["has_3d"].tolist() == [1.0, 1.0]
    nj = tg["joints"]
    assert torch.allclose(nj[..., 0], kp[..., 0] / 32 - 0.5, atol=1e-6)
    assert torch.allclose(nj[..., 2], (depth - depth[:, :1]) / 2000.0, atol=1e-6)
    # the 2-D heatmap of a joint is its Gaussian at int(x/4 + 0.5)
    for j in (0, 7, 17):
        ref = ref_gaussian(8, 8, ref_centre(float(kp[1, j, 0]), 4.0), ref_centre(float(kp[1, j, 1]), 4.0), 1.0)
        np.testing.assert_allclose(tg["heatmaps"][1, j].numpy(), np.array(ref), atol=1e-6)
    _, weak, _, _ = random_targets(2, seed=14, has_3d=False)
    assert weak["has_3d"].tolist() == [0.0, 0.0] and bool((weak["joints"] == 0).all())
    assert torch.equal(weak["triplets"], tg["triplets"]) and torch.equal(weak["polarity"], tg["polarity"])


def test_hemlets_targets_mixed_batch_has_3d():
    """Rows without real depth labels: zero joints, has_3d 0; triplets from the polarity labels."""
    codec = H.HEMletsTriplets(input_size=(32, 32), heatmap_size=(8, 8), sigma=1.0)
    kp, depth = rand_j18(2, seed=31, input_size=(32, 32), margin=3.0)
    pol = torch.tensor([[ref_polarity(float(depth[n, a]), float(depth[n, b]), 100.0) for a, b in DESIGN_PARTS]
                        for n in range(2)])
    pol[1] = -pol[1]  # row 1's order labels disagree with its (fake) depths: the labels win
    tg = H.hemlets_targets(codec, kp, None, depth=depth, polarity=pol, has_3d=torch.tensor([1.0, 0.0]))
    assert tg["has_3d"].tolist() == [1.0, 0.0]
    assert torch.equal(tg["polarity"], pol)
    assert torch.equal(tg["triplets"], codec.encode(kp, None, polarity=pol)["triplets"])
    assert torch.allclose(tg["joints"][0, :, 2], (depth[0] - depth[0, 0]) / 2000.0, atol=1e-6)
    assert bool((tg["joints"][1] == 0).all())
    with pytest.raises(ValueError, match="has_3d"):
        H.hemlets_targets(codec, kp, None, polarity=pol, has_3d=torch.tensor([1.0, 0.0]))


def test_loss_zero_at_ground_truth():
    _, tg, _, _ = random_targets(2, seed=15)
    out = {"triplets": tg["triplets"].clone(), "heatmaps": tg["heatmaps"].clone(), "joints": tg["joints"].clone()}
    total, logs = H.hemlets_loss(out, tg)
    assert float(total) == 0.0
    assert logs == {"triplet": 0.0, "heatmap": 0.0, "joints": 0.0}


def ref_half_mse(pred, target, weights):
    """½·mean over all elements of (w·(pred − target))², plain loops over the leading dims."""
    n, k = weights.shape
    tot, cnt = 0.0, 0
    for a in range(n):
        for b in range(k):
            d = (pred[a, b] - target[a, b]).double() * float(weights[a, b])
            tot += float((d * d).sum())
            cnt += d.numel()
    return 0.5 * tot / cnt


def test_loss_terms_by_hand_mixed_batch():
    vis = torch.ones(3, 18)
    vis[0, 3] = 0
    vis[1, 9] = 0    # the weak sample loses parts (8, 9) and (9, 10) in the ordinal term
    vis[2, 12] = 0
    _, tg, _, _ = random_targets(3, seed=16, vis=vis)
    tg["has_3d"] = torch.tensor([1.0, 0.0, 1.0])
    tg["joints"][1] = 0.0
    g = gen(17)
    out = {"triplets": torch.rand(3, 14, 3, 8, 8, generator=g), "heatmaps": torch.rand(3, 18, 8, 8, generator=g),
           "joints": torch.rand(3, 18, 3, generator=g) - 0.5}
    total, logs = H.hemlets_loss(out, tg)
    assert set(logs) == {"triplet", "heatmap", "joints", "ordinal"}
    # triplets: part weight on each of its three maps
    trip = 0.0
    for n in range(3):
        for p in range(14):
            for c in range(3):
                d = (out["triplets"][n, p, c] - tg["triplets"][n, p, c]).double() * float(tg["part_weights"][n, p])
                trip += float((d * d).sum())
    trip = 0.5 * trip / (3 * 14 * 3 * 64)
    assert logs["triplet"] == pytest.approx(trip, rel=1e-5)
    assert tg["part_weights"][0].tolist().count(0.0) == 1  # (2, 3) loses its weight
    assert logs["heatmap"] == pytest.approx(ref_half_mse(out["heatmaps"], tg["heatmaps"], tg["joint_weights"]), rel=1e-5)
    # L1: samples 0 and 2 only, visible joints, mean over their coordinates
    s, cnt = 0.0, 0
    for n in (0, 2):
        for j in range(18):
            if vis[n, j]:
                s += sum(abs(float(out["joints"][n, j, c]) - float(tg["joints"][n, j, c])) for c in range(3))
                cnt += 3
    assert logs["joints"] == pytest.approx(s / cnt, rel=1e-5)
    # ordinal: sample 1 only, predicted depth in mm = z · 2000, Δ/r with r = 100
    o, wsum = 0.0, 0.0
    for p, (a, b) in enumerate(DESIGN_PARTS):
        q = int(tg["polarity"][1, p])
        w = float(tg["part_weights"][1, p])
        delta = (float(out["joints"][1, b, 2]) - float(out["joints"][1, a, 2])) * 2000.0 / 100.0
        o += w * (math.log1p(math.exp(-q * delta)) if q else delta * delta)
        wsum += w
    assert wsum == 12.0
    assert logs["ordinal"] == pytest.approx(o / wsum, rel=1e-5)
    assert float(total) == pytest.approx(trip + logs["heatmap"] + s / cnt + o / wsum, rel=1e-5)
    # weights scale the terms
    total2, _ = H.hemlets_loss(out, tg, triplet_weight=2.0, heatmap_weight=0.5, joint_weight=3.0, ordinal_weight=0.25)
    assert float(total2) == pytest.approx(2 * trip + 0.5 * logs["heatmap"] + 3 * s / cnt + 0.25 * o / wsum, rel=1e-5)


def test_loss_terms_use_only_their_samples():
    _, tg, _, _ = random_targets(2, seed=18)
    tg["has_3d"] = torch.tensor([1.0, 0.0])
    g = gen(19)
    out = {"triplets": torch.rand(2, 14, 3, 8, 8, generator=g), "heatmaps": torch.rand(2, 18, 8, 8, generator=g),
           "joints": torch.rand(2, 18, 3, generator=g) - 0.5}
    _, logs = H.hemlets_loss(out, tg)
    moved = {k: v.clone() for k, v in out.items()}
    moved["joints"][1] = torch.rand(18, 3, generator=g) - 0.5   # the weak sample's joints: no effect on L1 ...
    _, logs2 = H.hemlets_loss(moved, tg)
    assert logs2["joints"] == pytest.approx(logs["joints"], rel=1e-6)
    assert logs2["ordinal"] != pytest.approx(logs["ordinal"], rel=1e-3)  # ... but on the ordinal one
    moved = {k: v.clone() for k, v in out.items()}
    moved["joints"][0, :, 2] *= -1.0     # the 3-D sample's depths: no effect on the ordinal term ...
    _, logs3 = H.hemlets_loss(moved, tg)
    assert logs3["ordinal"] == pytest.approx(logs["ordinal"], rel=1e-6)
    assert logs3["joints"] != pytest.approx(logs["joints"], rel=1e-3)    # ... but on the L1 one
    # all 3-D: no ordinal term; all weak: no L1 term
    tg["has_3d"] = torch.tensor([1.0, 1.0])
    assert "ordinal" not in H.hemlets_loss(out, tg)[1]
    tg["has_3d"] = torch.tensor([0.0, 0.0])
    logs3 = H.hemlets_loss(out, tg)[1]
    assert "joints" not in logs3 and "ordinal" in logs3


def test_loss_zero_weights_turn_terms_off():
    _, tg, _, _ = random_targets(2, seed=20)
    tg["has_3d"] = torch.tensor([1.0, 0.0])
    g = gen(21)
    out = {"triplets": torch.rand(2, 14, 3, 8, 8, generator=g), "heatmaps": torch.rand(2, 18, 8, 8, generator=g),
           "joints": (torch.rand(2, 18, 3, generator=g) - 0.5).requires_grad_()}
    _, full = H.hemlets_loss(out, tg)
    total, logs = H.hemlets_loss(out, tg, triplet_weight=0, heatmap_weight=0)
    assert set(logs) == {"joints", "ordinal"}
    assert float(total.detach()) == pytest.approx(full["joints"] + full["ordinal"], rel=1e-5)
    total.backward()
    assert out["joints"].grad is not None and float(out["joints"].grad.abs().sum()) > 0
    total, logs = H.hemlets_loss(out, tg, joint_weight=0, ordinal_weight=0)
    assert set(logs) == {"triplet", "heatmap"}
    assert float(total.detach()) == pytest.approx(full["triplet"] + full["heatmap"], rel=1e-5)
    total, logs = H.hemlets_loss(out, tg, triplet_weight=0, heatmap_weight=0, joint_weight=0, ordinal_weight=0)
    assert logs == {} and float(total.detach()) == 0.0


def test_ordinal_depth_loss_by_hand():
    parts = ((0, 1), (1, 2), (0, 2), (2, 3))
    z = torch.tensor([[0.0, 50.0, -120.0, 10.0], [100.0, 300.0, 300.0, -40.0]])
    q = torch.tensor([[1, -1, 0, 1], [-1, 0, 1, 1]])
    w = torch.tensor([[1.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0]])
    r = 80.0
    tot, ws = 0.0, 0.0
    for n in range(2):
        for p, (a, b) in enumerate(parts):
            d = (float(z[n, b]) - float(z[n, a])) / r
            qq = int(q[n, p])
            term = math.log(1.0 + math.exp(-qq * d)) if qq else d * d
            tot += float(w[n, p]) * term
            ws += float(w[n, p])
    got = H.ordinal_depth_loss(z, q, parts=parts, threshold=r, weights=w)
    assert got.dim() == 0 and float(got) == pytest.approx(tot / ws, rel=1e-6)
    # default weights: the plain mean over all N·P parts
    tot1 = 0.0
    for n in range(2):
        for p, (a, b) in enumerate(parts):
            d = (float(z[n, b]) - float(z[n, a])) / r
            qq = int(q[n, p])
            tot1 += math.log(1.0 + math.exp(-qq * d)) if qq else d * d
    assert float(H.ordinal_depth_loss(z, q, parts=parts, threshold=r)) == pytest.approx(tot1 / 8, rel=1e-6)
    # scale-free: depths and threshold scaled together give the same loss
    assert float(H.ordinal_depth_loss(z * 10, q, parts=parts, threshold=r * 10, weights=w)) == pytest.approx(
        tot / ws, rel=1e-5)


def test_ordinal_depth_loss_gradient_signs():
    parts = ((0, 1),)
    for q, sign in ((1, +1), (-1, -1)):
        z = torch.tensor([[0.0, 0.0]], requires_grad=True)
        H.ordinal_depth_loss(z, torch.tensor([[q]]), parts=parts).backward()
        # gradient descent moves the child by -grad: behind (+z) for q = +1, in front for q = -1
        assert sign * float(-z.grad[0, 1]) > 0 and sign * float(-z.grad[0, 0]) < 0
    # level: pulls a child that is behind back towards the parent
    z = torch.tensor([[0.0, 30.0]], requires_grad=True)
    H.ordinal_depth_loss(z, torch.tensor([[0]]), parts=parts).backward()
    assert float(z.grad[0, 1]) == pytest.approx(2 * 30.0 / 100.0 / 100.0, rel=1e-6)
    # correctly ordered by a wide margin: almost no loss
    far = H.ordinal_depth_loss(torch.tensor([[0.0, 3000.0]]), torch.tensor([[1]]), parts=parts)
    assert float(far) < 1e-12 + math.log1p(math.exp(-30.0))


# --------------------------------------------------------------------------- 7. flip test


class PixelModel(nn.Module):
    """Joints computed from the image in pixel terms, with plain torch ops.

    Joint ``j``: ``x, y`` = the soft-argmax over pixels of ``β·img[chan[j]] + bias[j](col)``
    (pixel grid, then ``u/W − 0.5``), ``z = tanh(t[j]·mean(img[chan[j]]))``.
    """

    def __init__(self, bias: torch.Tensor, t: torch.Tensor, chan: list[int], beta: float = 3.0) -> None:
        super().__init__()
        self.bias, self.t, self.chan, self.beta = bias, t, chan, beta

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        n, _, h, w = images.shape
        cols = torch.arange(w, dtype=images.dtype)
        rows = torch.arange(h, dtype=images.dtype)
        joints = []
        for j, c in enumerate(self.chan):
            logits = self.beta * images[:, c] + self.bias[j].view(1, 1, w)
            p = torch.softmax(logits.reshape(n, -1), -1).view(n, h, w)
            u = (p.sum(1) * cols).sum(-1)
            v = (p.sum(2) * rows).sum(-1)
            z = torch.tanh(self.t[j] * images[:, c].mean((1, 2)))
            joints.append(torch.stack([u / w - 0.5, v / h - 0.5, z], -1))
        return {"joints": torch.stack(joints, 1)}


def generic_model(w: int) -> PixelModel:
    g = gen(22)
    return PixelModel(torch.randn(18, w, generator=g), torch.randn(18, generator=g),
                      [int(c) for c in torch.randint(0, 3, (18,), generator=g)])


def equivariant_model(w: int) -> PixelModel:
    """``model(mirror(img))`` = the mirror of ``model(img)`` in pixels, left/right swapped."""
    g = gen(23)
    bias = torch.randn(18, w, generator=g)
    t = torch.randn(18, generator=g)
    chan = [int(c) for c in torch.randint(0, 3, (18,), generator=g)]
    perm = ref_perm()
    for a in range(18):
        b = perm[a]
        if a == b:
            bias[a] = 0.5 * (bias[a] + bias[a].flip(0))
        elif a < b:
            bias[b] = bias[a].flip(0)
            t[b] = t[a]
            chan[b] = chan[a]
    return PixelModel(bias, t, chan)


def test_flip_test_is_hand_computed_average():
    W, Hh = 12, 10
    model = generic_model(W)
    img = torch.rand(2, 3, Hh, W, generator=gen(24))
    got = H.hemlets_flip_test(model, img)
    out = model(img)["joints"]
    fl = model(img.flip(-1))["joints"]
    perm = ref_perm()
    for n in range(2):
        for j in range(18):
            src = fl[n, perm[j]]
            mirrored = [-float(src[0]) - 1.0 / W, float(src[1]), float(src[2])]
            exp = [0.5 * (float(out[n, j, c]) + mirrored[c]) for c in range(3)]
            assert got[n, j].tolist() == pytest.approx(exp, abs=1e-6)
    assert not torch.allclose(got, out, atol=1e-3)  # the generic model is not flip-equivariant


def test_flip_test_identity_for_pixel_equivariant_model():
    W, Hh = 12, 10
    model = equivariant_model(W)
    # the model really is equivariant: u → W − 1 − u, left/right swapped, y and z unchanged
    img = torch.rand(2, 3, Hh, W, generator=gen(25))
    a, b = model(img)["joints"], model(img.flip(-1))["joints"]
    perm = ref_perm()
    for j in range(18):
        ua = (a[:, j, 0] + 0.5) * W
        ub = (b[:, perm[j], 0] + 0.5) * W
        assert torch.allclose(ub, W - 1 - ua, atol=1e-4)
        assert torch.allclose(b[:, perm[j], 1:], a[:, j, 1:], atol=1e-6)
    assert torch.allclose(H.hemlets_flip_test(model, img), a, atol=1e-5)
    # a left/right-symmetric image
    sym = torch.rand(1, 3, Hh, W // 2, generator=gen(26))
    sym = torch.cat([sym, sym.flip(-1)], -1)
    assert torch.equal(sym, sym.flip(-1))
    assert torch.allclose(H.hemlets_flip_test(model, sym), model(sym)["joints"], atol=1e-5)


# ------------------------------------------------------------------------------ 8. metrics


def hand_skeleton() -> torch.Tensor:
    """One J18 skeleton in mm; every part's depth difference is at least 150 mm from ±r."""
    z = [4000, 4300, 4000, 4400, 3700, 4000, 3650, 4000, 4100, 3800, 4150, 3750, 4050, 3700,
         4400, 4100, 4450, 4100]
    xy = [(0, 0), (-120, 10), (-130, 420), (-140, 820), (120, 10), (130, 420), (140, 820), (0, -250),
          (0, -500), (0, -600), (0, -750), (180, -480), (230, -230), (260, 10), (-180, -480),
          (-230, -230), (-260, 10), (0, -480)]
    return torch.tensor([[[float(x), float(y), float(zz)] for (x, y), zz in zip(xy, z)]])


def test_evaluate_3d_translation_and_one_joint_moved():
    gt = hand_skeleton()
    assert all(abs(float(gt[0, b, 2] - gt[0, a, 2]) - 100.0) >= 50 and abs(float(gt[0, b, 2] - gt[0, a, 2]) + 100.0) >= 50
               for a, b in DESIGN_PARTS)
    res = H.evaluate_3d(gt + torch.tensor([40.0, -70.0, 200.0]), gt)
    assert set(res) == {"P1", "P2", "order"}
    assert res["P1"] == pytest.approx(0.0, abs=1e-3) and res["P2"] == pytest.approx(0.0, abs=1e-2)
    assert res["order"] == 100.0
    pred = gt.clone()
    pred[0, 5, 0] += 30.0
    assert H.evaluate_3d(pred, gt)["P1"] == pytest.approx(30.0 / 17, rel=1e-5)
    pred = gt.clone()
    pred[0, 0, 0] += 30.0  # moving the root moves the 16 others relative to it
    assert H.evaluate_3d(pred, gt)["P1"] == pytest.approx(16 * 30.0 / 17, rel=1e-5)


def test_evaluate_3d_ignores_joint_17():
    gt = hand_skeleton()
    noise = torch.randn(1, 18, 3, generator=gen(27)) * 20.0
    pred = gt + noise
    base = H.evaluate_3d(pred, gt)
    moved = pred.clone()
    moved[0, 17] += torch.tensor([500.0, -300.0, 900.0])
    got = H.evaluate_3d(moved, gt)
    assert got["P1"] == pytest.approx(base["P1"], rel=1e-6)
    assert got["P2"] == pytest.approx(base["P2"], rel=1e-5)
    assert got["order"] == base["order"]
    # P1 by hand over the first 17 joints
    p = pred[0] - pred[0, 0]
    g = gt[0] - gt[0, 0]
    ref = sum(float(torch.linalg.vector_norm(p[j] - g[j])) for j in range(17)) / 17
    assert base["P1"] == pytest.approx(ref, rel=1e-5)
    # with joints=18 the moved joint 17 counts
    assert H.evaluate_3d(moved, gt, joints=18)["P1"] > base["P1"] + 10


def rotation(axis, angle: float) -> torch.Tensor:
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return torch.tensor(np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k, dtype=torch.float32)


@pytest.mark.parametrize("direction", ["gt_to_pred", "pred_to_gt"])
def test_evaluate_3d_similarity_p2_zero(direction):
    gt = hand_skeleton()
    R = rotation([0.3, 1.0, -0.2], 0.7)
    pred = 2.0 * gt @ R.T + torch.tensor([100.0, -20.0, 500.0])
    res = H.evaluate_3d(pred, gt, p2_direction=direction)
    assert res["P2"] == pytest.approx(0.0, abs=2e-2)
    assert res["P1"] > 100.0  # not invariant to scale and rotation


def test_evaluate_3d_p2_directions_differ_under_noise_and_order_by_hand():
    gt = hand_skeleton()
    pred = gt + torch.randn(1, 18, 3, generator=gen(28)) * 30.0
    a = H.evaluate_3d(pred, gt, p2_direction="gt_to_pred")["P2"]
    b = H.evaluate_3d(pred, gt, p2_direction="pred_to_gt")["P2"]
    p1 = H.evaluate_3d(pred, gt)["P1"]
    assert 0 < a <= p1 + 1e-3 and 0 < b <= p1 + 1e-3 and abs(a - b) > 1e-4
    with pytest.raises(ValueError, match="direction"):
        H.evaluate_3d(pred, gt, p2_direction="both")


def test_evaluate_3d_p2_pred_to_gt_collapsed_prediction():
    gt = hand_skeleton()
    net = small_net(8, 8).eval()
    with torch.no_grad():
        joints = net(torch.rand(1, 3, 64, 64, generator=gen(32)))["joints"]
    pred = H.to_camera(joints, (64, 64), camera_matrix(300, 300, 31.5, 31.5), root_depth=torch.tensor([4000.0]))
    g = gt[0, :17] - gt[0, :17].mean(0)
    centroid_error = sum(float(torch.linalg.vector_norm(g[j])) for j in range(17)) / 17
    assert H.evaluate_3d(pred, gt, p2_direction="gt_to_pred")["P2"] == pytest.approx(0.0, abs=1e-2)
    assert H.evaluate_3d(pred, gt, p2_direction="pred_to_gt")["P2"] == pytest.approx(centroid_error, rel=1e-3)


def test_evaluate_3d_order_by_hand():
    gt = hand_skeleton()
    assert H.evaluate_3d(gt, gt)["order"] == 100.0
    # flip part (9, 10): joint 10 (head top, only a child) goes from 350 mm behind the neck
    # to 350 mm in front of it
    pred = gt.clone()
    pred[0, 10, 2] = 2 * gt[0, 9, 2] - gt[0, 10, 2]
    assert H.evaluate_3d(pred, gt)["order"] == pytest.approx(13 / 14 * 100, rel=1e-6)
    # make part (0, 1) level in the prediction (difference 100, exactly r) — two parts wrong
    pred[0, 1, 2] = gt[0, 0, 2] + 100.0
    # joint 1 is also the parent of (1, 2): gt (4300 → 4000) is −1; now 4100 → 4000 is 0
    assert H.evaluate_3d(pred, gt)["order"] == pytest.approx(11 / 14 * 100, rel=1e-6)
    # a larger threshold changes which differences count
    assert H.evaluate_3d(gt, gt, threshold=1000.0)["order"] == 100.0
    # N = 2: averaged over samples and parts
    both = H.evaluate_3d(torch.cat([gt, gt.clone()]), torch.cat([gt, gt]))
    assert both["order"] == 100.0
    pred2 = torch.cat([gt, gt.clone()])
    pred2[1, 10, 2] = 2 * gt[0, 9, 2] - gt[0, 10, 2]
    assert H.evaluate_3d(pred2, torch.cat([gt, gt]))["order"] == pytest.approx(27 / 28 * 100, rel=1e-6)


# ------------------------------------------------------------------------------- 9. errors


def test_error_negative_thresholds():
    with pytest.raises(ValueError, match="threshold"):
        H.part_polarity(torch.zeros(1, 18), threshold=-1.0)
    with pytest.raises(ValueError, match="depth_threshold"):
        H.HEMletsTriplets(depth_threshold=-0.5)
    with pytest.raises(ValueError, match="threshold"):
        H.ordinal_depth_loss(torch.zeros(1, 18), torch.zeros(1, 14, dtype=torch.long), threshold=0.0)


@pytest.mark.parametrize("sigma", [0.0, -1.0, float("nan")])
def test_error_sigma(sigma):
    with pytest.raises(ValueError, match="sigma"):
        H.HEMletsTriplets(sigma=sigma)


def test_error_depth_shapes_and_nan():
    codec = three_joint_codec()
    kp = torch.tensor([KP3])
    with pytest.raises(ValueError, match="depth"):
        codec.encode(kp, None, depth=torch.zeros(1, 2))      # (N, J − 1)
    with pytest.raises(ValueError, match="depth"):
        codec.encode(kp, None, depth=torch.zeros(2, 3))      # wrong N
    with pytest.raises(ValueError, match="depth"):
        codec.encode(kp, None, depth=torch.tensor([[0.0, float("nan"), 1.0]]))
    with pytest.raises(ValueError, match="depth"):
        H.part_polarity(torch.tensor([[0.0, float("nan")]]), parts=((0, 1),))
    with pytest.raises(ValueError, match="depth"):
        H.part_polarity(torch.zeros(18))
    with pytest.raises(ValueError, match="depth"):
        H.normalise_joints(torch.zeros(1, 3, 2), torch.zeros(1, 2), (32, 32))


def test_error_nan_keypoints():
    codec = three_joint_codec()
    kp = torch.tensor([KP3])
    kp[0, 1, 0] = float("nan")
    with pytest.raises(ValueError, match="keypoints"):
        codec.encode(kp, None, depth=torch.zeros(1, 3))
    with pytest.raises(ValueError, match="keypoints"):
        codec.encode(kp, None, polarity=torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="keypoints"):
        H.normalise_joints(kp, torch.zeros(1, 3), (32, 32))


def test_error_parts_out_of_range():
    with pytest.raises(ValueError, match="parts"):
        H.part_polarity(torch.zeros(1, 3), parts=((0, 1), (1, 3)))
    with pytest.raises(ValueError, match="parts"):
        H.part_polarity(torch.zeros(1, 3), parts=((0, -1),))
    with pytest.raises(ValueError, match="parts"):
        H.HEMletsTriplets(parts=((0, 1), (-1, 2)))
    with pytest.raises(ValueError, match="parts"):
        H.HEMletsTriplets(parts=((0, 1, 2),))
    codec = H.HEMletsTriplets(input_size=(32, 32), heatmap_size=(8, 8), sigma=1.0, parts=((0, 1), (1, 5)))
    with pytest.raises(ValueError, match="parts"):
        codec.encode(torch.tensor([KP3]), None, depth=torch.zeros(1, 3))
    with pytest.raises(ValueError, match="parts"):
        H.ordinal_depth_loss(torch.zeros(1, 3), torch.zeros(1, 1, dtype=torch.long), parts=((0, 3),))
    with pytest.raises(ValueError, match="parts"):
        H.evaluate_3d(torch.zeros(1, 3, 3) + 1, torch.zeros(1, 3, 3) + 1, parts=((0, 3),), joints=3)
    # the default J18 parts on a 17-joint input: joint 16 exists, 17 is not used — fine;
    # on 16 joints, part (15, 16) is out of range
    assert H.part_polarity(torch.zeros(1, 17)).shape == (1, 14)
    with pytest.raises(ValueError, match="parts"):
        H.part_polarity(torch.zeros(1, 16))


def test_error_nan_triplets():
    t = torch.zeros(1, 2, 3, 8, 8)
    t[0, 1, 2, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="triplets"):
        three_joint_codec().decode(t)


def test_encode_accepts_bool_visibility_like_msra_heatmaps():
    codec = three_joint_codec()
    vis = torch.tensor([[True, False, True]])
    depth = torch.tensor([[1000.0, 1300.0, 1000.0]])
    got = codec.encode(torch.tensor([KP3]), vis, depth=depth)
    ref = codec.encode(torch.tensor([KP3]), vis.float(), depth=depth)
    assert torch.equal(got["triplets"], ref["triplets"]) and torch.equal(got["weights"], ref["weights"])


def test_hemlets_targets_accepts_bool_visibility():
    codec = H.HEMletsTriplets(input_size=(32, 32), heatmap_size=(8, 8), sigma=1.0)
    kp, depth = rand_j18(1, seed=30, input_size=(32, 32), margin=3.0)
    vis = torch.ones(1, 18, dtype=torch.bool)
    vis[0, 4] = False
    got = H.hemlets_targets(codec, kp, vis, depth=depth)
    ref = H.hemlets_targets(codec, kp, vis.float(), depth=depth)
    for key in ref:
        assert torch.equal(got[key], ref[key]), key


def test_error_other_arguments():
    with pytest.raises(ValueError, match="root"):
        H.normalise_joints(torch.zeros(1, 3, 2), torch.zeros(1, 3), (32, 32), root=3)
    with pytest.raises(ValueError, match="depth_range"):
        H.normalise_joints(torch.zeros(1, 3, 2), torch.zeros(1, 3), (32, 32), depth_range=0.0)
    with pytest.raises(ValueError, match="polarity"):
        H.ordinal_depth_loss(torch.zeros(1, 3), torch.zeros(1, 3, dtype=torch.long), parts=((0, 1), (1, 2)))
    with pytest.raises(ValueError, match="weights"):
        H.ordinal_depth_loss(torch.zeros(1, 3), torch.zeros(1, 2, dtype=torch.long), parts=((0, 1), (1, 2)),
                             weights=torch.ones(1, 3))
    with pytest.raises(ValueError, match="root_depth"):
        H.to_camera(torch.zeros(2, 3, 3), (32, 32), camera_matrix(100, 100, 16, 16), root_depth=torch.ones(3))
    with pytest.raises(ValueError, match="gt"):
        H.evaluate_3d(torch.zeros(1, 18, 3), torch.zeros(2, 18, 3))
    with pytest.raises(ValueError, match="joints"):
        H.evaluate_3d(torch.zeros(1, 18, 3), torch.zeros(1, 18, 3), joints=19)


# ----------------------------------------------------------------- 10. geometry.backproject


def test_backproject_pinhole_by_hand():
    K = camera_matrix(500.0, 400.0, 320.0, 240.0)
    uv = torch.tensor([[420.0, 140.0], [320.0, 240.0], [0.0, 480.0]])
    z = torch.tensor([2000.0, 3000.0, 1000.0])
    got = backproject(uv, z, K)
    exp = [[(420 - 320) / 500 * 2000, (140 - 240) / 400 * 2000, 2000.0],
           [0.0, 0.0, 3000.0],
           [(0 - 320) / 500 * 1000, (480 - 240) / 400 * 1000, 1000.0]]
    np.testing.assert_allclose(got.numpy(), np.array(exp), rtol=1e-6, atol=1e-4)


def test_backproject_inverts_project_points_batched_and_crop_camera():
    g = gen(29)
    P = (torch.rand(2, 5, 3, generator=g, dtype=torch.float64) - 0.5) * 1000 + torch.tensor(
        [0.0, 0.0, 3000.0], dtype=torch.float64)
    K = torch.stack([camera_matrix(500, 510, 320, 240), camera_matrix(300, 300, 10, -5)]).double()
    # a crop camera: an image-plane affine with rotation/shear composed with K (last row 0 0 1)
    A = torch.tensor([[0.4, 0.1, -20.0], [-0.05, 0.45, 7.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    K[1] = A @ K[1]
    uv = project_points(P, K)
    back = backproject(uv, P[..., 2], K)
    assert back.dtype == torch.float64 and back.shape == (2, 5, 3)
    assert torch.allclose(back, P, atol=1e-8)
    # and the other way round: project(backproject(uv, z)) == uv
    uv2 = torch.rand(2, 5, 2, generator=g, dtype=torch.float64) * 600
    z2 = torch.rand(2, 5, generator=g, dtype=torch.float64) * 1000 + 500
    assert torch.allclose(project_points(backproject(uv2, z2, K), K), uv2, atol=1e-8)
    # depth scales the point along its ray
    assert torch.allclose(backproject(uv2, 2 * z2, K), 2 * backproject(uv2, z2, K), atol=1e-8)


def test_backproject_errors():
    K = camera_matrix(500.0, 500.0, 32.0, 32.0)
    with pytest.raises(ValueError, match="depth"):
        backproject(torch.zeros(3, 2), torch.tensor([1.0, 0.0, 2.0]), K)
    with pytest.raises(ValueError, match="depth"):
        backproject(torch.zeros(3, 2), torch.tensor([1.0, -5.0, 2.0]), K)
    with pytest.raises(ValueError, match="depth"):
        backproject(torch.zeros(3, 2), torch.ones(2), K)
    with pytest.raises(ValueError, match="K"):
        backproject(torch.zeros(3, 2), torch.ones(3), torch.eye(3) + torch.tensor([[0, 0, 0], [0, 0, 0], [0.5, 0, 0]]))
    with pytest.raises(ValueError, match="pixels"):
        backproject(torch.tensor([[float("nan"), 0.0]]), torch.ones(1), K)
    with pytest.raises(ValueError, match="pixels"):
        backproject(torch.zeros(3, 3), torch.ones(3), K)


def test_integral_ablation_has_no_hemlets_branch_and_trains_on_the_l1_alone():
    from labcore.nn import ResNet

    torch.manual_seed(0)
    full = H.HEMletsNet(ResNet(layers=(1, 1), widths=(8, 16), stem_channels=8), depth_bins=8)
    torch.manual_seed(0)
    plain = H.HEMletsNet(ResNet(layers=(1, 1), widths=(8, 16), stem_channels=8), depth_bins=8, hemlets_branch=False)
    assert not hasattr(plain, "fbi") and not hasattr(plain, "fbi_encoder")
    names = {n for n, _ in plain.named_parameters()}
    assert names < {n for n, _ in full.named_parameters()}
    assert not any(n.startswith("fbi") for n in names)
    out = plain(torch.rand(2, 3, 32, 32))
    assert set(out) == {"volumes", "joints"} and out["joints"].shape == (2, 18, 3)
    codec = H.HEMletsTriplets((32, 32), (8, 8), sigma=1.0)
    targets = H.hemlets_targets(codec, torch.rand(2, 18, 2) * 30, None, depth=4000 + 100 * torch.randn(2, 18))
    loss, logs = H.hemlets_loss(out, targets, triplet_weight=0.0, heatmap_weight=0.0)
    assert set(logs) == {"joints"} and float(loss) == pytest.approx(logs["joints"])
    loss.backward()
    assert plain.backbone.stem[0].weight.grad.abs().sum() > 0
