"""The worker that tests/test_distributed.py launches under torchrun (2 CPU processes, gloo).

Usage::

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_worker.py OUT

Each rank runs several :func:`labcore.train.fit` checks in one launch (a launch costs
seconds: every process imports torch) and writes what it saw to ``OUT/rank{r}.pt``
(tensors, floats, strings and plain containers: ``torch.load(weights_only=True)`` reads
it). The test asserts on those files; this script asserts nothing itself, so that one
failed check does not hide the others. The model, data and loss are defined here and
imported by the test for the single-process reference run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

# Fixed arguments of the runs compared with the single-process reference: 40 samples and
# batch 16 make 2 steps per epoch, so 6 steps cross two epoch boundaries (new permutations).
STEPS = 6
HALF = 3
BATCH = 16
FIT_KW = dict(steps=STEPS, batch_size=BATCH, lr=0.02, optimizer="sgd", seed=3,
              progress=False, eval_every=HALF)


class DictData(Dataset):
    """``n`` samples ``{"image": (1, 8, 8), "target": (1,)}``, fixed by a seed."""

    def __init__(self, n: int = 40):
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(n, 1, 8, 8, generator=g)
        self.y = self.x.mean(dim=(1, 2, 3)).unsqueeze(1) * 3 + 0.5

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.x[i], "target": self.y[i]}


class TinyNet(nn.Module):
    """Conv + linear without BatchNorm or dropout: DDP must reproduce one process exactly.

    ``out_scale`` is a plain attribute that the loss reads as ``m.out_scale``: under DDP
    ``m`` is the wrapper, and the attribute must still be found.
    """

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 1)
        self.out_scale = 1.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.conv(x)).flatten(1)) * self.out_scale


SEEN: dict[str, object] = {}  # what loss_fn observed about ``m`` (under DDP: the wrapper)


def loss_fn(m: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
    SEEN["m_is_ddp"] = isinstance(m, nn.parallel.DistributedDataParallel)
    SEEN["out_scale"] = float(m.out_scale)
    SEEN["local_batch"] = len(batch["image"])
    loss = F.mse_loss(m(batch["image"]), batch["target"])
    return loss, {"mse": loss.detach()}


def evaluate(model: nn.Module) -> dict[str, float]:
    """A metric of the weights plus the rank that computed it: every rank's History must
    show rank 0's evaluation."""
    x = DictData(8).x
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    return {"mean_out": model(x).mean(), "rank": float(rank)}


def _error(fn) -> str | None:
    """``'TypeName: message'`` of what ``fn()`` raised, or None."""
    try:
        fn()
    except Exception as e:  # the test asserts on the type and the message
        return f"{type(e).__name__}: {e}"
    return None


def main(out: Path) -> None:
    from labcore import train

    torch.set_num_threads(1)
    rank, world = train.init_distributed()
    info = {"init": [rank, world], "info": list(train.distributed_info()),
            "main": train.is_main_process(), "device": str(train.distributed_device()),
            "again": list(train.init_distributed())}  # idempotent

    # Count checkpoint writes per rank: only rank 0 may write.
    writes: list[str] = []
    real_save = train._save_atomic

    def counting_save(obj, path):
        writes.append(Path(path).name)
        real_save(obj, path)

    train._save_atomic = counting_save
    data = DictData()

    # 1. the full run: 2 ranks x 8 samples, checkpoints at steps 3 and 6
    model = TinyNet(seed=0)
    full = train.fit(model, loss_fn, data, evaluate=evaluate, checkpoint=out / "full.pt",
                     checkpoint_every=HALF, **FIT_KW)
    seen = dict(SEEN)
    rng_full = torch.get_rng_state()  # each rank's own stream (seeded apart)

    # 2. the same run interrupted at step 3, then resumed to step 6 by a fresh model with
    #    other initial weights (they must come from the checkpoint)
    kw = dict(FIT_KW, evaluate=evaluate, checkpoint=out / "resume.pt")
    train.fit(TinyNet(seed=0), loss_fn, data, **dict(kw, steps=HALF))
    torch.manual_seed(1234 + rank)  # the RNG states must come from the checkpoint too
    resumed_model = TinyNet(seed=7)
    resumed = train.fit(resumed_model, loss_fn, data, **kw)
    rng_resumed = torch.get_rng_state()

    # 3. BatchNorm: per-rank statistics while training, rank 0's buffers on every rank after
    torch.manual_seed(0)
    bn_model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                             nn.Flatten(), nn.Linear(4 * 8 * 8, 1))
    train.fit(bn_model, lambda m, b: F.mse_loss(m(b["image"]), b["target"]), data, steps=2,
              batch_size=BATCH, progress=False)

    # 4. errors, all raised on every rank (run last: they leave steps half done)
    def fails_on_rank_1(m, batch):
        if torch.distributed.get_rank() == 1:
            raise RuntimeError("boom on rank 1")
        return loss_fn(m, batch)

    def bypasses_ddp(m, batch):  # calls a submodule only: no DDP forward, no averaging
        return F.mse_loss(m.module.fc(m.module.conv(batch["image"]).flatten(1)),
                          batch["target"])

    errors = {
        "indivisible": _error(lambda: train.fit(TinyNet(), loss_fn, data, steps=1,
                                                batch_size=15, progress=False)),
        "too_small": _error(lambda: train.fit(TinyNet(), loss_fn, DictData(10), steps=1,
                                              batch_size=16, progress=False)),
        "bypass": _error(lambda: train.fit(TinyNet(), bypasses_ddp, data, steps=1,
                                           batch_size=16, progress=False)),
        "one_rank": _error(lambda: train.fit(TinyNet(), fails_on_rank_1, data, steps=1,
                                             batch_size=16, progress=False)),
    }
    # After the failed runs above the process group and the model must still train.
    after = train.fit(TinyNet(), loss_fn, data, steps=2, batch_size=16, progress=False)

    result = {
        "rank": rank, "world": world, "helpers": info, "seen": seen, "writes": writes,
        "weights": model.state_dict(), "history": full.to_dict(),
        "resumed_weights": resumed_model.state_dict(), "resumed_history": resumed.to_dict(),
        "rng_full": rng_full, "rng_resumed": rng_resumed,
        "errors": errors, "after_loss": after.loss, "bn_state": bn_model.state_dict(),
    }
    torch.save(result, out / f"rank{rank}.pt")
    train.cleanup_distributed()
    torch.save({"initialised": torch.distributed.is_initialized()},
               out / f"cleanup{rank}.pt")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: {sys.argv[0]} OUT_DIR")
    os.environ.setdefault("LABCORE_PROGRESS", "0")
    main(Path(sys.argv[1]).resolve())
