"""``alsseg fit-t2`` and ``alsseg fit-t1``: relaxometry maps from a MESE / T1 series.

Thin wrappers of :func:`alsseg.relax.volume.fit_t2_volume` / :func:`fit_t1_volume`; numpy and
the models are imported inside the handlers so ``alsseg --help`` stays instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from alsseg.cli import add_quiet
from alsseg.io.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``fit-t2`` and ``fit-t1`` to the alsseg parser."""
    p = sub.add_parser(
        "fit-t2", help="water T2 / fat fraction / B1 maps (two-component EPG) or mono-exponential T2",
        description="Fit a multi-echo spin-echo series voxel by voxel and write BIDS-derivative maps "
        "(PREFIX_desc-water_T2map, _desc-fatfraction_T2map, _desc-b1_T2map, _desc-m0_T2map, "
        "_desc-r2_T2map, _desc-residual_T2map, _desc-flag_T2map; _desc-mono_T2map with --model mono/both) "
        "on the grid of the input. Acquisition values come from the headers; flags override them.")
    p.add_argument("mese", type=Path, help="4-D NIfTI + JSON sidecar, BIDS _echo-N_MESE files, or a DICOM folder")
    p.add_argument("--out", "-o", type=Path, required=True, help="output folder")
    p.add_argument("--mask", type=Path, help="3-D mask NIfTI on the same grid (default: signal above 5 %% of the 99th percentile)")
    p.add_argument("--model", choices=("epg", "mono", "both"), default="epg", help="default: epg")
    p.add_argument("--mono-method", choices=("loglinear", "nlls", "nlls_offset"), default="nlls")
    p.add_argument("--skip-first", action="store_true", help="mono: drop echo 1")
    p.add_argument("--prefix", help="output name prefix (default: the input's BIDS entities)")
    g = p.add_argument_group("acquisition overrides")
    g.add_argument("--echo-spacing-ms", type=float, help="echo spacing (TE_n = n·ESP); also lets a bare 4-D NIfTI in")
    g.add_argument("--tr-ms", type=float, help="repetition time")
    g.add_argument("--refocus-deg", type=float, help="nominal refocusing flip angle")
    g.add_argument("--excite-deg", type=float, help="nominal excitation flip angle")
    g.add_argument("--fat-t2-ms", type=float, help="fat T2 (default 151 ms)")
    g.add_argument("--fat-mask", type=Path,
                   help="calibrate the fat T2 on these (subcutaneous fat) voxels instead: 3-D mask on the same grid")
    g.add_argument("--water-t1-ms", type=float, help="water T1 (default 1400 ms)")
    g.add_argument("--fat-t1-ms", type=float, help="fat T1 (default 365 ms)")
    g.add_argument("--t2-range", type=float, nargs=2, metavar=("MIN", "MAX"), default=(10.0, 100.0),
                   help="water T2 search range, ms (default 10 100)")
    g.add_argument("--b1-range", type=float, nargs=2, metavar=("MIN", "MAX"), default=(0.5, 1.4),
                   help="B1 search range (default 0.5 1.4)")
    g.add_argument("--slice-profile", metavar="PRESET|TBW_EXC,TBW_REF,RATIO|RATIO,TRANSITION",
                   help="slice profile: a preset (siemens = default, sinc-tbw2, generic, ideal; docs/relax.md), "
                   "Hanning-sinc pulse parameters or an erf-edged slab")
    g.add_argument("--b1", choices=("smooth", "voxel"), default="smooth",
                   help="smooth (default): a smooth B1 field per slice, water T2 / FF refitted with it held "
                   "(desc-b1 = the field, desc-b1voxel = the first pass); voxel: one B1 per voxel")
    r = p.add_argument_group("run")
    r.add_argument("--jobs", "-j", type=int, default=2, help="worker threads (default 2)")
    r.add_argument("--chunk-voxels", type=int, default=16384, help="voxels per chunk (memory bound)")
    r.add_argument("--force", action="store_true", help="refit even if all outputs exist and are newer than the input")
    add_quiet(p)
    p.set_defaults(func=_fit_t2)

    q = sub.add_parser(
        "fit-t1", help="T1 map from inversion recovery, saturation recovery or variable flip angle",
        description="Fit a T1 series (IR with polarity restoration, SR/multi-TR, VFA with optional B1 map) "
        "and write PREFIX_T1map (+ _desc-m0_T1map, _desc-r2_T1map, _desc-flag_T1map).")
    q.add_argument("series", type=Path, help="T1 series: 4-D NIfTI + sidecar, BIDS files, or DICOM folder")
    q.add_argument("--out", "-o", type=Path, required=True, help="output folder")
    q.add_argument("--mask", type=Path, help="3-D mask on the same grid")
    q.add_argument("--b1", type=Path, help="VFA: B1 map on the same grid (e.g. _desc-b1_T2map)")
    q.add_argument("--kind", choices=("IR", "SR", "VFA"), help="override the series kind")
    q.add_argument("--prefix", help="output name prefix")
    q.add_argument("--jobs", "-j", type=int, default=2)
    q.add_argument("--force", action="store_true", help="refit even if outputs are up to date")
    add_quiet(q)
    q.set_defaults(func=_fit_t1)


def _up_to_date(paths, source: Path) -> bool:
    try:
        src = source.stat().st_mtime
        return all(p.exists() and p.stat().st_mtime >= src for p in paths)
    except OSError:
        return False


def _load_mese(args):
    from alsseg.io import load_mese
    from alsseg.io.nifti import load_nifti

    try:
        return load_mese(args.mese)
    except InputError:
        path = args.mese
        if args.echo_spacing_ms and path.is_file() and path.name.endswith((".nii", ".nii.gz")):
            import numpy as np

            from alsseg.io import MeseSeries

            img = load_nifti(path, ndim=4)
            te = args.echo_spacing_ms * np.arange(1, img.shape[3] + 1)
            return MeseSeries(image=img, echo_times_ms=te, tr_ms=args.tr_ms, source=path)
        raise


def _fit_t2(args) -> int:
    import numpy as np

    from alsseg.relax.acquisition import MeseAcquisition
    from alsseg.relax.volume import (EPG_MAPS, MONO_MAPS, acquisition_provenance, bids_prefix,
                                     fit_t2_volume, map_paths, write_maps)

    for name, rng in (("--t2-range", args.t2_range), ("--b1-range", args.b1_range)):
        if not (rng[0] > 0 and rng[1] > rng[0]):
            raise InputError(None, f"{name} {rng[0]} {rng[1]} is empty or not positive")
    series = _load_mese(args)
    prefix = args.prefix or bids_prefix(series.source or args.mese)
    keys = ([k for k in EPG_MAPS if k != "b1voxel" or args.b1 == "smooth"] if args.model in ("epg", "both") else []) + \
           (list(MONO_MAPS) if args.model in ("mono", "both") else [])
    paths = map_paths(args.out, prefix, keys)
    if not args.force and _up_to_date(paths.values(), args.mese):
        if not args.quiet:
            print(f"alsseg fit-t2: outputs in {args.out} are up to date (use --force to refit)")
        return 0
    overrides = {k: getattr(args, k) for k in ("tr_ms", "refocus_deg", "excite_deg", "fat_t2_ms",
                                               "water_t1_ms", "fat_t1_ms") if getattr(args, k) is not None}
    if args.slice_profile is not None:
        from alsseg.relax.profiles import parse_slice_profile

        overrides["profile"] = parse_slice_profile(args.slice_profile)
    if args.echo_spacing_ms is not None:
        overrides["echo_times_ms"] = args.echo_spacing_ms * np.arange(1, series.n_echoes + 1)
    acq = None
    if args.model in ("epg", "both"):
        try:
            acq = MeseAcquisition.from_series(series, **overrides)
        except InputError as exc:
            raise InputError(exc.path or args.mese, exc.problem) from None
        if args.fat_mask is not None:
            if args.fat_t2_ms is not None:
                raise InputError(None, "give either --fat-t2-ms or --fat-mask, not both")
            from alsseg.relax.fat import calibrate_fat_t2
            from alsseg.relax.volume import as_mask

            fat = as_mask(args.fat_mask, series.image, "fat mask")
            try:
                fat_t2, fat_b1 = calibrate_fat_t2(series.image.data, fat, acq)
            except InputError as exc:
                raise InputError(args.fat_mask, exc.problem) from None
            acq = acq.with_(fat_t2_ms=fat_t2)
            if not args.quiet:
                print(f"alsseg fit-t2: fat T2 calibrated on {int(fat.sum())} voxels: {fat_t2:.1f} ms (B1 {fat_b1:.2f})")
    elif overrides.get("echo_times_ms") is not None:
        from dataclasses import replace

        series = replace(series, echo_times_ms=overrides["echo_times_ms"])
    mask = args.mask
    maps = fit_t2_volume(series, acq, mask, model=args.model, mono_method=args.mono_method,
                         skip_first=args.skip_first, n_jobs=args.jobs, chunk_voxels=args.chunk_voxels,
                         progress=not args.quiet, t2_range_ms=tuple(args.t2_range), b1_range=tuple(args.b1_range),
                         b1=args.b1)
    prov = {"Sources": [str(args.mese)], "Model": args.model, "MonoMethod": args.mono_method,
            "SkipFirstEcho": bool(args.skip_first), "T2RangeMs": list(args.t2_range),
            "B1Range": list(args.b1_range), "B1Mode": args.b1, "SliceProfile": args.slice_profile or "siemens", "Acquisition": acquisition_provenance(acq),
            "EchoTimesMs": np.asarray(series.echo_times_ms, float).tolist()}
    written = write_maps(maps, args.out, prefix, provenance=prov, inputs=[args.mese, args.mask, args.fat_mask])
    if not args.quiet:
        fitted = int(np.isfinite(maps[keys[0]].data).sum())
        print(f"alsseg fit-t2: {fitted} voxels fitted; wrote {len(written)} maps to {args.out}")
    return 0


def _fit_t1(args) -> int:
    from dataclasses import replace

    import numpy as np

    from alsseg.io import load_t1_series
    from alsseg.relax.volume import bids_prefix, fit_t1_volume, map_paths, write_maps

    series = load_t1_series(args.series, kind=args.kind)
    if args.kind and series.kind != args.kind:
        series = replace(series, kind=args.kind)
    prefix = args.prefix or bids_prefix(series.source or args.series)
    keys = ["T1", "m0", "r2", "flag"] + (["efficiency"] if series.kind == "IR" else [])
    paths = map_paths(args.out, prefix, keys, suffix="T1map")
    if not args.force and _up_to_date(paths.values(), args.series):
        if not args.quiet:
            print(f"alsseg fit-t1: outputs in {args.out} are up to date (use --force to refit)")
        return 0
    maps = fit_t1_volume(series, args.mask, b1=args.b1, n_jobs=args.jobs, progress=not args.quiet)
    prov = {"Sources": [str(args.series)], "Kind": series.kind}
    written = write_maps(maps, args.out, prefix, suffix="T1map", provenance=prov,
                         inputs=[args.series, args.mask, args.b1])
    if not args.quiet:
        print(f"alsseg fit-t1: {int(np.isfinite(maps['T1'].data).sum())} voxels fitted; "
              f"wrote {len(written)} maps to {args.out}")
    return 0
