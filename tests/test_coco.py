"""The real-data path (labcore.data.coco): COCO folder → top-down crops → image pixels → AP."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from labcore.checks import MissingFileError
from labcore.data.coco import (
    CocoCrops,
    box_to_center_size,
    crop_image,
    evaluate_coco,
    results_in_image,
    write_coco_folder,
)
from labcore.data.formats import coco_annotation, coco_image, make_coco, read_coco, write_coco
from labcore.data.io import write_png
from labcore.geometry import apply_affine, box_to_affine
from labcore.skeletons import COCO17

pytestmark = pytest.mark.usefixtures("one_thread")

COCO_ROOT = Path(__file__).parent / "fixtures" / "coco_tiny"
SIZE = (48, 64)  # (W, H): the aspect 3:4 of HRNet's 192×256


@pytest.fixture(scope="module")
def crops() -> CocoCrops:
    return CocoCrops(COCO_ROOT, input_size=SIZE, progress=False)


def _source(coco: dict, ann_id: int) -> tuple[np.ndarray, np.ndarray]:
    ann = next(a for a in coco["annotations"] if a["id"] == ann_id)
    kp = np.array(ann["keypoints"], np.float64).reshape(-1, 3)
    return kp[:, :2], kp[:, 2].astype(int)


# ------------------------------------------------------------------------ the fixture


def test_fixture_crops_are_the_four_non_crowd_persons(crops):
    assert len(crops) == 4
    assert crops.annotation_ids.tolist() == [101, 102, 201, 301]
    assert crops.image_ids.tolist() == [139, 139, 285, 632]
    assert crops.skipped == {"crowd": 1, "few_keypoints": 0, "empty_box": 0}
    assert crops.images.shape == (4, 3, 64, 48) and crops.images.dtype == torch.float32
    assert 0 <= float(crops.images.min()) and float(crops.images.max()) <= 1
    assert float(crops.images.std()) > 0.05  # real pixels, not an empty border
    assert crops.keypoints.shape == (4, 17, 2) and crops.keypoints.dtype == torch.float32
    assert crops.visibility.shape == (4, 17) and crops.visibility.dtype == torch.int64
    assert crops.affines.shape == (4, 2, 3) and crops.boxes.shape == (4, 4)
    assert crops.areas.shape == (4,)
    torch.testing.assert_close(crops.visible, (crops.visibility > 0).float())
    item = crops[2]
    assert set(item) == {"image", "keypoints", "visible"}
    assert item["image"].shape == (3, 64, 48)

    # Ann 201: ears and left ankle unlabelled (0), right elbow and wrist occluded (1).
    vis = crops.visibility[2]
    for j, name in enumerate(COCO17.joint_names):
        want = 0 if name in ("left_ear", "right_ear", "left_ankle") else (
            1 if name in ("right_elbow", "right_wrist") else 2)
        assert int(vis[j]) == want, name
    # Labelled joints are the source keypoints mapped by the affine; unlabelled ones are 0.
    for i, aid in enumerate(crops.annotation_ids.tolist()):
        xy, v = _source(crops.coco, aid)
        mapped = apply_affine(torch.from_numpy(xy), crops.affines[i]).float()
        torch.testing.assert_close(crops.keypoints[i][v > 0], mapped[v > 0], atol=1e-4, rtol=0)
        assert (crops.keypoints[i][v == 0] == 0).all()
        assert ((crops.keypoints[i][v > 0] >= -0.5) & (crops.keypoints[i][v > 0] <= 63.5)).all()


def test_min_keypoints_max_people_subset_and_split(crops):
    few = CocoCrops(COCO_ROOT, input_size=SIZE, min_keypoints=15, progress=False)
    assert few.annotation_ids.tolist() == [101, 102, 301]  # ann 201 has 14 keypoints
    assert few.skipped["few_keypoints"] == 1
    # max_people takes whole images (the first always).
    assert CocoCrops(COCO_ROOT, input_size=SIZE, max_people=3).annotation_ids.tolist() == [101, 102, 201]
    assert CocoCrops(COCO_ROOT, input_size=SIZE, max_people=1).annotation_ids.tolist() == [101, 102]
    sub = crops.subset([0, 3])
    assert sub.annotation_ids.tolist() == [101, 301] and sub.images.shape[0] == 2
    torch.testing.assert_close(sub.images[1], crops.images[3])
    # split keeps each image's persons together: a cut inside image 139 moves after it.
    a, b = crops.split(1)
    assert a.annotation_ids.tolist() == [101, 102] and b.annotation_ids.tolist() == [201, 301]


# --------------------------------------------------------- crop → image → AP, the oracle


def test_oracle_crop_keypoints_give_ap_one_and_a_shift_lowers_it(crops):
    ones = torch.ones(len(crops), 17)
    results = results_in_image(crops, crops.keypoints, ones)
    assert [r["image_id"] for r in results] == [139, 139, 285, 632]
    for r, aid in zip(results, crops.annotation_ids.tolist()):
        xy, v = _source(crops.coco, aid)
        back = np.array(r["keypoints"]).reshape(17, 3)[:, :2]
        np.testing.assert_allclose(back[v > 0], xy[v > 0], atol=0.011)
        assert r["score"] == 1.0
    stats = evaluate_coco(crops, crops.keypoints, ones)
    assert stats["AP"] == pytest.approx(1.0) and stats["AR"] == pytest.approx(1.0)
    shifted = evaluate_coco(crops, crops.keypoints + torch.tensor([4.0, -3.0]), ones)
    assert shifted["AP"] < 0.5
    # The person score is the mean joint score: ranking follows it.
    half = ones.clone()
    half[1] = 0.5
    assert [r["score"] for r in results_in_image(crops, crops.keypoints, half)][1] == 0.5
    # Every person of the crops' images counts: scoring only ann 101 leaves ann 102 (same
    # image) unmatched.
    one = crops.subset([0])
    assert len(one.ground_truth()["annotations"]) == 2
    assert evaluate_coco(one, one.keypoints, torch.ones(1, 17))["AR"] == pytest.approx(0.5)


# -------------------------------------------------------------------- pixel conventions


def test_single_bright_pixel_lands_where_apply_affine_says(tmp_path):
    image = np.zeros((30, 40, 3), np.uint8)
    u, v = 17, 11
    image[v, u] = 255
    # Scale 1, integer shift: the pixel moves whole.
    # Box centre (20, 13), 9×7 px → crop 9×7: u' = 17 - 20 + 4 = 1, v' = 11 - 13 + 3 = 1.
    A1 = box_to_affine(torch.tensor([20.0, 13.0]), torch.tensor([9.0, 7.0]), (9, 7))
    p1 = apply_affine(torch.tensor([[u, v]], dtype=torch.float32), A1)[0]
    out = crop_image(image, A1, (9, 7))
    assert p1.tolist() == [1.0, 1.0]
    assert out[1, 1].tolist() == [255, 255, 255] and out.sum() == 3 * 255

    # Scale 2 through CocoCrops: box (8, 6) px → crop (16, 12); the box centre (15.25, 9.75)
    # puts the pixel centre (17, 11) at u' = 2·1.75 + 7.5 = 11, v' = 2·1.25 + 5.5 = 8.
    # (HRNet's centre-at-W/2 convention would put it at (11.5, 8.5).)
    write_png(tmp_path / "images" / "dot.png", image)
    kp = np.zeros((17, 2))
    kp[0] = (u, v)
    kp[1] = (2, 2)  # labelled, but outside the crop region [11.25, 19.25] × [6.75, 12.75]
    vis = np.zeros(17, int)
    vis[:2] = (2, 1)
    ann = coco_annotation(1, 7, kp, vis, bbox=[11.25, 6.75, 8.0, 6.0], area=48.0)
    write_coco(make_coco([coco_image(7, "dot.png", 40, 30)], [ann]),
               tmp_path / "annotations" / "person_keypoints_dot.json")
    dot = CocoCrops(tmp_path, input_size=(16, 12), padding=1.0)
    assert dot.keypoints[0, 0].tolist() == [11.0, 8.0]
    # Outside the crop: not labelled there (v = 0), but its position is kept, so that
    # mapping the crop keypoints back reproduces it: (2·(2 - 15.25) + 7.5, 2·(2 - 9.75) + 5.5).
    assert dot.visibility[0, :3].tolist() == [2, 0, 0]
    assert dot.keypoints[0, 1].tolist() == [-19.0, -10.0]
    back = results_in_image(dot, dot.keypoints, torch.ones(1, 17))[0]["keypoints"]
    assert back[:6] == [17, 11, 1, 2, 2, 1]
    img = dot.images[0, 0]
    assert divmod(int(img.argmax()), 16) == (8, 11) and float(img[8, 11]) == 1.0
    # Bilinear: output pixels half a source pixel away get half the intensity.
    for y, x in ((8, 10), (8, 12), (7, 11), (9, 11)):
        assert float(img[y, x]) == pytest.approx(0.5, abs=1.5 / 255)
    assert dot.areas[0] == pytest.approx(48.0 * 4)  # crop pixels are (1/2)² source pixels


def test_crop_region_is_box_grown_to_input_aspect_then_padded(crops):
    c, s = box_to_center_size(torch.tensor([[10.0, 20.0, 30.0, 40.0],   # aspect 3:4 already
                                            [0.0, 0.0, 60.0, 20.0],     # wide: h grows
                                            [0.0, 0.0, 10.0, 40.0]]),   # tall: w grows
                              SIZE)
    torch.testing.assert_close(c, torch.tensor([[25.0, 40.0], [30.0, 10.0], [5.0, 20.0]],
                                               dtype=torch.float64))
    torch.testing.assert_close(s, torch.tensor([[37.5, 50.0], [75.0, 100.0], [37.5, 50.0]],
                                               dtype=torch.float64))
    _, s1 = box_to_center_size([10.0, 20.0, 30.0, 40.0], SIZE, padding=1.0)
    assert s1.tolist() == [30.0, 40.0]
    # The region's edges land on the crop's pixel edges.
    A = box_to_affine(c[0], s[0], SIZE)
    corners = torch.tensor([[25 - 18.75, 40 - 25.0], [25 + 18.75, 40 + 25.0]], dtype=torch.float64)
    torch.testing.assert_close(apply_affine(corners, A),
                               torch.tensor([[-0.5, -0.5], [47.5, 63.5]], dtype=torch.float64))

    # On the fixture: ann 101's box [9, 6, 18, 38] → (28.5, 38)·1.25 = (35.625, 47.5),
    # centre (18, 25); its area (the polygon's) scales by (48/35.625)·(64/47.5).
    A101 = box_to_affine(torch.tensor([18.0, 25.0], dtype=torch.float64),
                         torch.tensor([35.625, 47.5], dtype=torch.float64), SIZE)
    torch.testing.assert_close(crops.affines[0], A101)
    area = next(a["area"] for a in crops.coco["annotations"] if a["id"] == 101)
    assert float(crops.areas[0]) == pytest.approx(area * (48 / 35.625) * (64 / 47.5), rel=1e-6)


# ----------------------------------------------------------------- a synthetic COCO folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    # Module-scoped fixtures run before the function-scoped ``one_thread``: set it here too.
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("coco_synth")
    mp.setenv("LABCORE_CACHE", str(root / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        path = write_coco_folder(root / "a", 2, seed=3, size=(96, 72), people=(2, 3),
                                 split="val", progress=False)
        again = write_coco_folder(root / "b", 2, seed=3, size=(96, 72), people=(2, 3),
                                  split="val", progress=False)
    finally:
        torch.set_num_threads(threads)
        mp.undo()
    return path, again


def test_write_coco_folder_layout_and_same_seed_same_bytes(folder):
    path, again = folder
    root = path.parent.parent
    assert path == root / "annotations" / "person_keypoints_val.json"
    coco = read_coco(path)
    assert [img["file_name"] for img in coco["images"]] == ["000001.png", "000002.png"]
    for img in coco["images"]:
        rgb = cv2.imread(str(root / "images" / "val" / img["file_name"]))
        assert rgb.shape == (72, 96, 3)
    assert path.read_bytes() == again.read_bytes()
    for name in ("000001.png", "000002.png"):
        assert (root / "images" / "val" / name).read_bytes() == (
            again.parent.parent / "images" / "val" / name).read_bytes()
    assert not list(root.rglob("*.tmp"))


def test_write_coco_folder_reads_back_as_crops(folder):
    path, _ = folder
    coco = json.loads(path.read_text())
    crops = CocoCrops(path.parent.parent, input_size=SIZE, progress=False)  # finds images/val/
    people = [a for a in coco["annotations"] if not a["iscrowd"] and a["num_keypoints"] >= 1]
    assert crops.annotation_ids.tolist() == [a["id"] for a in people]
    for i, ann in enumerate(people):
        kp = np.array(ann["keypoints"], np.float64).reshape(17, 3)
        labelled = kp[:, 2] > 0
        mapped = apply_affine(torch.from_numpy(kp[:, :2]), crops.affines[i]).float()
        torch.testing.assert_close(crops.keypoints[i][labelled], mapped[labelled], atol=1e-4, rtol=0)
        inside = crops.visibility[i] > 0
        assert (crops.visibility[i][inside].numpy() == kp[inside.numpy(), 2]).all()
        x, y, w, h = ann["bbox"]
        c, s = box_to_center_size([x, y, w, h], SIZE)
        torch.testing.assert_close(crops.affines[i], box_to_affine(c, s, SIZE))
    stats = evaluate_coco(crops, crops.keypoints, torch.ones(len(crops), 17))
    assert stats["AP"] == pytest.approx(1.0)


# ------------------------------------------------------------------------------ errors


def test_errors_name_what_is_wrong(tmp_path, crops):
    with pytest.raises(MissingFileError, match="root: folder not found"):
        CocoCrops(tmp_path / "nowhere")

    two = tmp_path / "two"
    shutil.copytree(COCO_ROOT, two)
    shutil.copy(two / "annotations" / "person_keypoints_tiny.json",
                two / "annotations" / "person_keypoints_other.json")
    with pytest.raises(ValueError, match="person_keypoints_other.json.*person_keypoints_tiny.json"):
        CocoCrops(two)
    assert len(CocoCrops(two, annotations="person_keypoints_other.json", input_size=SIZE)) == 4

    write_png(two / "images" / "000000000632.png", np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match=r"000000000632.png: image is 10×10 but the annotations say 64×48"):
        CocoCrops(two, annotations="person_keypoints_tiny.json")
    (two / "images" / "000000000285.png").unlink()
    with pytest.raises(MissingFileError, match="000000000285.png"):
        CocoCrops(two, annotations="person_keypoints_tiny.json")

    instances = tmp_path / "inst" / "annotations"
    instances.mkdir(parents=True)
    (instances / "person_keypoints_x.json").write_text(json.dumps(
        {"images": [], "annotations": [{"id": 1, "image_id": 1, "bbox": [0, 0, 1, 1]}],
         "categories": [{"id": 1, "name": "person"}]}))
    with pytest.raises(ValueError, match="annotations"):
        CocoCrops(instances.parent)

    with pytest.raises(ValueError, match="no persons selected"):
        CocoCrops(COCO_ROOT, min_keypoints=18)
    with pytest.raises((TypeError, ValueError), match="input_size"):
        CocoCrops(COCO_ROOT, input_size=(48, 0))
    with pytest.raises(ValueError, match="keypoints_crop"):
        results_in_image(crops, torch.zeros(3, 17, 2), torch.ones(3, 17))
    with pytest.raises(TypeError, match="crops"):
        evaluate_coco({"images": []}, torch.zeros(4, 17, 2), torch.ones(4, 17))
    with pytest.raises(ValueError, match="split"):
        write_coco_folder(tmp_path / "w", 1, split="../up")
    with pytest.raises(ValueError, match="background"):
        write_coco_folder(tmp_path / "w", 1, background="nope")
    assert not (tmp_path / "w").exists()
