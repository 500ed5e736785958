"""Training-step throughput of every method's network, at the experiments' ``cpu`` sizes.

Timed: one optimizer step the way :func:`labcore.train.fit` takes it, on one fixed batch
that is already on the device — the method's targets encoded from the batch's labels
(the experiments encode inside ``loss_fn``; the jigsaw net cuts its puzzles there too),
forward, the method's own loss, ``zero_grad(set_to_none=True)``, backward, the Adam step,
and ``float(loss)`` (``fit`` reads the loss every step). Not timed: collating and copying
the batch to the device. Each model: ``warmup`` steps, then the median (and best) of
``steps`` steps; samples/s = batch size / median.

Sizes, batch sizes and learning rates come from ``labcore.experiments.<name>.config('cpu')``
(a representative small size of each network); the data is the experiments' own
synthetic data (rendered once, cached in ``$LABCORE_CACHE``).

Device: :func:`labcore.runtime.device` (``LABCORE_DEVICE`` or CUDA when present), or
``--device``. On CUDA: ``torch.autocast`` in bfloat16 (float16 with a ``GradScaler``
where bf16 is unsupported), as ``fit(amp='auto')``, and ``torch.cuda.synchronize`` before
the clock starts and stops; the peak of allocated GPU memory is reported. The model, the
batch, the body models and every tensor a loss reads are moved to the device — a
method whose code does not run there shows its error in the table instead of a time.

    python benchmarks/bench_train.py [--quick] [--device DEV] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import ROOT, Section, Table, cuda_sync, measure, timed  # noqa: E402

warnings.filterwarnings("ignore", message="labcore: using the toy body")


@dataclass
class Case:
    """One network's training step: ``model``, a ``batch`` (dict of CPU tensors),
    ``loss_fn(model, batch) -> loss | (loss, logs)``, its ``size`` (the batch's samples),
    the learning rate, and what to move to the device besides model and batch
    (``to_device(dev)`` loads the body model there and returns the new loss function)."""

    model: torch.nn.Module
    batch: dict[str, Any]
    loss_fn: Callable[[torch.nn.Module, dict], Any]
    size: int
    lr: float
    shape: str
    to_device: Callable[[torch.device], Callable[[torch.nn.Module, dict], Any]] | None = None
    notes: list[str] = field(default_factory=list)


def _fields(data: Any, n: int) -> dict[str, torch.Tensor]:
    """The first ``n`` rows of a dataclass of tensors (the experiments' datasets) as a dict."""
    assert is_dataclass(data)
    return {f.name: getattr(data, f.name)[:n] for f in fields(data)}


def _on(obj: Any, dev: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(dev)
    if isinstance(obj, dict):
        return {k: _on(v, dev) for k, v in obj.items()}
    return obj


# ----------------------------------------------------------------------------- the cases


def topdown_heatmap(backbone: str = "SimpleBaseline", head: str = "heatmap") -> Case:
    """Notebook 01 / 04: ``TopDownHeatmapNet`` with MSRA targets + JointsMSELoss, or the
    integral head (soft-argmax + L1); SimpleBaseline as in ``heatmap_vs_integral``, HRNetLite
    as HSJP's ``cpu`` HRNet."""
    from labcore.experiments import heatmap_vs_integral as hvi
    from labcore.experiments import hsjp as hx
    from labcore.experiments.topdown import crops_at_sizes
    from labcore.methods.heatmap import (
        GaussianHeatmap,
        IntegralHeatmap,
        TopDownHeatmapNet,
        integral_l1_loss,
        joints_mse_loss,
    )
    from labcore.nn import SimpleBaseline, build_backbone

    cfg = hvi.config("cpu")
    size, n = cfg["size"], cfg["batch_size"]
    if backbone == "SimpleBaseline":
        net = SimpleBaseline(**cfg["backbone"])
    else:
        net = build_backbone("hrnet_lite", **hx.config("cpu")["backbone_cfg"]["HRNet"])
    model = TopDownHeatmapNet(net, num_joints=17)
    data = crops_at_sizes(n, [size], seed=cfg["data_seed"], background=cfg["background"], progress=False)[size]
    batch = {"image": data.images, "keypoints": data.keypoints, "visible": data.visible}
    hm_size = model.heatmap_size(data.size)
    if head == "heatmap":
        codec = GaussianHeatmap(data.size, hm_size, cfg["sigma"])

        def loss_fn(m, b):
            enc = codec.encode(b["keypoints"], b["visible"])
            return joints_mse_loss(m(b["image"]), enc["heatmaps"], enc["weights"])
    else:
        codec = IntegralHeatmap(data.size, hm_size, cfg["sigma"])

        def loss_fn(m, b):
            enc = codec.encode(b["keypoints"], b["visible"])
            return integral_l1_loss(codec.labels(m(b["image"])), enc["keypoint_labels"], enc["weights"])
    return Case(model, batch, loss_fn, n, cfg["lr"], f"{n}×3×{size}×{size}")


def simdr() -> Case:
    """Notebook 02: ``SimDRNet`` (SimpleBaseline, k = 2, smoothed one-hot labels) with the
    KL loss as ``simdr_vs_heatmap`` trains it, at its middle size (64²)."""
    from labcore.experiments import simdr_vs_heatmap as svh
    from labcore.experiments.topdown import crops_at_sizes
    from labcore.methods.simdr import SimDR, simdr_kl_loss

    cfg = svh.config("cpu")
    size, n = 64, cfg["batch_size"]
    model = svh.build_model("simdr", size, cfg)
    data = crops_at_sizes(n, [size], seed=cfg["data_seed"], background=cfg["background"], progress=False)[size]
    codec = SimDR(data.size, cfg["split_ratio"], sigma=0.0, label_smoothing=cfg["label_smoothing"])

    def loss_fn(m, b):
        enc = codec.encode(b["keypoints"], b["visible"])
        x, y = m(b["image"])
        return simdr_kl_loss(x, y, enc["x_labels"], enc["y_labels"], enc["weights"], reduction="nmt")

    batch = {"image": data.images, "keypoints": data.keypoints, "visible": data.visible}
    return Case(model, batch, loss_fn, n, cfg["lr"], f"{n}×3×{size}×{size}")


def sahr_wahr() -> Case:
    """Notebook 03: HigherHRNet-lite ``BottomUpNet`` with scale branches, HigherHRNet's
    targets at strides 4 and 2, ``bottom_up_loss`` with SAHR + WAHR + the AE tags."""
    from labcore.experiments import sahr_wahr as x
    from labcore.methods import sahr_wahr as sw

    cfg = x.config("cpu")
    n = cfg["batch_size"]
    train, _ = x.load_scenes(cfg | {"n_train": n, "n_val": 1}, progress=False)
    b = x.stack_scenes(train)
    model = x.build_model(cfg)
    targets = sw.BottomUpTargets(cfg["size"], sigma=cfg["sigma"])

    def loss_fn(m, batch):
        out = m(batch["image"])
        return sw.bottom_up_loss(out, targets.encode(batch["keypoints"], batch["visibility"]), sahr=True,
                                 wahr=True, gamma=cfg["gamma"], ae_factor=cfg["ae_factor"])

    batch = {"image": b["image"], "keypoints": b["keypoints"], "visibility": b["visibility"]}
    w, h = cfg["size"]
    return Case(model, batch, loss_fn, n, cfg["lr"], f"{n}×3×{h}×{w}, ≤ {cfg['people'][1]} people")


def hsjp() -> Case:
    """Notebook 04: the jigsaw pretext net (SimpleBaseline + n² = 9 channel head); the
    puzzles (permutation, shuffle, labels) are made inside the step, as in pretraining."""
    from labcore.experiments import hsjp as x
    from labcore.methods.hsjp import jigsaw_loss, jigsaw_model

    cfg = x.config("cpu")
    n = cfg["batch_size"]
    data = x.load_data(cfg | {"n_train": n, "n_val": 1}, progress=False)
    model = jigsaw_model(x.make_backbone("SimpleBaseline", cfg), cfg["grid"])
    task = x.jigsaw_task(cfg)
    gen = torch.Generator().manual_seed(0)

    def loss_fn(m, b):
        puzzle = task.make(b["image"], gen)
        return jigsaw_loss(m(puzzle["images"]), puzzle["labels"].to(b["image"].device))

    size = cfg["size"]
    return Case(model, {"image": data.unlabelled.images[:n]}, loss_fn, n, cfg["lr"],
                f"{n}×3×{size}×{size}, {cfg['grid']}×{cfg['grid']} grid")


def hemlets() -> Case:
    """Notebook 05: ``HEMletsNet`` (ResNet trunk, triplet + 2-D heatmap + volume heads), its
    targets (triplets, heatmaps, normalised 3-D joints) and ``hemlets_loss`` with the
    experiment's weights (the full "HEMlets" variant, 3-D labels)."""
    from labcore.experiments import hemlets as x
    from labcore.methods import hemlets as hm

    cfg = x.config("cpu")
    n, size = cfg["batch_size"], cfg["size"]
    crops = x.j18_crops(n, cfg["data_seed"], "lab", cfg, progress=False)
    model = x.build_model(cfg, hemlets_branch=True)
    codec = hm.HEMletsTriplets((size, size), (size // 4, size // 4), cfg["sigma"], cfg["depth_threshold"])

    def loss_fn(m, b):
        targets = hm.hemlets_targets(codec, b["keypoints"], b["visible"], depth=b["depth"],
                                     polarity=b["polarity"], has_3d=b["has_3d"])
        return hm.hemlets_loss(m(b["images"]), targets, triplet_weight=cfg["map_weight"],
                               heatmap_weight=cfg["map_weight"], ordinal_weight=cfg["ordinal_weight"],
                               depth_threshold=cfg["depth_threshold"])

    batch = {k: v for k, v in _fields(crops, n).items() if k not in ("joints3d", "K")}
    return Case(model, batch, loss_fn, n, cfg["lr"], f"{n}×3×{size}×{size}, D = {cfg['depth_bins']}")


def posh() -> Case:
    """Notebook 06: the PoSh regressor (HEMlets joints + pooled features → 6-D rotations
    and betas, IEF × 3) with ``posh_loss`` through the body model on a ``PartialBody`` of
    the joints' vertices + 689 sampled ones, as ``train_regressor``. Inputs: an untrained
    HEMlets net's predictions (the numbers do not change the step's cost)."""
    from labcore.body import PartialBody, load_body_model
    from labcore.experiments import hemlets as hx
    from labcore.experiments import posh as x
    from labcore.methods import posh as ps

    cfg = x.config("cpu")
    n = cfg["regressor_batch_size"]
    body = load_body_model("auto")
    crops = hx.j18_crops(n, cfg["data_seed"], "lab", cfg, progress=False)
    a = hx.person_crops(n, cfg["data_seed"], "lab", cfg, progress=False)
    t = ps.posh_targets(body, a["global_orient"], a["body_pose"], a["betas"])
    joints, features = x.hemlets_inputs(hx.build_model(cfg), crops, cfg)
    data = x.PoshSet(joints, features, t["rotmats"], t["betas"], t["joints"], t["vertices"])
    variant = "HEMlets · 6-D, IEF ×3"
    model = x.build_regressor(variant, cfg, data)
    sample = torch.randperm(body.v_template.shape[0], generator=torch.Generator().manual_seed(0))
    ids = sample[: cfg["loss_vertices"]].sort().values

    def make_loss(dev: torch.device):
        partial = PartialBody(load_body_model("auto", device=dev), ids)

        def loss_fn(m, b):
            out = m(b["joints"], b["features"])
            targets = {"rotmats": b["rotmats"], "betas": b["betas"], "joints": b["gt_joints"],
                       "vertices": b["vertices"]}
            return ps.posh_loss(partial, out, targets, **cfg["loss_weights"])
        return loss_fn

    return Case(model, _fields(data, n), make_loss(torch.device("cpu")), n, cfg["regressor_lr"],
                f"{n} people, {features.shape[1]} features, {cfg['loss_vertices']} + joint vertices",
                to_device=make_loss, notes=[f"variant {variant}; body {getattr(body, 'labcore_kind', 'smpl')}"])


def _clips(n: int) -> tuple[dict[str, Any], Any]:
    from labcore.experiments import eventhpe as x

    cfg = x.config("cpu")
    return cfg, x.load_data(cfg | {"n_train": n, "n_test": 1}, progress=False)["train"]


def flownet() -> Case:
    """Notebook 07, stage 1: EventHPE's ``FlowNet`` (EV-FlowNet U-Net) on 8 binary event
    frames, trained unsupervised: ``flownet_loss`` (photometric at 4 levels + smoothness)."""
    from labcore.experiments import eventhpe as x
    from labcore.methods import eventhpe as eh

    cfg = x.config("cpu")
    n = cfg["flownet_batch_size"]
    cfg, clips = _clips(-(-n // cfg["steps_per_clip"]))
    pairs = x.flow_pairs(clips)
    model = eh.FlowNet(cfg["event_channels"], **cfg["flownet"])
    k = cfg["gray_scale"]

    def loss_fn(m, b):
        return eh.flownet_loss(k * b["frame1"], k * b["frame2"], m(b["events"]), cfg["smoothness_weight"])

    batch = {key: getattr(pairs, key)[:n] for key in ("events", "frame1", "frame2")}
    size = cfg["size"]
    return Case(model, batch, loss_fn, n, cfg["flownet_lr"], f"{n}×8×{size}×{size}")


def shapenet() -> Case:
    """Notebook 07, stage 2: EventHPE's ``ShapeNet`` (CNN + GRU over T = 8 steps, SMPL on a
    ``PartialBody``) with ``shapenet_loss`` at the official weights and the flow coherence
    term (0.1), as ``train_shapenet``; the true flow stands in for FlowNet's."""
    from labcore.body import PartialBody, load_body_model
    from labcore.experiments import eventhpe as x
    from labcore.methods import eventhpe as eh

    cfg = x.config("cpu")
    n = cfg["shapenet_batch_size"]
    cfg, clips = _clips(n)
    body = load_body_model("auto")
    ids = torch.randperm(body.v_template.shape[0], generator=torch.Generator().manual_seed(0))
    ids = ids[: cfg["loss_vertices"]].sort().values
    partial = PartialBody(body, ids)
    model = x.build_shapenet(partial, clips, cfg)
    batch = _fields(clips, n) | {"pred_flow": clips.flow[:n]}
    size = cfg["size"]
    weights = {"flow": x.VARIANTS["with flow coherence"]}

    def make_loss(dev: torch.device):
        if dev.type != "cpu":  # the body is not a module of the net: rebuild it on the device
            model.body = PartialBody(load_body_model("auto", device=dev), ids)

        def loss_fn(m, b):
            out = m(b["events"], x._init(b), b["gray"][:, 0], b["pred_flow"], K=b["K"])
            return eh.shapenet_loss(out, x._targets(b, size), K=b["K"], flow=b["pred_flow"],
                                    threshold=cfg["flow_threshold"], weights=weights)
        return loss_fn

    T = cfg["steps_per_clip"]
    return Case(model, batch, make_loss(torch.device("cpu")), n, cfg["shapenet_lr"],
                f"{n} clips × {T} steps × (8 + 2)×{size}×{size}", to_device=make_loss)


#: name → (method module, case builder)
CASES: dict[str, tuple[str, Callable[[], Case]]] = {
    "heatmap · SimpleBaseline": ("methods.heatmap", lambda: topdown_heatmap("SimpleBaseline", "heatmap")),
    "integral · SimpleBaseline": ("methods.heatmap", lambda: topdown_heatmap("SimpleBaseline", "integral")),
    "heatmap · HRNetLite": ("methods.heatmap", lambda: topdown_heatmap("HRNet", "heatmap")),
    "SimDR · SimpleBaseline": ("methods.simdr", simdr),
    "SAHR + WAHR · BottomUpNet": ("methods.sahr_wahr", sahr_wahr),
    "HSJP jigsaw · SimpleBaseline": ("methods.hsjp", hsjp),
    "HEMletsNet": ("methods.hemlets", hemlets),
    "PoSh regressor + body": ("methods.posh", posh),
    "EventHPE FlowNet": ("methods.eventhpe", flownet),
    "EventHPE ShapeNet + body": ("methods.eventhpe", shapenet),
}


# ----------------------------------------------------------------------------- the step


def amp_dtype(dev: torch.device) -> torch.dtype | None:
    """The autocast dtype ``fit(amp='auto')`` uses on ``dev`` (``None``: no autocast)."""
    if dev.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def time_case(case: Case, dev: torch.device, warmup: int, steps: int) -> dict[str, Any]:
    """Move ``case`` to ``dev`` and time its training step (see the module docstring)."""
    model = case.model.to(dev).train()
    batch = _on(case.batch, dev)
    loss_fn = case.to_device(dev) if case.to_device is not None and dev.type != "cpu" else case.loss_fn
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=case.lr)
    dtype = amp_dtype(dev)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)

    def step() -> float:
        with torch.autocast(device_type=dev.type, dtype=dtype, enabled=dtype is not None):
            out = loss_fn(model, batch)
        loss = out[0] if isinstance(out, tuple) else out
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss.reshape(())).backward()
        scaler.step(opt)
        scaler.update()
        return float(loss.detach().float())

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t = measure(step, steps, warmup=warmup, sync=cuda_sync(dev))
    row = {"ms_step": 1e3 * t.median, "best_ms": 1e3 * t.best, "samples_per_s": case.size / t.median,
           "params_m": sum(p.numel() for p in params) / 1e6, "loss": step()}
    if dev.type == "cuda":
        row["peak_mem_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    return row


def _where(err: BaseException) -> str | None:
    """``labcore/...py:line`` of the innermost labcore frame of ``err``'s traceback."""
    for f in reversed(traceback.extract_tb(err.__traceback__)):
        path = Path(f.filename).resolve()
        if "labcore" in path.parts and ROOT in path.parents:
            return f"{path.relative_to(ROOT)}:{f.lineno}"
    return None


def run(names: list[str] | None = None, quick: bool = False, device: str | None = None,
        log: Callable[[dict], None] = lambda row: None) -> list[dict[str, Any]]:
    """One row per network of :data:`CASES` (or ``names``): time per step, samples/s, ... or
    the ``error`` that stopped it (with the failing line in ``where``)."""
    from labcore.runtime import device as default_device

    dev = torch.device(device) if device else default_device()
    warmup, steps = (1, 3) if quick else (3, 10)
    dtype = amp_dtype(dev)
    rows = []
    for name in names or list(CASES):
        module, build = CASES[name]
        row: dict[str, Any] = {"model": name, "module": module, "device": str(dev),
                               "dtype": "float32" if dtype is None else f"autocast {str(dtype).split('.')[-1]}",
                               "steps": steps}
        try:
            torch.manual_seed(0)
            case, setup_s = timed(build)
            row |= {"batch": case.shape, "setup_s": setup_s, "notes": "; ".join(case.notes) or None}
            row |= time_case(case, dev, warmup, steps)
        except Exception as err:  # noqa: BLE001 - reported in the table: a benchmark of every method
            row |= {"error": f"{type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]}",
                    "where": _where(err)}
        finally:
            if dev.type == "cuda":
                torch.cuda.empty_cache()
        rows.append(row)
        log(row)
    return rows


def describe(r: dict[str, Any]) -> str:
    """One line for a row (progress output)."""
    if "error" in r:
        return f"{r['model']:<30} {r['device']:<6} ERROR {r['error']} ({r.get('where')})"
    return (f"{r['model']:<30} {r['device']:<6} {r['dtype']:<16} {r['ms_step']:>8.1f} ms/step "
            f"{r['samples_per_s']:>8.0f} samples/s  ({r['batch']}, {r['params_m']:.2f} M params)")


COLUMNS = [("model", "model", ""), ("module", "labcore module", ""), ("batch", "batch", ""),
           ("params_m", "params (M)", ".2f"), ("device", "device", ""), ("dtype", "dtype", ""),
           ("ms_step", "ms / step (median)", ".1f"), ("best_ms", "best ms", ".1f"),
           ("samples_per_s", "samples / s", ".0f"), ("error", "error", ""), ("where", "where", "")]


def section(quick: bool = False, device: str | None = None, names: list[str] | None = None,
            log: Callable[[dict], None] = lambda row: None) -> Section:
    """The report section: :func:`run` as one table (``log`` gets each row as it comes)."""
    rows = run(names, quick, device, log)
    warmup, steps = (1, 3) if quick else (3, 10)
    cols = list(COLUMNS)
    if any("peak_mem_mb" in r for r in rows):
        cols.insert(-2, ("peak_mem_mb", "peak GPU MiB", ".0f"))
    notes = [r["model"] + ": " + r["notes"] for r in rows if r.get("notes")]
    about = (f"One optimizer step as `labcore.train.fit` takes it (targets encoded from the batch, forward, the "
             f"method's loss, backward, Adam step, `float(loss)`) on a fixed batch already on the device; "
             f"{warmup} warm-up step(s), then the median of {steps}. Sizes, batch sizes and learning rates: "
             f"each experiment's `config('cpu')`. On CUDA: autocast (bf16 where supported) and "
             f"`torch.cuda.synchronize` around every timed step.")
    return Section("train", "Training-step throughput", about, [Table("", cols, rows, notes)],
                   settings={"warmup": warmup, "steps": steps, "torch_threads": torch.get_num_threads()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 warm-up + 3 timed steps (default 3 + 10)")
    ap.add_argument("--device", default=None, help="torch device (default: labcore.runtime.device())")
    ap.add_argument("--only", nargs="+", choices=list(CASES), metavar="NAME", help=f"some of: {list(CASES)}")
    args = ap.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    run(args.only, args.quick, args.device, lambda r: print(describe(r), flush=True))


if __name__ == "__main__":
    main()
