"""Notebook 03's explorers and figures (labcore.viz.bottomup): the numbers behind them and
their callbacks."""

import math

import numpy as np
import plotly.graph_objects as go
import pytest

from labcore.methods import sahr_wahr as sw
from labcore.viz import bottomup as bu

# --------------------------------------------------------------------------- SAHR


def test_sahr_explorer_alpha_zero_is_the_ground_truth():
    c = bu.SAHRExplorer().compute(sigma0=2.0, alpha=0.0, view="1-D profile")
    np.testing.assert_array_equal(c["taylor"], c["H"])
    np.testing.assert_allclose(c["exact"], c["H"], rtol=1e-12)  # exp(1·ln H)
    assert c["max_error"] < 1e-15 and c["sigma_eff"] == 2.0 and c["s"] == 1.0
    # HigherHRNet's kernel: peak 1 at the centre, 0 beyond |d| = 3σ + 1 = 7 on each axis.
    mid = len(c["d"]) // 2
    row = c["H"][mid]
    assert row[mid] == 1.0 and c["H"].max() == 1.0
    assert (row[np.abs(c["d"]) <= 7] > 0).all() and (row[np.abs(c["d"]) > 7] == 0).all()
    assert row[mid + 2] == pytest.approx(math.exp(-4 / 8), rel=1e-6)


@pytest.mark.parametrize("alpha", [0.2, -0.2])
def test_sahr_explorer_taylor_error_and_effective_sigma(alpha):
    c = bu.SAHRExplorer().compute(sigma0=2.0, alpha=alpha, view="2-D maps")
    # METHODS.md: 0.0015 (α = 0.2) and 0.0021 (α = -0.2) at σ₀ = 2.
    assert 0.0014 <= c["max_error"] <= 0.0022
    assert c["max_error"] <= c["sup_error"] + 1e-12
    assert c["sigma_eff"] == pytest.approx(2.0 / math.sqrt(1 + alpha), rel=1e-6)
    assert c["s"] == pytest.approx(1 / (1 + alpha))
    # The exact power of a Gaussian is the Gaussian of σ_eff, on the support.
    f = c["fine"]
    on = f["H"] > 0
    np.testing.assert_allclose(f["exact"][on], f["gaussian_eff"][on], rtol=1e-6)  # σ_eff is float32
    # The Taylor form moves H less than the power: above it when sharpening, below when widening.
    err = c["error"][c["H"] > 0]
    assert (np.sign(err[np.abs(err) > 1e-12]) == np.sign(alpha)).all()


def test_sahr_explorer_where_taylor_and_power_part():
    e = bu.SAHRExplorer()
    c = e.compute(sigma0=2.0, alpha=0.3, view="1-D profile")
    lo, hi = c["alpha_range"]
    assert -0.5 < lo < -0.2 and 0.2 < hi < 0.6
    at = lambda a: e.compute(sigma0=2.0, alpha=a, view="2-D maps")["max_error"]  # noqa: E731
    assert at(lo) <= bu.TAYLOR_TOLERANCE < at(lo - 0.01)
    assert at(hi) <= bu.TAYLOR_TOLERANCE < at(hi + 0.01)


def test_sahr_explorer_shape_of_the_taylor_target():
    e = bu.SAHRExplorer()
    wide = e.compute(sigma0=2.0, alpha=-0.9, view="1-D profile")
    assert wide["monotone"] and 0 < wide["taylor_min"] and wide["taylor_max"] == pytest.approx(1.0)
    assert wide["max_error"] > 0.4  # far from the power this far from α = 0
    sharp = e.compute(sigma0=2.0, alpha=1.5, view="1-D profile")
    # For α > 1 the quadratic term makes it climb back up away from the centre.
    assert not sharp["monotone"] and 0.1 < sharp["bump"] < 0.15 and sharp["taylor_max"] <= 1.0 + 1e-9
    assert e.compute(sigma0=2.0, alpha=1.0, view="1-D profile")["monotone"]


def test_sahr_explorer_update_and_errors():
    e = bu.SAHRExplorer()
    fig = e.update(sigma0=3.0, alpha=-0.4)
    assert len(fig.data) == 6  # four curves, the Taylor pixels, the error bars
    assert sum(isinstance(t, go.Bar) for t in fig.data) == 1
    assert e._controls["alpha"].value == -0.4 and "σ_eff" in e.info.value
    fig = e.update(view="2-D maps")
    assert len(fig.data) == 4 and all(isinstance(t, go.Heatmap) for t in fig.data)
    with pytest.raises(ValueError, match="unknown parameter"):
        e.update(beta=0.1)
    with pytest.raises(ValueError, match="alpha"):
        e.compute(sigma0=2.0, alpha=-1.0, view="2-D maps")


# --------------------------------------------------------------------------- WAHR


def test_wahr_explorer_moves_the_loss_onto_the_foreground():
    e = bu.WAHRExplorer()
    c = e.compute(gamma=0.01, prediction="early (all ≈ 0)", noise=0.1)
    assert c["H"].shape == (48, 48) and c["H"].max() == 1.0
    assert c["share_wahr"] > c["share_mse"] + 0.1
    # Off the support H^γ = 0, so the weight is |P| there.
    bg = ~c["foreground"]
    np.testing.assert_allclose(c["W"][bg], np.abs(c["P"][bg]), rtol=1e-6)
    # wahr_weight's docstring: H^0.01 >= 0.885 on a σ = 2 support (its corner).
    assert c["hg_corner"] == pytest.approx(0.885, abs=1e-3) and c["hg_edge"] > c["hg_corner"]
    for name in bu.WAHR_PREDICTIONS:  # also for the other predictions, with some noise
        c = e.compute(gamma=0.01, prediction=name, noise=0.05)
        assert c["share_wahr"] > c["share_mse"], name
    # Seeded: the same settings give the same numbers.
    first, again = (e.compute(gamma=0.01, prediction="good", noise=0.1) for _ in range(2))
    np.testing.assert_array_equal(first["P"], again["P"])


def test_wahr_explorer_update_and_errors():
    e = bu.WAHRExplorer()
    fig = e.update(gamma=0.1, prediction="shifted peak", noise=0.2)
    assert len(fig.data) == 4 and all(isinstance(t, go.Heatmap) for t in fig.data)
    assert "WAHR" in e.info.value and e._controls["prediction"].value == "shifted peak"
    with pytest.raises(ValueError, match="unknown parameter"):
        e.update(sigma=3)
    with pytest.raises(ValueError, match="prediction"):
        e.compute(gamma=0.01, prediction="perfect", noise=0.0)


# --------------------------------------------------------------------------- scales and people


@pytest.fixture(scope="module")
def crowd():
    # Notebook 03's scene, rendered once and cached under $LABCORE_CACHE, as the notebook does.
    return bu._crowd(0)


def test_scale_figure_small_people_blur(crowd, monkeypatch):
    monkeypatch.setattr(bu, "_crowd", lambda seed: crowd)
    fig, stats = bu.scale_figure(seed=0)
    n = len(crowd["keypoints"])
    assert n >= 2 and len(fig.data) == 1 + 2 * n + 2  # image, people, heatmap, centres
    np.testing.assert_allclose(stats["height_px"], crowd["heights"])
    heights, frac = stats["height_px"], stats["overlap_fraction"]
    assert heights.max() > 3 * heights.min()  # scale_range = 4
    assert frac[np.argmin(heights)] == 1.0 and frac[np.argmin(heights)] > frac[np.argmax(heights)]
    hm = next(t for t in fig.data if isinstance(t, go.Heatmap))
    assert np.asarray(hm.z).shape == (32, 32)  # stride 4 of 128


def test_scale_figure_from_arrays_and_errors():
    image = np.zeros((64, 64, 3), np.uint8)
    small = np.array([[32 + (k % 3), 10 + k // 3] for k in range(17)], np.float32)
    # 12 px apart = 3 heatmap px at stride 4: more than 1σ, each joint its own blob.
    large = np.array([[6 + 12 * (k % 5), 6 + 12 * (k // 5)] for k in range(17)], np.float32)
    large[16] = (-10, 30)  # labelled but off the image: no target, not counted
    fig, stats = bu.scale_figure(image, np.stack([small, large]))
    assert stats["overlap_fraction"].tolist() == [1.0, 0.0]
    assert stats["labelled"].tolist() == [17, 16]
    np.testing.assert_allclose(stats["height_px"], [5.0, 36.0])
    assert len(fig.data) == 1 + 2 * 2 + 2
    with pytest.raises(ValueError, match="keypoints"):
        bu.scale_figure(image)
    with pytest.raises(ValueError, match="image"):
        bu.scale_figure(np.zeros((64, 64), np.uint8), np.stack([small]))


def test_people_figure_draws_decoded_people(crowd):
    vis = (crowd["visibility"] > 0).astype(np.float32)
    targets = sw.BottomUpTargets((128, 128))
    people = sw.decode_people(sw.oracle_outputs(crowd["keypoints"][None], vis[None], targets), (128, 128))[0]
    n = len(people["scores"])
    image = crowd["image"].transpose(2, 0, 1).astype(np.float32) / 255  # the CHW network input
    fig = bu.people_figure(image, people, crowd["keypoints"], crowd["visibility"])
    assert len(fig.data) == 1 + 2 * n + 1 and fig.data[-1].marker.symbol == "circle-open"
    assert isinstance(fig.data[0], go.Image) and np.asarray(fig.data[0].z).shape == (128, 128, 3)
    confident = int((people["scores"] >= 0.5).sum())
    assert len(bu.people_figure(crowd["image"], people, min_score=0.5).data) == 1 + 2 * confident
    with pytest.raises(TypeError, match="people"):
        bu.people_figure(crowd["image"], [people])
    with pytest.raises(ValueError, match="scores"):
        bu.people_figure(crowd["image"], {"keypoints": people["keypoints"]})
