"""Tab-separated tables (participants, motor measures, per-session results) read strictly.

A table is refused, naming the file and the line, when it cannot be read, is cut mid-row (a row
with fewer fields than the header: still being written, or truncated), is a ``.gz`` that is not
gzip, or lacks a required column — never read short or half.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alsseg.io.errors import InputError


def read_tsv(path: Path, required: tuple[str, ...]):
    """A TSV table as strings (stripped), with ``required`` columns; every problem an :class:`InputError`."""
    import zlib

    import pandas as pd

    from alsseg.io.validate import input_kind

    if not os.path.lexists(path):
        raise InputError(path, "no such table")
    if input_kind(path) != "file":
        raise InputError(path, "is a folder, expected a TSV table")
    try:
        check_complete_rows(path)
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment=None)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(path, f"not a readable TSV table ({str(exc).splitlines()[0] if str(exc) else 'empty'})") from None
    except (OSError, EOFError, zlib.error) as exc:  # a .gz that is not gzip, a truncated archive
        what = "not a valid compressed file" if path.name.endswith((".gz", ".bz2", ".xz", ".zip", ".zst")) else "unreadable"
        raise InputError(path, f"{what} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(missing)} (has: {', '.join(df.columns)})")
    return df.apply(lambda col: col.str.strip())


def check_complete_rows(path: Path) -> None:
    """Refuse a TSV whose rows do not all have the header's number of fields (a table cut
    mid-row, a stray tab); ``.gz``/``.bz2``/``.xz`` tables are read through their decompressor.

    Raises:
        InputError: naming the table and the first bad line (header = line 1).
    """
    import bz2
    import gzip
    import lzma

    openers: dict[str, Callable[..., Any]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
    opener = openers.get(path.suffix, open)
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        text = fh.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        return
    n = len(lines[0].rstrip("\r").split("\t"))
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        k = len(line.rstrip("\r").split("\t"))
        if k != n:
            cut = " (the file ends mid-row: cut or still being written?)" if i == len(lines) and not text.endswith("\n") else ""
            raise InputError(path, f"line {i}: has {k} field(s), the header has {n}{cut}")
