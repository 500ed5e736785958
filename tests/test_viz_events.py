"""EventHPE's figures (labcore.viz.events): the explorer shows the simulator's own events,
the event image colours ON/OFF where they are, and the flow figure's EPE is the formula."""

import numpy as np
import pytest

from labcore.data import events as ev
from labcore.viz import events as vz

pytestmark = pytest.mark.usefixtures("one_thread")


def events_of(rows):
    out = np.zeros(len(rows), dtype=ev.EVENT_DTYPE)
    for i, (x, y, t, p) in enumerate(rows):
        out[i] = (x, y, t, p)
    return out


def test_event_frame_rgb_colours_on_red_and_off_blue():
    e = events_of([(1, 0, 10, 1), (1, 0, 20, 1), (1, 0, 30, 1), (2, 1, 40, -1)])
    rgb = vz.event_frame_rgb(e, (4, 3))
    assert rgb.shape == (3, 4, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 1]) == (255, 0, 0)  # 3 ON events saturate red
    assert rgb[1, 2, 2] == round(255 / 3) and rgb[1, 2, 0] == 0  # one OFF event: a third of blue
    assert rgb[[0, 2]].sum() == rgb[0, 1].sum()  # nothing else lit


def test_event_explorer_matches_the_simulator_and_every_control_moves_it():
    ex = vz.EventExplorer()
    events, clip = ex.simulate(**ex.params)
    c = ex.params["threshold"]
    assert np.array_equal(events, ev.simulate_events(clip["gray"], clip["times"], c, c, seed=0))
    base = len(events)
    assert base > 100 and f"{base} events" in ex.info.value
    ex.update(threshold=0.4)
    assert int(ex.info.value.split()[0]) < base  # a higher threshold: fewer events
    ex.update(threshold=0.2, refractory_ms=30.0)
    assert int(ex.info.value.split()[0]) < base
    ex.update(refractory_ms=0.0, noise_hz=10.0)
    assert int(ex.info.value.split()[0]) > base
    fig = ex.update(noise_hz=0.0, interval=5, sigma_thres=0.05)
    assert len(fig.data) >= 3
    # The 3-D view: ON events red, OFF blue, as numbers on a two-colour scale.
    cloud = fig.data[0]
    events, _ = ex.simulate(**ex.params)
    if len(events) > vz.MAX_POINTS:  # the explorer's own subsample
        events = events[np.random.default_rng(0).choice(len(events), vz.MAX_POINTS, replace=False)]
    np.testing.assert_array_equal(np.asarray(cloud.x), events["x"])
    np.testing.assert_array_equal(np.asarray(cloud.marker.color), (events["p"] > 0).astype(np.uint8))
    assert 0 < np.asarray(cloud.marker.color).mean() < 1  # both polarities present
    assert (cloud.marker.cmin, cloud.marker.cmax) == (0, 1)
    assert [tuple(c) for c in cloud.marker.colorscale] == [(0, "#1f77b4"), (1, "#d62728")]
    with pytest.raises(ValueError, match="unknown"):
        ex.update(contrast=0.3)


def test_representations_and_flow_figures():
    rng = np.random.default_rng(0)
    n = 200
    e = np.zeros(n, dtype=ev.EVENT_DTYPE)
    e["x"], e["y"] = rng.integers(0, 16, n), rng.integers(0, 12, n)
    e["t"] = np.sort(rng.integers(0, 10_000, n))
    e["p"] = rng.choice([-1, 1], n)
    fig = vz.representations_figure(e, (16, 12))
    assert len(fig.data) == 8 and fig.data[0].z.shape == (12, 16)
    true = np.zeros((2, 12, 16), np.float32)
    true[0] = 3.0
    pred = true.copy()
    pred[1, :6] = 4.0  # half the pixels off by 4 px
    f = vz.flow_figure(pred, true)
    assert "EPE 2.00 px (zero flow 3.00 px)" in f.layout.title.text
