"""NIfTI images through nibabel, with exact affines and a canonical (RAS) view.

Processing happens on the RAS-canonical view (axis 0 towards the subject's left→right …
i.e. voxel axes aligned with +R, +A, +S); every output is mapped back with
:meth:`Image.from_ras` onto the exact grid of its input.
"""

from __future__ import annotations

import os
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
        sx, sy, sz = np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))
        return float(sx), float(sy), float(sz)

    @property
    def orientation(self) -> str:
        """Axis codes, e.g. ``'RAS'`` or ``'LPS'`` (nibabel convention: direction each axis increases to)."""
        return "".join(nib.aff2axcodes(self.affine))

    def with_data(self, data: np.ndarray, **meta) -> Image:
        """Same grid, new voxels (spatial shape must match)."""
        if data.shape[:3] != self.data.shape[:3]:
            raise ValueError(f"shape {data.shape} does not match grid {self.data.shape[:3]}")
        return replace(self, data=data, path=None, meta={**self.meta, **meta})

    def to_ras(self) -> Image:
        """Canonical view: voxel axes permuted/flipped so the affine is closest to RAS."""
        ornt = nib.orientations.io_orientation(self.affine)
        ras = nib.orientations.axcodes2ornt("RAS")
        transform = nib.orientations.ornt_transform(ornt, ras)
        data = nib.orientations.apply_orientation(self.data, transform)
        inv = nib.orientations.inv_ornt_aff(transform, self.data.shape[:3])
        affine = self.affine @ inv
        return replace(self, data=np.ascontiguousarray(data), affine=affine,
                       meta={**self.meta, "_ras_from": (self.affine, self.data.shape[:3])})

    def from_ras(self, reference: Image) -> Image:
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
    from alsseg.io.validate import input_kind

    path = Path(path)
    if input_kind(path, missing="no such file") == "dir":
        raise InputError(path, "is a folder, expected a NIfTI file")
    try:
        img = nib.load(str(path))
        if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
            raise InputError(path, f"not a NIfTI image ({type(img).__name__})")
        check_header(img, path)
        data = np.asanyarray(img.dataobj)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types for a corrupt file
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


#: deflate cannot compress better than about 1032:1, so a .nii.gz of n bytes holds at most this × n.
GZIP_MAX_RATIO = 1100


def check_header(img, path: str | Path) -> None:
    """Refuse a NIfTI header that is impossible or ambiguous, before any voxel is read.

    * declared voxel bytes larger than the file can hold (a 400-byte header declaring
      100000 × 100000 × 1 is refused at once instead of allocating gigabytes);
    * a voxel size (pixdim) that is zero, negative or not finite: every volume would be wrong;
    * qform and sform codes both 0: the orientation (which side is left) is unknown;
    * qform and sform both set but pointing different ways (left/right or another axis
      flipped): tools disagree about which one to use (nibabel and FSL read the sform, ITK
      the qform), so left and right would depend on the reader.

    Each is refused rather than warned about: a label map or volume written from a guessed
    geometry looks valid to every later step, and nothing downstream could notice.
    """
    hdr = img.header
    shape = tuple(int(d) for d in img.shape)
    if not shape or any(d <= 0 for d in shape):
        raise InputError(path, f"header declares an empty shape {shape}")
    n_bytes = int(np.prod(shape, dtype=object)) * hdr.get_data_dtype().itemsize
    size = os.stat(path).st_size
    if str(path).endswith(".gz"):
        if n_bytes > GZIP_MAX_RATIO * size + (1 << 20):
            raise InputError(path, f"header declares {'×'.join(map(str, shape))} voxels ({_human(n_bytes)}), "
                             f"more than a {_human(size)} gzip file can hold: corrupt or hostile header")
    else:
        need = int(hdr.get_data_offset()) + n_bytes
        if need > size:
            raise InputError(path, f"header declares {'×'.join(map(str, shape))} voxels ({_human(n_bytes)}) but "
                             f"the file holds {_human(size)}: truncated or corrupt")
    n_sp = min(3, len(shape))
    raw = _raw_header(path)  # nibabel silently turns a zero pixdim into 1 mm: read the bytes themselves
    zooms = [float(z) for z in (raw if raw is not None else hdr)["pixdim"][1:1 + n_sp]]
    if not all(np.isfinite(z) and z > 0 for z in zooms):
        raise InputError(path, f"voxel size (pixdim) {zooms} has a zero, negative or non-finite value: "
                         "volumes cannot be computed; fix the header")
    q_code, s_code = int(hdr["qform_code"]), int(hdr["sform_code"])
    if q_code == 0 and s_code == 0:
        raise InputError(path, "qform_code and sform_code are both 0: the orientation (which side is left) "
                         "is unknown; set the sform/qform of the file (e.g. from its DICOM)")
    if q_code > 0 and s_code > 0:
        q_ax, s_ax = nib.aff2axcodes(hdr.get_qform()), nib.aff2axcodes(hdr.get_sform())
        if q_ax != s_ax:
            raise InputError(path, f"qform ({''.join(q_ax)}) and sform ({''.join(s_ax)}) disagree about the "
                             "orientation: left/right would depend on the program reading the file; make them agree")
    aff = img.affine
    if not np.isfinite(aff).all() or abs(np.linalg.det(aff[:3, :3])) < 1e-12:
        raise InputError(path, "the voxel-to-world affine is degenerate or not finite")


def _raw_header(path: str | Path):
    """The NIfTI-1/2 header as stored (nibabel's load repairs some fields), or None if unreadable."""
    import gzip
    import io

    try:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rb") as fh:
            block = fh.read(540)
    except (OSError, EOFError):
        return None
    for klass in (nib.Nifti1Header, nib.Nifti2Header):
        for order in ("<", ">"):
            if len(block) >= klass.sizeof_hdr and int.from_bytes(block[:4], "little" if order == "<" else "big") == klass.sizeof_hdr:
                try:
                    return klass.from_fileobj(io.BytesIO(block[:klass.sizeof_hdr]), check=False)
                except Exception:  # noqa: BLE001 - fall back to nibabel's view
                    return None
    return None


def _human(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if size < 1000 or unit == "PB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} bytes"


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
