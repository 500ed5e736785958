"""labcore.train.fit: convergence, determinism, resume bit-identity, atomic checkpoints,
evaluation, schedules, argument errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset, TensorDataset

from labcore import train
from labcore.train import History, NonFiniteLossError, fit, lr_factor


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("LABCORE_PROGRESS", "0")
    monkeypatch.delenv("LABCORE_DEVICE", raising=False)


def _regression(n=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.25
    return TensorDataset(x, y)


def _mse(model, batch):
    x, y = batch
    return F.mse_loss(model(x), y)


class _DictData(Dataset):
    """Samples are dicts; the index is returned too, to check batch order."""

    def __init__(self, n=40):
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(n, 1, 8, 8, generator=g)
        self.y = self.x.mean(dim=(1, 2, 3)).unsqueeze(1) * 3

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"image": self.x[i], "target": self.y[i], "index": torch.tensor(i)}


def _cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.2),
        nn.Flatten(), nn.Linear(4 * 8 * 8, 1),
    )


def _dict_loss(model, batch):
    loss = F.mse_loss(model(batch["image"]), batch["target"])
    return loss, {"mse": loss.detach(), "batch": len(batch["index"])}


# ----------------------------------------------------------------------------- basics

def test_converges_on_tiny_regression():
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    h = fit(model, _mse, _regression(), steps=150, batch_size=16, lr=0.05)
    assert h.steps == list(range(1, 151))
    assert len(h.loss) == len(h.logs) == len(h.lr) == 150
    assert h.loss[-1] < h.loss[0] / 10
    assert h.device == "cpu" and h.seconds > 0
    assert model.training  # mode restored


def test_same_seed_same_losses_other_seed_differs():
    data = _DictData()
    runs = []
    for seed in (3, 3, 4):
        model = _cnn()
        h = fit(model, _dict_loss, data, steps=12, batch_size=8, seed=seed)
        runs.append((h.loss, [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
    assert runs[0][0] != runs[2][0]


def test_batches_are_epoch_permutations_and_dict_samples_work():
    data = _DictData(n=40)
    seen = []

    def loss_fn(model, batch):
        seen.append(batch["index"].tolist())
        assert batch["image"].shape == (8, 1, 8, 8)
        return _dict_loss(model, batch)

    h = fit(_cnn(), loss_fn, data, steps=10, batch_size=8, seed=0)
    assert sorted(sum(seen[:5], [])) == list(range(40))  # epoch 0: each sample once
    assert sorted(sum(seen[5:], [])) == list(range(40))  # epoch 1
    assert seen[:5] != seen[5:]  # a new order each epoch
    assert h.logs[0]["batch"] == 8.0 and isinstance(h.logs[0]["mse"], float)
    json.dumps(h.to_dict())


def test_drop_last_and_small_dataset():
    sizes = []

    def loss_fn(model, batch):
        sizes.append(len(batch[0]))
        return _mse(model, batch)

    fit(nn.Linear(4, 1), loss_fn, _regression(n=20), steps=4, batch_size=8)
    assert sizes == [8, 8, 8, 8]  # 20 // 8 = 2 batches per epoch, the last 4 dropped
    sizes.clear()
    fit(nn.Linear(4, 1), loss_fn, _regression(n=5), steps=3, batch_size=8)
    assert sizes == [5, 5, 5]


def test_evaluate_steps_mode_and_no_grad():
    model = _cnn()
    calls = []

    def evaluate(m):
        assert m is model and not m.training and not torch.is_grad_enabled()
        calls.append(len(calls))
        return {"score": torch.tensor(float(len(calls))), "n": 3}

    model.eval()
    h = fit(model, _dict_loss, _DictData(), steps=10, batch_size=8, evaluate=evaluate,
            eval_every=3)
    assert [s for s, _ in h.evals] == [3, 6, 9, 10]
    assert h.final_eval == {"score": 4.0, "n": 3.0}
    assert not model.training  # the mode fit found is restored
    h2 = fit(_cnn(), _dict_loss, _DictData(), steps=6, batch_size=8,
             evaluate=lambda m: {"n": 1}, eval_every=3)
    assert [s for s, _ in h2.evals] == [3, 6]  # no double evaluation at the end
    assert History().final_eval is None


def test_optimizers_grad_clip_and_callable():
    for name in ("adam", "adamw", "sgd"):
        h = fit(nn.Linear(4, 1), _mse, _regression(), steps=3, batch_size=16, lr=0.01,
                optimizer=name, weight_decay=1e-4, grad_clip=0.5)
        assert all(0 <= log["grad_norm"] for log in h.logs)
    h = fit(nn.Linear(4, 1), _mse, _regression(), steps=4, schedule="cosine",
            optimizer=lambda params: torch.optim.SGD(params, lr=0.2))
    assert h.lr[0] == pytest.approx(0.2)  # the schedule scales the optimizer's own lr
    assert h.lr[2] == pytest.approx(0.1)


# ----------------------------------------------------------------------------- schedules

@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (dict(schedule="constant"), {0: 1.0, 9: 1.0}),
        (dict(schedule="constant", warmup_steps=4), {0: 0.25, 1: 0.5, 3: 1.0, 9: 1.0}),
        (dict(schedule="cosine"), {0: 1.0, 5: 0.5, 9: 0.5 * (1 + math.cos(math.pi * 0.9))}),
        (dict(schedule="cosine", warmup_steps=2), {0: 0.5, 1: 1.0, 2: 1.0, 6: 0.5}),
        (dict(schedule="step", milestones=[3, 6], gamma=0.1),
         {0: 1.0, 2: 1.0, 3: 0.1, 5: 0.1, 6: 0.01, 9: 0.01}),
        (dict(schedule="warmup_linear", warmup_steps=2),
         {0: 0.5, 1: 1.0, 2: 1.0, 6: 0.5, 9: 0.125}),
        (dict(schedule=lambda s: 1.0 / (1 + s)), {0: 1.0, 1: 0.5, 9: 0.1}),
    ],
)
def test_schedule_lr_at_steps(kwargs, expected):
    h = fit(nn.Linear(4, 1), _mse, _regression(), steps=10, batch_size=16, lr=0.1,
            optimizer="sgd", **kwargs)
    for s, factor in expected.items():
        assert h.lr[s] == pytest.approx(0.1 * factor), s
        assert lr_factor(kwargs["schedule"], s, 10,
                         **{k: v for k, v in kwargs.items() if k != "schedule"}) == \
            pytest.approx(factor)


@settings(max_examples=40, deadline=None)
@given(
    schedule=st.sampled_from(["constant", "cosine", "step", "warmup_linear"]),
    steps=st.integers(2, 500),
    warmup=st.integers(0, 50),
    data=st.data(),
)
def test_builtin_schedules_stay_in_unit_interval(schedule, steps, warmup, data):
    warmup = min(warmup, steps - 1)
    step = data.draw(st.integers(0, steps - 1))
    f = lr_factor(schedule, step, steps, warmup_steps=warmup, milestones=[steps // 2],
                  gamma=0.5)
    assert 0.0 < f <= 1.0


# ----------------------------------------------------------------------------- checkpoints

def test_checkpoint_loads_with_weights_only(tmp_path):
    path = tmp_path / "run" / "ckpt.pt"
    model = _cnn()
    h = fit(model, _dict_loss, _DictData(), steps=4, batch_size=8, checkpoint=path,
            evaluate=lambda m: {"a": 1.0})
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["step"] == 4
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "history", "config"} <= set(ckpt)
    assert ckpt["history"]["loss"] == h.loss
    assert History.from_dict(ckpt["history"]).evals == [(4, {"a": 1.0})]
    assert all(torch.equal(ckpt["model"][k], v) for k, v in model.state_dict().items())
    assert [p.name for p in path.parent.iterdir()] == ["ckpt.pt"]  # no temporary left over


def test_resume_is_bit_identical(tmp_path):
    data = _DictData()
    kwargs = dict(steps=12, batch_size=8, lr=3e-3, schedule="cosine", warmup_steps=3,
                  grad_clip=10.0, evaluate=lambda m: {"one": 1.0}, eval_every=4)

    straight = _cnn(seed=0)
    h_straight = fit(straight, _dict_loss, data, **kwargs)

    class Crash(Exception):
        pass

    def crashing_loss(model, batch):
        if crashing_loss.calls == 7:  # step 8: after the checkpoint at step 6
            raise Crash
        crashing_loss.calls += 1
        return _dict_loss(model, batch)

    crashing_loss.calls = 0
    path = tmp_path / "ckpt.pt"
    with pytest.raises(Crash):
        fit(_cnn(seed=0), crashing_loss, data, checkpoint=path, checkpoint_every=3, **kwargs)
    assert torch.load(path, weights_only=True)["step"] == 6

    torch.manual_seed(123)  # global RNG state must come from the checkpoint, not from here
    resumed = _cnn(seed=5)  # different initial weights: they are overwritten on resume
    h_resumed = fit(resumed, _dict_loss, data, checkpoint=path, checkpoint_every=3, **kwargs)

    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    assert h_resumed.loss == h_straight.loss
    assert h_resumed.lr == h_straight.lr
    assert h_resumed.evals == h_straight.evals
    assert h_resumed.steps == list(range(1, 13))

    # Resuming a finished run trains nothing and returns the recorded history.
    again = fit(_cnn(seed=9), _dict_loss, data, checkpoint=path, **kwargs)
    assert again.loss == h_straight.loss
    # ... and a checkpoint beyond the requested steps is refused.
    with pytest.raises(ValueError, match="beyond steps=5"):
        fit(_cnn(), _dict_loss, data, checkpoint=path, steps=5, batch_size=8)


def test_failed_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    real_save = torch.save
    saves = []

    def flaky_save(obj, f, *args, **kwargs):
        if saves:
            f.write(b"partial garbage")
            raise OSError("disk full")
        saves.append(1)
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", flaky_save)
    with pytest.raises(OSError, match="disk full"):
        fit(nn.Linear(4, 1), _mse, _regression(), steps=6, batch_size=16, checkpoint=path,
            checkpoint_every=2)
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["step"] == 2 and len(ckpt["history"]["loss"]) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_resume_false_and_bad_checkpoint(tmp_path):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="resume=False"):
        fit(nn.Linear(4, 1), _mse, _regression(), steps=2, checkpoint=path)
    h = fit(nn.Linear(4, 1), _mse, _regression(), steps=2, checkpoint=path, resume=False)
    assert torch.load(path, weights_only=True)["step"] == 2 and len(h.loss) == 2
    with pytest.raises(ValueError, match="does not fit"):
        fit(nn.Linear(4, 2), _mse, _regression(), steps=3, checkpoint=path)


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(steps=0), ValueError, "steps"),
        (dict(steps=2.5), TypeError, "steps"),
        (dict(lr=0.0), ValueError, "lr"),
        (dict(lr=-1e-3), ValueError, "lr"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(optimizer="rmsprop"), ValueError, r"optimizer.*'adam', 'adamw', 'sgd'"),
        (dict(schedule="poly"), ValueError, r"schedule.*'cosine'"),
        (dict(schedule="step"), ValueError, "milestones"),
        (dict(schedule="cosine", warmup_steps=5), ValueError, "warmup_steps"),
        (dict(eval_every=2), ValueError, "eval_every"),
        (dict(checkpoint_every=2), ValueError, "checkpoint_every"),
        (dict(amp=True), ValueError, "CUDA"),
        (dict(amp="yes"), ValueError, "amp"),
        (dict(grad_clip=0), ValueError, "grad_clip"),
        (dict(weight_decay=-0.1), ValueError, "weight_decay"),
        (dict(seed=1.5), TypeError, "seed"),
        (dict(device="gpu0"), ValueError, "device"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    kwargs = {"steps": 5, **kwargs}
    with pytest.raises(exc, match=match):
        fit(nn.Linear(4, 1), _mse, _regression(), **kwargs)


def test_bad_model_data_and_loss():
    data = _regression()
    with pytest.raises(TypeError, match="model"):
        fit(lambda x: x, _mse, data, steps=1)
    with pytest.raises(TypeError, match="data"):
        fit(nn.Linear(4, 1), _mse, iter(data), steps=1)
    with pytest.raises(ValueError, match="non-empty"):
        fit(nn.Linear(4, 1), _mse, TensorDataset(torch.zeros(0, 4)), steps=1)
    with pytest.raises(ValueError, match=r"step 1: expected a scalar loss.*\(16, 1\)"):
        fit(nn.Linear(4, 1), lambda m, b: (m(b[0]) - b[1]) ** 2, data, steps=1, batch_size=16)
    with pytest.raises(TypeError, match="step 1"):
        fit(nn.Linear(4, 1), lambda m, b: 1.0, data, steps=1)

    calls = []

    def nan_at_3(model, batch):
        calls.append(1)
        loss = _mse(model, batch)
        return loss * float("nan") if len(calls) == 3 else loss

    with pytest.raises(NonFiniteLossError, match="step 3") as info:
        fit(nn.Linear(4, 1), nan_at_3, data, steps=5)
    assert isinstance(info.value, ValueError)
    with pytest.raises(TypeError, match=r"logs at step 1.*'bad'"):
        fit(nn.Linear(4, 1), lambda m, b: (_mse(m, b), {"bad": "x"}), data, steps=1)
    with pytest.raises(TypeError, match="evaluate"):
        fit(nn.Linear(4, 1), _mse, data, steps=1, evaluate=lambda m: [1.0])


def test_progress_bar_and_env(capsys, monkeypatch):
    monkeypatch.setenv("LABCORE_PROGRESS", "1")
    fit(nn.Linear(4, 1), _mse, _regression(), steps=3, desc="demo")
    err = capsys.readouterr().err
    assert "demo" in err and "loss=" in err
    monkeypatch.setenv("LABCORE_PROGRESS", "0")
    fit(nn.Linear(4, 1), _mse, _regression(), steps=3, desc="demo")
    assert "demo" not in capsys.readouterr().err
    monkeypatch.setenv("LABCORE_PROGRESS", "1")
    fit(nn.Linear(4, 1), _mse, _regression(), steps=3, desc="demo", progress=False)
    assert "demo" not in capsys.readouterr().err


def test_batch_moved_to_device_recursively():
    batch = {"a": [torch.zeros(1), (torch.ones(1), 3)], "b": torch.zeros(2)}
    moved = train._to_device(batch, torch.device("meta"))
    assert moved["a"][0].device.type == "meta" and moved["a"][1][0].device.type == "meta"
    assert moved["a"][1][1] == 3 and isinstance(moved["a"][1], tuple)
