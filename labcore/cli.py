"""The ``labcore`` command line.

* ``labcore doctor`` — versions, device, profile, which body model is in use, caches.
* ``labcore lab`` — open the notebooks in JupyterLab.
* ``labcore run [NOTEBOOK ...]`` — execute notebooks headless into ``build/`` (all by default).
* ``labcore reproduce NAME [--profile P] [--seeds ...]`` — run a paper's miniature
  reproduction, print its table and save it as JSON + Markdown under ``results/``.
* ``labcore train --data DIR [--head H] [--size W [H]] ...`` — train and evaluate a 2-D head
  on a COCO-format folder; ``torchrun --nproc_per_node=N -m labcore train ...`` runs it with
  DistributedDataParallel.
* ``labcore samples [--check]`` — regenerate ``data_samples/`` (or check it is bit-identical).
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["main", "repo_root"]


def repo_root() -> Path:
    """The repository labcore is installed from (editable installs; the notebooks live there)."""
    return Path(__file__).resolve().parents[1]


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "not installed"


def doctor(_: argparse.Namespace) -> int:
    """Print what labcore runs on; return 1 if something needs fixing."""
    import torch

    import labcore
    from labcore.body.model import SMPL_DIR_ENV, resolve_body_kind
    from labcore.data.datasets import cache_dir
    from labcore.data.samples import SAMPLE_FILES, default_samples_dir
    from labcore.runtime import describe

    problems = []
    info = describe()
    print(f"labcore {labcore.__version__}  ({repo_root()})")
    print(f"  python {info['python']}, torch {info['torch']}, numpy {info['numpy']}")
    for dist in ("smplx", "opencv-python-headless", "plotly", "ipywidgets", "anywidget",
                 "pycocotools", "scikit-image", "scipy", "tqdm", "jupyterlab", "nbmake"):
        print(f"  {dist:<24} {_version(dist)}")
    if _version("opencv-python") != "not installed":
        problems.append("both opencv-python and opencv-python-headless are installed; "
                        "uninstall opencv-python (its GUI build can abort a Jupyter kernel)")
    print(f"device:   {info['device']} (CUDA {'available: ' + info.get('gpu', '') if info['cuda'] else 'not available'}), "
          f"{info['threads']} CPU threads")
    source = "LABCORE_PROFILE" if os.environ.get("LABCORE_PROFILE") else "default"
    print(f"profile:  {info['profile']} ({source})")
    kind = resolve_body_kind("auto")
    smpl_dir = os.environ.get(SMPL_DIR_ENV, "")
    if kind == "smpl":
        print(f"body:     SMPL from {smpl_dir}")
    else:
        why = f"{SMPL_DIR_ENV} not set" if not smpl_dir else f"no SMPL_NEUTRAL.pkl in {smpl_dir}"
        print(f"body:     labcore's toy body ({why})")
    cache = cache_dir()
    files = list(cache.glob("*.npz")) if cache.is_dir() else []
    size = sum(f.stat().st_size for f in files) / 1e6
    print(f"cache:    {cache} ({len(files)} files, {size:.1f} MB)")
    samples = default_samples_dir()
    present = [n for n in SAMPLE_FILES if (samples / n).is_file()]
    print(f"samples:  {samples} ({len(present)}/{len(SAMPLE_FILES)} files)")
    if len(present) < len(SAMPLE_FILES):
        problems.append("data_samples/ is incomplete: run `labcore samples`")
    if torch.cuda.is_available():
        print(f"          CUDA {torch.version.cuda}, AMP bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}")
    for p in problems:
        print(f"problem:  {p}")
    return 1 if problems else 0


def lab(args: argparse.Namespace) -> int:
    """Open JupyterLab on the notebooks folder."""
    if _version("jupyterlab") == "not installed":
        print("JupyterLab is not installed: pip install -c constraints.txt -e '.[lab]'", file=sys.stderr)
        return 2
    cmd = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={repo_root() / 'notebooks'}"]
    if args.no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers often run as root; Jupyter refuses without it
    return subprocess.call(cmd)


def run(args: argparse.Namespace) -> int:
    """Execute notebooks headless (a fresh kernel each) and save them with outputs."""
    try:
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError
    except ImportError:
        print("running notebooks needs nbclient: pip install -c constraints.txt -e '.[lab]'", file=sys.stderr)
        return 2
    paths = [Path(p) for p in args.notebooks] or sorted((repo_root() / "notebooks").glob("*.ipynb"))
    if not paths:
        print("no notebooks found", file=sys.stderr)
        return 2
    if args.profile:
        os.environ["LABCORE_PROFILE"] = args.profile  # the kernels inherit it
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in paths:
        if not path.is_file():
            print(f"{path}: no such notebook", file=sys.stderr)
            failed += 1
            continue
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=args.timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent.resolve())}})
        start = time.perf_counter()
        status = "ok"
        try:
            client.execute()
        except CellExecutionError as err:
            status = "FAILED"
            failed += 1
            print(str(err)[-2000:], file=sys.stderr)
        seconds = time.perf_counter() - start
        target = out_dir / path.name
        nbformat.write(nb, target)
        print(f"{status:<7} {path.name:<32} {seconds:7.1f} s  -> {target}")
    return 1 if failed else 0


def reproduce(args: argparse.Namespace) -> int:
    """Run one experiment (or ``all``), print its tables and save them (JSON + Markdown)."""
    from labcore.experiments import get_experiment
    from labcore.experiments.reproduce import reproduce as run_one
    from labcore.experiments.reproduce import reproduce_all

    if args.name != "all":
        try:
            get_experiment(args.name)
        except ValueError as err:
            print(f"labcore reproduce: {err} (or 'all')", file=sys.stderr)
            return 2
        run_one(args.name, args.profile, args.seeds, args.out, progress=not args.quiet)
        return 0
    table = reproduce_all(args.profile, args.seeds, args.out, progress=not args.quiet)
    return 1 if table.meta["failed"] else 0


def train(args: argparse.Namespace) -> int:
    """Train a playground head on a COCO-format folder (DDP under torchrun) and score it."""
    from labcore.experiments import playground
    from labcore.experiments.coco_train import train_coco
    from labcore.train import cleanup_distributed, init_distributed

    if args.head not in playground.HEADS:
        print(f"labcore train: --head: expected one of {sorted(playground.HEADS)}, got {args.head!r}", file=sys.stderr)
        return 2
    rank, world = init_distributed()
    try:
        result = train_coco(args.data, annotations=args.annotations, val=args.val,
                            val_annotations=args.val_annotations, head=args.head,
                            input_size=tuple(args.size) if len(args.size) == 2 else args.size[0], steps=args.steps,
                            batch_size=args.batch_size, lr=args.lr, backbone=args.backbone,
                            max_people=args.max_people, profile=args.profile, seed=args.seed, out=args.out,
                            progress=not args.quiet and rank == 0)
    finally:
        cleanup_distributed()
    if rank == 0:
        m, c = result["metrics"], result["config"]
        print(f"{c['head']} {c['input_size'][0]}×{c['input_size'][1]}, {c['steps']} steps × batch {c['batch_size']} "
              f"on {world} process(es), {c['train_people']} people, {c['train_s']:.0f} s; evaluated on "
              f"{c['val_people']} people: AP {100 * m['AP']:.1f}, AP50 {100 * m['AP50']:.1f}, AR {100 * m['AR']:.1f}, "
              f"error {m['err_px']:.2f} px (crop), PCK@0.05 {m['pck']:.3f}")
        if args.out:
            print(f"saved {args.out}/checkpoint.pt, history.json, results.json, metrics.json")
    return 0


def samples(args: argparse.Namespace) -> int:
    """Write data_samples/, or check that regenerating it gives the same bytes."""
    from labcore.data.samples import check_samples, default_samples_dir, write_samples

    target = Path(args.out) if args.out else default_samples_dir()
    if args.check:
        differ = check_samples(target)
        if differ:
            print(f"differ from a fresh regeneration: {', '.join(differ)}")
            return 1
        print(f"{target}: every sample is bit-identical to a fresh regeneration")
        return 0
    for path in write_samples(target):
        print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labcore", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="versions, device, profile, body model").set_defaults(func=doctor)
    p = sub.add_parser("lab", help="open the notebooks in JupyterLab")
    p.add_argument("--no-browser", action="store_true")
    p.set_defaults(func=lab)
    p = sub.add_parser("run", help="execute notebooks headless into build/")
    p.add_argument("notebooks", nargs="*", help="notebook files (default: all in notebooks/)")
    p.add_argument("--profile", choices=("ci", "cpu", "gpu"), help="LABCORE_PROFILE for the kernels")
    p.add_argument("--out", default="build", help="where the executed notebooks go")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    p.set_defaults(func=run)
    p = sub.add_parser("reproduce", help="run a paper's miniature reproduction, save its table")
    p.add_argument("name", help="experiment name (e.g. simdr), or 'all' for every one")
    p.add_argument("--profile", choices=("ci", "cpu", "gpu"), help="run size (default: LABCORE_PROFILE, "
                   "else gpu with CUDA, else cpu)")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the profile's)")
    p.add_argument("--out", default="results", help="folder for the JSON + Markdown tables")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=reproduce)
    p = sub.add_parser("train", help="train + evaluate a 2-D head on a COCO-format folder (torchrun: DDP)")
    p.add_argument("--data", required=True, help="COCO-format folder (annotations/ + images)")
    p.add_argument("--annotations", help="its keypoints JSON (default: the folder's only person_keypoints_*.json)")
    p.add_argument("--val", help="evaluation folder (default: --data)")
    p.add_argument("--val-annotations", help="its keypoints JSON")
    p.add_argument("--head", default="heatmap", help="heatmap, heatmap+wahr, heatmap+sahr, integral or simdr")
    p.add_argument("--size", type=int, nargs="+", default=[64], help="input W [H] in pixels (multiples of 32)")
    p.add_argument("--steps", type=int, help="optimizer steps (default: the profile's)")
    p.add_argument("--batch-size", type=int, help="global batch (split over the processes)")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--backbone", choices=("SimpleBaseline", "HRNet"), help="default: SimpleBaseline")
    p.add_argument("--max-people", type=int, help="read at most this many people per split")
    p.add_argument("--profile", choices=("ci", "cpu", "gpu"), help="sizes the default backbone and recipe")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="folder for checkpoint.pt (resumes), history, results, metrics")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=train)
    p = sub.add_parser("samples", help="regenerate data_samples/ (or --check it)")
    p.add_argument("--check", action="store_true", help="compare with a fresh regeneration")
    p.add_argument("--out", help="folder (default: the repository's data_samples/)")
    p.set_defaults(func=samples)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
