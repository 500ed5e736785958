"""Heatmap regression versus integral regression on the same network (notebook 01).

One backbone + 1×1 conv head, trained twice on the same crops: with MSRA heatmap targets
and JointsMSELoss (decoded by argmax, argmax + quarter-pixel shift, and DARK), and as
integral regression (Sun et al., ECCV 2018) — the same maps read as logits, soft-argmax
to coordinates, an L1 loss on the coordinates (mmpose ``IntegralRegressionLabel`` +
``L1Loss``). Integral regression is differentiable end to end and not quantised; the
heatmap is easier to train. Which wins depends on the budget — measure it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from labcore.experiments.table import Table, aggregate
from labcore.experiments.topdown import (
    CropSet,
    base_config,
    crops_at_sizes,
    fit_and_score,
    split,
)
from labcore.methods.heatmap import (
    GaussianHeatmap,
    IntegralHeatmap,
    TopDownHeatmapNet,
    integral_l1_loss,
    joints_mse_loss,
)
from labcore.nn import SimpleBaseline
from labcore.runtime import Profile, seed_all
from labcore.runtime import profile as get_profile
from labcore.skeletons import COCO17
from labcore.train import History

__all__ = ["config", "train_and_evaluate", "run"]


def config(profile: Profile | str | None = None) -> dict[str, Any]:
    """Sizes per profile: ``ci`` a smoke run inside notebook 01, ``cpu`` a few minutes."""
    return base_config(get_profile(profile)) | {"size": 64, "sigma": 2.0}


def train_and_evaluate(head: str, train_set: CropSet, val_set: CropSet, cfg: dict[str, Any], seed: int = 0,
                       progress: bool = True) -> tuple[list[dict[str, Any]], History]:
    """Train ``head`` (``'heatmap'`` or ``'integral'``); one row per decoder, and the history."""
    seed_all(seed)
    model = TopDownHeatmapNet(SimpleBaseline(**cfg["backbone"]), num_joints=COCO17.num_joints)
    size, hm_size = train_set.size, model.heatmap_size(train_set.size)
    if head == "heatmap":
        codec = GaussianHeatmap(size, hm_size, cfg["sigma"])
        decoders = {"heatmap · argmax": GaussianHeatmap(size, hm_size, cfg["sigma"], refine=False),
                    "heatmap · argmax + quarter": codec,
                    "heatmap · DARK": GaussianHeatmap(size, hm_size, cfg["sigma"], variant="dark")}

        def loss_fn(m, batch):
            enc = codec.encode(batch["keypoints"], batch["visible"])
            return joints_mse_loss(m(batch["image"]), enc["heatmaps"], enc["weights"])
    elif head == "integral":
        codec = IntegralHeatmap(size, hm_size, cfg["sigma"])
        decoders = {"integral · soft-argmax": codec}

        def loss_fn(m, batch):
            enc = codec.encode(batch["keypoints"], batch["visible"])
            return integral_l1_loss(codec.labels(m(batch["image"])), enc["keypoint_labels"], enc["weights"])
    else:
        raise ValueError(f"head: expected 'heatmap' or 'integral', got {head!r}")
    return fit_and_score(model, loss_fn, decoders, train_set, val_set, cfg, seed, desc=f"{head} seed {seed}",
                         progress=progress)


def run(profile: Profile | str | None = None, seeds: Sequence[int] | None = None, progress: bool = True) -> Table:
    """Both heads for every seed; mean ± std table (``meta['histories']`` has the losses)."""
    p = get_profile(profile)
    cfg = config(p)
    seeds = tuple(p.seeds if seeds is None else seeds)
    t0 = time.perf_counter()
    data = crops_at_sizes(cfg["n_train"] + cfg["n_val"], [cfg["size"]], seed=cfg["data_seed"],
                          background=cfg["background"], progress=progress)[cfg["size"]]
    train_set, val_set = split(data, cfg["n_train"])
    per_seed, histories = [], {}
    for seed in seeds:
        for head in ("heatmap", "integral"):
            rows, history = train_and_evaluate(head, train_set, val_set, cfg, seed, progress)
            per_seed += rows
            histories[f"{head} (seed {seed})"] = history
    rows = aggregate(per_seed, ("err_px", "pck", "AP", "train_s"), by=("variant",))
    seconds = time.perf_counter() - t0
    return Table(
        f"Heatmap vs integral regression, {cfg['size']}×{cfg['size']} crops (labcore PersonCrops, COCO17)",
        ["variant", "err_px", "pck", "AP", "train_s", "seeds"], rows,
        labels={"err_px": "error (px)", "pck": "PCK@0.05", "AP": "AP (OKS)", "train_s": "train (s)"},
        digits={"err_px": 2, "pck": 3, "AP": 1, "train_s": 0},
        notes=[f"profile {p.name}: {cfg['n_train']} train / {cfg['n_val']} val crops, {cfg['steps']} steps × "
               f"batch {cfg['batch_size']}, seeds {list(seeds)}, no flip test; {seconds:.0f} s in all"],
        meta={"config": cfg, "seeds": list(seeds), "per_seed": per_seed, "seconds": seconds,
              "histories": {k: h.to_dict() for k, h in histories.items()}},
    )
