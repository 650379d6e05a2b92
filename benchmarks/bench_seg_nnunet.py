"""alsseg U-Net side by side with nnU-Net v2 (2d configuration): same dataset, same training
wall-clock budget on this CPU, same held-out synthetic test images; Dice and inference time.

nnU-Net is not an alsseg dependency: install it apart (``python -m venv --system-site-packages
VENV && VENV/bin/pip install nnunetv2 -c <(echo torch==2.13.0)``). The alsseg dataset folder is
already in the nnU-Net v2 raw layout, so nnU-Net runs on it unchanged::

    export nnUNet_raw=W/raw nnUNet_preprocessed=W/pre nnUNet_results=W/res nnUNet_n_proc_DA=1
    ln -s DATASET W/raw/Dataset501_LowerLegSynth
    VENV/bin/nnUNetv2_plan_and_preprocess -d 501 -c 2d -np 1 -npfp 1
    cp DATASET/splits_final.json W/pre/Dataset501_LowerLegSynth/   # the same validation split
    python benchmarks/bench_seg_nnunet.py --venv VENV --work W --write-trainer [--budget-s 720]
    VENV/bin/nnUNetv2_train 501 2d 0 -device cpu -tr nnUNetTrainer_alssegBudget [-p PLANS]

``nnUNetTrainer_alssegBudget`` (written into the nnU-Net install by ``--write-trainer``) is
nnU-Net's default trainer with ``--iters-per-epoch`` iterations per epoch (its default 2d
batches are large on a CPU) and a wall-clock stop after ``--budget-s`` seconds of training
(checkpoint_final saved).

Two nnU-Net plans can be compared: nnU-Net's own (``nnUNetPlans``: for this dataset batch 40
of 224 × 352 patches, 32–512 features; sized for a GPU) and, written by ``--write-plans
RECIPE``, ``nnUNetPlans_alssegSize``: nnU-Net's plan with the batch size, patch size and
feature counts of an alsseg recipe (its spacing, normalisation and preprocessed data are
nnU-Net's own, so nothing is preprocessed again). The second asks what nnU-Net's training
pipeline (its augmentation, deep supervision, schedule) does with alsseg's compute.

The alsseg side is a run's checkpoint taken after the same training time
(``--alsseg-checkpoint``) and, for reference, the shipped bundle. Dice is computed
side-agnostically (nnU-Net predicts the dataset's side-agnostic classes; alsseg's left/right
ids are folded onto muscles) on the input grids.

    python benchmarks/bench_seg_nnunet.py --venv VENV --work W --alsseg-checkpoint RUN/checkpoints/best.pt \
        [--plans nnUNetPlans_alssegSize]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from _machine import machine  # benchmarks/_machine.py

TRAINER = '''"""Wall-clock-budgeted nnU-Net trainer for the alsseg side-by-side benchmark (CPU)."""
import os
import time

import torch

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

BUDGET_S = {budget}


class nnUNetTrainer_alssegBudget(nnUNetTrainer):
    def __init__(self, plans, configuration, fold, dataset_json, device=torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        # one torch thread per core this process may run on (nnUNetv2_train sets multiprocessing.cpu_count(),
        # which ignores taskset pinning)
        torch.set_num_threads(len(os.sched_getaffinity(0)))
        self.num_iterations_per_epoch = {iters_per_epoch}
        self.num_val_iterations_per_epoch = 2
        self.num_epochs = 100
        self._t0 = None

    def on_train_start(self):
        super().on_train_start()
        self._t0 = time.time()

    def on_epoch_end(self):
        super().on_epoch_end()
        if time.time() - self._t0 > BUDGET_S:
            self.print_to_log_file(f"alsseg budget of {{BUDGET_S:.0f}} s reached after epoch {{self.current_epoch}}")
            self.on_train_end()
            raise SystemExit(0)
'''


def write_alsseg_sized_plans(pre_dataset: Path, recipe_path: str) -> Path:
    """``nnUNetPlans_alssegSize.json`` next to ``nnUNetPlans.json``: its 2d configuration with
    an alsseg recipe's batch size, patch size and features per stage (stride 1 first, then 2,
    like nnU-Net's own 2d plans); the preprocessed data of ``nnUNetPlans_2d`` are reused."""
    import json

    from alsseg.seg.recipe import load_recipe

    recipe = load_recipe(recipe_path)
    plans = json.loads((pre_dataset / "nnUNetPlans.json").read_text())
    c2 = plans["configurations"]["2d"]
    n = len(recipe.network.channels)
    arch = c2["architecture"]["arch_kwargs"]
    arch.update(n_stages=n, features_per_stage=list(recipe.network.channels),
                kernel_sizes=[[3, 3]] * n, strides=[[1, 1]] + [[2, 2]] * (n - 1),
                n_conv_per_stage=[2] * n, n_conv_per_stage_decoder=[2] * (n - 1))
    c2.update(batch_size=recipe.train.batch_size, patch_size=list(recipe.train.patch_size))
    plans["plans_name"] = "nnUNetPlans_alssegSize"
    plans["configurations"] = {"2d": c2}
    out = pre_dataset / "nnUNetPlans_alssegSize.json"
    out.write_text(json.dumps(plans, indent=1))
    return out


def dice_agnostic(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    p, g = pred.astype(int) % 10, gt.astype(int) % 10
    out = []
    for m in range(1, 8):
        a, b = p == m, g == m
        s = a.sum() + b.sum()
        out.append(2.0 * (a & b).sum() / s if s else np.nan)
    return np.array(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", required=True, help="virtual environment with nnunetv2")
    ap.add_argument("--work", required=True, help="folder with raw/ pre/ res/ for nnU-Net")
    ap.add_argument("--dataset-id", default="501")
    ap.add_argument("--alsseg-checkpoint", required=True)
    ap.add_argument("--model", default="lowerleg-unet", help="bundle for a reference row ('none' to skip)")
    ap.add_argument("--subjects", type=int, default=2)
    ap.add_argument("--seed", type=int, default=100000)
    ap.add_argument("--contrasts", default="mese_e1,t1w,dixon_water,dwi_b0,random")
    ap.add_argument("--write-trainer", action="store_true")
    ap.add_argument("--budget-s", type=float, default=720.0)
    ap.add_argument("--iters-per-epoch", type=int, default=10, help="of the budget trainer (budget checked per epoch)")
    ap.add_argument("--write-plans", metavar="RECIPE", help="write nnUNetPlans_alssegSize from this alsseg recipe")
    ap.add_argument("--plans", default="nnUNetPlans", help="nnU-Net plans the model was trained with")
    args = ap.parse_args(argv)

    venv, work = Path(args.venv), Path(args.work)
    env = {**os.environ, "nnUNet_raw": str(work / "raw"), "nnUNet_preprocessed": str(work / "pre"),
           "nnUNet_results": str(work / "res"), "nnUNet_n_proc_DA": "1", "OMP_NUM_THREADS": "1"}
    if args.write_trainer:
        site = next((venv / "lib").glob("python3*/site-packages"))
        # top level of the trainer package: found before the variants that need torchvision
        p = site / "nnunetv2/training/nnUNetTrainer/nnUNetTrainer_alssegBudget.py"
        p.write_text(TRAINER.format(budget=args.budget_s, iters_per_epoch=args.iters_per_epoch))
        print(f"wrote {p}")
        return 0
    if args.write_plans:
        pre = next((work / "pre").glob(f"Dataset{args.dataset_id}_*"))
        print(f"wrote {write_alsseg_sized_plans(pre, args.write_plans)}")
        return 0

    import torch

    from alsseg.io import load_nifti, save_nifti
    from alsseg.seg.infer import Segmenter
    from alsseg.cases import synthetic_subject_cases

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="nnunet-bench-"))
    (tmp / "in").mkdir()
    contrasts = [c for c in args.contrasts.split(",") if c]
    cases = []
    for s in range(args.seed, args.seed + args.subjects):
        for c in synthetic_subject_cases(s, contrasts, grids_per_subject=len(contrasts)):
            save_nifti(c.image, tmp / "in" / f"{c.case_id}_0000.nii.gz")
            cases.append(c)
    t = time.perf_counter()
    subprocess.run([str(venv / "bin" / "nnUNetv2_predict"), "-i", str(tmp / "in"), "-o", str(tmp / "nn"),
                    "-d", args.dataset_id, "-c", "2d", "-f", "0", "-tr", "nnUNetTrainer_alssegBudget", "-p", args.plans,
                    "-chk", "checkpoint_final.pth", "-device", "cpu", "--disable_tta", "-npp", "1", "-nps", "1",
                    "--disable_progress_bar"], env=env, check=True, capture_output=True)
    t_nn = (time.perf_counter() - t) / len(cases)
    results = {}
    nn = [dice_agnostic(load_nifti(tmp / "nn" / f"{c.case_id}.nii.gz", dtype=None).data, c.labels) for c in cases]
    results[f"nnU-Net v2 2d, {args.plans} (same budget)"] = (np.nanmean(nn, axis=0), t_nn)
    models = [("alsseg U-Net (same budget)", Segmenter.from_checkpoint(args.alsseg_checkpoint, device="cpu"))]
    if args.model != "none":
        models.append((f"alsseg bundle {args.model}", Segmenter.from_bundle(args.model, device="cpu")))
    for name, seg in models:
        t = time.perf_counter()
        d = [dice_agnostic(seg.predict(c.image).data, c.labels) for c in cases]
        results[name] = (np.nanmean(d, axis=0), (time.perf_counter() - t) / len(cases))
    muscles = ["TA", "EDL", "PER", "TP", "SOL", "GM", "GL"]
    print(f"# alsseg vs nnU-Net v2 2d: held-out synthetic subjects seeds {args.seed}-{args.seed + args.subjects - 1} "
          f"x {len(contrasts)} contrasts ({len(cases)} images); side-agnostic Dice; "
          f"{machine()}, 1 thread, CPU shared with other jobs")
    print("| model | " + " | ".join(muscles) + " | mean | s / image (predict) |")
    print("|---" * (len(muscles) + 3) + "|")
    for name, (d, sec) in results.items():
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in d) + f" | {np.nanmean(d):.3f} | {sec:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
