"""labcore — a teaching and exploration lab for human pose estimation.

Floors (a module imports only from its own floor or below):

1. foundation: :mod:`runtime`, :mod:`skeletons`, :mod:`geometry`, :mod:`heatmaps`,
   :mod:`codec`, :mod:`metrics`, :mod:`checks`
2. infrastructure: :mod:`nn`, :mod:`body`, :mod:`data`, :mod:`train`
3. methods: :mod:`methods`
4. experiences: :mod:`experiments`, :mod:`viz`, :mod:`cli`

``import labcore as lc`` gives the foundation modules as attributes; deeper floors are
imported on first use (``lc.body``, ``lc.data`` ...) so that importing labcore stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from labcore import checks, runtime
from labcore.runtime import device, profile, seed_all

__version__ = "0.1.0"

_LAZY = {
    "skeletons", "geometry", "heatmaps", "codec", "metrics",
    "nn", "body", "data", "train", "methods", "experiments", "viz", "cli",
}

__all__ = ["checks", "runtime", "device", "profile", "seed_all", "__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"labcore.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'labcore' has no attribute {name!r}")
