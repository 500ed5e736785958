"""HEMlets PoSh — SMPL pose and shape from HEMlets' 3-D joints.

Zhou, Han, Jiang, Jia and Lu, *HEMlets PoSh: Learning Part-Centric Heatmap Triplets for 3D
Human Pose and Shape Estimation*, TPAMI 2021 (arXiv 2003.04894). The paper "appends a
shallow yet effective network module to regress the SMPL parameters"; its inputs, layers,
rotation representation and losses were **not found** (no code was released for it —
METHODS.md §4), so everything below is labcore's design (DESIGN.md §4), written the way
the SMPL regressors it descends from do it (HMR's iterative error feedback, SPIN's 6-D
rotations and rotation-matrix loss). Read top to bottom:

1. **rotations** — :func:`encode_rotations` / :func:`decode_rotations` between rotation
   matrices ``(N, 24, 3, 3)`` and a flat vector of 24 rotations, as the 6-D representation
   (Zhou et al., CVPR 2019: two columns of the matrix, Gram–Schmidt back; continuous) or
   axis-angle (SMPL's own; it wraps at π, a discontinuity a network must straddle);
   :func:`smpl_rotmats` (smplx's axis-angle parameters → matrices) and
   :func:`mean_rotation` (the chordal mean: the average matrix projected back onto SO(3));
2. **the regressor** — :class:`PoshRegressor`: root-relative 3-D joints (and optionally
   pooled HEMlets features) → an MLP that predicts a *correction* to the current SMPL
   parameters, applied ``iterations`` times from the mean parameters (HMR's iterative
   error feedback; ``iterations=1`` is a plain one-shot regressor). A zero correction
   gives the mean pose and shape;
3. **the body** — :func:`smpl_output`: rotations and betas through ``smplx`` (the toy body
   or real SMPL — :func:`labcore.body.load_body_model`, the same code path) → J18 joints
   and vertices, root-relative at the pelvis, metres;
4. **losses** — :func:`posh_targets` and :func:`posh_loss`: L1 on the SMPL joints mapped to
   J18, L1 on the vertices, MSE on the rotation matrices and on the betas (the last three
   where SMPL parameters are known, ``has_smpl``);
5. **metrics** — :func:`evaluate_smpl`: MPJPE (pelvis-aligned) and PA-MPJPE of the SMPL
   joints, PVE (pelvis-aligned vertices), all mm, and the mean rotation error (degrees).

Conventions: the camera frame of labcore's crops (OpenCV: x right, y down, z forward);
the global orientation is the body's rotation in that frame, so a mesh posed with it and
moved to the predicted root overlays the image. Joints and vertices in metres inside the
losses (smplx's unit), millimetres in the metrics.
"""

from __future__ import annotations

import math
from typing import Any

import smplx
import torch
import torch.nn.functional as F
from torch import nn

from labcore.body import M_TO_MM, PartialBody, pose_body_matrices
from labcore.checks import as_tensor, check_choice, check_int, check_number
from labcore.geometry import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rot6d,
    rot6d_to_matrix,
)
from labcore.metrics import pa_mpjpe, pel_mpjpe
from labcore.skeletons import J18

__all__ = [
    "NUM_ROTATIONS",
    "ROTATIONS",
    "rotation_size",
    "encode_rotations",
    "decode_rotations",
    "smpl_rotmats",
    "mean_rotation",
    "PoshRegressor",
    "smpl_output",
    "posh_targets",
    "posh_loss",
    "evaluate_smpl",
]

#: SMPL's rotations: the global orientation and 23 body joints.
NUM_ROTATIONS = 24
#: rotation representation → numbers per rotation.
ROTATIONS = {"6d": 6, "axis_angle": 3}
#: the joints the metrics average over: J18's first 17 (HEMlets' evaluation set).
EVAL_JOINTS = 17


# ----------------------------------------------------------------------------- 1. rotations


def rotation_size(rotation: str) -> int:
    """Numbers per rotation: 6 for ``'6d'``, 3 for ``'axis_angle'``."""
    return ROTATIONS[check_choice(rotation, "rotation", tuple(ROTATIONS))]


def encode_rotations(rotmats: Any, rotation: str = "6d") -> torch.Tensor:
    """Rotation matrices ``(N, R, 3, 3)`` → ``(N, R·d)``, ``d`` = :func:`rotation_size`.

    ``'6d'``: the first two columns (:func:`labcore.geometry.matrix_to_rot6d`, EventHPE's
    layout); ``'axis_angle'``: axis × angle, angle in [0, π]."""
    d = rotation_size(rotation)
    R = as_tensor(rotmats, "rotmats", shape=("N", "R", 3, 3), dtype=None)
    flat = matrix_to_rot6d(R) if d == 6 else matrix_to_axis_angle(R)
    return flat.reshape(R.shape[0], -1)


def decode_rotations(x: Any, rotation: str = "6d") -> torch.Tensor:
    """``(N, R·d)`` → rotation matrices ``(N, R, 3, 3)``; the inverse of
    :func:`encode_rotations` (for 6-D, any 6 numbers with independent halves give a
    rotation: Gram–Schmidt). Differentiable."""
    d = rotation_size(rotation)
    t = as_tensor(x, "x", shape=("N", None), dtype=None)
    if t.shape[1] % d:
        raise ValueError(f"x: expected (N, R·{d}) numbers for {rotation!r} rotations, got width {t.shape[1]}")
    r = t.reshape(t.shape[0], -1, d)
    return rot6d_to_matrix(r) if d == 6 else axis_angle_to_matrix(r)


def smpl_rotmats(global_orient: Any, body_pose: Any) -> torch.Tensor:
    """smplx's axis-angle parameters ``global_orient (N, 3)``, ``body_pose (N, 69)`` →
    ``(N, 24, 3, 3)`` rotation matrices, the global orientation first."""
    dims: dict[str, int] = {}
    g = as_tensor(global_orient, "global_orient", shape=("N", 3), dims=dims)
    b = as_tensor(body_pose, "body_pose", shape=("N", 69), dims=dims)
    return axis_angle_to_matrix(torch.cat([g, b], dim=1).reshape(-1, NUM_ROTATIONS, 3))


def mean_rotation(rotmats: Any) -> torch.Tensor:
    """The chordal L2 mean of rotations ``(N, ..., 3, 3)`` over the first axis → ``(..., 3, 3)``:
    the average matrix projected onto SO(3) (SVD, with the determinant fixed to +1) — the
    rotation nearest, in Frobenius norm, to all of them."""
    R = as_tensor(rotmats, "rotmats", shape=(..., 3, 3), dtype=None)
    if R.dim() < 3:
        raise ValueError(f"rotmats: expected shape (N, ..., 3, 3), got {tuple(R.shape)}")
    M = R.double().mean(0)
    U, _, Vh = torch.linalg.svd(M)
    D = torch.diag_embed(torch.ones_like(M[..., 0]))
    D[..., 2, 2] = torch.sign(torch.linalg.det(U @ Vh))
    return (U @ D @ Vh).to(R.dtype)


# ----------------------------------------------------------------------------- 2. the regressor


class PoshRegressor(nn.Module):
    """The shallow SMPL regressor (labcore's design; DESIGN.md §4).

    Args:
        num_joints: input joints (18 for J18).
        feature_channels: width of the pooled image features given to ``forward``
            (0: joints only).
        hidden: width of the two hidden layers.
        iterations: error-feedback steps (HMR uses 3); 1 is a one-shot regressor.
        rotation: ``'6d'`` or ``'axis_angle'`` — what the MLP outputs per rotation.
        num_betas: shape coefficients.
        dropout: after each hidden layer (HMR: 0.5; 0 here, where the data are small and clean).

    The state is ``θ = [24 rotations, betas]`` (``24·d + num_betas`` numbers), starting at
    the buffer ``mean`` (the identity rotations and zero betas until :meth:`set_mean`).
    Each step: ``θ ← θ + MLP([joints, features, θ])``. The last layer starts at
    Xavier-uniform with gain 0.01 (as HMR's ``decpose``), so training starts at the mean.

    ``forward(joints (N, J, 3) metres, features (N, C) = None)`` → dict ``params (N, P)``,
    ``rotmats (N, 24, 3, 3)``, ``betas (N, B)``, ``steps``: the ``params`` after each
    iteration (a list, for watching the feedback converge). The joints are made
    root-relative at joint 0 here.
    """

    def __init__(self, num_joints: int = 18, feature_channels: int = 0, hidden: int = 256, iterations: int = 3,
                 rotation: str = "6d", num_betas: int = 10, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_joints = check_int(num_joints, "num_joints", low=1)
        self.feature_channels = check_int(feature_channels, "feature_channels", low=0)
        self.iterations = check_int(iterations, "iterations", low=1)
        self.rotation = check_choice(rotation, "rotation", tuple(ROTATIONS))
        self.num_betas = check_int(num_betas, "num_betas", low=0)
        hidden = check_int(hidden, "hidden", low=1)
        dropout = check_number(dropout, "dropout", low=0.0, high=1.0, high_inclusive=False)
        self.num_params = NUM_ROTATIONS * rotation_size(self.rotation) + self.num_betas
        width = 3 * self.num_joints + self.feature_channels + self.num_params
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                 nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.decoder = nn.Linear(hidden, self.num_params)
        nn.init.xavier_uniform_(self.decoder.weight, gain=0.01)
        nn.init.zeros_(self.decoder.bias)
        self.register_buffer("mean", torch.zeros(self.num_params))
        self.set_mean(torch.eye(3).expand(NUM_ROTATIONS, 3, 3), torch.zeros(self.num_betas))

    def set_mean(self, rotmats: Any, betas: Any) -> PoshRegressor:
        """Start the feedback from these parameters: ``rotmats (24, 3, 3)`` (e.g. the
        :func:`mean_rotation` of a training set) and ``betas (B,)``."""
        R = as_tensor(rotmats, "rotmats", shape=(NUM_ROTATIONS, 3, 3))
        b = as_tensor(betas, "betas", shape=(self.num_betas,))
        self.mean.copy_(torch.cat([encode_rotations(R[None], self.rotation)[0], b]).to(self.mean))
        return self

    def split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``params (N, P)`` → ``(rotmats (N, 24, 3, 3), betas (N, B))``."""
        n_rot = self.num_params - self.num_betas
        return decode_rotations(params[:, :n_rot], self.rotation), params[:, n_rot:]

    def forward(self, joints: torch.Tensor, features: torch.Tensor | None = None) -> dict[str, Any]:
        dims: dict[str, int] = {}
        j = as_tensor(joints, "joints", shape=("N", self.num_joints, 3), dims=dims, dtype=None)
        inputs = [(j - j[:, :1]).flatten(1)]
        if self.feature_channels:
            if features is None:
                raise ValueError(f"features: this regressor takes ({dims['N']}, {self.feature_channels}) pooled "
                                 "features; got None")
            inputs.append(as_tensor(features, "features", shape=("N", self.feature_channels), dims=dims, dtype=None))
        elif features is not None:
            raise ValueError("features: this regressor was built with feature_channels=0")
        x = torch.cat(inputs, dim=1).to(self.mean)
        params = self.mean.expand(x.shape[0], -1)
        steps = []
        for _ in range(self.iterations):
            params = params + self.decoder(self.mlp(torch.cat([x, params], dim=1)))
            steps.append(params)
        rotmats, betas = self.split(params)
        return {"params": params, "rotmats": rotmats, "betas": betas, "steps": steps}


# ----------------------------------------------------------------------------- 3. the body


def smpl_output(body_model: smplx.SMPL | PartialBody, rotmats: Any, betas: Any) -> dict[str, torch.Tensor]:
    """The body of ``rotmats (N, 24, 3, 3)`` and ``betas (N, B)``: ``joints (N, 18, 3)``
    (J18, from the body's keypoints as the crops' labels are) and ``vertices (N, V, 3)``,
    both in metres relative to the J18 pelvis, plus ``pelvis (N, 3)`` (where smplx put it).

    ``body_model`` is a ``smplx.SMPL`` (all 6890 vertices) or a
    :class:`~labcore.body.PartialBody` (the same joints, and only its ``vertex_ids``: what
    training uses, 7× faster on a CPU)."""
    state = pose_body_matrices(body_model, rotmats, betas)
    joints = J18.from_body(state.keypoints)
    pelvis = joints[:, 0]
    return {"joints": joints - pelvis[:, None], "vertices": state.vertices - pelvis[:, None], "pelvis": pelvis}


# ----------------------------------------------------------------------------- 4. losses


def posh_targets(body_model: smplx.SMPL, global_orient: Any, body_pose: Any, betas: Any) -> dict[str, torch.Tensor]:
    """The regression targets from ground-truth SMPL parameters (camera frame, axis-angle):
    ``rotmats (N, 24, 3, 3)``, ``betas (N, B)``, and the body's J18 ``joints`` and
    ``vertices`` in metres relative to the pelvis (:func:`smpl_output`)."""
    R = smpl_rotmats(global_orient, body_pose)
    b = as_tensor(betas, "betas", shape=(R.shape[0], None))
    with torch.no_grad():
        body = smpl_output(body_model, R, b)
    return {"rotmats": R, "betas": b, "joints": body["joints"], "vertices": body["vertices"]}


def posh_loss(body_model: smplx.SMPL | PartialBody, outputs: dict[str, Any], targets: dict[str, Any], *, has_smpl: Any = None,
              joint_weight: float = 1.0, vertex_weight: float = 1.0, rotation_weight: float = 1.0,
              beta_weight: float = 0.1) -> tuple[torch.Tensor, dict[str, float]]:
    """The PoSh training loss and its terms.

    * ``joints`` — L1 (mean over coordinates) between the predicted body's J18 joints and
      ``targets['joints'] (N, 18, 3)`` metres, root-relative: always;
    * ``vertices`` — L1 on root-relative vertices ``(N, V, 3)`` (with a
      :class:`~labcore.body.PartialBody`, on its vertices: the full-mesh targets are
      indexed by its ``vertex_ids``);
    * ``rotations`` — MSE between rotation matrices ``(N, 24, 3, 3)`` (SPIN's pose loss);
    * ``betas`` — MSE between shape coefficients;

    the last three only on samples with ``has_smpl (N,) = 1`` (default: all) and only when
    ``targets`` holds them. Returns ``(total, {term: value})``; zero at the ground truth.
    """
    weights = {"joints": check_number(joint_weight, "joint_weight", low=0.0),
               "vertices": check_number(vertex_weight, "vertex_weight", low=0.0),
               "rotations": check_number(rotation_weight, "rotation_weight", low=0.0),
               "betas": check_number(beta_weight, "beta_weight", low=0.0)}
    R, b = outputs["rotmats"], outputs["betas"]
    n = R.shape[0]
    gt_joints = as_tensor(targets["joints"], "targets['joints']", shape=(n, J18.num_joints, 3)).to(R)
    mask = torch.ones(n, device=R.device) if has_smpl is None else as_tensor(
        has_smpl, "has_smpl", shape=(n,)).to(R)
    body = smpl_output(body_model, R, b)
    terms = {"joints": (body["joints"] - gt_joints).abs().mean()}

    def masked(err: torch.Tensor) -> torch.Tensor:
        per_sample = err.flatten(1).mean(1)
        return (per_sample * mask).sum() / mask.sum().clamp(min=1.0)

    if "vertices" in targets:
        v = as_tensor(targets["vertices"], "targets['vertices']", shape=(n, None, 3)).to(R)
        if isinstance(body_model, PartialBody) and v.shape[1] == body_model.model.v_template.shape[0]:
            v = v[:, body_model.vertex_ids.to(v.device)]
        if v.shape[1] != body["vertices"].shape[1]:
            raise ValueError(f"targets['vertices']: expected {body['vertices'].shape[1]} vertices, got {v.shape[1]}")
        terms["vertices"] = masked((body["vertices"] - v).abs())
    if "rotmats" in targets:
        terms["rotations"] = masked((R - as_tensor(targets["rotmats"], "targets['rotmats']",
                                                   shape=(n, NUM_ROTATIONS, 3, 3)).to(R)) ** 2)
    if "betas" in targets:
        gb = as_tensor(targets["betas"], "targets['betas']", shape=(n, None)).to(R)
        terms["betas"] = masked((b - F.pad(gb, (0, b.shape[1] - gb.shape[1]))) ** 2)
    total = sum(weights[k] * v for k, v in terms.items())
    return total, {k: float(v.detach()) for k, v in terms.items()}


# ----------------------------------------------------------------------------- 5. metrics


@torch.no_grad()
def evaluate_smpl(pred: dict[str, Any], gt: dict[str, Any], joints: int = EVAL_JOINTS) -> dict[str, float]:
    """PoSh's metrics on bodies from :func:`smpl_output` (metres in, mm out):

    * ``MPJPE`` — mean J18 joint error over the first ``joints`` after aligning the pelvis, mm;
    * ``PA-MPJPE`` — after a similarity alignment of the prediction onto the ground truth, mm;
    * ``PVE`` — mean vertex error after aligning the pelvis, mm (when both hold ``vertices``);
    * ``rot_deg`` — mean angle between predicted and true rotation matrices over the 23
      body joints, degrees (when both hold ``rotmats``).

    ``pred`` and ``gt`` are dicts with ``joints (N, 18, 3)`` metres and optionally
    ``vertices (N, V, 3)`` metres and ``rotmats (N, 24, 3, 3)``.
    """
    dims: dict[str, int] = {}
    p = as_tensor(pred["joints"], "pred['joints']", shape=("N", J18.num_joints, 3), dims=dims)
    g = as_tensor(gt["joints"], "gt['joints']", shape=("N", J18.num_joints, 3), dims=dims)
    k = check_int(joints, "joints", low=2, high=J18.num_joints)
    out = {"MPJPE": M_TO_MM * pel_mpjpe(p[:, :k], g[:, :k], root=0),
           "PA-MPJPE": M_TO_MM * pa_mpjpe(p[:, :k].double(), g[:, :k].double())}
    if "vertices" in pred and "vertices" in gt:
        pv = as_tensor(pred["vertices"], "pred['vertices']", shape=("N", "V", 3), dims=dims)
        gv = as_tensor(gt["vertices"], "gt['vertices']", shape=("N", "V", 3), dims=dims)
        pv, gv = pv - p[:, :1], gv - g[:, :1]
        out["PVE"] = M_TO_MM * float(torch.linalg.vector_norm(pv - gv, dim=-1).mean())
    if "rotmats" in pred and "rotmats" in gt:
        pr = as_tensor(pred["rotmats"], "pred['rotmats']", shape=("N", NUM_ROTATIONS, 3, 3), dims=dims)
        gr = as_tensor(gt["rotmats"], "gt['rotmats']", shape=("N", NUM_ROTATIONS, 3, 3), dims=dims)
        # the angle of R_predᵀ R_true through the quaternion (accurate near 0, where arccos of
        # the trace loses float32 precision: 1e-7 in the cosine is 0.03°)
        relative = pr[:, 1:].double().transpose(-1, -2) @ gr[:, 1:].double()
        out["rot_deg"] = math.degrees(float(matrix_to_axis_angle(relative).norm(dim=-1).mean()))
    return out
