"""Synthetic scenes: dressed, lit people rendered over backgrounds, with exact labels.

Three generators, all deterministic from a seed (sample ``i`` draws from
``labcore.runtime.generator(seed, i)``, so it does not depend on how many are made or in
what batches):

* :func:`person_crops` — one person per image, rendered straight into a top-down crop
  (the crop is a camera whose intrinsics are the full image's ``K`` composed with the
  crop's affine map, so cropping costs nothing and is exact); :func:`person_in_image`
  shows the same chain explicitly (full image, then the crop warped out of it);
* :func:`crowd_scene` — several people, scales varying over 4×, one shared z-buffer so they
  occlude each other; per-person masks for COCO annotations;
* :func:`motion_frames` — a moving person seen by a static camera, with per-pixel forward
  optical flow between consecutive frames.

Appearance: every person gets clothes (shirt with long or short sleeves, trousers or
shorts, shoes), skin and hair colours, and a procedural pattern (stripes, checks or plain)
evaluated on the body's *rest-pose* surface — the pattern is glued to the body and moves
with it, which is what optical flow and the event camera need. Lighting is Lambertian with
a random key light. Backgrounds are procedural rooms/landscapes, or crops of the
photographs that scikit-image ships in its wheel (no download).

Labels come from the same bodies: 2-D keypoints in COCO17 and J18, per-keypoint COCO
visibility from the z-buffer, 3-D joints in millimetres in the camera frame, SMPL
parameters in the camera frame, and the ordinal depth of each J18 bone.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from labcore import geometry as geo
from labcore.body import render as R
from labcore.body.model import M_TO_MM, load_body_model, pose_body, vertex_parts
from labcore.body.toy import PART_NAMES
from labcore.checks import check_choice, check_int, check_number, check_size2
from labcore.data.poses import PoseParams, pose_params_to_smpl, sample_camera, sample_pose_params
from labcore.runtime import generator
from labcore.skeletons import COCO17, J18, depth_order

__all__ = [
    "BACKGROUND_KINDS",
    "PHOTO_NAMES",
    "KEYPOINT_PARTS",
    "KEYPOINT_DEPTH_SLACK",
    "VISIBILITY_DEPTH_M",
    "make_background",
    "sample_appearance",
    "render_people",
    "person_crops",
    "person_in_image",
    "crop_affine",
    "crowd_scene",
    "motion_frames",
    "BodyBank",
]

BACKGROUND_KINDS = ("procedural", "photo", "mixed", "plain")

#: Photographs inside scikit-image's wheel used as "in-the-wild" backgrounds (none shows a
#: person, so no unlabelled people appear).
PHOTO_NAMES = ("brick", "grass", "gravel", "coffee", "chelsea", "rocket", "immunohistochemistry",
               "hubble_deep_field", "coins", "moon", "text", "page")

#: A keypoint is *seen* (COCO v = 2) when the surface drawn at its pixel belongs to one of
#: the body parts around it (these), of the same person, and lies in front of it by less
#: than its depth slack (:data:`VISIBILITY_DEPTH_M`) — the way an annotator judges: the hip
#: is seen through the buttock or the thigh, not through the other leg or an arm; an eye only
#: on its own skin, not through the back of the head. Any other surface at the pixel
#: occludes it (v = 1). A pixel where nothing was drawn (a thin limb at low resolution)
#: occludes nothing.
_PARTS_BY_NAME = {
    **{n: ("head",) for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear",
                              "head_top", "neck_nose")},
    **{f"{s}_shoulder": ("torso", f"{s}_upper_arm") for s in ("left", "right")},
    **{f"{s}_elbow": (f"{s}_upper_arm", f"{s}_forearm") for s in ("left", "right")},
    **{f"{s}_wrist": (f"{s}_forearm", f"{s}_hand") for s in ("left", "right")},
    **{f"{s}_hip": ("torso", f"{s}_thigh") for s in ("left", "right")},
    **{f"{s}_knee": (f"{s}_thigh", f"{s}_shin") for s in ("left", "right")},
    **{f"{s}_ankle": (f"{s}_shin", f"{s}_foot") for s in ("left", "right")},
    "pelvis": ("torso",), "spine": ("torso",), "thorax": ("torso", "head"),
    "shoulder_mid": ("torso", "head"),
}
_SURFACE_LANDMARKS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "head_top", "neck_nose")
#: Depth slack (metres): joints lie inside the body, up to a torso's half-depth behind the
#: surface that shows them; landmarks lie on the skin.
VISIBILITY_DEPTH_M = {"joint": 0.3, "landmark": 0.04}
#: ``(K, len(PART_NAMES))`` bool: which parts show each keypoint of COCO17 and J18.
KEYPOINT_PARTS = {
    sk.name: np.array([[p in _PARTS_BY_NAME[n] for p in PART_NAMES] for n in sk.joint_names])
    for sk in (COCO17, J18)
}
#: ``(K,)`` depth slack of each keypoint of COCO17 and J18.
KEYPOINT_DEPTH_SLACK = {
    sk.name: np.array([VISIBILITY_DEPTH_M["landmark" if n in _SURFACE_LANDMARKS else "joint"]
                       for n in sk.joint_names], dtype=np.float32)
    for sk in (COCO17, J18)
}


# --------------------------------------------------------------------------- backgrounds


@functools.cache
def _photo(name: str) -> np.ndarray:
    import skimage.data

    img = getattr(skimage.data, name)()
    img = np.asarray(img, dtype=np.float32)
    if img.max() > 1.5:
        img = img / 255.0
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def _smooth_noise(rng: np.random.Generator, size: tuple[int, int], cells: int) -> np.ndarray:
    import cv2

    w, h = size
    grid = rng.random((cells + 1, cells + 1, 3)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def _muted_colour(rng: np.random.Generator, lo: float, hi: float) -> np.ndarray:
    """A colour of brightness in [lo, hi] and low saturation (walls, floors, furniture)."""
    grey = rng.uniform(lo, hi)
    hue = rng.uniform(0, 1, size=3)
    return grey * (1 - 0.35 * rng.random()) + 0.35 * rng.random() * (hue - hue.mean())


def make_background(rng: np.random.Generator, size: tuple[int, int], kind: str = "procedural") -> np.ndarray:
    """A background image ``(H, W, 3)`` float32 in [0, 1].

    ``'procedural'``: a wall and a floor split at a random horizon, smooth colour noise
    and a few soft rectangles (doors, windows, furniture); ``'photo'``: a random crop of one
    of :data:`PHOTO_NAMES`, randomly flipped and tinted; ``'mixed'``: either; ``'plain'``: a
    flat grey.
    """
    import cv2

    kind = check_choice(kind, "kind", BACKGROUND_KINDS)
    w, h = check_size2(size, "size")
    if kind == "mixed":
        kind = "photo" if rng.random() < 0.5 else "procedural"
    if kind == "plain":
        return np.full((h, w, 3), 0.5, dtype=np.float32)
    if kind == "photo":
        img = _photo(PHOTO_NAMES[int(rng.integers(len(PHOTO_NAMES)))])
        ph, pw = img.shape[:2]
        scale = rng.uniform(0.3, 1.0)
        cw, ch = max(8, int(pw * scale)), max(8, int(ph * scale))
        ch = min(ph, max(8, int(cw * h / w)))
        x0, y0 = int(rng.integers(0, pw - cw + 1)), int(rng.integers(0, ph - ch + 1))
        crop = img[y0 : y0 + ch, x0 : x0 + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        out = cv2.resize(np.ascontiguousarray(crop), (w, h), interpolation=cv2.INTER_AREA)
        tint = rng.uniform(0.75, 1.15, size=3).astype(np.float32)
        return np.clip(out * tint, 0, 1).astype(np.float32)
    wall, floor = _muted_colour(rng, 0.25, 0.9), _muted_colour(rng, 0.15, 0.7)
    horizon = rng.uniform(0.35, 0.8) * h
    rows = np.arange(h, dtype=np.float32)[:, None, None]
    img = np.where(rows < horizon, wall, floor) * np.ones((h, w, 3))
    img *= (0.8 + 0.4 * rows / h) if rng.random() < 0.5 else 1.0
    # Mostly-luminance noise with a little colour, like shading and stains on real walls.
    noise = _smooth_noise(rng, (w, h), int(rng.integers(2, 7))) - 0.5
    img = img + 0.2 * noise.mean(2, keepdims=True) + 0.06 * noise
    for _ in range(int(rng.integers(0, 5))):
        x0, x1 = np.sort(rng.uniform(-0.1, 1.1, 2) * w).astype(int)
        y0, y1 = np.sort(rng.uniform(-0.1, 1.1, 2) * h).astype(int)
        x0, y0 = max(0, x0), max(0, y0)
        img[y0:y1, x0:x1] = 0.3 * img[y0:y1, x0:x1] + 0.7 * _muted_colour(rng, 0.1, 0.95)
    sigma = max(0.5, 0.004 * max(w, h))
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), sigma)
    return np.clip(img, 0, 1).astype(np.float32)


# --------------------------------------------------------------------------- appearance

_SKIN = np.array([[0.96, 0.80, 0.69], [0.90, 0.70, 0.55], [0.78, 0.57, 0.42],
                  [0.60, 0.42, 0.30], [0.42, 0.29, 0.20], [0.30, 0.20, 0.14]])
_HAIR = np.array([[0.08, 0.06, 0.05], [0.25, 0.16, 0.09], [0.45, 0.30, 0.15],
                  [0.75, 0.60, 0.35], [0.55, 0.55, 0.55], [0.50, 0.15, 0.08]])
_NUM_ATTRS = 12  # albedo 3, rest position 3, pattern contrast 1, frequency 1, direction 3, checks 1


@dataclass
class BodyBank:
    """What every scene needs about the body model, computed once: the model, its faces,
    the rest-pose surface (for patterns), each vertex's part and its hair region."""

    model: object
    faces: torch.Tensor
    rest: torch.Tensor  # (V, 3) rest-pose vertices, metres, SMPL frame
    parts: torch.Tensor  # (V,) index into PART_NAMES
    hair: torch.Tensor  # (V,) bool

    @classmethod
    def load(cls, body: str = "auto") -> BodyBank:
        return _body_bank(body)

    def part_mask(self, *names: str) -> torch.Tensor:
        ids = torch.tensor([PART_NAMES.index(n) for n in names])
        return torch.isin(self.parts, ids)


@functools.lru_cache(maxsize=3)
def _body_bank(body: str) -> BodyBank:
    model = load_body_model(body)
    faces = model.faces_tensor.long()
    rest = model.v_template.detach().clone()
    parts = vertex_parts(model)
    head = parts == PART_NAMES.index("head")
    head_rest = rest[head]
    top = head_rest[:, 1].max()
    centre = head_rest.mean(0)
    # Hair: the top and back of the head (above the eyes, or behind the ears).
    hair = head & (
        (rest[:, 1] > top - 0.075) | ((rest[:, 2] < centre[2] - 0.02) & (rest[:, 1] > centre[1] - 0.04))
    )
    return BodyBank(model, faces, rest, parts, hair)


def sample_appearance(rng: np.random.Generator, bank: BodyBank) -> torch.Tensor:
    """Per-vertex appearance attributes ``(V, 12)`` of one dressed person: albedo (3), rest
    position (3), pattern contrast, pattern frequency (cycles/m), pattern direction (3)
    and a checks flag — interpolated per pixel and turned into colour by :func:`_texture`."""
    V = bank.rest.shape[0]
    skin = _SKIN[rng.integers(len(_SKIN))] * rng.uniform(0.92, 1.05)
    hair = _HAIR[rng.integers(len(_HAIR))]
    shirt = rng.uniform(0.05, 0.95, size=3)
    trousers = rng.uniform(0.05, 0.8, size=3) * (0.6 if rng.random() < 0.5 else 1.0)
    shoes = rng.uniform(0.02, 0.5) * np.ones(3) + rng.uniform(0, 0.2, size=3)
    long_sleeves, long_legs = rng.random() < 0.6, rng.random() < 0.75
    albedo = np.tile(skin, (V, 1))
    is_ = bank.part_mask
    shirt_region = is_("torso", "left_upper_arm", "right_upper_arm")
    if long_sleeves:
        shirt_region |= is_("left_forearm", "right_forearm")
    legs_region = is_("left_thigh", "right_thigh")
    if long_legs:
        legs_region |= is_("left_shin", "right_shin")
    albedo[shirt_region.numpy()] = shirt
    albedo[legs_region.numpy()] = trousers
    albedo[is_("left_foot", "right_foot").numpy()] = shoes
    albedo[bank.hair.numpy()] = hair
    attrs = np.zeros((V, _NUM_ATTRS), dtype=np.float32)
    attrs[:, 0:3] = albedo
    attrs[:, 3:6] = bank.rest.numpy()
    for region, strength in ((shirt_region, 0.45), (legs_region, 0.25)):
        if rng.random() < 0.6:
            d = rng.normal(size=3)
            d /= np.linalg.norm(d)
            r = region.numpy()
            attrs[r, 6] = rng.uniform(0.3, 1.0) * strength
            attrs[r, 7] = rng.uniform(8.0, 30.0)
            attrs[r, 8:11] = d
            attrs[r, 11] = float(rng.random() < 0.35)
    # Skin and hair get a faint fine texture so that flow is observable everywhere.
    fine = ~(shirt_region | legs_region).numpy() & (attrs[:, 6] == 0)
    attrs[fine, 6] = 0.06
    attrs[fine, 7] = 60.0
    attrs[fine, 8:11] = np.array([0.3, 0.9, 0.3]) / np.linalg.norm([0.3, 0.9, 0.3])
    return torch.from_numpy(attrs)


def _texture(attrs: torch.Tensor) -> torch.Tensor:
    """Per-pixel albedo ``(..., 3)`` from interpolated attributes ``(..., 12)``."""
    albedo, pos = attrs[..., 0:3], attrs[..., 3:6]
    contrast, freq, direction, checks = attrs[..., 6:7], attrs[..., 7:8], attrs[..., 8:11], attrs[..., 11:12]
    phase = 2 * torch.pi * freq * (pos * direction).sum(-1, keepdim=True)
    stripes = torch.sin(phase)
    # A second stripe family across the first gives checks.
    across = torch.linalg.cross(direction, torch.tensor([0.0, 0.0, 1.0]).expand_as(direction), dim=-1)
    other = torch.sin(2 * torch.pi * freq * (pos * across).sum(-1, keepdim=True))
    pattern = torch.where(checks > 0.5, torch.sign(stripes * other), stripes)
    return (albedo * (1.0 - contrast * 0.5 * (1.0 + pattern))).clamp(0, 1)


# --------------------------------------------------------------------------- rendering


@dataclass
class Rendered:
    """Output of :func:`render_people` (all ``(B, H, W, ...)`` torch tensors)."""

    image: torch.Tensor  # (B, H, W, 3) float in [0, 1]
    fragments: R.Fragments  # at the output resolution (pixel centres), whatever the supersampling
    parts: torch.Tensor  # (B, H, W) int64 part index, -1 background
    person: torch.Tensor  # (B, H, W) int64 person index within the image, -1 background


def render_people(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    K: torch.Tensor,
    image_size: tuple[int, int],
    attrs: torch.Tensor,
    background: torch.Tensor,
    *,
    vertex_parts_: torch.Tensor,
    vertices_per_person: int,
    light_dir: torch.Tensor | None = None,
    ambient: float = 0.45,
    supersample: int = 1,
) -> Rendered:
    """Render ``B`` images of one or more people each.

    Args:
        vertices: ``(B, P·V, 3)`` camera-frame metres (P people concatenated).
        faces: ``(P·F, 3)`` faces of the concatenated meshes.
        K: ``(B, 3, 3)`` or ``(3, 3)`` intrinsics of the output image.
        image_size: ``(W, H)``.
        attrs: ``(B, P·V, 12)`` from :func:`sample_appearance`.
        background: ``(B, H, W, 3)`` float.
        vertex_parts_: ``(P·V,)`` part index per vertex.
        vertices_per_person: ``V`` (to recover each pixel's person).
        light_dir: ``(B, 3)`` toward the light, camera frame; random-ish default.
        supersample: render the colours at ``s×`` resolution and box-filter them down;
            the labels (fragments, parts, person) come from a 1× raster, so they describe
            each output pixel's centre exactly.
    """
    W, H = image_size
    B = vertices.shape[0]
    s = supersample
    Kb = K if K.dim() == 3 else K.expand(B, 3, 3)
    # Colours: rendered at s× resolution (pixel centres stay integers: K_hi = S K) and
    # box-filtered down, which anti-aliases edges.
    S = torch.tensor([[s, 0, (s - 1) / 2], [0, s, (s - 1) / 2], [0, 0, 1.0]])
    frag_hi = R.rasterize(vertices, faces, S @ Kb, (W * s, H * s))
    albedo = _texture(R.interpolate(frag_hi, faces, attrs))
    if light_dir is None:
        light_dir = torch.tensor([0.3, -0.6, -0.75]).expand(B, 3)
    shaded = R.shade_lambert(frag_hi, faces, vertices, albedo, light_dir, ambient=ambient,
                             diffuse=1.0 - ambient)
    shaded = R.downsample(shaded, s)
    cover = R.downsample(frag_hi.mask[..., None].float(), s)[..., 0]
    # The shaded colours are zero where no face was hit, so after the box filter they are
    # premultiplied by coverage: blend the background in with the uncovered fraction.
    image = shaded + (1.0 - cover[..., None]) * background
    # Labels (which face, depth, part, person) belong to the output pixel centres exactly:
    # with s > 1 no high-resolution sample sits on them, so rasterise once more at 1×.
    frag = frag_hi if s == 1 else R.rasterize(vertices, faces, Kb, (W, H))
    face_vertex = faces[frag.face_index.clamp(min=0), 0]
    parts = torch.where(frag.mask, vertex_parts_[face_vertex], torch.full_like(face_vertex, -1))
    person = torch.where(frag.mask, face_vertex // vertices_per_person, torch.full_like(face_vertex, -1))
    return Rendered(image.clamp(0, 1), frag, parts, person)


def _random_light(rng: np.random.Generator) -> torch.Tensor:
    d = np.array([rng.uniform(-0.8, 0.8), rng.uniform(-1.0, -0.2), rng.uniform(-1.0, -0.4)])
    return torch.tensor(d / np.linalg.norm(d), dtype=torch.float32)


def _labels_2d(kp3d: torch.Tensor, K: torch.Tensor, rend: Rendered, skeleton: str, size: tuple[int, int],
               people: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """2-D keypoints ``(B, K, 2)`` and COCO visibility ``(B, K)`` — 0 outside the image,
    1 inside but occluded, 2 seen (see :data:`KEYPOINT_PARTS`) — of camera-frame keypoints
    ``(B, K, 3)`` (metres) of ``skeleton`` in images rendered with ``K``. With ``people > 1``
    the K keypoints are ``people`` skeletons concatenated (a crowd in one image), and a
    keypoint is seen only through its own person's surface."""
    own = np.tile(KEYPOINT_PARTS[skeleton], (people, 1))
    slack = torch.from_numpy(np.tile(KEYPOINT_DEPTH_SLACK[skeleton], people))
    W, H = size
    uv = geo.project_points(kp3d, K)
    z = kp3d[..., 2]
    inside = (uv[..., 0] >= -0.5) & (uv[..., 0] <= W - 0.5) & (uv[..., 1] >= -0.5) & (uv[..., 1] <= H - 0.5)
    inside &= z > 0
    col = torch.nan_to_num(torch.floor(uv[..., 0] + 0.5), posinf=0).clamp(0, W - 1).long()
    row = torch.nan_to_num(torch.floor(uv[..., 1] + 0.5), posinf=0).clamp(0, H - 1).long()
    b = torch.arange(kp3d.shape[0])[:, None].expand_as(col)
    part = rend.parts[b, row, col]
    depth = rend.fragments.depth[b, row, col]
    shows = torch.from_numpy(own)[torch.arange(own.shape[0])[None].expand_as(col), part.clamp(min=0)]
    if people > 1:
        owner = torch.arange(people).repeat_interleave(own.shape[0] // people)
        shows &= rend.person[b, row, col] == owner[None]
    seen = (part < 0) | (shows & (depth >= z - slack))
    vis = torch.where(inside, torch.where(seen, 2, 1), 0)
    return uv, vis


def _sample_betas(rng: np.random.Generator, num_betas: int) -> np.ndarray:
    return np.clip(rng.normal(0.0, 1.0, size=num_betas), -2.5, 2.5)


def _pelvis_rest(bank: BodyBank, betas: torch.Tensor) -> torch.Tensor:
    """Rest-pose pelvis ``(N, 3)`` of each body's shape (what smplx rotates about)."""
    m = bank.model
    v_shaped = m.v_template + torch.einsum("nl,vcl->nvc", betas, m.shapedirs)
    return torch.einsum("v,nvc->nc", m.J_regressor[0], v_shaped)


def _pose_in_camera(bank: BodyBank, body_pose, betas, global_orient_world, transl_world, Rc, tc):
    """SMPL parameters in the camera frame and the posed body (metres)."""
    from labcore.data.poses import to_camera_frame

    j0 = _pelvis_rest(bank, betas)
    go, tr = to_camera_frame(global_orient_world, transl_world, j0, Rc, tc)
    state = pose_body(bank.model, go, body_pose, betas, tr)
    return go, tr, state


# --------------------------------------------------------------------------- person crops


@dataclass
class _People:
    """A batch of posed people seen by full-image cameras (camera frame, metres)."""

    body_pose: torch.Tensor  # (B, 69)
    betas: torch.Tensor  # (B, 10)
    global_orient: torch.Tensor  # (B, 3) camera frame
    transl: torch.Tensor  # (B, 3) camera frame
    state: object  # BodyState in the camera frame
    K: torch.Tensor  # (B, 3, 3) full-image intrinsics
    family: np.ndarray  # (B,) str


def _sample_people(rngs: list[np.random.Generator], bank: BodyBank, families, image_size,
                   heading_deg: tuple[float, float] | None = None) -> _People:
    """One person per generator: a pose of ``families``, a shape, a heading, and a camera
    that sees them 0.3–0.9 of the image height tall, a little off the image centre.

    ``heading_deg=None`` turns the person uniformly about the vertical axis; ``(lo, hi)``
    draws the heading *relative to the camera* from ``U(lo, hi)`` degrees (0: facing the
    camera, ±180: the back to it) — the draw comes after every other, so ``None`` keeps the
    people of earlier versions."""
    W, H = image_size
    # Each pose from its own sample's stream, converted to SMPL in one batch.
    pose = [sample_pose_params(1, int(r.integers(2**31)), families=families) for r in rngs]
    batch = PoseParams({k: np.concatenate([p.angles[k] for p in pose]) for k in pose[0].angles},
                       np.concatenate([p.family for p in pose]))
    body_pose = pose_params_to_smpl(batch)
    family = batch.family
    betas = torch.tensor(np.stack([_sample_betas(r, bank.model.num_betas) for r in rngs]), dtype=torch.float32)
    yaw = torch.tensor([[0.0, r.uniform(-np.pi, np.pi), 0.0] for r in rngs], dtype=torch.float32)
    centre = pose_body(bank.model, yaw, body_pose, betas).joints.mean(1)
    cams = [sample_camera(r, (W, H), centre[k].numpy(), person_height_px=r.uniform(0.31, 0.875) * H,
                          elevation_deg=(-10, 30))
            for k, r in enumerate(rngs)]
    K = torch.stack([c.K for c in cams])
    for k, r in enumerate(rngs):  # off-centre, as in a real photo
        K[k, 0, 2] += r.uniform(-0.19, 0.19) * W
        K[k, 1, 2] += r.uniform(-0.125, 0.125) * H
    Rc, tc = torch.stack([c.R for c in cams]), torch.stack([c.t for c in cams])
    if heading_deg is not None:
        # The camera's azimuth about the person (the body faces +z at yaw 0), plus the heading.
        eye = -(Rc.transpose(1, 2) @ tc[..., None])[..., 0] - centre
        azim = torch.atan2(eye[:, 0], eye[:, 2])
        turn = torch.tensor([np.radians(r.uniform(*heading_deg)) for r in rngs], dtype=torch.float32)
        yaw = torch.stack([torch.zeros_like(azim), azim + turn, torch.zeros_like(azim)], 1)
    go, tr, state = _pose_in_camera(bank, body_pose, betas, yaw, torch.zeros_like(yaw), Rc, tc)
    return _People(body_pose, betas, go, tr, state, K, family)


def crop_affine(keypoints: torch.Tensor, size: tuple[int, int], padding: float = 1.25,
                jitter: np.ndarray | None = None) -> torch.Tensor:
    """The top-down crop of each person: ``(B, 2, 3)`` affine maps from the image to a
    ``size`` crop of the keypoint box ``(B, K, 2)``, padded by ``padding``, widened to the
    crop's aspect ratio, and moved/scaled by ``jitter (B, 3)`` (fractions: dx, dy, scale)."""
    w, h = size
    lo, hi = keypoints.min(1).values, keypoints.max(1).values
    centre = (lo + hi) / 2
    box_wh = (hi - lo) * padding
    box_w = torch.maximum(box_wh[:, 0], box_wh[:, 1] * (w / h))
    box = torch.stack([box_w, box_w * (h / w)], 1)
    if jitter is not None:
        jit = torch.as_tensor(jitter, dtype=box.dtype)
        centre = centre + jit[:, :2] * box
        box = box * (1.0 + jit[:, 2:3])
    return geo.box_to_affine(centre, box, (w, h))


def _labels(people: _People, K: torch.Tensor, rend: Rendered, size, order_threshold_mm: float):
    """Every label of a batch of single-person images rendered with intrinsics ``K``."""
    rec = {}
    for sk in (COCO17, J18):
        uv, vis = _labels_2d(people.state.joints_of(sk), K, rend, sk.name, size)
        rec[f"keypoints_{sk.name}"] = uv
        rec[f"visibility_{sk.name}"] = vis.to(torch.int8)
    j18_mm = people.state.joints_of(J18) * M_TO_MM
    rec["joints3d_j18"] = j18_mm
    rec["joints3d_smpl24"] = people.state.joints * M_TO_MM
    rec["bone_order_j18"] = depth_order(j18_mm[..., 2], J18.bones, order_threshold_mm).to(torch.int8)
    rec.update(global_orient=people.global_orient, body_pose=people.body_pose, betas=people.betas,
               transl=people.transl)
    return rec


def _finish(image: torch.Tensor, rngs: list[np.random.Generator]) -> torch.Tensor:
    """Per-image exposure and sensor noise (each from its sample's own stream) → uint8."""
    h, w = image.shape[1:3]
    exposure = torch.tensor([r.uniform(0.8, 1.15) for r in rngs], dtype=torch.float32)
    noise = torch.tensor(np.stack([r.normal(0, 0.012, (h, w, 3)) for r in rngs]), dtype=torch.float32)
    image = (image * exposure[:, None, None, None] + noise).clamp(0, 1)
    return (image * 255 + 0.5).to(torch.uint8)


def person_crops(
    n: int,
    seed: int = 0,
    *,
    size: tuple[int, int] = (64, 64),
    families: tuple[str, ...] | None = None,
    background: str = "procedural",
    body: str = "auto",
    padding: float = 1.25,
    jitter: float = 0.1,
    supersample: int = 2,
    order_threshold_mm: float = 100.0,
    heading_deg: tuple[float, float] | None = None,
    batch_size: int = 64,
    start: int = 0,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """``n`` top-down person crops with every label (numpy arrays, first axis ``n``).

    A person is posed (``families``), shaped (betas ~ N(0, 1)), turned, and seen by a
    camera (:func:`labcore.data.poses.sample_camera`) in a 640×480 *full image* where it
    stands 150–420 px tall. The crop box is the person's keypoint box, padded by
    ``padding``, widened to the crop's aspect ratio and jittered by ``jitter`` (fraction of
    its size) — the top-down protocol (:func:`crop_affine`) — and the person is rendered
    straight into the crop: the crop's camera is ``affine ∘ K_full``. ``heading_deg`` limits
    the person's heading relative to the camera (degrees, 0 = facing it; default: any).

    Returns:
        ``image (n, H, W, 3) uint8``; ``parts (n, H, W) int8`` (-1 background);
        ``depth (n, H, W) float16`` metres along the camera's z at each pixel centre
        (``inf`` on the background);
        ``keypoints_coco17 (n, 17, 2)`` / ``keypoints_j18 (n, 18, 2)`` float32 crop pixels;
        ``visibility_coco17 / visibility_j18 (n, K) int8`` COCO-style 0/1/2;
        ``joints3d_j18 (n, 18, 3)`` and ``joints3d_smpl24 (n, 24, 3)`` float32 mm, camera
        frame; ``bone_order_j18 (n, 17) int8`` ordinal depth of :data:`J18.bones` at
        ``order_threshold_mm``; SMPL parameters in the camera frame ``global_orient (n, 3)``,
        ``body_pose (n, 69)``, ``betas (n, 10)``, ``transl (n, 3)``; cameras
        ``K_full (n, 3, 3)`` and ``affine (n, 2, 3)`` (full image → crop); ``family (n,)`` str.
    """
    n = check_int(n, "n", low=1)
    w, h = check_size2(size, "size", low=8)
    check_choice(background, "background", BACKGROUND_KINDS)
    padding = check_number(padding, "padding", low=1.0)
    jitter = check_number(jitter, "jitter", low=0.0, high=0.5)
    supersample = check_int(supersample, "supersample", low=1, high=4)
    if heading_deg is not None:
        if len(heading_deg) != 2:
            raise ValueError(f"heading_deg: expected (lo, hi) degrees, got {heading_deg!r}")
        lo, hi = (check_number(v, "heading_deg", low=-180.0, high=180.0) for v in heading_deg)
        if lo > hi:
            raise ValueError(f"heading_deg: expected (lo, hi) with lo <= hi, got {heading_deg!r}")
        heading_deg = (lo, hi)
    bank = BodyBank.load(body)
    V = bank.rest.shape[0]
    out: dict[str, list] = {}
    batches = range(0, n, batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="person crops", unit="batch")
    for b0 in batches:
        rngs = [generator(seed, i) for i in range(start + b0, start + min(n, b0 + batch_size))]
        people = _sample_people(rngs, bank, families, (640, 480), heading_deg)
        kp_full = geo.project_points(people.state.joints_of(COCO17), people.K)
        A = crop_affine(kp_full, (w, h), padding, np.stack([r.uniform(-jitter, jitter, 3) for r in rngs]))
        K_crop = geo.affine_to_3x3(A) @ people.K
        attrs = torch.stack([sample_appearance(r, bank) for r in rngs])
        bg = torch.tensor(np.stack([make_background(r, (w, h), background) for r in rngs]))
        light = torch.stack([_random_light(r) for r in rngs])
        rend = render_people(people.state.vertices, bank.faces, K_crop, (w, h), attrs, bg,
                             vertex_parts_=bank.parts, vertices_per_person=V, light_dir=light,
                             supersample=supersample)
        rec = {"image": _finish(rend.image, rngs), "parts": rend.parts.to(torch.int8),
               "depth": rend.fragments.depth.to(torch.float16)}
        rec.update(_labels(people, K_crop, rend, (w, h), order_threshold_mm))
        rec.update(K_full=people.K, affine=A)
        for key, value in rec.items():
            out.setdefault(key, []).append(value.detach().cpu().numpy())
        out.setdefault("family", []).append(people.family)
    arrays = {k: np.concatenate(v) for k, v in out.items()}
    return {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in arrays.items()}


def person_in_image(
    seed: int = 0,
    *,
    image_size: tuple[int, int] = (320, 240),
    crop_size: tuple[int, int] = (64, 64),
    padding: float = 1.25,
    background: str = "procedural",
    body: str = "auto",
    supersample: int = 2,
) -> dict[str, np.ndarray]:
    """One person in a full image, and the top-down crop *warped* out of it.

    This is the chain a top-down pipeline runs — image → crop (an affine warp) →
    network → heatmap — with ground truth at every step. ``crop`` is
    ``cv2.warpAffine(image, affine)`` (pixel centres at integers on both sides), and
    ``keypoints_crop = affine ∘ keypoints`` equals the projection with ``affine ∘ K``.

    Returns:
        ``image (H, W, 3) uint8``, ``keypoints (17, 2)`` and ``visibility (17,)`` COCO17
        in the image, ``affine (2, 3)``, ``crop (h, w, 3) uint8``, ``keypoints_crop
        (17, 2)``, ``K (3, 3)``, ``joints3d (17, 3)`` mm (camera frame).
    """
    import cv2

    W, H = check_size2(image_size, "image_size", low=16)
    w, h = check_size2(crop_size, "crop_size", low=8)
    bank = BodyBank.load(body)
    rngs = [generator(seed, 0)]
    people = _sample_people(rngs, bank, None, (W, H))
    attrs = sample_appearance(rngs[0], bank)[None]
    bg = torch.from_numpy(make_background(rngs[0], (W, H), background))[None]
    rend = render_people(people.state.vertices, bank.faces, people.K, (W, H), attrs, bg,
                         vertex_parts_=bank.parts, vertices_per_person=bank.rest.shape[0],
                         light_dir=_random_light(rngs[0])[None], supersample=supersample)
    image = _finish(rend.image, rngs)[0].numpy()
    kp3 = people.state.joints_of(COCO17)
    uv, vis = _labels_2d(kp3, people.K, rend, "coco17", (W, H))
    A = crop_affine(uv, (w, h), padding)[0]
    crop = cv2.warpAffine(image, A.numpy().astype(np.float64), (w, h), flags=cv2.INTER_LINEAR)
    return {
        "image": image, "keypoints": uv[0].numpy(), "visibility": vis[0].to(torch.int8).numpy(),
        "affine": A.numpy(), "crop": crop, "keypoints_crop": geo.apply_affine(uv[0], A).numpy(),
        "K": people.K[0].numpy(), "joints3d": (kp3[0] * M_TO_MM).numpy(),
    }


# --------------------------------------------------------------------------- crowd scenes


def crowd_scene(
    seed: int,
    *,
    size: tuple[int, int] = (256, 192),
    people: tuple[int, int] = (2, 6),
    scale_range: float = 4.5,
    background: str = "procedural",
    body: str = "auto",
    supersample: int = 2,
) -> dict[str, np.ndarray]:
    """One image with several people whose heights in pixels vary over ``scale_range``×.

    People stand on a common floor at depths drawn log-uniformly so that the nearest is
    about ``scale_range`` times taller on screen than the farthest; they occlude each other
    through one z-buffer.

    Returns:
        ``image (H, W, 3) uint8``, ``person (H, W) int8`` (-1 background), ``keypoints
        (P, 17, 2)`` COCO17 pixels, ``visibility (P, 17) int8`` 0/1/2, ``joints3d (P, 17, 3)``
        mm, ``height_px (P,)`` on-screen height, SMPL parameters (camera frame), ``K``.
    """
    w, h = check_size2(size, "size", low=16)
    lo_n, hi_n = people
    lo_n = check_int(lo_n, "people[0]", low=1)
    hi_n = check_int(hi_n, "people[1]", low=lo_n)
    scale_range = check_number(scale_range, "scale_range", low=1.0)
    bank = BodyBank.load(body)
    V = bank.rest.shape[0]
    rng = generator(seed, 0xC0)
    P = int(rng.integers(lo_n, hi_n + 1))
    f = 0.5 * w / np.tan(np.radians(rng.uniform(45, 60)) / 2)
    K = geo.camera_matrix(f, f, (w - 1) / 2, (h - 1) / 2).float()
    # Depths log-uniform between z_near and z_near·scale_range; the extremes are forced
    # to appear so that every scene spans the full range of scales.
    z_near = f * 1.7 / (0.85 * h)
    frac = rng.uniform(0, 1, P)
    if P >= 2:
        frac[0], frac[1] = 0.0, 1.0
    depth = z_near * scale_range**frac
    cam_height = rng.uniform(1.0, 1.8)
    pose = pose_params_to_smpl(sample_pose_params(P, int(rng.integers(2**31))))
    betas = torch.tensor(np.stack([_sample_betas(rng, bank.model.num_betas) for _ in range(P)]),
                         dtype=torch.float32)
    yaw = torch.tensor([[0.0, rng.uniform(-np.pi, np.pi), 0.0] for _ in range(P)], dtype=torch.float32)
    world = pose_body(bank.model, yaw, pose, betas)
    # Place each person: feet on the floor (y = 0 in a world whose y is up), at the chosen
    # depth and a lateral position inside the view.
    feet = world.vertices[..., 1].min(1).values
    half_width = depth * (w / 2) / f * 0.8
    x = torch.tensor(rng.uniform(-1, 1, P)) * torch.tensor(half_width)
    transl = torch.stack([x, -feet - cam_height, torch.tensor(depth)], 1).float()
    # World (y up) → camera (y down): rotate 180° about x; the camera looks along +z.
    Rc = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
    flip_z = torch.tensor([1.0, 1.0, -1.0])
    go, tr, state = _pose_in_camera(bank, pose, betas, yaw, transl * flip_z, Rc, torch.zeros(3))
    attrs = torch.cat([sample_appearance(rng, bank) for _ in range(P)])[None]
    faces = torch.cat([bank.faces + p * V for p in range(P)])
    parts = bank.parts.repeat(P)
    bg = torch.from_numpy(make_background(rng, (w, h), background))[None]
    verts = state.vertices.reshape(1, P * V, 3)
    rend = render_people(verts, faces, K[None], (w, h), attrs, bg, vertex_parts_=parts,
                         vertices_per_person=V, light_dir=_random_light(rng)[None],
                         supersample=supersample)
    kp3 = state.joints_of(COCO17)
    # Visibility against the shared z-buffer: everyone's keypoints as one image's points.
    uv, vis = _labels_2d(kp3.reshape(1, P * 17, 3), K[None], rend, "coco17", (w, h), people=P)
    uv, vis = uv.reshape(P, 17, 2), vis.reshape(P, 17)
    proj = geo.project_points(state.vertices, K)
    height_px = proj[..., 1].max(1).values - proj[..., 1].min(1).values
    noise = torch.tensor(rng.normal(0, 0.012, (h, w, 3)), dtype=torch.float32)
    image = (rend.image[0] + noise).clamp(0, 1)
    return {
        "image": (image * 255 + 0.5).to(torch.uint8).numpy(),
        "person": rend.person[0].to(torch.int8).numpy(),
        "keypoints": uv.numpy().astype(np.float32),
        "visibility": vis.to(torch.int8).numpy(),
        "joints3d": (kp3 * M_TO_MM).numpy().astype(np.float32),
        "height_px": height_px.numpy().astype(np.float32),
        "global_orient": go.numpy(), "body_pose": pose.numpy(), "betas": betas.numpy(),
        "transl": tr.numpy(), "K": K.numpy(),
    }


# --------------------------------------------------------------------------- motion frames


def motion_frames(
    seed: int,
    *,
    n_frames: int = 16,
    fps: float = 30.0,
    size: tuple[int, int] = (96, 96),
    kind: str = "mixed",
    background: str = "procedural",
    body: str = "auto",
    supersample: int = 2,
    fill: tuple[float, float] = (0.7, 0.9),
) -> dict[str, np.ndarray]:
    """A moving person seen by a static camera, frame by frame, with optical flow.

    The camera frames the person at ``fill`` (a range) of the image height, as the
    person-centred crops of event-camera datasets do.

    Returns:
        ``images (T, H, W, 3) uint8``, ``gray (T, H, W) float32`` luminance in [0, 1],
        ``flow (T-1, H, W, 2) float32`` forward flow (pixels) from frame t to t+1 and
        ``flow_valid (T-1, H, W) bool``, ``parts (T, H, W) int8``, ``keypoints_coco17
        (T, 17, 2)``, ``visibility_coco17 (T, 17)``, ``joints3d_smpl24 (T, 24, 3)`` mm,
        SMPL parameters per frame in the camera frame (``betas`` fixed), ``K``, ``times (T,)``.
    """
    from labcore.data.poses import motion_clip

    w, h = check_size2(size, "size", low=16)
    bank = BodyBank.load(body)
    V = bank.rest.shape[0]
    rng = generator(seed, 0x30)
    clip = motion_clip(n_frames, fps, seed=int(rng.integers(2**31)), kind=kind)
    T = n_frames
    betas = torch.tensor(_sample_betas(rng, bank.model.num_betas), dtype=torch.float32).expand(T, -1)
    world = pose_body(bank.model, clip["global_orient"], clip["body_pose"], betas, clip["transl"])
    centre = world.joints.mean((0, 1))
    cam = sample_camera(rng, (w, h), centre.numpy(), person_height_px=rng.uniform(*fill) * h,
                        elevation_deg=(0, 20))
    # The camera is static; the body moves through its view.
    go, tr, state = _pose_in_camera(bank, clip["body_pose"], betas, clip["global_orient"],
                                    clip["transl"], cam.R, cam.t)
    attrs = sample_appearance(rng, bank).expand(T, -1, -1)
    bg = torch.from_numpy(make_background(rng, (w, h), background)).expand(T, -1, -1, -1)
    light = _random_light(rng).expand(T, 3)
    rend = render_people(state.vertices, bank.faces, cam.K, (w, h), attrs, bg,
                         vertex_parts_=bank.parts, vertices_per_person=V, light_dir=light,
                         supersample=supersample)
    frag = rend.fragments
    prev = R.Fragments(frag.face_index[:-1], frag.bary[:-1], frag.depth[:-1])
    flow, valid = R.optical_flow(prev, bank.faces, state.vertices[1:], cam.K)
    kp3 = state.joints_of(COCO17)
    uv, vis = _labels_2d(kp3, cam.K, rend, "coco17", (w, h))
    image = rend.image
    gray = (image * torch.tensor([0.299, 0.587, 0.114])).sum(-1)
    return {
        "images": (image * 255 + 0.5).to(torch.uint8).numpy(),
        "gray": gray.numpy().astype(np.float32),
        "flow": flow.numpy().astype(np.float32),
        "flow_valid": valid.numpy(),
        "parts": rend.parts.to(torch.int8).numpy(),
        "keypoints_coco17": uv.numpy().astype(np.float32),
        "visibility_coco17": vis.to(torch.int8).numpy(),
        "joints3d_smpl24": (state.joints * M_TO_MM).numpy().astype(np.float32),
        "global_orient": go.numpy(), "body_pose": clip["body_pose"].numpy(),
        "betas": betas.numpy(), "transl": tr.numpy(),
        "K": cam.K.numpy(), "times": clip["times"].numpy(),
    }

