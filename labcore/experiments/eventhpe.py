"""EventHPE in miniature: unsupervised optical flow from events, then pose and shape tracked
from events + flow, with and without the flow coherence loss (notebook 07,
``labcore reproduce eventhpe``).

The paper (Zou et al., ICCV 2021; METHODS.md §5) tracks SMPL pose and shape from a stream
of events and the first gray frame; its headline numbers and its with/without flow
coherence ablation could not be read (NOT FOUND), so the claim tested is the mechanism:

* **stage 1** — :class:`~labcore.methods.eventhpe.FlowNet` trained without flow labels (the
  photometric + smoothness loss on the gray frames) from EventHPE's 8 binary event frames,
  scored by the end-point error against the renderer's true flow on the person's pixels,
  beside the zero-flow baseline;
* **stage 2** — :class:`~labcore.methods.eventhpe.ShapeNet` trained on clips of ``T`` steps
  (events + the trained FlowNet's flow per step, the true first-frame pose as the official
  training does), with the official loss weights, **with** the flow coherence loss (0.1) and
  **without** it (0), same data and seeds; scored by MPJPE, PEL-MPJPE, PA-MPJPE and PVE over
  the 24 SMPL joints of every step of the test clips.

Data: :class:`~labcore.data.datasets.MotionClips` (a person walking or changing pose in front
of a static camera), events simulated from the gray frames
(:func:`labcore.data.events.simulate_events`), one step = one frame interval.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import smplx
import torch

from labcore.body import PartialBody, load_body_model, pose_body_matrices
from labcore.data import events as ev
from labcore.data.datasets import MotionClips, TensorFields, TensorRows
from labcore.experiments.table import Table, aggregate, mean_std
from labcore.experiments.topdown import predict, train
from labcore.geometry import project_points
from labcore.methods import eventhpe as eh
from labcore.methods.posh import smpl_rotmats
from labcore.metrics import epe
from labcore.runtime import Profile, seed_all
from labcore.runtime import profile as get_profile
from labcore.train import History

__all__ = ["VARIANTS", "config", "Clips", "load_data", "FlowPairs", "flow_pairs", "train_flownet", "predict_flow",
           "evaluate_flow", "train_shapenet", "predict_tracking", "evaluate_tracking", "run", "change_table",
           "summaries"]

#: variant → the flow coherence loss's weight (official 0.1)
VARIANTS = {"without flow coherence": 0.0, "with flow coherence": 0.1}


def config(profile: Profile | str | None = None) -> dict[str, Any]:
    """Sizes per profile: ``ci`` a smoke run inside notebook 07 (< 60 s with the rest of it),
    ``cpu`` the reproduction (≤ 10 min on 2 cores, 3 seeds)."""
    p = get_profile(profile)
    return {
        "profile": p.name,
        "size": 64,
        # 3 px of motion per frame on the person at 64 px (1.5 px at 15 fps, where the
        # unsupervised FlowNet did not beat the zero flow: 1.6 vs 1.5 px EPE, one seed)
        "fps": 7.5,
        "steps_per_clip": 8,  # T, as the official training
        "n_train": p.pick(ci=6, cpu=96, gpu=800),
        "n_test": p.pick(ci=3, cpu=24, gpu=200),
        "pos_thres": 0.2,
        "neg_thres": 0.2,
        "event_channels": 8,
        # the flow heads start near zero flow (see FlowNet's head_init_scale)
        "flownet": p.pick(ci=dict(base_channels=8, num_layers=4, head_init_scale=0.01),
                          cpu=dict(base_channels=16, num_layers=4, head_init_scale=0.01)),
        "flownet_steps": p.pick(ci=15, cpu=1200, gpu=6000),
        # the official photometric loss runs on 0–255 gray values; on [0, 1] the smoothness
        # term (flow differences in pixels) outweighs it ~100× and the flow stays at zero
        "gray_scale": 255.0,
        "flownet_batch_size": 16,
        "flownet_lr": 1e-3,
        "smoothness_weight": 0.5,
        "shapenet_widths": p.pick(ci=(8, 16, 32), cpu=(16, 32, 64, 128)),
        "shapenet_steps": p.pick(ci=10, cpu=1000, gpu=4000),
        "shapenet_batch_size": p.pick(ci=2, cpu=8),
        "shapenet_lr": 1e-3,
        # the flow term skins the joints' vertices and this many sampled vertices per body
        # (labcore.body.PartialBody; the official code uses all 6890)
        "loss_vertices": 689,
        "flow_threshold": eh.flow_threshold(64),
        "data_seed": 20,
    }


@dataclass
class Clips(TensorFields):
    """Motion clips ready for both stages (``N`` clips, ``T`` steps, ``H×W`` pixels):

    ``events (N, T, 8, H, W)`` EventHPE's binary frames of each step; ``gray (N, T+1, 1, H,
    W)``; ``flow (N, T, 2, H, W)`` the true flow of each step (pixels) and ``flow_valid (N, T,
    H, W)`` (the person's pixels); ``rotmats (N, T+1, 24, 3, 3)``, ``betas (N, 10)``, ``transl
    (N, T+1, 3)`` metres; ``joints3d (N, T+1, 24, 3)`` metres (24 kinematic joints, camera
    frame); ``K (N, 3, 3)``; ``n_events (N,)``."""

    events: torch.Tensor
    gray: torch.Tensor
    flow: torch.Tensor
    flow_valid: torch.Tensor
    rotmats: torch.Tensor
    betas: torch.Tensor
    transl: torch.Tensor
    joints3d: torch.Tensor
    K: torch.Tensor
    n_events: torch.Tensor



def clip_events(gray: np.ndarray, times: np.ndarray, cfg: dict[str, Any], seed: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
    """Events of one clip's gray frames ``(T+1, H, W)`` and their binary frames per step
    ``(T, 8, H, W)`` (each frame interval split into 8 equal partitions)."""
    events = ev.simulate_events(gray, times, cfg["pos_thres"], cfg["neg_thres"], seed=seed)
    t_us = np.rint(np.asarray(times, dtype=np.float64) * 1e6).astype(np.int64)
    w, h = gray.shape[2], gray.shape[1]
    frames = []
    for k in range(len(times) - 1):
        lo, hi = t_us[k], t_us[k + 1]
        sel = events[(events["t"] >= lo) & (events["t"] <= hi)]
        frames.append(ev.to_binary_frames(sel, (w, h), cfg["event_channels"], t_start_us=lo, t_end_us=hi))
    return events, np.stack(frames)


def _clips(n: int, seed: int, cfg: dict[str, Any], progress: bool) -> Clips:
    T = cfg["steps_per_clip"]
    mc = MotionClips(n, frames=T + 1, fps=cfg["fps"], seed=seed, size=cfg["size"], progress=progress)
    a = mc.arrays
    binary, counts = [], []
    for i in range(n):
        events, frames = clip_events(a["gray"][i], a["times"][i], cfg, seed=i)
        binary.append(frames)
        counts.append(len(events))
    rot = smpl_rotmats(torch.from_numpy(a["global_orient"]).reshape(-1, 3), torch.from_numpy(a["body_pose"]).reshape(-1, 69))
    return Clips(
        events=torch.from_numpy(np.stack(binary)).float(),
        gray=torch.from_numpy(a["gray"]).float()[:, :, None],
        flow=torch.from_numpy(a["flow"]).permute(0, 1, 4, 2, 3).float(),
        flow_valid=torch.from_numpy(a["flow_valid"]).float(),
        rotmats=rot.reshape(n, T + 1, 24, 3, 3),
        betas=torch.from_numpy(a["betas"][:, 0]).float(),
        transl=torch.from_numpy(a["transl"]).float(),
        joints3d=torch.from_numpy(a["joints3d_smpl24"]).float() / 1000.0,
        K=torch.from_numpy(a["K"]).float(),
        n_events=torch.tensor(counts),
    )


def load_data(cfg: dict[str, Any], progress: bool = True) -> dict[str, Clips]:
    """``train`` and ``test`` clips (rendered and cached by :class:`MotionClips`)."""
    s = cfg["data_seed"]
    return {"train": _clips(cfg["n_train"], s, cfg, progress), "test": _clips(cfg["n_test"], s + 1, cfg, progress)}


# ----------------------------------------------------------------------------- stage 1: FlowNet


@dataclass
class FlowPairs(TensorFields):
    """Every step of every clip as a FlowNet sample: ``events (M, 8, H, W)``, ``frame1``,
    ``frame2 (M, 1, H, W)``, true ``flow (M, 2, H, W)`` and ``valid (M, H, W)``."""

    events: torch.Tensor
    frame1: torch.Tensor
    frame2: torch.Tensor
    flow: torch.Tensor
    valid: torch.Tensor



def flow_pairs(clips: Clips) -> FlowPairs:
    """The clips' steps flattened into FlowNet samples."""
    return FlowPairs(clips.events.flatten(0, 1), clips.gray[:, :-1].flatten(0, 1), clips.gray[:, 1:].flatten(0, 1),
                     clips.flow.flatten(0, 1), clips.flow_valid.flatten(0, 1))


def train_flownet(pairs: FlowPairs, cfg: dict[str, Any], seed: int = 0, progress: bool = True
                  ) -> tuple[eh.FlowNet, History]:
    """FlowNet trained without flow labels: photometric + smoothness on the gray frames."""
    seed_all(seed)
    net = eh.FlowNet(cfg["event_channels"], **cfg["flownet"])

    def loss_fn(m: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        k = cfg["gray_scale"]
        return eh.flownet_loss(k * batch["frame1"], k * batch["frame2"], m(batch["events"]), cfg["smoothness_weight"])

    history = train(net, loss_fn, pairs, steps=cfg["flownet_steps"], batch_size=cfg["flownet_batch_size"],
                    lr=cfg["flownet_lr"], seed=seed, desc=f"FlowNet seed {seed}", progress=progress)
    return net, history


def predict_flow(net: eh.FlowNet, events: torch.Tensor) -> torch.Tensor:
    """The finest flow ``(M, 2, H, W)`` for binary frames ``(M, 8, H, W)`` (eval mode)."""
    return predict(lambda x: net(x)[-1], net, events)


def evaluate_flow(pred: torch.Tensor, pairs: FlowPairs) -> dict[str, float]:
    """End-point error (px) on the person's pixels and on all pixels, for the prediction and
    for the zero flow."""
    zero = torch.zeros_like(pairs.flow)
    body = pairs.valid
    return {"EPE_person": epe(pred, pairs.flow, mask=body), "EPE_all": epe(pred, pairs.flow),
            "zero_person": epe(zero, pairs.flow, mask=body), "zero_all": epe(zero, pairs.flow)}


# ----------------------------------------------------------------------------- stage 2: ShapeNet


def _init(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {"rotmats": batch["rotmats"][:, 0], "betas": batch["betas"], "transl": batch["transl"][:, 0]}


def _targets(batch: dict[str, torch.Tensor], size: int) -> dict[str, torch.Tensor]:
    joints = batch["joints3d"][:, 1:]
    uv = project_points(joints, batch["K"][:, None]) / size
    return {"rotmats": batch["rotmats"][:, 1:], "trans": batch["transl"][:, 1:], "joints3d": joints,
            "joints2d": uv.clamp(0.0, 1.0)}


def _with_flow(clips: Clips, flow: torch.Tensor) -> dict[str, torch.Tensor]:
    return {f.name: getattr(clips, f.name) for f in fields(clips)} | {"pred_flow": flow}


def build_shapenet(body: smplx.SMPL | PartialBody, clips: Clips, cfg: dict[str, Any]) -> eh.ShapeNet:
    """ShapeNet for the clips (each clip's camera is passed with it; the first is the default)."""
    return eh.ShapeNet(body, clips.K[0], (cfg["size"], cfg["size"]), cfg["event_channels"],
                       widths=cfg["shapenet_widths"])


def train_shapenet(variant: str, body: smplx.SMPL, clips: Clips, flow: torch.Tensor, cfg: dict[str, Any],
                   seed: int = 0, progress: bool = True) -> tuple[eh.ShapeNet, History]:
    """ShapeNet with the official loss weights and the variant's flow coherence weight.

    ``flow (N, T, 2, H, W)``: the trained FlowNet's flow for every step of ``clips``."""
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {list(VARIANTS)}, got {variant!r}")
    seed_all(seed)
    sample = torch.randperm(body.v_template.shape[0], generator=torch.Generator().manual_seed(seed))
    partial = PartialBody(body, sample[: cfg["loss_vertices"]].sort().values)
    net = build_shapenet(partial, clips, cfg)
    weights = {"flow": VARIANTS[variant]}
    size = cfg["size"]

    def loss_fn(m: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        out = m(batch["events"], _init(batch), batch["gray"][:, 0], batch["pred_flow"], K=batch["K"])
        return eh.shapenet_loss(out, _targets(batch, size), K=batch["K"], flow=batch["pred_flow"],
                                threshold=cfg["flow_threshold"], weights=weights)

    # CPU on purpose: ShapeNet skins a PartialBody whose tensors live on the body model's (CPU)
    # device; FlowNet, which has no body, trains on lc.device().
    history = train(net, loss_fn, TensorRows(_with_flow(clips, flow)), steps=cfg["shapenet_steps"],
                    batch_size=cfg["shapenet_batch_size"], lr=cfg["shapenet_lr"], seed=seed, device="cpu",
                    desc=f"ShapeNet {variant} seed {seed}", progress=progress)
    return net, history


def predict_tracking(net: eh.ShapeNet, body: smplx.SMPL, clips: Clips, flow: torch.Tensor
                     ) -> dict[str, torch.Tensor]:
    """The tracked ``rotmats``, ``trans``, ``joints3d (N, T, 24, 3)`` and full-mesh
    ``vertices (N, T, 6890, 3)`` (metres) on ``clips`` (eval mode, the true first frame)."""
    net.eval()
    with torch.no_grad():
        data = _with_flow(clips, flow)
        out = net(data["events"], _init(data), data["gray"][:, 0], flow, K=clips.K)
        n, t = out["rotmats"].shape[:2]
        full = pose_body_matrices(body, out["rotmats"].flatten(0, 1), clips.betas.repeat_interleave(t, dim=0))
        verts = full.vertices.reshape(n, t, -1, 3) + out["trans"][:, :, None]
    return {"rotmats": out["rotmats"], "trans": out["trans"], "joints3d": out["joints3d"], "vertices": verts}


def evaluate_tracking(pred: dict[str, torch.Tensor], body: smplx.SMPL, clips: Clips) -> dict[str, float]:
    """:func:`labcore.methods.eventhpe.evaluate_tracking` over every step of every clip."""
    n, t = pred["rotmats"].shape[:2]
    with torch.no_grad():
        gt = pose_body_matrices(body, clips.rotmats[:, 1:].flatten(0, 1), clips.betas.repeat_interleave(t, dim=0))
        gt_verts = gt.vertices + clips.transl[:, 1:].flatten(0, 1)[:, None]
    return eh.evaluate_tracking(pred["joints3d"].flatten(0, 1), clips.joints3d[:, 1:].flatten(0, 1),
                                pred["vertices"].flatten(0, 1), gt_verts)


def run(profile: Profile | str | None = None, seeds: Sequence[int] | None = None, progress: bool = True) -> Table:
    """Per seed: FlowNet, then ShapeNet with and without the flow coherence loss; the mean ±
    std table (``meta['per_seed']`` keeps every row; ``meta['flow']`` FlowNet's EPE)."""
    p = get_profile(profile)
    cfg = config(p)
    seeds = tuple(p.seeds if seeds is None else seeds)
    t0 = time.perf_counter()
    data = load_data(cfg, progress)
    body = load_body_model("auto")
    train_pairs, test_pairs = flow_pairs(data["train"]), flow_pairs(data["test"])
    per_seed, flow_rows = [], []
    T = cfg["steps_per_clip"]
    for seed in seeds:
        t1 = time.perf_counter()
        flownet, _ = train_flownet(train_pairs, cfg, seed, progress)
        flow_s = time.perf_counter() - t1
        flows = {split: predict_flow(flownet, flow_pairs(data[split]).events).unflatten(0, (len(data[split]), T))
                 for split in ("train", "test")}
        flow_rows.append({"seed": seed, "train_s": flow_s,
                          **evaluate_flow(flows["test"].flatten(0, 1), test_pairs)})
        for variant in VARIANTS:
            t1 = time.perf_counter()
            net, _ = train_shapenet(variant, body, data["train"], flows["train"], cfg, seed, progress)
            seconds = time.perf_counter() - t1
            pred = predict_tracking(net, body, data["test"], flows["test"])
            per_seed.append({"variant": variant, "seed": seed, "train_s": seconds,
                             **evaluate_tracking(pred, body, data["test"])})
    keys = ("MPJPE", "PEL-MPJPE", "PA-MPJPE", "PVE", "PCK", "train_s")
    rows = aggregate(per_seed, keys, by=("variant",))
    flow_summary = aggregate(flow_rows, ("EPE_person", "zero_person", "EPE_all", "zero_all", "train_s"), by=())
    seconds = time.perf_counter() - t0
    f = flow_summary[0]
    return Table(
        "EventHPE: ShapeNet with vs without the flow coherence loss (test clips; mm, %)",
        ["variant", *keys, "seeds"],
        rows,
        labels={"MPJPE": "MPJPE (mm)", "PEL-MPJPE": "PEL-MPJPE (mm)", "PA-MPJPE": "PA-MPJPE (mm)", "PVE": "PVE (mm)",
                "PCK": "PCK@100 mm (%)", "train_s": "train (s)"},
        digits={"MPJPE": 1, "PEL-MPJPE": 1, "PA-MPJPE": 1, "PVE": 1, "PCK": 1, "train_s": 0},
        notes=[f"FlowNet (unsupervised) end-point error on the person's pixels {f['EPE_person']:.2f} px "
               f"(zero flow {f['zero_person']:.2f} px); on all pixels {f['EPE_all']:.2f} px (zero flow "
               f"{f['zero_all']:.2f} px)",
               f"profile {p.name}; {cfg['n_train']} train / {cfg['n_test']} test clips of {T} steps, "
               f"{cfg['size']}×{cfg['size']} at {cfg['fps']:g} fps; FlowNet {cfg['flownet_steps']} steps × "
               f"{cfg['flownet_batch_size']}; ShapeNet {cfg['shapenet_steps']} steps × {cfg['shapenet_batch_size']} "
               f"clips; flow threshold {cfg['flow_threshold']:g} px; seeds {list(seeds)}, mean ± std; "
               f"{seconds:.0f} s in all"],
        meta={"config": cfg, "seeds": list(seeds), "per_seed": per_seed, "flow": flow_rows, "seconds": seconds},
    )


def change_table(result: Table) -> Table:
    """Paired by seed: each metric with the flow coherence loss minus without it (negative
    is better for the errors), and FlowNet's EPE against the zero flow's."""
    per_seed = result.meta.get("per_seed", [])
    without, with_ = list(VARIANTS)
    base = {r["seed"]: r for r in per_seed if r["variant"] == without}
    pairs = [(r, base[r["seed"]]) for r in per_seed if r["variant"] == with_ and r["seed"] in base]
    rows = []
    for key in ("MPJPE", "PEL-MPJPE", "PA-MPJPE", "PVE", "PCK"):
        d = [a[key] - b[key] for a, b in pairs]
        if d:
            better = sum((x > 0) if key == "PCK" else (x < 0) for x in d)
            rows.append({"metric": key, **mean_std("change", d), "better_seeds": int(better)})
    flow = result.meta.get("flow", [])
    if flow:
        d = [f["EPE_person"] - f["zero_person"] for f in flow]
        rows.append({"metric": "FlowNet EPE − zero-flow EPE (person, px)", **mean_std("change", d),
                     "better_seeds": int(sum(x < 0 for x in d))})
    return Table(
        "EventHPE: with minus without the flow coherence loss, paired by seed (mm; PCK in points)",
        ["metric", "change", "better_seeds"],
        rows,
        labels={"change": "change", "better_seeds": "seeds better"},
        digits={"change": 2, "better_seeds": 0},
        notes=["the paper's with/without flow coherence numbers could not be read (METHODS.md §5)"],
    )


def summaries(result: Table) -> list[Table]:
    """Derived tables ``labcore reproduce eventhpe`` prints and saves: :func:`change_table`."""
    return [change_table(result)]
