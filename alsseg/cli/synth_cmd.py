"""``alsseg synth subject|cohort``: synthetic lower-leg MRI with ground truth, as BIDS."""

from __future__ import annotations

import argparse

from alsseg.io.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``synth`` with its two sub-verbs."""
    from alsseg.cli import add_quiet, positive_int

    p = sub.add_parser("synth", help="synthetic lower-leg MRI: one subject or a whole ALS cohort (BIDS + truth)",
                       description="Generate synthetic lower-leg MRI (MESE, IR T1 series, T1w) with ground "
                       "truth (labels, true maps, per-muscle values) and motor measures, as a BIDS dataset.")
    ss = p.add_subparsers(dest="synth_verb", metavar="WHAT")

    s = ss.add_parser("subject", help="one subject, one session",
                      description="Write one synthetic subject (sub-01/ses-01) with ground truth.")
    s.add_argument("--out", required=True, help="output folder (new or empty)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--disease", default="als",
                   help="'healthy', 'als' or a latent denervation in [0, 1] (default als)")
    _protocol_args(s)
    add_quiet(s)
    s.set_defaults(func=_subject)

    c = ss.add_parser("cohort", help="a study like Bryan et al. 1998 (ALS × visits + controls)",
                      description="Write a synthetic ALS cohort: participants.tsv, phenotype/motor.tsv, MESE/IR/T1w "
                      "per session and derivatives/groundtruth. Resumable: rerun the same command to complete it.")
    c.add_argument("--out", required=True, help="output folder (new, empty, or an unfinished run of the same cohort)")
    c.add_argument("--n-als", type=int, default=11, help="ALS patients (default 11)")
    c.add_argument("--n-controls", type=int, default=8, help="controls (default 8)")
    c.add_argument("--visits", type=int, default=2, help="visits per patient, 4 months apart (default 2)")
    c.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    c.add_argument("--workers", type=positive_int, default=2, help="processes (default 2)")
    c.add_argument("--t2-effect-ms", type=float, default=None, help="water T2 rise of a fully denervated TA, ms (default 14)")
    c.add_argument("--ff-effect", type=float, default=None, help="fat-fraction rise of a fully denervated TA (default 0.35)")
    c.add_argument("--atrophy-effect", type=float, default=None, help="volume lost by a fully denervated TA (default 0.45)")
    _protocol_args(c)
    add_quiet(c)
    c.set_defaults(func=_cohort, keep_partial=True)  # resumable: a rerun finishes the cohort
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def _protocol_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--snr", type=float, default=100.0, help="muscle signal / noise at echo 1; 0 = noiseless (default 100)")
    p.add_argument("--echoes", type=int, default=17, help="MESE echoes (default 17)")
    p.add_argument("--esp-ms", type=float, default=10.0, help="echo spacing, ms (default 10)")
    p.add_argument("--tr-ms", type=float, default=4000.0, help="MESE TR, ms (default 4000)")
    p.add_argument("--inplane-mm", type=float, default=1.5, help="in-plane voxel size, mm (default 1.5)")
    p.add_argument("--slices", type=int, default=18, help="number of slices (default 18)")
    p.add_argument("--slice-mm", type=float, default=7.0, help="slice thickness = spacing, mm (default 7)")


def _config(args, **cohort):
    from dataclasses import replace

    import numpy as np

    from alsseg.synth.cohort import CohortConfig, CohortEffects
    from alsseg.synth.render import MeseProtocol

    checks = [(args.snr >= 0, "--snr must be >= 0"), (args.echoes >= 5, "--echoes must be >= 5"),
              (args.esp_ms > 0, "--esp-ms must be > 0"), (args.tr_ms > args.esp_ms * args.echoes, "--tr-ms must exceed the echo train"),
              (0.3 <= args.inplane_mm <= 5, "--inplane-mm must be within 0.3–5"),
              (1 <= args.slices <= 200, "--slices must be within 1–200"), (0.5 <= args.slice_mm <= 20, "--slice-mm must be within 0.5–20")]
    for ok, msg in checks:
        if not ok:
            raise InputError(None, msg)
    fov = (384.0, 216.0)
    shape = (int(np.ceil(fov[0] / args.inplane_mm)), int(np.ceil(fov[1] / args.inplane_mm)), args.slices)
    cfg = CohortConfig(snr=args.snr or None, shape=shape, spacing_mm=(args.inplane_mm, args.inplane_mm, args.slice_mm),
                       slice_thickness_mm=args.slice_mm,
                       mese=MeseProtocol(n_echoes=args.echoes, echo_spacing_ms=args.esp_ms, tr_ms=args.tr_ms), **cohort)
    eff = {k: v for k, v in (("t2_ms", getattr(args, "t2_effect_ms", None)), ("fat_fraction", getattr(args, "ff_effect", None)),
                             ("atrophy", getattr(args, "atrophy_effect", None))) if v is not None}
    if eff:
        cfg = replace(cfg, effects=replace(CohortEffects(), **eff))
    return cfg


def _subject(args) -> int:
    from alsseg.synth.cohort import make_subject_dataset

    disease = args.disease
    if disease.lower() not in ("healthy", "als"):
        try:
            disease = float(disease)
        except ValueError:
            raise InputError(None, f"--disease {args.disease!r}: expected healthy, als or a number in [0, 1]") from None
        if not 0 <= disease <= 1:
            raise InputError(None, f"--disease {args.disease}: a denervation must be within [0, 1]")
    out = make_subject_dataset(args.out, args.seed, disease, config=_config(args, seed=args.seed))
    if not args.quiet:
        print(f"wrote {out} (sub-01/ses-01, ground truth in derivatives/groundtruth)")
    return 0


def _cohort(args) -> int:
    from alsseg.synth.cohort import make_cohort

    for name in ("n_als", "n_controls"):
        if getattr(args, name) < 0:
            raise InputError(None, f"--{name.replace('_', '-')} must be >= 0")
    if args.n_als + args.n_controls == 0:
        raise InputError(None, "a cohort needs at least one participant")
    if args.visits < 1 or args.workers < 1:
        raise InputError(None, "--visits and --workers must be >= 1")
    cfg = _config(args, n_als=args.n_als, n_controls=args.n_controls, visits=args.visits, seed=args.seed)
    out = make_cohort(args.out, config=cfg, workers=args.workers, progress=not args.quiet)
    if not args.quiet:
        print(f"wrote {out}: {args.n_als} ALS × {args.visits} visits + {args.n_controls} controls")
    return 0
