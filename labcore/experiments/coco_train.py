"""Train and evaluate a 2-D head on a real COCO-format folder — on one process, or on many
under ``torchrun`` with DistributedDataParallel. The engine of ``labcore train``.

::

    labcore train --data /data/coco --annotations person_keypoints_train2017.json \\
        --val /data/coco --val-annotations person_keypoints_val2017.json \\
        --head simdr --size 192 256 --steps 20000 --batch-size 64 --out runs/simdr
    torchrun --nproc_per_node=4 -m labcore train --data /data/coco ...   # 4 GPUs or CPU processes

The person crops come from :class:`labcore.data.coco.CocoCrops` (each annotated person's
box grown to the input's aspect ratio and by 1.25, as the official top-down codes), the
network, loss and decoder from the playground's head recipes
(:mod:`labcore.experiments.playground`), the loop from :func:`labcore.train.fit` (AMP on
CUDA, an atomic resumable checkpoint, DDP when a process group is up). Evaluation maps the
decoded keypoints back into each *original image* and scores them with pycocotools against
every annotation of those images (:func:`labcore.data.coco.evaluate_coco`): the numbers are
comparable with the papers' COCO val AP (with ground-truth boxes, no flip test).

Under DDP every process reads the folder and trains on its shard of each batch; rank 0
evaluates and writes ``out/``: ``checkpoint.pt`` (resume by running the same command
again), ``history.json``, ``results.json`` (COCO results format, image pixels) and
``metrics.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from labcore.checks import check_int, check_number
from labcore.data.coco import CocoCrops, evaluate_coco, results_in_image
from labcore.data.io import atomic_write
from labcore.experiments import playground as pg
from labcore.experiments.topdown import CropSet, evaluate_keypoints, predict, train
from labcore.runtime import Profile, seed_all
from labcore.train import History, distributed_info, is_main_process

__all__ = ["to_cropset", "train_coco"]


def to_cropset(crops: CocoCrops) -> CropSet:
    """The crops as the :class:`~labcore.experiments.topdown.CropSet` the top-down
    experiments train and score (crop pixels; OKS areas scaled to the crop)."""
    return CropSet(crops.images, crops.keypoints, crops.visible, crops.visibility, crops.areas)


def _size(input_size: Any) -> tuple[int, int]:
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    if len(input_size) != 2:
        raise ValueError(f"input_size: expected an int or (W, H), got {input_size!r}")
    return (check_int(input_size[0], "input_size", low=8), check_int(input_size[1], "input_size", low=8))


def _write_json(path: Path, obj: Any) -> None:
    atomic_write(path, lambda f: json.dump(obj, f, indent=1), text=True)


def train_coco(
    data: str | Path,
    *,
    annotations: str | Path | None = None,
    val: str | Path | None = None,
    val_annotations: str | Path | None = None,
    head: str = "heatmap",
    input_size: Any = 64,
    steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    backbone: str | None = None,
    max_people: int | None = None,
    profile: Profile | str | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train playground head ``head`` on the COCO folder ``data`` and evaluate it.

    Args:
        data, annotations: the training folder and its keypoints JSON (see
            :class:`~labcore.data.coco.CocoCrops`: ``None`` picks the folder's only
            ``annotations/person_keypoints_*.json``).
        val, val_annotations: the evaluation folder and JSON (default: the training ones —
            a fit check, not a held-out score).
        head: a name in :data:`labcore.experiments.playground.HEADS`.
        input_size: crop ``(W, H)`` in pixels, or an int for square crops; multiples of
            the backbone's stride (32).
        steps, batch_size, lr, backbone: override the profile's playground defaults
            (:func:`~labcore.experiments.playground.config`). ``batch_size`` is global:
            under DDP each of the ``W`` processes takes ``batch_size / W``.
        max_people: read at most this many people (whole images) per split.
        profile: sizes the default backbone and recipe (``ci``, ``cpu``, ``gpu``).
        seed: seeds the weights and the batch order.
        out: folder for the checkpoint, history, results and metrics (rank 0 writes it);
            ``None`` keeps everything in memory. An existing checkpoint there resumes.
        progress: tqdm bars.

    Returns:
        ``{'model', 'history', 'metrics', 'results', 'config'}``. ``metrics`` (rank 0 only;
        ``None`` on other ranks) holds COCO's ``AP``, ``AP50``, ``AP75``, ``APm``, ``APl``,
        ``AR``… in [0, 1] in image space, plus ``err_px`` (mean error of labelled joints,
        crop pixels) and ``pck`` (within 5 % of the crop width); ``results`` the COCO
        result dicts.
    """
    size = _size(input_size)
    cfg = pg.config(profile)
    overrides = {"steps": steps, "batch_size": batch_size, "lr": lr, "backbone_name": backbone}
    cfg |= {k: v for k, v in overrides.items() if v is not None}
    check_int(cfg["steps"], "steps", low=1)
    check_int(cfg["batch_size"], "batch_size", low=1)
    check_number(cfg["lr"], "lr", low=0.0, low_inclusive=False)
    train_crops = CocoCrops(data, annotations, input_size=size, max_people=max_people, progress=progress)
    same = val is None and val_annotations is None
    val_crops = train_crops if same else CocoCrops(val if val is not None else data, val_annotations,
                                                   input_size=size, max_people=max_people, progress=progress)
    out_dir = Path(out) if out is not None else None
    seed_all(seed)
    r = pg.recipe(head, size, cfg)
    rank, world = distributed_info()
    t0 = time.perf_counter()
    history: History = train(r.model, r.loss_fn, to_cropset(train_crops), steps=cfg["steps"],
                             batch_size=cfg["batch_size"], lr=cfg["lr"], seed=seed,
                             checkpoint=out_dir / "checkpoint.pt" if out_dir else None,
                             desc=f"{head} {size[0]}×{size[1]} on {Path(data).name}" + (f" (×{world})" if world > 1 else ""),
                             progress=progress)
    config = {"data": str(data), "annotations": str(train_crops.annotation_file), "val": str(val or data),
              "val_annotations": str(val_crops.annotation_file), "head": head, "input_size": list(size),
              "steps": cfg["steps"], "batch_size": cfg["batch_size"], "lr": cfg["lr"],
              "backbone": cfg["backbone_name"], "seed": seed, "world_size": world, "train_people": len(train_crops),
              "val_people": len(val_crops), "train_s": time.perf_counter() - t0}
    if not is_main_process():
        return {"model": r.model, "history": history, "metrics": None, "results": None, "config": config}
    out = predict(r.forward or r.model, r.model, val_crops.images)
    keypoints, scores = r.decoder.decode(*out) if isinstance(out, tuple) else r.decoder.decode(out)
    metrics = dict(evaluate_coco(val_crops, keypoints, scores))
    crop_space = evaluate_keypoints(keypoints, scores, to_cropset(val_crops))
    metrics |= {"err_px": crop_space["err_px"], "pck": crop_space["pck"]}
    results = results_in_image(val_crops, keypoints, scores)
    if out_dir is not None:
        _write_json(out_dir / "history.json", history.to_dict())
        _write_json(out_dir / "results.json", results)
        _write_json(out_dir / "metrics.json", {"metrics": metrics, "config": config})
    return {"model": r.model, "history": history, "metrics": metrics, "results": results, "config": config}
