"""The playground (one backbone, every head) and ``labcore reproduce all``."""

import sys
import types

import pytest
import torch

from labcore import cli
from labcore.experiments import heatmap_vs_integral, reproduce
from labcore.experiments import playground as pg
from labcore.experiments.table import Table
from labcore.experiments.topdown import crops_at_sizes, split
from labcore.skeletons import COCO17
from labcore.viz.playground import PlaygroundLab, comparison_figure

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"n_train": 12, "n_val": 6, "steps": 3, "batch_size": 4, "sizes": (32,)}


def _batch(n=4, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.rand(n, 3, size, size, generator=g),
            "keypoints": 4 + torch.rand(n, COCO17.num_joints, 2, generator=g) * (size - 8),
            "visible": torch.ones(n, COCO17.num_joints)}


@pytest.mark.parametrize("head", list(pg.HEADS))
def test_every_head_trains_and_decodes(head):
    cfg = pg.config("ci")
    torch.manual_seed(0)
    r = pg.recipe(head, 32, cfg)
    batch = _batch()
    out = (r.forward or r.model)(batch["image"])
    kp, scores = r.decoder.decode(*out) if isinstance(out, tuple) else r.decoder.decode(out)
    assert kp.shape == (4, COCO17.num_joints, 2) and scores.shape == (4, COCO17.num_joints)
    # a few Adam steps on one batch lower the loss: the loss reaches every trainable part
    opt = torch.optim.Adam(r.model.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        loss = r.loss_fn(r.model, batch)
        loss = loss[0] if isinstance(loss, tuple) else loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


def test_sahr_head_starts_as_wahr():
    # the scale branch's last conv starts at zero: α = 0, H^(1+0) = H, the regulariser is 0,
    # so SAHR + WAHR equals WAHR alone on the same weights
    cfg = pg.config("ci")
    torch.manual_seed(0)
    sahr = pg.recipe("heatmap+sahr", 32, cfg)
    wahr = pg.recipe("heatmap+wahr", 32, cfg)
    wahr.model.load_state_dict(sahr.model.net.state_dict())
    batch = _batch()
    loss, logs = sahr.loss_fn(sahr.model, batch)
    assert logs["scale"] == 0.0
    assert float(loss) == pytest.approx(float(wahr.loss_fn(wahr.model, batch)), rel=1e-6)


def test_recipe_and_registry_errors():
    cfg = pg.config("ci")
    with pytest.raises(ValueError, match="head"):
        pg.recipe("heatmapp", 32, cfg)
    with pytest.raises(ValueError, match="already a head"):
        pg.register_head("simdr", pg.simdr_recipe)
    with pytest.raises(TypeError, match="callable"):
        pg.register_head("x", 3)
    with pytest.raises(ValueError, match="backbone_name"):
        pg.recipe("heatmap", 32, cfg | {"backbone_name": "VGG"})
    pg.register_head("bad", lambda size, cfg: "not a recipe")
    try:
        with pytest.raises(TypeError, match="Recipe"):
            pg.recipe("bad", 32, cfg)
    finally:
        del pg.HEADS["bad"]
    with pytest.raises(ValueError, match="unknown head"):
        pg.run("ci", cfg=cfg | TINY | {"heads": ("nope",)})


def test_run_one_table_and_figure(tmp_path, monkeypatch):
    monkeypatch.setenv("LABCORE_CACHE", str(tmp_path))
    cfg = pg.config("ci") | TINY | {"heads": ("heatmap", "simdr"), "sizes": (32, 64)}
    table = pg.run("ci", seeds=(0, 1), progress=False, cfg=cfg)
    assert [(r["input"], r["head"]) for r in table.rows] == [
        (f"{s}×{s}", h) for s in (32, 64) for h in ("heatmap", "simdr")]
    assert all(r["seeds"] == 2 and r["err_px"] > 0 and 0 <= r["pck"] <= 1 for r in table.rows)
    # the same crops for every head: the same data seed and validation set
    data = crops_at_sizes(cfg["n_train"] + cfg["n_val"], (32,), seed=cfg["data_seed"])[32]
    _, val = split(data, cfg["n_train"])
    row = [r for r in table.meta["per_seed"] if r["head"] == "heatmap" and r["size"] == 32 and r["seed"] == 0][0]
    assert row["err_px"] * 100 / 32 == pytest.approx(row["err_pct"])
    assert len(val) == cfg["n_val"]
    fig = comparison_figure(table, ("err_pct", "AP"))
    assert len(fig.data) == 2 * 2  # two heads × two panels
    assert list(fig.data[0].x) == [32, 64]
    with pytest.raises(ValueError, match="metrics"):
        comparison_figure(table, ("accuracy",))
    table.save(tmp_path, "pg")
    assert Table.from_json((tmp_path / "pg.json").read_text()).rows == table.rows


def test_lab_knobs_do_not_train_and_reach_the_config():
    lab = PlaygroundLab("ci")
    cfg = lab.update(heads=("integral",), sizes=(64, 32), sigma=2.5, split_ratio=3.0, backbone="HRNet", steps=10)
    assert lab.table is None  # moving knobs never trains
    assert cfg["heads"] == ("integral",) and cfg["sizes"] == (32, 64) and cfg["sigma"] == 2.5
    assert cfg["backbone_name"] == "HRNet" and cfg["steps"] == 10 and cfg["split_ratio"] == 3.0
    assert lab._controls["sigma"].value == 2.5  # the widget follows code
    lab._controls["steps"].value = 20  # and code follows the widget
    assert lab.config()["steps"] == 20
    assert "2 training run(s)" in lab.info.value
    with pytest.raises(ValueError, match="unknown parameter"):
        lab.update(sigmaa=1.0)
    lab.update(heads=())
    with pytest.raises(ValueError, match="at least one head"):
        lab.config()


def test_reproduce_all_keeps_going_past_a_failure(tmp_path, monkeypatch, capsys):
    tiny = heatmap_vs_integral.config("ci") | {"n_train": 8, "n_val": 4, "steps": 2, "batch_size": 4}
    monkeypatch.setattr(heatmap_vs_integral, "config", lambda profile=None: tiny)
    broken = types.ModuleType("labcore.experiments.broken")

    def boom(profile=None, seeds=None, progress=True):
        raise RuntimeError("out of coffee")

    broken.run = boom
    monkeypatch.setitem(sys.modules, "labcore.experiments.broken", broken)
    monkeypatch.setitem(reproduce.EXPERIMENTS, "broken", "broken")
    monkeypatch.setattr(reproduce, "EXPERIMENTS", {"broken": "broken", "integral": "heatmap_vs_integral"})
    rc = cli.main(["reproduce", "all", "--profile", "ci", "--seeds", "0", "--out", str(tmp_path), "--quiet"])
    assert rc == 1  # one failed
    summary = Table.from_json((tmp_path / "all_ci.json").read_text())
    assert [(r["experiment"], r["status"]) for r in summary.rows] == [("broken", "FAILED"), ("integral", "ok")]
    assert "out of coffee" in summary.row(experiment="broken")["measured"]
    main = Table.from_json((tmp_path / "integral_ci.json").read_text())
    hm = main.row(variant="heatmap · argmax + quarter")
    # the headline is read from the saved table, not made up
    assert f"{hm['err_px']:.2f} px" in summary.row(experiment="integral")["measured"]
    assert "out of coffee" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown experiment"):
        reproduce.reproduce_all("ci", names=["nope"], out=tmp_path)
