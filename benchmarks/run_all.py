"""Measure everything labcore promises about speed and memory, and write one report.

    .venv/bin/python benchmarks/run_all.py [--quick] [--only SECTION ...] [--out results/benchmarks]

Sections (each also runs on its own: ``python benchmarks/bench_<name>.py``):

* ``codecs``    — keypoint codecs, batched torch vs the per-keypoint numpy references
  (``bench_codecs.py``; target ≥ 10× per codec);
* ``render``    — the rasteriser and the synthetic world: crops/s, scenes/s, clip frames/s,
  body forward (``bench_render.py``, ``bench_world.py``);
* ``train``     — one training step of every method's network at its ``cpu`` size: ms per
  step and samples/s, on CUDA with autocast when present (``bench_train.py``);
* ``widgets``   — ``update(...)`` latency of every explorer in ``labcore.viz`` (target
  < 100 ms; ``bench_widgets.py``);
* ``notebooks`` — every notebook headless in the ``ci`` profile with a fresh cache: wall time
  and the kernel's peak RSS (targets < 60 s, < 3 GB; ``bench_notebooks.py``).

The report (Markdown) is printed section by section as the sections finish, and written
with a JSON twin to ``<out>.md`` and ``<out>.json`` at the end (atomically: temporary file +
``os.replace``). ``--out`` defaults to ``results/benchmarks``, with ``-quick`` and the
section names appended for ``--quick`` and ``--only`` runs, so a partial run does not
replace a full report. A section that fails is reported with its error; the others still
run. ``--quick`` (repeats cut, one notebook) smoke-tests the whole script in a couple of
minutes; timings from it are not the measurements.

The data the ``train`` and ``widgets`` sections need are rendered once and cached in
``$LABCORE_CACHE`` (``--cache``; default the variable, else ``<repo>/.cache/labcore`` as the
test suite uses); the notebooks always start from an empty cache.

Timings depend on what else runs on the machine: the header records the load average and
the thread settings. On a machine shared with other work, the OpenMP threads of torch
spin while they wait for a descheduled sibling and small-tensor code (widgets, notebooks)
can take many times longer; ``OMP_WAIT_POLICY=PASSIVE python benchmarks/run_all.py``
avoids that (the header shows it), ``--threads 1`` too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import ROOT, Section, atomic_write_text, jsonable, machine, machine_markdown  # noqa: E402

SECTIONS = ("codecs", "render", "train", "widgets", "notebooks")
TITLES = {"codecs": "Codec throughput", "render": "Render and data-generation rate",
          "train": "Training-step throughput", "widgets": "Widget update latency",
          "notebooks": "Notebooks (ci profile)"}


def progress(describe):
    """A ``log`` for a section: each row as one line on stderr while the section runs (the
    report itself goes to stdout when the section is done)."""
    return lambda row: print("  · " + describe(row), file=sys.stderr, flush=True)


def run_section(name: str, args: argparse.Namespace) -> Section:
    """Import the section's script and run its ``section()``; a failure becomes a section
    that carries the error."""
    t0 = time.perf_counter()
    try:
        if name == "codecs":
            import bench_codecs

            sec = bench_codecs.section(args.quick)
        elif name == "render":
            import bench_render

            sec = bench_render.section(args.quick)
        elif name == "train":
            import bench_train

            sec = bench_train.section(args.quick, device=args.device, log=progress(bench_train.describe))
        elif name == "widgets":
            import bench_widgets

            sec = bench_widgets.section(args.quick, log=progress(bench_widgets.describe))
        else:
            import bench_notebooks

            sec = bench_notebooks.section(args.quick, log=progress(bench_notebooks.describe))
    except Exception as err:  # noqa: BLE001 - one broken section must not lose the others
        traceback.print_exc()
        sec = Section(name, TITLES[name], "(the section failed before it produced a table)",
                      error=f"{type(err).__name__}: {err}")
    sec.seconds = time.perf_counter() - t0
    return sec


def default_out(args: argparse.Namespace) -> Path:
    name = "benchmarks"
    if args.quick:
        name += "-quick"
    if args.only:
        name += "-" + "-".join(args.only)
    return ROOT / "results" / name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few repeats and only the first notebook (a smoke test)")
    ap.add_argument("--only", nargs="+", choices=SECTIONS, metavar="SECTION", help=f"some of {', '.join(SECTIONS)}")
    ap.add_argument("--out", type=Path, default=None,
                    help="report path without suffix (default results/benchmarks[-quick][-<sections>])")
    ap.add_argument("--cache", type=Path, default=None,
                    help="LABCORE_CACHE for the train and widgets data (default $LABCORE_CACHE, else .cache/labcore)")
    ap.add_argument("--device", default=None, help="device of the train section (default labcore.runtime.device())")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own choice)")
    args = ap.parse_args(argv)
    if args.threads < 0:
        ap.error("--threads: expected >= 0")
    out = args.out if args.out is not None else default_out(args)
    if out.suffix in (".md", ".json"):
        out = out.with_suffix("")
    md, js = out.parent / f"{out.name}.md", out.parent / f"{out.name}.json"
    cache = args.cache or Path(os.environ.get("LABCORE_CACHE") or ROOT / ".cache" / "labcore")
    os.environ["LABCORE_CACHE"] = str(cache.resolve())
    os.environ.setdefault("LABCORE_PROGRESS", "0")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    names = [s for s in SECTIONS if not args.only or s in args.only]
    info = machine()
    info |= {"quick": args.quick, "sections": names, "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])}
    head = ["# labcore benchmarks" + (" (quick: a smoke test, not the measurements)" if args.quick else ""), "",
            machine_markdown(info), f"- command: `python benchmarks/{info['command']}`", ""]
    print("\n".join(head), flush=True)
    t0 = time.perf_counter()
    sections = []
    for name in names:
        sec = run_section(name, args)
        sections.append(sec)
        print(sec.to_markdown() + "\n", flush=True)
    total = time.perf_counter() - t0
    failed = [s.name for s in sections if s.error]
    summary = f"_all sections: {total:.0f} s_" + (f" · **failed: {', '.join(failed)}**" if failed else "")
    print(summary + "\n", flush=True)
    text = "\n".join(head) + "\n" + "\n\n".join(s.to_markdown() for s in sections) + "\n\n" + summary + "\n"
    payload = {"machine": info, "seconds": total, "sections": [s.to_json() for s in sections]}
    atomic_write_text(js, json.dumps(jsonable(payload), indent=2) + "\n")
    atomic_write_text(md, text)
    print(f"wrote {md} and {js}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
