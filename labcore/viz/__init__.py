"""Floor 4 — plotly figures and ipywidgets explorers."""
