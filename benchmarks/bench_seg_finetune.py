"""Fine-tuning from the shipped bundle vs training from scratch, same data and wall-clock budget.

Data: ``--n-train`` annotated synthetic subjects (+1 for validation) in a contrast the bundle
never saw in training (default ``dixon_fat``: fat bright, muscle dark), optionally annotated on
every ``--sparse-every``-th slice only. Both runs use the bundle's recipe with the same
iteration budget and wall-clock limit; both are evaluated on held-out subjects of that contrast.
Prints each run's validation-Dice curve end points and the held-out Dice (plus the bundle
zero-shot).

    python benchmarks/bench_seg_finetune.py --minutes 4 --contrast dixon_fat
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np

from _machine import machine  # benchmarks/_machine.py


def heldout_dice(seg, seeds, contrast):
    from alsseg.io import Image
    from alsseg.seg.evaluate import evaluate_labels
    from alsseg.cases import synthetic_subject_cases

    d = []
    for s in seeds:
        for case in synthetic_subject_cases(s, [contrast], grids_per_subject=1):
            rows = evaluate_labels(seg.predict(case.image), Image(case.labels, case.image.affine), hd=False)
            d.extend(r["dice"] for r in rows)
    return float(np.mean(d))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lowerleg-unet")
    ap.add_argument("--contrast", default="dixon_fat")
    ap.add_argument("--n-train", type=int, default=3)
    ap.add_argument("--sparse-every", type=int, default=None)
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--iterations", type=int, default=400)
    ap.add_argument("--test-subjects", type=int, default=3)
    ap.add_argument("--work", help="work folder (default: a temporary one)")
    args = ap.parse_args(argv)

    import torch

    from alsseg.seg.infer import load_bundle
    from alsseg.seg.dataset import write_dataset
    from alsseg.seg.infer import Segmenter
    from alsseg.seg.recipe import recipe_from_dict
    from alsseg.cases import synthetic_cases
    from alsseg.seg.train import train

    torch.set_num_threads(2)
    work = Path(args.work or tempfile.mkdtemp(prefix="ft-"))
    seeds = list(range(200000, 200000 + args.n_train + 1))
    ds = write_dataset(work / "data", synthetic_cases(seeds, [args.contrast], grids_per_subject=1),
                       val_fraction=1.0 / len(seeds), sparse_every=args.sparse_every, seed=1)
    bundle = load_bundle(args.model, device="cpu")
    d = bundle.metadata["alsseg"]["recipe"]
    d["train"].update(iterations=args.iterations, iterations_per_epoch=max(10, args.iterations // 8),
                      max_minutes=args.minutes, val_every_epochs=1)
    recipe = recipe_from_dict(d)
    test_seeds = range(210000, 210000 + args.test_subjects)
    results = []
    zero = heldout_dice(bundle, test_seeds, args.contrast)
    for name, init in (("fine-tune from bundle", args.model), ("from scratch", None)):
        t = time.time()
        run = work / name.split()[0]
        train(recipe, ds, run, init=init, quiet=True)
        rows = list(csv.DictReader(open(run / "log.csv")))
        seg = Segmenter.from_checkpoint(run / "checkpoints" / "best.pt")
        results.append((name, rows[0], rows[-1], heldout_dice(seg, test_seeds, args.contrast), time.time() - t))
    sparse = f", only every {args.sparse_every}-th slice annotated" if args.sparse_every else ""
    print(f"# fine-tuning vs scratch: {args.n_train} training subjects of '{args.contrast}' (not in the bundle's "
          f"training){sparse}, budget {args.minutes} min / {args.iterations} iterations each; held-out Dice on "
          f"{args.test_subjects} subjects; {machine()}, {torch.get_num_threads()} torch thread(s) (recipe)")
    print("| run | first val Dice (iter) | last val Dice (iter) | held-out mean Dice | wall s |")
    print("|---|---|---|---|---|")
    print(f"| bundle zero-shot | - | - | {zero:.3f} | - |")
    for name, first, last, test, wall in results:
        print(f"| {name} | {float(first['dice_mean']):.3f} ({first['iteration']}) | {float(last['dice_mean']):.3f} "
              f"({last['iteration']}) | {test:.3f} | {wall:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
