"""Floor 4 — plotly figures (:mod:`labcore.viz.figures`) and ipywidgets explorers
(:mod:`labcore.viz.widgets`; each has ``.ui`` and ``.update(**params) -> figure``)."""
