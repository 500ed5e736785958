"""Floor 3 — one module per method: its codec, head/network, losses and decoding."""
