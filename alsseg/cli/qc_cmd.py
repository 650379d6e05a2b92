"""``alsseg qc IMAGE LABELS --out DIR``: every slice of an image with its label map drawn over it."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "qc", help="overlay figure(s) of an image and a label map: every slice, muscle names, orientation",
        description="Draw every slice of IMAGE with LABELS over it (PNG, 16 slices a page), anterior up, "
        "in the radiological (default) or neurological convention, with the muscle names, a legend and an "
        "intensity colour bar. Both are NIfTI files on one grid, in any voxel order.")
    p.add_argument("image", help="image (3-D or 4-D NIfTI; a 4-D image shows --volume)")
    p.add_argument("labels", help="label map (3-D NIfTI, integer ids of `alsseg labels`) on the image grid")
    p.add_argument("--out", required=True, help="folder for the PNG file(s) (created)")
    p.add_argument("--neurological", action="store_true",
                   help="the subject's right on the image right (default: radiological, right on the left)")
    p.add_argument("--volume", type=int, default=1, help="volume of a 4-D image to show, 1-based (default 1)")
    p.add_argument("--table", help="per-muscle TSV (`alsseg run` output); its seg_confidence column, when "
                   "present, is written beside each muscle")
    p.add_argument("--no-crop", action="store_true", help="show the whole field of view (default: zoom on the labels)")
    p.add_argument("--title", help="title written on the figure (default: the image file name)")
    from alsseg.cli import add_quiet

    add_quiet(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from alsseg.io import load_nifti, same_grid
    from alsseg.io.atomic import write_bytes_atomic
    from alsseg.io.errors import InputError
    from alsseg.report.overlay import confidence_from_table, image_overlay_pages

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder")
    image = load_nifti(args.image, ndim=(3, 4), check_finite=False)
    labels = load_nifti(args.labels, ndim=3, dtype=None)
    if not np.issubdtype(labels.data.dtype, np.integer):
        rounded = np.round(labels.data)
        if not np.allclose(labels.data, rounded, atol=1e-3):
            raise InputError(args.labels, "label map holds non-integer values; expected integer label ids")
        labels = labels.with_data(rounded.astype(np.int32))
    n_ids = np.unique(labels.data).size
    if n_ids > 256:
        raise InputError(args.labels, f"holds {n_ids} distinct values: not a label map (expected integer label ids)")
    if not same_grid(image, labels):
        raise InputError(args.labels, f"label map grid {labels.shape[:3]} does not match the image grid "
                         f"{image.shape[:3]} (same shape and affine needed)")
    n_vol = image.shape[3] if image.data.ndim == 4 else 1
    if not 1 <= args.volume <= n_vol:
        raise InputError(args.image, f"--volume {args.volume}: the image has {n_vol} volume(s)")
    confidence = {}
    if args.table:
        import pandas as pd

        if not Path(args.table).is_file():
            raise InputError(args.table, "no such table")
        confidence = confidence_from_table(pd.read_csv(args.table, sep="\t", na_values="n/a"))
    stem = Path(args.image).name.replace(".nii.gz", "").replace(".nii", "")
    pages = image_overlay_pages(image, labels, title=args.title or stem,
                                convention="neurological" if args.neurological else "radiological",
                                confidence=confidence, volume=args.volume - 1, crop=not args.no_crop)
    names = [f"{stem}_qc.png"] if len(pages) == 1 else [f"{stem}_qc-{i + 1:02d}.png" for i in range(len(pages))]
    for name, png in zip(names, pages):
        write_bytes_atomic(out / name, png)
    if not getattr(args, "quiet", False):
        for name in names:
            print(out / name)
    return 0
