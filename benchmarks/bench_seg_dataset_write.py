"""Where the time of ``alsseg dataset --synthetic`` goes: rendering a subject (one process) and
writing its NIfTI files with 1..N threads (``write_dataset(write_threads=)``), printed as a table.

Rendering runs in ``--workers`` processes in the CLI; writing ran in one thread before
``write_threads`` existed, so on a many-core machine the writer bounded the whole command.

    python benchmarks/bench_seg_dataset_write.py --subjects 3 --threads 1,2 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _machine import machine  # benchmarks/_machine.py

CONTRASTS = "mese_e1,t1w,random,mese_e1,t1w,dixon_water,dwi_b0,random"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=3)
    ap.add_argument("--seed", type=int, default=700)
    ap.add_argument("--threads", default="1,2", help="comma-separated writer thread counts")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    from alsseg.seg.dataset import write_dataset
    from alsseg.cases import synthetic_subject_cases

    cases, render_s = [], []
    for s in range(args.seed, args.seed + args.subjects):
        t = time.perf_counter()
        cases += synthetic_subject_cases(s, CONTRASTS.split(","), grids_per_subject=2)
        render_s.append(time.perf_counter() - t)
    rows = []
    for n in (int(v) for v in args.threads.split(",")):
        times = []
        for _ in range(args.repeats):
            out = Path(tempfile.mkdtemp()) / "ds"
            t = time.perf_counter()
            write_dataset(out, cases, write_threads=n)
            times.append(time.perf_counter() - t)
        rows.append((n, statistics.median(times)))

    per_subject = len(CONTRASTS.split(","))
    print(f"# alsseg dataset --synthetic, {args.subjects} subjects x {per_subject} images on 2 grids each; "
          f"{machine()}; median of {args.repeats}")
    print(f"rendering: {statistics.median(render_s):.2f} s per subject (one process)")
    print("| writer threads | write s (all cases) | write s per subject |")
    print("|---|---|---|")
    for n, t in rows:
        print(f"| {n} | {t:.2f} | {t / args.subjects:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
