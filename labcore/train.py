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
"""

from __future__ import annotations

import contextlib
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
from torch import nn
from torch.utils.data import default_collate
from tqdm.auto import tqdm

from labcore.checks import check_choice, check_int, check_number
from labcore.data.io import atomic_write
from labcore.runtime import device as default_device
from labcore.runtime import seed_all

__all__ = ["fit", "History", "NonFiniteLossError", "lr_factor", "OPTIMIZERS", "SCHEDULES"]

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
    ``seconds`` is the wall time spent in :func:`fit` (summed over resumed runs).
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

    # ---- set up
    seed_all(seed)
    try:
        dev = default_device(str(device)) if device is not None else default_device()
    except RuntimeError as e:  # torch.device("gpu") and the like
        raise ValueError(f"device: expected a torch device such as 'cpu' or 'cuda', "
                         f"got {device!r} ({e})") from e
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
    config = {"seed": seed, "batch_size": batch_size, "len_data": n_data, "steps": steps}
    if ckpt_path is not None and resume and ckpt_path.is_file():
        start, history = _load_checkpoint(ckpt_path, model, opt, scaler, config)
        history.device = str(dev)
    if start > steps:
        raise ValueError(f"checkpoint: {ckpt_path} is at step {start}, beyond steps={steps}; "
                         f"raise steps, pass resume=False or use another path")

    def save(step: int) -> None:
        _save_atomic({
            "format": CHECKPOINT_FORMAT,
            "step": step,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": {"base_lrs": list(base_lrs), "step": step},
            "scaler": scaler.state_dict(),
            "rng": _rng_state(),
            "history": history.to_dict(),
            "config": dict(config),
        }, ckpt_path)

    def run_eval(step: int) -> None:
        model.eval()
        try:
            with torch.no_grad():
                result = evaluate(model)
        finally:
            model.train()
        history.evals.append((step, _float_dict(result, f"evaluate() at step {step}")))

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

    autocast = (
        (lambda: torch.autocast(device_type="cuda", dtype=amp_dtype)) if use_amp
        else contextlib.nullcontext
    )
    bar = tqdm(total=steps, initial=start, desc=desc, disable=not _progress_enabled(progress),
               dynamic_ncols=True)
    t0 = time.perf_counter()
    seconds0 = history.seconds
    running = None
    model.train()
    try:
        for s in range(start, steps):
            step = s + 1
            factor = lr_factor(schedule, s, steps, warmup_steps=warmup_steps,
                               milestones=milestones, gamma=gamma)
            for g, base in zip(opt.param_groups, base_lrs):
                g["lr"] = base * factor
            batch = collate_fn([data[i] for i in batch_indices(s)])
            batch = _to_device(batch, dev)

            with autocast():
                out = loss_fn(model, batch)
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
            loss_value = float(loss.detach().float().item())
            if not math.isfinite(loss_value):
                raise NonFiniteLossError(f"loss_fn at step {step}: the loss is {loss_value} "
                                         f"(lr={base_lrs[0] * factor:.3g}); lower lr, set "
                                         f"grad_clip or check the targets")
            logs = _float_dict(logs, f"loss_fn logs at step {step}")

            opt.zero_grad(set_to_none=True)
            scaler.scale(loss.reshape(())).backward()
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
    return history


def _load_checkpoint(
    path: Path, model: nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
    config: Mapping[str, Any],
) -> tuple[int, History]:
    """Restore model/optimizer/scaler/RNG states; return ``(step, history)``."""
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
    _set_rng_state(ckpt["rng"])
    saved = ckpt.get("config", {})
    for key in ("seed", "batch_size", "len_data"):
        if key in saved and saved[key] != config[key]:
            warnings.warn(f"resuming {path}: {key} was {saved[key]}, now {config[key]}; "
                          f"the run will not repeat an uninterrupted one", stacklevel=3)
    return int(ckpt["step"]), History.from_dict(ckpt["history"])
