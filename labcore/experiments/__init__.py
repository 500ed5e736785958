"""Floor 4 — one module per paper's miniature reproduction.

Each experiment module has ``run(profile=None, seeds=None, progress=True) -> Table`` and
may have ``summaries(table) -> list[Table]`` (derived tables, e.g. a gap beside the
paper's). :data:`EXPERIMENTS` maps the names ``labcore reproduce`` takes to modules.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["EXPERIMENTS", "get_experiment"]

#: ``labcore reproduce <name>`` → module under :mod:`labcore.experiments`.
EXPERIMENTS = {
    "integral": "heatmap_vs_integral",
    "simdr": "simdr_vs_heatmap",
    "sahr_wahr": "sahr_wahr",
    "hsjp": "hsjp",
    "hemlets": "hemlets",
    "posh": "posh",
    "eventhpe": "eventhpe",
}


def get_experiment(name: str) -> ModuleType:
    """The experiment module registered as ``name`` (``ValueError`` lists the known ones)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"name: unknown experiment {name!r}; known: {sorted(EXPERIMENTS)}")
    return importlib.import_module(f"labcore.experiments.{EXPERIMENTS[name]}")
