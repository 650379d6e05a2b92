"""Progress bars that show only on a terminal.

Every progress display of alsseg goes through :func:`progress_bar`. A bar is drawn on stderr when
the caller asks for one (``show``, i.e. no ``--quiet``) and stderr is a terminal; when stderr is
piped or redirected to a file, the bar prints nothing at all, so logs get no repeated ``\\r``
progress lines. The verbs themselves say what they did when they finish.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO, Any, TypeVar

T = TypeVar("T")


def is_terminal(stream: IO[str] | None = None) -> bool:
    """Whether ``stream`` (default: the current ``sys.stderr``) is an interactive terminal.

    A closed stream, one without ``isatty`` or ``None`` (no stderr at all, e.g. ``pythonw``)
    counts as not a terminal.
    """
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def progress_bar(iterable: Iterable[T] | None = None, *, total: float | None = None, desc: str = "",
                 unit: str = "it", show: bool = True, stream: IO[str] | None = None, **options: Any) -> Any:
    """A ``tqdm`` progress bar on ``stream`` (default stderr), disabled unless ``show`` is true
    and ``stream`` is a terminal.

    Args:
        iterable: what to iterate over (optional; else call ``update``).
        total: number of expected items (``len(iterable)`` when omitted and available).
        desc: the label before the bar.
        unit: what one item is (``"file"``, ``"session"``, ``"vox"``).
        show: the caller's wish (False under ``--quiet``).
        stream: where to draw (default: ``sys.stderr`` at call time).
        **options: further ``tqdm`` options (``leave``, ``unit_scale``, ``bar_format``, ``initial``…).

    Returns:
        A ``tqdm`` object; disabled, it still iterates and accepts ``update`` /
        ``set_postfix_str`` / ``close`` but writes nothing.
    """
    from tqdm import tqdm

    stream = sys.stderr if stream is None else stream
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=stream,
                disable=not (show and is_terminal(stream)), dynamic_ncols=True, **options)
