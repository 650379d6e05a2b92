"""Segmentation verbs: ``dataset``, ``train``, ``segment``, ``evaluate``, ``export``, ``models``.

Thin wrappers of :mod:`alsseg.seg`; torch and MONAI are imported inside the handlers only.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the segmentation verbs to the alsseg parser."""
    from alsseg.cli import add_quiet, positive_int

    p = sub.add_parser("dataset", help="build a training dataset (nnU-Net v2 raw layout)",
                       description="Write DIR/dataset.json, imagesTr/CASE_0000.nii.gz, labelsTr/CASE.nii.gz "
                       "(side-agnostic muscle classes, ignore label for unannotated voxels) and a fixed "
                       "splits_final.json, from the synthetic generator or a BIDS dataset with label maps.")
    p.add_argument("--out", required=True, help="new dataset folder, e.g. Dataset501_LowerLeg")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--synthetic", type=int, metavar="N", help="N synthetic subjects (alsseg.synth)")
    src.add_argument("--bids", metavar="ROOT", help="BIDS dataset with derivatives/<labels-from>/…_dseg.nii.gz")
    p.add_argument("--seed", type=int, default=0, help="first synthetic subject seed (default 0)")
    p.add_argument("--contrasts", default="random",
                   help="synthetic: comma-separated contrasts rendered per subject (default random; see "
                   "alsseg.synth: mese_e1, mese_late, t1w, dixon_water, dixon_fat, dwi_b0, random)")
    p.add_argument("--grids-per-subject", type=positive_int, default=2,
                   help="synthetic: random acquisition grids per subject (contrasts spread over them)")
    p.add_argument("--als-fraction", type=float, default=0.5,
                   help="synthetic: fraction of subjects with ALS-like atrophy / fat / oedema")
    p.add_argument("--shape-jitter", type=float, default=0.0, metavar="J",
                   help="synthetic: compartment geometry (boundary angles, gastrocnemius thickness, muscle "
                   "proportions) drawn beyond the published spread, J times alsseg.synth.anatomy.SHAPE_JITTER_SD "
                   "(default 0: none)")
    p.add_argument("--workers", type=positive_int, default=1, help="parallel rendering processes (synthetic) and file-writing threads")
    p.add_argument("--image", default="mese", choices=("mese", "anat"), help="BIDS: image to pair with labels")
    p.add_argument("--labels-from", default="groundtruth", help="BIDS: derivative folder of the label maps")
    p.add_argument("--sparse-every", type=int, metavar="N", help="keep every N-th slice annotated (others ignored)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="fraction of subjects for validation")
    add_quiet(p)
    p.set_defaults(func=run_dataset)

    t = sub.add_parser("train", help="train (or fine-tune) a U-Net from a YAML recipe",
                       description="Train from a recipe on a dataset; checkpoints, CSV and TensorBoard logs "
                       "in RUN. Also runs under torchrun (DistributedDataParallel).")
    t.add_argument("--recipe", required=True, help="YAML recipe (see training/)")
    t.add_argument("--data", required=True, help="dataset folder (alsseg dataset / nnU-Net raw layout)")
    t.add_argument("--out", required=True, help="run folder")
    t.add_argument("--init", metavar="MODEL", help="start from a bundle (name or path): fine-tuning; the bundle's network and "
                        "preprocessing are kept, except that the recipe may add network.context_slices "
                        "(a 2-D bundle becomes 2.5-D, its first layer inflated) and, with "
                        "train.init_preprocess: recipe, bring its own preprocessing (e.g. a finer spacing)")
    t.add_argument("--init-member", type=int, default=0, metavar="K",
                   help="with an ensemble --init bundle: start from its member K (0: the first, models/model.pt); "
                        "fine-tune each member in its own run and join them with alsseg export --add-member")
    t.add_argument("--resume", action="store_true", help="continue RUN from its last checkpoint")
    t.add_argument("--device", choices=["cpu", "cuda"],
                   help="default: the GPU when there is one (under torchrun, GPU LOCAL_RANK), else the CPU")
    add_quiet(t)
    t.set_defaults(func=run_train, keep_partial=True)  # checkpoints are kept: --resume

    s = sub.add_parser("segment", help="segment images with a model bundle",
                       description="Label map (right 1-7, left 11-17) on each input's grid, written as "
                       "OUT/<name>_desc-muscles_dseg.nii.gz with OUT/dseg.tsv. Inputs: 3-D NIfTI, 4-D MESE "
                       "NIfTI (the model's echo is used), or a DICOM folder. The model is loaded once.")
    s.add_argument("images", nargs="+", help="NIfTI files or DICOM folders")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--model", default="lowerleg-unet", help="bundle name or path (default lowerleg-unet)")
    s.add_argument("--probabilities", action="store_true", help="also write _desc-muscles_probseg (4-D)")
    s.add_argument("--confidence", action="store_true",
                   help="also write _desc-muscles_confidence.tsv: per-muscle confidence in [0, 1] "
                        "(a second, mirrored network pass)")
    s.add_argument("--mirror-tta", action=argparse.BooleanOptionalAction, default=True,
                   help="average each network's output on the image and on its left-right mirror (test-time "
                        "augmentation; default on: more accurate on real scans, docs/seg.md); --no-mirror-tta: "
                        "one pass per network, half the network time")
    s.add_argument("--side", choices=("R", "L"), help="side of the leg when only one leg is in the image")
    s.add_argument("--device", help="cpu, cuda, cuda:1 … (default: a GPU when there is one)")
    s.add_argument("--threads", type=positive_int, help="CPU threads for torch (default: torch's choice; 1 is "
                   "fastest on a CPU shared with other jobs)")
    add_quiet(s)
    s.set_defaults(func=run_segment)

    e = sub.add_parser("evaluate", help="Dice, HD95 and volume error per muscle and side (TSV)")
    e.add_argument("pred", help="predicted label map")
    e.add_argument("gt", help="ground-truth label map (same grid)")
    e.add_argument("--out", help="write the TSV here (default: stdout)")
    e.set_defaults(func=run_evaluate)

    x = sub.add_parser("export", help="write a model bundle from a training run",
                       description="models/NAME/: configs/metadata.json (version, changelog, label names, "
                       "input spec, sha256), models/model.pt (weights only), docs/README.md (model card).")
    x.add_argument("run", help="training run folder")
    x.add_argument("--name", required=True, help="bundle name")
    x.add_argument("--out", help="bundle folder (default models/NAME)")
    x.add_argument("--version", default="0.1.0", help="bundle version written in its metadata (default 0.1.0)")
    x.add_argument("--changelog", default="first release", help="changelog line for this bundle version")
    x.add_argument("--checkpoint", default="best", choices=("best", "last"),
                   help="weights to export: best validation Dice or last epoch (default best)")
    x.add_argument("--card", help="model card markdown file to ship as docs/README.md")
    x.add_argument("--add-member", action="append", default=[], metavar="BUNDLE_OR_CHECKPOINT",
                   help="make the bundle an ensemble: add another model's weights (same network and "
                        "preprocessing) as a member; predictions average the members' probabilities")
    x.add_argument("--rejoin", action="store_true",
                   help="a run fine-tuned from an ensemble bundle (train --init BUNDLE [--init-member K]): "
                        "put it back into that ensemble in member K's place, with the bundle's other members "
                        "(checked by sha256 to be the ones it started from)")
    x.set_defaults(func=run_export)

    m = sub.add_parser("models", help="list the model bundles that ship with alsseg")
    m.add_argument("--verify", action="store_true", help="check each bundle's sha256")
    m.set_defaults(func=run_models)


def run_dataset(args) -> int:
    from alsseg.cases import bids_cases, build_dataset, check_dataset_request, synthetic_cases
    from alsseg.io.errors import InputError

    check_dataset_request(args.out, val_fraction=args.val_fraction, sparse_every=args.sparse_every)
    if args.synthetic is not None:
        if args.synthetic < 1:
            raise InputError(None, "--synthetic needs at least 1 subject")
        if not (math.isfinite(args.shape_jitter) and args.shape_jitter >= 0):
            raise InputError(None, f"--shape-jitter must be a number >= 0, got {args.shape_jitter}")
        contrasts = [c.strip() for c in args.contrasts.split(",") if c.strip()]
        cases = synthetic_cases(range(args.seed, args.seed + args.synthetic), contrasts,
                                grids_per_subject=args.grids_per_subject, als_fraction=args.als_fraction,
                                shape_jitter=args.shape_jitter, workers=args.workers)
        extra = {"source": "alsseg.synth", "seeds": [args.seed, args.seed + args.synthetic - 1],
                 "contrasts": contrasts, "grids_per_subject": args.grids_per_subject,
                 "als_fraction": args.als_fraction, "shape_jitter": args.shape_jitter}
    else:
        cases = bids_cases(args.bids, image=args.image, labels_from=args.labels_from)
        extra = {"source": str(Path(args.bids).resolve()), "image": args.image}
    out = build_dataset(args.out, cases, extra=extra, val_fraction=args.val_fraction, seed=args.seed,
                        sparse_every=args.sparse_every, progress=not args.quiet, write_threads=args.workers)
    if not args.quiet:
        print(f"dataset written to {out}")
    return 0


def run_train(args) -> int:
    from alsseg.io.errors import InputError
    from alsseg.seg.recipe import load_recipe
    from alsseg.seg.train import train

    recipe = load_recipe(args.recipe)
    if args.init_member and not args.init:
        raise InputError(args.recipe, "--init-member needs --init (the bundle whose member starts the run)")
    best = train(recipe, args.data, args.out, init=args.init, resume=args.resume, quiet=args.quiet,
                 recipe_path=args.recipe, device=args.device, init_member=args.init_member)
    if not args.quiet:
        print(f"best mean validation Dice {best.get('mean_dice', float('nan')):.4f} "
              f"(iteration {best.get('iteration', '-')}); run in {args.out}")
    return 0


def run_segment(args) -> int:
    from alsseg.seg.apply import segment_files

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr)

    segment_files(args.images, args.out, model=args.model, probabilities=args.probabilities,
                  confidence=args.confidence, side=args.side, mirror_tta=args.mirror_tta,
                  device=args.device, threads=args.threads, progress=not args.quiet, log=log)
    return 0


def run_evaluate(args) -> int:
    from alsseg.io.atomic import write_text_atomic
    from alsseg.io.nifti import load_nifti
    from alsseg.seg.evaluate import evaluate_labels, rows_to_tsv

    pred = load_nifti(args.pred, ndim=3, dtype=None)
    gt = load_nifti(args.gt, ndim=3, dtype=None)
    text = rows_to_tsv(evaluate_labels(pred, gt))
    if args.out:
        write_text_atomic(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


def run_export(args) -> int:
    from alsseg.io.errors import InputError
    from alsseg.seg.bundle import MODELS_DIR, export_bundle

    card = None
    if args.card:
        if not Path(args.card).is_file():
            raise InputError(args.card, "no such model card file")
        card = Path(args.card).read_text()
    out = Path(args.out) if args.out else MODELS_DIR / args.name
    export_bundle(args.run, out, name=args.name, version=args.version, changelog=args.changelog,
                  checkpoint=args.checkpoint, model_card=card, extra_members=args.add_member, rejoin=args.rejoin)
    print(f"bundle written to {out}")
    return 0


def run_models(args) -> int:
    import json

    from alsseg.seg.bundle import MODELS_DIR, WEIGHTS, list_bundles, sha256_of

    names = list_bundles()
    if not names:
        print(f"no bundles in {MODELS_DIR}")
        return 0
    print("name\tversion\tweights_mb\tlabels\tinput\tsha256")
    for n in names:
        meta = json.loads((MODELS_DIR / n / "configs" / "metadata.json").read_text())
        w = MODELS_DIR / n / WEIGHTS
        mb = w.stat().st_size / 1e6 if w.is_file() else float("nan")
        sha = meta.get("sha256", {}).get(WEIGHTS, "")
        status = sha[:12]
        if args.verify:
            status += " ok" if w.is_file() and sha256_of(w) == sha else " MISMATCH"
        fmt = meta.get("alsseg", {}).get("preprocess", {})
        inp = f"{fmt.get('target_spacing_mm')} mm, echo {fmt.get('echo_index', 0) + 1}"
        print(f"{n}\t{meta.get('version')}\t{mb:.1f}\t{len(meta.get('label_names', {}))}\t{inp}\t{status}")
    return 0
