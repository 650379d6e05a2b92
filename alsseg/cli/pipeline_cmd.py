"""``alsseg run | cohort | stats | report``: one session, a whole study, its statistics, its report.

Thin wrappers of :mod:`alsseg.pipeline`; numerical libraries (and torch, through the
segmentation model) are imported inside the handlers only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _add_common(p: argparse.ArgumentParser) -> None:
    from alsseg.cli import positive_int

    p.add_argument("--model", default="lowerleg-unet",
                   help="segmentation bundle: name under models/ or a path (default: lowerleg-unet)")
    p.add_argument("--mirror-tta", action=argparse.BooleanOptionalAction, default=True,
                   help="segment with left-right mirror test-time augmentation (default on; alsseg segment "
                        "--mirror-tta); --no-mirror-tta: one network pass, faster")
    p.add_argument("--no-t1", action="store_true", help="skip the T1 map even where a T1 series exists")
    p.add_argument("--erode", type=int, default=1, metavar="VOX",
                   help="in-plane erosion of each muscle before the T2/FF/T1 statistics (default 1 voxel; 0 = off)")
    p.add_argument("--max-ff", type=float, default=0.7, metavar="FF",
                   help="exclude voxels with fat fraction above FF from water T2 (default 0.7; 1 = off)")
    p.add_argument("--threads", type=positive_int, default=2, help="threads of the voxel fits (default 2)")
    p.add_argument("--no-figures", action="store_true", help="do not write per-session QC thumbnails")
    p.add_argument("--slice-profile", metavar="PRESET|TBW_EXC,TBW_REF,RATIO|RATIO,TRANSITION",
                   help="MESE slice profile of your sequence: a preset (siemens = default, sinc-tbw2, generic, ideal; "
                   "docs/relax.md), Hanning-sinc pulse parameters, or an erf-edged slab, e.g. 1.2,0.12")
    p.add_argument("--b1", choices=("smooth", "voxel"), default="smooth",
                   help="smooth (default): a smooth B1 field per slice with water T2 refitted; voxel: one B1 per voxel")


def _options(args, labels_from=None):
    from alsseg.pipeline import PipelineOptions
    from alsseg.quant import QuantOptions

    if args.erode < 0:
        from alsseg.io.errors import InputError
        raise InputError(None, f"--erode {args.erode}: must be >= 0")
    import math

    from alsseg.io.errors import InputError

    if not (math.isfinite(args.max_ff) and 0 < args.max_ff <= 1):
        raise InputError(None, f"--max-ff {args.max_ff}: a fat fraction must be in (0, 1] (1 = no exclusion)")
    max_ff = None if args.max_ff >= 1 else args.max_ff
    profile = None
    if args.slice_profile:
        from alsseg.relax.profiles import parse_slice_profile

        parse_slice_profile(args.slice_profile)  # refuse a bad value before any work
        profile = args.slice_profile
    return PipelineOptions(model=args.model, mirror_tta=args.mirror_tta, labels_from=labels_from, fit_t1=not args.no_t1, slice_profile=profile, b1=args.b1,
                           quant=QuantOptions(erode_voxels=args.erode, max_fat_fraction=max_ff),
                           figures=not args.no_figures, threads=args.threads)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``run``, ``cohort``, ``stats`` and ``report``."""
    from alsseg.cli import add_quiet, positive_int

    p = sub.add_parser("run", help="one session: segment → fit T2 (+T1) → per-muscle table → QC figure",
                       description="Process one session: segment the muscles (or take --labels), fit the "
                       "two-component EPG water T2 / fat fraction / B1 maps (and T1 where a T1 series exists), "
                       "quantify per muscle and side, write BIDS derivatives and a QC thumbnail into --out.")
    p.add_argument("session", help="BIDS session folder (sub-X/ses-Y or its anat folder), a MESE file "
                   "(4-D NIfTI + sidecar or _echo-N_ file) or a DICOM folder")
    p.add_argument("--out", required=True, help="derivative folder (created; resumed if made by alsseg from the same source)")
    p.add_argument("--labels", help="use this label map (on the MESE grid) instead of segmenting")
    p.add_argument("--t1", help="T1 series (when SESSION is not a BIDS session folder)")
    p.add_argument("--subject", help="subject id when it cannot be read from the path (sub-XX)")
    p.add_argument("--session-id", help="session id when it cannot be read from the path (ses-YY)")
    p.add_argument("--force", action="store_true", help="redo the session even if it is finished")
    _add_common(p)
    add_quiet(p)
    p.set_defaults(func=cmd_run)

    c = sub.add_parser("cohort", help="every session of a BIDS dataset (parallel, resumable, shardable)",
                       description="Process every session of a BIDS dataset into --out. Finished sessions are "
                       "skipped (a killed run resumes); a failed session is recorded and the others go on; "
                       "--shard i/n processes every n-th session starting at the i-th (cluster job arrays). "
                       "Then `alsseg stats OUT` and `alsseg report OUT`.")
    c.add_argument("bids_root", help="BIDS dataset root")
    c.add_argument("--out", help="derivative folder (default BIDS_ROOT/derivatives/alsseg)")
    c.add_argument("--jobs", type=positive_int, default=1, help="sessions in parallel (processes; default 1)")
    c.add_argument("--shard", help="i/n: only the i-th of n shares of the sessions (1-based)")
    c.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the sessions on a Dask cluster: its scheduler address (tcp://host:8786), or "
                   "'local' for a LocalCluster of --jobs workers (needs alsseg[dask]; default: this "
                   "machine's process pool, which is faster on one machine; see docs/pipeline.md)")
    c.add_argument("--labels-from", metavar="DERIVATIVE",
                   help="take label maps from BIDS_ROOT/derivatives/DERIVATIVE (e.g. groundtruth) instead of segmenting")
    c.add_argument("--no-stats", action="store_true", help="do not run stats + report at the end")
    _add_common(c)
    add_quiet(c)
    c.set_defaults(func=cmd_cohort, keep_partial=True)  # finished sessions are kept: a rerun resumes

    s = sub.add_parser("stats", help="statistics of a processed cohort against groups and motor measures",
                       description="Collect the per-session tables of OUT and compute: patients vs controls "
                       "(Welch, Mann–Whitney, Hedges g), correlations with MVIC / CMAP (Pearson, Spearman, CI), "
                       "correlation of the change between visits, abnormal-muscle counts (z > 2), BH-FDR, and "
                       "mixed models. Writes OUT/group/stats_*.tsv.")
    s.add_argument("out", help="derivative folder written by `alsseg cohort`")
    s.add_argument("--bids", help="source BIDS root (default: the one recorded in OUT)")
    s.add_argument("--motor", help="motor table to use instead of BIDS_ROOT/phenotype/motor.tsv")
    s.add_argument("--no-mixed", action="store_true", help="skip the mixed models (faster)")
    add_quiet(s)
    s.set_defaults(func=cmd_stats)

    r = sub.add_parser("report", help="self-contained HTML report of a processed cohort",
                       description="Write OUT/group/report.html: a summary of the founding study's findings beside "
                       "this cohort's (estimate, 95 % CI, p), the QC warnings, then box plots, patients-only "
                       "scatter plots, change between visits, abnormal-muscle counts, collapsed tables and "
                       "per-session thumbnails that open every slice.")
    r.add_argument("out", help="derivative folder written by `alsseg cohort`")
    r.add_argument("--bids", help="source BIDS root (default: the one recorded in OUT)")
    add_quiet(r)
    r.set_defaults(func=cmd_report)


# ------------------------------------------------------------------------------------ handlers
def cmd_run(args) -> int:
    from alsseg import pipeline
    from alsseg.io.atomic import check_output_folder
    from alsseg.pipeline.jobs import output_lock

    job, root = pipeline.session_job_from_path(args.session, args.labels, args.t1, args.subject, args.session_id)
    opts = _options(args)
    out = check_output_folder(args.out)

    with output_lock(out):
        return _run_locked(args, job, root, opts, out)


def _run_locked(args, job, root, opts, out) -> int:
    from alsseg import pipeline

    pipeline.prepare_output(out, str(Path(root).resolve()), opts)
    from alsseg.progress import progress_bar

    bar = progress_bar(total=6, desc=job.name, unit="stage", show=not args.quiet, leave=False,
                       bar_format="{desc}: {n}/{total} stages [{elapsed}] {postfix}")

    def stage(name):
        bar.set_postfix_str(name)
        bar.update(1)

    res = pipeline.run_session(job, out, opts, stage=stage, force=args.force)
    bar.close()
    if res.status == "failed":  # one line; run_verb removes what this run wrote (the _failed.json too)
        print(f"alsseg: error: {res.error if res.input_error else job.name + ': ' + res.error}", file=sys.stderr)
        return 2 if res.input_error else 1
    if not args.quiet:
        import pandas as pd

        if res.status == "skipped":
            print(f"{job.name}: already finished in {out} (use --force to redo)")
        tsv = pipeline.bids_file(out, job.subject, job.session, "muscles", ext=".tsv")
        t = pd.read_csv(tsv, sep="\t", na_values="n/a")
        cols = ["muscle", "side", "volume_ml", "t2_water_ms", "fat_fraction", "b1", "t1_ms", "fit_fail_fraction", "cut_fov"]
        print(t[[c for c in cols if c in t]].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        print(f"{job.name}: {res.status} in {res.seconds:.1f} s → {tsv}")
    return 0


def cmd_cohort(args) -> int:
    from alsseg import pipeline
    from alsseg.io.atomic import check_output_folder

    out = check_output_folder(Path(args.out) if args.out else Path(args.bids_root) / "derivatives" / "alsseg")
    opts = _options(args, labels_from=args.labels_from)
    res = pipeline.run_cohort(args.bids_root, out, opts, jobs=args.jobs,
                              shard=pipeline.parse_shard(args.shard), quiet=args.quiet, scheduler=args.scheduler)
    n = {k: sum(r.status == k for r in res) for k in ("done", "skipped", "failed")}
    for r in res:
        if r.status == "failed":
            print(f"alsseg: {r.name}: failed: {r.error}", file=sys.stderr)
    if not args.quiet:
        print(f"{len(res)} session(s): {n['done']} done, {n['skipped']} already finished, {n['failed']} failed → {out}")
    if not args.no_stats and args.shard is None:
        _, status = pipeline.collect_tables(out)
        if (status["status"] == "done").any():
            html = pipeline.run_report(out, args.bids_root)
            if not args.quiet:
                print(f"statistics: {out / pipeline.GROUP_DIR}/stats_*.tsv; report: {html}")
    return 1 if n["failed"] and not (n["done"] or n["skipped"]) else 0


def cmd_stats(args) -> int:
    from alsseg import pipeline, stats

    res = pipeline.run_stats(args.out, args.bids, args.motor, stats.StatsOptions(mixed_model=not args.no_mixed))
    if not args.quiet:
        gc = res["group_comparison"]
        key = gc[gc["muscle"].isin(["TA", "anterior", "all"])]
        cols = ["measure", "muscle", "n_patients", "n_controls", "difference", "welch_p", "hedges_g"]
        print("patients vs controls (subject means, baseline):")
        print(key[cols].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        if "motor_correlation" in res:
            mc = res["motor_correlation"]
            mc = mc[(mc["population"] == "all") & mc["muscle"].isin(["anterior"])]
            print("\ncorrelation with motor measures (anterior compartment, subject means, baseline):")
            print(mc[["measure", "motor", "n", "pearson_r", "pearson_ci_low", "pearson_ci_high", "pearson_p"]]
                  .to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        print(f"\ntables: {Path(args.out) / pipeline.GROUP_DIR}/stats_*.tsv")
    return 0


def cmd_report(args) -> int:
    from alsseg import pipeline

    html = pipeline.run_report(args.out, args.bids)
    if not args.quiet:
        print(html)
    return 0
