"""Rotations, cameras, image-plane affine transforms and Procrustes alignment.

Conventions (every function below follows them):

* **Batching.** Every function is batched over leading dimensions written ``...``;
  leading dimensions of different arguments broadcast against each other.
* **Input.** torch tensors, NumPy arrays or nested lists. Floating inputs keep their dtype
  (float64 stays float64); integer arrays and Python lists/numbers become float32; several
  inputs share the promoted dtype of the tensor/array inputs. Results are torch tensors on the device of the tensor inputs
  (NumPy/list inputs follow them; two tensors on different devices are an error).
  Rotation conversions, projections and Procrustes are differentiable (autograd).
* **Rotation matrices** act on column vectors, ``p' = R @ p``. Axis-angle vectors are
  ``angle * unit_axis`` in radians. **Quaternions are ``(w, x, y, z)``** — scalar first
  (as pytorch3d / Eigen's constructor, unlike scipy's ``(x, y, z, w)``); ``q`` and ``-q``
  are the same rotation, and :func:`matrix_to_quaternion` returns the one with ``w >= 0``.
* **Camera frame** (OpenCV): x right, y down, z forward (the optical axis); points in
  front of the camera have ``z > 0``. **Pixels**: x right, y down, integer values at
  pixel centres, so an image of width ``W`` spans the pixel edges ``[-0.5, W - 0.5]``.
* **Image-plane affine transforms** are ``(..., 2, 3)`` matrices ``A`` mapping a source
  pixel ``(u, v)`` to ``A @ (u, v, 1)``, in the same pixel-centre convention.
* **6-D rotations** (Zhou et al. 2019): two columns of the matrix; how the 6 numbers are
  sliced differs between codes (``layout='eventhpe'`` contiguous, ``'spin'`` interleaved).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch

from labcore.checks import as_float, as_floats, check_choice, check_number, check_size2

__all__ = [
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "matrix_to_rot6d",
    "rot6d_to_matrix",
    "axis_angle_to_quaternion",
    "quaternion_to_axis_angle",
    "quaternion_to_matrix",
    "matrix_to_quaternion",
    "quaternion_slerp",
    "slerp_axis_angle",
    "geodesic_angle",
    "skew",
    "camera_matrix",
    "project_points",
    "backproject",
    "look_at",
    "transform_points",
    "box_to_affine",
    "apply_affine",
    "invert_affine",
    "compose_affine",
    "affine_to_3x3",
    "similarity_transform",
    "procrustes_align",
]

ROT6D_LAYOUTS = ("eventhpe", "spin")
PROCRUSTES_DIRECTIONS = ("pred_to_gt", "gt_to_pred")

# Below these squared magnitudes the closed forms switch to Taylor series (exact to far
# below float64 rounding there), which keeps values and gradients finite at exactly 0.
_SMALL_ANGLE2 = 1e-6
_SMALL_SIN2 = 1e-8


# --------------------------------------------------------------------------- helpers


def _batch_shape(*items: tuple[str, torch.Tensor, int]) -> torch.Size:
    """Broadcast the leading dims of ``(name, tensor, n_trailing)``; clear error if not."""
    shapes = [(name, t.shape[: t.dim() - n]) for name, t, n in items]
    try:
        return torch.broadcast_shapes(*[s for _, s in shapes])
    except RuntimeError:
        desc = ", ".join(f"{name} {tuple(s)}" for name, s in shapes)
        raise ValueError(f"leading (batch) dimensions do not broadcast: {desc}") from None


def _unit(v: torch.Tensor, name: str, what: str, eps: float = 1e-12) -> torch.Tensor:
    """Normalise the last dimension; a (near) zero vector is a ``ValueError``."""
    n = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
    if bool((n <= eps).any()):
        raise ValueError(
            f"{name}: {what} has (near) zero length in {int((n <= eps).sum())} place(s)"
        )
    return v / n


def skew(v: Any) -> torch.Tensor:
    """The cross-product matrix ``[v]x`` of ``v (..., 3)``, so ``skew(v) @ w == v x w``.

    Returns ``(..., 3, 3)``, same dtype/device as ``v``.
    """
    v = as_float(v, "v", (..., 3))
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], dim=-1).reshape(*v.shape[:-1], 3, 3)


# --------------------------------------------------------------------------- rotations


def axis_angle_to_matrix(aa: Any) -> torch.Tensor:
    """Rodrigues' formula: axis-angle ``aa (..., 3)`` (radians) → rotation ``(..., 3, 3)``.

    ``R = I + (sin θ / θ) K + ((1 - cos θ) / θ²) K²`` with ``K = skew(aa)``, ``θ = |aa|``;
    below ``θ² < 1e-6`` the coefficients come from their Taylor series, so the value and
    the gradient are finite (and exact) at ``aa = 0``. Differentiable.
    """
    aa = as_float(aa, "aa", (..., 3))
    th2 = (aa * aa).sum(-1)[..., None, None]
    small = th2 < _SMALL_ANGLE2
    th = torch.where(small, torch.ones_like(th2), th2).sqrt()
    a = torch.where(small, 1 - th2 / 6 + th2 * th2 / 120, torch.sin(th) / th)
    half = torch.sin(th / 2) / (th / 2)  # (1 - cos θ)/θ² = ½ (sin(θ/2)/(θ/2))², no cancellation
    b = torch.where(small, 0.5 - th2 / 24 + th2 * th2 / 720, 0.5 * half * half)
    k = skew(aa)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device)
    return eye + a * k + b * (k @ k)


def matrix_to_quaternion(R: Any) -> torch.Tensor:
    """Rotation matrix ``R (..., 3, 3)`` → unit quaternion ``(..., 4)`` as ``(w, x, y, z)``.

    Shepperd's method: of the four algebraically equivalent formulas, each sample uses the
    one with the largest denominator (``4 q_i² >= 1``), so it is accurate for every angle,
    including 0 and π. The result has ``w >= 0`` (``q`` and ``-q`` are the same rotation).
    ``R`` is assumed to be a rotation (orthonormal, det +1); this is not checked — a
    nearly orthonormal matrix gives the nearest-ish quaternion, renormalised.
    """
    R = as_float(R, "R", (..., 3, 3))
    r00, r01, r02 = R[..., 0, 0], R[..., 0, 1], R[..., 0, 2]
    r10, r11, r12 = R[..., 1, 0], R[..., 1, 1], R[..., 1, 2]
    r20, r21, r22 = R[..., 2, 0], R[..., 2, 1], R[..., 2, 2]
    # 4 q_i^2 for i = w, x, y, z
    q4 = torch.stack(
        [
            1 + r00 + r11 + r22,
            1 + r00 - r11 - r22,
            1 - r00 + r11 - r22,
            1 - r00 - r11 + r22,
        ],
        dim=-1,
    )
    # s_i = 4 q_i; the clamp only protects the branches that are not selected.
    s = 2 * q4.clamp(min=0.1).sqrt()
    sw, sx, sy, sz = s.unbind(-1)
    cand = torch.stack(
        [
            torch.stack([sw / 4, (r21 - r12) / sw, (r02 - r20) / sw, (r10 - r01) / sw], -1),
            torch.stack([(r21 - r12) / sx, sx / 4, (r01 + r10) / sx, (r02 + r20) / sx], -1),
            torch.stack([(r02 - r20) / sy, (r01 + r10) / sy, sy / 4, (r12 + r21) / sy], -1),
            torch.stack([(r10 - r01) / sz, (r02 + r20) / sz, (r12 + r21) / sz, sz / 4], -1),
        ],
        dim=-2,
    )  # (..., 4 candidates, 4)
    best = q4.argmax(dim=-1)
    idx = best[..., None, None].expand(*best.shape, 1, 4)
    q = cand.gather(-2, idx).squeeze(-2)
    q = torch.where(q[..., :1] < 0, -q, q)
    return q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)


def _unit_quaternion(q: Any, name: str) -> torch.Tensor:
    q = as_float(q, name, (..., 4))
    return _unit(q, name, "the quaternion")


def quaternion_to_matrix(q: Any) -> torch.Tensor:
    """Quaternion ``q (..., 4)`` as ``(w, x, y, z)`` → rotation matrix ``(..., 3, 3)``.

    ``q`` is normalised first (any non-zero length is accepted; a zero quaternion is a
    ``ValueError``); ``q`` and ``-q`` give the same matrix. Differentiable.
    """
    q = _unit_quaternion(q, "q")
    w, x, y, z = q.unbind(-1)
    m = [
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(m, dim=-1).reshape(*q.shape[:-1], 3, 3)


def axis_angle_to_quaternion(aa: Any) -> torch.Tensor:
    """Axis-angle ``aa (..., 3)`` (radians) → unit quaternion ``(..., 4)`` as ``(w, x, y, z)``.

    ``q = (cos(θ/2), sin(θ/2) · aa/θ)``; Taylor branch near 0 (finite gradient at 0).
    For ``θ > π`` the result has ``w < 0`` (it is not canonicalised, so that a continuous
    path of axis-angles maps to a continuous path of quaternions).
    """
    aa = as_float(aa, "aa", (..., 3))
    th2 = (aa * aa).sum(-1, keepdim=True)
    small = th2 < _SMALL_ANGLE2
    th = torch.where(small, torch.ones_like(th2), th2).sqrt()
    k = torch.where(small, 0.5 - th2 / 48 + th2 * th2 / 3840, torch.sin(th / 2) / th)
    w = torch.where(small, 1 - th2 / 8 + th2 * th2 / 384, torch.cos(th / 2))
    return torch.cat([w, k * aa], dim=-1)


def quaternion_to_axis_angle(q: Any) -> torch.Tensor:
    """Quaternion ``q (..., 4)`` as ``(w, x, y, z)`` → axis-angle ``(..., 3)``, angle in [0, π].

    ``q`` is normalised and flipped to ``w >= 0``; angle ``= 2·atan2(|v|, w)`` (accurate
    near 0 and near π), with a Taylor branch for ``|v|² < 1e-8`` (finite gradient at the
    identity). A zero quaternion is a ``ValueError``.
    """
    q = _unit_quaternion(q, "q")
    q = torch.where(q[..., :1] < 0, -q, q)
    w, v = q[..., :1], q[..., 1:]
    s2 = (v * v).sum(-1, keepdim=True)
    small = s2 < _SMALL_SIN2
    s = torch.where(small, torch.ones_like(s2), s2).sqrt()
    w_safe = torch.where(small, w, torch.ones_like(w))  # w ~ 1 on the small branch
    factor = torch.where(small, 2 / w_safe - 2 * s2 / (3 * w_safe**3), 2 * torch.atan2(s, w) / s)
    return factor * v


def matrix_to_axis_angle(R: Any) -> torch.Tensor:
    """Rotation matrix ``R (..., 3, 3)`` → axis-angle ``(..., 3)`` with angle in [0, π].

    Goes through :func:`matrix_to_quaternion` (Shepperd) and ``atan2``, so it is accurate
    near 0 and near π (at exactly π the sign of the axis is arbitrary: both are correct).
    """
    return quaternion_to_axis_angle(matrix_to_quaternion(as_float(R, "R", (..., 3, 3))))


def rot6d_to_matrix(x: Any, layout: str = "eventhpe") -> torch.Tensor:
    """6-D rotation representation ``x (..., 6)`` → rotation matrix ``(..., 3, 3)``.

    The 6 numbers hold two 3-vectors ``a1, a2``; the matrix has columns
    ``c0 = n(a1)``, ``c1`` = the part of ``a2`` orthogonal to ``c0``, normalised, and
    ``c2 = c0 × c1`` (Gram–Schmidt; ``n`` = normalise). Codes slice ``x`` differently:

    * ``layout='eventhpe'`` (default; EventHPE's ``rot6d_to_rotmat``): ``a1 = x[..., 0:3]``,
      ``a2 = x[..., 3:6]``; computed there as ``c2 = n(c0 × a2)``, ``c1 = c2 × c0``.
    * ``layout='spin'`` (SPIN/HMR's ``view(-1, 3, 2)``): ``a1 = x[..., [0, 2, 4]]``,
      ``a2 = x[..., [1, 3, 5]]``.

    The same 6 numbers give different matrices in the two layouts;
    :func:`matrix_to_rot6d` with the same ``layout`` is the inverse. Differentiable.
    ``a1 = 0`` or ``a2`` parallel to ``a1`` defines no rotation: ``ValueError``.
    """
    check_choice(layout, "layout", ROT6D_LAYOUTS)
    x = as_float(x, "x", (..., 6))
    if layout == "eventhpe":
        a1, a2 = x[..., 0:3], x[..., 3:6]
    else:
        a1, a2 = x[..., 0::2], x[..., 1::2]
    c0 = _unit(a1, "x", "the first 3-vector a1")
    c2 = _unit(torch.linalg.cross(c0, a2), "x", "a1 × a2 (a2 parallel to a1)")
    c1 = torch.linalg.cross(c2, c0)
    return torch.stack([c0, c1, c2], dim=-1)


def matrix_to_rot6d(R: Any, layout: str = "eventhpe") -> torch.Tensor:
    """Rotation matrix ``R (..., 3, 3)`` → 6-D representation ``(..., 6)``: its first two
    columns, laid out as :func:`rot6d_to_matrix` reads them.

    ``'eventhpe'``: ``cat(R[..., :, 0], R[..., :, 1])``; ``'spin'``: ``R[..., :, :2]``
    flattened row by row (``r00, r01, r10, r11, r20, r21``).
    """
    check_choice(layout, "layout", ROT6D_LAYOUTS)
    R = as_float(R, "R", (..., 3, 3))
    if layout == "eventhpe":
        return torch.cat([R[..., :, 0], R[..., :, 1]], dim=-1)
    return R[..., :, :2].reshape(*R.shape[:-2], 6)


def quaternion_slerp(q0: Any, q1: Any, t: Any) -> torch.Tensor:
    """Spherical linear interpolation between quaternions ``(w, x, y, z)``.

    Args:
        q0, q1: ``(..., 4)`` quaternions (normalised here; zero is a ``ValueError``).
        t: interpolation parameter, a number or a tensor broadcastable with ``(...)``;
            ``t = 0`` gives ``q0``, ``t = 1`` gives ``q1`` (or ``-q1``, the same rotation);
            values outside [0, 1] extrapolate along the same great circle.

    Returns:
        ``(..., 4)`` unit quaternions. Takes the **shortest path** (``q1`` is negated when
        ``q0·q1 < 0``), so the rotation angle moves at constant angular speed from
        ``q0`` to ``q1``. Nearly equal inputs fall back to a normalised linear blend.
    """
    q0t, q1t = as_floats((q0, "q0", (..., 4)), (q1, "q1", (..., 4)))
    q0t = _unit(q0t, "q0", "the quaternion")
    q1t = _unit(q1t, "q1", "the quaternion")
    if isinstance(t, numbers.Real) and not isinstance(t, bool):
        tt = torch.tensor(check_number(t, "t"), dtype=q0t.dtype, device=q0t.device)
    else:
        tt = as_float(t, "t").to(dtype=q0t.dtype, device=q0t.device)
    batch = _batch_shape(("q0", q0t, 1), ("q1", q1t, 1), ("t", tt, 0))
    tt = tt.expand(batch)[..., None]
    dot = (q0t * q1t).sum(-1, keepdim=True)
    q1t = torch.where(dot < 0, -q1t, q1t)
    dot = dot.abs().clamp(max=1.0)
    near = dot > 1 - 1e-6
    dot_safe = torch.where(near, torch.zeros_like(dot), dot)
    theta = torch.acos(dot_safe)
    sin_theta = torch.sin(theta)
    w0 = torch.where(near, 1 - tt, torch.sin((1 - tt) * theta) / sin_theta)
    w1 = torch.where(near, tt, torch.sin(tt * theta) / sin_theta)
    q = w0 * q0t + w1 * q1t
    return q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)


def slerp_axis_angle(aa0: Any, aa1: Any, t: Any) -> torch.Tensor:
    """Interpolate rotations given as axis-angle ``(..., 3)`` (e.g. SMPL poses reshaped to
    ``(..., 24, 3)``) along the shortest arc; ``t`` as in :func:`quaternion_slerp`.

    Returns axis-angle ``(..., 3)`` with angles in [0, π] (``t=0`` gives the rotation of
    ``aa0``, which equals ``aa0`` itself when its angle is at most π).
    """
    a0, a1 = as_floats((aa0, "aa0", (..., 3)), (aa1, "aa1", (..., 3)))
    q = quaternion_slerp(axis_angle_to_quaternion(a0), axis_angle_to_quaternion(a1), t)
    return quaternion_to_axis_angle(q)


def geodesic_angle(R1: Any, R2: Any, eps: float = 1e-6) -> torch.Tensor:
    """Angle (radians) of the relative rotation ``R1 R2ᵀ``: ``arccos((tr(R1 R2ᵀ) - 1)/2)``.

    The cosine is clamped to ``[-1 + eps, 1 - eps]`` as in EventHPE's geodesic loss, which
    keeps the gradient finite when ``R1 == R2`` (where arccos' derivative is infinite);
    the price is a floor: identical rotations give ``arccos(1 - eps)`` ≈ ``sqrt(2·eps)``
    (1.4e-3 rad for the default) and the largest angle is ``π - sqrt(2·eps)``. Pass
    ``eps=0`` for the exact angle (infinite gradient at 0). Returns ``(...)``.
    """
    eps = check_number(eps, "eps", low=0.0, high=0.5)
    a, b = as_floats((R1, "R1", (..., 3, 3)), (R2, "R2", (..., 3, 3)))
    _batch_shape(("R1", a, 2), ("R2", b, 2))
    cos = ((a * b).sum((-1, -2)) - 1) / 2
    return torch.acos(cos.clamp(-1 + eps, 1 - eps))


# --------------------------------------------------------------------------- cameras


def camera_matrix(fx: float, fy: float, cx: float, cy: float) -> torch.Tensor:
    """Pinhole intrinsics ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``, float32 ``(3, 3)``.

    ``fx, fy > 0`` focal lengths in pixels; ``(cx, cy)`` the principal point in pixels
    (pixel-centre convention: the centre of a ``W×H`` image is ``((W-1)/2, (H-1)/2)``).
    """
    fx = check_number(fx, "fx", low=0.0, low_inclusive=False)
    fy = check_number(fy, "fy", low=0.0, low_inclusive=False)
    cx = check_number(cx, "cx")
    cy = check_number(cy, "cy")
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=torch.float32)


def project_points(points: Any, K: Any) -> torch.Tensor:
    """Perspective projection of camera-frame points to pixels.

    Args:
        points: ``(..., N, 3)`` in the OpenCV camera frame (any length unit).
        K: ``(..., 3, 3)`` intrinsics with last row ``[0, 0, 1]`` — a pinhole matrix or one
            already composed with an image-plane affine (a crop camera, see
            :func:`affine_to_3x3`).

    Returns:
        ``(..., N, 2)`` pixels ``(K @ p)[:2] / z`` (for a pinhole K: ``u = fx·x/z + cx``,
        ``v = fy·y/z + cy``). Points must be in front of the camera (``z > 0``); a point
        with ``z <= 0`` gets ``(+inf, +inf)`` — no exception and no NaN (also in the
        gradient, which is zero there).
    """
    p, k = as_floats((points, "points", (..., None, 3)), (K, "K", (..., 3, 3)))
    _batch_shape(("points", p, 2), ("K", k, 2))
    last = torch.tensor([0.0, 0.0, 1.0], dtype=k.dtype, device=k.device)
    if not bool(torch.isclose(k[..., 2, :], last, atol=1e-6).all()):
        raise ValueError("K: expected the last row to be [0, 0, 1]")
    uvw = p @ k.transpose(-1, -2)
    z = p[..., 2:3]
    front = z > 0
    uv = uvw[..., :2] / torch.where(front, z, torch.ones_like(z))
    return torch.where(front, uv, torch.full_like(uv, math.inf))


def backproject(pixels: Any, depth: Any, K: Any) -> torch.Tensor:
    """The inverse of :func:`project_points` for known depths: camera-frame points.

    Args:
        pixels: ``(..., N, 2)`` pixel coordinates of the image ``K`` maps to.
        depth: ``(..., N)`` z of each point along the camera's axis (any length unit), > 0.
        K: ``(..., 3, 3)`` intrinsics with last row ``[0, 0, 1]`` (a pinhole, or a crop
            camera from :func:`affine_to_3x3`).

    Returns:
        ``(..., N, 3)`` points ``z · K⁻¹ [u, v, 1]ᵀ``, in the unit of ``depth``;
        ``project_points(backproject(uv, z, K), K) == uv``.
    """
    uv, z, k = as_floats((pixels, "pixels", (..., None, 2)), (depth, "depth", (..., None)),
                         (K, "K", (..., 3, 3)))
    if uv.shape[:-1] != z.shape:
        raise ValueError(f"depth: expected shape {tuple(uv.shape[:-1])} (one per pixel), got {tuple(z.shape)}")
    if bool((z <= 0).any()):
        raise ValueError("depth: points must lie in front of the camera (z > 0)")
    last = torch.tensor([0.0, 0.0, 1.0], dtype=k.dtype, device=k.device)
    if not bool(torch.isclose(k[..., 2, :], last, atol=1e-6).all()):
        raise ValueError("K: expected the last row to be [0, 0, 1]")
    homog = torch.cat([uv, torch.ones_like(uv[..., :1])], dim=-1)
    rays = homog @ torch.linalg.inv(k).transpose(-1, -2)
    return rays * z.unsqueeze(-1)


def look_at(eye: Any, target: Any, up: Any = (0.0, -1.0, 0.0)) -> tuple[torch.Tensor, torch.Tensor]:
    """World→camera extrinsics of a camera at ``eye`` looking at ``target``.

    Args:
        eye, target: ``(..., 3)`` world points (``eye != target``).
        up: ``(..., 3)`` the world direction that should appear *up* in the image; the
            default ``(0, -1, 0)`` suits a world that uses the OpenCV convention (y down).
            It must not be parallel to the viewing direction.

    Returns:
        ``(R (..., 3, 3), t (..., 3))`` with ``p_cam = R @ p_world + t`` in the OpenCV
        camera frame: z points from ``eye`` toward ``target`` (the target lands on the
        optical axis, ``p_cam = (0, 0, |target - eye|)``), image y points opposite to
        ``up`` and x = y × z (right-handed, x to the right). The rows of ``R`` are the
        camera axes in world coordinates; ``t = -R @ eye``.
    """
    e, g, u = as_floats((eye, "eye", (..., 3)), (target, "target", (..., 3)), (up, "up", (..., 3)))
    shape = _batch_shape(("eye", e, 1), ("target", g, 1), ("up", u, 1))
    e, g, u = (v.expand(*shape, 3) for v in (e, g, u))
    z = _unit(g - e, "target", "target - eye")
    x = _unit(torch.linalg.cross(z, _unit(u, "up", "the up vector")), "up",
              "up × viewing direction (up parallel to target - eye)")  # fmt: skip
    y = torch.linalg.cross(z, x)
    R = torch.stack([x, y, z], dim=-2)
    t = -(R @ e[..., None])[..., 0]
    return R, t


def transform_points(points: Any, R: Any, t: Any) -> torch.Tensor:
    """Rigid transform ``R @ p + t`` of ``points (..., N, 3)`` with ``R (..., 3, 3)`` and
    ``t (..., 3)`` (leading dims broadcast). Returns ``(..., N, 3)``."""
    p, r, tt = as_floats(
        (points, "points", (..., None, 3)), (R, "R", (..., 3, 3)), (t, "t", (..., 3))
    )
    _batch_shape(("points", p, 2), ("R", r, 2), ("t", tt, 1))
    return p @ r.transpose(-1, -2) + tt[..., None, :]


# --------------------------------------------------------------------------- image affine


def box_to_affine(center: Any, size: Any, output_size: Any, rotation: Any = 0.0) -> torch.Tensor:
    """The ``(..., 2, 3)`` affine that crops a (rotated) box out of a source image.

    Args:
        center: ``(..., 2)`` box centre ``(cx, cy)`` in source pixels.
        size: ``(..., 2)`` box ``(w, h)`` in source pixels (> 0). The box spans the pixel
            *edges* ``[cx - w/2, cx + w/2] × [cy - h/2, cy + h/2]``.
        output_size: ``(W, H)`` of the output image (ints).
        rotation: degrees, a number or ``(...)``; the box is turned about its centre by
            this angle, **positive = counter-clockwise as seen in the image** (y down),
            so the crop shows the content turned clockwise by the same angle. (mmpose's
            ``rot`` turns the box the other way: ``rotation = -rot``.)

    Returns:
        ``A (..., 2, 3)`` mapping source pixels to output pixels so that the box's edges
        land on the output's pixel edges ``[-0.5, W - 0.5] × [-0.5, H - 0.5]``; without
        rotation ``u' = (u - cx)·W/w + (W - 1)/2`` and ``v' = (v - cy)·H/h + (H - 1)/2``.
        The aspect ratio is not forced: make ``w/h`` equal ``W/H`` to avoid stretching.
    """
    W, H = check_size2(output_size, "output_size")
    c, s = as_floats((center, "center", (..., 2)), (size, "size", (..., 2)))
    if bool((s <= 0).any()):
        raise ValueError(f"size: expected box sizes > 0, got min {float(s.min())}")
    if isinstance(rotation, numbers.Real) and not isinstance(rotation, bool):
        rot = torch.tensor(check_number(rotation, "rotation"), dtype=c.dtype, device=c.device)
    else:
        rot = as_float(rotation, "rotation").to(dtype=c.dtype, device=c.device)
    shape = _batch_shape(("center", c, 1), ("size", s, 1), ("rotation", rot, 0))
    c, s, rot = c.expand(*shape, 2), s.expand(*shape, 2), rot.expand(shape)
    th = torch.deg2rad(rot)
    co, si = torch.cos(th), torch.sin(th)
    sx = W / s[..., 0]
    sy = H / s[..., 1]
    # Box turned counter-clockwise in the image (y down) is Rb = [[c, s], [-s, c]];
    # the crop undoes it: M = diag(W/w, H/h) @ Rb^-1 with Rb^-1 = [[c, -s], [s, c]].
    m = torch.stack([sx * co, -sx * si, sy * si, sy * co], dim=-1).reshape(*shape, 2, 2)
    out_c = torch.tensor([(W - 1) / 2, (H - 1) / 2], dtype=c.dtype, device=c.device)
    b = out_c - (m @ c[..., None])[..., 0]
    return torch.cat([m, b[..., None]], dim=-1)


def apply_affine(points: Any, A: Any) -> torch.Tensor:
    """Apply ``A (..., 2, 3)`` to pixel points ``(..., N, 2)``: ``A[:, :2] @ p + A[:, 2]``.
    Returns ``(..., N, 2)``."""
    p, a = as_floats((points, "points", (..., None, 2)), (A, "A", (..., 2, 3)))
    _batch_shape(("points", p, 2), ("A", a, 2))
    return p @ a[..., :, :2].transpose(-1, -2) + a[..., None, :, 2]


def invert_affine(A: Any) -> torch.Tensor:
    """Inverse of ``A (..., 2, 3)`` (output pixels → source pixels), ``(..., 2, 3)``.
    A singular ``A`` (zero-area map) is a ``ValueError``."""
    a = as_float(A, "A", (..., 2, 3))
    m, b = a[..., :2], a[..., 2]
    det = m[..., 0, 0] * m[..., 1, 1] - m[..., 0, 1] * m[..., 1, 0]
    scale = m.abs().amax(dim=(-1, -2)).clamp(min=torch.finfo(a.dtype).tiny)
    if bool((det.abs() <= 1e-12 * scale * scale).any()):
        raise ValueError("A: the 2x2 part is singular; the affine has no inverse")
    adj = torch.stack([m[..., 1, 1], -m[..., 0, 1], -m[..., 1, 0], m[..., 0, 0]], dim=-1).reshape(
        m.shape
    )
    minv = adj / det[..., None, None]
    binv = -(minv @ b[..., None])[..., 0]
    return torch.cat([minv, binv[..., None]], dim=-1)


def compose_affine(A2: Any, A1: Any) -> torch.Tensor:
    """The affine that applies ``A1`` then ``A2`` (both ``(..., 2, 3)``):
    ``apply_affine(p, compose_affine(A2, A1)) == apply_affine(apply_affine(p, A1), A2)``."""
    a2, a1 = as_floats((A2, "A2", (..., 2, 3)), (A1, "A1", (..., 2, 3)))
    _batch_shape(("A2", a2, 2), ("A1", a1, 2))
    m = a2[..., :2] @ a1[..., :2]
    b = (a2[..., :2] @ a1[..., 2:3]) + a2[..., 2:3]
    return torch.cat([m, b], dim=-1)


def affine_to_3x3(A: Any) -> torch.Tensor:
    """``A (..., 2, 3)`` → homogeneous ``(..., 3, 3)`` with last row ``[0, 0, 1]``.

    ``affine_to_3x3(A) @ K`` is the intrinsics of the cropped image (usable by
    :func:`project_points`)."""
    a = as_float(A, "A", (..., 2, 3))
    last = torch.zeros(*a.shape[:-2], 1, 3, dtype=a.dtype, device=a.device)
    last[..., 0, 2] = 1
    return torch.cat([a, last], dim=-2)


# --------------------------------------------------------------------------- Procrustes


def similarity_transform(
    source: Any, target: Any, weights: Any = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Least-squares similarity transform (Umeyama 1991) taking ``source`` onto ``target``.

    Minimises ``Σ_i w_i |s·R·source_i + t - target_i|²`` over scale ``s > 0``, proper
    rotation ``R`` (det +1: a reflection in the SVD is corrected, never returned) and
    translation ``t``.

    Args:
        source, target: ``(..., N, 3)`` corresponding points (same N; leading dims
            broadcast). Any length unit.
        weights: optional ``(..., N)`` non-negative per-point weights (e.g. visibility);
            each sample needs a positive total. ``None`` weighs all points equally.

    Returns:
        ``(scale (...), R (..., 3, 3), t (..., 3))`` with ``target ≈ scale·R@source + t``.
        Differentiable (through an SVD; gradients are unreliable when two singular values
        of the cross-covariance coincide, e.g. for degenerate point sets).

    Raises ``ValueError`` when the weighted source points of a sample all coincide
    (the scale is then undefined).
    """
    dims: dict[str, int] = {}
    specs = [(source, "source", (..., "N", 3)), (target, "target", (..., "N", 3))]
    if weights is not None:
        if isinstance(weights, torch.Tensor) and weights.dtype == torch.bool:
            weights = weights.float()
        specs.append((weights, "weights", (..., "N")))
    ts = as_floats(*specs, dims=dims)
    src, tgt = ts[0], ts[1]
    items = [("source", src, 2), ("target", tgt, 2)]
    if weights is not None:
        items.append(("weights", ts[2], 1))
    shape = _batch_shape(*items)
    n = src.shape[-2]
    src, tgt = src.expand(*shape, n, 3), tgt.expand(*shape, n, 3)
    if weights is None:
        w = torch.full((*shape, n), 1.0 / n, dtype=src.dtype, device=src.device)
    else:
        w = ts[2].expand(*shape, n)
        if bool((w < 0).any()):
            raise ValueError("weights: expected values >= 0, got negative weights")
        total = w.sum(-1, keepdim=True)
        if bool((total <= 0).any()):
            raise ValueError("weights: every sample needs a positive total weight, got all zeros")
        w = w / total
    mu_s = (w[..., None] * src).sum(-2)
    mu_t = (w[..., None] * tgt).sum(-2)
    xs = src - mu_s[..., None, :]
    xt = tgt - mu_t[..., None, :]
    var_s = (w * (xs * xs).sum(-1)).sum(-1)
    ref = (w * (src * src).sum(-1)).sum(-1)
    degenerate = var_s <= torch.finfo(src.dtype).eps * ref + torch.finfo(src.dtype).tiny
    if bool(degenerate.any()):
        raise ValueError(
            f"source: the (weighted) points coincide in {int(degenerate.sum())} sample(s); "
            "the similarity transform is undefined"
        )
    cov = (w[..., None, None] * (xt[..., :, None] * xs[..., None, :])).sum(-3)  # (..., 3, 3)
    U, D, Vh = torch.linalg.svd(cov)
    d = torch.where(torch.det(U) * torch.det(Vh) < 0, -1.0, 1.0).to(src.dtype)
    fix = torch.ones_like(D)
    fix = torch.cat([fix[..., :2], d[..., None]], dim=-1)
    R = U @ (fix[..., :, None] * Vh)
    scale = (D * fix).sum(-1) / var_s
    t = mu_t - scale[..., None] * (R @ mu_s[..., None])[..., 0]
    return scale, R, t


def procrustes_align(
    pred: Any, gt: Any, direction: str = "pred_to_gt", weights: Any = None
) -> torch.Tensor:
    """Align one point set onto the other with :func:`similarity_transform`.

    Args:
        pred, gt: ``(..., N, 3)`` (e.g. joints in mm).
        direction: ``'pred_to_gt'`` (default; EventHPE, SPIN and most codes) returns
            ``pred`` aligned onto ``gt``; ``'gt_to_pred'`` returns ``gt`` aligned onto
            ``pred`` (HEMlets' ``metric_3d.py``). With a free scale the two resulting
            errors differ (the scale shrinks whichever set is moved), so PA-MPJPE numbers
            are comparable only under the same direction.
        weights: optional ``(..., N)`` point weights for estimating the transform.

    Returns:
        The aligned set, ``(..., N, 3)`` (the moved one: ``pred`` for ``'pred_to_gt'``).
        Differentiable.
    """
    check_choice(direction, "direction", PROCRUSTES_DIRECTIONS)
    p, g = as_floats((pred, "pred", (..., None, 3)), (gt, "gt", (..., None, 3)))
    if p.shape[-2] != g.shape[-2]:
        raise ValueError(
            f"gt: expected as many points as pred ({p.shape[-2]}), got shape {tuple(g.shape)}"
        )
    src, tgt = (p, g) if direction == "pred_to_gt" else (g, p)
    scale, R, t = similarity_transform(src, tgt, weights)
    return scale[..., None, None] * (src @ R.transpose(-1, -2)) + t[..., None, :]
