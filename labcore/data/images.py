"""Images between their two forms, and the real photographs that ship in installed wheels.

labcore's convention (DESIGN.md §2): networks take ``(N, 3, H, W)`` float32 in [0, 1];
displays take ``(H, W, 3)`` uint8 RGB. Pixel ``(row i, col j)`` has its centre at the
point ``(x=j, y=i)``.
"""

from __future__ import annotations

import numpy as np
import torch

from labcore.checks import as_tensor, check_choice

__all__ = ["PHOTOS", "image_to_tensor", "tensor_to_image", "load_photo"]

#: Real photographs available offline (inside scikit-image's wheel) that show a person.
PHOTOS = ("astronaut",)


def image_to_tensor(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``(H, W, 3)`` or ``(N, H, W, 3)`` uint8 RGB → ``(3, H, W)`` / ``(N, 3, H, W)`` float32
    in [0, 1]."""
    t = as_tensor(image, "image", dtype=None)
    if t.dtype != torch.uint8:
        raise TypeError(f"image: expected uint8 (display form), got {t.dtype}")
    if t.dim() not in (3, 4) or t.shape[-1] != 3:
        raise ValueError(f"image: expected shape (H, W, 3) or (N, H, W, 3), got {tuple(t.shape)}")
    return t.movedim(-1, -3).float() / 255.0


def tensor_to_image(tensor: torch.Tensor | np.ndarray) -> np.ndarray:
    """``(3, H, W)`` or ``(N, 3, H, W)`` float in [0, 1] → uint8 ``(H, W, 3)`` / ``(N, H, W, 3)``
    (values outside [0, 1] are clipped)."""
    t = as_tensor(tensor, "tensor")
    if t.dim() not in (3, 4) or t.shape[-3] != 3:
        raise ValueError(f"tensor: expected shape (3, H, W) or (N, 3, H, W), got {tuple(t.shape)}")
    return (t.detach().clamp(0, 1) * 255 + 0.5).to(torch.uint8).movedim(-3, -1).cpu().numpy()


def load_photo(name: str = "astronaut") -> np.ndarray:
    """A real photograph of a person as ``(H, W, 3)`` uint8 RGB, read from an installed wheel
    (no download): ``'astronaut'`` is scikit-image's portrait of Eileen Collins, 512×512."""
    check_choice(name, "name", PHOTOS)
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut())
