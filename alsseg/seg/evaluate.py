"""Segmentation quality per muscle and side: Dice, 95 % Hausdorff distance (mm), volume error.

Tidy output (one row per label) that goes straight into a DataFrame / TSV.
"""

from __future__ import annotations

import numpy as np

from alsseg.io.errors import InputError
from alsseg.io.nifti import Image
from alsseg.labels import Anatomy, load_anatomy


def _surface(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return mask & ~ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(3, 1), border_value=0)


def hd95_mm(a: np.ndarray, b: np.ndarray, spacing_mm) -> float:
    """Symmetric 95th-percentile surface distance between two bool masks, mm (NaN if one is empty)."""
    from scipy import ndimage

    if not a.any() or not b.any():
        return float("nan")
    sa, sb = _surface(a), _surface(b)
    da = ndimage.distance_transform_edt(~sb, sampling=spacing_mm)[sa]
    db = ndimage.distance_transform_edt(~sa, sampling=spacing_mm)[sb]
    return float(np.percentile(np.concatenate([da, db]), 95))


def evaluate_labels(pred: Image, gt: Image, anatomy: Anatomy | None = None, *, hd: bool = True) -> list[dict]:
    """Per-label metrics of a predicted label map against ground truth.

    Parameters
    ----------
    pred, gt : 3-D label maps on the same grid (side-specific ids).

    Returns
    -------
    list of dict rows: ``label, muscle, side, dice, hd95_mm, volume_pred_ml, volume_true_ml,
    volume_error_ml, volume_error_pct``.

    Raises
    ------
    InputError
        grids differ, or a map holds ids outside the label table.
    """
    anatomy = anatomy or load_anatomy()
    if pred.shape[:3] != gt.shape[:3] or not np.allclose(pred.affine, gt.affine, atol=1e-3):
        raise InputError(pred.path, f"grid {pred.shape} does not match the ground truth {gt.path} grid {gt.shape}")
    p = np.rint(pred.data).astype(np.int64)
    g = np.rint(gt.data).astype(np.int64)
    for arr, img in ((p, pred), (g, gt)):
        bad = sorted(set(np.unique(arr).tolist()) - anatomy.valid_ids())
        if bad:
            raise InputError(img.path, f"label value(s) {bad[:10]} are not in the {anatomy.name} label table")
    spacing = gt.spacing_mm
    voxel_ml = float(np.prod(spacing)) / 1000.0
    rows = []
    for lab in anatomy.labels:
        a, b = p == lab.id, g == lab.id
        na, nb = int(a.sum()), int(b.sum())
        if na == 0 and nb == 0:
            continue
        dice = 2.0 * int((a & b).sum()) / (na + nb)
        vt, vp = nb * voxel_ml, na * voxel_ml
        rows.append({"label": lab.id, "muscle": lab.abbrev, "side": lab.side, "dice": round(dice, 4),
                     "hd95_mm": round(hd95_mm(a, b, spacing), 2) if hd else float("nan"),
                     "volume_pred_ml": round(vp, 2), "volume_true_ml": round(vt, 2),
                     "volume_error_ml": round(vp - vt, 2),
                     "volume_error_pct": round(100.0 * (vp - vt) / vt, 2) if vt else float("nan")})
    return rows


def rows_to_tsv(rows: list[dict]) -> str:
    """Rows → TSV text (header from the first row's keys; ``n/a`` for NaN, as BIDS wants)."""
    if not rows:
        return "label\tmuscle\tside\tdice\thd95_mm\tvolume_pred_ml\tvolume_true_ml\tvolume_error_ml\tvolume_error_pct\n"
    keys = list(rows[0])
    lines = ["\t".join(keys)]
    for r in rows:
        lines.append("\t".join("n/a" if isinstance(r[k], float) and np.isnan(r[k]) else str(r[k]) for k in keys))
    return "\n".join(lines) + "\n"


#: label value of pixels a manual outline leaves undecided (excluded from prediction and truth).
IGNORE_ID = 255


def slice_dice_rows(pred: Image, gt: Image, anatomy: Anatomy | None = None, *, case: str = "",
                    unscored: tuple[str, ...] = (), ignore_id: int = IGNORE_ID) -> list[dict]:
    """Dice per label and axial slice against manual outlines with an ignore label.

    Rules: pixels where the truth is ``ignore_id`` are removed from both maps; muscles in
    ``unscored`` (e.g. ``("TP",)`` where it is not outlined) get no row; a label is scored in a
    slice when the truth or the prediction holds it there (Dice 0 when only one does), and
    skipped when neither does.

    Parameters
    ----------
    pred, gt : label maps ``(X, Y, Z)`` on the same grid; slices are the third voxel axis.
    case : name written into every row.

    Returns
    -------
    list of dict rows ``case, slice, label, muscle, side, dice, n_pred, n_true, n_both, n_ignored``
    (pixel counts after removing the ignored pixels).

    Raises
    ------
    InputError
        grids differ, or a map holds ids outside the label table (``ignore_id`` allowed in ``gt``).
    """
    anatomy = anatomy or load_anatomy()
    if pred.shape[:3] != gt.shape[:3] or not np.allclose(pred.affine, gt.affine, atol=1e-3):
        raise InputError(pred.path, f"grid {pred.shape} does not match the ground truth {gt.path} grid {gt.shape}")
    p = np.rint(pred.data).astype(np.int64)
    g = np.rint(gt.data).astype(np.int64)
    for arr, img, extra in ((p, pred, set()), (g, gt, {ignore_id})):
        bad = sorted(set(np.unique(arr).tolist()) - anatomy.valid_ids() - extra)
        if bad:
            raise InputError(img.path, f"label value(s) {bad[:10]} are not in the {anatomy.name} label table")
    rows = []
    for z in range(g.shape[2]):
        keep = g[:, :, z] != ignore_id
        ps, gs = p[:, :, z][keep], g[:, :, z][keep]
        for lab in anatomy.labels:
            if lab.abbrev in unscored:
                continue
            a, b = ps == lab.id, gs == lab.id
            na, nb = int(a.sum()), int(b.sum())
            if na == 0 and nb == 0:
                continue
            both = int((a & b).sum())
            rows.append({"case": case, "slice": z, "label": lab.id, "muscle": lab.abbrev, "side": lab.side,
                         "dice": round(2.0 * both / (na + nb), 4), "n_pred": na, "n_true": nb, "n_both": both,
                         "n_ignored": int((~keep).sum())})
    return rows


def pool_dice(rows: list[dict], muscles: list[str]) -> dict[str, dict]:
    """Per-muscle Dice pooled over legs, slices and cases.

    ``mean`` is the mean of the per-case Dice (one case = one muscle, leg and slice: the
    headline figure); ``summed`` is ``2 Σ n_both / Σ (n_pred + n_true)`` over the same cases
    (large cross-sections weigh more); ``min`` the worst case; ``n`` the number of cases.
    Muscles without a row get NaN and ``n = 0``.
    """
    out = {}
    for m in muscles:
        sel = [r for r in rows if r["muscle"] == m]
        if not sel:
            out[m] = {"mean": float("nan"), "summed": float("nan"), "min": float("nan"), "n": 0}
            continue
        d = [r["dice"] for r in sel]
        den = sum(r["n_pred"] + r["n_true"] for r in sel)
        out[m] = {"mean": float(np.mean(d)), "summed": 2.0 * sum(r["n_both"] for r in sel) / den if den else float("nan"),
                  "min": float(np.min(d)), "n": len(sel)}
    return out
