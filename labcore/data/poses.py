"""Poses, motion and cameras for the synthetic world.

**Poses** are written in anatomical terms and turned into SMPL's axis-angle ``body_pose``
(23 joints × 3, each a rotation relative to the parent in SMPL's rest frame: y up, x to the
subject's left, z forward):

* shoulders and hips are *swing + twist* joints: the limb points along a direction given
  by an elevation from hanging down and a plane (0° = out to the side, 90° = forward;
  a negative elevation swings the arm behind that plane), then twists about itself;
* elbows and knees are hinges (flexion in degrees);
* spine, neck, head, collars, wrists, ankles and toes take small (flexion, twist, side
  bend) angles.

Every angle has a range in :data:`JOINT_LIMITS`; :func:`sample_poses` draws from pose
*families* (standing, walking, reaching, crouching, sitting, arms raised, lunging), adds
noise and clamps to the limits, so every sample is a pose a person can make.

**Motion** (:func:`motion_clip`) blends key poses with quaternion slerp and eased timing, or
runs a walking cycle, while the body turns and moves.

**Cameras** (:func:`sample_camera`) look at the person from a random distance, height and
side; :func:`to_camera_frame` re-expresses SMPL parameters so that ``smplx`` returns the body
directly in the camera's frame (OpenCV: x right, y down, z forward).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from labcore import geometry as geo
from labcore.checks import as_tensor, check_choice, check_int, check_number
from labcore.runtime import generator

__all__ = [
    "POSE_FAMILIES",
    "JOINT_LIMITS",
    "PoseParams",
    "sample_pose_params",
    "pose_params_to_smpl",
    "sample_poses",
    "motion_clip",
    "Camera",
    "sample_camera",
    "to_camera_frame",
]

POSE_FAMILIES: tuple[str, ...] = (
    "standing", "walking", "reaching", "crouching", "sitting", "arms_raised", "lunging",
)  # fmt: skip

#: Ranges (degrees) of each anatomical angle. ``L``/``R`` angles are given for the left
#: side in the subject's own terms and mirrored for the right by the conversion.
JOINT_LIMITS: dict[str, tuple[float, float]] = {
    "spine_flex": (-15.0, 35.0), "spine_twist": (-20.0, 20.0), "spine_side": (-15.0, 15.0),
    "neck_flex": (-25.0, 35.0), "neck_twist": (-35.0, 35.0), "neck_side": (-20.0, 20.0),
    "head_flex": (-25.0, 25.0), "head_twist": (-30.0, 30.0), "head_side": (-15.0, 15.0),
    "collar_raise": (-10.0, 20.0), "collar_fwd": (-15.0, 15.0),
    "shoulder_elev": (-60.0, 180.0), "shoulder_plane": (-40.0, 130.0),
    "shoulder_twist": (-60.0, 60.0),
    "elbow_flex": (0.0, 145.0), "forearm_twist": (-70.0, 70.0),
    "wrist_flex": (-60.0, 60.0), "wrist_dev": (-25.0, 25.0),
    "hip_flex": (-25.0, 125.0), "hip_abd": (-20.0, 45.0), "hip_twist": (-35.0, 35.0),
    "knee_flex": (0.0, 150.0),
    "ankle_flex": (-30.0, 40.0), "ankle_inv": (-20.0, 20.0), "toe_flex": (-30.0, 20.0),
}  # fmt: skip

_SIDED = ("collar_raise", "collar_fwd", "shoulder_elev", "shoulder_plane", "shoulder_twist",
          "elbow_flex", "forearm_twist", "wrist_flex", "wrist_dev", "hip_flex", "hip_abd",
          "hip_twist", "knee_flex", "ankle_flex", "ankle_inv", "toe_flex")
_CENTRAL = ("spine_flex", "spine_twist", "spine_side", "neck_flex", "neck_twist", "neck_side",
            "head_flex", "head_twist", "head_side")


@dataclass
class PoseParams:
    """Anatomical angles in degrees, each an array of shape ``(N,)``.

    ``angles`` maps central names (``'spine_flex'``) and sided names (``'L_hip_flex'``,
    ``'R_knee_flex'``) to arrays; :func:`pose_params_to_smpl` turns them into ``body_pose``.
    """

    angles: dict[str, np.ndarray]
    family: np.ndarray  # (N,) str

    @property
    def n(self) -> int:
        return len(self.family)

    def clamp(self) -> PoseParams:
        """Clamp every angle to :data:`JOINT_LIMITS` (returns a new object)."""
        out = {}
        for key, value in self.angles.items():
            lo, hi = JOINT_LIMITS[key[2:] if key[:2] in ("L_", "R_") else key]
            out[key] = np.clip(value, lo, hi)
        return PoseParams(out, self.family.copy())


def _all_angle_names() -> list[str]:
    return list(_CENTRAL) + [f"{s}_{n}" for s in "LR" for n in _SIDED]


def _family_angles(family: str, rng: np.random.Generator) -> dict[str, float]:
    """Mean angles of one pose of a family (degrees); unspecified angles are 0."""
    u = rng.uniform
    a: dict[str, float] = {}
    for s in "LR":  # relaxed defaults: arms hanging slightly out, elbows a little bent
        a[f"{s}_shoulder_elev"] = u(8, 25)
        a[f"{s}_shoulder_plane"] = u(-10, 40)
        a[f"{s}_elbow_flex"] = u(5, 30)
        a[f"{s}_knee_flex"] = u(0, 8)
        a[f"{s}_hip_flex"] = u(-3, 8)
        a[f"{s}_hip_abd"] = u(-2, 8)
    if family == "standing":
        a["spine_flex"] = u(-5, 10)
        if rng.random() < 0.3:  # hands on hips
            for s in "LR":
                a[f"{s}_shoulder_elev"], a[f"{s}_shoulder_plane"] = u(35, 50), u(-20, 10)
                a[f"{s}_elbow_flex"] = u(90, 120)
    elif family == "walking":
        phase = u(0, 2 * np.pi)
        swing = u(18, 32)
        for s, sgn in (("L", 1.0), ("R", -1.0)):
            ph = phase + (0 if sgn > 0 else np.pi)
            a[f"{s}_hip_flex"] = swing * np.sin(ph) + 5
            a[f"{s}_knee_flex"] = 8 + 50 * max(0.0, np.sin(ph + 1.3)) ** 2
            a[f"{s}_ankle_flex"] = -8 * np.sin(ph)
            # Arms swing opposite to the legs in the forward plane (negative elevation is
            # behind the body: one continuous angle, no flip of plane at the bottom).
            a[f"{s}_shoulder_plane"] = 90.0
            a[f"{s}_shoulder_elev"] = 25 * np.sin(ph + np.pi)
            a[f"{s}_elbow_flex"] = u(10, 40)
        a["spine_twist"] = 6 * np.sin(phase)
    elif family == "reaching":
        sides = ["L", "R"] if rng.random() < 0.3 else [rng.choice(["L", "R"])]
        for s in sides:
            a[f"{s}_shoulder_elev"] = u(60, 130)
            a[f"{s}_shoulder_plane"] = u(20, 120)
            a[f"{s}_elbow_flex"] = u(0, 40)
        a["spine_flex"] = u(0, 30)
        a["spine_twist"] = u(-15, 15)
    elif family == "crouching":
        for s in "LR":
            a[f"{s}_hip_flex"] = u(75, 120)
            a[f"{s}_knee_flex"] = u(90, 140)
            a[f"{s}_ankle_flex"] = u(10, 35)
            a[f"{s}_hip_abd"] = u(5, 25)
            a[f"{s}_shoulder_elev"], a[f"{s}_shoulder_plane"] = u(20, 60), u(60, 100)
            a[f"{s}_elbow_flex"] = u(20, 90)
        a["spine_flex"] = u(15, 35)
        a["neck_flex"] = u(-25, 0)
    elif family == "sitting":
        for s in "LR":
            a[f"{s}_hip_flex"] = u(75, 100)
            a[f"{s}_knee_flex"] = u(70, 110)
            a[f"{s}_hip_abd"] = u(0, 15)
            a[f"{s}_shoulder_elev"], a[f"{s}_shoulder_plane"] = u(15, 45), u(60, 100)
            a[f"{s}_elbow_flex"] = u(40, 90)
        a["spine_flex"] = u(-5, 20)
    elif family == "arms_raised":
        for s in "LR":
            a[f"{s}_shoulder_elev"] = u(130, 175)
            a[f"{s}_shoulder_plane"] = u(-20, 70)
            a[f"{s}_elbow_flex"] = u(0, 35)
        a["spine_flex"] = u(-10, 5)
        a["neck_flex"] = u(-20, 5)
    elif family == "lunging":
        front, back = ("L", "R") if rng.random() < 0.5 else ("R", "L")
        a[f"{front}_hip_flex"], a[f"{front}_knee_flex"] = u(50, 90), u(60, 100)
        a[f"{back}_hip_flex"], a[f"{back}_knee_flex"] = u(-25, -10), u(10, 60)
        a["spine_flex"] = u(-5, 15)
        for s in "LR":
            a[f"{s}_shoulder_elev"] = u(10, 70)
    return a


def sample_pose_params(
    n: int, seed: int = 0, *, families: tuple[str, ...] | None = None, noise_deg: float = 6.0
) -> PoseParams:
    """Draw ``n`` poses as anatomical angles (degrees), clamped to :data:`JOINT_LIMITS`.

    Pose ``i`` is drawn from ``labcore.runtime.generator(seed, i)``, so it does not depend
    on ``n``. ``families`` restricts the families (default: all, equally likely);
    ``noise_deg`` is the std of Gaussian noise added to every angle.
    """
    n = check_int(n, "n", low=1)
    fams = POSE_FAMILIES if families is None else tuple(families)
    for f in fams:
        check_choice(f, "families", POSE_FAMILIES)
    noise = check_number(noise_deg, "noise_deg", low=0.0)
    names = _all_angle_names()
    out = {k: np.zeros(n) for k in names}
    fam = np.empty(n, dtype=object)
    for i in range(n):
        rng = generator(seed, i)
        fam[i] = fams[int(rng.integers(len(fams)))]
        mean = _family_angles(fam[i], rng)
        jitter = rng.normal(0.0, noise, size=len(names))
        for k, name in enumerate(names):
            out[name][i] = mean.get(name, 0.0) + jitter[k]
    return PoseParams(out, fam.astype(str)).clamp()


def _rot(axis: str, deg: np.ndarray) -> torch.Tensor:
    """Rotation matrices ``(N, 3, 3)`` about a principal axis."""
    v = np.zeros((len(deg), 3))
    v[:, "xyz".index(axis)] = np.radians(deg)
    return geo.axis_angle_to_matrix(torch.as_tensor(v, dtype=torch.float64))


def _swing_twist(rest: np.ndarray, target: np.ndarray, twist_deg: np.ndarray) -> torch.Tensor:
    """The rotation that turns the ``rest`` direction to ``target (N, 3)`` by the shortest
    arc, after twisting by ``twist_deg`` about ``rest``."""
    r = np.broadcast_to(rest, target.shape)
    axis = np.cross(r, target)
    sin = np.linalg.norm(axis, axis=1)
    cos = (r * target).sum(1)
    angle = np.arctan2(sin, cos)
    # Parallel or anti-parallel: any perpendicular axis works.
    fallback = np.cross(r, np.array([0.0, 0.0, 1.0]))
    axis = np.where(sin[:, None] > 1e-9, axis / np.maximum(sin[:, None], 1e-12),
                    fallback / np.linalg.norm(fallback, axis=1, keepdims=True))
    swing = geo.axis_angle_to_matrix(torch.as_tensor(axis * angle[:, None]))
    twist = geo.axis_angle_to_matrix(torch.as_tensor(r * np.radians(twist_deg)[:, None]))
    return swing @ twist


def pose_params_to_smpl(params: PoseParams) -> torch.Tensor:
    """Anatomical angles → SMPL ``body_pose (N, 69)`` float32 axis-angle.

    Joint frames are SMPL's rest frame (y up, x = subject's left, z forward). Right-side
    angles are mirrored: a mirror through the x = 0 plane maps a rotation's axis-angle
    ``(x, y, z)`` to ``(x, -y, -z)``.
    """
    a = params.angles
    n = params.n
    R = {j: torch.eye(3, dtype=torch.float64).repeat(n, 1, 1) for j in range(1, 24)}

    def small(flex: np.ndarray, twist: np.ndarray, side: np.ndarray) -> torch.Tensor:
        # Forward flexion of a vertical segment is +x; twist about y; side bend about z.
        return _rot("y", twist) @ _rot("x", flex) @ _rot("z", side)

    R[3] = small(a["spine_flex"] * 0.4, a["spine_twist"] * 0.3, a["spine_side"] * 0.4)
    R[6] = small(a["spine_flex"] * 0.3, a["spine_twist"] * 0.3, a["spine_side"] * 0.3)
    R[9] = small(a["spine_flex"] * 0.3, a["spine_twist"] * 0.4, a["spine_side"] * 0.3)
    R[12] = small(a["neck_flex"], a["neck_twist"], a["neck_side"])
    R[15] = small(a["head_flex"], a["head_twist"], a["head_side"])
    for s, j in (("L", 0), ("R", 1)):
        def g(name: str, s: str = s) -> np.ndarray:
            return a[f"{s}_{name}"]

        # Build every rotation for the LEFT side, then mirror it for the right.
        left: dict[int, torch.Tensor] = {}
        # Collar: raise = +z (shrug lifts the shoulder), forward = -y.
        left[13] = _rot("z", g("collar_raise")) @ _rot("y", -g("collar_fwd"))
        # Shoulder: the arm rests along +x; hanging down is -y; plane 0 = side, 90 = forward.
        elev, plane = np.radians(g("shoulder_elev")), np.radians(g("shoulder_plane"))
        horiz = np.stack([np.cos(plane), np.zeros(n), np.sin(plane)], 1)
        target = -np.cos(elev)[:, None] * np.array([0.0, 1.0, 0.0]) + np.sin(elev)[:, None] * horiz
        left[16] = _swing_twist(np.array([1.0, 0.0, 0.0]), target, g("shoulder_twist"))
        # The swing above is relative to the collar's frame; remove the collar's rotation.
        left[16] = left[13].transpose(-1, -2) @ left[16]
        # Elbow: flexion brings the forearm forward (about -y for the left arm), after the
        # forearm's own twist about its rest axis (+x).
        left[18] = _rot("y", -g("elbow_flex")) @ _rot("x", g("forearm_twist"))
        # Wrist: palms face down in the rest pose, so flexion turns the hand down (-z) and
        # deviation turns it forward or back (about y).
        left[20] = _rot("z", -g("wrist_flex")) @ _rot("y", -g("wrist_dev"))
        # Hip: the leg rests along -y; flexion swings it forward, abduction out (+x).
        f, ab = np.radians(g("hip_flex")), np.radians(g("hip_abd"))
        target = np.stack([np.sin(ab), -np.cos(ab) * np.cos(f), np.cos(ab) * np.sin(f)], 1)
        left[1] = _swing_twist(np.array([0.0, -1.0, 0.0]), target, g("hip_twist"))
        # Knee: flexion takes the shin backward: +x.
        left[4] = _rot("x", g("knee_flex"))
        # Ankle: dorsiflexion lifts the toes: -x. Inversion about z.
        left[7] = _rot("x", -g("ankle_flex")) @ _rot("z", g("ankle_inv"))
        left[10] = _rot("x", -g("toe_flex"))
        mirror = torch.diag(torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))
        for joint, rot in left.items():
            R[joint + j] = rot if s == "L" else mirror @ rot @ mirror
    mats = torch.stack([R[j] for j in range(1, 24)], 1)
    return geo.matrix_to_axis_angle(mats).reshape(n, 69).float()


def sample_poses(
    n: int, seed: int = 0, *, families: tuple[str, ...] | None = None, noise_deg: float = 6.0
) -> dict[str, torch.Tensor | np.ndarray]:
    """``n`` natural poses: ``{'body_pose': (n, 69) float32 axis-angle, 'family': (n,) str}``."""
    params = sample_pose_params(n, seed, families=families, noise_deg=noise_deg)
    return {"body_pose": pose_params_to_smpl(params), "family": params.family}


# --------------------------------------------------------------------------- motion


def _ease(t: np.ndarray) -> np.ndarray:
    return t * t * (3 - 2 * t)


def motion_clip(
    n_frames: int,
    fps: float = 30.0,
    seed: int = 0,
    *,
    kind: str = "mixed",
    speed: float = 1.0,
) -> dict[str, torch.Tensor]:
    """A smooth motion of one body in SMPL's world frame (y up).

    Args:
        n_frames: frames ``T``.
        fps: frames per second (the clip lasts ``T / fps`` seconds).
        seed: random seed.
        kind: ``'walk'`` — a walking cycle (about 1.8 steps/s) moving forward while turning
            slowly; ``'transition'`` — eased slerp between key poses of random families,
            about one per second, with the body turning; ``'mixed'`` — either, at random.
        speed: scales how fast everything moves (1 = natural).

    Returns:
        ``global_orient (T, 3)``, ``body_pose (T, 69)``, ``transl (T, 3)`` metres (float32)
        and ``times (T,)`` seconds.
    """
    n_frames = check_int(n_frames, "n_frames", low=2)
    fps = check_number(fps, "fps", low=0.0, low_inclusive=False)
    speed = check_number(speed, "speed", low=0.0, low_inclusive=False)
    kind = check_choice(kind, "kind", ("walk", "transition", "mixed"))
    rng = generator(seed, 0xC11F)
    if kind == "mixed":
        kind = "walk" if rng.random() < 0.5 else "transition"
    times = np.arange(n_frames) / fps
    tt = times * speed
    heading0 = rng.uniform(-np.pi, np.pi)
    turn_rate = rng.uniform(-0.6, 0.6)  # rad/s
    heading = heading0 + turn_rate * tt
    if kind == "walk":
        cadence = 2 * np.pi * 0.9  # one gait cycle (two steps) per 1.1 s
        phase = rng.uniform(0, 2 * np.pi) + cadence * tt
        names = _all_angle_names()
        angles = {k: np.zeros(n_frames) for k in names}
        stride = rng.uniform(20, 30)
        for s, offset in (("L", 0.0), ("R", np.pi)):
            ph = phase + offset
            angles[f"{s}_hip_flex"] = stride * np.sin(ph) + 5
            angles[f"{s}_knee_flex"] = 8 + 55 * np.clip(np.sin(ph + 1.3), 0, None) ** 2
            angles[f"{s}_ankle_flex"] = -10 * np.sin(ph)
            arm = np.sin(ph + np.pi)
            angles[f"{s}_shoulder_plane"] = np.full(n_frames, 90.0)
            angles[f"{s}_shoulder_elev"] = 22 * arm
            angles[f"{s}_elbow_flex"] = 20 + 12 * np.clip(arm, 0, None)
        angles["spine_twist"] = 6 * np.sin(phase)
        body_pose = pose_params_to_smpl(PoseParams(angles, np.full(n_frames, "walking")).clamp())
        step = 1.3 * speed / fps  # metres per frame (≈1.3 m/s)
        forward = np.stack([np.sin(heading), np.zeros(n_frames), np.cos(heading)], 1)
        transl = np.cumsum(forward * step, 0) - forward[0] * step
        transl[:, 1] += 0.02 * np.abs(np.sin(phase))  # the body bobs with each step
    else:
        n_keys = max(2, int(np.ceil(tt[-1])) + 2)
        keys = sample_poses(n_keys, seed=int(rng.integers(2**31)))["body_pose"].double()
        key_t = np.cumsum(np.concatenate([[0.0], rng.uniform(0.7, 1.3, n_keys - 1)]))
        seg = np.clip(np.searchsorted(key_t, tt, side="right") - 1, 0, n_keys - 2)
        local = _ease(np.clip((tt - key_t[seg]) / (key_t[seg + 1] - key_t[seg]), 0, 1))
        a0 = keys[seg].reshape(n_frames, 23, 3)
        a1 = keys[seg + 1].reshape(n_frames, 23, 3)
        w = torch.as_tensor(local)[:, None, None]
        body_pose = geo.slerp_axis_angle(a0, a1, w[..., 0]).reshape(n_frames, 69).float()
        drift = rng.normal(0, 0.15, size=(1, 3)) * np.array([[1.0, 0.0, 1.0]])
        transl = drift * tt[:, None]
    yaw = np.stack([np.zeros(n_frames), heading, np.zeros(n_frames)], 1)
    return {
        "global_orient": torch.as_tensor(yaw, dtype=torch.float32),
        "body_pose": body_pose,
        "transl": torch.as_tensor(transl, dtype=torch.float32),
        "times": torch.as_tensor(times, dtype=torch.float32),
    }


# --------------------------------------------------------------------------- cameras


@dataclass
class Camera:
    """A pinhole camera. ``K (3, 3)`` intrinsics in pixels (integer values at pixel
    centres), ``R (3, 3)``, ``t (3,)`` world→camera (``p_cam = R p_world + t``, OpenCV
    frame: x right, y down, z forward), ``image_size (W, H)``."""

    K: torch.Tensor
    R: torch.Tensor
    t: torch.Tensor
    image_size: tuple[int, int]


def sample_camera(
    rng: np.random.Generator,
    image_size: tuple[int, int],
    target: np.ndarray | torch.Tensor,
    *,
    person_height_px: float | None = None,
    fov_deg: tuple[float, float] = (35.0, 60.0),
    elevation_deg: tuple[float, float] = (-5.0, 25.0),
    distance_m: tuple[float, float] = (2.5, 6.0),
) -> Camera:
    """A camera looking at ``target`` (world, metres; y up) from a random direction.

    ``fov_deg`` is the horizontal field of view; ``elevation_deg`` the camera's height
    angle above the target. When ``person_height_px`` is given, the distance is chosen so
    that a 1.7 m person spans about that many pixels; else it is drawn from ``distance_m``.
    The camera's azimuth is random about the vertical axis.
    """
    w, h = image_size
    fov = np.radians(rng.uniform(*fov_deg))
    f = 0.5 * w / math.tan(fov / 2)
    if person_height_px is not None:
        dist = f * 1.7 / person_height_px
    else:
        dist = rng.uniform(*distance_m)
    elev = np.radians(rng.uniform(*elevation_deg))
    azim = rng.uniform(-np.pi, np.pi)
    target = np.asarray(target, dtype=np.float64).reshape(3)
    eye = target + dist * np.array([math.cos(elev) * math.sin(azim), math.sin(elev),
                                    math.cos(elev) * math.cos(azim)])
    R, t = geo.look_at(torch.as_tensor(eye), torch.as_tensor(target), up=torch.tensor([0.0, 1.0, 0.0]))
    K = geo.camera_matrix(f, f, (w - 1) / 2, (h - 1) / 2)
    return Camera(K.float(), R.float(), t.float(), (int(w), int(h)))


def to_camera_frame(
    global_orient: torch.Tensor,
    transl: torch.Tensor,
    pelvis_rest: torch.Tensor,
    R: torch.Tensor,
    t: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SMPL parameters that put the body in a camera's frame.

    smplx rotates the body about its rest pelvis ``J0`` (which depends on the betas) and
    then adds ``transl``: ``v_world = G (v - J0) + J0 + transl``. With ``p_cam = R p + t``
    the same body in the camera frame is ``global_orient' = R G`` and
    ``transl' = R (J0 + transl) + t - J0``.

    Args:
        global_orient: ``(N, 3)``; transl: ``(N, 3)``; pelvis_rest: ``(N, 3)`` the rest-pose
            pelvis for each body's betas; R: ``(3, 3)`` or ``(N, 3, 3)``; t: ``(3,)`` or ``(N, 3)``.

    Returns:
        ``(global_orient', transl')``, each ``(N, 3)``.
    """
    dims: dict[str, int] = {}
    go = as_tensor(global_orient, "global_orient", shape=("N", 3), dims=dims)
    tr = as_tensor(transl, "transl", shape=("N", 3), dims=dims)
    j0 = as_tensor(pelvis_rest, "pelvis_rest", shape=("N", 3), dims=dims)
    R = as_tensor(R, "R", shape=(..., 3, 3)).to(go.device)
    t = as_tensor(t, "t", shape=(..., 3)).to(go.device)
    G = geo.axis_angle_to_matrix(go)
    go_cam = geo.matrix_to_axis_angle(R @ G)
    tr_cam = ((R @ (j0 + tr)[..., None])[..., 0]) + t - j0
    return go_cam, tr_cam
