"""EventHPE — 3-D human pose and shape from an event camera.

Zou, Chen, Mo, Zhou, Li, Cheng, Zhou — *EventHPE: Event-based 3D Human Pose and Shape
Estimation*, ICCV 2021 (arXiv 2108.06819); official code ``JimmyZou/EventHPE`` (METHODS.md
§5). Two stages, read top to bottom:

1. **FlowNet** (``flow_net/model.py::OpticalFlowNet``) — an EV-FlowNet-style U-Net on
   EventHPE's 8 binary event frames: 4 encoder blocks (Conv3×3/s2 → BN → ReLU → Conv3×3 →
   BN → ReLU, widths ``base·2^i``), a residual block, 4 decoder blocks (concat the skip and,
   from the second on, the previous flow → ConvTranspose3×3/s2 → BN → ReLU → Conv3×3 → BN →
   ReLU) each ending in a 1×1 conv to 2 channels and ``tanh``, scaled by ``image size / dt``.
   It returns a 4-level pyramid, coarse to fine. Trained **unsupervised** on the gray frames
   that bracket the events (:func:`flownet_loss`): the photometric Charbonnier loss
   (α = 0.45, ε = 1e-3) between frame 1 and frame 2 warped backwards by the flow, at every
   level, plus 0.5 × the Charbonnier of the flow's differences in 4 directions.
2. **ShapeNet** (the class ``EventTrackNet``) — per step a CNN on 8 event + 2 flow channels
   → a GRU whose initial state is a feature of the first gray frame, with a residual
   ``y = GRU(x) + x`` → linear layers to 24 6-D rotation **deltas** and a translation delta.
   Rotations accumulate ``R_t = ΔR_t R_{t−1}`` from the first frame's pose, translations
   ``T_t = T_0 + Σ ΔT``; the shape is the first frame's. The body is SMPL through ``smplx``
   (:func:`labcore.body.load_body_model`). Losses with the official weights
   (:data:`OFFICIAL_WEIGHTS`): MSE on translation, 10 × the geodesic rotation error, MSE on
   the 24 joints, 10 × MSE on the normalised 2-D joints, and 0.1 × the **flow coherence loss**
   (:func:`flow_coherence_loss`): ``1 − cos`` between each vertex's image motion and the
   optical flow sampled where it was, only where the flow is longer than a threshold.

Metrics (:func:`evaluate_tracking`): MPJPE (camera frame, no alignment), PEL-MPJPE (both
skeletons centred at the mid-hip, SMPL joints 1 and 2), PA-MPJPE, PVE (the predicted mesh
moved by the joints' similarity transform), PCK at 100 mm — over the 24 SMPL joints, mm;
flow EPE is :func:`labcore.metrics.epe`.

Where labcore differs, and why:

* **Sampling convention.** The official ``warp`` and ``compute_flow_loss`` normalise pixel
  ``p`` as ``2p/W − 1`` for ``grid_sample`` with torch's default ``align_corners=False``,
  which samples at ``p − 0.5`` (half a pixel off; the code predates torch 1.3, whose default
  was the other one). ``align='exact'`` (default) samples at ``p``; ``align='official'``
  replicates the shift.
* **Sizes.** Images of 64 px instead of 256, a small strided CNN instead of ResNet-50 (any
  encoder can be passed, e.g. labcore's ResNet with ``in_channels=10``), the first
  frame's feature from a small CNN trained with the rest instead of a pretrained HMR;
  the flow threshold scales with the image (4 px at 256 → 1 px at 64).
* **Initial deltas.** The decoders' weights start at 1/100 of PyTorch's default, the
  rotation bias at the identity's 6-D numbers and the translation bias at zero, so an
  untrained network predicts (almost) no motion; the official layers start at PyTorch's
  default, i.e. a random rotation and a drift of decimetres per step, which can carry the
  body behind the camera (the architecture is the same).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import smplx
import torch
import torch.nn.functional as F
from torch import nn

from labcore.body import PartialBody, pose_body_matrices
from labcore.checks import as_tensor, check_choice, check_int, check_number
from labcore.geometry import matrix_to_rot6d, project_points, rot6d_to_matrix
from labcore.metrics import mpjpe, pa_mpjpe, pck, pel_mpjpe, pve

__all__ = [
    "ALIGNS",
    "OFFICIAL_WEIGHTS",
    "charbonnier",
    "warp",
    "photometric_loss",
    "smoothness_loss",
    "flownet_loss",
    "FlowNet",
    "flow_threshold",
    "sample_flow",
    "flow_coherence_loss",
    "accumulate_rotations",
    "ShapeNet",
    "shapenet_loss",
    "evaluate_tracking",
]

#: grid_sample conventions: 'exact' samples pixel p at p; 'official' at p − 0.5 (see the module notes).
ALIGNS = ("exact", "official")
#: ``train.py``'s loss weights (l.377-382): translation, geodesic θ, 3-D joints, 2-D joints,
#: flow coherence, translation deltas.
OFFICIAL_WEIGHTS = {"trans": 1.0, "theta": 10.0, "joints3d": 1.0, "joints2d": 10.0, "flow": 0.1,
                    "delta_trans": 0.0}
#: the 24 SMPL joints' mid-hip root (left hip 1, right hip 2) for PEL-MPJPE, as the official code
MID_HIP = (1, 2)


# ----------------------------------------------------------------------------- 1. FlowNet and its loss


def charbonnier(x: torch.Tensor, alpha: float = 0.45, eps: float = 1e-3) -> torch.Tensor:
    """The generalised Charbonnier penalty, averaged: ``mean((x² + ε²)^α)`` (EventHPE's α = 0.45,
    ε = 1e-3). A robust L1-like loss: ≈ |x|^{2α} away from 0, smooth at 0."""
    alpha = check_number(alpha, "alpha", low=0.0, low_inclusive=False)
    eps = check_number(eps, "eps", low=0.0)
    return ((x * x + eps * eps) ** alpha).mean()


def _grid(points: torch.Tensor, width: int, height: int, align: str) -> tuple[torch.Tensor, bool]:
    """Pixel coordinates ``(..., 2)`` → grid_sample's normalised coordinates and its
    ``align_corners`` flag for a convention of :data:`ALIGNS`."""
    if align == "exact":
        scale = torch.tensor([max(width - 1, 1), max(height - 1, 1)], dtype=points.dtype, device=points.device)
        return 2.0 * points / scale - 1.0, True
    scale = torch.tensor([width, height], dtype=points.dtype, device=points.device)
    return 2.0 * points / scale - 1.0, False


def warp(image: torch.Tensor, flow: torch.Tensor, align: str = "exact") -> torch.Tensor:
    """Backward warping: ``out(u, v) = image(u + flow_x(u, v), v + flow_y(u, v))`` (bilinear;
    zeros outside). With ``image`` = frame 2 and the forward flow from frame 1 to 2, the
    result should equal frame 1.

    Args:
        image: ``(N, C, H, W)``; flow: ``(N, 2, H, W)`` pixels (x then y).
        align: :data:`ALIGNS` (``'official'`` reproduces the official half-pixel shift).
    """
    check_choice(align, "align", ALIGNS)
    dims: dict[str, int] = {}
    img = as_tensor(image, "image", shape=("N", None, "H", "W"), dims=dims, dtype=None)
    fl = as_tensor(flow, "flow", shape=("N", 2, "H", "W"), dims=dims, dtype=None).to(img.dtype)
    n, _, h, w = img.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=img.dtype, device=img.device),
                            torch.arange(w, dtype=img.dtype, device=img.device), indexing="ij")
    points = torch.stack([xs, ys], dim=-1)[None] + fl.permute(0, 2, 3, 1)
    grid, corners = _grid(points, w, h, align)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=corners)


def _levels(flows: Any) -> list[torch.Tensor]:
    if isinstance(flows, torch.Tensor):
        flows = [flows]
    if not isinstance(flows, Sequence) or not flows:
        raise TypeError("flows: expected a flow (N, 2, h, w) or a non-empty list of them (a pyramid)")
    return [as_tensor(f, f"flows[{i}]", shape=(None, 2, None, None), dtype=None) for i, f in enumerate(flows)]


def photometric_loss(frame1: torch.Tensor, frame2: torch.Tensor, flows: Any, align: str = "exact",
                     alpha: float = 0.45, eps: float = 1e-3) -> torch.Tensor:
    """``compute_photometric_loss``: at every pyramid level, both frames resized (bilinear) to
    the level's size, ``charbonnier(frame1 − warp(frame2, flow))``, averaged over the levels.

    Args:
        frame1, frame2: ``(N, 1, H, W)`` gray frames (the official code uses raw 0–255 values;
            labcore's are in [0, 1], which scales the Charbonnier's argument, not its minimum).
        flows: one flow ``(N, 2, h, w)`` or a list (FlowNet's pyramid), in pixels of its level.
    """
    dims: dict[str, int] = {}
    f1 = as_tensor(frame1, "frame1", shape=("N", "C", "H", "W"), dims=dims, dtype=None)
    f2 = as_tensor(frame2, "frame2", shape=("N", "C", "H", "W"), dims=dims, dtype=None)
    losses = []
    for flow in _levels(flows):
        size = tuple(flow.shape[-2:])
        a = f1 if tuple(f1.shape[-2:]) == size else F.interpolate(f1, size=size, mode="bilinear", align_corners=False)
        b = f2 if tuple(f2.shape[-2:]) == size else F.interpolate(f2, size=size, mode="bilinear", align_corners=False)
        losses.append(charbonnier(a - warp(b, flow, align), alpha, eps))
    return torch.stack(losses).mean()


def smoothness_loss(flows: Any, alpha: float = 0.45, eps: float = 1e-3) -> torch.Tensor:
    """``compute_smoothness_loss``: per level, the Charbonnier of the flow's differences to
    its right, lower, lower-right and lower-left neighbours, summed and divided by 4;
    averaged over the levels."""
    losses = []
    for f in _levels(flows):
        dx = f[..., :, 1:] - f[..., :, :-1]
        dy = f[..., 1:, :] - f[..., :-1, :]
        d1 = f[..., 1:, 1:] - f[..., :-1, :-1]
        d2 = f[..., 1:, :-1] - f[..., :-1, 1:]
        losses.append(sum(charbonnier(d, alpha, eps) for d in (dx, dy, d1, d2)) / 4.0)
    return torch.stack(losses).mean()


def flownet_loss(frame1: torch.Tensor, frame2: torch.Tensor, flows: Any, smoothness_weight: float = 0.5,
                 align: str = "exact") -> tuple[torch.Tensor, dict[str, float]]:
    """FlowNet's unsupervised loss: photometric + ``smoothness_weight`` (official 0.5) ×
    smoothness. Returns ``(total, {'photometric', 'smoothness'})``."""
    w = check_number(smoothness_weight, "smoothness_weight", low=0.0)
    photo = photometric_loss(frame1, frame2, flows, align)
    smooth = smoothness_loss(flows)
    return photo + w * smooth, {"photometric": float(photo.detach()), "smoothness": float(smooth.detach())}


def _encoder_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


def _decoder_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.ConvTranspose2d(channels, channels, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(channels), nn.ReLU(),
                                   nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(channels), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x) + x


class FlowNet(nn.Module):
    """EventHPE's ``OpticalFlowNet(in_channels, 2, num_layers, base_channels)``.

    ``forward(events (N, C, H, W), dt=1.0)`` → list of ``num_layers`` flows ``(N, 2, h, w)``
    from ``H/2^(L−1)`` to ``H`` (coarse to fine), each ``tanh(·) · H / dt`` pixels of its own
    level (the official scaling: the same range at every level). ``H`` and ``W`` must be
    multiples of ``2^num_layers``; ``dt`` (a number or ``(N,)``) is the frame gap in units of
    the training's base gap. Official: ``OpticalFlowNet(8, 2, 4, 32)`` at 256 px.

    ``head_init_scale`` multiplies the flow heads' initial weights (1 = PyTorch's default, as
    the official code): with the ``H/dt`` scaling the default start is a flow of several
    pixels, more than a small clip's motion; 0.01 starts near zero flow.
    """

    def __init__(self, in_channels: int = 8, base_channels: int = 32, num_layers: int = 4,
                 head_init_scale: float = 1.0) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels", low=1)
        base = check_int(base_channels, "base_channels", low=2)
        self.num_layers = check_int(num_layers, "num_layers", low=1)
        widths = [base * 2**i for i in range(self.num_layers)]
        self.encoders = nn.ModuleList(_encoder_block(c_in, c_out) for c_in, c_out in zip([in_channels] + widths, widths))
        self.residual = _Residual(widths[-1])
        if base % 2:
            raise ValueError(f"base_channels: expected an even number (the last decoder has base/2), got {base}")
        self.decoders, self.flows = nn.ModuleList(), nn.ModuleList()
        for i in range(self.num_layers):
            # input: the previous output (or the residual block's) + the encoder skip of that
            # size, each widths[-1]/2^i wide, + the previous level's flow; output half as wide
            c_in = 2 * widths[-1] // 2**i + (2 if i else 0)
            c_out = widths[-1] // 2 ** (i + 1)
            self.decoders.append(_decoder_block(c_in, c_out))
            self.flows.append(nn.Sequential(nn.Conv2d(c_out, 2, 1, bias=False), nn.Tanh()))
        scale = check_number(head_init_scale, "head_init_scale", low=0.0)
        with torch.no_grad():
            for head in self.flows:
                head[0].weight.mul_(scale)

    def forward(self, events: torch.Tensor, dt: float | torch.Tensor = 1.0) -> list[torch.Tensor]:
        dims: dict[str, int] = {}
        x = as_tensor(events, "events", shape=("N", self.in_channels, "H", "W"), dims=dims, dtype=None)
        multiple = 2**self.num_layers
        if dims["H"] % multiple or dims["W"] % multiple:
            raise ValueError(f"events: H and W must be multiples of {multiple}, got {dims['H']}×{dims['W']}")
        if isinstance(dt, torch.Tensor):
            scale = (dims["H"] / as_tensor(dt, "dt", shape=(dims["N"],)).to(x)).view(-1, 1, 1, 1)
        else:
            scale = dims["H"] / check_number(dt, "dt", low=0.0, low_inclusive=False)
        skips = []
        for enc in self.encoders:
            x = enc(x)
            skips.append(x)
        x = self.residual(x)
        pyramid = []
        for i, (dec, head) in enumerate(zip(self.decoders, self.flows)):
            x = dec(torch.cat([x, skips[-1 - i]], dim=1))
            flow = head(x)
            pyramid.append(flow * scale)
            x = torch.cat([x, flow], dim=1)  # the unscaled tanh output, as the official code
        return pyramid


# ----------------------------------------------------------------------------- 2. flow coherence


def flow_threshold(image_width: int) -> float:
    """The flow-magnitude threshold of the coherence loss, scaled with the image: the official
    4 px at 256 px (``compute_flow_loss``), ``4 · W / 256`` here."""
    return 4.0 * check_int(image_width, "image_width", low=1) / 256.0


def sample_flow(flow: torch.Tensor, points: torch.Tensor, align: str = "exact") -> torch.Tensor:
    """Optical flow read (bilinearly) at image points: ``flow (B, T, 2, H, W)`` pixels and
    ``points (B, T, V, 2)`` pixels → ``(B, T, V, 2)``; zero outside the image. (The official
    code packs the 6890 points into an H×W grid to call ``grid_sample``; this passes them as
    a 1×V grid, which samples the same values.)"""
    check_choice(align, "align", ALIGNS)
    dims: dict[str, int] = {}
    fl = as_tensor(flow, "flow", shape=("B", "T", 2, "H", "W"), dims=dims, dtype=None)
    pts = as_tensor(points, "points", shape=("B", "T", "V", 2), dims=dims, dtype=None).to(fl.dtype)
    b, t, _, h, w = fl.shape
    grid, corners = _grid(pts.reshape(b * t, 1, -1, 2), w, h, align)
    out = F.grid_sample(fl.reshape(b * t, 2, h, w), grid, mode="bilinear", padding_mode="zeros",
                        align_corners=corners)
    return out[:, :, 0].permute(0, 2, 1).reshape(b, t, -1, 2)


def flow_coherence_loss(shape_flow: torch.Tensor, optical_flow: torch.Tensor, threshold: float) -> torch.Tensor:
    """EventHPE's flow coherence loss (``compute_flow_loss``), direction only:

    ``mean over B, T, V of 1[‖f_o‖ > threshold] · (1 − cos(f_v, f_o))``

    with ``f_v = shape_flow (B, T, V, 2)`` each vertex's image motion from step t to t+1 and
    ``f_o = optical_flow (B, T, V, 2)`` the optical flow where the vertex was at t. The mean
    runs over every vertex, masked ones included (they count as 0). ``cos`` is
    ``F.cosine_similarity`` (ε = 1e-8), so a still vertex (f_v = 0) under a flow costs 1."""
    dims: dict[str, int] = {}
    fv = as_tensor(shape_flow, "shape_flow", shape=("B", "T", "V", 2), dims=dims, dtype=None)
    fo = as_tensor(optical_flow, "optical_flow", shape=("B", "T", "V", 2), dims=dims, dtype=None).to(fv.dtype)
    thr = check_number(threshold, "threshold", low=0.0)
    valid = (torch.linalg.vector_norm(fo, dim=-1) > thr).to(fv.dtype)
    return (valid * (1.0 - F.cosine_similarity(fv, fo, dim=-1))).mean()


# ----------------------------------------------------------------------------- 3. ShapeNet


def _per_sample(K: Any, batch: int) -> torch.Tensor:
    """Intrinsics ``(3, 3)`` or ``(B, 3, 3)`` → a shape that broadcasts over ``(B, T, V, 3)`` points."""
    k = as_tensor(K, "K", shape=(..., 3, 3), dtype=None)
    if k.dim() == 2:
        return k
    as_tensor(k, "K", shape=(batch, 3, 3), dtype=None)
    return k[:, None]


def accumulate_rotations(initial: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """``delta_rotmat_to_rotmat``: ``R_t = ΔR_t · R_{t−1}`` with ``R_0 = initial``.

    Args:
        initial: ``(B, J, 3, 3)``; deltas: ``(B, T, J, 3, 3)``.

    Returns:
        ``(B, T, J, 3, 3)``: the rotations after steps 1 … T.
    """
    dims: dict[str, int] = {}
    R = as_tensor(initial, "initial", shape=("B", "J", 3, 3), dims=dims, dtype=None)
    D = as_tensor(deltas, "deltas", shape=("B", "T", "J", 3, 3), dims=dims, dtype=None)
    out = []
    for t in range(D.shape[1]):
        R = D[:, t] @ R
        out.append(R)
    return torch.stack(out, dim=1)


def _pooled_cnn(in_channels: int, widths: Sequence[int]) -> nn.Sequential:
    """A small strided CNN ending in global average pooling → ``(N, widths[-1])``."""
    layers: list[nn.Module] = []
    c = in_channels
    for w in widths:
        layers += [nn.Conv2d(c, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
        c = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


class ShapeNet(nn.Module):
    """EventHPE's ``EventTrackNet`` at a small size.

    Args:
        body: the body model (``smplx.SMPL`` from :func:`labcore.body.load_body_model`, or a
            :class:`~labcore.body.PartialBody` for training on a vertex sample).
        K: ``(3, 3)`` camera intrinsics of the event images (pixels).
        image_size: ``(W, H)`` for the normalised 2-D joints.
        event_channels: 8 (EventHPE's binary frames); use_flow: add the 2 flow channels.
        encoder: a module ``(N, event_channels + 2·use_flow, H, W) → (N, F)``; default a small
            strided CNN (widths ``widths``; officially ResNet-50 with a 10-channel conv1, F = 2048).
        frame_encoder: ``(N, 1, H, W) → (N, F)`` for the first gray frame (officially a
            pretrained HMR's 2048-d feature); default the same small CNN on 1 channel.

    ``forward(events (B, T, C, H, W), init, gray0 (B, 1, H, W), flow (B, T, 2, H, W) | None,
    K (B, 3, 3) | None)`` (``K``: per-clip cameras, default the one given at construction)
    where ``init`` holds the first frame's ``rotmats (B, 24, 3, 3)``, ``betas (B, 10)`` and
    ``transl (B, 3)`` metres → dict:

    * ``rotmats (B, T, 24, 3, 3)``, ``trans (B, T, 3)``, ``delta_trans (B, T, 3)``;
    * ``joints3d (B, T, 24, 3)`` the 24 kinematic joints + translation (metres; the
      translation enters detached, as the official code: it learns only from its own loss);
    * ``vertices (B, T+1, V, 3)`` with the first frame's mesh first (the flow loss needs it);
    * ``joints2d (B, T, 24, 2)`` projected with ``K`` and divided by ``(W, H)``.
    """

    def __init__(self, body: smplx.SMPL | PartialBody, K: Any, image_size: Any, event_channels: int = 8,
                 use_flow: bool = True, widths: Sequence[int] = (16, 32, 64, 128),
                 encoder: nn.Module | None = None, frame_encoder: nn.Module | None = None,
                 feature_dim: int | None = None) -> None:
        super().__init__()
        self.body = body
        self.register_buffer("K", as_tensor(K, "K", shape=(3, 3)))
        w, h = (int(v) for v in (image_size if isinstance(image_size, Sequence) else (image_size, image_size)))
        self.image_size = (check_int(w, "image_size[0]", low=1), check_int(h, "image_size[1]", low=1))
        self.event_channels = check_int(event_channels, "event_channels", low=1)
        self.use_flow = bool(use_flow)
        in_ch = self.event_channels + (2 if self.use_flow else 0)
        feat = check_int(feature_dim if feature_dim is not None else widths[-1], "feature_dim", low=1)
        self.encoder = encoder if encoder is not None else _pooled_cnn(in_ch, widths)
        self.frame_encoder = frame_encoder if frame_encoder is not None else _pooled_cnn(1, widths)
        self.gru = nn.GRU(feat, feat, num_layers=1, batch_first=True)
        self.decpose = nn.Linear(feat, 24 * 6)
        self.dectrans = nn.Linear(feat, 3)
        with torch.no_grad():  # labcore: start at "no motion" (see the module notes)
            self.decpose.weight.mul_(0.01)
            self.decpose.bias.copy_(matrix_to_rot6d(torch.eye(3)).repeat(24))
            self.dectrans.weight.mul_(0.01)
            self.dectrans.bias.zero_()

    def forward(self, events: torch.Tensor, init: dict[str, torch.Tensor], gray0: torch.Tensor,
                flow: torch.Tensor | None = None, K: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        dims: dict[str, int] = {}
        ev = as_tensor(events, "events", shape=("B", "T", self.event_channels, "H", "W"), dims=dims, dtype=None)
        b, t, _, h, w = ev.shape
        x = ev
        if self.use_flow:
            if flow is None:
                raise ValueError("flow: this ShapeNet takes the optical flow (use_flow=True); got None")
            x = torch.cat([ev, as_tensor(flow, "flow", shape=("B", "T", 2, "H", "W"), dims=dims, dtype=None)], dim=2)
        elif flow is not None:
            raise ValueError("flow: this ShapeNet was built with use_flow=False")
        R0 = as_tensor(init["rotmats"], "init['rotmats']", shape=("B", 24, 3, 3), dims=dims, dtype=None)
        betas = as_tensor(init["betas"], "init['betas']", shape=("B", None), dims=dims, dtype=None)
        T0 = as_tensor(init["transl"], "init['transl']", shape=("B", 3), dims=dims, dtype=None)
        g0 = as_tensor(gray0, "gray0", shape=("B", 1, "H", "W"), dims=dims, dtype=None)
        feats = self.encoder(x.reshape(b * t, *x.shape[2:])).reshape(b, t, -1)
        h0 = self.frame_encoder(g0)[None]
        y, _ = self.gru(feats, h0.contiguous())
        y = y + feats
        delta_pose = self.decpose(y)
        delta_trans = self.dectrans(y)
        trans = T0[:, None] + torch.cumsum(delta_trans, dim=1)
        rotmats = accumulate_rotations(R0, rot6d_to_matrix(delta_pose.reshape(b, t, 24, 6)))
        state = pose_body_matrices(self.body, rotmats.reshape(b * t, 24, 3, 3), betas.repeat_interleave(t, dim=0))
        first = pose_body_matrices(self.body, R0, betas)
        tr = trans.detach()
        verts = state.vertices.reshape(b, t, -1, 3) + tr[:, :, None]
        joints = state.joints.reshape(b, t, 24, 3) + tr[:, :, None]
        verts = torch.cat([(first.vertices + T0[:, None])[:, None], verts], dim=1)
        scale = torch.tensor(self.image_size, dtype=joints.dtype, device=joints.device)
        joints2d = project_points(joints, _per_sample(self.K if K is None else K, b).to(joints)) / scale
        return {"rotmats": rotmats, "trans": trans, "delta_trans": delta_trans, "joints3d": joints,
                "vertices": verts, "joints2d": joints2d}


def shapenet_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], *, K: Any = None,
                  flow: torch.Tensor | None = None, threshold: float | None = None,
                  weights: dict[str, float] | None = None, align: str = "exact") -> tuple[torch.Tensor, dict[str, float]]:
    """``compute_losses`` with the official weights (:data:`OFFICIAL_WEIGHTS`; override any):

    * ``trans`` — MSE between ``trans (B, T, 3)`` and ``targets['trans']``;
    * ``theta`` — the mean geodesic angle (rad) between ``rotmats`` and
      ``targets['rotmats'] (B, T, 24, 3, 3)``, the cosine clamped to ±(1 − 1e-6);
    * ``joints3d`` — MSE on ``(B, T, 24, 3)`` metres;
    * ``joints2d`` — MSE between ``clamp(joints2d, 0, 1)`` and ``targets['joints2d']``;
    * ``flow`` — :func:`flow_coherence_loss` between the vertices' projected motion and
      ``flow (B, T, 2, H, W)`` sampled at the vertices' projections at step t (detached),
      with ``K`` (``(3, 3)`` or per clip ``(B, 3, 3)``) and ``threshold``
      (:func:`flow_threshold`); needs ``vertices (B, T+1, V, 3)``;
    * ``delta_trans`` — mean of the squared translation deltas (weight 0 officially).

    A term with weight 0 is not computed. Returns ``(total, {term: weighted value})``.
    """
    w = dict(OFFICIAL_WEIGHTS)
    for k, v in (weights or {}).items():
        if k not in w:
            raise ValueError(f"weights: unknown term {k!r}; known: {sorted(w)}")
        w[k] = check_number(v, f"weights[{k!r}]", low=0.0)
    terms: dict[str, torch.Tensor] = {}
    if w["trans"]:
        terms["trans"] = F.mse_loss(outputs["trans"], targets["trans"].to(outputs["trans"]))
    if w["theta"]:
        R, G = outputs["rotmats"], targets["rotmats"].to(outputs["rotmats"])
        cos = 0.5 * ((R * G).sum((-2, -1)) - 1.0)
        terms["theta"] = torch.acos(cos.clamp(-1 + 1e-6, 1 - 1e-6)).mean()
    if w["joints3d"]:
        terms["joints3d"] = F.mse_loss(outputs["joints3d"], targets["joints3d"].to(outputs["joints3d"]))
    if w["joints2d"]:
        terms["joints2d"] = F.mse_loss(outputs["joints2d"].clamp(0.0, 1.0), targets["joints2d"].to(outputs["joints2d"]))
    if w["flow"]:
        if flow is None or K is None or threshold is None:
            raise ValueError("shapenet_loss: the flow term needs flow=, K= and threshold= (or weights={'flow': 0})")
        verts = outputs["vertices"]
        uv = project_points(verts, _per_sample(K, verts.shape[0]).to(verts))
        # a vertex behind the camera projects to inf: give it no motion and a place outside
        # the image (flow 0 there, so the mask drops it)
        seen = torch.isfinite(uv).all(-1, keepdim=True)
        uv = torch.where(seen, uv, torch.full_like(uv, -1e4))
        shape_flow = (uv[:, 1:] - uv[:, :-1]) * (seen[:, 1:] & seen[:, :-1])
        optical = sample_flow(flow, uv[:, :-1].detach(), align)
        terms["flow"] = flow_coherence_loss(shape_flow, optical, threshold)
    if w["delta_trans"]:
        terms["delta_trans"] = outputs["delta_trans"].pow(2).mean()
    total = sum(w[k] * v for k, v in terms.items())
    return total, {k: float(w[k] * v.detach()) for k, v in terms.items()}


# ----------------------------------------------------------------------------- 4. metrics


@torch.no_grad()
def evaluate_tracking(pred_joints: Any, gt_joints: Any, pred_vertices: Any = None, gt_vertices: Any = None
                      ) -> dict[str, float]:
    """EventHPE's metrics (``test.py``) over the 24 SMPL joints, inputs in metres
    ``(N, 24, 3)`` (flatten B and T first), results in mm:

    * ``MPJPE`` — no alignment (camera frame, translation included);
    * ``PEL-MPJPE`` — both skeletons re-centred at the mid-hip (joints 1 and 2);
    * ``PA-MPJPE`` — the prediction aligned onto the ground truth by a similarity transform;
    * ``PCK`` — % of joints within 100 mm after the mid-hip alignment;
    * ``PVE`` — with vertices ``(N, V, 3)``: the joints' similarity transform applied to the
      predicted mesh, then the mean vertex distance.
    """
    dims: dict[str, int] = {}
    p = as_tensor(pred_joints, "pred_joints", shape=("N", 24, 3), dims=dims, dtype=None).double() * 1000.0
    g = as_tensor(gt_joints, "gt_joints", shape=("N", 24, 3), dims=dims, dtype=None).double() * 1000.0
    out = {"MPJPE": mpjpe(p, g), "PEL-MPJPE": pel_mpjpe(p, g, root=MID_HIP), "PA-MPJPE": pa_mpjpe(p, g)}
    root = lambda j: j[:, list(MID_HIP)].mean(1, keepdim=True)  # noqa: E731
    out["PCK"] = 100.0 * pck(p - root(p), g - root(g), 100.0)
    if pred_vertices is not None and gt_vertices is not None:
        pv_ = as_tensor(pred_vertices, "pred_vertices", shape=("N", "V", 3), dims=dims, dtype=None).double() * 1000.0
        gv = as_tensor(gt_vertices, "gt_vertices", shape=("N", "V", 3), dims=dims, dtype=None).double() * 1000.0
        out["PVE"] = pve(pv_, gv, align_with=(p, g))
    return {k: float(v) for k, v in out.items()}
