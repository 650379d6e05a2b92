"""NIfTI images through nibabel, with exact affines and a canonical (RAS) view.

Processing happens on the RAS-canonical view (axis 0 towards the subject's left→right …
i.e. voxel axes aligned with +R, +A, +S); every output is mapped back with
:meth:`Image.from_ras` onto the exact grid of its input.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import nibabel as nib
import numpy as np

from alsseg.io.atomic import atomic_path
from alsseg.io.errors import InputError


@dataclass(frozen=True)
class Image:
    """A voxel array on a world grid.

    Attributes:
        data: ``(X, Y, Z[, T])`` array.
        affine: ``(4, 4)`` voxel→world (RAS+, mm) matrix.
        path: file it came from, if any.
        meta: free metadata (e.g. from a JSON sidecar).
    """

    data: np.ndarray
    affine: np.ndarray
    path: Path | None = None
    meta: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel size along the three spatial axes, mm."""
        return tuple(float(v) for v in np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)))

    @property
    def orientation(self) -> str:
        """Axis codes, e.g. ``'RAS'`` or ``'LPS'`` (nibabel convention: direction each axis increases to)."""
        return "".join(nib.aff2axcodes(self.affine))

    def with_data(self, data: np.ndarray, **meta) -> "Image":
        """Same grid, new voxels (spatial shape must match)."""
        if data.shape[:3] != self.data.shape[:3]:
            raise ValueError(f"shape {data.shape} does not match grid {self.data.shape[:3]}")
        return replace(self, data=data, path=None, meta={**self.meta, **meta})

    def to_ras(self) -> "Image":
        """Canonical view: voxel axes permuted/flipped so the affine is closest to RAS."""
        ornt = nib.orientations.io_orientation(self.affine)
        ras = nib.orientations.axcodes2ornt("RAS")
        transform = nib.orientations.ornt_transform(ornt, ras)
        data = nib.orientations.apply_orientation(self.data, transform)
        inv = nib.orientations.inv_ornt_aff(transform, self.data.shape[:3])
        affine = self.affine @ inv
        return replace(self, data=np.ascontiguousarray(data), affine=affine,
                       meta={**self.meta, "_ras_from": (self.affine, self.data.shape[:3])})

    def from_ras(self, reference: "Image") -> "Image":
        """Map an image on ``reference.to_ras()``'s grid back onto ``reference``'s own grid."""
        ornt_ref = nib.orientations.io_orientation(reference.affine)
        ras = nib.orientations.axcodes2ornt("RAS")
        back = nib.orientations.ornt_transform(ras, ornt_ref)
        data = nib.orientations.apply_orientation(self.data, back)
        return Image(np.ascontiguousarray(data), reference.affine.copy(), None,
                     {k: v for k, v in self.meta.items() if k != "_ras_from"})


def load_nifti(path: str | Path, *, ndim: int | tuple[int, ...] | None = None,
               dtype=np.float32, check_finite: bool = True) -> Image:
    """Read a NIfTI file.

    Args:
        path: ``.nii`` or ``.nii.gz``.
        ndim: required number of dimensions (int or tuple of allowed ints); a 3-D image with a
            trailing singleton 4th axis counts as 3-D.
        dtype: voxel dtype to return (``None`` keeps the stored one).
        check_finite: raise if any voxel is NaN or infinite.

    Raises:
        InputError: missing, truncated or non-NIfTI file, wrong dimensionality, non-finite voxels.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    if path.is_dir():
        raise InputError(path, "is a folder, expected a NIfTI file")
    try:
        img = nib.load(str(path))
        if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
            raise InputError(path, f"not a NIfTI image ({type(img).__name__})")
        data = np.asanyarray(img.dataobj)
    except InputError:
        raise
    except Exception as exc:  # nibabel raises many types for corrupt files
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(path, f"not a readable NIfTI file ({msg})") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if data.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise InputError(path, f"is {data.ndim}-D with shape {data.shape}, expected {want}")
    if dtype is not None:
        data = data.astype(dtype, copy=False)
    if check_finite and np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).all():
        n_bad = int((~np.isfinite(data)).sum())
        raise InputError(path, f"{n_bad} voxel(s) are NaN or infinite")
    return Image(data=data, affine=img.affine.astype(np.float64), path=path)


def save_nifti(image: Image | np.ndarray, path: str | Path, affine: np.ndarray | None = None,
               dtype=None) -> Path:
    """Write atomically a NIfTI file (sform and qform set to the affine, code 1 = scanner)."""
    if isinstance(image, Image):
        data, affine = image.data, image.affine
    else:
        data = image
        if affine is None:
            raise ValueError("affine is required when saving a bare array")
    if dtype is not None:
        data = data.astype(dtype)
    nii = nib.Nifti1Image(np.asarray(data), np.asarray(affine, dtype=np.float64))
    nii.set_sform(affine, code=1)
    nii.set_qform(affine, code=1)
    nii.header.set_xyzt_units("mm", "sec")
    path = Path(path)
    with atomic_path(path) as tmp:
        nib.save(nii, str(tmp))
    return path


def same_grid(a: Image, b: Image, atol_mm: float = 1e-3) -> bool:
    """True when two images share spatial shape and affine (to ``atol_mm``)."""
    return a.shape[:3] == b.shape[:3] and np.allclose(a.affine, b.affine, atol=atol_mm)


def require_same_grid(a: Image, b: Image) -> None:
    """Raise :class:`InputError` naming ``b`` if it is not on ``a``'s grid."""
    if not same_grid(a, b):
        raise InputError(
            b.path, f"grid {b.shape[:3]} / spacing {np.round(b.spacing_mm, 3).tolist()} does not match "
            f"{a.path or 'the reference'} ({a.shape[:3]} / {np.round(a.spacing_mm, 3).tolist()})")
