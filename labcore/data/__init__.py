"""Floor 2 — data: poses and motion, synthetic scenes, datasets, real formats."""
