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
