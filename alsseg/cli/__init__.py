"""``alsseg <verb>``: a thin command line over the Python API.

Each verb group lives in its own module (``alsseg/cli/<group>.py``) with a
``register(subparsers)`` function; handlers import numerical libraries (and torch) lazily,
so ``alsseg --help`` is instant. Expected input problems (:class:`alsseg.io.errors.InputError`)
print one line ``alsseg: error: FILE: PROBLEM`` and exit with code 2, without a traceback.

argparse (standard library) rather than typer/click: no extra dependency, no import cost,
and ``main(argv)`` is directly testable.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from alsseg import __version__
from alsseg.io.errors import InputError

#: verb-group modules, in the order their verbs appear in ``--help``.
VERB_MODULES = (
    "alsseg.cli.demo_cmd",
    "alsseg.cli.io_cmd",
    "alsseg.cli.labels_cmd",
    "alsseg.cli.relax_cmd",
    "alsseg.cli.synth_cmd",
    "alsseg.cli.seg_cmd",
    "alsseg.cli.pipeline_cmd",
    "alsseg.cli.qc_cmd",
)

EXIT_INPUT_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every verb registered."""
    parser = argparse.ArgumentParser(
        prog="alsseg",
        description="Quantitative lower-leg muscle MRI for ALS: segmentation, EPG water T2 / fat "
        "fraction / T1 maps, per-muscle tables, cohort statistics against motor measures.",
    )
    parser.add_argument("--version", action="version", version=f"alsseg {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name in VERB_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def add_quiet(p: argparse.ArgumentParser) -> None:
    """The common ``--quiet`` flag (no progress bars, no chatter)."""
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or chatter")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 2 bad input, 1 unexpected failure)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        result = args.func(args)
    except InputError as exc:
        print(f"alsseg: error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print("alsseg: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
