"""Shared pieces of the top-down experiments: person crops at several input sizes, a
training wrapper, and the evaluation every head is scored with (pixel error, PCK, COCO AP).

The same people at several resolutions: crops are rendered once at the largest size and
area-downsampled by integer factors (as a small input is a resized crop in the papers).
Under labcore's pixel-centre convention a keypoint ``x`` at the large size sits at
``(x + 0.5)/f - 0.5`` after downsampling by ``f``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from labcore.checks import check_int, check_number
from labcore.data.datasets import PersonCrops
from labcore.data.formats import coco_annotation, coco_image, keypoint_results, make_coco
from labcore.metrics import coco_keypoint_ap, pck
from labcore.runtime import Profile
from labcore.skeletons import COCO17
from labcore.train import History, fit

__all__ = ["BACKBONES", "backbone_configs", "CropSet", "base_config", "crops_at_sizes", "split", "predict", "evaluate_keypoints", "train", "fit_and_score"]


#: The top-down experiments' backbone names → :func:`labcore.nn.build_backbone` names.
BACKBONES = {"SimpleBaseline": "simplebaseline", "HRNet": "hrnet_lite"}


def backbone_configs(p: Profile) -> dict[str, dict[str, Any]]:
    """Each backbone's size per profile: small in ``ci`` (a notebook stays under a minute on
    2 cores), the reproductions' in ``cpu``/``gpu``."""
    return {
        "SimpleBaseline": p.pick(
            ci=dict(layers=(1, 1, 1, 1), widths=(8, 16, 32, 64), stem_channels=8, deconv_channels=(32, 32, 32)),
            cpu=dict(layers=(2, 2, 2, 2), widths=(16, 32, 64, 128), stem_channels=16, deconv_channels=(64, 64, 64))),
        "HRNet": p.pick(ci=dict(widths=(16, 32), blocks=1), cpu=dict(widths=(16, 32, 64), blocks=2)),
    }


def base_config(p: Profile) -> dict[str, Any]:
    """The recipe every top-down comparison shares, per profile: data sizes, steps, batch,
    learning rate and the SimpleBaseline backbone (a smaller one in ``ci`` so that a
    notebook stays under a minute on 2 cores). Experiments add their own keys."""
    return {
        "profile": p.name,
        "n_train": p.pick(ci=160, cpu=2400, gpu=12000),
        "n_val": p.pick(ci=48, cpu=400, gpu=1000),
        "steps": p.pick(ci=25, cpu=450, gpu=4000),
        "batch_size": p.pick(ci=16, cpu=32),
        "lr": 2e-3,
        "backbone": backbone_configs(p)["SimpleBaseline"],
        "data_seed": 0,
        "background": "mixed",
    }


@dataclass
class CropSet:
    """Top-down person crops at one input size (a map-style dataset for :func:`fit`).

    ``images (N, 3, H, W)`` float32 in [0, 1]; ``keypoints (N, K, 2)`` input pixels;
    ``visible (N, K)`` float {0, 1} (labelled: inside the crop); ``visibility (N, K)``
    COCO 0/1/2; ``areas (N,)`` the person's visible area in pixels² (COCO's segment area,
    which OKS normalises by).
    """

    images: torch.Tensor
    keypoints: torch.Tensor
    visible: torch.Tensor
    visibility: torch.Tensor
    areas: torch.Tensor

    @property
    def size(self) -> tuple[int, int]:
        """``(W, H)`` of the crops."""
        return (int(self.images.shape[-1]), int(self.images.shape[-2]))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[i], "keypoints": self.keypoints[i], "visible": self.visible[i]}

    def subset(self, n: int) -> CropSet:
        """The first ``n`` crops."""
        return CropSet(self.images[:n], self.keypoints[:n], self.visible[:n], self.visibility[:n],
                       self.areas[:n])

    def coco(self) -> dict:
        """The crops as a COCO keypoints ground truth (one person per image, ids 1..N)."""
        w, h = self.size
        images, anns = [], []
        for i in range(len(self)):
            images.append(coco_image(i + 1, f"{i + 1:06d}.png", w, h))
            anns.append(coco_annotation(i + 1, i + 1, self.keypoints[i].numpy(), self.visibility[i].numpy(),
                                        bbox=[-0.5, -0.5, float(w), float(h)],
                                        area=float(self.areas[i])))
        return make_coco(images, anns, skeleton=COCO17, description="labcore PersonCrops")


def _downscale(images: torch.Tensor, keypoints: torch.Tensor, areas: torch.Tensor, factor: int):
    if factor == 1:
        return images, keypoints, areas
    return (F.avg_pool2d(images, factor), (keypoints + 0.5) / factor - 0.5, areas / factor**2)


def crops_at_sizes(
    n: int,
    sizes: Sequence[int],
    seed: int = 0,
    background: str = "mixed",
    families: Sequence[str] | None = None,
    progress: bool | None = None,
) -> dict[int, CropSet]:
    """The same ``n`` COCO17 person crops at every square size in ``sizes``.

    Rendered once by :class:`~labcore.data.datasets.PersonCrops` (cached on disk) at
    ``max(sizes)`` and area-averaged down; every size must divide the largest. Keypoints
    that leave the crop are not labelled (COCO v = 0).
    """
    n = check_int(n, "n", low=1)
    sizes = sorted({check_int(s, "sizes", low=8) for s in sizes})
    if not sizes:
        raise ValueError("sizes: expected at least one crop size")
    big = sizes[-1]
    for s in sizes:
        if big % s:
            raise ValueError(f"sizes: every size must divide the largest ({big}), got {s}")
    crops = PersonCrops(n, seed=seed, size=big, skeleton="coco17", families=tuple(families) if families else None,
                        background=background, progress=progress)
    a = crops.arrays
    images = torch.from_numpy(a["image"]).permute(0, 3, 1, 2).float().div_(255.0)
    keypoints = torch.from_numpy(a["keypoints_coco17"]).float()
    visibility = torch.from_numpy(a["visibility_coco17"].astype(np.int64))
    areas = torch.from_numpy((a["parts"] >= 0).reshape(n, -1).sum(1).astype(np.float32))
    out = {}
    for s in sizes:
        im, kp, ar = _downscale(images, keypoints, areas, big // s)
        out[s] = CropSet(im.contiguous(), kp, (visibility > 0).float(), visibility, ar)
    return out


def split(data: CropSet, n_train: int) -> tuple[CropSet, CropSet]:
    """The first ``n_train`` crops and the rest."""
    fields = (data.images, data.keypoints, data.visible, data.visibility, data.areas)
    return CropSet(*(t[:n_train] for t in fields)), CropSet(*(t[n_train:] for t in fields))


def predict(forward: Callable[[torch.Tensor], Any], model: torch.nn.Module, images: torch.Tensor,
            batch: int = 128) -> Any:
    """``forward(images)`` in eval mode without gradients, batch by batch, on the model's
    device (CUDA after training there); outputs come back to the CPU and are concatenated
    (tensors, or tuples of tensors such as SimDR's ``(x, y)``)."""
    model.eval()
    dev = next(model.parameters()).device
    outs = []
    with torch.no_grad():
        for i in range(0, images.shape[0], batch):
            out = forward(images[i : i + batch].to(dev))
            outs.append(tuple(o.cpu() for o in out) if isinstance(out, tuple) else out.cpu())
    if isinstance(outs[0], tuple):
        return tuple(torch.cat(parts) for parts in zip(*outs))
    return torch.cat(outs)


def evaluate_keypoints(
    keypoints: torch.Tensor,
    scores: torch.Tensor,
    data: CropSet,
    pck_fraction: float = 0.05,
) -> dict[str, float]:
    """Score predicted keypoints ``(N, K, 2)`` (input pixels) with per-joint ``scores (N, K)``.

    Returns ``err_px`` (mean Euclidean error over labelled joints, input pixels),
    ``err_pct`` (the same in % of the crop width, comparable across sizes),
    ``pck`` (fraction within ``pck_fraction`` × crop width) and ``AP`` (COCO OKS-based AP
    through pycocotools; a person's score is the mean of its joint scores, as HRNet and
    SimCC rescore top-down results).
    """
    pck_fraction = check_number(pck_fraction, "pck_fraction", low=0.0, low_inclusive=False)
    kp = keypoints.detach().float().cpu()
    sc = scores.detach().float().cpu()
    width = data.size[0]
    err = (kp - data.keypoints).norm(dim=-1)
    vis = data.visible
    err_px = float((err * vis).sum() / vis.sum())
    ids = np.arange(1, len(data) + 1)
    results = keypoint_results(ids, kp, sc, sc.mean(-1))
    ap = coco_keypoint_ap(data.coco(), results)
    return {
        "err_px": err_px,
        "err_pct": 100.0 * err_px / width,
        "pck": pck(kp, data.keypoints, pck_fraction * width, visible=vis),
        "AP": 100.0 * ap["AP"],
    }


def train(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.nn.Module, dict], Any],
    data: CropSet,
    *,
    steps: int,
    batch_size: int,
    lr: float = 1e-3,
    seed: int = 0,
    desc: str = "train",
    progress: bool = True,
    **fit_kwargs: Any,
) -> History:
    """:func:`labcore.train.fit` with the house recipe for these comparisons: Adam, a short
    linear warm-up (5 % of the steps) and cosine decay — identical for every head."""
    return fit(model, loss_fn, data, steps=steps, batch_size=batch_size, lr=lr, optimizer="adam",
               schedule="cosine", warmup_steps=max(1, steps // 20) if steps > 1 else 0, seed=seed, desc=desc,
               progress=progress, **fit_kwargs)


def fit_and_score(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.nn.Module, dict], Any],
    decoders: dict[str, Any],
    train_set: CropSet,
    val_set: CropSet,
    cfg: dict[str, Any],
    seed: int,
    *,
    forward: Callable[[torch.Tensor], Any] | None = None,
    desc: str = "train",
    progress: bool = True,
) -> tuple[list[dict[str, Any]], History]:
    """Train ``model`` with :func:`train` (``cfg``'s steps, batch size and learning rate),
    run ``forward`` (default: the model) on the validation images, decode the outputs with
    each codec of ``decoders`` and score them with :func:`evaluate_keypoints`.

    Returns one row per decoder — ``variant``, ``seed``, ``train_s``, ``final_loss`` and
    the metrics — and the training history."""
    t0 = time.perf_counter()
    history = train(model, loss_fn, train_set, steps=cfg["steps"], batch_size=cfg["batch_size"], lr=cfg["lr"],
                    seed=seed, desc=desc, progress=progress)
    seconds = time.perf_counter() - t0
    out = predict(forward or model, model, val_set.images)
    rows = []
    for variant, codec in decoders.items():
        kp, scores = codec.decode(*out) if isinstance(out, tuple) else codec.decode(out)
        rows.append({"variant": variant, "seed": seed, "train_s": seconds, "final_loss": history.loss[-1],
                     **evaluate_keypoints(kp, scores, val_set)})
    return rows, history
