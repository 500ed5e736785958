"""``update(...)`` latency of every explorer in ``labcore.viz`` (the notebooks' widgets).

Every class of the ``labcore.viz`` modules with an ``update`` method — the subclasses of
:class:`labcore.viz.widgets.Explorer`, and widgets such as notebook 08's ``PlaygroundLab``
— is built with ci-sized data (``LABCORE_PROFILE=ci``) the way the notebooks build it. The
explorers draw plotly ``FigureWidget`` objects, so an update outside a browser still validates
and serialises the figure for the front end: that cost is part of what is measured.

Timed: ``explorer.update(**values)`` for a list of non-default values per explorer (the
notebooks' own calls first, then other knobs; consecutive calls change something), after
one untimed warm-up update; the list is gone through ``rounds`` times (3, ``--quick`` 1).
Reported: the construction time (data, first figure), the median and the largest update
time, the median process CPU time of an update, and the slowest call. Target: the median
update under 100 ms (what a slider move feels like; the max shows the worst knob).
An explorer class without a case here is listed as such, so none is missed.

    python benchmarks/bench_widgets.py [--quick] [--only CLASS ...] [--threads N]
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import Section, Table  # noqa: E402

warnings.filterwarnings("ignore", message="labcore: using the toy body")

TARGET_MS = 100.0


def posh_explorer(cls: type | None = None) -> Any:
    """Notebook 06's explorer on ci-sized data: 8 lab crops of the HEMlets experiment, their
    SMPL targets, and a PoSh regressor (6-D, IEF × 3) at the ``ci`` width, untrained (its
    bodies are the mean and near it; the figure's size and cost are the same)."""
    from labcore.body import load_body_model
    from labcore.experiments import hemlets as hx
    from labcore.experiments import posh as px
    from labcore.methods import posh as ps
    from labcore.viz import posh as pv

    cfg = px.config("ci")
    n = 8
    body = load_body_model("auto")
    crops = hx.j18_crops(n, cfg["data_seed"] + 1, "lab", cfg, progress=False)
    a = hx.person_crops(n, cfg["data_seed"] + 1, "lab", cfg, progress=False)
    t = ps.posh_targets(body, a["global_orient"], a["body_pose"], a["betas"])
    reg = ps.PoshRegressor(num_joints=18, hidden=cfg["hidden"], iterations=3)
    reg.set_mean(ps.mean_rotation(t["rotmats"]), t["betas"].mean(0))
    roots = crops.joints3d[:, 0] / 1000.0
    cls = cls or pv.PoshExplorer
    return cls(reg, body, t["joints"], None, crops.images, crops.K, roots, t["joints"])


def _cases() -> dict[str, tuple[Callable[[], Any], list[dict[str, Any]] | None]]:
    """class name → (builder, update values); ``None`` values: the builder returns
    ``(widget, values)``."""
    from labcore.viz import bottomup, events, hemlets, jigsaw, localisation, widgets

    return {
        "BodyExplorer": (widgets.BodyExplorer, [
            dict(beta_0=2.0, beta_1=1.5, L_elbow_flex=90.0, R_shoulder_elev=150.0, L_knee_flex=60.0, skeleton="j18"),
            dict(beta_0=-1.0, skeleton="coco17"), dict(R_elbow_flex=45.0, L_hip_flex=45.0),
            dict(beta_3=1.5, skeleton="smpl24"), dict(spine_flex=20.0, skeleton="none")]),
        "SceneExplorer": (widgets.SceneExplorer, [
            dict(seed=7, family="reaching", background="photo"), dict(seed=3, family="sitting", size=64),
            dict(background="plain", size=96), dict(seed=11, family="any", background="procedural", size=128)]),
        "FramesExplorer": (widgets.FramesExplorer, [
            dict(joint="nose", stride=8, sigma=1.0), dict(stride=2, padding=1.5), dict(seed=3, joint="left_ankle"),
            dict(stride=4, sigma=3.0)]),
        "HeatmapExplorer": (localisation.HeatmapExplorer, [
            dict(stride=8, sigma=1.0, dx=1.5, joint="right_knee"), dict(variant="dark", stride=4),
            dict(variant="udp", refine=False, dy=-2.0), dict(seed=5, sigma=3.0, variant="msra", refine=True)]),
        "SimDRExplorer": (localisation.SimDRExplorer, [
            dict(split_ratio=3.0, sigma=2.0, dx=0.4, joint="right_knee"), dict(sigma=0.0, label_smoothing=0.3),
            dict(center="round", sigma=4.0), dict(seed=2, split_ratio=1.0, center="float")]),
        "SAHRExplorer": (bottomup.SAHRExplorer, [
            dict(alpha=-0.5, sigma0=3.0), dict(view="2-D maps", alpha=0.2, sigma0=2.0), dict(alpha=1.0),
            dict(view="1-D profile", sigma0=1.5)]),
        "WAHRExplorer": (bottomup.WAHRExplorer, [
            dict(prediction="half-trained", gamma=0.1, noise=0.1), dict(prediction="good", gamma=0.5),
            dict(gamma=0.001, noise=0.2), dict(prediction="early (all ≈ 0)", gamma=0.01)]),
        "JigsawExplorer": (jigsaw.JigsawExplorer, [
            dict(n=4, permutation=7, label="current", image="astronaut", sigma=1.5, gap=4, jitter=False),
            dict(n=3, permutation=0), dict(permutation=3, label="origin", image="synthetic", gap=2, sigma=1.0,
                                           jitter=True), dict(n=5, permutation=12)]),
        "TripletExplorer": (hemlets.TripletExplorer, [
            dict(part=9, threshold=50.0, sigma=1.5, pose=4), dict(part=1, threshold=100.0, sigma=2.0, pose=2),
            dict(threshold=200.0), dict(pose=7, part=5)]),
        "VolumeExplorer": (hemlets.VolumeExplorer, [
            dict(depth_bins=8, beta=4.0, spread=0.7, joint="left_wrist"),
            dict(depth_bins=16, beta=1.0, spread=1.0, slice=7), dict(joint="right_ankle", pose=3, slice=-1),
            dict(depth_bins=32, beta=0.3)]),
        "PoshExplorer": (posh_explorer, [
            dict(index=3, step=0), dict(step=3, alpha=0.6), dict(index=5), dict(step=1), dict(alpha=0.3),
            dict(index=1, step=2)]),
        "PlaygroundLab": (playground_lab, None),
        "EventExplorer": (events.EventExplorer, [
            dict(threshold=0.4), dict(threshold=0.2, refractory_ms=40.0), dict(refractory_ms=0.0, noise_hz=10.0),
            dict(noise_hz=0.0, interval=4), dict(sigma_thres=0.05, interval=6)]),
    }


def playground_lab() -> tuple[Any, list[dict[str, Any]]]:
    """Notebook 08's ``PlaygroundLab`` (its ``update`` sets the knobs of the next training
    run; it draws no figure)."""
    from labcore.experiments import playground as pg
    from labcore.viz.playground import PlaygroundLab

    return PlaygroundLab("ci"), [
        dict(sigma=1.5, split_ratio=3.0), dict(heads=tuple(pg.HEADS), sizes=(32, 64), sigma=1.0, split_ratio=2.0),
        dict(steps=50, lr=1e-2), dict(backbone=list(pg.BACKBONES)[-1], label_smoothing=0.2),
        dict(heads=tuple(pg.HEADS)[:1], sizes=(64,), backbone=list(pg.BACKBONES)[0])]


def explorer_classes() -> dict[str, str]:
    """Every class of the ``labcore.viz`` modules with an ``update`` method (the
    :class:`~labcore.viz.widgets.Explorer` subclasses and any other widget), name → module;
    a module that does not import is listed as ``'<module>: import failed (...)'``."""
    import inspect

    import labcore.viz

    found: dict[str, str] = {}
    for m in pkgutil.iter_modules(labcore.viz.__path__):
        name = f"labcore.viz.{m.name}"
        try:
            module = importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 - reported as a row
            found[name] = f"import failed: {type(err).__name__}: {err}"
            continue
        for cname, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name and callable(getattr(cls, "update", None)) and cname != "Explorer":
                found[cname] = name
    return found


def time_explorer(build: Callable[[], Any], values: list[dict[str, Any]] | None, rounds: int) -> dict[str, Any]:
    """Build one explorer and time its updates (see the module docstring)."""
    t0 = time.perf_counter()
    ex = build()
    construct = time.perf_counter() - t0
    if values is None:
        ex, values = ex
    ex.update(**values[0])  # warm-up: the first update pays one-time costs (caches, validators)
    walls, cpus, calls = [], [], []
    for _ in range(rounds):
        for kw in values[1:] + values[:1]:
            c0, w0 = time.process_time(), time.perf_counter()
            ex.update(**kw)
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
            calls.append(kw)
    slowest = max(range(len(walls)), key=walls.__getitem__)
    median = statistics.median(walls)
    cpu_at_median = statistics.median(cpus)
    return {"module": type(ex).__module__.removeprefix("labcore."), "construct_ms": 1e3 * construct,
            "updates": len(walls), "median_ms": 1e3 * median, "max_ms": 1e3 * walls[slowest],
            "cpu_ms": 1e3 * cpu_at_median, "slowest": ", ".join(f"{k}={v!r}" for k, v in calls[slowest].items()),
            "meets_target": 1e3 * median < TARGET_MS}


def run(names: list[str] | None = None, quick: bool = False,
        log: Callable[[dict], None] = lambda row: None) -> list[dict[str, Any]]:
    """One row per explorer class (all of ``labcore.viz``, or ``names``), in ``ci`` profile."""
    old = os.environ.get("LABCORE_PROFILE")
    os.environ["LABCORE_PROFILE"] = "ci"
    try:
        cases = _cases()
        classes = explorer_classes()
        rows = []
        for name in names or list(dict.fromkeys([*cases, *sorted(classes)])):
            row: dict[str, Any] = {"explorer": name}
            if name not in cases:
                where = classes.get(name, "")
                row["error"] = (where if where.startswith("import failed") else
                                "no benchmark case: add one to benchmarks/bench_widgets.py")
            else:
                try:
                    row |= time_explorer(*cases[name], rounds=1 if quick else 3)
                except Exception as err:  # noqa: BLE001 - reported in the table
                    row["error"] = f"{type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]}"
                    traceback.print_exc()
            rows.append(row)
            log(row)
        return rows
    finally:
        if old is None:
            os.environ.pop("LABCORE_PROFILE", None)
        else:
            os.environ["LABCORE_PROFILE"] = old


def describe(r: dict[str, Any]) -> str:
    """One line for a row (progress output)."""
    if "error" in r:
        return f"{r['explorer']:<16} ERROR {r['error']}"
    return (f"{r['explorer']:<16} build {r['construct_ms']:7.0f} ms · update median {r['median_ms']:6.1f} ms, "
            f"max {r['max_ms']:6.1f} ms, CPU {r['cpu_ms']:6.1f} ms · {'pass' if r['meets_target'] else 'FAIL'} · "
            f"slowest: {r['slowest']}")


COLUMNS = [("explorer", "explorer", ""), ("module", "module", ""), ("construct_ms", "build + first draw ms", ".0f"),
           ("updates", "updates", "d"), ("median_ms", "median ms", ".1f"), ("max_ms", "max ms", ".1f"),
           ("cpu_ms", "CPU ms (median)", ".1f"), ("meets_target", f"median < {TARGET_MS:g} ms", ""),
           ("slowest", "slowest update", ""), ("error", "error", "")]


def section(quick: bool = False, names: list[str] | None = None,
            log: Callable[[dict], None] = lambda row: None) -> Section:
    """The report section: :func:`run` as one table (``log`` gets each row as it comes)."""
    import torch

    rows = run(names, quick, log)
    rounds = 1 if quick else 3
    about = (f"`update(...)` of every class with an `update` method in `labcore.viz` (the `Explorer` subclasses, "
             f"`PlaygroundLab`), built on ci-sized data "
             f"(`LABCORE_PROFILE=ci`) as the notebooks build them. Each explorer: one untimed warm-up update, "
             f"then its list of non-default values {rounds}× (consecutive calls change something); wall time "
             f"of each `update` call, which includes validating and serialising the plotly FigureWidget for the "
             f"front end (no browser attached). CPU ms: the median process CPU time of a call (all threads). "
             f"Target: median < {TARGET_MS:g} ms.")
    return Section("widgets", "Widget update latency", about, [Table("", COLUMNS, rows)],
                   settings={"rounds": rounds, "torch_threads": torch.get_num_threads()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one round of updates (default 3)")
    ap.add_argument("--only", nargs="+", metavar="CLASS", help="explorer class names")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own choice)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    run(args.only, args.quick, lambda r: print(describe(r), flush=True))


if __name__ == "__main__":
    main()
