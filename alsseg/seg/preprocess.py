"""Preprocessing shared by training and inference (one code path).

Steps, in order (:func:`prepare`):

1. pick the volume to segment (``echo_index`` of a 4-D series) and check the image is usable
   (3-D, sane voxel size, not empty);
2. reorient to the RAS-canonical view (:meth:`alsseg.io.Image.to_ras`);
3. foreground crop: bounding box of the body (Otsu threshold of the smoothed image) plus a margin;
4. in-plane resampling to ``target_spacing_mm`` (slices are kept: the model is 2-D on axial slices);
5. per-image intensity normalisation: clip to percentiles, z-score over the body.

:func:`restore_logits` maps per-slice network outputs back onto the RAS grid of the input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alsseg.io.errors import InputError
from alsseg.io.nifti import Image
from alsseg.seg.recipe import PreprocessConfig

#: plausible voxel sizes, mm (outside: "hopelessly wrong spacing").
INPLANE_RANGE_MM = (0.1, 8.0)
SLICE_RANGE_MM = (0.1, 40.0)
MIN_INPLANE_VOXELS = 16


@dataclass(frozen=True)
class Prepared:
    """A preprocessed volume ready for the network.

    Attributes:
        data: ``(X', Y', Z)`` float32, normalised, cropped and resampled in-plane.
        ras: the RAS-canonical view of the input (3-D Image), on whose grid results live.
        crop: ``(x0, x1, y0, y1)`` box on the RAS grid that ``data`` covers.
        spacing_mm: in-plane voxel size of ``data`` (x, y), mm.
    """

    data: np.ndarray
    ras: Image
    crop: tuple[int, int, int, int]
    spacing_mm: tuple[float, float]


def select_volume(image: Image, echo_index: int = 0) -> Image:
    """The 3-D volume to segment: the image itself, or volume ``echo_index`` of a 4-D series.

    Raises:
        InputError: not 3-D/4-D, or the echo does not exist.
    """
    data = image.data
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim == 4:
        if not 0 <= echo_index < data.shape[3]:
            raise InputError(image.path, f"has {data.shape[3]} volumes; the model needs volume "
                                         f"{echo_index + 1} (echo index {echo_index})")
        data = data[..., echo_index]
    if data.ndim != 3:
        raise InputError(image.path, f"is {data.ndim}-D with shape {tuple(data.shape)}, expected a 3-D "
                                     "image or a 4-D echo series")
    return Image(np.asarray(data), image.affine, image.path, dict(image.meta))


def check_image(image: Image) -> None:
    """Raise :class:`InputError` if a 3-D image cannot be segmented (spacing, size, content)."""
    aff = np.asarray(image.affine, dtype=float)
    if not np.isfinite(aff).all() or abs(np.linalg.det(aff[:3, :3])) < 1e-9:
        raise InputError(image.path, "affine is degenerate (zero or non-finite voxel size)")
    ras = image.to_ras() if image.orientation != "RAS" else image
    sx, sy, sz = ras.spacing_mm
    lo, hi = INPLANE_RANGE_MM
    if not (lo <= sx <= hi and lo <= sy <= hi):
        raise InputError(image.path, f"in-plane voxel size {sx:.3g} x {sy:.3g} mm is outside "
                                     f"{lo}-{hi} mm (wrong units or a non-axial image?)")
    if not SLICE_RANGE_MM[0] <= sz <= SLICE_RANGE_MM[1]:
        raise InputError(image.path, f"slice spacing {sz:.3g} mm is outside {SLICE_RANGE_MM[0]}-"
                                     f"{SLICE_RANGE_MM[1]} mm")
    if min(ras.shape[:2]) < MIN_INPLANE_VOXELS:
        raise InputError(image.path, f"in-plane size {ras.shape[:2]} is too small (< {MIN_INPLANE_VOXELS} voxels)")
    d = image.data
    if d.size == 0:
        raise InputError(image.path, "image has no voxels")
    if not np.isfinite(d).all():
        raise InputError(image.path, "image has NaN or infinite voxels")
    if float(d.max()) == float(d.min()):
        raise InputError(image.path, f"image is empty (every voxel is {float(d.min()):g})")


def body_mask(data: np.ndarray) -> np.ndarray:
    """Rough body mask ``(X, Y, Z)`` bool: Otsu threshold of the in-plane smoothed image."""
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    sm = ndimage.uniform_filter(data.astype(np.float32), size=(3, 3, 1))
    sample = sm[::2, ::2].ravel()
    hi = np.percentile(sample, 99.5)
    sample = np.clip(sample, None, hi)
    if sample.max() <= sample.min():
        return np.ones(data.shape, bool)
    thr = 0.5 * threshold_otsu(sample)
    return sm > thr


def foreground_box(mask: np.ndarray, spacing_mm, margin_mm: float) -> tuple[int, int, int, int]:
    """In-plane bounding box ``(x0, x1, y0, y1)`` of a mask over all slices, plus a margin."""
    proj = np.asarray(mask.any(axis=2))
    if not proj.any():
        return 0, mask.shape[0], 0, mask.shape[1]
    xs = np.flatnonzero(proj.any(axis=1))
    ys = np.flatnonzero(proj.any(axis=0))
    mx = int(np.ceil(margin_mm / spacing_mm[0]))
    my = int(np.ceil(margin_mm / spacing_mm[1]))
    return (max(0, xs[0] - mx), min(mask.shape[0], xs[-1] + 1 + mx),
            max(0, ys[0] - my), min(mask.shape[1], ys[-1] + 1 + my))


def resampled_shape(shape_xy, spacing_mm, target_mm) -> tuple[int, int]:
    """In-plane shape after resampling the same field of view to ``target_mm``."""
    nx, ny = (max(1, round(float(n * s / t))) for n, s, t in zip(shape_xy, spacing_mm, target_mm))
    return nx, ny


def resample_inplane(volume: np.ndarray, size_xy, *, labels: bool = False) -> np.ndarray:
    """Resample ``(X, Y, Z)`` in-plane to ``size_xy`` (field of view kept; voxel areas aligned).

    Images: bilinear with anti-aliasing when shrinking; labels: nearest (``nearest-exact``).
    """
    import torch
    import torch.nn.functional as F

    if tuple(volume.shape[:2]) == tuple(size_xy):
        return volume.copy()
    t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(volume, 2, 0)))[:, None]  # (Z,1,X,Y)
    if labels:
        out = F.interpolate(t.float(), size=tuple(size_xy), mode="nearest-exact")
        out = out.to(torch.int16 if volume.dtype != np.uint8 else torch.uint8)
    else:
        shrink = any(o < i for o, i in zip(size_xy, volume.shape[:2]))
        out = F.interpolate(t.float(), size=tuple(size_xy), mode="bilinear", align_corners=False,
                            antialias=shrink)
    return np.ascontiguousarray(np.moveaxis(out[:, 0].numpy(), 0, 2)).astype(volume.dtype, copy=False)


def normalise(data: np.ndarray, mask: np.ndarray, clip_percentiles=(0.5, 99.5)) -> np.ndarray:
    """Clip to percentiles of the whole volume, then z-score over ``mask`` voxels (float32)."""
    data = data.astype(np.float32, copy=False)
    lo, hi = np.percentile(data[::2, ::2].ravel(), clip_percentiles)
    x = np.clip(data, lo, hi)
    sel = x[mask] if mask.sum() > 100 else x.ravel()
    mu, sd = float(sel.mean()), float(sel.std())
    if sd <= 1e-8 * max(1.0, abs(mu)):
        sd = 1.0
    return ((x - mu) / sd).astype(np.float32)


def prepare(image: Image, config: PreprocessConfig) -> Prepared:
    """Run the preprocessing chain on an image (3-D, or 4-D: volume ``config.echo_index``).

    Returns:
        :class:`Prepared` with ``data`` ``(X', Y', Z)`` float32.

    Raises:
        InputError: wrong dimensionality, implausible spacing, empty image.
    """
    vol = select_volume(image, config.echo_index)
    check_image(vol)
    ras = vol.to_ras()
    spacing = ras.spacing_mm[:2]
    data = ras.data.astype(np.float32, copy=False)
    mask = body_mask(data)
    box = foreground_box(mask, spacing, config.crop_margin_mm)
    x0, x1, y0, y1 = box
    crop = data[x0:x1, y0:y1]
    cmask = mask[x0:x1, y0:y1]
    size = resampled_shape(crop.shape[:2], spacing, config.target_spacing_mm)
    norm = normalise(crop, cmask, config.clip_percentiles)
    res = resample_inplane(norm, size)
    eff_x, eff_y = (float(n * s / m) for n, s, m in zip(crop.shape[:2], spacing, size))
    eff = (eff_x, eff_y)
    return Prepared(res, ras, box, eff)


def prepare_labels(labels_ras: np.ndarray, prepared: Prepared) -> np.ndarray:
    """Labels ``(X, Y, Z)`` on the RAS grid → the grid of ``prepared.data`` (nearest)."""
    x0, x1, y0, y1 = prepared.crop
    return resample_inplane(np.ascontiguousarray(labels_ras[x0:x1, y0:y1]), prepared.data.shape[:2],
                            labels=True)


def upsample_logits_slice(logits, prepared: Prepared):
    """One slice's logits ``(C, X', Y')`` (torch) → ``(C, x1 - x0, y1 - y0)``: the crop box
    ``prepared.crop`` on the full RAS in-plane grid (bilinear). Outside the box is background."""
    import torch.nn.functional as F

    x0, x1, y0, y1 = prepared.crop
    return F.interpolate(logits[None].float(), size=(x1 - x0, y1 - y0), mode="bilinear",
                         align_corners=False)[0]
