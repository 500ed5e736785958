"""HEMlets' explorers (labcore.viz.hemlets): the triplets they show, the polarity rule,
the soft-argmax read-out of the synthetic volume, and their callbacks."""

import time

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from labcore.methods.heatmap import soft_argmax
from labcore.methods.hemlets import HEMLETS_PARTS, HEMletsTriplets
from labcore.skeletons import J18
from labcore.viz import hemlets as hv

TRIPLET_DEFAULTS = {"part": 0, "threshold": 100.0, "sigma": 2.0, "pose": 0}
VOLUME_DEFAULTS = {"depth_bins": 16, "joint": "right_wrist", "beta": 1.0, "slice": -1, "spread": 1.0, "pose": 0}


def of_type(fig: go.Figure, kind: type) -> list:
    return [t for t in fig.data if isinstance(t, kind)]


def named(fig: go.Figure, name: str):
    return next(t for t in fig.data if t.name == name)


def expected_triplets(seed: int, sigma: float, r: float) -> dict[str, torch.Tensor]:
    """``HEMletsTriplets.encode`` of person ``seed`` as the explorer documents it."""
    p = hv._person(seed)
    kp = torch.from_numpy(np.array(p["keypoints"]))[None]
    vis = torch.from_numpy((p["visibility"] > 0).astype(np.float32))[None]
    z = torch.from_numpy(np.array(p["joints3d"][:, 2]))[None]
    return HEMletsTriplets((96, 96), (24, 24), sigma, r).encode(kp, vis, depth=z)


def hand_rule(dz: float, r: float) -> int:
    return 1 if dz > r else (-1 if dz < -r else 0)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def triplet_explorer():
    return hv.TripletExplorer()  # renders person 0 once (cached for the module)


@pytest.fixture
def te(triplet_explorer):
    if triplet_explorer.params != TRIPLET_DEFAULTS:
        triplet_explorer.update(**TRIPLET_DEFAULTS)
    return triplet_explorer


@pytest.fixture(scope="module")
def volume_explorer():
    return hv.VolumeExplorer()


@pytest.fixture
def ve(volume_explorer):
    if volume_explorer.params != VOLUME_DEFAULTS:
        volume_explorer.update(**VOLUME_DEFAULTS)
    return volume_explorer


# --------------------------------------------------------------------------- TripletExplorer


def test_part_labels_and_controls():
    assert len(hv.PART_LABELS) == len(HEMLETS_PARTS) == 14
    assert hv.PART_LABELS[1] == "right_hip→right_knee" and hv.PART_LABELS[13] == "neck_nose→head_top"
    ctl = hv.TripletExplorer.controls(None)  # no self needed
    assert [v for _, v in ctl["part"].options] == list(range(14))
    assert dict(ctl["part"].options)["left_shoulder→left_elbow"] == 8


def test_triplet_defaults(te):
    assert te.params == TRIPLET_DEFAULTS
    fig, note = te.build(**te.params)
    assert note == te.info.value
    maps = of_type(fig, go.Heatmap)
    assert len(maps) == 3 and all(np.asarray(m.z).shape == (24, 24) for m in maps)
    assert len(of_type(fig, go.Image)) == 1
    joints = named(fig, "J18 joints")
    assert isinstance(joints, go.Scatter3d) and len(joints.x) == len(joints.y) == len(joints.z) == 18
    # plotted as (x, z, y): camera x right, z forward, y down (reversed axis)
    j3 = hv._person(0)["joints3d"]
    np.testing.assert_allclose(np.c_[joints.x, joints.y, joints.z], j3[:, [0, 2, 1]], rtol=0, atol=1e-3)
    assert fig.layout.scene.zaxis.autorange == "reversed"
    assert "pelvis→right_hip" in note and "recovers the polarity ✓" in note and "r = 100 mm" in note


@pytest.mark.parametrize("change", [{"part": 5}, {"threshold": 250.0}, {"threshold": 0.0}, {"sigma": 3.5},
                                    {"pose": 3}, {"part": 13, "threshold": 40.0, "sigma": 1.0, "pose": 3}])
def test_triplet_update_every_control(te, change):
    fig = te.update(**change)
    p = {**TRIPLET_DEFAULTS, **change}
    assert te.params == p and all(te._controls[k].value == v for k, v in change.items())
    c = te.compute(**p)
    enc = expected_triplets(p["pose"], p["sigma"], p["threshold"])
    maps = of_type(fig, go.Heatmap)
    for k in range(3):
        np.testing.assert_array_equal(np.asarray(maps[k].z), enc["triplets"][0, p["part"], k].numpy())
    assert c["polarity"] == int(enc["polarity"][0, p["part"]])
    assert hv.PART_LABELS[p["part"]] in te.info.value and f"σ = {p['sigma']:g} hm px" in te.info.value
    assert f"pose {p['pose']} " in te.info.value
    assert len(named(fig, "J18 joints").x) == 18


def test_maps_are_the_encoded_triplets_and_polarity_is_the_rule(te):
    seed = 3  # (pose 0 is the defaults' person; the update tests cover it)
    # Every part at three thresholds: the three maps shown are encode()'s, the polarity is
    # the hand rule on the shown Δz, and the child sits in channel polarity + 1. (The
    # figure is built for every fourth case: each update is ~50 ms.)
    enc = {r: expected_triplets(seed, 1.5, r) for r in (0.0, 60.0, 200.0)}
    seen = set()
    for part, (parent, child) in enumerate(HEMLETS_PARTS):
        for i, r in enumerate((0.0, 60.0, 200.0)):
            fig = te.update(part=part, threshold=r, sigma=1.5, pose=seed) if (part + i) % 4 == 0 else None
            c = te.compute(**{"part": part, "threshold": r, "sigma": 1.5, "pose": seed})
            assert (c["parent"], c["child"]) == (parent, child)
            z = hv._person(seed)["joints3d"][:, 2]
            assert c["delta_z"] == pytest.approx(float(z[child]) - float(z[parent]), abs=1e-3)
            q = c["polarity"]
            assert q == hand_rule(c["delta_z"], r) == c["hand_polarity"]
            seen.add(q)
            t = enc[r]["triplets"][0, part].numpy()
            np.testing.assert_array_equal(c["triplets"], t)
            if fig is not None:
                for k, m in enumerate(of_type(fig, go.Heatmap)):
                    np.testing.assert_array_equal(np.asarray(m.z), t[k])
            if c["weight"] > 0:  # both joints on the map: the child's Gaussian is in channel q + 1 only
                # (its peak can be < 1: σ = 1.5 pastes mmpose's kernel off-centre, and a joint at
                # the map's edge loses its peak)
                peaks = t.reshape(3, -1).max(1)
                assert peaks[1] > 0.5 and peaks[q + 1] > 0.5
                assert all(peaks[k] == 0 for k in range(3) if k not in (1, q + 1))
                assert c["recovered"] and c["decoded"] == q
            note = te._note(c)
            assert (f"polarity <b>{q:+d}</b>" if q else "polarity <b>0</b>") in note
            assert f"Δz = z_child − z_parent = {c['delta_z']:+.1f} mm" in note
            if fig is not None:
                assert note == te.info.value
    assert len(seen) >= 2  # the sweep met more than one polarity (r = 0 makes every part ±1)


def test_polarity_is_strict_at_the_threshold(te):
    # A part whose |Δz| lies on the slider: r = |Δz| exactly gives 0, a hair below gives ±1.
    for part in range(14):
        dz = te.compute(**{**TRIPLET_DEFAULTS, "part": part})["delta_z"]
        if 1.0 < abs(dz) <= 300.0:
            break
    else:
        pytest.fail("no part of pose 0 with 1 mm < |Δz| <= 300 mm")
    te.update(part=part, threshold=abs(dz))
    c = te.compute(**te.params)
    assert c["threshold"] == abs(dz) == abs(c["delta_z"])
    assert c["polarity"] == 0 and c["child_channel"] == 1
    assert "polarity <b>0</b>" in te.info.value and "exactly on the threshold" in te.info.value
    assert "T⁰ holds both the parent" in te.info.value
    te.update(threshold=abs(dz) - 0.5)
    c = te.compute(**te.params)
    sign = 1 if dz > 0 else -1
    assert c["polarity"] == sign and c["child_channel"] == sign + 1
    assert f"polarity <b>{sign:+d}</b>" in te.info.value
    assert f"{'T⁺' if sign > 0 else 'T⁻'} the child" in te.info.value


def test_note_reports_a_failed_decode(te, monkeypatch):
    # The check is computed: a decoder that gets it wrong is reported.
    def wrong(self, triplets, min_peak=0.5):
        n, p = triplets.shape[:2]
        return torch.full((n, p), 7, dtype=torch.long), torch.zeros(n, p)

    monkeypatch.setattr(HEMletsTriplets, "decode", wrong)
    te.update(part=2)
    assert "does NOT recover the polarity ✗" in te.info.value
    assert not te.compute(**te.params)["recovered"]


def test_triplet_errors(te):
    with pytest.raises(ValueError, match="unknown parameter"):
        te.update(depth_bins=8)
    with pytest.raises(ValueError, match="part"):
        te.compute(**{**TRIPLET_DEFAULTS, "part": 14})
    with pytest.raises(ValueError, match="threshold"):
        te.compute(**{**TRIPLET_DEFAULTS, "threshold": -1.0})
    with pytest.raises(ValueError, match="sigma"):
        te.compute(**{**TRIPLET_DEFAULTS, "sigma": 0.0})


# --------------------------------------------------------------------------- volume_logits


def test_volume_logits_peak_and_floor():
    joints = torch.tensor([[-0.5, 0.0, 0.5], [0.1, -0.2, 0.0]])
    lg = hv.volume_logits(joints, (24, 20, 9), spread=1.5)
    assert lg.shape == (2, 9, 20, 24) and lg.dtype == torch.float64
    assert lg.min() == -hv.FLOOR and lg.max() <= 0
    # joint 0 sits exactly on voxel (x 0, y 9.5, z 8): its two nearest y voxels tie at the top
    top = (lg[0] == lg[0].max()).nonzero().tolist()
    assert sorted(top) == [[8, 9, 0], [8, 10, 0]]
    assert float(lg[0].max()) == pytest.approx(-0.25 / (2 * 1.5**2))
    bare = hv.volume_logits(joints, (24, 20, 9), spread=1.5, floor=None)
    assert bare.min() < -hv.FLOOR
    with pytest.raises(ValueError, match="size"):
        hv.volume_logits(joints, (24, 20), 1.0)
    with pytest.raises(ValueError, match="spread"):
        hv.volume_logits(joints, (24, 20, 9), 0.0)


def test_soft_argmax_is_biased_toward_the_centre_at_a_face():
    # A joint on the volume's first x voxel: the Gaussian beyond the face is cut off, so the
    # soft-argmax moves inward, more the wider it is; a joint at the centre does not move.
    joints = torch.tensor([[-0.5, 0.0, 0.0], [0.0, 0.0, 0.0]])
    bias = []
    for spread in (0.5, 1.0, 2.0, 3.0, 4.0):
        out = soft_argmax(hv.volume_logits(joints, (24, 24, 17), spread, floor=None)[None], grid="hemlets")[0]
        bias.append(float(out[0, 0] + 0.5) * 23)  # voxels, + = toward the centre
        torch.testing.assert_close(out[1], torch.zeros(3, dtype=torch.float64), rtol=0, atol=1e-9)
        torch.testing.assert_close(out[0, 1:], torch.zeros(2, dtype=torch.float64), rtol=0, atol=1e-9)
    assert all(b > 0 for b in bias) and np.all(np.diff(bias) > 0.1), bias
    assert bias[-1] > 2.5  # a half-Gaussian's mean: σ·√(2/π) ≈ 3.2 voxels at σ = 4


# --------------------------------------------------------------------------- VolumeExplorer


def test_volume_defaults(ve):
    assert ve.params == VOLUME_DEFAULTS
    fig, note = ve.build(**ve.params)
    assert note == ve.info.value
    c = ve.compute(**ve.params)
    assert c["probability"].shape == (16, 24, 24) and c["probability"].sum() == pytest.approx(1.0)
    assert [m.shape for m in c["marginals"]] == [(24,), (24,), (16,)]
    (hm,) = of_type(fig, go.Heatmap)
    np.testing.assert_array_equal(np.asarray(hm.z), c["probability"][c["slice"]])
    assert c["slice"] == round(float(c["voxel"][c["index"], 2]))  # -1: the true depth's bin
    assert named(fig, "x marginal").y.tolist() == pytest.approx(c["marginals"][0].tolist())
    assert named(fig, "z marginal").x.tolist() == pytest.approx(np.linspace(-0.5, 0.5, 16).tolist())
    assert "right_wrist" in note and "133.3 mm" in note and "between two depth bins" in note
    assert f"{c['error_mm']:+.1f} mm" in note


@pytest.mark.parametrize("change", [{"depth_bins": 7}, {"depth_bins": 32}, {"joint": "head_top"}, {"beta": 0.1},
                                    {"beta": 10.0}, {"slice": 3}, {"spread": 3.5}, {"pose": 3},
                                    {"depth_bins": 5, "joint": "left_ankle", "beta": 2.5, "slice": 30,
                                     "spread": 0.7, "pose": 3}])
def test_volume_update_every_control(ve, change):
    fig = ve.update(**change)
    p = {**VOLUME_DEFAULTS, **change}
    assert ve.params == p and all(ve._controls[k].value == v for k, v in change.items())
    c = ve.compute(**p)
    D = p["depth_bins"]
    assert c["probability"].shape == (D, 24, 24) and c["joint"] == p["joint"]
    assert 0 <= c["slice"] <= D - 1
    if p["slice"] >= 0:
        assert c["slice"] == min(p["slice"], D - 1)
    (hm,) = of_type(fig, go.Heatmap)
    np.testing.assert_array_equal(np.asarray(hm.z), c["probability"][c["slice"]])
    assert len(named(fig, "z marginal").y) == D
    # soft-argmax is soft_argmax(volume_logits(truth), 'hemlets', beta), for every joint
    want = soft_argmax(hv.volume_logits(c["truth"], (24, 24, D), p["spread"])[None], grid="hemlets", beta=p["beta"])
    np.testing.assert_allclose(c["soft"], want[0].numpy(), rtol=0, atol=1e-12)
    note = ve.info.value
    assert p["joint"] in note and f"{2000 / (D - 1):.1f} mm" in note
    assert f"σ = spread/√β = <b>{p['spread'] / np.sqrt(p['beta']):.2f} voxels" in note
    assert ("clamped to D − 1" in note) == (p["slice"] > D - 1)
    assert ("between two depth bins" in note) == (D % 2 == 0)


def test_peaked_volume_reads_out_the_nearest_voxel(ve):
    # spread 0.5, β = 10: σ = 0.16 voxel — the soft-argmax snaps to the nearest voxel's grid
    # coordinate (the argmax), away from ties (a joint half-way between two voxels).
    ve.update(spread=0.5, beta=10.0, depth_bins=17)
    c = ve.compute(**ve.params)
    cells = np.array([23, 23, 16])
    off = np.abs(c["voxel"] - np.round(c["voxel"]))
    clear = (off < 0.35).all(1)
    assert clear.sum() >= 4
    np.testing.assert_allclose(c["soft"][clear], c["nearest"][clear], rtol=0, atol=0.01 / 23)
    assert np.abs(c["error_voxels"]).max() <= 0.5 + 1e-6  # never more than half a bin off
    # the soft-argmax of this joint equals its argmax where it is clear of ties
    j = c["index"]
    if clear[j]:
        np.testing.assert_allclose(c["soft"][j], c["argmax"], rtol=0, atol=0.01 / 16)
    # and the quantisation error is what the nearest voxel leaves: |error| = offset / (n − 1)
    np.testing.assert_allclose(np.abs(c["soft"] - c["truth"])[clear] * cells, off[clear], rtol=0, atol=0.01)


def test_wide_spread_near_a_face_is_biased_toward_the_centre(ve):
    # The joint and axis of pose 0 nearest a face of the volume: as the spread grows, the
    # soft-argmax error grows and points inward (|soft| < |truth|).
    c = ve.compute(**VOLUME_DEFAULTS)
    j, a = np.unravel_index(np.argmax(np.abs(c["truth"])), c["truth"].shape)
    assert abs(c["truth"][j, a]) > 0.4  # within ~2 voxels of the face
    errors = []
    for spread in (1.0, 2.0, 3.0, 4.0):
        ve.update(joint=J18.joint_names[j], spread=spread, beta=1.0)
        r = ve.compute(**ve.params)
        e = r["error_voxels"][a]
        assert np.sign(e) == -np.sign(r["truth"][j, a])  # toward the centre
        errors.append(abs(e))
    assert np.all(np.diff(errors) > 0.2), errors


def test_small_beta_pulls_toward_the_centre(ve):
    # β = 0.1 lifts the floor: most of the mass is spread evenly, the estimate nears 0.
    ve.update(joint="head_top", beta=0.1)
    c = ve.compute(**ve.params)
    j = c["index"]
    assert c["background"] > 0.5
    assert np.all(np.abs(c["soft"][j]) < 0.5 * np.abs(c["truth"][j]) + 1e-3)
    assert "pulls the estimate toward its centre" in ve.info.value


def test_volume_errors(ve):
    with pytest.raises(ValueError, match="unknown parameter"):
        ve.update(threshold=50.0)
    with pytest.raises(ValueError, match="joint"):
        ve.compute(**{**VOLUME_DEFAULTS, "joint": "nose"})
    with pytest.raises(ValueError, match="beta"):
        ve.compute(**{**VOLUME_DEFAULTS, "beta": 0.0})
    with pytest.raises(ValueError, match="slice"):
        ve.compute(**{**VOLUME_DEFAULTS, "slice": -2})


# --------------------------------------------------------------------------- latency


def test_update_latency(te, ve):
    for seed in (0, 3):  # person renders cached (~1 s each the first time)
        hv._person(seed)
    changes = {
        te: [{"part": 4}, {"threshold": 150.0}, {"sigma": 3.0}, {"pose": 3}, {"part": 10}, {"pose": 0},
             {"threshold": 20.0}, {"sigma": 1.0}],
        ve: [{"depth_bins": 32}, {"beta": 5.0}, {"spread": 3.0}, {"slice": 2}, {"joint": "left_knee"},
             {"pose": 3}, {"depth_bins": 8}, {"beta": 0.2}, {"pose": 0}],
    }
    for e, cs in changes.items():
        times = []
        for change in cs:
            t = time.perf_counter()
            e.update(**change)
            times.append(time.perf_counter() - t)
        print(f"\n{type(e).__name__}.update: median {1000 * np.median(times):.0f} ms, "
              f"max {1000 * max(times):.0f} ms")
        assert np.median(times) < 0.5
