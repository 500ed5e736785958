"""Datasets: deterministic, cached atomically, items with the documented shapes."""

import json

import numpy as np
import pytest
import torch

from labcore.data import datasets as D
from labcore.data.formats import read_coco, write_coco
from labcore.data.io import read_npz, write_npz
from labcore.metrics import coco_keypoint_ap


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LABCORE_CACHE", str(tmp_path))
    return tmp_path


def test_person_crops_items_and_cache(cache):
    ds = D.PersonCrops(3, size=32, skeleton="j18", progress=False)
    files = list(cache.glob("person_crops-*.npz"))
    assert len(files) == 1
    item = ds[1]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert 0 <= item["image"].min() and item["image"].max() <= 1
    assert item["keypoints"].shape == (18, 2) and item["joints3d"].shape == (18, 3)
    assert set(item["visible"].unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(item["visible"], (item["visibility"] > 0).float())
    assert item["bone_order"].shape == (17,)
    # Joints are in millimetres, a few metres in front of the camera.
    assert 1000 < float(item["joints3d"][:, 2].mean()) < 20000
    # The second construction reads the cache and gets the same arrays.
    again = D.PersonCrops(3, size=32, skeleton="j18", progress=False)
    for key in ds.arrays:
        np.testing.assert_array_equal(ds.arrays[key], again.arrays[key])
    with pytest.raises(IndexError):
        ds[3]


def test_different_arguments_do_not_share_a_cache_entry(cache):
    D.PersonCrops(2, size=32, seed=0, progress=False)
    D.PersonCrops(2, size=32, seed=1, progress=False)
    assert len(list(cache.glob("person_crops-*.npz"))) == 2


def test_damaged_cache_is_regenerated(cache):
    ds = D.PersonCrops(2, size=32, progress=False)
    path = next(cache.glob("person_crops-*.npz"))
    path.write_bytes(b"not an npz")
    with pytest.warns(UserWarning, match="regenerating"):
        again = D.PersonCrops(2, size=32, progress=False)
    np.testing.assert_array_equal(ds.arrays["image"], again.arrays["image"])


def test_failed_cache_write_leaves_the_old_file(cache, monkeypatch):
    path = cache / "x.npz"
    write_npz(path, {"a": np.arange(3)})

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", boom)
    with pytest.raises(OSError, match="disk full"):
        write_npz(path, {"a": np.arange(5)})
    np.testing.assert_array_equal(read_npz(path)["a"], np.arange(3))
    assert [p.name for p in cache.iterdir()] == ["x.npz"]


def test_npz_files_are_byte_reproducible_and_pickle_free(tmp_path):
    arrays = {"x": np.arange(6.0).reshape(2, 3), "names": np.array(["a", "bc"])}
    a, b = write_npz(tmp_path / "a.npz", arrays), write_npz(tmp_path / "b.npz", arrays)
    assert a.read_bytes() == b.read_bytes()
    with pytest.raises(TypeError, match="pickle"):
        write_npz(tmp_path / "c.npz", {"o": np.array([{}], dtype=object)})


@pytest.mark.parametrize(
    "kwargs, error",
    [({"n": 0}, ValueError), ({"size": 4}, ValueError), ({"skeleton": "smpl24"}, ValueError),
     ({"background": "sky"}, ValueError), ({"n": 2.5}, TypeError)],
)
def test_person_crops_rejects_bad_arguments(cache, kwargs, error):
    args = {"n": 2, "size": 32, "progress": False, **kwargs}
    with pytest.raises(error):
        D.PersonCrops(**args)


def test_crowd_scenes_coco_annotations(cache, tmp_path):
    ds = D.CrowdScenes(2, size=(96, 72), people=(2, 3), progress=False)
    item = ds[0]
    assert item["keypoints"].shape == (3, 17, 2)
    n = int(item["num_people"])
    assert 2 <= n <= 3 and (item["visibility"][n:] == 0).all()
    coco = ds.coco()
    path = write_coco(coco, tmp_path / "crowd.json")
    back = read_coco(path)
    assert back == json.loads(path.read_text())
    results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
               for a in back["annotations"]]
    assert coco_keypoint_ap(back, results)["AP"] == pytest.approx(1.0)
    # Each annotation's area is its person's visible pixel count.
    ann = back["annotations"][0]
    img = ann["image_id"] - 1
    counts = [(ds.arrays["person"][img] == p).sum() for p in range(ds.arrays["num_people"][img])]
    assert ann["area"] in counts
    # min_area: people seen through fewer pixels keep their box and area but lose their
    # keypoints (num_keypoints 0: COCOeval ignores them); the others are unchanged.
    cut = sorted(a["area"] for a in coco["annotations"])[1]
    thin = ds.coco(min_area=cut)
    assert len(thin["annotations"]) == len(coco["annotations"])
    for a, b in zip(coco["annotations"], thin["annotations"]):
        assert b["area"] == a["area"]
        if a["area"] < cut:
            assert b["num_keypoints"] == 0 and not any(b["keypoints"])
        else:
            assert b == a
    with pytest.raises(ValueError, match="min_area"):
        ds.coco(min_area=-1)


def test_motion_clips_items(cache):
    ds = D.MotionClips(1, frames=3, size=48, progress=False)
    item = ds[0]
    assert item["images"].shape == (3, 3, 48, 48)
    assert item["flow"].shape == (2, 2, 48, 48) and item["flow_valid"].shape == (2, 48, 48)
    assert item["joints3d"].shape == (3, 24, 3) and item["K"].shape == (3, 3)
    assert torch.all(item["times"][1:] > item["times"][:-1])


def test_tensor_fields_and_rows_index_the_first_axis():
    from dataclasses import dataclass

    from labcore.data.datasets import TensorFields, TensorRows

    @dataclass
    class Pair(TensorFields):
        a: torch.Tensor
        b: torch.Tensor

    p = Pair(torch.arange(6).reshape(3, 2), torch.arange(3) * 10)
    assert len(p) == 3 and torch.equal(p[1]["a"], torch.tensor([2, 3])) and int(p[2]["b"]) == 20
    rows = TensorRows({"x": torch.arange(4), "y": torch.ones(4, 2)})
    assert len(rows) == 4 and int(rows[3]["x"]) == 3 and rows[0]["y"].shape == (2,)
    with pytest.raises(ValueError, match="common first axis"):
        TensorRows({"x": torch.arange(4), "y": torch.ones(3)})
