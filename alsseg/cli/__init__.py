"""``alsseg <verb>``: a thin command line over the Python API.

Each verb group lives in its own module (``alsseg/cli/<group>.py``) with a
``register(subparsers)`` function; handlers import numerical libraries (and torch) lazily,
so ``alsseg --help`` is instant.

Failure contract (see :mod:`alsseg.cli.failures`): an expected problem (bad input, bad option,
an output folder that cannot be written) prints one line ``alsseg: error: FILE: PROBLEM`` and
exits with code 2, without a traceback, and everything the verb had written is removed again
(:func:`alsseg.io.atomic.output_transaction`). An unexpected failure prints one line saying
where to report it and exits with code 1 (the traceback only with ``--debug``). Warnings print
as one line ``alsseg: warning: …`` each, after the verb succeeded.

argparse (standard library) rather than typer/click: no extra dependency, no import cost,
and ``main(argv)`` is directly testable.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from alsseg import __version__

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


class UsageError(Exception):
    """A command line argparse could not accept (printed as one line, exit code 2)."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad option is one line ``alsseg: error: PROBLEM`` (no usage block)."""

    def error(self, message: str):
        raise UsageError(f"{self.prog.replace('alsseg ', '', 1) + ': ' if self.prog != 'alsseg' else ''}{message}")


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every verb registered."""
    parser = OneLineParser(
        prog="alsseg",
        description="Quantitative lower-leg muscle MRI for ALS: segmentation, EPG water T2 / fat "
        "fraction / T1 maps, per-muscle tables, cohort statistics against motor measures.",
    )
    parser.add_argument("--version", action="version", version=f"alsseg {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="print the full traceback of an unexpected failure (to attach to a bug report)")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=OneLineParser)
    for name in VERB_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (``--jobs``, ``--threads``, ``--chunk-voxels`` …)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} must be >= 1")
    return v


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (times in ms, angles, spacings)."""
    import math

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number > 0")
    return v


def add_quiet(p: argparse.ArgumentParser) -> None:
    """The common ``--quiet`` flag (no progress bars, no chatter, no warnings)."""
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars, chatter or warnings")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 2 bad input, 1 unexpected failure)."""
    from alsseg.cli.failures import run_verb

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"alsseg: error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return run_verb(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
