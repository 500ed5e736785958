"""Experiments: the Table, the shared top-down pieces, `labcore reproduce`, and the
localisation explorers' callbacks. (The experiments' *direction* in the cpu profile is a
benchmark, run by hand: `labcore reproduce simdr --profile cpu`.)"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from labcore import cli
from labcore.experiments import get_experiment, simdr_vs_heatmap
from labcore.experiments.table import Table, aggregate, mean_std
from labcore.experiments.topdown import CropSet, crops_at_sizes, evaluate_keypoints, split
from labcore.methods import simdr
from labcore.viz import localisation


def test_mean_std_by_hand():
    assert mean_std("d", [1.0, 2.0, 6.0]) == {"d": 3.0, "d_std": pytest.approx((7.0) ** 0.5)}  # (4+1+9)/2 = 7
    assert mean_std("d", [5.0]) == {"d": 5.0} and mean_std("d", []) == {}


def test_aggregate_mean_and_sample_std_by_hand():
    per_seed = [{"size": 32, "variant": "a", "AP": 10.0}, {"size": 32, "variant": "a", "AP": 14.0},
                {"size": 32, "variant": "b", "AP": 5.0}]
    rows = aggregate(per_seed, ["AP"], by=["size", "variant"])
    assert rows[0] == {"size": 32, "variant": "a", "AP": 12.0, "AP_std": pytest.approx(math.sqrt(8)), "seeds": 2}
    assert rows[1] == {"size": 32, "variant": "b", "AP": 5.0, "seeds": 1}


def test_table_markdown_json_save(tmp_path):
    t = Table("demo", ["variant", "AP", "seeds"], [{"variant": "x", "AP": 12.345, "AP_std": 0.5, "seeds": 3},
                                                    {"variant": "y", "AP": float("nan"), "seeds": 1}],
              labels={"AP": "AP (OKS)"}, digits={"AP": 1}, notes=["a note"], meta={"k": np.float32(2.0)})
    md = t.to_markdown()
    assert "| x | 12.3 ± 0.5 | 3 |" in md and "| y | — | 1 |" in md and "AP (OKS)" in md and "- a note" in md
    assert t.cell({"AP": -0.04}, "AP") == "0.0" and t.cell({"AP": -0.06}, "AP") == "-0.1"
    back = Table.from_json(t.to_json())
    assert back.rows[0]["AP"] == 12.345 and back.rows[1]["AP"] is None and back.meta == {"k": 2.0}
    j, m = t.save(tmp_path / "out", "demo")
    assert json.loads(j.read_text())["title"] == "demo" and m.read_text() == md
    assert t.row(variant="x")["seeds"] == 3
    with pytest.raises(KeyError):
        t.row(variant="z")
    with pytest.raises(ValueError, match="unknown column"):
        Table("bad", ["variant"], [{"variant": "x", "AP": 1.0}])
    assert len(t.figure().data) == 1


def test_crops_at_sizes_downscale_consistently():
    data = crops_at_sizes(4, (16, 32), seed=3, background="plain", progress=False)
    big, small = data[32], data[16]
    assert big.images.shape == (4, 3, 32, 32) and small.images.shape == (4, 3, 16, 16)
    # Pixel-centre convention: x at 32 px ↦ (x + 0.5)/2 - 0.5 at 16 px; areas scale by 1/4.
    assert torch.allclose(small.keypoints, (big.keypoints + 0.5) / 2 - 0.5)
    assert torch.allclose(small.images, torch.nn.functional.avg_pool2d(big.images, 2))
    assert torch.allclose(small.areas * 4, big.areas) and bool((big.areas > 0).all())
    train_set, val_set = split(big, 3)
    assert len(train_set) == 3 and len(val_set) == 1 and set(train_set[0]) == {"image", "keypoints", "visible"}
    with pytest.raises(ValueError, match="divide"):
        crops_at_sizes(2, (24, 32))


def test_evaluate_keypoints_perfect_and_shifted():
    data = crops_at_sizes(6, (32,), seed=1, background="plain", progress=False)[32]
    perfect = evaluate_keypoints(data.keypoints, torch.ones(6, 17), data)
    assert perfect["err_px"] == 0.0 and perfect["pck"] == 1.0 and perfect["AP"] == pytest.approx(100.0)
    off = evaluate_keypoints(data.keypoints + 3.0, torch.ones(6, 17), data)
    assert off["err_px"] == pytest.approx(3 * math.sqrt(2), rel=1e-4)
    assert off["err_pct"] == pytest.approx(100 * off["err_px"] / 32)
    assert off["pck"] < 0.5 and off["AP"] < perfect["AP"]


def test_reproduce_cli_runs_a_tiny_experiment(tmp_path, monkeypatch, capsys):
    tiny = simdr_vs_heatmap.config("ci") | {"sizes": (32,), "n_train": 8, "n_val": 4, "steps": 2,
                                             "batch_size": 4, "flip_test": True, "fit_crops": 4,
                                             "fit_steps": 2}
    monkeypatch.setattr(simdr_vs_heatmap, "config", lambda profile=None: tiny)
    rc = cli.main(["reproduce", "simdr", "--profile", "ci", "--seeds", "0", "--out", str(tmp_path), "--quiet"])
    assert rc == 0
    table = Table.from_json((tmp_path / "simdr_ci.json").read_text())
    assert [(r["regime"], r["variant"]) for r in table.rows] == [
        (g, v) for g in simdr_vs_heatmap.REGIMES for v in simdr_vs_heatmap.VARIANTS]
    assert all(0 <= r["AP"] <= 100 and r["err_px"] > 0 for r in table.rows)
    assert (tmp_path / "simdr_ci_1.md").exists()  # the gap table
    assert "SimDR" in capsys.readouterr().out
    assert cli.main(["reproduce", "nope", "--out", str(tmp_path)]) == 2
    with pytest.raises(ValueError, match="unknown experiment"):
        get_experiment("nope")


def test_heatmap_explorer_callback_numbers():
    e = localisation.HeatmapExplorer()
    fig = e.update(stride=8, sigma=1.0, dx=1.5, refine=False)
    c = e.compute(**e.params)
    assert c["heatmap"].shape == (8, 8) and len(fig.data) >= 3
    assert np.abs(c["decoded"] - c["keypoint"]).max() <= 4.0 + 1e-4  # stride / 2 per axis
    assert "error" in e.info.value
    # The heatmap pixel grid: one line trace, a vertical line at every column edge and a
    # horizontal one at every row edge (stride 8 of 64: 9 + 9 lines), across the crop.
    grid = [t for t in fig.data if t.name == "heatmap pixels"]
    assert len(grid) == 1 and not fig.layout.shapes
    x, y = list(grid[0].x), list(grid[0].y)
    segs = [((x[i], y[i]), (x[i + 1], y[i + 1])) for i in range(0, len(x), 3)]
    assert x[2::3] == [None] * len(segs) and y[2::3] == [None] * len(segs)
    edges = [-0.5 + 8 * i for i in range(9)]
    assert [s for s in segs if s[0][0] == s[1][0]] == [((v, -0.5), (v, 63.5)) for v in edges]
    assert [s for s in segs if s[0][1] == s[1][1]] == [((-0.5, v), (63.5, v)) for v in edges]
    with pytest.raises(ValueError, match="unknown parameter"):
        e.update(strid=4)


def test_simdr_explorer_callback_numbers():
    e = localisation.SimDRExplorer()
    e.update(split_ratio=3.0, sigma=0.0, label_smoothing=0.2, dx=0.3)
    c = e.compute(**e.params)
    assert np.abs(c["decoded"] - c["keypoint"]).max() <= 1 / 6 + 1e-4
    assert c["x"].max() == pytest.approx(0.8, abs=1e-6) and c["map"].shape == (192, 192)


def test_quantisation_floor_helpers():
    floor = simdr.quantisation_floor(64, (1, 2, 4), n=500)
    for k, e in floor.items():
        assert e == pytest.approx(1 / (4 * k), rel=0.15)
    fig, means = localisation.decoder_floor_figure(64, (8, 16), n=100)
    assert set(means) == {"argmax", "argmax+quarter", "dark", "soft-argmax"} and len(fig.data) == 4


def test_cropset_coco_is_valid():
    data = CropSet(torch.zeros(2, 3, 8, 8), torch.full((2, 17, 2), 3.0), torch.ones(2, 17),
                   torch.full((2, 17), 2), torch.tensor([20.0, 30.0]))
    coco = data.coco()
    assert len(coco["images"]) == 2 and coco["annotations"][1]["area"] == 30.0


def test_sahr_wahr_experiment_tiny_run_and_cli(tmp_path, monkeypatch):
    from labcore.experiments import sahr_wahr as exp

    tiny = exp.config("ci") | {"n_train": 4, "n_val": 3, "steps": 2, "fit_images": 2, "fit_steps": 2,
                               "batch_size": 2}
    monkeypatch.setattr(exp, "config", lambda profile=None: tiny)
    rc = cli.main(["reproduce", "sahr_wahr", "--profile", "ci", "--seeds", "0", "--out", str(tmp_path), "--quiet"])
    assert rc == 0
    table = Table.from_json((tmp_path / "sahr_wahr_ci.json").read_text())
    assert [(r["regime"], r["variant"]) for r in table.rows] == [
        ("held-out", "oracle (GT maps)"), *[(g, v) for g in exp.REGIMES for v in exp.VARIANTS]]
    oracle = table.row(variant="oracle (GT maps)")
    # the decoder's ceiling on ground-truth maps: far above an untrained network
    assert oracle["AP50"] > 80 and oracle["pck_small"] == 100.0 and oracle["AP_gt_tags"] == oracle["AP"]
    assert all(0 <= r["AP"] <= 100 for r in table.rows)
    gains = Table.from_json((tmp_path / "sahr_wahr_ci_1.json").read_text())
    assert len(gains.rows) == 2 * (len(exp.VARIANTS) - 1)
    g = gains.rows[0]
    assert g["gain_AP"] == pytest.approx(table.row(regime=g["regime"], variant=g["variant"])["AP"]
                                         - table.row(regime=g["regime"], variant="baseline")["AP"])
    with pytest.raises(ValueError, match="variant"):
        exp.train_variant("+WAHR only", None, tiny)


def test_sahr_wahr_joint_pck_by_hand():
    from labcore.experiments.sahr_wahr import joint_pck

    kp = torch.zeros(1, 2, 17, 2)
    kp[0, 0] = 10.0
    kp[0, 1] = 50.0
    vis = torch.ones(1, 2, 17)
    vis[0, 1, 3] = 0  # one unlabelled joint: not counted
    heights = np.array([[20.0, 100.0]])
    found = kp[0].numpy().copy()
    found[1, :, 0] += 9.0  # person 1 off by 9 px: inside 10 % of 100 px
    found[0, :5, 0] += 3.0  # person 0's first five joints off by 3 px: outside 10 % of 20 px
    people = [{"keypoints": found, "keypoint_scores": np.ones((2, 17))}]
    hits = joint_pck(people, kp, vis, heights)
    assert hits.shape == (33, 2)
    assert hits[:17, 0].sum() == 12 and hits[17:, 0].sum() == 16
    people[0]["keypoint_scores"][1] = 0.0  # person 1's joints not detected: a miss
    assert joint_pck(people, kp, vis, heights)[17:, 0].sum() == 0


def test_hsjp_experiment_tiny_run_and_cli(tmp_path, monkeypatch):
    from labcore.experiments import hsjp as exp

    base = exp.config("ci")
    tiny = base | {"n_train": 20, "n_val": 4, "pretrain_steps": 2, "finetune_steps": 2, "batch_size": 4,
                   "backbones": ("SimpleBaseline", "HRNet"), "permutations": 5}
    monkeypatch.setattr(exp, "config", lambda profile=None: tiny)
    rc = cli.main(["reproduce", "hsjp", "--profile", "ci", "--seeds", "0", "1", "--out", str(tmp_path), "--quiet"])
    assert rc == 0
    table = Table.from_json((tmp_path / "hsjp_ci.json").read_text())
    assert [(r["backbone"], r["labels"], r["init"]) for r in table.rows] == [
        (b, f, i) for b in ("SimpleBaseline", "HRNet") for f in ("5%", "20%", "100%") for i in exp.INITS]
    assert all(r["seeds"] == 2 and 0 <= r["pck"] <= 1 and 0 <= r["AP"] <= 100 for r in table.rows)
    per_seed = table.meta["per_seed"]
    assert sorted({r["n_labelled"] for r in per_seed}) == [1, 4, 20]  # 5 %, 20 %, 100 % of 20 crops
    assert len(table.meta["pretext"]) == 4 and all(0 <= p["jigsaw_cells"] <= 1 for p in table.meta["pretext"])
    # the gain table pairs HSJP with scratch seed by seed
    gains = Table.from_json((tmp_path / "hsjp_ci_1.json").read_text())
    g = gains.row(backbone="HRNet", labels="20%")

    def pck(init, seed):
        return next(r["pck"] for r in per_seed if (r["backbone"], r["labels"], r["init"], r["seed"])
                    == ("HRNet", "20%", init, seed))

    diffs = [pck("HSJP", s) - pck("scratch", s) for s in (0, 1)]
    assert g["HSJP_pck"] == pytest.approx(np.mean(diffs))
    assert g["HSJP_pck_std"] == pytest.approx(np.std(diffs, ddof=1))
    with pytest.raises(ValueError, match="name"):
        exp.make_backbone("VGG", tiny)


def test_hsjp_pretext_and_reference_models_have_the_shapes_they_promise():
    from labcore.experiments import hsjp as exp

    cfg = exp.config("ci")
    classifier = exp.FamilyClassifier(exp.make_backbone("HRNet", cfg))
    logits = classifier(torch.rand(3, 3, 64, 64))
    assert logits.shape == (3, 7)
    data = exp.PretextData(torch.rand(3, 3, 64, 64), logits.argmax(1))
    assert exp.family_accuracy(classifier, data) == 1.0  # its own predictions as labels
    task = exp.jigsaw_task(cfg)
    assert task.grid.cells == cfg["grid"] ** 2 and len(task.permutations) == cfg["permutations"]


def test_hemlets_experiment_tiny_run_and_cli(tmp_path, monkeypatch):
    from labcore.experiments import hemlets as exp

    tiny = exp.config("ci") | {"n_lab_train": 6, "n_wild_train": 4, "n_test": 3, "steps": 2, "batch_size": 4}
    monkeypatch.setattr(exp, "config", lambda profile=None: tiny)
    rc = cli.main(["reproduce", "hemlets", "--profile", "ci", "--seeds", "0", "1", "--out", str(tmp_path), "--quiet"])
    assert rc == 0
    table = Table.from_json((tmp_path / "hemlets_ci.json").read_text())
    assert [(r["test"], r["variant"]) for r in table.rows] == [(t, v) for t in ("lab", "wild") for v in exp.VARIANTS]
    assert all(r["seeds"] == 2 and r["P1"] > 0 and 0 <= r["order"] <= 100 for r in table.rows)
    gains = Table.from_json((tmp_path / "hemlets_ci_1.json").read_text())
    per_seed = table.meta["per_seed"]

    def p1(variant, seed):
        return next(r["P1"] for r in per_seed if (r["test"], r["variant"], r["seed"]) == ("wild", variant, seed))

    g = gains.row(test="wild", variant="HEMlets")
    assert g["dP1"] == pytest.approx(np.mean([p1("HEMlets", s) - p1("integral", s) for s in (0, 1)]))
    with pytest.raises(ValueError, match="variant"):
        exp.train_variant("HEMlets only", {}, tiny)


def test_hemlets_data_is_consistent_with_its_cameras():
    from labcore.experiments import hemlets as exp
    from labcore.geometry import project_points
    from labcore.methods.hemlets import part_polarity

    cfg = exp.config("ci") | {"n_test": 3}
    data = exp.j18_crops(3, 5, "wild", cfg, False)
    # the crop camera projects the 3-D joints onto the 2-D keypoints (to float32 precision)
    assert torch.allclose(project_points(data.joints3d.double(), data.K.double()).float(), data.keypoints, atol=1e-2)
    assert torch.equal(data.polarity, part_polarity(data.joints3d[..., 2]))
    weak = data.ordinal_only()
    assert float(weak.has_3d.sum()) == 0 and float(weak.depth.abs().sum()) == 0
    assert torch.equal(weak.polarity, data.polarity)
    # the config's heading range reaches the crops: turned to face the camera, every
    # person's left shoulder is on the image's right; turned away, on its left
    from labcore.skeletons import J18

    left, right = J18.joint_names.index("left_shoulder"), J18.joint_names.index("right_shoulder")
    for heading, sign in (((0.0, 0.0), 1), ((180.0, 180.0), -1)):
        kp = exp.j18_crops(3, 5, "lab", cfg | {"heading_deg": heading}, False).keypoints
        assert (sign * (kp[:, left, 0] - kp[:, right, 0]) > 0).all()


def test_posh_experiment_tiny_run_and_cli(tmp_path, monkeypatch):
    from labcore.experiments import posh as exp

    tiny = exp.config("ci") | {"n_lab_train": 6, "n_test": 3, "steps": 2, "batch_size": 4, "regressor_steps": 3,
                               "regressor_batch_size": 4, "hidden": 8}
    monkeypatch.setattr(exp, "config", lambda profile=None: tiny)
    rc = cli.main(["reproduce", "posh", "--profile", "ci", "--seeds", "0", "1", "--out", str(tmp_path), "--quiet"])
    assert rc == 0
    table = Table.from_json((tmp_path / "posh_ci.json").read_text())
    assert [(r["inputs"], r["regressor"]) for r in table.rows] == list(exp.VARIANTS.values())
    assert all(r["seeds"] == 2 and r["MPJPE"] > 0 and r["PVE"] > 0 for r in table.rows)
    # the ground-truth input has zero input error; HEMlets' has the error of its joints
    assert all((r["input"] == 0) == (r["inputs"] == "GT joints") for r in table.rows)
    with pytest.raises(ValueError, match="variant"):
        exp.train_regressor("HEMlets · quaternions", None, None, tiny)


def test_posh_data_targets_are_the_crops_bodies():
    from labcore.experiments import posh as exp
    from labcore.methods import posh as ps

    cfg = exp.config("ci") | {"n_lab_train": 3, "n_test": 2}
    data = exp.load_data(cfg, progress=False)
    train = data["gt"]["train"]
    crops = data["crops"]["train"]
    # the SMPL joints are the crops' 3-D labels (root-relative, mm → m)
    rel = (crops.joints3d - crops.joints3d[:, :1]) / 1000.0
    assert torch.allclose(train.gt_joints, rel, atol=1e-5) and torch.equal(train.joints, train.gt_joints)
    assert train.vertices.shape == (3, 6890, 3) and train.features.shape == (3, 0)
    assert float(ps.posh_loss(data["body"], {"rotmats": train.rotmats, "betas": train.betas}, train.targets())[0]) < 1e-6
    reg = exp.build_regressor("GT joints · 6-D, one shot", cfg, train)
    assert reg.iterations == 1 and reg.rotation == "6d"
    R, b = reg.split(reg.mean[None])
    assert torch.allclose(R[0], ps.mean_rotation(train.rotmats), atol=1e-5)
    assert torch.allclose(b[0], train.betas.mean(0))


def test_eventhpe_experiment_tiny_run_and_cli(tmp_path, monkeypatch):
    from labcore.experiments import eventhpe as exp

    tiny = exp.config("ci") | {"n_train": 2, "n_test": 1, "steps_per_clip": 2, "flownet_steps": 2,
                               "shapenet_steps": 2, "flownet_batch_size": 2}
    monkeypatch.setattr(exp, "config", lambda profile=None: tiny)
    rc = cli.main(["reproduce", "eventhpe", "--profile", "ci", "--seeds", "0", "1", "--out", str(tmp_path), "--quiet"])
    assert rc == 0
    table = Table.from_json((tmp_path / "eventhpe_ci.json").read_text())
    assert table.column("variant") == list(exp.VARIANTS)
    assert all(r["seeds"] == 2 and r["MPJPE"] > 0 and r["PVE"] > 0 and 0 <= r["PCK"] <= 100 for r in table.rows)
    flow = table.meta["flow"]
    assert len(flow) == 2 and all(f["zero_person"] > 0 for f in flow)
    with pytest.raises(ValueError, match="variant"):
        exp.train_shapenet("with flow only", None, None, None, tiny)


def test_eventhpe_clips_are_consistent():
    from labcore.data import events as ev
    from labcore.experiments import eventhpe as exp
    from labcore.geometry import project_points

    cfg = exp.config("ci") | {"n_train": 2, "n_test": 1, "steps_per_clip": 3}
    clips = exp.load_data(cfg, progress=False)["train"]
    assert clips.events.shape == (2, 3, 8, 64, 64) and clips.gray.shape == (2, 4, 1, 64, 64)
    # binary frames: an event in a step's interval lights its pixel in one of the 8 partitions
    gray = clips.gray[0, :, 0].numpy()
    times = np.arange(4) / cfg["fps"]
    events, frames = exp.clip_events(gray, times, cfg, seed=0)
    assert np.array_equal(frames, clips.events[0].numpy()) and len(events) == int(clips.n_events[0])
    first = events[events["t"] <= round(1e6 / cfg["fps"])]
    lit = frames[0].max(0) > 0
    assert lit[first["y"], first["x"]].all() and int(lit.sum()) == len(set(zip(first["x"], first["y"])))
    # the rotations and translation pose the body onto its 3-D joints
    from labcore.body import load_body_model, pose_body_matrices

    body = load_body_model("auto")
    state = pose_body_matrices(body, clips.rotmats[0], clips.betas[:1].expand(4, -1), clips.transl[0])
    assert torch.allclose(state.joints, clips.joints3d[0], atol=1e-4)
    assert project_points(clips.joints3d[0], clips.K[0]).shape == (4, 24, 2)
    assert ev.EVENT_DTYPE == events.dtype
