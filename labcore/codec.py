"""The ``Codec`` base, the codec registry, and coordinate regression.

A codec turns keypoints into training targets and network outputs back into keypoints:

* ``encode(keypoints, visible=None, **extra) -> dict[str, Tensor]`` — the targets, always
  including ``'weights' (N, K)`` float32 (0 for invisible keypoints and, codec by codec,
  for keypoints its targets cannot represent, e.g. outside the image);
* ``decode(*outputs) -> (keypoints (N, K, D), scores (N, K))``.

Conventions (DESIGN.md §2): keypoints ``(N, K, D)`` float32 pixels of the image the codec
works on, x right, y down, integer values at pixel centres; visibility ``(N, K)`` in
{0, 1}. Codecs are batched torch, return tensors on the input's device, and accept numpy.
Every codec validates its input with :meth:`Codec.prepare`.

Registry: ``@register_codec('name')`` on a subclass adds it to :data:`CODECS`;
``build_codec('name', **cfg)`` instantiates it. The method codecs (``GaussianHeatmap``,
``SimDR``, ...) live in :mod:`labcore.methods` and register themselves on import.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch

from labcore.checks import as_tensor, check_int, check_size2

__all__ = ["Codec", "CODECS", "register_codec", "build_codec", "CoordinateRegression"]

C = TypeVar("C", bound=type)


class Codec(abc.ABC):
    """Base class of every keypoint codec (see the module docstring for the contract)."""

    #: The registry name, set by :func:`register_codec`.
    name: ClassVar[str] = ""

    @abc.abstractmethod
    def encode(self, keypoints: Any, visible: Any = None, **extra: Any) -> dict[str, torch.Tensor]:
        """Keypoints ``(N, K, D)`` (+ visibility ``(N, K)``) → targets incl. ``'weights'``."""

    @abc.abstractmethod
    def decode(self, *outputs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Network outputs → ``(keypoints (N, K, D), scores (N, K))``."""

    def prepare(
        self, keypoints: Any, visible: Any = None, *, dim: int = 2
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate and convert the input of :meth:`encode`.

        Args:
            keypoints: ``(N, K, dim)`` numeric (numpy or torch), finite. Keypoints outside
                the image are allowed (codecs give them weight 0). A single instance
                ``(K, dim)`` is refused rather than silently batched.
            visible: ``(N, K)`` in {0, 1} (bool accepted), or ``None`` for all ones.
            dim: coordinate dimension D (2 for image keypoints, 3 for 3-D joints).

        Returns:
            ``keypoints (N, K, dim)`` float32 and ``visible (N, K)`` float32, on the
            keypoints' device (numpy → CPU).

        Raises:
            TypeError: non-numeric input.
            ValueError: wrong shape, empty batch, NaN/inf, visibility not in {0, 1}.
        """
        dim = check_int(dim, "dim", low=1)
        kp = as_tensor(keypoints, "keypoints", finite=False, allow_empty=True)
        shape = tuple(kp.shape)
        if len(shape) != 3:
            hint = (
                f"; a single instance must be batched explicitly, e.g. keypoints[None] "
                f"-> (1, {shape[0]}, {shape[1]})"
                if len(shape) == 2
                else ""
            )
            raise ValueError(f"keypoints: expected shape (N, K, {dim}), got {shape}{hint}")
        if 0 in shape[:2]:
            raise ValueError(f"keypoints: expected a non-empty batch (N, K >= 1), got {shape}")
        dims: dict[str, int] = {}
        kp = as_tensor(kp, "keypoints", shape=("N", "K", dim), dims=dims)
        if visible is None:
            vis = torch.ones(kp.shape[:2], dtype=torch.float32, device=kp.device)
        else:
            if isinstance(visible, torch.Tensor) and visible.dtype == torch.bool:
                visible = visible.float()
            elif isinstance(visible, np.ndarray) and visible.dtype == np.bool_:
                visible = visible.astype(np.float32)
            vis = as_tensor(visible, "visible", shape=("N", "K"), dims=dims, device=kp.device)
            bad = (vis != 0) & (vis != 1)
            if bool(bad.any()):
                got = sorted({float(v) for v in vis[bad].flatten()[:5].tolist()})
                raise ValueError(f"visible: expected values in {{0, 1}}, got {got}")
        return kp, vis

    @staticmethod
    def reject_extra(extra: dict[str, Any]) -> None:
        """Raise ``TypeError`` for keyword arguments a codec's ``encode`` does not take."""
        if extra:
            raise TypeError(f"encode: unexpected keyword argument(s) {sorted(extra)}")

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({cfg})"


#: Registered codec classes by name.
CODECS: dict[str, type[Codec]] = {}


def register_codec(name: str) -> Callable[[C], C]:
    """Class decorator: register a :class:`Codec` subclass under ``name`` (sets
    ``cls.name``). A name already taken raises ``ValueError``."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"name: expected a non-empty str, got {name!r}")

    def deco(cls: C) -> C:
        if not (isinstance(cls, type) and issubclass(cls, Codec)):
            raise TypeError(f"register_codec({name!r}): expected a Codec subclass, got {cls!r}")
        if name in CODECS:
            raise ValueError(
                f"name: codec {name!r} is already registered (by {CODECS[name].__qualname__})"
            )
        cls.name = name
        CODECS[name] = cls
        return cls

    return deco


def build_codec(name: str, **cfg: Any) -> Codec:
    """Instantiate the codec registered as ``name`` with ``cfg``; an unknown name raises
    ``ValueError`` listing the known ones."""
    if name not in CODECS:
        raise ValueError(
            f"name: expected one of the registered codecs {sorted(CODECS)}, got {name!r}"
        )
    return CODECS[name](**cfg)


@register_codec("regression")
class CoordinateRegression(Codec):
    """Direct coordinate regression targets — mmpose ``RegressionLabel``.

    ``encode``: ``keypoint_labels = keypoints / [W, H]`` (N, K, 2) and ``weights`` = 1
    where the keypoint is visible **and** inside the image, ``0 <= x <= W-1`` and
    ``0 <= y <= H-1`` (mmpose's validity test), else 0.
    ``decode(labels)``: ``labels · [W, H]``, scores all ones.

    Args:
        input_size: ``(W, H)`` of the input image in pixels.
    """

    def __init__(self, input_size: Any = (192, 256)) -> None:
        self.input_size = check_size2(input_size, "input_size")

    def _scale(self, device: torch.device) -> torch.Tensor:
        return torch.tensor(self.input_size, dtype=torch.float32, device=device)

    def encode(self, keypoints: Any, visible: Any = None, **extra: Any) -> dict[str, torch.Tensor]:
        """``keypoints (N, K, 2)`` input pixels, ``visible (N, K)`` →
        ``{'keypoint_labels': (N, K, 2) in [0, 1), 'weights': (N, K)}``."""
        self.reject_extra(extra)
        kp, vis = self.prepare(keypoints, visible, dim=2)
        scale = self._scale(kp.device)
        inside = ((kp >= 0) & (kp <= scale - 1)).all(-1)
        weights = (inside & (vis > 0.5)).to(torch.float32)
        return {"keypoint_labels": kp / scale, "weights": weights}

    def decode(self, *outputs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``decode(labels (N, K, 2))`` → ``(keypoints (N, K, 2) pixels, scores (N, K))``."""
        if len(outputs) != 1:
            raise TypeError(f"decode: expected one output (labels), got {len(outputs)}")
        labels = outputs[0]
        if isinstance(labels, torch.Tensor) and labels.is_floating_point():
            lab = as_tensor(labels, "labels", shape=("N", "K", 2), dtype=None)
        else:
            lab = as_tensor(labels, "labels", shape=("N", "K", 2))
        keypoints = lab * self._scale(lab.device).to(lab.dtype)
        scores = torch.ones(lab.shape[:2], dtype=lab.dtype, device=lab.device)
        return keypoints, scores
