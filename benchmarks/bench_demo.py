"""Speed of the pipeline: ``alsseg run`` on one bilateral session and ``alsseg demo`` end to end.

Prints a table (median of repeats, stage breakdown, machine named). Targets (issue 6):
``alsseg run`` on one bilateral session ≤ 30 s; ``alsseg demo`` ≤ 10 min on a 2-core machine.

Usage::

    python benchmarks/bench_demo.py --work /tmp/bench            # session (3 repeats) + full demo
    python benchmarks/bench_demo.py --work /tmp/bench --no-demo  # only the session
    python benchmarks/bench_demo.py --bids DEMO/bids --no-demo   # time sessions of an existing cohort

The session timing runs the same code as ``alsseg run SESSION --out DIR --force`` (segmentation
by the shipped model when ``models/lowerleg-unet`` exists, else the ground-truth label map, which
is said in the table), fitting water T2 / FF / B1 and T1, quantifying and writing every output.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu}, {os.cpu_count()} cores, load average {load:.1f} at start"


def bench_session(bids: Path, out: Path, repeats: int, use_model: bool) -> list[dict]:
    from alsseg import pipeline
    from alsseg.io.bids import BidsDataset

    ds = BidsDataset(bids)
    s = ds.sessions[0]
    labels_root = None if use_model else bids / "derivatives" / "groundtruth"
    job = pipeline.SessionJob.from_bids(s, labels_root)
    opts = pipeline.PipelineOptions(labels_from=None if use_model else "groundtruth")
    pipeline.prepare_output(out, str(bids.resolve()), opts)
    segmenter = pipeline.BundleSegmenter(opts.model)  # loaded once, on the first repeat
    rows = []
    for _ in range(repeats):
        t = time.perf_counter()
        res = pipeline.run_session(job, out, opts, force=True, segmenter=segmenter)
        if res.status != "done":
            raise SystemExit(f"session failed: {res.error}")
        rows.append({"total": time.perf_counter() - t, **res.stage_seconds})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/alsseg-bench", help="scratch folder")
    ap.add_argument("--bids", help="existing BIDS cohort to take the session from (default: generate one)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-demo", action="store_true", help="skip the end-to-end demo timing")
    ap.add_argument("--demo-jobs", type=int, default=1)
    args = ap.parse_args(argv)
    from alsseg.pipeline import shipped_model_available

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    use_model = shipped_model_available("lowerleg-unet")
    print(f"machine: {machine()}")
    print(f"python {platform.python_version()}, alsseg segmentation: "
          f"{'shipped model lowerleg-unet' if use_model else 'ground-truth labels (no model in models/)'}\n")
    bids = Path(args.bids) if args.bids else None
    if bids is None:
        from alsseg.synth.cohort import make_cohort

        bids = work / "session_bids"
        t = time.perf_counter()
        make_cohort(bids, n_als=1, n_controls=1, visits=1, seed=7, progress=False)
        print(f"generated a 2-subject cohort in {time.perf_counter() - t:.1f} s")
    rows = bench_session(bids, work / "session_out", args.repeats, use_model)
    from alsseg.io import load_nifti

    s0 = sorted(bids.glob("sub-*/ses-*/anat/*_echo-1_MESE.nii.gz"))[0]
    shape = load_nifti(s0).shape
    stages = [k for k in rows[0] if k != "total"]
    print(f"alsseg run, one bilateral session {shape} × 17 echoes (+ IR T1 series), {args.repeats} repeats")
    print(f"{'stage':<12s} {'median s':>9s} {'min s':>7s} {'max s':>7s}")
    for k in ["total"] + stages:
        v = [r[k] for r in rows]
        print(f"{k:<12s} {statistics.median(v):9.2f} {min(v):7.2f} {max(v):7.2f}")
    print(f"target ≤ 30 s: {'met' if statistics.median([r['total'] for r in rows]) <= 30 else 'NOT met'}\n")
    if not args.no_demo:
        demo = work / "demo"
        cmd = [sys.executable, "-m", "alsseg", "demo", "--out", str(demo), "--jobs", str(args.demo_jobs), "-q"]
        if demo.exists():
            import shutil

            shutil.rmtree(demo)
        t = time.perf_counter()
        rc = subprocess.run(cmd).returncode
        total = time.perf_counter() - t
        print(f"alsseg demo (default cohort: 11 ALS × 2 visits + 8 controls = 30 sessions), jobs {args.demo_jobs}")
        print(f"{'end to end':<12s} {total:9.1f} s  (exit {rc}); target ≤ 600 s: {'met' if total <= 600 and rc == 0 else 'NOT met'}")
        acc = demo / "bids" / "derivatives" / "alsseg" / "group" / "accuracy_summary.tsv"
        if acc.is_file():
            import pandas as pd

            a = pd.read_csv(acc, sep="\t").set_index("muscle").loc["all"]
            print(f"accuracy: median |water T2 error| {a['median_abs_t2_error_ms']:.2f} ms, "
                  f"median |volume error| {a['median_abs_volume_error_pct']:.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
