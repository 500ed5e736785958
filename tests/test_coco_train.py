"""The real-data path: ``labcore train`` on a COCO-format folder, on one process and under
torchrun with two gloo processes (DistributedDataParallel)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from labcore import cli
from labcore.data.coco import CocoCrops
from labcore.experiments import coco_train
from labcore.experiments import playground as pg

pytestmark = pytest.mark.usefixtures("one_thread")

FIXTURE = Path(__file__).parent / "fixtures" / "coco_tiny"
ROOT = Path(__file__).resolve().parents[1]


def test_train_coco_learns_writes_and_resumes(tmp_path):
    untrained = coco_train.train_coco(FIXTURE, head="heatmap", input_size=32, steps=1, batch_size=4, lr=5e-3,
                                      profile="ci", progress=False)
    out = tmp_path / "run"
    trained = coco_train.train_coco(FIXTURE, head="heatmap", input_size=32, steps=60, batch_size=4, lr=5e-3,
                                    profile="ci", out=out, progress=False)
    m = trained["metrics"]
    assert set(m) >= {"AP", "AP50", "AR", "err_px", "pck"} and 0.0 <= m["AP"] <= 1.0
    # train = val here: 60 steps on the four people must fit them better than one step
    assert m["err_px"] < 0.7 * untrained["metrics"]["err_px"]
    assert trained["config"]["train_people"] == 4 and trained["config"]["world_size"] == 1
    results = json.loads((out / "results.json").read_text())
    gt = json.loads((FIXTURE / "annotations" / "person_keypoints_tiny.json").read_text())
    assert sorted(r["image_id"] for r in results) == [139, 139, 285, 632]
    assert {r["image_id"] for r in results} <= {im["id"] for im in gt["images"]}
    assert all(len(r["keypoints"]) == 3 * 17 for r in results)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["metrics"]["AP"] == pytest.approx(m["AP"]) and saved["config"]["head"] == "heatmap"
    # the checkpoint is a plain state dict of the model, readable without pickle
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    fresh = pg.recipe("heatmap", 32, pg.config("ci")).model
    fresh.load_state_dict(state["model"])
    assert state["step"] == 60
    # the same command again resumes from the finished checkpoint: nothing retrains
    again = coco_train.train_coco(FIXTURE, head="heatmap", input_size=32, steps=60, batch_size=4, lr=5e-3,
                                  profile="ci", out=out, progress=False)
    assert again["history"].loss == trained["history"].loss
    assert again["metrics"]["err_px"] == pytest.approx(m["err_px"], rel=1e-5)


def test_results_land_in_image_pixels():
    # the decoded crop keypoints go back through each crop's affine: an oracle network
    # (the ground truth in crop pixels) scores AP 1 on the original images
    from labcore.data.coco import evaluate_coco

    crops = CocoCrops(FIXTURE, input_size=(32, 32), progress=False)
    scores = torch.ones(crops.keypoints.shape[:2])
    assert evaluate_coco(crops, crops.keypoints, scores)["AP"] == pytest.approx(1.0)


def test_train_cli_errors(tmp_path, capsys):
    assert cli.main(["train", "--data", str(FIXTURE), "--head", "nope"]) == 2
    assert "--head" in capsys.readouterr().err
    with pytest.raises(ValueError, match="input_size"):
        coco_train.train_coco(FIXTURE, input_size=(32, 32, 3), profile="ci", progress=False)
    with pytest.raises((FileNotFoundError, ValueError), match="no_such"):
        coco_train.train_coco(tmp_path / "no_such", profile="ci", progress=False)


def test_torchrun_two_gloo_processes(tmp_path):
    out = tmp_path / "ddp"
    # TMPDIR: torchrun's torchelastic_* scratch folders go to pytest's temp dir, not /tmp
    env = os.environ | {"OMP_NUM_THREADS": "1", "LABCORE_PROGRESS": "0", "LABCORE_PROFILE": "ci",
                        "TMPDIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "labcore",
           "train", "--data", str(FIXTURE), "--head", "simdr", "--size", "32", "--steps", "6", "--batch-size", "4",
           "--profile", "ci", "--out", str(out), "--quiet"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-12000:]
    assert proc.stdout.count("on 2 process(es)") == 1  # rank 0 alone reports
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["config"]["world_size"] == 2 and 0.0 <= saved["metrics"]["AP"] <= 1.0
    history = json.loads((out / "history.json").read_text())
    assert history["steps"] == list(range(1, 7)) and all(v > 0 for v in history["loss"])
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert not any(k.startswith("module.") for k in state["model"])  # the unwrapped model
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "history.json", "metrics.json", "results.json"]
    assert ROOT.joinpath("labcore").is_dir()
