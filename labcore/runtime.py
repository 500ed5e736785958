"""Device, seeds and run profiles.

A *profile* fixes how big every experiment is:

* ``ci``  — each notebook runs in under 60 s on 2 CPU cores; the test suite forces it.
* ``cpu`` — a laptop run of a few minutes that shows each paper's effect clearly.
* ``gpu`` — the closest to the paper's setting that one GPU does in well under an hour.

The profile comes from ``LABCORE_PROFILE``; without it, ``gpu`` when CUDA is available,
else ``cpu``. Experiments read their sizes with :meth:`Profile.pick`, which keeps the three
numbers of each knob side by side where the knob is used::

    steps = profile().pick(ci=60, cpu=1500, gpu=20000)
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

__all__ = ["PROFILES", "Profile", "device", "profile", "seed_all", "generator"]

T = TypeVar("T")

PROFILE_NAMES = ("ci", "cpu", "gpu")


@dataclass(frozen=True)
class Profile:
    """A run size. ``seeds`` are the seeds an experiment repeats over by default."""

    name: str
    seeds: tuple[int, ...]
    description: str

    def pick(self, *, ci: T, cpu: T, gpu: T | None = None) -> T:
        """Return the value given for this profile (``gpu`` falls back to ``cpu``)."""
        if self.name == "ci":
            return ci
        if self.name == "gpu" and gpu is not None:
            return gpu
        return cpu

    @property
    def is_ci(self) -> bool:
        return self.name == "ci"


PROFILES: dict[str, Profile] = {
    "ci": Profile("ci", (0,), "smoke-sized: every notebook < 60 s on 2 CPU cores"),
    "cpu": Profile("cpu", (0, 1, 2), "laptop reproduction: minutes on 2 CPU cores, 3 seeds"),
    "gpu": Profile("gpu", (0, 1, 2), "closest to the paper one GPU does in < 1 h, 3 seeds"),
}


def profile(name: str | None = None) -> Profile:
    """The active :class:`Profile`.

    ``name`` overrides; else ``LABCORE_PROFILE``; else ``gpu`` if CUDA is available, else
    ``cpu``. An unknown name raises ``ValueError`` listing the valid ones.
    """
    chosen = name if name is not None else os.environ.get("LABCORE_PROFILE", "").strip()
    if not chosen:
        chosen = "gpu" if torch.cuda.is_available() else "cpu"
    if isinstance(chosen, Profile):
        return chosen
    if chosen not in PROFILES:
        source = "argument 'name'" if name is not None else "LABCORE_PROFILE"
        raise ValueError(f"{source}: expected one of {PROFILE_NAMES}, got {chosen!r}")
    return PROFILES[chosen]


def device(prefer: str | None = None) -> torch.device:
    """The torch device to run on: ``LABCORE_DEVICE`` or ``prefer`` if set, else CUDA when
    available, else CPU."""
    chosen = prefer or os.environ.get("LABCORE_DEVICE", "").strip()
    if chosen:
        dev = torch.device(chosen)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {chosen!r} requested but CUDA is not available")
        return dev
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_all(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so runs repeat bit for bit on CPU."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"argument 'seed': expected an int, got {type(seed).__name__}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds code that uses the legacy global RNG
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def generator(seed: int, *streams: int) -> np.random.Generator:
    """A NumPy generator for ``seed`` and optional sub-stream ids.

    Data generation draws sample ``i`` of a dataset from ``generator(seed, i)`` so that a
    sample does not depend on how many were generated before it or in what batches.
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(int, streams)]))


def describe() -> dict[str, Any]:
    """Versions and settings, for ``labcore doctor`` and notebook headers."""
    import platform

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "device": str(device()),
        "cuda": torch.cuda.is_available(),
        "threads": torch.get_num_threads(),
        "profile": profile().name,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info
