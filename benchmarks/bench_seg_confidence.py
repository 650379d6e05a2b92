"""Does per-muscle confidence predict failure? Spearman of confidence vs Dice per muscle and leg.

Cases: held-out synthetic subjects (seeds 100000+, never used in training; the contrasts of
bench_seg_dice.py, each on its own random grid) and the real outlined slices
(``../shared/data/real-calf-slices``: TP unscored, 255 ignored; validation only). For every
muscle and leg the bundle's ``Segmenter.predict(..., return_confidence=True)`` gives the
confidence signals (alsseg.seg.confidence) and the truth gives the Dice; the table shows the
Spearman rank correlation of each signal with Dice, and how well the flag
(``seg_confidence < LOW_CONFIDENCE``) catches failures (Dice < ``--fail-dice``).

    python benchmarks/bench_seg_confidence.py --model lowerleg-unet --subjects 6 [--tsv rows.tsv]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from _machine import machine  # benchmarks/_machine.py

REPO = Path(__file__).resolve().parents[1]
SIGNALS = ("seg_confidence", "conf_max_softmax", "conf_flip_dice")


def _join(conf_rows: list[dict], dice_rows: list[dict], **extra) -> list[dict]:
    """Rows of both tables with the same label id (labels the truth or prediction lacks: Dice only
    where both have the row; a muscle predicted nowhere has no confidence and is left out)."""
    by = {r["label"]: r for r in conf_rows}
    return [{**extra, "label": d["label"], "muscle": d["muscle"], "side": d["side"], "dice": d["dice"],
             **{s: by[d["label"]][s] for s in SIGNALS}} for d in dice_rows if d["label"] in by]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lowerleg-unet")
    ap.add_argument("--subjects", type=int, default=6)
    ap.add_argument("--seed", type=int, default=100000)
    ap.add_argument("--contrasts", default="mese_e1,t1w,dixon_water,dwi_b0,random")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--fail-dice", type=float, default=0.8, help="a muscle with Dice below this is a failure")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tsv", help="write the joined rows here")
    args = ap.parse_args(argv)

    import torch
    from scipy.stats import spearmanr

    from alsseg.io import Image, load_nifti
    from alsseg.seg.confidence import LOW_CONFIDENCE
    from alsseg.seg.evaluate import evaluate_labels, slice_dice_rows
    from alsseg.seg.infer import Segmenter
    from alsseg.seg.realdata import REAL_SLICES, UNSCORED_ON_SLICES
    from alsseg.cases import synthetic_subject_cases

    torch.set_num_threads(args.threads)
    seg = Segmenter.from_bundle(args.model)
    contrasts = [c for c in args.contrasts.split(",") if c]
    rows = []
    t0 = time.time()
    for s in range(args.seed, args.seed + args.subjects):
        for case in synthetic_subject_cases(s, contrasts, grids_per_subject=len(contrasts)):
            pred, conf = seg.predict(case.image, return_confidence=True)
            dice = evaluate_labels(pred, Image(case.labels, case.image.affine), seg.anatomy, hd=False)
            rows += _join(conf, dice, set="synthetic", case=case.case_id)
    t_syn = time.time() - t0
    folder = Path(args.data) / "real-calf-slices"
    if folder.is_dir():
        for name in REAL_SLICES:
            image = load_nifti(folder / f"{name}.nii.gz", ndim=3)
            truth = load_nifti(folder / f"{name}_dseg.nii.gz", ndim=3, dtype=None)
            pred, conf = seg.predict(image, return_confidence=True)
            rows += _join(conf, slice_dice_rows(pred, truth, seg.anatomy, unscored=UNSCORED_ON_SLICES),
                          set="real", case=name)
    how = ", mirror TTA" if seg.mirror_tta else ""
    print(f"# model {args.model} {seg.metadata.get('version', '')}{how}: Spearman rho of per-muscle confidence vs "
          f"Dice (one point per muscle and leg); synthetic: {args.subjects} held-out subjects (seeds {args.seed}-"
          f"{args.seed + args.subjects - 1}) x {len(contrasts)} contrasts; real: {', '.join(REAL_SLICES)} "
          f"(TP unscored); failure = Dice < {args.fail_dice}; flag = seg_confidence < {LOW_CONFIDENCE}")
    print("| set | n | Dice median (min) | " + " | ".join(f"rho {s}" for s in SIGNALS)
          + " | failures | flagged | failures flagged | flagged that failed |")
    print("|---" * (len(SIGNALS) + 7) + "|")
    for name in ("synthetic", "real", "all"):
        sel = [r for r in rows if name == "all" or r["set"] == name]
        if len(sel) < 3:
            continue
        d = np.array([r["dice"] for r in sel])
        rho = [spearmanr([r[s] for r in sel], d)[0] for s in SIGNALS]
        fail = d < args.fail_dice
        flag = np.array([r["seg_confidence"] < LOW_CONFIDENCE for r in sel])
        caught = f"{int((fail & flag).sum())} of {int(fail.sum())}" if fail.any() else "-"
        precise = f"{int((fail & flag).sum())} of {int(flag.sum())}" if flag.any() else "-"
        print(f"| {name} | {len(sel)} | {np.median(d):.3f} ({d.min():.3f}) | " + " | ".join(f"{v:+.3f}" for v in rho)
              + f" | {int(fail.sum())} | {int(flag.sum())} | {caught} | {precise} |")
    if args.tsv:
        from alsseg.io.atomic import write_text_atomic

        keys = list(rows[0])
        write_text_atomic(args.tsv, "\t".join(keys) + "\n" + "".join("\t".join(str(r[k]) for k in keys) + "\n"
                                                                     for r in rows))
    print(f"# machine: {machine()}, torch threads {args.threads}; synthetic {t_syn:.0f} s, total "
          f"{time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
