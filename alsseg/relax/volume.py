"""Whole-volume T2 / T1 fitting (writing the maps is :func:`alsseg.io.maps.write_maps`).

Maps are computed voxel by voxel in the input's own voxel order, so they lie exactly on the
source grid (same shape and affine); nothing is resampled.

Maps are keyed by the names of :data:`alsseg.maps.MAPS` (``t2_water_ms``, ``fat_fraction``,
``b1``, ``m0``, ``r2``, ``residual``, ``flag``; ``t2_mono_ms``, ``mono_r2``, ``mono_flag``;
``t1_ms``, ``t1_m0``, ``t1_r2``, ``t1_flag``, ``t1_efficiency``), the names quant reads and the
writers turn into BIDS files (``_desc-water_T2map``, ``_desc-mono_T2map``, ``_T1map``, …).

Each map carries its units and description in ``Image.meta`` (``Units``, ``Description``) for
the sidecar; :func:`acquisition_provenance` describes the acquisition used.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from alsseg.io.errors import InputError
from alsseg.maps import EPG_NAMES, MAPS
from alsseg.relax.acquisition import MeseAcquisition

#: map name (:data:`alsseg.maps.MAPS`) → fit attribute, for the EPG and mono-exponential models.
EPG_MAPS = {name: name for name in EPG_NAMES}
MONO_MAPS = {"t2_mono_ms": "t2_ms", "mono_r2": "r2", "mono_flag": "flag"}


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
    if not (arr > 0).any():
        raise InputError(getattr(mask, "path", None), f"{name} is empty (no voxel > 0): nothing to fit")
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
                  mono_method: str = "loglinear", skip_first: bool = False, chunk_voxels: int = 16384,
                  n_jobs: int = 2, progress: bool = True, t2_range_ms=(10.0, 100.0),
                  b1_range=(0.5, 1.4), b1: str = "smooth") -> dict:
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
        Mono-exponential variant (see :class:`~alsseg.relax.mono.MonoExpT2Model`).
    chunk_voxels, n_jobs, progress :
        Memory bound per chunk, worker threads, tqdm progress bar.
    t2_range_ms, b1_range :
        Search ranges of the EPG model.
    b1 : {'smooth', 'voxel'}
        ``'smooth'`` (default): B1 regularised per slice and water T2 / FF / M0 refitted with it
        (:mod:`alsseg.relax.b1`); ``desc-b1`` is the smooth field and ``desc-b1voxel`` the
        first-pass per-voxel B1. ``'voxel'``: one B1 per voxel (``desc-b1``), no ``b1voxel``.
        The ``B1Mode`` entry of each EPG map's sidecar says which.

    Returns
    -------
    dict[str, Image]
        Keyed by map name (:data:`alsseg.maps.MAPS`: ``t2_water_ms``, ``fat_fraction``, ``b1``,
        ``m0``, ``r2``, ``residual``, ``flag``; mono: ``t2_mono_ms``, ``mono_r2``, ``mono_flag``),
        each on the source grid, ready for :func:`alsseg.quant.quantify_images`.
        ``result['_fit']`` is not included; use the models directly for the fit objects.
    """
    from alsseg.relax.mono import MonoExpT2Model
    from alsseg.relax.t2 import EpgT2Model

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
        assert acq is not None  # set from the series above unless the model is mono
        epg = EpgT2Model(acq, t2_range_ms=t2_range_ms, b1_range=b1_range, n_jobs=n_jobs)
        slice_axis = slice_axis_of(image)
        fit = epg.fit(data, m, b1=b1, slice_axis=slice_axis, chunk_voxels=chunk_voxels, n_jobs=n_jobs,
                      progress=progress)
        for name, attr in EPG_MAPS.items():
            if attr not in fit.maps:
                continue
            arr = getattr(fit, attr)
            text = MAPS[name].description
            if name == "b1" and b1 == "smooth":
                text = (f"{text}: smooth field per slice (degree-4 polynomial, Tukey-biweight fit to the "
                        "first-pass B1 of voxels with FF <= 0.3), held in the refit of water T2 / FF / M0")
            out[name] = image.with_data(arr if attr == "flag" else arr.astype(np.float32),
                                        Units=MAPS[name].units, Description=text, B1Mode=b1)
    if model in ("mono", "both"):
        te = acq.echo_times_ms if acq is not None else np.asarray(series.echo_times_ms, float)
        mono = MonoExpT2Model(te, mono_method, skip_first=skip_first)
        mono_fit = mono.fit(data, m, chunk_voxels=chunk_voxels, n_jobs=n_jobs, progress=progress)
        how = f"{mono_method} fit, {'echo 1 skipped' if skip_first else 'every echo'}"
        for name, attr in MONO_MAPS.items():
            arr = getattr(mono_fit, attr)
            text = MAPS[name].description.split(" (")[0].split(":")[0]
            out[name] = image.with_data(arr if attr == "flag" else arr.astype(np.float32),
                                        Units=MAPS[name].units, Description=f"{text} ({how})")
    for img in out.values():
        img.meta.pop("_ras_from", None)
    return out


def slice_axis_of(image) -> int:
    """Through-plane axis: the one with the largest voxel spacing (axis 2 on ties)."""
    sp = np.asarray(getattr(image, "spacing_mm", (1.0, 1.0, 1.0)), float)[:3]
    big = np.flatnonzero(np.isclose(sp, sp.max()))
    return 2 if 2 in big else int(big[-1])


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
        Keyed by map name: ``t1_ms`` (ms), ``t1_m0``, ``t1_r2``, ``t1_flag`` (and
        ``t1_efficiency`` for IR).
    """
    from alsseg.io.nifti import Image, load_nifti, require_same_grid
    from alsseg.relax.t1 import InversionRecoveryT1Model, SaturationRecoveryT1Model, VfaT1Model, _T1Model

    image = series.image
    data = np.asarray(image.data)
    if data.ndim != 4:
        raise InputError(image.path, f"T1 series must be 4-D (X, Y, Z, volumes), got shape {data.shape}")
    kind = series.kind
    kw: dict[str, Any] = {}
    model: _T1Model
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
    arrays = {"t1_ms": fit.t1_ms, "t1_m0": fit.m0, "t1_r2": fit.r2, "t1_flag": fit.flag}
    if kind == "IR":
        arrays["t1_efficiency"] = fit.efficiency
    out = {name: image.with_data(arr if name == "t1_flag" else arr.astype(np.float32), Units=MAPS[name].units,
                                 Description=MAPS[name].description + (f" ({kind})" if name == "t1_ms" else ""))
           for name, arr in arrays.items()}
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
