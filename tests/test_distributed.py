"""labcore.train under DistributedDataParallel: 2 CPU processes (gloo) launched by torchrun.

One launch of tests/ddp_worker.py (module-scoped fixture) runs every distributed check;
the tests read what each rank wrote and compare it with a single-process run made here.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from labcore import runtime, train
from labcore.train import fit

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                       reason="needs torch.distributed with gloo"),
    pytest.mark.skipif(os.name != "posix", reason="kills torchrun's process group on timeout"),
]

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().with_name("ddp_worker.py")
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                 "MASTER_PORT", "GROUP_RANK", "TORCHELASTIC_RUN_ID")
TIMEOUT_S = 180  # a normal launch takes ~10 s on 2 busy cores; gloo itself waits 30 min


def _load_worker():
    """The worker's model, data, loss and run arguments, for the single-process reference
    (loaded by path: tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location("labcore_tests_ddp_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


W = _load_worker()


def _torchrun(out: Path, cwd: Path, tmp: Path) -> None:
    """Run the worker on 2 processes; fail the test with torchrun's output if it fails or
    runs past ``TIMEOUT_S`` (then torchrun and its workers are killed: they run in their
    own session, so the process group holds all of them and nothing else). ``tmp`` becomes
    ``TMPDIR``: torchrun leaves a ``torchelastic_*`` log folder there."""
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARS}
    env.update(OMP_NUM_THREADS="1", LABCORE_PROGRESS="0", TMPDIR=str(tmp),
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc_per_node=2", str(WORKER), str(out)]
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"torchrun did not finish within {TIMEOUT_S} s\n--- stdout\n"
                    f"{stdout[-4000:]}\n--- stderr\n{stderr[-8000:]}")
    if proc.returncode != 0:
        written = sorted(p.name for p in out.iterdir())  # how far the ranks got
        pytest.fail(f"torchrun exited with {proc.returncode}; {out} holds {written}\n"
                    f"--- stdout\n{stdout[-4000:]}\n--- stderr\n{stderr[-8000:]}")


@pytest.fixture(scope="module")
def ddp(tmp_path_factory):
    """Launch once, from a current directory outside the repository (absolute paths only);
    return ``(ranks, out)``: each rank's results and the output folder."""
    cwd = tmp_path_factory.mktemp("cwd")
    out = cwd / "out"
    out.mkdir()
    _torchrun(out, cwd, tmp_path_factory.mktemp("tmpdir"))
    # Nothing written relative to the current directory, no temporary checkpoint left over.
    assert sorted(p.name for p in cwd.iterdir()) == ["out"]
    assert sorted(p.name for p in out.iterdir()) == [
        "cleanup0.pt", "cleanup1.pt", "full.pt", "rank0.pt", "rank1.pt", "resume.pt"]
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    return ranks, out


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("LABCORE_PROGRESS", "0")
    monkeypatch.delenv("LABCORE_DEVICE", raising=False)


def _single_process() -> tuple[W.TinyNet, train.History]:
    model = W.TinyNet(seed=0)
    history = fit(model, W.loss_fn, W.DictData(), evaluate=W.evaluate, **W.FIT_KW)
    return model, history


# ----------------------------------------------------------------------------- equality

def test_two_ranks_of_half_batch_equal_one_process_of_full_batch(ddp):
    ranks, _ = ddp
    model, h = _single_process()
    assert W.SEEN == {"m_is_ddp": False, "out_scale": 1.5, "local_batch": W.BATCH}
    single = model.state_dict()
    for res in ranks:
        assert res["world"] == 2
        # loss_fn got the DDP wrapper, half a batch, and m.out_scale read through it
        assert res["seen"] == {"m_is_ddp": True, "out_scale": 1.5, "local_batch": W.BATCH // 2}
        assert res["weights"].keys() == single.keys()
        for k, v in single.items():
            torch.testing.assert_close(res["weights"][k], v, rtol=0, atol=1e-5, msg=k)
        assert not all(torch.equal(res["weights"][k], W.TinyNet(seed=0).state_dict()[k])
                       for k in single)  # it trained
        hd = res["history"]
        assert hd["steps"] == h.steps and hd["lr"] == pytest.approx(h.lr)
        assert hd["loss"] == pytest.approx(h.loss, rel=1e-5, abs=1e-6)
        assert [d["mse"] for d in hd["logs"]] == pytest.approx(hd["loss"])  # logs: means too
        assert [s for s, _ in hd["evals"]] == [s for s, _ in h.evals] == [3, 6]
        for (_, got), (_, want) in zip(hd["evals"], h.evals):
            assert got["mean_out"] == pytest.approx(want["mean_out"], abs=1e-5)


def test_batchnorm_buffers_are_rank0s_on_every_rank_after_fit(ddp):
    (r0, r1), _ = ddp
    assert r0["bn_state"]["1.num_batches_tracked"].item() == 2
    for k, v in r0["bn_state"].items():
        assert torch.equal(v, r1["bn_state"][k]), k
    assert r0["bn_state"]["1.running_mean"].abs().sum() > 0  # they were updated


def test_replicas_and_histories_identical_on_every_rank(ddp):
    (r0, r1), _ = ddp
    assert r0["rank"] == 0 and r1["rank"] == 1
    for k in r0["weights"]:
        assert torch.equal(r0["weights"][k], r1["weights"][k]), k
    # loss (mean over ranks), logs, evals (rank 0's, sent to all) and seconds all agree
    assert r0["history"] == r1["history"]
    assert [m["rank"] for _, m in r1["history"]["evals"]] == [0.0, 0.0]
    assert r0["helpers"] == {"init": [0, 2], "info": [0, 2], "main": True, "device": "cpu",
                             "again": [0, 2]}
    assert r1["helpers"] == {"init": [1, 2], "info": [1, 2], "main": False, "device": "cpu",
                             "again": [1, 2]}


# ----------------------------------------------------------------------------- checkpoints

def test_only_rank0_writes_a_plain_checkpoint(ddp, tmp_path):
    (r0, r1), out = ddp
    assert r0["writes"] == ["full.pt", "full.pt", "resume.pt", "resume.pt"]
    assert r1["writes"] == []
    ckpt = torch.load(out / "full.pt", weights_only=True)
    assert ckpt["step"] == W.STEPS and ckpt["config"]["world_size"] == 2
    assert not any(k.startswith("module.") for k in ckpt["model"])
    plain = W.TinyNet(seed=5)
    plain.load_state_dict(ckpt["model"])  # strict: same keys as a plain model
    for k, v in plain.state_dict().items():
        assert torch.equal(v, r0["weights"][k]), k
    # one RNG state per rank, and they differ (ranks are seeded apart)
    assert len(ckpt["rng_ranks"]) == 2
    assert not torch.equal(ckpt["rng_ranks"][0]["torch"], ckpt["rng_ranks"][1]["torch"])
    assert ckpt["history"]["loss"] == r0["history"]["loss"]
    assert ckpt["history"]["evals"] == r0["history"]["evals"]

    # A single-process fit resumes from it (nothing left to train) with rank 0's weights.
    path = tmp_path / "copy.pt"
    shutil.copy(out / "full.pt", path)
    model = W.TinyNet(seed=9)
    with pytest.warns(UserWarning, match="world_size was 2, now 1"):
        h = fit(model, W.loss_fn, W.DictData(), checkpoint=path,
                **dict(W.FIT_KW, eval_every=None))
    assert h.loss == r0["history"]["loss"]
    for k, v in model.state_dict().items():
        assert torch.equal(v, r0["weights"][k]), k


def test_ddp_resume_equals_uninterrupted_run(ddp):
    ranks, _ = ddp
    for res in ranks:
        for k, v in res["weights"].items():
            assert torch.equal(res["resumed_weights"][k], v), k
        resumed, full = res["resumed_history"], res["history"]
        assert resumed["loss"] == full["loss"] and resumed["evals"] == full["evals"]
        # each rank got its own RNG state back from the checkpoint
        assert torch.equal(res["rng_resumed"], res["rng_full"])
    assert not torch.equal(ranks[0]["rng_full"], ranks[1]["rng_full"])


# ----------------------------------------------------------------------------- errors

def test_errors_are_raised_on_every_rank(ddp):
    (r0, r1), _ = ddp
    for res in (r0, r1):
        e = res["errors"]
        assert e["indivisible"].startswith("ValueError: batch_size:") and "got 15" in e[
            "indivisible"]
        assert e["too_small"].startswith("ValueError: data:") and "got 10" in e["too_small"]
        assert e["bypass"].startswith("ValueError: loss_fn at step 1:") and "m(x)" in e["bypass"]
    # a failure on one rank only: that rank raises it, the other names the failed rank
    assert r1["errors"]["one_rank"] == "RuntimeError: boom on rank 1"
    assert r0["errors"]["one_rank"].startswith("RuntimeError: loss_fn at step 1: rank 1 failed")
    assert "boom on rank 1" in r0["errors"]["one_rank"]
    # ... and afterwards the group still trains, in step
    assert len(r0["after_loss"]) == 2 and r0["after_loss"] == r1["after_loss"]


def test_cleanup_destroys_the_group(ddp):
    _, out = ddp
    for r in (0, 1):
        assert torch.load(out / f"cleanup{r}.pt", weights_only=True) == {"initialised": False}


def test_distributed_argument_without_process_group():
    assert not dist.is_initialized()
    with pytest.raises(ValueError, match="distributed: distributed=True needs"):
        fit(W.TinyNet(), W.loss_fn, W.DictData(), steps=1, batch_size=8, distributed=True)
    with pytest.raises(ValueError, match="distributed"):
        fit(W.TinyNet(), W.loss_fn, W.DictData(), steps=1, batch_size=8, distributed="yes")
    with pytest.raises(ValueError, match="distributed: expected 'auto', True or False"):
        fit(W.TinyNet(), W.loss_fn, W.DictData(), steps=1, batch_size=8, distributed=1)
    # 'auto' and False without a group: plain single-process training, odd batch allowed
    for mode in ("auto", False):
        h = fit(W.TinyNet(), W.loss_fn, W.DictData(), steps=1, batch_size=7, distributed=mode)
        assert len(h.loss) == 1


def test_helpers_without_torchrun(monkeypatch):
    for v in TORCHRUN_VARS:
        monkeypatch.delenv(v, raising=False)
    assert train.init_distributed() == (0, 1)
    assert not dist.is_initialized()  # nothing initialised
    assert train.distributed_info() == (0, 1) and train.is_main_process()
    assert train.distributed_device() == runtime.device()
    train.cleanup_distributed()  # no-op
    with pytest.raises(ValueError, match="timeout"):
        train.cleanup_distributed(timeout=-1.0)
    with pytest.raises(ValueError, match="backend: expected one of"):
        train.init_distributed("carrier-pigeon")
    with pytest.raises(TypeError, match="backend"):
        train.init_distributed(1)
    monkeypatch.setenv("WORLD_SIZE", "2")  # half of torchrun's variables
    with pytest.raises(RuntimeError, match="MASTER_ADDR"):
        train.init_distributed()
    assert not dist.is_initialized()
