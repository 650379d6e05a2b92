"""Few-shot adaptation on real data, leave-one-out over ``../shared/data/real-calf-slices``.

**The one sanctioned use of those slices for training** (their README: leave-one-out few-shot
experiments, said so): for each slice, fine-tune a bundle on the *other two* with the product's
own ``alsseg train --init BUNDLE`` path, then score the held-out slice before and after, with the
rules of ``bench_seg_real.py`` (Dice per muscle pooled over legs; TP not outlined, not scored;
255 ignored). Nothing is tuned on the held-out slice: no validation split (the last weights are
used), a fixed recipe (the bundle's own, with ``--iterations`` / ``--minutes`` / ``--lr``).

The manual outlines do not mark the deep posterior muscles (TP, FDL, FHL), so label 0 inside a
leg does not mean background: within the convex hull of each leg's outlined muscles, unlabelled
pixels are marked "not annotated" (255 → the dataset's ignore label); outside it they are
background (fat, skin, air).

    python benchmarks/bench_seg_fewshot_real.py --model lowerleg-unet --minutes 4 --iterations 300
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _machine import machine  # benchmarks/_machine.py

REPO = Path(__file__).resolve().parents[1]
SLICES = ("t1w_a", "t1w_b", "pd")
SCORED = ("TA", "EDL", "PER", "SOL", "GM", "GL")  # TP is not outlined on these slices
MODES = {"first": "the first member fine-tuned, scored alone",
         "rejoin": "the first member fine-tuned and put back into the ensemble (alsseg export --rejoin)",
         "all": "every member fine-tuned, joined again"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lowerleg-unet", help="bundle to start from")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "real-calf-slices"))
    ap.add_argument("--minutes", type=float, default=4.0, help="wall-clock budget per fold")
    ap.add_argument("--iterations", type=int, default=300, help="iterations per fold")
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", help="work folder (default: a temporary one)")
    ap.add_argument("--members", choices=("first", "rejoin", "all"), default="first",
                    help="fine-tune the ensemble's first member only and score it alone (one network); the "
                         "same run put back into the ensemble in its place (alsseg export --rejoin); or "
                         "every member in its own run (alsseg train --init-member K), joined again")
    args = ap.parse_args(argv)
    data = Path(args.data)
    if not data.is_dir():
        print(f"{data}: not present; nothing to do")
        return 0

    import torch
    import yaml

    from alsseg.io.case import Case
    from alsseg.io.nifti import load_nifti
    from alsseg.seg.dataset import mark_unoutlined_inside_legs, write_dataset
    from alsseg.seg.evaluate import pool_dice, slice_dice_rows
    from alsseg.seg.bundle import export_bundle
    from alsseg.seg.infer import Segmenter, load_checkpoint_segmenter
    from alsseg.seg.store import read_metadata, resolve_bundle

    torch.set_num_threads(args.threads)
    work = Path(args.work or tempfile.mkdtemp(prefix="fewshot_"))
    bundle = resolve_bundle(args.model)
    recipe = dict(read_metadata(bundle)["alsseg"]["recipe"])
    recipe["name"] = "fewshot-real-loo"
    recipe["train"] = {**recipe["train"], "iterations": args.iterations, "max_minutes": args.minutes,
                       "learning_rate": args.lr, "num_threads": args.threads, "val_every_epochs": 10 ** 6,
                       "iterations_per_epoch": min(100, args.iterations), "batch_size": 8,
                       "init_preprocess": "bundle"}
    recipe_path = work / "recipe.yaml"
    work.mkdir(parents=True, exist_ok=True)
    recipe_path.write_text(yaml.safe_dump(recipe))

    images = {c: load_nifti(data / f"{c}.nii.gz") for c in SLICES}
    truths = {c: np.rint(load_nifti(data / f"{c}_dseg.nii.gz").data).astype(np.int16) for c in SLICES}
    base = Segmenter.from_bundle(bundle)
    n_members = len(base.networks) if args.members == "all" else 1
    before, after, minutes = [], [], {}
    for held in SLICES:
        train_ids = [c for c in SLICES if c != held]
        ds = work / f"Dataset9{SLICES.index(held)}0_loo_{held}"
        if not (ds / "dataset.json").exists():
            write_dataset(ds, [Case(f"{c}__real", images[c], mark_unoutlined_inside_legs(truths[c]), str(data / c))
                               for c in train_ids], val_fraction=0.0)
        runs = [work / f"run_{held}"] + [work / f"run_{held}_m{k}" for k in range(1, n_members)]
        t0 = time.time()
        for k, run in enumerate(runs):
            if not (run / "checkpoints" / "last.pt").exists():
                cmd = [sys.executable, "-m", "alsseg", "train", "--recipe", str(recipe_path), "--data", str(ds),
                       "--out", str(run), "--init", str(bundle), "--init-member", str(k), "--device", "cpu",
                       "--quiet"]
                subprocess.run(cmd, check=True)
        minutes[held] = (time.time() - t0) / 60
        if args.members == "rejoin":
            tuned = Segmenter.from_bundle(export_bundle(runs[0], work / f"bundle_{held}_rejoined", name="fewshot",
                                                        checkpoint="last", rejoin=True))
        elif len(runs) == 1:
            tuned = load_checkpoint_segmenter(runs[0] / "checkpoints" / "last.pt")
        else:  # the fine-tuned members joined again, as alsseg export --add-member does
            joined = export_bundle(runs[0], work / f"bundle_{held}", name="fewshot", checkpoint="last",
                                   extra_members=[r / "checkpoints" / "last.pt" for r in runs[1:]])
            tuned = Segmenter.from_bundle(joined)
        gt = load_nifti(data / f"{held}_dseg.nii.gz")
        before += slice_dice_rows(base.predict(images[held]), gt, case=held, unscored=("TP",))
        after += slice_dice_rows(tuned.predict(images[held]), gt, case=held, unscored=("TP",))

    print(machine())
    print(f"few-shot leave-one-out on real-calf-slices, from {args.model}: {args.iterations} iterations or "
          f"{args.minutes} min per fold and member, lr {args.lr}, trained on the two other slices; "
          f"{MODES[args.members]}")
    print(f"\n| held-out slice | wall min per fold ({args.threads} threads) | mean Dice before | after |")
    print("|---|---|---|---|")
    for held in SLICES:
        b = np.nanmean([r["dice"] for r in before if r["case"] == held])
        a = np.nanmean([r["dice"] for r in after if r["case"] == held])
        print(f"| {held} | {minutes[held]:.1f} | {b:.3f} | {a:.3f} |")
    pb = {m: v["mean"] for m, v in pool_dice(before, list(SCORED)).items()}
    pa = {m: v["mean"] for m, v in pool_dice(after, list(SCORED)).items()}
    print("\n| muscle | " + " | ".join(SCORED) + " | mean | min |")
    print("|---|" + "---|" * (len(SCORED) + 2))
    for name, p in (("before", pb), ("after (LOO)", pa)):
        v = list(p.values())
        print(f"| {name} | " + " | ".join(f"{x:.3f}" for x in v) + f" | {np.mean(v):.3f} | {min(v):.3f} |")
    (work / "fewshot_dice.json").write_text(json.dumps({"before": before, "after": after, "minutes": minutes}, indent=1))
    print(f"\nper-case rows: {work / 'fewshot_dice.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
