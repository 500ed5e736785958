"""Explorer and figure for HSJP, heatmap-style jigsaw puzzles (:mod:`labcore.methods.hsjp`).

* :class:`JigsawExplorer` — one crop cut into an ``n × n`` grid, shuffled by a seeded
  permutation, and the ``n²`` heatmap-style labels the network is trained to output,
  with a check that :func:`~labcore.methods.hsjp.decode_permutation` reads the
  permutation back from them.
* :func:`puzzle_figure` — a few puzzles after pretext training: the crop, the shuffled
  input and the crop reassembled from the predicted permutation, wrong cells outlined.

Conventions (DESIGN.md §2, :mod:`labcore.methods.hsjp`): images are ``(N, 3, H, W)`` float
in [0, 1] for computing and ``(H, W, 3)`` uint8 for display; pixel ``(row y, col x)`` has
its centre at ``(x, y)``; cells and permutations are row-major; ``perm[i] = j`` means
shuffled cell ``i`` shows original patch ``j``.
"""

from __future__ import annotations

import functools
from typing import Any

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import torch
import torch.nn.functional as F
from plotly.subplots import make_subplots

from labcore.checks import as_tensor, check_choice, check_int, check_number
from labcore.data.images import image_to_tensor, load_photo, tensor_to_image
from labcore.methods.hsjp import (
    LABELS,
    JigsawGrid,
    Puzzles,
    check_permutations,
    decode_permutation,
    make_puzzles,
    puzzle_accuracy,
)
from labcore.viz.figures import png_data_uri
from labcore.viz.widgets import Explorer, _crop, _slider

__all__ = ["JigsawExplorer", "puzzle_figure"]

CROP = 96  # px, the explorer's crop side: divisible by n = 3 and by the stride
STRIDE = 4  # the pose backbones' output stride: labels are 24 × 24
HEATMAP = CROP // STRIDE
FILL = 0.5  # value of the gap pixels (JigsawTask's default): mid grey
IMAGES = ("synthetic", "astronaut")
#: ``(y0, x0, side)`` of the square around the astronaut's head and torso in the 512×512
#: photo; 384 = 4 × 96, so the area downscale averages whole 4×4 blocks.
ASTRONAUT_BOX = (0, 0, 384)
SYNTHETIC_SEED = 0  # the rendered person shown (labcore.viz.widgets._crop, cached)

_MARGIN = 4  # tight plot margins (px), as the other explorers
_GRID_COLOUR = "#ffee55"
_RIGHT_COLOUR = "#40ff60"
_WRONG_COLOUR = "#ff3030"
_TILE_PAD = 3  # heatmap px between the mosaic's tiles


def _layout(fig: go.Figure, height: int, **extra: Any) -> go.Figure:
    fig.update_layout(height=height, margin={"l": _MARGIN, "r": _MARGIN, "t": 40, "b": _MARGIN}, **extra)
    return fig


# --------------------------------------------------------------------------- images


@functools.lru_cache(maxsize=4)
def _crop_image(name: str) -> np.ndarray:
    """The explorer's ``(96, 96, 3)`` uint8 crop (read-only, cached: rendering the
    synthetic person takes a second or two, and the sliders must not pay it again).

    ``'synthetic'``: labcore's rendered person crop (seed :data:`SYNTHETIC_SEED`);
    ``'astronaut'``: the :data:`ASTRONAUT_BOX` of the real photo, area-downscaled."""
    check_choice(name, "image", IMAGES)
    if name == "synthetic":
        image = np.array(_crop(SYNTHETIC_SEED, "any", "procedural", CROP)["image"][0])
    else:
        y0, x0, side = ASTRONAUT_BOX
        t = image_to_tensor(load_photo("astronaut")[y0:y0 + side, x0:x0 + side])[None]
        # 'area' averages each 4×4 block: no aliasing, unlike a strided pick or bilinear.
        image = tensor_to_image(F.interpolate(t, size=(CROP, CROP), mode="area"))[0]
    image.setflags(write=False)  # shared by every call through the cache
    return image


def _as_batch(images: Any, name: str = "images") -> torch.Tensor:
    """``(N, C, H, W)`` float in [0, 1] (as is) or ``(N, H, W, 3)`` uint8 (converted) →
    ``(N, 3, H, W)`` float32 on the CPU; one channel is repeated to three for display."""
    t = torch.as_tensor(images) if isinstance(images, np.ndarray) else images
    if isinstance(t, torch.Tensor) and t.dtype == torch.uint8:
        if t.dim() != 4 or t.shape[-1] != 3:
            raise ValueError(f"{name}: expected uint8 images (N, H, W, 3), got shape {tuple(t.shape)}")
        return image_to_tensor(t.cpu())
    x = as_tensor(images, name, shape=("N", "C", "H", "W")).detach().cpu().float()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[1] != 3:
        raise ValueError(f"{name}: expected 1 or 3 channels, got {x.shape[1]}")
    return x


# --------------------------------------------------------------------------- drawing helpers


def _image_trace(image: np.ndarray, ax: str = "", name: str = "") -> go.Image:
    """``image (H, W, 3)`` uint8 as a ``go.Image`` on axes ``x{ax}``/``y{ax}``, pixel
    centres at integer coordinates (as :func:`labcore.viz.figures.add_image_panel`, but
    sent as a PNG)."""
    return go.Image(source=png_data_uri(image), hoverinfo="x+y", name=name, xaxis=f"x{ax}", yaxis=f"y{ax}")


def _image_axes(image: np.ndarray, ax: str = "") -> dict[str, dict]:
    """Layout entries pinning axes ``x{ax}``/``y{ax}`` to the image's pixel edges, y down,
    square pixels (one ``update_layout`` for every panel: per-panel ``update_xaxes``
    calls cost ~1 ms each)."""
    h, w = image.shape[:2]
    return {f"xaxis{ax}": {"range": [-0.5, w - 0.5]},
            f"yaxis{ax}": {"range": [h - 0.5, -0.5], "scaleanchor": f"x{ax}"}}


def _grid_lines(grid: JigsawGrid, scale: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> tuple[list, list]:
    """Polyline coordinates (``None`` breaks) of every cell edge, at pixel edges
    (``edge − 0.5``), divided by ``scale`` (the stride, for heatmap coordinates) and
    shifted by ``(dx, dy)``: one trace draws the whole grid."""
    w, h = grid.size
    xs: list = []
    ys: list = []
    for e in grid.x_edges:
        x = (e - 0.5) / scale + dx
        xs += [x, x, None]
        ys += [-0.5 / scale + dy, (h - 0.5) / scale + dy, None]
    for e in grid.y_edges:
        y = (e - 0.5) / scale + dy
        xs += [-0.5 / scale + dx, (w - 0.5) / scale + dx, None]
        ys += [y, y, None]
    return xs, ys


def _rects(corners: np.ndarray, size: tuple[int, int]) -> tuple[list, list]:
    """Polyline coordinates of rectangles of ``size (w, h)`` px whose top-left pixels are
    ``corners (k, 2)``, drawn on the pixels' outer edges."""
    xs: list = []
    ys: list = []
    w, h = size
    for x0, y0 in corners:
        x0, y0 = x0 - 0.5, y0 - 0.5
        xs += [x0, x0 + w, x0 + w, x0, x0, None]
        ys += [y0, y0, y0 + h, y0 + h, y0, None]
    return xs, ys


def _line_trace(xs: list, ys: list, colour: str, ax: str = "", width: float = 1.0, dash: str = "solid",
                name: str = "") -> go.Scatter:
    return go.Scatter(x=xs, y=ys, mode="lines", line={"color": colour, "width": width, "dash": dash},
                      hoverinfo="skip", showlegend=False, name=name, xaxis=f"x{ax}", yaxis=f"y{ax}")


def _text_trace(points: np.ndarray, text: list[str], colours: list[str] | str, size: int,
                name: str, ax: str = "", hover: list[str] | None = None) -> go.Scatter:
    return go.Scatter(x=points[:, 0], y=points[:, 1], mode="text", text=text, name=name, showlegend=False,
                      textfont={"color": colours, "size": size, "family": "Arial Black, Arial, sans-serif"},
                      hovertext=hover, hoverinfo="text" if hover else "skip", xaxis=f"x{ax}", yaxis=f"y{ax}")


# --------------------------------------------------------------------------- the explorer


class JigsawExplorer(Explorer):
    """One jigsaw puzzle and its heatmap-style labels, on a 96×96 crop (labels 24×24,
    stride 4).

    Parameters:
        ``n``: cells per side (2–5); ``permutation``: the puzzle seed — ``s > 0`` is
        exactly ``make_puzzles(1, JigsawGrid(96, n, gap), torch.Generator().manual_seed(s),
        jitter=jitter)``; ``0`` is the identity permutation with every patch put back
        where it was cut from (``place = cut``), so the shuffled crop equals the original
        except in the gaps; ``sigma``: the labels' σ, heatmap pixels; ``gap``: pixels
        taken off the smallest cell to make the patch, at the 96 px crop; ``label``:
        ``'origin'`` or ``'current'`` (:data:`~labcore.methods.hsjp.LABELS`); ``image``:
        ``'synthetic'`` (a rendered person) or ``'astronaut'`` (the real photo, resized);
        ``jitter``: random cut and place offsets within each cell's slack.

    The figure: the crop with the grid and the cell numbers (dotted: where each patch is
    cut); the shuffled crop, each cell labelled with the original patch it shows (green:
    its own); the ``n²`` label channels as an ``n × n`` mosaic, tile ``k`` = channel
    ``k``, with the cell grid drawn faintly in heatmap coordinates and a green ring where
    the channel should peak (its target cell's centre, ``int(x / 4 + 0.5)``; the note
    checks every peak sits there). :meth:`compute` returns the numbers behind it all.

    A grid that does not fit the crop (e.g. a gap set from code beyond the slider, leaving
    patches under 1 px — the sliders' ranges always fit: n = 5, gap = 8 leaves 11 px) is
    **not** clamped: the figure shows the crop alone and the note says why, since quietly
    drawing another gap than the one asked for would teach the wrong number. Invalid
    values of the other parameters (a negative seed, an unknown label) raise
    ``ValueError`` as in the other explorers.
    """

    def controls(self) -> dict[str, W.ValueWidget]:
        return {
            "n": W.IntSlider(value=3, min=2, max=5, description="grid n", continuous_update=False),
            "permutation": W.IntSlider(value=1, min=0, max=50, description="puzzle seed",
                                       continuous_update=False),
            "sigma": _slider(1.0, 0.5, 4.0, 0.25, "σ (hm px)"),
            "gap": W.IntSlider(value=2, min=0, max=8, description="gap (px)", continuous_update=False),
            "label": W.Dropdown(options=list(LABELS), value=LABELS[0], description="label"),
            "image": W.Dropdown(options=list(IMAGES), value=IMAGES[0], description="image"),
            "jitter": W.Checkbox(value=True, description="jitter"),
        }

    def compute(self, **params: Any) -> dict[str, Any]:
        """The numbers behind the figure.

        Returns a dict with ``image (96, 96, 3) uint8`` (the crop) and ``error`` (``None``,
        or why the grid does not fit — then nothing else); otherwise also ``grid``
        (:class:`~labcore.methods.hsjp.JigsawGrid`), ``puzzles`` (one
        :class:`~labcore.methods.hsjp.Puzzles`), ``perm (n²,)`` long, ``shuffled (96, 96, 3)
        uint8`` (``puzzles.shuffle`` with gaps 0.5), ``covered (96, 96)`` bool (crop pixels
        some patch carries), ``labels (n², 24, 24)`` float32 (``puzzles.labels``),
        ``target (n²,)`` the cell whose centre each channel peaks at (``perm`` for
        ``'origin'``, ``inverse`` for ``'current'``), ``centre (n², 2)`` that cell's centre
        in heatmap px ``(x, y)`` = ``int(centre_input / 4 + 0.5)``, ``peaks (n², 2)`` each
        channel's argmax ``(x, y)``, ``decoded (n²,)`` (``decode_permutation`` of the
        labels), ``recovered`` (bool), ``identity`` (bool), ``fixed`` (how many patches sit
        in their own cell).
        """
        n = check_int(params["n"], "n")
        seed = check_int(params["permutation"], "permutation", low=0)
        sigma = check_number(params["sigma"], "sigma", low=0.0, low_inclusive=False)
        gap = check_int(params["gap"], "gap")
        label = check_choice(params["label"], "label", LABELS)
        image = _crop_image(check_choice(params["image"], "image", IMAGES))
        jitter = bool(params["jitter"])
        try:
            grid = JigsawGrid(CROP, n, gap)
        except ValueError as err:  # shown in the note, not raised: see the class docstring
            return {"image": image, "error": str(err), "n": n, "gap": gap}
        # Seeded, so the same settings give the same puzzle (and the notebook's asserts hold).
        pz = make_puzzles(1, grid, torch.Generator().manual_seed(seed), jitter=jitter)
        if seed == 0:
            # The unshuffled grid: each patch back at the very offset it was cut from, so
            # jitter moves nothing and only the gaps differ from the crop.
            pz = Puzzles(grid, torch.arange(grid.cells)[None], pz.cut, pz.cut.clone())
        x = image_to_tensor(np.array(image))[None]  # a writable copy of the cached crop
        shuffled = pz.shuffle(x, FILL)
        labels = pz.labels((HEATMAP, HEATMAP), sigma, label)
        decoded = decode_permutation(labels, grid, sigma, label)[0]
        perm = pz.perm[0]
        # Where each channel should peak (its cell's centre, rounded as keypoints are) and
        # where it does: the note checks that they agree.
        target = perm if label == "origin" else pz.inverse[0]
        centre = torch.trunc(grid.centres() / STRIDE + 0.5).long()[target]         # (n², 2) x, y
        flat = labels[0].flatten(1).argmax(1)
        peaks = torch.stack([flat % HEATMAP, flat // HEATMAP], dim=1)
        return {
            "image": image, "error": None, "grid": grid, "puzzles": pz, "perm": perm,
            "shuffled": tensor_to_image(shuffled)[0], "covered": pz.covered()[0].numpy(),
            "labels": labels[0].numpy(), "target": target, "centre": centre.numpy(), "peaks": peaks.numpy(),
            "decoded": decoded, "recovered": bool(torch.equal(decoded, perm)),
            "identity": bool(torch.equal(perm, torch.arange(grid.cells))),
            "fixed": int((perm == torch.arange(grid.cells)).sum()),
            "sigma": sigma, "label": label, "jitter": jitter, "seed": seed,
        }

    def build(self, **params: Any) -> tuple[go.Figure, str]:
        c = self.compute(**params)
        if c["error"] is not None:
            return self._no_puzzle(c)
        grid: JigsawGrid = c["grid"]
        pz: Puzzles = c["puzzles"]
        n, cells = grid.n, grid.cells
        perm = c["perm"].numpy()
        inverse = pz.inverse[0].numpy()
        label = c["label"]
        fig = make_subplots(1, 3, column_widths=[0.34, 0.34, 0.32], horizontal_spacing=0.03,
                            subplot_titles=(f"crop {CROP}×{CROP}, cells numbered",
                                            "shuffled: the original patch in each cell",
                                            f"labels: {cells} channels, {HEATMAP}×{HEATMAP} each"))
        centres = grid.centres().numpy()
        size = max(9, 22 - 3 * n)
        grid_xy = _grid_lines(grid)
        # Every trace names its axes (x, x2, x3) and goes in with one add_traces call:
        # add_trace(row=, col=) costs ~2 ms a trace, and the sliders want < 100 ms.
        traces: list = []

        # 1. the crop, its grid, where each patch is cut (dotted) and the cell numbers
        traces.append(_image_trace(c["image"], "", "crop"))
        traces.append(_line_trace(*grid_xy, _GRID_COLOUR, "", name="cells"))
        if grid.gap > 0:
            cut = (pz.cut[0] + grid.cell_origins()).numpy()
            traces.append(_line_trace(*_rects(cut, grid.patch), "#60e0ff", "", dash="dot", name="patches"))
        hover = [f"cell {i}: its patch is now in cell {inverse[i]}" for i in range(cells)]
        traces.append(_text_trace(centres, [str(i) for i in range(cells)], _GRID_COLOUR, size, "cell numbers",
                                  "", hover))

        # 2. the shuffled crop: cell i shows original patch perm[i] (green: its own)
        traces.append(_image_trace(c["shuffled"], "2", "shuffled"))
        traces.append(_line_trace(*grid_xy, _GRID_COLOUR, "2", width=0.5, name="cells"))
        colours = [_RIGHT_COLOUR if perm[i] == i else _GRID_COLOUR for i in range(cells)]
        hover = [f"cell {i} shows original patch {perm[i]}" for i in range(cells)]
        traces.append(_text_trace(centres, [str(p) for p in perm], colours, size, "original patch", "2", hover))

        # 3. the label mosaic: tile k, at grid position k, is channel k (so for 'origin'
        # the tile sits on the cell it is about); faint lines are the cells at stride 4.
        step = HEATMAP + _TILE_PAD
        peak_cell = perm if label == "origin" else inverse
        lines_x: list = []
        lines_y: list = []
        for k in range(cells):
            ox, oy = (k % n) * step, (k // n) * step
            what = (f"patch now in cell {k}, came from cell {peak_cell[k]}" if label == "origin"
                    else f"original patch {k}, now in cell {peak_cell[k]}")
            traces.append(go.Heatmap(z=c["labels"][k], x0=ox, dx=1, y0=oy, dy=1, colorscale="Magma", zmin=0,
                                     zmax=1, showscale=False, name=f"channel {k}", xaxis="x3", yaxis="y3",
                                     hovertemplate=f"channel {k} ({what})<br>%{{z:.3f}}<extra></extra>"))
            gx, gy = _grid_lines(grid, STRIDE, ox, oy)
            lines_x += gx
            lines_y += gy
        traces.append(_line_trace(lines_x, lines_y, "rgba(255,255,255,0.3)", "3", width=0.5, name="cells (hm)"))
        # Hollow rings where each channel should peak (its target cell's centre).
        ring = c["centre"] + np.stack([np.arange(cells) % n, np.arange(cells) // n], 1) * step
        traces.append(go.Scatter(x=ring[:, 0], y=ring[:, 1], mode="markers", name="target cell centre",
                                 marker={"symbol": "circle-open", "size": 7, "color": _RIGHT_COLOUR},
                                 showlegend=False, hoverinfo="skip", xaxis="x3", yaxis="y3"))
        tops = np.array([[(k % n) * step + (HEATMAP - 1) / 2, (k // n) * step - 2.2] for k in range(cells)])
        traces.append(_text_trace(tops, [f"ch {k}" for k in range(cells)], "#303030", max(8, 13 - n),
                                  "channel", "3"))
        fig.add_traces(traces)
        span = n * step - _TILE_PAD
        _layout(fig, 400, plot_bgcolor="white", **_image_axes(c["image"], ""), **_image_axes(c["shuffled"], "2"),
                xaxis3={"range": [-0.5, span - 0.5], "visible": False},
                yaxis3={"range": [span - 0.5, -4.5], "visible": False, "scaleanchor": "x3"})
        return fig, self._note(c)

    @staticmethod
    def _note(c: dict[str, Any]) -> str:
        grid: JigsawGrid = c["grid"]
        perm = c["perm"].tolist()
        cells = grid.cells
        sizes = grid.cell_sizes()
        cw = "–".join(str(v) for v in sorted({int(sizes[:, 0].min()), int(sizes[:, 0].max())}))
        ch = "–".join(str(v) for v in sorted({int(sizes[:, 1].min()), int(sizes[:, 1].max())}))
        pw, ph = grid.patch
        if c["label"] == "origin":
            meaning = (f"<b>label 'origin'</b>: channel i = the patch now in cell i; its peak sits at the centre "
                       f"of the cell that patch came from, cell perm[i] (e.g. channel 0 peaks at cell {perm[0]}) "
                       f"— “where does what I see here belong?”")
        else:
            inv = c["puzzles"].inverse[0].tolist()
            meaning = (f"<b>label 'current'</b>: channel j = original patch j; its peak sits at the centre of "
                       f"the cell where that patch is now, cell inverse[j] (e.g. channel 0 peaks at cell "
                       f"{inv[0]}) — “where is piece j?”")
        if c["seed"] == 0:
            which = ("seed 0: <b>the identity</b> — every patch is put back exactly where it was cut from, so "
                     "the shuffled crop equals the crop except in the grey gaps")
        else:
            which = f"seed {c['seed']}: perm = {perm} (cell i shows original patch perm[i])"
            if c["identity"]:
                which += " — the identity by chance"
            else:
                which += f"; {c['fixed']} of {cells} patches happen to sit in their own cell"
        slack = int(grid.slack().max())
        moves = (f"jitter: cut and placed anywhere within the cell's slack (≤ {slack} px per axis)"
                 if c["jitter"] else "no jitter: centred in every cell")
        if c["recovered"]:
            check = "<b>recovers the permutation ✓</b>"
        else:
            check = f"gives {c['decoded'].tolist()}: <b>does NOT recover the permutation ✗</b>"
        uncovered = 1.0 - float(c["covered"].mean())
        off = np.abs(c["peaks"] - c["centre"]).max(1)
        if off.any():
            quirk = (f" <b>{int((off > 0).sum())} of {cells} peaks sit {int(off.max())} hm px off</b> their "
                     f"cell's centre (green rings).")
        else:
            quirk = " Every peak sits on its cell's centre (green rings)."
        return (f"{grid.n}×{grid.n} grid, {which}.<br>{meaning}.<br>Patches {pw}×{ph} px cut from cells of "
                f"{cw}×{ch} px (gap {grid.gap} px; {moves}); {uncovered:.0%} of the crop is in no patch. "
                f"Labels {cells}×{HEATMAP}×{HEATMAP} (stride {STRIDE}), σ = {c['sigma']:g} hm px;{quirk} "
                f"decode_permutation(labels) {check}.")

    @staticmethod
    def _no_puzzle(c: dict[str, Any]) -> tuple[go.Figure, str]:
        fig = go.Figure(_image_trace(c["image"], "", "crop"))
        _layout(fig, 400, title={"text": "no puzzle: the grid does not fit this crop", "y": 0.98},
                **_image_axes(c["image"]))
        note = (f"<b>No puzzle</b> — a {c['n']}×{c['n']} grid with gap {c['gap']} px does not fit the "
                f"{CROP}×{CROP} crop: {c['error']}. Lower the gap or n (the gap is not clamped, so that "
                f"what is drawn is always what was asked for).")
        return fig, note


# --------------------------------------------------------------------------- after training


def _axis_suffix(fig: go.Figure, row: int, col: int) -> str:
    """The suffix of a subplot's axes (``'7'`` for ``x7``/``y7``, ``''`` for ``x``/``y``);
    make_subplots numbers them alike, row by row."""
    return fig.get_subplot(row, col).xaxis.plotly_name[len("xaxis"):]


def puzzle_figure(
    images: Any,
    puzzles: Puzzles,
    predicted: Any = None,
    *,
    max_items: int = 6,
    fill: float = FILL,
    title: str = "jigsaw puzzles",
    height: int | None = None,
) -> go.Figure:
    """A few puzzles as a network saw and solved them: one column per puzzle, rows crop /
    shuffled input / crop reassembled from the predicted permutation.

    Args:
        images: the crops *before* shuffling, ``(N, C, H, W)`` float in [0, 1] (the network
            input; C = 1 or 3; tensor or array, any device) or ``(N, H, W, 3)`` uint8.
        puzzles: the :class:`~labcore.methods.hsjp.Puzzles` of those crops (``N`` puzzles
            on their ``W × H`` grid), e.g. ``task.puzzles(N, generator)``; the shuffled
            inputs are ``puzzles.shuffle(images, fill)``.
        predicted: ``(N, n²)`` predicted permutations (e.g. ``task.decode(heatmaps)``), or
            ``None`` to show the puzzles alone.
        max_items: how many puzzles (the first ones) to show.
        fill: the gap value, as in training.

    The reassembly is ``Puzzles(grid, predicted, puzzles.cut, puzzles.place).unshuffle``:
    each shuffled cell's patch goes back to the cell the network says it came from, at
    the true cut offset (the network predicts the permutation only), so a right
    prediction restores the crop bit for bit except the pixels no patch carries. A
    reassembled cell that holds the wrong patch is outlined in red (a layout shape): a
    prediction with ``k`` cells wrong draws ``k`` red rectangles for that puzzle.

    Returns:
        the figure: ``go.Image`` panels (lossless PNG ``source``; no other traces), row
        by row — crops, shuffled inputs, then reassembled crops if ``predicted`` — the red
        outlines as ``layout.shapes``; column titles give the cells placed right.
    """
    if not isinstance(puzzles, Puzzles):
        raise TypeError(f"puzzles: expected a labcore.methods.hsjp.Puzzles, got {type(puzzles).__name__} "
                        f"(JigsawTask.puzzles(N, generator) makes one)")
    max_items = check_int(max_items, "max_items", low=1)
    fill = check_number(fill, "fill")
    x = _as_batch(images)
    grid = puzzles.grid
    if len(x) != len(puzzles):
        raise ValueError(f"images: expected {len(puzzles)} images (one per puzzle), got {len(x)}")
    x = grid.check_images(x)
    m = min(len(puzzles), max_items)
    pz = Puzzles(grid, puzzles.perm[:m].cpu(), puzzles.cut[:m].cpu(), puzzles.place[:m].cpu())
    x = x[:m]
    shuffled = pz.shuffle(x, fill)
    rows = [("crop", tensor_to_image(x)), ("shuffled input", tensor_to_image(shuffled))]
    wrong = None
    col_titles = [f"puzzle {k}" for k in range(m)]
    if predicted is not None:
        pred = check_permutations(predicted, grid.cells, "predicted").cpu()
        if len(pred) != len(puzzles):
            raise ValueError(f"predicted: expected {len(puzzles)} permutations (one per puzzle), got {len(pred)}")
        pred = pred[:m]
        guess = Puzzles(grid, pred, pz.cut, pz.place)
        rows.append(("reassembled (predicted)", tensor_to_image(guess.unshuffle(shuffled, fill))))
        wrong = (pred != pz.perm).numpy()  # shuffled cell i was sent to the wrong cell pred[i]
        acc = puzzle_accuracy(pred, pz.perm)
        title = f"{title} — cells right {acc['cells']:.0%}, puzzles solved {acc['puzzles']:.0%}"
        col_titles = [f"puzzle {k}: {grid.cells - int(wrong[k].sum())}/{grid.cells} cells" for k in range(m)]

    titles = col_titles + [""] * (m * (len(rows) - 1))
    fig = make_subplots(len(rows), m, subplot_titles=titles, horizontal_spacing=0.01, vertical_spacing=0.03)
    traces: list = []
    axes: dict[str, dict] = {}
    shapes: list = []
    bare = {"showticklabels": False, "showgrid": False, "zeroline": False}
    for r, (name, batch) in enumerate(rows, start=1):
        for k in range(m):
            ax = _axis_suffix(fig, r, k + 1)
            traces.append(_image_trace(batch[k], ax, f"{name} {k}"))
            panel = _image_axes(batch[k], ax)
            panel[f"xaxis{ax}"].update(bare)
            panel[f"yaxis{ax}"].update(bare, **({"title": {"text": name}} if k == 0 else {}))
            axes.update(panel)
            if r == 3 and wrong is not None:
                # Reassembled cell pred[i] holds shuffled cell i's patch: wrong when pred[i] != perm[i].
                for cell in pred[k][torch.from_numpy(wrong[k])].tolist():
                    cx, cy = cell % grid.n, cell // grid.n
                    shapes.append({"type": "rect", "xref": f"x{ax}", "yref": f"y{ax}",
                                   "x0": grid.x_edges[cx] - 0.5, "x1": grid.x_edges[cx + 1] - 0.5,
                                   "y0": grid.y_edges[cy] - 0.5, "y1": grid.y_edges[cy + 1] - 0.5,
                                   "line": {"color": _WRONG_COLOUR, "width": 2}})
    fig.add_traces(traces)
    fig.update_layout(shapes=shapes, **axes)
    return _layout(fig, height or 40 + 150 * len(rows), title={"text": title, "y": 0.99})
