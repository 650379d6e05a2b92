"""The real-data benchmark: manual outlines on real calf slices and plausibility on real volumes.

The data are the project's shared real scans (``../shared/data``, see its README); they are for
validation only: never train or tune on them.

* ``real-calf-slices/``: ``t1w_a``, ``t1w_b``, ``pd`` one-slice NIfTIs with ``*_dseg.nii.gz``
  outlines of six muscles per leg (TP not outlined, 255 = ignore);
* ``mese-leg-3t/``: a 17-echo MESE DICOM series (echo 1 is used);
* ``gre-calf-3d/0028-dix3d_TR23_448m_fa05_460.nii.gz``: a 3-D GRE (4.60 ms, near in-phase),
  ankle to knee.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alsseg.io.nifti import Image, load_nifti
from alsseg.seg.evaluate import IGNORE_ID, pool_dice, slice_dice_rows
from alsseg.seg.plausibility import check_plausibility

#: the outlined real slices, in table order.
REAL_SLICES = ("t1w_a", "t1w_b", "pd")
#: muscles not outlined on the real slices (never scored there).
UNSCORED_ON_SLICES = ("TP",)
#: the unlabelled real volumes: name -> (path under the shared data folder, what is used).
REAL_VOLUMES = {
    "mese-leg-3t": ("mese-leg-3t", "MESE echo 1 (TE 11 ms), 8 slices 7 mm / 37 mm apart"),
    "gre-calf-3d": ("gre-calf-3d/0028-dix3d_TR23_448m_fa05_460.nii.gz", "3-D GRE TE 4.60 ms, ankle to knee"),
}


def predict_real_slices(segmenter, folder: str | Path) -> dict[str, tuple[Image, Image, Image]]:
    """``{name: (image, manual outlines, segmenter.predict(image))}`` for each outlined slice in
    ``folder`` (in :data:`REAL_SLICES` order), each image on its stored grid."""
    folder = Path(folder)
    out = {}
    for name in REAL_SLICES:
        image = load_nifti(folder / f"{name}.nii.gz", ndim=3)
        truth = load_nifti(folder / f"{name}_dseg.nii.gz", ndim=3, dtype=None)
        out[name] = (image, truth, segmenter.predict(image))
    return out


def score_real_slices(segmenter, folder: str | Path,
                      predicted: dict[str, tuple[Image, Image, Image]] | None = None) -> list[dict]:
    """Dice rows (see :func:`~alsseg.seg.evaluate.slice_dice_rows`) of ``segmenter.predict`` on
    each outlined slice in ``folder``; TP unscored, 255 ignored; ``case`` is the slice's name.
    ``predicted``: :func:`predict_real_slices`'s result, when the caller already has it."""
    predicted = predicted if predicted is not None else predict_real_slices(segmenter, folder)
    rows = []
    for name, (_, truth, pred) in predicted.items():
        rows += slice_dice_rows(pred, truth, segmenter.anatomy, case=name, unscored=UNSCORED_ON_SLICES,
                                ignore_id=IGNORE_ID)
    return rows


def slice_summary(rows: list[dict], muscles: list[str]) -> dict:
    """``{"per_muscle": pool_dice(...), "mean": mean over muscles of the pooled mean, "min": worst
    muscle's pooled mean, "worst_case": the row with the lowest Dice}``."""
    pooled = pool_dice(rows, muscles)
    means = [pooled[m]["mean"] for m in muscles]
    worst = min(rows, key=lambda r: r["dice"]) if rows else None
    return {"per_muscle": pooled, "mean": float(np.mean(means)), "min": float(np.min(means)), "worst_case": worst}


def pooled_confusion(predicted: dict[str, tuple[Image, Image, Image]], anatomy) -> tuple[list[str], np.ndarray]:
    """Where each outlined muscle's pixels went, pooled over the slices and both legs.

    ``predicted``: :func:`predict_real_slices`'s result. Returns ``(columns, fractions)``:
    columns ``["bg", TA, EDL, ...]`` (side-agnostic), and ``fractions`` ``(n_muscles, 1 +
    n_muscles)`` float — row ``i``: the fraction of muscle ``i + 1``'s manual pixels the model
    labelled as each column (NaN where the muscle is never outlined); ignored (255) pixels are left out.
    """
    from alsseg.seg.dataset import ignore_label, to_side_agnostic

    n = anatomy.n_muscles
    counts = np.zeros((n + 1, n + 1))
    for _, truth, pred in predicted.values():
        t = to_side_agnostic(np.rint(truth.data), anatomy, truth.path)  # 255 -> the ignore class
        p = to_side_agnostic(np.rint(pred.data), anatomy)  # predict() answers on the input's grid
        keep = t != ignore_label(anatomy)
        np.add.at(counts, (t[keep].astype(np.int64), p[keep].astype(np.int64)), 1)
    rows = counts[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = rows / rows.sum(axis=1, keepdims=True)
    return ["bg"] + [m.abbrev for m in anatomy.muscles], fractions


def paired_difference(rows_a: list[dict], rows_b: list[dict], n_boot: int = 5000, seed: int = 0,
                      tie: float = 0.005) -> dict:
    """Model B minus model A on the per-case Dice both scored (same ``case``, ``muscle``, ``side``).

    Returns ``{"n", "mean", "lo", "hi", "better", "worse"}``: the mean paired difference, its 95 %
    percentile-bootstrap interval (``n_boot`` resamples of the cases, generator ``seed``), and how
    many cases B beats or loses by more than ``tie``.
    """
    a = {(r["case"], r["muscle"], r["side"]): r["dice"] for r in rows_a}
    b = {(r["case"], r["muscle"], r["side"]): r["dice"] for r in rows_b}
    keys = sorted(k for k in a.keys() & b.keys() if np.isfinite(a[k]) and np.isfinite(b[k]))
    d = np.array([b[k] - a[k] for k in keys])
    if d.size == 0:
        raise ValueError("no case scored by both models")
    boot = np.random.default_rng(seed).choice(d, size=(n_boot, d.size)).mean(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"n": int(d.size), "mean": float(d.mean()), "lo": float(lo), "hi": float(hi),
            "better": int((d > tie).sum()), "worse": int((d < -tie).sum())}


def load_real_volume(shared_data: str | Path, name: str) -> Image:
    """3-D image of an unlabelled real volume (:data:`REAL_VOLUMES`): MESE echo 1 through
    :func:`alsseg.io.load_mese`, the GRE through :func:`alsseg.io.load_nifti`."""
    path = Path(shared_data) / REAL_VOLUMES[name][0]
    if name == "mese-leg-3t":
        from alsseg.io.series import load_mese

        mese = load_mese(path)
        return mese.image.with_data(mese.image.data[..., 0])
    return load_nifti(path, ndim=3)


def volume_plausibility(segmenter, image: Image, name: str) -> tuple[Image, list[dict]]:
    """``(labels, rows)``: ``segmenter.predict`` on a real volume and its plausibility rows."""
    labels = segmenter.predict(image)
    return labels, check_plausibility(image, labels, segmenter.anatomy, volume=name)
