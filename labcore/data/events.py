"""Event cameras: a frame-to-events simulator (ESIM/v2e manner) and event representations.

An event camera (DVS) reports, per pixel and asynchronously, each time the log intensity
has changed by a contrast threshold since the pixel's last event. labcore keeps events in
a numpy structured array of dtype :data:`EVENT_DTYPE`:

* ``x`` int16, ``y`` int16 — pixel indices, x right, y down;
* ``t`` int64 — time in **microseconds**;
* ``p`` int8 — polarity, ``+1`` (ON, brighter) or ``-1`` (OFF, darker);

sorted by ``t``; events with the same ``t`` are in pixel raster order (``y·W + x``), and
events with the same ``t`` and pixel keep the order in which they were generated.

Functions:

* :func:`simulate_events` — events from intensity frames, with v2e's parameter names
  (``pos_thres``, ``neg_thres``, ``sigma_thres``, ``refractory_period_s``,
  ``shot_noise_rate_hz``).
* :func:`events_to_tonic` / :func:`events_from_tonic` — explicit conversion to and from
  the structured arrays of the ``tonic`` library, whose polarity is often boolean.
* Representations (float32 numpy arrays): :func:`to_event_frames` (ON/OFF counts),
  :func:`to_voxel_grid` (E2VID / tonic bilinear voxel grid), :func:`to_time_surface`
  (exponentially decaying most-recent-event maps) and :func:`to_binary_frames`
  (EventHPE's input, METHODS.md §5.1).

``sensor_size`` is always ``(W, H)`` as in tonic (without tonic's third entry, the
number of polarities).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch

from labcore.checks import check_choice, check_int, check_number, check_size2

__all__ = [
    "EVENT_DTYPE",
    "TONIC_DTYPE",
    "empty_events",
    "simulate_events",
    "events_to_tonic",
    "events_from_tonic",
    "to_event_frames",
    "to_voxel_grid",
    "to_time_surface",
    "to_binary_frames",
]

#: labcore's events: x right, y down (pixels), t in microseconds, p in {-1, +1}.
EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])

#: What :func:`events_to_tonic` returns: every field a signed int64 (p = ±1 by default).
TONIC_DTYPE = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])

#: v2e clips mismatched thresholds at this minimum (``torch.clamp(..., min=0.01)``).
MIN_THRESHOLD = 0.01

_MAX_COORD = int(np.iinfo(np.int16).max)
_FIELDS = ("x", "y", "t", "p")


def empty_events() -> np.ndarray:
    """An empty event array of dtype :data:`EVENT_DTYPE`, shape ``(0,)``."""
    return np.zeros(0, dtype=EVENT_DTYPE)


# --------------------------------------------------------------------------- validation


def _as_frames(frames: Any) -> np.ndarray:
    """``frames`` as a float64 array ``(T, H, W)``, checked (finite, non-negative, T ≥ 2)."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    if isinstance(frames, (list, tuple)):
        if len(frames) == 0:
            raise ValueError("frames: expected at least 2 frames, got an empty list")
        arrays = []
        for i, f in enumerate(frames):
            if isinstance(f, torch.Tensor):
                f = f.detach().cpu().numpy()
            if not isinstance(f, (np.ndarray, list, tuple)):
                raise TypeError(f"frames[{i}]: expected a 2-D array, got {type(f).__name__}")
            a = np.asarray(f)
            if a.ndim != 2:
                raise ValueError(f"frames[{i}]: expected a 2-D (H, W) array, got shape {a.shape}")
            if arrays and a.shape != arrays[0].shape:
                raise ValueError(
                    f"frames[{i}]: expected shape {arrays[0].shape} like frames[0], got {a.shape} "
                    "(all frames must have the same size)"
                )
            arrays.append(a)
        dtypes = {a.dtype for a in arrays}
        arr = np.stack(arrays) if all(d.kind in "iuf" for d in dtypes) else None
        bad = next((d for d in dtypes if d.kind not in "iuf"), None)
    elif isinstance(frames, np.ndarray):
        arr, bad = frames, (None if frames.dtype.kind in "iuf" else frames.dtype)
    else:
        raise TypeError(
            f"frames: expected a (T, H, W) array or a list of 2-D arrays, got {type(frames).__name__}"
        )
    if bad is not None:
        raise TypeError(f"frames: expected real intensities (int or float), got dtype {bad}")
    if arr.ndim != 3:
        raise ValueError(f"frames: expected shape (T, H, W), got {arr.shape}")
    t, h, w = arr.shape
    if t < 2:
        raise ValueError(f"frames: expected at least 2 frames (T >= 2), got T={t}")
    if h < 1 or w < 1 or h > _MAX_COORD + 1 or w > _MAX_COORD + 1:
        raise ValueError(f"frames: expected 1 <= H, W <= {_MAX_COORD + 1}, got H={h}, W={w}")
    arr = arr.astype(np.float64)
    finite = np.isfinite(arr)
    if not finite.all():
        n_nan = int(np.isnan(arr).sum())
        raise ValueError(
            f"frames: expected finite intensities, got {n_nan} NaN and {int((~finite).sum()) - n_nan} inf"
        )
    if (arr < 0).any():
        raise ValueError(
            f"frames: expected non-negative (linear) intensities, got minimum {arr.min():g}"
        )
    return arr


def _as_timestamps(timestamps_s: Any, n: int) -> np.ndarray:
    """``timestamps_s`` as float64 seconds ``(n,)``, finite and strictly increasing."""
    if isinstance(timestamps_s, torch.Tensor):
        timestamps_s = timestamps_s.detach().cpu().numpy()
    if not isinstance(timestamps_s, (np.ndarray, list, tuple)):
        raise TypeError(
            f"timestamps_s: expected a 1-D array of seconds, got {type(timestamps_s).__name__}"
        )
    ts = np.asarray(timestamps_s)
    if ts.dtype.kind not in "iuf":
        raise TypeError(f"timestamps_s: expected real numbers (seconds), got dtype {ts.dtype}")
    ts = ts.astype(np.float64)
    if ts.ndim != 1:
        raise ValueError(f"timestamps_s: expected shape ({n},), got {ts.shape}")
    if ts.shape[0] != n:
        raise ValueError(f"timestamps_s: expected {n} timestamps (one per frame), got {ts.shape[0]}")
    if not np.isfinite(ts).all():
        raise ValueError(f"timestamps_s: expected finite values, got {ts[~np.isfinite(ts)][:3]}")
    steps = np.diff(ts)
    if (steps <= 0).any():
        i = int(np.flatnonzero(steps <= 0)[0])
        raise ValueError(
            "timestamps_s: expected strictly increasing times, got "
            f"timestamps_s[{i}]={ts[i]!r} followed by timestamps_s[{i + 1}]={ts[i + 1]!r}"
        )
    return ts


def _check_structured(events: Any, name: str) -> np.ndarray:
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        raise TypeError(
            f"{name}: expected a numpy structured array with fields x, y, t, p "
            f"(labcore.data.events.EVENT_DTYPE), got {type(events).__name__}"
            + (f" of dtype {events.dtype}" if isinstance(events, np.ndarray) else "")
        )
    missing = [f for f in _FIELDS if f not in events.dtype.names]
    if missing:
        raise ValueError(
            f"{name}: missing field(s) {missing}; expected fields x, y, t, p, got {events.dtype.names}"
        )
    if events.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of events, got shape {events.shape}")
    return events


def _integral(values: np.ndarray, name: str) -> np.ndarray:
    """An integer-valued field as int64 (integer dtypes, or floats holding whole numbers)."""
    kind = values.dtype.kind
    if kind in "iu":
        return values.astype(np.int64)
    if kind == "f":
        if not np.isfinite(values).all() or (values != np.round(values)).any():
            raise ValueError(f"{name}: expected whole numbers, got non-integral values")
        return values.astype(np.int64)
    raise TypeError(f"{name}: expected integers, got dtype {values.dtype}")


def _columns(
    events: Any, name: str = "events", sensor_size: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Validate a labcore event array; return int64 ``x, y, t, p`` and ``W, H`` (0 without a
    ``sensor_size``)."""
    ev = _check_structured(events, name)
    x = _integral(ev["x"], f"{name}['x']")
    y = _integral(ev["y"], f"{name}['y']")
    t = _integral(ev["t"], f"{name}['t'] (microseconds)")
    if ev["p"].dtype.kind not in "iu":
        raise TypeError(
            f"{name}['p']: expected integer polarities -1/+1, got dtype {ev['p'].dtype}; "
            "convert tonic arrays with events_from_tonic"
        )
    p = ev["p"].astype(np.int64)
    if p.size and not np.isin(p, (-1, 1)).all():
        raise ValueError(
            f"{name}['p']: expected polarities -1 (OFF) and +1 (ON), got values "
            f"{np.unique(p)[:6].tolist()}; convert 0/1 or bool polarities with events_from_tonic"
        )
    w = h = 0
    if sensor_size is not None:
        w, h = check_size2(sensor_size, "sensor_size")
        if x.size:
            bad = (x < 0) | (x >= w) | (y < 0) | (y >= h)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"{name}: {int(bad.sum())} event(s) outside the sensor (W, H)=({w}, {h}); "
                    f"first at index {i}: x={x[i]}, y={y[i]}"
                )
    return x, y, t, p, w, h


def _as_us(value: Any, name: str) -> int:
    """A time in microseconds: an int, or a float holding a whole number."""
    if isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool):
        return int(value)
    v = check_number(value, name)
    if not float(v).is_integer():
        raise ValueError(f"{name}: expected a whole number of microseconds, got {v}")
    return int(v)


# --------------------------------------------------------------------------- simulator


def simulate_events(
    frames: Any,
    timestamps_s: Any,
    pos_thres: float = 0.2,
    neg_thres: float = 0.2,
    *,
    sigma_thres: float = 0.0,
    refractory_period_s: float = 0.0,
    shot_noise_rate_hz: float = 0.0,
    log_eps: float = 1e-3,
    seed: int = 0,
) -> np.ndarray:
    """Simulate an event camera watching ``frames`` (ESIM/v2e: log-intensity thresholds,
    linearly interpolated crossing times).

    Args:
        frames: ``(T, H, W)`` linear intensities (float or int; typically in [0, 1]), or a
            list of ``T`` same-shaped 2-D arrays; ``T >= 2``; finite and non-negative.
        timestamps_s: ``(T,)`` frame times in seconds, strictly increasing.
        pos_thres, neg_thres: nominal ON / OFF contrast thresholds ``C_on``, ``C_off`` in
            natural-log units (> 0).
        sigma_thres: per-pixel threshold mismatch (std, log units, as v2e's
            ``sigma_thres``). When > 0 every pixel gets ``C_on ~ N(pos_thres, sigma_thres)``
            and ``C_off ~ N(neg_thres, sigma_thres)``, drawn once (ON map first, then OFF
            map) and clipped below at :data:`MIN_THRESHOLD` = 0.01 as in v2e.
        refractory_period_s: ``R`` in seconds (>= 0); rule below.
        shot_noise_rate_hz: rate of noise events per pixel (>= 0); rule below.
        log_eps: offset in ``L = log(I + log_eps)`` (> 0).
        seed: seeds ``np.random.default_rng(seed)``, whose two spawned child generators
            draw the threshold maps and the shot noise respectively (so switching one on does
            not change the other's draws). Same arguments → identical events.

    Returns:
        events of dtype :data:`EVENT_DTYPE`: ``t`` int64 microseconds
        (``rint(t_seconds · 1e6)``), ``p`` int8 in {-1, +1}, sorted by ``t`` (ties in pixel
        raster order ``y·W + x``, then generation order).

    Model (per pixel, vectorised over pixels; a loop over frame intervals):

    * ``L_j = log(I_j + log_eps)``; the reference level ``ref`` starts at ``L_0``; between
      frames ``j`` and ``j+1``, ``L`` is linear in time.
    * In the interval ``[t_j, t_{j+1}]`` with ``d = L_{j+1} - ref``, the candidate events are
      ``n = floor(d / C_on)`` ON events if ``d > 0`` (levels ``ref + k·C_on``, k = 1..n), or
      ``n = floor(-d / C_off)`` OFF events if ``d < 0`` (levels ``ref - k·C_off``); this is
      v2e's ``compute_event_map`` count. Candidate ``k``'s time is the first time the line
      from ``L_j`` to ``L_{j+1}`` reaches its level: ``t = t_j + (level - L_j) / (L_{j+1} -
      L_j) · (t_{j+1} - t_j)``, or ``t_j`` if ``L_j`` is already at or beyond the level (only
      possible after refractory drops, see below). Then ``ref`` moves by exactly one
      threshold per *emitted* event: ``ref += m·C_on`` (ON) or ``ref -= m·C_off`` (OFF).
      Without a refractory period every candidate is emitted, so a ramp of ``Δ`` log units
      gives exactly ``floor(Δ / C)`` events, several per interval when ``Δ > C``.
    * Refractory period (v2e, ``v2ecore/emulator.py``, ``generate_events``): when ``R > 0``
      a candidate at time ``t`` is emitted iff ``t - t_last > R`` (strict), where ``t_last``
      is the time of the previous *emitted* event at that pixel of either polarity (none
      yet: always emitted); the comparison uses the unrounded times in seconds. A dropped
      candidate does **not** move the reference (v2e adds only the emitted events,
      ``final_pos_evts_frame * pos_thres``, to ``base_log_frame``), so the crossing stays
      pending: in the next interval it is counted again and, since ``L`` is already beyond
      its level, gets that interval's start time ``t_j``. A pixel held back by the
      refractory period thus catches up later (the total count is kept when the signal
      stays put). ``R = 0`` filters nothing (v2e filters only when ``R`` exceeds its time
      step).
    * Shot noise (simpler than v2e's intensity-dependent model): ``N ~ Poisson(rate · H·W ·
      (t_{T-1} - t_0))`` events, each at a uniformly random pixel, a uniform random time in
      ``[t_0, t_{T-1})`` and polarity ±1 with probability 1/2. They neither move the
      reference (v2e's noise events reset it) nor pass through or reset the refractory
      filter.
    """
    arr = _as_frames(frames)
    n_t, h, w = arr.shape
    ts = _as_timestamps(timestamps_s, n_t)
    c_on0 = check_number(pos_thres, "pos_thres", low=0.0, low_inclusive=False)
    c_off0 = check_number(neg_thres, "neg_thres", low=0.0, low_inclusive=False)
    sigma = check_number(sigma_thres, "sigma_thres", low=0.0)
    refractory = check_number(refractory_period_s, "refractory_period_s", low=0.0)
    noise_rate = check_number(shot_noise_rate_hz, "shot_noise_rate_hz", low=0.0)
    eps = check_number(log_eps, "log_eps", low=0.0, low_inclusive=False)
    seed = check_int(seed, "seed", low=0)
    rng_thres, rng_noise = np.random.default_rng(seed).spawn(2)

    n_pix = h * w
    log_i = np.log(arr.reshape(n_t, n_pix) + eps)
    if sigma > 0:
        c_on = np.maximum(rng_thres.normal(c_on0, sigma, n_pix), MIN_THRESHOLD)
        c_off = np.maximum(rng_thres.normal(c_off0, sigma, n_pix), MIN_THRESHOLD)
    else:
        c_on = np.full(n_pix, c_on0)
        c_off = np.full(n_pix, c_off0)

    ref = log_i[0].copy()
    t_last = np.full(n_pix, -np.inf)
    pix_out: list[np.ndarray] = []
    t_out: list[np.ndarray] = []
    p_out: list[np.ndarray] = []
    for j in range(n_t - 1):
        l0, l1 = log_i[j], log_i[j + 1]
        t0, dt = ts[j], ts[j + 1] - ts[j]
        d = l1 - ref
        n_on = np.floor(np.maximum(d, 0.0) / c_on)
        n_off = np.floor(np.maximum(-d, 0.0) / c_off)
        counts_all = (n_on + n_off).astype(np.int64)  # at most one of them is non-zero
        pix = np.flatnonzero(counts_all)
        if pix.size == 0:
            continue
        counts = counts_all[pix]
        sign = np.where(d[pix] > 0, 1, -1)
        thres = np.where(sign > 0, c_on[pix], c_off[pix])
        # Expand to one row per candidate: group g (pixel pix[g]) has ranks k = 1..counts[g].
        group = np.repeat(np.arange(pix.size), counts)
        starts = np.cumsum(counts) - counts
        k = np.arange(group.size) - starts[group] + 1
        s = sign[group]
        level = ref[pix][group] + s * k * thres[group]
        a, b = l0[pix][group], l1[pix][group]
        reached = s * (a - level) >= 0
        slope = np.where(reached, 1.0, b - a)
        frac = np.where(reached, 0.0, np.clip((level - a) / slope, 0.0, 1.0))
        t_cand = t0 + frac * dt
        if refractory > 0:
            keep = np.zeros(group.size, dtype=bool)
            for rank in range(1, int(counts.max()) + 1):
                sel = starts[counts >= rank] + (rank - 1)
                px = pix[group[sel]]
                ok = t_cand[sel] - t_last[px] > refractory
                keep[sel] = ok
                t_last[px[ok]] = t_cand[sel][ok]
            emitted = np.bincount(group, weights=keep, minlength=pix.size)
        else:
            keep = np.ones(group.size, dtype=bool)
            emitted = counts
        ref[pix] += sign * emitted * thres
        pix_out.append(pix[group][keep])
        t_out.append(t_cand[keep])
        p_out.append(s[keep])

    if noise_rate > 0:
        n_noise = int(rng_noise.poisson(noise_rate * n_pix * (ts[-1] - ts[0])))
        pix_out.append(rng_noise.integers(0, n_pix, n_noise))
        t_out.append(rng_noise.uniform(ts[0], ts[-1], n_noise))
        p_out.append(rng_noise.integers(0, 2, n_noise) * 2 - 1)

    if not pix_out:
        return empty_events()
    pix_all = np.concatenate(pix_out)
    t_us = np.rint(np.concatenate(t_out) * 1e6).astype(np.int64)
    pol = np.concatenate(p_out)
    order = np.lexsort((np.arange(pix_all.size), pix_all, t_us))
    out = np.empty(pix_all.size, dtype=EVENT_DTYPE)
    out["x"] = pix_all[order] % w
    out["y"] = pix_all[order] // w
    out["t"] = t_us[order]
    out["p"] = pol[order]
    return out


# --------------------------------------------------------------------------- tonic


def events_to_tonic(events: np.ndarray, *, off_value: int = -1) -> np.ndarray:
    """labcore events → a tonic-style structured array of dtype :data:`TONIC_DTYPE`
    (``x, y, t, p`` all ``<i8``; ``t`` in microseconds).

    ``p`` is a **signed** int64: ``+1`` for ON and ``off_value`` (default ``-1``) for OFF.
    Why signed, and signed *before* anything signs it: tonic's default event dtype has a
    boolean ``p`` (``events_struct`` in ``tonic/io.py``: ``("p", bool)``), and its voxel grid
    (``tonic/functional/to_voxel_grid.py``, ``to_voxel_grid_numpy``) signs polarity in place
    with ``pols[pols == 0] = -1``. On a bool array that assignment stores ``True``, so every
    OFF event would count as ON. With a signed int64 ``p`` the assignment is a no-op (±1) or
    correct (0/1).

    ``off_value=0`` gives 0/1 polarities for tonic code that indexes channels with
    ``p.astype(int)`` (``to_frame_numpy`` in ``tonic/functional/to_frame.py``), where ``-1``
    would wrap around to the last (ON) channel.
    """
    x, y, t, p, _, _ = _columns(events, "events")
    off_value = check_choice(off_value, "off_value", (-1, 0))
    out = np.empty(x.size, dtype=TONIC_DTYPE)
    out["x"], out["y"], out["t"] = x, y, t
    out["p"] = np.where(p > 0, 1, off_value)
    return out


def events_from_tonic(arr: np.ndarray) -> np.ndarray:
    """A tonic-style structured array (fields ``x, y, t, p``; ``t`` in microseconds) →
    labcore events (:data:`EVENT_DTYPE`), sorted by ``t`` (ties: raster order, then input
    order).

    Accepted polarities: bool (``True`` → +1, ``False`` → -1), integers 0/1 or -1/+1 (or
    floats holding those values). ``p`` is first converted to a signed integer type
    (int64) and only then is 0 mapped to -1 — signing a bool array in place would turn
    every OFF event into +1 (see :func:`events_to_tonic`). Mixing 0 and -1, or any other
    value, raises ``ValueError``; ``x, y`` must be whole numbers in ``[0, 32767]``.
    """
    ev = _check_structured(arr, "arr")
    x = _integral(ev["x"], "arr['x']")
    y = _integral(ev["y"], "arr['y']")
    t = _integral(ev["t"], "arr['t'] (microseconds)")
    raw = ev["p"]
    if raw.dtype.kind == "b":
        p = raw.astype(np.int64)
    elif raw.dtype.kind in "iuf":
        p = _integral(raw, "arr['p']")
    else:
        raise TypeError(f"arr['p']: expected bool or integer polarities, got dtype {raw.dtype}")
    values = set(np.unique(p).tolist())
    if not (values <= {0, 1} or values <= {-1, 1}):
        raise ValueError(
            f"arr['p']: expected polarities as bool, 0/1 or -1/+1, got values {sorted(values)[:6]}"
        )
    p[p == 0] = -1  # p is int64 here: the signing is safe
    for name, v in (("x", x), ("y", y)):
        if v.size and (v.min() < 0 or v.max() > _MAX_COORD):
            raise ValueError(
                f"arr['{name}']: expected pixel indices in [0, {_MAX_COORD}], got range "
                f"[{v.min()}, {v.max()}]"
            )
    order = np.lexsort((np.arange(t.size), x, y, t))
    out = np.empty(t.size, dtype=EVENT_DTYPE)
    out["x"], out["y"], out["t"], out["p"] = x[order], y[order], t[order], p[order]
    return out


# --------------------------------------------------------------------------- representations


def to_event_frames(events: np.ndarray, sensor_size: Any, n_frames: int = 1) -> np.ndarray:
    """Event counts per polarity in ``n_frames`` equal time bins → ``(n_frames, 2, H, W)``
    float32.

    Channel 0 counts OFF events and channel 1 ON events (tonic's ``ToFrame``: channel =
    ``p`` with OFF = 0). The bins split the events' span ``[t_min, t_max]``: an event goes
    to bin ``floor((t - t_min) · n_frames / (t_max - t_min))`` computed exactly in integers
    (bin ``i`` is ``[t_min + i·S/n, t_min + (i+1)·S/n)``), and an event at ``t_max`` to the
    last bin; a zero span puts everything in bin 0. (tonic's ``slice_by_time_bins`` sizes
    its windows from ``t[-1] // n`` instead of the span; labcore uses the span.)
    Empty events give zeros.
    """
    x, y, t, p, w, h = _columns(events, "events", sensor_size)
    n = check_int(n_frames, "n_frames", low=1)
    if t.size == 0:
        return np.zeros((n, 2, h, w), dtype=np.float32)
    t0, span = t.min(), t.max() - t.min()
    b = np.zeros_like(t) if span == 0 else np.minimum((t - t0) * n // span, n - 1)
    flat = ((b * 2 + (p > 0)) * h + y) * w + x
    counts = np.bincount(flat, minlength=n * 2 * h * w)
    return counts.reshape(n, 2, h, w).astype(np.float32)


def to_voxel_grid(
    events: np.ndarray, sensor_size: Any, n_bins: int, normalisation: str = "none"
) -> np.ndarray:
    """Bilinear-in-time voxel grid (E2VID's ``events_to_voxel_grid``) → ``(n_bins, H, W)``
    float32.

    With ``t_a = min t``, ``t_b = max t`` (the first and last timestamps of time-sorted
    events) and ``S = t_b - t_a`` (``S = 0`` → every event at ``τ = 0``), each event gets a
    continuous bin coordinate ``τ``, ``i = floor(τ)``, ``δ = τ - i``; it adds ``p·(1-δ)`` to
    bin ``i`` if ``i < n_bins`` and ``p·δ`` to bin ``i+1`` if ``i+1 < n_bins`` (contributions
    outside the grid are dropped, as in both references).

    ``normalisation``:

    * ``"none"`` (default) — the raw grid with E2VID's scaling ``τ = (n_bins - 1)·(t - t_a)/S``
      (``rpg_e2vid/utils/inference_utils.py``), so ``τ ∈ [0, n_bins-1]`` and nothing is
      dropped.
    * ``"e2vid"`` — that grid, then E2VID's ``EventPreprocessor`` normalisation: the
      non-zero voxels ``v`` become ``(v - mean) / std`` over all non-zero voxels, ``std``
      with Bessel's correction (``torch.Tensor.std``); zero voxels stay 0. When ``std`` is
      0 or undefined (fewer than two non-zero voxels), only the mean is subtracted.
    * ``"tonic"`` — tonic's ``to_voxel_grid_numpy``
      (``tonic/functional/to_voxel_grid.py``), which does **no** normalisation and scales
      time as ``τ = n_bins·(t - t_a)/S``, i.e. to ``[0, n_bins]``: the ``p·δ`` share of events
      with ``τ ∈ [n_bins-1, n_bins)`` and the whole event(s) at ``t_b`` (``τ = n_bins``) fall
      outside and are dropped, exactly as in tonic. (tonic divides by zero when ``S = 0``;
      here every event is then at ``τ = 0``.)

    Empty events give zeros.
    """
    x, y, t, p, w, h = _columns(events, "events", sensor_size)
    n = check_int(n_bins, "n_bins", low=1)
    mode = check_choice(normalisation, "normalisation", ("tonic", "e2vid", "none"))
    grid = np.zeros(n * h * w, dtype=np.float64)
    if t.size == 0:
        return grid.reshape(n, h, w).astype(np.float32)
    t_a, span = t.min(), t.max() - t.min()
    scale = n if mode == "tonic" else n - 1
    tau = np.zeros(t.size) if span == 0 else scale * (t - t_a).astype(np.float64) / span
    i = np.floor(tau).astype(np.int64)
    delta = tau - i
    pol = p.astype(np.float64)
    pix = y * w + x
    left = i < n
    right = i + 1 < n
    grid += np.bincount(i[left] * h * w + pix[left], weights=pol[left] * (1 - delta[left]),
                        minlength=grid.size)
    grid += np.bincount((i[right] + 1) * h * w + pix[right], weights=pol[right] * delta[right],
                        minlength=grid.size)
    if mode == "e2vid":
        nz = grid != 0
        vals = grid[nz]
        if vals.size:
            mean = vals.mean()
            std = vals.std(ddof=1) if vals.size > 1 else 0.0
            grid[nz] = (vals - mean) / std if std > 0 else vals - mean
    return grid.reshape(n, h, w).astype(np.float32)


def to_time_surface(
    events: np.ndarray, sensor_size: Any, tau_us: float = 50_000.0, t_ref_us: float | None = None
) -> np.ndarray:
    """Time surface of the most recent event per pixel and polarity → ``(2, H, W)`` float32.

    Channel 0 is OFF, channel 1 ON: ``exp(-(t_ref - t_last) / tau_us)`` where ``t_last`` is
    the time (µs) of the latest event of that polarity at that pixel with ``t <= t_ref``, and
    0 where there is none. ``t_ref_us`` defaults to the last event time (``max t``); events
    after ``t_ref_us`` are ignored. Values lie in (0, 1]; 1 at ``t_last = t_ref``.
    """
    x, y, t, p, w, h = _columns(events, "events", sensor_size)
    tau = check_number(tau_us, "tau_us", low=0.0, low_inclusive=False)
    out = np.zeros((2, h, w), dtype=np.float32)
    if t.size == 0:
        return out
    t_ref = float(t.max()) if t_ref_us is None else check_number(t_ref_us, "t_ref_us")
    use = t <= t_ref
    if not use.any():
        return out
    last = np.full(2 * h * w, -np.inf)
    np.maximum.at(last, (((p[use] > 0) * h + y[use]) * w + x[use]), t[use].astype(np.float64))
    seen = np.isfinite(last)
    surface = np.zeros_like(last)
    surface[seen] = np.exp(-(t_ref - last[seen]) / tau)
    return surface.reshape(2, h, w).astype(np.float32)


def to_binary_frames(
    events: np.ndarray,
    sensor_size: Any,
    n_channels: int = 8,
    t_start_us: int | None = None,
    t_end_us: int | None = None,
) -> np.ndarray:
    """EventHPE's binary event frames (METHODS.md §5.1) → ``(n_channels, H, W)`` float32.

    The span ``[t_start, t_end]`` (default: the events' first and last ``t``, µs) is split
    into ``n_channels`` equal partitions; pixel ``(y, x)`` of channel ``c`` is 1 if any
    event of either polarity falls in partition ``c``. Partition ``c`` is
    ``[t_start + c·S/n, t_start + (c+1)·S/n)`` with ``S = t_end - t_start``, computed exactly
    as ``c = floor((t - t_start)·n / S)`` in integers; an event exactly at ``t_end`` goes in
    the last partition (the official ``generate_events_frame`` uses half-open partitions
    and so drops it). With ``S = 0`` every event is at ``t_end`` and goes in the last
    partition. Events outside ``[t_start, t_end]`` are ignored. Empty events give zeros.
    """
    x, y, t, _, w, h = _columns(events, "events", sensor_size)
    n = check_int(n_channels, "n_channels", low=1)
    out = np.zeros((n, h, w), dtype=np.float32)
    if t_start_us is None and t_end_us is None and t.size == 0:
        return out
    if t_start_us is not None:
        t_start = _as_us(t_start_us, "t_start_us")
    else:
        t_start = int(t.min()) if t.size else 0
    if t_end_us is not None:
        t_end = _as_us(t_end_us, "t_end_us")
    else:
        t_end = int(t.max()) if t.size else t_start
    if t_end < t_start:
        raise ValueError(f"t_end_us: expected a value >= t_start_us={t_start}, got {t_end}")
    use = (t >= t_start) & (t <= t_end)
    if not use.any():
        return out
    tt = t[use] - t_start
    span = t_end - t_start
    c = np.full(tt.size, n - 1) if span == 0 else np.minimum(tt * n // span, n - 1)
    out.reshape(-1)[(c * h + y[use]) * w + x[use]] = 1.0
    return out
