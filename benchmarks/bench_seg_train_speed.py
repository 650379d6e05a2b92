"""Training throughput of a recipe (iterations and patches per second) on the CPU and/or a GPU,
at several batch sizes: the figures behind choosing where and how to train a model.

Each cell is one ``alsseg.seg.train.train`` call of ``--iterations`` iterations on a synthetic
dataset without a validation split (so no validation in the timed loop); the time is the run's
own ``elapsed_s`` (the loop: patch sampling, augmentation, forward, backward, step), which
leaves out preprocessing and start-up.

    python benchmarks/bench_seg_train_speed.py --recipe training/lowerleg-unet-stage5.yaml \\
        --devices cpu --batch 16 --iterations 50
    python benchmarks/bench_seg_train_speed.py --devices cuda --batch 16,64,128 --iterations 300
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

from _machine import machine  # benchmarks/_machine.py


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="training/lowerleg-unet-stage5.yaml")
    ap.add_argument("--devices", default="cpu", help="comma-separated: cpu, cuda")
    ap.add_argument("--batch", default="16", help="comma-separated batch sizes")
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the recipe's)")
    ap.add_argument("--data", help="an nnU-Net raw dataset (default: 8 synthetic subjects, made here)")
    ap.add_argument("--work", help="folder for the dataset and runs (default: a temporary one)")
    args = ap.parse_args(argv)

    import torch

    from alsseg.seg.recipe import load_recipe
    from alsseg.seg.train import train

    work = Path(args.work or tempfile.mkdtemp())
    data = args.data
    if data is None:
        from alsseg.seg.dataset import write_dataset
        from alsseg.cases import synthetic_cases

        data = work / "Dataset900_Speed"
        if not (data / "dataset.json").is_file():
            cases = synthetic_cases(range(900000, 900008), ["random", "mese_e1", "t1w"], grids_per_subject=1)
            write_dataset(data, cases, val_fraction=0.0)
    base = load_recipe(args.recipe)
    rows = []
    for dev in args.devices.split(","):
        for b in (int(v) for v in args.batch.split(",")):
            tr = replace(base.train, batch_size=b, iterations=args.iterations,
                         iterations_per_epoch=args.iterations, max_minutes=None,
                         num_threads=args.threads or base.train.num_threads)
            run = Path(tempfile.mkdtemp(prefix=f"run-{dev}-{b}-", dir=work)) / "run"  # re-runs in --work: new runs
            train(replace(base, train=tr), data, run, quiet=True, device=dev)
            el = json.loads((run / "run.json").read_text())["elapsed_s"]
            rows.append((dev, b, args.iterations / el, args.iterations * b / el))

    print(f"# training throughput, recipe {base.name} (patch {list(base.train.patch_size)}, "
          f"{base.network.spatial_dims}-D, channels {list(base.network.channels)}), {args.iterations} iterations "
          f"per cell; {machine()}, torch {torch.__version__}")
    print("| device | batch | iterations/s | patches/s |")
    print("|---|---|---|---|")
    for dev, b, its, ps in rows:
        print(f"| {dev} | {b} | {its:.1f} | {ps:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
