"""``labcore reproduce NAME`` and ``labcore reproduce all``: run miniature reproductions,
save their tables, and set each paper's claim beside what came out.

:func:`reproduce` runs one experiment and saves ``results/<name>_<profile>.json/.md``
(plus ``_1``, ``_2`` … for its derived tables). :func:`reproduce_all` runs every
experiment in :data:`~labcore.experiments.EXPERIMENTS`, one after another; an experiment
that fails is reported and the others still run (nothing already saved is lost). It then
writes ``results/all_<profile>.json/.md``: one row per paper — its claim, the published
number, the measured miniature (profile, seeds, mean ± std, pulled from the saved tables
by :data:`CLAIMS`' headline functions) and the run time. Whether a trend *reproduced* is a
judgement the README states in words next to these numbers.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labcore.experiments import EXPERIMENTS, get_experiment
from labcore.experiments.table import Table
from labcore.runtime import Profile
from labcore.runtime import profile as get_profile

__all__ = ["Claim", "CLAIMS", "reproduce", "reproduce_all", "headline"]


def _ms(row: dict[str, Any], key: str, digits: int = 1) -> str:
    """``mean ± std`` of a table cell (just the mean with one seed)."""
    value, std = row.get(key), row.get(f"{key}_std")
    if value is None:
        return "—"
    text = f"{value:.{digits}f}"
    if float(text) == 0:
        text = text.lstrip("-")  # no "-0.0"
    return text + (f" ± {std:.{digits}f}" if std is not None else "")


def _integral(tables: Sequence[Table]) -> str:
    t = tables[0]
    hm, ig = t.row(variant="heatmap · argmax + quarter"), t.row(variant="integral · soft-argmax")
    return (f"error heatmap (+quarter) {_ms(hm, 'err_px', 2)} px vs integral {_ms(ig, 'err_px', 2)} px; "
            f"PCK@0.05 {_ms(hm, 'pck', 3)} vs {_ms(ig, 'pck', 3)}")


def _simdr(tables: Sequence[Table]) -> str:
    gaps = tables[1]
    parts = []
    for regime in ("held-out", "fit"):
        cells = [f"{r['size']} {_ms(r, 'gap_AP')}" for r in gaps.rows if r["regime"] == regime]
        parts.append(f"{regime} Δ AP (SimDR − heatmap+quarter): " + ", ".join(cells))
    return "; ".join(parts)


def _sahr_wahr(tables: Sequence[Table]) -> str:
    t = tables[0]
    parts = []
    for regime in ("held-out", "fit"):
        cells = [f"{v} {_ms(t.row(regime=regime, variant=v), 'AP')}" for v in ("baseline", "+SAHR", "+SAHR+WAHR")]
        parts.append(f"{regime} AP " + ", ".join(cells))
    return "; ".join(parts)


def _hsjp(tables: Sequence[Table]) -> str:
    t = tables[0]
    low = t.rows[0]["labels"]  # the smallest label fraction comes first
    parts = []
    for backbone in dict.fromkeys(r["backbone"] for r in t.rows):
        cells = [_ms(t.row(backbone=backbone, labels=low, init=i), "pck", 2) for i in ("scratch", "HSJP", "supervised")]
        parts.append(f"{backbone} {cells[0]} → {cells[1]} (supervised {cells[2]})")
    return f"PCK@0.1 with {low} of labels, scratch → HSJP: " + "; ".join(parts)


def _hemlets(tables: Sequence[Table]) -> str:
    t = tables[0]
    lab = [_ms(t.row(test="lab", variant=v), "P1") for v in ("integral", "HEMlets")]
    wild = [_ms(t.row(test="wild", variant=v), "P1") for v in ("integral", "HEMlets + ordinal")]
    return (f"lab P1 integral {lab[0]} → HEMlets {lab[1]} mm; "
            f"wild P1 {wild[0]} → {wild[1]} mm with ordinal-only images")


def _posh(tables: Sequence[Table]) -> str:
    t = tables[0]
    hem = t.row(inputs="HEMlets", regressor="6-D, IEF ×3")
    gt, one = t.row(inputs="GT joints", regressor="6-D, IEF ×3"), t.row(inputs="GT joints", regressor="6-D, one shot")
    return (f"body from HEMlets' joints MPJPE {_ms(hem, 'MPJPE')} mm (the joints {_ms(hem, 'input')}); "
            f"from true joints IEF ×3 {_ms(gt, 'MPJPE')} vs one shot {_ms(one, 'MPJPE')} mm")


def _eventhpe(tables: Sequence[Table]) -> str:
    t = tables[0]
    off, on = t.row(variant="without flow coherence"), t.row(variant="with flow coherence")
    return (f"PA-MPJPE {_ms(off, 'PA-MPJPE')} → {_ms(on, 'PA-MPJPE')} mm and PVE {_ms(off, 'PVE')} → "
            f"{_ms(on, 'PVE')} mm with flow coherence; {t.notes[0].removeprefix('FlowNet (unsupervised) ')}")


@dataclass(frozen=True)
class Claim:
    """A paper's claim, its published number, and how to read ours from the tables."""

    claim: str
    published: str
    headline: Callable[[Sequence[Table]], str]


#: Experiment name → its paper's claim (METHODS.md has the sources).
CLAIMS: dict[str, Claim] = {
    "integral": Claim("integral regression (soft-argmax) matches or beats heatmap argmax decoding",
                      "Sun et al. 2018 report integral above argmax (number not in METHODS.md)", _integral),
    "simdr": Claim("SimDR beats heatmaps more as the input shrinks (COCO, HRNet-W32)",
                   "+0.9 AP at 256×192, +3.5 at 128×128, +10.6 at 64×64", _simdr),
    "sahr_wahr": Claim("SAHR + WAHR improve bottom-up AP (HigherHRNet-W32)",
                       "67.1 → 68.9 AP on COCO val; +5.7 on CrowdPose", _sahr_wahr),
    "hsjp": Claim("HSJP pretraining ≫ scratch, ≈ supervised pretraining",
                  "not found (METHODS.md §6)", _hsjp),
    "hemlets": Claim("HEMlets lowers 3-D error; ordinal-only in-the-wild images help",
                     "P1 ≈ 39.9 mm on Human3.6M, ~20 % below the prior best", _hemlets),
    "posh": Claim("a shallow module on HEMlets regresses SMPL pose and shape",
                  "not found (METHODS.md §4)", _posh),
    "eventhpe": Claim("unsupervised FlowNet on events; flow coherence improves pose and shape",
                      "tables not readable (METHODS.md §5)", _eventhpe),
}


def headline(name: str, tables: Sequence[Table]) -> str:
    """The measured key numbers of experiment ``name`` from its tables (main first)."""
    if name not in CLAIMS:
        raise ValueError(f"name: no claim registered for {name!r}; known: {sorted(CLAIMS)}")
    return CLAIMS[name].headline(tables)


def reproduce(name: str, profile: Profile | str | None = None, seeds: Sequence[int] | None = None,
              out: str | Path = "results", progress: bool = True, echo: Callable[[str], Any] | None = print
              ) -> list[Table]:
    """Run experiment ``name``, save its tables under ``out`` and return them (the main
    table first). ``echo`` prints each table's Markdown (``None``: silent)."""
    module = get_experiment(name)
    prof = get_profile(profile)
    start = time.perf_counter()
    table = module.run(profile=prof, seeds=seeds, progress=progress)
    tables = [table, *getattr(module, "summaries", lambda t: [])(table)]
    for i, t in enumerate(tables):
        json_path, md_path = t.save(Path(out), f"{name}_{prof.name}" + (f"_{i}" if i else ""))
        if echo:
            echo(t.to_markdown())
            echo(f"saved {md_path} and {json_path.name}\n")
    if echo:
        echo(f"{name} ({prof.name} profile) took {time.perf_counter() - start:.0f} s")
    return tables


def reproduce_all(profile: Profile | str | None = None, seeds: Sequence[int] | None = None,
                  out: str | Path = "results", progress: bool = True, names: Sequence[str] | None = None,
                  echo: Callable[[str], Any] | None = print) -> Table:
    """Run every experiment (or ``names``), save each one's tables, and save and return the
    summary table ``all_<profile>`` (claim, published, measured, seconds, status).

    A failing experiment is recorded with its error in the summary (and its traceback
    echoed); the others still run. Check ``table.meta['failed']``."""
    prof = get_profile(profile)
    names = list(EXPERIMENTS) if names is None else list(names)
    for n in names:
        get_experiment(n)  # unknown names fail before anything runs
    rows, failed = [], []
    t0 = time.perf_counter()
    for n in names:
        if echo:
            echo(f"::: {n} ({prof.name} profile)")
        start = time.perf_counter()
        try:
            tables = reproduce(n, prof, seeds, out, progress, echo)
            measured, status = (headline(n, tables) if n in CLAIMS else ""), "ok"
            used = tables[0].meta.get("seeds")
        except Exception as err:  # one broken experiment must not lose the others' results
            if echo:
                echo(traceback.format_exc())
            measured, status, used = f"failed: {type(err).__name__}: {err}", "FAILED", None
            failed.append(n)
        claim = CLAIMS.get(n)
        rows.append({"experiment": n, "claim": claim.claim if claim else "", "published": claim.published if claim else "",
                     "measured": measured, "seeds": len(used) if used else None,
                     "seconds": time.perf_counter() - start, "status": status})
    seconds = time.perf_counter() - t0
    table = Table(f"Every miniature reproduction, {prof.name} profile",
                  ["experiment", "claim", "published", "measured", "seeds", "seconds", "status"], rows,
                  labels={"measured": f"labcore ({prof.name}, mean ± std over seeds)", "seconds": "time (s)"},
                  digits={"seconds": 0},
                  notes=[f"{len(names)} experiments, {seconds:.0f} s in all"
                         + (f"; FAILED: {', '.join(failed)}" if failed else "")],
                  meta={"profile": prof.name, "failed": failed, "seconds": seconds, "seeds": list(seeds) if seeds else None})
    json_path, md_path = table.save(Path(out), f"all_{prof.name}")
    if echo:
        echo(table.to_markdown())
        echo(f"saved {md_path} and {json_path.name}")
    return table
