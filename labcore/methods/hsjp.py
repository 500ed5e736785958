"""HSJP — heatmap-style jigsaw puzzles: self-supervised pretraining of pose backbones.

Zhang et al., *Heatmap-Style Jigsaw Puzzles* (arXiv 2012.07101; ACM MM 2021). The paper
pretrains the backbones of SimpleBaseline and HRNet on **person crops only** (the people
of MS-COCO, no ImageNet, no keypoint labels): cut a crop into patches, shuffle them, and
ask the network where each patch belongs — answered with *heatmaps*, so that the pretext
task has the same output form as the pose task it prepares. The learned weights then
initialise the pose network, which is fine-tuned on keypoints; the paper finds this much
better than training from scratch and comparable to ImageNet pretraining.

**No official code exists** (METHODS.md §6): this module is labcore's design (DESIGN.md
§4), and every choice the paper may have made differently is an argument. Read top to
bottom:

1. **the grid** — :class:`JigsawGrid`: an ``n × n`` grid on a ``W × H`` crop (``n = 3``).
   Cell edges are ``floor(i·W/n)``; every patch has the same size, the smallest cell minus
   ``gap`` pixels, so any patch fits any cell. The gap and a random *jitter* of where each
   patch is cut from its cell and where it is placed in its new cell keep the network from
   solving the puzzle by matching cut edges (the shortcut Noroozi & Favaro 2016 closed the
   same way);
2. **the puzzles** — :class:`Puzzles`: a batch of permutations and offsets, with
   :meth:`~Puzzles.shuffle` and its exact inverse :meth:`~Puzzles.unshuffle` (a gather
   through one pixel-index map); permutations fully random or drawn from a fixed set of
   maximally distant ones (:func:`hamming_permutations`, Noroozi & Favaro's greedy
   selection);
3. **the heatmap-style labels** — :meth:`Puzzles.labels`, ``(N, n², h, w)``:

   =====================  ============================================================
   ``label='origin'``     (default, DESIGN.md §4) channel ``i`` is about the patch now
                          in cell ``i``; its Gaussian sits at the centre of the cell
                          that patch came from — "where does what I see here belong?"
   ``label='current'``    channel ``j`` is about original patch ``j``; its Gaussian sits
                          at the centre of the cell where that patch is now — "where is
                          piece ``j``?" (the MNIST toy's choice, METHODS.md §6), a
                          detection task like keypoint heatmaps
   =====================  ============================================================

   Gaussians are made as the keypoint targets are (cell centres as keypoints, rounded
   ``int(x/stride + 0.5)``, peak 1, σ in heatmap pixels), so the loss is exactly the pose task's
   ``JointsMSELoss`` (:func:`labcore.methods.heatmap.joints_mse_loss`);
4. **decoding** — :func:`decode_permutation`: the one-to-one assignment of channels to
   cells that minimises the same MSE between the predicted maps and the labels it would
   imply (scipy's ``linear_sum_assignment``), so a prediction always decodes to a valid
   permutation; :func:`puzzle_accuracy` scores it;
5. **the models** — :func:`jigsaw_model`: a backbone from :mod:`labcore.nn` plus a
   stride-4 heatmap head with ``n²`` channels (the top-down heatmap network itself, with
   ``n²`` "joints"); :func:`pose_model_from` and :func:`transfer_backbone` carry every
   backbone tensor (weights and BatchNorm statistics, bit for bit) into a pose network
   whose keypoint head is new.

:class:`JigsawTask` ties it together for training: ``task.make(images, generator)`` gives
shuffled images, labels and the true permutations; ``task.decode(heatmaps)`` gives the
predicted permutations.

Conventions: images ``(N, C, H, W)`` float (any C); pixel ``(row y, col x)`` has its centre
at ``(x, y)``; cells and permutations are indexed row-major (cell ``r·n + c``); a
permutation ``perm`` means **shuffled cell i shows original patch perm[i]**.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from labcore.checks import as_tensor, check_choice, check_int, check_number, check_size2
from labcore.heatmaps import gaussian_heatmaps, round_centers
from labcore.methods.heatmap import TopDownHeatmapNet, joints_mse_loss

__all__ = [
    "LABELS",
    "JigsawGrid",
    "Puzzles",
    "check_permutations",
    "random_permutations",
    "hamming_permutations",
    "make_puzzles",
    "decode_permutation",
    "puzzle_accuracy",
    "JigsawTask",
    "jigsaw_model",
    "jigsaw_loss",
    "transfer_backbone",
    "pose_model_from",
]

#: The two heatmap-style labellings (see the module docstring).
LABELS = ("origin", "current")


# ----------------------------------------------------------------------------- 1. the grid


@dataclass(frozen=True, init=False)
class JigsawGrid:
    """An ``n × n`` jigsaw grid on a ``W × H`` crop.

    Attributes:
        size: ``(W, H)`` of the crop, pixels.
        n: cells per side (``n²`` patches).
        gap: pixels removed from the smallest cell to make the patch; they are what the
            jitter can move the patch by (``0``: patches tile the crop edge to edge).
        x_edges, y_edges: the ``n + 1`` cell edges, ``floor(i·W/n)`` and ``floor(i·H/n)``.
        patch: ``(pw, ph)``, the size of every patch: the smallest cell minus ``gap``.

    A crop too small for the grid (a patch under 1 pixel) is a ``ValueError``.
    """

    size: tuple[int, int]
    n: int
    gap: int
    x_edges: tuple[int, ...]
    y_edges: tuple[int, ...]
    patch: tuple[int, int]

    def __init__(self, size: Any, n: int = 3, gap: int = 2) -> None:
        w, h = check_size2(size, "size")
        n = check_int(n, "n", low=2)
        gap = check_int(gap, "gap", low=0)
        if w < n or h < n:
            raise ValueError(f"size: a {w}×{h} crop is smaller than the {n}×{n} grid "
                             f"(at least {n} pixels per side)")
        x_edges = tuple(i * w // n for i in range(n + 1))
        y_edges = tuple(i * h // n for i in range(n + 1))
        pw = min(b - a for a, b in zip(x_edges, x_edges[1:])) - gap
        ph = min(b - a for a, b in zip(y_edges, y_edges[1:])) - gap
        if pw < 1 or ph < 1:
            raise ValueError(f"size: a {w}×{h} crop is too small for a {n}×{n} grid with gap {gap} "
                             f"(cells of {w // n}×{h // n} px leave patches of {pw}×{ph} px)")
        for name, value in (("size", (w, h)), ("n", n), ("gap", gap), ("x_edges", x_edges),
                            ("y_edges", y_edges), ("patch", (pw, ph))):
            object.__setattr__(self, name, value)

    @property
    def cells(self) -> int:
        """``n²``, the number of cells (and patches, and label channels)."""
        return self.n * self.n

    def cell_origins(self) -> torch.Tensor:
        """``(n², 2)`` long: the top-left pixel ``(x, y)`` of each cell, row-major."""
        xs = torch.tensor(self.x_edges[:-1])
        ys = torch.tensor(self.y_edges[:-1])
        return torch.stack([xs.repeat(self.n), ys.repeat_interleave(self.n)], dim=1)

    def cell_sizes(self) -> torch.Tensor:
        """``(n², 2)`` long: the ``(width, height)`` of each cell, row-major."""
        ws = torch.tensor(np.diff(self.x_edges))
        hs = torch.tensor(np.diff(self.y_edges))
        return torch.stack([ws.repeat(self.n), hs.repeat_interleave(self.n)], dim=1)

    def slack(self) -> torch.Tensor:
        """``(n², 2)`` long: how far a patch can move inside each cell (cell − patch)."""
        return self.cell_sizes() - torch.tensor(self.patch)

    def centres(self) -> torch.Tensor:
        """``(n², 2)`` float32: each cell's centre in input pixels,
        ``x = (x0 + x1 - 1) / 2`` (pixel-centre convention), row-major."""
        o = self.cell_origins().float()
        return o + (self.cell_sizes().float() - 1.0) / 2.0

    def check_images(self, images: Any, name: str = "images") -> torch.Tensor:
        """``images`` as a float tensor ``(N, C, H, W)`` of this grid's size."""
        x = as_tensor(images, name, shape=("N", "C", "H", "W"), dtype=None)
        if not x.is_floating_point():
            raise TypeError(f"{name}: expected float images (N, C, H, W) in [0, 1], got {x.dtype}")
        w, h = self.size
        if tuple(x.shape[-2:]) != (h, w):
            raise ValueError(f"{name}: expected {w}×{h} images (the grid's size), got "
                             f"{x.shape[-1]}×{x.shape[-2]}")
        return x


# -------------------------------------------------------------------------- 2. the puzzles


def check_permutations(perm: Any, cells: int, name: str = "perm") -> torch.Tensor:
    """``perm`` as a long tensor ``(N, cells)`` whose every row is a permutation of
    ``0..cells-1``; anything else is a ``ValueError`` naming the first bad row."""
    p = as_tensor(perm, name, dtype=torch.long)
    if p.dim() == 1:
        p = p.unsqueeze(0)
    if p.dim() != 2 or p.shape[1] != cells:
        raise ValueError(f"{name}: expected shape (N, {cells}) (one permutation of the {cells} cells "
                         f"per row), got {tuple(p.shape)}")
    ok = (p.sort(dim=1).values == torch.arange(cells, device=p.device)).all(dim=1)
    if not bool(ok.all()):
        bad = int((~ok).nonzero()[0])
        raise ValueError(f"{name}: row {bad} is not a permutation of 0..{cells - 1}: {p[bad].tolist()}")
    return p


def _inverse(perm: torch.Tensor) -> torch.Tensor:
    """``inv[perm[i]] = i`` row by row: where each original patch is now."""
    return torch.argsort(perm, dim=1)


@dataclass
class Puzzles:
    """A batch of ``N`` puzzles on one :class:`JigsawGrid`.

    Attributes:
        grid: the grid.
        perm: ``(N, n²)`` long — shuffled cell ``i`` shows original patch ``perm[:, i]``.
        cut: ``(N, n², 2)`` long — offset ``(dx, dy)`` of original patch ``j`` inside its
            own cell ``j`` (where it is cut from), in ``[0, slack_j]``.
        place: ``(N, n², 2)`` long — offset of the patch shown in cell ``i`` inside cell
            ``i`` (where it is put), in ``[0, slack_i]``.
    """

    grid: JigsawGrid
    perm: torch.Tensor
    cut: torch.Tensor
    place: torch.Tensor

    def __post_init__(self) -> None:
        g = self.grid
        self.perm = check_permutations(self.perm, g.cells)
        n = self.perm.shape[0]
        slack = g.slack()
        for name in ("cut", "place"):
            off = as_tensor(getattr(self, name), name, shape=(n, g.cells, 2), dtype=torch.long)
            if bool((off < 0).any()) or bool((off > slack).any()):
                raise ValueError(f"{name}: offsets must lie in [0, cell - patch] = "
                                 f"[0, {slack.max().item()}] px per axis")
            setattr(self, name, off)

    def __len__(self) -> int:
        return int(self.perm.shape[0])

    @property
    def inverse(self) -> torch.Tensor:
        """``(N, n²)``: the cell where original patch ``j`` is now (``inverse[perm[i]] = i``)."""
        return _inverse(self.perm)

    def patch_pixels(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Where every patch pixel goes and where it comes from: ``(dst, src)``, each
        ``(N, n²·ph·pw)`` long flat indices ``y·W + x``.

        Cell ``i``'s patch pixel ``(u, v)`` sits at ``origin_i + place_i + (u, v)`` in the
        shuffled image and shows the crop pixel ``origin_j + cut_j + (u, v)``, ``j = perm[i]``.
        Every puzzle moves the same number of pixels, so both are plain rectangles."""
        g = self.grid
        w = g.size[0]
        pw, ph = g.patch
        dev = self.perm.device
        origins = g.cell_origins().to(dev)                                   # (n², 2)
        dst = origins.unsqueeze(0) + self.place                              # (N, n², 2)
        src = torch.gather(origins.unsqueeze(0) + self.cut, 1, self.perm.unsqueeze(-1).expand(-1, -1, 2))
        u = torch.arange(pw, device=dev)
        v = torch.arange(ph, device=dev)[:, None]

        def flat(corner: torch.Tensor) -> torch.Tensor:
            return ((corner[..., 1, None, None] + v) * w + corner[..., 0, None, None] + u).flatten(1)

        return flat(dst), flat(src)

    def source_index(self) -> torch.Tensor:
        """``(N, H·W)`` long: for each pixel of the shuffled image (row-major), the flat
        index ``y·W + x`` of the crop pixel it shows, or ``-1`` in the gaps."""
        w, h = self.grid.size
        dst, src = self.patch_pixels()
        index = torch.full((len(self), h * w), -1, dtype=torch.long, device=dst.device)
        return index.scatter_(1, dst, src)

    def shuffle(self, images: Any, fill: float = 0.5) -> torch.Tensor:
        """The puzzles: ``images (N, C, H, W)`` → shuffled ``(N, C, H, W)``, gaps = ``fill``."""
        x = self.grid.check_images(images)
        return self._move(x, *self.patch_pixels(), fill)

    def unshuffle(self, shuffled: Any, fill: float = 0.5) -> torch.Tensor:
        """The inverse of :meth:`shuffle`: every patch back where it was cut from.
        Crop pixels that no patch carries (the cut-away margins, :meth:`covered` is False)
        are ``fill``; the others are bit-identical to the original. With ``gap = 0`` and
        ``n`` dividing W and H every pixel is carried: the round trip is the identity."""
        y = self.grid.check_images(shuffled, "shuffled")
        dst, src = self.patch_pixels()
        return self._move(y, src, dst, fill)

    def covered(self) -> torch.Tensor:
        """``(N, H, W)`` bool: the crop pixels some patch carries (all of them when the gap
        is 0 and ``n`` divides W and H)."""
        w, h = self.grid.size
        _, src = self.patch_pixels()
        mask = torch.zeros(len(self), h * w, dtype=torch.bool, device=src.device)
        return mask.scatter_(1, src, True).view(len(self), h, w)

    def _move(self, x: torch.Tensor, to: torch.Tensor, frm: torch.Tensor, fill: float) -> torch.Tensor:
        """``out.flat[to] = x.flat[frm]`` per image and channel, every other pixel ``fill``."""
        if x.shape[0] != len(self):
            raise ValueError(f"images: expected {len(self)} images (one per puzzle), got {x.shape[0]}")
        fill = check_number(fill, "fill")
        c = x.shape[1]
        to, frm = to.to(x.device), frm.to(x.device)
        flat = x.flatten(2)
        out = torch.full_like(flat, fill)
        out.scatter_(2, to.unsqueeze(1).expand(-1, c, -1), torch.gather(flat, 2, frm.unsqueeze(1).expand(-1, c, -1)))
        return out.view_as(x)

    def labels(self, heatmap_size: Any, sigma: float = 1.0, label: str = "origin") -> torch.Tensor:
        """The heatmap-style labels ``(N, n², h, w)`` float32 for a ``(w, h)`` output.

        ``label='origin'``: channel ``i`` peaks at the centre of cell ``perm[i]`` (where
        the patch now in cell ``i`` came from); ``label='current'``: channel ``j`` peaks at
        the centre of cell ``inverse[j]`` (where original patch ``j`` is now). Peak-1
        Gaussians of σ heatmap pixels, centred as keypoints are
        (:func:`labcore.heatmaps.msra_heatmaps`: ``int(x/stride + 0.5)``)."""
        check_choice(label, "label", LABELS)
        cells = self.perm if label == "origin" else self.inverse
        return _cell_maps(self.grid, cells, heatmap_size, sigma)



def _cell_maps(grid: JigsawGrid, cells: torch.Tensor, heatmap_size: Any, sigma: float) -> torch.Tensor:
    """``(N, n², h, w)``: channel ``k`` of row ``r`` is a Gaussian at cell ``cells[r, k]``.

    The centre is rounded as a keypoint's (``int(x/stride + 0.5)``) but the Gaussian is
    drawn symmetric about it for any σ — not with mmpose's off-centre kernel for
    non-integer σ (:func:`labcore.heatmaps.msra_heatmaps`), which would put some peaks a
    pixel away from their cell's centre."""
    w, h = check_size2(heatmap_size, "heatmap_size")
    stride = torch.tensor([grid.size[0] / w, grid.size[1] / h])
    centres = round_centers(grid.centres() / stride, "msra").to(cells.device)[cells]  # (N, n², 2)
    maps, _ = gaussian_heatmaps(centres, (w, h), sigma)
    return maps


def random_permutations(count: int, cells: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(count, cells)`` long: uniformly random permutations (the identity included)."""
    count = check_int(count, "count", low=1)
    cells = check_int(cells, "cells", low=2)
    return torch.argsort(torch.rand(count, cells, generator=generator), dim=1)


def hamming_permutations(count: int, cells: int = 9, seed: int = 0, pool: int = 100_000) -> torch.Tensor:
    """A fixed set of ``count`` maximally distant permutations of ``cells`` cells,
    ``(count, cells)`` long.

    Noroozi & Favaro (2016, Algorithm 1) choose jigsaw permutations greedily so that they
    differ in as many positions (Hamming distance) as possible: start from one
    permutation, then repeatedly add the candidate farthest from those chosen. We add the
    candidate whose *minimum* distance to the chosen set is largest (farthest-point
    selection; their algorithm maximises the mean, which can leave two permutations close
    together). Candidates are every permutation up to 9 cells (9! = 362,880), else
    ``pool`` random ones. Ties go to the lowest candidate index;
    ``seed`` picks the first permutation (and the random pool).
    """
    count = check_int(count, "count", low=1)
    cells = check_int(cells, "cells", low=2)
    pool = check_int(pool, "pool", low=1)
    return torch.from_numpy(_hamming_set(count, cells, int(seed), pool).copy())


@functools.lru_cache(maxsize=8)
def _hamming_set(count: int, cells: int, seed: int, pool: int) -> np.ndarray:
    """:func:`hamming_permutations`'s work, cached (9! candidates take about a second)."""
    rng = np.random.default_rng(seed)
    if cells <= 9:  # 9! = 362,880 candidates: take them all
        cand = _all_permutations(cells)
    else:
        cand = np.argsort(rng.random((pool, cells)), axis=1)
    if count > len(cand):
        raise ValueError(f"count: only {len(cand)} candidate permutations of {cells} cells, asked for {count}")
    chosen = [int(rng.integers(len(cand)))]
    min_dist = (cand != cand[chosen[0]]).sum(axis=1)
    for _ in range(count - 1):
        k = int(np.argmax(min_dist))
        chosen.append(k)
        np.minimum(min_dist, (cand != cand[k]).sum(axis=1), out=min_dist)
    out = cand[chosen].astype(np.int64)
    out.setflags(write=False)
    return out


def _all_permutations(cells: int) -> np.ndarray:
    """Every permutation of ``range(cells)`` in lexicographic order, ``(cells!, cells)``
    int8 (built column by column, without a Python loop over the permutations)."""
    perms = np.zeros((1, 0), dtype=np.int8)
    for k in range(1, cells + 1):  # insert value k-1 at every position of each permutation of k-1
        rows = []
        for pos in range(k):
            rows.append(np.insert(perms, pos, k - 1, axis=1))
        perms = np.concatenate(rows, axis=0)
    order = np.lexsort(perms.T[::-1])
    return perms[order]


def make_puzzles(
    count: int,
    grid: JigsawGrid,
    generator: torch.Generator | None = None,
    permutations: Any = None,
    jitter: bool = True,
) -> Puzzles:
    """``count`` random puzzles on ``grid``.

    Args:
        permutations: ``None`` for fully random permutations, or a set ``(P, n²)`` (e.g.
            :func:`hamming_permutations`) to draw each puzzle's permutation from.
        jitter: random cut and place offsets in ``[0, slack]``; ``False`` centres every
            patch in its cell (offset ``slack // 2``).
    """
    count = check_int(count, "count", low=1)
    if permutations is None:
        perm = random_permutations(count, grid.cells, generator)
    else:
        perm_set = check_permutations(permutations, grid.cells, "permutations")
        perm = perm_set[torch.randint(len(perm_set), (count,), generator=generator)]
    slack = grid.slack()
    if jitter:
        def offsets() -> torch.Tensor:
            r = torch.rand(count, grid.cells, 2, generator=generator)
            return torch.minimum((r * (slack + 1)).long(), slack)
    else:
        def offsets() -> torch.Tensor:
            return (slack // 2).expand(count, -1, -1).clone()
    cut = offsets()
    place = offsets()
    return Puzzles(grid, perm, cut, place)


# ---------------------------------------------------------------------------- 4. decoding


def decode_permutation(
    heatmaps: Any,
    grid: JigsawGrid,
    sigma: float = 1.0,
    label: str = "origin",
) -> torch.Tensor:
    """The permutations ``(N, n²)`` that predicted maps ``(N, n², h, w)`` stand for.

    The cost of giving channel ``k`` the cell ``c`` is the squared error between map ``k``
    and the label a peak at cell ``c`` would have — the training loss itself; the
    one-to-one assignment of channels to cells with the smallest total cost
    (``scipy.optimize.linear_sum_assignment``) is the maximum-likelihood permutation
    under that loss, and always a valid permutation, however noisy the maps. With
    ``label='origin'`` channel ``i`` → cell ``c`` means ``perm[i] = c``; with
    ``'current'`` it means original patch ``i`` is in cell ``c``, i.e. ``perm[c] = i``.
    """
    check_choice(label, "label", LABELS)
    hm = as_tensor(heatmaps, "heatmaps", shape=("N", grid.cells, "h", "w"))
    h, w = hm.shape[-2:]
    templates = _cell_maps(grid, torch.arange(grid.cells).unsqueeze(0), (w, h), sigma)[0]  # (n², h, w)
    # ||H_k - T_c||² = ||H_k||² - 2 <H_k, T_c> + ||T_c||²
    dot = torch.einsum("nkhw,chw->nkc", hm.detach().double().cpu(), templates.double())
    cost = (templates.double().pow(2).sum((-2, -1))[None, None] - 2 * dot).numpy()
    out = np.empty((hm.shape[0], grid.cells), dtype=np.int64)
    for r in range(hm.shape[0]):
        rows, cols = linear_sum_assignment(cost[r])
        out[r, rows] = cols
    perm = torch.from_numpy(out)
    return perm if label == "origin" else _inverse(perm)


def puzzle_accuracy(predicted: Any, true: Any) -> dict[str, float]:
    """``cells``: the fraction of cells whose patch was placed right (chance ``1/n²``);
    ``puzzles``: the fraction of puzzles solved completely."""
    p = as_tensor(predicted, "predicted", dtype=torch.long)
    t = as_tensor(true, "true", dtype=torch.long)
    if p.shape != t.shape or p.dim() != 2:
        raise ValueError(f"predicted and true: expected the same shape (N, n²), got "
                         f"{tuple(p.shape)} and {tuple(t.shape)}")
    right = p == t
    return {"cells": float(right.float().mean()), "puzzles": float(right.all(dim=1).float().mean())}


class JigsawTask:
    """The pretext task as a training loop sees it.

    Args:
        size: ``(W, H)`` of the crops; n, gap: see :class:`JigsawGrid`.
        sigma: σ of the label Gaussians, heatmap pixels.
        label: ``'origin'`` or ``'current'`` (see the module docstring).
        stride: the network's output stride (4 for every labcore pose backbone).
        permutations: ``None`` (fully random) or the number of maximally distant
            permutations to draw from (:func:`hamming_permutations`), or such a set.
        jitter: random patch offsets (see :func:`make_puzzles`).
        fill: the value of the gap pixels.

    ``make(images, generator)`` → ``{'images': shuffled (N, C, H, W), 'labels': (N, n², h, w),
    'perm': (N, n²), 'puzzles': the Puzzles (to reassemble or draw them)}``; ``decode(heatmaps)`` → predicted ``perm``.
    """

    def __init__(
        self,
        size: Any,
        n: int = 3,
        gap: int = 2,
        sigma: float = 1.0,
        label: str = "origin",
        stride: int = 4,
        permutations: Any = None,
        jitter: bool = True,
        fill: float = 0.5,
    ) -> None:
        self.grid = JigsawGrid(size, n, gap)
        self.sigma = check_number(sigma, "sigma", low=0.0, low_inclusive=False)
        self.label = check_choice(label, "label", LABELS)
        self.stride = check_int(stride, "stride", low=1)
        w, h = self.grid.size
        if w % self.stride or h % self.stride:
            raise ValueError(f"stride: the crop {w}×{h} must be a multiple of the stride {self.stride}")
        self.heatmap_size = (w // self.stride, h // self.stride)
        if isinstance(permutations, (int, np.integer)) and not isinstance(permutations, bool):
            permutations = hamming_permutations(int(permutations), self.grid.cells)
        self.permutations = None if permutations is None else check_permutations(
            permutations, self.grid.cells, "permutations")
        self.jitter = bool(jitter)
        self.fill = check_number(fill, "fill")

    def puzzles(self, count: int, generator: torch.Generator | None = None) -> Puzzles:
        return make_puzzles(count, self.grid, generator, self.permutations, self.jitter)

    def make(self, images: Any, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        x = self.grid.check_images(images)
        pz = self.puzzles(x.shape[0], generator)
        return {
            "images": pz.shuffle(x, self.fill),
            "labels": pz.labels(self.heatmap_size, self.sigma, self.label).to(x.device),
            "perm": pz.perm,
            "puzzles": pz,
        }

    def decode(self, heatmaps: Any) -> torch.Tensor:
        return decode_permutation(heatmaps, self.grid, self.sigma, self.label)

    def __repr__(self) -> str:
        perms = "random" if self.permutations is None else f"{len(self.permutations)} fixed"
        return (f"JigsawTask(size={self.grid.size}, n={self.grid.n}, gap={self.grid.gap}, "
                f"sigma={self.sigma}, label={self.label!r}, permutations={perms}, jitter={self.jitter})")


# ------------------------------------------------------------------------------ 5. models


def jigsaw_model(backbone: nn.Module, n: int = 3) -> TopDownHeatmapNet:
    """The pretext network: ``backbone`` + a 1×1 heatmap head with ``n²`` channels —
    a top-down heatmap network whose "joints" are the puzzle's cells.
    ``(N, 3, H, W) -> (N, n², H/stride, W/stride)``."""
    n = check_int(n, "n", low=2)
    return TopDownHeatmapNet(backbone, num_joints=n * n)


def jigsaw_loss(pred: Any, labels: Any) -> torch.Tensor:
    """HRNet's ``JointsMSELoss`` (½·MSE) on the ``n²`` label maps, every channel weight 1:
    the pose task's own loss."""
    return joints_mse_loss(pred, labels)


def _backbone_of(model: nn.Module, name: str) -> nn.Module:
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, nn.Module):
        raise TypeError(f"{name}: expected a model with a '.backbone' module "
                        f"(e.g. TopDownHeatmapNet), got {type(model).__name__}")
    return backbone


def transfer_backbone(source: nn.Module, target: nn.Module) -> list[str]:
    """Copy every tensor of ``source.backbone`` — parameters *and* buffers (BatchNorm
    running statistics, batch counters) — into ``target.backbone``, bit for bit; leave
    everything else in ``target`` (its head) untouched. Returns the copied names.

    The two backbones must have the same tensors (names and shapes): a mismatch is a
    ``ValueError`` that lists the differences."""
    src = _backbone_of(source, "source").state_dict()
    dst_module = _backbone_of(target, "target")
    dst = dst_module.state_dict()
    missing = sorted(set(dst) - set(src))
    extra = sorted(set(src) - set(dst))
    shapes = sorted(k for k in set(src) & set(dst) if src[k].shape != dst[k].shape)
    if missing or extra or shapes:
        detail = [f"missing in source: {missing[:5]}" if missing else "",
                  f"not in target: {extra[:5]}" if extra else "",
                  f"shape differs: {[(k, tuple(src[k].shape), tuple(dst[k].shape)) for k in shapes[:5]]}"
                  if shapes else ""]
        raise ValueError("target: its backbone does not match the source's — " + "; ".join(d for d in detail if d))
    with torch.no_grad():
        for k, v in dst.items():
            v.copy_(src[k])
    return sorted(dst)


def pose_model_from(pretrained: nn.Module, num_joints: int) -> TopDownHeatmapNet:
    """A pose network initialised from a pretrained one: a copy of its backbone (every
    tensor, bit for bit) and a new :class:`~labcore.methods.heatmap.HeatmapHead` with
    ``num_joints`` channels, initialised as for training from scratch (N(0, 0.001²), bias
    0). The pretrained model is not modified."""
    backbone = copy.deepcopy(_backbone_of(pretrained, "pretrained"))
    return TopDownHeatmapNet(backbone, num_joints)

