"""The one exception type for bad input.

An :class:`InputError` names the offending file and what is wrong with it; the CLI prints it
as one line (``alsseg: error: FILE: PROBLEM``) and exits with code 2, without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """An input (file, folder, table, option) that cannot be used as given.

    Args:
        path: the file or folder at fault (or ``None`` for a command-line option).
        problem: what is wrong, in one line.
    """

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path is not None else problem)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty), for
    one-line error messages."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
