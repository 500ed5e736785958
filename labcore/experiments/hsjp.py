"""HSJP's key claim in miniature: jigsaw-pretrained backbones fine-tune to better pose
networks than training from scratch, and about as well as supervised pretraining
(notebook 04, ``labcore reproduce hsjp``).

The paper (Zhang et al., arXiv 2012.07101; METHODS.md §6) pretrains SimpleBaseline and
HRNet backbones on heatmap-style jigsaw puzzles of COCO's person crops, fine-tunes them
on COCO keypoints, and reports results "much better than … trained from scratch, and
comparable to … ImageNet classification models" — the paper's numbers were not
readable here (METHODS.md: NOT FOUND), so the claim is the comparison itself.

Here, for each backbone (a SimpleBaseline-style ResNet and HRNet-lite) and seed:

* **unlabelled crops** — ``n_train`` :class:`~labcore.data.datasets.PersonCrops` used
  without their keypoints, as the paper uses COCO's person instances;
* **HSJP** — the backbone + an ``n²``-channel head trained on
  :class:`~labcore.methods.hsjp.JigsawTask` puzzles of those crops (3×3, random
  permutations, jitter, ``label='origin'``); puzzle accuracy on held-out crops is
  recorded (chance: 1/9 of the cells);
* **supervised** — the reference that plays ImageNet's role: the same backbone trained to
  classify the crops' pose family (7 classes; global average pooling + a linear layer) —
  supervised pretraining with labels other than keypoints;
* **fine-tuning** — from scratch, from HSJP, from supervised: a pose network
  (:func:`~labcore.methods.hsjp.pose_model_from`: every backbone tensor copied, a fresh
  keypoint head) trained on the keypoints of 5 %, 20 % and 100 % of the crops, with the
  same steps, recipe and seed for every start; scored on ``n_val`` other crops: mean
  error, PCK@0.1 of the crop width and COCO AP.

Pretraining gets as many steps as fine-tuning on all the labels; the fine-tuning budget
is the same for every fraction (a few labelled crops are seen many times over).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from labcore.data.datasets import PersonCrops
from labcore.data.poses import POSE_FAMILIES
from labcore.experiments.table import Table, aggregate
from labcore.experiments.topdown import (
    BACKBONES,
    CropSet,
    backbone_configs,
    evaluate_keypoints,
    predict,
    train,
)
from labcore.methods.heatmap import GaussianHeatmap, TopDownHeatmapNet, joints_mse_loss
from labcore.methods.hsjp import (
    JigsawTask,
    jigsaw_loss,
    jigsaw_model,
    pose_model_from,
    puzzle_accuracy,
)
from labcore.nn import build_backbone
from labcore.runtime import Profile, seed_all
from labcore.runtime import profile as get_profile
from labcore.skeletons import COCO17
from labcore.train import History

__all__ = ["INITS", "BACKBONE_NAMES", "config", "PretextData", "HSJPData", "load_data", "make_backbone",
           "FamilyClassifier", "jigsaw_task", "pretrain_jigsaw", "pretrain_supervised", "jigsaw_accuracy", "family_accuracy", "finetune", "run", "gain_table", "summaries"]

#: The three starting points of fine-tuning.
INITS = ("scratch", "HSJP", "supervised")
#: labcore backbone names of the paper's two backbones in miniature.
BACKBONE_NAMES = BACKBONES  # the top-down experiments' names (labcore.experiments.topdown)


def config(profile: Profile | str | None = None) -> dict[str, Any]:
    """The experiment's sizes for a profile: ``ci`` a smoke run inside notebook 04 (< 60 s
    with the rest of it), ``cpu`` the reproduction (≤ 10 min on 2 cores, 3 seeds)."""
    p = get_profile(profile)
    return {
        "profile": p.name,
        "size": 64,
        "n_train": p.pick(ci=160, cpu=1200, gpu=12000),
        "n_val": p.pick(ci=48, cpu=300, gpu=1000),
        "fractions": (0.05, 0.2, 1.0),
        "pretrain_steps": p.pick(ci=150, cpu=600, gpu=6000),
        "finetune_steps": p.pick(ci=40, cpu=150, gpu=3000),
        "batch_size": p.pick(ci=16, cpu=32),
        "lr": 2e-3,
        "backbones": p.pick(ci=("SimpleBaseline",), cpu=("SimpleBaseline", "HRNet")),
        "backbone_cfg": backbone_configs(p),
        "grid": 3,
        "gap": 2,
        "jigsaw_sigma": 1.0,
        "label": "origin",
        "permutations": 100,
        "sigma": 1.0,
        "pck_fraction": 0.1,
        "data_seed": 0,
        "val_seed": 1,
        "background": "mixed",
    }


@dataclass
class PretextData:
    """Person crops without keypoints (a map-style dataset for :func:`labcore.train.fit`):
    ``images (N, 3, H, W)`` in [0, 1] and ``family (N,)`` the pose-family index
    (:data:`~labcore.data.poses.POSE_FAMILIES`), the supervised reference's only label."""

    images: torch.Tensor
    family: torch.Tensor

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[i], "family": self.family[i]}


def _crops(n: int, seed: int, cfg: dict[str, Any], progress: bool) -> tuple[CropSet, torch.Tensor]:
    crops = PersonCrops(n, seed=seed, size=cfg["size"], skeleton="coco17", background=cfg["background"],
                        progress=progress)
    a = crops.arrays
    images = torch.from_numpy(a["image"]).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
    visibility = torch.from_numpy(a["visibility_coco17"].astype(np.int64))
    areas = torch.from_numpy((a["parts"] >= 0).reshape(n, -1).sum(1).astype(np.float32))
    data = CropSet(images, torch.from_numpy(a["keypoints_coco17"]).float(), (visibility > 0).float(), visibility,
                   areas)
    family = torch.tensor([POSE_FAMILIES.index(str(f)) for f in a["family"]])
    return data, family


@dataclass
class HSJPData:
    """The experiment's data: ``unlabelled`` — the training crops without keypoints, for
    pretraining; ``train`` — the same crops with keypoints, for fine-tuning (a fraction is
    taken with ``subset``); ``val`` — ``n_val`` crops of another seed for scoring, and
    ``val_unlabelled`` the same for the puzzle and pose-family accuracies."""

    unlabelled: PretextData
    train: CropSet
    val: CropSet
    val_unlabelled: PretextData


def load_data(cfg: dict[str, Any], progress: bool = True) -> HSJPData:
    """Render (or read from the cache) the crops of :class:`HSJPData`."""
    train_set, family = _crops(cfg["n_train"], cfg["data_seed"], cfg, progress)
    val_set, val_family = _crops(cfg["n_val"], cfg["val_seed"], cfg, progress)
    return HSJPData(PretextData(train_set.images, family), train_set, val_set, PretextData(val_set.images, val_family))


def make_backbone(name: str, cfg: dict[str, Any]) -> nn.Module:
    """The miniature of the paper's backbone ``name`` (``'SimpleBaseline'`` or ``'HRNet'``)."""
    if name not in BACKBONE_NAMES:
        raise ValueError(f"name: expected one of {list(BACKBONE_NAMES)}, got {name!r}")
    return build_backbone(BACKBONE_NAMES[name], **cfg["backbone_cfg"][name])


class FamilyClassifier(nn.Module):
    """The supervised reference: ``backbone`` → global average pooling → linear layer to
    ``classes`` logits. ``.backbone`` is what :func:`pose_model_from` transfers."""

    def __init__(self, backbone: nn.Module, classes: int = len(POSE_FAMILIES)) -> None:
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(backbone.out_channels, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.backbone(images).mean(dim=(-2, -1)))


def jigsaw_task(cfg: dict[str, Any]) -> JigsawTask:
    """The experiment's pretext task (grid, gap, σ, labelling and permutation set of ``cfg``)."""
    return JigsawTask((cfg["size"], cfg["size"]), n=cfg["grid"], gap=cfg["gap"], sigma=cfg["jigsaw_sigma"],
                      label=cfg["label"], permutations=cfg["permutations"])


def pretrain_jigsaw(backbone: str, data: PretextData, cfg: dict[str, Any], seed: int = 0,
                    progress: bool = True) -> tuple[nn.Module, History]:
    """The HSJP pretext: ``cfg['pretrain_steps']`` steps on fresh puzzles of ``data``."""
    seed_all(seed)
    model = jigsaw_model(make_backbone(backbone, cfg), cfg["grid"])
    task = jigsaw_task(cfg)
    gen = torch.Generator().manual_seed(seed)

    def loss_fn(m: nn.Module, batch: dict) -> torch.Tensor:
        puzzle = task.make(batch["image"], gen)
        return jigsaw_loss(m(puzzle["images"]), puzzle["labels"].to(batch["image"].device))

    history = train(model, loss_fn, data, steps=cfg["pretrain_steps"], batch_size=cfg["batch_size"], lr=cfg["lr"],
                    seed=seed, desc=f"HSJP {backbone} seed {seed}", progress=progress)
    return model, history


def jigsaw_accuracy(model: nn.Module, images: torch.Tensor, cfg: dict[str, Any], seed: int = 1234) -> dict[str, float]:
    """Puzzle-solving accuracy of a pretext model on ``images`` (one puzzle each, fixed
    seed): ``cells`` (chance 1/n²) and ``puzzles`` (all cells right)."""
    task = jigsaw_task(cfg)
    puzzle = task.make(images, torch.Generator().manual_seed(seed))
    heatmaps = predict(model, model, puzzle["images"])
    return puzzle_accuracy(task.decode(heatmaps), puzzle["perm"])


def pretrain_supervised(backbone: str, data: PretextData, cfg: dict[str, Any], seed: int = 0,
                        progress: bool = True) -> tuple[nn.Module, History]:
    """The reference: pose-family classification, cross-entropy, same steps as HSJP."""
    seed_all(seed)
    model = FamilyClassifier(make_backbone(backbone, cfg))

    def loss_fn(m: nn.Module, batch: dict) -> torch.Tensor:
        return nn.functional.cross_entropy(m(batch["image"]), batch["family"])

    history = train(model, loss_fn, data, steps=cfg["pretrain_steps"], batch_size=cfg["batch_size"], lr=cfg["lr"],
                    seed=seed, desc=f"supervised {backbone} seed {seed}", progress=progress)
    return model, history


def family_accuracy(model: nn.Module, data: PretextData) -> float:
    """The supervised reference's pose-family accuracy on ``data`` (chance 1/7)."""
    logits = predict(model, model, data.images)
    return float((logits.argmax(1) == data.family).float().mean())


def finetune(start: nn.Module | None, backbone: str, train_set: CropSet, val_set: CropSet, cfg: dict[str, Any],
             seed: int = 0, progress: bool = True, desc: str = "fine-tune") -> tuple[dict[str, float], nn.Module, History]:
    """Train a keypoint-heatmap network on ``train_set`` starting from ``start``'s
    backbone (``None``: from scratch) and score it on ``val_set``.

    Returns the metrics (``err_px``, ``err_pct``, ``pck``, ``AP``, ``train_s``), the model
    and its history."""
    seed_all(seed)
    if start is None:
        model = TopDownHeatmapNet(make_backbone(backbone, cfg), COCO17.num_joints)
    else:
        model = pose_model_from(start, COCO17.num_joints)
    codec = GaussianHeatmap(train_set.size, model.heatmap_size(train_set.size), cfg["sigma"])

    def loss_fn(m: nn.Module, batch: dict) -> torch.Tensor:
        enc = codec.encode(batch["keypoints"], batch["visible"])
        return joints_mse_loss(m(batch["image"]), enc["heatmaps"], enc["weights"])

    t0 = time.perf_counter()
    history = train(model, loss_fn, train_set, steps=cfg["finetune_steps"], batch_size=cfg["batch_size"],
                    lr=cfg["lr"], seed=seed, desc=desc, progress=progress)
    seconds = time.perf_counter() - t0
    kp, scores = codec.decode(predict(model, model, val_set.images))
    metrics = evaluate_keypoints(kp, scores, val_set, pck_fraction=cfg["pck_fraction"])
    return metrics | {"train_s": seconds}, model, history


def run(profile: Profile | str | None = None, seeds: Sequence[int] | None = None, progress: bool = True) -> Table:
    """Pretrain (HSJP, supervised) and fine-tune (scratch, HSJP, supervised) every
    backbone at every label fraction for every seed; return the mean ± std table.

    ``meta['per_seed']`` keeps every row, ``meta['pretext']`` each pretraining's puzzle
    accuracy or classification accuracy and time, ``meta['seconds']`` the wall time."""
    p = get_profile(profile)
    cfg = config(p)
    seeds = tuple(p.seeds if seeds is None else seeds)
    t0 = time.perf_counter()
    data = load_data(cfg, progress)
    per_seed, pretext = [], []
    for backbone in cfg["backbones"]:
        for seed in seeds:
            t1 = time.perf_counter()
            jig, _ = pretrain_jigsaw(backbone, data.unlabelled, cfg, seed, progress)
            t2 = time.perf_counter()
            sup, _ = pretrain_supervised(backbone, data.unlabelled, cfg, seed, progress)
            t3 = time.perf_counter()
            acc = jigsaw_accuracy(jig, data.val.images, cfg)
            pretext.append({"backbone": backbone, "seed": seed, "jigsaw_cells": acc["cells"],
                            "jigsaw_puzzles": acc["puzzles"], "jigsaw_s": t2 - t1,
                            "family_acc": family_accuracy(sup, data.val_unlabelled), "supervised_s": t3 - t2})
            starts = {"scratch": None, "HSJP": jig, "supervised": sup}
            for fraction in cfg["fractions"]:
                subset = data.train.subset(max(1, round(fraction * len(data.train))))
                for init, start in starts.items():
                    metrics, _, _ = finetune(start, backbone, subset, data.val, cfg, seed, progress,
                                             desc=f"{init} {backbone} {fraction:.0%} seed {seed}")
                    per_seed.append({"backbone": backbone, "labels": f"{fraction:.0%}", "n_labelled": len(subset),
                                     "init": init, "seed": seed, **metrics})
    rows = aggregate(per_seed, ("err_pct", "pck", "AP", "train_s"), by=("backbone", "labels", "init"))
    seconds = time.perf_counter() - t0
    pre = aggregate(pretext, ("jigsaw_cells", "jigsaw_puzzles", "family_acc", "jigsaw_s", "supervised_s"),
                    by=("backbone",))
    notes = [f"profile {p.name}; {cfg['n_train']} training crops ({cfg['size']}×{cfg['size']}), {cfg['n_val']} val "
             f"crops; pretraining {cfg['pretrain_steps']} steps, fine-tuning {cfg['finetune_steps']} steps × batch "
             f"{cfg['batch_size']}; seeds {list(seeds)}, mean ± std; {seconds:.0f} s in all"]
    for r in pre:
        notes.append(f"{r['backbone']}: jigsaw cell accuracy {100 * r['jigsaw_cells']:.1f} % (chance "
                     f"{100 / cfg['grid'] ** 2:.1f} %), puzzles solved {100 * r['jigsaw_puzzles']:.1f} %; "
                     f"pose-family accuracy {100 * r['family_acc']:.1f} % (chance {100 / len(POSE_FAMILIES):.1f} %)")
    return Table(
        "HSJP: fine-tuning from scratch vs jigsaw-pretrained vs supervised-pretrained (PersonCrops, COCO17)",
        ["backbone", "labels", "init", "err_pct", "pck", "AP", "train_s", "seeds"],
        rows,
        labels={"err_pct": "error (% crop)", "pck": f"PCK@{cfg['pck_fraction']}", "AP": "AP (OKS)",
                "train_s": "fine-tune (s)", "labels": "labelled"},
        digits={"err_pct": 2, "pck": 3, "AP": 1, "train_s": 0},
        notes=notes,
        meta={"config": cfg, "seeds": list(seeds), "per_seed": per_seed, "pretext": pretext, "seconds": seconds},
    )


def gain_table(result: Table) -> Table:
    """HSJP and supervised pretraining minus scratch, per backbone and label fraction
    (PCK and AP), with the spread of the per-seed differences."""
    per_seed = result.meta.get("per_seed", [])
    rows = []
    for backbone in dict.fromkeys(result.column("backbone")):
        for labels in dict.fromkeys(r["labels"] for r in result.rows if r["backbone"] == backbone):
            row: dict[str, Any] = {"backbone": backbone, "labels": labels}
            for init in ("HSJP", "supervised"):
                for key in ("pck", "AP"):
                    diffs = _paired(per_seed, backbone, labels, init, key)
                    if diffs:
                        row[f"{init}_{key}"] = float(np.mean(diffs))
                        if len(diffs) > 1:
                            row[f"{init}_{key}_std"] = float(np.std(diffs, ddof=1))
            rows.append(row)
    return Table(
        "HSJP: gain over training from scratch (paired by seed)",
        ["backbone", "labels", "HSJP_pck", "HSJP_AP", "supervised_pck", "supervised_AP"],
        rows,
        labels={"HSJP_pck": "HSJP Δ PCK", "HSJP_AP": "HSJP Δ AP", "supervised_pck": "supervised Δ PCK",
                "supervised_AP": "supervised Δ AP", "labels": "labelled"},
        digits={"HSJP_pck": 3, "HSJP_AP": 1, "supervised_pck": 3, "supervised_AP": 1},
        notes=["the paper's claim: HSJP ≫ scratch, HSJP ≈ supervised (ImageNet) pretraining"],
    )


def _paired(per_seed: list[dict], backbone: str, labels: str, init: str, key: str) -> list[float]:
    by_seed: dict[int, dict[str, float]] = {}
    for r in per_seed:
        if r["backbone"] == backbone and r["labels"] == labels:
            by_seed.setdefault(r["seed"], {})[r["init"]] = r[key]
    return [v[init] - v["scratch"] for v in by_seed.values() if init in v and "scratch" in v]


def summaries(result: Table) -> list[Table]:
    """Derived tables ``labcore reproduce hsjp`` prints and saves: the gain over scratch."""
    return [gain_table(result)]
