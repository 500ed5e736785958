"""HEMlets — part-centric heatmap triplets for 3-D human pose.

Zhou, Han, Jiang, Jia and Lu, *HEMlets Pose: Learning Part-Centric Heatmap Triplets for
Accurate 3D Human Pose Estimation*, ICCV 2019 (arXiv 1910.12032); official code
``redrock303/HEMlets`` (inference only — the training code was never released, so the
targets and losses below are labcore's reading of the paper, DESIGN.md §3–4). Read top to
bottom:

1. **parts and polarity** — :data:`HEMLETS_PARTS`, 14 ``(parent, child)`` bones in J18
   order; :func:`part_polarity`: ``+1`` when the child is farther from the camera than the
   parent by more than ``r`` mm, ``-1`` when nearer by more, ``0`` otherwise (strict: a
   difference of exactly ``r`` is 0);
2. **the triplets** — :class:`HEMletsTriplets`: three heatmaps per part ``(T⁻, T⁰, T⁺)``,
   ``(N, P, 3, h, w)``. The parent's Gaussian always goes in ``T⁰``, the child's in
   ``T^polarity`` — so the *position* of the child's peak says where the child is and the
   *channel* it sits in says whether it is in front, level, or behind. Encoding from 3-D
   (depths) or from ordinal labels alone (``polarity=``, the weakly labelled images);
   decoding a part's polarity back from predicted triplets;
3. **3-D coordinates** — the official normalisation: ``x = u/W − 0.5``, ``y = v/H − 0.5``
   and root-relative depth ``z = Δz / 2000 mm`` (a 2 m box around the pelvis), all in
   ``[−0.5, 0.5]``; the volumetric read-out is a soft-argmax over all ``D·h·w`` voxels
   with the HEMlets grid ``i/(n−1) − 0.5`` on every axis
   (:func:`labcore.methods.heatmap.soft_argmax`);
4. **the network** — :class:`HEMletsNet`, the official layout at a small size: a ResNet
   trunk → two deconvolution branches (features; and ``14·3`` triplet + ``J`` 2-D heatmap
   channels) → a triplet encoder (Conv3×3 + BN + ReLU) → concatenation → Conv1×1 + BN +
   ReLU → Conv1×1 to ``J·D`` channels = volumetric heatmaps ``(N, J, D, h, w)``;
5. **losses** — L2 on triplets and 2-D heatmaps (HRNet's ``JointsMSELoss``), L1 on the
   integral 3-D joints (Integral Human Pose, which the authors say they follow), and, for
   images that carry only ordinal depth, a ranking loss on predicted depth differences
   (:func:`ordinal_depth_loss`, DESIGN.md §4);
6. **test time and metrics** — :func:`hemlets_flip_test` (mirror, swap J18's left/right
   joints, average), :func:`to_camera` (pixels + root-relative depth → camera-frame mm
   with the root depth given), :func:`evaluate_3d`: **P1** (MPJPE after pelvis alignment),
   **P2** (Procrustes-aligned MPJPE, prediction onto ground truth; the official code aligns
   the other way, which rewards a collapsed prediction — see :func:`evaluate_3d`),
   and the fraction of correctly ordered parts — on the first 17 joints, as
   ``metric_3d.py``.

Conventions: keypoints ``(N, J, 2)`` in input pixels; depths ``(N, J)`` in mm along the
camera's z (OpenCV camera: z forward, larger is farther); 3-D joints ``(N, J, 3)`` mm in
the camera frame; triplet channel ``c`` of part ``p`` holds polarity ``c − 1``; in the
network's 60 "FBI" channels the 42 triplet channels come first, part-major
(``3p + polarity + 1``; the official order inside them was not found), then the ``J``
2-D heatmaps.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from labcore.checks import as_tensor, check_int, check_number, check_size2
from labcore.geometry import backproject
from labcore.heatmaps import msra_heatmaps
from labcore.methods.heatmap import joints_mse_loss, soft_argmax
from labcore.metrics import pa_mpjpe, pel_mpjpe
from labcore.nn import deconv_stack, init_pose_weights
from labcore.skeletons import J18, depth_order, flip_permutation

__all__ = [
    "HEMLETS_PARTS",
    "DEPTH_RANGE_MM",
    "EVAL_JOINTS",
    "part_polarity",
    "HEMletsTriplets",
    "normalise_joints",
    "denormalise_joints",
    "HEMletsNet",
    "hemlets_targets",
    "hemlets_loss",
    "ordinal_depth_loss",
    "hemlets_flip_test",
    "to_camera",
    "evaluate_3d",
]

#: The 14 parts, ``(parent, child)`` in J18 order: legs, shoulders, arms, neck and head.
HEMLETS_PARTS: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6),      # right leg, left leg
    (8, 11), (8, 14),                                    # thorax → shoulders
    (11, 12), (12, 13), (14, 15), (15, 16),              # left arm, right arm
    (8, 9), (9, 10),                                     # neck, head
)  # fmt: skip

#: The depth box of the official normalisation: root-relative z / 2000 mm ∈ [−0.5, 0.5].
DEPTH_RANGE_MM = 2000.0
#: ``metric_3d.py`` scores the first 17 joints (joint 17, the shoulder midpoint, is derived).
EVAL_JOINTS = 17


def _parts(parts: Any, num_joints: int | None = None) -> tuple[tuple[int, int], ...]:
    t = as_tensor(parts, "parts", dtype=torch.long)
    if t.dim() != 2 or t.shape[1] != 2 or t.shape[0] < 1:
        raise ValueError(f"parts: expected (parent, child) pairs, shape (P, 2), got {tuple(t.shape)}")
    if bool((t < 0).any()) or (num_joints is not None and bool((t >= num_joints).any())):
        raise ValueError(f"parts: joint indices must lie in [0, {num_joints}), got {t.tolist()}")
    return tuple((int(a), int(b)) for a, b in t.tolist())


def _visibility(visible: Any, n: int, j: int, device: torch.device | None = None) -> torch.Tensor:
    """``visible`` as float32 ``(N, J)`` (bool masks accepted, ``None``: all visible)."""
    if visible is None:
        return torch.ones(n, j, device=device)
    if isinstance(visible, torch.Tensor) and visible.dtype == torch.bool:
        visible = visible.float()
    return as_tensor(visible, "visible", shape=(n, j))


# ---------------------------------------------------------------------- 1. parts and polarity


def part_polarity(depth: Any, parts: Any = HEMLETS_PARTS, threshold: float = 100.0) -> torch.Tensor:
    """The depth polarity of each part: ``(N, P)`` int64 in {−1, 0, +1}.

    ``+1`` when ``z_child − z_parent > r`` (the child is farther from the camera), ``−1``
    when ``< −r``, else ``0`` — strict, so a difference of exactly ``r`` is 0.

    Args:
        depth: ``(N, J)`` joint depths (mm, camera z), finite.
        parts: ``(parent, child)`` pairs (default :data:`HEMLETS_PARTS`).
        threshold: ``r >= 0`` in mm.
    """
    z = as_tensor(depth, "depth", shape=("N", "J"), dtype=None)
    if not z.is_floating_point():
        z = z.double()
    return depth_order(z, _parts(parts, z.shape[1]), threshold)


# -------------------------------------------------------------------------- 2. the triplets


class HEMletsTriplets:
    """HEMlets targets: three heatmaps per part.

    For part ``(parent, child)`` with polarity ``q``: ``T⁰`` holds the parent's Gaussian,
    ``T^q`` the child's (with ``q = 0`` both sit in ``T⁰``, merged by max); the others
    are zero. Gaussians as HRNet's keypoint targets (:func:`labcore.heatmaps.msra_heatmaps`:
    centre ``int(x/stride + 0.5)``, peak 1, 3σ support).

    Args:
        input_size: ``(W, H)`` of the crop, pixels.
        heatmap_size: ``(w, h)`` of the maps.
        sigma: σ in heatmap pixels (> 0).
        depth_threshold: ``r`` in mm (>= 0; the paper's value was not found, 100 mm is
            labcore's default).
        parts: the ``(parent, child)`` pairs.

    ``encode(keypoints (N, J, 2), visible (N, J), depth=(N, J) mm)`` — or ``polarity=(N, P)``
    instead of ``depth`` for images labelled with depth order only — returns
    ``{'triplets': (N, P, 3, h, w), 'polarity': (N, P) int64, 'weights': (N, P)}``
    (weight 1 when both end-joints are visible and inside the map), plus the per-joint
    maps it is made of, ``'heatmaps' (N, J, h, w)`` and ``'joint_weights' (N, J)`` (the
    network's 2-D heatmap targets).
    ``decode(triplets)`` → ``(polarity (N, P), confidence (N, P))``.
    """

    def __init__(self, input_size: Any = (256, 256), heatmap_size: Any = (64, 64), sigma: float = 2.0,
                 depth_threshold: float = 100.0, parts: Any = HEMLETS_PARTS) -> None:
        self.input_size = check_size2(input_size, "input_size")
        self.heatmap_size = check_size2(heatmap_size, "heatmap_size")
        self.sigma = check_number(sigma, "sigma", low=0.0, low_inclusive=False)
        self.depth_threshold = check_number(depth_threshold, "depth_threshold", low=0.0)
        self.parts = _parts(parts)

    @property
    def num_parts(self) -> int:
        return len(self.parts)

    def encode(self, keypoints: Any, visible: Any = None, *, depth: Any = None,
               polarity: Any = None) -> dict[str, torch.Tensor]:
        dims: dict[str, int] = {}
        kp = as_tensor(keypoints, "keypoints", shape=("N", "J", 2), dims=dims)
        n, j = kp.shape[:2]
        _parts(self.parts, j)  # every part's joints exist in this skeleton
        vis = _visibility(visible, n, j, kp.device)
        if (depth is None) == (polarity is None):
            raise ValueError("depth, polarity: give exactly one — depths (N, J) in mm, or the parts' "
                             "polarity (N, P) for images labelled with depth order only")
        if depth is not None:
            pol = part_polarity(as_tensor(depth, "depth", shape=(n, j)), self.parts, self.depth_threshold)
        else:
            pol = as_tensor(polarity, "polarity", shape=(n, self.num_parts), dtype=torch.long)
            if bool(((pol < -1) | (pol > 1)).any()):
                raise ValueError(f"polarity: expected values in {{-1, 0, 1}}, got {sorted(set(pol.flatten().tolist()))}")
        maps, weights = msra_heatmaps(kp, vis, self.input_size, self.heatmap_size, self.sigma)  # (N, J, h, w)
        idx = torch.tensor(self.parts, device=maps.device)
        parent, child = maps[:, idx[:, 0]], maps[:, idx[:, 1]]                 # (N, P, h, w)
        h, w = maps.shape[-2:]
        triplets = torch.zeros(n, self.num_parts, 3, h, w, device=maps.device)
        triplets[:, :, 1] = parent
        # the child's Gaussian goes to channel polarity + 1 (merged by max with the parent's in T⁰)
        slot = (pol + 1).view(n, self.num_parts, 1, 1, 1).expand(-1, -1, 1, h, w)
        current = torch.gather(triplets, 2, slot)
        triplets.scatter_(2, slot, torch.maximum(current, child.unsqueeze(2)))
        part_weights = weights[:, idx[:, 0]] * weights[:, idx[:, 1]]
        return {"triplets": triplets, "polarity": pol, "weights": part_weights,
                "heatmaps": maps, "joint_weights": weights}

    def decode(self, triplets: Any, min_peak: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
        """Each part's polarity from its maps ``(N, P, 3, h, w)``: the side channel
        (``T⁻`` or ``T⁺``) with the higher peak if that peak reaches ``min_peak``, else 0
        (the child's peak is in ``T⁰``). ``confidence`` is the winning channel's peak (for 0:
        ``1 −`` the larger side peak)."""
        t = as_tensor(triplets, "triplets", shape=("N", self.num_parts, 3, "h", "w"))
        min_peak = check_number(min_peak, "min_peak", low=0.0, low_inclusive=False)
        peaks = t.flatten(3).amax(-1)                                           # (N, P, 3)
        minus, plus = peaks[..., 0], peaks[..., 2]
        side = torch.where(plus >= minus, torch.ones_like(minus), -torch.ones_like(minus))
        best = torch.maximum(minus, plus)
        pol = torch.where(best >= min_peak, side, torch.zeros_like(side)).long()
        conf = torch.where(pol != 0, best, 1.0 - best)
        return pol, conf

    def __repr__(self) -> str:
        return (f"HEMletsTriplets(input_size={self.input_size}, heatmap_size={self.heatmap_size}, "
                f"sigma={self.sigma}, depth_threshold={self.depth_threshold}, parts={self.num_parts})")


# ----------------------------------------------------------------------- 3. 3-D coordinates


def normalise_joints(keypoints: Any, depth: Any, input_size: Any, root: int = 0,
                     depth_range: float = DEPTH_RANGE_MM) -> torch.Tensor:
    """The official 3-D target: ``(N, J, 3)`` = ``(u/W − 0.5, v/H − 0.5, (z − z_root)/depth_range)``.

    Args:
        keypoints: ``(N, J, 2)`` input pixels; depth: ``(N, J)`` mm; input_size: ``(W, H)``.
    """
    dims: dict[str, int] = {}
    kp = as_tensor(keypoints, "keypoints", shape=("N", "J", 2), dims=dims)
    z = as_tensor(depth, "depth", shape=("N", "J"), dims=dims)
    w, h = check_size2(input_size, "input_size")
    root = check_int(root, "root", low=0, high=kp.shape[1] - 1)
    depth_range = check_number(depth_range, "depth_range", low=0.0, low_inclusive=False)
    scale = torch.tensor([w, h], dtype=kp.dtype, device=kp.device)
    rel = (z - z[:, root : root + 1]) / depth_range
    return torch.cat([kp / scale - 0.5, rel.unsqueeze(-1)], dim=-1)


def denormalise_joints(joints: Any, input_size: Any, depth_range: float = DEPTH_RANGE_MM
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """The inverse of :func:`normalise_joints`: ``(keypoints (N, J, 2) px, relative depth
    (N, J) mm)``."""
    t = as_tensor(joints, "joints", shape=("N", "J", 3), dtype=None)
    w, h = check_size2(input_size, "input_size")
    scale = torch.tensor([w, h], dtype=t.dtype, device=t.device)
    return (t[..., :2] + 0.5) * scale, t[..., 2] * depth_range


# ---------------------------------------------------------------------------- 4. the network


class HEMletsNet(nn.Module):
    """HEMlets' network (``inference/network.py``) at a small size.

    ``backbone`` (a :class:`labcore.nn.ResNet`, or any module with ``out_channels`` and a
    ``stride`` of 4·2^k) → two deconvolution branches that bring it to stride 4, each
    ending in a Conv3×3 (the official ``TwoBranch``): ``feature`` (``feature_channels``)
    and ``fbi`` (``3P + J``: the triplets and 2-D heatmaps) → ``fbi_encoder`` Conv3×3 +
    BN + ReLU (``encoder_channels``) → concatenated with the features → ``tail``: Conv1×1
    + BN + ReLU (``tail_channels``) → Conv1×1 to ``J·D`` = volumes ``(N, J, D, h, w)``
    (channel ``j·D + d``, as the official ``CoordinateRegress``). Initialisation of
    everything but the backbone: N(0, 0.001²), BN (1, 0), as the official code.

    ``forward(images (N, 3, H, W))`` → dict ``triplets (N, P, 3, h, w)``, ``heatmaps (N, J,
    h, w)``, ``volumes (N, J, D, h, w)``, ``joints (N, J, 3)`` (soft-argmax, HEMlets grid,
    normalised ``(x, y, z)`` ∈ [−0.5, 0.5]).

    ``hemlets_branch=False`` drops the triplet branch and its encoder: the volumes come from
    the features alone — integral regression on the same trunk, the ablation HEMlets is
    measured against (it returns only ``volumes`` and ``joints``).

    Official sizes: ResNet-50, deconvs 3 × 256, features 1024, encoder 256, tail 1024,
    P = 14, J = 18, D = 64 at 64×64 (a cube: ``depth_bins`` = the heatmap width; labcore's
    default 16 is the cube for 64×64 inputs).
    """

    def __init__(self, backbone: nn.Module, num_joints: int = 18, num_parts: int = len(HEMLETS_PARTS),
                 depth_bins: int = 16, deconv_channels: int = 64, feature_channels: int = 64,
                 encoder_channels: int = 32, tail_channels: int = 64, hemlets_branch: bool = True) -> None:
        super().__init__()
        for attr in ("out_channels", "stride"):
            if not hasattr(backbone, attr):
                raise TypeError(f"backbone: expected a module with an '{attr}' attribute, got {type(backbone).__name__}")
        stride = int(backbone.stride)
        if stride < 4 or stride & (stride - 1):
            raise ValueError(f"backbone: expected a stride of 4·2^k, got {stride}")
        self.num_joints = check_int(num_joints, "num_joints", low=1)
        self.num_parts = check_int(num_parts, "num_parts", low=1)
        self.depth_bins = check_int(depth_bins, "depth_bins", low=2)
        deconv_channels = check_int(deconv_channels, "deconv_channels", low=1)
        n_up = stride.bit_length() - 3  # deconvs to stride 4
        self.backbone = backbone
        self.stride = 4
        fbi_channels = 3 * self.num_parts + self.num_joints

        def branch(out: int) -> nn.Sequential:
            return nn.Sequential(deconv_stack(backbone.out_channels, [deconv_channels] * n_up),
                                 nn.Conv2d(deconv_channels if n_up else backbone.out_channels, out, 3, padding=1))

        self.hemlets_branch = bool(hemlets_branch)
        self.feature = branch(check_int(feature_channels, "feature_channels", low=1))
        enc = check_int(encoder_channels, "encoder_channels", low=1)
        if self.hemlets_branch:
            self.fbi = branch(fbi_channels)
            self.fbi_encoder = nn.Sequential(nn.Conv2d(fbi_channels, enc, 3, padding=1, bias=False),
                                             nn.BatchNorm2d(enc), nn.ReLU(inplace=True))
        tail = check_int(tail_channels, "tail_channels", low=1)
        tail_in = feature_channels + (enc if self.hemlets_branch else 0)
        self.tail = nn.Sequential(nn.Conv2d(tail_in, tail, 1, bias=False), nn.BatchNorm2d(tail), nn.ReLU(inplace=True))
        self.volume = nn.Conv2d(tail, self.num_joints * self.depth_bins, 1)
        for m in self.children():
            if m is not backbone:
                init_pose_weights(m)

    def forward(self, images: torch.Tensor, features: bool = False) -> dict[str, torch.Tensor]:
        """The dict of the class docstring; ``features=True`` adds ``features (N, C)``: the
        tail's output (the last map every joint's volume is read from), averaged over the
        image — what HEMlets PoSh's regressor may take besides the joints."""
        x = self.backbone(images)
        feat = self.feature(x)
        n, _, h, w = feat.shape
        out: dict[str, torch.Tensor] = {}
        if self.hemlets_branch:
            fbi = self.fbi(x)
            feat = torch.cat([feat, self.fbi_encoder(fbi)], dim=1)
            p3 = 3 * self.num_parts
            out = {"triplets": fbi[:, :p3].reshape(n, self.num_parts, 3, h, w), "heatmaps": fbi[:, p3:]}
        tail = self.tail(feat)
        volumes = self.volume(tail).view(n, self.num_joints, self.depth_bins, h, w)
        if features:
            out["features"] = tail.mean(dim=(2, 3))
        return out | {"volumes": volumes, "joints": soft_argmax(volumes, grid="hemlets")}


# ------------------------------------------------------------------------------- 5. losses


def hemlets_targets(codec: HEMletsTriplets, keypoints: Any, visible: Any, *, depth: Any = None,
                    polarity: Any = None, has_3d: Any = None, root: int = 0) -> dict[str, torch.Tensor]:
    """Everything :func:`hemlets_loss` needs for a batch: the triplets (:class:`HEMletsTriplets`),
    the 2-D heatmaps, and the normalised 3-D joints where depths are known.

    Args:
        keypoints, visible: ``(N, J, 2)`` input pixels and ``(N, J)``.
        depth: ``(N, J)`` mm, or ``None`` when no image of the batch has 3-D labels.
        polarity: ``(N, P)`` depth order of the parts; when given, the triplets are made from
            it (an image labelled with depth order only needs nothing else), else from
            ``depth``.
        has_3d: ``(N,)`` 1 where ``depth`` is a real label (default: all, when ``depth`` is
            given); rows with 0 get no 3-D loss, only the ordinal one.

    Returns ``triplets``, ``part_weights (N, P)``, ``polarity (N, P)``, ``heatmaps (N, J, h, w)``,
    ``joint_weights (N, J)``, ``joints (N, J, 3)`` (zeros where unknown) and ``has_3d (N,)``."""
    kp = as_tensor(keypoints, "keypoints", shape=("N", "J", 2))
    n = kp.shape[0]
    vis = _visibility(visible, *kp.shape[:2], device=kp.device)
    if polarity is not None:
        enc = codec.encode(kp, vis, polarity=polarity)
    else:
        enc = codec.encode(kp, vis, depth=depth)
    if depth is not None:
        joints = normalise_joints(kp, depth, codec.input_size, root)
        known = torch.ones(n, device=kp.device) if has_3d is None else as_tensor(has_3d, "has_3d", shape=(n,))
        joints = joints * known[:, None, None]
    else:
        if has_3d is not None and bool((as_tensor(has_3d, "has_3d", shape=(n,)) > 0).any()):
            raise ValueError("has_3d: rows marked as having 3-D labels need depth")
        joints, known = torch.zeros(n, kp.shape[1], 3, device=kp.device), torch.zeros(n, device=kp.device)
    return {"triplets": enc["triplets"], "part_weights": enc["weights"], "polarity": enc["polarity"],
            "heatmaps": enc["heatmaps"], "joint_weights": enc["joint_weights"], "joints": joints, "has_3d": known}


def ordinal_depth_loss(depth: Any, polarity: Any, parts: Any = HEMLETS_PARTS, threshold: float = 100.0,
                       weights: Any = None) -> torch.Tensor:
    """The ranking loss for images labelled with depth order only (DESIGN.md §4).

    With ``Δ = (z_child − z_parent) / r`` (predicted depths in mm, in units of the
    threshold ``r`` so the loss does not depend on the depth scale): ``log(1 + exp(−q·Δ))``
    for a part of polarity ``q = ±1`` (a soft "the child is behind / in front"), ``Δ²`` for
    ``q = 0`` (level). Mean over the weighted parts; a scalar tensor. The ``±1`` term never
    saturates — a part already behind by more than ``r`` is still pushed apart — so weigh it
    against a loss that fixes the depth scale (``labcore.experiments.hemlets.config()['ordinal_weight']``).

    Args:
        depth: ``(N, J)`` predicted depths, mm (root-relative is fine: only differences count).
        polarity: ``(N, P)`` in {−1, 0, +1}; weights: ``(N, P)`` (default all 1).
    """
    z = as_tensor(depth, "depth", shape=("N", "J"), dtype=None)
    q = as_tensor(polarity, "polarity", shape=(z.shape[0], None), dtype=torch.long).to(z.device)
    prt = _parts(parts, z.shape[1])
    if q.shape[1] != len(prt):
        raise ValueError(f"polarity: expected {len(prt)} parts, got {q.shape[1]}")
    r = check_number(threshold, "threshold", low=0.0, low_inclusive=False)
    w = torch.ones(q.shape, dtype=z.dtype, device=z.device) if weights is None else \
        as_tensor(weights, "weights", shape=tuple(q.shape)).to(z.device, z.dtype)
    idx = torch.tensor(prt, device=z.device)
    delta = (z[:, idx[:, 1]] - z[:, idx[:, 0]]) / r
    qf = q.to(z.dtype)
    per_part = torch.where(q != 0, F.softplus(-qf * delta), delta * delta)
    return (per_part * w).sum() / w.sum().clamp_min(1.0)


def hemlets_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], *,
                 triplet_weight: float = 1.0, heatmap_weight: float = 1.0, joint_weight: float = 1.0,
                 ordinal_weight: float = 1.0, parts: Any = HEMLETS_PARTS, depth_threshold: float = 100.0
                 ) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss and its parts (as ``fit``'s ``(loss, logs)``).

    * ``triplet`` — ½·MSE on the triplets, part weights repeated over the three maps;
    * ``heatmap`` — ½·MSE on the 2-D heatmaps (``JointsMSELoss``);
    * ``joints`` — L1 on the normalised 3-D joints of the samples with ``has_3d``;
    * ``ordinal`` — :func:`ordinal_depth_loss` on the predicted depths of the samples
      without 3-D (the weakly labelled images).

    A weight of 0 turns a part off: ``triplet_weight=0, heatmap_weight=0`` is integral
    regression alone, the baseline HEMlets is compared with."""
    n, p = targets["part_weights"].shape
    logs: dict[str, float] = {}
    total = outputs["joints"].new_zeros(())
    if triplet_weight:
        trip = joints_mse_loss(outputs["triplets"].flatten(1, 2), targets["triplets"].flatten(1, 2),
                               targets["part_weights"].repeat_interleave(3, dim=1))
        total = total + triplet_weight * trip
        logs["triplet"] = float(trip.detach())
    if heatmap_weight:
        hm = joints_mse_loss(outputs["heatmaps"], targets["heatmaps"], targets["joint_weights"])
        total = total + heatmap_weight * hm
        logs["heatmap"] = float(hm.detach())
    has_3d = targets["has_3d"].to(outputs["joints"].dtype)
    if joint_weight and bool(has_3d.any()):
        w = (targets["joint_weights"] * has_3d[:, None]).unsqueeze(-1)
        l1 = ((outputs["joints"] - targets["joints"]).abs() * w).sum() / (3 * w.sum()).clamp_min(1.0)
        total = total + joint_weight * l1
        logs["joints"] = float(l1.detach())
    weak = has_3d < 0.5
    if ordinal_weight and bool(weak.any()):
        depth_mm = outputs["joints"][weak][..., 2] * DEPTH_RANGE_MM
        ordl = ordinal_depth_loss(depth_mm, targets["polarity"][weak], parts, depth_threshold,
                                  targets["part_weights"][weak])
        total = total + ordinal_weight * ordl
        logs["ordinal"] = float(ordl.detach())
    return total, logs


# ----------------------------------------------------------------- 6. test time and metrics


def hemlets_flip_test(model: nn.Module, images: torch.Tensor, skeleton: Any = J18) -> torch.Tensor:
    """Normalised 3-D joints averaged over the image and its mirror (``metric_3d.py``):
    the mirrored prediction's joints are swapped left/right and ``x`` maps back as the
    pixel ``u' = W − 1 − u``, i.e. ``x' = −x − 1/W`` in normalised units. ``(N, J, 3)``."""
    out = model(images)["joints"]
    flipped = model(torch.flip(images, dims=[-1]))["joints"]
    perm = flip_permutation(skeleton, flipped.shape[1]).to(flipped.device)
    flipped = flipped[:, perm].clone()
    flipped[..., 0] = -flipped[..., 0] - 1.0 / images.shape[-1]
    return 0.5 * (out + flipped)


def to_camera(joints: Any, input_size: Any, K: Any, root_depth: Any, depth_range: float = DEPTH_RANGE_MM
              ) -> torch.Tensor:
    """Normalised joints ``(N, J, 3)`` → camera-frame mm ``(N, J, 3)``, given each crop's
    camera ``K (N, 3, 3)`` (crop pixels) and the root's depth ``root_depth (N,)`` mm (the
    evaluation takes the ground truth's, as root-relative protocols do; the official code
    searches it from bone lengths instead)."""
    kp, rel = denormalise_joints(joints, input_size, depth_range)
    z = as_tensor(root_depth, "root_depth", shape=(kp.shape[0],)).to(rel)[:, None] + rel
    return backproject(kp, z, K)


def evaluate_3d(pred: Any, gt: Any, parts: Any = HEMLETS_PARTS, threshold: float = 100.0,
                joints: int = EVAL_JOINTS, p2_direction: str = "pred_to_gt") -> dict[str, float]:
    """HEMlets' metrics on camera-frame joints ``(N, J, 3)`` mm, over the first ``joints``:

    * ``P1`` — MPJPE after aligning both skeletons at the pelvis (joint 0), mm;
    * ``P2`` — MPJPE after a similarity (Procrustes) alignment of the prediction onto the
      ground truth (``'pred_to_gt'``, the usual protocol #2). The official ``metric_3d.py``
      moves the ground truth onto the prediction (``'gt_to_pred'``); with the free scale
      that rewards a collapsed prediction — an untrained network that puts every joint at
      the centre scores P2 ≈ 0, because the ground truth is shrunk onto it — so labcore
      scores the other way and keeps the official one an argument away;
    * ``order`` — the fraction of parts whose predicted depth order (at ``threshold`` mm)
      equals the ground truth's, %.
    """
    dims: dict[str, int] = {}
    p = as_tensor(pred, "pred", shape=("N", "J", 3), dims=dims)
    g = as_tensor(gt, "gt", shape=("N", "J", 3), dims=dims)
    k = check_int(joints, "joints", low=2, high=p.shape[1])
    prt = _parts(parts, p.shape[1])
    order = (part_polarity(p[..., 2], prt, threshold) == part_polarity(g[..., 2], prt, threshold)).float().mean()
    # Procrustes on float64 skeletons centred at their means: alignment ignores translation,
    # and centring keeps a small spread far from the (uncentred) magnitude at 4 m.
    pc, gc = p[:, :k].double(), g[:, :k].double()
    pc, gc = pc - pc.mean(1, keepdim=True), gc - gc.mean(1, keepdim=True)
    p2 = gc.norm(dim=-1).mean(-1)  # a prediction collapsed to a point: scale 0, every joint at the centroid
    spread = pc.pow(2).sum((-2, -1)) > 0
    if p2_direction == "gt_to_pred":
        p2 = torch.zeros_like(p2)  # the ground truth shrunk onto the point: the official metric's blind spot
    if bool(spread.any()):
        p2[spread] = pa_mpjpe(pc[spread], gc[spread], reduction="none", direction=p2_direction).mean(-1)
    return {
        "P1": pel_mpjpe(p[:, :k], g[:, :k], root=0),
        "P2": float(p2.mean()),
        "order": 100.0 * float(order),
    }

