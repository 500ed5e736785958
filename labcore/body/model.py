"""Loading a body model and posing it — one code path for the toy body and real SMPL.

``load_body_model`` returns a plain ``smplx.SMPL``. The toy body (:mod:`labcore.body.toy`)
is handed to smplx as its ``data_struct``; the licensed SMPL files are read only from the
folder named by ``LABCORE_SMPL_DIR``. :func:`pose_body` runs the model and adds what labcore
needs on top: the 46 body keypoints of :data:`labcore.skeletons.BODY_KEYPOINT_NAMES`.

Units: smplx works in **metres**; labcore's metrics and notebooks use **millimetres**.
The conversion happens here and only here (:data:`M_TO_MM`, :meth:`BodyState.to_mm`).
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import smplx
import smplx.lbs
import torch
from smplx.utils import Struct

from labcore.body.toy import JOINT_TO_PART, toy_smpl
from labcore.checks import MissingFileError, as_tensor, check_choice, check_int
from labcore.skeletons import HEAD_TOP_VERTEX, Skeleton, get_skeleton

__all__ = [
    "M_TO_MM",
    "SMPL_DIR_ENV",
    "BodyState",
    "load_body_model",
    "body_kind",
    "resolve_body_kind",
    "pose_body",
    "pose_body_matrices",
    "PartialBody",
    "body_keypoints",
    "vertex_parts",
    "zero_params",
]

M_TO_MM = 1000.0
SMPL_DIR_ENV = "LABCORE_SMPL_DIR"
_SMPL_URL = "https://smpl.is.tue.mpg.de (register, then 'SMPL for Python')"
_warned_fallback = False


def _smpl_file(gender: str) -> Path | None:
    root = os.environ.get(SMPL_DIR_ENV, "").strip()
    return Path(root).expanduser() / f"SMPL_{gender.upper()}.pkl" if root else None


def _quiet_smplx(**kwargs) -> smplx.SMPL:
    """Build ``smplx.SMPL`` without its print about '10 shape coefficients' (it prints to
    stdout for every model with fewer than 300 betas, which is every SMPL model)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return smplx.SMPL(**kwargs)


def load_body_model(
    kind: str = "auto",
    gender: str = "neutral",
    num_betas: int = 10,
    *,
    batch_size: int = 1,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> smplx.SMPL:
    """A ``smplx.SMPL`` body model.

    Args:
        kind: ``'toy'`` — labcore's toy body; ``'smpl'`` — the licensed files from the
            folder in ``LABCORE_SMPL_DIR`` (``SMPL_NEUTRAL.pkl``, ``SMPL_MALE.pkl``,
            ``SMPL_FEMALE.pkl``, as smplx names them); ``'auto'`` — SMPL when that file
            exists, else the toy body (saying so once).
        gender: ``'neutral'``, ``'male'`` or ``'female'`` (SMPL only; the toy is neutral).
        num_betas: shape coefficients (≤ 10).
        batch_size: smplx's default batch for its own parameters (labcore always passes
            parameters explicitly, so 1 is fine).
        device: where to put the model.
        seed: toy body individual (see :func:`labcore.body.toy.toy_smpl`).

    Raises:
        MissingFileError: ``kind='smpl'`` and the file is missing (the message names it and
            where to get it).
    """
    global _warned_fallback
    kind = check_choice(kind, "kind", ("auto", "toy", "smpl"))
    gender = check_choice(gender, "gender", ("neutral", "male", "female"))
    num_betas = check_int(num_betas, "num_betas", low=1, high=10)
    path = _smpl_file(gender)
    if resolve_body_kind(kind, gender) == "smpl":
        if path is None:
            raise MissingFileError(
                f"kind='smpl': set {SMPL_DIR_ENV} to the folder holding SMPL_{gender.upper()}.pkl"
                f" (get the files from {_SMPL_URL})"
            )
        if not path.is_file():
            raise MissingFileError(
                f"kind='smpl': file not found: {path}. Download SMPL from {_SMPL_URL} and save "
                f"the {gender} model as {path.name} in {path.parent}"
            )
        model = _quiet_smplx(model_path=str(path.parent), gender=gender, num_betas=num_betas,
                             batch_size=batch_size)
        model.labcore_kind = "smpl"
    else:
        if kind == "auto" and not _warned_fallback:
            _warned_fallback = True
            where = f"{path} not found" if path is not None else f"{SMPL_DIR_ENV} is not set"
            warnings.warn(f"labcore: using the toy body ({where})", stacklevel=2)
        data = toy_smpl(num_betas=num_betas, seed=seed)
        model = _quiet_smplx(model_path="", data_struct=Struct(**data), num_betas=num_betas,
                             batch_size=batch_size)
        model.labcore_kind = "toy"
    model.requires_grad_(False)
    if device is not None:
        model = model.to(device)
    return model


def resolve_body_kind(kind: str = "auto", gender: str = "neutral") -> str:
    """Which body ``load_body_model(kind, gender)`` would load: ``'smpl'`` or ``'toy'``
    (``'auto'`` is SMPL when ``LABCORE_SMPL_DIR`` holds the file). Datasets put this in
    their cache key, so toy-body and SMPL data never mix."""
    check_choice(kind, "kind", ("auto", "toy", "smpl"))
    if kind != "auto":
        return kind
    path = _smpl_file(gender)
    return "smpl" if path is not None and path.is_file() else "toy"


def body_kind(model: smplx.SMPL) -> str:
    """``'toy'`` or ``'smpl'`` for a model from :func:`load_body_model`."""
    return getattr(model, "labcore_kind", "smpl")


def vertex_parts(model: smplx.SMPL) -> torch.Tensor:
    """``(V,)`` part index (into :data:`labcore.body.toy.PART_NAMES`) of each vertex, from
    the dominant skinning weight — the same rule for the toy body and real SMPL."""
    dominant = model.lbs_weights.argmax(dim=1)
    return torch.as_tensor(JOINT_TO_PART, device=dominant.device)[dominant]


@dataclass
class BodyState:
    """A posed body, in **metres** (smplx's unit), camera or world frame as posed.

    Attributes:
        vertices: ``(N, 6890, 3)``.
        joints: ``(N, 24, 3)`` the SMPL kinematic joints.
        keypoints: ``(N, 46, 3)`` body keypoints (:data:`BODY_KEYPOINT_NAMES`).
    """

    vertices: torch.Tensor
    joints: torch.Tensor
    keypoints: torch.Tensor

    def to_mm(self) -> BodyState:
        """The same body in millimetres (the unit of labcore's metrics)."""
        return BodyState(self.vertices * M_TO_MM, self.joints * M_TO_MM, self.keypoints * M_TO_MM)

    def joints_of(self, skeleton: str | Skeleton) -> torch.Tensor:
        """``(N, K, 3)`` joints of a joint set (``'coco17'``, ``'j18'``, ``'smpl24'``)."""
        return get_skeleton(skeleton).from_body(self.keypoints)


def body_keypoints(joints45: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
    """``(N, 46, 3)``: smplx's 45 output joints (24 + 21 landmarks) and the head-top vertex."""
    return torch.cat([joints45[:, :45], vertices[:, HEAD_TOP_VERTEX : HEAD_TOP_VERTEX + 1]], dim=1)


def zero_params(n: int, num_betas: int = 10, device: torch.device | str | None = None) -> dict:
    """SMPL parameters of ``n`` bodies in the rest pose, as float32 tensors."""
    n = check_int(n, "n", low=1)
    z = lambda *s: torch.zeros(n, *s, device=device)  # noqa: E731
    return {"global_orient": z(3), "body_pose": z(69), "betas": z(num_betas), "transl": z(3)}


def pose_body(
    model: smplx.SMPL,
    global_orient: torch.Tensor | np.ndarray | None = None,
    body_pose: torch.Tensor | np.ndarray | None = None,
    betas: torch.Tensor | np.ndarray | None = None,
    transl: torch.Tensor | np.ndarray | None = None,
) -> BodyState:
    """Run the body model on a batch of SMPL parameters (smplx names, axis-angle).

    Args:
        global_orient: ``(N, 3)``; body_pose: ``(N, 69)``; betas: ``(N, B)`` with
            ``B ≤ model.num_betas`` (missing ones are zero); transl: ``(N, 3)`` metres.
            Any may be omitted (zeros); at least one must fix ``N``.

    Returns:
        :class:`BodyState` in metres.
    """
    dims: dict[str, int] = {}
    dev = model.v_template.device
    given = {}
    for name, value, width in (("global_orient", global_orient, 3), ("body_pose", body_pose, 69),
                               ("transl", transl, 3)):
        if value is not None:
            given[name] = as_tensor(value, name, shape=("N", width), dims=dims, device=dev)
    if betas is not None:
        b = as_tensor(betas, "betas", shape=("N", None), dims=dims, device=dev)
        if b.shape[1] > model.num_betas:
            raise ValueError(f"betas: the model has {model.num_betas} shape coefficients, got {b.shape[1]}")
        given["betas"] = torch.nn.functional.pad(b, (0, model.num_betas - b.shape[1]))
    if "N" not in dims:
        raise ValueError("pose_body: give at least one of global_orient, body_pose, betas, transl")
    params = zero_params(dims["N"], model.num_betas, device=dev)
    params.update(given)
    out = model(**params)
    return BodyState(out.vertices, out.joints[:, :24], body_keypoints(out.joints, out.vertices))



def pose_body_matrices(
    model: smplx.SMPL | PartialBody,
    rotmats: torch.Tensor,
    betas: torch.Tensor | None = None,
    transl: torch.Tensor | None = None,
) -> BodyState:
    """Run the body model on rotation matrices — what a network that predicts rotations
    hands over (smplx's ``pose2rot=False`` path; differentiable in every argument).

    Args:
        rotmats: ``(N, 24, 3, 3)``: the global orientation, then the 23 body joints in
            SMPL's order (:data:`labcore.skeletons.SMPL_JOINT_NAMES`).
        betas: ``(N, B)`` with ``B ≤ model.num_betas`` (missing ones are zero); default zeros.
        transl: ``(N, 3)`` metres; default zeros.

    Returns:
        :class:`BodyState` in metres; the same body as :func:`pose_body` on the axis-angle
        form of ``rotmats``. ``model`` may be a :class:`PartialBody`: then ``vertices`` are
        its ``vertex_ids`` only.
    """
    if isinstance(model, PartialBody):
        state = model(rotmats, betas)
        if transl is None:
            return state
        t = as_tensor(transl, "transl", shape=(state.joints.shape[0], 3)).to(state.joints)[:, None]
        return BodyState(state.vertices + t, state.joints + t, state.keypoints + t)
    dims: dict[str, int] = {}
    dev = model.v_template.device
    R = as_tensor(rotmats, "rotmats", shape=("N", 24, 3, 3), dims=dims, device=dev)
    n = dims["N"]
    if betas is None:
        b = torch.zeros(n, model.num_betas, device=dev)
    else:
        b = as_tensor(betas, "betas", shape=("N", None), dims=dims, device=dev)
        if b.shape[1] > model.num_betas:
            raise ValueError(f"betas: the model has {model.num_betas} shape coefficients, got {b.shape[1]}")
        b = torch.nn.functional.pad(b, (0, model.num_betas - b.shape[1]))
    t = torch.zeros(n, 3, device=dev) if transl is None else as_tensor(transl, "transl", shape=("N", 3), dims=dims,
                                                                      device=dev)
    out = model(global_orient=R[:, :1], body_pose=R[:, 1:], betas=b, transl=t, pose2rot=False)
    return BodyState(out.vertices, out.joints[:, :24], body_keypoints(out.joints, out.vertices))


class PartialBody:
    """The body model skinned on part of its mesh — for training losses that need the joints
    and a sample of vertices many thousand times (at 32 bodies a step, skinning all 6890
    vertices is most of a CPU step).

    It runs smplx's own ``lbs`` on a sub-mesh that keeps, besides ``vertex_ids``, every
    vertex the joints are regressed from and every vertex a keypoint is read from (smplx's
    21 landmarks and the head top). The joint regressor restricted to those vertices gives
    the same joints, so joints, keypoints and the chosen vertices equal
    :func:`pose_body_matrices`' to float precision (a test checks it).

    Args:
        model: a ``smplx.SMPL`` from :func:`load_body_model`.
        vertex_ids: ``(K,)`` the vertices to return, in this order.

    Call with ``(rotmats (N, 24, 3, 3), betas (N, B) | None)`` → :class:`BodyState` whose
    ``vertices`` are ``(N, K, 3)`` (``vertex_ids``), metres, no translation.
    """

    def __init__(self, model: smplx.SMPL, vertex_ids: torch.Tensor | np.ndarray) -> None:
        n_verts = model.v_template.shape[0]
        ids = as_tensor(vertex_ids, "vertex_ids", shape=(None,), dtype=torch.int64)
        if int(ids.min()) < 0 or int(ids.max()) >= n_verts:
            raise ValueError(f"vertex_ids: expected indices in [0, {n_verts}), got {int(ids.min())}…{int(ids.max())}")
        regressed = (model.J_regressor.abs() > 0).any(0).nonzero().ravel().cpu()
        landmarks = model.vertex_joint_selector.extra_joints_idxs.cpu()
        keep = torch.cat([ids, regressed, landmarks, torch.tensor([HEAD_TOP_VERTEX])]).unique()
        position = torch.full((n_verts,), -1, dtype=torch.int64)
        position[keep] = torch.arange(len(keep))
        dev = model.v_template.device
        self.model = model
        self.num_betas = model.num_betas
        self.vertex_ids = ids
        self._out = position[ids].to(dev)
        self._landmarks = position[landmarks].to(dev)
        self._head_top = int(position[HEAD_TOP_VERTEX])
        k = keep.to(dev)
        cols = (3 * k[:, None] + torch.arange(3, device=dev)).ravel()
        self._v_template = model.v_template[k]
        self._shapedirs = model.shapedirs[k]
        self._posedirs = model.posedirs[:, cols]
        self._J_regressor = model.J_regressor[:, k]
        self._lbs_weights = model.lbs_weights[k]

    def __call__(self, rotmats: torch.Tensor, betas: torch.Tensor | None = None) -> BodyState:
        dims: dict[str, int] = {}
        dev = self._v_template.device
        R = as_tensor(rotmats, "rotmats", shape=("N", 24, 3, 3), dims=dims, device=dev)
        if betas is None:
            b = torch.zeros(dims["N"], self.num_betas, device=dev)
        else:
            b = as_tensor(betas, "betas", shape=("N", None), dims=dims, device=dev)
            if b.shape[1] > self.num_betas:
                raise ValueError(f"betas: the model has {self.num_betas} shape coefficients, got {b.shape[1]}")
            b = torch.nn.functional.pad(b, (0, self.num_betas - b.shape[1]))
        verts, joints = smplx.lbs.lbs(b, R, self._v_template, self._shapedirs, self._posedirs, self._J_regressor,
                                      self.model.parents, self._lbs_weights, pose2rot=False)
        keypoints = torch.cat([joints, verts[:, self._landmarks], verts[:, self._head_top : self._head_top + 1]], 1)
        return BodyState(verts[:, self._out], joints, keypoints)
