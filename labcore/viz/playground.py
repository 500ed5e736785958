"""The playground's widgets and figures (notebook 08): pick a backbone, heads, input sizes
and each head's knobs, train them all on the same crops, compare in one table and one
plot.

:class:`PlaygroundLab` separates the two speeds: moving a knob (``update``) only edits the
configuration, at slider speed; the *Train* button (or :meth:`PlaygroundLab.train`) runs
:func:`labcore.experiments.playground.run` and shows its table, :func:`comparison_figure`
and the loss curves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
from IPython.display import display
from plotly.subplots import make_subplots

from labcore.experiments import playground as pg
from labcore.experiments.table import Table
from labcore.train import History
from labcore.viz.localisation import curves_figure

__all__ = ["comparison_figure", "PlaygroundLab"]

_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def comparison_figure(table: Table, metrics: Sequence[str] = ("err_pct", "pck")) -> go.Figure:
    """One panel per metric against the input size, one line per head, error bars = the
    seeds' standard deviation. ``table`` is :func:`~labcore.experiments.playground.run`'s."""
    per_seed = table.meta.get("per_seed")
    if not per_seed:
        raise ValueError("table: expected the playground's table (meta['per_seed'] holds its runs)")
    unknown = [m for m in metrics if m not in per_seed[0]]
    if unknown:
        raise ValueError(f"metrics: unknown {unknown}; expected columns of the table such as 'err_pct', 'pck', 'AP'")
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[table.labels.get(m, m) for m in metrics],
                        horizontal_spacing=0.12)
    heads = list(dict.fromkeys(r["head"] for r in per_seed))
    sizes = sorted({r["size"] for r in per_seed})
    for j, metric in enumerate(metrics):
        for i, head in enumerate(heads):
            means, stds = [], []
            for s in sizes:
                vals = np.array([r[metric] for r in per_seed if r["head"] == head and r["size"] == s], float)
                means.append(vals.mean() if vals.size else np.nan)
                stds.append(vals.std(ddof=1) if vals.size > 1 else 0.0)
            fig.add_trace(go.Scatter(x=sizes, y=means, error_y=dict(type="data", array=stds, visible=True),
                                     mode="lines+markers", name=head, legendgroup=head, showlegend=j == 0,
                                     line=dict(color=_COLOURS[i % len(_COLOURS)])), row=1, col=j + 1)
        fig.update_xaxes(title_text="input size (px, square)", type="log", tickvals=sizes, row=1, col=j + 1)
    fig.update_layout(height=360, margin=dict(l=50, r=20, t=40, b=50), title=table.title)
    return fig


class PlaygroundLab:
    """Widgets over :func:`labcore.experiments.playground.run`.

    ``.ui`` is the container to display. ``update(**params)`` sets knobs (the same call
    the widgets make; unknown names raise ``ValueError``) and returns the configuration
    that :meth:`train` will run; :meth:`train` trains every chosen head × size × seed and
    returns the :class:`~labcore.experiments.table.Table`. Knobs: ``heads``, ``sizes``
    (tuples), ``backbone``, ``steps``, ``seeds`` (how many), ``sigma``, ``split_ratio``,
    ``label_smoothing``, ``wahr_gamma``, ``lr``.
    """

    def __init__(self, profile: Any = None, cfg: dict[str, Any] | None = None, **params: Any) -> None:
        self.profile = profile
        self.base = pg.config(profile) if cfg is None else dict(cfg)
        b = self.base
        self._controls: dict[str, W.ValueWidget] = {
            "heads": W.SelectMultiple(options=list(pg.HEADS), value=tuple(b["heads"]), rows=len(pg.HEADS),
                                      description="heads"),
            "sizes": W.SelectMultiple(options=[32, 64, 128], value=tuple(b["sizes"]), rows=3,
                                      description="input px"),
            "backbone": W.Dropdown(options=list(pg.BACKBONES), value=b["backbone_name"], description="backbone"),
            "steps": W.IntSlider(value=b["steps"], min=5, max=max(2000, b["steps"]), step=5, description="steps"),
            "seeds": W.IntSlider(value=1, min=1, max=5, description="seeds"),
            "lr": W.FloatLogSlider(value=b["lr"], base=10, min=-4, max=-1, description="lr"),
            "sigma": W.FloatSlider(value=b["sigma"], min=0.5, max=4.0, step=0.25, description="σ (heatmap)"),
            "split_ratio": W.FloatSlider(value=b["split_ratio"], min=1.0, max=4.0, step=0.5, description="k (SimDR)"),
            "label_smoothing": W.FloatSlider(value=b["label_smoothing"], min=0.0, max=0.5, step=0.05,
                                             description="ε (SimDR)"),
            "wahr_gamma": W.FloatLogSlider(value=b["wahr_gamma"], base=10, min=-3, max=0, description="γ (WAHR)"),
        }
        self.params = {name: c.value for name, c in self._controls.items()}
        self._check(params)
        self._syncing = False
        for name, control in self._controls.items():
            control.observe(self._on_change(name), names="value")
        self.button = W.Button(description="Train", button_style="primary", icon="play")
        self.button.on_click(lambda _: self.train())
        self.info = W.HTML()
        self.output = W.Output()
        self.table: Table | None = None
        grid = W.GridBox(list(self._controls.values()), layout=W.Layout(grid_template_columns="repeat(3, 33%)"))
        self.ui = W.VBox([grid, W.HBox([self.button, self.info]), self.output])
        self.update(**params)

    def _check(self, params: dict[str, Any]) -> None:
        unknown = set(params) - set(self._controls)
        if unknown:
            raise ValueError(f"PlaygroundLab.update: unknown parameter(s) {sorted(unknown)}; "
                             f"known: {sorted(self._controls)}")

    def _on_change(self, name: str):
        def handler(change: dict) -> None:
            if not self._syncing:
                self.update(**{name: change["new"]})

        return handler

    def config(self) -> dict[str, Any]:
        """The configuration :meth:`train` runs (the profile's, with the knobs applied)."""
        p = self.params
        if not p["heads"]:
            raise ValueError("heads: pick at least one head")
        if not p["sizes"]:
            raise ValueError("sizes: pick at least one input size")
        return self.base | {
            "heads": tuple(p["heads"]), "sizes": tuple(sorted(p["sizes"])), "backbone_name": p["backbone"],
            "steps": int(p["steps"]), "lr": float(p["lr"]), "sigma": float(p["sigma"]),
            "split_ratio": float(p["split_ratio"]), "label_smoothing": float(p["label_smoothing"]),
            "wahr_gamma": float(p["wahr_gamma"]),
        }

    def update(self, **params: Any) -> dict[str, Any]:
        """Set knobs (others unchanged); return the configuration :meth:`train` will run."""
        self._check(params)
        self.params.update({k: tuple(v) if k in ("heads", "sizes") else v for k, v in params.items()})
        self._syncing = True
        try:
            for name, value in params.items():
                self._controls[name].value = tuple(value) if name in ("heads", "sizes") else value
        finally:
            self._syncing = False
        heads, sizes = self.params["heads"], self.params["sizes"]
        runs = len(heads) * len(sizes) * int(self.params["seeds"])
        self.info.value = (f"{runs} training run(s): {', '.join(heads) or '—'} at "
                           f"{', '.join(f'{s}²' for s in sorted(sizes)) or '—'}, {self.params['steps']} steps each, "
                           f"{self.params['backbone']} backbone")
        return self.config() if heads and sizes else dict(self.params)

    def train(self, progress: bool = True) -> Table:
        """Train every chosen head × size × seed, show the table, the comparison and the
        loss curves under the widgets, and return the table."""
        cfg = self.config()
        seeds = tuple(range(int(self.params["seeds"])))
        self.output.clear_output()
        with self.output:
            self.table = pg.run(self.profile, seeds=seeds, progress=progress, cfg=cfg)
            display(self.table.figure())
            display(go.FigureWidget(comparison_figure(self.table)))
            curves = {k: History.from_dict(h) for k, h in self.table.meta["histories"].items()}
            display(go.FigureWidget(curves_figure(curves)))
        return self.table
