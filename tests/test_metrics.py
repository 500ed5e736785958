"""Tests for labcore.metrics against hand-computed cases and pycocotools."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from labcore import geometry as G
from labcore import metrics as M
from labcore.skeletons import COCO17

FAST = settings(max_examples=25, deadline=None)


def _joints(n=2, k=17, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, 3, dtype=torch.float64, generator=g) * 300


# --------------------------------------------------------------------------- 3-D joints


def test_mpjpe_hand_case():
    gt = torch.zeros(1, 2, 3)
    pred = torch.tensor([[[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]]])
    assert M.mpjpe(pred, gt) == pytest.approx(3.0)
    per = M.mpjpe(pred, gt, reduction="none")
    assert isinstance(per, torch.Tensor) and per.shape == (1, 2)
    torch.testing.assert_close(per, torch.tensor([[5.0, 1.0]]))
    assert M.mpjpe(pred, gt, visible=[[1.0, 0.0]]) == pytest.approx(5.0)
    assert M.mpjpe(pred.numpy(), gt.numpy(), visible=np.array([[False, True]])) == pytest.approx(
        1.0
    )
    with pytest.raises(ValueError, match="no valid joints"):
        M.mpjpe(pred, gt, visible=[[0.0, 0.0]])


def test_pel_mpjpe_hand_case_and_roots():
    gt = torch.tensor([[[0.0, 0, 0], [10.0, 0, 0], [0.0, 10, 0]]])
    pred = gt + torch.tensor([100.0, 200.0, 300.0])
    pred[0, 2, 1] += 6.0  # one joint off by 6 mm
    assert M.mpjpe(pred, gt) > 300
    assert M.pel_mpjpe(pred, gt) == pytest.approx(2.0)  # root 0: errors (0, 0, 6)
    # root = mean of joints 1 and 2: the root moves by 3 mm in y for pred
    per = M.pel_mpjpe(pred, gt, root=(1, 2), reduction="none")
    torch.testing.assert_close(per, torch.tensor([[3.0, 3.0, 3.0]]))
    assert M.pel_mpjpe(pred, gt, root=np.array([1, 2])) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="root"):
        M.pel_mpjpe(pred, gt, root=3)
    with pytest.raises(TypeError, match="root"):
        M.pel_mpjpe(pred, gt, root=1.0)


@FAST
@given(st.tuples(*[st.floats(-1e3, 1e3)] * 3))
def test_pel_mpjpe_is_translation_invariant(shift):
    gt = _joints()
    pred = (
        gt + torch.randn(gt.shape, dtype=gt.dtype, generator=torch.Generator().manual_seed(1)) * 20
    )
    base = M.pel_mpjpe(pred, gt, root=(1, 2))
    moved = M.pel_mpjpe(pred + torch.tensor(shift, dtype=gt.dtype), gt, root=(1, 2))
    assert moved == pytest.approx(base, rel=1e-9, abs=1e-9)


@FAST
@given(
    st.floats(0.2, 5.0),
    st.tuples(*[st.floats(-2, 2)] * 3),
    st.tuples(*[st.floats(-1e3, 1e3)] * 3),
)
def test_pa_mpjpe_is_similarity_invariant(scale, aa, shift):
    gt = _joints()
    pred = (
        gt + torch.randn(gt.shape, dtype=gt.dtype, generator=torch.Generator().manual_seed(2)) * 30
    )
    R = G.axis_angle_to_matrix(torch.tensor(aa, dtype=gt.dtype))
    moved = scale * pred @ R.T + torch.tensor(shift, dtype=gt.dtype)
    assert M.pa_mpjpe(moved, gt) == pytest.approx(M.pa_mpjpe(pred, gt), rel=1e-7)


def test_pa_mpjpe_hand_case_and_directions():
    gt = _joints(1, 17, seed=3)
    R = G.axis_angle_to_matrix(torch.tensor([0.5, -0.2, 0.1], dtype=torch.float64))
    exact = 0.8 * gt @ R.T + 50.0
    assert M.pa_mpjpe(exact, gt) == pytest.approx(0.0, abs=1e-9)
    assert M.pa_mpjpe(exact, gt, direction="gt_to_pred") == pytest.approx(0.0, abs=1e-9)
    # hand case: gt a 2×2 square, pred a 4×2 rectangle (turned and moved). Pred onto gt:
    # s = (2 + 1)/5 = 0.6 → corners (±1.2, ±0.6), error √0.2 each; gt onto pred: s = 3/2
    # → corners (±1.5, ±1.5) against (±2, ±1), error √0.5 each.
    sq = torch.tensor([[[1.0, 1, 0], [-1, 1, 0], [-1, -1, 0], [1, -1, 0]]], dtype=torch.float64)
    rect = sq * torch.tensor([2.0, 1.0, 1.0], dtype=torch.float64)
    rect = rect @ R.T + 7.0
    assert M.pa_mpjpe(rect, sq) == pytest.approx(math.sqrt(0.2))
    assert M.pa_mpjpe(rect, sq, direction="gt_to_pred") == pytest.approx(math.sqrt(0.5))
    pred = gt.clone()
    pred[0, 0] += torch.tensor([40.0, 0.0, 0.0], dtype=torch.float64)
    # the reverse direction measures in pred's (scaled) frame: same as aligning gt by hand
    noisy = (
        0.5 * gt
        + torch.randn(gt.shape, dtype=gt.dtype, generator=torch.Generator().manual_seed(4)) * 30
    )
    fwd = M.pa_mpjpe(noisy, gt)
    bwd = M.pa_mpjpe(noisy, gt, direction="gt_to_pred")
    by_hand = float((G.procrustes_align(gt, noisy) - noisy).norm(dim=-1).mean())
    assert bwd == pytest.approx(by_hand)
    assert abs(fwd - bwd) > 1.0
    # invisible joints influence neither the alignment nor the mean
    vis = torch.ones(1, 17)
    vis[0, 0] = 0
    assert M.pa_mpjpe(pred, gt, visible=vis) == pytest.approx(0.0, abs=1e-9)


def test_pa_mpjpe_gradient():
    gt = _joints(2, 10, seed=5)
    pred = (
        gt + 10 * torch.randn(gt.shape, dtype=gt.dtype, generator=torch.Generator().manual_seed(6))
    ).requires_grad_(True)
    M.pa_mpjpe(pred, gt, reduction="none").mean().backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


# --------------------------------------------------------------------------- PCK, PVE, EPE


def test_pck_hand_case():
    gt = torch.zeros(2, 3, 2)
    pred = torch.tensor([[[1.0, 0], [3.0, 0], [0.0, 5.0]], [[2.0, 0], [0.0, 2.0], [9.0, 9.0]]])
    # threshold 2 px: correct = [1, 0, 0], [1, 1, 0]
    assert M.pck(pred, gt, 2.0) == pytest.approx(3 / 6)
    torch.testing.assert_close(
        M.pck(pred, gt, 2.0, reduction="none"), torch.tensor([[1.0, 0, 0], [1.0, 1, 0]])
    )
    # normalised: 0.5 × (12, 20) → limits 6 and 10 px: [1, 1, 1], [1, 1, 0]
    assert M.pck(pred, gt, 0.5, normalize=[12.0, 20.0]) == pytest.approx(5 / 6)
    assert M.pck(pred, gt, 2.0, visible=[[1, 0, 0], [0, 0, 1]]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="threshold"):
        M.pck(pred, gt, 0.0)
    with pytest.raises(ValueError, match="normalize"):
        M.pck(pred, gt, 0.5, normalize=[4.0, -1.0])
    with pytest.raises(ValueError, match="normalize"):
        M.pck(pred, gt, 0.5, normalize=[4.0, 1.0, 2.0])


def test_pve_with_and_without_alignment():
    g = torch.Generator().manual_seed(7)
    gt_v = torch.randn(2, 50, 3, dtype=torch.float64, generator=g) * 200
    gt_j = torch.randn(2, 24, 3, dtype=torch.float64, generator=g) * 200
    assert M.pve(gt_v + torch.tensor([0.0, 3.0, 4.0], dtype=torch.float64), gt_v) == pytest.approx(
        5.0
    )
    R = G.axis_angle_to_matrix(torch.tensor([0.3, 0.9, -0.4], dtype=torch.float64))
    pred_v = 1.3 * gt_v @ R.T + 20.0
    pred_j = 1.3 * gt_j @ R.T + 20.0
    assert M.pve(pred_v, gt_v) > 10
    assert M.pve(pred_v, gt_v, align_with=(pred_j, gt_j)) == pytest.approx(0.0, abs=1e-8)
    assert M.pve(pred_v, gt_v, reduction="none").shape == (2, 50)
    with pytest.raises(TypeError, match="align_with"):
        M.pve(pred_v, gt_v, align_with=pred_j)
    with pytest.raises(ValueError, match="align_with"):
        M.pve(pred_v, gt_v, align_with=(pred_j[:1], gt_j[:1]))


def test_epe_hand_case():
    gt = torch.zeros(1, 2, 2, 2)
    pred = torch.zeros(1, 2, 2, 2)
    pred[0, 0, 0, 0], pred[0, 1, 0, 0] = 3.0, 4.0  # |(3, 4)| = 5 at pixel (0, 0)
    pred[0, 1, 1, 1] = 1.0
    assert M.epe(pred, gt) == pytest.approx(6 / 4)
    assert M.epe(pred, gt, mask=[[[1.0, 0], [0, 0]]]) == pytest.approx(5.0)
    torch.testing.assert_close(
        M.epe(pred, gt, reduction="none"), torch.tensor([[[5.0, 0], [0, 1.0]]])
    )
    with pytest.raises(ValueError, match="pred_flow|pred"):
        M.epe(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="mask"):
        M.epe(pred, gt, mask=torch.zeros(1, 2, 2))


# --------------------------------------------------------------------------- OKS and COCO AP


def test_oks_hand_case_and_pycocotools():
    sig = COCO17.oks_sigmas
    gt = np.zeros((1, 17, 2))
    pred = np.zeros((1, 17, 2))
    area = 1000.0
    # keypoint 0 displaced so that e_0 = d²/(2σ)²/area/2 = 1 exactly
    d = math.sqrt(2 * area * (2 * sig[0]) ** 2)
    pred[0, 0, 0] = d
    vis = np.zeros((1, 17))
    vis[0, :2] = 2  # two labelled keypoints: (exp(-1) + 1) / 2
    val = M.oks(pred, gt, vis, [area])
    assert val.shape == (1,)
    assert float(val[0]) == pytest.approx((math.exp(-1) + 1) / 2, rel=1e-9)

    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(0)
    gts = rng.uniform(0, 100, (3, 17, 2))
    preds = gts + rng.normal(0, 3, (3, 17, 2))
    v = rng.integers(0, 3, (3, 17))
    v[:, 0] = 2
    areas = np.array([2000.0, 5000.0, 9000.0])
    ours = M.oks(preds, gts, v, areas).numpy()
    ev = COCOeval(iouType="keypoints")
    for i in range(3):
        kg = np.concatenate([gts[i], v[i, :, None]], -1).reshape(-1).tolist()
        kd = np.concatenate([preds[i], np.ones((17, 1))], -1).reshape(-1).tolist()
        ev._gts = {(0, 1): [{"keypoints": kg, "bbox": [0, 0, 100, 100], "area": areas[i]}]}
        ev._dts = {(0, 1): [{"keypoints": kd, "score": 1.0}]}
        ref = ev.computeOks(0, 1)[0, 0]
        assert ours[i] == pytest.approx(ref, rel=1e-12)


def test_oks_errors():
    z = np.zeros((1, 5, 2))
    with pytest.raises(ValueError, match="sigmas"):
        M.oks(z, z, np.ones((1, 5)), [100.0])
    with pytest.raises(ValueError, match="visible"):
        M.oks(z, z, np.zeros((1, 5)), [100.0], sigmas=np.full(5, 0.1))
    with pytest.raises(ValueError, match="area"):
        M.oks(z, z, np.ones((1, 5)), [-1.0], sigmas=np.full(5, 0.1))


def _tiny_coco():
    rng = np.random.default_rng(1)
    anns = []
    boxes = [(0, (20, 30, 40, 60)), (0, (120, 40, 60, 100)), (1, (50, 50, 80, 130))]
    for i, (img, (x, y, w, h)) in enumerate(boxes):
        kp = np.stack([rng.uniform(x, x + w, 17), rng.uniform(y, y + h, 17), np.full(17, 2)], -1)
        kp[3, 2] = 0  # one unlabelled keypoint
        kp[3, :2] = 0
        anns.append({
            "id": i, "image_id": img, "category_id": 1, "keypoints": kp.reshape(-1).tolist(),
            "num_keypoints": 16, "area": float(w * h), "bbox": [x, y, w, h], "iscrowd": 0,
        })  # fmt: skip
    return {
        "images": [{"id": 0, "width": 200, "height": 200}, {"id": 1, "width": 200, "height": 200}],
        "annotations": anns,
        "categories": [COCO17.coco_category(1)],
    }


def _as_results(coco, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for a in coco["annotations"]:
        kp = np.asarray(a["keypoints"], dtype=float).reshape(-1, 3)
        kp[:, :2] += rng.normal(0, noise, (len(kp), 2))
        kp[:, 2] = 1.0
        out.append(
            {
                "image_id": a["image_id"],
                "category_id": 1,
                "keypoints": kp.reshape(-1).tolist(),
                "score": 0.9,
            }
        )
    return out


def test_coco_keypoint_ap_perfect_perturbed_empty():
    coco = _tiny_coco()
    snapshot = copy.deepcopy(coco)
    res = _as_results(coco)
    res_snapshot = copy.deepcopy(res)
    stats = M.coco_keypoint_ap(coco, res)
    assert set(stats) >= {"AP", "AP50", "AP75", "APm", "APl", "AR"}
    assert all(isinstance(v, float) for v in stats.values())
    assert stats["AP"] == pytest.approx(1.0) and stats["AR"] == pytest.approx(1.0)
    assert stats["APm"] == pytest.approx(1.0) and stats["APl"] == pytest.approx(1.0)
    assert coco == snapshot and res == res_snapshot  # nothing mutated
    noisy = M.coco_keypoint_ap(coco, _as_results(coco, noise=8.0))
    assert 0.0 <= noisy["AP"] < 1.0
    assert M.coco_keypoint_ap(coco, []) == dict.fromkeys(M.COCO_KEYPOINT_STATS, 0.0)


def test_coco_keypoint_ap_from_path_and_custom_sigmas(tmp_path, capsys):
    coco = _tiny_coco()
    path = tmp_path / "kp.json"
    path.write_text(json.dumps(coco))
    assert M.coco_keypoint_ap(str(path), _as_results(coco))["AP"] == pytest.approx(1.0)
    assert capsys.readouterr().out == ""  # pycocotools' prints are silenced
    # K = 5 needs sigmas
    small = copy.deepcopy(coco)
    for a in small["annotations"]:
        a["keypoints"] = a["keypoints"][:15]
        a["num_keypoints"] = 5
    res = [dict(r, keypoints=r["keypoints"][:15]) for r in _as_results(coco)]
    with pytest.raises(ValueError, match="sigmas"):
        M.coco_keypoint_ap(small, res)
    assert M.coco_keypoint_ap(small, res, sigmas=[0.05] * 5)["AP"] == pytest.approx(1.0)


def test_coco_keypoint_ap_errors():
    coco = _tiny_coco()
    res = _as_results(coco)
    with pytest.raises(ValueError, match="image_id"):
        M.coco_keypoint_ap(coco, [dict(res[0], image_id=99)])
    with pytest.raises(ValueError, match="keypoint"):
        M.coco_keypoint_ap(coco, [dict(res[0], keypoints=[1.0, 2.0, 1.0])])
    with pytest.raises(ValueError, match="score"):
        M.coco_keypoint_ap(coco, [dict(res[0], score=float("nan"))])
    with pytest.raises(ValueError, match="gt"):
        M.coco_keypoint_ap({"images": []}, res)
    with pytest.raises(FileNotFoundError, match="gt"):
        M.coco_keypoint_ap("/nonexistent/kp.json", res)
    with pytest.raises(TypeError, match="results"):
        M.coco_keypoint_ap(coco, res[0])


# --------------------------------------------------------------------------- errors


def test_clear_errors_on_bad_input():
    a = torch.zeros(2, 17, 3)
    with pytest.raises(ValueError, match="gt"):
        M.mpjpe(a, torch.zeros(2, 16, 3))
    with pytest.raises(ValueError, match="gt"):
        M.pa_mpjpe(a, torch.zeros(3, 17, 3))
    with pytest.raises(ValueError, match="pred: expected shape"):
        M.mpjpe(torch.zeros(17, 3), torch.zeros(17, 3))
    nan = a.clone()
    nan[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="pred: expected finite"):
        M.pel_mpjpe(nan, a)
    with pytest.raises(ValueError, match="reduction"):
        M.mpjpe(a, a, reduction="sum")
    with pytest.raises(ValueError, match="direction"):
        M.pa_mpjpe(a, a, direction="sideways")
    with pytest.raises(ValueError, match="visible"):
        M.mpjpe(a, a, visible=torch.ones(2, 16))
    with pytest.raises(ValueError, match="visible"):
        M.mpjpe(a, a, visible=-torch.ones(2, 17))
    with pytest.raises(ValueError, match="visible"):
        vis = torch.ones(2, 17)
        vis[1] = 0
        M.pa_mpjpe(_joints(), _joints(seed=1), visible=vis)
    with pytest.raises(TypeError, match="threshold"):
        M.pck(a, a, "0.5")


def test_coco_keypoint_ap_area_ranges_split_by_size():
    coco = _tiny_coco()  # areas 2400, 6000, 10400
    res = _as_results(coco)
    # spoil the largest person only: the small range stays perfect, the large one drops
    big = res[2]["keypoints"]
    res[2] = dict(res[2], keypoints=[v + 15.0 if i % 3 != 2 else v for i, v in enumerate(big)])
    stats = M.coco_keypoint_ap(coco, res, area_ranges={"small": (0, 7000), "large": (7000, 1e10),
                                                       "everyone": (0, 1e10)})
    assert stats["AP_small"] == pytest.approx(1.0) and stats["AR_small"] == pytest.approx(1.0)
    assert stats["AP_large"] < 0.5
    assert stats["AP_everyone"] == pytest.approx(stats["AP"]) and stats["AR_everyone"] == pytest.approx(stats["AR"])
    assert M.coco_keypoint_ap(coco, res, area_ranges={"none": (1e9, 1e10)})["AP_none"] == -1.0  # no GT there
    assert set(M.coco_keypoint_ap(coco, [], area_ranges={"small": (0, 10)})) >= {"AP_small", "AR_small"}
    with pytest.raises(ValueError, match="area_ranges"):
        M.coco_keypoint_ap(coco, res, area_ranges={"bad": (10, 5)})
    with pytest.raises(ValueError, match="area_ranges"):
        M.coco_keypoint_ap(coco, res, area_ranges={"a b": (0, 5)})
    with pytest.raises(TypeError, match="area_ranges"):
        M.coco_keypoint_ap(coco, res, area_ranges=[(0, 5)])
