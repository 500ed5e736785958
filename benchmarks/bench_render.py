"""Speed of labcore's rasteriser (labcore.body.render) on a body-sized mesh.

The mesh is a stand-in for the SMPL body: six closed ellipsoids (torso, head, two arms, two
legs) with 6900 vertices and 13776 triangles, 1.7 m tall, 3-5 m from the camera, turned
about the vertical axis at random. Each image is a person crop: the focal length is chosen
so the person fills about 90 % of the crop height, as in the data pipeline.

Timed: rasterize + interpolate part colours + shade_lambert (what one rendered crop
costs), best of a few repeats after a warm-up. Targets (2 CPU cores): a batch of 64 crops at
64x64 in <= 0.4 s, one 256x256 image in <= 60 ms.

    python benchmarks/bench_render.py [--quick] [--threads N]

:func:`run` returns the rows (``benchmarks/run_all.py`` reports them in its render section).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import Section, Table, measure  # noqa: E402

from labcore.body.render import interpolate, rasterize, shade_lambert  # noqa: E402

#: (size, batch) → the most seconds one batch may take (targets on 2 CPU cores).
TARGETS = {(64, 64): 0.4, (256, 1): 0.060}
QUICK_CASES = [(64, 64), (256, 1)]
FULL_CASES = [(64, 1), (64, 64), (128, 16), (256, 1), (256, 8), (512, 1)]


def ellipsoid(center, radii, n_lat: int, n_lon: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A closed UV ellipsoid: ``(n_lat - 1) * n_lon + 2`` vertices, ``2 * n_lon * (n_lat - 1)``
    faces, outward normals by the right-hand rule."""
    th = torch.linspace(0, math.pi, n_lat + 1, dtype=torch.float64)[1:-1]
    ph = torch.linspace(0, 2 * math.pi, n_lon + 1, dtype=torch.float64)[:-1]
    t, p = torch.meshgrid(th, ph, indexing="ij")
    ring = torch.stack([t.sin() * p.cos(), t.cos(), t.sin() * p.sin()], -1).reshape(-1, 3)
    v = torch.cat(
        [
            torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64),
            ring,
            torch.tensor([[0.0, -1.0, 0.0]], dtype=torch.float64),
        ]
    )
    v = v * torch.tensor(radii, dtype=torch.float64) + torch.tensor(center, dtype=torch.float64)
    faces = []
    top, bot = 0, v.shape[0] - 1

    def idx(i, j):
        return 1 + i * n_lon + (j % n_lon)

    for j in range(n_lon):
        faces.append((top, idx(0, j + 1), idx(0, j)))
        faces.append((bot, idx(n_lat - 2, j), idx(n_lat - 2, j + 1)))
    for i in range(n_lat - 2):
        for j in range(n_lon):
            a, b, c, d = idx(i, j), idx(i, j + 1), idx(i + 1, j), idx(i + 1, j + 1)
            faces.append((a, b, d))
            faces.append((a, d, c))
    return v.float(), torch.tensor(faces, dtype=torch.int64)


def toy_person() -> tuple[torch.Tensor, torch.Tensor]:
    """Six ellipsoids, y up in body coordinates (metres), 1.7 m tall, centred at the hip."""
    parts = [
        ((0.0, 0.30, 0.0), (0.17, 0.32, 0.11)),  # torso
        ((0.0, 0.74, 0.0), (0.10, 0.12, 0.11)),  # head
        ((-0.27, 0.30, 0.0), (0.05, 0.33, 0.05)),  # arms
        ((0.27, 0.30, 0.0), (0.05, 0.33, 0.05)),
        ((-0.09, -0.42, 0.0), (0.07, 0.44, 0.07)),  # legs
        ((0.09, -0.42, 0.0), (0.07, 0.44, 0.07)),
    ]
    vs, fs, off = [], [], 0
    for c, r in parts:
        v, f = ellipsoid(c, r, n_lat=29, n_lon=41)
        vs.append(v)
        fs.append(f + off)
        off += v.shape[0]
    return torch.cat(vs), torch.cat(fs)


def scene(batch: int, size: int, seed: int = 0):
    """``batch`` posed copies in camera coordinates and per-crop intrinsics."""
    g = torch.Generator().manual_seed(seed)
    v, f = toy_person()
    ang = torch.rand(batch, generator=g) * 2 * math.pi
    dist = 3.0 + 2.0 * torch.rand(batch, generator=g)
    c, s = ang.cos(), ang.sin()
    R = torch.zeros(batch, 3, 3)  # turn about the body's vertical axis
    R[:, 0, 0], R[:, 0, 2], R[:, 2, 0], R[:, 2, 2], R[:, 1, 1] = c, s, -s, c, 1.0
    flip = torch.tensor([1.0, -1.0, -1.0])  # body (y up) -> camera (y down, z forward)
    verts = (v[None] @ R.transpose(1, 2)) * flip
    verts = verts + torch.stack([torch.zeros(batch), torch.full((batch,), 0.06), dist], -1)[:, None]
    fpx = 0.9 * size * dist / 1.7  # person fills ~90 % of the crop height
    K = torch.zeros(batch, 3, 3)
    K[:, 0, 0] = fpx
    K[:, 1, 1] = fpx
    K[:, 0, 2] = (size - 1) / 2
    K[:, 1, 2] = (size - 1) / 2
    K[:, 2, 2] = 1.0
    return verts, f, K


def render(verts, faces, K, size, colors):
    frag = rasterize(verts, faces, K, (size, size))
    albedo = interpolate(frag, faces, colors)
    return shade_lambert(frag, faces, verts, albedo.clamp(0, 1), light_dir=(0.3, -0.5, -1.0)), frag


def bench(size: int, batch: int, repeats: int) -> tuple[float, float, float]:
    """Best seconds of one render (rasterise + colours + shading) of ``batch`` crops of
    ``size``², best seconds of the rasterisation alone, and the mean mesh coverage."""
    verts, faces, K = scene(batch, size)
    colors = torch.rand(verts.shape[1], 3, generator=torch.Generator().manual_seed(1))
    t = measure(lambda: render(verts, faces, K, size, colors), repeats)
    t_r = measure(lambda: rasterize(verts, faces, K, (size, size)), repeats, warmup=0)
    _, frag = render(verts, faces, K, size, colors)
    return t.best, t_r.best, float(frag.mask.float().mean())


def run(cases: list[tuple[int, int]], repeats: int) -> list[dict]:
    """One row per ``(size, batch)`` case: ms per batch and per image, images/s, the
    rasterisation alone, coverage, and the target where there is one."""
    rows = []
    for size, batch in cases:
        t, t_r, cov = bench(size, batch, repeats)
        limit = TARGETS.get((size, batch))
        rows.append({"resolution": f"{size}×{size}", "batch": batch, "batch_ms": 1e3 * t,
                     "ms_per_image": 1e3 * t / batch, "images_per_s": batch / t, "raster_ms": 1e3 * t_r,
                     "coverage": cov, "target_ms": None if limit is None else 1e3 * limit,
                     "meets_target": None if limit is None else t <= limit})
    return rows


def section(quick: bool = False) -> Section:
    """The report's render section: the rasteriser (:func:`run`) and the synthetic world
    (``bench_world.run``: crops/s, scenes/s, clip frames/s, body forward)."""
    import bench_world

    repeats = 2 if quick else 5
    v, f = toy_person()
    raster = Table(f"rasteriser: rasterize + part colours + Lambert shading of a {v.shape[0]}-vertex, "
                   f"{f.shape[0]}-face person (best of {repeats} after a warm-up)", [
        ("resolution", "resolution", ""), ("batch", "batch", "d"), ("batch_ms", "batch ms", ".1f"),
        ("ms_per_image", "ms / image", ".2f"), ("images_per_s", "images / s", ".1f"),
        ("raster_ms", "rasterize only ms", ".1f"), ("coverage", "coverage", ".2f"),
        ("target_ms", "target ms", ".0f"), ("meets_target", "target", "")],
        run(QUICK_CASES if quick else FULL_CASES, repeats))
    world = Table(f"synthetic world (median of {3 if quick else 10} after a warm-up; data generation without "
                  f"the disk cache)", [
        ("what", "what", ""), ("rate", "rate", ",.1f"), ("unit", "unit", ""), ("per_item_ms", "ms / item", ".2f"),
        ("call_ms", "ms / call", ".1f"), ("target", "target", ""), ("meets_target", "pass", "")],
        bench_world.run(quick))
    about = ("The rasteriser of `labcore.body.render` on a body-sized mesh (`bench_render.py`; targets on 2 CPU "
             "cores: 64 crops of 64×64 ≤ 0.4 s, one 256×256 image ≤ 60 ms) and the synthetic world "
             "(`bench_world.py`: body forward, person crops, crowd scenes, motion clips with flow; targets: "
             "≥ 50 crops/s of 64×64, body forward at batch 64 < 150 ms). CPU, torch's thread count.")
    return Section("render", "Render and data-generation rate", about, [raster, world],
                   settings={"repeats": repeats, "torch_threads": torch.get_num_threads()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats and cases")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else 5
    cases = QUICK_CASES if args.quick else FULL_CASES
    v, f = toy_person()
    print(
        f"toy person: {v.shape[0]} vertices, {f.shape[0]} faces; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"{'resolution':>10} {'batch':>6} {'batch ms':>9} {'ms/image':>9} {'images/s':>9} "
        f"{'raster ms':>9} {'coverage':>8}  target"
    )
    for r in run(cases, repeats):
        verdict = "" if r["meets_target"] is None else ("pass" if r["meets_target"] else "FAIL")
        print(
            f"{r['resolution']:>10} {r['batch']:>6} {r['batch_ms']:>9.1f} {r['ms_per_image']:>9.2f} "
            f"{r['images_per_s']:>9.1f} {r['raster_ms']:>9.1f} {r['coverage']:>8.2f}  {verdict}", flush=True
        )


if __name__ == "__main__":
    main()
