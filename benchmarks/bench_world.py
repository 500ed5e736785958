"""Speed of the synthetic world: body model, data generation, dataset loading.

Targets (issue #2): at least 50 person crops of 64×64 per second on 2 CPU cores, and the
toy body forward at batch 64 under 150 ms.

    python benchmarks/bench_world.py            # full
    python benchmarks/bench_world.py --quick    # fewer repeats

Prints a Markdown table and writes it to ``build/bench_world.md``. Timings are the median of
repeats after a warm-up; the machine should be otherwise idle.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

warnings.filterwarnings("ignore", message="labcore: using the toy body")


def timed(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    reps = 3 if args.quick else 10

    from labcore.body import load_body_model, pose_body
    from labcore.data import scenes
    from labcore.data.poses import sample_poses
    from labcore.runtime import describe

    info = describe()
    rows: list[tuple[str, str, str]] = []
    model = load_body_model("toy")
    for batch in (1, 64):
        poses = sample_poses(batch, seed=0)["body_pose"]
        betas = torch.randn(batch, 10)
        sec = timed(lambda p=poses, b=betas: pose_body(model, body_pose=p, betas=b), reps)
        target = " (target < 150 ms)" if batch == 64 else ""
        rows.append((f"toy body forward (smplx), batch {batch}", f"{sec * 1e3:.1f} ms{target}",
                     f"{batch / sec:.0f} bodies/s"))
    sec = timed(lambda: load_body_model("toy"), max(1, reps // 3))
    rows.append(("load_body_model('toy') (cached build)", f"{sec * 1e3:.0f} ms", ""))

    n = 64 if args.quick else 256
    for ss in (1, 2):
        sec = timed(lambda s=ss: scenes.person_crops(n, seed=1, size=(64, 64), supersample=s), 1 if args.quick else 2)
        target = " (target ≥ 50/s)" if ss == 2 else ""
        rows.append((f"person crops 64×64, supersample {ss}, n={n}", f"{n / sec:.0f} crops/s{target}",
                     f"{sec / n * 1e3:.1f} ms/crop"))
    sec = timed(lambda: scenes.person_crops(64, seed=1, size=(128, 128)), 1)
    rows.append(("person crops 128×128, supersample 2, n=64", f"{64 / sec:.0f} crops/s", f"{sec / 64 * 1e3:.1f} ms/crop"))
    sec = timed(lambda: scenes.crowd_scene(3, size=(256, 192)), reps)
    rows.append(("crowd scene 256×192 (2–6 people)", f"{1 / sec:.1f} images/s", f"{sec * 1e3:.0f} ms/image"))
    sec = timed(lambda: scenes.motion_frames(1, n_frames=16, size=(96, 96)), max(1, reps // 2))
    rows.append(("motion clip 16 frames 96×96 with flow", f"{16 / sec:.0f} frames/s", f"{sec * 1e3:.0f} ms/clip"))

    header = (f"Synthetic-world benchmark · torch {info['torch']} · {info['device']} · "
              f"{info['threads']} threads")
    lines = [header, "", "| what | speed | per item |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    text = "\n".join(lines)
    print(text)
    out = Path("build")
    out.mkdir(exist_ok=True)
    (out / "bench_world.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
