"""The model card's "known failure modes" figure: where a bundle goes wrong on real scans.

Panels are chosen by rule from the bundle's own results, never by hand, so the figure shows the
current model's failures whatever they are:

* the three worst muscle-and-leg cases on the outlined real slices (lowest Dice): manual outline
  beside the model's, on that leg;
* the unlabelled 3-D GRE (ankle to knee): the most distal and the most proximal slice the model
  labels, and the mid-calf slice where soleus takes the largest share of the leg's labels;
* the real MESE echo 1: the slice and leg where TA is smallest against EDL.

    python training/figure_failures.py --model lowerleg-unet --out models/lowerleg-unet/docs/failure_modes.png \
        --slices-out models/lowerleg-unet/docs/real_slices_manual_vs_model.png

``--slices-out`` also draws each outlined real slice whole: manual outlines beside the model's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _leg_crop(lab2d: np.ndarray, side: str, anatomy, margin: int = 12) -> tuple[slice, slice]:
    """Index window ``(x, y)`` around one leg's labels of a RAS slice (whole slice if none)."""
    ids = [anatomy.label_id(m.abbrev, side) for m in anatomy.muscles]
    ij = np.argwhere(np.isin(lab2d, ids))
    if ij.size == 0:
        return slice(None), slice(None)
    lo, hi = ij.min(0) - margin, ij.max(0) + margin
    return slice(max(0, lo[0]), hi[0] + 1), slice(max(0, lo[1]), hi[1] + 1)


def _manual(truth) -> np.ndarray:
    """Manual outlines on the RAS grid as int64 labels, the ignore id (255) shown as background."""
    t = truth.to_ras().data
    return np.where(t == 255, 0, t).astype(np.int64)


def _show(ax, img2d: np.ndarray, lab2d: np.ndarray | None, anatomy, title: str, vmax: float) -> None:
    from alsseg.seg.overlay import label_rgba

    ax.imshow(img2d.T[::-1], cmap="gray", vmin=0, vmax=vmax)
    if lab2d is not None:
        ax.imshow(label_rgba(lab2d.T[::-1], anatomy))
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def _gre_panels(seg, image, anatomy) -> list[tuple]:
    """(title, image slice, label slice) for the GRE's distal end, proximal end and mid-calf."""
    img, lab = image.to_ras(), seg.predict(image).to_ras()
    sol = {anatomy.label_id("SOL", s) for s in ("R", "L")}
    labelled = np.flatnonzero((lab.data > 0).any(axis=(0, 1)))
    if labelled.size == 0:
        return []
    z_lo, z_hi = int(labelled[0]), int(labelled[-1])
    mid = labelled[(labelled > z_lo + 0.3 * (z_hi - z_lo)) & (labelled < z_lo + 0.7 * (z_hi - z_lo))]
    share = [np.isin(lab.data[:, :, z], list(sol)).sum() / max(1, (lab.data[:, :, z] > 0).sum()) for z in mid]
    z_mid = int(mid[int(np.argmax(share))]) if mid.size else z_lo
    body = np.argwhere(img.data > 0.2 * np.percentile(img.data, 99))
    lo, hi = body.min(0), body.max(0)
    xy = (slice(lo[0], hi[0] + 1), slice(lo[1], hi[1] + 1))
    return [(f"GRE slice {z_lo} (most distal labelled)", img.data[xy + (z_lo,)], lab.data[xy + (z_lo,)]),
            (f"GRE slice {z_mid}: soleus {max(share) if share else 0:.0%} of labels", img.data[xy + (z_mid,)],
             lab.data[xy + (z_mid,)]),
            (f"GRE slice {z_hi} (most proximal labelled)", img.data[xy + (z_hi,)], lab.data[xy + (z_hi,)])]


def _mese_panel(seg, image, anatomy) -> tuple:
    """(title, image slice, label slice) of the MESE slice and leg with the smallest TA/EDL area ratio."""
    img, lab = image.to_ras(), seg.predict(image).to_ras()
    best = None
    for side in ("R", "L"):
        ta, edl = anatomy.label_id("TA", side), anatomy.label_id("EDL", side)
        for z in range(lab.shape[2]):
            a_ta, a_edl = (lab.data[:, :, z] == ta).sum(), (lab.data[:, :, z] == edl).sum()
            if a_edl > 0 and (best is None or a_ta / a_edl < best[0]):
                best = (a_ta / a_edl, side, z)
    ratio, side, z = best if best else (float("nan"), "R", 0)
    crop = _leg_crop(lab.data[:, :, z], side, anatomy)
    return (f"MESE slice {z}, {side} leg: TA/EDL area {ratio:.2f}", img.data[crop + (z,)], lab.data[crop + (z,)])


def _slices_figure(seg, predicted: dict, out: Path) -> None:
    """Every outlined real slice whole: manual outlines | the model's (TP is not outlined);
    ``predicted``: :func:`alsseg.seg.realdata.predict_real_slices` of ``seg``."""
    import matplotlib.pyplot as plt

    from alsseg.io.atomic import atomic_path

    fig, axes = plt.subplots(len(predicted), 2, figsize=(10.0, 3.2 * len(predicted)), squeeze=False)
    for row, (name, (image, truth, pred)) in zip(axes, predicted.items()):
        img = image.to_ras().data[:, :, 0]
        manual = _manual(truth)[:, :, 0]
        vmax = float(np.percentile(img, 99.5)) or 1.0
        _show(row[0], img, manual, seg.anatomy, f"{name}: manual outlines", vmax)
        _show(row[1], img, pred.to_ras().data[:, :, 0], seg.anatomy,
              f"{name}: {seg.metadata.get('name', 'model')} {seg.metadata.get('version', '')}"
              f"{' (mirror TTA)' if seg.mirror_tta else ''}", vmax)
    fig.tight_layout()
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=70)
    out.chmod(0o644)
    plt.close(fig)
    print(f"wrote {out}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lowerleg-unet", help="bundle name or path")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="the shared real data folder")
    ap.add_argument("--out", required=True, help="PNG to write")
    ap.add_argument("--slices-out", help="also a PNG of every outlined real slice, manual beside model")
    ap.add_argument("--mirror-tta", action=argparse.BooleanOptionalAction, default=True,
                    help="predict as alsseg segment does by default, with mirror test-time augmentation")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from alsseg.io.atomic import atomic_path
    from alsseg.seg.infer import Segmenter
    from alsseg.seg.realdata import (
        UNSCORED_ON_SLICES,
        load_real_volume,
        predict_real_slices,
        score_real_slices,
    )

    seg = Segmenter.from_bundle(args.model, mirror_tta=args.mirror_tta)
    anatomy, data = seg.anatomy, Path(args.data)
    predicted = predict_real_slices(seg, data / "real-calf-slices")  # each slice predicted once, used thrice
    rows = [r for r in score_real_slices(seg, data / "real-calf-slices", predicted)
            if r["muscle"] not in UNSCORED_ON_SLICES]
    worst = sorted((r for r in rows if np.isfinite(r["dice"])), key=lambda r: r["dice"])[:3]
    panels = []
    for r in worst:
        image, truth, pred = predicted[r["case"]]
        img, pred = image.to_ras(), pred.to_ras()
        t = _manual(truth)
        crop = _leg_crop(t[:, :, 0], r["side"], anatomy) + (0,)
        name = f"{r['case']} {r['muscle']}_{r['side']}"
        panels.append([(f"{name}: manual", img.data[crop], t[crop]),
                       (f"{name}: model (Dice {r['dice']:.2f})", img.data[crop], pred.data[crop])])
    gre = _gre_panels(seg, load_real_volume(data, "gre-calf-3d"), anatomy)
    panels.append(gre[:2])
    panels.append([gre[2], _mese_panel(seg, load_real_volume(data, "mese-leg-3t"), anatomy)])
    fig, axes = plt.subplots(len(panels), 2, figsize=(8.0, 3.6 * len(panels)), squeeze=False)
    for row, pair in zip(axes, panels):
        for ax, (title, im, lb) in zip(row, pair):
            _show(ax, im, lb, anatomy, title, float(np.percentile(im, 99.5)) or 1.0)
    version = seg.metadata.get("version", "?")
    how = "mirror TTA" if args.mirror_tta else "no TTA"
    fig.suptitle(f"{args.model} {version} ({how}): known failure modes on real scans\n(chosen by rule; RAS view, "
                 "anterior up, subject's right on the image right)", fontsize=9)
    fig.tight_layout()
    out = Path(args.out)
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=75)
    out.chmod(0o644)
    if args.slices_out:
        _slices_figure(seg, predicted, Path(args.slices_out))
    for r in worst:
        print(f"worst real-slice case: {r['case']} {r['muscle']}_{r['side']} Dice {r['dice']:.3f}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
