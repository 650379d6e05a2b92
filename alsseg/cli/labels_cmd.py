"""``alsseg labels``: list the label registry; write dseg.tsv / ITK-SNAP / Slicer tables."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("labels", help="list muscles and label ids; write label tables",
                       description="List the muscles of an anatomy with their label ids per side, "
                       "abbreviations and colours, or write them as a table ITK-SNAP, 3D Slicer or BIDS reads.")
    p.add_argument("--anatomy", default="lowerleg", help="shipped anatomy name or JSON path (default: lowerleg)")
    p.add_argument("--format", choices=["table", "dseg", "itksnap", "slicer"], default="table",
                   help="table (human), dseg (BIDS dseg.tsv), itksnap (label description), slicer (colour table)")
    p.add_argument("--out", help="write to this file instead of standard output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from alsseg import labels as L
    from alsseg.io.errors import InputError

    try:
        anatomy = L.load_anatomy(args.anatomy)
    except FileNotFoundError:
        raise InputError(args.anatomy, "no such anatomy (shipped: " + ", ".join(L.available_anatomies()) + ")") from None
    if args.format == "table":
        lines = [f"anatomy {anatomy.name}: {anatomy.description}", f"{'id':>4}  {'name':<7} {'colour':<8} muscle"]
        for lab in anatomy.labels:
            r, g, b = lab.muscle.colour
            lines.append(f"{lab.id:>4}  {lab.name:<7} #{r:02x}{g:02x}{b:02x}  {lab.description}")
        for g, members in anatomy.groups.items():
            lines.append(f"group {g}: {' + '.join(members)}")
        text = "\n".join(lines) + "\n"
    else:
        text = {"dseg": L.dseg_tsv, "itksnap": L.itksnap_label_table, "slicer": L.slicer_color_table}[args.format](anatomy)
    if args.out:
        from alsseg.io.atomic import write_text_atomic

        write_text_atomic(args.out, text)
    else:
        print(text, end="")
    return 0
