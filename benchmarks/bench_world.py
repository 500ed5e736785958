"""Speed of the synthetic world: body model, data generation, dataset loading.

Timed (median of repeats after one warm-up call; the machine should be otherwise idle):
the toy body's forward pass (smplx) at batch 1 and 64, ``load_body_model('toy')`` (a cached
build), person crops of 64×64 (supersample 1 and 2) and 128×128, a crowd scene of 256×192
with 2–6 people, and a 16-frame 96×96 motion clip with its optical flow. Data generation
is timed without the disk cache (the functions of :mod:`labcore.data.scenes` directly).

Targets (issue #2): at least 50 person crops of 64×64 per second on 2 CPU cores, and the
toy body forward at batch 64 under 150 ms.

    python benchmarks/bench_world.py            # full
    python benchmarks/bench_world.py --quick    # fewer repeats, 16 crops instead of 256 / 64

Prints a Markdown table and writes it to ``build/bench_world.md``; :func:`run` returns the
rows (``benchmarks/run_all.py`` reports them in its render section).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import atomic_write_text, measure  # noqa: E402

warnings.filterwarnings("ignore", message="labcore: using the toy body")

#: the targets: crops per second (64×64, supersample 2) and ms of the body forward at batch 64
CROPS_PER_S = 50.0
BODY_MS = 150.0


def timed(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after one warm-up."""
    return measure(fn, repeats).median


def _row(what: str, items: int, sec: float, unit: str, target: str = "", ok: bool | None = None) -> dict:
    """``items`` made in ``sec`` seconds by one call."""
    return {"what": what, "rate": items / sec, "unit": unit, "per_item_ms": 1e3 * sec / items, "call_ms": 1e3 * sec,
            "target": target or None, "meets_target": ok}


def run(quick: bool = False) -> list[dict]:
    """One row per measurement: ``what``, ``rate`` (``unit``), ``per_item_ms``, ``call_ms``
    (one timed call), and the ``target`` with ``meets_target`` where there is one."""
    from labcore.body import load_body_model, pose_body
    from labcore.data import scenes
    from labcore.data.poses import sample_poses

    reps = 3 if quick else 10
    rows = []
    model = load_body_model("toy")
    for batch in (1, 64):
        poses = sample_poses(batch, seed=0)["body_pose"]
        betas = torch.randn(batch, 10)
        sec = timed(lambda p=poses, b=betas: pose_body(model, body_pose=p, betas=b), reps)
        big = batch == 64
        rows.append(_row(f"toy body forward (smplx), batch {batch}", batch, sec, "bodies/s",
                         f"batch < {BODY_MS:g} ms" if big else "", (1e3 * sec < BODY_MS) if big else None))
    sec = timed(lambda: load_body_model("toy"), max(1, reps // 3))
    rows.append(_row("load_body_model('toy') (cached build)", 1, sec, "loads/s"))

    n, m = (16, 16) if quick else (256, 64)
    gen = 1 if quick else 2  # data generation: fewer timed calls
    for ss in (1, 2):
        sec = timed(lambda s=ss: scenes.person_crops(n, seed=1, size=(64, 64), supersample=s), gen)
        main = ss == 2
        rows.append(_row(f"person crops 64×64, supersample {ss}, n={n}", n, sec, "crops/s",
                         f"≥ {CROPS_PER_S:g} crops/s" if main else "", (n / sec >= CROPS_PER_S) if main else None))
    sec = timed(lambda: scenes.person_crops(m, seed=1, size=(128, 128)), 1)
    rows.append(_row(f"person crops 128×128, supersample 2, n={m}", m, sec, "crops/s"))
    sec = timed(lambda: scenes.crowd_scene(3, size=(256, 192)), reps)
    rows.append(_row("crowd scene 256×192 (2–6 people)", 1, sec, "scenes/s"))
    sec = timed(lambda: scenes.motion_frames(1, n_frames=16, size=(96, 96)), max(1, reps // 2))
    rows.append(_row("motion clip 16 frames 96×96 with flow", 16, sec, "clip frames/s"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)

    from labcore.runtime import describe

    info = describe()
    rows = run(args.quick)
    header = (f"Synthetic-world benchmark · torch {info['torch']} · {info['device']} · "
              f"{info['threads']} threads")
    lines = [header, "", "| what | speed | per item | per call | target |", "|---|---|---|---|---|"]
    for r in rows:
        verdict = "" if r["meets_target"] is None else f"{r['target']}: {'pass' if r['meets_target'] else 'FAIL'}"
        lines.append(f"| {r['what']} | {r['rate']:.1f} {r['unit']} | {r['per_item_ms']:.2f} ms | "
                     f"{r['call_ms']:.1f} ms | {verdict} |")
    text = "\n".join(lines)
    print(text)
    atomic_write_text(Path("build") / "bench_world.md", text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
