"""``alsseg info`` and ``alsseg convert``: see what an input holds; DICOM → BIDS NIfTI + JSON.

Handlers import numpy / nibabel / pydicom lazily so ``alsseg --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``info`` and ``convert`` to the alsseg parser."""
    from alsseg.cli import add_quiet

    p = sub.add_parser(
        "info", help="show what an input holds: series, echo times, geometry, what is missing",
        description="Describe a DICOM folder, a NIfTI file (with its JSON sidecar), a BIDS dataset root "
        "or one BIDS session folder: series, echo / inversion times, shape, voxel spacing, orientation, "
        "TR, field strength, and what is missing for T2 / T1 mapping.")
    p.add_argument("path", help="DICOM folder, .nii/.nii.gz file, BIDS root, or sub-X[/ses-Y] folder")
    p.add_argument("--series", help="DICOM: only this SeriesInstanceUID or SeriesNumber")
    p.add_argument("--json", action="store_true", help="print a JSON document instead of text")
    p.add_argument("--check", action="store_true",
                   help="BIDS root: load every session's series and list every problem (exit 2 if any)")
    add_quiet(p)
    p.set_defaults(func=run_info)

    c = sub.add_parser(
        "convert", help="DICOM folder → NIfTI + JSON sidecar with BIDS names",
        description="Convert one DICOM series (classic or enhanced multi-frame) to NIfTI with a BIDS JSON "
        "sidecar (times in seconds). A multi-echo series becomes one 4-D …_MESE.nii.gz with an EchoTime "
        "list (or one file per echo with --split-echoes); an inversion-recovery / variable-flip-angle / "
        "multi-TR series becomes …_IRT1 / …_VFA / …_SRT1; a single volume becomes …_T1w (see --suffix). "
        "Pixel values are kept exactly (stored integers when the rescale is identity). Nothing is written "
        "when anything fails; existing outputs are refused unless --overwrite.")
    c.add_argument("dicom_dir", help="folder of DICOM files (searched recursively)")
    c.add_argument("--out", required=True, help="output folder (BIDS root when --subject is given)")
    c.add_argument("--subject", help="BIDS subject label: writes OUT/sub-S[/ses-T]/anat/sub-S[_ses-T]_…")
    c.add_argument("--session", help="BIDS session label (needs --subject)")
    pick = c.add_mutually_exclusive_group()
    pick.add_argument("--series", help="SeriesInstanceUID or SeriesNumber, when the folder mixes series")
    pick.add_argument("--all", action="store_true",
                      help="convert every series of the folder (BIDS: acq-<description> per series); series "
                      "that cannot form one grid (localizers…) are skipped with a warning")
    c.add_argument("--split-echoes", action="store_true",
                   help="one 3-D file + sidecar per echo / volume (…_echo-N_MESE) instead of one 4-D file")
    c.add_argument("--suffix", default=None, help="BIDS suffix for a single-volume series (default T1w)")
    c.add_argument("--overwrite", action="store_true", help="replace existing output files")
    add_quiet(c)
    c.set_defaults(func=run_convert)


# ------------------------------------------------------------------------------------------- info
def run_info(args: argparse.Namespace) -> int:
    from alsseg.io.summary import describe, format_description

    desc = describe(args.path, series=args.series, check=args.check, progress=not args.quiet)
    if args.json:
        import json

        text = json.dumps(desc, indent=2, default=str)
    else:
        text = format_description(desc)
    try:
        print(text)
    except BrokenPipeError:  # `alsseg info … | head`: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if desc.get("problems"):
        print(f"alsseg: error: {args.path}: {len(desc['problems'])} input problem(s), listed above", file=sys.stderr)
        return 2
    return 0


# ---------------------------------------------------------------------------------------- convert
def run_convert(args: argparse.Namespace) -> int:
    from alsseg.io.atomic import check_output_folder
    from alsseg.io.convert import convert_dicom, convert_dicom_all
    from alsseg.io.errors import InputError

    check_output_folder(args.out)
    if args.all:
        if args.suffix:
            raise InputError(None, "--suffix cannot be combined with --all")
        written, skipped = convert_dicom_all(args.dicom_dir, args.out, subject=args.subject,
                                             session=args.session, split_volumes=args.split_echoes,
                                             overwrite=args.overwrite, progress=not args.quiet)
        if not args.quiet:
            for line in skipped:
                print(f"alsseg: warning: {args.dicom_dir}: skipped {line}", file=sys.stderr)
    else:
        written = convert_dicom(args.dicom_dir, args.out, subject=args.subject, session=args.session,
                                series=args.series, split_volumes=args.split_echoes, suffix=args.suffix,
                                overwrite=args.overwrite, progress=not args.quiet)
    if not args.quiet:
        for p in written:
            print(p)
    return 0
