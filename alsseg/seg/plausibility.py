"""Anatomical plausibility of a lower-leg label map where no manual outline exists.

Every check works per leg on the RAS view of the label map and its image, in world
coordinates (mm): "medial" is towards the body midline along RAS x, "anterior" is +y. The
midline comes from the image (the gap between the two legs of the body mask), never from the
labels, so a left/right mix-up of the labels is seen.

Checks (one row each per leg; names as in :data:`CHECKS`):

``one_component``
    in every slice each muscle is one 2-D component (8-connectivity); a component is a speck
    and not counted when its area is below ``SPECK_AREA_MM2`` or below ``SPECK_FRACTION`` of
    that muscle's area in the slice. Value: slice-muscle pairs with more than one component.
``ta_gt_edl``
    TA volume > EDL volume. Value: TA / EDL volume ratio.
``gm_medial_gl``
    in every slice where both hold at least ``MIN_AREA_MM2``, the GM centroid is medial to the
    GL centroid. Value: the smallest medial offset GM − GL, mm.
``per_lateral``
    PER centroid lateral to both the TA and the SOL centroid (slices where all three hold
    ``MIN_AREA_MM2``). Value: the smallest lateral offset, mm.
``tp_deep``
    TP between the bones and SOL: TP centroid anterior to SOL's and posterior to TA's (TA
    where present). Value: the smallest of those anterior-posterior offsets, mm.
``not_in_fat``
    fraction of the leg's labelled voxels outside the muscle envelope (see
    :func:`muscle_envelope`) grown by ``FAT_TOLERANCE_MM``; passes below ``MAX_FAT_FRACTION``.
``side``
    fraction of the leg's labelled voxels on the wrong side of the body midline; passes at 0.
"""

from __future__ import annotations

import numpy as np

from alsseg.io.nifti import Image
from alsseg.labels import Anatomy, load_anatomy

#: a 2-D component smaller than this (mm²) is a speck, not a second piece of the muscle.
SPECK_AREA_MM2 = 20.0
#: ... or smaller than this fraction of the muscle's area in the slice.
SPECK_FRACTION = 0.05
#: centroid checks use slices where each muscle involved covers at least this area (mm²).
MIN_AREA_MM2 = 50.0
#: skin and the outer partial-volume rim peeled off the body before looking for muscle (mm).
SKIN_MM = 3.0
#: labels within this distance of the muscle envelope count as inside it (partial volume, mm).
FAT_TOLERANCE_MM = 2.0
#: the largest fraction of labelled voxels allowed outside the envelope.
MAX_FAT_FRACTION = 0.02
#: scale of the coil shading removed before the fat threshold (Gaussian sigma, mm).
BIAS_SIGMA_MM = 15.0
#: non-fat components smaller than this (mm²) are not muscle (vessels, skin folds).
MIN_TISSUE_MM2 = 100.0
#: gaps up to this width (mm) between muscle groups are bridged in the envelope.
BRIDGE_MM = 6.0

CHECKS = ("one_component", "ta_gt_edl", "gm_medial_gl", "per_lateral", "tp_deep", "not_in_fat", "side")


def _disk(radius_vox: float) -> np.ndarray:
    r = max(1, int(round(radius_vox)))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return xx ** 2 + yy ** 2 <= radius_vox ** 2 + 1e-6


def _world(affine: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    """World coordinates ``(n, 3)`` of voxel coordinates ``(n, 3)``."""
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def body_midline_x_mm(image: Image) -> float:
    """World x (mm) of the body midline: the centre of the widest gap between the legs.

    ``image`` is a 3-D image on a RAS-canonical grid. The body mask (Otsu, as in
    preprocessing) is projected on x; the midline is the centre of the longest run of columns
    without body between the first and last body column. Without such a gap (legs touching, one
    leg) the emptiest column of the central half is taken; with one leg that is not a midline,
    so callers should not trust ``side`` then.
    """
    from alsseg.seg.preprocess import body_mask

    body = body_mask(image.data)
    occupancy = body.sum(axis=(1, 2)).astype(float)
    cols = np.flatnonzero(occupancy > 0.002 * occupancy.max())
    if cols.size == 0:
        return float(_world(image.affine, np.array([[(image.shape[0] - 1) / 2.0, 0, 0]]))[0, 0])
    lo, hi = int(cols[0]), int(cols[-1])
    empty = occupancy[lo:hi + 1] <= 0.002 * occupancy.max()
    best, start, run = None, None, 0
    for i, e in enumerate(np.append(empty, False)):
        if e:
            start = i if start is None else start
        elif start is not None:
            if i - start > run:
                run, best = i - start, lo + (start + i - 1) / 2.0
            start = None
    if best is None:
        q0, q1 = lo + (hi - lo) // 4, hi - (hi - lo) // 4
        best = float(q0 + np.argmin(occupancy[q0:q1 + 1]))
    cy, cz = (image.shape[1] - 1) / 2.0, (image.shape[2] - 1) / 2.0
    return float(_world(image.affine, np.array([[best, cy, cz]]))[0, 0])


def _flatten_bias(data: np.ndarray, body: np.ndarray, spacing_xy) -> np.ndarray:
    """Divide each slice by its body intensity smoothed over ``BIAS_SIGMA_MM`` (normalised
    convolution inside the body), so one threshold fits the whole slice despite coil shading."""
    from scipy import ndimage

    sigma = [BIAS_SIGMA_MM / s for s in spacing_xy] + [0.0]
    w = ndimage.gaussian_filter(body.astype(np.float32), sigma)
    num = ndimage.gaussian_filter(np.where(body, data, 0).astype(np.float32), sigma)
    return np.where(body, data / np.maximum(num / np.maximum(w, 1e-6), 1e-6), 0).astype(np.float32)


def _fat_threshold(values: np.ndarray) -> float:
    """Upper threshold of a 3-class Otsu (dark bone cortex and septa | muscle | bright fat)."""
    from skimage.filters import threshold_multiotsu

    if values.size < 10 or values.max() <= values.min():
        return float(values.max()) if values.size else 0.0
    return float(threshold_multiotsu(values, classes=3)[1])


def muscle_envelope(image: Image, midline_x_mm: float) -> np.ndarray:
    """Where muscle can be: ``(X, Y, Z)`` bool on the RAS grid of ``image`` (3-D).

    Rule, per slice and leg (the two sides of the midline): the body mask (Otsu) with holes
    filled, peeled by ``SKIN_MM``; the slice is divided by its smoothed body intensity (coil
    shading, sigma ``BIAS_SIGMA_MM``); inside the peeled body, voxels brighter than the upper threshold of a 3-class Otsu
    of its intensities (cortex and septa | muscle | fat) are fat (bright fat on T1-/PD-weighted and early-echo images); the remaining
    tissue in components of at least ``MIN_TISSUE_MM2``, closed over ``BRIDGE_MM`` gaps and with
    holes filled (bone marrow, intermuscular fat), is the envelope. Subcutaneous fat lies
    outside it.
    """
    from scipy import ndimage
    from alsseg.seg.preprocess import body_mask

    data = image.data.astype(np.float32)
    sx, sy = image.spacing_mm[:2]
    px_mm2 = sx * sy
    body = body_mask(data)
    data = _flatten_bias(data, body, (sx, sy))
    X, Y, Z = data.shape
    xs = _world(image.affine, np.stack([np.arange(X), np.zeros(X), np.zeros(X)], 1))[:, 0]
    sides = [xs > midline_x_mm, xs <= midline_x_mm]
    peel = _disk(SKIN_MM / min(sx, sy))
    bridge = _disk(BRIDGE_MM / 2.0 / min(sx, sy))
    env = np.zeros(data.shape, bool)
    for z in range(Z):
        inner = ndimage.binary_erosion(ndimage.binary_fill_holes(body[:, :, z]), peel)
        for cols in sides:
            leg = inner & cols[:, None]
            if leg.sum() * px_mm2 < MIN_TISSUE_MM2:
                continue
            vals = data[:, :, z][leg]
            thr = _fat_threshold(vals)
            tissue = leg & (data[:, :, z] <= thr)
            tissue = ndimage.binary_opening(tissue, np.ones((3, 3), bool))
            comp, n = ndimage.label(tissue, np.ones((3, 3), bool))
            if n == 0:
                continue
            areas = ndimage.sum(np.ones_like(comp), comp, index=np.arange(1, n + 1)) * px_mm2
            keep = np.isin(comp, 1 + np.flatnonzero(areas >= MIN_TISSUE_MM2))
            pad = bridge.shape[0]
            closed = ndimage.binary_closing(np.pad(keep, pad), bridge)[pad:-pad, pad:-pad] | keep
            env[:, :, z] |= ndimage.binary_fill_holes(closed) & leg
    return env


def _centroids(mask: np.ndarray, affine: np.ndarray, px_mm2: float) -> dict[int, np.ndarray]:
    """World centroid ``(3,)`` per slice of a bool ``(X, Y, Z)`` mask (slices >= MIN_AREA_MM2)."""
    out = {}
    for z in range(mask.shape[2]):
        ij = np.argwhere(mask[:, :, z])
        if len(ij) * px_mm2 >= MIN_AREA_MM2:
            c = ij.mean(axis=0)
            out[z] = _world(affine, np.array([[c[0], c[1], z]]))[0]
    return out


def _row(volume, leg, check, passed, value, unit, detail) -> dict:
    return {"volume": volume, "leg": leg, "check": check, "passed": bool(passed),
            "value": float(value), "unit": unit, "detail": detail}


def _worst_offset(pairs: list[float], n_slices: int, cen: dict, involved: tuple[str, ...]) -> tuple[bool, float, str]:
    if not pairs:
        have = ", ".join(f"{m} in {len(cen[m])}" for m in involved)
        return False, float("nan"), f"no slice holds all of them with >= {MIN_AREA_MM2:g} mm² ({have} slices)"
    ok = sum(p > 0 for p in pairs)
    return ok == len(pairs), float(min(pairs)), f"{ok} of {len(pairs)} slices (of {n_slices})"


def check_plausibility(image: Image, labels: Image, anatomy: Anatomy | None = None, *,
                       volume: str = "") -> list[dict]:
    """Run every check of :data:`CHECKS` on each leg found in ``labels``.

    Parameters
    ----------
    image : 3-D image the labels belong to (T1-/PD-weighted or early echo: fat bright).
    labels : 3-D side-specific label map on the same grid (any orientation).
    volume : name written into every row.

    Returns
    -------
    list of dict rows ``volume, leg, check, passed, value, unit, detail``; legs "R"/"L" in the
    order of :data:`alsseg.labels.SIDES` (a leg without any label gets no rows).
    """
    from scipy import ndimage

    anatomy = anatomy or load_anatomy()
    img, lab = image.to_ras(), labels.to_ras()
    if img.shape[:3] != lab.shape[:3]:
        raise ValueError(f"labels {lab.shape} are not on the image grid {img.shape}")
    affine = lab.affine
    data = np.rint(lab.data).astype(np.int64)
    sx, sy, sz = lab.spacing_mm
    px_mm2, vox_ml = sx * sy, sx * sy * sz / 1000.0
    midline = body_midline_x_mm(img)
    envelope = muscle_envelope(img, midline)
    grown = ndimage.binary_dilation(envelope, _disk(FAT_TOLERANCE_MM / min(sx, sy))[:, :, None])
    rows = []
    for side in ("R", "L"):
        ids = {m.abbrev: m.index + anatomy.side_offsets[side] for m in anatomy.muscles}
        leg = np.isin(data, list(ids.values()))
        if not leg.any():
            continue
        leg_xs = _world(affine, np.argwhere(leg).astype(float))[:, 0]
        leg_x = float(leg_xs.mean())
        medial = 1.0 if leg_x < midline else -1.0  # +1: medial is +x (a leg left of the midline)
        n_slices = int(leg.any(axis=(0, 1)).sum())
        # one component per muscle and slice
        split, total = 0, 0
        for m, lid in ids.items():
            mm = data == lid
            for z in np.flatnonzero(mm.any(axis=(0, 1))):
                comp, n = ndimage.label(mm[:, :, z], np.ones((3, 3), bool))
                areas = ndimage.sum(np.ones_like(comp), comp, index=np.arange(1, n + 1)) * px_mm2
                real = (areas >= SPECK_AREA_MM2) & (areas >= SPECK_FRACTION * areas.sum())
                total += 1
                split += int(real.sum() > 1)
        rows.append(_row(volume, side, "one_component", split == 0, split, "slice-muscles",
                         f"{split} of {total} slice-muscles split (specks < {SPECK_AREA_MM2:g} mm² "
                         f"or < {SPECK_FRACTION:.0%} of the muscle's slice area ignored)"))
        vol = {m: float((data == lid).sum()) * vox_ml for m, lid in ids.items()}
        ratio = vol["TA"] / vol["EDL"] if vol["EDL"] > 0 else float("inf") if vol["TA"] > 0 else float("nan")
        rows.append(_row(volume, side, "ta_gt_edl", vol["TA"] > vol["EDL"], ratio, "ratio",
                         f"TA {vol['TA']:.1f} ml, EDL {vol['EDL']:.1f} ml"))
        cen = {m: _centroids(data == lid, affine, px_mm2) for m, lid in ids.items()}
        gm = [medial * (cen["GM"][z][0] - cen["GL"][z][0]) for z in sorted(set(cen["GM"]) & set(cen["GL"]))]
        ok, v, d = _worst_offset(gm, n_slices, cen, ("GM", "GL"))
        rows.append(_row(volume, side, "gm_medial_gl", ok, v, "mm", d))
        per = [min(-medial * (cen["PER"][z][0] - cen["TA"][z][0]), -medial * (cen["PER"][z][0] - cen["SOL"][z][0]))
               for z in sorted(set(cen["PER"]) & set(cen["TA"]) & set(cen["SOL"]))]
        ok, v, d = _worst_offset(per, n_slices, cen, ("PER", "TA", "SOL"))
        rows.append(_row(volume, side, "per_lateral", ok, v, "mm", d))
        tp = []
        for z in sorted(set(cen["TP"]) & set(cen["SOL"])):
            off = cen["TP"][z][1] - cen["SOL"][z][1]
            if z in cen["TA"]:
                off = min(off, cen["TA"][z][1] - cen["TP"][z][1])
            tp.append(off)
        ok, v, d = _worst_offset(tp, n_slices, cen, ("TP", "SOL"))
        rows.append(_row(volume, side, "tp_deep", ok, v, "mm", d))
        out_fat = int((leg & ~grown).sum())
        frac = out_fat / int(leg.sum())
        rows.append(_row(volume, side, "not_in_fat", frac < MAX_FAT_FRACTION, frac, "fraction",
                         f"{out_fat} of {int(leg.sum())} labelled voxels > {FAT_TOLERANCE_MM:g} mm outside the "
                         f"muscle envelope (limit {MAX_FAT_FRACTION:.0%})"))
        want_right = side == "R"
        on_right = leg_xs > midline
        wrong = int((on_right != want_right).sum())
        rows.append(_row(volume, side, "side", wrong == 0, wrong / int(leg.sum()), "fraction",
                         f"{wrong} voxels on the wrong side of the midline x = {midline:.1f} mm"))
    return rows
