"""A licence-free body in SMPL's format, built in memory, that ``smplx.SMPL`` runs as is.

The licensed SMPL files cannot ship with labcore, so :func:`toy_smpl` builds a body with
SMPL's *structure*: 6890 vertices, the 24-joint SMPL kinematic tree, a linear shape space
whose 10 directions each mean one thing (height, girth, leg length ...), 207 pose-corrective
blend shapes, a joint regressor, skinning weights, and the landmark vertices ``smplx``
reads (nose, eyes, ears, toes, heels, fingertips at smplx's default ``vertex_ids``) placed
on the right body parts. Everything downstream — posing, rendering, datasets — goes
through ``smplx`` exactly as with the real model, so pointing ``LABCORE_SMPL_DIR`` at the
real files changes the body and nothing else.

How it is made (readable top to bottom):

1. **Joints.** A T-pose template close to SMPL's neutral rest pose (metres; y up, x to
   the subject's left, z forward — SMPL's own frame).
2. **Surface.** Each body part is a closed *tube* of elliptical rings between two joints,
   with rounded caps that overlap the neighbouring part; the torso is one tube along the
   spine with a hand-written cross-section profile; the head is an ellipsoid. The tubes
   have rings exactly at the joints so that the regressor can find them.
3. **Joint regressor.** Each joint is the mean of the vertices of the ring that sits on it
   (collars: a fixed mix of a torso ring and the shoulder ring), so joints follow the shape.
4. **Skinning.** A vertex of the part owned by joint ``j`` is skinned to ``j``, blended
   smoothly with the parent's joint near the proximal end and the child's near the distal
   end (half/half exactly at the joint), as SMPL's weights blend across a joint.
5. **Shape space.** Ten displacement fields written by hand (see :data:`BETA_NAMES`).
6. **Pose correctives.** For each of the 23 joints, a bulge around the joint along the
   surface normal that grows with the bend angle — ``(3 - tr R)`` is linear in ``R - I``,
   so it is exactly expressible by SMPL's pose blend shapes.
7. **Vertex order.** The vertices are permuted so that the landmarks sit at smplx's ids.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import ConvexHull

from labcore.checks import check_int
from labcore.skeletons import HEAD_TOP_VERTEX, SMPL_PARENTS

__all__ = [
    "NUM_VERTICES",
    "BETA_NAMES",
    "LANDMARK_VERTEX_IDS",
    "PART_NAMES",
    "JOINT_TO_PART",
    "toy_smpl",
]

NUM_VERTICES = 6890
NUM_JOINTS = 24

#: What each shape coefficient does (positive direction); one unit is roughly one
#: standard deviation of an adult population, as SMPL's PCA betas.
BETA_NAMES: tuple[str, ...] = (
    "taller (uniform scale)",
    "heavier (girth of torso and limbs)",
    "longer legs",
    "longer arms",
    "broader shoulders",
    "wider hips",
    "longer torso",
    "belly",
    "bigger head",
    "thicker limbs (muscle)",
)

#: smplx's default landmark vertex ids (``smplx.vertex_ids.vertex_ids['smplh']``) plus the
#: head top; the toy body puts each landmark at the same index as the real SMPL mesh.
LANDMARK_VERTEX_IDS: dict[str, int] = {
    "nose": 332, "reye": 6260, "leye": 2800, "rear": 4071, "lear": 583,
    "rthumb": 6191, "rindex": 5782, "rmiddle": 5905, "rring": 6016, "rpinky": 6133,
    "lthumb": 2746, "lindex": 2319, "lmiddle": 2445, "lring": 2556, "lpinky": 2673,
    "LBigToe": 3216, "LSmallToe": 3226, "LHeel": 3387,
    "RBigToe": 6617, "RSmallToe": 6624, "RHeel": 6787,
    "head_top": HEAD_TOP_VERTEX,
}  # fmt: skip

#: Coarse body parts for colouring and part masks (derived from skinning, so they work for
#: the real SMPL mesh too).
PART_NAMES: tuple[str, ...] = (
    "head", "torso",
    "left_upper_arm", "right_upper_arm", "left_forearm", "right_forearm",
    "left_hand", "right_hand",
    "left_thigh", "right_thigh", "left_shin", "right_shin", "left_foot", "right_foot",
)  # fmt: skip

#: Part of each SMPL joint's segment.
JOINT_TO_PART: tuple[int, ...] = tuple(
    PART_NAMES.index(p)
    for p in (
        "torso", "left_thigh", "right_thigh", "torso", "left_shin", "right_shin", "torso",
        "left_foot", "right_foot", "torso", "left_foot", "right_foot", "head",
        "torso", "torso", "head", "left_upper_arm", "right_upper_arm",
        "left_forearm", "right_forearm", "left_hand", "right_hand", "left_hand", "right_hand",
    )
)  # fmt: skip

# --- 1. the joint template (left side; the right side mirrors x) ------------------------
# Heights follow SMPL's neutral rest pose closely: pelvis about 0.22 m below the origin,
# soles at -1.16 m, head top at +0.56 m (1.72 m tall).
SOLE_Y = -1.16
_LEFT = {
    "hip": (0.070, -0.310, 0.010),
    "knee": (0.100, -0.690, 0.010),
    "ankle": (0.090, -1.085, -0.030),
    "shoulder": (0.175, 0.230, -0.020),
    "elbow": (0.430, 0.215, -0.035),
    "wrist": (0.680, 0.220, -0.035),
    "hand": (0.765, 0.215, -0.040),
}
_SPINE = {"pelvis": (-0.220, 0.020), "spine1": (-0.110, -0.005), "spine2": (0.030, -0.010),
          "spine3": (0.090, 0.005), "neck": (0.300, -0.015)}  # (y, z) on the mid-plane
_HEAD_JOINT = (0.0, 0.370, 0.030)
_HEAD_CENTRE = np.array([0.0, 0.450, 0.025])
_HEAD_RADII = np.array([0.078, 0.110, 0.095])
_COLLAR_MIX = 0.41  # collar joint = (1-m)·torso ring centre + m·shoulder ring centre
_COLLAR_RING_Y = 0.200


def _mirror(p: tuple[float, float, float]) -> np.ndarray:
    return np.array([-p[0], p[1], p[2]])


# --- 2. surface pieces -------------------------------------------------------------------
@dataclass
class _Piece:
    """Vertices of one part and what later steps need to know about them."""

    name: str
    verts: np.ndarray  # (n, 3)
    faces: np.ndarray  # (m, 3) local indices
    axis: np.ndarray  # (n, 3) the centre of each vertex's ring (for radial directions)
    u: np.ndarray  # (n,) position along the part: 0 at its first joint, 1 at its second
    joint: int  # the SMPL joint whose segment this is
    prev_joint: int | None = None  # blended in near u = 0
    next_joint: int | None = None  # blended in near u = 1
    rings: dict[str, np.ndarray] = field(default_factory=dict)  # named rings (local ids)


def _frame(direction: np.ndarray, side: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors perpendicular to ``direction``: ``e1`` as close to ``side`` as
    possible, ``e2 = direction × e1``."""
    d = direction / np.linalg.norm(direction)
    e1 = side - d * (side @ d)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(d, e1)


def _ring_mesh(
    centres: np.ndarray, e1: np.ndarray, e2: np.ndarray, radii: np.ndarray, n_around: int,
    pole_start: np.ndarray, pole_end: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A closed tube: ``R`` elliptical rings of ``n_around`` vertices plus two poles.

    Returns vertices ``(R·n_around + 2, 3)``, faces and each vertex's axis point.
    """
    n_rings = len(centres)
    theta = 2 * np.pi * np.arange(n_around) / n_around
    ring = (
        centres[:, None, :]
        + radii[:, 0, None, None] * np.cos(theta)[None, :, None] * e1[:, None, :]
        + radii[:, 1, None, None] * np.sin(theta)[None, :, None] * e2[:, None, :]
    )
    verts = np.concatenate([ring.reshape(-1, 3), pole_start[None], pole_end[None]])
    axis = np.concatenate([np.repeat(centres, n_around, 0), pole_start[None], pole_end[None]])
    faces = []
    idx = np.arange(n_rings * n_around).reshape(n_rings, n_around)
    nxt = np.roll(idx, -1, axis=1)
    for r in range(n_rings - 1):
        a, b, c, d = idx[r], nxt[r], idx[r + 1], nxt[r + 1]
        faces.append(np.stack([a, c, b], 1))
        faces.append(np.stack([b, c, d], 1))
    s0, s1 = n_rings * n_around, n_rings * n_around + 1
    faces.append(np.stack([np.full(n_around, s0), idx[0], nxt[0]], 1))
    faces.append(np.stack([np.full(n_around, s1), nxt[-1], idx[-1]], 1))
    return verts, np.concatenate(faces).astype(np.int64), axis


def _limb(
    name: str, start: np.ndarray, end: np.ndarray, r_start: tuple[float, float],
    r_end: tuple[float, float], side: np.ndarray, *, joint: int, prev_joint: int | None,
    next_joint: int | None, n_around: int, n_body: int, n_cap: int = 3,
    overhang: tuple[float, float] = (1.0, 1.0), extra_u: tuple[float, ...] = (),
) -> _Piece:
    """A limb tube from ``start`` to ``end`` with elliptical radii interpolated between the
    two ends and rounded caps reaching ``overhang × radius`` beyond each joint.

    Rings sit exactly at ``u = 0`` and ``u = 1`` (and at each of ``extra_u``) so the joint
    regressor can use them.
    """
    length_vec = end - start
    length = float(np.linalg.norm(length_vec))
    d = length_vec / length
    e1, e2 = _frame(d, side)
    u_body = np.unique(np.concatenate([np.linspace(0.0, 1.0, n_body), np.asarray(extra_u)]))
    r0, r1 = np.asarray(r_start, float), np.asarray(r_end, float)
    # Rounded caps: rings at angles phi in (0, pi/2) beyond each end, radius ∝ cos(phi).
    phi = np.linspace(0.0, np.pi / 2, n_cap + 1)[1:-1]
    o0, o1 = overhang[0] * r0.mean() / length, overhang[1] * r1.mean() / length
    u_list = [-o0 * np.sin(phi[::-1]), u_body, 1.0 + o1 * np.sin(phi)]
    f_list = [np.cos(phi[::-1]), np.ones_like(u_body), np.cos(phi)]
    u = np.concatenate(u_list)
    factor = np.concatenate(f_list)
    radii = (r0[None] + np.clip(u, 0, 1)[:, None] * (r1 - r0)[None]) * factor[:, None]
    centres = start[None] + u[:, None] * length_vec[None]
    n = len(u)
    verts, faces, axis = _ring_mesh(
        centres, np.repeat(e1[None], n, 0), np.repeat(e2[None], n, 0), radii, n_around,
        start - o0 * length_vec, end + o1 * length_vec,
    )
    u_vert = np.concatenate([np.repeat(u, n_around), [-o0, 1.0 + o1]])
    rings = {f"u={val:g}": np.flatnonzero(np.isclose(u_vert, val))[:n_around] for val in u_body}
    return _Piece(name, verts, faces, axis, u_vert, joint, prev_joint, next_joint, rings)


# Torso cross-section profile along the spine: (y, half-width, half-depth).
_TORSO_PROFILE = np.array([
    (-0.370, 0.055, 0.050),
    (-0.345, 0.125, 0.085),
    (-0.300, 0.160, 0.102),
    (-0.220, 0.168, 0.108),
    (-0.110, 0.150, 0.100),
    (-0.030, 0.142, 0.100),
    (0.030, 0.150, 0.106),
    (0.090, 0.158, 0.110),
    (0.160, 0.168, 0.108),
    (0.200, 0.172, 0.100),
    (0.240, 0.165, 0.085),
    (0.275, 0.120, 0.068),
    (0.300, 0.060, 0.052),
    (0.318, 0.035, 0.035),
])  # fmt: skip


def _torso(n_around: int, n_rings: int) -> _Piece:
    """The torso: one tube along the spine, pole at the crotch and at the neck base."""
    spine_y = np.array([v[0] for v in _SPINE.values()])
    spine_z = np.array([v[1] for v in _SPINE.values()])
    y_lo, y_hi = _TORSO_PROFILE[0, 0], _TORSO_PROFILE[-1, 0]
    # Even rings plus rings exactly at the spine joints and the collar ring height.
    y = np.unique(np.concatenate([np.linspace(y_lo, y_hi, n_rings - len(spine_y) - 1),
                                  spine_y, [_COLLAR_RING_Y]]))
    if len(y) != n_rings:
        raise AssertionError("torso ring count")
    a = np.interp(y, _TORSO_PROFILE[:, 0], _TORSO_PROFILE[:, 1])
    b = np.interp(y, _TORSO_PROFILE[:, 0], _TORSO_PROFILE[:, 2])
    z = np.interp(y, spine_y, spine_z)
    centres = np.stack([np.zeros_like(y), y, z], 1)
    ex = np.repeat([[1.0, 0.0, 0.0]], n_rings, 0)
    ez = np.repeat([[0.0, 0.0, 1.0]], n_rings, 0)
    verts, faces, axis = _ring_mesh(
        centres, ex, ez, np.stack([a, b], 1), n_around,
        np.array([0.0, y_lo - 0.012, z[0]]), np.array([0.0, y_hi + 0.008, z[-1]]),
    )
    y_vert = np.concatenate([np.repeat(y, n_around), [y_lo, y_hi]])
    rings = {}
    for name, (yy, _) in _SPINE.items():
        rings[name] = np.flatnonzero(np.isclose(y_vert, yy))[:n_around]
    rings["collar"] = np.flatnonzero(np.isclose(y_vert, _COLLAR_RING_Y))[:n_around]
    return _Piece("torso", verts, faces, axis, y_vert, joint=0, rings=rings)


def _head(n_vertices: int) -> _Piece:
    """An ellipsoid head with a nose: a Fibonacci sphere triangulated by its convex hull
    (valid for any vertex count, which is how the total comes out at exactly 6890)."""
    i = np.arange(n_vertices) + 0.5
    polar = np.arccos(1 - 2 * i / n_vertices)
    azim = np.pi * (1 + 5**0.5) * i
    unit = np.stack([np.sin(polar) * np.sin(azim), np.cos(polar), np.sin(polar) * np.cos(azim)], 1)
    # Put exact vertices at the landmark directions so they sit where they should.
    targets = _head_landmark_directions()
    for d in targets.values():
        unit[np.argmax(unit @ d)] = d
    hull = ConvexHull(unit)
    faces = hull.simplices.astype(np.int64)
    # Orient faces outward (hull simplices come in arbitrary order).
    normal = np.cross(unit[faces[:, 1]] - unit[faces[:, 0]], unit[faces[:, 2]] - unit[faces[:, 0]])
    flip = np.einsum("ij,ij->i", normal, unit[faces].mean(1)) < 0
    faces[flip] = faces[flip][:, [0, 2, 1]]
    verts = _HEAD_CENTRE + unit * _HEAD_RADII
    # Nose: push the nose vertex forward and its neighbourhood a little, like a small ridge.
    nose_dir = targets["nose"]
    closeness = np.clip((unit @ nose_dir - 0.93) / 0.07, 0, 1)
    verts = verts + (0.026 * closeness**2)[:, None] * np.array([0.0, -0.15, 1.0])
    axis = np.repeat(_HEAD_CENTRE[None], n_vertices, 0)
    u = np.zeros(n_vertices)
    return _Piece("head", verts, faces, axis, u, joint=15)


def _head_landmark_directions() -> dict[str, np.ndarray]:
    def unit(v: tuple[float, float, float]) -> np.ndarray:
        v = np.asarray(v, float)
        return v / np.linalg.norm(v)

    return {
        "nose": unit((0.0, -0.12, 1.0)),
        "leye": unit((0.36, 0.10, 0.93)),
        "reye": unit((-0.36, 0.10, 0.93)),
        "lear": unit((1.0, -0.02, -0.08)),
        "rear": unit((-1.0, -0.02, -0.08)),
        "head_top": unit((0.0, 1.0, 0.0)),
    }


def _build_pieces(head_vertices: int | None) -> list[_Piece]:
    """All parts. ``head_vertices=None`` means "whatever makes the total 6890"."""
    pieces: list[_Piece] = [_torso(n_around=40, n_rings=40)]
    spine = {k: np.array([0.0, v[0], v[1]]) for k, v in _SPINE.items()}
    up, fwd, xaxis = np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0]), np.array([1.0, 0, 0])
    for sign, side, j in ((1, "left", 0), (-1, "right", 1)):
        P = {k: (np.array(v) if sign > 0 else _mirror(v)) for k, v in _LEFT.items()}
        # Legs: joints 1/2 hip, 4/5 knee, 7/8 ankle, 10/11 foot.
        hip, knee, ankle = 1 + j, 4 + j, 7 + j
        pieces.append(_limb(f"{side}_thigh", P["hip"], P["knee"], (0.088, 0.085), (0.058, 0.056),
                            xaxis, joint=hip, prev_joint=0, next_joint=knee,
                            n_around=20, n_body=16, overhang=(0.9, 0.7)))
        pieces.append(_limb(f"{side}_shin", P["knee"], P["ankle"], (0.056, 0.058), (0.036, 0.038),
                            xaxis, joint=knee, prev_joint=hip, next_joint=ankle,
                            n_around=20, n_body=16, overhang=(0.6, 0.8)))
        heel = np.array([P["ankle"][0], SOLE_Y + 0.034, P["ankle"][2] - 0.055])
        ball = np.array([P["ankle"][0] + sign * 0.02, SOLE_Y + 0.028, P["ankle"][2] + 0.120])
        toe = ball + (ball - heel) / np.linalg.norm(ball - heel) * 0.065
        u_ball = 1.0 / (1.0 + 0.065 / np.linalg.norm(ball - heel))
        pieces.append(_limb(f"{side}_foot", heel, toe, (0.036, 0.034), (0.046, 0.024),
                            xaxis, joint=ankle, prev_joint=None, next_joint=10 + j,
                            n_around=16, n_body=12, overhang=(0.8, 0.9), extra_u=(u_ball,)))
        pieces[-1].rings["ball"] = pieces[-1].rings[f"u={u_ball:g}"]
        # Arms: joints 16/17 shoulder, 18/19 elbow, 20/21 wrist, 22/23 hand.
        sh, el, wr, hd = 16 + j, 18 + j, 20 + j, 22 + j
        pieces.append(_limb(f"{side}_upper_arm", P["shoulder"], P["elbow"], (0.052, 0.056),
                            (0.040, 0.040), fwd, joint=sh, prev_joint=13 + j, next_joint=el,
                            n_around=18, n_body=14, overhang=(1.1, 0.7)))
        pieces.append(_limb(f"{side}_forearm", P["elbow"], P["wrist"], (0.040, 0.040),
                            (0.028, 0.024), fwd, joint=el, prev_joint=sh, next_joint=wr,
                            n_around=18, n_body=14, overhang=(0.6, 0.6)))
        # Palm: flat (wide along z, thin along y); palms face down in SMPL's T-pose.
        pieces.append(_limb(f"{side}_palm", P["wrist"], P["hand"], (0.030, 0.016),
                            (0.042, 0.014), fwd, joint=wr, prev_joint=el, next_joint=hd,
                            n_around=12, n_body=6, overhang=(0.5, 0.3)))
        # Fingers from the palm's end (index near the thumb, +z), thumb from the wrist.
        for name, dz, length in (("index", 0.026, 0.075), ("middle", 0.009, 0.082),
                                 ("ring", -0.009, 0.077), ("pinky", -0.026, 0.062)):
            base = P["hand"] + np.array([0.0, 0.0, dz])
            tip = base + np.array([sign * length, -0.004, dz * 0.3])
            pieces.append(_limb(f"{side}_{name}", base, tip, (0.0095, 0.008), (0.008, 0.007),
                                fwd, joint=hd, prev_joint=wr, next_joint=None,
                                n_around=6, n_body=4, n_cap=2, overhang=(0.3, 0.9)))
        t_base = P["wrist"] + np.array([sign * 0.022, -0.008, 0.030])
        t_tip = t_base + np.array([sign * 0.045, -0.012, 0.045])
        pieces.append(_limb(f"{side}_thumb", t_base, t_tip, (0.012, 0.011), (0.009, 0.008),
                            up, joint=hd, prev_joint=wr, next_joint=None,
                            n_around=6, n_body=4, n_cap=2, overhang=(0.3, 0.9)))
    # Neck: joint 12 (neck) to 15 (head joint).
    pieces.append(_limb("neck", spine["neck"], np.array(_HEAD_JOINT), (0.056, 0.050),
                        (0.048, 0.046), xaxis, joint=12, prev_joint=9, next_joint=15,
                        n_around=20, n_body=6, overhang=(0.3, 1.2)))
    used = sum(len(p.verts) for p in pieces)
    n_head = NUM_VERTICES - used if head_vertices is None else head_vertices
    if n_head < 400:
        raise AssertionError(f"the head would get only {n_head} vertices")
    pieces.append(_head(n_head))
    return pieces


# --- 3.-4. regressor and skinning ----------------------------------------------------------
def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _skin_limb(piece: _Piece, weights: np.ndarray, offset: int, blend: float = 0.18) -> None:
    """Own joint, blended half/half with the previous joint at u=0 and the next at u=1."""
    u = piece.u
    w_prev = _smoothstep((blend - u) / (2 * blend)) if piece.prev_joint is not None else 0 * u
    w_next = _smoothstep((u - 1 + blend) / (2 * blend)) if piece.next_joint is not None else 0 * u
    rows = slice(offset, offset + len(u))
    weights[rows, piece.joint] += 1 - w_prev - w_next
    if piece.prev_joint is not None:
        weights[rows, piece.prev_joint] += w_prev
    if piece.next_joint is not None:
        weights[rows, piece.next_joint] += w_next


def _skin_torso(piece: _Piece, weights: np.ndarray, offset: int) -> None:
    """The torso by height along the spine (segment j lies between joint j and the next
    spine joint), shoulders toward the collars, the bottom partly toward the hips."""
    v = piece.verts
    y, ax = v[:, 1], np.abs(v[:, 0])
    chain = [0, 3, 6, 9, 12]
    heights = [_SPINE[n][0] for n in ("pelvis", "spine1", "spine2", "spine3", "neck")]
    w = np.zeros((len(v), NUM_JOINTS))
    w[:, 0] = 1.0
    width = 0.03
    for k in range(1, len(chain)):
        # Moving up past spine joint k hands the vertex from chain[k-1] to chain[k].
        t = _smoothstep((y - heights[k] + width) / (2 * width))
        moved = w[:, chain[k - 1]] * t
        w[:, chain[k - 1]] -= moved
        w[:, chain[k]] += moved
    # Shoulder region: toward the collar of its side.
    collar = _smoothstep((ax - 0.07) / 0.08) * _smoothstep((y - 0.13) / 0.07)
    side_joint = np.where(v[:, 0] >= 0, 13, 14)
    w *= (1 - collar)[:, None]
    w[np.arange(len(v)), side_joint] += collar
    # Buttocks and groin: partly toward the hip of their side.
    hip = 0.5 * _smoothstep((-0.27 - y) / 0.07) * _smoothstep((ax - 0.02) / 0.06)
    hip_joint = np.where(v[:, 0] >= 0, 1, 2)
    w *= (1 - hip)[:, None]
    w[np.arange(len(v)), hip_joint] += hip
    weights[offset : offset + len(v)] += w


# --- 5. shape space ---------------------------------------------------------------------------
def _shape_directions(pieces: list[_Piece], verts: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """The ten hand-written shape directions, ``(V, 3, 10)`` in metres per unit beta."""
    names = np.concatenate([[p.name] * len(p.verts) for p in pieces])
    is_ = lambda *parts: np.isin(names, [f"{s}_{p}" for p in parts for s in ("left", "right")])  # noqa: E731
    legs = is_("thigh", "shin", "foot")
    arms = is_("upper_arm", "forearm", "palm", "index", "middle", "ring", "pinky", "thumb")
    hands = is_("palm", "index", "middle", "ring", "pinky", "thumb")
    torso = names == "torso"
    head = names == "head"
    neck = names == "neck"
    sign = np.where(verts[:, 0] >= 0, 1.0, -1.0)
    radial = verts - axis
    y = verts[:, 1]
    pelvis_y = _SPINE["pelvis"][0]
    hip_y, ankle_y = _LEFT["hip"][1], _LEFT["ankle"][1]
    sh_x, wr_x = _LEFT["shoulder"][0], _LEFT["wrist"][0]
    spine1_y, neck_y = _SPINE["spine1"][0], _SPINE["neck"][0]
    ex, ey, ez = np.eye(3)
    S = np.zeros((len(verts), 3, len(BETA_NAMES)))
    # 0 taller: uniform scaling about the pelvis height (4 % per unit).
    S[:, :, 0] = 0.04 * (verts - np.array([0.0, pelvis_y, 0.0]))
    # 1 heavier: radial growth, most on the torso.
    girth = np.select([torso, is_("thigh"), is_("upper_arm"), is_("shin", "forearm"), neck],
                      [1.0, 0.8, 0.6, 0.45, 0.5], 0.05)
    S[:, :, 1] = 0.09 * girth[:, None] * radial
    # 2 longer legs: leg rings slide down in proportion to their distance from the hip.
    frac = np.clip((hip_y - axis[:, 1]) / (hip_y - ankle_y), 0, 1)
    S[:, :, 2] = np.where(legs, -0.045 * frac, 0.0)[:, None] * ey
    # 3 longer arms: arm rings slide outward in proportion to their distance from the shoulder.
    frac = np.clip((np.abs(axis[:, 0]) - sh_x) / (wr_x - sh_x), 0, 1)
    S[:, :, 3] = np.where(arms, 0.035 * frac * sign, 0.0)[:, None] * ex
    # 4 broader shoulders: arms and the shoulder part of the torso move outward.
    shoulder = _smoothstep((y - 0.10) / 0.10) * _smoothstep(np.abs(verts[:, 0]) / 0.16)
    S[:, :, 4] = (0.022 * sign * np.where(arms, 1.0, np.where(torso, shoulder, 0.0)))[:, None] * ex
    # 5 wider hips: legs and the hip part of the torso move outward.
    hips = _smoothstep((-0.12 - y) / 0.12) * _smoothstep(np.abs(verts[:, 0]) / 0.16)
    S[:, :, 5] = (0.018 * sign * np.where(legs, 1.0, np.where(torso, hips, 0.0)))[:, None] * ex
    # 6 longer torso: everything above spine1 rises, the upper body as a block.
    rise = np.where(torso, np.clip((y - spine1_y) / (neck_y - spine1_y), 0, 1), 0.0)
    rise = np.where(arms | neck | head, 1.0, rise)
    S[:, :, 6] = (0.035 * rise)[:, None] * ey
    # 7 belly: the front of the abdomen bulges forward.
    front = np.clip(radial[:, 2] / np.maximum(np.linalg.norm(radial, axis=1), 1e-9), 0, 1)
    S[:, :, 7] = np.where(torso, 0.04 * np.exp(-(((y + 0.03) / 0.11) ** 2)) * front**1.5, 0)[:, None] * ez
    # 8 bigger head: scaling about the head's centre.
    S[:, :, 8] = np.where(head, 0.07, 0.0)[:, None] * (verts - _HEAD_CENTRE)
    # 9 thicker limbs: radial growth of arms and legs only (not hands and feet).
    limb = (legs | arms) & ~hands & ~is_("foot")
    S[:, :, 9] = np.where(limb, 0.12, 0.0)[:, None] * radial
    return S


# --- 6. pose correctives ------------------------------------------------------------------------
def _pose_directions(
    verts: np.ndarray, axis: np.ndarray, weights: np.ndarray, joints: np.ndarray
) -> np.ndarray:
    """``(V, 3, 207)``: per joint, an outward bulge near the joint of size
    ``k·(3 − tr R)`` — SMPL's pose features are ``R − I``, and ``3 − tr R = −Σ_a (R−I)_aa``."""
    P = np.zeros((len(verts), 3, 23 * 9))
    radial = verts - axis
    normal = radial / np.maximum(np.linalg.norm(radial, axis=1, keepdims=True), 1e-9)
    for j in range(1, NUM_JOINTS):
        parent = SMPL_PARENTS[j]
        near = (weights[:, j] > 0) | (weights[:, parent] > 0)
        dist2 = ((verts - joints[j]) ** 2).sum(1)
        bump = np.where(near, np.exp(-dist2 / (2 * 0.045**2)), 0.0)
        for a in range(3):
            P[:, :, (j - 1) * 9 + a * 4] = -0.012 * bump[:, None] * normal
    return P


# --- 7. landmarks and vertex order --------------------------------------------------------------
def _landmarks_in_build_order(pieces: list[_Piece], offsets: list[int]) -> dict[str, int]:
    """Vertex index (build order) of every landmark."""
    by_name = {p.name: (p, off) for p, off in zip(pieces, offsets)}
    found: dict[str, int] = {}
    head, off = by_name["head"]
    unit = (head.verts - _HEAD_CENTRE) / _HEAD_RADII
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    for name, d in _head_landmark_directions().items():
        found[name] = off + int(np.argmax(unit @ d))
    for side, s in (("left", "l"), ("right", "r")):
        for finger in ("thumb", "index", "middle", "ring", "pinky"):
            piece, off = by_name[f"{side}_{finger}"]
            found[f"{s}{finger}"] = off + len(piece.verts) - 1  # the tip pole
        foot, off = by_name[f"{side}_foot"]
        sign = 1.0 if side == "left" else -1.0
        v = foot.verts
        big = v[:, 2] * 3 - v[:, 1] * 2 - sign * v[:, 0] * 2  # front, low, inner
        small = v[:, 2] * 3 - v[:, 1] * 2 + sign * v[:, 0] * 2  # front, low, outer
        heel = -v[:, 2] * 3 - v[:, 1] * 2  # back, low
        prefix = "L" if side == "left" else "R"
        found[f"{prefix}BigToe"] = off + int(np.argmax(big))
        found[f"{prefix}SmallToe"] = off + int(np.argmax(small))
        found[f"{prefix}Heel"] = off + int(np.argmax(heel))
    if len(set(found.values())) != len(found):
        raise AssertionError("two landmarks fell on the same vertex")
    return found


def _landmark_order(landmarks: dict[str, int]) -> np.ndarray:
    """``order[new] = old``: landmarks at their smplx ids, the rest in build order."""
    order = np.full(NUM_VERTICES, -1, dtype=np.int64)
    for name, old in landmarks.items():
        order[LANDMARK_VERTEX_IDS[name]] = old
    rest = np.setdiff1d(np.arange(NUM_VERTICES), list(landmarks.values()))
    order[order < 0] = rest
    return order


@functools.lru_cache(maxsize=4)
def _build(num_betas: int, seed: int) -> dict[str, np.ndarray]:
    pieces = _build_pieces(head_vertices=None)
    sizes = [len(p.verts) for p in pieces]
    offsets = list(np.cumsum([0, *sizes[:-1]]))
    verts = np.concatenate([p.verts for p in pieces])
    axis = np.concatenate([p.axis for p in pieces])
    faces = np.concatenate([p.faces + off for p, off in zip(pieces, offsets)])
    if len(verts) != NUM_VERTICES:
        raise AssertionError(f"built {len(verts)} vertices")

    # 3. regressor: each joint is the mean of the ring on it.
    by_name = {p.name: (p, off) for p, off in zip(pieces, offsets)}
    ring_of: dict[int, np.ndarray] = {}
    torso, t_off = by_name["torso"]
    for joint, key in ((0, "pelvis"), (3, "spine1"), (6, "spine2"), (9, "spine3"), (12, "neck")):
        ring_of[joint] = t_off + torso.rings[key]
    for side, j in (("left", 0), ("right", 1)):
        for joint, piece_name, key in (
            (1 + j, "thigh", "u=0"), (4 + j, "shin", "u=0"), (7 + j, "shin", "u=1"),
            (10 + j, "foot", "ball"), (16 + j, "upper_arm", "u=0"), (18 + j, "forearm", "u=0"),
            (20 + j, "forearm", "u=1"), (22 + j, "palm", "u=1"),
        ):  # fmt: skip
            piece, off = by_name[f"{side}_{piece_name}"]
            ring_of[joint] = off + piece.rings[key]
    neck, n_off = by_name["neck"]
    ring_of[15] = n_off + neck.rings["u=1"]
    J_regressor = np.zeros((NUM_JOINTS, NUM_VERTICES))
    for joint, ids in ring_of.items():
        J_regressor[joint, ids] = 1.0 / len(ids)
    for j in (0, 1):
        # Collar: a fixed mix of the torso ring at collar height (its own side's half)
        # and the shoulder ring, so that it follows both the shoulder width and the torso.
        ring = t_off + torso.rings["collar"]
        half = ring[(verts[ring, 0] > 1e-9) if j == 0 else (verts[ring, 0] < -1e-9)]
        shoulder = ring_of[16 + j]
        J_regressor[13 + j, ring] = (1 - _COLLAR_MIX) * 0.5 / len(ring)
        J_regressor[13 + j, half] += (1 - _COLLAR_MIX) * 0.5 / len(half)
        J_regressor[13 + j, shoulder] = _COLLAR_MIX / len(shoulder)
    if not np.allclose(J_regressor.sum(1), 1.0):
        raise AssertionError("regressor rows must sum to 1")
    joints = J_regressor @ verts

    # 4. skinning.
    weights = np.zeros((NUM_VERTICES, NUM_JOINTS))
    for p, off in zip(pieces, offsets):
        if p.name == "torso":
            _skin_torso(p, weights, off)
        elif p.name == "head":
            weights[off : off + len(p.verts), 15] = 1.0
        else:
            _skin_limb(p, weights, off)
    if not np.allclose(weights.sum(1), 1.0) or (weights < -1e-12).any():
        raise AssertionError("skinning weights must be a partition of unity")

    shapedirs = _shape_directions(pieces, verts, axis)
    posedirs = _pose_directions(verts, axis, weights, joints)
    if seed != 0:
        # Another individual: the template moved within the shape space itself.
        rng = np.random.default_rng(seed)
        verts = verts + shapedirs @ rng.normal(0.0, 0.35, size=shapedirs.shape[-1])
    part_of_vertex = np.asarray(JOINT_TO_PART)[np.argmax(weights, 1)]

    # 7. permute so that the landmarks sit at smplx's ids.
    landmarks = _landmarks_in_build_order(pieces, offsets)
    order = _landmark_order(landmarks)
    new_of_old = np.empty_like(order)
    new_of_old[order] = np.arange(NUM_VERTICES)
    kintree = np.array([[2**32 - 1 if p < 0 else p for p in SMPL_PARENTS], list(range(NUM_JOINTS))],
                       dtype=np.int64)
    return {
        "v_template": verts[order].astype(np.float64),
        "f": new_of_old[faces].astype(np.int64),
        "J_regressor": J_regressor[:, order],
        "weights": weights[order],
        "shapedirs": shapedirs[order][:, :, :num_betas],
        "posedirs": posedirs[order],
        "kintree_table": kintree,
        "part_of_vertex": part_of_vertex[order].astype(np.int64),
    }


def toy_smpl(num_betas: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    """Build labcore's toy body as a dict with SMPL's keys (what ``smplx`` reads).

    Args:
        num_betas: shape coefficients to keep, 1 to 10 (see :data:`BETA_NAMES`).
        seed: 0 gives the canonical body; another seed moves the template within the shape
            space (another individual), deterministically.

    Returns:
        ``v_template (6890, 3)`` metres in SMPL's frame (y up, x to the subject's left,
        z forward), ``f (F, 3)`` int64 faces, ``J_regressor (24, 6890)``, ``weights
        (6890, 24)`` skinning weights, ``shapedirs (6890, 3, num_betas)``, ``posedirs
        (6890, 3, 207)``, ``kintree_table (2, 24)`` and, beyond SMPL's keys,
        ``part_of_vertex (6890,)`` indices into :data:`PART_NAMES`. Arrays are fresh
        copies; pass them to ``smplx.SMPL(data_struct=smplx.utils.Struct(**d))``.
    """
    num_betas = check_int(num_betas, "num_betas", low=1, high=len(BETA_NAMES))
    seed = check_int(seed, "seed", low=0)
    return {k: v.copy() for k, v in _build(num_betas, seed).items()}

