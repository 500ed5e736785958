"""Speed of labcore's batched torch codecs against the per-keypoint numpy references.

Timed: ``encode`` and ``decode`` of every keypoint codec for one top-down batch — N = 64
person crops × K = 17 COCO keypoints, 256×192 input (``input_size = (W, H) = (192, 256)``),
64×48 heatmaps, σ = 2 heatmap pixels; SimCC split ratio k = 2 with Gaussian labels of σ = 6
bins or smoothed one-hot labels (ε = 0.1). About 10 % of the keypoints are invisible and
some lie outside the crop, as in real batches.

* labcore: the batched torch codecs (``labcore.methods.heatmap.GaussianHeatmap`` in its
  ``msra`` / ``dark`` / ``udp`` variants, ``IntegralHeatmap``, ``labcore.codec.
  CoordinateRegression``, ``labcore.methods.simdr.SimDR``), on CPU, torch tensors in and
  out.
* numpy: ``tests/reference_codecs.py`` — the published algorithms re-stated as numpy code
  the way mmpose / the official SimCC code writes them: one crop at a time (mmpose's codecs
  encode and decode a single instance per call), one keypoint at a time where the original
  loops over keypoints (Gaussian targets, quarter-pixel and DARK refinement, mmpose's
  ``cv2.GaussianBlur`` map by map), vectorised over the K keypoints of a crop where the
  original is (argmax, UDP's DARK step, SimCC argmax, the integral read-out).

Decoders get realistic network outputs: the targets plus N(0, 0.02²) noise for heatmaps,
``10 ×`` target + N(0, 0.5²) logits for the integral codec, scaled labels + N(0, 1) logits
for SimCC. Before timing, each pair's outputs are compared (max |difference| printed;
DARK/UDP keypoints only on maps that hold a target peak).

Each measurement: one warm-up call, then the best (and the median) of ``repeats`` calls;
``torch.set_num_threads`` and ``cv2.setNumThreads`` are fixed (default 1 thread; the
number used is printed). Target (project issue): labcore's batched codecs at least 10×
faster than the numpy loops on CPU, for encode + decode together; the table says which
codecs reach it. Heatmap and label sizes are per crop, so the ratios hardly depend on N.

    python benchmarks/bench_codecs.py [--quick] [--threads N] [--json PATH]

:func:`run` returns the measurements (``benchmarks/run_all.py`` calls it through
:func:`section`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import reference_codecs as ref  # noqa: E402
from _timing import Section, Table, atomic_write_text, measure  # noqa: E402

from labcore.codec import CoordinateRegression  # noqa: E402
from labcore.methods.heatmap import GaussianHeatmap, IntegralHeatmap  # noqa: E402
from labcore.methods.simdr import SimDR  # noqa: E402

N, K = 64, 17
INPUT = (192, 256)  # (W, H)
HEATMAP = (48, 64)  # (w, h)
SIGMA = 2.0
SPLIT = 2.0
SIMCC_SIGMA = 6.0
SMOOTHING = 0.1
TARGET = 10.0


def batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``kp (N, K, 2)`` float32 crop pixels (a few just outside the crop) and ``vis``."""
    rng = np.random.default_rng(seed)
    size = np.array(INPUT, np.float32)
    kp = (rng.uniform(-0.05, 1.05, (N, K, 2)) * (size - 1)).astype(np.float32)
    vis = (rng.random((N, K)) > 0.1).astype(np.float32)
    return kp, vis


def timeit(fn, repeats: int) -> tuple[float, float]:
    """(best, median) seconds of ``repeats`` calls after one warm-up call."""
    t = measure(fn, repeats)
    return t.best, t.median


def max_diff(a, b, mask=None) -> float:
    """Largest |a - b| over (nested tuples of) arrays/tensors; ``mask`` selects rows."""
    if isinstance(a, (tuple, list)):
        return max(max_diff(x, y, mask) for x, y in zip(a, b))
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.detach().cpu().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    if mask is not None and a.shape[: mask.ndim] == mask.shape:
        a, b = a[mask], b[mask]
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) if a.size else 0.0


def cases(kp: np.ndarray, vis: np.ndarray, seed: int = 1) -> list[dict]:
    """Every (codec, op) pair: the numpy reference and the labcore call, same inputs."""
    rng = np.random.default_rng(seed)
    kp_t, vis_t = torch.from_numpy(kp), torch.from_numpy(vis)
    out = []

    def add(codec, op, numpy_fn, torch_fn, mask=None):
        out.append(dict(codec=codec, op=op, numpy=numpy_fn, torch=torch_fn, mask=mask))

    def noisy(maps: np.ndarray, scale: float = 0.02) -> np.ndarray:
        return (maps + scale * rng.standard_normal(maps.shape, dtype=np.float32)).astype(np.float32)

    # --- Gaussian heatmaps: MSRA, DARK (unbiased), UDP
    variants = {
        "msra": (ref.ref_msra, lambda m: ref.ref_msra_decode(m, INPUT)),
        "dark": (ref.ref_dark_encode, lambda m: ref.ref_dark_decode(m, INPUT, kernel=11)),
        "udp": (ref.ref_udp_encode, lambda m: ref.ref_udp_decode(m, INPUT, kernel=11)),
    }
    for variant, (ref_enc, ref_dec) in variants.items():
        codec = GaussianHeatmap(INPUT, HEATMAP, SIGMA, variant=variant)
        target = ref_enc(kp, vis, INPUT, HEATMAP, SIGMA)[0]
        maps = noisy(target)
        maps_t = torch.from_numpy(maps)
        # Compared where a target peak is on the map: on pure-noise maps (invisible or
        # off-map keypoints) DARK's Newton step is ill-conditioned and float32 results
        # drift apart (tests/test_codec_references.py); such maps are timed, not compared.
        ok = (target.max(axis=(-1, -2)) >= 0.3) & (maps.max(axis=(-1, -2)) > 0)
        add(
            f"heatmap-{variant}",
            "encode",
            lambda ref_enc=ref_enc: ref_enc(kp, vis, INPUT, HEATMAP, SIGMA),
            lambda codec=codec: (lambda e: (e["heatmaps"], e["weights"]))(
                codec.encode(kp_t, vis_t)),
        )
        add(f"heatmap-{variant}", "decode", lambda ref_dec=ref_dec, maps=maps: ref_dec(maps),
            lambda codec=codec, maps_t=maps_t: codec.decode(maps_t), mask=ok)

    # --- integral regression
    integral = IntegralHeatmap(INPUT, HEATMAP, SIGMA)
    logits = (10.0 * ref.ref_msra(kp, vis, INPUT, HEATMAP, SIGMA)[0]).astype(np.float32)
    logits = noisy(logits, 0.5)
    logits_t = torch.from_numpy(logits)
    add("integral", "encode", lambda: ref.ref_integral_encode(kp, vis, INPUT, HEATMAP, SIGMA),
        lambda: (lambda e: (e["heatmaps"], e["keypoint_labels"], e["weights"]))(
            integral.encode(kp_t, vis_t)))
    add("integral", "decode", lambda: ref.ref_integral_decode(logits, INPUT),
        lambda: integral.decode(logits_t))

    # --- coordinate regression
    regression = CoordinateRegression(INPUT)
    labels = (kp / np.array(INPUT, np.float32)).astype(np.float32)
    labels_t = torch.from_numpy(labels)
    add("regression", "encode", lambda: ref.ref_regression_encode(kp, vis, INPUT),
        lambda: (lambda e: (e["keypoint_labels"], e["weights"]))(regression.encode(kp_t, vis_t)))
    add("regression", "decode", lambda: ref.ref_regression_decode(labels, INPUT),
        lambda: regression.decode(labels_t))

    # --- SimCC / SimDR
    simcc = [
        (
            "simdr-onehot",  # official SimDR: smoothed one-hot, softmax decode, max confidence
            SimDR(INPUT, SPLIT, sigma=0.0, label_smoothing=SMOOTHING),
            lambda: ref.ref_simdr_onehot(kp, vis, INPUT, SPLIT, SMOOTHING),
            lambda x, y: ref.ref_simdr_decode(x, y, SPLIT, confidence="max"),
        ),
        (
            "sa-simdr",  # official SA-SimDR: float-centred Gaussian, softmax, min confidence
            SimDR(INPUT, SPLIT, sigma=SIMCC_SIGMA, center="float"),
            lambda: ref.ref_sa_simdr(kp, vis, INPUT, SPLIT, SIMCC_SIGMA),
            lambda x, y: ref.ref_simdr_decode(x, y, SPLIT, confidence="min"),
        ),
        (
            "simcc-mmpose",  # mmpose SimCCLabel: rounded centre, raw-vector decode
            SimDR(INPUT, SPLIT, sigma=SIMCC_SIGMA, center="round", confidence="min",
                  decode_softmax=False),
            lambda: ref.ref_simcc_gaussian(kp, vis, INPUT, SPLIT, SIMCC_SIGMA),
            lambda x, y: ref.ref_simcc_decode(x, y, SPLIT),
        ),
    ]
    for name, codec, ref_enc, ref_dec in simcc:
        xl, yl, _ = ref_enc()
        gain = 10.0 / float(xl.max())
        x = (gain * xl + rng.standard_normal(xl.shape, dtype=np.float32)).astype(np.float32)
        y = (gain * yl + rng.standard_normal(yl.shape, dtype=np.float32)).astype(np.float32)
        x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
        add(name, "encode", ref_enc,
            lambda codec=codec: (lambda e: (e["x_labels"], e["y_labels"], e["weights"]))(
                codec.encode(kp_t, vis_t)))
        add(name, "decode", lambda ref_dec=ref_dec, x=x, y=y: ref_dec(x, y),
            lambda codec=codec, x_t=x_t, y_t=y_t: codec.decode(x_t, y_t))
    return out


def run(repeats: int = 9, threads: int = 1, log=print) -> dict:
    """Compare every (codec, op) pair, time both sides, and sum encode + decode per codec.

    Sets ``torch`` and OpenCV to ``threads`` threads for the measurement and restores the
    previous counts. Returns ``config``, ``rows`` (one per codec and op) and ``summary``
    (one per codec, with ``meets_target``); ``log`` receives the per-row lines as they come.
    """
    before = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    try:
        kp, vis = batch()
        config = dict(N=N, K=K, input_size=INPUT, heatmap_size=HEATMAP, sigma=SIGMA, split_ratio=SPLIT,
                      simcc_sigma=SIMCC_SIGMA, label_smoothing=SMOOTHING, repeats=repeats,
                      torch_threads=torch.get_num_threads(), cv2_threads=cv2.getNumThreads(),
                      torch=torch.__version__, numpy=np.__version__, opencv=cv2.__version__, cpus=os.cpu_count())
        rows = []
        with torch.inference_mode():
            for case in cases(kp, vis):
                diff = max_diff(case["torch"](), case["numpy"](), case["mask"])
                t_np, m_np = timeit(case["numpy"], repeats)
                t_lc, m_lc = timeit(case["torch"], repeats)
                row = dict(codec=case["codec"], op=case["op"], numpy_ms=1e3 * t_np,
                           labcore_ms=1e3 * t_lc, numpy_median_ms=1e3 * m_np,
                           labcore_median_ms=1e3 * m_lc, speedup=t_np / t_lc,
                           speedup_median=m_np / m_lc, max_abs_diff=diff)
                rows.append(row)
                log(row)
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])
    summary = []
    for codec in dict.fromkeys(r["codec"] for r in rows):
        rs = [r for r in rows if r["codec"] == codec]
        t_np = sum(r["numpy_ms"] for r in rs)
        t_lc = sum(r["labcore_ms"] for r in rs)
        m_np = sum(r["numpy_median_ms"] for r in rs)
        m_lc = sum(r["labcore_median_ms"] for r in rs)
        summary.append(dict(codec=codec, numpy_ms=t_np, labcore_ms=t_lc, speedup=t_np / t_lc,
                            speedup_median=m_np / m_lc, meets_target=t_np / t_lc >= TARGET,
                            keypoints_per_s=N * K / (1e-3 * t_lc)))
    return dict(config=config, target=TARGET, rows=rows, summary=summary)


def section(quick: bool = False, threads: int = 1) -> Section:
    """The report section: :func:`run` as two tables (per codec, per op)."""
    result = run(3 if quick else 9, threads, log=lambda row: None)
    c = result["config"]
    about = (f"Keypoint codecs, labcore's batched torch code against the per-keypoint numpy references "
             f"(`tests/reference_codecs.py`, the published algorithms as mmpose / the official code write "
             f"them). One batch of N={N} crops × K={K} keypoints, input {INPUT[1]}×{INPUT[0]}, heatmaps "
             f"{HEATMAP[1]}×{HEATMAP[0]}, σ={SIGMA:g}; SimCC k={SPLIT:g}. Each op: one warm-up call, then the best "
             f"(and median) of {c['repeats']} calls, {c['torch_threads']} torch / {c['cv2_threads']} OpenCV "
             f"thread(s), CPU. Target: encode + decode ≥ {TARGET:g}× faster than numpy (best times).")
    summary = Table("encode + decode per codec", [
        ("codec", "codec", ""), ("numpy_ms", "numpy ms", ".2f"), ("labcore_ms", "labcore ms", ".3f"),
        ("keypoints_per_s", "labcore keypoints/s", ",.0f"), ("speedup", "speed-up", ".1f"),
        ("speedup_median", "speed-up (medians)", ".1f"), ("meets_target", f"≥ {TARGET:g}×", "")],
        result["summary"])
    per_op = Table("per op", [
        ("codec", "codec", ""), ("op", "op", ""), ("numpy_ms", "numpy ms", ".2f"), ("labcore_ms", "labcore ms", ".3f"),
        ("speedup", "speed-up", ".1f"), ("speedup_median", "speed-up (medians)", ".1f"),
        ("max_abs_diff", "max abs diff", ".1e")], result["rows"])
    return Section("codecs", "Codec throughput", about, [summary, per_op],
                   settings={k: c[k] for k in ("repeats", "torch_threads", "cv2_threads")})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads (default 1)")
    ap.add_argument("--repeats", type=int, default=0, help="timed calls per measurement")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    if args.threads < 1:
        ap.error("--threads: expected >= 1")
    repeats = args.repeats or (3 if args.quick else 9)

    print(
        f"N={N} crops x K={K} keypoints, input {INPUT[1]}x{INPUT[0]}, heatmaps "
        f"{HEATMAP[1]}x{HEATMAP[0]}, sigma={SIGMA}; SimCC k={SPLIT:g}, sigma={SIMCC_SIGMA:g} "
        f"bins / one-hot eps={SMOOTHING}"
    )
    print(
        f"torch {torch.__version__}, numpy {np.__version__}, opencv {cv2.__version__}; "
        f"torch threads {args.threads}, cv2 threads {args.threads}; "
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}); "
        f"best / median of {repeats} after a warm-up"
    )
    print()
    head = (
        f"{'codec':<15} {'op':<7} {'numpy ms':>9} {'labcore ms':>10} {'speed-up':>9} "
        f"{'(median)':>9} {'max |diff|':>10}"
    )
    print(head)
    print("-" * len(head))

    def log(row: dict) -> None:
        print(
            f"{row['codec']:<15} {row['op']:<7} {row['numpy_ms']:>9.2f} "
            f"{row['labcore_ms']:>10.3f} {row['speedup']:>8.1f}x "
            f"{row['speedup_median']:>8.1f}x {row['max_abs_diff']:>10.1e}", flush=True
        )

    result = run(repeats, args.threads, log)
    print()
    print(f"encode + decode per codec (best times; target >= {TARGET:g}x)")
    head = (
        f"{'codec':<15} {'numpy ms':>9} {'labcore ms':>10} {'speed-up':>9} {'(median)':>9}"
        "  target"
    )
    print(head)
    print("-" * len(head))
    for s in result["summary"]:
        print(
            f"{s['codec']:<15} {s['numpy_ms']:>9.2f} {s['labcore_ms']:>10.3f} {s['speedup']:>8.1f}x "
            f"{s['speedup_median']:>8.1f}x  {'pass' if s['meets_target'] else 'FAIL'}"
        )
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
