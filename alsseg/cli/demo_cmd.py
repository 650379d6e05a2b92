"""``alsseg demo``: the whole product on a synthetic Bryan-et-al.-like cohort, in one command."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``demo``."""
    from alsseg.cli import add_quiet, positive_int

    p = sub.add_parser(
        "demo", help="generate the default synthetic ALS cohort and run everything on it",
        description="Generate the default synthetic cohort (11 ALS patients scanned twice, 8 controls; "
        "MESE, T1 series, motor measures, ground truth) into OUT/bids, then segment, fit water T2 / fat "
        "fraction / B1 / T1, quantify every muscle, compute the statistics of Bryan et al. (1998) and write "
        "the HTML report into OUT/bids/derivatives/alsseg/group/report.html, with the comparison against "
        "the ground truth. Resumable: run it again to finish an interrupted demo.")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--n-als", type=int, default=11, help="ALS patients (default 11)")
    p.add_argument("--n-controls", type=int, default=8, help="controls (default 8)")
    p.add_argument("--seed", type=int, default=0, help="master seed of the cohort (default 0)")
    p.add_argument("--jobs", type=positive_int, default=1, help="sessions in parallel (default 1; fits use 2 threads)")
    p.add_argument("--model", default="lowerleg-unet", help="segmentation bundle (default lowerleg-unet)")
    p.add_argument("--truth-labels", action="store_true",
                   help="use the ground-truth label maps instead of the segmentation model")
    add_quiet(p)
    p.set_defaults(func=cmd_demo, keep_partial=True)  # resumable: a rerun finishes the work


def cmd_demo(args) -> int:
    from alsseg.io.errors import InputError
    from alsseg.pipeline import run_demo

    if args.n_als < 2 or args.n_controls < 2:
        raise InputError(None, "--n-als and --n-controls must be at least 2 (group statistics)")
    res = run_demo(args.out, n_als=args.n_als, n_controls=args.n_controls, seed=args.seed, jobs=args.jobs,
                   model=args.model, use_truth_labels=args.truth_labels, quiet=args.quiet)
    if args.quiet:
        return 0
    acc = res.accuracy
    allrow = acc[acc["muscle"] == "all"].iloc[0] if len(acc) else None
    print(f"\nsegmentation: {res.segmentation}")
    if allrow is not None:
        t2 = allrow.get("median_abs_t2_error_ms", float("nan"))
        vol = allrow.get("median_abs_volume_error_pct", float("nan"))
        print(f"accuracy against ground truth (median over muscles, all sessions): |water T2 error| "
              f"{t2:.2f} ms (target ≤ 1), |volume error| {vol:.1f} % (target ≤ 5)")
    print("\nkey findings (measured | ground truth):")
    for _, r in res.findings.iterrows():
        print(f"  {r['finding']:<42s} {r['statistic']:<9s} {r['value_measured']:7.2f} (p {r['p_measured']:.2g})"
              f" | {r['value_truth']:7.2f} (p {r['p_truth']:.2g})")
    secs = ", ".join(f"{k} {v:.0f} s" for k, v in res.seconds.items())
    print(f"\ntime: {secs}")
    print(f"report: {res.report}")
    print(f"tables: {res.out_dir / 'group'}", file=sys.stdout)
    return 0
