"""The canonical samples in ``data_samples/``: small, committed, regenerated bit for bit.

``labcore samples`` writes them; ``labcore samples --check`` regenerates them in a
temporary folder and compares bytes. They always use the toy body (so they do not change
when ``LABCORE_SMPL_DIR`` is set) and byte-stable writers (:mod:`labcore.data.io`).

Files:

* ``person_crops.npz`` — 32 crops of 64×64 with every :func:`~labcore.data.scenes.person_crops`
  label;
* ``crowd_scene.png``, ``crowd_scene_person.png`` (person index per pixel, 255 = background)
  and ``crowd_scene.json`` (its COCO keypoints annotations);
* ``motion_clip.npz`` — 16 frames of 96×96 of a walking person with optical flow and SMPL.
"""

from __future__ import annotations

import filecmp
import json
import tempfile
from pathlib import Path

import numpy as np

from labcore.checks import check_choice
from labcore.data.io import atomic_write, read_npz, write_npz, write_png

__all__ = ["SAMPLE_FILES", "default_samples_dir", "write_samples", "check_samples", "load_sample"]

SAMPLE_FILES = ("person_crops.npz", "crowd_scene.png", "crowd_scene_person.png",
                "crowd_scene.json", "motion_clip.npz")


def default_samples_dir() -> Path:
    """``data_samples/`` of the repository labcore runs from (found from the package's
    location, so it works from notebooks and from any working directory)."""
    return Path(__file__).resolve().parents[2] / "data_samples"


def write_samples(out_dir: str | Path | None = None) -> list[Path]:
    """Generate every sample file into ``out_dir`` (default: :func:`default_samples_dir`)."""
    from labcore.data.datasets import crowd_arrays, crowd_coco
    from labcore.data.scenes import motion_frames, person_crops

    out = Path(out_dir) if out_dir is not None else default_samples_dir()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    crops = person_crops(32, seed=0, size=(64, 64), background="mixed", body="toy")
    written.append(write_npz(out / "person_crops.npz", crops))
    size = (256, 192)
    crowd = crowd_arrays(1, seed=0, size=size, people=(3, 5), scale_range=4.5,
                          background="procedural", body="toy", progress=False)
    written.append(write_png(out / "crowd_scene.png", crowd["image"][0]))
    person = crowd["person"][0].astype(np.int16)
    written.append(write_png(out / "crowd_scene_person.png", np.where(person < 0, 255, person).astype(np.uint8)))
    text = json.dumps(crowd_coco(crowd, size), sort_keys=True, separators=(",", ":")) + "\n"
    written.append(atomic_write(out / "crowd_scene.json", lambda f: f.write(text), text=True))
    clip = motion_frames(0, n_frames=16, fps=30.0, size=(96, 96), kind="walk", body="toy")
    written.append(write_npz(out / "motion_clip.npz", clip))
    return written


def check_samples(samples_dir: str | Path | None = None) -> list[str]:
    """Regenerate the samples in a temporary folder; return the names whose bytes differ
    from (or are missing in) ``samples_dir``. An empty list means bit-identical."""
    ref = Path(samples_dir) if samples_dir is not None else default_samples_dir()
    with tempfile.TemporaryDirectory() as tmp:
        write_samples(tmp)
        return [name for name in SAMPLE_FILES
                if not (ref / name).is_file() or not filecmp.cmp(ref / name, Path(tmp) / name, shallow=False)]


def load_sample(name: str, samples_dir: str | Path | None = None) -> dict:
    """Load one sample: ``'person_crops'`` or ``'motion_clip'`` (dicts of arrays) or
    ``'crowd_scene'`` (``image``, ``person`` and the ``coco`` dict)."""
    check_choice(name, "name", ("person_crops", "crowd_scene", "motion_clip"))
    root = Path(samples_dir) if samples_dir is not None else default_samples_dir()
    if name != "crowd_scene":
        return read_npz(root / f"{name}.npz")
    import cv2

    image = cv2.cvtColor(cv2.imread(str(root / "crowd_scene.png")), cv2.COLOR_BGR2RGB)
    person = cv2.imread(str(root / "crowd_scene_person.png"), cv2.IMREAD_GRAYSCALE).astype(np.int16)
    person[person == 255] = -1
    coco = json.loads((root / "crowd_scene.json").read_text())
    return {"image": image, "person": person, "coco": coco}
