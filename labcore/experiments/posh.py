"""HEMlets PoSh in miniature: a shallow module on top of HEMlets regresses SMPL pose and
shape (notebook 06, ``labcore reproduce posh``).

The paper (TPAMI 2021; METHODS.md §4) appends "a shallow yet effective network module" to
HEMlets; its design, losses and numbers were not found, so the regressor is labcore's
(:mod:`labcore.methods.posh`) and the questions asked here are the ones the design raises:

* **how much does the 3-D pose estimate cost?** the regressor trained and tested on the
  ground-truth 3-D joints (the ceiling) against the same regressor on the joints a trained
  :class:`~labcore.methods.hemlets.HEMletsNet` predicts (with its pooled features);
* **does iterative error feedback help?** 3 steps (HMR) against 1;
* **6-D or axis-angle rotations?** the same regressor with either output;

each regressor (:data:`REGRESSORS`) on each input (:data:`INPUTS`), same data and seeds.

Data: the lab domain of :mod:`labcore.experiments.hemlets` (the same crops, cached; their
SMPL parameters in the camera frame give the rotation, shape, joint and vertex targets).
Per seed, one HEMlets network is trained on the training crops; its predictions on those
crops (flip test, root depth from the ground truth as in the HEMlets evaluation) train the
regressors, and its predictions on the test crops score them. Scored by MPJPE and
PA-MPJPE of the SMPL body's J18 joints, PVE, and the mean joint-rotation error; ``input``
is the MPJPE of the 3-D joints the regressor was given.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import smplx
import torch

from labcore.body import PartialBody, load_body_model
from labcore.data.datasets import TensorFields
from labcore.experiments import hemlets as hx
from labcore.experiments.table import Table, aggregate, mean_std
from labcore.experiments.topdown import predict, train
from labcore.methods import hemlets as hm
from labcore.methods import posh as ps
from labcore.metrics import pel_mpjpe
from labcore.runtime import Profile, seed_all
from labcore.runtime import profile as get_profile
from labcore.train import History

__all__ = ["INPUTS", "REGRESSORS", "VARIANTS", "config", "PoshSet", "load_data", "hemlets_inputs", "build_regressor", "train_regressor",
           "predict_smpl", "evaluate", "run", "change_table", "summaries"]

#: input → (source of the regressor's 3-D joints, pooled HEMlets features given too)
INPUTS = {"GT joints": ("gt", False), "HEMlets": ("hemlets", True)}
#: regressor → (error-feedback iterations, rotation representation)
REGRESSORS = {"6-D, IEF ×3": (3, "6d"), "6-D, one shot": (1, "6d"), "axis-angle, IEF ×3": (3, "axis_angle")}
#: variant name → (input, regressor): every input with every regressor
VARIANTS = {f"{i} · {r}": (i, r) for i in INPUTS for r in REGRESSORS}


def config(profile: Profile | str | None = None) -> dict[str, Any]:
    """HEMlets' lab crops and network (:func:`labcore.experiments.hemlets.config`) plus the
    regressor's sizes: ``ci`` a smoke run inside notebook 06, ``cpu`` the reproduction
    (≤ 10 min on 2 cores, 3 seeds)."""
    p = get_profile(profile)
    return hx.config(p) | {
        "regressor_steps": p.pick(ci=200, cpu=1500, gpu=6000),
        "regressor_batch_size": p.pick(ci=16, cpu=32),
        "regressor_lr": 1e-3,
        "hidden": p.pick(ci=64, cpu=256),
        # Training skins the joints' vertices and a random 10 % of the rest
        # (:class:`~labcore.body.PartialBody`): the vertex L1 over the sample is an unbiased
        # estimate of the full one, and a step costs 6 ms instead of 45 ms at batch 32.
        "loss_vertices": 689,
        # labcore's choice (the paper's weights were not found): the joint and vertex L1
        # in metres, the rotation-matrix MSE and a light betas MSE (the vertices already
        # carry the shape; the betas term only keeps it from drifting along directions the
        # vertices barely see).
        "loss_weights": {"joint_weight": 1.0, "vertex_weight": 1.0, "rotation_weight": 1.0, "beta_weight": 0.1},
    }


@dataclass
class PoshSet(TensorFields):
    """What the regressor trains and is scored on (a map-style dataset).

    ``joints (N, 18, 3)`` the input 3-D joints, metres, root-relative; ``features (N, C)``
    pooled HEMlets features (``C = 0`` for ground-truth inputs); the targets of
    :func:`labcore.methods.posh.posh_targets`: ``rotmats (N, 24, 3, 3)``, ``betas (N, 10)``,
    ``gt_joints (N, 18, 3)`` and ``vertices (N, 6890, 3)``, metres, root-relative."""

    joints: torch.Tensor
    features: torch.Tensor
    rotmats: torch.Tensor
    betas: torch.Tensor
    gt_joints: torch.Tensor
    vertices: torch.Tensor


    def with_inputs(self, joints: torch.Tensor, features: torch.Tensor) -> PoshSet:
        """The same targets with other input joints and features."""
        return PoshSet(joints, features, self.rotmats, self.betas, self.gt_joints, self.vertices)

    def targets(self) -> dict[str, torch.Tensor]:
        return {"rotmats": self.rotmats, "betas": self.betas, "joints": self.gt_joints, "vertices": self.vertices}


def _targets(body: smplx.SMPL, arrays: dict[str, np.ndarray], chunk: int = 256) -> PoshSet:
    parts = []
    for i in range(0, len(arrays["betas"]), chunk):
        sl = slice(i, i + chunk)
        parts.append(ps.posh_targets(body, arrays["global_orient"][sl], arrays["body_pose"][sl], arrays["betas"][sl]))
    t = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    n = t["joints"].shape[0]
    return PoshSet(t["joints"], torch.zeros(n, 0), t["rotmats"], t["betas"], t["joints"], t["vertices"])


def load_data(cfg: dict[str, Any], progress: bool = True) -> dict[str, Any]:
    """``crops`` (:class:`~labcore.experiments.hemlets.J18Crops` ``train``/``test``, for
    HEMlets) and ``gt`` (:class:`PoshSet` ``train``/``test`` with the ground-truth joints
    as inputs), and the ``body`` model they were made with."""
    body = load_body_model("auto")
    s = cfg["data_seed"]
    out: dict[str, Any] = {"body": body, "crops": {}, "gt": {}}
    for split, n, seed in (("train", cfg["n_lab_train"], s), ("test", cfg["n_test"], s + 1)):
        out["crops"][split] = hx.j18_crops(n, seed, "lab", cfg, progress)
        out["gt"][split] = _targets(body, hx.person_crops(n, seed, "lab", cfg, progress))
        gap = (out["gt"][split].gt_joints * 1000.0 - (out["crops"][split].joints3d
                                                       - out["crops"][split].joints3d[:, :1])).abs().max()
        if float(gap) > 1.0:  # mm: the crops' labels and the body model must be the same body
            raise RuntimeError(f"the {split} crops' 3-D joints differ from their SMPL body by {float(gap):.1f} mm")
    return out


def hemlets_inputs(model: hm.HEMletsNet, crops: hx.J18Crops, cfg: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """A trained HEMlets network's camera-frame joints (root-relative, metres; flip test as
    ``cfg``) and its pooled features ``(N, C)`` (the unflipped image) on ``crops``."""
    joints = hx.predict_joints(model, crops, cfg)
    features = predict(lambda x: model(x, features=True)["features"], model, crops.images)
    return (joints - joints[:, :1]) / 1000.0, features


def build_regressor(variant: str, cfg: dict[str, Any], train_set: PoshSet) -> ps.PoshRegressor:
    """The regressor of a variant, starting from the training set's mean rotations and betas."""
    iterations, rotation = REGRESSORS[VARIANTS[variant][1]]
    reg = ps.PoshRegressor(num_joints=18, feature_channels=train_set.features.shape[1], hidden=cfg["hidden"],
                           iterations=iterations, rotation=rotation)
    return reg.set_mean(ps.mean_rotation(train_set.rotmats), train_set.betas.mean(0))


def train_regressor(variant: str, body: smplx.SMPL, train_set: PoshSet, cfg: dict[str, Any], seed: int = 0,
                    progress: bool = True) -> tuple[ps.PoshRegressor, History]:
    """Train a variant's regressor on ``train_set`` (its inputs already chosen)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {list(VARIANTS)}, got {variant!r}")
    seed_all(seed)
    reg = build_regressor(variant, cfg, train_set)
    n_verts = body.v_template.shape[0]
    sample = torch.randperm(n_verts, generator=torch.Generator().manual_seed(seed))[: cfg["loss_vertices"]]
    partial = PartialBody(body, sample.sort().values)

    def loss_fn(m: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        out = m(batch["joints"], batch["features"] if m.feature_channels else None)
        targets = {"rotmats": batch["rotmats"], "betas": batch["betas"], "joints": batch["gt_joints"],
                   "vertices": batch["vertices"]}
        return ps.posh_loss(partial, out, targets, **cfg["loss_weights"])

    # CPU on purpose: the loss skins a PartialBody whose tensors live on the body model's
    # (CPU) device, and a 2-layer MLP on 32 bodies gains nothing from a GPU.
    history = train(reg, loss_fn, train_set, steps=cfg["regressor_steps"], batch_size=cfg["regressor_batch_size"],
                    lr=cfg["regressor_lr"], seed=seed, device="cpu", desc=f"{variant} seed {seed}", progress=progress)
    return reg, history


def predict_smpl(reg: ps.PoshRegressor, body: smplx.SMPL, data: PoshSet, chunk: int = 256) -> dict[str, torch.Tensor]:
    """The regressor's ``rotmats``, ``betas`` and its body's root-relative ``joints`` and
    ``vertices`` (metres) on ``data``."""
    reg.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(data), chunk):
            feats = data.features[i : i + chunk] if reg.feature_channels else None
            o = reg(data.joints[i : i + chunk], feats)
            outs.append({"rotmats": o["rotmats"], "betas": o["betas"]} | ps.smpl_output(body, o["rotmats"], o["betas"]))
    return {k: torch.cat([o[k] for o in outs]) for k in outs[0]}


def evaluate(reg: ps.PoshRegressor, body: smplx.SMPL, data: PoshSet) -> dict[str, float]:
    """:func:`labcore.methods.posh.evaluate_smpl` of the regressor's bodies, and ``input``:
    the MPJPE (mm) of the joints it was given."""
    pred = predict_smpl(reg, body, data)
    k = ps.EVAL_JOINTS
    return ps.evaluate_smpl(pred, data.targets()) | {
        "input": 1000.0 * pel_mpjpe(data.joints[:, :k], data.gt_joints[:, :k], root=0)}


def run(profile: Profile | str | None = None, seeds: Sequence[int] | None = None, progress: bool = True) -> Table:
    """For every seed: train HEMlets, then every regressor variant; score on the test crops.
    The mean ± std table (``meta['per_seed']`` keeps every row)."""
    p = get_profile(profile)
    cfg = config(p)
    seeds = tuple(p.seeds if seeds is None else seeds)
    t0 = time.perf_counter()
    data = load_data(cfg, progress)
    body = data["body"]
    per_seed = []
    for seed in seeds:
        t1 = time.perf_counter()
        net, _ = hx.train_variant("HEMlets", {"lab_train": data["crops"]["train"]}, cfg, seed, progress)
        hemlets_s = time.perf_counter() - t1
        sets = {"gt": data["gt"]}
        sets["hemlets"] = {split: data["gt"][split].with_inputs(*hemlets_inputs(net, data["crops"][split], cfg))
                           for split in ("train", "test")}
        for variant, (inputs, regressor) in VARIANTS.items():
            source = INPUTS[inputs][0]
            t1 = time.perf_counter()
            reg, _ = train_regressor(variant, body, sets[source]["train"], cfg, seed, progress)
            seconds = time.perf_counter() - t1
            per_seed.append({"inputs": inputs, "regressor": regressor, "seed": seed,
                             "train_s": seconds, "hemlets_s": hemlets_s, **evaluate(reg, body, sets[source]["test"])})
    keys = ("input", "MPJPE", "PA-MPJPE", "PVE", "rot_deg", "train_s")
    rows = aggregate(per_seed, keys, by=("inputs", "regressor"))
    seconds = time.perf_counter() - t0
    return Table(
        "HEMlets PoSh: SMPL from 3-D joints (lab crops; mm, degrees)",
        ["inputs", "regressor", *keys, "seeds"],
        rows,
        labels={"inputs": "3-D joints in", "input": "their MPJPE (mm)", "MPJPE": "MPJPE (mm)", "PA-MPJPE": "PA-MPJPE (mm)", "PVE": "PVE (mm)",
                "rot_deg": "rotation error (°)", "train_s": "train (s)"},
        digits={"input": 1, "MPJPE": 1, "PA-MPJPE": 1, "PVE": 1, "rot_deg": 1, "train_s": 0},
        notes=[f"profile {p.name}; {cfg['n_lab_train']} train / {cfg['n_test']} test lab crops, {cfg['size']}×"
               f"{cfg['size']}; HEMlets {cfg['steps']} steps × batch {cfg['batch_size']} per seed; regressor "
               f"hidden {cfg['hidden']}, {cfg['regressor_steps']} steps × batch {cfg['regressor_batch_size']}, loss on "
               f"{cfg['loss_vertices']} sampled vertices; "
               f"body {getattr(body, 'labcore_kind', 'smpl')}; seeds {list(seeds)}, mean ± std; "
               f"{seconds:.0f} s in all"],
        meta={"config": cfg, "seeds": list(seeds), "per_seed": per_seed, "seconds": seconds},
    )


def change_table(result: Table) -> Table:
    """Paired by seed: each regressor's MPJPE change against the 6-D, IEF ×3 regressor on
    the same input, and the body's MPJPE change against the joints it was given (negative:
    the body is more accurate than its input)."""
    per_seed = result.meta.get("per_seed", [])
    reference = next(iter(REGRESSORS))
    rows = []
    for inputs in INPUTS:
        base = {r["seed"]: r for r in per_seed if r["inputs"] == inputs and r["regressor"] == reference}
        for regressor in REGRESSORS:
            mine = [r for r in per_seed if r["inputs"] == inputs and r["regressor"] == regressor and r["seed"] in base]
            if not mine:
                continue
            vs_ref = [r["MPJPE"] - base[r["seed"]]["MPJPE"] for r in mine]
            vs_input = [r["MPJPE"] - r["input"] for r in mine]
            rows.append({"inputs": inputs, "regressor": regressor, **mean_std("vs_reference", vs_ref),
                         **mean_std("vs_input", vs_input)})
    return Table(
        "HEMlets PoSh: MPJPE changes, paired by seed (mm; negative is better)",
        ["inputs", "regressor", "vs_reference", "vs_input"],
        rows,
        labels={"inputs": "3-D joints in", "vs_reference": f"Δ vs {reference}", "vs_input": "body − its input"},
        digits={"vs_reference": 1, "vs_input": 1},
        notes=["the paper's PoSh numbers were not found (METHODS.md §4): no published value to set beside these"],
    )


def summaries(result: Table) -> list[Table]:
    """Derived tables ``labcore reproduce posh`` prints and saves: :func:`change_table`."""
    return [change_table(result)]
