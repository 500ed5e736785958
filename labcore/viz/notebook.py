"""Helpers for the notebooks: a header with the run's settings, and showing key source
code from the package instead of copying it into cells."""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["header", "show_source"]


def header(seed: int = 0) -> dict[str, Any]:
    """Seed everything and print the profile, device and body model; return them."""
    from labcore.body.model import resolve_body_kind
    from labcore.runtime import describe, profile, seed_all

    seed_all(seed)
    info = describe()
    info.update(seed=seed, body=resolve_body_kind("auto"), profile_description=profile().description)
    print(f"profile {info['profile']} ({info['profile_description']}) · device {info['device']} · "
          f"torch {info['torch']} · body {info['body']} · seed {seed}")
    return info


def show_source(obj: Any, *, start: str | None = None, lines: int | None = None) -> Any:
    """Display the source of a labcore function or class as a highlighted code block.

    ``start`` begins the excerpt at the first line containing that text; ``lines`` limits
    its length. Returns an IPython Markdown object (shown when it is a cell's last value).
    """
    from IPython.display import Markdown

    src = inspect.getsource(obj).splitlines()
    if start is not None:
        hits = [i for i, line in enumerate(src) if start in line]
        if not hits:
            raise ValueError(f"start: {start!r} does not occur in the source of {obj.__qualname__}")
        src = src[hits[0]:]
    if lines is not None:
        src = src[:lines]
    where = f"{inspect.getmodule(obj).__name__}.{obj.__qualname__}"
    return Markdown(f"`{where}`\n```python\n" + "\n".join(src) + "\n```")
