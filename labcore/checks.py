"""Input validation at public boundaries.

Every public function of labcore checks its arguments with these helpers, so that bad
input gives one clear ``ValueError``/``TypeError`` that names the argument, what was
expected and what came — never a deep torch traceback and never a silent NaN.

Shapes are written as tuples whose entries are ints (exact size), strings (a named size
that must agree across the arguments checked with the same ``dims`` dict), ``None`` (any
size) or ``...`` (any number of leading dimensions, only first)::

    dims = {}
    kp = as_tensor(keypoints, "keypoints", shape=("N", "K", 2), dims=dims)
    vis = as_tensor(visible, "visible", shape=("N", "K"), dims=dims)   # N, K must match
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "as_tensor",
    "as_float",
    "as_floats",
    "check_shape",
    "check_finite",
    "check_number",
    "check_int",
    "check_choice",
    "check_size2",
    "require_file",
    "MissingFileError",
]


class MissingFileError(FileNotFoundError, ValueError):
    """A file a caller named does not exist. It is both a ``FileNotFoundError`` (what the
    standard library raises) and a ``ValueError`` (labcore's rule for bad input)."""

ShapeSpec = Sequence[Any]


def _fmt_spec(spec: ShapeSpec, dims: dict[str, int] | None) -> str:
    parts = []
    for s in spec:
        if s is Ellipsis:
            parts.append("...")
        elif s is None:
            parts.append("*")
        elif isinstance(s, str) and dims and s in dims:
            parts.append(f"{s}={dims[s]}")
        else:
            parts.append(str(s))
    return "(" + ", ".join(parts) + ")"


def check_shape(
    value: torch.Tensor | np.ndarray, name: str, spec: ShapeSpec, dims: dict[str, int] | None = None
) -> dict[str, int]:
    """Check ``value.shape`` against ``spec``; bind named sizes into ``dims`` and return it."""
    dims = {} if dims is None else dims
    shape = tuple(value.shape)
    spec = tuple(spec)
    leading_any = len(spec) > 0 and spec[0] is Ellipsis
    fixed = spec[1:] if leading_any else spec
    expected = _fmt_spec(spec, dims)
    if (leading_any and len(shape) < len(fixed)) or (not leading_any and len(shape) != len(fixed)):
        raise ValueError(f"{name}: expected shape {expected}, got {shape}")
    tail = shape[len(shape) - len(fixed):]
    pending: dict[str, int] = {}
    for want, got in zip(fixed, tail):
        if want is None:
            continue
        if isinstance(want, str):
            bound = dims.get(want, pending.get(want))
            if bound is None:
                pending[want] = got
            elif bound != got:
                raise ValueError(f"{name}: expected shape {expected}, got {shape} ({want} differs)")
        elif int(want) != got:
            raise ValueError(f"{name}: expected shape {expected}, got {shape}")
    dims.update(pending)
    return dims


def check_finite(value: torch.Tensor, name: str) -> torch.Tensor:
    """Raise ``ValueError`` if ``value`` holds NaN or infinity.

    Fast path: a finite sum proves every element finite (NaN and ±inf propagate into the
    sum), one pass without a mask; only a non-finite sum (which may also be an overflow
    of large finite values) runs the element-wise check that counts the bad values."""
    if value.is_floating_point() or value.is_complex():
        if value.numel() == 0 or bool(torch.isfinite(value.detach().sum())):
            return value
        bad = ~torch.isfinite(value)
        if bool(bad.any()):
            n_nan = int(torch.isnan(value).sum())
            n_inf = int(bad.sum()) - n_nan
            raise ValueError(f"{name}: expected finite values, got {n_nan} NaN and {n_inf} inf")
    return value


def as_tensor(
    value: Any,
    name: str,
    *,
    shape: ShapeSpec | None = None,
    dims: dict[str, int] | None = None,
    dtype: torch.dtype | None = torch.float32,
    finite: bool = True,
    device: torch.device | str | None = None,
    allow_empty: bool = False,
) -> torch.Tensor:
    """Convert ``value`` (tensor, ndarray, list) to a tensor and validate it.

    ``dtype=torch.float32`` accepts any real numeric input (bool excluded) and converts it;
    an integer ``dtype`` accepts only integer input. ``dtype=None`` keeps the input's.
    A tensor input keeps its device unless ``device`` is given. Empty tensors (a zero-sized
    dimension) are refused unless ``allow_empty``.
    """
    if isinstance(value, torch.Tensor):
        t = value
    elif isinstance(value, np.ndarray) or isinstance(value, (list, tuple, numbers.Number)):
        arr = np.asarray(value)
        if arr.dtype == object or arr.dtype.kind in "USV":
            raise TypeError(f"{name}: expected numbers, got an array of dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    else:
        raise TypeError(
            f"{name}: expected a torch.Tensor, numpy array or list, got {type(value).__name__}"
        )
    if t.dtype == torch.bool and dtype is not None and dtype != torch.bool:
        raise TypeError(f"{name}: expected numeric values, got dtype torch.bool")
    if t.is_complex():
        raise TypeError(f"{name}: expected real values, got dtype {t.dtype}")
    if dtype is not None and t.dtype != dtype:
        if not dtype.is_floating_point and dtype != torch.bool and t.is_floating_point():
            raise TypeError(f"{name}: expected an integer dtype, got {t.dtype}")
        t = t.to(dtype)
    if device is not None:
        t = t.to(device)
    if shape is not None:
        check_shape(t, name, shape, dims)
    if not allow_empty and t.numel() == 0 and t.dim() > 0:
        raise ValueError(f"{name}: expected a non-empty input, got shape {tuple(t.shape)}")
    if finite:
        check_finite(t, name)
    return t


def check_number(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """A finite real number within bounds, returned as ``float``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {v}")
    if low is not None and (v < low or (v == low and not low_inclusive)):
        op = ">=" if low_inclusive else ">"
        raise ValueError(f"{name}: expected a value {op} {low}, got {v}")
    if high is not None and (v > high or (v == high and not high_inclusive)):
        op = "<=" if high_inclusive else "<"
        raise ValueError(f"{name}: expected a value {op} {high}, got {v}")
    return v


def check_int(value: Any, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """An integer (Python or NumPy, not bool) within bounds, returned as ``int``."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    v = int(value)
    if low is not None and v < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {v}")
    if high is not None and v > high:
        raise ValueError(f"{name}: expected an int <= {high}, got {v}")
    return v


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
    """``value`` must be one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name}: expected one of {choices}, got {value!r}")
    return value


def check_size2(value: Any, name: str, *, low: int = 1) -> tuple[int, int]:
    """An image size ``(W, H)`` (or a single int for a square) of ints ``>= low``."""
    if isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name}: expected (W, H) as two ints, got {value!r}")
    w = check_int(value[0], f"{name}[0] (W)", low=low)
    h = check_int(value[1], f"{name}[1] (H)", low=low)
    return w, h


def require_file(path: str | Path, name: str, hint: str = "") -> Path:
    """``path`` must be an existing file; the error names it and adds ``hint``."""
    p = Path(path).expanduser()
    if not p.is_file():
        msg = f"{name}: file not found: {p}"
        if hint:
            msg += f". {hint}"
        raise MissingFileError(msg)
    return p


def as_float(
    value: Any, name: str, shape: Any = None, dims: dict | None = None, *, weak_ok: bool = False
) -> torch.Tensor:
    """A real-valued input as a floating tensor: ``as_tensor`` that keeps an array's floating dtype, turns integer arrays and Python
    lists/numbers into float32 (float64 with ``weak_ok``, for later promotion), and refuses
    booleans."""
    if isinstance(value, torch.Tensor) and value.dtype == torch.bool:
        raise TypeError(f"{name}: expected real numbers, got dtype torch.bool")
    strong = isinstance(value, (torch.Tensor, np.ndarray))
    dtype = None if strong or weak_ok else torch.float32
    t = as_tensor(value, name, shape=shape, dims=dims, dtype=dtype)
    if t.dtype == torch.bool:
        raise TypeError(f"{name}: expected real numbers, got booleans")
    if not t.is_floating_point():
        t = t.to(torch.float32)
    return t


def as_floats(*specs: tuple[Any, str, Any], dims: dict | None = None) -> list[torch.Tensor]:
    """Validate several ``(value, name, shape)`` inputs onto one device and one float dtype.

    The dtype is the promotion of the tensor/array inputs' float dtypes (lists and numbers
    follow them without forcing float64); float32 when every input is a list or number.
    """
    dims = {} if dims is None else dims
    out: list[torch.Tensor] = []
    strong_dtypes = []
    device = None
    device_name = ""
    for value, name, shape in specs:
        t = as_float(value, name, shape, dims, weak_ok=True)
        if isinstance(value, (torch.Tensor, np.ndarray)):
            strong_dtypes.append(t.dtype)
        if isinstance(value, torch.Tensor):
            if device is None:
                device, device_name = t.device, name
            elif t.device != device:
                raise ValueError(
                    f"{name}: expected a tensor on {device} (the device of {device_name}), "
                    f"got {t.device}"
                )
        out.append(t)
    dtype = functools.reduce(torch.promote_types, strong_dtypes) if strong_dtypes else torch.float32
    device = out[0].device if device is None else device
    return [t.to(device=device, dtype=dtype) for t in out]
