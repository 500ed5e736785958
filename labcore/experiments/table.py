"""``Table``: what every experiment returns — rows of numbers with their seeds' spread,
rendered as a plotly table in notebooks and saved as JSON + Markdown.

A row is a dict whose ``'variant'`` names it. A numeric cell may carry its standard
deviation over seeds in ``'<column>_std'``; Markdown and the plotly table show
``mean ± std``. :func:`aggregate` builds such rows from per-seed results.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labcore.data.io import atomic_write

__all__ = ["Table", "aggregate", "mean_std"]


def _fmt(value: Any, digits: int) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if not math.isfinite(float(value)):
        return "—" if math.isnan(float(value)) else str(float(value))
    text = f"{float(value):.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.0"


def _plain(value: Any) -> Any:
    """JSON-able version of a cell (numpy scalars → Python numbers, NaN → None)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class Table:
    """An experiment's result table.

    Args:
        title: one line saying what was measured.
        columns: the column keys in display order (``'variant'`` usually first).
        rows: dicts keyed by column (missing cells display as ``—``); ``'<col>_std'``
            entries give a spread shown as ``± std``.
        labels: optional display names per column (default: the key).
        digits: decimals per column (default 2).
        notes: lines printed under the table (setting, seeds, how to read it).
        meta: anything JSON-able kept with the results (profile, seeds, timings ...).
    """

    def __init__(
        self,
        title: str,
        columns: Sequence[str],
        rows: Sequence[Mapping[str, Any]],
        labels: Mapping[str, str] | None = None,
        digits: Mapping[str, int] | None = None,
        notes: Sequence[str] = (),
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(title, str):
            raise TypeError(f"title: expected a str, got {type(title).__name__}")
        self.title = title
        self.columns = list(columns)
        if not self.columns or not all(isinstance(c, str) for c in self.columns):
            raise ValueError(f"columns: expected a non-empty list of column names, got {columns!r}")
        self.rows = [dict(r) for r in rows]
        for i, r in enumerate(self.rows):
            unknown = {k for k in r if k not in self.columns and not (k.endswith("_std") and k[:-4] in self.columns)}
            if unknown:
                raise ValueError(f"rows[{i}]: unknown column(s) {sorted(unknown)}; columns: {self.columns}")
        self.labels = {c: c for c in self.columns} | dict(labels or {})
        self.digits = dict(digits or {})
        self.notes = list(notes)
        self.meta = dict(meta or {})

    # -- access -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rows)

    def row(self, **match: Any) -> dict[str, Any]:
        """The single row whose cells equal ``match`` (e.g. ``row(variant='SimDR', size=32)``)."""
        hits = [r for r in self.rows if all(r.get(k) == v for k, v in match.items())]
        if len(hits) != 1:
            raise KeyError(f"expected exactly one row matching {match}, found {len(hits)}")
        return hits[0]

    def column(self, key: str) -> list[Any]:
        if key not in self.columns:
            raise KeyError(f"unknown column {key!r}; columns: {self.columns}")
        return [r.get(key) for r in self.rows]

    def cell(self, row: Mapping[str, Any], key: str) -> str:
        """The display text of one cell: ``mean ± std`` when a spread is known."""
        digits = self.digits.get(key, 2)
        text = _fmt(row.get(key), digits)
        std = row.get(f"{key}_std")
        if std is not None and isinstance(row.get(key), numbers.Real) and not isinstance(row.get(key), numbers.Integral):
            text += f" ± {_fmt(std, digits)}"
        return text

    # -- output -------------------------------------------------------------------------------
    def to_markdown(self) -> str:
        head = "| " + " | ".join(self.labels[c] for c in self.columns) + " |"
        rule = "|" + "|".join("---" for _ in self.columns) + "|"
        body = ["| " + " | ".join(self.cell(r, c) for c in self.columns) + " |" for r in self.rows]
        lines = [f"**{self.title}**", "", head, rule, *body]
        if self.notes:
            lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def to_json(self) -> str:
        return json.dumps({"title": self.title, "columns": self.columns, "labels": self.labels,
                           "digits": self.digits, "rows": _plain(self.rows), "notes": self.notes,
                           "meta": _plain(self.meta)}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Table:
        d = json.loads(text)
        return cls(d["title"], d["columns"], d["rows"], labels=d.get("labels"), digits=d.get("digits"),
                   notes=d.get("notes", ()), meta=d.get("meta"))

    def save(self, folder: str | Path, name: str) -> tuple[Path, Path]:
        """Write ``<folder>/<name>.json`` and ``.md`` atomically; return both paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = folder / f"{name}.json", folder / f"{name}.md"
        for path, text in zip(paths, (self.to_json(), self.to_markdown())):
            atomic_write(path, lambda f, text=text: f.write(text), text=True)
        return paths

    def figure(self, height: int | None = None):
        """A plotly ``go.Figure`` holding the table (title and notes included)."""
        import plotly.graph_objects as go

        cells = [[self.cell(r, c) for r in self.rows] for c in self.columns]
        fig = go.Figure(go.Table(
            header=dict(values=[f"<b>{self.labels[c]}</b>" for c in self.columns], align="left",
                        fill_color="#e8ecf4"),
            cells=dict(values=cells, align="left", height=24)))
        note = "<br>".join(self.notes)
        fig.update_layout(title=self.title, margin=dict(l=10, r=10, t=40, b=10 + 18 * len(self.notes)),
                          height=height or 90 + 26 * (len(self.rows) + 1) + 18 * len(self.notes))
        if note:
            fig.add_annotation(text=note, x=0, y=0, xref="paper", yref="paper", showarrow=False,
                               xanchor="left", yanchor="top", align="left", yshift=-4,
                               font=dict(size=11, color="#555"))
        return fig

    def _ipython_display_(self) -> None:  # pragma: no cover - needs a notebook front end
        from IPython.display import display

        display(self.figure())

    def __repr__(self) -> str:
        return self.to_markdown()


def mean_std(key: str, values: Sequence[float]) -> dict[str, float]:
    """``{key: mean}`` plus ``{key_std: sample std (ddof=1)}`` when there are two or more
    values — the cells of a mean ± std row (empty values give ``{}``)."""
    vals = np.asarray([float(v) for v in values], dtype=np.float64)
    if len(vals) == 0:
        return {}
    out = {key: float(vals.mean())}
    if len(vals) > 1:
        out[f"{key}_std"] = float(vals.std(ddof=1))
    return out


def aggregate(per_seed: Sequence[Mapping[str, Any]], keys: Sequence[str], by: Sequence[str]) -> list[dict[str, Any]]:
    """Average per-seed rows into one row per group.

    Args:
        per_seed: rows, one per (group, seed), holding the ``by`` cells and numeric ``keys``.
        keys: the numeric columns to average; each gets ``<key>`` (mean) and
            ``<key>_std`` (sample standard deviation over seeds, ``ddof=1``; absent with a
            single seed).
        by: the columns that identify a group (kept in first-seen order).

    Returns:
        One dict per group with the ``by`` cells, the means, the spreads and ``seeds`` (the
        number of rows averaged).
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in per_seed:
        groups.setdefault(tuple(r[b] for b in by), []).append(r)
    out = []
    for ident, rows in groups.items():
        row: dict[str, Any] = dict(zip(by, ident))
        for k in keys:
            row.update(mean_std(k, [r[k] for r in rows if r.get(k) is not None]))
        row["seeds"] = len(rows)
        out.append(row)
    return out
