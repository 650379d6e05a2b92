"""Inference time, file in → file out, model load included, for a bilateral calf volume.

A synthetic subject is rendered on a 256 x 256 x 30 grid (1.6 x 1.6 x 7 mm) and written as
NIfTI; then ``alsseg segment`` runs on it (a) in-process (model load + read + predict + write)
and (b) as a fresh ``alsseg`` process (adds interpreter start and imports). Median of repeats.

    python benchmarks/bench_seg_speed.py --model lowerleg-unet --repeats 3 [--device cuda] [--confidence] [--without-mirror-tta]

The default ``alsseg segment`` runs with mirror test-time augmentation (two passes per network).
``--confidence`` also times ``alsseg segment --confidence`` (per-muscle confidence, from the
same two passes), ``--without-mirror-tta`` also ``alsseg segment --no-mirror-tta`` (one pass),
alternating with the default runs so all see the same machine load.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _machine import machine  # benchmarks/_machine.py


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lowerleg-unet")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--shape", default="256,256,30")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (alsseg segment --threads)")
    ap.add_argument("--device", default="cpu", help="cpu (the target's machine) or cuda")
    ap.add_argument("--confidence", action="store_true", help="also time segment --confidence")
    ap.add_argument("--without-mirror-tta", action="store_true", help="also time segment --no-mirror-tta")
    args = ap.parse_args(argv)

    from alsseg.io import save_nifti
    from alsseg.synth import make_subject, render_contrast
    from alsseg.synth.grid import Grid

    shape = tuple(int(v) for v in args.shape.split(","))
    grid = Grid.axial(shape, (1.6, 1.6, 7.0))
    subj = make_subject(123456)
    img = render_contrast(subj, grid, contrast="mese_e1", rng=np.random.default_rng(0))
    tmp = Path(tempfile.mkdtemp())
    src = save_nifti(img, tmp / "calf_T2w.nii.gz")

    from alsseg.cli import main as cli

    modes = [""] + ["--confidence"] * args.confidence + ["--no-mirror-tta"] * args.without_mirror_tta
    t_in = {m: [] for m in modes}
    t_sub = {m: [] for m in modes}
    for r in range(args.repeats):
        for m in modes:
            t = time.perf_counter()
            assert cli(["segment", str(src), "--out", str(tmp / f"in{r}{m}"), "--model", args.model, "-q",
                        "--threads", str(args.threads), "--device", args.device] + ([m] if m else [])) == 0
            t_in[m].append(time.perf_counter() - t)
    for r in range(args.repeats):
        for m in modes:
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "alsseg", "segment", str(src), "--out", str(tmp / f"sub{r}{m}"),
                            "--model", args.model, "-q", "--threads", str(args.threads), "--device", args.device]
                           + ([m] if m else []), check=True)
            t_sub[m].append(time.perf_counter() - t)

    print(f"# inference time, {shape[0]}x{shape[1]}x{shape[2]} NIfTI in -> label NIfTI out, model load "
          f"included; {machine()}, device {args.device}, {args.threads} torch thread(s), "
          f"median of {args.repeats}")
    print("| how | median s | all runs s |")
    print("|---|---|---|")
    for m in modes:
        print(f"| in-process `alsseg.cli.main(['segment', ...{', ' + repr(m) if m else ''}])` | "
              f"{np.median(t_in[m]):.2f} | " + ", ".join(f"{t:.2f}" for t in t_in[m]) + " |")
    for m in modes:
        print(f"| new process `python -m alsseg segment ...{' ' + m if m else ''}` | {np.median(t_sub[m]):.2f} | "
              + ", ".join(f"{t:.2f}" for t in t_sub[m]) + " |")
    for m in modes[1:]:
        print(f"{m} / default: in-process {np.median(t_in[m]) / np.median(t_in['']):.2f}x, "
              f"new process {np.median(t_sub[m]) / np.median(t_sub['']):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
