"""Event camera simulation and representations (labcore.data.events), against hand-made
cases and an independent per-pixel loop."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
import torch

from labcore.data.events import (
    EVENT_DTYPE,
    TONIC_DTYPE,
    empty_events,
    events_from_tonic,
    events_to_tonic,
    simulate_events,
    to_binary_frames,
    to_event_frames,
    to_time_surface,
    to_voxel_grid,
)

pytestmark = pytest.mark.usefixtures("one_thread")

EPS = 1e-3


def frames_from_log(log_values, eps=EPS):
    """Frames whose log(I + eps) is the given array ``(T, H, W)`` (or ``(T,)`` for one pixel)."""
    lv = np.asarray(log_values, dtype=np.float64)
    if lv.ndim == 1:
        lv = lv[:, None, None]
    return np.exp(lv) - eps


def loop_reference(log_values, ts, c_on, c_off, refractory=0.0):
    """One pixel, level by level, as documented in simulate_events: [(t_seconds, p), ...]."""
    ref, t_last, out = log_values[0], -math.inf, []
    for j in range(len(log_values) - 1):
        a, b, t0, dt = log_values[j], log_values[j + 1], ts[j], ts[j + 1] - ts[j]
        sgn, c = (1, c_on) if b > ref else (-1, c_off)
        k, emitted = 1, 0
        while sgn * (b - (ref + sgn * k * c)) >= 0:
            level = ref + sgn * k * c
            t = t0 if sgn * (a - level) >= 0 else t0 + (level - a) / (b - a) * dt
            if refractory == 0 or t - t_last > refractory:
                out.append((t, sgn))
                t_last = t
                emitted += 1
            k += 1
        ref += sgn * emitted * c
    return out


def as_rows(ev):
    return [(int(e["t"]), int(e["y"]), int(e["x"]), int(e["p"])) for e in ev]


def make_events(rows):
    """rows of (x, y, t, p) → EVENT_DTYPE array (order kept)."""
    ev = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for i, (x, y, t, p) in enumerate(rows):
        ev[i] = (x, y, t, p)
    return ev


# --------------------------------------------------------------------------- simulator


def test_dtype_and_empty():
    assert EVENT_DTYPE.names == ("x", "y", "t", "p")
    assert EVENT_DTYPE["t"] == np.int64 and EVENT_DTYPE["p"] == np.int8
    assert EVENT_DTYPE["x"] == np.int16 and EVENT_DTYPE["y"] == np.int16
    e = empty_events()
    assert e.shape == (0,) and e.dtype == EVENT_DTYPE


def test_linear_ramp_gives_floor_count_at_interpolated_times():
    # log intensity rises by 0.5, 0.8 and 0.15 over three intervals: 1.45 in all, C = 0.2.
    l0 = math.log(0.2)
    ts = [0.0, 0.05, 0.1, 0.2]
    ev = simulate_events(frames_from_log([l0, l0 + 0.5, l0 + 1.3, l0 + 1.45]), ts, 0.2, 0.2)
    assert ev.dtype == EVENT_DTYPE and ev["t"].dtype == np.int64 and ev["p"].dtype == np.int8
    assert len(ev) == math.floor(1.45 / 0.2) == 7
    assert (ev["p"] == 1).all() and (ev["x"] == 0).all() and (ev["y"] == 0).all()
    # levels 0.2, 0.4 | 0.6, 0.8, 1.0, 1.2 | 1.4, at t0 + (level - L0)/(L1 - L0)·dt:
    expected_us = [
        0.05 * 0.2 / 0.5, 0.05 * 0.4 / 0.5,
        0.05 + 0.05 * 0.1 / 0.8, 0.05 + 0.05 * 0.3 / 0.8, 0.05 + 0.05 * 0.5 / 0.8, 0.05 + 0.05 * 0.7 / 0.8,
        0.1 + 0.1 * 0.1 / 0.15,
    ]
    expected_us = [t * 1e6 for t in expected_us]  # 20000, 40000, 56250, ..., 166666.7
    np.testing.assert_allclose(ev["t"], expected_us, atol=1.0)
    assert ev["t"][-1] == 166667


def test_decrease_gives_off_events_and_reference_moves_by_thresholds():
    l0 = math.log(0.5)
    ts = [0.0, 0.1, 0.2]
    # down 0.8 with C_off = 0.25: 3 OFF events; ref ends at l0 - 0.75 (not at L).
    # up to l0 - 0.1 with C_on = 0.3: d = 0.65 → 2 ON events at levels l0-0.45, l0-0.15.
    ev = simulate_events(frames_from_log([l0, l0 - 0.8, l0 - 0.1]), ts, pos_thres=0.3, neg_thres=0.25)
    assert ev["p"].tolist() == [-1, -1, -1, 1, 1]
    expected = [0.1 * k * 0.25 / 0.8 for k in (1, 2, 3)] + [0.1 + 0.1 * 0.35 / 0.7, 0.1 + 0.1 * 0.65 / 0.7]
    np.testing.assert_allclose(ev["t"], np.array(expected) * 1e6, atol=1.0)


def test_refractory_period_hand_case():
    # A 1.05 rise in the first 0.1 s (C = 0.2): 5 crossings 19.05 ms apart, then static.
    l0 = math.log(0.3)
    ts = [0.0, 0.1, 0.2, 0.3, 0.4]
    frames = frames_from_log([l0, l0 + 1.05, l0 + 1.05, l0 + 1.05, l0 + 1.05])
    step = 0.1 * 0.2 / 1.05
    free = simulate_events(frames, ts)
    np.testing.assert_allclose(free["t"], [k * step * 1e6 for k in range(1, 6)], atol=1.0)

    ev = simulate_events(frames, ts, refractory_period_s=0.025)
    # k=1 emitted; k=2 (19 ms later) dropped; k=3 (38 ms after k=1) emitted; k=4 dropped;
    # k=5 emitted. The two dropped crossings did not move the reference: pending at 0.1 s
    # (4.8 ms after the last event: both dropped again), at 0.2 s (first emitted, second
    # 0 s later dropped) and at 0.3 s (emitted). The total is still floor(1.05/0.2) = 5.
    expected = [1 * step, 3 * step, 5 * step, 0.2, 0.3]
    np.testing.assert_allclose(ev["t"], np.array(expected) * 1e6, atol=1.0)
    assert ev["t"][-2:].tolist() == [200000, 300000]
    assert (ev["p"] == 1).all()
    assert [t for t, _ in loop_reference(np.log(frames[:, 0, 0] + EPS), ts, 0.2, 0.2, 0.025)] == \
        pytest.approx(expected, abs=1e-9)


def test_matches_independent_loop_with_and_without_refractory():
    rng = np.random.default_rng(3)
    frames = rng.uniform(0.0, 1.0, size=(8, 4, 5))
    ts = np.cumsum(rng.uniform(0.02, 0.05, size=8))
    log_i = np.log(frames + EPS)
    for refractory in (0.0, 0.012):
        ev = simulate_events(frames, ts, 0.25, 0.15, refractory_period_s=refractory)
        expected = []
        for y in range(4):
            for x in range(5):
                for t, p in loop_reference(log_i[:, y, x], ts, 0.25, 0.15, refractory):
                    expected.append((int(np.rint(t * 1e6)), y, x, p))
        expected.sort(key=lambda r: (r[0], r[1] * 5 + r[2]))  # stable: keeps crossing order
        got = as_rows(ev)
        assert len(got) == len(expected) > 50
        assert [r[1:] for r in got] == [r[1:] for r in expected]
        assert max(abs(a[0] - b[0]) for a, b in zip(got, expected)) <= 1
        if refractory:
            assert len(ev) < len(simulate_events(frames, ts, 0.25, 0.15))
            frame_us = set(np.rint(ts[1:-1] * 1e6).astype(int).tolist())
            assert any(int(t) in frame_us for t in ev["t"])  # pending crossings caught up


def test_sorted_by_time_with_raster_order_ties():
    # Pixels (x=2, y=0) and (x=0, y=1) ramp identically: equal times; raster order puts
    # y*W+x = 2 before 3 (W=3).
    l0 = math.log(0.2)
    lv = np.full((3, 2, 3), l0)
    lv[1:, 0, 2] = [l0 + 0.5, l0 + 1.0]
    lv[1:, 1, 0] = [l0 + 0.5, l0 + 1.0]
    ev = simulate_events(frames_from_log(lv), [0.0, 0.1, 0.2], 0.2, 0.2)
    assert (np.diff(ev["t"]) >= 0).all()
    assert len(ev) == 2 * 4
    assert [(int(e["x"]), int(e["y"])) for e in ev] == [(2, 0), (0, 1)] * 4


def test_static_scene_gives_no_events_and_list_input_matches_array():
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 1, size=(6, 7))
    ev = simulate_events([img, img.copy(), img.copy()], [0.0, 0.5, 1.0], 0.05, 0.05)
    assert ev.shape == (0,) and ev.dtype == EVENT_DTYPE
    seq = rng.uniform(0, 1, size=(4, 6, 7)).astype(np.float32)
    a = simulate_events(seq, [0, 1, 2, 3])
    b = simulate_events(list(seq), np.array([0, 1, 2, 3]))
    c = simulate_events(torch.from_numpy(seq), [0, 1, 2, 3])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert len(a) > 0


def test_threshold_mismatch_is_seeded_and_changes_counts():
    l0 = math.log(0.1)
    lv = np.stack([np.full((8, 8), l0), np.full((8, 8), l0 + 2.055)])
    frames, ts = frames_from_log(lv), [0.0, 0.1]

    def per_pixel(ev):
        return np.bincount(ev["y"].astype(int) * 8 + ev["x"], minlength=64)

    nominal = per_pixel(simulate_events(frames, ts, 0.2, 0.2))
    assert (nominal == 10).all()  # floor(2.055 / 0.2)
    a = simulate_events(frames, ts, 0.2, 0.2, sigma_thres=0.05, seed=1)
    b = simulate_events(frames, ts, 0.2, 0.2, sigma_thres=0.05, seed=1)
    c = simulate_events(frames, ts, 0.2, 0.2, sigma_thres=0.05, seed=2)
    np.testing.assert_array_equal(a, b)
    assert per_pixel(a).std() > 0 and not np.array_equal(per_pixel(a), per_pixel(c))
    assert not np.array_equal(per_pixel(a), nominal)
    # Thresholds are clipped at 0.01 (v2e): no pixel exceeds floor(2.055 / 0.01) events,
    # and with a huge spread some pixels reach exactly that.
    wide = per_pixel(simulate_events(frames, ts, 0.2, 0.2, sigma_thres=5.0))
    assert wide.max() == 205


def test_shot_noise_rate_and_seed():
    img = np.full((16, 16), 0.5)
    ts = [0.0, 0.25, 0.5, 0.75, 1.0]
    ev = simulate_events([img] * 5, ts, shot_noise_rate_hz=20.0, seed=5)
    expected = 20.0 * 16 * 16 * 1.0  # 5120, Poisson sd ≈ 72
    assert abs(len(ev) - expected) < 400
    assert ev["t"].min() >= 0 and ev["t"].max() <= 1_000_000
    assert (np.diff(ev["t"]) >= 0).all()
    assert set(np.unique(ev["p"]).tolist()) == {-1, 1}
    assert abs((ev["p"] == 1).mean() - 0.5) < 0.05
    assert len(np.unique(ev["y"].astype(int) * 16 + ev["x"])) > 240
    np.testing.assert_array_equal(ev, simulate_events([img] * 5, ts, shot_noise_rate_hz=20.0, seed=5))
    assert not np.array_equal(ev, simulate_events([img] * 5, ts, shot_noise_rate_hz=20.0, seed=6))
    assert len(simulate_events([img] * 5, ts, seed=5)) == 0


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(timestamps_s=[0.0, 0.1, 0.1]), ValueError, "strictly increasing"),
        (dict(timestamps_s=[0.0, 0.2, 0.1]), ValueError, "strictly increasing"),
        (dict(timestamps_s=[0.0, 0.1]), ValueError, "3 timestamps"),
        (dict(timestamps_s=[0.0, np.nan, 0.2]), ValueError, "timestamps_s: expected finite"),
        (dict(pos_thres=-0.1), ValueError, "pos_thres"),
        (dict(pos_thres=0.0), ValueError, "pos_thres"),
        (dict(neg_thres=-0.2), ValueError, "neg_thres"),
        (dict(pos_thres="0.2"), TypeError, "pos_thres"),
        (dict(sigma_thres=-0.01), ValueError, "sigma_thres"),
        (dict(refractory_period_s=-1e-3), ValueError, "refractory_period_s"),
        (dict(shot_noise_rate_hz=-1.0), ValueError, "shot_noise_rate_hz"),
        (dict(log_eps=0.0), ValueError, "log_eps"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    args = dict(frames=np.full((3, 2, 2), 0.5), timestamps_s=[0.0, 0.1, 0.2])
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        simulate_events(**args)


def test_bad_frames():
    ts = [0.0, 0.1, 0.2]
    with pytest.raises(ValueError, match=r"frames\[1\].*same size"):
        simulate_events([np.zeros((4, 4)), np.zeros((4, 5)), np.zeros((4, 4))], ts)
    nan = np.full((3, 2, 2), 0.5)
    nan[1, 0, 1] = np.nan
    with pytest.raises(ValueError, match="frames: expected finite.*1 NaN"):
        simulate_events(nan, ts)
    inf = np.full((3, 2, 2), 0.5)
    inf[2, 1, 1] = np.inf
    with pytest.raises(ValueError, match="1 inf"):
        simulate_events(inf, ts)
    with pytest.raises(ValueError, match="non-negative"):
        simulate_events(np.full((3, 2, 2), -0.1), ts)
    with pytest.raises(ValueError, match="at least 2 frames"):
        simulate_events(np.full((1, 2, 2), 0.5), [0.0])
    with pytest.raises(ValueError, match=r"\(T, H, W\)"):
        simulate_events(np.full((3, 4), 0.5), ts)
    with pytest.raises(TypeError, match="frames"):
        simulate_events(np.ones((3, 2, 2), dtype=bool), ts)
    with pytest.raises(TypeError, match="frames"):
        simulate_events("frames.npy", ts)


# --------------------------------------------------------------------------- tonic


def test_tonic_bool_polarity_round_trip_and_the_signing_pitfall():
    tonic_like = np.zeros(4, dtype=[("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)])
    tonic_like["x"] = [1, 2, 0, 3]
    tonic_like["y"] = [0, 1, 1, 0]
    tonic_like["t"] = [30, 10, 20, 10]
    tonic_like["p"] = [False, True, False, True]

    # The pitfall: tonic's in-place signing `pols[pols == 0] = -1` on a bool field stores
    # True, so the OFF events become +1 once used as numbers.
    naive = tonic_like["p"].copy()
    naive[naive == 0] = -1
    assert naive.dtype == bool and naive.astype(int).tolist() == [1, 1, 1, 1]

    ev = events_from_tonic(tonic_like)
    assert ev.dtype == EVENT_DTYPE
    # sorted by t; the tie at t=10 in raster order: (x=3, y=0) before (x=2, y=1)
    assert as_rows(ev) == [(10, 0, 3, 1), (10, 1, 2, 1), (20, 1, 0, -1), (30, 0, 1, -1)]

    out = events_to_tonic(ev)
    assert out.dtype == TONIC_DTYPE and out["p"].dtype == np.int64
    assert out["p"].tolist() == [1, 1, -1, -1]
    signed = out["p"].copy()
    signed[signed == 0] = -1  # what tonic's voxel grid does: harmless on a signed type
    assert signed.tolist() == [1, 1, -1, -1]
    np.testing.assert_array_equal(events_from_tonic(out), ev)
    binary = events_to_tonic(ev, off_value=0)
    assert binary["p"].tolist() == [1, 1, 0, 0] and binary["p"].dtype == np.int64
    np.testing.assert_array_equal(events_from_tonic(binary), ev)


@pytest.mark.parametrize("dtype, values", [(np.uint8, [0, 1, 1]), (np.int32, [-1, 1, 1]),
                                           (np.float32, [0.0, 1.0, 1.0])])
def test_events_from_tonic_integer_polarities(dtype, values):
    arr = np.zeros(3, dtype=[("t", "<i8"), ("x", "<i8"), ("y", "<i8"), ("p", dtype)])
    arr["t"], arr["x"], arr["y"], arr["p"] = [5, 1, 3], [0, 1, 2], [0, 0, 0], values
    ev = events_from_tonic(arr)
    assert ev["t"].tolist() == [1, 3, 5] and ev["p"].tolist() == [1, 1, -1]


def test_events_from_tonic_errors():
    good = np.zeros(2, dtype=[("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
    with pytest.raises(ValueError, match=r"missing field\(s\) \['p'\]"):
        events_from_tonic(np.zeros(2, dtype=[("x", "<i8"), ("y", "<i8"), ("t", "<i8")]))
    with pytest.raises(TypeError, match="structured"):
        events_from_tonic(np.zeros((2, 4)))
    bad = good.copy()
    bad["p"] = [2, 1]
    with pytest.raises(ValueError, match="polarities"):
        events_from_tonic(bad)
    mixed = np.zeros(3, dtype=good.dtype)
    mixed["p"] = [0, -1, 1]
    with pytest.raises(ValueError, match="polarities"):
        events_from_tonic(mixed)
    neg = good.copy()
    neg["p"], neg["x"] = [1, 1], [-1, 0]
    with pytest.raises(ValueError, match=r"arr\['x'\]"):
        events_from_tonic(neg)
    with pytest.raises(ValueError, match="off_value"):
        events_to_tonic(empty_events(), off_value=1)


# --------------------------------------------------------------------------- representations


def test_event_frames_counts_per_channel_and_bin():
    ev = make_events([(0, 0, 0, 1), (0, 0, 10, -1), (2, 1, 50, 1), (2, 1, 99, 1), (1, 0, 100, -1)])
    f = to_event_frames(ev, (3, 2), n_frames=2)
    assert f.shape == (2, 2, 2, 3) and f.dtype == np.float32
    expected = np.zeros((2, 2, 2, 3), np.float32)
    expected[0, 1, 0, 0] = 1  # ON at t=0
    expected[0, 0, 0, 0] = 1  # OFF at t=10
    expected[1, 1, 1, 2] = 2  # ON at t=50 (boundary: later bin) and t=99
    expected[1, 0, 0, 1] = 1  # OFF at t=100 = t_max: last bin
    np.testing.assert_array_equal(f, expected)
    one = to_event_frames(ev, (3, 2))
    np.testing.assert_array_equal(one[0], expected.sum(0))


def test_voxel_grid_bilinear_weights_and_normalisations():
    # pixel A = (x=0, y=0), pixel B = (x=1, y=1); t span 100.
    ev = make_events([(0, 0, 0, 1), (0, 0, 25, -1), (1, 1, 100, 1)])
    raw = to_voxel_grid(ev, (2, 2), 3, normalisation="none")
    # E2VID: tau = 2·t/100 = 0, 0.5, 2.
    expected = np.zeros((3, 2, 2))
    expected[0, 0, 0] = 1 - 0.5  # +1 at tau 0; -1 split 0.5/0.5 between bins 0 and 1
    expected[1, 0, 0] = -0.5
    expected[2, 1, 1] = 1.0  # tau = 2: all in the last bin
    assert raw.shape == (3, 2, 2) and raw.dtype == np.float32
    np.testing.assert_allclose(raw, expected, atol=1e-7)

    norm = to_voxel_grid(ev, (2, 2), 3, normalisation="e2vid")
    vals = [0.5, -0.5, 1.0]
    mean, std = statistics.mean(vals), statistics.stdev(vals)  # stdev: Bessel, like torch.std
    expected_norm = np.zeros((3, 2, 2))
    expected_norm[0, 0, 0], expected_norm[1, 0, 0], expected_norm[2, 1, 1] = [(v - mean) / std for v in vals]
    np.testing.assert_allclose(norm, expected_norm, atol=1e-6)

    tonic = to_voxel_grid(ev, (2, 2), 3, normalisation="tonic")  # tau = 3·t/100 = 0, 0.75, 3
    expected_tonic = np.zeros((3, 2, 2))
    expected_tonic[0, 0, 0] = 1 - 0.25
    expected_tonic[1, 0, 0] = -0.75
    # the event at t_max has tau = n_bins and falls outside the grid, as in tonic
    np.testing.assert_allclose(tonic, expected_tonic, atol=1e-7)
    np.testing.assert_array_equal(raw, to_voxel_grid(ev, (2, 2), 3))  # the default is the raw grid
    with pytest.raises(ValueError, match="normalisation"):
        to_voxel_grid(ev, (2, 2), 3, normalisation="zscore")


def test_time_surface_values():
    ev = make_events([(0, 0, 0, -1), (0, 0, 50_000, 1), (0, 0, 80_000, -1), (1, 0, 100_000, 1)])
    s = to_time_surface(ev, (2, 1), tau_us=50_000.0)
    assert s.shape == (2, 1, 2) and s.dtype == np.float32
    np.testing.assert_allclose(s[0, 0], [math.exp(-20_000 / 50_000), 0.0], rtol=1e-6)
    np.testing.assert_allclose(s[1, 0], [math.exp(-50_000 / 50_000), 1.0], rtol=1e-6)
    early = to_time_surface(ev, (2, 1), tau_us=50_000.0, t_ref_us=60_000)
    np.testing.assert_allclose(early[0, 0], [math.exp(-60_000 / 50_000), 0.0], rtol=1e-6)
    np.testing.assert_allclose(early[1, 0], [math.exp(-10_000 / 50_000), 0.0], rtol=1e-6)


def test_binary_frames_partitions():
    ev = make_events([(0, 0, 0, 1), (1, 0, 24, -1), (2, 0, 25, 1), (0, 1, 75, -1), (1, 1, 100, 1),
                      (1, 1, 99, -1)])
    b = to_binary_frames(ev, (3, 2), n_channels=4)
    assert b.shape == (4, 2, 3) and b.dtype == np.float32
    expected = np.zeros((4, 2, 3), np.float32)
    expected[0, 0, 0] = expected[0, 0, 1] = 1  # t = 0, 24
    expected[1, 0, 2] = 1  # t = 25: boundary → later partition
    expected[3, 1, 0] = 1  # t = 75
    expected[3, 1, 1] = 1  # t = 99 and t = 100 = t_end (last partition); binary, not 2
    np.testing.assert_array_equal(b, expected)
    assert to_binary_frames(ev, (3, 2)).shape == (8, 2, 3)
    # explicit span: events outside [t_start, t_end] are ignored
    c = to_binary_frames(ev, (3, 2), n_channels=2, t_start_us=20, t_end_us=80)
    expected_c = np.zeros((2, 2, 3), np.float32)
    expected_c[0, 0, 1] = expected_c[0, 0, 2] = 1  # t = 24, 25 < 50
    expected_c[1, 1, 0] = 1  # t = 75
    np.testing.assert_array_equal(c, expected_c)
    single = to_binary_frames(ev[:1], (3, 2), n_channels=3)
    assert single[2, 0, 0] == 1 and single.sum() == 1
    with pytest.raises(ValueError, match="t_end_us"):
        to_binary_frames(ev, (3, 2), t_start_us=50, t_end_us=10)


def test_empty_events_give_zero_representations():
    e = empty_events()
    for out, shape in [
        (to_event_frames(e, (5, 4), 3), (3, 2, 4, 5)),
        (to_voxel_grid(e, (5, 4), 6, "e2vid"), (6, 4, 5)),
        (to_time_surface(e, (5, 4)), (2, 4, 5)),
        (to_binary_frames(e, (5, 4)), (8, 4, 5)),
    ]:
        assert out.shape == shape and out.dtype == np.float32 and not out.any()


def test_representations_validate_events():
    ev = make_events([(0, 0, 0, 1), (3, 0, 5, -1)])
    with pytest.raises(ValueError, match="outside the sensor"):
        to_event_frames(ev, (3, 2))
    with pytest.raises(ValueError, match="outside the sensor"):
        to_binary_frames(make_events([(0, 2, 0, 1)]), (3, 2))
    tonic01 = np.zeros(1, dtype=TONIC_DTYPE)
    with pytest.raises(ValueError, match="events_from_tonic"):
        to_voxel_grid(tonic01, (3, 2), 2, "tonic")
    with pytest.raises(TypeError, match="events_from_tonic"):
        to_time_surface(np.zeros(1, dtype=[("x", "i2"), ("y", "i2"), ("t", "i8"), ("p", bool)]), (3, 2))
    with pytest.raises(TypeError, match="structured"):
        to_binary_frames(np.zeros((2, 4)), (3, 2))
    with pytest.raises(ValueError, match="n_frames"):
        to_event_frames(ev[:1], (3, 2), n_frames=0)
    with pytest.raises(ValueError, match="tau_us"):
        to_time_surface(ev[:1], (3, 2), tau_us=0.0)


def test_simulated_clip_feeds_every_representation():
    yy, xx = np.mgrid[:12, :16]
    frames = np.stack([0.5 + 0.4 * np.sin((xx - 2 * k) / 3.0) for k in range(5)])
    ev = simulate_events(frames, np.arange(5) / 30, 0.15, 0.15)
    assert len(ev) > 0 and (np.diff(ev["t"]) >= 0).all()
    counts = to_event_frames(ev, (16, 12), 4)
    assert counts.sum() == len(ev)
    assert counts[:, 1].sum() == (ev["p"] == 1).sum()
    assert to_binary_frames(ev, (16, 12)).max() == 1
    assert to_voxel_grid(ev, (16, 12), 5, "none").sum() == pytest.approx(float(ev["p"].sum()), abs=1e-3)
