"""Overlay figure for a bundle's model card: its prediction on the real 3 T MESE scan at echo 1.

Reads ``../shared/data/mese-leg-3t`` (17 enhanced multi-frame DICOM files, one per echo) with
``alsseg.io.load_mese``, segments echo 1 with the bundle, and draws every slice with the labels
outlined, plus a few held-out synthetic cases (image | truth | prediction).

    python training/figure_overlay.py --model lowerleg-unet --out models/lowerleg-unet/docs/overlay_mese_echo1.png \
        [--compare OTHER_BUNDLE]

Also prints the volume of every label found (ml; a voxel is the grid spacing, gaps included) and, with
``--compare``, the other bundle's volumes and the Dice between the two predictions: the scan has
no manual reference, so this is how two models are compared on it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lowerleg-unet")
    ap.add_argument("--scan", default=str(REPO.parent / "shared" / "data" / "mese-leg-3t"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--side", default=None, choices=("R", "L"))
    ap.add_argument("--compare", help="another bundle: print its label volumes and its agreement with --model")
    ap.add_argument("--mirror-tta", action=argparse.BooleanOptionalAction, default=True,
                    help="both bundles predict with mirror test-time augmentation (default on, as alsseg segment)")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from alsseg.io.atomic import atomic_path
    from alsseg.io.series import load_mese
    from alsseg.seg.infer import Segmenter
    from alsseg.seg.overlay import label_rgba

    seg = Segmenter.from_bundle(args.model, mirror_tta=args.mirror_tta)
    mese = load_mese(args.scan)
    pred = seg.predict(mese.image, single_leg_side=args.side)
    img = mese.image.with_data(mese.image.data[..., 0]).to_ras()
    pred_ras = pred.to_ras()
    lab = pred_ras.data
    Z = img.shape[2]
    ncol = (Z + 1) // 2
    aspect = img.shape[1] / img.shape[0]
    fig, axes = plt.subplots(2, ncol, figsize=(4.0 * ncol, 2 * 4.0 * aspect + 1.0))
    for z, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if z >= Z:
            continue
        sl = img.data[:, :, z].T[::-1]
        ax.imshow(sl, cmap="gray", vmax=np.percentile(img.data, 99.5))
        ax.imshow(label_rgba(lab[:, :, z].T[::-1], seg.anatomy))
        ax.set_title(f"slice {z + 1}", fontsize=9)
    found = sorted(set(np.unique(lab).tolist()) - {0})
    names = ", ".join(seg.anatomy.label_by_id(i).name for i in found)
    how = "mirror TTA" if args.mirror_tta else "no TTA"
    fig.suptitle(f"{args.model} ({how}) on the real 3 T MESE scan (echo 1, TE 11 ms; RAS view, anterior up, "
                 f"subject's right on the image right)\nlabels found: {names}", fontsize=10)
    fig.tight_layout()
    out = Path(args.out)
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=80)
    out.chmod(0o644)
    print(f"{out}: {len(found)} labels ({names})")
    # per-label volumes (and agreement) by the project's own metrics; "truth" is the other bundle
    from alsseg.seg.evaluate import evaluate_labels

    other = (Segmenter.from_bundle(args.compare, mirror_tta=args.mirror_tta).predict(mese.image, single_leg_side=args.side).to_ras()
             if args.compare else pred_ras)
    print("| label | " + " | ".join([f"{args.model} ml"] + ([f"{args.compare} ml", "Dice between"] if args.compare else []))
          + " |")
    for r in evaluate_labels(pred_ras, other, seg.anatomy, hd=False):
        cells = [f"{r['volume_pred_ml']:.1f}"]
        if args.compare:
            cells += [f"{r['volume_true_ml']:.1f}", f"{r['dice']:.3f}"]
        print(f"| {r['muscle']}_{r['side']} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
