"""One small, deterministic, resumable training loop for every method: :func:`fit`.

::

    def loss_fn(model, batch):
        pred = model(batch["image"])
        loss = F.mse_loss(pred, batch["heatmaps"])
        return loss, {"mse": loss.detach()}

    history = fit(model, loss_fn, dataset, steps=500, lr=1e-3, schedule="cosine",
                  evaluate=lambda m: {"pck": my_pck(m)}, eval_every=100,
                  checkpoint="runs/heatmap.pt", checkpoint_every=100)
    history.final_eval["pck"]

What it promises:

* **Batches.** ``data`` is a map-style dataset (``__len__`` + ``__getitem__``), read in the
  main process. Step ``s`` (0-based) belongs to epoch ``e = s // batches_per_epoch``; the
  epoch's order is ``torch.randperm(len(data))`` drawn from
  ``torch.Generator().manual_seed(seed * 1_000_003 + e)``; incomplete last batches are
  dropped, unless the dataset is smaller than ``batch_size``, in which case every batch is
  the whole (shuffled) dataset. Samples are collated by ``collate_fn`` (default
  ``torch.utils.data.default_collate``; dicts of tensors are fine) and moved to the device
  recursively (dicts, lists, tuples).
* **Determinism.** :func:`labcore.runtime.seed_all` ``(seed)`` is called first; on CPU the
  same arguments give bit-identical losses and weights.
* **Resume.** With ``checkpoint`` set, a checkpoint is written atomically (temporary file
  in the same folder + ``os.replace``) every ``checkpoint_every`` steps and at the end.
  It holds the model, optimizer and GradScaler states, the step, the RNG states (torch
  CPU/CUDA, Python, NumPy) and the history, as tensors and plain containers only, so that
  ``torch.load(path, weights_only=True)`` reads it. With ``resume=True`` an existing
  checkpoint is loaded and training continues from its step: on CPU, ``2n`` steps in one
  go and ``n`` steps + crash/stop + resume to ``2n`` give bit-identical weights.
  The learning-rate schedule is a pure function of the step, so it needs no state of its
  own (the checkpoint's ``"scheduler"`` entry records the base learning rates and step).
* **Schedules** (``s`` = 0-based step, ``T = steps``, ``w = warmup_steps``): the learning
  rate of step ``s`` is ``lr · warmup(s) · f(s)`` with ``warmup(s) = min(1, (s+1)/w)``
  (1 when ``w == 0``) and ``f``: ``'constant'`` 1; ``'cosine'``
  ``½(1 + cos(π·(s−w)/(T−w)))`` after the warm-up (1 during it); ``'step'``
  ``gamma^(number of milestones ≤ s)``; ``'warmup_linear'`` ``(T−s)/(T−w)`` after the
  warm-up (linear decay that would reach 0 at step ``T``); a callable ``f(s)``.
  ``History.lr`` records the rate of every step.
* **AMP.** ``amp='auto'`` uses ``torch.autocast`` on CUDA (bfloat16 where supported, else
  float16 with a ``GradScaler``) and nothing on CPU; ``amp=False`` turns it off.
* **Distributed.** Launch the same script once per process with
  ``torchrun --nproc_per_node=2 your_script.py`` and call :func:`init_distributed` before
  :func:`fit` (it reads torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``
  variables; gloo on CPU, NCCL on CUDA with one GPU per process) and
  :func:`cleanup_distributed` at the end. With ``distributed='auto'`` (the default) and a
  process group of ``W > 1`` processes, :func:`fit` wraps the model in
  ``DistributedDataParallel``; ``loss_fn(m, batch)`` then gets the wrapper (``m(x)`` runs
  DDP's forward; the model's public attributes read through it). Every rank draws the same epoch permutation; step ``s``'s
  global batch of ``batch_size`` indices is cut into ``W`` contiguous equal shards and
  rank ``r`` reads shard ``r`` (``batch_size`` must be divisible by ``W`` and the dataset
  at least ``batch_size`` long). DDP averages the ranks' gradients, so for a model without
  BatchNorm (or dropout) ``W`` processes × ``batch_size/W`` samples give the weights and
  ``History.loss`` (the mean over ranks) of one process × ``batch_size`` samples, to float
  rounding (~1e-6). **BatchNorm** normalises each rank's local ``batch_size/W`` samples
  and keeps per-rank running statistics, as in the official DDP codes (``SyncBatchNorm``
  is the CUDA remedy); rank 0's running statistics are the ones evaluated, saved and
  copied to every rank at the end. Rank ``r`` seeds the global RNGs with
  ``seed + 1_000_003·r`` so dropout and random augmentation differ between ranks. Only
  rank 0 shows the progress bar, writes checkpoints (the others wait for it) and runs
  ``evaluate`` (on the plain model; its metrics are sent to every rank), so every rank
  returns the same :class:`History` (``device`` aside). The checkpoint holds the plain
  model's ``state_dict`` (no ``module.`` prefix) and every rank's RNG state; all ranks
  resume from the same file, which must be on a file system they share.
"""

from __future__ import annotations

import contextlib
import datetime
import inspect
import math
import numbers
import os
import random
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import default_collate
from tqdm.auto import tqdm

from labcore.checks import check_choice, check_int, check_number
from labcore.data.io import atomic_write
from labcore.runtime import device as default_device
from labcore.runtime import seed_all

__all__ = [
    "fit",
    "History",
    "NonFiniteLossError",
    "lr_factor",
    "OPTIMIZERS",
    "SCHEDULES",
    "init_distributed",
    "distributed_info",
    "is_main_process",
    "cleanup_distributed",
    "distributed_device",
]

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "step", "warmup_linear")
CHECKPOINT_FORMAT = "labcore.train/1"


class NonFiniteLossError(FloatingPointError, ValueError):
    """The loss became NaN or infinite. Both a ``FloatingPointError`` and a ``ValueError``;
    the message names the step."""


@dataclass
class History:
    """What :func:`fit` records.

    ``steps[i]`` is the 1-based number of the optimizer step whose loss is ``loss[i]``,
    learning rate ``lr[i]`` and extra logs ``logs[i]`` (floats from ``loss_fn``, plus
    ``grad_norm`` when ``grad_clip`` is set). ``evals`` holds ``(step, metrics)`` pairs.
    ``seconds`` is the wall time spent in :func:`fit` (summed over resumed runs). Under
    DDP ``loss`` and ``logs`` are means over the ranks, and ``evals`` and ``seconds`` are
    rank 0's, so every rank returns the same History (``device`` names its own GPU).
    """

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    logs: list[dict] = field(default_factory=list)
    evals: list[tuple[int, dict]] = field(default_factory=list)
    seconds: float = 0.0
    device: str = "cpu"
    lr: list[float] = field(default_factory=list)

    @property
    def final_eval(self) -> dict | None:
        """The metrics of the last evaluation, or ``None`` if there was none."""
        return self.evals[-1][1] if self.evals else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (lists of numbers, dicts of floats)."""
        return {
            "steps": [int(s) for s in self.steps],
            "loss": [float(v) for v in self.loss],
            "logs": [dict(d) for d in self.logs],
            "evals": [[int(s), dict(m)] for s, m in self.evals],
            "seconds": float(self.seconds),
            "device": str(self.device),
            "lr": [float(v) for v in self.lr],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> History:
        """Inverse of :meth:`to_dict`."""
        return cls(
            steps=[int(s) for s in d.get("steps", [])],
            loss=[float(v) for v in d.get("loss", [])],
            logs=[dict(x) for x in d.get("logs", [])],
            evals=[(int(s), dict(m)) for s, m in d.get("evals", [])],
            seconds=float(d.get("seconds", 0.0)),
            device=str(d.get("device", "cpu")),
            lr=[float(v) for v in d.get("lr", [])],
        )


# ----------------------------------------------------------------------------- schedules

def lr_factor(
    schedule: str | Callable[[int], float],
    step: int,
    steps: int,
    *,
    warmup_steps: int = 0,
    milestones: Sequence[int] | None = None,
    gamma: float = 0.1,
) -> float:
    """The factor that multiplies the base learning rate at 0-based ``step`` of ``steps``
    (see the module docstring for the formulas). :func:`fit` uses exactly this."""
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    if callable(schedule):
        value = schedule(step)
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        f = check_number(value, f"schedule({step})", low=0.0)
    elif schedule == "constant":
        f = 1.0
    elif schedule == "cosine":
        p = min(1.0, max(0.0, (step - warmup_steps) / max(1, steps - warmup_steps)))
        f = 0.5 * (1.0 + math.cos(math.pi * p))
    elif schedule == "step":
        f = gamma ** sum(1 for m in (milestones or ()) if m <= step)
    elif schedule == "warmup_linear":
        f = 1.0 if step < warmup_steps else (steps - step) / max(1, steps - warmup_steps)
    else:  # pragma: no cover - fit validates the name first
        check_choice(schedule, "schedule", SCHEDULES)
        raise AssertionError
    return warm * f


# ----------------------------------------------------------------------------- helpers

def _to_device(obj: Any, dev: torch.device) -> Any:
    """Move tensors inside dicts/lists/tuples (namedtuples too) to ``dev``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(dev, non_blocking=True)
    if isinstance(obj, Mapping):
        return {k: _to_device(v, dev) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_to_device(v, dev) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, dev) for v in obj)
    return obj


def _as_float(value: Any, name: str) -> float:
    """A Python float from a number or a one-element tensor."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name}: expected a scalar, got a tensor of shape "
                             f"{tuple(value.shape)}")
        return float(value.detach().float().item())
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name}: expected a number or a one-element tensor, "
                        f"got {type(value).__name__}")
    return float(value)


def _float_dict(d: Any, name: str) -> dict[str, float]:
    if not isinstance(d, Mapping):
        raise TypeError(f"{name}: expected a dict of str -> number, got {type(d).__name__}")
    out = {}
    for k, v in d.items():
        if not isinstance(k, str):
            raise TypeError(f"{name}: expected str keys, got {k!r}")
        out[k] = _as_float(v, f"{name}[{k!r}]")
    return out


def _make_optimizer(
    optimizer: str | Callable[..., torch.optim.Optimizer],
    params: list[nn.Parameter],
    lr: float,
    weight_decay: float,
) -> torch.optim.Optimizer:
    if callable(optimizer):
        opt = optimizer(params)
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(f"optimizer: the callable must return a torch.optim.Optimizer, "
                            f"got {type(opt).__name__}")
        return opt
    check_choice(optimizer, "optimizer", OPTIMIZERS)
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)


def _rng_state() -> dict[str, Any]:
    """All RNG states as tensors / plain containers (``weights_only``-loadable)."""
    np_state = np.random.get_state()  # noqa: NPY002 - datasets may use the legacy global RNG
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
         n["cached_gaussian"])
    )
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save_atomic(obj: dict[str, Any], path: Path) -> None:
    """``torch.save`` through :func:`labcore.data.io.atomic_write`: a crash at any point
    leaves the previous checkpoint untouched."""
    atomic_write(path, lambda f: torch.save(obj, f))


def _progress_enabled(progress: bool) -> bool:
    env = os.environ.get("LABCORE_PROGRESS", "").strip().lower()
    return bool(progress) and env not in ("0", "false", "no", "off")


# ----------------------------------------------------------------------------- distributed

# The variables torchrun sets for every worker (``env://`` initialisation reads them).
_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def _env_int(name: str) -> int:
    raw = os.environ[name]
    try:
        return int(raw)
    except ValueError:
        raise RuntimeError(f"environment variable {name}: expected an int (torchrun sets "
                           f"it), got {raw!r}") from None


def _group_ready() -> bool:
    return dist.is_available() and dist.is_initialized()


def distributed_info() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised default process group, else ``(0, 1)``."""
    if _group_ready():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    """True on rank 0 of the process group, and in a process without one."""
    return distributed_info()[0] == 0


def distributed_device() -> torch.device:
    """This process's device: ``cuda:LOCAL_RANK`` when torchrun set ``LOCAL_RANK`` and the
    default device (:func:`labcore.runtime.device`, which honours ``LABCORE_DEVICE``) is
    CUDA; otherwise that default device."""
    dev = default_device()
    if dev.type == "cuda" and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", _env_int("LOCAL_RANK"))
    return dev


def init_distributed(backend: str | None = None) -> tuple[int, int]:
    """Join the process group torchrun set up for this process; return ``(rank, world_size)``.

    Under ``torchrun`` (the environment holds ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``MASTER_ADDR`` and ``MASTER_PORT``) this calls ``torch.distributed.init_process_group``
    with ``init_method='env://'``; on CUDA it first selects ``cuda:LOCAL_RANK`` with
    ``torch.cuda.set_device``, so that each process drives its own GPU. Without those
    variables it initialises nothing and returns ``(0, 1)``: a script written for torchrun
    also runs as a plain ``python your_script.py``. Calling it again is a no-op.

    Args:
        backend: ``'nccl'``, ``'gloo'``, ... (``torch.distributed.Backend``); default
            ``'nccl'`` when :func:`distributed_device` is CUDA, else ``'gloo'``.

    Raises:
        TypeError/ValueError on a bad ``backend``; RuntimeError when only some of
        torchrun's variables are set, or ``LOCAL_RANK`` names a GPU that does not exist.
    """
    if backend is not None:
        if not isinstance(backend, str):
            raise TypeError(f"backend: expected a str such as 'gloo' or 'nccl', "
                            f"got {type(backend).__name__}")
        backend = backend.lower()
        choices = [b for b in dist.Backend.backend_list if b not in ("undefined", "fake")]
        if backend not in choices:
            raise ValueError(f"backend: expected one of {tuple(choices)}, got {backend!r}")
    if _group_ready():
        return distributed_info()
    # Any of the per-worker variables means "launched by torchrun"; MASTER_ADDR alone may be
    # a cluster-wide setting and does not count.
    if not any(v in os.environ for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK")):
        return 0, 1
    missing = [v for v in _TORCHRUN_VARS if v not in os.environ]
    if missing:
        raise RuntimeError(f"init_distributed: the environment has "
                           f"{[v for v in _TORCHRUN_VARS if v in os.environ]} but not "
                           f"{missing}; launch the script with torchrun "
                           f"(torchrun --nproc_per_node=2 your_script.py)")
    if not dist.is_available():
        raise RuntimeError("init_distributed: this torch build has no torch.distributed")
    dev = distributed_device()
    if backend is None:
        backend = "nccl" if dev.type == "cuda" else "gloo"
    if backend == "nccl" and dev.type != "cuda":
        raise ValueError(f"backend: 'nccl' needs CUDA, but this process's device is {dev}; "
                         f"use 'gloo'")
    if dev.type == "cuda":
        if dev.index >= torch.cuda.device_count():
            raise RuntimeError(f"init_distributed: LOCAL_RANK={dev.index} but only "
                               f"{torch.cuda.device_count()} GPU(s) are visible; lower "
                               f"torchrun's --nproc_per_node")
        torch.cuda.set_device(dev)
    dist.init_process_group(backend=backend, init_method="env://")
    return distributed_info()


def cleanup_distributed(*, timeout: float = 60.0) -> None:
    """Destroy the default process group if there is one (call it once, at the end of a
    torchrun script, on every rank); a no-op otherwise.

    It first waits, at most ``timeout`` seconds, until every rank has got here: with gloo
    (torch 2.13), a process that tears its group down while a peer still finishes its last
    collectives sometimes dies at exit with SIGABRT ("terminate called without an active
    exception"), after all its work is done, and torchrun then reports the run as failed.
    A rank that failed and never arrives only costs the wait.
    """
    timeout = check_number(timeout, "timeout", low=0.0)
    if not _group_ready():
        return
    # A peer that failed (or a timeout) raises here: tear down anyway, as without the wait.
    with contextlib.suppress(Exception):
        dist.barrier(async_op=True).wait(timeout=datetime.timedelta(seconds=timeout))
    dist.destroy_process_group()


class _DDP(DistributedDataParallel):
    """The ``DistributedDataParallel`` wrapper :func:`fit` hands to ``loss_fn``.

    ``m(x)`` runs DDP's forward (which is what makes the gradients averaged across ranks)
    and public attributes the wrapper itself lacks are read from the wrapped model, so a
    ``loss_fn`` written for a plain model (``m(batch["image"])``, ``m.heatmap_size``) works
    unchanged. ``_labcore_forwards`` counts the calls of ``m(...)`` so that :func:`fit` can
    refuse a ``loss_fn`` that bypasses DDP (calls only submodules or methods): its
    gradients would silently stay per-rank.
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            # Private names stay DDP's own: DDP probes some of its lazily set state with
            # hasattr(self, ...), which must not find the model's attributes instead.
            if name.startswith("_") or name in ("module", "buffer_hook"):
                raise
        # Outside the except: a missing attribute then reads as the model's own error.
        return getattr(self.module, name)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        self._labcore_forwards += 1
        return super().forward(*args, **kwargs)


def _wrap_ddp(model: nn.Module, dev: torch.device) -> _DDP:
    """``model`` (already on ``dev``) in :class:`_DDP`, with buffers in sync from rank 0.

    Buffers are not broadcast at every forward: DDP's forward then needs no collective, so
    a rank whose data or ``loss_fn`` fails still reaches :func:`_gather_status` and the
    failure is reported on every rank. BatchNorm running statistics therefore stay per
    rank during training (they do not affect training-mode outputs).
    """
    _broadcast_buffers(model)
    sync = ({"forward_sync_buffers": False}
            if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
            else {"broadcast_buffers": False})  # torch < 2.13 spells it this way
    net = _DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None, **sync)
    net._labcore_forwards = 0
    return net


def _broadcast_buffers(model: nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics, ...) to every rank."""
    with torch.no_grad():
        for b in model.buffers():
            dist.broadcast(b, src=0)


def _gather_status(payload: Any, error: BaseException | None, what: str) -> list[Any]:
    """All ranks exchange ``(error, payload)``; return every rank's payload, in rank order.

    Every rank must call it at the same point. A rank that failed (``error`` set) re-raises
    its own exception; the others raise a RuntimeError naming the failed rank, instead of
    waiting forever in the next collective. ``payload`` travels by pickle between the
    processes of this job (trusted by construction).
    """
    got: list[Any] = [None] * dist.get_world_size()
    message = None if error is None else f"{type(error).__name__}: {error}"
    dist.all_gather_object(got, (message, payload))
    if error is not None:
        raise error
    for r, (msg, _) in enumerate(got):
        if msg is not None:
            raise RuntimeError(f"{what}: rank {r} failed with {msg}")
    return [p for _, p in got]


# ----------------------------------------------------------------------------- fit

def fit(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Any], Any],
    data: Any,
    *,
    steps: int,
    batch_size: int = 32,
    lr: float = 1e-3,
    optimizer: str | Callable[..., torch.optim.Optimizer] = "adam",
    weight_decay: float = 0.0,
    schedule: str | Callable[[int], float] = "constant",
    warmup_steps: int = 0,
    milestones: Sequence[int] | None = None,
    gamma: float = 0.1,
    grad_clip: float | None = None,
    evaluate: Callable[[nn.Module], Mapping[str, Any]] | None = None,
    eval_every: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = True,
    device: str | torch.device | None = None,
    amp: bool | str = "auto",
    seed: int = 0,
    collate_fn: Callable[[list], Any] | None = None,
    progress: bool = True,
    desc: str = "train",
    distributed: bool | str = "auto",
) -> History:
    """Train ``model`` for ``steps`` optimizer steps on ``data`` and return a :class:`History`.

    Args:
        model: the ``nn.Module``; moved to ``device`` and put in train mode (its original
            mode is restored at the end).
        loss_fn: ``loss_fn(model, batch) -> loss`` or ``(loss, logs)``; ``loss`` a finite
            scalar tensor, ``logs`` a dict of numbers / one-element tensors.
        data: a map-style dataset (``len`` and integer indexing), e.g. a
            ``torch.utils.data.TensorDataset`` or any labcore dataset.
        steps: total number of optimizer steps (``>= 1``), counted across resumes.
        batch_size: samples per step; see the module docstring for epochs and drop-last.
        lr, weight_decay: base learning rate (``> 0``) and weight decay (``>= 0``).
        optimizer: ``'adam'``, ``'adamw'``, ``'sgd'`` (momentum 0.9) or a callable
            ``params -> Optimizer`` (then ``lr``/``weight_decay`` are not used; the schedule
            scales the optimizer's own per-group learning rates).
        schedule, warmup_steps, milestones, gamma: the learning-rate schedule (module
            docstring); ``'step'`` needs ``milestones`` (0-based steps).
        grad_clip: clip the global gradient norm to this value (logs ``grad_norm``).
        evaluate: ``evaluate(model) -> dict[str, float]``, run under ``torch.no_grad()``
            with ``model.eval()`` every ``eval_every`` steps and after the last step.
        checkpoint, checkpoint_every, resume: the checkpoint path, its period in steps
            (default: only at the end) and whether to continue from an existing file.
        device: default :func:`labcore.runtime.device`.
        amp: ``'auto'`` (CUDA only), ``True`` (requires CUDA) or ``False``.
        seed: seeds everything (batch order, ``torch``/``numpy``/``random`` global RNGs).
        collate_fn: default ``torch.utils.data.default_collate``.
        progress, desc: the tqdm bar (also off with ``LABCORE_PROGRESS=0``) and its label.
        distributed: ``'auto'`` trains with ``DistributedDataParallel`` when a process
            group of more than one process is initialised (see :func:`init_distributed`
            and the module docstring), ``True`` requires a process group (of any size),
            ``False`` never uses DDP (each process then runs its own independent fit).
            Under DDP, ``loss_fn`` receives the DDP wrapper: calling ``m(x)`` goes through
            DDP (``loss_fn`` must call it; calling only submodules would skip the gradient
            averaging and is refused), and the model's public attributes (``m.heatmap_size``)
            read through to the model, also available as ``m.module``. ``evaluate`` gets
            the plain model, on rank 0 only, and must not use ``torch.distributed``.
            Every trainable parameter must get a gradient at every step (DDP's rule;
            freeze unused ones with ``requires_grad_(False)``). ``device`` defaults to
            :func:`distributed_device` (``cuda:LOCAL_RANK``).

    Raises:
        TypeError/ValueError on bad arguments; :class:`NonFiniteLossError` when the loss
        becomes NaN/inf (the message names the step).
    """
    # ---- validate
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn: expected a callable (model, batch) -> loss, "
                        f"got {type(loss_fn).__name__}")
    if not (hasattr(data, "__len__") and hasattr(data, "__getitem__")):
        raise TypeError(f"data: expected a map-style dataset with __len__ and __getitem__, "
                        f"got {type(data).__name__}")
    n_data = len(data)
    if n_data < 1:
        raise ValueError("data: expected a non-empty dataset, got length 0")
    steps = check_int(steps, "steps", low=1)
    batch_size = check_int(batch_size, "batch_size", low=1)
    lr = check_number(lr, "lr", low=0.0, low_inclusive=False)
    weight_decay = check_number(weight_decay, "weight_decay", low=0.0)
    if not callable(optimizer):
        check_choice(optimizer, "optimizer", OPTIMIZERS)
    if not callable(schedule):
        check_choice(schedule, "schedule", SCHEDULES)
    warmup_steps = check_int(warmup_steps, "warmup_steps", low=0)
    if warmup_steps >= steps and schedule in ("cosine", "warmup_linear"):
        raise ValueError(f"warmup_steps: expected fewer than steps={steps} for "
                         f"schedule={schedule!r}, got {warmup_steps}")
    gamma = check_number(gamma, "gamma", low=0.0, low_inclusive=False)
    if schedule == "step":
        if milestones is None:
            raise ValueError("milestones: schedule='step' needs milestones (0-based steps "
                             "at which the rate is multiplied by gamma), got None")
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Sequence):
            raise TypeError(f"milestones: expected a sequence of ints, "
                            f"got {type(milestones).__name__}")
        milestones = [check_int(m, f"milestones[{i}]", low=0) for i, m in enumerate(milestones)]
    if grad_clip is not None:
        grad_clip = check_number(grad_clip, "grad_clip", low=0.0, low_inclusive=False)
    if evaluate is not None and not callable(evaluate):
        raise TypeError(f"evaluate: expected a callable model -> dict, "
                        f"got {type(evaluate).__name__}")
    if eval_every is not None:
        if evaluate is None:
            raise ValueError("eval_every: given without evaluate")
        eval_every = check_int(eval_every, "eval_every", low=1)
    if checkpoint_every is not None:
        if checkpoint is None:
            raise ValueError("checkpoint_every: given without checkpoint (a file path)")
        checkpoint_every = check_int(checkpoint_every, "checkpoint_every", low=1)
    ckpt_path = Path(checkpoint).expanduser() if checkpoint is not None else None
    if ckpt_path is not None and ckpt_path.is_dir():
        raise ValueError(f"checkpoint: expected a file path, got the folder {ckpt_path}")
    check_choice(amp, "amp", ("auto", True, False))
    if collate_fn is None:
        collate_fn = default_collate
    elif not callable(collate_fn):
        raise TypeError(f"collate_fn: expected a callable, got {type(collate_fn).__name__}")
    seed = check_int(seed, "seed")
    # Not check_choice: 1 == True would pass it and then count as neither True nor 'auto'.
    if not (isinstance(distributed, bool) or (isinstance(distributed, str)
                                              and distributed == "auto")):
        raise ValueError(f"distributed: expected 'auto', True or False, got {distributed!r}")
    if distributed is True and not _group_ready():
        raise ValueError("distributed: distributed=True needs an initialised "
                         "torch.distributed process group; launch with torchrun and call "
                         "labcore.train.init_distributed() first, or use 'auto'/False")
    rank, world = distributed_info()
    ddp = _group_ready() and (distributed is True or (distributed == "auto" and world > 1))
    if ddp:
        if isinstance(model, DistributedDataParallel):
            raise TypeError("model: pass the plain model; fit wraps it in "
                            "DistributedDataParallel itself")
        if batch_size % world:
            raise ValueError(f"batch_size: under DDP each of the {world} processes reads "
                             f"batch_size / {world} samples, so batch_size must be divisible "
                             f"by the world size {world}; got {batch_size}")
        if n_data < batch_size:
            raise ValueError(f"data: under DDP the dataset must hold at least "
                             f"batch_size={batch_size} samples (each step's batch is split "
                             f"across {world} processes), got {n_data}")

    # ---- set up
    # Under DDP, distinct per-rank seeds give independent dropout masks and augmentations
    # on each rank's shard (as one process would draw for the whole batch); the batch order
    # has its own generator, seeded from ``seed`` alone, so every rank agrees on it.
    seed_all(seed + 1_000_003 * rank if ddp else seed)
    try:
        if device is not None:
            dev = default_device(str(device))
        else:
            dev = distributed_device() if ddp else default_device()
    except RuntimeError as e:  # torch.device("gpu") and the like
        raise ValueError(f"device: expected a torch device such as 'cpu' or 'cuda', "
                         f"got {device!r} ({e})") from e
    if ddp and dev.type == "cuda":
        if dev.index is None:  # plain 'cuda': this process's GPU, not everybody's cuda:0
            dev = distributed_device() if "LOCAL_RANK" in os.environ else torch.device(
                "cuda", torch.cuda.current_device())
        # Object collectives (_gather_status) stage their bytes on the current device.
        torch.cuda.set_device(dev)
    if amp is True and dev.type != "cuda":
        raise ValueError(f"amp: amp=True needs a CUDA device, got {dev}; use amp='auto'")
    use_amp = dev.type == "cuda" and amp in ("auto", True)
    amp_dtype = None
    if use_amp:
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    # The scaler is only enabled for float16 autocast; disabled, it passes calls through.
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    was_training = model.training
    model.to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model: has no trainable parameters (requires_grad=True)")
    opt = _make_optimizer(optimizer, params, lr, weight_decay)
    base_lrs = [float(g["lr"]) for g in opt.param_groups]

    history = History(device=str(dev))
    start = 0
    config = {"seed": seed, "batch_size": batch_size, "len_data": n_data, "steps": steps,
              "world_size": world if ddp else 1}
    if not ddp:
        if ckpt_path is not None and resume and ckpt_path.is_file():
            start, history = _load_checkpoint(ckpt_path, model, opt, scaler, config)
            history.device = str(dev)
    else:
        # Every rank loads the same file; the exchange below makes sure they all found it
        # (a checkpoint folder that is not shared would silently desynchronise the ranks).
        error = None
        try:
            if ckpt_path is not None and resume and ckpt_path.is_file():
                start, history = _load_checkpoint(ckpt_path, model, opt, scaler, config,
                                                  rank=rank, world_size=world)
                history.device = str(dev)
        except Exception as e:  # reported on every rank by _gather_status
            error = e
        starts = _gather_status(start, error, f"checkpoint: resuming {ckpt_path}")
        if len(set(starts)) != 1:
            raise ValueError(f"checkpoint: the ranks found {ckpt_path} at steps {starts}; "
                             f"under DDP the checkpoint must be on a file system that every "
                             f"rank sees")
    if start > steps:
        raise ValueError(f"checkpoint: {ckpt_path} is at step {start}, beyond steps={steps}; "
                         f"raise steps, pass resume=False or use another path")

    def save(step: int) -> None:
        state = {
            "format": CHECKPOINT_FORMAT,
            "step": step,
            # Always the plain model's weights (no DDP "module." prefix): the file loads
            # into a plain model and into a single-process fit.
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": {"base_lrs": list(base_lrs), "step": step},
            "scaler": scaler.state_dict(),
            "rng": _rng_state(),
            "history": history.to_dict(),
            "config": dict(config),
        }
        if not ddp:
            _save_atomic(state, ckpt_path)
            return
        # Each rank's RNG has its own seed and stream: all of them go into the file, so
        # that a resumed run repeats an uninterrupted one on every rank.
        state["rng_ranks"] = _gather_status(state["rng"], None, "checkpoint")
        error = None
        if rank == 0:
            try:
                _save_atomic(state, ckpt_path)
            except Exception as e:
                error = e
        # Also the barrier: no rank runs ahead (or returns) before the file is complete.
        _gather_status(None, error, f"checkpoint: writing {ckpt_path} at step {step}")

    def evaluate_once(step: int) -> dict[str, float]:
        model.eval()
        try:
            with torch.no_grad():
                result = evaluate(model)
        finally:
            model.train()
        return _float_dict(result, f"evaluate() at step {step}")

    def run_eval(step: int) -> None:
        if not ddp:
            history.evals.append((step, evaluate_once(step)))
            return
        # Rank 0 evaluates (the weights are the same on every rank) and sends the metrics,
        # so that every rank's History holds the same numbers.
        result, error = None, None
        if rank == 0:
            try:
                result = evaluate_once(step)
            except Exception as e:
                error = e
        history.evals.append((step, _gather_status(result, error,
                                                   f"evaluate() at step {step}")[0]))

    # ---- batches: epoch permutations from a seeded generator
    per_epoch = max(1, n_data // batch_size)
    take = min(batch_size, n_data)
    perm_cache: dict[int, torch.Tensor] = {}

    def batch_indices(s: int) -> list[int]:
        epoch, j = divmod(s, per_epoch)
        if epoch not in perm_cache:
            perm_cache.clear()
            g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
            perm_cache[epoch] = torch.randperm(n_data, generator=g)
        return perm_cache[epoch][j * take:(j + 1) * take].tolist()

    shard = take // world if ddp else take  # ddp: take == batch_size, divisible by world

    def rank_indices(s: int) -> list[int]:
        """This rank's contiguous shard of step ``s``'s global batch."""
        idx = batch_indices(s)
        return idx[rank * shard:(rank + 1) * shard] if ddp else idx

    net = _wrap_ddp(model, dev) if ddp else model

    def forward(s: int, step: int) -> tuple[torch.Tensor, float, dict[str, float]]:
        """Batch, ``loss_fn``, checks: ``(loss, loss_value, logs)`` of this process."""
        batch = collate_fn([data[i] for i in rank_indices(s)])
        batch = _to_device(batch, dev)
        if ddp:
            net._labcore_forwards = 0
        with autocast():
            out = loss_fn(net, batch)
        loss, logs = (out if isinstance(out, tuple) and len(out) == 2 else (out, {}))
        if not isinstance(loss, torch.Tensor):
            raise TypeError(f"loss_fn at step {step}: expected a scalar tensor (or "
                            f"(loss, logs)), got {type(loss).__name__}")
        if loss.numel() != 1:
            raise ValueError(f"loss_fn at step {step}: expected a scalar loss, got a "
                             f"tensor of shape {tuple(loss.shape)}; reduce it (e.g. .mean())")
        if not loss.requires_grad:
            raise ValueError(f"loss_fn at step {step}: the loss does not require grad "
                             f"(is it computed from the model's output?)")
        if ddp and net._labcore_forwards == 0:
            raise ValueError(f"loss_fn at step {step}: under DDP call the model itself, "
                             f"m(x); calling only its submodules or methods bypasses "
                             f"DistributedDataParallel and the gradients would not be "
                             f"averaged across ranks")
        loss_value = float(loss.detach().float().item())
        if not ddp:  # under DDP the check is on the mean over ranks, so all ranks agree
            check_finite_loss(loss_value, step)
        logs = _float_dict(logs, f"loss_fn logs at step {step}")
        return loss, loss_value, logs

    def check_finite_loss(loss_value: float, step: int) -> None:
        if not math.isfinite(loss_value):
            raise NonFiniteLossError(f"loss_fn at step {step}: the loss is {loss_value} "
                                     f"(lr={opt.param_groups[0]['lr']:.3g}); lower lr, set "
                                     f"grad_clip or check the targets")

    autocast = (
        (lambda: torch.autocast(device_type="cuda", dtype=amp_dtype)) if use_amp
        else contextlib.nullcontext
    )
    bar = tqdm(total=steps, initial=start, desc=desc,
               disable=not _progress_enabled(progress) or (ddp and rank != 0),
               dynamic_ncols=True)
    t0 = time.perf_counter()
    seconds0 = history.seconds
    running = None
    net.train()
    try:
        for s in range(start, steps):
            step = s + 1
            factor = lr_factor(schedule, s, steps, warmup_steps=warmup_steps,
                               milestones=milestones, gamma=gamma)
            for g, base in zip(opt.param_groups, base_lrs):
                g["lr"] = base * factor
            if not ddp:
                loss, loss_value, logs = forward(s, step)
            else:
                # Every rank reaches the exchange, even one whose data or loss_fn failed, so
                # a failure is raised everywhere instead of leaving the others waiting in
                # the gradient all-reduce.
                result, error = None, None
                try:
                    loss, *result = forward(s, step)
                except Exception as e:
                    error = e
                results = _gather_status(result, error, f"loss_fn at step {step}")
                # The logged loss and logs are means over the ranks (summed in rank order,
                # so every rank gets the same floats); with equal shards the loss mean is
                # the loss of the whole global batch.
                loss_value = sum(v for v, _ in results) / world
                check_finite_loss(loss_value, step)
                logs = _mean_logs([lg for _, lg in results], step)

            opt.zero_grad(set_to_none=True)
            scaler.scale(loss.reshape(())).backward()  # under DDP: gradients averaged here
            if ddp:
                unused = [n for n, p in model.named_parameters()
                          if p.requires_grad and p.grad is None]
                if unused:
                    raise ValueError(f"model: under DDP every trainable parameter must get "
                                     f"a gradient at every step, but {unused[:5]} "
                                     f"{'(and more) ' if len(unused) > 5 else ''}got none at "
                                     f"step {step}; freeze them with requires_grad_(False)")
            if grad_clip is not None:
                scaler.unscale_(opt)
                norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
                logs["grad_norm"] = float(norm)
            scaler.step(opt)
            scaler.update()

            history.steps.append(step)
            history.loss.append(loss_value)
            history.logs.append(logs)
            history.lr.append(float(opt.param_groups[0]["lr"]))
            running = loss_value if running is None else 0.9 * running + 0.1 * loss_value
            bar.set_postfix(loss=f"{running:.4g}", refresh=False)
            bar.update(1)

            last = step == steps
            if evaluate is not None and (last or (eval_every and step % eval_every == 0)):
                run_eval(step)
            if ckpt_path is not None and (last or (checkpoint_every
                                                    and step % checkpoint_every == 0)):
                history.seconds = seconds0 + time.perf_counter() - t0
                save(step)
        if start == steps and evaluate is not None and (
                not history.evals or history.evals[-1][0] != steps):
            run_eval(steps)
    finally:
        bar.close()
        history.seconds = seconds0 + time.perf_counter() - t0
        model.train(was_training)
        if ddp:
            # DDP's gradient hooks stay on the model's parameters for as long as the wrapper
            # lives (a kept exception's traceback keeps it alive); after a step that failed
            # between forward and backward they would still expect a backward and meddle
            # with a later fit's gradients. Cleanup must not mask the error being raised.
            with contextlib.suppress(Exception):
                net._remove_autograd_hooks()
    if ddp:
        # The parameters are equal on every rank already (DDP); make the buffers (BatchNorm
        # running statistics) and the recorded wall time rank 0's too, so every rank
        # returns the same model and History.
        _broadcast_buffers(model)
        history.seconds = _gather_status(history.seconds, None, "fit")[0]
    return history


def _mean_logs(per_rank: list[dict[str, float]], step: int) -> dict[str, float]:
    """The per-key mean of every rank's ``loss_fn`` logs (the keys must agree)."""
    keys = list(per_rank[0])
    for r, logs in enumerate(per_rank):
        if set(logs) != set(keys):
            raise ValueError(f"loss_fn logs at step {step}: rank 0 logged {sorted(keys)} but "
                             f"rank {r} logged {sorted(logs)}; log the same keys on every rank")
    return {k: sum(logs[k] for logs in per_rank) / len(per_rank) for k in keys}


def _load_checkpoint(
    path: Path, model: nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
    config: Mapping[str, Any], *, rank: int = 0, world_size: int = 1,
) -> tuple[int, History]:
    """Restore model/optimizer/scaler/RNG states; return ``(step, history)``.

    Rank ``rank`` of ``world_size`` takes its own RNG state when the checkpoint holds one
    per rank for the same world size, else the (rank 0 / single-process) ``"rng"`` one.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"checkpoint: could not read {path} as a labcore checkpoint "
                         f"({type(e).__name__}: {e}); pass resume=False to overwrite it") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint: {path} is not a {CHECKPOINT_FORMAT} checkpoint; "
                         f"pass resume=False to overwrite it")
    try:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise ValueError(f"checkpoint: {path} does not fit this model/optimizer: {e}") from e
    if ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    per_rank = ckpt.get("rng_ranks")
    if isinstance(per_rank, list) and len(per_rank) == world_size:
        _set_rng_state(per_rank[rank])
    else:
        _set_rng_state(ckpt["rng"])
    saved = ckpt.get("config", {})
    for key in ("seed", "batch_size", "len_data", "world_size"):
        if rank == 0 and key in saved and saved[key] != config[key]:
            warnings.warn(f"resuming {path}: {key} was {saved[key]}, now {config[key]}; "
                          f"the run will not repeat an uninterrupted one", stacklevel=3)
    return int(ckpt["step"]), History.from_dict(ckpt["history"])
