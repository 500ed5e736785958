"""Tests of labcore.methods.sahr_wahr (SAHR + WAHR, Luo et al. CVPR'21; official code
greatlog/SWAHR-HumanPose ``lib/core/loss.py`` and ``lib/core/group.py``, a HigherHRNet fork).

Every expected value is computed independently: the Taylor target and the WAHR weight with
the ``math`` module on plain floats, the loss and its gradients from the formulas written out
by hand, push/pull with a per-person loop in the style of HigherHRNet's ``AELoss.
singleTagLoss``, and the decoder on scenes whose answer is known exactly.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labcore.data.formats import coco_annotation, coco_image, make_coco
from labcore.methods import sahr_wahr as sw
from labcore.metrics import coco_keypoint_ap
from labcore.nn import HRNetLite

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- references


def taylor(h: float, a: float) -> float:
    """The official ``scaled_gt`` on one pixel, plain floats: ``H + H·L·α + ½·H·L²·α²``."""
    if h <= 0:
        return 0.0 * h
    L = math.log(h)
    return h + h * L * a + 0.5 * h * L * L * a * a


def wahr(p: float, h: float, gamma: float = 0.01) -> float:
    """The official ``weight`` on one pixel: ``|1-P|·H^γ + |P|·(1-H^γ)``."""
    hg = h**gamma
    return abs(1 - p) * hg + abs(p) * (1 - hg)


def gaussian_kernel(sigma: float = 2.0) -> torch.Tensor:
    """HigherHRNet's ``6σ+3`` kernel (σ = 2: 15×15, peak 1 at 7), float64, as (1, 1, s, s)."""
    size = int(6 * sigma + 3)
    c = 3 * sigma + 1
    i = torch.arange(size, dtype=F64)
    g1 = torch.exp(-((i - c) ** 2) / (2 * sigma**2))
    return (g1[:, None] * g1[None, :])[None, None]


def hand_loss(pred, gt, alpha, mask, sahr: bool, wahr_on: bool, gamma: float = 0.01) -> list[float]:
    """Per-sample loss by an explicit loop over (k, y, x), mean over K·h·w."""
    n, k, h, w = pred.shape
    out = []
    for i in range(n):
        total = 0.0
        for j in range(k):
            for y in range(h):
                for x in range(w):
                    p, g = float(pred[i, j, y, x]), float(gt[i, j, y, x])
                    a = float(alpha[i, j, y, x]) if (sahr and g > 0) else 0.0
                    t = taylor(g, a) if sahr else g
                    wt = wahr(p, g, gamma) if wahr_on else 1.0
                    m = 1.0 if mask is None else float(mask[i, y, x])
                    total += (p - t) ** 2 * wt * m
        out.append(total / (k * h * w))
    return out


def single_tag_loss(tag_map: np.ndarray, people: list[list[tuple[int, int, int]]], kind: str):
    """HigherHRNet ``AELoss.singleTagLoss`` as a loop: ``tag_map (K, h, w)``; each person is
    a list of labelled ``(k, x, y)``. Returns ``(push, pull)`` as floats."""
    means, pull = [], 0.0
    for joints in people:
        vals = [float(tag_map[k, y, x]) for k, x, y in joints]
        if not vals:
            continue
        m = sum(vals) / len(vals)
        means.append(m)
        pull += sum((v - m) ** 2 for v in vals) / len(vals)
    n = len(means)
    if n == 0:
        return 0.0, 0.0
    if n == 1:
        return 0.0, pull
    total = 0.0
    for p in range(n):
        for q in range(n):
            if p != q:
                d = means[p] - means[q]
                total += math.exp(-d * d) if kind == "exp" else max(0.0, 1.0 - abs(d))
    return total / (n * (n - 1)) * 0.5, pull / n


# ----------------------------------------------------------------------------- 1. SAHR target


D2 = [0, 1, 2, 5, 8, 18]  # squared distances to the peak (pixels²), σ = 2
ALPHAS = [-0.5, -0.2, 0.0, 0.1, 0.3, 1.0, -3.0]


def test_sahr_target_matches_hand_taylor():
    h = [math.exp(-d / 8.0) for d in D2]  # exp(-d²/2σ²), σ = 2
    gt = torch.tensor(h, dtype=F64)[:, None].expand(len(h), len(ALPHAS))[None, None].contiguous()
    alpha = torch.tensor(ALPHAS, dtype=F64)[None, :].expand(len(h), len(ALPHAS))[None, None].contiguous()
    out = sw.sahr_target(gt, alpha)
    assert out.shape == gt.shape and out.dtype == F64
    for i, hv in enumerate(h):
        for j, a in enumerate(ALPHAS):
            assert float(out[0, 0, i, j]) == pytest.approx(taylor(hv, a), rel=1e-12, abs=1e-15)
    # Two hand-written numbers, so that a wrong reference cannot hide a wrong module:
    # H = e^{-1/8}, α = 0.3: H·(1 - 0.0375 + 0.5·0.015625·0.09)
    assert float(out[0, 0, 1, 4]) == pytest.approx(math.exp(-0.125) * (1 - 0.0375 + 0.000703125), rel=1e-12)
    # the peak (H = 1, ln H = 0) is 1 whatever α
    assert torch.equal(out[0, 0, 0], torch.ones(len(ALPHAS), dtype=F64))


@SETTINGS
@given(h=st.floats(1e-8, 1.0), a=st.floats(-3.0, 3.0))
def test_sahr_target_random_pixels(h, a):
    out = sw.sahr_target(torch.tensor([[[[h]]]], dtype=F64), torch.tensor([[[[a]]]], dtype=F64))
    assert float(out) == pytest.approx(taylor(h, a), rel=1e-11, abs=1e-14)


def test_sahr_target_zero_gt_stays_zero_and_zero_alpha_is_identity():
    gt = torch.tensor([[[[0.0, 0.0, 0.3], [0.0, 1.0, 0.05]]]], dtype=F64)
    big = torch.tensor([[[[1e3, -1e3, 0.0], [7.0, -5.0, 0.0]]]], dtype=F64)
    out = sw.sahr_target(gt, big)
    assert out[gt == 0].abs().max() == 0.0  # H = 0 stays 0 whatever α
    assert torch.isfinite(out).all()
    for alpha in (torch.zeros_like(gt), torch.zeros(1, 1, 2, 3)):
        torch.testing.assert_close(sw.sahr_target(gt, alpha), gt, rtol=0, atol=0)


@pytest.mark.parametrize(
    "alpha, lo, hi",
    # numpy on a σ = 2 kernel (METHODS.md §2.3): 0.0015 / 0.0021 / 0.020 / 0.045 / 0.127
    [(0.2, 0.0013, 0.0017), (-0.2, 0.0019, 0.0023), (0.5, 0.018, 0.022), (-0.5, 0.042, 0.047),
     (1.0, 0.12, 0.13)],
)
def test_sahr_taylor_error_against_exact_power(alpha, lo, hi):
    gt = gaussian_kernel(2.0)
    a = torch.full_like(gt, alpha)
    exact = sw.sahr_exact(gt, a)
    # sahr_exact is H^(1+α), checked on a few pixels with math.pow
    for y, x in [(7, 7), (7, 8), (5, 9), (0, 0), (3, 12)]:
        assert float(exact[0, 0, y, x]) == pytest.approx(float(gt[0, 0, y, x]) ** (1 + alpha), rel=1e-12)
    err = float((sw.sahr_target(gt, a) - exact).abs().max())
    assert lo <= err <= hi


@pytest.mark.parametrize("alpha", [-0.5, 0.3, 1.0])
def test_exact_power_is_a_gaussian_of_effective_sigma(alpha):
    gt = gaussian_kernel(2.0)
    s_eff = float(sw.effective_sigma(2.0, alpha))
    assert s_eff == pytest.approx(2.0 / math.sqrt(1 + alpha), rel=1e-6)
    exact = sw.sahr_exact(gt, torch.full_like(gt, alpha))[0, 0]
    i = torch.arange(15, dtype=F64) - 7
    d2 = i[:, None] ** 2 + i[None, :] ** 2
    torch.testing.assert_close(exact, torch.exp(-d2 / (2 * s_eff**2)), rtol=1e-5, atol=1e-12)


def test_exact_power_rejects_alpha_at_or_below_minus_one():
    gt = gaussian_kernel(2.0)
    with pytest.raises(ValueError, match="alpha"):
        sw.sahr_exact(gt, torch.full_like(gt, -1.0))
    with pytest.raises(ValueError, match="alpha"):
        sw.effective_sigma(2.0, -1.0)


# ----------------------------------------------------------------------------- 2. WAHR + gradients


def test_wahr_weight_hand_values():
    p = [0.0, 0.3, 1.0, 1.4, -0.2, 0.7, 0.5]
    h = [0.0, 0.0, 1.0, 0.5, 0.8825, 1e-4, 0.3]
    pred = torch.tensor(p, dtype=F64).reshape(1, 1, 1, -1)
    gt = torch.tensor(h, dtype=F64).reshape(1, 1, 1, -1)
    for gamma in (0.01, 0.5, 2.0):
        w = sw.wahr_weight(pred, gt, gamma)
        for j in range(len(p)):
            assert float(w[0, 0, 0, j]) == pytest.approx(wahr(p[j], h[j], gamma), rel=1e-12, abs=1e-15)
    w = sw.wahr_weight(pred, gt)  # default γ = 0.01
    assert float(w[0, 0, 0, 0]) == 0.0  # background predicted 0: no weight
    assert float(w[0, 0, 0, 1]) == pytest.approx(0.3)  # background: |P|
    assert float(w[0, 0, 0, 2]) == 0.0  # peak predicted 1: |1-P|·1
    # H = 0.8825 (σ = 2 neighbour): H^0.01 = 0.99875..., W ≈ |1-P|
    assert float(w[0, 0, 0, 4]) == pytest.approx(1.2 * 0.8825**0.01 + 0.2 * (1 - 0.8825**0.01), rel=1e-12)


def _away_from_kinks(shape, seed):
    """Predictions in (0.1, 0.9) ∪ (1.2, 1.6) ∪ (-0.6, -0.1): |P| and |1-P| are smooth."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(shape, generator=g, dtype=F64)
    band = torch.randint(0, 3, shape, generator=g)
    return torch.where(band == 0, 0.1 + 0.8 * u, torch.where(band == 1, 1.2 + 0.4 * u, -0.6 + 0.5 * u))


def test_gradcheck_wahr_weight_and_sahr_target():
    shape = (2, 2, 3, 3)
    pred = _away_from_kinks(shape, 0).requires_grad_()
    g = torch.Generator().manual_seed(1)
    gt = (0.05 + 0.95 * torch.rand(shape, generator=g, dtype=F64)).requires_grad_()
    alpha = (torch.rand(shape, generator=g, dtype=F64) - 0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda p, h: sw.wahr_weight(p, h), (pred, gt))
    assert torch.autograd.gradcheck(lambda p, h: sw.wahr_weight(p, h, gamma=0.7), (pred, gt))
    assert torch.autograd.gradcheck(sw.sahr_target, (gt, alpha))
    # wahr_weight is not detached: the output carries a graph back to pred
    assert sw.wahr_weight(pred, gt.detach()).requires_grad


def test_gradcheck_loss_through_pred_and_alpha():
    shape = (2, 2, 3, 4)
    pred = _away_from_kinks(shape, 2).requires_grad_()
    gt = gaussian_kernel(2.0)[..., 5:8, 5:9].expand(shape).clone()
    gt[0, 1, 0] = 0.0  # some background pixels
    alpha = (torch.rand(shape, generator=torch.Generator().manual_seed(3), dtype=F64) - 0.5).requires_grad_()
    mask = torch.ones(2, 3, 4, dtype=F64)
    mask[1, 2, 3] = 0.0
    fn = lambda p, a: sw.sahr_wahr_loss(p, gt, a, mask)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (pred, alpha))


@pytest.mark.parametrize("sahr", [False, True])
def test_loss_gradient_wrt_pred_includes_the_weight_term(sahr):
    # A tiny tensor: N = 1, K = 2, 2 × 3 pixels; background, support and peak pixels.
    pred = torch.tensor([[[[0.2, 0.7, 1.3], [-0.3, 0.45, 0.9]],
                          [[0.6, 0.15, 0.35], [1.1, 0.8, -0.2]]]], dtype=F64, requires_grad=True)
    gt = torch.tensor([[[[0.0, 0.6, 1.0], [0.0, 0.3, 0.8825]],
                        [[0.0, 0.0, 0.1], [1.0, 0.5, 0.0]]]], dtype=F64)
    alpha = torch.tensor([[[[0.4, -0.3, 0.2], [0.1, 0.25, -0.15]],
                           [[0.3, 0.1, -0.2], [0.05, 0.4, 0.2]]]], dtype=F64)
    loss = sw.sahr_wahr_loss(pred, gt, alpha if sahr else None, sahr=sahr, wahr=True)
    assert loss.shape == (1,)
    (grad,) = torch.autograd.grad(loss.sum(), pred)
    n = pred[0].numel()
    full = torch.zeros_like(pred)
    detached = torch.zeros_like(pred)
    for idx in np.ndindex(*pred.shape):
        p, h = float(pred.detach()[idx]), float(gt[idx])
        t = taylor(h, float(alpha[idx])) if (sahr and h > 0) else h
        hg = h**0.01
        w = abs(1 - p) * hg + abs(p) * (1 - hg)
        dw = -math.copysign(1.0, 1 - p) * hg + math.copysign(1.0, p) * (1 - hg)
        full[idx] = (2 * (p - t) * w + (p - t) ** 2 * dw) / n
        detached[idx] = 2 * (p - t) * w / n
    torch.testing.assert_close(grad, full, rtol=1e-10, atol=1e-14)
    # ... and it is not the gradient of a detached weight
    assert float((grad - detached).abs().max()) > 1e-3
    # the same check through autograd: detaching W by hand changes the gradient
    w = sw.wahr_weight(pred, gt).detach()
    t = sw.sahr_target(gt, alpha * (gt > 0)) if sahr else gt
    (g_det,) = torch.autograd.grad(((pred - t) ** 2 * w).mean(), pred)
    torch.testing.assert_close(g_det, detached, rtol=1e-10, atol=1e-14)
    assert not torch.allclose(grad, g_det)


def test_loss_gradient_reaches_alpha_only_on_the_support():
    pred = torch.tensor([[[[0.2, 0.7, 0.9], [0.1, 0.4, 0.3]]]], dtype=F64)
    gt = torch.tensor([[[[0.0, 0.6, 1.0], [0.2, 0.0, 0.8825]]]], dtype=F64)
    alpha = torch.tensor([[[[0.5, -0.3, 0.2], [0.1, 0.7, -0.15]]]], dtype=F64, requires_grad=True)
    mask = torch.tensor([[[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]], dtype=F64)
    for wahr_on in (False, True):
        loss = sw.sahr_wahr_loss(pred, gt, alpha, mask, sahr=True, wahr=wahr_on)
        (grad,) = torch.autograd.grad(loss.sum(), alpha)
        expected = torch.zeros_like(alpha)
        for idx in np.ndindex(*alpha.shape):
            p, h, a = float(pred[idx]), float(gt[idx]), float(alpha.detach()[idx])
            if h <= 0:
                continue
            L = math.log(h)
            dt = h * L + h * L * L * a
            w = wahr(p, h) if wahr_on else 1.0
            expected[idx] = 2 * (p - taylor(h, a)) * (-dt) * w * float(mask[0, idx[2], idx[3]]) / 6
        torch.testing.assert_close(grad, expected, rtol=1e-10, atol=1e-14)
        assert grad[0, 0, 0, 0] == 0 and grad[0, 0, 1, 1] == 0  # H = 0: α is masked off
        assert grad[0, 0, 1, 2] == 0  # masked pixel
        assert grad[0, 0, 0, 1] != 0 and grad[0, 0, 1, 0] != 0  # 0 < H < 1: α counts
        assert grad[0, 0, 0, 2] == 0  # the peak: ln 1 = 0, the target ignores α


# ----------------------------------------------------------------------------- 3. loss values


def _targets_batch():
    kp = torch.tensor([[[[9.3, 7.8], [20.6, 11.2]], [[30.1, 28.9], [3.0, 40.5]]],
                       [[[14.0, 33.3], [0.0, 0.0]], [[40.2, 5.5], [25.0, 25.0]]]])
    vis = torch.tensor([[[1.0, 1.0], [1.0, 0.0]], [[1.0, 0.0], [1.0, 1.0]]])
    t = sw.BottomUpTargets((48, 48), heatmap_sizes=[(24, 24)])
    return t.encode(kp, vis)["heatmaps"][0].to(F64)


@pytest.mark.parametrize("sahr", [False, True])
@pytest.mark.parametrize("wahr_on", [False, True])
def test_perfect_prediction_has_zero_loss_and_errors_are_positive(sahr, wahr_on):
    gt = _targets_batch()
    alpha = torch.zeros_like(gt)
    loss = sw.sahr_wahr_loss(gt.clone(), gt, alpha, sahr=sahr, wahr=wahr_on)
    assert loss.shape == (2,) and torch.equal(loss, torch.zeros(2, dtype=F64))
    g = torch.Generator().manual_seed(0)
    noisy = gt + 0.05 * torch.randn(gt.shape, generator=g, dtype=F64)
    assert (sw.sahr_wahr_loss(noisy, gt, alpha, sahr=sahr, wahr=wahr_on) > 0).all()
    # a prediction missing one person's peaks is penalised too (sample 0 only)
    missing = gt.clone()
    missing[0, 0, 5:12, 5:12] = 0
    out = sw.sahr_wahr_loss(missing, gt, alpha, sahr=sahr, wahr=wahr_on)
    assert out[0] > 0 and out[1] == 0
    if sahr:  # P = H is no longer perfect once α ≠ 0 on the support
        out = sw.sahr_wahr_loss(gt.clone(), gt, torch.full_like(gt, 0.3), sahr=True, wahr=wahr_on)
        assert (out > 0).all()


@pytest.mark.parametrize("sahr", [False, True])
@pytest.mark.parametrize("wahr_on", [False, True])
def test_loss_matches_a_hand_loop(sahr, wahr_on):
    g = torch.Generator().manual_seed(5)
    shape = (2, 2, 3, 4)
    pred = torch.rand(shape, generator=g, dtype=F64) * 1.6 - 0.3
    gt = torch.rand(shape, generator=g, dtype=F64)
    gt[gt < 0.35] = 0.0
    alpha = torch.rand(shape, generator=g, dtype=F64) - 0.5
    mask = (torch.rand(2, 3, 4, generator=g, dtype=F64) > 0.3).to(F64)
    for m in (None, mask):
        out = sw.sahr_wahr_loss(pred, gt, alpha, m, sahr=sahr, wahr=wahr_on)
        assert out.shape == (2,)
        ref = hand_loss(pred, gt, alpha, m, sahr, wahr_on)
        assert out.tolist() == pytest.approx(ref, rel=1e-12)
        # per sample: sample 1 alone gives the same number
        one = sw.sahr_wahr_loss(pred[1:], gt[1:], alpha[1:], None if m is None else m[1:], sahr=sahr, wahr=wahr_on)
        assert float(one[0]) == pytest.approx(ref[1], rel=1e-12)
    # other γ
    out = sw.sahr_wahr_loss(pred, gt, alpha, mask, sahr=sahr, wahr=wahr_on, gamma=0.5)
    assert out.tolist() == pytest.approx(hand_loss(pred, gt, alpha, mask, sahr, wahr_on, 0.5), rel=1e-12)


def test_plain_mse_and_alpha_off_support_is_ignored():
    gt = _targets_batch()
    g = torch.Generator().manual_seed(1)
    pred = torch.rand(gt.shape, generator=g, dtype=F64)
    plain = sw.sahr_wahr_loss(pred, gt, None, sahr=False, wahr=False)
    torch.testing.assert_close(plain, ((pred - gt) ** 2).mean(dim=(1, 2, 3)))  # no ½
    alpha = 0.2 * torch.randn(gt.shape, generator=g, dtype=F64)
    junk = alpha + 50.0 * (gt == 0)  # α off the support must not matter
    torch.testing.assert_close(sw.sahr_wahr_loss(pred, gt, alpha), sw.sahr_wahr_loss(pred, gt, junk),
                               rtol=0, atol=0)


def test_zero_mask_gives_zero_loss_and_zero_gradient():
    gt = _targets_batch()
    pred = torch.rand(gt.shape, generator=torch.Generator().manual_seed(2), dtype=F64, requires_grad=True)
    alpha = torch.full_like(gt, 0.4, requires_grad=True)
    mask = torch.zeros(2, 24, 24, dtype=F64)
    mask[1] = 1.0
    loss = sw.sahr_wahr_loss(pred, gt, alpha, mask)
    assert loss[0] == 0 and loss[1] > 0
    loss.sum().backward()
    assert pred.grad[0].abs().max() == 0 and alpha.grad[0].abs().max() == 0
    assert pred.grad[1].abs().max() > 0
    # partial mask: equals the loss summed over the kept pixels / (K·h·w)
    m = torch.zeros(2, 24, 24, dtype=F64)
    m[:, :12] = 1.0
    p = pred.detach()
    full = (p - gt) ** 2 * sw.wahr_weight(p, gt)
    expected = (full * m[:, None]).sum(dim=(1, 2, 3)) / full[0].numel()
    torch.testing.assert_close(sw.sahr_wahr_loss(p, gt, None, m, sahr=False), expected)


def test_scale_regularizer_by_hand():
    alpha = torch.tensor([[[[0.5, -1.0, 0.0], [2.0, 0.25, -0.5]],
                           [[1.0, 1.0, 1.0], [0.0, 0.0, -3.0]]]], dtype=F64)  # (1, 2, 2, 3)
    gt = torch.tensor([[[[0.0, 0.4, 1.0], [0.2, 0.0, 0.9]],
                        [[0.1, 0.0, 0.0], [0.0, 0.7, 0.5]]]], dtype=F64)
    mask = torch.tensor([[[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]]], dtype=F64)
    # mean(α²·M) over K·h·w = 12 values
    sq = [0.25, 1.0, 0.0, 4.0, 0.0625, 0.25, 1.0, 1.0, 1.0, 0.0, 0.0, 9.0]
    mk = [1, 0, 1, 1, 1, 1] * 2
    assert float(sw.scale_regularizer(alpha)[0]) == pytest.approx(sum(sq) / 12, rel=1e-12)
    assert float(sw.scale_regularizer(alpha, mask)[0]) == pytest.approx(
        sum(s * m for s, m in zip(sq, mk)) / 12, rel=1e-12)
    # gt=: α·[H>0] first (the official MultiLossFactory masking)
    on = [0, 1, 1, 1, 0, 1, 1, 0, 0, 0, 1, 1]
    assert float(sw.scale_regularizer(alpha, mask, gt=gt)[0]) == pytest.approx(
        sum(s * m * o for s, m, o in zip(sq, mk, on)) / 12, rel=1e-12)
    assert float(sw.scale_regularizer(alpha, None, gt=gt)[0]) == pytest.approx(
        sum(s * o for s, o in zip(sq, on)) / 12, rel=1e-12)
    torch.testing.assert_close(sw.mask_alpha(alpha, gt), alpha * (gt > 0))
    batch = sw.scale_regularizer(torch.cat([alpha, 2 * alpha]), torch.cat([mask, mask]))
    assert batch.shape == (2,) and float(batch[1]) == pytest.approx(4 * float(batch[0]), rel=1e-12)


# ----------------------------------------------------------------------------- 4. push / pull


def test_joint_indices_by_hand():
    w, h = 7, 5  # w ≠ h catches a transposed index
    kp = torch.tensor([[[[3.9, 2.2], [-0.5, 4.99], [-1.0, 1.0], [6.99, -0.3]],
                        [[7.0, 1.0], [2.0, 5.0], [2.5, -1.2], [1.0, 1.0]]]])
    vis = torch.tensor([[[1.0, 2.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0]]])
    j = sw.joint_indices(kp, vis, (w, h))
    assert j.dtype == torch.int64 and j.shape == (1, 2, 4, 2)
    hw = h * w
    expected = [[[0 * hw + 2 * w + 3, 1],  # int() of (3.9, 2.2)
                 [1 * hw + 4 * w + 0, 1],  # x = -0.5 truncates to column 0: on the map
                 [0, 0],  # x = -1.0: off
                 [3 * hw + 0 * w + 6, 1]],  # y = -0.3 → row 0, x = 6.99 → column 6
                [[0, 0],  # x = 7 = w: off
                 [0, 0],  # y = 5 = h: off
                 [0, 0],  # y = -1.2: off
                 [0, 0]]]  # invisible
    assert j[0].tolist() == expected
    # numpy input and visible=None (all labelled)
    j2 = sw.joint_indices(kp.numpy(), None, (w, h))
    assert j2[0, 1, 3].tolist() == [3 * hw + 1 * w + 1, 1]


def test_targets_use_joint_indices_and_truncated_centres():
    kp = torch.tensor([[[[10.0, 22.0], [35.0, 3.0]], [[63.0, 47.0], [1.0, 40.0]]]])
    vis = torch.tensor([[[1.0, 1.0], [1.0, 0.0]]])
    t = sw.BottomUpTargets((64, 48), heatmap_sizes=[(16, 12), (32, 24)])
    enc = t.encode(kp, vis)
    for i, (w, h) in enumerate([(16, 12), (32, 24)]):
        s = torch.tensor([w / 64, h / 48])
        torch.testing.assert_close(enc["joints"][i], sw.joint_indices(kp * s, vis, (w, h)))
        hm = enc["heatmaps"][i]
        assert hm.shape == (1, 2, h, w) and torch.equal(enc["masks"][i], torch.ones(1, h, w))
        # peak 1 at (int(x·w/W), int(y·h/H)); joint 1 of person 1 is invisible
        for k, (x, y) in enumerate([(10.0, 22.0), (35.0, 3.0)]):
            assert float(hm[0, k, int(y * h / 48), int(x * w / 64)]) == 1.0
        assert float(hm[0, 0, int(47 * h / 48), int(63 * w / 64)]) == 1.0
        assert int((hm[0, 1] == 1.0).sum()) == 1


def test_targets_ignore_mask_is_area_resized():
    kp = torch.tensor([[[[10.0, 10.0]]], [[[50.0, 30.0]]]])
    ignore = torch.zeros(2, 48, 64)
    ignore[0, :, :32] = 1  # left half of image 0
    ignore[1, :24, :] = 1  # top half of image 1 ...
    ignore[1, 24:25, :] = 1  # ... and a 1-pixel strip: a quarter of a stride-4 cell
    enc = sw.BottomUpTargets((64, 48), heatmap_sizes=[(16, 12)]).encode(kp, None, ignore)
    m = enc["masks"][0]
    assert m.shape == (2, 12, 16)
    assert torch.equal(m[0, :, :8], torch.zeros(12, 8)) and torch.equal(m[0, :, 8:], torch.ones(12, 8))
    assert torch.equal(m[1, :6], torch.zeros(6, 16)) and torch.equal(m[1, 6:], torch.ones(6, 16))


def _ae_scene():
    """Three images, K = 3, h = 4, w = 5. Returns (tags, joints, per-image people as (k, x, y))."""
    K, h, w = 3, 4, 5
    g = torch.Generator().manual_seed(0)
    tags = 5.0 + torch.rand(3, K, h, w, generator=g, dtype=F64)  # unrelated pixels: noise
    people_xy = [
        # image 0: A (3 joints), B (2 labelled + 1 invisible), C (1 on the map, 1 off), D (none)
        [[(0.2, 0.7), (1.5, 2.1), (4.0, 3.9)],
         [(2.0, 1.0), (2.6, 1.4), (3.3, 0.2)],
         [(5.2, 1.0), (3.0, 3.0), (0.0, 0.0)],
         [(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)]],
        # image 1: one person
        [[(1.0, 0.0), (4.0, 1.0), (0.0, 0.0)], [(0.0, 0.0)] * 3, [(0.0, 0.0)] * 3, [(0.0, 0.0)] * 3],
        # image 2: nobody labelled
        [[(1.0, 1.0)] * 3] * 4,
    ]
    vis = torch.tensor([[[1, 1, 1], [1, 0, 1], [1, 1, 0], [0, 0, 0]],
                        [[1, 1, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]],
                        [[0, 0, 0]] * 4], dtype=F64)
    values = {  # (image, person, joint) → tag
        (0, 0, 0): 1.0, (0, 0, 1): 1.5, (0, 0, 2): 0.8,  # A: mean 1.1
        (0, 1, 0): 2.0, (0, 1, 2): 1.4,  # B: mean 1.7
        (0, 2, 1): 0.6,  # C: one joint, mean 0.6 (joint 0 is off the map)
        (1, 0, 0): 0.5, (1, 0, 1): 1.5,  # E: mean 1.0
    }
    people = [[], [], []]
    for n in range(3):
        for p in range(4):
            joints = []
            for k in range(K):
                x, y = people_xy[n][p][k]
                if (n, p, k) in values:
                    tags[n, k, int(y), int(x)] = values[(n, p, k)]
                    joints.append((k, int(x), int(y)))
            people[n].append(joints)
    kp = torch.tensor(people_xy, dtype=torch.float32)
    joints = sw.joint_indices(kp, vis, (w, h))
    return tags, joints, people


@pytest.mark.parametrize("kind", ["exp", "max"])
def test_ae_loss_matches_hand_computation(kind):
    tags, joints, people = _ae_scene()
    # the person with no labelled joint (image 0, D) and C's off-map joint are not counted
    assert joints[0, 3, :, 1].tolist() == [0, 0, 0] and joints[0, 2, :, 1].tolist() == [0, 1, 0]
    push, pull = sw.ae_loss(tags, joints, loss_type=kind)
    assert push.shape == (3,) and pull.shape == (3,)
    for n in range(3):
        ref_push, ref_pull = single_tag_loss(tags[n].numpy(), people[n], kind)
        assert float(push[n]) == pytest.approx(ref_push, rel=1e-12, abs=1e-15)
        assert float(pull[n]) == pytest.approx(ref_pull, rel=1e-12, abs=1e-15)
    # the same numbers written out: means 1.1, 1.7, 0.6 → pulls 0.26/3, 0.09, 0
    assert float(pull[0]) == pytest.approx((0.26 / 3 + 0.09 + 0.0) / 3, rel=1e-12)
    if kind == "exp":
        ref = 2 * (math.exp(-0.36) + math.exp(-0.25) + math.exp(-1.21)) / 6 * 0.5
    else:  # max(0, 1 - |d|): 0.4, 0.5, 0 (|1.7 - 0.6| = 1.1)
        ref = 2 * (0.4 + 0.5 + 0.0) / 6 * 0.5
    assert float(push[0]) == pytest.approx(ref, rel=1e-12)
    assert float(push[1]) == 0.0 and float(pull[1]) == pytest.approx(0.25, rel=1e-12)  # one person
    assert float(push[2]) == 0.0 and float(pull[2]) == 0.0  # nobody


def test_ae_loss_official_example_and_gradient():
    # HigherHRNet/SWAHR loss.py::test_ae_loss: tags 0.1·arange(32) as (1, 2, 4, 4), person 0 at
    # flat indices 3 and 22, person 1 at 10 and 30 (tags 0.3, 2.2 and 1.0, 3.0).
    t = (torch.arange(32, dtype=F64) * 0.1).reshape(1, 2, 4, 4).requires_grad_()
    joints = torch.tensor([[[[3, 1], [22, 1]], [[10, 1], [30, 1]]]])
    push, pull = sw.ae_loss(t, joints)
    (g,) = torch.autograd.grad(pull.sum(), t)
    push, pull = push.detach(), pull.detach()
    assert float(pull[0]) == pytest.approx((0.95**2 + 1.0**2) / 2, rel=1e-12)
    assert float(push[0]) == pytest.approx(math.exp(-(0.75**2)) * 0.5, rel=1e-12)
    # d pull / d tag = (tag - mean) / (n_people · n_joints)
    flat = g.reshape(-1)
    assert flat[3].item() == pytest.approx((0.3 - 1.25) / 2, rel=1e-12)
    assert flat[30].item() == pytest.approx((3.0 - 2.0) / 2, rel=1e-12)
    assert flat[0].item() == 0.0


# ----------------------------------------------------------------------------- 5. decoding

#: One COCO person, 17 keypoints inside a 22 × 40 box (nose, eyes, ears, shoulders, elbows,
#: wrists, hips, knees, ankles).
TEMPLATE = np.array([[12, 4], [10, 2], [14, 2], [8, 3], [16, 3], [6, 10], [18, 10], [4, 18], [20, 18],
                     [3, 25], [21, 25], [9, 24], [15, 24], [9, 32], [15, 32], [9, 40], [15, 40]], float)
ORIGINS = [(6, 6), (70, 8), (10, 70), (75, 72)]


def hand_scene():
    """Four people on a 128 × 128 image, every keypoint at integer + 0.25 (where the
    official decoder lands on a symmetric target: int(x) + 0.5 - 0.25)."""
    kp = np.stack([TEMPLATE + np.array(o) for o in ORIGINS])[None] + 0.25  # (1, 4, 17, 2)
    vis = np.ones(kp.shape[:3])
    anns = [coco_annotation(i + 1, 1, kp[0, i], np.full(17, 2), area=2000.0) for i in range(len(ORIGINS))]
    coco = make_coco([coco_image(1, "hand.png", 128, 128)], anns)
    return torch.tensor(kp, dtype=torch.float32), torch.tensor(vis, dtype=torch.float32), coco


STRIDE1 = sw.BottomUpTargets((128, 128), heatmap_sizes=[(128, 128)])


def match_people(decoded: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Max |error| (px) of each true person against its nearest decoded person; asserts the
    matching is one-to-one."""
    err = np.abs(decoded[:, None] - truth[None]).max(axis=(2, 3))  # (decoded, true)
    best = err.argmin(0)
    assert len(set(best.tolist())) == truth.shape[0], "two people decoded as one"
    return err.min(0)


def test_hand_crowd_oracle_decodes_with_ap_one():
    kp, vis, coco = hand_scene()
    people = sw.decode_people(sw.oracle_outputs(kp, vis, STRIDE1), (128, 128))
    assert len(people) == 1 and len(people[0]["scores"]) == 4
    assert people[0]["keypoints"].shape == (4, 17, 2) and people[0]["tags"].shape == (4, 17, 1)
    np.testing.assert_allclose(people[0]["scores"], 1.0, atol=1e-3)  # peaks of 1 (- the 1e-6/px ramp)
    err = match_people(people[0]["keypoints"], kp[0].numpy())
    assert err.max() < 1e-5  # the oracle's tie-break ramp resolves ties as the official rule
    stats = coco_keypoint_ap(coco, sw.coco_results(people, [1]))
    assert stats["AP"] == 1.0 and stats["AP50"] == 1.0 and stats["AR"] == 1.0


def test_symmetric_target_decodes_exactly_at_quarter_offset():
    # The ground-truth heatmaps themselves (no tie-breaking ramp) and the oracle's tags: the
    # official adjust turns the tie between the two equal neighbours into -0.25, then +0.5.
    kp, vis, coco = hand_scene()
    oracle = sw.oracle_outputs(kp, vis, STRIDE1)
    outputs = {"heatmaps": STRIDE1.encode(kp, vis)["heatmaps"], "tags": oracle["tags"], "scales": None}
    people = sw.decode_people(outputs, (128, 128))
    assert len(people[0]["scores"]) == 4
    assert match_people(people[0]["keypoints"], kp[0].numpy()).max() < 1e-5
    np.testing.assert_array_equal(people[0]["scores"], np.ones(4, np.float32))
    assert coco_keypoint_ap(coco, sw.coco_results(people, [1]))["AP"] == 1.0


def test_oracle_at_stride_one_is_exact():
    kp, vis, _ = hand_scene()
    people = sw.decode_people(sw.oracle_outputs(kp, vis, STRIDE1), (128, 128))
    assert match_people(people[0]["keypoints"], kp[0].numpy()).max() < 1e-5


def _with_tags(outputs: dict, values: list[float]) -> dict:
    """Stride-1 oracle outputs with person p's tag replaced by ``values[p]`` (the oracle's
    stride-1 tags are exactly 2p)."""
    idx = (outputs["tags"] / 2.0).round().long()
    return dict(outputs, tags=torch.tensor(values, dtype=outputs["tags"].dtype)[idx])


def _decoded_set(person: dict) -> list:
    both = np.concatenate([person["keypoints"], person["keypoint_scores"][..., None]], -1)
    return sorted(map(tuple, both.reshape(len(both), -1).round(4).tolist()))


def test_grouping_follows_tags_swap_and_chimera():
    kp, vis, _ = hand_scene()
    oracle = sw.oracle_outputs(kp, vis, STRIDE1)
    assert sorted(oracle["tags"].unique().tolist()) == [0.0, 2.0, 4.0, 6.0]
    base = sw.decode_people(oracle, (128, 128))[0]
    # swapping two people's tags changes nothing
    swapped = sw.decode_people(_with_tags(oracle, [2.0, 0.0, 4.0, 6.0]), (128, 128))[0]
    assert _decoded_set(swapped) == _decoded_set(base)
    # tag values are arbitrary: only their differences matter
    shifted = sw.decode_people(_with_tags(oracle, [-7.0, -5.0, -3.0, -1.0]), (128, 128))[0]
    assert _decoded_set(shifted) == _decoded_set(base)
    # giving person 0's hips, knees and ankles person 1's tag (and vice versa) makes the
    # decoder join them across the image: grouping is by tag, not by position
    lower = [11, 12, 13, 14, 15, 16]
    tags = oracle["tags"].clone()
    for k in lower:
        t = tags[0, k]
        tags[0, k] = torch.where(t == 0.0, 2.0, torch.where(t == 2.0, 0.0, t))
    chim = sw.decode_people(dict(oracle, tags=tags), (128, 128))[0]
    truth = kp[0].numpy().copy()
    truth[0, lower], truth[1, lower] = kp[0, 1, lower].numpy(), kp[0, 0, lower].numpy()
    assert len(chim["scores"]) == 4
    assert match_people(chim["keypoints"], truth).max() <= 0.5 + 1e-5


def test_two_people_with_the_same_tag_merge():
    kp, vis, _ = hand_scene()
    oracle = sw.oracle_outputs(kp, vis, STRIDE1)
    merged = sw.decode_people(_with_tags(oracle, [0.0, 0.0, 4.0, 6.0]), (128, 128))[0]
    assert len(merged["scores"]) == 3


@pytest.fixture(scope="module")
def crowd():
    """The miniature's synthetic crowds (4 images of 2-4 people, scales ×4). Built once (a few
    seconds) and then read from labcore's dataset cache ($LABCORE_CACHE), as the notebooks do,
    so that this file stays fast."""
    from labcore.data.datasets import CrowdScenes

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*toy body.*")
        ds = CrowdScenes(4, seed=0, size=(128, 128), people=(2, 4), scale_range=4.0, progress=False)
    kp = torch.from_numpy(ds.arrays["keypoints"]).float()
    vis = torch.from_numpy(ds.arrays["visibility"].astype(np.float32))
    return ds, ds.coco(min_area=100), kp, vis


def test_crowd_scene_oracle_ap(crowd):
    ds, coco, kp, vis = crowd
    targets = sw.BottomUpTargets((128, 128))  # strides 4 and 2, projected to the input
    people = sw.decode_people(sw.oracle_outputs(kp, vis, targets), (128, 128))
    counts = [len(p["scores"]) for p in people]
    assert counts == ds.arrays["num_people"].tolist()
    stats = coco_keypoint_ap(coco, sw.coco_results(people, [1, 2, 3, 4]))
    # Measured: AP50 = 0.912, AR50 = 1.0 (AP 0.743, AP75 0.912). The only false positive is
    # image 4's second person: its keypoints are marked visible in the arrays but only 1 px of
    # it shows, so COCO leaves it unlabelled (min_area=100) and the oracle's detection of it
    # matches nothing.
    assert stats["AP50"] >= 0.88 and stats["AR50"] == 1.0
    # Only the people COCO labels: every one found, no false positive.
    labelled = vis.clone()
    anns = iter(coco["annotations"])
    for i in range(4):
        for p in range(int(ds.arrays["num_people"][i])):
            if next(anns)["num_keypoints"] == 0:
                labelled[i, p] = 0
    people = sw.decode_people(sw.oracle_outputs(kp, labelled, targets), (128, 128))
    assert [len(p["scores"]) for p in people] == (labelled.amax(-1) > 0).sum(-1).tolist()
    stats = coco_keypoint_ap(coco, sw.coco_results(people, [1, 2, 3, 4]))
    assert stats["AP50"] == 1.0 and stats["AP75"] == 1.0  # measured: AP 0.852


def test_crowd_scene_person_order_does_not_matter(crowd):
    # Reordering people reassigns the oracle's tags (person p gets 2p); before refine (which
    # rounds tag distances to other people) the decoded people are the same.
    _, _, kp, vis = crowd
    targets = sw.BottomUpTargets((128, 128))
    params = sw.GroupingParams(refine=False)
    a = sw.decode_people(sw.oracle_outputs(kp, vis, targets), (128, 128), params)
    perm = [1, 0, 3, 2]
    b = sw.decode_people(sw.oracle_outputs(kp[:, perm], vis[:, perm], targets), (128, 128), params)
    for x, y in zip(a, b):
        assert _decoded_set(x) == _decoded_set(y)


def test_coco_results_and_empty_images():
    kp, vis, _ = hand_scene()
    people = sw.decode_people(sw.oracle_outputs(kp, vis, STRIDE1), (128, 128))
    empty = sw.group_people(torch.zeros(1, 17, 16, 16), torch.zeros(1, 17, 16, 16))
    assert len(empty[0]["scores"]) == 0 and empty[0]["keypoints"].shape == (0, 17, 2)
    res = sw.coco_results(people + empty, [7, 8])
    assert len(res) == 4 and {r["image_id"] for r in res} == {7}
    assert len(res[0]["keypoints"]) == 51 and res[0]["category_id"] == 1
    assert sw.coco_results(empty, [1]) == []


# ----------------------------------------------------------------------------- 6. errors


def _t(*shape, value=0.5):
    return torch.full(shape, value)


def _nan(*shape):
    x = _t(*shape)
    x.view(-1)[1] = float("nan")
    return x


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: sw.sahr_wahr_loss(_t(1, 2, 3, 5), _t(1, 2, 3, 4), _t(1, 2, 3, 4)), "gt"),
        (lambda: sw.sahr_wahr_loss(_t(1, 2, 3, 4), _t(1, 2, 3, 4), _t(1, 2, 4, 4)), "alpha"),
        (lambda: sw.sahr_wahr_loss(_t(1, 2, 3, 4), _t(1, 2, 3, 4), _t(1, 2, 3, 4), _t(1, 3, 5)), "mask"),
        (lambda: sw.sahr_wahr_loss(_t(1, 2, 3, 4), _t(1, 2, 3, 4), _t(1, 2, 3, 4), _t(2, 3, 4)), "mask"),
        (lambda: sw.sahr_wahr_loss(_t(1, 2, 3, 4), _t(1, 2, 3, 4), None, _t(1, 2, 3, 4), sahr=False), "mask"),
        (lambda: sw.sahr_wahr_loss(_t(2, 3, 4), _t(2, 3, 4), None, sahr=False), "pred"),
        (lambda: sw.sahr_wahr_loss(_nan(1, 2, 3, 4), _t(1, 2, 3, 4), _t(1, 2, 3, 4)), "pred"),
        (lambda: sw.sahr_wahr_loss(_t(1, 2, 3, 4), _nan(1, 2, 3, 4), _t(1, 2, 3, 4)), "gt"),
        (lambda: sw.sahr_wahr_loss(_t(1, 2, 3, 4), _t(1, 2, 3, 4), _nan(1, 2, 3, 4)), "alpha"),
        (lambda: sw.sahr_wahr_loss(_t(1, 2, 3, 4), _t(1, 2, 3, 4), _t(1, 2, 3, 4), _nan(1, 3, 4)), "mask"),
        (lambda: sw.sahr_wahr_loss(_t(1, 2, 3, 4), _t(1, 2, 3, 4, value=-0.1), None, sahr=False), "gt"),
        (lambda: sw.sahr_wahr_loss(_t(1, 2, 3, 4), _t(1, 2, 3, 4)), "alpha"),  # sahr=True needs α
        (lambda: sw.sahr_target(_t(1, 2, 3, 4), _t(1, 2, 3, 5)), "alpha"),
        (lambda: sw.sahr_target(_t(1, 2, 3, 4, value=-1.0), _t(1, 2, 3, 4)), "gt"),
        (lambda: sw.sahr_target(_nan(1, 2, 3, 4), _t(1, 2, 3, 4)), "gt"),
        (lambda: sw.sahr_target(_t(1, 2, 3, 4), _nan(1, 2, 3, 4)), "alpha"),
        (lambda: sw.wahr_weight(_t(1, 2, 3, 4), _t(1, 2, 4, 3)), "gt"),
        (lambda: sw.wahr_weight(_nan(1, 2, 3, 4), _t(1, 2, 3, 4)), "pred"),
        (lambda: sw.wahr_weight(_t(1, 2, 3, 4), _t(1, 2, 3, 4, value=-0.5)), "gt"),
        (lambda: sw.scale_regularizer(_t(1, 2, 3, 4), _t(1, 3, 5)), "mask"),
        (lambda: sw.scale_regularizer(_nan(1, 2, 3, 4)), "alpha"),
        (lambda: sw.scale_regularizer(_t(1, 2, 3, 4), None, gt=_t(1, 2, 3, 5)), "alpha"),
        (lambda: sw.ae_loss(_t(1, 2, 3, 4), torch.zeros(1, 2, 3, 2, dtype=torch.long)), "joints"),
        (lambda: sw.ae_loss(_t(1, 2, 3, 4), torch.zeros(2, 2, 2, 2, dtype=torch.long)), "joints"),
        (lambda: sw.ae_loss(_t(1, 2, 3, 4), torch.tensor([[[[24, 1], [0, 0]]]])), "joints"),
        (lambda: sw.ae_loss(_t(1, 2, 3, 4), torch.tensor([[[[-1, 1], [0, 0]]]])), "joints"),
        (lambda: sw.ae_loss(_nan(1, 2, 3, 4), torch.zeros(1, 1, 2, 2, dtype=torch.long)), "tags"),
        (lambda: sw.ae_loss(_t(1, 2, 3, 4), torch.zeros(1, 1, 2, 2, dtype=torch.long), "l2"), "loss_type"),
        (lambda: sw.joint_indices(_t(1, 2, 3, 2), _t(1, 2, 4), (5, 5)), "visible"),
        (lambda: sw.joint_indices(_nan(1, 2, 3, 2), None, (5, 5)), "keypoints"),
        (lambda: sw.GroupingParams(nms_kernel=4), "nms_kernel"),
        (lambda: sw.GroupingParams(max_people=0), "max_people"),
        (lambda: sw.GroupingParams(tag_threshold=-1.0), "tag_threshold"),
        (lambda: sw.GroupingParams(detection_threshold=float("nan")), "detection_threshold"),
        (lambda: sw.group_people(_t(1, 17, 8, 8), _t(1, 17, 8, 9)), "tags"),
        (lambda: sw.group_people(_t(1, 3, 8, 8), _t(1, 3, 8, 8)), "joint_order"),
        (lambda: sw.coco_results([{"scores": np.zeros(0)}], [1, 2]), "image_ids"),
        (lambda: sw.BottomUpTargets((64, 64), heatmap_sizes=[]), "heatmap_sizes"),
        (lambda: sw.BottomUpTargets((64, 64), sigma=0.0), "sigma"),
    ],
)
def test_bad_input_gives_a_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize("gamma", [0, 0.0, -0.01, float("nan"), float("inf"), -float("inf")])
def test_bad_gamma(gamma):
    with pytest.raises(ValueError, match="gamma"):
        sw.wahr_weight(_t(1, 2, 3, 4), _t(1, 2, 3, 4), gamma)
    with pytest.raises(ValueError, match="gamma"):
        sw.sahr_wahr_loss(_t(1, 2, 3, 4), _t(1, 2, 3, 4), _t(1, 2, 3, 4), gamma=gamma)


def test_type_errors():
    with pytest.raises(TypeError, match="joints"):  # float joints: not flat indices
        sw.ae_loss(_t(1, 2, 3, 4), torch.zeros(1, 1, 2, 2))
    with pytest.raises(TypeError, match="gamma"):
        sw.wahr_weight(_t(1, 2, 3, 4), _t(1, 2, 3, 4), True)
    with pytest.raises(TypeError, match="backbone"):
        sw.BottomUpNet(torch.nn.ReLU())  # no out_channels


# ----------------------------------------------------------------------------- 7. the network


def _small_net(**kw) -> sw.BottomUpNet:
    torch.manual_seed(0)
    return sw.BottomUpNet(HRNetLite(widths=(8, 16), stem_channels=8), **kw)


def _batch():
    g = torch.Generator().manual_seed(0)
    kp = torch.rand(2, 3, 17, 2, generator=g) * 60
    vis = (torch.rand(2, 3, 17, generator=g) > 0.3).float()
    return torch.rand(2, 3, 64, 64, generator=g), sw.BottomUpTargets((64, 64)).encode(kp, vis)


def test_network_shapes_and_zero_scale_at_init():
    net = _small_net()
    images, _ = _batch()
    out = net(images)
    assert [tuple(h.shape) for h in out["heatmaps"]] == [(2, 17, 16, 16), (2, 17, 32, 32)]
    assert tuple(out["tags"].shape) == (2, 17, 16, 16)
    assert [tuple(s.shape) for s in out["scales"]] == [(2, 17, 16, 16), (2, 17, 32, 32)]
    for s in out["scales"]:
        assert torch.equal(s, torch.zeros_like(s))
    for branch in (net.scale1, net.scale2):
        last = branch[-1]
        assert last.groups == 17 and last.kernel_size == (9, 9) and last.padding == (4, 4)
        assert torch.equal(last.weight, torch.zeros_like(last.weight))
        assert torch.equal(last.bias, torch.zeros_like(last.bias))
    assert net.strides == (4, 2)
    plain = _small_net(scale=False, higher=False)(images)
    assert plain["scales"] is None and len(plain["heatmaps"]) == 1


def test_bottom_up_loss_forward_backward():
    net = _small_net()
    images, targets = _batch()
    out = net(images)
    loss, logs = sw.bottom_up_loss(out, targets)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert set(logs) == {"heatmap", "scale", "push", "pull"}
    assert all(math.isfinite(v) for v in logs.values())
    assert logs["scale"] == 0.0 and logs["heatmap"] > 0  # α = 0 at init
    assert loss.item() == pytest.approx(sum(logs.values()), rel=1e-5)
    # the parts, recomputed from the public functions
    hm = sum(sw.sahr_wahr_loss(p.detach(), g, torch.zeros_like(g), m).mean()
             for p, g, m in zip(out["heatmaps"], targets["heatmaps"], targets["masks"]))
    push, pull = sw.ae_loss(out["tags"].detach(), targets["joints"][0])
    assert logs["heatmap"] == pytest.approx(float(hm), rel=1e-5)
    assert logs["push"] == pytest.approx(1e-3 * float(push.mean()), rel=1e-5)
    assert logs["pull"] == pytest.approx(1e-3 * float(pull.mean()), rel=1e-5, abs=1e-12)
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    # SAHR: the zero-initialised scale convs get a gradient through the Taylor target
    assert net.scale1[-1].weight.grad.abs().sum() > 0 and net.scale2[-1].weight.grad.abs().sum() > 0
    # without SAHR the scale branches are not in the loss
    net.zero_grad(set_to_none=True)
    loss, logs = sw.bottom_up_loss(net(images), targets, sahr=False)
    loss.backward()
    assert net.scale1[-1].weight.grad is None and logs["scale"] == 0.0


def test_bottom_up_loss_needs_scale_maps_for_sahr():
    net = _small_net(scale=False)
    images, targets = _batch()
    out = net(images)
    with pytest.raises(ValueError, match="scale"):
        sw.bottom_up_loss(out, targets, sahr=True)
    loss, logs = sw.bottom_up_loss(out, targets, sahr=False, wahr=False)
    assert torch.isfinite(loss) and logs["scale"] == 0.0


def test_bottom_up_loss_rejects_a_stage_count_mismatch():
    net = _small_net()
    images, _ = _batch()
    g = torch.Generator().manual_seed(0)
    kp, vis = torch.rand(2, 3, 17, 2, generator=g) * 60, torch.ones(2, 3, 17)
    one_stage = sw.BottomUpTargets((64, 64), heatmap_sizes=[(16, 16)]).encode(kp, vis)
    with pytest.raises(ValueError):
        sw.bottom_up_loss(net(images), one_stage)
