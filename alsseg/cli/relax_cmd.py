"""``alsseg fit-t2`` and ``alsseg fit-t1``: relaxometry maps from a MESE / T1 series.

Thin wrappers of :func:`alsseg.pipeline.fit_maps.fit_t2_maps` / :func:`fit_t1_maps`; numpy and
the models are imported inside the handlers so ``alsseg --help`` stays instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from alsseg.cli import add_quiet, positive_float, positive_int


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
    p.add_argument("--mono-method", choices=("loglinear", "nlls", "nlls_offset"), default="loglinear",
                   help="mono-exponential fit (default: loglinear, written as _desc-mono_T2map like `alsseg run`; "
                        "another method or --skip-first is written as _desc-mono<method>[skip1]_T2map)")
    p.add_argument("--skip-first", action="store_true", help="mono: drop echo 1")
    p.add_argument("--prefix", help="output name prefix (default: the input's BIDS entities)")
    g = p.add_argument_group("acquisition overrides")
    g.add_argument("--echo-spacing-ms", type=positive_float, help="echo spacing (TE_n = n·ESP); also lets a bare 4-D NIfTI in")
    g.add_argument("--tr-ms", type=positive_float, help="repetition time")
    g.add_argument("--refocus-deg", type=positive_float, help="nominal refocusing flip angle")
    g.add_argument("--excite-deg", type=positive_float, help="nominal excitation flip angle")
    g.add_argument("--fat-t2-ms", type=positive_float, help="fat T2 (default 151 ms)")
    g.add_argument("--fat-mask", type=Path,
                   help="calibrate the fat T2 on these (subcutaneous fat) voxels instead: 3-D mask on the same grid")
    g.add_argument("--water-t1-ms", type=positive_float, help="water T1 (default 1400 ms)")
    g.add_argument("--fat-t1-ms", type=positive_float, help="fat T1 (default 365 ms)")
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
    r.add_argument("--jobs", "-j", type=positive_int, default=2, help="worker threads (default 2)")
    r.add_argument("--chunk-voxels", type=positive_int, default=16384, help="voxels per chunk (memory bound)")
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
    q.add_argument("--jobs", "-j", type=positive_int, default=2, help="worker threads (default 2)")
    q.add_argument("--force", action="store_true", help="refit even if outputs are up to date")
    add_quiet(q)
    q.set_defaults(func=_fit_t1)


def _t2_options(args):
    from alsseg.pipeline.fit_maps import T2MapOptions

    return T2MapOptions(model=args.model, mono_method=args.mono_method, skip_first=args.skip_first,
                        echo_spacing_ms=args.echo_spacing_ms, tr_ms=args.tr_ms, refocus_deg=args.refocus_deg,
                        excite_deg=args.excite_deg, fat_t2_ms=args.fat_t2_ms, fat_mask=args.fat_mask,
                        water_t1_ms=args.water_t1_ms, fat_t1_ms=args.fat_t1_ms,
                        t2_range_ms=tuple(args.t2_range), b1_range=tuple(args.b1_range), b1=args.b1,
                        slice_profile=args.slice_profile, threads=args.jobs, chunk_voxels=args.chunk_voxels)


def _fit_t2(args) -> int:
    from alsseg.pipeline.fit_maps import fit_t2_maps

    def log(line: str) -> None:
        if not args.quiet:
            print(f"alsseg fit-t2: {line}")

    res = fit_t2_maps(args.mese, args.out, _t2_options(args), mask=args.mask, prefix=args.prefix,
                      force=args.force, progress=not args.quiet, log=log)
    if res.up_to_date:
        log(f"outputs in {args.out} are up to date (use --force to refit)")
    else:
        log(f"{res.n_fitted} voxels fitted; wrote {len(res.written)} maps to {args.out}")
    return 0


def _fit_t1(args) -> int:
    from alsseg.pipeline.fit_maps import fit_t1_maps

    res = fit_t1_maps(args.series, args.out, kind=args.kind, mask=args.mask, b1=args.b1, prefix=args.prefix,
                      threads=args.jobs, force=args.force, progress=not args.quiet)
    if args.quiet:
        return 0
    if res.up_to_date:
        print(f"alsseg fit-t1: outputs in {args.out} are up to date (use --force to refit)")
    else:
        print(f"alsseg fit-t1: {res.n_fitted} voxels fitted; wrote {len(res.written)} maps to {args.out}")
    return 0
