"""Cohort engine: this machine's process pool vs a Dask ``LocalCluster`` on the same sessions.

Both run ``alsseg.pipeline.run_cohort`` on a synthetic BIDS dataset of N small sessions
(noiseless two-component EPG MESE, 17 echoes, 26 × 14 × 4 voxels, ground-truth labels, no T1,
no figures) with the same number of workers; the Dask column includes starting and stopping
the cluster, as ``alsseg cohort --scheduler local`` does. Median of repeats, wall seconds.

    python benchmarks/bench_cohort_scheduler.py [--sessions 8] [--workers 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _machine import machine  # benchmarks/_machine.py

REPO = Path(__file__).resolve().parents[1]


def _writer():
    spec = importlib.util.spec_from_file_location("pipeline_conftest", REPO / "tests" / "pipeline" / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.write_tiny_bids


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    from alsseg import pipeline

    opts = pipeline.PipelineOptions(labels_from="groundtruth", fit_t1=False, figures=False, threads=1)
    sessions = tuple((f"sub-{i:02d}", "ses-01", 0.3 * i) for i in range(1, a.sessions + 1))
    times = {"serial (--jobs 1)": [], f"process pool (--jobs {a.workers})": [],
             f"Dask LocalCluster ({a.workers} workers)": []}
    with tempfile.TemporaryDirectory() as d:
        root = _writer()(Path(d) / "bids", sessions=sessions,
                         participants=tuple((s, "ALS") for s, _, _ in sessions))
        for r in range(a.repeats):
            for label, kw in zip(times, ({"jobs": 1}, {"jobs": a.workers}, {"jobs": a.workers, "scheduler": "local"})):
                out = Path(d) / f"out-{r}-{len(times[label])}-{label.split()[0]}"
                t0 = time.perf_counter()
                res = pipeline.run_cohort(root, out, opts, quiet=True, **kw)
                times[label].append(time.perf_counter() - t0)
                assert all(x.status == "done" for x in res), res
    print(f"# cohort engine, {a.sessions} sessions, median of {a.repeats}; {machine()}")
    print(f"{'engine':36s} {'wall_s':>8s} {'s/session':>10s}")
    for label, ts in times.items():
        med = statistics.median(ts)
        print(f"{label:36s} {med:8.2f} {med / a.sessions:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
