"""Floor 2 — neural-network building blocks and backbones."""
