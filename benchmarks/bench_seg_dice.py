"""Dice per muscle per contrast of a segmentation bundle on held-out synthetic subjects.

Subjects are drawn with seeds never used in training (default 100000+), half healthy, half
ALS-like, each on its own random acquisition grid, rendered in every contrast asked for.
Prints a table (mean Dice over subjects and both legs, per muscle), the mean and the worst
muscle per contrast, HD95 and volume error; writes the per-label rows as TSV with ``--tsv``.

    python benchmarks/bench_seg_dice.py --model lowerleg-unet --subjects 6 [--no-mirror-tta] [--no-slice-smoothing]

The bundle predicts as ``alsseg segment`` does by default, with left-right mirror test-time
augmentation and the softmax averaged over neighbouring slices where they are at most 6 mm apart;
``--no-mirror-tta`` predicts with one network pass (``alsseg segment --no-mirror-tta``),
``--no-slice-smoothing`` slice by slice (``Segmenter.smooth_slices = False``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _machine import machine  # benchmarks/_machine.py


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lowerleg-unet")
    ap.add_argument("--subjects", type=int, default=6)
    ap.add_argument("--seed", type=int, default=100000)
    ap.add_argument("--contrasts", default="mese_e1,t1w,dixon_water,dwi_b0,random")
    ap.add_argument("--tsv", help="write per-label rows here")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--mirror-tta", action=argparse.BooleanOptionalAction, default=True,
                    help="predict with mirror test-time augmentation (default on, as alsseg segment)")
    ap.add_argument("--slice-smoothing", action=argparse.BooleanOptionalAction, default=True,
                    help="average the softmax over neighbouring close slices (default on, as alsseg segment)")
    ap.add_argument("--grids-per-subject", type=int, default=0,
                    help="acquisition grids per subject (default: one per contrast; 1 renders every "
                         "contrast on the same grid, to compare contrasts without grid differences)")
    args = ap.parse_args(argv)

    import torch

    from alsseg.labels import load_anatomy
    from alsseg.io import Image
    from alsseg.seg.evaluate import evaluate_labels
    from alsseg.seg.infer import Segmenter
    from alsseg.cases import synthetic_subject_cases

    torch.set_num_threads(args.threads)
    anat = load_anatomy()
    seg = Segmenter.from_bundle(args.model, mirror_tta=args.mirror_tta)
    seg.smooth_slices = args.slice_smoothing
    contrasts = [c for c in args.contrasts.split(",") if c]
    rows = []
    t0 = time.time()
    for s in range(args.seed, args.seed + args.subjects):
        for case in synthetic_subject_cases(s, contrasts, grids_per_subject=args.grids_per_subject or len(contrasts)):
            pred = seg.predict(case.image)
            gt = Image(case.labels, case.image.affine)
            contrast = case.case_id.split("__")[1]
            for r in evaluate_labels(pred, gt, anat):
                rows.append({"seed": s, "contrast": contrast, **r})
    el = time.time() - t0
    muscles = [m.abbrev for m in anat.muscles]
    print(f"# model {args.model}{' with mirror TTA' if seg.mirror_tta else ' without mirror TTA'}{'' if seg.smooth_slices else ', no slice smoothing'}: Dice on {args.subjects} held-out synthetic subjects (seeds {args.seed}-"
          f"{args.seed + args.subjects - 1}), both legs; machine {machine()}, torch threads {args.threads}; {el:.0f} s")
    print("| contrast | " + " | ".join(muscles) + " | mean | min | HD95 mm | |vol err| % |")
    print("|---" * (len(muscles) + 5) + "|")
    allm = []
    for c in contrasts + ["all"]:
        sel = [r for r in rows if c == "all" or r["contrast"] == c]
        per = [np.mean([r["dice"] for r in sel if r["muscle"] == m]) for m in muscles]
        hd = np.nanmedian([r["hd95_mm"] for r in sel])
        ve = np.nanmedian([abs(r["volume_error_pct"]) for r in sel])
        print(f"| {c} | " + " | ".join(f"{d:.3f}" for d in per) + f" | {np.mean(per):.3f} | {np.min(per):.3f} | "
              f"{hd:.1f} | {ve:.1f} |")
        allm.append(np.mean(per))
    if args.tsv:
        from alsseg.io.atomic import write_text_atomic

        keys = list(rows[0])
        write_text_atomic(args.tsv, "\t".join(keys) + "\n" + "\n".join("\t".join(str(r[k]) for k in keys)
                                                                       for r in rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
