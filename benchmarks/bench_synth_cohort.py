"""Speed of the synthetic-data generator: one subject on a training-size grid, and the default cohort.

Prints a table (median of repeats, wall and CPU seconds) with the machine named. No peer tool
makes lower-leg phantoms, so there is no side-by-side column; the targets of issue 4 are
"one 256×256×30 subject in ≤ 2 s" and "the default cohort in < 2 min on 2 cores".

    python benchmarks/bench_synth_cohort.py [--repeats 3] [--skip-cohort] [--workers 2]

The "training cases" row is the mean over subjects 0–3 of ``alsseg.cases.synthetic_subject_cases``
(the dataset builder's unit of work: anatomy on two random grids, four contrasts, the random
and DWI-b0 ones with acquisition artefacts).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _machine import machine  # benchmarks/_machine.py


def _time(fn, repeats):
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-cohort", action="store_true")
    args = ap.parse_args(argv)
    import numpy as np

    from alsseg.synth import Grid, make_subject, render_contrast, render_label_map, render_tissues
    from alsseg.synth.cohort import make_cohort
    from alsseg.synth.render import MeseProtocol, mese_dictionary

    print(f"# machine: {machine()}")
    print(f"# median of {args.repeats} repeats; wall and CPU seconds (CPU time is what the machine's other "
          "jobs do not change much)")
    print(f"{'task':58s} {'wall s':>8s} {'cpu s':>8s}")
    subj = make_subject(3, disease="als")
    grid = Grid.axial((256, 256, 30), (1.2, 1.2, 6.0))
    rows = []
    t = _time(lambda: mese_dictionary.cache_clear() or mese_dictionary(MeseProtocol()), 1)
    rows.append(("EPG dictionary for the default MESE protocol (once)", t))
    rows.append(("label map 256x256x30, 6 mm slices (2 samples/slice)", _time(lambda: render_label_map(subj, grid), args.repeats)))
    rows.append(("label map 256x256x30, 1 sample/slice (n_sub=1)", _time(lambda: render_label_map(subj, grid, n_sub=1), args.repeats)))
    tv = render_tissues(subj, grid)
    rows.append(("+ contrast 'random' (from the tissue volume)",
                 _time(lambda: render_contrast(subj, grid, "random", np.random.default_rng(0), tissues=tv), args.repeats)))
    rows.append(("+ contrast 'mese_e1' (EPG, one echo)",
                 _time(lambda: render_contrast(subj, grid, "mese_e1", tissues=tv), args.repeats)))
    rows.append(("+ contrast 't1w'", _time(lambda: render_contrast(subj, grid, "t1w", tissues=tv), args.repeats)))
    from alsseg.cases import synthetic_subject_cases

    four = ["mese_e1", "t1w", "dwi_b0", "random"]
    rows.append(("training cases of one subject (4 contrasts, 2 random grids)",
                 _time(lambda: [synthetic_subject_cases(s, four) for s in (0, 1, 2, 3)], 1)))
    rows[-1] = (rows[-1][0], tuple(v / 4 for v in rows[-1][1]))  # per subject, mean of seeds 0-3
    for name, (w, c) in rows:
        print(f"{name:58s} {w:8.2f} {c:8.2f}")
    if not args.skip_cohort:
        import resource

        tmp = Path(tempfile.mkdtemp(prefix="alsseg-cohort-"))
        try:
            r0s, r0c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            make_cohort(tmp / "bids", workers=args.workers, progress=False)
            wall = time.perf_counter() - t0
            r1s, r1c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = sum(getattr(b, f) - getattr(a, f) for a, b in ((r0s, r1s), (r0c, r1c)) for f in ("ru_utime", "ru_stime"))
            size = sum(f.stat().st_size for f in (tmp / "bids").rglob("*") if f.is_file()) / 2 ** 20
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"{'default cohort (11 ALS x 2 + 8 controls = 30 sessions), ' + str(args.workers) + ' workers':58s} "
              f"{wall:8.1f} {cpu:8.1f}   ({size:.0f} MiB written; cpu = this process + workers; "
              f"load average {os.getloadavg()[0]:.1f} at the end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
