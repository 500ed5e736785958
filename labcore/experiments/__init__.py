"""Floor 4 — one module per paper's miniature reproduction (``run(profile, seeds) -> Table``)."""
