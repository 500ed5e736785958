"""Tests of labcore.methods.simdr: the SimDR codec, the KL losses, the head, the flip test.

The numpy references below are written per keypoint, in the style of the official code
(leeyegy/SimCC ``JointsDataset.generate_sa_simdr``/``adjust_target_weight``/
``filter_target_simdr`` and ``NMTCritierion``'s smoothing) and of mmpose ``SimCCLabel``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_codecs import ref_sa_simdr, ref_simcc_gaussian, ref_simcc_standard, ref_simdr_onehot

from labcore import codec as cd
from labcore.methods import simdr as sd
from labcore.nn import HRNetLite, SimpleBaseline
from labcore.skeletons import COCO17

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- references


SIZE = (12, 10)  # (W, H)


def edge_keypoints() -> tuple[np.ndarray, np.ndarray]:
    """Keypoints inside, on the border, just outside, far outside, at half-bin ties and
    invisible — chosen to exercise every branch of the references."""
    rng = np.random.default_rng(0)
    pts = [
        (0.0, 0.0), (11.0, 9.0), (5.3, 4.7), (1.25, 2.75), (0.75, 8.25),  # inside / ties
        (-0.2, 3.0), (-0.3, 3.0), (11.4, 9.4), (11.6, 9.6), (12.0, 5.0),  # border
        (-2.0, 4.0), (-4.5, 4.0), (-5.5, 4.0), (14.5, 4.0), (15.0, 4.0),  # adjust rule
        (3.0, -4.9), (3.0, -5.2), (3.0, 12.9), (100.0, -50.0), (-1e4, 3.0),  # far
        (4.0, 4.0),  # invisible
    ]  # fmt: skip
    pts += [tuple(p) for p in rng.uniform(-1.0, 12.0, size=(11, 2))]
    kp = np.asarray(pts, np.float32).reshape(2, -1, 2)
    vis = np.ones(kp.shape[:2], np.float32)
    vis[1, -1] = 0.0
    vis[0, 2] = 0.0
    return kp, vis


# ----------------------------------------------------------------------------- codec basics


def test_registry_attributes_and_bins():
    assert cd.CODECS["simdr"] is sd.SimDR
    c = cd.build_codec("simdr", input_size=(15, 10), split_ratio=2.5)
    assert isinstance(c, sd.SimDR) and c.name == "simdr"
    assert c.num_bins == (37, 25)  # int(15·2.5) = int(37.5) = 37 (mmpose would round to 38)
    assert (c.sigma, c.label_smoothing, c.center, c.confidence, c.decode_softmax) == (
        0.0, 0.1, "float", "auto", True
    )
    assert c.confidence_rule == "max"
    assert sd.SimDR(sigma=2.0).confidence_rule == "min"
    assert sd.SimDR(sigma=2.0, confidence="max").confidence_rule == "max"
    assert sd.SimDR().num_bins == (384, 512)
    assert "SimDR(input_size=(15, 10), split_ratio=2.5" in repr(c)


def test_encode_numpy_input_dtypes_and_defaults():
    c = sd.SimDR(input_size=SIZE, split_ratio=2.0)
    kp = np.array([[[3.0, 4.0], [5.0, 6.0]]], np.float64)
    out = c.encode(kp)
    assert set(out) == {"x_labels", "y_labels", "weights"}
    assert out["x_labels"].shape == (1, 2, 24) and out["y_labels"].shape == (1, 2, 20)
    assert all(v.dtype == torch.float32 for v in out.values())
    assert out["weights"].tolist() == [[1.0, 1.0]]
    out_b = c.encode(torch.from_numpy(kp), np.array([[True, False]]))
    assert out_b["weights"].tolist() == [[1.0, 0.0]]


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.4])
def test_one_hot_smoothing_values(eps):
    c = sd.SimDR(input_size=(5, 4), split_ratio=1.0, label_smoothing=eps)
    out = c.encode(torch.tensor([[[2.0, 1.0]]]))
    x = out["x_labels"][0, 0]
    assert x[2].item() == pytest.approx(1 - eps)
    others = torch.cat([x[:2], x[3:]])
    assert torch.allclose(others, torch.full((4,), eps / 4))
    assert x.sum().item() == pytest.approx(1.0, abs=1e-6)
    if eps == 0:
        assert x.tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]


# ----------------------------------------------------------------------------- round trip


@SETTINGS
@given(data=st.data())
def test_round_trip_within_half_bin(data):
    k = data.draw(st.sampled_from([1.0, 2.0, 3.0, 2.5]), label="k")
    mode = data.draw(st.sampled_from(["one-hot", "float", "round"]), label="mode")
    w = data.draw(st.integers(2, 40), label="W")
    h = data.draw(st.integers(2, 40), label="H")
    n = data.draw(st.integers(1, 3), label="N")
    kk = data.draw(st.integers(1, 4), label="K")
    unit = st.floats(0.0, 1.0, width=32)
    u = np.array(data.draw(st.lists(unit, min_size=n * kk * 2, max_size=n * kk * 2)))
    kp = (u.reshape(n, kk, 2) * np.array([w - 1, h - 1])).astype(np.float32)
    sigma = 0.0 if mode == "one-hot" else data.draw(st.floats(0.5, 4.0), label="sigma")
    center = "round" if mode == "round" else "float"
    # decode_softmax=False: argmax of the labels themselves, no softmax that could tie
    codec = sd.SimDR((w, h), k, sigma=sigma, center=center, decode_softmax=False)
    out = codec.encode(kp)
    assert out["weights"].eq(1).all()
    dec, scores = codec.decode(out["x_labels"], out["y_labels"])
    err = (dec - torch.from_numpy(kp)).abs().max().item()
    assert err <= 1 / (2 * k) + 1e-5
    assert (scores > 0).all()
    if mode != "float":  # rounded centre: exactly round(x·k)/k, numpy's rounding
        expect = np.around(kp.astype(np.float64) * k) / k
        assert np.allclose(dec.numpy(), expect, atol=1e-6)
    if mode == "one-hot":  # the official softmax decoding agrees (one-hot: no ties)
        soft = sd.SimDR((w, h), k).decode(out["x_labels"], out["y_labels"])[0]
        assert torch.equal(soft, dec)


# ----------------------------------------------------------------------------- references


@pytest.mark.parametrize("k", [1.0, 2.0, 2.5, 3.0])
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_one_hot_matches_official_and_mmpose(k, eps):
    kp, vis = edge_keypoints()
    c = sd.SimDR(SIZE, k, sigma=0.0, label_smoothing=eps)
    out = c.encode(kp, vis)
    xs, ys, ws = ref_simdr_onehot(kp, vis, SIZE, k, eps)
    assert np.array_equal(out["weights"].numpy(), ws)
    assert np.allclose(out["x_labels"].numpy(), xs, atol=1e-7)
    assert np.allclose(out["y_labels"].numpy(), ys, atol=1e-7)
    # mmpose: same weights; same vectors wherever the weight is 1 (zeros elsewhere)
    # (float64 keypoints, as the official code's: mmpose rounds in the keypoints' dtype)
    mx, my, mw = ref_simcc_standard(kp.astype(np.float64), vis, SIZE, k, eps)
    assert np.array_equal(mw, ws)
    on = ws > 0
    assert np.allclose(out["x_labels"].numpy()[on], mx[on], atol=1e-7)
    assert np.allclose(out["y_labels"].numpy()[on], my[on], atol=1e-7)
    assert 0 < on.sum() < on.size  # the fixture has both kinds


@pytest.mark.parametrize("k", [1.0, 2.0, 2.5, 3.0])
@pytest.mark.parametrize("sigma", [1.0, 2.0, 1.5])
def test_gaussian_float_matches_official_generate_sa_simdr(k, sigma):
    kp, vis = edge_keypoints()
    out = sd.SimDR(SIZE, k, sigma=sigma, center="float").encode(kp, vis)
    xs, ys, ws = ref_sa_simdr(kp, vis, SIZE, k, sigma)
    assert np.array_equal(out["weights"].numpy(), ws)
    assert np.allclose(out["x_labels"].numpy(), xs, atol=1e-7, rtol=1e-6)
    assert np.allclose(out["y_labels"].numpy(), ys, atol=1e-7, rtol=1e-6)


def test_gaussian_float_weight_rule_mixes_units_literally():
    # σ = 1 bin → tmp = 3; keypoints in pixels; int() truncates toward zero
    c = sd.SimDR(SIZE, 2.0, sigma=1.0)
    kp = torch.tensor([[[-4.5, 4.0], [-5.5, 4.0], [14.9, 4.0], [15.0, 4.0], [-2.0, 4.0]]])
    out = c.encode(kp)
    # -4.5: br = int(-0.5) = 0, not < 0 → kept; -5.5: br = int(-1.5) = -1 → dropped;
    # 14.9: ul = int(11.9) = 11 < 12 → kept; 15: ul = 12 >= W → dropped
    assert out["weights"].tolist() == [[1.0, 0.0, 1.0, 0.0, 1.0]]
    # kept keypoints outside the image get a truncated Gaussian (peak off the vector)
    assert out["x_labels"][0, 4].argmax().item() == 0
    assert out["x_labels"][0, 1].abs().sum().item() == 0.0
    # the same keypoint in bins: mmpose's consistent rule drops -4.5 (μ = -9, -9+3+1 < 0)
    assert sd.SimDR(SIZE, 2.0, sigma=1.0, center="round").encode(kp)["weights"][0, 0] == 0


@pytest.mark.parametrize("k", [1.0, 2.0, 2.5, 3.0])
@pytest.mark.parametrize("sigma", [1.0, 2.0, 1.5])
def test_gaussian_round_matches_mmpose(k, sigma):
    kp, vis = edge_keypoints()
    out = sd.SimDR(SIZE, k, sigma=sigma, center="round").encode(kp, vis)
    xs, ys, ws = ref_simcc_gaussian(kp, vis, SIZE, k, sigma)
    assert np.array_equal(out["weights"].numpy(), ws)
    assert np.allclose(out["x_labels"].numpy(), xs, atol=1e-7, rtol=1e-6)
    assert np.allclose(out["y_labels"].numpy(), ys, atol=1e-7, rtol=1e-6)


def test_gaussian_is_a_normalised_density_in_bins():
    for sigma, peak in ((2.0, 0.1995), (4.0, 0.0997), (6.0, 0.0665)):
        out = sd.SimDR((100, 100), 2.0, sigma=sigma).encode(torch.tensor([[[50.0, 50.0]]]))
        x = out["x_labels"][0, 0]
        assert x.sum().item() == pytest.approx(1.0, abs=1e-4)
        assert x.max().item() == pytest.approx(peak, abs=1e-4)
        assert x.argmax().item() == 100
    # float centre keeps sub-bin position; round centre snaps to the bin
    kp = torch.tensor([[[10.2, 10.0]]])
    xf = sd.SimDR((40, 40), 1.0, sigma=2.0).encode(kp)["x_labels"][0, 0]
    xr = sd.SimDR((40, 40), 1.0, sigma=2.0, center="round").encode(kp)["x_labels"][0, 0]
    assert xf[11] > xf[9] and xr[11] == pytest.approx(xr[9].item())


# ----------------------------------------------------------------------------- decode


def test_decode_confidence_rules_softmax():
    # (W, H) = (2, 1), k = 2 → 4 x bins, 2 y bins
    x = torch.tensor([[[0.0, 2.0, 0.0, 0.0]]])  # max softmax e²/(e²+3) at bin 1
    y = torch.tensor([[[1.0, 0.0]]])  # max softmax e/(e+1) at bin 0
    px = math.exp(2) / (math.exp(2) + 3)
    py = math.e / (math.e + 1)
    kp_hi, s_hi = sd.SimDR((2, 1), 2.0, confidence="max").decode(x, y)
    kp_lo, s_lo = sd.SimDR((2, 1), 2.0, confidence="min").decode(x, y)
    assert s_hi.item() == pytest.approx(max(px, py)) and px != pytest.approx(py)
    assert s_lo.item() == pytest.approx(min(px, py))
    assert kp_hi.tolist() == [[[0.5, 0.0]]] == kp_lo.tolist()  # bin / k
    # 'auto': max for one-hot (official SimDR), min for Gaussian (SA-SimDR, mmpose)
    c3 = sd.SimDR((2, 2), 1.5)
    assert c3.num_bins == (3, 3)
    x3, y3 = x[..., :3], torch.tensor([[[1.0, 0.0, 0.0]]])
    px3, py3 = math.exp(2) / (math.exp(2) + 2), math.e / (math.e + 2)
    assert c3.decode(x3, y3)[1].item() == pytest.approx(max(px3, py3))
    assert sd.SimDR((2, 2), 1.5, sigma=1.0).decode(x3, y3)[1].item() == pytest.approx(
        min(px3, py3)
    )


def test_decode_raw_mmpose_rule():
    c = sd.SimDR((2, 2), 2.0, decode_softmax=False, confidence="min")
    x = torch.tensor([[[0.1, 0.7, 0.2, 0.0], [-0.3, -0.1, -0.2, -0.5]]])
    y = torch.tensor([[[0.0, 0.0, 0.9, 0.1], [0.2, 0.4, 0.0, 0.0]]])
    kp, s = c.decode(x, y)
    assert s[0, 0].item() == pytest.approx(0.7) and s[0, 1].item() == pytest.approx(-0.1)
    assert kp[0, 0].tolist() == [0.5, 1.0]
    assert kp[0, 1].tolist() == [-0.5, -0.5]  # location -1 bin where score <= 0, then / k
    # raw 'max' can keep a positive score from one axis → location kept
    kp2, s2 = sd.SimDR((2, 2), 2.0, decode_softmax=False, confidence="max").decode(x, y)
    assert s2[0, 1].item() == pytest.approx(0.4) and kp2[0, 1].tolist() == [0.5, 0.5]
    # softmax decoding never produces -1
    kp3, s3 = sd.SimDR((2, 2), 2.0, confidence="min").decode(x, y)
    assert (s3 > 0).all() and kp3[0, 1].tolist() == [0.5, 0.5]


def test_decode_dtype_ties_and_numpy():
    c = sd.SimDR((2, 2), 1.0)
    kp, s = c.decode(np.zeros((1, 1, 2), np.float32), [[[0, 0]]])
    assert kp.dtype == torch.float32 and kp.tolist() == [[[0.0, 0.0]]]  # tie → first bin
    assert s.item() == pytest.approx(0.5)
    kp64, _ = c.decode(torch.zeros(1, 1, 2, dtype=torch.float64), torch.zeros(1, 1, 2))
    assert kp64.dtype == torch.float64  # float inputs keep (promote) their dtype


# ----------------------------------------------------------------------------- loss


def _tiny_case():
    xl = torch.zeros(2, 2, 3)
    yl = torch.zeros(2, 2, 2)
    xt = torch.zeros(2, 2, 3)
    xt[..., 0] = 1.0
    yt = torch.zeros(2, 2, 2)
    yt[..., 1] = 1.0
    w = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    return xl, yl, xt, yt, w


def test_loss_hand_computed_all_reductions():
    xl, yl, xt, yt, w = _tiny_case()
    # uniform logits, one-hot labels: KL_x = log 3 (sum over bins), KL_y = log 2
    mean_kl = math.log(3) / 3 + math.log(2) / 2
    sum_kl = math.log(3) + math.log(2)
    got = {r: sd.simdr_kl_loss(xl, yl, xt, yt, w, reduction=r).item() for r in sd.LOSS_REDUCTIONS}
    assert got["official"] == pytest.approx(3 * mean_kl / 4)  # / (B·K)
    assert got["nmt"] == pytest.approx(3 * sum_kl / 2)  # / B
    assert got["mmpose"] == pytest.approx(3 * mean_kl / 2)  # / K
    assert got["mmpose"] == pytest.approx(2 * got["official"])  # B × official


def test_loss_beta_hand_computed():
    x = torch.tensor([[[0.0, math.log(2), 0.0]]])
    t = torch.tensor([[[0.0, 1.0, 0.0]]])
    y = torch.zeros(1, 1, 2)
    ty = torch.tensor([[[0.5, 0.5]]])
    w = torch.ones(1, 1)
    # beta 1: softmax = [1, 2, 1]/4 → KL = log 2; beta 2: [1, 4, 1]/6 → log 1.5; y: 0
    l1 = sd.simdr_kl_loss(x, y, t, ty, w, reduction="nmt", beta=1.0)
    l2 = sd.simdr_kl_loss(x, y, t, ty, w, reduction="nmt", beta=2.0)
    assert l1.item() == pytest.approx(math.log(2), abs=1e-6)
    assert l2.item() == pytest.approx(math.log(1.5), abs=1e-6)
    lo = sd.simdr_kl_loss(x, y, t, ty, w, reduction="official", beta=2.0)
    assert lo.item() == pytest.approx(math.log(1.5) / 3, abs=1e-6)


def _official_kl_discret(ox, oy, tx, ty, tw):
    """leeyegy/SimCC ``KLDiscretLoss.forward``, per-joint loop (batch > 1)."""
    log_softmax = torch.nn.LogSoftmax(dim=1)
    crit = torch.nn.KLDivLoss(reduction="none")
    loss = 0
    for j in range(ox.size(1)):
        w = tw[:, j]
        loss += torch.mean(crit(log_softmax(ox[:, j]), tx[:, j]), dim=1).mul(w).mean()
        loss += torch.mean(crit(log_softmax(oy[:, j]), ty[:, j]), dim=1).mul(w).mean()
    return loss / ox.size(1)


def _official_nmt(ox, oy, index, tw, eps):
    """leeyegy/SimCC ``NMTCritierion.forward``: smoothing built from class indices."""
    log_softmax = torch.nn.LogSoftmax(dim=1)
    crit = torch.nn.KLDivLoss(reduction="none")

    def criterion(out, labels):
        n = out.size(-1)
        gt = torch.full((labels.size(0), n), eps / (n - 1))
        gt.scatter_(1, labels.unsqueeze(1), 1.0 - eps)
        return torch.sum(crit(log_softmax(out), gt), dim=1)

    loss = 0
    for j in range(ox.size(1)):
        w = tw[:, j]
        loss += criterion(ox[:, j], index[:, j, 0]).mul(w).sum()
        loss += criterion(oy[:, j], index[:, j, 1]).mul(w).sum()
    return loss / ox.size(0)


def test_loss_matches_official_loops():
    g = torch.Generator().manual_seed(0)
    kp, vis = edge_keypoints()
    gauss = sd.SimDR(SIZE, 2.0, sigma=2.0).encode(kp, vis)
    ox = torch.randn(2, kp.shape[1], 24, generator=g)
    oy = torch.randn(2, kp.shape[1], 20, generator=g)
    ref = _official_kl_discret(ox, oy, gauss["x_labels"], gauss["y_labels"], gauss["weights"])
    got = sd.simdr_kl_loss(ox, oy, gauss["x_labels"], gauss["y_labels"], gauss["weights"])
    assert got.item() == pytest.approx(ref.item(), rel=1e-5)
    mm = sd.simdr_kl_loss(
        ox, oy, gauss["x_labels"], gauss["y_labels"], gauss["weights"], reduction="mmpose"
    )
    assert mm.item() == pytest.approx(2 * ref.item(), rel=1e-5)

    eps = 0.1
    one_hot = sd.SimDR(SIZE, 2.0, label_smoothing=eps).encode(kp, vis)
    index = torch.from_numpy(np.around(kp.astype(np.float64) * 2.0)).long()
    index[..., 0].clamp_(0, 23)
    index[..., 1].clamp_(0, 19)
    ref = _official_nmt(ox, oy, index, one_hot["weights"], eps)
    got = sd.simdr_kl_loss(
        ox, oy, one_hot["x_labels"], one_hot["y_labels"], one_hot["weights"], reduction="nmt"
    )
    assert got.item() == pytest.approx(ref.item(), rel=1e-5)


def test_loss_gradients_and_weights():
    g = torch.Generator().manual_seed(1)
    labels = sd.SimDR((8, 6), 2.0, sigma=1.0).encode(torch.tensor([[[3.0, 2.0], [5.0, 4.0]]]))
    x = torch.randn(1, 2, 16, generator=g, requires_grad=True)
    y = torch.randn(1, 2, 12, generator=g, requires_grad=True)
    w = torch.tensor([[1.0, 0.0]])
    for reduction in sd.LOSS_REDUCTIONS:
        x.grad = y.grad = None
        loss = sd.simdr_kl_loss(x, y, labels["x_labels"], labels["y_labels"], w, reduction)
        assert loss.dim() == 0 and torch.isfinite(loss)
        loss.backward()
        assert torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all()
        assert x.grad[0, 0].abs().sum() > 0 and y.grad[0, 0].abs().sum() > 0
        assert x.grad[0, 1].abs().sum() == 0 and y.grad[0, 1].abs().sum() == 0
    # a zero-weight joint's logits do not change the loss
    x2 = x.detach().clone()
    x2[0, 1] += 5.0
    a = sd.simdr_kl_loss(x.detach(), y.detach(), labels["x_labels"], labels["y_labels"], w)
    b = sd.simdr_kl_loss(x2, y.detach(), labels["x_labels"], labels["y_labels"], w)
    assert a.item() == b.item()
    # perfect prediction of a distribution → zero loss
    lx, ly = labels["x_labels"], labels["y_labels"]
    zero = sd.simdr_kl_loss(lx.clamp_min(1e-30).log(), ly.clamp_min(1e-30).log(), lx, ly, w)
    assert zero.item() == pytest.approx(0.0, abs=1e-5)


# ----------------------------------------------------------------------------- network


def tiny_simplebaseline(deconvs=(16, 16, 16)):
    return SimpleBaseline(
        layers=(1, 1, 1, 1), widths=(8, 16, 16, 16), stem_channels=8, deconv_channels=deconvs
    )


def _linear_params(head):
    return sum(p.numel() for m in (head.mlp_head_x, head.mlp_head_y) for p in m.parameters())


def test_head_shapes_params_and_init():
    head = sd.SimDRHead(16, 5, feature_size=(6, 4), input_size=(24, 16), split_ratio=2.0)
    nx, ny = head.num_bins
    assert (nx, ny) == (48, 32)
    out_x, out_y = head(torch.randn(3, 16, 4, 6))
    assert out_x.shape == (3, 5, 48) and out_y.shape == (3, 5, 32)
    linear = _linear_params(head)
    assert linear == 4 * 6 * 1 * (nx + ny) + nx + ny
    assert head.final_layer.weight.std().item() < 0.005
    assert head.final_layer.bias.abs().sum().item() == 0.0
    with pytest.raises(ValueError, match="features"):
        head(torch.randn(3, 16, 6, 4))  # (h, w) swapped
    with pytest.raises(ValueError, match="features"):
        head(torch.randn(3, 8, 4, 6))


def test_head_rearranges_joint_major():
    # 'b (k t) h w -> b k (t h w)': joint k's vector is channels k·t … k·t+t−1, flattened
    head = sd.SimDRHead(6, 3, (2, 2), (4, 4), 1.0, channels_per_joint=2)
    with torch.no_grad():
        head.final_layer.weight.copy_(torch.eye(6).reshape(6, 6, 1, 1))
    head.mlp_head_x = torch.nn.Identity()
    f = torch.randn(1, 6, 2, 2)
    z, _ = head(f)
    assert torch.equal(z[0, 1], f[0, 2:4].reshape(-1))
    assert torch.equal(z, f.reshape(1, 3, 8))


def test_net_standard_and_upsample_free():
    torch.manual_seed(0)
    net = sd.SimDRNet(tiny_simplebaseline(), num_joints=17, input_size=64, split_ratio=2.0)
    assert net.feature_size == (16, 16) and net.num_bins == (128, 128)
    x, y = net(torch.rand(2, 3, 64, 64))
    assert x.shape == (2, 17, 128) and y.shape == (2, 17, 128)
    assert (net.input_size, net.split_ratio, net.num_joints) == ((64, 64), 2.0, 17)
    linear = _linear_params(net.head)
    assert linear == 16 * 16 * 1 * (128 + 128) + 128 + 128

    free = sd.SimDRNet(tiny_simplebaseline(()), 4, (64, 32), split_ratio=3.0, channels_per_joint=8)
    assert free.stride == 32 and free.feature_size == (2, 1) and free.num_bins == (192, 96)
    x, y = free(torch.rand(2, 3, 32, 64))
    assert x.shape == (2, 4, 192) and y.shape == (2, 4, 96)
    linear = _linear_params(free.head)
    assert linear == 2 * 1 * 8 * (192 + 96) + 192 + 96

    hr = sd.SimDRNet(HRNetLite(widths=(8, 16), blocks=1, stem_channels=8), 3, 32)
    x, y = hr(torch.rand(1, 3, 32, 32))
    assert x.shape == (1, 3, 64) and y.shape == (1, 3, 64)
    # gradients reach the backbone through the loss
    labels = sd.SimDR((32, 32), 2.0, sigma=2.0).encode(torch.full((1, 3, 2), 10.0))
    sd.simdr_kl_loss(x, y, labels["x_labels"], labels["y_labels"], labels["weights"]).backward()
    assert all(p.grad is not None for p in hr.head.parameters())
    with pytest.raises(ValueError, match="images"):
        net(torch.rand(1, 3, 32, 64))


# ----------------------------------------------------------------------------- flip


def test_flip_simdr_hand_built_and_involution():
    x = torch.arange(8.0).reshape(1, 2, 4)  # joint 0: 0 1 2 3, joint 1: 4 5 6 7
    y = torch.arange(6.0).reshape(1, 2, 3)
    fx, fy = sd.flip_simdr(x, y, [1, 0], shift=False)
    assert fx.tolist() == [[[7.0, 6.0, 5.0, 4.0], [3.0, 2.0, 1.0, 0.0]]]
    assert fy.tolist() == [[[3.0, 4.0, 5.0], [0.0, 1.0, 2.0]]]
    sx, sy = sd.flip_simdr(x, y, [1, 0], shift=True)  # out[..., :-1] = out[..., 1:]
    assert sx.tolist() == [[[6.0, 5.0, 4.0, 4.0], [2.0, 1.0, 0.0, 0.0]]]
    assert torch.equal(sy, fy)
    s2, _ = sd.flip_simdr(x, y, [1, 0], shift=2)
    assert s2.tolist() == [[[5.0, 4.0, 5.0, 4.0], [1.0, 0.0, 1.0, 0.0]]]
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 17, 10, generator=g), torch.randn(2, 17, 7, generator=g)
    back = sd.flip_simdr(*sd.flip_simdr(a, b, COCO17, shift=False), COCO17, shift=False)
    assert torch.equal(back[0], a) and torch.equal(back[1], b)
    assert torch.equal(sd.flip_simdr(a, b, COCO17)[0], sd.flip_simdr(a, b, COCO17.flip_index)[0])


class MirrorModel:
    """A fake network that is exactly mirror-equivariant: it answers the labels of the
    keypoints for ``images`` and of the mirrored keypoints for ``images.flip(-1)``."""

    def __init__(self, codec, kp, flip_index, images, scale=10.0):
        w = codec.input_size[0]
        p = torch.as_tensor(np.asarray(flip_index))
        mirrored = kp[:, p].clone()
        mirrored[..., 0] = (w - 1) - mirrored[..., 0]
        self.images = images
        self.out = [codec.encode(a) for a in (kp, mirrored)]
        self.scale = scale

    def __call__(self, images):
        which = 0 if torch.equal(images, self.images) else 1
        assert which == 0 or torch.equal(images, self.images.flip(-1))
        o = self.out[which]
        return o["x_labels"] * self.scale, o["y_labels"] * self.scale


@pytest.mark.parametrize(
    "k, sigma, shift",
    [(2.0, 0.0, True), (1.0, 0.0, False), (3.0, 0.0, 2), (2.0, 2.0, True), (1.0, 1.5, False)],
)
@pytest.mark.parametrize("average", sd.FLIP_AVERAGES)
def test_flip_test_with_mirror_equivariant_model(k, sigma, shift, average):
    w, h = 24, 16
    g = torch.Generator().manual_seed(3)
    kp = torch.rand(2, 17, 2, generator=g) * torch.tensor([w - 1.0, h - 1.0])
    images = torch.rand(2, 3, h, w, generator=g)
    codec = sd.SimDR((w, h), k, sigma=sigma)
    model = MirrorModel(codec, kp, COCO17.flip_index, images)
    fx, fy = sd.simdr_flip_test(model, images, COCO17, shift=shift, average=average)
    dec, scores = codec.decode(fx, fy)
    base, _ = codec.decode(*model(images))
    assert (dec - kp).abs().max().item() <= 1 / (2 * k) + 1e-5
    assert torch.equal(dec, base)
    assert torch.isfinite(fx).all() and (scores > 0).all()


def test_flip_without_the_right_shift_is_off_by_k_minus_1_bins():
    w, h, k = 24, 16, 2.0
    kp = torch.tensor([[[5.2, 3.1], [12.6, 8.0], [20.3, 14.9]]])
    images = torch.rand(1, 3, h, w)
    codec = sd.SimDR((w, h), k)
    model = MirrorModel(codec, kp, [2, 1, 0], images)
    base, _ = codec.decode(*model(images))
    fx, fy = model(images.flip(-1))
    no_shift, _ = codec.decode(*sd.flip_simdr(fx, fy, [2, 1, 0], shift=False))
    assert torch.allclose(no_shift[..., 0] - base[..., 0], torch.full((1, 3), (k - 1) / k))
    assert torch.equal(no_shift[..., 1], base[..., 1])


def test_flip_test_probs_is_log_mean_softmax():
    g = torch.Generator().manual_seed(4)
    head = torch.nn.Linear(3 * 4 * 4, 2 * (8 + 6))
    torch.nn.init.normal_(head.weight, std=0.5, generator=g)

    def model(images):
        z = head(images.flatten(1)).reshape(-1, 2, 14)
        return z[..., :8], z[..., 8:]

    images = torch.rand(3, 3, 4, 4, generator=g)
    with torch.no_grad():
        px, py = sd.simdr_flip_test(model, images, [1, 0], average="probs")
        lx, ly = sd.simdr_flip_test(model, images, [1, 0], average="logits")
        ax, ay = model(images)
        bx, by = sd.flip_simdr(*model(images.flip(-1)), [1, 0])
    sm = torch.softmax
    assert torch.allclose(sm(px, -1), 0.5 * (sm(ax, -1) + sm(bx, -1)), atol=1e-7)
    assert torch.allclose(sm(py, -1), 0.5 * (sm(ay, -1) + sm(by, -1)), atol=1e-7)
    assert torch.allclose(px.exp().sum(-1), torch.ones(3, 2))
    assert torch.allclose(lx, 0.5 * (ax + bx)) and torch.allclose(ly, 0.5 * (ay + by))
    # underflowing probabilities stay finite (decode refuses -inf)
    def peaked(images):
        return torch.tensor([[[0.0, -1e4, -1e4]]]), torch.tensor([[[0.0, -1e4]]])

    fx, fy = sd.simdr_flip_test(peaked, torch.rand(1, 3, 2, 2), [0], shift=False)
    assert torch.isfinite(fx).all() and torch.isfinite(fy).all()


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"split_ratio": 0.0}, ValueError, "split_ratio"),
        ({"split_ratio": -2.0}, ValueError, "split_ratio"),
        ({"split_ratio": 0.001}, ValueError, "split_ratio"),  # fewer than 2 bins
        ({"split_ratio": "2"}, TypeError, "split_ratio"),
        ({"sigma": -1.0}, ValueError, "sigma"),
        ({"sigma": float("nan")}, ValueError, "sigma"),
        ({"label_smoothing": 1.0}, ValueError, "label_smoothing"),
        ({"label_smoothing": -0.1}, ValueError, "label_smoothing"),
        ({"center": "int"}, ValueError, "center"),
        ({"confidence": "mean"}, ValueError, "confidence"),
        ({"decode_softmax": "yes"}, TypeError, "decode_softmax"),
        ({"input_size": (0, 5)}, ValueError, "input_size"),
    ],
)
def test_codec_bad_config(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        sd.SimDR(**kwargs)


def test_encode_decode_bad_input():
    c = sd.SimDR((8, 6), 2.0)
    with pytest.raises(ValueError, match="keypoints"):
        c.encode(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="keypoints"):
        c.encode(torch.tensor([[[float("nan"), 1.0]]]))
    with pytest.raises(ValueError, match="keypoints"):
        c.encode(torch.zeros(0, 3, 2))
    with pytest.raises(ValueError, match="visible"):
        c.encode(torch.zeros(1, 3, 2), torch.full((1, 3), 0.5))
    with pytest.raises(ValueError, match="visible"):
        c.encode(torch.zeros(1, 3, 2), torch.ones(1, 2))
    with pytest.raises(TypeError, match="depth"):
        c.encode(torch.zeros(1, 3, 2), depth=1)
    x, y = torch.zeros(2, 3, 16), torch.zeros(2, 3, 12)
    with pytest.raises(ValueError, match="x_logits.*16"):
        c.decode(torch.zeros(2, 3, 15), y)
    with pytest.raises(ValueError, match="y_logits"):
        c.decode(x, torch.zeros(2, 3, 16))
    with pytest.raises(ValueError, match="y_logits"):
        c.decode(x, torch.zeros(1, 3, 12))
    with pytest.raises(ValueError, match="x_logits"):
        c.decode(x.clone().index_fill_(2, torch.tensor([0]), float("inf")), y)
    with pytest.raises(ValueError, match="x_logits"):
        c.decode(torch.zeros(0, 3, 16), torch.zeros(0, 3, 12))
    with pytest.raises(ValueError, match="x_logits"):
        c.decode(torch.zeros(3, 16), torch.zeros(3, 12))
    with pytest.raises(TypeError, match="x_logits"):
        c.decode("logits", y)


def test_loss_bad_input():
    xl, yl, xt, yt, w = _tiny_case()
    with pytest.raises(ValueError, match="x_labels"):
        sd.simdr_kl_loss(xl, yl, xt[..., :2], yt, w)
    with pytest.raises(ValueError, match="y_logits"):
        sd.simdr_kl_loss(xl, yl[:1], xt, yt, w)
    with pytest.raises(ValueError, match="weights"):
        sd.simdr_kl_loss(xl, yl, xt, yt, w[:, :1])
    with pytest.raises(ValueError, match="x_logits"):
        sd.simdr_kl_loss(xl.clone().fill_(float("nan")), yl, xt, yt, w)
    with pytest.raises(ValueError, match="x_logits"):
        sd.simdr_kl_loss(xl[:0], yl[:0], xt[:0], yt[:0], w[:0])
    with pytest.raises(ValueError, match="y_labels"):
        sd.simdr_kl_loss(xl, yl, xt, -yt, w)
    with pytest.raises(ValueError, match="beta"):
        sd.simdr_kl_loss(xl, yl, xt, yt, w, beta=0.0)
    with pytest.raises(ValueError, match="reduction"):
        sd.simdr_kl_loss(xl, yl, xt, yt, w, reduction="sum")


def test_network_and_flip_bad_input():
    with pytest.raises(ValueError, match="split_ratio"):
        sd.SimDRHead(8, 2, (4, 4), (16, 16), split_ratio=0)
    with pytest.raises(ValueError, match="channels_per_joint"):
        sd.SimDRHead(8, 2, (4, 4), (16, 16), channels_per_joint=0)
    with pytest.raises(TypeError, match="backbone"):
        sd.SimDRNet(torch.nn.Conv2d(3, 8, 1), 2, (16, 16))
    with pytest.raises(ValueError, match="input_size"):
        sd.SimDRNet(tiny_simplebaseline(), 2, (48, 40))  # not multiples of 32
    x, y = torch.zeros(1, 3, 8), torch.zeros(1, 3, 6)
    with pytest.raises(ValueError, match="flip_index"):
        sd.flip_simdr(x, y, [0, 1])
    with pytest.raises(ValueError, match="flip_index"):
        sd.flip_simdr(x, y, [0, 0, 1])
    with pytest.raises(TypeError, match="flip_index"):
        sd.flip_simdr(x, y, "abc")
    with pytest.raises(ValueError, match="shift"):
        sd.flip_simdr(x, y, [0, 1, 2], shift=-1)
    with pytest.raises(ValueError, match="y_logits"):
        sd.flip_simdr(x, torch.zeros(2, 3, 6), [0, 1, 2])
    with pytest.raises(ValueError, match="average"):
        sd.simdr_flip_test(lambda im: (x, y), torch.zeros(1, 3, 4, 4), [0, 1, 2], average="max")
    with pytest.raises(ValueError, match="images"):
        sd.simdr_flip_test(lambda im: (x, y), torch.zeros(3, 4, 4), [0, 1, 2])
