"""Floor 2 — the body: the toy SMPL-format body, loading ``smplx`` models, the renderer.

* :mod:`labcore.body.toy` — :func:`toy_smpl`, a licence-free body in SMPL's format.
* :mod:`labcore.body.model` — :func:`load_body_model` (toy or the real SMPL files from
  ``LABCORE_SMPL_DIR``), :func:`pose_body`, metres → millimetres in one place.
* :mod:`labcore.body.render` — a vectorised z-buffer rasteriser, shading, optical flow.
"""

from labcore.body.model import (
    M_TO_MM,
    SMPL_DIR_ENV,
    BodyState,
    PartialBody,
    body_keypoints,
    body_kind,
    load_body_model,
    pose_body,
    pose_body_matrices,
    resolve_body_kind,
    vertex_parts,
    zero_params,
)
from labcore.body.toy import BETA_NAMES, LANDMARK_VERTEX_IDS, PART_NAMES, toy_smpl

__all__ = [
    "BETA_NAMES",
    "LANDMARK_VERTEX_IDS",
    "M_TO_MM",
    "PartialBody",
    "PART_NAMES",
    "SMPL_DIR_ENV",
    "BodyState",
    "body_keypoints",
    "body_kind",
    "load_body_model",
    "pose_body",
    "pose_body_matrices",
    "resolve_body_kind",
    "toy_smpl",
    "vertex_parts",
    "zero_params",
]
