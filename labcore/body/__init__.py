"""Floor 2 — the body: the toy SMPL-format body, loading ``smplx`` models, the renderer."""
