"""What every benchmark script shares: timing, the machine header, tables, atomic writes.

* :func:`measure` — call a function a few times untimed (warm-up), then ``repeats`` times
  timed with ``time.perf_counter`` (and the process CPU time), optionally calling a
  ``sync`` function (``torch.cuda.synchronize``) before the clock starts and before it
  stops, so that queued GPU work is inside the measurement; returns a :class:`Timing`.
* :func:`machine` — versions, CPU count, torch threads, device (CUDA name), date, commit.
* :class:`Table` / :class:`Section` — what a benchmark reports: tables of rows (dicts),
  rendered as Markdown for people and kept as plain JSON for tools.
* :func:`atomic_write_text` — temporary file in the same folder + ``os.replace``, so a
  crash never leaves a half-written report (DESIGN.md §8).

The benchmark scripts sit side by side in ``benchmarks/`` (no package); each runs as
``python benchmarks/<script>.py`` and imports this module as ``_timing``.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: environment variables that change the timings (thread pools, their waiting, the device)
ENV_VARS = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "GOMP_SPINCOUNT", "LABCORE_DEVICE",
            "CUDA_VISIBLE_DEVICES")


# ----------------------------------------------------------------------------- timing


@dataclass
class Timing:
    """Seconds of each timed call (``times``) and the process CPU seconds of each
    (``cpu``: all threads of this process; on a machine shared with other work it moves
    less than the wall time)."""

    times: list[float]
    cpu: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def max(self) -> float:
        return max(self.times)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu) if self.cpu else float("nan")

    def ms(self) -> dict[str, float]:
        """``best_ms``, ``median_ms``, ``max_ms``, ``cpu_ms`` (median) — for a table row."""
        return {"best_ms": 1e3 * self.best, "median_ms": 1e3 * self.median, "max_ms": 1e3 * self.max,
                "cpu_ms": 1e3 * self.cpu_median}


def measure(fn: Callable[[], object], repeats: int, warmup: int = 1,
            sync: Callable[[], object] | None = None) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls, then ``repeats`` timed ones.

    ``sync`` (e.g. ``torch.cuda.synchronize``) runs before the clock starts and before it
    stops, so asynchronous GPU work is counted in the call that queued it."""
    if repeats < 1:
        raise ValueError(f"repeats: expected >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    if sync is not None:
        sync()
    times, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        if sync is not None:
            sync()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return Timing(times, cpu)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``(fn(), seconds)`` of one call."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def cuda_sync(device: Any) -> Callable[[], None] | None:
    """``torch.cuda.synchronize`` for a CUDA device, else ``None`` (nothing to wait for)."""
    import torch

    dev = torch.device(device)
    if dev.type != "cuda":
        return None
    return lambda: torch.cuda.synchronize(dev)


# ----------------------------------------------------------------------------- the machine


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def machine() -> dict[str, Any]:
    """Where the numbers come from: versions, CPUs, torch threads, device, date, commit."""
    import numpy as np
    import torch

    info: dict[str, Any] = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "device": "cpu",
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if torch.cuda.is_available():
        info["device"] = f"cuda ({torch.cuda.get_device_name(0)})"
        info["cuda_version"] = torch.version.cuda
        info["bf16"] = torch.cuda.is_bf16_supported()
    try:
        import plotly

        info["plotly"] = plotly.__version__
    except ImportError:  # pragma: no cover - a core dependency
        pass
    env = {k: os.environ[k] for k in ENV_VARS if os.environ.get(k)}
    if env:
        info["env"] = env
    commit = _git("rev-parse", "--short", "HEAD")
    if commit:
        info["commit"] = commit + (" + local changes" if _git("status", "--porcelain", "--untracked-files=no") else "")
    return info


def machine_markdown(info: dict[str, Any]) -> str:
    """The header lines of a report."""
    load = info.get("load_average")
    lines = [
        f"- date: {info['date']}" + (f" · commit {info['commit']}" if info.get("commit") else ""),
        f"- python {info['python']} · torch {info['torch']} · numpy {info['numpy']}"
        + (f" · plotly {info['plotly']}" if info.get("plotly") else ""),
        f"- {info['cpus']} CPUs ({info['cpus_usable']} usable; {info['processor']}) · torch threads "
        f"{info['torch_threads']} · device {info['device']}"
        + (f" · load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min)" if load else ""),
        f"- {info['platform']}",
    ]
    if info.get("env"):
        lines.append("- environment: " + ", ".join(f"`{k}={v}`" for k, v in info["env"].items()))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- tables


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "pass" if value else "**FAIL**"
    if isinstance(value, float) and value != value:  # NaN
        return "—"
    if fmt and isinstance(value, (int, float)):
        return format(value, fmt)
    return str(value).replace("|", "\\|").replace("\n", " ")


@dataclass
class Table:
    """A titled table: ``columns`` are ``(key, header, format spec)`` (``''``: ``str``);
    booleans print as pass/**FAIL**, ``None`` as a dash."""

    title: str
    columns: Sequence[tuple[str, str, str]]
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        out = [f"**{self.title}**", ""] if self.title else []
        out.append("| " + " | ".join(h for _, h, _ in self.columns) + " |")
        out.append("|" + "|".join("---" if not f else "---:" for _, _, f in self.columns) + "|")
        for r in self.rows:
            out.append("| " + " | ".join(_cell(r.get(k), f) for k, _, f in self.columns) + " |")
        if self.notes:
            out.append("")
            out += [f"- {n}" for n in self.notes]
        return "\n".join(out)

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "columns": [k for k, _, _ in self.columns], "rows": self.rows,
                "notes": self.notes}


@dataclass
class Section:
    """One section of the report: what was timed and how (``about``), its tables, the
    seconds the section took, and the error that stopped it, if one did."""

    name: str
    title: str
    about: str
    tables: list[Table] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def to_markdown(self) -> str:
        out = [f"## {self.title}", "", self.about.strip(), ""]
        for t in self.tables:
            out += [t.to_markdown(), ""]
        if self.error:
            out += [f"**Section failed:** `{self.error}`", ""]
        out.append(f"_section time {self.seconds:.0f} s_")
        return "\n".join(out)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "about": self.about.strip(), "seconds": self.seconds,
                "error": self.error, "settings": self.settings, "tables": [t.to_json() for t in self.tables]}


# ----------------------------------------------------------------------------- files


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and
    ``os.replace``: readers see the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def jsonable(obj: Any) -> Any:
    """``obj`` with NaN/inf floats as ``None``, tuples as lists and other objects as
    strings: what strict JSON readers accept."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return str(obj)
