"""Real-format readers/writers (labcore.data.formats) on tiny fixtures in those formats."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from labcore.checks import MissingFileError
from labcore.data import formats
from labcore.data.formats import (
    MM_PER_M,
    SPIN24_NAMES,
    coco_annotation,
    coco_image,
    coco_to_arrays,
    find_coco_images,
    keypoint_results,
    make_coco,
    read_coco,
    read_h36m_npz,
    to_spin24,
    write_coco,
    write_h36m_npz,
)
from labcore.skeletons import COCO17, J18

FIXTURES = Path(__file__).parent / "fixtures"
COCO_ROOT = FIXTURES / "coco_tiny"
COCO_JSON = COCO_ROOT / "annotations" / "person_keypoints_tiny.json"
H36M_NPZ = FIXTURES / "h36m_tiny.npz"


def _quiet():
    return contextlib.redirect_stdout(io.StringIO())


def _small_coco() -> dict:
    kp = np.array([[10.0 + k, 20.0 + 0.5 * k] for k in range(17)])
    vis = np.full(17, 2)
    vis[3] = 0
    vis[7] = 1
    anns = [coco_annotation(1, 5, kp, vis), coco_annotation(2, 5, kp + 3.333, np.full(17, 2))]
    return make_coco([coco_image(5, "a.jpg", 64, 48)], anns)


# ---------------------------------------------------------------------- COCO: building


def test_coco_annotation_writes_unlabelled_points_as_zeros_and_counts_labelled():
    kp = np.full((17, 2), 7.0)
    vis = np.array([2, 0, 1] + [0] * 14)
    kp[1] = (33.0, 44.0)  # coordinates of a v=0 point are dropped
    ann = coco_annotation(9, 3, kp, vis)
    assert ann["keypoints"][:9] == [7, 7, 2, 0, 0, 0, 7, 7, 1]
    assert ann["keypoints"][9:] == [0] * 42
    assert ann["num_keypoints"] == 2
    assert ann["segmentation"] == [] and ann["iscrowd"] == 0 and ann["category_id"] == 1


def test_coco_annotation_default_box_is_the_tight_box_of_labelled_points_rounded():
    kp = np.zeros((17, 2))
    kp[0] = (10.123, 5.0)
    kp[1] = (30.0, 25.456)
    kp[2] = (100.0, 100.0)  # not labelled: outside the box
    vis = np.array([2, 1, 0] + [0] * 14)
    ann = coco_annotation(1, 1, kp, vis)
    assert ann["keypoints"][:6] == [10.12, 5, 2, 30, 25.46, 1]
    assert ann["bbox"] == [10.12, 5, 19.88, 20.46]
    assert ann["area"] == round(19.88 * 20.46, 2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"visibility": np.full(17, 3)}, "visibility"),
        ({"keypoints": np.zeros((17, 3))}, "keypoints"),
        ({"visibility": np.full(16, 2)}, "visibility"),
        ({"ann_id": 0}, "ann_id"),
        ({"bbox": [0, 0, -1, 2]}, "bbox"),
    ],
)
def test_coco_annotation_rejects_bad_input(kwargs, match):
    args = {
        "ann_id": 1,
        "image_id": 1,
        "keypoints": np.zeros((17, 2)),
        "visibility": np.full(17, 2),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        coco_annotation(**args)


# ---------------------------------------------------------------------- COCO: files


def test_write_read_round_trip_equals_input(tmp_path):
    coco = _small_coco()
    path = write_coco(coco, tmp_path / "sub" / "person_keypoints_x.json")
    assert read_coco(path) == coco
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


@settings(max_examples=25, deadline=None)
@given(
    xy=st.lists(
        st.tuples(st.floats(0, 2000, allow_nan=False), st.floats(0, 2000, allow_nan=False)),
        min_size=17,
        max_size=17,
    ),
    vis=st.lists(st.sampled_from([0, 1, 2]), min_size=17, max_size=17),
)
def test_arrays_round_trip_at_the_rounding_floor(xy, vis):
    kp = np.array(xy)
    v = np.array(vis)
    coco = make_coco([coco_image(1, "a.jpg", 2000, 2000)], [coco_annotation(1, 1, kp, v)])
    back = coco_to_arrays(json.loads(json.dumps(coco)))
    labelled = v > 0
    assert np.array_equal(back["visibility"][0], v)
    assert np.abs(back["keypoints"][0][labelled] - kp[labelled]).max(initial=0) <= 0.005 + 1e-3
    assert (back["keypoints"][0][~labelled] == 0).all()


def test_fixture_to_arrays_matches_hand_values():
    coco = read_coco(COCO_JSON)
    assert [i["id"] for i in coco["images"]] == [139, 285, 632]
    assert coco["categories"][0]["keypoints"] == list(COCO17.joint_names)
    assert coco["categories"][0]["skeleton"][0] == [16, 14]  # 1-based, as COCO's own file
    a = coco_to_arrays(coco)
    assert a["ann_id"].tolist() == [101, 102, 201, 301, 302]
    assert a["image_id"].tolist() == [139, 139, 285, 632, 632]
    assert a["iscrowd"].tolist() == [0, 0, 0, 0, 1]
    assert a["keypoints"].shape == (5, 17, 2) and a["keypoints"].dtype == np.float32
    # ann 201: a 56 px person, ears and left ankle unlabelled, right elbow/wrist occluded
    i = 2
    expected_v = [2, 2, 2, 0, 0, 2, 2, 2, 1, 2, 1, 2, 2, 2, 2, 0, 2]
    assert a["visibility"][i].tolist() == expected_v
    assert a["labelled"][i].tolist() == [float(v > 0) for v in expected_v]
    assert a["visible"][i].tolist() == [float(v == 2) for v in expected_v]
    np.testing.assert_allclose(a["keypoints"][i, COCO17.index("nose")], [24.0, 8.48], atol=1e-5)
    np.testing.assert_allclose(
        a["keypoints"][i, COCO17.index("right_wrist")], [13.92, 34.8], atol=1e-5
    )
    np.testing.assert_allclose(a["keypoints"][i, COCO17.index("left_ankle")], [0.0, 0.0])
    np.testing.assert_allclose(a["bbox"][i], [13.92, 7.36, 20.16, 50.96], atol=1e-5)
    assert a["area"][i] == pytest.approx(1027.35)
    assert coco["annotations"][i]["num_keypoints"] == 14
    # ann 101: explicit polygon segmentation, its box and its (shoelace) area
    np.testing.assert_allclose(a["bbox"][0], [9, 6, 18, 38])
    assert a["area"][0] == 630
    # ann 302: a crowd region in uncompressed RLE, no keypoints
    assert a["labelled"][4].sum() == 0
    np.testing.assert_allclose(a["bbox"][4], [50, 12, 12, 28])
    from pycocotools import mask as mask_utils

    rle = coco["annotations"][4]["segmentation"]
    assert rle["size"] == [48, 64]
    compressed = mask_utils.frPyObjects(rle, *rle["size"])
    assert mask_utils.area(compressed) == a["area"][4] == 336
    assert mask_utils.toBbox(compressed).tolist() == a["bbox"][4].tolist()


def test_to_arrays_filters_one_image_and_empty_images():
    coco = read_coco(COCO_JSON)
    one = coco_to_arrays(coco, image_id=139)
    assert one["ann_id"].tolist() == [101, 102]
    none = coco_to_arrays(coco, image_id=12345)
    assert none["keypoints"].shape == (0, 17, 2) and none["bbox"].shape == (0, 4)


def test_results_load_in_pycocotools_and_gt_as_results_scores_ap_one():
    coco = read_coco(COCO_JSON)
    a = coco_to_arrays(coco)
    keep = (a["iscrowd"] == 0) & (a["labelled"].sum(1) > 0)
    results = keypoint_results(
        a["image_id"][keep], a["keypoints"][keep], a["labelled"][keep], np.ones(keep.sum())
    )
    assert set(results[0]) == {"image_id", "category_id", "keypoints", "score"}
    assert len(results[0]["keypoints"]) == 51
    with _quiet():
        gt = COCO()
        gt.dataset = copy.deepcopy(coco)
        gt.createIndex()
        dt = gt.loadRes(json.loads(json.dumps(results)))
        ev = COCOeval(gt, dt, iouType="keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)  # AP
    assert ev.stats[5] == pytest.approx(1.0)  # AR


def test_keypoint_results_checks_shapes():
    with pytest.raises(ValueError, match="keypoint_scores"):
        keypoint_results([1], np.zeros((1, 17, 2)), np.zeros((1, 16)), [1.0])
    with pytest.raises(TypeError, match="image_ids"):
        keypoint_results([1.5], np.zeros((1, 17, 2)), np.zeros((1, 17)), [1.0])


def test_find_coco_images_resolves_and_names_the_first_missing(tmp_path):
    paths = find_coco_images(COCO_ROOT, COCO_JSON)
    assert [p.name for p in paths] == ["000000000139.png", "000000000285.png", "000000000632.png"]
    assert all(p.parent == COCO_ROOT / "images" for p in paths)
    coco = read_coco(COCO_JSON)
    coco["images"][1]["file_name"] = "nope.jpg"
    with pytest.raises(
        MissingFileError, match=r"1 of 3 images not found; first missing: 'nope.jpg'"
    ):
        find_coco_images(COCO_ROOT, coco)


def test_fixture_images_have_the_sizes_in_the_json():
    cv2 = pytest.importorskip("cv2")
    coco = read_coco(COCO_JSON)
    for img, path in zip(coco["images"], find_coco_images(COCO_ROOT, coco)):
        arr = cv2.imread(str(path))
        assert arr.shape == (img["height"], img["width"], 3)


# ---------------------------------------------------------------------- COCO: errors


def test_read_coco_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(MissingFileError, match="nope.json") as e:
        read_coco(missing)
    assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, ValueError)


def _write_raw(tmp_path, coco) -> Path:
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(coco))
    return p


def test_read_coco_wrong_keypoint_length_names_annotation_and_field(tmp_path):
    coco = _small_coco()
    coco["annotations"][1]["keypoints"] = coco["annotations"][1]["keypoints"][:-3]
    with pytest.raises(
        ValueError, match=r"bad.json: annotations\[1\] \(id 2\): field 'keypoints'.*51.*48"
    ):
        read_coco(_write_raw(tmp_path, coco))


def test_read_coco_unknown_image_id(tmp_path):
    coco = _small_coco()
    coco["annotations"][0]["image_id"] = 77
    with pytest.raises(ValueError, match=r"annotations\[0\] \(id 1\): field 'image_id' = 77"):
        read_coco(_write_raw(tmp_path, coco))


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda c: c.pop("categories"), "missing top-level key"),
        (lambda c: c["annotations"][0]["keypoints"].__setitem__(2, 3), "v\\) must be 0, 1 or 2"),
        (
            lambda c: c["annotations"][0].__setitem__("num_keypoints", 3),
            "num_keypoints.*\\(16\\), got 3",
        ),
        (lambda c: c["annotations"][1].__setitem__("id", 1), "duplicate annotation id"),
        (lambda c: c["annotations"][0].pop("bbox"), "missing field.*bbox"),
        (lambda c: c["annotations"][0].__setitem__("segmentation", {"counts": []}), "RLE"),
        (lambda c: c["images"][0].__setitem__("width", 0), "'width'"),
        (lambda c: c["annotations"][0].__setitem__("category_id", 2), "'category_id' = 2"),
    ],
)
def test_read_coco_rejects_malformed_fields(tmp_path, edit, match):
    coco = _small_coco()
    edit(coco)
    with pytest.raises(ValueError, match=match):
        read_coco(_write_raw(tmp_path, coco))


def test_read_coco_rejects_invalid_json(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        read_coco(p)


def test_write_coco_validates_before_writing(tmp_path):
    coco = _small_coco()
    coco["annotations"][0]["image_id"] = 99
    with pytest.raises(ValueError, match="image_id"):
        write_coco(coco, tmp_path / "x.json")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("target", ["dump", "replace"])
def test_failed_write_leaves_existing_file_intact(tmp_path, monkeypatch, target):
    path = write_coco(_small_coco(), tmp_path / "keep.json")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    if target == "dump":
        monkeypatch.setattr(formats.json, "dump", boom)
    else:
        monkeypatch.setattr(formats.os, "replace", boom)
    other = _small_coco()
    other["info"]["description"] = "new"
    with pytest.raises(OSError, match="disk full"):
        write_coco(other, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.json"]


# ---------------------------------------------------------------------- Human3.6M .npz


def test_h36m_fixture_reads_millimetres_and_j18_joints():
    d = read_h36m_npz(H36M_NPZ)
    raw = np.load(H36M_NPZ, allow_pickle=False)
    assert d["joints3d"].shape == (4, 18, 3) and d["joints3d"].dtype == np.float32
    assert d["keypoints"].shape == (4, 18, 2) and d["visible"].shape == (4, 18)
    assert d["joints3d_valid"].tolist() == [[1.0] * 18] * 4
    # Frame 0 is unrotated: joints are the hand-written millimetres of make_fixtures.py.
    j = d["joints3d"][0]
    np.testing.assert_allclose(j[J18.index("left_shoulder")], [170, -450, 10], atol=1e-3)
    np.testing.assert_allclose(j[J18.index("head_top")], [0, -720, 0], atol=1e-3)
    np.testing.assert_allclose(j[J18.index("thorax")], [0, -480, 0], atol=1e-3)
    np.testing.assert_allclose(j[J18.index("neck_nose")], [0, -570, -70], atol=1e-3)
    np.testing.assert_allclose(j[J18.index("pelvis")], [0, 0, 0], atol=1e-3)
    # metres x 1000, and the J24 slots SPIN uses (right wrist = 6, thorax = "Neck (LSP)" 12)
    np.testing.assert_allclose(
        d["joints3d"][:, J18.index("right_wrist")], raw["S"][:, 6, :3] * 1000, rtol=1e-6
    )
    np.testing.assert_allclose(
        d["keypoints"][:, J18.index("thorax")], raw["part"][:, 12, :2], rtol=1e-6
    )
    assert SPIN24_NAMES[12] == "neck_lsp" and MM_PER_M == 1000.0
    ls, rs, mid = (J18.index(n) for n in ("left_shoulder", "right_shoulder", "shoulder_mid"))
    np.testing.assert_allclose(
        d["joints3d"][:, mid], (d["joints3d"][:, ls] + d["joints3d"][:, rs]) / 2, atol=1e-4
    )
    np.testing.assert_allclose(
        d["keypoints"][:, mid], (d["keypoints"][:, ls] + d["keypoints"][:, rs]) / 2, atol=1e-4
    )
    # left shoulder is on the image right of the right shoulder for a person facing us
    assert (d["keypoints"][:, ls, 0] > d["keypoints"][:, rs, 0]).all()
    assert d["imgname"][0] == "images/S1_Directions_1.54138969_000001.jpg"
    assert d["scale"].shape == (4,) and d["center"].shape == (4, 2)
    assert d["pose"].shape == (4, 72) and d["betas"].shape == (4, 10)
    np.testing.assert_array_equal(d["global_orient"], d["pose"][:, :3])


def test_h36m_coco17_view_marks_face_points_absent():
    d = read_h36m_npz(H36M_NPZ, skeleton="coco17")
    assert d["joints3d"].shape == (4, 17, 3)
    face = [COCO17.index(n) for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")]
    assert (d["joints3d_valid"][:, face] == 0).all() and (d["visible"][:, face] == 0).all()
    assert (d["joints3d"][:, face] == 0).all()
    assert (d["joints3d_valid"][:, 5:] == 1).all()
    j18 = read_h36m_npz(H36M_NPZ)
    np.testing.assert_array_equal(
        d["joints3d"][:, COCO17.index("left_knee")], j18["joints3d"][:, J18.index("left_knee")]
    )
    with pytest.raises(ValueError, match="skeleton"):
        read_h36m_npz(H36M_NPZ, skeleton="smpl24")


def test_h36m_write_read_round_trip_through_to_spin24(tmp_path):
    ref = read_h36m_npz(H36M_NPZ)
    spin = to_spin24(ref["keypoints"], ref["visible"], ref["joints3d"], ref["joints3d_valid"])
    out = write_h36m_npz(
        tmp_path / "mine.npz",
        imgname=ref["imgname"],
        center=ref["center"],
        scale=ref["scale"],
        **spin,
    )
    back = read_h36m_npz(out)
    for key in ("joints3d", "keypoints", "visible", "joints3d_valid", "center", "scale"):
        np.testing.assert_allclose(back[key], ref[key], atol=1e-3, err_msg=key)
    assert back["imgname"].tolist() == ref["imgname"].tolist()
    assert "pose" not in back


def test_h36m_without_part_has_no_2d_keys(tmp_path):
    raw = dict(np.load(H36M_NPZ, allow_pickle=False))
    p = write_h36m_npz(
        tmp_path / "valid.npz",
        imgname=raw["imgname"],
        center=raw["center"],
        scale=raw["scale"],
        S=raw["S"],
    )
    d = read_h36m_npz(p)
    assert "keypoints" not in d and d["joints3d"].shape == (4, 18, 3)


def test_h36m_missing_file_and_missing_key(tmp_path):
    with pytest.raises(MissingFileError, match="absent.npz"):
        read_h36m_npz(tmp_path / "absent.npz")
    raw = dict(np.load(H36M_NPZ, allow_pickle=False))
    raw.pop("S")
    np.savez(tmp_path / "noS.npz", **raw)
    with pytest.raises(ValueError, match=r"missing key\(s\) \['S'\]"):
        read_h36m_npz(tmp_path / "noS.npz")


def test_h36m_wrong_shape_is_named(tmp_path):
    raw = dict(np.load(H36M_NPZ, allow_pickle=False))
    raw["S"] = raw["S"][:, :17]
    np.savez(tmp_path / "j17.npz", **raw)
    with pytest.raises(ValueError, match="key 'S'.*24, 4"):
        read_h36m_npz(tmp_path / "j17.npz")


def test_h36m_pickled_npz_is_refused(tmp_path):
    # VideoPose3D's data_3d_h36m.npz: a dict saved into an .npz (an object array).
    p = tmp_path / "data_3d_h36m.npz"
    np.savez_compressed(p, positions_3d={"S1": {"Walking": np.zeros((2, 32, 3))}})
    with pytest.raises(ValueError, match="refusing key 'positions_3d'.*pickled.*imgname"):
        read_h36m_npz(p)
    q = tmp_path / "plain.pkl.npz"
    q.write_bytes(b"\x80\x04" + b"rest of a pickle")
    with pytest.raises(ValueError, match="refusing a pickled file"):
        read_h36m_npz(q)
    r = tmp_path / "text.npz"
    r.write_text("hello")
    with pytest.raises(ValueError, match="not an .npz archive"):
        read_h36m_npz(r)


def test_write_h36m_npz_checks_shapes(tmp_path):
    with pytest.raises(ValueError, match="S"):
        write_h36m_npz(
            tmp_path / "x.npz", imgname=["a"], center=[[0, 0]], scale=[1.0], S=np.zeros((1, 17, 4))
        )
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------- fixtures


def test_make_fixtures_regenerates_the_committed_files_bit_identically(tmp_path):
    sys.path.insert(0, str(FIXTURES))
    try:
        import make_fixtures
    finally:
        sys.path.remove(str(FIXTURES))
    make_fixtures.main(tmp_path)
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert [str(p) for p in made] == sorted(
        os.path.join(*parts)
        for parts in (
            ("coco_tiny", "annotations", "person_keypoints_tiny.json"),
            ("coco_tiny", "images", "000000000139.png"),
            ("coco_tiny", "images", "000000000285.png"),
            ("coco_tiny", "images", "000000000632.png"),
            ("h36m_tiny.npz",),
        )
    )
    for rel in made:
        assert (tmp_path / rel).read_bytes() == (FIXTURES / rel).read_bytes(), str(rel)
