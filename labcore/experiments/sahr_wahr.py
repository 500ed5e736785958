"""SAHR + WAHR's key claim in miniature: scale- and weight-adaptive heatmap regression
improves bottom-up AP (notebook 03, ``labcore reproduce sahr_wahr``).

The paper (Luo et al., CVPR 2021; METHODS.md §2.5) adds SWAHR to HigherHRNet-W32 and
finds **67.1 → 68.9 AP on COCO val** (W48: 69.9 → 70.8) and **65.9 → 71.6 on CrowdPose
test** — more where people vary most in scale and crowd each other. The separate
SAHR-only / WAHR-only ablation numbers were not found (METHODS.md).

Here: :class:`~labcore.data.datasets.CrowdScenes` (2–5 people per 128×128 image, heights
varying 4× within each image), one :class:`~labcore.methods.sahr_wahr.BottomUpNet`
(HRNet-lite + HigherHRNet's stride-2 stage + associative-embedding tags + SWAHR's scale
branches) trained three times with the same data, seed and recipe — *baseline* (plain
heatmap MSE), *+SAHR*, *+SAHR+WAHR* — and decoded with HigherHRNet's parser. Scored with
pycocotools' keypoint AP, overall and split at the median person area ("small" / "large"),
and two diagnostics that do not depend on the learned tags:

* **AP (GT grouping)** — the network's heatmaps grouped with ground-truth tag maps
  (:func:`~labcore.methods.sahr_wahr.oracle_outputs`): the heatmaps' own quality, which is
  all SAHR and WAHR change;
* **joint PCK** — the share of labelled joints with a detection of the same joint type
  within 10 % of the person's height, for the smaller and the larger half of the people.

People whose visible area is under ``min_area`` px² are left unlabelled in the COCO
ground truth (COCO does not label tiny people; OKS on a person seen through a few pixels
would demand sub-pixel precision). The ``oracle`` row decodes the ground truth itself:
the decoder's own ceiling at this image size.

Two regimes, as for SimDR: *held-out* (train on ``n_train`` scenes, score ``n_val``
others — the reproduction) and *fit* (train and score on the same ``fit_images`` — how
well each loss lets the network fit the people it is shown, with generalisation out of
the way). One deviation from the official recipe, for CPU budgets: no augmentation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from labcore.data.datasets import CrowdScenes, crowd_coco
from labcore.experiments.table import Table, aggregate
from labcore.methods import sahr_wahr as sw
from labcore.metrics import coco_keypoint_ap
from labcore.nn import HRNetLite
from labcore.runtime import Profile, seed_all
from labcore.runtime import profile as get_profile
from labcore.train import History, fit

__all__ = ["PAPER_AP", "VARIANTS", "REGIMES", "config", "load_scenes", "FirstScenes", "joint_pck", "stack_scenes", "build_model", "predict", "evaluate",
           "train_variant", "run", "gain_table", "summaries"]

#: The paper's AP (README of greatlog/SWAHR-HumanPose), single-scale testing.
PAPER_AP = {
    "COCO val, HigherHRNet-W32-512": (67.1, 68.9),
    "COCO val, HigherHRNet-W48-640": (69.9, 70.8),
    "CrowdPose test, HigherHRNet-W48": (65.9, 71.6),
}

#: variant → (sahr, wahr)
VARIANTS = {"baseline": (False, False), "+SAHR": (True, False), "+SAHR+WAHR": (True, True)}
REGIMES = ("held-out", "fit")


def config(profile: Profile | str | None = None) -> dict[str, Any]:
    """The experiment's sizes for a profile: ``ci`` a smoke run inside notebook 03 (< 60 s
    with the rest of it), ``cpu`` the reproduction (≤ 10 min on 2 cores, 3 seeds)."""
    p = get_profile(profile)
    return {
        "profile": p.name,
        "size": (128, 128),
        "people": (2, 5),
        "scale_range": 4.0,
        "background": "procedural",
        "n_train": p.pick(ci=48, cpu=600, gpu=4000),
        "n_val": p.pick(ci=16, cpu=100, gpu=400),
        "steps": p.pick(ci=40, cpu=150, gpu=6000),
        "fit_images": p.pick(ci=8, cpu=24, gpu=64),
        "fit_steps": p.pick(ci=60, cpu=250, gpu=1500),
        "batch_size": p.pick(ci=8, cpu=16, gpu=32),
        "lr": 2e-3,
        "backbone": p.pick(ci=dict(widths=(8, 16), stem_channels=8), cpu=dict(widths=(16, 32, 64)),
                           gpu=dict(widths=(32, 64, 128), modules_per_stage=2)),
        "deconv_blocks": 1,
        "sigma": sw.SIGMA,
        "gamma": sw.GAMMA,
        "ae_factor": 1e-3,
        "min_area": 100.0,
        "data_seed": 0,
    }


def load_scenes(cfg: dict[str, Any], progress: bool = True) -> tuple[CrowdScenes, CrowdScenes]:
    """The training and validation scenes (cached on disk; disjoint seeds)."""
    common = dict(size=cfg["size"], people=cfg["people"], scale_range=cfg["scale_range"],
                  background=cfg["background"], progress=progress)
    train = CrowdScenes(cfg["n_train"], seed=cfg["data_seed"] * 2 + 1, **common)
    val = CrowdScenes(cfg["n_val"], seed=cfg["data_seed"] * 2 + 2, **common)
    return train, val


class FirstScenes(torch.utils.data.Dataset):
    """The first ``n`` scenes of a :class:`CrowdScenes` (the fit regime's set), with the
    same ``arrays``, ``size`` and ``coco()`` (image ids ``1..n``)."""

    def __init__(self, data: CrowdScenes, n: int) -> None:
        self.data, self.n = data, min(n, len(data))
        self.size = data.size
        self.arrays = {k: v[: self.n] for k, v in data.arrays.items()}

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not -self.n <= i < self.n:
            raise IndexError(f"index {i} out of range for {self.n} scenes")
        return self.data[i % self.n]

    def coco(self, min_area: float = 0.0) -> dict:
        return crowd_coco(self.arrays, self.size, min_area=min_area)


def build_model(cfg: dict[str, Any]) -> sw.BottomUpNet:
    """HRNet-lite + HigherHRNet stage 2 + tags + scale branches (the same for every variant:
    the baseline simply does not use its scale maps)."""
    return sw.BottomUpNet(HRNetLite(**cfg["backbone"]), 17, scale=True, higher=True, blocks=cfg["deconv_blocks"])


def train_variant(variant: str, data: Any, cfg: dict[str, Any], seed: int = 0, steps: int | None = None,
                  progress: bool = True) -> tuple[sw.BottomUpNet, History]:
    """Train :func:`build_model` with ``variant``'s loss (:data:`VARIANTS`) on ``data``
    (items with ``image``, ``keypoints (P, 17, 2)``, ``visibility (P, 17)``): Adam, 5 %
    warm-up then cosine decay."""
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {list(VARIANTS)}, got {variant!r}")
    sahr, wahr = VARIANTS[variant]
    seed_all(seed)
    model = build_model(cfg)
    targets = sw.BottomUpTargets(cfg["size"], sigma=cfg["sigma"])

    def loss_fn(m, batch):
        out = m(batch["image"])
        return sw.bottom_up_loss(out, targets.encode(batch["keypoints"], batch["visibility"]), sahr=sahr,
                                 wahr=wahr, gamma=cfg["gamma"], ae_factor=cfg["ae_factor"])

    steps = cfg["steps"] if steps is None else steps
    history = fit(model, loss_fn, data, steps=steps, batch_size=cfg["batch_size"], lr=cfg["lr"], optimizer="adam",
                  schedule="cosine", warmup_steps=max(1, steps // 20), seed=seed, desc=f"{variant} seed {seed}",
                  progress=progress)
    return model, history


@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 25) -> dict[str, Any]:
    """The model's outputs on ``images (N, 3, H, W)``, batched, in eval mode, on the
    model's device (CUDA after training there); the outputs come back on the CPU."""
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    try:
        outs = [model(images[i:i + batch_size].to(dev)) for i in range(0, len(images), batch_size)]
        outs = [{"heatmaps": [h.cpu() for h in o["heatmaps"]], "tags": o["tags"].cpu()} for o in outs]
    finally:
        model.train(was)
    return {"heatmaps": [torch.cat([o["heatmaps"][s] for o in outs]) for s in range(len(outs[0]["heatmaps"]))],
            "tags": torch.cat([o["tags"] for o in outs]), "scales": None}


def stack_scenes(data: Any) -> dict[str, torch.Tensor]:
    """``data``'s items stacked: ``image (N, 3, H, W)``, ``keypoints (N, P, 17, 2)``,
    ``visibility (N, P, 17)``, ``num_people (N,)``."""
    items = [data[i] for i in range(len(data))]
    return {k: torch.stack([it[k] for it in items]) for k in ("image", "keypoints", "visibility", "num_people")}


def joint_pck(people: list[dict[str, np.ndarray]], keypoints: torch.Tensor, visibility: torch.Tensor,
              heights: np.ndarray, radius: float = 0.1) -> np.ndarray:
    """Per labelled GT joint, whether a decoded keypoint of the same joint type (any decoded
    person) lies within ``radius × height`` of it. Returns ``(M, 2)``: hit (0/1), person
    height — for a split by size."""
    out = []
    for i, person in enumerate(people):
        for q in range(keypoints.shape[1]):
            for k in range(keypoints.shape[2]):
                if visibility[i, q, k] <= 0:
                    continue
                det = person["keypoints"][:, k][person["keypoint_scores"][:, k] > 0]
                d = np.linalg.norm(det - keypoints[i, q, k].numpy(), axis=1).min() if len(det) else np.inf
                out.append((float(d <= radius * heights[i, q]), heights[i, q]))
    return np.array(out, dtype=np.float64).reshape(-1, 2)


def evaluate(outputs: dict[str, Any], data: Any, cfg: dict[str, Any], coco: dict | None = None) -> dict[str, float]:
    """Decode ``outputs`` (for ``data``'s images, in order) and score them: COCO AP overall,
    ``AP_small``/``AP_large`` (split at the median labelled area), AP with ground-truth
    grouping, joint PCK for the smaller/larger half of the people (%, 0–100)."""
    batch = stack_scenes(data)
    coco = data.coco(min_area=cfg["min_area"]) if coco is None else coco
    areas = sorted(a["area"] for a in coco["annotations"] if a["num_keypoints"] > 0)
    split = areas[len(areas) // 2] if areas else 1.0
    ranges = {"small": (0.0, split), "large": (split, 1e10)}
    ids = list(range(1, len(batch["image"]) + 1))
    people = sw.decode_people(outputs, cfg["size"])
    stats = coco_keypoint_ap(coco, sw.coco_results(people, ids), area_ranges=ranges)
    targets = sw.BottomUpTargets(cfg["size"], sigma=cfg["sigma"])
    oracle_tags = sw.oracle_outputs(batch["keypoints"], batch["visibility"], targets)["tags"]
    gt_grouped = sw.decode_people({**outputs, "tags": oracle_tags}, cfg["size"])
    stats_gt = coco_keypoint_ap(coco, sw.coco_results(gt_grouped, ids))
    heights = data.arrays["height_px"][: len(ids)]
    hits = joint_pck(people, batch["keypoints"], batch["visibility"], heights)
    med = float(np.median(hits[:, 1])) if len(hits) else 0.0
    small, large = hits[hits[:, 1] <= med], hits[hits[:, 1] > med]
    return {
        "AP": 100 * stats["AP"], "AP50": 100 * stats["AP50"], "AP_small": 100 * stats["AP_small"],
        "AP_large": 100 * stats["AP_large"], "AP_gt_tags": 100 * stats_gt["AP"],
        "pck_small": 100 * float(small[:, 0].mean()) if len(small) else 0.0,
        "pck_large": 100 * float(large[:, 0].mean()) if len(large) else 0.0,
        "people": float(sum(len(p["scores"]) for p in people)), "area_split": split,
    }


def run(profile: Profile | str | None = None, seeds: Sequence[int] | None = None, progress: bool = True) -> Table:
    """Train every variant in both regimes; return the mean ± std table.

    * ``'held-out'``: train on ``n_train`` scenes, score on ``n_val`` others, every seed;
    * ``'fit'``: train and score on the same ``fit_images`` scenes, every seed.

    The ``oracle`` row decodes the ground truth of the validation scenes. ``meta`` keeps
    the per-seed rows, the loss histories and the wall time."""
    p = get_profile(profile)
    cfg = config(p)
    seeds = tuple(p.seeds if seeds is None else seeds)
    t0 = time.perf_counter()
    train, val = load_scenes(cfg, progress)
    small = FirstScenes(train, cfg["fit_images"])
    coco_val, coco_fit = val.coco(min_area=cfg["min_area"]), small.coco(min_area=cfg["min_area"])
    vb = stack_scenes(val)
    oracle = sw.oracle_outputs(vb["keypoints"], vb["visibility"], sw.BottomUpTargets(cfg["size"], sigma=cfg["sigma"]))
    per_seed = [{"regime": "held-out", "variant": "oracle (GT maps)", "seed": 0, "train_s": 0.0,
                 **evaluate(oracle, val, cfg, coco_val)}]
    histories = {}
    jobs = [("held-out", train, val, coco_val, cfg["steps"], s) for s in seeds]
    jobs += [("fit", small, small, coco_fit, cfg["fit_steps"], s) for s in seeds]
    for regime, tr, va, coco, steps, seed in jobs:
        images = stack_scenes(va)["image"]
        for variant in VARIANTS:
            model, history = train_variant(variant, tr, cfg, seed, steps, progress)
            row = {"regime": regime, "variant": variant, "seed": seed, "train_s": history.seconds,
                   "final_loss": history.loss[-1]}
            row |= evaluate(predict(model, images), va, cfg, coco)
            per_seed.append(row)
            histories[f"{regime} {variant} (seed {seed})"] = history.to_dict()
    keys = ("AP", "AP50", "AP_small", "AP_large", "AP_gt_tags", "pck_small", "pck_large", "train_s")
    rows = aggregate(per_seed, keys, by=("regime", "variant"))
    seconds = time.perf_counter() - t0
    return Table(
        f"SAHR + WAHR on bottom-up pose: labcore CrowdScenes {cfg['size'][0]}×{cfg['size'][1]}, "
        f"{cfg['people'][0]}–{cfg['people'][1]} people, scales ×{cfg['scale_range']:g}",
        ["regime", "variant", "AP", "AP50", "AP_small", "AP_large", "AP_gt_tags", "pck_small", "pck_large",
         "train_s", "seeds"],
        rows,
        labels={"AP": "AP", "AP50": "AP50", "AP_small": "AP small", "AP_large": "AP large",
                "AP_gt_tags": "AP (GT grouping)", "pck_small": "joint PCK small", "pck_large": "joint PCK large",
                "train_s": "train (s)"},
        digits={k: 1 for k in keys[:-1]} | {"train_s": 0},
        notes=[f"profile {p.name}; held-out: {cfg['n_train']} train / {cfg['n_val']} val scenes, {cfg['steps']} "
               f"steps × batch {cfg['batch_size']}; fit: train = test = {cfg['fit_images']} scenes, "
               f"{cfg['fit_steps']} steps; seeds {list(seeds)}, mean ± std",
               f"AP: pycocotools, people under {cfg['min_area']:g} px² visible unlabelled; small/large split at "
               f"the median labelled area; joint PCK: same-type detection within 10 % of the person's height; "
               f"{seconds:.0f} s in all"],
        meta={"config": cfg, "seeds": list(seeds), "per_seed": per_seed, "seconds": seconds,
              "histories": histories},
    )


def gain_table(result: Table) -> Table:
    """Each variant's AP minus the baseline's, per regime, beside the paper's gains."""
    rows = []
    for regime in dict.fromkeys(result.column("regime")):
        try:
            base = result.row(regime=regime, variant="baseline")
        except (KeyError, ValueError):
            continue
        for variant in list(VARIANTS)[1:]:
            r = result.row(regime=regime, variant=variant)
            rows.append({"regime": regime, "variant": variant, "gain_AP": r["AP"] - base["AP"],
                         "gain_AP_small": r["AP_small"] - base["AP_small"],
                         "gain_AP_large": r["AP_large"] - base["AP_large"],
                         "gain_AP_gt_tags": r["AP_gt_tags"] - base["AP_gt_tags"]})
    paper = "; ".join(f"{k}: {a:.1f} → {b:.1f} (+{b - a:.1f})" for k, (a, b) in PAPER_AP.items())
    return Table(
        "SAHR/WAHR gain over the baseline (AP points): labcore vs paper",
        ["regime", "variant", "gain_AP", "gain_AP_small", "gain_AP_large", "gain_AP_gt_tags"],
        rows,
        labels={"gain_AP": "Δ AP", "gain_AP_small": "Δ AP small", "gain_AP_large": "Δ AP large",
                "gain_AP_gt_tags": "Δ AP (GT grouping)"},
        digits={"gain_AP": 1, "gain_AP_small": 1, "gain_AP_large": 1, "gain_AP_gt_tags": 1},
        notes=[f"paper (+SWAHR, single scale): {paper}"],
    )


def summaries(result: Table) -> list[Table]:
    """Derived tables ``labcore reproduce sahr_wahr`` prints and saves: the gains."""
    return [gain_table(result)]
