"""The playground: one backbone, every 2-D head, every input size, one table.

Each *head* is a :class:`Recipe` — a network on the shared backbone, its training loss
and its decoder — built by a function registered in :data:`HEADS`:

================  ======================================================================
``heatmap``       MSRA Gaussian targets (σ heatmap pixels), JointsMSE, argmax + quarter
                  (:mod:`labcore.methods.heatmap`; SimpleBaseline's recipe)
``heatmap+wahr``  the same network and targets, the loss weighted by WAHR's
                  ``W = H^γ·|1 − P| + (1 − H^γ)·|P|`` (:func:`~labcore.methods.sahr_wahr.
                  sahr_wahr_loss` with ``sahr=False``) — the part of SWAHR that does not
                  need a person's scale
``heatmap+sahr``  + a :class:`~labcore.methods.sahr_wahr.ScaleBranch` that predicts α per
                  joint map: SAHR's target ``H^(1+α)`` and WAHR, plus the α² regulariser,
                  as the official trainer (top-down crops normalise the person's size, so
                  α has less to adapt to than in bottom-up scenes; notebook 03 has those)
``integral``      soft-argmax over the heatmap logits, L1 on coordinates (Sun et al.)
``simdr``         SimCC: two 1-D classifications with ``k`` bins per pixel, label
                  smoothing ε, KL (:mod:`labcore.methods.simdr`)
================  ======================================================================

:func:`train_and_score` trains one head at one input size with the house recipe
(:func:`labcore.experiments.topdown.train`: Adam, warm-up, cosine) on the same person
crops, and scores it on held-out crops (error in pixels and % of the crop, PCK, COCO AP).
:func:`run` does every chosen head × size × seed and returns one
:class:`~labcore.experiments.table.Table`; ``labcore.viz.playground`` draws it and wraps
it in widgets. To try a head of your own, write a function ``(input_size, cfg) ->
Recipe`` and pass ``register_head('mine', fn)``.

The playground is not a paper's claim, so ``labcore reproduce all`` does not run it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from labcore.checks import check_int
from labcore.codec import Codec
from labcore.experiments.table import Table, aggregate
from labcore.experiments.topdown import (
    BACKBONES,
    CropSet,
    backbone_configs,
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
from labcore.methods.sahr_wahr import ScaleBranch, sahr_wahr_loss, scale_regularizer
from labcore.methods.simdr import SimDR, SimDRNet, simdr_kl_loss
from labcore.nn import build_backbone
from labcore.runtime import Profile, seed_all
from labcore.runtime import profile as get_profile
from labcore.skeletons import COCO17

__all__ = ["Recipe", "HEADS", "BACKBONES", "register_head", "config", "build_backbone_for", "recipe",
           "train_and_score", "run", "TopDownScaleNet"]



@dataclass
class Recipe:
    """A head on the shared backbone: what :func:`train_and_score` needs.

    Attributes:
        model: the network ``images (N, 3, H, W) -> outputs``.
        loss_fn: ``loss_fn(model, batch) -> loss`` (or ``(loss, logs)``) for
            :func:`labcore.train.fit`; ``batch`` has ``image``, ``keypoints (N, K, 2)``
            input pixels, ``visible (N, K)``.
        decoder: a :class:`~labcore.codec.Codec` whose ``decode(outputs)`` gives
            ``(keypoints (N, K, 2) input pixels, scores (N, K))``.
        forward: images → what ``decoder`` reads (default ``model``).
    """

    model: nn.Module
    loss_fn: Callable[[nn.Module, dict], Any]
    decoder: Codec
    forward: Callable[[torch.Tensor], Any] | None = None


def config(profile: Profile | str | None = None) -> dict[str, Any]:
    """The playground's defaults for a profile: the top-down recipe of
    :func:`~labcore.experiments.topdown.base_config` (data sizes, steps, batch, learning
    rate) plus every head's knobs. Change any key with ``cfg | {...}``."""
    p = get_profile(profile)
    cfg = base_config(p)
    cfg.pop("backbone")
    return cfg | {
        "heads": ("heatmap", "integral", "simdr"),
        "sizes": (32, 64),
        "backbone_name": "SimpleBaseline",
        "backbone_cfg": backbone_configs(p),
        "sigma": 1.0,  # heatmap pixels (the official 64×64 / 128×128 configs)
        "integral_sigma": 2.0,  # the integral codec's (unused by its L1 loss) target spread
        "wahr_gamma": 0.01,  # SWAHR's γ
        "split_ratio": 2.0,  # SimDR's k
        "label_smoothing": 0.1,  # SimDR's ε
    }


def build_backbone_for(cfg: dict[str, Any]) -> nn.Module:
    """The backbone ``cfg['backbone_name']`` with ``cfg['backbone_cfg'][name]``."""
    name = cfg["backbone_name"]
    if name not in BACKBONES:
        raise ValueError(f"backbone_name: expected one of {sorted(BACKBONES)}, got {name!r}")
    return build_backbone(BACKBONES[name], **cfg["backbone_cfg"][name])


class TopDownScaleNet(nn.Module):
    """A top-down heatmap network with SWAHR's scale branch beside the heatmap head:
    ``images (N, 3, H, W) -> {'heatmaps': (N, K, h, w), 'scales': α (N, K, h, w)}``.
    The branch's last conv starts at zero, so α = 0 and training starts as plain MSE."""

    def __init__(self, backbone: nn.Module, num_joints: int) -> None:
        super().__init__()
        self.net = TopDownHeatmapNet(backbone, num_joints)
        self.scale = ScaleBranch(backbone.out_channels, num_joints)
        self.stride, self.num_joints = self.net.stride, self.net.num_joints

    def heatmap_size(self, input_size: Any) -> tuple[int, int]:
        return self.net.heatmap_size(input_size)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.net.backbone(images)
        return {"heatmaps": self.net.head(features), "scales": self.scale(features)}


def _heatmaps_only(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    def forward(images: torch.Tensor) -> torch.Tensor:
        return model(images)["heatmaps"]

    return forward


def _heatmap_model(input_size: tuple[int, int], cfg: dict[str, Any], net: type = TopDownHeatmapNet
                   ) -> tuple[nn.Module, GaussianHeatmap]:
    """A heatmap network on the backbone and its MSRA codec (σ, argmax + quarter)."""
    model = net(build_backbone_for(cfg), COCO17.num_joints)
    return model, GaussianHeatmap(input_size, model.heatmap_size(input_size), cfg["sigma"], refine=True)


def heatmap_recipe(input_size: tuple[int, int], cfg: dict[str, Any]) -> Recipe:
    model, codec = _heatmap_model(input_size, cfg)

    def loss_fn(m, batch):
        enc = codec.encode(batch["keypoints"], batch["visible"])
        return joints_mse_loss(m(batch["image"]), enc["heatmaps"], enc["weights"])

    return Recipe(model, loss_fn, codec)


def wahr_recipe(input_size: tuple[int, int], cfg: dict[str, Any]) -> Recipe:
    model, codec = _heatmap_model(input_size, cfg)

    def loss_fn(m, batch):
        # Unlabelled joints have all-zero target maps: WAHR, like HigherHRNet, trains them
        # towards an empty map instead of masking them out.
        enc = codec.encode(batch["keypoints"], batch["visible"])
        return sahr_wahr_loss(m(batch["image"]), enc["heatmaps"], sahr=False, wahr=True,
                              gamma=cfg["wahr_gamma"]).mean()

    return Recipe(model, loss_fn, codec)


def sahr_recipe(input_size: tuple[int, int], cfg: dict[str, Any]) -> Recipe:
    model, codec = _heatmap_model(input_size, cfg, TopDownScaleNet)

    def loss_fn(m, batch):
        enc = codec.encode(batch["keypoints"], batch["visible"])
        out = m(batch["image"])
        gt = enc["heatmaps"]
        alpha = out["scales"] * (gt > 0).to(gt.dtype)  # the official trainer masks α to the peaks
        heat = sahr_wahr_loss(out["heatmaps"], gt, alpha, sahr=True, wahr=True, gamma=cfg["wahr_gamma"]).mean()
        scale = scale_regularizer(alpha).mean()
        return heat + scale, {"heatmap": float(heat.detach()), "scale": float(scale.detach())}

    return Recipe(model, loss_fn, codec, forward=_heatmaps_only(model))


def integral_recipe(input_size: tuple[int, int], cfg: dict[str, Any]) -> Recipe:
    model = TopDownHeatmapNet(build_backbone_for(cfg), COCO17.num_joints)
    codec = IntegralHeatmap(input_size, model.heatmap_size(input_size), cfg["integral_sigma"])

    def loss_fn(m, batch):
        enc = codec.encode(batch["keypoints"], batch["visible"])
        return integral_l1_loss(codec.labels(m(batch["image"])), enc["keypoint_labels"], enc["weights"])

    return Recipe(model, loss_fn, codec)


def simdr_recipe(input_size: tuple[int, int], cfg: dict[str, Any]) -> Recipe:
    model = SimDRNet(build_backbone_for(cfg), COCO17.num_joints, input_size, split_ratio=cfg["split_ratio"])
    codec = SimDR(input_size, cfg["split_ratio"], sigma=0.0, label_smoothing=cfg["label_smoothing"])

    def loss_fn(m, batch):
        enc = codec.encode(batch["keypoints"], batch["visible"])
        x, y = m(batch["image"])
        return simdr_kl_loss(x, y, enc["x_labels"], enc["y_labels"], enc["weights"], reduction="nmt")

    return Recipe(model, loss_fn, codec)


#: Head name → ``fn(input_size (W, H), cfg) -> Recipe``. Extend with :func:`register_head`.
HEADS: dict[str, Callable[[tuple[int, int], dict[str, Any]], Recipe]] = {
    "heatmap": heatmap_recipe,
    "heatmap+wahr": wahr_recipe,
    "heatmap+sahr": sahr_recipe,
    "integral": integral_recipe,
    "simdr": simdr_recipe,
}


def register_head(name: str, fn: Callable[[tuple[int, int], dict[str, Any]], Recipe],
                  replace: bool = False) -> None:
    """Add a head of your own to :data:`HEADS` (``replace=True`` to overwrite a name)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"name: expected a non-empty str, got {name!r}")
    if not callable(fn):
        raise TypeError(f"fn: expected a callable (input_size, cfg) -> Recipe, got {type(fn).__name__}")
    if name in HEADS and not replace:
        raise ValueError(f"name: {name!r} is already a head; pass replace=True to overwrite it")
    HEADS[name] = fn


def recipe(head: str, input_size: Any, cfg: dict[str, Any]) -> Recipe:
    """The :class:`Recipe` of ``head`` for crops of ``input_size`` (an int for square or
    ``(W, H)``)."""
    if head not in HEADS:
        raise ValueError(f"head: expected one of {sorted(HEADS)}, got {head!r}")
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(int(s) for s in input_size)
    out = HEADS[head](size, cfg)
    if not isinstance(out, Recipe):
        raise TypeError(f"HEADS[{head!r}]: expected it to return a Recipe, got {type(out).__name__}")
    return out


def _parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def train_and_score(head: str, train_set: CropSet, val_set: CropSet, cfg: dict[str, Any], seed: int = 0,
                    progress: bool = True) -> dict[str, Any]:
    """Train ``head`` on ``train_set`` and score it on ``val_set``; one result row:
    ``head``, ``size``, ``seed``, ``err_px``, ``err_pct``, ``pck``, ``AP``, ``train_s``,
    ``final_loss``, ``params`` (and the history under ``'history'``)."""
    seed_all(seed)
    r = recipe(head, train_set.size, cfg)
    rows, history = fit_and_score(r.model, r.loss_fn, {head: r.decoder}, train_set, val_set, cfg, seed,
                                  forward=r.forward, desc=f"{head} {train_set.size[0]}px seed {seed}",
                                  progress=progress)
    row = rows[0]
    return {"head": head, "size": train_set.size[0], **{k: v for k, v in row.items() if k != "variant"},
            "params": _parameters(r.model), "history": history}


def run(profile: Profile | str | None = None, seeds: Sequence[int] | None = None, progress: bool = True,
        cfg: dict[str, Any] | None = None) -> Table:
    """Every head in ``cfg['heads']`` at every size in ``cfg['sizes']`` for every seed,
    on the same crops and backbone; the mean ± std table.

    ``cfg`` defaults to :func:`config` ``(profile)``. ``meta['per_seed']`` keeps each run,
    ``meta['histories']`` the loss curves."""
    p = get_profile(profile)
    cfg = config(p) if cfg is None else dict(cfg)
    seeds = tuple(p.seeds if seeds is None else seeds)
    heads = tuple(cfg["heads"])
    if not heads:
        raise ValueError("cfg['heads']: expected at least one head")
    for h in heads:
        if h not in HEADS:
            raise ValueError(f"cfg['heads']: unknown head {h!r}; known: {sorted(HEADS)}")
    sizes = sorted({check_int(s, "cfg['sizes']", low=8) for s in cfg["sizes"]})
    if not sizes:
        raise ValueError("cfg['sizes']: expected at least one input size")
    t0 = time.perf_counter()
    data = crops_at_sizes(cfg["n_train"] + cfg["n_val"], sizes, seed=cfg["data_seed"], background=cfg["background"],
                          progress=progress)
    per_seed, histories = [], {}
    for size in sizes:
        train_set, val_set = split(data[size], cfg["n_train"])
        for seed in seeds:
            for head in heads:
                row = train_and_score(head, train_set, val_set, cfg, seed, progress)
                histories[f"{head} {size}px seed {seed}"] = row.pop("history").to_dict()
                per_seed.append(row)
    rows = aggregate(per_seed, ("err_px", "err_pct", "pck", "AP", "train_s"), by=("head", "size"))
    params = {(r["head"], r["size"]): r["params"] for r in per_seed}  # the same for every seed
    for r in rows:
        r["params"] = params[(r["head"], r["size"])]
        size = r.pop("size")
        r["input"] = f"{size}×{size}"
    seconds = time.perf_counter() - t0
    return Table(
        f"The playground: {cfg['backbone_name']} backbone, every head (labcore PersonCrops, COCO17)",
        ["input", "head", "err_px", "err_pct", "pck", "AP", "train_s", "params", "seeds"], rows,
        labels={"err_px": "error (px)", "err_pct": "error (% crop)", "pck": "PCK@0.05",
                "AP": "AP (OKS)", "train_s": "train (s)"},
        digits={"err_px": 2, "err_pct": 2, "pck": 3, "AP": 1, "train_s": 1, "params": 0},
        notes=[f"profile {p.name}: {cfg['n_train']} train / {cfg['n_val']} val crops, {cfg['steps']} steps × batch "
               f"{cfg['batch_size']}, lr {cfg['lr']}, seeds {list(seeds)}; σ {cfg['sigma']}, k {cfg['split_ratio']}, "
               f"ε {cfg['label_smoothing']}, γ {cfg['wahr_gamma']}; {seconds:.0f} s in all"],
        meta={"config": cfg, "seeds": list(seeds), "per_seed": per_seed, "histories": histories, "seconds": seconds},
    )
