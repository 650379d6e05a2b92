"""2-D vs 2.5-D vs 3-D U-Net, each trained from scratch for the same wall-clock budget.

Which network should segment thick-slice calf MRI? This trains three MONAI U-Nets on the same
dataset (``--data``, an nnU-Net raw dataset folder made by ``alsseg dataset``) from scratch,
each for ``--minutes`` of wall clock, and evaluates them on held-out synthetic subjects (seeds
``--seed``.., never in a training set; each rendered as MESE echo 1, T1w, Dixon water and
DWI b0 on its own random grid, the way ``bench_seg_dice.py`` does it).

The recipe is the shipped one (``training/lowerleg-unet.yaml``, or ``--recipe``) for all three:
same channels, residual units, normalisation, augmentation, learning rate, loss and seed.
What differs:

* **2-D**: axial 128 x 128 patches, batch 16.
* **2.5-D**: the same, plus 1 neighbouring slice on each side as input channels
  (``network.context_slices: 1``; recipe's ``p_context_drop`` and ``max_context_spacing_mm``).
* **3-D**: 128 x 128 x ``--depth`` patches (default 8 slices), batch 16 / depth, i.e. **an
  equal voxel count per batch** (16 x 128 x 128); strides ``[2,2,1], [2,2,1], [2,2,2],
  [2,2,2]`` (in-plane first: slices are 5-10 mm apart against 1-1.6 mm in-plane; for the
  default depth of 8 the z size goes 8 → 8 → 8 → 4 → 2).

Budget: ``train.max_minutes = --minutes`` (the poly learning-rate schedule bends to end on time)
and an iteration cap no run reaches. Validation (the dataset's validation split) runs once,
after the budget, so every run spends its whole budget on training steps and is evaluated with
its final weights; the "train min" column is ``run.json``'s ``elapsed_s`` and includes that one
validation pass. "Inference s / volume" is ``Segmenter.predict`` (preprocessing, network,
post-processing) per held-out volume with ``--threads`` torch threads.

Runs are kept under ``--work`` (``WORK/2d``, ``WORK/2.5d``, ``WORK/3d``); a run that finished is
not retrained (``bench.json`` marks it; another budget or recipe needs a new ``--work``), an
interrupted one is resumed, and held-out results are cached per run. Needs an otherwise idle
machine: three runs of ``--minutes`` each plus evaluation (default ~30 min).

    python benchmarks/bench_seg_arch.py --data Dataset501_LowerLegSynth --work /tmp/arch --minutes 8
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from _machine import machine  # benchmarks/_machine.py

REPO = Path(__file__).resolve().parents[1]
CONTRASTS = "mese_e1,t1w,dixon_water,dwi_b0"
ARCHS = ("2d", "2.5d", "3d")
LABEL = {"2d": "2-D", "2.5d": "2.5-D (context 1)", "3d": "3-D"}


def arch_recipe(base: dict, arch: str, minutes: float, threads: int, depth: int) -> dict:
    """The base recipe (plain data) turned into one architecture's, with the wall-clock budget."""
    import copy

    d = copy.deepcopy(base)
    d["name"] = f"{base.get('name', 'model')}-{arch}"
    tr = d.setdefault("train", {})
    tr.update(max_minutes=float(minutes), iterations=10 ** 7, iterations_per_epoch=100,
              val_every_epochs=10 ** 6, num_threads=int(threads))
    net = d.setdefault("network", {})
    net["context_slices"] = 1 if arch == "2.5d" else 0
    if arch == "3d":
        n_levels = len(net.get("channels", (16, 32, 64, 128, 256))) - 1
        net["spatial_dims"] = 3
        net["strides"] = [[2, 2, 1] if i < n_levels // 2 else [2, 2, 2] for i in range(n_levels)]
        h, w = tr.get("patch_size", [128, 128])[:2]
        tr["patch_size"] = [h, w, depth]
        tr["batch_size"] = max(1, int(round(tr.get("batch_size", 16) / depth)))
    return d


def train_arch(recipe_dict: dict, data: Path, run: Path) -> dict:
    """Train one architecture (or resume it, or skip it when finished); ``{iterations, train_min}``."""
    from alsseg.seg.recipe import recipe_from_dict
    from alsseg.seg.train import train

    marker = run / "bench.json"
    recipe = recipe_from_dict(recipe_dict)
    if marker.is_file():
        done = json.loads(marker.read_text())
        if done.get("recipe") != recipe.to_dict():
            raise SystemExit(f"{run} was trained with another recipe or budget; use a new --work folder")
        return done
    resume = (run / "checkpoints" / "last.pt").is_file()
    if run.exists() and not resume:  # started but never checkpointed: start again
        shutil.rmtree(run)
    train(recipe, data, run, quiet=True, resume=resume)
    spec = json.loads((run / "run.json").read_text())
    out = {"iterations": int(spec["iterations_done"]), "train_min": float(spec["elapsed_s"]) / 60.0,
           "val_dice": float(spec.get("best", {}).get("mean_dice", float("nan"))), "recipe": recipe.to_dict()}
    marker.write_text(json.dumps(out))
    return out


def evaluate_run(run: Path, seeds, contrasts, anat) -> dict:
    """Held-out Dice per contrast and muscle, and seconds per predicted volume (cached per run)."""
    from alsseg.io import Image
    from alsseg.seg.evaluate import evaluate_labels
    from alsseg.seg.infer import Segmenter
    from alsseg.cases import synthetic_subject_cases

    cache = run / f"eval_{seeds[0]}-{seeds[-1]}_{'-'.join(contrasts)}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    seg = Segmenter.from_checkpoint(run / "checkpoints" / "best.pt", device="cpu")
    rows, seconds = [], []
    for s in seeds:
        for case in synthetic_subject_cases(s, contrasts, grids_per_subject=len(contrasts)):
            t = time.perf_counter()
            pred = seg.predict(case.image)
            seconds.append(time.perf_counter() - t)
            contrast = case.case_id.split("__")[1]
            for r in evaluate_labels(pred, Image(case.labels, case.image.affine), anat, hd=False):
                rows.append({"contrast": contrast, "muscle": r["muscle"], "dice": float(r["dice"])})
    out = {"rows": rows, "s_per_volume": float(np.mean(seconds))}
    cache.write_text(json.dumps(out))
    return out


def table_row(arch: str, trained: dict, ev: dict, contrasts, muscles) -> str:
    """One markdown row: architecture, iterations, minutes, s / volume, Dice per contrast, worst muscle."""
    rows = ev["rows"]
    per_c = [np.mean([r["dice"] for r in rows if r["contrast"] == c]) for c in contrasts]
    per_m = {m: np.mean([r["dice"] for r in rows if r["muscle"] == m]) for m in muscles}
    worst = min(per_m, key=per_m.get)
    return (f"| {LABEL[arch]} | {trained['iterations']} | {trained['train_min']:.1f} | {ev['s_per_volume']:.2f} | "
            + " | ".join(f"{d:.3f}" for d in per_c)
            + f" | {np.mean([r['dice'] for r in rows]):.3f} | {worst} {per_m[worst]:.3f} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="nnU-Net raw dataset folder (alsseg dataset --out ...)")
    ap.add_argument("--work", required=True, help="folder for the runs (kept; finished runs are skipped)")
    ap.add_argument("--minutes", type=float, default=8.0, help="wall-clock training budget per architecture")
    ap.add_argument("--subjects", type=int, default=3, help="held-out synthetic subjects")
    ap.add_argument("--seed", type=int, default=100000, help="first held-out subject seed")
    ap.add_argument("--contrasts", default=CONTRASTS)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (training and inference)")
    ap.add_argument("--depth", type=int, default=8, help="slices per 3-D patch (multiple of 4)")
    ap.add_argument("--recipe", default=str(REPO / "training" / "lowerleg-unet.yaml"), help="base recipe")
    ap.add_argument("--archs", default=",".join(ARCHS), help="subset of 2d,2.5d,3d")
    args = ap.parse_args(argv)

    import torch
    import yaml

    from alsseg.labels import load_anatomy

    torch.set_num_threads(args.threads)
    base = yaml.safe_load(Path(args.recipe).read_text())
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    anat = load_anatomy(base.get("anatomy", "lowerleg"))
    muscles = [m.abbrev for m in anat.muscles]
    contrasts = [c for c in args.contrasts.split(",") if c]
    seeds = list(range(args.seed, args.seed + args.subjects))
    archs = [a for a in args.archs.split(",") if a]
    lines, batches = [], []
    for arch in archs:
        if arch not in ARCHS:
            ap.error(f"unknown architecture {arch!r} (choose from {', '.join(ARCHS)})")
        run = work / arch
        rd = arch_recipe(base, arch, args.minutes, args.threads, args.depth)
        batches.append(f"{LABEL[arch]} {rd['train']['batch_size']} x {' x '.join(map(str, rd['train']['patch_size']))}")
        trained = train_arch(rd, Path(args.data), run)
        ev = evaluate_run(run, seeds, contrasts, anat)
        lines.append(table_row(arch, trained, ev, contrasts, muscles))
    print(f"# from scratch, {args.minutes:g} min each on {Path(args.data).name}; held-out synthetic subjects "
          f"{seeds[0]}-{seeds[-1]} x {len(contrasts)} contrasts (mean Dice of the side-specific muscles, both "
          f"legs); batches ({'; '.join(batches)}); torch threads {args.threads}; machine {machine()}")
    print("| architecture | iterations | train min | inference s / volume | "
          + " | ".join(contrasts) + " | mean | worst muscle |")
    print("|---" * (len(contrasts) + 6) + "|")
    for ln in lines:
        print(ln)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
