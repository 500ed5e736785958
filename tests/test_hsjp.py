"""Tests of labcore.methods.hsjp (HSJP, heatmap-style jigsaw puzzles, Zhang et al. 2012.07101).

No official code exists, so every expected value is computed independently of the module:
cell edges and patch sizes from ``floor(i·W/n)`` written out, shuffled images by explicit
slicing (literal expected arrays on tiny cases, a per-patch loop on random ones), label peaks
from ``int(x/stride + 0.5)`` on plain floats, decoding against a brute-force search over all
permutations, the Hamming selection against a greedy loop over ``itertools.permutations``,
and backbone transfer tensor by tensor (buffers included).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from labcore.methods import hsjp as H
from labcore.methods.heatmap import TopDownHeatmapNet
from labcore.nn import HRNetLite, SimpleBaseline

pytestmark = pytest.mark.usefixtures("one_thread")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- references


def ref_edges(length: int, n: int) -> list[int]:
    return [math.floor(i * length / n) for i in range(n + 1)]


def ref_cell(grid: H.JigsawGrid, i: int) -> tuple[int, int]:
    """Top-left ``(x0, y0)`` of row-major cell ``i``, from the edges written out."""
    w, h = grid.size
    r, c = divmod(i, grid.n)
    return ref_edges(w, grid.n)[c], ref_edges(h, grid.n)[r]


def ref_patch(grid: H.JigsawGrid) -> tuple[int, int]:
    w, h = grid.size
    xe, ye = ref_edges(w, grid.n), ref_edges(h, grid.n)
    return (min(b - a for a, b in zip(xe, xe[1:])) - grid.gap,
            min(b - a for a, b in zip(ye, ye[1:])) - grid.gap)


def ref_move(pz: H.Puzzles, x: torch.Tensor, fill: float, unshuffle: bool = False) -> torch.Tensor:
    """Shuffled cell i shows original patch perm[i]: a loop of rectangle copies (reversed
    for the unshuffle)."""
    g = pz.grid
    pw, ph = ref_patch(g)
    out = torch.full_like(x, fill)
    for b in range(x.shape[0]):
        for i in range(g.n * g.n):
            j = int(pz.perm[b, i])
            xi, yi = ref_cell(g, i)
            xj, yj = ref_cell(g, j)
            dx, dy = (int(v) for v in pz.place[b, i])
            sx, sy = (int(v) for v in pz.cut[b, j])
            shown = (b, slice(None), slice(yi + dy, yi + dy + ph), slice(xi + dx, xi + dx + pw))
            source = (b, slice(None), slice(yj + sy, yj + sy + ph), slice(xj + sx, xj + sx + pw))
            dst, src = (source, shown) if unshuffle else (shown, source)
            out[dst] = x[src]
    return out


def ref_shuffle(pz: H.Puzzles, x: torch.Tensor, fill: float) -> torch.Tensor:
    return ref_move(pz, x, fill)


def ref_unshuffle(pz: H.Puzzles, y: torch.Tensor, fill: float) -> torch.Tensor:
    return ref_move(pz, y, fill, unshuffle=True)


def ref_inverse(perm: torch.Tensor) -> torch.Tensor:
    inv = torch.empty_like(perm)
    for b in range(perm.shape[0]):
        for i in range(perm.shape[1]):
            inv[b, int(perm[b, i])] = i
    return inv


def ref_peak(grid: H.JigsawGrid, cell: int, heatmap_size: tuple[int, int]) -> tuple[int, int]:
    """``(row, col)`` of the MSRA-rounded centre of ``cell`` on a ``(w, h)`` heatmap."""
    w, h = grid.size
    hw, hh = heatmap_size
    x0, y0 = ref_cell(grid, cell)
    r, c = divmod(cell, grid.n)
    xe, ye = ref_edges(w, grid.n), ref_edges(h, grid.n)
    cx = (xe[c] + xe[c + 1] - 1) / 2
    cy = (ye[r] + ye[r + 1] - 1) / 2
    assert (x0, y0) == (xe[c], ye[r])
    return int(cy / (h / hh) + 0.5), int(cx / (w / hw) + 0.5)


def is_perm_rows(p: torch.Tensor, cells: int) -> bool:
    return p.dim() == 2 and p.shape[1] == cells and all(
        sorted(row) == list(range(cells)) for row in p.tolist())


def min_pairwise_hamming(p: np.ndarray) -> int:
    d = (p[:, None, :] != p[None, :, :]).sum(-1)
    np.fill_diagonal(d, p.shape[1] + 1)
    return int(d.min())


def tiny_sb(widths=(8, 16, 32, 64)) -> SimpleBaseline:
    return SimpleBaseline(layers=(1, 1, 1, 1), widths=widths, stem_channels=8,
                          deconv_channels=(16, 16, 16))


def tiny_hr(widths=(8, 16)) -> HRNetLite:
    return HRNetLite(widths=widths, blocks=1, stem_channels=8)


BACKBONES = [pytest.param(tiny_sb, 64, id="simplebaseline"), pytest.param(tiny_hr, 32, id="hrnetlite")]


# ------------------------------------------------------------------------------- the grid


def test_grid_edges_patch_and_centres_by_hand():
    g = H.JigsawGrid(64, n=3, gap=0)
    assert g.size == (64, 64) and g.cells == 9
    assert g.x_edges == (0, 21, 42, 64) and g.y_edges == (0, 21, 42, 64)
    assert g.patch == (21, 21)
    c = g.centres()
    assert c.dtype == torch.float32 and c.shape == (9, 2)
    xs = [10.0, 31.0, 52.5]
    expected = torch.tensor([[xs[k % 3], xs[k // 3]] for k in range(9)])
    assert torch.equal(c, expected)
    assert g.cell_origins().tolist() == [[x, y] for y in (0, 21, 42) for x in (0, 21, 42)]
    assert g.cell_sizes().tolist() == [[w, h] for h in (21, 21, 22) for w in (21, 21, 22)]
    assert g.slack().tolist() == [[w - 21, h - 21] for h in (21, 21, 22) for w in (21, 21, 22)]


def test_grid_non_square_with_gap():
    g = H.JigsawGrid((11, 7), n=2, gap=1)
    assert g.x_edges == (0, 5, 11) and g.y_edges == (0, 3, 7)
    assert g.patch == (4, 2)
    assert g.slack().tolist() == [[1, 1], [2, 1], [1, 2], [2, 2]]
    assert torch.equal(g.centres(), torch.tensor([[2.0, 1.0], [7.5, 1.0], [2.0, 4.5], [7.5, 4.5]]))
    g2 = H.JigsawGrid((48, 36), n=3, gap=2)
    assert g2.x_edges == tuple(ref_edges(48, 3)) and g2.y_edges == tuple(ref_edges(36, 3))
    assert g2.patch == (14, 10)


# ------------------------------------------------------------------- shuffle, by hand


def test_shuffle_4x4_by_hand():
    g = H.JigsawGrid(4, n=2, gap=0)
    zeros = torch.zeros(1, 4, 2, dtype=torch.long)
    pz = H.Puzzles(g, torch.tensor([[2, 0, 3, 1]]), zeros, zeros)
    x = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
    expected = torch.tensor([[8, 9, 0, 1],
                             [12, 13, 4, 5],
                             [10, 11, 2, 3],
                             [14, 15, 6, 7]], dtype=torch.float32).view(1, 1, 4, 4)
    # the same by explicit slicing: cell i <- patch perm[i]
    sl = [(slice(0, 2), slice(0, 2)), (slice(0, 2), slice(2, 4)),
          (slice(2, 4), slice(0, 2)), (slice(2, 4), slice(2, 4))]
    by_slices = torch.empty_like(x)
    for i, j in enumerate([2, 0, 3, 1]):
        by_slices[0, 0][sl[i]] = x[0, 0][sl[j]]
    assert torch.equal(by_slices, expected)
    s = pz.shuffle(x)
    assert torch.equal(s, expected)
    assert torch.equal(pz.unshuffle(s), x)
    assert pz.source_index().tolist() == [expected.flatten().long().tolist()]
    assert pz.inverse.tolist() == [[1, 3, 0, 2]]
    assert bool(pz.covered().all())


# W=11, H=7, n=2, gap=1: patch 4×2; cells (x0, y0): 0:(0,0) 1:(5,0) 2:(0,3) 3:(5,3)
GAP_PERM = [3, 2, 0, 1]
GAP_CUT = [[1, 0], [2, 1], [0, 2], [2, 1]]     # per original patch j, (dx, dy)
GAP_PLACE = [[0, 1], [1, 0], [1, 2], [0, 0]]   # per shuffled cell i, (dx, dy)
# (dst rows, dst cols) <- (src rows, src cols), worked out by hand
GAP_MOVES = [
    ((slice(1, 3), slice(0, 4)), (slice(4, 6), slice(7, 11))),   # cell 0 <- patch 3
    ((slice(0, 2), slice(6, 10)), (slice(5, 7), slice(0, 4))),   # cell 1 <- patch 2
    ((slice(5, 7), slice(1, 5)), (slice(0, 2), slice(1, 5))),    # cell 2 <- patch 0
    ((slice(3, 5), slice(5, 9)), (slice(1, 3), slice(7, 11))),   # cell 3 <- patch 1
]


def gap_puzzle() -> H.Puzzles:
    g = H.JigsawGrid((11, 7), n=2, gap=1)
    return H.Puzzles(g, torch.tensor([GAP_PERM]), torch.tensor([GAP_CUT]), torch.tensor([GAP_PLACE]))


def test_shuffle_with_gap_and_offsets_by_hand():
    pz = gap_puzzle()
    x = torch.rand(1, 2, 7, 11, generator=gen(0))
    fill = -3.0
    expected = torch.full_like(x, fill)
    for dst, src in GAP_MOVES:
        expected[0, :, dst[0], dst[1]] = x[0, :, src[0], src[1]]
    s = pz.shuffle(x, fill=fill)
    assert torch.equal(s, expected)
    assert torch.equal(s, ref_shuffle(pz, x, fill))
    # the gaps: every pixel outside the four placed rectangles is the fill
    assert int((s[0, 0] == fill).sum()) == 7 * 11 - 4 * 4 * 2

    back = torch.full_like(x, fill)
    covered = torch.zeros(7, 11, dtype=torch.bool)
    for dst, src in GAP_MOVES:
        back[0, :, src[0], src[1]] = s[0, :, dst[0], dst[1]]
        covered[src] = True
    u = pz.unshuffle(s, fill=fill)
    assert torch.equal(u, back)
    assert torch.equal(pz.covered()[0], covered)
    assert torch.equal(u[:, :, covered], x[:, :, covered])
    assert bool((u[:, :, ~covered] == fill).all())

    # source_index: with x = arange the shuffled image IS the index map
    idx_img = torch.arange(77, dtype=torch.float32).view(1, 1, 7, 11)
    assert torch.equal(pz.source_index().view(1, 1, 7, 11).float(), pz.shuffle(idx_img, fill=-1.0))


def test_offset_legal_in_one_cell_but_not_its_own_is_rejected():
    g = H.JigsawGrid((11, 7), n=2, gap=1)     # slack x: cells 0, 2 → 1; cells 1, 3 → 2
    perm = torch.tensor([GAP_PERM])
    ok = torch.tensor([GAP_CUT])
    bad = ok.clone()
    bad[0, 0, 0] = 2                            # fine for cell 1, not for cell 0
    with pytest.raises(ValueError, match="cut"):
        H.Puzzles(g, perm, bad, ok)
    with pytest.raises(ValueError, match="place"):
        H.Puzzles(g, perm, ok, bad)
    neg = ok.clone()
    neg[0, 3, 1] = -1
    with pytest.raises(ValueError, match="place"):
        H.Puzzles(g, perm, ok, neg)
    with pytest.raises(ValueError, match="cut"):
        H.Puzzles(g, perm, neg, ok)
    big = ok.clone()
    big[0, 3] = torch.tensor([2, 3])            # y slack of cell 3 is 2
    with pytest.raises(ValueError, match="cut"):
        H.Puzzles(g, perm, big, ok)
    with pytest.raises(ValueError, match="cut"):  # wrong shape
        H.Puzzles(g, perm, ok[:, :3], ok)
    with pytest.raises(TypeError):
        H.Puzzles(g, perm, ok.float(), ok)


# ------------------------------------------------------------------- round trips, random


@pytest.mark.parametrize("size,n", [((63, 63), 3), ((96, 96), 3), ((64, 64), 2), ((64, 64), 4),
                                    ((48, 36), 3), ((48, 36), 4)])
def test_round_trip_is_identity_when_tiling_exactly(size, n):
    g = H.JigsawGrid(size, n=n, gap=0)
    assert bool((g.slack() == 0).all())
    w, h = size
    x = torch.rand(6, 3, h, w, generator=gen(n + w))
    pz = H.make_puzzles(6, g, gen(1), jitter=True)
    assert not bool((pz.perm == torch.arange(n * n)).all(dim=1).all())   # not all identities
    s = pz.shuffle(x, fill=0.5)
    assert torch.equal(s, ref_shuffle(pz, x, 0.5))
    # a pure rearrangement: the same multiset of values in every image/channel
    assert torch.equal(s.flatten(2).sort(-1).values, x.flatten(2).sort(-1).values)
    assert torch.equal(pz.unshuffle(s, fill=0.5), x)
    assert bool(pz.covered().all())
    assert bool((pz.source_index() >= 0).all())


@pytest.mark.parametrize("size,n,gap", [((64, 64), 3, 2), ((64, 64), 3, 0), ((48, 36), 3, 3),
                                        ((11, 7), 2, 1), ((40, 33), 4, 1)])
def test_round_trip_with_gap_exact_on_covered_pixels(size, n, gap):
    g = H.JigsawGrid(size, n=n, gap=gap)
    w, h = size
    x = torch.rand(5, 2, h, w, generator=gen(7)) * 2 - 1
    fill = 9.0                                   # outside x's range
    pz = H.make_puzzles(5, g, gen(3))
    s = pz.shuffle(x, fill=fill)
    assert torch.equal(s, ref_shuffle(pz, x, fill))
    u = pz.unshuffle(s, fill=fill)
    assert torch.equal(u, ref_unshuffle(pz, s, fill))
    cov = pz.covered()
    assert cov.shape == (5, h, w) and cov.dtype == torch.bool
    m = cov[:, None].expand_as(x)
    assert torch.equal(u[m], x[m])
    assert bool((u[~m] == fill).all())
    pw, ph = ref_patch(g)
    assert g.patch == (pw, ph)
    assert cov.sum(dim=(1, 2)).tolist() == [n * n * pw * ph] * 5
    assert torch.equal(cov.float().mean(dim=(1, 2)), torch.full((5,), n * n * pw * ph / (w * h)))
    # the shuffled image's gaps: exactly the pixels no patch is placed on
    idx = pz.source_index()
    assert ((idx >= 0).sum(1)).tolist() == [n * n * pw * ph] * 5
    # source_index agrees with shuffle: gather where >= 0, fill elsewhere
    flat = x.flatten(2)
    gathered = torch.gather(flat, 2, idx.clamp(min=0)[:, None].expand(-1, 2, -1))
    sf = s.flatten(2)
    valid = (idx >= 0)[:, None].expand_as(sf)
    assert torch.equal(sf[valid], gathered[valid])
    assert bool((sf[~valid] == fill).all())
    # the source pixels named by the index are exactly the covered ones, each once
    src = idx[idx >= 0].view(5, -1).sort(1).values
    assert bool((src.diff(dim=1) > 0).all())
    assert torch.equal(src, cov.flatten(1).nonzero()[:, 1].view(5, -1))


def test_shuffle_non_contiguous_and_dtype_preserved():
    g = H.JigsawGrid(16, n=3, gap=1)
    pz = H.make_puzzles(2, g, gen(0))
    x = torch.rand(2, 3, 16, 16, generator=gen(1), dtype=torch.float64)
    ref = ref_shuffle(pz, x, 0.25)
    for view in (x.to(memory_format=torch.channels_last), x.transpose(2, 3).contiguous().transpose(2, 3),
                 torch.cat([x, x], dim=3)[..., :16]):
        s = pz.shuffle(view, fill=0.25)
        assert s.dtype == torch.float64 and s.shape == x.shape
        assert torch.equal(s, ref)
    # numpy input works too, and the input is not modified
    before = x.clone()
    assert torch.equal(pz.shuffle(x.numpy(), fill=0.25), ref)
    assert torch.equal(x, before)


# -------------------------------------------------------------------------------- labels


@pytest.mark.parametrize("size,n,hm", [((64, 64), 3, (16, 16)), ((64, 64), 4, (16, 16)),
                                       ((48, 36), 3, (12, 9)), ((32, 32), 2, (8, 8))])
def test_labels_peak_at_cell_centres(size, n, hm):
    g = H.JigsawGrid(size, n=n, gap=1)
    pz = H.make_puzzles(8, g, gen(n))
    inv = ref_inverse(pz.perm)
    assert torch.equal(pz.inverse, inv)
    hw, hh = hm
    for label, cells_of in (("origin", pz.perm), ("current", inv)):
        lab = pz.labels(hm, sigma=1.0, label=label)
        assert lab.shape == (8, n * n, hh, hw) and lab.dtype == torch.float32
        assert torch.equal(lab.amax(dim=(-2, -1)), torch.ones(8, n * n))
        flat = lab.flatten(2).argmax(-1)
        for b in range(8):
            for k in range(n * n):
                r, c = ref_peak(g, int(cells_of[b, k]), hm)
                assert divmod(int(flat[b, k]), hw) == (r, c)
                assert int((lab[b, k] == 1).sum()) == 1
                if c + 1 < hw:   # a Gaussian of σ = 1 heatmap pixel
                    assert math.isclose(float(lab[b, k, r, c + 1]), math.exp(-0.5), rel_tol=1e-6)


def test_label_templates_by_hand_64_n3():
    g = H.JigsawGrid(64, n=3, gap=2)
    ident = H.Puzzles(g, torch.arange(9)[None], torch.zeros(1, 9, 2, dtype=torch.long),
                      torch.zeros(1, 9, 2, dtype=torch.long))
    lab = ident.labels((16, 16), sigma=2.0)
    mu = [3, 8, 13]          # int(10/4+.5), int(31/4+.5), int(52.5/4+.5)
    for k in range(9):
        assert divmod(int(lab[0, k].argmax()), 16) == (mu[k // 3], mu[k % 3])
    # every puzzle's labels are the identity's templates, re-indexed by perm / inverse
    pz = H.make_puzzles(6, g, gen(5))
    assert torch.equal(pz.labels((16, 16), 2.0, "origin"), lab[0][pz.perm])
    assert torch.equal(pz.labels((16, 16), 2.0, "current"), lab[0][ref_inverse(pz.perm)])


# ------------------------------------------------------------------------------ decoding


@pytest.mark.parametrize("label", H.LABELS)
@pytest.mark.parametrize("n", [2, 3, 4])
def test_perfect_labels_decode_to_true_permutation(n, label):
    g = H.JigsawGrid(64, n=n, gap=2)
    pz = H.make_puzzles(60, g, gen(10 * n))
    lab = pz.labels((16, 16), sigma=1.0, label=label)
    assert torch.equal(H.decode_permutation(lab, g, sigma=1.0, label=label), pz.perm)
    # moderate noise cannot move a peak's best cell (margin ≈ 2‖T‖² ≫ noise)
    noisy = lab + 0.1 * torch.randn(lab.shape, generator=gen(1))
    assert torch.equal(H.decode_permutation(noisy, g, sigma=1.0, label=label), pz.perm)
    # the wrong label convention gives the inverse, not the permutation
    other = "current" if label == "origin" else "origin"
    assert torch.equal(H.decode_permutation(lab, g, sigma=1.0, label=other), ref_inverse(pz.perm))


@pytest.mark.parametrize("label", H.LABELS)
def test_noisy_and_random_maps_decode_to_valid_permutations(label):
    g = H.JigsawGrid(48, n=3, gap=0)
    pz = H.make_puzzles(40, g, gen(2))
    lab = pz.labels((12, 12), label=label)
    for maps in (lab + 2.0 * torch.randn(lab.shape, generator=gen(3)),
                 torch.rand(40, 9, 12, 12, generator=gen(4)),
                 torch.zeros(40, 9, 12, 12),
                 lab[:, :1].expand(-1, 9, -1, -1).clone()):   # every channel the same map
        p = H.decode_permutation(maps, g, label=label)
        assert p.dtype == torch.long and p.shape == (40, 9)
        assert is_perm_rows(p, 9)


def brute_force_decode(maps: torch.Tensor, templates: torch.Tensor) -> tuple[list[int], float, float]:
    """Best and second-best total squared error over all one-to-one channel→cell maps."""
    k = maps.shape[0]
    scores = []
    for perm in itertools.permutations(range(k)):
        scores.append((sum(float(((maps[c].double() - templates[perm[c]].double()) ** 2).sum())
                           for c in range(k)), list(perm)))
    scores.sort()
    return scores[0][1], scores[0][0], scores[1][0]


def test_decode_resolves_collision_by_total_cost():
    g = H.JigsawGrid(32, n=2, gap=0)
    zeros = torch.zeros(1, 4, 2, dtype=torch.long)
    T = H.Puzzles(g, torch.arange(4)[None], zeros, zeros).labels((8, 8), sigma=1.0)[0]
    # channels 0 and 1 both peak at cell 0 (channel 0 also likes cell 1 a lot);
    # per-channel argmax would say [0, 0, 2, 3]; channel order greedy would say [0, 1, 2, 3]
    maps = torch.stack([0.8 * T[0] + 0.7 * T[1], 1.0 * T[0], T[2], 0.9 * T[3] + 0.3 * T[2]])
    assert [int(m.argmax()) for m in maps[:2]] == [int(T[0].argmax())] * 2
    best, cost, second = brute_force_decode(maps, T)
    assert best == [1, 0, 2, 3] and second - cost > 0.1
    assert H.decode_permutation(maps[None], g, sigma=1.0).tolist() == [best]
    # 'current': channel j → cell c means inverse[j] = c, so perm is its inverse
    assert H.decode_permutation(maps[None], g, sigma=1.0, label="current").tolist() == [[1, 0, 2, 3]]
    maps2 = torch.stack([T[3], 0.6 * T[3] + 0.5 * T[0], 0.9 * T[3], T[1]])
    best2, c2, s2 = brute_force_decode(maps2, T)
    assert s2 - c2 > 0.1
    assert H.decode_permutation(maps2[None], g).tolist() == [best2]
    assert H.decode_permutation(maps2[None], g, label="current").tolist() == \
        ref_inverse(torch.tensor([best2])).tolist()


def test_decode_matches_brute_force_on_random_maps():
    g = H.JigsawGrid(32, n=2, gap=0)
    zeros = torch.zeros(1, 4, 2, dtype=torch.long)
    T = H.Puzzles(g, torch.arange(4)[None], zeros, zeros).labels((8, 8), sigma=1.0)[0]
    # random mixtures of templates plus noise
    mix = torch.rand(12, 4, 4, generator=gen(8))
    maps = torch.einsum("nkc,chw->nkhw", mix, T) + 0.2 * torch.rand(12, 4, 8, 8, generator=gen(9))
    got = H.decode_permutation(maps, g, sigma=1.0)
    for b in range(12):
        best, cost, second = brute_force_decode(maps[b], T)
        if second - cost > 1e-6:        # a unique optimum
            assert got[b].tolist() == best
        else:
            total = sum(float(((maps[b, c].double() - T[int(got[b, c])].double()) ** 2).sum())
                        for c in range(4))
            assert math.isclose(total, cost, rel_tol=1e-9)


def test_puzzle_accuracy_by_hand():
    pred = [[0, 1, 2, 3], [1, 0, 2, 3], [3, 2, 1, 0]]
    true = [[0, 1, 2, 3], [0, 1, 2, 3], [3, 2, 1, 0]]
    acc = H.puzzle_accuracy(pred, true)
    assert acc == {"cells": pytest.approx(10 / 12), "puzzles": pytest.approx(2 / 3)}
    acc = H.puzzle_accuracy(torch.tensor([[1, 0, 3, 2]]), torch.tensor([[0, 1, 2, 3]]))
    assert acc == {"cells": 0.0, "puzzles": 0.0}
    acc = H.puzzle_accuracy(torch.tensor([[0, 2, 1, 3]]), torch.tensor([[0, 1, 2, 3]]))
    assert acc["cells"] == 0.5 and acc["puzzles"] == 0.0
    with pytest.raises(ValueError, match="predicted and true"):
        H.puzzle_accuracy([[0, 1, 2, 3]], [[0, 1, 2]])
    with pytest.raises(ValueError, match="predicted and true"):
        H.puzzle_accuracy([0, 1, 2, 3], [0, 1, 2, 3])


# ------------------------------------------------------------------------ permutations


def test_random_permutations_valid_uniform_and_seeded():
    p = H.random_permutations(600, 3, gen(0))
    assert p.shape == (600, 3) and p.dtype == torch.long and is_perm_rows(p, 3)
    counts = {tuple(r): 0 for r in itertools.permutations(range(3))}
    for r in p.tolist():
        counts[tuple(r)] += 1
    assert all(50 <= c <= 150 for c in counts.values()), counts
    q = H.random_permutations(50, 9, gen(1))
    assert is_perm_rows(q, 9)
    assert torch.equal(q, H.random_permutations(50, 9, gen(1)))
    assert not torch.equal(q, H.random_permutations(50, 9, gen(2)))
    with pytest.raises(ValueError, match="count"):
        H.random_permutations(0, 9)
    with pytest.raises(ValueError, match="cells"):
        H.random_permutations(3, 1)


def ref_greedy(first: list[int], cells: int, count: int) -> list[list[int]]:
    """Farthest-point selection over itertools' lexicographic order, ties → lowest index."""
    cand = np.array(list(itertools.permutations(range(cells))))
    chosen = [int(np.flatnonzero((cand == np.array(first)).all(1))[0])]
    for _ in range(count - 1):
        best, best_k = -1, -1
        for k in range(len(cand)):
            d = min(int((cand[k] != cand[c]).sum()) for c in chosen)
            if d > best:
                best, best_k = d, k
        chosen.append(best_k)
    return cand[chosen].tolist()


@pytest.mark.parametrize("cells,count", [(4, 24), (5, 25), (6, 12)])
def test_hamming_is_greedy_max_min_with_lowest_index_ties(cells, count):
    p = H.hamming_permutations(count, cells, seed=3)
    assert p.dtype == torch.long and p.shape == (count, cells)
    assert is_perm_rows(p, cells)
    assert len({tuple(r) for r in p.tolist()}) == count
    assert p.tolist() == ref_greedy(p[0].tolist(), cells, count)


def test_hamming_nine_cells_beats_random_sets():
    p = H.hamming_permutations(30, 9)
    assert p.shape == (30, 9) and is_perm_rows(p, 9)
    assert len({tuple(r) for r in p.tolist()}) == 30
    greedy = min_pairwise_hamming(p.numpy())
    randoms = [min_pairwise_hamming(H.random_permutations(30, 9, gen(s)).numpy()) for s in range(8)]
    assert greedy >= max(randoms)
    assert greedy > min(randoms)
    # every added permutation is at least as far from the earlier ones as any later is
    d = (p.numpy()[:, None] != p.numpy()[None]).sum(-1)
    steps = [int(d[k, :k].min()) for k in range(1, 30)]
    assert steps == sorted(steps, reverse=True)


def test_hamming_deterministic_seeded_and_cache_safe():
    a = H.hamming_permutations(10, 9, seed=0)
    b = H.hamming_permutations(10, 9, seed=0)
    assert torch.equal(a, b)
    a[0] = 0                                   # mutate the returned tensor
    assert torch.equal(H.hamming_permutations(10, 9, seed=0), b)
    assert not torch.equal(H.hamming_permutations(10, 9, seed=1), b)


def test_hamming_random_pool_for_many_cells():
    p = H.hamming_permutations(20, 10, seed=1, pool=200)
    assert p.shape == (20, 10) and is_perm_rows(p, 10)
    assert len({tuple(r) for r in p.tolist()}) == 20
    assert torch.equal(p, H.hamming_permutations(20, 10, seed=1, pool=200))
    with pytest.raises(ValueError, match="count"):
        H.hamming_permutations(11, 10, pool=10)


def test_hamming_count_larger_than_candidates():
    p = H.hamming_permutations(2, 2)
    assert sorted(p.tolist()) == [[0, 1], [1, 0]]
    with pytest.raises(ValueError, match="count"):
        H.hamming_permutations(3, 2)
    with pytest.raises(ValueError, match="count"):
        H.hamming_permutations(7, 3)
    with pytest.raises(ValueError, match="count"):
        H.hamming_permutations(0, 9)
    with pytest.raises(ValueError, match="cells"):
        H.hamming_permutations(1, 1)


def test_hamming_many_cells_no_int8_overflow():
    p = H.hamming_permutations(3, 144, seed=0, pool=8)
    assert is_perm_rows(p, 144)


# ---------------------------------------------------------------------------- make_puzzles


def test_make_puzzles_jitter_covers_every_offset_and_no_more():
    g = H.JigsawGrid(64, n=3, gap=3)             # cells 21, 21, 22 → slack 3, 3, 4
    slack = g.slack()
    assert slack[:, 0].tolist() == [3, 3, 4] * 3
    assert slack[:, 1].tolist() == [3] * 3 + [3] * 3 + [4] * 3
    pz = H.make_puzzles(400, g, gen(0))
    for off in (pz.cut, pz.place):
        assert off.shape == (400, 9, 2) and off.dtype == torch.long
        assert bool((off >= 0).all()) and bool((off <= slack).all())
        for k in range(9):
            for a in range(2):
                assert sorted(off[:, k, a].unique().tolist()) == list(range(int(slack[k, a]) + 1))
    assert not torch.equal(pz.cut, pz.place)
    assert is_perm_rows(pz.perm, 9)


def test_make_puzzles_no_jitter_centres_patches():
    g = H.JigsawGrid(64, n=3, gap=3)
    pz = H.make_puzzles(4, g, gen(0), jitter=False)
    expected = torch.tensor([[1, 1], [1, 1], [2, 1], [1, 1], [1, 1], [2, 1], [1, 2], [1, 2], [2, 2]])
    assert torch.equal(g.slack() // 2, expected)
    assert torch.equal(pz.cut, expected.expand(4, -1, -1))
    assert torch.equal(pz.place, expected.expand(4, -1, -1))


def test_make_puzzles_from_a_set_and_seeded():
    g = H.JigsawGrid(32, n=2, gap=0)
    pset = torch.tensor([[1, 0, 3, 2], [3, 2, 1, 0], [0, 1, 2, 3], [2, 3, 0, 1], [1, 3, 0, 2]])
    pz = H.make_puzzles(300, g, gen(4), permutations=pset)
    rows = {tuple(r) for r in pset.tolist()}
    drawn = [tuple(r) for r in pz.perm.tolist()]
    assert set(drawn) == rows                  # only from the set, and all of it
    again = H.make_puzzles(300, g, gen(4), permutations=pset)
    assert torch.equal(again.perm, pz.perm) and torch.equal(again.cut, pz.cut)
    other = H.make_puzzles(300, g, gen(5), permutations=pset)
    assert not torch.equal(other.perm, pz.perm)
    with pytest.raises(ValueError, match="permutations"):
        H.make_puzzles(3, g, permutations=[[0, 0, 1, 2]])
    with pytest.raises(ValueError, match="permutations"):
        H.make_puzzles(3, g, permutations=[[0, 1, 2]])
    with pytest.raises(ValueError, match="permutations"):
        H.make_puzzles(3, g, permutations=[[0, 1, 2, 3], [0, 1, 2, 4]])
    with pytest.raises(ValueError, match="count"):
        H.make_puzzles(0, g)


# -------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("n", [1, 0, -2])
def test_error_n_below_two(n):
    with pytest.raises(ValueError, match="n"):
        H.JigsawGrid(64, n=n)
    with pytest.raises(ValueError, match="n"):
        H.JigsawTask(64, n=n)
    with pytest.raises(ValueError, match="n"):
        H.jigsaw_model(tiny_sb(), n)


def test_error_crop_too_small():
    with pytest.raises(ValueError, match="size"):
        H.JigsawGrid(2, n=3, gap=0)
    with pytest.raises(ValueError, match="size"):
        H.JigsawGrid((64, 2), n=3, gap=0)
    with pytest.raises(ValueError, match="size"):
        H.JigsawGrid(6, n=3, gap=2)            # 2-px cells − 2 → 0-px patches
    assert H.JigsawGrid(6, n=3, gap=1).patch == (1, 1)
    assert H.JigsawGrid(3, n=3, gap=0).patch == (1, 1)
    with pytest.raises(ValueError, match="gap"):
        H.JigsawGrid(64, n=3, gap=-1)
    with pytest.raises(TypeError):
        H.JigsawGrid(64, n=2.0)


@pytest.mark.parametrize("bad", [[0, 0, 1, 2], [0, 1, 2, 4], [-1, 1, 2, 3], [0, 1, 2], [0, 1, 2, 3, 4]])
def test_error_bad_permutation_everywhere(bad):
    g = H.JigsawGrid(32, n=2, gap=0)
    z = torch.zeros(1, 4, 2, dtype=torch.long)
    with pytest.raises(ValueError, match="perm"):
        H.Puzzles(g, torch.tensor([bad]), z, z)
    with pytest.raises(ValueError, match="perm"):
        H.check_permutations(bad, 4)
    with pytest.raises(ValueError, match="mine"):
        H.check_permutations([bad, bad], 4, name="mine")
    with pytest.raises(ValueError, match="permutations"):
        H.make_puzzles(2, g, permutations=[bad])
    with pytest.raises(ValueError, match="permutations"):
        H.JigsawTask(32, n=2, permutations=[bad])


def test_check_permutations_names_row_and_accepts_good():
    with pytest.raises(ValueError, match="row 2"):
        H.check_permutations([[0, 1, 2], [2, 1, 0], [1, 1, 0]], 3)
    with pytest.raises(ValueError, match="perm"):
        H.check_permutations(torch.zeros(2, 2, 3, dtype=torch.long), 3)
    with pytest.raises(TypeError):
        H.check_permutations([[0.0, 1.0, 2.0]], 3)
    p = H.check_permutations([2, 0, 1], 3)
    assert p.tolist() == [[2, 0, 1]] and p.dtype == torch.long


def test_error_images_wrong_size_batch_dtype_nan():
    g = H.JigsawGrid(32, n=2, gap=1)
    pz = H.make_puzzles(2, g, gen(0))
    with pytest.raises(ValueError, match="images"):
        pz.shuffle(torch.rand(2, 3, 32, 31))
    with pytest.raises(ValueError, match="images"):
        pz.shuffle(torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match="shuffled"):
        pz.unshuffle(torch.rand(2, 3, 31, 32))
    with pytest.raises(ValueError, match="images"):
        pz.shuffle(torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match="2 images"):
        pz.shuffle(torch.rand(3, 3, 32, 32))
    with pytest.raises(ValueError, match="2 images"):
        pz.unshuffle(torch.rand(1, 3, 32, 32))
    with pytest.raises(TypeError, match="images"):
        pz.shuffle(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    x = torch.rand(2, 3, 32, 32)
    x[1, 2, 5, 5] = float("nan")
    with pytest.raises(ValueError, match="images.*finite"):
        pz.shuffle(x)
    with pytest.raises(ValueError, match="shuffled.*finite"):
        pz.unshuffle(x)
    with pytest.raises(ValueError, match="fill"):
        pz.shuffle(torch.rand(2, 3, 32, 32), fill=float("nan"))
    task = H.JigsawTask(32, n=2, gap=1)
    with pytest.raises(ValueError, match="images"):
        task.make(x, gen(0))
    with pytest.raises(ValueError, match="images"):
        task.make(torch.rand(2, 3, 28, 32), gen(0))


def test_error_bad_label_and_heatmaps():
    g = H.JigsawGrid(32, n=2, gap=1)
    pz = H.make_puzzles(2, g, gen(0))
    with pytest.raises(ValueError, match="label"):
        pz.labels((8, 8), label="target")
    with pytest.raises(ValueError, match="label"):
        H.decode_permutation(torch.rand(2, 4, 8, 8), g, label="where")
    with pytest.raises(ValueError, match="label"):
        H.JigsawTask(32, n=2, label="Origin")
    with pytest.raises(ValueError, match="heatmaps"):
        H.decode_permutation(torch.rand(2, 9, 8, 8), g)          # 9 channels for 4 cells
    hm = torch.rand(2, 4, 8, 8)
    hm[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="heatmaps"):
        H.decode_permutation(hm, g)


def test_error_task_arguments():
    with pytest.raises(ValueError, match="stride"):
        H.JigsawTask((66, 64))
    with pytest.raises(ValueError, match="stride"):
        H.JigsawTask((64, 62), stride=4)
    with pytest.raises(ValueError, match="stride"):
        H.JigsawTask(64, stride=0)
    with pytest.raises(ValueError, match="sigma"):
        H.JigsawTask(64, sigma=0.0)
    with pytest.raises(ValueError, match="fill"):
        H.JigsawTask(64, fill=float("inf"))
    with pytest.raises(ValueError, match="size"):
        H.JigsawTask(8, n=3, gap=2, stride=1)
    with pytest.raises(ValueError, match="permutations"):
        H.JigsawTask(64, n=3, permutations=[[0, 1, 2, 3]])       # a 2×2 set for a 3×3 grid
    with pytest.raises(ValueError, match="count"):
        H.JigsawTask(32, n=2, permutations=25)                   # only 4! = 24 exist
    assert H.JigsawTask((65, 63), stride=1).heatmap_size == (65, 63)


# ---------------------------------------------------------------------------- JigsawTask


@pytest.mark.parametrize("label", H.LABELS)
def test_task_make_is_consistent(label):
    task = H.JigsawTask((48, 64), n=3, gap=2, sigma=1.5, label=label)
    assert task.heatmap_size == (12, 16)
    x = torch.rand(7, 3, 64, 48, generator=gen(0))
    out = task.make(x, gen(11))
    assert set(out) == {"images", "labels", "perm", "puzzles"}
    assert torch.equal(out["puzzles"].perm, out["perm"])
    assert out["images"].shape == x.shape and out["images"].dtype == x.dtype
    assert out["labels"].shape == (7, 9, 16, 12)
    assert out["perm"].shape == (7, 9) and is_perm_rows(out["perm"], 9)
    assert torch.equal(task.decode(out["labels"]), out["perm"])
    # make = puzzles drawn from the same generator state, shuffled with the task's fill
    pz = task.puzzles(7, gen(11))
    assert torch.equal(pz.perm, out["perm"])
    assert torch.equal(out["images"], ref_shuffle(pz, x, task.fill))
    assert torch.equal(out["labels"], pz.labels((12, 16), 1.5, label))
    # deterministic for a seeded generator, different for another seed
    again = task.make(x, gen(11))
    assert all(torch.equal(again[k], out[k]) for k in ("images", "labels", "perm"))
    assert not torch.equal(task.make(x, gen(12))["perm"], out["perm"])
    # the input is untouched
    assert torch.equal(x, torch.rand(7, 3, 64, 48, generator=gen(0)))


def test_task_fixed_permutation_set_and_no_jitter():
    task = H.JigsawTask(64, n=3, gap=3, permutations=12, jitter=False, fill=0.0)
    fixed = H.hamming_permutations(12, 9)
    assert torch.equal(task.permutations, fixed)
    rows = {tuple(r) for r in fixed.tolist()}
    pz = task.puzzles(200, gen(0))
    assert {tuple(r) for r in pz.perm.tolist()} <= rows
    assert len({tuple(r) for r in pz.perm.tolist()}) == 12
    half = task.grid.slack() // 2
    assert torch.equal(pz.cut, half.expand(200, -1, -1))
    assert torch.equal(pz.place, half.expand(200, -1, -1))
    out = task.make(torch.rand(30, 1, 64, 64, generator=gen(1)), gen(2))
    assert {tuple(r) for r in out["perm"].tolist()} <= rows
    assert torch.equal(task.decode(out["labels"]), out["perm"])
    # np.integer counts too, and a given set is used as is
    assert torch.equal(H.JigsawTask(64, permutations=np.int64(12)).permutations, fixed)
    own = H.JigsawTask(64, permutations=fixed[:3].numpy())
    assert torch.equal(own.permutations, fixed[:3])
    assert {tuple(r) for r in own.puzzles(50, gen(0)).perm.tolist()} == \
        {tuple(r) for r in fixed[:3].tolist()}


# ------------------------------------------------------------------------------- models


@pytest.mark.parametrize("make_backbone,size", BACKBONES)
def test_pretext_model_shape_and_loss(make_backbone, size):
    torch.manual_seed(0)
    model = H.jigsaw_model(make_backbone(), 3)
    assert isinstance(model, TopDownHeatmapNet) and model.num_joints == 9
    assert model.head.conv.out_channels == 9
    task = H.JigsawTask(size, n=3, gap=2)
    out = task.make(torch.rand(2, 3, size, size, generator=gen(0)), gen(1))
    pred = model(out["images"])
    assert pred.shape == (2, 9, size // 4, size // 4) == out["labels"].shape
    loss = H.jigsaw_loss(pred, out["labels"])
    expected = 0.5 * ((pred - out["labels"]) ** 2).mean()
    assert torch.allclose(loss, expected, rtol=1e-6, atol=0)
    assert float(H.jigsaw_loss(out["labels"], out["labels"])) == 0.0
    decoded = task.decode(pred)                    # a prediction with grad decodes too
    assert is_perm_rows(decoded, 9)
    loss.backward()
    assert model.head.conv.weight.grad is not None and float(model.head.conv.weight.grad.abs().sum()) > 0


def test_jigsaw_loss_by_hand_and_gradient():
    p = torch.rand(3, 4, 5, 6, generator=gen(0), dtype=torch.float64, requires_grad=True)
    t = torch.rand(3, 4, 5, 6, generator=gen(1), dtype=torch.float64)
    loss = H.jigsaw_loss(p, t)
    diffs = (p.detach() - t).flatten().tolist()
    assert math.isclose(float(loss.detach()), 0.5 * sum(d * d for d in diffs) / len(diffs), rel_tol=1e-12)
    loss.backward()
    assert torch.allclose(p.grad, (p.detach() - t) / p.numel(), rtol=1e-12, atol=0)
    with pytest.raises(ValueError):
        H.jigsaw_loss(torch.rand(3, 4, 5, 6), torch.rand(3, 9, 5, 6))


def pretext(make_backbone, size: int) -> TopDownHeatmapNet:
    """A pretext model whose every backbone tensor differs from its default init."""
    torch.manual_seed(1)
    model = H.jigsaw_model(make_backbone(), 3)
    model.train()
    with torch.no_grad():
        model(torch.rand(2, 3, size, size) * 3 + 1)
        model(torch.rand(2, 3, size, size) * 2 - 1)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    bns = [m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns
    for bn in bns:
        assert int(bn.num_batches_tracked) == 2
        assert not torch.equal(bn.running_var, torch.ones_like(bn.running_var))
        assert not torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    return model


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("make_backbone,size", BACKBONES)
def test_pose_model_from_copies_backbone_and_reinits_head(make_backbone, size):
    src = pretext(make_backbone, size)
    before = snapshot(src)
    torch.manual_seed(2)
    pose = H.pose_model_from(src, 17)
    assert isinstance(pose, TopDownHeatmapNet) and pose.num_joints == 17
    src_bb, pose_bb = src.backbone.state_dict(), pose.backbone.state_dict()
    assert any("num_batches_tracked" in k for k in pose_bb)
    assert any("running_var" in k for k in pose_bb)
    assert_same_state(src_bb, pose_bb)
    for k in src_bb:                               # a copy, not shared storage
        assert src_bb[k].data_ptr() != pose_bb[k].data_ptr(), k
    # the head: new, 17 channels, N(0, 0.001²) with zero bias
    w, b = pose.head.conv.weight.detach(), pose.head.conv.bias.detach()
    assert w.shape == (17, src.backbone.out_channels, 1, 1)
    assert torch.equal(b, torch.zeros(17))
    assert 0.0006 < float(w.std()) < 0.0014 and abs(float(w.mean())) < 0.0003
    assert not torch.equal(w[:9], src.head.conv.weight)
    # the pretrained model is not modified, now or when the new one trains
    assert_same_state(before, snapshot(src))
    with torch.no_grad():
        for p in pose.parameters():
            p.add_(1.0)
        pose.train()(torch.rand(2, 3, size, size))
    assert_same_state(before, snapshot(src))
    # same-shaped head: still re-initialised, not copied
    same = H.pose_model_from(src, 9)
    assert not torch.equal(same.head.conv.weight, src.head.conv.weight)
    assert torch.equal(same.head.conv.bias, torch.zeros(9))
    # the copied backbone computes what the pretrained one does
    x = torch.rand(2, 3, size, size, generator=gen(0))
    src.eval(), same.eval()
    with torch.no_grad():
        assert torch.equal(same.backbone(x), src.backbone(x))
        assert same(x).shape == (2, 9, size // 4, size // 4)


@pytest.mark.parametrize("make_backbone,size", BACKBONES)
def test_transfer_backbone_copies_everything_in_place(make_backbone, size):
    src = pretext(make_backbone, size)
    src_before = snapshot(src)
    torch.manual_seed(3)
    dst = TopDownHeatmapNet(make_backbone(), 17)
    head_before = snapshot(dst.head)
    param_ids = [id(p) for p in dst.parameters()]
    names = H.transfer_backbone(src, dst)
    assert names == sorted(src.backbone.state_dict())
    assert_same_state(src.backbone.state_dict(), dst.backbone.state_dict())
    assert_same_state(head_before, snapshot(dst.head))          # the head is untouched
    assert_same_state(src_before, snapshot(src))                 # the source is untouched
    assert [id(p) for p in dst.parameters()] == param_ids       # same Parameters (optimisers)
    for m in dst.backbone.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert int(m.num_batches_tracked) == 2
    x = torch.rand(2, 3, size, size, generator=gen(1))
    src.eval(), dst.eval()
    with torch.no_grad():
        assert torch.equal(dst.backbone(x), src.backbone(x))
    # jigsaw → jigsaw works too (same-shaped heads are left alone)
    other = H.jigsaw_model(make_backbone(), 3)
    other_head = snapshot(other.head)
    H.transfer_backbone(src, other)
    assert_same_state(other_head, snapshot(other.head))
    assert_same_state(src.backbone.state_dict(), other.backbone.state_dict())


@pytest.mark.parametrize("make_src,make_bad,what", [
    (tiny_sb, lambda: tiny_sb(widths=(8, 16, 32, 128)), "shape differs"),
    (tiny_hr, lambda: tiny_hr(widths=(8, 24)), "shape differs"),
    (tiny_hr, lambda: tiny_hr(widths=(8, 16, 32)), "not in|missing"),
    (tiny_sb, tiny_hr, "not in|missing"),
])
def test_transfer_backbone_mismatch_is_value_error(make_src, make_bad, what):
    src = H.jigsaw_model(make_src(), 3)
    dst = TopDownHeatmapNet(make_bad(), 17)
    before = snapshot(dst)
    with pytest.raises(ValueError, match="backbone does not match") as err:
        H.transfer_backbone(src, dst)
    assert err.match(what)
    assert_same_state(before, snapshot(dst))      # nothing half-copied


def test_transfer_and_pose_model_need_a_backbone():
    src = H.jigsaw_model(tiny_hr(), 3)
    dst = TopDownHeatmapNet(tiny_hr(), 17)
    with pytest.raises(TypeError, match="source"):
        H.transfer_backbone(nn.Linear(2, 2), dst)
    with pytest.raises(TypeError, match="target"):
        H.transfer_backbone(src, nn.Sequential(nn.Conv2d(3, 3, 1)))
    with pytest.raises(TypeError, match="pretrained"):
        H.pose_model_from(nn.Linear(2, 2), 17)
    with pytest.raises(ValueError, match="num_joints"):
        H.pose_model_from(src, 0)
