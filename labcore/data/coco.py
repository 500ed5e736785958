"""The real-data path for top-down 2-D pose: a COCO keypoints folder → person crops →
predictions back in image pixels → COCO AP.

This is what HRNet's ``lib/dataset/coco.py``, SimpleBaseline's and mmpose's top-down
``CocoDataset`` do with ground-truth person boxes, written with labcore's conventions:

* :class:`CocoCrops` reads a COCO keypoints folder (``annotations/person_keypoints_*.json``
  and its images), selects the persons to learn from, and crops each one to the network's
  input size. Its fields are those of ``labcore.experiments.topdown.CropSet`` (``images``,
  ``keypoints``, ``visible``, ``visibility``, ``areas``) plus what is needed to go back to
  the image (``affines``, ``image_ids``, ``annotation_ids``, ``boxes``, ``coco``).
* :func:`results_in_image` maps predicted crop keypoints back to image pixels as COCO
  result dicts; :func:`evaluate_coco` scores them with pycocotools against the ground truth
  of the crops' images (every person of those images, as COCO's evaluation does).
* :func:`write_coco_folder` writes labcore's synthetic crowd scenes as a folder laid out
  exactly like COCO, so that the whole path can be tried (and tested) without downloading
  COCO.

Box → crop (HRNet's ``_box2cs``, mmpose's ``bbox_xywh2cs``)::

    centre = (x + w/2, y + h/2)
    if w > (W/H)·h:  h = w / (W/H)       # grow the short side to the input aspect W/H,
    else:            w = h · (W/H)       # so that the crop does not stretch the person
    size = (w, h) · padding              # padding = 1.25: context around the person

HRNet divides the size by ``pixel_std = 200`` ("scale"); labcore keeps pixels. The crop is
``labcore.geometry.box_to_affine(centre, size, (W, H))``, applied with ``cv2.warpAffine``
(bilinear, zero border). Pixel convention: integer coordinates are pixel *centres* (as in
OpenCV's ``warpAffine`` and in labcore, DESIGN.md §2), and the box's edges land on the
crop's pixel edges ``[-0.5, W - 0.5] × [-0.5, H - 0.5]``: a source point ``p`` lands at
``apply_affine(p, A)`` exactly. (HRNet's ``get_affine_transform`` maps the centre to
``W/2`` instead of ``(W - 1)/2``: half a pixel off, a known bias that UDP corrects.)
COCO's ``bbox`` and ``keypoints`` are read in the same coordinates without a half-pixel
shift (labcore reads COCO coordinates unchanged, see :mod:`labcore.data.formats`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from labcore.checks import (
    MissingFileError,
    as_tensor,
    check_choice,
    check_int,
    check_number,
    check_size2,
)
from labcore.data.formats import (
    coco_to_arrays,
    find_coco_images,
    keypoint_category,
    keypoint_results,
    read_coco,
    validate_coco,
    write_coco,
)
from labcore.data.io import atomic_write
from labcore.geometry import apply_affine, box_to_affine, invert_affine
from labcore.metrics import coco_keypoint_ap

__all__ = [
    "CocoCrops",
    "box_to_center_size",
    "crop_image",
    "read_image",
    "results_in_image",
    "evaluate_coco",
    "write_coco_folder",
]

PathLike = str | os.PathLike

#: Crops to make before a progress bar is worth showing (``progress=None``).
PROGRESS_MIN_PEOPLE = 200


def _progress(progress: bool | None, n: int) -> bool:
    """``progress`` if given, else on for ``n >= PROGRESS_MIN_PEOPLE`` unless
    ``LABCORE_PROGRESS=0`` (as :mod:`labcore.data.datasets`)."""
    if progress is None:
        return n >= PROGRESS_MIN_PEOPLE and os.environ.get("LABCORE_PROGRESS", "1") != "0"
    return bool(progress)


# --------------------------------------------------------------------------------------
# Boxes, images, crops
# --------------------------------------------------------------------------------------


def box_to_center_size(
    boxes: Any, input_size: tuple[int, int] | int, padding: float = 1.25
) -> tuple[torch.Tensor, torch.Tensor]:
    """HRNet's ``_box2cs``: the crop region of COCO boxes for an input of ``(W, H)``.

    Args:
        boxes: ``(..., 4)`` ``[x, y, w, h]`` pixels (w, h >= 0, not both 0).
        input_size: ``(W, H)`` of the crops (ints); the crop region gets the aspect ``W/H``.
        padding: the factor the aspect-corrected box is grown by (HRNet, SimpleBaseline and
            mmpose use 1.25).

    Returns:
        ``center (..., 2)`` = box centre ``(x + w/2, y + h/2)`` and ``size (..., 2)`` =
        ``(w', h')·padding`` where the short side of ``(w, h)`` is grown so that
        ``w'/h' = W/H``; float64 pixels. Pass them to
        :func:`labcore.geometry.box_to_affine`.
    """
    W, H = check_size2(input_size, "input_size")
    padding = check_number(padding, "padding", low=0.0, low_inclusive=False)
    b = as_tensor(boxes, "boxes", shape=(..., 4), dtype=torch.float64)
    w, h = b[..., 2], b[..., 3]
    if bool((w < 0).any() or (h < 0).any()):
        raise ValueError("boxes: expected [x, y, w, h] with w, h >= 0, got a negative size")
    if bool(((w <= 0) & (h <= 0)).any()):
        raise ValueError("boxes: a box has zero width and zero height; it has no crop region")
    aspect = W / H
    wide = w > aspect * h
    size = torch.stack([torch.where(wide, w, h * aspect), torch.where(wide, w / aspect, h)], -1)
    return b[..., :2] + 0.5 * b[..., 2:], size * padding


def read_image(path: PathLike) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 RGB (grey images are repeated to 3 channels;
    an alpha channel is dropped), read with OpenCV.

    Raises:
        MissingFileError: no such file. ValueError: OpenCV cannot decode it.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise MissingFileError(f"path: image file not found: {p}")
    # cv2.imread returns None (no exception) for files it cannot decode, and fails on
    # non-ASCII paths on Windows; decoding bytes avoids both surprises.
    bgr = cv2.imdecode(np.fromfile(p, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{p}: OpenCV cannot decode this file as an image")
    return np.ascontiguousarray(bgr[..., ::-1])


def crop_image(image: np.ndarray, affine: Any, output_size: tuple[int, int] | int) -> np.ndarray:
    """Warp ``image (H, W, C)`` (uint8 or float) by the source→crop ``affine (2, 3)`` into an
    image of ``output_size = (W', H')``: bilinear, zero outside the source.

    OpenCV's ``warpAffine`` samples output pixel ``(x', y')`` at ``A⁻¹ (x', y')`` with integer
    coordinates at pixel centres — labcore's convention — so a source pixel centre ``p`` lands
    at ``labcore.geometry.apply_affine(p, affine)``.
    """
    W, H = check_size2(output_size, "output_size")
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
        got = image.shape if isinstance(image, np.ndarray) else type(image).__name__
        raise TypeError(f"image: expected a numpy array (H, W) or (H, W, C), got {got}")
    a = as_tensor(affine, "affine", shape=(2, 3), dtype=torch.float64).cpu().numpy()
    return cv2.warpAffine(image, a, (W, H), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


# --------------------------------------------------------------------------------------
# Finding the annotation file and the image folder
# --------------------------------------------------------------------------------------


def _find_annotations(root: Path, annotations: PathLike | None) -> Path:
    if annotations is not None:
        if not isinstance(annotations, (str, os.PathLike)):
            raise TypeError(
                f"annotations: expected a path to a COCO keypoints JSON file, a dict or None, "
                f"got {type(annotations).__name__}"
            )
        a = Path(annotations).expanduser()
        # A bare name is looked up where COCO keeps it: root/annotations/, then root/.
        for cand in (a, root / "annotations" / a, root / a):
            if cand.is_file():
                return cand
        raise MissingFileError(
            f"annotations: file not found: {a} (also looked in {root / 'annotations'} and {root})"
        )
    folder = root / "annotations"
    cands = sorted(folder.glob("person_keypoints_*.json")) if folder.is_dir() else []
    if len(cands) == 1:
        return cands[0]
    if not cands:
        raise MissingFileError(
            f"annotations: no person_keypoints_*.json in {folder}; pass annotations= "
            "(a COCO keypoints JSON file)"
        )
    names = ", ".join(c.name for c in cands)
    raise ValueError(
        f"annotations: {len(cands)} candidate files in {folder} ({names}); pass "
        "annotations= to choose one, e.g. annotations='person_keypoints_val2017.json'"
    )


def _default_image_dir(root: Path, ann_file: Path | None) -> Path | None:
    """COCO 2017's layouts: ``person_keypoints_<split>.json`` with the images in
    ``images/<split>/`` or ``<split>/`` (``find_coco_images`` also looks in ``images/`` and
    the root itself)."""
    if ann_file is None:
        return None
    m = re.fullmatch(r"person_keypoints_(.+)\.json", ann_file.name)
    if not m:
        return None
    for cand in (Path("images") / m.group(1), Path(m.group(1))):
        if (root / cand).is_dir():
            return cand
    return None


# --------------------------------------------------------------------------------------
# The crops
# --------------------------------------------------------------------------------------


class CocoCrops:
    """Top-down person crops from a COCO keypoints folder, with ground-truth boxes.

    Args:
        root: the dataset folder: ``annotations/person_keypoints_<split>.json`` and the
            images in ``images/<split>/``, ``<split>/``, ``images/`` or ``root`` itself
            (COCO 2017 and :func:`write_coco_folder` layouts), or in ``image_dir``.
        annotations: the annotation file (a path; a bare name is looked up in
            ``root/annotations/`` then ``root``) or an already loaded COCO dict (validated
            as :func:`~labcore.data.formats.read_coco` does). Default: the only
            ``root/annotations/person_keypoints_*.json`` (an error lists the candidates when
            there are several).
        input_size: ``(W, H)`` of the crops (HRNet's COCO default ``(192, 256)``).
        padding: the crop region is the box grown to the aspect ``W/H`` then × ``padding``
            (see :func:`box_to_center_size`).
        min_keypoints: persons with fewer labelled keypoints (``num_keypoints``, v > 0) are
            not cropped. 1 (default) is HRNet's and mmpose's training rule (persons without
            keypoints are useless to train on and COCOeval ignores them).
        image_dir: the image folder (relative to ``root`` unless absolute), if not found
            by the rule above.
        max_people: at most this many crops, taking whole images in file order (the first
            image always), so that evaluation sees every person of each image.
        category_id: the keypoint category (default: the only one with keypoints).
        progress: tqdm bar over the images; default: when there are at least
            :data:`PROGRESS_MIN_PEOPLE` crops, unless ``LABCORE_PROGRESS=0``.

    Which persons: annotations of the keypoint category with ``iscrowd = 0``,
    ``num_keypoints >= min_keypoints`` and a box that still has a width and a height after
    clipping to the image (``[-0.5, W - 0.5] × [-0.5, H - 0.5]``, as HRNet and mmpose clip);
    in the order of ``images``, then of ``annotations``. ``skipped`` counts the others.

    Fields (torch, first axis N = crops):
        ``images (N, 3, H, W)`` float32 in [0, 1];
        ``keypoints (N, K, 2)`` float32 crop pixels (labelled joints mapped by ``affines``,
        also when they fall outside the crop; ``(0, 0)`` where not labelled);
        ``visibility (N, K)`` int64 COCO 0/1/2, set to 0 where the joint falls outside the
        crop ``[-0.5, W - 0.5] × [-0.5, H - 0.5]``;
        ``visible (N, K)`` float32 {0, 1} = ``visibility > 0`` (the target weight HRNet and
        mmpose train with: occluded but labelled joints count);
        ``areas (N,)`` float32 crop pixels²: the annotation's ``area`` × ``(W/w')·(H/h')``,
        where ``(w', h')`` is the crop region (OKS in crop space);
        ``affines (N, 2, 3)`` float64 source pixels → crop pixels;
        ``image_ids (N,)``, ``annotation_ids (N,)`` int64;
        ``boxes (N, 4)`` float32 the (clipped) ``[x, y, w, h]`` boxes in image pixels.
    Also ``coco`` (the ground-truth dict of the whole file), ``category_id``,
    ``keypoint_names``, ``input_size``, ``padding``, ``annotation_file`` (``None`` for a
    dict), ``files`` (image path of each crop), ``skipped``.

    All crops are made eagerly and held in memory (N·3·H·W float32: 1000 crops of 192×256
    take 590 MB); for COCO train2017 (150k persons) pass ``max_people`` or a filtered dict
    as ``annotations``. Item ``i`` is ``{"image", "keypoints", "visible"}`` as
    ``CropSet``'s; floor-4 code builds a ``CropSet(images, keypoints, visible, visibility,
    areas)`` from the fields.
    """

    _FIELDS = ("images", "keypoints", "visibility", "visible", "areas", "affines", "image_ids",
               "annotation_ids", "boxes")

    def __init__(
        self,
        root: PathLike,
        annotations: PathLike | dict | None = None,
        input_size: tuple[int, int] | int = (192, 256),
        padding: float = 1.25,
        min_keypoints: int = 1,
        image_dir: PathLike | None = None,
        max_people: int | None = None,
        category_id: int | None = None,
        progress: bool | None = None,
    ) -> None:
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root: expected a folder path, got {type(root).__name__}")
        root = Path(root).expanduser()
        if not root.is_dir():
            raise MissingFileError(
                f"root: folder not found: {root}. Expected a COCO keypoints folder "
                "(annotations/person_keypoints_*.json and the images)"
            )
        W, H = self.input_size = check_size2(input_size, "input_size")
        self.padding = check_number(padding, "padding", low=0.0, low_inclusive=False)
        min_keypoints = check_int(min_keypoints, "min_keypoints", low=0)
        if max_people is not None:
            max_people = check_int(max_people, "max_people", low=1)

        if isinstance(annotations, dict):
            validate_coco(annotations, "annotations")
            coco, ann_file = annotations, None
        else:
            ann_file = _find_annotations(root, annotations)
            coco = read_coco(ann_file)
        self.coco, self.annotation_file = coco, ann_file
        self.category_id, k = keypoint_category(coco, category_id)
        if k == 0:
            raise ValueError(
                f"category_id: category {self.category_id} has no keypoints; expected a COCO "
                "keypoints file (person_keypoints_*.json), not an instances file"
            )
        cat = next(c for c in coco["categories"] if c["id"] == self.category_id)
        self.keypoint_names = tuple(cat["keypoints"])

        # Select the persons (vectorised over the file's annotations).
        a = coco_to_arrays(coco, category_id=self.category_id)
        img_size = {img["id"]: (img["width"], img["height"]) for img in coco["images"]}
        sizes = np.array([img_size[i] for i in a["image_id"]], np.float64).reshape(-1, 2)
        box = a["bbox"].astype(np.float64)
        # Clip to the image's pixel edges, as HRNet/mmpose clip boxes to the image.
        x0 = np.maximum(box[:, 0], -0.5)
        y0 = np.maximum(box[:, 1], -0.5)
        x1 = np.minimum(box[:, 0] + box[:, 2], sizes[:, 0] - 0.5)
        y1 = np.minimum(box[:, 1] + box[:, 3], sizes[:, 1] - 0.5)
        box = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)
        crowd = a["iscrowd"] == 1
        few = ~crowd & (a["labelled"].sum(1) < min_keypoints)
        empty = ~crowd & ~few & ((box[:, 2] <= 0) | (box[:, 3] <= 0))
        keep = ~(crowd | few | empty)
        self.skipped = {"crowd": int(crowd.sum()), "few_keypoints": int(few.sum()),
                        "empty_box": int(empty.sum())}

        # Order: images in file order, persons in annotation order; whole images only.
        by_image: dict[int, list[int]] = {}
        for j in np.flatnonzero(keep):
            by_image.setdefault(int(a["image_id"][j]), []).append(int(j))
        order: list[int] = []
        chosen_images: list[dict] = []
        for img in coco["images"]:
            js = by_image.get(img["id"])
            if not js:
                continue
            if max_people is not None and order and len(order) + len(js) > max_people:
                break
            order += js
            chosen_images.append(img)
        if not order:
            raise ValueError(
                f"no persons selected from {ann_file or 'annotations'}: "
                f"{len(a['iscrowd'])} annotations of category {self.category_id}, "
                f"skipped {self.skipped} (min_keypoints={min_keypoints})"
            )
        idx = np.array(order)

        # Image files: checked before any work, the first missing one named.
        if image_dir is None:
            image_dir = _default_image_dir(root, ann_file)
        paths = find_coco_images(root, {"images": chosen_images}, image_dir=image_dir)
        path_of = {img["id"]: p for img, p in zip(chosen_images, paths)}

        center, size = box_to_center_size(box[idx], (W, H), self.padding)
        affines = box_to_affine(center, size, (W, H))  # float64 (N, 2, 3)
        kp_src = torch.from_numpy(a["keypoints"][idx].astype(np.float64))
        labelled = torch.from_numpy(a["labelled"][idx] > 0)
        kp = apply_affine(kp_src, affines)
        inside = (kp[..., 0] >= -0.5) & (kp[..., 0] <= W - 0.5) & (kp[..., 1] >= -0.5) & (
            kp[..., 1] <= H - 0.5)
        kp = torch.where(labelled[..., None], kp, torch.zeros_like(kp))
        vis = torch.from_numpy(a["visibility"][idx]) * (labelled & inside)

        n = len(idx)
        image_ids = a["image_id"][idx]
        crops = np.zeros((n, H, W, 3), np.uint8)
        A = affines.numpy()
        bar = None
        if _progress(progress, n):
            from tqdm.auto import tqdm

            bar = tqdm(total=n, desc="COCO crops", unit="person")
        # Crops of one image are consecutive: read each image once.
        start = 0
        for iid, js in ((img["id"], by_image[img["id"]]) for img in chosen_images):
            image = read_image(path_of[iid])
            want = img_size[iid]
            if (image.shape[1], image.shape[0]) != want:
                raise ValueError(
                    f"{path_of[iid]}: image is {image.shape[1]}×{image.shape[0]} but the "
                    f"annotations say {want[0]}×{want[1]} (image id {iid}); keypoints would "
                    "not match the pixels"
                )
            for i in range(start, start + len(js)):
                crops[i] = crop_image(image, A[i], (W, H))
            start += len(js)
            if bar is not None:
                bar.update(len(js))
        if bar is not None:
            bar.close()

        scale = (W / size[:, 0]) * (H / size[:, 1])
        self.images = torch.from_numpy(crops).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
        self.keypoints = kp.float()
        self.visibility = vis.long()
        self.visible = (self.visibility > 0).float()
        self.areas = (torch.from_numpy(a["area"][idx].astype(np.float64)) * scale).float()
        self.affines = affines
        self.image_ids = torch.from_numpy(image_ids.astype(np.int64))
        self.annotation_ids = torch.from_numpy(a["ann_id"][idx].astype(np.int64))
        self.boxes = torch.from_numpy(box[idx]).float()
        self.files = [path_of[int(i)] for i in image_ids]

    # ---------------------------------------------------------------- dataset protocol

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[i], "keypoints": self.keypoints[i], "visible": self.visible[i]}

    def __repr__(self) -> str:
        src = self.annotation_file.name if self.annotation_file is not None else "dict"
        return (f"CocoCrops(n={len(self)}, input_size={self.input_size}, padding={self.padding}, "
                f"annotations={src!r}, images={len(set(self.image_ids.tolist()))})")

    @property
    def size(self) -> tuple[int, int]:
        """``(W, H)`` of the crops (as ``CropSet.size``)."""
        return self.input_size

    def subset(self, index: int | Sequence[int] | torch.Tensor | np.ndarray) -> CocoCrops:
        """The first ``index`` crops (an int), or the crops at ``index`` (ints or a boolean
        mask). ``coco`` is shared; :func:`evaluate_coco` then scores the subset's images."""
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            sel = torch.arange(min(check_int(index, "index", low=1), len(self)))
        else:
            t = torch.as_tensor(np.asarray(index))
            if t.dtype == torch.bool:
                if t.shape != (len(self),):
                    raise ValueError(f"index: a mask must have shape ({len(self)},), got {tuple(t.shape)}")
                sel = torch.nonzero(t)[:, 0]
            elif not t.dtype.is_floating_point and t.dim() == 1:
                sel = t.long()
                if sel.numel() and (sel.min() < -len(self) or sel.max() >= len(self)):
                    raise IndexError(f"index: out of range for {len(self)} crops")
            else:
                raise TypeError(f"index: expected an int, integer indices or a boolean mask, got {t.dtype} {tuple(t.shape)}")
        if sel.numel() == 0:
            raise ValueError("index: selects no crops")
        out = object.__new__(CocoCrops)
        out.__dict__.update(self.__dict__)
        for name in self._FIELDS:
            setattr(out, name, getattr(self, name)[sel])
        out.files = [self.files[int(i)] for i in sel]
        return out

    def split(self, n: int) -> tuple[CocoCrops, CocoCrops]:
        """The first crops and the rest, cut at the image boundary nearest after crop ``n``
        (before it when there is none after), so that no image has persons on both sides
        (evaluation counts every person of an image). Needs at least two images."""
        n = check_int(n, "n", low=1, high=len(self) - 1)
        ids = self.image_ids
        bounds = [i for i in range(1, len(self)) if ids[i] != ids[i - 1]]
        if not bounds:
            raise ValueError("n: all crops come from one image; there is no image boundary to split at")
        after = [b for b in bounds if b >= n]
        cut = after[0] if after else bounds[-1]
        return self.subset(torch.arange(cut)), self.subset(torch.arange(cut, len(self)))

    def ground_truth(self) -> dict:
        """The COCO ground truth of the crops' images: every annotation of the keypoint
        category on those images (also persons not cropped: too few keypoints, crowd
        regions), as COCO's evaluation sees them."""
        ids = set(self.image_ids.tolist())
        return {
            "info": self.coco.get("info", {}),
            "licenses": self.coco.get("licenses", []),
            "images": [img for img in self.coco["images"] if img["id"] in ids],
            "annotations": [ann for ann in self.coco["annotations"]
                            if ann["image_id"] in ids and ann["category_id"] == self.category_id],
            "categories": [c for c in self.coco["categories"] if c["id"] == self.category_id],
        }


# --------------------------------------------------------------------------------------
# Back to the image, and COCO AP
# --------------------------------------------------------------------------------------


def results_in_image(crops: CocoCrops, keypoints_crop: Any, scores: Any) -> list[dict]:
    """Predicted crop keypoints as COCO keypoint results in image pixels.

    Args:
        crops: the :class:`CocoCrops` the predictions were made on.
        keypoints_crop: ``(N, K, 2)`` crop pixels (labcore's convention), N = ``len(crops)``.
        scores: ``(N, K)`` per-joint confidences.

    Returns:
        :func:`~labcore.data.formats.keypoint_results` dicts ``{"image_id", "category_id",
        "keypoints": [x, y, s] * K, "score"}``: keypoints mapped by ``invert_affine(affines)``;
        the person score is the mean joint score (the ground-truth box has score 1; HRNet and
        SimCC rescore by the mean of confident joints, which here is kept simple).
    """
    if not isinstance(crops, CocoCrops):
        raise TypeError(f"crops: expected a CocoCrops, got {type(crops).__name__}")
    dims = {"N": len(crops), "K": len(crops.keypoint_names)}
    kp = as_tensor(keypoints_crop, "keypoints_crop", shape=("N", "K", 2), dims=dims,
                   dtype=torch.float64).cpu()
    sc = as_tensor(scores, "scores", shape=("N", "K"), dims=dims, dtype=torch.float64).cpu()
    kp_img = apply_affine(kp, invert_affine(crops.affines))
    return keypoint_results(crops.image_ids, kp_img, sc, sc.mean(dim=1),
                            category_id=crops.category_id)


def evaluate_coco(crops: CocoCrops, keypoints_crop: Any, scores: Any, sigmas: Any = None) -> dict[str, float]:
    """COCO keypoint AP of crop predictions, in image pixels against the ground truth of the
    crops' images (:meth:`CocoCrops.ground_truth`: every person of those images, crowd
    regions included, as pycocotools' evaluation on COCO val does).

    Args: as :func:`results_in_image`; ``sigmas``: OKS sigmas ``(K,)`` (default COCO's 17).

    Returns:
        :func:`labcore.metrics.coco_keypoint_ap`'s dict (``AP, AP50, AP75, APm, APl, AR``,
        ...), floats in [0, 1] (-1 where no ground truth falls in a size range).
    """
    results = results_in_image(crops, keypoints_crop, scores)
    return coco_keypoint_ap(crops.ground_truth(), results, sigmas=sigmas)


# --------------------------------------------------------------------------------------
# A synthetic COCO folder
# --------------------------------------------------------------------------------------


def write_coco_folder(
    root: PathLike,
    n_images: int,
    *,
    seed: int = 0,
    size: tuple[int, int] | int = (128, 96),
    people: tuple[int, int] = (1, 3),
    split: str = "train",
    scale_range: float = 3.0,
    min_area: float = 0.0,
    background: str = "procedural",
    body: str = "auto",
    progress: bool | None = None,
) -> Path:
    """Write labcore's synthetic crowd scenes as a folder laid out like COCO 2017::

        root/annotations/person_keypoints_<split>.json
        root/images/<split>/000001.png, 000002.png, ...

    The scenes are :func:`labcore.data.datasets.crowd_arrays` (image ``i`` depends only on
    ``(seed, i)`` and the other arguments), the annotations
    :func:`labcore.data.datasets.crowd_coco` (image ids ``1..n``, boxes and areas from each
    person's visible pixels, RLE segmentations; people seen through fewer than ``min_area``
    pixels keep no keypoints). ``CocoCrops(root)`` reads it back.

    Args:
        root: the folder (created). Existing files of the same names are replaced; others
            are left alone.
        n_images: number of images (>= 1).
        seed, size ``(W, H)`` (>= 16), people ``(min, max)`` per image, scale_range (tallest /
        shortest person in an image), background, body: as
        :class:`~labcore.data.datasets.CrowdScenes`.
        split: the split's name in the file and folder names (letters, digits, ``_``, ``-``).
        progress: tqdm bar while rendering (default: on unless ``LABCORE_PROGRESS=0``).

    Every file is written atomically; the images (lossless PNG, by OpenCV) first, the JSON
    last, so a folder whose JSON exists has all its images. Same arguments, same bytes.

    Returns:
        the path of the annotation file.
    """
    # Deferred: datasets pulls in the body model and scene renderer, which reading a COCO
    # folder does not need.
    from labcore.data.datasets import crowd_arrays, crowd_coco
    from labcore.data.scenes import BACKGROUND_KINDS

    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root: expected a folder path, got {type(root).__name__}")
    root = Path(root).expanduser()
    n_images = check_int(n_images, "n_images", low=1)
    seed = check_int(seed, "seed", low=0)
    W, H = check_size2(size, "size", low=16)
    if not isinstance(people, (tuple, list)) or len(people) != 2:
        raise TypeError(f"people: expected (min, max) people per image, got {people!r}")
    lo = check_int(people[0], "people[0]", low=1)
    hi = check_int(people[1], "people[1]", low=lo)
    scale_range = check_number(scale_range, "scale_range", low=1.0)
    check_choice(background, "background", BACKGROUND_KINDS)
    if not isinstance(split, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", split):
        raise ValueError(f"split: expected a name of letters, digits, '_' or '-', got {split!r}")
    show = os.environ.get("LABCORE_PROGRESS", "1") != "0" if progress is None else bool(progress)

    arrays = crowd_arrays(n_images, seed, (W, H), (lo, hi), scale_range, background, body, show)
    coco = crowd_coco(arrays, (W, H), min_area=min_area)
    coco["info"]["description"] = (
        f"labcore synthetic crowd scenes, COCO keypoints layout (seed={seed}, size={W}x{H}, "
        f"people={lo}-{hi}, scale_range={scale_range:g})"
    )
    image_folder = root / "images" / split
    for img in coco["images"]:
        i = img["id"] - 1
        _write_png(image_folder / img["file_name"], arrays["image"][i])
    return write_coco(coco, root / "annotations" / f"person_keypoints_{split}.json")


def _write_png(path: Path, rgb: np.ndarray) -> None:
    """``(H, W, 3)`` uint8 RGB as a lossless PNG by OpenCV, written atomically. (OpenCV's
    deflate makes files ~3× smaller than ``labcore.data.io.write_png``'s stored blocks,
    which matters for a folder of thousands of images; the bytes are reproducible for a
    given OpenCV build.)"""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:  # not expected for uint8 RGB; never write a partial folder silently
        raise ValueError(f"{path}: OpenCV could not encode the image as PNG")
    data = buf.tobytes()
    atomic_write(path, lambda f: f.write(data))
