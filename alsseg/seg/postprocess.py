"""Post-processing of a side-agnostic prediction on the RAS grid.

1. **Legs and sides in world coordinates**: muscle voxels are projected along the slice axis;
   connected blobs of the (closed) projection are legs. With two legs of comparable size, each
   voxel goes to the nearest leg and the leg with the larger world x (RAS: +x = subject's right)
   is the right leg. With one leg, its side is the sign of its world x (scanner isocentre at
   x = 0) unless the caller says which side it is.
2. **Largest connected component** per muscle per leg, the rest becomes background: in 3-D
   where slices are at most ``MAX_CONNECTED_SLICE_SPACING_MM`` apart, else in each slice (far
   apart slices, e.g. 7 mm every 37 mm, do not touch: a muscle that moves between them would
   split into components of which only one survives).
3. **Holes filled** per slice inside each muscle (only background voxels are filled).
"""

from __future__ import annotations

import numpy as np

from alsseg.labels import Anatomy

# slices further apart than this (centre to centre, mm) are not treated as connected
MAX_CONNECTED_SLICE_SPACING_MM = 15.0


def split_legs(mask: np.ndarray, affine: np.ndarray, spacing_mm, single_leg_side: str | None = None):
    """Leg of every voxel.

    Parameters
    ----------
    mask : (X, Y, Z) bool, muscle voxels on the RAS-canonical grid.
    affine : (4, 4) voxel → world matrix of that grid.
    spacing_mm : voxel size (x, y, z), mm.
    single_leg_side : "R" or "L" to force the side when only one leg is found.

    Returns
    -------
    side_map : (X, Y) array of "R"/"L"/"" per in-plane position (str), sides of the legs found.
    """
    from scipy import ndimage

    X, Y = mask.shape[:2]
    proj = mask.any(axis=2)
    if not proj.any():
        return np.full((X, Y), "", dtype="<U1")
    r = max(1, round(float(5.0 / min(spacing_mm[:2]))))
    st = ndimage.iterate_structure(ndimage.generate_binary_structure(2, 1), r)
    closed = ndimage.binary_closing(np.pad(proj, r + 1), structure=st)[r + 1:-r - 1, r + 1:-r - 1] | proj
    comp, n = ndimage.label(closed)
    sizes = ndimage.sum(np.ones_like(comp), comp, index=np.arange(1, n + 1))
    order = np.argsort(sizes)[::-1] + 1
    legs = [order[0]]
    if n >= 2 and sizes[order[1] - 1] >= 0.25 * sizes[order[0] - 1]:
        legs.append(order[1])
    # world x of each leg's centroid
    xs = []
    for lb in legs:
        ci, cj = np.argwhere(comp == lb).mean(axis=0)
        xs.append(float((affine @ np.array([ci, cj, (mask.shape[2] - 1) / 2.0, 1.0]))[0]))
    if len(legs) == 2:
        sides: tuple[str, ...] = ("R", "L") if xs[0] > xs[1] else ("L", "R")
    else:
        sides = (single_leg_side or ("R" if xs[0] > 0 else "L"),)
    seed = np.zeros((X, Y), np.int32)
    for k, lb in enumerate(legs):
        seed[comp == lb] = k + 1
    # nearest leg for every in-plane position
    _, (ii, jj) = ndimage.distance_transform_edt(seed == 0, sampling=spacing_mm[:2], return_indices=True)
    nearest = seed[ii, jj]
    out = np.empty((X, Y), dtype="<U1")
    for k, s in enumerate(sides):
        out[nearest == k + 1] = s
    return out


def bounding_box(mask: np.ndarray) -> tuple[slice, ...]:
    """Index slices of the smallest box holding every True voxel of a non-empty bool mask."""
    box = []
    for axis in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)


def largest_component(mask: np.ndarray, per_slice: bool = False) -> np.ndarray:
    """The largest 3-D connected component (26-connectivity) of a bool ``(X, Y, Z)`` mask, or
    with ``per_slice`` the largest 2-D component (8-connectivity) of each axial slice.

    Labelled inside the mask's bounding box only (the same components, less work)."""
    from scipy import ndimage

    if not mask.any():
        return mask
    if per_slice:
        out = np.zeros_like(mask)
        for z in range(mask.shape[2]):
            out[:, :, z] = largest_component(mask[:, :, z:z + 1])[:, :, 0]
        return out
    box = bounding_box(mask)
    comp, n = ndimage.label(mask[box], structure=np.ones((3, 3, 3), bool))
    if n <= 1:
        return mask
    sizes = np.bincount(comp.ravel())
    sizes[0] = 0
    out = np.zeros_like(mask)
    out[box] = comp == int(np.argmax(sizes))
    return out


def fill_holes_slicewise(mask: np.ndarray) -> np.ndarray:
    """Fill enclosed holes of a bool ``(X, Y, Z)`` mask in each axial slice.

    Each slice is filled inside its mask's bounding box: background on the box's edge touches
    background outside it, so it is no hole either way, and the result is the full slice's."""
    from scipy import ndimage

    out = mask.copy()
    for z in range(mask.shape[2]):
        plane = mask[:, :, z]
        if plane.any():
            bx, by = bounding_box(plane)
            out[bx, by, z] = ndimage.binary_fill_holes(plane[bx, by])
    return out


def postprocess(agnostic: np.ndarray, affine: np.ndarray, spacing_mm, anatomy: Anatomy,
                single_leg_side: str | None = None, clean: bool = True) -> np.ndarray:
    """Side-agnostic classes ``(X, Y, Z)`` on the RAS grid → side-specific label ids (uint8).

    ``clean`` keeps the largest component per muscle per leg (per slice where slices are more
    than ``MAX_CONNECTED_SLICE_SPACING_MM`` apart) and fills holes. ``spacing_mm``: (x, y, z) mm.
    """
    out = np.zeros(agnostic.shape, np.uint8)
    side_map = split_legs(agnostic > 0, affine, spacing_mm, single_leg_side)
    per_slice = float(spacing_mm[2]) > MAX_CONNECTED_SLICE_SPACING_MM
    for side in ("R", "L"):
        in_leg = (side_map == side)[:, :, None]
        if not in_leg.any():
            continue
        for m in anatomy.muscles:
            mm = (agnostic == m.index) & in_leg
            if not mm.any():
                continue
            if clean:
                mm = largest_component(mm, per_slice)
            out[mm] = m.index + anatomy.side_offsets[side]
    if clean:
        for lid in sorted(set(np.unique(out).tolist()) - {0}):
            filled = fill_holes_slicewise(out == lid)
            out[filled & (out == 0)] = lid
    return out
