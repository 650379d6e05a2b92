"""Segmentation bundles scored side by side on real data (validation only: never train or tune on it).

Part 1, ``../shared/data/real-calf-slices`` (t1w_a, t1w_b, pd with manual outlines): each
one-slice NIfTI is segmented as the product does (``Segmenter.predict``); Dice per muscle, leg
and slice; TP is not outlined there and not scored; pixels labelled 255 are removed from both
prediction and truth. Pooled per-muscle Dice = mean of the per-case Dice over 2 legs x 3 slices
(also the summed Dice, 2 sum|A&B| / sum(|A|+|B|)); the mean over the 6 muscles; the minimum.
Per-case rows go to ``--out/real_slices_dice.tsv``.

Part 2, anatomical plausibility (alsseg.seg.plausibility) on the unlabelled real volumes
``mese-leg-3t`` (echo 1) and ``gre-calf-3d`` (4.60 ms): pass/fail per check, volume and leg
with the number behind it; rows to ``--out/real_plausibility.tsv``; an overlay PNG per volume
and model (all MESE slices, every 4th GRE slice).

    python benchmarks/bench_seg_real.py --model lowerleg-unet [--model OTHER] [--without-mirror-tta] --out bench_real/

Each model predicts as the product does by default, with left-right mirror test-time
augmentation; ``--without-mirror-tta`` adds each model once more without it ('MODEL no-tta',
one network pass), paired against the first.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from _machine import machine  # benchmarks/_machine.py

REPO = Path(__file__).resolve().parents[1]


def _tsv(rows: list[dict]) -> str:
    keys = list(rows[0])
    def fmt(v) -> str:
        return "n/a" if isinstance(v, float) and np.isnan(v) else str(v)

    return "\t".join(keys) + "\n" + "".join("\t".join(fmt(r[k]) for k in keys) + "\n" for r in rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="bundle name or path (repeat to compare; default lowerleg-unet)")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="the shared real data folder")
    ap.add_argument("--out", default="bench_real", help="folder for the TSVs and overlay PNGs")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--skip-volumes", action="store_true", help="only the outlined slices")
    ap.add_argument("--without-mirror-tta", action="store_true",
                    help="also score each model without mirror test-time augmentation ('MODEL no-tta')")
    args = ap.parse_args(argv)
    models = args.model or ["lowerleg-unet"]

    import torch

    from alsseg.io.atomic import write_bytes_atomic, write_text_atomic
    from alsseg.seg.infer import Segmenter
    from alsseg.seg.overlay import overlay_png
    from alsseg.seg.plausibility import CHECKS
    from alsseg.seg.realdata import (REAL_SLICES, REAL_VOLUMES, load_real_volume, paired_difference,
                                     pooled_confusion, predict_real_slices, score_real_slices, slice_summary,
                                     volume_plausibility)

    torch.set_num_threads(args.threads)
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    segs = {m: Segmenter.from_bundle(m) for m in models}
    if args.without_mirror_tta:
        segs.update({f"{m} no-tta": Segmenter.from_bundle(m, mirror_tta=False) for m in models})
        models = list(segs)
    anat = next(iter(segs.values())).anatomy
    muscles = [m.abbrev for m in anat.muscles if m.abbrev != "TP"]
    t0 = time.time()
    slice_rows, summary = [], {}
    confusion = {}
    for name, seg in segs.items():
        predicted = predict_real_slices(seg, data / "real-calf-slices")
        rows = score_real_slices(seg, data / "real-calf-slices", predicted)
        slice_rows += [{"model": name, **r} for r in rows]
        summary[name] = slice_summary(rows, muscles)
        confusion[name] = pooled_confusion(predicted, seg.anatomy)
    write_text_atomic(out / "real_slices_dice.tsv", _tsv(slice_rows))
    version = {m: s.metadata.get("version", "?") for m, s in segs.items()}
    print(f"# real-calf-slices ({', '.join(REAL_SLICES)}): Dice per muscle pooled over 2 legs x 3 slices "
          "(mean of the 6 per-case Dice; in brackets the summed Dice 2·Σ|A∩B|/Σ(|A|+|B|)); TP not outlined, "
          "not scored; 255 ignored")
    print("| muscle | " + " | ".join(f"{m} {version[m]}" for m in models) + " |")
    print("|---" * (len(models) + 1) + "|")
    for mu in muscles:
        print(f"| {mu} | " + " | ".join(f"{summary[m]['per_muscle'][mu]['mean']:.3f} "
                                        f"({summary[m]['per_muscle'][mu]['summed']:.3f})" for m in models) + " |")
    print("| **mean of 6** | " + " | ".join(f"**{summary[m]['mean']:.3f}**" for m in models) + " |")
    print("| min muscle | " + " | ".join(f"{summary[m]['min']:.3f}" for m in models) + " |")
    print("| worst case | " + " | ".join(
        "{muscle}_{side} {case} {dice:.3f}".format(**summary[m]["worst_case"]) for m in models) + " |")
    if len(models) > 1:
        print()
        print(f"## paired against {models[0]} (per-case Dice, model minus {models[0]}; 95 % bootstrap interval)")
        print("| model | n | mean difference | 95 % interval | better / worse by > 0.005 |")
        print("|---|---|---|---|---|")
        first = [r for r in slice_rows if r["model"] == models[0]]
        for m in models[1:]:
            p = paired_difference(first, [r for r in slice_rows if r["model"] == m])
            print(f"| {m} | {p['n']} | {p['mean']:+.4f} | {p['lo']:+.4f} to {p['hi']:+.4f} | "
                  f"{p['better']} / {p['worse']} |")
    for m in models:
        columns, frac = confusion[m]
        print()
        print(f"## where the manual outlines went, {m}: fraction of each outlined muscle's pixels per predicted "
              "class, both legs and all slices pooled")
        print("| manual \\ predicted | " + " | ".join(columns) + " |")
        print("|---" * (len(columns) + 1) + "|")
        for i, mu in enumerate(columns[1:]):
            if mu in muscles:
                print(f"| {mu} | " + " | ".join(f"{x:.2f}" for x in frac[i]) + " |")
    print()
    print("## per case (muscle_side: Dice per slice)")
    print("| muscle | " + " | ".join(f"{m} {c}" for m in models for c in REAL_SLICES) + " |")
    print("|---" * (len(models) * len(REAL_SLICES) + 1) + "|")
    for side in ("R", "L"):
        for mu in muscles:
            cells = []
            for m in models:
                for c in REAL_SLICES:
                    r = [x for x in slice_rows if x["model"] == m and x["case"] == c and x["muscle"] == mu
                         and x["side"] == side]
                    cells.append(f"{r[0]['dice']:.3f}" if r else "-")
            print(f"| {mu}_{side} | " + " | ".join(cells) + " |")
    t_slices = time.time() - t0
    if not args.skip_volumes:
        plaus = []
        for vol, (_, what) in REAL_VOLUMES.items():
            image = load_real_volume(data, vol)
            for name, seg in segs.items():
                labels, rows = volume_plausibility(seg, image, vol)
                plaus += [{"model": name, **r} for r in rows]
                nz = image.to_ras().shape[2]
                zs = list(range(nz)) if nz <= 12 else list(range(1, nz, 4))
                title = (f"{name} {version[name]} on {vol} ({what}); RAS view: anterior up, subject's right on "
                         f"the image right; slices inferior to superior")
                write_bytes_atomic(out / f"overlay_{vol}_{Path(name).name.replace(' +', '+')}.png", overlay_png(image, labels, zs, title, anat))
        write_text_atomic(out / "real_plausibility.tsv", _tsv(plaus))
        print()
        print("# anatomical plausibility on the unlabelled real volumes (alsseg.seg.plausibility; "
              "PASS/FAIL and the number behind it)")
        print("| volume | leg | check | " + " | ".join(models) + " |")
        print("|---" * (len(models) + 3) + "|")
        for vol in REAL_VOLUMES:
            for side in ("R", "L"):
                for chk in CHECKS:
                    cells = []
                    for m in models:
                        r = [x for x in plaus if x["model"] == m and x["volume"] == vol and x["leg"] == side
                             and x["check"] == chk]
                        cells.append("-" if not r else f"{'PASS' if r[0]['passed'] else 'FAIL'} "
                                     f"{r[0]['value']:.3g} {r[0]['unit']} ({r[0]['detail']})")
                    print(f"| {vol} | {side} | {chk} | " + " | ".join(cells) + " |")
        print()
        print("| model | checks passed |")
        print("|---|---|")
        for m in models:
            sel = [x for x in plaus if x["model"] == m]
            print(f"| {m} | {sum(x['passed'] for x in sel)} of {len(sel)} |")
    print()
    print(f"# machine: {machine()}, torch threads {args.threads}; slices {t_slices:.0f} s, total "
          f"{time.time() - t0:.0f} s; outputs in {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
