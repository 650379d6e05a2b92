"""Parameter maps of one series, from files to files: the API of ``alsseg fit-t2`` / ``fit-t1``.

Load the series (:mod:`alsseg.io`), fit it (:mod:`alsseg.relax`), write BIDS-derivative maps with
JSON sidecars (:func:`alsseg.io.maps.write_maps`); skipped when every output is newer than the
input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from alsseg.io.errors import InputError


@dataclass(frozen=True)
class T2MapOptions:
    """What ``fit-t2`` fits.

    Attributes
    ----------
    model : ``"epg"`` (two-component slice-profile EPG), ``"mono"`` or ``"both"``.
    mono_method : ``"loglinear"`` (``_desc-mono_T2map``, as ``alsseg run``), ``"nlls"`` or
        ``"nlls_offset"``; skip_first : mono: drop echo 1. A variant other than log-linear over
        every echo is written under its own desc (:func:`alsseg.maps.mono_descs`).
    echo_spacing_ms, tr_ms, refocus_deg, excite_deg : acquisition overrides (None: the headers').
    fat_t2_ms : fat T2, ms (None: the default); fat_mask : calibrate fat T2 on these voxels instead.
    water_t1_ms, fat_t1_ms : model T1s, ms (None: the defaults).
    t2_range_ms, b1_range : search ranges of water T2 (ms) and B1.
    b1 : ``"smooth"`` (a smooth B1 field per slice, water T2 / FF / M0 refitted with it held; the
        first pass is written as ``desc-b1voxel``) or ``"voxel"`` (one B1 per voxel).
    slice_profile : a ``--slice-profile`` value (preset name, ``TBW_EXC,TBW_REF,RATIO`` or
        ``RATIO,TRANSITION``; :func:`alsseg.relax.profiles.parse_slice_profile`); None: the default.
    threads : worker threads; chunk_voxels : voxels per chunk (memory bound).
    """

    model: str = "epg"
    mono_method: str = "loglinear"
    skip_first: bool = False
    echo_spacing_ms: float | None = None
    tr_ms: float | None = None
    refocus_deg: float | None = None
    excite_deg: float | None = None
    fat_t2_ms: float | None = None
    fat_mask: Path | None = None
    water_t1_ms: float | None = None
    fat_t1_ms: float | None = None
    t2_range_ms: tuple[float, float] = (10.0, 100.0)
    b1_range: tuple[float, float] = (0.5, 1.4)
    b1: str = "smooth"
    slice_profile: str | None = None
    threads: int = 2
    chunk_voxels: int = 16384


@dataclass(frozen=True)
class MapsOutcome:
    """What a map fit did: ``written`` files (empty when ``up_to_date``), ``n_fitted`` voxels,
    ``out_dir``."""

    out_dir: Path
    written: list[Path]
    n_fitted: int = 0
    up_to_date: bool = False


def _up_to_date(paths, source: Path) -> bool:
    try:
        src = Path(source).stat().st_mtime
        return all(p.exists() and p.stat().st_mtime >= src for p in paths)
    except OSError:
        return False


def _sidecar_says(path: Path, key: str):
    """``key`` of a map's JSON sidecar (None when absent or unreadable)."""
    import json

    try:
        return json.loads(Path(str(path).replace(".nii.gz", ".json")).read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def load_mese_for_fit(path: Path, echo_spacing_ms: float | None = None, tr_ms: float | None = None):
    """:func:`alsseg.io.load_mese`; a bare 4-D NIfTI without echo times is accepted when
    ``echo_spacing_ms`` is given (TE_n = n · ESP)."""
    from alsseg.io import load_mese
    from alsseg.io.nifti import load_nifti

    path = Path(path)
    try:
        return load_mese(path)
    except InputError:
        if echo_spacing_ms and path.is_file() and path.name.endswith((".nii", ".nii.gz")):
            import numpy as np

            from alsseg.io import MeseSeries

            img = load_nifti(path, ndim=4)
            te = echo_spacing_ms * np.arange(1, img.shape[3] + 1)
            return MeseSeries(image=img, echo_times_ms=te, tr_ms=tr_ms, source=path)
        raise


def _check_destination(out_dir, prefix: str | None) -> None:
    """Before any work: ``out_dir`` must not be a file, ``prefix`` must be a plain name (no ``../``)."""
    from alsseg.io.atomic import check_output_folder
    from alsseg.io.validate import safe_label

    check_output_folder(out_dir)
    if prefix is not None:
        safe_label(prefix, "--prefix")


def fit_t2_maps(mese: Path, out_dir: Path, options: T2MapOptions = T2MapOptions(), *, mask: Path | None = None,
                prefix: str | None = None, force: bool = False, progress: bool = True,
                log: Callable[[str], None] | None = None) -> MapsOutcome:
    """Fit a MESE series voxel by voxel and write its maps into ``out_dir``.

    Parameters
    ----------
    mese : 4-D NIfTI + sidecar, BIDS ``_echo-N_MESE`` files, or a DICOM folder.
    options : model, acquisition overrides, ranges, threads.
    mask : 3-D mask on the same grid (None: signal above 5 % of the 99th percentile).
    prefix : output name prefix (None: the input's BIDS entities).
    force : refit even when every output is newer than the input.
    log : called with one-line messages (the fat T2 calibration).

    Raises
    ------
    InputError
        an empty search range, a bad series or mask, both ``fat_t2_ms`` and ``fat_mask``.
    """
    import numpy as np

    from alsseg.io.maps import bids_prefix, map_paths, write_maps
    from alsseg.maps import EPG_NAMES, MONO_NAMES, mono_descs
    from alsseg.relax.acquisition import MeseAcquisition
    from alsseg.relax.volume import acquisition_provenance, fit_t2_volume

    o = options
    log = log or (lambda s: None)
    for name, rng in (("--t2-range", o.t2_range_ms), ("--b1-range", o.b1_range)):
        if not (rng[0] > 0 and rng[1] > rng[0]):
            raise InputError(None, f"{name} {rng[0]} {rng[1]} is empty or not positive")
    from alsseg.io.validate import positive

    for name in ("echo_spacing_ms", "tr_ms", "refocus_deg", "excite_deg", "fat_t2_ms", "water_t1_ms", "fat_t1_ms"):
        positive(getattr(o, name), "--" + name.replace("_", "-"))
    for name in ("threads", "chunk_voxels"):
        if getattr(o, name) < 1:
            raise InputError(None, f"--{name.replace('_', '-')} {getattr(o, name)}: must be >= 1")
    _check_destination(out_dir, prefix)
    series = load_mese_for_fit(mese, o.echo_spacing_ms, o.tr_ms)
    prefix = prefix or bids_prefix(series.source or mese)
    if o.b1 not in ("smooth", "voxel"):
        raise InputError(None, f"--b1 {o.b1!r}: choose smooth or voxel")
    profile = None
    if o.slice_profile is not None:
        from alsseg.relax.profiles import parse_slice_profile

        profile = parse_slice_profile(o.slice_profile)
    epg_keys = [k for k in EPG_NAMES if k != "b1_voxel" or o.b1 == "smooth"]
    keys = (epg_keys if o.model in ("epg", "both") else []) + \
           (list(MONO_NAMES) if o.model in ("mono", "both") else [])
    descs = mono_descs(o.mono_method, o.skip_first)
    paths = map_paths(out_dir, prefix, keys, descs)
    same_b1 = o.model == "mono" or _sidecar_says(paths["b1"], "B1Mode") == o.b1
    if not force and same_b1 and _up_to_date(paths.values(), mese):
        return MapsOutcome(Path(out_dir), [], up_to_date=True)
    overrides = {k: getattr(o, k) for k in ("tr_ms", "refocus_deg", "excite_deg", "fat_t2_ms",
                                            "water_t1_ms", "fat_t1_ms") if getattr(o, k) is not None}
    if profile is not None:
        overrides["profile"] = profile
    if o.echo_spacing_ms is not None:
        overrides["echo_times_ms"] = o.echo_spacing_ms * np.arange(1, series.n_echoes + 1)
    acq = None
    if o.model in ("epg", "both"):
        try:
            acq = MeseAcquisition.from_series(series, **overrides)
        except InputError as exc:
            raise InputError(exc.path or mese, exc.problem) from None
        if o.fat_mask is not None:
            if o.fat_t2_ms is not None:
                raise InputError(None, "give either --fat-t2-ms or --fat-mask, not both")
            from alsseg.relax.fat import calibrate_fat_t2
            from alsseg.relax.volume import as_mask

            fat = as_mask(o.fat_mask, series.image, "fat mask")
            assert fat is not None  # a mask path was given
            try:
                fat_t2, fat_b1 = calibrate_fat_t2(series.image.data, fat, acq)
            except InputError as exc:
                raise InputError(o.fat_mask, exc.problem) from None
            acq = acq.with_(fat_t2_ms=fat_t2)
            log(f"fat T2 calibrated on {int(fat.sum())} voxels: {fat_t2:.1f} ms (B1 {fat_b1:.2f})")
    elif overrides.get("echo_times_ms") is not None:
        series = replace(series, echo_times_ms=overrides["echo_times_ms"])
    maps = fit_t2_volume(series, acq, mask, model=o.model, mono_method=o.mono_method,
                         skip_first=o.skip_first, n_jobs=o.threads, chunk_voxels=o.chunk_voxels,
                         progress=progress, t2_range_ms=tuple(o.t2_range_ms), b1_range=tuple(o.b1_range),
                         b1=o.b1)
    prov = {"Sources": [str(mese)], "Model": o.model, "MonoMethod": o.mono_method,
            "SkipFirstEcho": bool(o.skip_first), "T2RangeMs": list(o.t2_range_ms),
            "B1Range": list(o.b1_range), "B1Mode": o.b1, "SliceProfile": o.slice_profile or "siemens (default)",
            "Acquisition": acquisition_provenance(acq),
            "EchoTimesMs": np.asarray(series.echo_times_ms, float).tolist()}
    written = write_maps(maps, out_dir, prefix, descs=descs, provenance=prov, inputs=[mese, mask, o.fat_mask])
    return MapsOutcome(Path(out_dir), written, int(np.isfinite(maps[keys[0]].data).sum()))


def fit_t1_maps(series_path: Path, out_dir: Path, *, kind: str | None = None, mask: Path | None = None,
                b1: Path | None = None, prefix: str | None = None, threads: int = 2, force: bool = False,
                progress: bool = True) -> MapsOutcome:
    """Fit a T1 series (IR, SR or VFA; ``kind`` overrides the series') and write ``PREFIX_T1map``
    (+ ``_desc-m0_T1map``, ``_desc-r2_T1map``, ``_desc-flag_T1map``, IR: ``_desc-efficiency_T1map``).

    ``b1``: a B1 map on the same grid (VFA); ``mask``: a 3-D mask on the same grid.
    """
    import numpy as np

    from alsseg.io import load_t1_series
    from alsseg.io.maps import bids_prefix, map_paths, write_maps
    from alsseg.relax.volume import fit_t1_volume

    _check_destination(out_dir, prefix)
    series = load_t1_series(series_path, kind=kind)
    if kind and series.kind != kind:
        series = replace(series, kind=kind)
    prefix = prefix or bids_prefix(series.source or series_path)
    keys = ["t1_ms", "t1_m0", "t1_r2", "t1_flag"] + (["t1_efficiency"] if series.kind == "IR" else [])
    paths = map_paths(out_dir, prefix, keys)
    if not force and _up_to_date(paths.values(), series_path):
        return MapsOutcome(Path(out_dir), [], up_to_date=True)
    maps = fit_t1_volume(series, mask, b1=b1, n_jobs=threads, progress=progress)
    prov = {"Sources": [str(series_path)], "Kind": series.kind}
    written = write_maps(maps, out_dir, prefix, provenance=prov, inputs=[series_path, mask, b1])
    return MapsOutcome(Path(out_dir), written, int(np.isfinite(maps["t1_ms"].data).sum()))
