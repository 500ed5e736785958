"""labcore.methods.heatmap: codecs at their quantisation floor, losses by hand, the network,
the flip test, soft-argmax, and errors on bad input. (Exact agreement with mmpose's
per-keypoint loops is in test_codec_references.py.)"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from labcore import heatmaps as hmz
from labcore.codec import CODECS, build_codec
from labcore.methods import heatmap as hm
from labcore.nn import SimpleBaseline
from labcore.skeletons import COCO17

SIZES = st.sampled_from([((64, 64), (16, 16)), ((48, 64), (12, 16)), ((32, 32), (8, 8)), ((96, 72), (48, 36))])


@settings(max_examples=40, deadline=None)
@given(sizes=SIZES, seed=st.integers(0, 10_000))
def test_argmax_round_trip_within_half_stride(sizes, seed):
    input_size, heatmap_size = sizes
    codec = hm.GaussianHeatmap(input_size, heatmap_size, sigma=1.0, refine=False)
    g = torch.Generator().manual_seed(seed)
    limit = torch.tensor(input_size, dtype=torch.float32) - 1
    kp = torch.rand(8, 5, 2, generator=g) * limit
    out, scores = codec.decode(codec.encode(kp)["heatmaps"])
    stride = torch.tensor(codec.stride)
    # The centre int(x/s + 0.5) is the nearest heatmap pixel unless it falls off the map
    # (x/s >= w - 0.5), where no pixel is nearer than the last one.
    inside = (kp / stride + 0.5 < torch.tensor(heatmap_size)).all(-1)
    err = (out - kp).abs()[inside]
    assert float(err.max()) <= float(stride.max()) / 2 + 1e-4
    assert torch.allclose(scores[inside], torch.ones_like(scores[inside]))


@settings(max_examples=25, deadline=None)
@given(variant=st.sampled_from(["dark", "udp"]), seed=st.integers(0, 10_000))
def test_unbiased_variants_beat_argmax_floor(variant, seed):
    # DARK and UDP encode the un-rounded position, and their refinement reads it back.
    codec = hm.GaussianHeatmap((64, 64), (16, 16), sigma=2.0, variant=variant)
    g = torch.Generator().manual_seed(seed)
    kp = 20 + torch.rand(6, 4, 2, generator=g) * 24  # away from the borders (blur, DARK skip)
    out, _ = codec.decode(codec.encode(kp)["heatmaps"])
    err = (out - kp).abs()
    # argmax alone is off by up to 2 px here; the blur near the map's edge leaves ~0.1 px.
    assert float(err.max()) < 0.2 and float(err.mean()) < 0.03


def test_quarter_refinement_halves_the_mean_error():
    g = torch.Generator().manual_seed(0)
    kp = 8 + torch.rand(200, 3, 2, generator=g) * 48
    plain = hm.GaussianHeatmap((64, 64), (16, 16), sigma=2.0, refine=False)
    # An ideal network output: a Gaussian at the exact (un-rounded) position.
    ideal = hm.GaussianHeatmap((64, 64), (16, 16), sigma=2.0, variant="dark").encode(kp)["heatmaps"]
    e_plain = (plain.decode(ideal)[0] - kp).abs().mean()
    e_refined = (hm.GaussianHeatmap((64, 64), (16, 16), sigma=2.0).decode(ideal)[0] - kp).abs().mean()
    assert e_plain == pytest.approx(1.0, abs=0.12)  # mean |U(-2, 2)| = 1 px at stride 4
    assert e_refined < 0.65 * e_plain


def test_invisible_and_outside_keypoints_get_zero_weight_and_empty_map():
    codec = hm.GaussianHeatmap((64, 64), (16, 16), sigma=2.0)
    kp = torch.tensor([[[10.0, 10.0], [200.0, 10.0], [30.0, 30.0], [-40.0, 5.0]]])
    vis = torch.tensor([[1.0, 1.0, 0.0, 1.0]])
    for variant in hm.VARIANTS:
        enc = hm.GaussianHeatmap((64, 64), (16, 16), sigma=2.0, variant=variant).encode(kp, vis)
        assert enc["weights"].tolist() == [[1.0, 0.0, 0.0, 0.0]], variant
        assert float(enc["heatmaps"][0, 1:].abs().sum()) == 0.0, variant
    # An empty map decodes to mmpose's -1 marker, scaled by the stride.
    out, score = codec.decode(torch.zeros(1, 1, 16, 16))
    assert out.tolist() == [[[-4.0, -4.0]]] and score.item() == 0.0


def test_registry_and_numpy_input():
    assert {"gaussian_heatmap", "integral_heatmap"} <= set(CODECS)
    codec = build_codec("gaussian_heatmap", input_size=(32, 32), heatmap_size=(8, 8), sigma=1.0)
    enc = codec.encode(np.full((1, 2, 2), 12.0, dtype=np.float32))
    assert enc["heatmaps"].shape == (1, 2, 8, 8) and enc["heatmaps"].dtype == torch.float32


def test_codec_bad_inputs():
    with pytest.raises(ValueError, match="sigma"):
        hm.GaussianHeatmap(sigma=-1.0)
    with pytest.raises(ValueError, match="sigma"):
        hm.GaussianHeatmap(sigma=0.0)
    with pytest.raises(ValueError, match="variant"):
        hm.GaussianHeatmap(variant="gaussian")
    with pytest.raises(ValueError, match="blur_kernel"):
        hm.GaussianHeatmap(blur_kernel=4)
    codec = hm.GaussianHeatmap((64, 64), (16, 16))
    with pytest.raises(ValueError, match="keypoints"):
        codec.encode(torch.full((2, 3, 2), float("nan")))
    with pytest.raises(ValueError, match="non-empty"):
        codec.encode(torch.zeros(0, 3, 2))
    with pytest.raises(ValueError, match="visible"):
        codec.encode(torch.zeros(2, 3, 2), torch.ones(2, 4))
    with pytest.raises(ValueError, match="single instance"):
        codec.encode(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="size"):
        codec.decode(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="heatmaps"):
        codec.decode(torch.full((1, 3, 16, 16), float("nan")))
    with pytest.raises(TypeError, match="one output"):
        codec.decode(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16))
    with pytest.raises(TypeError, match="unexpected keyword"):
        codec.encode(torch.zeros(1, 3, 2), depth=torch.zeros(1, 3))


# ----------------------------------------------------------------------------- soft-argmax


@pytest.mark.parametrize("grid", ["pixel", "mmpose", "hemlets"])
def test_soft_argmax_one_hot_2d_and_3d(grid):
    logits = torch.full((1, 1, 5, 6, 7), -1e4)
    logits[0, 0, 3, 2, 4] = 0.0  # z=3, y=2, x=4
    xyz = hm.soft_argmax(logits, grid=grid)
    expect = [hmz.make_grid(n, grid)[i].item() for n, i in ((7, 4), (6, 2), (5, 3))]
    assert xyz.shape == (1, 1, 3)
    assert torch.allclose(xyz[0, 0], torch.tensor(expect), atol=1e-6)
    xy = hm.soft_argmax(logits[:, :, 3], grid=grid)
    assert torch.allclose(xy[0, 0], torch.tensor(expect[:2]), atol=1e-6)


def test_soft_argmax_uniform_is_the_grid_centre_and_grads_flow():
    logits = torch.zeros(2, 3, 4, 5, requires_grad=True)
    xy = hm.soft_argmax(logits, grid="hemlets")
    assert torch.allclose(xy, torch.zeros(2, 3, 2), atol=1e-6)
    assert torch.allclose(hm.soft_argmax(logits, grid="pixel")[0, 0], torch.tensor([2.0, 1.5]))
    hm.soft_argmax(logits, grid="pixel")[..., 0].sum().backward()
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0


def test_soft_argmax_errors():
    with pytest.raises(ValueError, match="ndim"):
        hm.soft_argmax(torch.zeros(3, 4, 5))
    with pytest.raises(ValueError, match="grid"):
        hm.soft_argmax(torch.zeros(1, 1, 4, 4), grid="unit")
    with pytest.raises(ValueError, match="logits"):
        hm.soft_argmax(torch.full((1, 1, 4, 4), float("nan")))
    assert hm.soft_argmax(torch.zeros(3, 4, 5), ndim=2).shape == (3, 2)


def test_integral_codec_round_trip_and_labels():
    codec = hm.IntegralHeatmap((64, 64), (16, 16), sigma=2.0)
    kp = torch.tensor([[[20.0, 36.0], [70.0, 10.0]]])
    enc = codec.encode(kp)
    assert torch.allclose(enc["heatmaps"][0, 0].sum(), torch.tensor(1.0))
    assert enc["weights"].tolist() == [[1.0, 0.0]]
    assert torch.allclose(enc["keypoint_labels"], kp / 64)
    # A sharp peak at heatmap pixel (5, 9) decodes to 5·4, 9·4 input pixels.
    logits = torch.full((1, 1, 16, 16), -50.0)
    logits[0, 0, 9, 5] = 50.0
    out, score = codec.decode(logits)
    assert torch.allclose(out[0, 0], torch.tensor([20.0, 36.0]), atol=1e-4)
    assert score.item() == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(codec.labels(logits)[0, 0], torch.tensor([20.0, 36.0]) / 64, atol=1e-6)


# ----------------------------------------------------------------------------- losses


def test_joints_mse_loss_by_hand():
    pred = torch.zeros(1, 2, 1, 2, requires_grad=True)
    target = torch.tensor([[[[1.0, 3.0]], [[2.0, 0.0]]]])
    # JointsMSELoss: mean over joints of ½·MSE(w·pred, w·gt); joint 1 weighted 0.5.
    loss = hm.joints_mse_loss(pred, target, torch.tensor([[1.0, 0.5]]))
    by_hand = (0.5 * (1 + 9) / 2 + 0.5 * ((0.5 * 2) ** 2 + 0) / 2) / 2
    assert loss.item() == pytest.approx(by_hand)
    loss.backward()
    assert pred.grad is not None and float(pred.grad.abs().sum()) > 0
    assert hm.joints_mse_loss(target, target).item() == 0.0


def test_integral_l1_by_hand_and_weights():
    pred = torch.tensor([[[0.5, 0.5], [0.0, 1.0]]], requires_grad=True)
    target = torch.tensor([[[0.25, 0.75], [1.0, 1.0]]])
    loss = hm.integral_l1_loss(pred, target, torch.tensor([[1.0, 0.0]]))
    assert loss.item() == pytest.approx((0.25 + 0.25) / 4)
    loss.backward()
    assert pred.grad[0, 1].abs().sum() == 0 and pred.grad[0, 0].abs().sum() > 0


def test_loss_errors():
    with pytest.raises(ValueError, match="target"):
        hm.joints_mse_loss(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 5))
    with pytest.raises(ValueError, match="weights"):
        hm.joints_mse_loss(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4), torch.ones(2, 2))
    with pytest.raises(ValueError, match="pred"):
        hm.joints_mse_loss(torch.full((2, 3, 4, 4), float("nan")), torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="non-empty"):
        hm.integral_l1_loss(torch.zeros(0, 3, 2), torch.zeros(0, 3, 2))
    with pytest.raises(ValueError, match="weights"):
        hm.integral_l1_loss(torch.zeros(1, 3, 2), torch.zeros(1, 3, 2), -torch.ones(1, 3))


# ----------------------------------------------------------------------------- network, flip


def _tiny_backbone():
    return SimpleBaseline(layers=(1, 1, 1, 1), widths=(8, 16, 16, 16), stem_channels=8,
                          deconv_channels=(16, 16, 16))


def test_top_down_net_shapes_and_training_signal():
    torch.manual_seed(0)
    net = hm.TopDownHeatmapNet(_tiny_backbone(), num_joints=17)
    assert net.heatmap_size((64, 96)) == (16, 24)
    x = torch.rand(2, 3, 96, 64)
    out = net(x)
    assert out.shape == (2, 17, 24, 16)
    codec = hm.GaussianHeatmap((64, 96), (16, 24), sigma=1.0)
    enc = codec.encode(torch.rand(2, 17, 2) * 40)
    loss = hm.joints_mse_loss(out, enc["heatmaps"], enc["weights"])
    loss.backward()
    assert net.head.conv.weight.grad.abs().sum() > 0
    assert next(net.backbone.parameters()).grad is not None
    with pytest.raises(TypeError, match="out_channels"):
        hm.TopDownHeatmapNet(torch.nn.Linear(3, 3), num_joints=17)
    with pytest.raises(ValueError, match="features"):
        net.head(torch.zeros(1, 5, 4, 4))


def test_flip_test_of_a_mirror_equivariant_model_is_its_output():
    # A model whose output on the mirrored image is exactly the mirrored, left/right
    # swapped output: without the shift, the flip test must return the output itself.
    maps = torch.rand(2, 17, 8, 6)
    images = torch.rand(2, 3, 32, 24)

    def model(x):
        if torch.equal(x, images):
            return maps
        return hmz.flip_heatmaps(maps, COCO17, shift=False)

    assert torch.allclose(hm.heatmap_flip_test(model, images, COCO17, shift=False), maps)
    shifted = hm.heatmap_flip_test(model, images, COCO17, shift=True)
    assert torch.allclose(shifted[..., 1:], 0.5 * (maps[..., 1:] + maps[..., :-1]))
    m = maps
    # flip_heatmaps is an involution without the shift and swaps left/right maps.
    m = torch.rand(2, 17, 8, 6)
    assert torch.equal(hmz.flip_heatmaps(hmz.flip_heatmaps(m, COCO17, shift=False), COCO17, shift=False), m)
    assert torch.equal(hmz.flip_heatmaps(m, COCO17, shift=False)[:, 1], m[:, 2].flip(-1))
    shifted = hmz.flip_heatmaps(m, COCO17, shift=True)
    assert torch.equal(shifted[..., 1:], hmz.flip_heatmaps(m, COCO17, shift=False)[..., :-1])


def test_flip_shift_compensates_the_stride_offset():
    # Mirroring the image maps x to W - 1 - x; on the heatmap that is x/s -> (W-1-x)/s,
    # while mirroring the map gives w - 1 - x/s: a (s - 1)/s pixel offset that the
    # one-pixel shift corrects (to within 1/s) — the reason for HRNet's SHIFT_HEATMAP.
    codec = hm.GaussianHeatmap((64, 64), (16, 16), sigma=1.5, variant="dark")
    kp = torch.tensor([[[30.0, 20.0]]])
    flipped_out = codec.encode(torch.tensor([[[63.0 - 30.0, 20.0]]]))["heatmaps"]
    errs = {}
    for shift in (False, True):
        back = hmz.flip_heatmaps(flipped_out, [0], shift=shift)
        errs[shift] = float((codec.decode(back)[0] - kp)[..., 0].abs())
    assert errs[False] == pytest.approx(3.0, abs=0.05)  # (s - 1) input pixels
    assert errs[True] == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ValueError, match="permutation"):
        hmz.flip_heatmaps(flipped_out, [1])


# ----------------------------------------------------------------------------- decoder floor


def test_decoder_floor_ordering():
    floor = hm.decoder_floor((128, 128), (32, 32), sigma=2.0, n=400)
    mean = {k: float(v.mean()) for k, v in floor.items()}
    assert set(mean) == set(hm.DECODERS)
    # argmax: mean Euclidean error of a U(-2, 2)² offset is ≈ 1.53 px at stride 4.
    assert mean["argmax"] == pytest.approx(4 * 0.3826, rel=0.08)
    assert mean["argmax+quarter"] < 0.6 * mean["argmax"]
    assert mean["dark"] < 0.05 and mean["soft-argmax"] < 0.1
    assert math.isfinite(mean["dark"])
