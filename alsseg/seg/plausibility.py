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
#: a leg smaller than this in a slice (mm²) gets no envelope.
MIN_TISSUE_MM2 = 100.0
#: rays per leg and slice, and how far in from the skin the fat layer is looked for (mm).
N_RAYS = 180
FAT_SEARCH_MM = 25.0
#: the fat level of a ray is its brightest point this far in from the skin (mm).
FAT_PEAK_MM = 5.0
#: boundary depths are median-filtered over this many neighbouring rays.
RAY_SMOOTH = 9

CHECKS = ("one_component", "ta_gt_edl", "gm_medial_gl", "per_lateral", "tp_deep", "not_in_fat", "side")


def _disk(radius_vox: float) -> np.ndarray:
    r = max(1, round(float(radius_vox)))
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


def _leg_envelope(img2d: np.ndarray, leg2d: np.ndarray, spacing_xy) -> np.ndarray:
    """Envelope of one leg in one slice (see :func:`muscle_envelope`): ``(X, Y)`` bool."""
    from scipy import ndimage
    from skimage.draw import polygon

    step = 0.5 * min(spacing_xy)  # mm per sample along a ray
    ij = np.argwhere(leg2d)
    c = ij.mean(axis=0)
    r_max = float(np.sqrt((((ij - c) * spacing_xy) ** 2).sum(1)).max()) + 2 * step
    r = np.arange(0.0, r_max, step)  # mm from the centroid
    theta = np.linspace(0, 2 * np.pi, N_RAYS, endpoint=False)
    pi = c[0] + np.cos(theta)[:, None] * r[None] / spacing_xy[0]
    pj = c[1] + np.sin(theta)[:, None] * r[None] / spacing_xy[1]
    inside = ndimage.map_coordinates(leg2d.astype(np.float32), [pi, pj], order=0) > 0.5
    prof = ndimage.uniform_filter1d(ndimage.map_coordinates(img2d, [pi, pj], order=1), 3, axis=1)
    edge = np.where(inside.all(1), len(r) - 1, np.argmin(inside, axis=1) - 1)  # last sample inside
    depth = np.empty(N_RAYS)
    skin, search = round(float(SKIN_MM / step)), round(float(FAT_SEARCH_MM / step))
    peak_win = round(float(FAT_PEAK_MM / step))
    for k in range(N_RAYS):
        e = int(edge[k])
        ray = prof[k, :e + 1][::-1]  # from the body edge inwards
        if len(ray) <= skin + 2:
            depth[k] = r[e]
            continue
        lo = min(len(ray) - 1, skin)
        hi = min(len(ray), skin + peak_win + 1)
        peak = lo + int(np.argmax(ray[lo:hi]))
        ref = float(np.median(ray[peak:]))
        below = np.flatnonzero(ray[peak:] < 0.5 * (ray[peak] + ref))
        d = peak + int(below[0]) if below.size and below[0] <= search else skin
        depth[k] = r[max(e - d, 0)]
    depth = ndimage.median_filter(depth, size=RAY_SMOOTH, mode="wrap")
    rr, cc = polygon(c[0] + np.cos(theta) * depth / spacing_xy[0], c[1] + np.sin(theta) * depth / spacing_xy[1],
                     shape=leg2d.shape)
    env = np.zeros(leg2d.shape, bool)
    env[rr, cc] = True
    return env & leg2d


def muscle_envelope(image: Image, midline_x_mm: float) -> np.ndarray:
    """Where muscle can be: ``(X, Y, Z)`` bool on the RAS grid of ``image`` (3-D).

    Rule (bright fat: T1-/PD-weighted, gradient-echo or early-echo images), per slice and leg
    (the largest body component on each side of the midline; body = Otsu mask, holes filled):
    ``N_RAYS`` rays from the leg's centroid; along each, walking in from the body edge past
    ``SKIN_MM`` of skin, the brightest point of the next ``FAT_PEAK_MM`` is the fat level, and
    the envelope boundary is where the intensity first falls below halfway between that peak
    and the median of the rest of the ray (muscle and bone); where it does not fall within
    ``FAT_SEARCH_MM`` of the peak the boundary is put ``SKIN_MM`` in (no verdict on that ray). The boundary depths are
    median-filtered over ``RAY_SMOOTH`` neighbouring rays and the polygon they span is the
    envelope. Comparing each ray with itself makes the rule blind to smooth coil shading.
    """
    from scipy import ndimage

    from alsseg.seg.preprocess import body_mask

    data = image.data.astype(np.float32)
    spacing_xy = np.array(image.spacing_mm[:2])
    body = body_mask(data)
    X, _Y, Z = data.shape
    xs = _world(image.affine, np.stack([np.arange(X), np.zeros(X), np.zeros(X)], 1))[:, 0]
    sides = [xs > midline_x_mm, xs <= midline_x_mm]
    env = np.zeros(data.shape, bool)
    for z in range(Z):
        filled = ndimage.binary_fill_holes(body[:, :, z])
        for cols in sides:
            comp, n = ndimage.label(filled & cols[:, None])
            if n == 0:
                continue
            sizes = np.bincount(comp.ravel())[1:]
            leg = comp == 1 + int(np.argmax(sizes))
            if leg.sum() * float(np.prod(spacing_xy)) < MIN_TISSUE_MM2:
                continue
            env[:, :, z] |= _leg_envelope(data[:, :, z], leg, spacing_xy)
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
        for lid in ids.values():
            mm = data == lid
            for z in np.flatnonzero(mm.any(axis=(0, 1))).tolist():
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
        tp, behind_ta = [], []
        for z in sorted(set(cen["TP"]) & set(cen["SOL"])):
            off = cen["TP"][z][1] - cen["SOL"][z][1]
            if z in cen["TA"]:
                behind_ta.append(cen["TA"][z][1] - cen["TP"][z][1])
                off = min(off, behind_ta[-1])
            tp.append(off)
        ok, v, d = _worst_offset(tp, n_slices, cen, ("TP", "SOL"))
        if tp:
            d += (f"; TP in front of SOL by >= {min(cen['TP'][z][1] - cen['SOL'][z][1] for z in sorted(set(cen['TP']) & set(cen['SOL']))):.1f} mm"
                  + (f", behind TA by >= {min(behind_ta):.1f} mm" if behind_ta else ""))
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
