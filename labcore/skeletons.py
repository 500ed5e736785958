"""Joint sets: COCO17, J18 (HEMlets' Human3.6M order) and SMPL24.

Each :class:`Skeleton` carries joint names, bones ``(parent, child)``, left/right flip
pairs, and a mapping from the body model's keypoints: the 24 SMPL kinematic joints, the
21 landmark vertices that ``smplx`` appends (nose, eyes, ears, toes, heels, fingertips)
and the head-top vertex — 46 *body keypoints* in :data:`BODY_KEYPOINT_NAMES` order (what
:func:`labcore.body.body_keypoints` returns). ``skeleton.from_body(points)`` maps
``(..., 46, D)`` to ``(..., K, D)`` with a fixed ``(K, 46)`` weight matrix, so joints that
are not body-model joints (J18's shoulder midpoint) are weighted averages.

Conventions: keypoints ``(N, K, 2)`` in pixels, x right, y down, integer values at pixel
centres; visibility ``(N, K)`` in {0, 1}.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from labcore.checks import as_tensor, check_number

__all__ = [
    "SMPL_JOINT_NAMES",
    "SMPL_PARENTS",
    "BODY_LANDMARK_NAMES",
    "BODY_KEYPOINT_NAMES",
    "HEAD_TOP_VERTEX",
    "Skeleton",
    "COCO17",
    "J18",
    "SMPL24",
    "SKELETONS",
    "get_skeleton",
    "flip_permutation",
    "depth_order",
]

SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
)  # fmt: skip

#: SMPL kinematic tree: ``SMPL_PARENTS[j]`` is the parent of joint ``j`` (-1 for the root).
SMPL_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)  # fmt: skip

#: The landmarks ``smplx.SMPL`` appends after the 24 joints (``VertexJointSelector`` order,
#: smplx's default ``vertex_ids['smplh']``), then the head top that labcore adds.
BODY_LANDMARK_NAMES: tuple[str, ...] = (
    "nose", "right_eye", "left_eye", "right_ear", "left_ear",
    "left_big_toe", "left_small_toe", "left_heel",
    "right_big_toe", "right_small_toe", "right_heel",
    "left_thumb", "left_index", "left_middle", "left_ring", "left_pinky",
    "right_thumb", "right_index", "right_middle", "right_ring", "right_pinky",
    "head_top",
)  # fmt: skip

BODY_KEYPOINT_NAMES: tuple[str, ...] = SMPL_JOINT_NAMES + BODY_LANDMARK_NAMES

#: The SMPL vertex at the top of the head (widely used for the head-top keypoint; some
#: tools take its neighbour 412). The toy body puts its head-top vertex at this index too.
HEAD_TOP_VERTEX = 411

_BODY_INDEX = {name: i for i, name in enumerate(BODY_KEYPOINT_NAMES)}


def _side(name: str) -> str:
    low = name.lower()
    if low.startswith(("left", "l_", "l-")):
        return "left"
    if low.startswith(("right", "r_", "r-")):
        return "right"
    return "center"


@dataclass(frozen=True)
class Skeleton:
    """A joint set.

    Attributes:
        name: short identifier (``"coco17"``, ``"j18"``, ``"smpl24"``).
        joint_names: ``K`` names in order.
        bones: ``(parent, child)`` index pairs for drawing and depth order.
        flip_pairs: ``(left, right)`` index pairs swapped by a horizontal flip.
        body_map: ``(K, 46)`` weights; row ``k`` averages body keypoints into joint ``k``.
        oks_sigmas: per-joint COCO OKS sigmas, where defined.
    """

    name: str
    joint_names: tuple[str, ...]
    bones: tuple[tuple[int, int], ...]
    flip_pairs: tuple[tuple[int, int], ...]
    body_map: np.ndarray = field(repr=False)
    oks_sigmas: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        k = len(self.joint_names)
        if self.body_map.shape != (k, len(BODY_KEYPOINT_NAMES)):
            raise ValueError(f"{self.name}: body_map must be ({k}, {len(BODY_KEYPOINT_NAMES)})")
        if not np.allclose(self.body_map.sum(1), 1.0):
            raise ValueError(f"{self.name}: each body_map row must sum to 1")
        for a, b in self.bones + self.flip_pairs:
            if not (0 <= a < k and 0 <= b < k):
                raise ValueError(f"{self.name}: joint index out of range in {(a, b)}")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def __len__(self) -> int:
        return self.num_joints

    @property
    def flip_index(self) -> np.ndarray:
        """Permutation ``p`` with ``flipped[:, k] = keypoints[:, p[k]]`` after mirroring."""
        perm = np.arange(self.num_joints)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    @property
    def sides(self) -> tuple[str, ...]:
        """``'left'``, ``'right'`` or ``'center'`` for each joint (for colouring)."""
        return tuple(_side(n) for n in self.joint_names)

    def index(self, name: str) -> int:
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise ValueError(f"{self.name} has no joint {name!r}; joints: {self.joint_names}") from None

    def from_body(self, points: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Map body keypoints ``(..., 46, D)`` to this joint set ``(..., K, D)``.

        Works on numpy arrays and torch tensors (any device), and keeps the input's type.
        """
        n_body = len(BODY_KEYPOINT_NAMES)
        if isinstance(points, np.ndarray):
            if points.ndim < 2 or points.shape[-2] != n_body:
                raise ValueError(f"points: expected shape (..., {n_body}, D), got {points.shape}")
            return np.einsum("kb,...bd->...kd", self.body_map.astype(points.dtype), points)
        t = as_tensor(points, "points", shape=(..., n_body, None), dtype=None)
        if not t.is_floating_point():
            t = t.float()
        weights = torch.as_tensor(self.body_map, dtype=t.dtype, device=t.device)
        return torch.einsum("kb,...bd->...kd", weights, t)

    def flip(
        self, keypoints: torch.Tensor | np.ndarray, image_width: int
    ) -> torch.Tensor | np.ndarray:
        """Mirror ``(..., K, 2|3)`` keypoints horizontally in an image ``image_width`` wide
        (``x -> W - 1 - x`` under the pixel-centre convention) and swap left/right joints."""
        if isinstance(keypoints, np.ndarray):
            out = keypoints[..., self.flip_index, :].copy()
        else:
            out = keypoints[..., torch.as_tensor(self.flip_index, device=keypoints.device), :].clone()
        out[..., 0] = (image_width - 1) - out[..., 0]
        return out

    def coco_category(self, category_id: int = 1) -> dict:
        """The COCO ``categories`` entry for this joint set (skeleton 1-based, as COCO)."""
        return {
            "supercategory": "person",
            "id": int(category_id),
            "name": "person",
            "keypoints": list(self.joint_names),
            "skeleton": [[a + 1, b + 1] for a, b in self.bones],
        }


def _body_map(recipes: list[tuple[str, ...]]) -> np.ndarray:
    """Rows averaging the named body keypoints (one name: a copy)."""
    m = np.zeros((len(recipes), len(BODY_KEYPOINT_NAMES)), dtype=np.float64)
    for k, names in enumerate(recipes):
        for n in names:
            m[k, _BODY_INDEX[n]] += 1.0 / len(names)
    return m


_COCO_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip

COCO17 = Skeleton(
    name="coco17",
    joint_names=_COCO_NAMES,
    # COCO's own skeleton (person_keypoints_*.json), made 0-based.
    bones=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
        (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),  # fmt: skip
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    body_map=_body_map([(n,) for n in _COCO_NAMES]),
    oks_sigmas=np.array(
        [.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]
    ) / 10.0,  # fmt: skip
)

J18 = Skeleton(
    name="j18",
    # HEMlets' order (inference/table.py H36M_TO_J18 + the shoulder midpoint as joint 17).
    joint_names=(
        "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
        "left_ankle", "spine", "thorax", "neck_nose", "head_top", "left_shoulder",
        "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist",
        "shoulder_mid",
    ),  # fmt: skip
    # HEMlets' JOINT_CONNECTIONS, written (parent, child).
    bones=(
        (0, 1), (0, 4), (0, 7), (1, 2), (2, 3), (4, 5), (5, 6), (7, 17), (17, 8),
        (8, 14), (8, 11), (8, 9), (9, 10), (14, 15), (15, 16), (11, 12), (12, 13),
    ),  # fmt: skip
    flip_pairs=((1, 4), (2, 5), (3, 6), (14, 11), (15, 12), (16, 13)),
    # From the body model: H36M's spine sits mid-torso (SMPL spine2), its thorax at the
    # neck base (SMPL neck), its "neck/nose" at the nose; the head top is a vertex.
    body_map=_body_map([
        ("pelvis",), ("right_hip",), ("right_knee",), ("right_ankle",), ("left_hip",),
        ("left_knee",), ("left_ankle",), ("spine2",), ("neck",), ("nose",), ("head_top",),
        ("left_shoulder",), ("left_elbow",), ("left_wrist",), ("right_shoulder",),
        ("right_elbow",), ("right_wrist",), ("left_shoulder", "right_shoulder"),
    ]),  # fmt: skip
)

SMPL24 = Skeleton(
    name="smpl24",
    joint_names=SMPL_JOINT_NAMES,
    bones=tuple((p, j) for j, p in enumerate(SMPL_PARENTS) if p >= 0),
    flip_pairs=((1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21), (22, 23)),
    body_map=_body_map([(n,) for n in SMPL_JOINT_NAMES]),
)

SKELETONS: dict[str, Skeleton] = {s.name: s for s in (COCO17, J18, SMPL24)}


def get_skeleton(name: str | Skeleton) -> Skeleton:
    """A skeleton by name (``'coco17'``, ``'j18'``, ``'smpl24'``) or the object itself."""
    if isinstance(name, Skeleton):
        return name
    if name not in SKELETONS:
        raise ValueError(f"skeleton: expected one of {tuple(SKELETONS)}, got {name!r}")
    return SKELETONS[name]


def depth_order(
    depth: torch.Tensor | np.ndarray,
    pairs: tuple[tuple[int, int], ...] | list[tuple[int, int]],
    threshold: float,
) -> torch.Tensor:
    """Ordinal depth of each ``(parent, child)`` pair.

    Args:
        depth: ``(..., K)`` depth of each joint along the camera's z axis (any unit).
        pairs: ``P`` index pairs ``(parent, child)``.
        threshold: ``r >= 0`` in the unit of ``depth``.

    Returns:
        ``(..., P)`` int64 tensor: ``+1`` when the child is farther from the camera than the
        parent by more than ``r`` (``z_child - z_parent > r``), ``-1`` when nearer by more
        than ``r``, else ``0``. The comparison is strict: a difference of exactly ``r`` is 0.
    """
    r = check_number(threshold, "threshold", low=0.0)
    z = as_tensor(depth, "depth", shape=(..., None), dtype=None)
    if not z.is_floating_point():
        z = z.double()
    idx = torch.as_tensor(pairs, dtype=torch.long, device=z.device).reshape(-1, 2)
    if idx.numel() and (idx.min() < 0 or idx.max() >= z.shape[-1]):
        raise ValueError(f"pairs: indices must lie in [0, {z.shape[-1]}), got {idx.tolist()}")
    diff = z[..., idx[:, 1]] - z[..., idx[:, 0]]
    return (diff > r).long() - (diff < -r).long()


def flip_permutation(flip_index: Any, num_joints: int) -> torch.Tensor:
    """A left/right joint permutation as an int64 tensor: ``flip_index`` is a
    :class:`Skeleton` (its :attr:`Skeleton.flip_index`) or a sequence/array/tensor ``p`` of
    ``range(num_joints)`` with ``flipped[:, k] = x[:, p[k]]``. Anything else raises
    ``TypeError``/``ValueError`` naming ``flip_index``."""
    if isinstance(flip_index, Skeleton):
        flip_index = flip_index.flip_index
    if isinstance(flip_index, torch.Tensor):
        flip_index = flip_index.detach().cpu().numpy()
    if isinstance(flip_index, (str, bytes)) or not isinstance(
        flip_index, (Sequence, np.ndarray)
    ):
        raise TypeError(
            f"flip_index: expected a Skeleton or a sequence of joint indices, "
            f"got {type(flip_index).__name__}"
        )
    p = np.asarray(flip_index)
    if p.ndim != 1 or (p.size and p.dtype.kind not in "iu"):
        raise TypeError(f"flip_index: expected a 1-D sequence of ints, got {p.dtype} {p.shape}")
    if p.size != num_joints or sorted(p.tolist()) != list(range(num_joints)):
        raise ValueError(
            f"flip_index: expected a permutation of range({num_joints}) (one entry per "
            f"joint), got {p.tolist()}"
        )
    return torch.as_tensor(p, dtype=torch.long)
