"""Wall time and peak memory of every notebook, run headless in the ``ci`` profile.

Each notebook runs in its own child process (this script with ``--child``), which
executes it with nbclient in a fresh ``python3`` kernel, as ``labcore run`` and nbmake do,
with ``LABCORE_PROFILE=ci``, ``LABCORE_PROGRESS=0`` and a fresh, empty ``LABCORE_CACHE``
(a temporary folder per notebook, removed afterwards): the notebook's data generation is
part of its time, as on a first run.

Timed: ``NotebookClient.execute()`` — kernel start, every cell, kernel shutdown (``wall``);
``cells`` is the sum of the cells' own execution times (nbclient's timestamps). Peak
memory: one extra cell appended to the (in-memory) notebook reads the kernel's
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` — the peak resident set of the kernel process
over its whole life, exact, no polling — and ``RUSAGE_CHILDREN`` for processes it started.

Targets (DESIGN.md §3, ci profile): each notebook < 60 s on 2 CPU cores and < 3 GB.

    python benchmarks/bench_notebooks.py [--quick] [NOTEBOOK ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import ROOT, Section, Table  # noqa: E402

TARGET_S = 60.0
TARGET_GB = 3.0
MARK = "LABCORE_BENCH_MAXRSS"
PROBE = (f"import resource\n"
         f"print('{MARK}', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
         f"resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def notebooks() -> list[Path]:
    """The notebooks, in order."""
    return sorted((ROOT / "notebooks").glob("*.ipynb"))


def _maxrss_bytes(kb: int) -> int:
    # Linux reports ru_maxrss in KiB, macOS in bytes.
    return kb if sys.platform == "darwin" else kb * 1024


def _cell_seconds(cell: Any) -> float:
    from datetime import datetime

    ex = cell.get("metadata", {}).get("execution", {})
    try:
        start = datetime.fromisoformat(ex["iopub.execute_input"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(ex["shell.execute_reply"].replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return 0.0
    return (end - start).total_seconds()


def child(path: Path, timeout: int) -> dict[str, Any]:
    """Run one notebook here (the child process) and return its measurements."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=True,
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    status, error = "ok", None
    t0 = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as err:
        status, error = "FAILED", str(err).strip().splitlines()[-1][:300]
    except Exception as err:  # noqa: BLE001 - a dead kernel, a timeout: reported, not raised
        status, error = "FAILED", f"{type(err).__name__}: {str(err).strip()[:300]}"
    wall = time.perf_counter() - t0
    rss_self = rss_children = None
    for out in nb.cells[-1].get("outputs", []):
        text = out.get("text", "")
        if MARK in text:
            _, a, b = text.split()[:3]
            rss_self, rss_children = _maxrss_bytes(int(a)), _maxrss_bytes(int(b))
    cells = sum(_cell_seconds(c) for c in nb.cells[:-1])
    return {"notebook": path.name, "status": status, "error": error, "wall_s": wall, "cells_s": cells,
            "peak_rss_bytes": rss_self, "children_peak_rss_bytes": rss_children}


def run_one(path: Path, timeout: int = 900) -> dict[str, Any]:
    """Run ``path`` in a child process with a fresh cache; the child's measurements, plus
    ``runner_s`` (the child process from start to exit)."""
    cache = Path(tempfile.mkdtemp(prefix="labcore-bench-cache-"))
    env = dict(os.environ, LABCORE_PROFILE="ci", LABCORE_PROGRESS="0", LABCORE_CACHE=str(cache))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, __file__, "--child", str(path), "--timeout", str(timeout)],
                              capture_output=True, text=True, env=env, cwd=ROOT, timeout=2 * timeout + 120)
    except subprocess.TimeoutExpired:
        return {"notebook": path.name, "status": "FAILED", "error": f"runner timed out after {2 * timeout + 120} s",
                "runner_s": time.perf_counter() - t0}
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    runner = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"notebook": path.name, "status": "FAILED", "error": f"runner exit {proc.returncode}: {tail[0][:300]}",
                "runner_s": runner}
    return json.loads(lines[-1]) | {"runner_s": runner}


def _judge(r: dict[str, Any]) -> dict[str, Any]:
    gb = None if r.get("peak_rss_bytes") is None else r["peak_rss_bytes"] / 1e9
    ok = r.get("status") == "ok"
    return r | {"peak_gb": gb, "time_ok": ok and r.get("wall_s", 1e9) < TARGET_S,
                "memory_ok": None if gb is None else gb < TARGET_GB}


def run(paths: list[Path] | None = None, quick: bool = False, timeout: int = 900,
        log: Callable[[dict], None] = lambda row: None) -> list[dict[str, Any]]:
    """One row per notebook (all of ``notebooks/``, the first with ``quick``, or ``paths``)."""
    paths = paths or (notebooks()[:1] if quick else notebooks())
    rows = []
    for p in paths:
        row = _judge(run_one(Path(p).resolve(), timeout))
        rows.append(row)
        log(row)
    return rows


def describe(r: dict[str, Any]) -> str:
    """One line for a row (progress output)."""
    mem = "?" if r.get("peak_gb") is None else f"{r['peak_gb']:.2f} GB"
    return (f"{r['status']:<7} {r['notebook']:<28} {r.get('wall_s', float('nan')):6.1f} s "
            f"(cells {r.get('cells_s', float('nan')):5.1f} s)  peak RSS {mem}"
            + (f"  {r['error']}" if r.get("error") else ""))


COLUMNS = [("notebook", "notebook", ""), ("status", "status", ""), ("wall_s", "wall s", ".1f"),
           ("cells_s", "cells s", ".1f"), ("time_ok", f"< {TARGET_S:g} s", ""), ("peak_gb", "peak RSS GB", ".2f"),
           ("memory_ok", f"< {TARGET_GB:g} GB", ""), ("error", "error", "")]


def section(quick: bool = False, paths: list[Path] | None = None, timeout: int = 900,
            log: Callable[[dict], None] = lambda row: None) -> Section:
    """The report section: :func:`run` as one table, plus the total (``log`` gets each
    row as it comes)."""
    t0 = time.perf_counter()
    rows = run(paths, quick, timeout, log)
    total = {"notebook": "**all**", "status": "ok" if all(r["status"] == "ok" for r in rows) else "FAILED",
             "wall_s": sum(r.get("wall_s", 0.0) for r in rows), "cells_s": sum(r.get("cells_s", 0.0) for r in rows),
             "peak_gb": max((r["peak_gb"] for r in rows if r.get("peak_gb") is not None), default=None)}
    about = ("Each notebook in its own child process, executed by nbclient in a fresh `python3` kernel with "
             "`LABCORE_PROFILE=ci`, `LABCORE_PROGRESS=0` and a fresh empty `LABCORE_CACHE` (data generation "
             "counts). wall: `NotebookClient.execute()` including kernel start-up and shutdown; cells: the sum of "
             "the cells' execution times. Peak RSS: the kernel's `getrusage(RUSAGE_SELF).ru_maxrss`, read by an "
             f"extra last cell. Targets: < {TARGET_S:g} s and < {TARGET_GB:g} GB per notebook.")
    notes = [f"suite: {total['wall_s']:.0f} s of notebooks ({time.perf_counter() - t0:.0f} s with the runners)"]
    return Section("notebooks", "Notebooks (ci profile)", about, [Table("", COLUMNS, rows + [total], notes)],
                   settings={"timeout_s": timeout, "notebooks": [r["notebook"] for r in rows]})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("notebooks", nargs="*", type=Path, help="notebooks (default: all of notebooks/)")
    ap.add_argument("--quick", action="store_true", help="only the first notebook")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per cell (default 900)")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.timeout)), flush=True)
        return

    rows = run(args.notebooks or None, args.quick, args.timeout, lambda r: print(describe(r), flush=True))
    print(f"total {sum(r.get('wall_s', 0.0) for r in rows):.1f} s")


if __name__ == "__main__":
    main()
