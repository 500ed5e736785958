"""Readers and writers for the real data formats a user brings.

Two formats, each written and read by this module, and tested on tiny fixtures written in
that format (``tests/fixtures/``):

**COCO keypoints JSON** — the structure of ``person_keypoints_{train,val}2017.json``::

    {"info": {...}, "licenses": [...],
     "images": [{"id", "file_name", "width", "height", ...}],
     "annotations": [{"id", "image_id", "category_id", "iscrowd", "num_keypoints",
                      "keypoints": [x1, y1, v1, x2, y2, v2, ...],      # 3·K numbers
                      "bbox": [x, y, w, h], "area", "segmentation"}],
     "categories": [{"id", "name", "supercategory",
                     "keypoints": [K names], "skeleton": [[a, b], ...]}]}   # 1-based

Keypoint visibility ``v``: 0 = not labelled (then ``x = y = 0``), 1 = labelled but not
visible (occluded), 2 = labelled and visible. ``num_keypoints`` counts ``v > 0``.
``segmentation`` is a list of polygons ``[[x1, y1, x2, y2, ...], ...]`` for single persons
and a run-length encoding ``{"counts": [...] or "…", "size": [height, width]}`` (column-major)
for ``iscrowd = 1`` regions. ``bbox`` is ``[x, y, width, height]`` in pixels; COCO's own
coordinates are continuous with the image spanning ``[0, W] × [0, H]``; labcore reads
keypoint coordinates unchanged (labcore's convention: integer values at pixel centres).

Functions: :func:`coco_image`, :func:`coco_annotation`, :func:`make_coco` build the
dicts; :func:`write_coco` validates and writes atomically; :func:`read_coco` reads and
validates; :func:`coco_to_arrays` turns annotations into numpy arrays;
:func:`keypoint_results` writes predictions in COCO's results format (what pycocotools'
``COCO.loadRes`` takes); :func:`find_coco_images` resolves image files.

**Human3.6M ``.npz``** — the preprocessed layout of SPIN/VIBE-style code (one file per
split, plain arrays, loadable with ``allow_pickle=False``)::

    imgname (N,)      str    image path relative to the dataset folder
    center  (N, 2)    float  person box centre, pixels
    scale   (N,)      float  person box size / 200 (box side = 200 · scale pixels)
    part    (N, 24, 3) float 2-D keypoints in pixels + confidence (0 = absent)   [optional]
    S       (N, 24, 4) float 3-D joints in metres + confidence, camera axes, pelvis-relative
    pose    (N, 72)   float  SMPL axis-angle: global_orient = pose[:, :3]        [optional]
    shape   (N, 10)   float  SMPL betas                                           [optional]

The 24 joints are SPIN's ground-truth superset (:data:`SPIN24_NAMES`); SPIN's H36M
preprocessing fills 17 of them from Human3.6M's 32 joints and leaves the rest at
confidence 0 (and its validation files carry no ``part``). :func:`read_h36m_npz` maps them
to labcore's ``J18`` (or ``COCO17``) and converts metres to millimetres;
:func:`to_spin24` and :func:`write_h36m_npz` go the other way.

J24 → J18 mapping (``SPIN24`` index in brackets)::

    pelvis       <- Pelvis (MPII) [14]      SPIN writes H36M's hip centre here
    right_hip    <- Right Hip [2]           right_knee <- [1]    right_ankle <- [0]
    left_hip     <- Left Hip [3]            left_knee  <- [4]    left_ankle  <- [5]
    spine        <- Spine (H36M) [16]
    thorax       <- Neck (LSP) [12]         SPIN writes H36M's thorax here (from the
                                            thorax's duplicate joint 24 of the 32); its
                                            "Thorax (MPII)" slot [15] stays empty for H36M
    neck_nose    <- Jaw (H36M) [17]         H36M's "Neck/Nose" joint (SPIN: "Jaw")
    head_top     <- Head (H36M) [18]        H36M's "Head" joint, the top of the head
    left_shoulder <- [9]  left_elbow <- [10]  left_wrist <- [11]
    right_shoulder <- [8] right_elbow <- [7]  right_wrist <- [6]
    shoulder_mid <- mean of [8] and [9]     (valid only where both shoulders are)

SPIN's evaluation code pairs the same slots (its ``J24_TO_J17`` against ``H36M_TO_J17``:
thorax ↔ 12, head ↔ 18, pelvis ↔ 14, spine ↔ 16, neck/nose ↔ 17). COCO17 takes nose,
eyes and ears from [19]–[23] (empty in H36M files: Human3.6M has no face points, so they
come back with ``visible = 0``) and limbs from the same slots as J18. Note that H36M's and
COCO's hips are different anatomical points.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from labcore.checks import MissingFileError, as_tensor, check_int, check_shape, require_file
from labcore.data.io import atomic_write, write_npz
from labcore.skeletons import COCO17, Skeleton, get_skeleton

__all__ = [
    "coco_image",
    "coco_annotation",
    "make_coco",
    "write_coco",
    "read_coco",
    "validate_coco",
    "keypoint_category",
    "coco_to_arrays",
    "keypoint_results",
    "find_coco_images",
    "SPIN24_NAMES",
    "MM_PER_M",
    "read_h36m_npz",
    "write_h36m_npz",
    "to_spin24",
]

PathLike = str | os.PathLike

#: Decimals kept for pixel coordinates, boxes and areas in written COCO files.
COORD_DECIMALS = 2

# --------------------------------------------------------------------------------------
# Small helpers: numbers, atomic writes
# --------------------------------------------------------------------------------------


def _is_int(x: Any) -> bool:
    t = type(x)
    if t is int:  # fast path: what json.load gives
        return True
    return t is not bool and isinstance(x, (numbers.Integral, np.integer))


def _is_real(x: Any) -> bool:
    """A finite real number (bool excluded)."""
    t = type(x)
    if t is float:  # fast paths: what json.load gives
        return math.isfinite(x)
    if t is int:
        return True
    return (
        t is not bool
        and isinstance(x, (numbers.Real, np.floating, np.integer))
        and math.isfinite(float(x))
    )


def _num(x: float, ndigits: int = COORD_DECIMALS) -> int | float:
    """Round to ``ndigits`` decimals; integral values become ``int`` (smaller files)."""
    r = round(float(x), ndigits)
    if r == 0.0:
        return 0
    return int(r) if r.is_integer() else r


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot write a {type(obj).__name__} to JSON")


def _array(
    value: Any, name: str, shape: Sequence[Any], dims: dict, dtype=torch.float64
) -> np.ndarray:
    """Validate with :func:`labcore.checks.as_tensor` and return a numpy array."""
    return (
        as_tensor(value, name, shape=shape, dims=dims, dtype=dtype, allow_empty=True).cpu().numpy()
    )


# --------------------------------------------------------------------------------------
# COCO keypoints: building the dicts
# --------------------------------------------------------------------------------------


def coco_image(image_id: int, file_name: str, width: int, height: int) -> dict:
    """One ``images`` entry: ``{"id", "file_name", "width", "height"}``.

    Args:
        image_id: int >= 0, unique in the dataset.
        file_name: path of the image relative to the image folder (e.g. ``"000000000139.jpg"``).
        width, height: image size in pixels.
    """
    if not isinstance(file_name, str) or not file_name:
        raise TypeError(f"file_name: expected a non-empty str, got {file_name!r}")
    return {
        "id": check_int(image_id, "image_id", low=0),
        "file_name": file_name,
        "width": check_int(width, "width", low=1),
        "height": check_int(height, "height", low=1),
    }


def coco_annotation(
    ann_id: int,
    image_id: int,
    keypoints: Any,
    visibility: Any,
    bbox: Sequence[float] | None = None,
    area: float | None = None,
    segmentation: list | dict | None = None,
    category_id: int = 1,
    iscrowd: int = 0,
) -> dict:
    """One ``annotations`` entry in COCO's keypoint format.

    Args:
        ann_id: annotation id, int >= 1 (pycocotools' matcher uses 0 for "unmatched", so a
            ground-truth id 0 would be scored as a false positive).
        image_id: id of the image (an entry made by :func:`coco_image`).
        keypoints: ``(K, 2)`` pixels, x right, y down.
        visibility: ``(K,)`` ints in {0, 1, 2} (COCO's ``v``): 0 not labelled, 1 labelled
            but not visible, 2 labelled and visible. Points with ``v = 0`` are written as
            ``(0, 0, 0)`` whatever their coordinates, as COCO does.
        bbox: ``[x, y, w, h]`` pixels. Default: the tight box of the labelled points
            (``[0, 0, 0, 0]`` when none is labelled). Real COCO boxes enclose the person's
            segmentation, so they are larger than this.
        area: default ``w · h`` of ``bbox``. Real COCO areas are segmentation (mask) areas;
            OKS divides by this area, so it sets how strict keypoint matching is.
        segmentation: polygons ``[[x1, y1, ...], ...]`` or an RLE dict; default ``[]`` (no mask).
        category_id: the person category's id.
        iscrowd: 0, or 1 for a crowd region (then keypoints are usually all unlabelled).

    Returns:
        a dict with ``id, image_id, category_id, iscrowd, num_keypoints, keypoints
        (3·K numbers: x, y, v per joint), bbox, area, segmentation``. Coordinates, box and
        area are rounded to 2 decimals (files stay small; 0.005 px is far below label noise).
    """
    dims: dict[str, int] = {}
    kp = _array(keypoints, "keypoints", ("K", 2), dims)
    vis_raw = _array(visibility, "visibility", ("K",), dims)
    if not np.isin(vis_raw, (0, 1, 2)).all():
        bad = sorted({float(v) for v in vis_raw[~np.isin(vis_raw, (0, 1, 2))]})
        raise ValueError(f"visibility: expected values in {{0, 1, 2}} (COCO's v), got {bad}")
    vis = vis_raw.astype(np.int64)
    labelled = vis > 0
    flat: list[int | float] = []
    for (x, y), v in zip(kp, vis):
        flat += [_num(x), _num(y), int(v)] if v > 0 else [0, 0, 0]
    if bbox is None:
        if labelled.any():
            xs, ys = np.array(flat[0::3], float)[labelled], np.array(flat[1::3], float)[labelled]
            x0, y0 = xs.min(), ys.min()
            box = [_num(x0), _num(y0), _num(xs.max() - x0), _num(ys.max() - y0)]
        else:
            box = [0, 0, 0, 0]
    else:
        b = _array(bbox, "bbox", (4,), {})
        if b[2] < 0 or b[3] < 0:
            raise ValueError(f"bbox: expected [x, y, w, h] with w, h >= 0, got {b.tolist()}")
        box = [_num(v) for v in b]
    if area is None:
        area_v = _num(box[2] * box[3])
    else:
        if not _is_real(area) or float(area) < 0:
            raise ValueError(f"area: expected a finite number >= 0, got {area!r}")
        area_v = _num(area)
    if segmentation is None:
        segmentation = []
    if not isinstance(segmentation, (list, dict)):
        raise TypeError(
            f"segmentation: expected a list of polygons or an RLE dict, got {type(segmentation).__name__}"
        )
    return {
        "id": check_int(ann_id, "ann_id", low=1),
        "image_id": check_int(image_id, "image_id", low=0),
        "category_id": check_int(category_id, "category_id", low=1),
        "iscrowd": int(check_int(iscrowd, "iscrowd", low=0, high=1)),
        "num_keypoints": int(labelled.sum()),
        "keypoints": flat,
        "bbox": box,
        "area": area_v,
        "segmentation": segmentation,
    }


def make_coco(
    images: Sequence[dict],
    annotations: Sequence[dict],
    skeleton: Skeleton | str = COCO17,
    description: str = "labcore keypoints dataset",
    category_id: int = 1,
) -> dict:
    """A full COCO keypoints dataset dict: ``info, licenses, images, annotations, categories``.

    ``categories`` holds one ``person`` category built from ``skeleton``
    (:meth:`labcore.skeletons.Skeleton.coco_category`: joint names, 1-based bones).
    The result is validated (as :func:`read_coco` does) before it is returned.
    """
    sk = get_skeleton(skeleton)
    coco = {
        "info": {"description": str(description), "version": "1.0", "contributor": "labcore"},
        "licenses": [],
        "images": list(images),
        "annotations": list(annotations),
        "categories": [sk.coco_category(check_int(category_id, "category_id", low=1))],
    }
    validate_coco(coco, "make_coco")
    return coco


# --------------------------------------------------------------------------------------
# COCO keypoints: validation, reading, writing
# --------------------------------------------------------------------------------------

_REQUIRED_TOP = ("images", "annotations", "categories")
_REQUIRED_IMAGE = ("id", "file_name", "width", "height")
_REQUIRED_ANN = (
    "id",
    "image_id",
    "category_id",
    "keypoints",
    "num_keypoints",
    "bbox",
    "area",
    "iscrowd",
)


def validate_coco(coco: Any, where: str) -> None:
    """Check a COCO keypoints dict; raise ``ValueError``/``TypeError`` naming the field.

    ``where`` (a file name or a function name) starts every message. Per-annotation checks
    are cheap Python; number checks are vectorised (COCO train2017, 262k annotations: ~1-2 s).
    """
    if not isinstance(coco, dict):
        raise TypeError(
            f"{where}: expected a JSON object (dict) at the top level, got {type(coco).__name__}"
        )
    missing = [k for k in _REQUIRED_TOP if k not in coco]
    if missing:
        raise ValueError(
            f"{where}: missing top-level key(s) {missing}; a COCO keypoints file has "
            f"'info', 'licenses', 'images', 'annotations', 'categories' (found {sorted(coco)})"
        )
    for key in _REQUIRED_TOP:
        if not isinstance(coco[key], list):
            raise TypeError(f"{where}: '{key}' must be a list, got {type(coco[key]).__name__}")

    # categories
    cat_k: dict[int, int] = {}
    for i, cat in enumerate(coco["categories"]):
        at = f"{where}: categories[{i}]"
        if not isinstance(cat, dict) or not _is_int(cat.get("id")):
            raise ValueError(f"{at}: expected a dict with an integer 'id', got {cat!r:.200}")
        cid = int(cat["id"])
        if cid in cat_k:
            raise ValueError(f"{at}: duplicate category id {cid}")
        names = cat.get("keypoints", [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{at} (id {cid}): field 'keypoints' must be a list of joint names")
        k = len(names)
        for pair in cat.get("skeleton", []):
            if (
                not isinstance(pair, (list, tuple))
                or len(pair) != 2
                or not all(_is_int(p) and 1 <= p <= k for p in pair)
            ):
                raise ValueError(
                    f"{at} (id {cid}): field 'skeleton' must hold 1-based joint pairs in [1, {k}], got {pair!r}"
                )
        cat_k[cid] = k

    # images
    image_ids: set[int] = set()
    for i, img in enumerate(coco["images"]):
        at = f"{where}: images[{i}]"
        if not isinstance(img, dict):
            raise TypeError(f"{at}: expected a dict, got {type(img).__name__}")
        miss = [k for k in _REQUIRED_IMAGE if k not in img]
        if miss:
            raise ValueError(f"{at}: missing field(s) {miss}")
        if not _is_int(img["id"]):
            raise ValueError(f"{at}: field 'id' must be an int, got {img['id']!r}")
        iid = int(img["id"])
        if iid in image_ids:
            raise ValueError(f"{at}: duplicate image id {iid}")
        if not isinstance(img["file_name"], str) or not img["file_name"]:
            raise ValueError(f"{at} (id {iid}): field 'file_name' must be a non-empty str")
        for f in ("width", "height"):
            if not _is_int(img[f]) or img[f] < 1:
                raise ValueError(
                    f"{at} (id {iid}): field '{f}' must be an int >= 1, got {img[f]!r}"
                )
        image_ids.add(iid)

    # annotations: structure (loop), then numbers (vectorised per category)
    anns = coco["annotations"]
    ann_ids: set[int] = set()
    by_cat: dict[int, list[int]] = {}
    required = set(_REQUIRED_ANN)
    for i, ann in enumerate(anns):
        if not isinstance(ann, dict):
            raise TypeError(f"{where}: annotations[{i}]: expected a dict, got {type(ann).__name__}")
        aid = ann.get("id")
        at = f"{where}: annotations[{i}] (id {aid})"
        miss = required - ann.keys()
        if miss:
            raise ValueError(f"{at}: missing field(s) {sorted(miss)}")
        if not _is_int(aid) or aid < 1:
            raise ValueError(
                f"{at}: field 'id' must be an int >= 1 (pycocotools treats 0 as 'unmatched'), got {aid!r}"
            )
        if aid in ann_ids:
            raise ValueError(f"{at}: duplicate annotation id {aid}")
        ann_ids.add(aid)
        if not _is_int(ann["image_id"]) or ann["image_id"] not in image_ids:
            raise ValueError(
                f"{at}: field 'image_id' = {ann['image_id']!r} is not an id in 'images'"
            )
        cid = ann["category_id"]
        if not _is_int(cid) or cid not in cat_k:
            raise ValueError(
                f"{at}: field 'category_id' = {cid!r} is not an id in 'categories' {sorted(cat_k)}"
            )
        kps = ann["keypoints"]
        if not isinstance(kps, list) or len(kps) != 3 * cat_k[cid]:
            got = f"{len(kps)} numbers" if isinstance(kps, list) else type(kps).__name__
            raise ValueError(
                f"{at}: field 'keypoints' must hold 3·K = {3 * cat_k[cid]} numbers "
                f"(x, y, v for the {cat_k[cid]} keypoints of category {cid}), got {got}"
            )
        if not _is_int(ann["num_keypoints"]):
            raise ValueError(
                f"{at}: field 'num_keypoints' must be an int, got {ann['num_keypoints']!r}"
            )
        if ann["iscrowd"] not in (0, 1) or isinstance(ann["iscrowd"], bool):
            raise ValueError(f"{at}: field 'iscrowd' must be 0 or 1, got {ann['iscrowd']!r}")
        if not _is_real(ann["area"]) or ann["area"] < 0:
            raise ValueError(
                f"{at}: field 'area' must be a finite number >= 0, got {ann['area']!r}"
            )
        bbox = ann["bbox"]
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_real(b) for b in bbox):
            raise ValueError(
                f"{at}: field 'bbox' must be [x, y, w, h] (4 finite numbers), got {bbox!r}"
            )
        if bbox[2] < 0 or bbox[3] < 0:
            raise ValueError(f"{at}: field 'bbox' must have w, h >= 0, got {bbox!r}")
        if "segmentation" in ann:
            _check_segmentation(ann["segmentation"], at)
        by_cat.setdefault(cid, []).append(i)

    for cid, idx in by_cat.items():
        k = cat_k[cid]
        if k == 0:
            continue
        try:
            arr = np.array([anns[i]["keypoints"] for i in idx], dtype=np.float64).reshape(
                len(idx), k, 3
            )
        except (TypeError, ValueError):
            for i in idx:
                if not all(_is_real(x) for x in anns[i]["keypoints"]):
                    raise ValueError(
                        f"{where}: annotations[{i}] (id {anns[i]['id']}): field 'keypoints' "
                        "must hold finite numbers only"
                    ) from None
            raise
        bad_num = ~np.isfinite(arr).all(axis=(1, 2))
        v = arr[:, :, 2]
        bad_v = ~np.isin(v, (0, 1, 2)).all(axis=1)
        nk = np.array([anns[i]["num_keypoints"] for i in idx])
        bad_nk = (v > 0).sum(axis=1) != nk
        for bad, msg in (
            (bad_num, "field 'keypoints' must hold finite numbers only"),
            (bad_v, "field 'keypoints': every third number (v) must be 0, 1 or 2"),
            (bad_nk, "field 'num_keypoints' must equal the number of keypoints with v > 0"),
        ):
            if bad.any():
                j = int(np.argmax(bad))
                i = idx[j]
                extra = f" ({int((v[j] > 0).sum())}), got {nk[j]}" if bad is bad_nk else ""
                raise ValueError(f"{where}: annotations[{i}] (id {anns[i]['id']}): {msg}{extra}")


def _check_segmentation(seg: Any, at: str) -> None:
    if isinstance(seg, list):
        for poly in seg:
            if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2:
                raise ValueError(
                    f"{at}: field 'segmentation' polygons must be lists of >= 3 (x, y) pairs, got {poly!r:.80}"
                )
    elif isinstance(seg, dict):
        size = seg.get("size")
        if "counts" not in seg or not (isinstance(size, list) and len(size) == 2):
            raise ValueError(
                f"{at}: field 'segmentation' RLE must have 'counts' and 'size' [height, width]"
            )
        if not isinstance(seg["counts"], (list, str)):
            raise ValueError(f"{at}: field 'segmentation' RLE 'counts' must be a list or a str")
    else:
        raise ValueError(
            f"{at}: field 'segmentation' must be a list of polygons or an RLE dict, got {type(seg).__name__}"
        )


def write_coco(coco: dict, path: PathLike, indent: int | None = None) -> Path:
    """Validate ``coco`` and write it to ``path`` as JSON, atomically.

    The file is written to a temporary file in the same folder and moved into place with
    ``os.replace``: a failed write leaves an existing ``path`` intact. Parent folders are
    created. ``indent=None`` writes compact JSON (as COCO's own files). Returns the path.
    """
    validate_coco(coco, f"write_coco({Path(path).name})")

    def dump(f: IO) -> None:
        json.dump(coco, f, indent=indent, allow_nan=False, default=_json_default)
        f.write("\n")

    return atomic_write(path, dump, text=True)


def read_coco(path: PathLike) -> dict:
    """Read and validate a COCO keypoints JSON file (e.g. ``person_keypoints_val2017.json``).

    Checks: the top-level keys ``images``, ``annotations``, ``categories`` (``info`` and
    ``licenses`` are optional); unique ids; every annotation's ``image_id`` and
    ``category_id`` exist; ``keypoints`` holds ``3·K`` finite numbers for its category's K
    keypoints with ``v`` in {0, 1, 2}; ``num_keypoints`` = number of ``v > 0``; ``bbox``,
    ``area``, ``iscrowd``, ``segmentation`` well formed. Errors name the file, the
    annotation (index and id) and the field.

    Raises:
        MissingFileError: ``path`` does not exist.
        ValueError / TypeError: the content is not valid COCO keypoints.
    """
    p = require_file(path, "path", hint="expected a COCO keypoints JSON file")
    try:
        with open(p, encoding="utf-8") as f:
            coco = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: not valid JSON ({e})") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{p}: not a UTF-8 text file ({e})") from None
    validate_coco(coco, str(p))
    return coco


def keypoint_category(coco: dict, category_id: int | None) -> tuple[int, int]:
    """``(category id, number of keypoints K)`` of the keypoint category to read:
    ``category_id``, or the dataset's only category with keypoints (``ValueError`` when
    there are several or none, or the id is unknown)."""
    cats = {c["id"]: len(c.get("keypoints", [])) for c in coco["categories"]}
    if category_id is None:
        with_kp = [cid for cid, k in cats.items() if k > 0]
        if len(with_kp) != 1:
            raise ValueError(
                f"category_id: the dataset has {len(with_kp)} categories with keypoints "
                f"({with_kp}); pass category_id to choose one"
            )
        category_id = with_kp[0]
    if category_id not in cats:
        raise ValueError(
            f"category_id: {category_id!r} is not an id in 'categories' {sorted(cats)}"
        )
    return int(category_id), cats[category_id]


def coco_to_arrays(
    coco: dict | PathLike, image_id: int | None = None, category_id: int | None = None
) -> dict[str, np.ndarray]:
    """The annotations of one keypoint category as numpy arrays, in file order.

    Args:
        coco: a dict from :func:`read_coco` / :func:`make_coco` (not re-validated), or a path.
        image_id: keep only this image's annotations (an image without any gives ``N = 0``).
            Each call scans every annotation: for many images call once without
            ``image_id`` and group by the returned ``image_id`` array.
        category_id: default: the only category that has keypoints.

    Returns:
        ``keypoints (N, K, 2)`` float32 pixels (``(0, 0)`` where not labelled);
        ``visibility (N, K)`` int64, COCO's ``v`` in {0, 1, 2};
        ``visible (N, K)`` float32 in {0, 1}: labcore's visibility = labelled *and*
        visible (``v == 2``);
        ``labelled (N, K)`` float32 in {0, 1}: ``v > 0`` (visible or occluded) — the weight
        most top-down trainers (mmpose, HRNet) use for targets;
        ``bbox (N, 4)`` float32 ``[x, y, w, h]``; ``area (N,)`` float32;
        ``image_id (N,)``, ``ann_id (N,)``, ``iscrowd (N,)`` int64.
        Crowd annotations and annotations without labelled keypoints are included; filter
        with ``iscrowd`` and ``labelled.sum(1)``.
    """
    if not isinstance(coco, dict):
        coco = read_coco(coco)
    if "annotations" not in coco or "categories" not in coco:
        raise ValueError(
            "coco: expected a COCO dict with 'annotations' and 'categories' (see read_coco)"
        )
    cid, k = keypoint_category(coco, category_id)
    if image_id is not None:
        image_id = check_int(image_id, "image_id")
    anns = [
        a
        for a in coco["annotations"]
        if a["category_id"] == cid and (image_id is None or a["image_id"] == image_id)
    ]
    n = len(anns)
    kp = np.array([a["keypoints"] for a in anns], dtype=np.float64).reshape(n, k, 3)
    v = kp[:, :, 2].astype(np.int64)
    xy = np.where((v > 0)[..., None], kp[:, :, :2], 0.0).astype(np.float32)
    return {
        "keypoints": xy,
        "visibility": v,
        "visible": (v == 2).astype(np.float32),
        "labelled": (v > 0).astype(np.float32),
        "bbox": np.array([a["bbox"] for a in anns], dtype=np.float32).reshape(n, 4),
        "area": np.array([a["area"] for a in anns], dtype=np.float32).reshape(n),
        "image_id": np.array([a["image_id"] for a in anns], dtype=np.int64).reshape(n),
        "ann_id": np.array([a["id"] for a in anns], dtype=np.int64).reshape(n),
        "iscrowd": np.array([a["iscrowd"] for a in anns], dtype=np.int64).reshape(n),
    }


def keypoint_results(
    image_ids: Any,
    keypoints: Any,
    keypoint_scores: Any,
    scores: Any,
    category_id: int = 1,
) -> list[dict]:
    """Predictions in COCO's keypoint *results* format (what ``COCO.loadRes`` takes).

    Args:
        image_ids: ``(N,)`` ints, the image of each detected person.
        keypoints: ``(N, K, 2)`` pixels (numpy, torch on any device, or lists).
        keypoint_scores: ``(N, K)`` per-joint confidences (written as the third number of
            each joint; COCOeval does not use them).
        scores: ``(N,)`` person scores; COCOeval ranks detections by these.
        category_id: the person category's id.

    Returns:
        a list of ``{"image_id", "category_id", "keypoints": [x, y, s] * K, "score"}``;
        coordinates rounded to 2 decimals, joint scores to 4, person scores to 6.
        ``json.dump`` it for the official evaluation scripts.
    """
    dims: dict[str, int] = {}
    ids = _array(image_ids, "image_ids", ("N",), dims, dtype=torch.int64)
    kp = _array(keypoints, "keypoints", ("N", "K", 2), dims)
    ks = _array(keypoint_scores, "keypoint_scores", ("N", "K"), dims)
    sc = _array(scores, "scores", ("N",), dims)
    cid = check_int(category_id, "category_id", low=1)
    out = []
    for i in range(ids.shape[0]):
        flat: list[int | float] = []
        for (x, y), s in zip(kp[i], ks[i]):
            flat += [_num(x), _num(y), _num(s, 4)]
        out.append(
            {
                "image_id": int(ids[i]),
                "category_id": cid,
                "keypoints": flat,
                "score": _num(sc[i], 6),
            }
        )
    return out


def find_coco_images(
    root: PathLike, coco: dict | PathLike, image_dir: PathLike | None = None
) -> list[Path]:
    """The image file of every entry of ``coco["images"]``, in that order.

    Each ``file_name`` is looked up in ``image_dir`` (if given; relative to ``root`` unless
    absolute), then ``root/images/``, then ``root/``. For COCO 2017 laid out as
    ``coco/images/train2017/…`` pass ``root="coco", image_dir="images/train2017"``.

    Raises:
        MissingFileError: some images are not found; the message gives how many and the
            first missing ``file_name`` with the folders searched.
    """
    root = Path(root).expanduser()
    if not isinstance(coco, dict):
        coco = read_coco(coco)
    folders = []
    if image_dir is not None:
        folders.append(root / Path(image_dir).expanduser())
    folders += [root / "images", root]
    found: list[Path] = []
    missing: list[str] = []
    for img in coco.get("images", []):
        name = img["file_name"]
        hit = next((d / name for d in folders if (d / name).is_file()), None)
        if hit is None:
            missing.append(name)
        else:
            found.append(hit)
    if missing:
        looked = ", ".join(str(d) for d in folders)
        raise MissingFileError(
            f"find_coco_images: {len(missing)} of {len(coco['images'])} images not found; "
            f"first missing: {missing[0]!r} (searched {looked})"
        )
    return found


# --------------------------------------------------------------------------------------
# Human3.6M .npz (SPIN layout)
# --------------------------------------------------------------------------------------

#: SPIN's 24 ground-truth joints (``constants.JOINT_NAMES[25:]``), in order.
SPIN24_NAMES: tuple[str, ...] = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
    "left_wrist", "neck_lsp", "head_top_lsp", "pelvis_mpii", "thorax_mpii", "spine_h36m",
    "jaw_h36m", "head_h36m", "nose", "left_eye", "right_eye", "left_ear", "right_ear",
)  # fmt: skip

#: The one place where metres become millimetres (S is metres; labcore works in mm).
MM_PER_M = 1000.0

# Each target joint averages these SPIN24 slots (see the module docstring for why).
_FROM_SPIN24: dict[str, tuple[tuple[int, ...], ...]] = {
    "j18": (
        (14,), (2,), (1,), (0,), (3,), (4,), (5,), (16,), (12,), (17,), (18,),
        (9,), (10,), (11,), (8,), (7,), (6,), (8, 9),
    ),
    "coco17": (
        (19,), (20,), (21,), (22,), (23,), (9,), (8,), (10,), (7,), (11,), (6,),
        (3,), (2,), (4,), (1,), (5,), (0,),
    ),
}  # fmt: skip

_H36M_KEYS = "imgname (N,) str, center (N, 2), scale (N,), S (N, 24, 4) metres [, part (N, 24, 3), pose (N, 72), shape (N, 10)]"


def _spin_skeleton(skeleton: Skeleton | str) -> tuple[Skeleton, tuple[tuple[int, ...], ...]]:
    sk = get_skeleton(skeleton)
    if sk.name not in _FROM_SPIN24:
        raise ValueError(
            f"skeleton: expected 'j18' or 'coco17' for the SPIN layout, got {sk.name!r}"
        )
    return sk, _FROM_SPIN24[sk.name]


def _from_spin24(points: np.ndarray, conf: np.ndarray, table) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 24, D)`` + ``(N, 24)`` → ``(N, K, D)`` averaged per ``table`` + ``(N, K)`` valid
    (all sources have confidence > 0); invalid joints are set to 0."""
    n, _, d = points.shape
    out = np.zeros((n, len(table), d), dtype=np.float64)
    valid = np.ones((n, len(table)), dtype=bool)
    for k, src in enumerate(table):
        out[:, k] = points[:, list(src)].mean(axis=1)
        valid[:, k] = (conf[:, list(src)] > 0).all(axis=1)
    out[~valid] = 0.0
    return out, valid


def read_h36m_npz(path: PathLike, skeleton: Skeleton | str = "j18") -> dict[str, np.ndarray]:
    """Read a Human3.6M ``.npz`` in the SPIN layout and map it to ``J18`` (or ``COCO17``).

    The file is opened with ``np.load(path, allow_pickle=False)``: files holding Python
    objects (e.g. VideoPose3D's ``data_3d_h36m.npz``, a pickled dict) are refused.

    Args:
        path: the ``.npz`` file (keys: see the module docstring).
        skeleton: ``'j18'`` (default) or ``'coco17'`` (face points are absent in H36M
            files and come back with ``visible = 0`` / ``joints3d_valid = 0``).

    Returns:
        ``joints3d (N, K, 3)`` float32 **millimetres** (``S`` × :data:`MM_PER_M`), camera
        axes (x right, y down, z forward), pelvis-relative as SPIN stores them;
        ``joints3d_valid (N, K)`` float32 in {0, 1};
        ``keypoints (N, K, 2)`` float32 pixels of the original image and ``visible (N, K)``
        float32 in {0, 1} — only when the file has ``part`` (SPIN's H36M validation files
        do not); coordinates are passed through unchanged;
        ``imgname (N,)`` str; ``center (N, 2)`` float32 pixels; ``scale (N,)`` float32 (box
        side / 200 px); and, when present, ``pose (N, 72)`` and ``shape (N, 10)`` float32,
        also split under smplx's names ``global_orient (N, 3)``, ``body_pose (N, 69)``,
        ``betas (N, 10)``. Joints whose sources have confidence 0 are zero and marked
        invalid; ``shoulder_mid`` is the mean of both shoulders.

    Raises:
        MissingFileError: no such file.
        ValueError: not an ``.npz``, pickled content, a missing key (named), a wrong shape.
    """
    p = require_file(path, "path", hint="expected a Human3.6M .npz in the SPIN layout")
    sk, table = _spin_skeleton(skeleton)
    refuse = (
        "labcore never unpickles data files (np.load(..., allow_pickle=False)): unpickling "
        "can run arbitrary code. Expected the SPIN-style layout of plain arrays: "
        f"{_H36M_KEYS}. VideoPose3D's data_3d_h36m.npz is a pickled dict; convert such a "
        "file once, in a place you trust, and save it with labcore.data.formats.write_h36m_npz."
    )
    with open(p, "rb") as f:
        magic = f.read(6)
    if magic.startswith(b"\x80"):
        raise ValueError(f"{p}: refusing a pickled file. {refuse}")
    if magic.startswith(b"\x93NUMPY"):
        raise ValueError(f"{p}: expected an .npz archive of named arrays, got a single .npy array")
    if not magic.startswith(b"PK"):
        raise ValueError(f"{p}: not an .npz archive (no zip signature); expected {_H36M_KEYS}")
    try:
        archive = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{p}: not a readable .npz archive ({e})") from None
    raw: dict[str, np.ndarray] = {}
    with archive:
        for key in archive.files:
            try:
                raw[key] = archive[key]
            except ValueError as e:
                if "allow_pickle" in str(e) or "Object arrays" in str(e):
                    raise ValueError(
                        f"{p}: refusing key {key!r}, which holds pickled Python objects "
                        f"(keys in the file: {archive.files}). {refuse}"
                    ) from None
                raise ValueError(f"{p}: cannot read key {key!r} ({e})") from None
    missing = [k for k in ("imgname", "center", "scale", "S") if k not in raw]
    if missing:
        raise ValueError(
            f"{p}: missing key(s) {missing}; found {sorted(raw)}; expected the SPIN layout: {_H36M_KEYS}"
        )
    if raw["imgname"].dtype.kind not in "US":
        raise ValueError(f"{p}: key 'imgname' must hold strings, got dtype {raw['imgname'].dtype}")
    imgname = (
        raw["imgname"].astype(str)
        if raw["imgname"].dtype.kind == "U"
        else np.char.decode(raw["imgname"], "utf-8")
    )
    scale = raw["scale"]
    if scale.ndim == 2 and scale.shape[1] == 1:
        scale = scale[:, 0]
    dims: dict[str, int] = {}
    arrays: dict[str, np.ndarray] = {}
    for key, value, shape in (
        ("imgname", imgname, ("N",)),
        ("center", raw["center"], ("N", 2)),
        ("scale", scale, ("N",)),
        ("S", raw["S"], ("N", 24, 4)),
        ("part", raw.get("part"), ("N", 24, 3)),
        ("pose", raw.get("pose"), ("N", 72)),
        ("shape", raw.get("shape"), ("N", 10)),
    ):
        if value is None:
            continue
        if not isinstance(value, np.ndarray):
            raise ValueError(f"{p}: key '{key}' is not a .npy array member")
        try:
            check_shape(value, f"{p}: key '{key}'", shape, dims)
        except ValueError as e:
            raise ValueError(f"{e} (expected the SPIN layout: {_H36M_KEYS})") from None
        if key != "imgname":
            if value.dtype.kind not in "fiu":
                raise ValueError(f"{p}: key '{key}' must hold numbers, got dtype {value.dtype}")
            value = value.astype(np.float64)
            if not np.isfinite(value).all():
                raise ValueError(f"{p}: key '{key}' holds NaN or infinite values")
        arrays[key] = value

    out: dict[str, np.ndarray] = {}
    j3d, valid3d = _from_spin24(arrays["S"][..., :3], arrays["S"][..., 3], table)
    out["joints3d"] = (j3d * MM_PER_M).astype(np.float32)
    out["joints3d_valid"] = valid3d.astype(np.float32)
    if "part" in arrays:
        kp, vis = _from_spin24(arrays["part"][..., :2], arrays["part"][..., 2], table)
        out["keypoints"] = kp.astype(np.float32)
        out["visible"] = vis.astype(np.float32)
    out["imgname"] = arrays["imgname"]
    out["center"] = arrays["center"].astype(np.float32)
    out["scale"] = arrays["scale"].astype(np.float32)
    if "pose" in arrays:
        out["pose"] = arrays["pose"].astype(np.float32)
        out["global_orient"] = out["pose"][:, :3]
        out["body_pose"] = out["pose"][:, 3:]
    if "shape" in arrays:
        out["shape"] = arrays["shape"].astype(np.float32)
        out["betas"] = out["shape"]
    return out


def to_spin24(
    keypoints: Any = None,
    visible: Any = None,
    joints3d: Any = None,
    joints3d_valid: Any = None,
    skeleton: Skeleton | str = "j18",
) -> dict[str, np.ndarray]:
    """Place ``J18``/``COCO17`` arrays into SPIN's 24 slots — the inverse of the mapping
    :func:`read_h36m_npz` applies, for writing your own data with :func:`write_h36m_npz`.

    Args:
        keypoints: ``(N, K, 2)`` pixels, with ``visible (N, K)`` in {0, 1} (default all 1).
        joints3d: ``(N, K, 3)`` **millimetres**, with ``joints3d_valid (N, K)`` (default
            all 1); stored in metres (÷ :data:`MM_PER_M`).
        skeleton: ``'j18'`` or ``'coco17'``. Derived joints (J18's ``shoulder_mid``) have no
            slot and are dropped; the reader recomputes them.

    Returns:
        ``part (N, 24, 3)`` (if ``keypoints``) and ``S (N, 24, 4)`` (if ``joints3d``),
        float64, confidence 1 where the joint is valid and 0 (with zero coordinates) elsewhere.
    """
    sk, table = _spin_skeleton(skeleton)
    k = sk.num_joints
    dims: dict[str, int] = {}
    out: dict[str, np.ndarray] = {}
    for key, pts, ok, d, scale in (
        ("part", keypoints, visible, 2, 1.0),
        ("S", joints3d, joints3d_valid, 3, 1.0 / MM_PER_M),
    ):
        if pts is None:
            continue
        name = "keypoints" if key == "part" else "joints3d"
        arr = _array(pts, name, ("N", k, d), dims)
        valid = (
            np.ones(arr.shape[:2], bool)
            if ok is None
            else _array(ok, f"{name} validity", ("N", k), dims) > 0
        )
        res = np.zeros((arr.shape[0], 24, d + 1), dtype=np.float64)
        for j, src in enumerate(table):
            if len(src) == 1:
                res[:, src[0], :d] = np.where(valid[:, j, None], arr[:, j] * scale, 0.0)
                res[:, src[0], d] = valid[:, j]
        out[key] = res
    if not out:
        raise ValueError("to_spin24: pass keypoints and/or joints3d")
    return out


def write_h36m_npz(
    path: PathLike,
    *,
    imgname: Sequence[str] | np.ndarray,
    center: Any,
    scale: Any,
    S: Any,
    part: Any = None,
    pose: Any = None,
    shape: Any = None,
    compress: bool = False,
) -> Path:
    """Write a Human3.6M ``.npz`` in the SPIN layout, atomically and reproducibly.

    Args:
        path: destination (``.npz``). Written to a temporary file in the same folder and
            moved into place: a failed write leaves an existing file intact.
        imgname: ``(N,)`` image paths relative to the dataset folder.
        center: ``(N, 2)`` box centres, pixels. scale: ``(N,)`` box side / 200.
        S: ``(N, 24, 4)`` 3-D joints in **metres** + confidence (see :func:`to_spin24`).
        part: ``(N, 24, 3)`` 2-D keypoints in pixels + confidence (optional).
        pose: ``(N, 72)`` SMPL axis-angle; shape: ``(N, 10)`` betas (optional).
        compress: deflate the members (smaller; byte-identity then depends on zlib).

    Arrays are stored as float64 (strings as unicode), no pickle, with fixed zip
    timestamps so the same input gives the same bytes. Returns the path.
    """
    names = np.asarray(imgname)
    if names.dtype.kind not in "U" or names.ndim != 1:
        raise TypeError(
            f"imgname: expected a 1-D sequence of str, got dtype {names.dtype}, shape {names.shape}"
        )
    dims: dict[str, int] = {"N": names.shape[0]}
    arrays: dict[str, np.ndarray] = {"imgname": names}
    arrays["center"] = _array(center, "center", ("N", 2), dims)
    arrays["scale"] = _array(scale, "scale", ("N",), dims)
    if (arrays["scale"] <= 0).any():
        raise ValueError("scale: expected values > 0 (box side / 200)")
    if part is not None:
        arrays["part"] = _array(part, "part", ("N", 24, 3), dims)
    arrays["S"] = _array(S, "S", ("N", 24, 4), dims)
    if pose is not None:
        arrays["pose"] = _array(pose, "pose", ("N", 72), dims)
    if shape is not None:
        arrays["shape"] = _array(shape, "shape", ("N", 10), dims)
    return write_npz(path, arrays, compress=compress)
