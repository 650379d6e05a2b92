"""Whole-volume T2 / T1 fitting (writing the maps is :func:`alsseg.io.maps.write_maps`).

Maps are computed voxel by voxel in the input's own voxel order, so they lie exactly on the
source grid (same shape and affine); nothing is resampled.

Map names (desc entities; files ``PREFIX_desc-KEY_T2map.nii.gz``, see :mod:`alsseg.io.maps`)::

    PREFIX_desc-water_T2map.nii.gz        water T2, ms (EPG)
    PREFIX_desc-fatfraction_T2map.nii.gz  fat fraction, 0–1 (EPG)
    PREFIX_desc-b1_T2map.nii.gz           B1 scale (EPG)
    PREFIX_desc-m0_T2map.nii.gz           proton density, signal units (EPG)
    PREFIX_desc-r2_T2map.nii.gz           R² of the EPG fit
    PREFIX_desc-residual_T2map.nii.gz     RMS residual of the EPG fit, signal units
    PREFIX_desc-flag_T2map.nii.gz         fit flags (uint8 bits, 0 = good; see alsseg.relax.t2)
    PREFIX_desc-mono_T2map.nii.gz         mono-exponential T2, ms (+ desc-monor2, desc-monoflag)
    PREFIX_T1map.nii.gz                   T1, ms (+ desc-m0_T1map, desc-r2_T1map, desc-flag_T1map)

Each map carries its units and description in ``Image.meta`` (``Units``, ``Description``) for
the sidecar; :func:`acquisition_provenance` describes the acquisition used.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from alsseg.io.errors import InputError
from alsseg.relax.acquisition import MeseAcquisition

#: desc entity → (fit attribute, units, description) for the EPG model.
EPG_MAPS = {
    "water": ("t2_water_ms", "ms", "water T2 (two-component slice-profile EPG)"),
    "fatfraction": ("fat_fraction", "1", "fat fraction (0-1)"),
    "b1": ("b1", "1", "transmit B1 scale (1 = nominal)"),
    "m0": ("m0", "a.u.", "proton density M0"),
    "r2": ("r2", "1", "coefficient of determination of the fit"),
    "residual": ("residual", "a.u.", "RMS residual over the echoes"),
    "flag": ("flag", "bits", "fit flags: 1 invalid data, 2 T2 at bound, 4 B1 at bound, 8 not converged"),
}
MONO_MAPS = {
    "mono": ("t2_ms", "ms", "mono-exponential T2"),
    "monor2": ("r2", "1", "coefficient of determination of the mono-exponential fit"),
    "monoflag": ("flag", "bits", "mono fit flags: 1 invalid data, 2 T2 at bound, 8 not converged"),
}


def auto_mask(data: np.ndarray, fraction: float = 0.05) -> np.ndarray:
    """Voxels worth fitting: first measurement above ``fraction`` × its 99th percentile.

    Parameters
    ----------
    data : (X, Y, Z, M) ndarray
    fraction : float

    Returns
    -------
    (X, Y, Z) bool ndarray
    """
    first = np.asarray(data[..., 0], float)
    ref = np.percentile(first[np.isfinite(first)], 99) if np.isfinite(first).any() else 0.0
    return np.isfinite(first) & (first > fraction * ref) & (first > 0)


def as_mask(mask, image, name: str = "mask") -> np.ndarray | None:
    """Mask as a bool array on ``image``'s grid (Image, path, array or None)."""
    from alsseg.io.nifti import Image, load_nifti, require_same_grid

    if mask is None:
        return None
    if isinstance(mask, (str, Path)):
        mask = load_nifti(mask, ndim=3, dtype=None)
    if isinstance(mask, Image):
        require_same_grid(image, mask)
        arr = np.asarray(mask.data)
    else:
        arr = np.asarray(mask)
        if arr.shape != image.shape[:3]:
            raise InputError(None, f"{name} shape {arr.shape} does not match the image grid {image.shape[:3]}")
    if arr.ndim != 3:
        raise InputError(getattr(mask, "path", None), f"{name} must be 3-D")
    return arr > 0


def _as_image(series_or_image):
    from alsseg.io.nifti import Image

    if isinstance(series_or_image, Image):
        return series_or_image, None
    image = getattr(series_or_image, "image", None)
    if image is None:
        raise TypeError("expected an alsseg.io.MeseSeries / T1Series or an alsseg.io.Image")
    return image, series_or_image


def fit_t2_volume(series_or_image, acq: MeseAcquisition | None = None, mask=None, *, model: str = "epg",
                  mono_method: str = "nlls", skip_first: bool = False, chunk_voxels: int = 16384,
                  n_jobs: int = 2, progress: bool = True, t2_range_ms=(10.0, 100.0),
                  b1_range=(0.5, 1.4)) -> dict:
    """Fit T2 maps over a whole MESE volume.

    Parameters
    ----------
    series_or_image : MeseSeries or Image
        ``(X, Y, Z, n_echoes)`` magnitude data (a bare Image needs ``acq``).
    acq : MeseAcquisition, optional
        Default: :meth:`MeseAcquisition.from_series` of the series.
    mask : Image, path, (X, Y, Z) bool ndarray or None
        Voxels to fit; must be on the series' grid. ``None``: :func:`auto_mask`.
    model : {'epg', 'mono', 'both'}
    mono_method, skip_first :
        Mono-exponential variant (see :class:`~alsseg.relax.t2.MonoExpT2Model`).
    chunk_voxels, n_jobs, progress :
        Memory bound per chunk, worker threads, tqdm progress bar.
    t2_range_ms, b1_range :
        Search ranges of the EPG model.

    Returns
    -------
    dict[str, Image]
        Keyed by BIDS ``desc`` (see :data:`EPG_MAPS`, :data:`MONO_MAPS`), each on the source grid.
        ``result['_fit']`` is not included; use the models directly for the fit objects.
    """
    from alsseg.relax.t2 import EpgT2Model, MonoExpT2Model

    if model not in ("epg", "mono", "both"):
        raise InputError(None, f"unknown T2 model {model!r} (choose epg, mono or both)")
    image, series = _as_image(series_or_image)
    data = np.asarray(image.data)
    if data.ndim != 4:
        raise InputError(image.path, f"MESE data must be 4-D (X, Y, Z, echoes), got shape {data.shape}")
    if acq is None:
        if series is None:
            raise InputError(image.path, "a bare image needs an acquisition (echo spacing, TR)")
        if model == "mono":
            acq = None
        else:
            acq = MeseAcquisition.from_series(series)
    if acq is not None and acq.n_echoes != data.shape[3]:
        raise InputError(image.path, f"{data.shape[3]} echoes in the data, {acq.n_echoes} in the acquisition")
    m = as_mask(mask, image)
    if m is None:
        m = auto_mask(data)
    out = {}
    if model in ("epg", "both"):
        epg = EpgT2Model(acq, t2_range_ms=t2_range_ms, b1_range=b1_range, n_jobs=n_jobs)
        fit = epg.fit(data, m, chunk_voxels=chunk_voxels, n_jobs=n_jobs, progress=progress)
        for desc, (attr, units, text) in EPG_MAPS.items():
            arr = getattr(fit, attr)
            out[desc] = image.with_data(arr if attr == "flag" else arr.astype(np.float32),
                                        Units=units, Description=text)
    if model in ("mono", "both"):
        te = acq.echo_times_ms if acq is not None else np.asarray(series.echo_times_ms, float)
        mono = MonoExpT2Model(te, mono_method, skip_first=skip_first)
        fit = mono.fit(data, m, chunk_voxels=chunk_voxels, n_jobs=n_jobs, progress=progress)
        for desc, (attr, units, text) in MONO_MAPS.items():
            arr = getattr(fit, attr)
            out[desc] = image.with_data(arr if attr == "flag" else arr.astype(np.float32), Units=units,
                                        Description=f"{text} ({mono_method}{', echo 1 skipped' if skip_first else ''})")
    for img in out.values():
        img.meta.pop("_ras_from", None)
    return out


def fit_t1_volume(series, mask=None, *, b1=None, chunk_voxels: int = 8192, n_jobs: int = 2,
                  progress: bool = True, t1_range_ms=(50.0, 5000.0)) -> dict:
    """Fit a T1 map over a whole :class:`alsseg.io.T1Series` (IR, SR or VFA).

    Parameters
    ----------
    series : T1Series
    mask : Image, path, (X, Y, Z) bool ndarray or None
        ``None``: :func:`auto_mask` (for IR, on the longest inversion time).
    b1 : Image, path or (X, Y, Z) ndarray, optional
        VFA only: B1 map on the same grid (e.g. ``desc-b1_T2map``).

    Returns
    -------
    dict[str, Image]
        ``'T1'`` (ms), ``'m0'``, ``'r2'``, ``'flag'`` (and ``'efficiency'`` for IR).
    """
    from alsseg.io.nifti import Image, load_nifti, require_same_grid
    from alsseg.relax.t1 import InversionRecoveryT1Model, SaturationRecoveryT1Model, VfaT1Model

    image = series.image
    data = np.asarray(image.data)
    if data.ndim != 4:
        raise InputError(image.path, f"T1 series must be 4-D (X, Y, Z, volumes), got shape {data.shape}")
    kind = series.kind
    kw = {}
    if kind == "IR":
        if series.inversion_times_ms is None:
            raise InputError(series.source, "inversion recovery series without inversion times")
        model = InversionRecoveryT1Model(series.inversion_times_ms, series.tr_ms, t1_range_ms)
        order = np.argsort(series.inversion_times_ms)
    elif kind == "SR":
        if series.repetition_times_ms is None:
            raise InputError(series.source, "saturation recovery series without repetition times")
        model = SaturationRecoveryT1Model(series.repetition_times_ms, t1_range_ms)
        order = np.argsort(series.repetition_times_ms)
    elif kind == "VFA":
        if series.flip_angles_deg is None or series.tr_ms is None:
            raise InputError(series.source, "variable flip angle series needs flip angles and TR")
        model = VfaT1Model(series.flip_angles_deg, series.tr_ms, t1_range_ms)
        order = np.argsort(series.flip_angles_deg)
        if b1 is not None:
            if isinstance(b1, (str, Path)):
                b1 = load_nifti(b1, ndim=3, check_finite=False)
            if isinstance(b1, Image):
                require_same_grid(image, b1)
                b1 = b1.data
            b1 = np.asarray(b1, float)
            if b1.shape != data.shape[:3]:
                raise InputError(None, f"B1 map shape {b1.shape} does not match the T1 grid {data.shape[:3]}")
            kw["b1"] = np.where(np.isfinite(b1), b1, np.nan)
    else:  # pragma: no cover - T1Series validates kind
        raise InputError(series.source, f"unknown T1 series kind {kind!r}")
    m = as_mask(mask, image)
    if m is None:
        m = auto_mask(data[..., order[::-1]])
    fit = model.fit(data, m, chunk_voxels=chunk_voxels, n_jobs=n_jobs, progress=progress, **kw)
    out = {"T1": image.with_data(fit.t1_ms.astype(np.float32), Units="ms", Description=f"T1 ({kind})"),
           "m0": image.with_data(fit.m0.astype(np.float32), Units="a.u.", Description="M0"),
           "r2": image.with_data(fit.r2.astype(np.float32), Units="1", Description="R2 of the T1 fit"),
           "flag": image.with_data(fit.flag, Units="bits", Description="fit flags")}
    if kind == "IR":
        out["efficiency"] = image.with_data(fit.efficiency.astype(np.float32), Units="1",
                                            Description="inversion efficiency (1 = perfect)")
    for img in out.values():
        img.meta.pop("_ras_from", None)
    return out


def acquisition_provenance(acq: MeseAcquisition | None) -> dict:
    """JSON-able description of an acquisition (for sidecars)."""
    if acq is None:
        return {}
    d = asdict(acq)
    prof = d.pop("profile")
    d["profile_positions"] = int(np.size(prof["weights"]))
    d["profile_excitation"] = np.round(np.asarray(prof["excitation"]), 4).tolist()
    d["profile_refocusing"] = np.round(np.asarray(prof["refocusing"]), 4).tolist()
    return d
