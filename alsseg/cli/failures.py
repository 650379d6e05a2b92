"""How a verb ends: exit codes, the one error line, warnings, and undoing partial outputs.

* :class:`~alsseg.io.errors.InputError` (bad input or option) → ``alsseg: error: FILE: PROBLEM``,
  exit code 2.
* :class:`OSError` from the file system (read-only or full disk, permission, a symlink loop, a
  path that is a file where a folder is needed …) → the same one line naming the path, exit 2.
* anything else is a bug → one line saying so and where to report it, exit 1; the traceback
  follows only with ``alsseg --debug``.
* warnings (:class:`~alsseg.io.validate.InputWarning` and those of libraries) print as one line
  ``alsseg: warning: MESSAGE`` each, once, after the verb succeeded (none with ``--quiet``);
  on failure only the error line is printed.
* every file or folder the verb created through :mod:`alsseg.io.atomic` is removed again when
  it fails (and a file it replaced is put back), unless the verb is resumable work that keeps
  what it finished (``cohort``, ``demo``, ``train``: ``set_defaults(keep_partial=True)``).
"""

from __future__ import annotations

import errno
import sys
import traceback
import warnings

from alsseg.io.atomic import output_transaction
from alsseg.io.errors import InputError

EXIT_INPUT_ERROR = 2
EXIT_BUG = 1
REPORT_TO = ("this is a bug in alsseg: please report it on the project's issue tracker with the command "
             "line and the output of `alsseg --debug …`")

#: OS errors that are the user's environment, not a bug: one line, exit 2.
_EXPECTED_ERRNO = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ELOOP,
                   errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOENT,
                   errno.EXDEV, errno.EBUSY, errno.ETXTBSY, errno.EFBIG, errno.EIO}
_PLAIN = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
          errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
          errno.EPERM: "operation not permitted", errno.ELOOP: "symbolic link loop"}


class _FailedExit(Exception):
    def __init__(self, code: int):
        self.code = code


def os_error_line(exc: OSError) -> str:
    """``FILE: PROBLEM`` for a file-system error (``nothing written`` is said by the caller)."""
    what = _PLAIN.get(exc.errno or 0, (exc.strerror or str(exc) or type(exc).__name__).lower())
    where = exc.filename if exc.filename is not None else "output"
    return f"{where}: {what}"


def run_verb(args) -> int:
    """Call ``args.func(args)`` under the failure contract above; return the exit code."""
    import logging

    class Relay(logging.Handler):  # nibabel's header repairs: one warning line, not raw log text
        def emit(self, record):
            warnings.warn(record.getMessage(), UserWarning)

    logs = [logging.getLogger(n) for n in ("nibabel", "nibabel.global")]  # the latter has its own handler
    saved = [(lg.handlers[:], lg.propagate) for lg in logs]
    for lg in logs:
        lg.handlers, lg.propagate = [Relay()], False
    try:
        return _run_verb(args, bool(getattr(args, "debug", False)))
    finally:
        for lg, (handlers, propagate) in zip(logs, saved):
            lg.handlers, lg.propagate = handlers, propagate


def _run_verb(args, debug: bool) -> int:
    from alsseg.io.validate import InputWarning

    quiet = bool(getattr(args, "quiet", False))
    keep_partial = bool(getattr(args, "keep_partial", False))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for cat in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
            warnings.simplefilter("ignore", cat)
        warnings.simplefilter("always", InputWarning)
        try:
            with output_transaction(enabled=not keep_partial):
                code = int(args.func(args) or 0)
                if code != 0:
                    raise _FailedExit(code)  # the verb printed its own error line: undo its writes
        except _FailedExit as exc:
            return exc.code
        except InputError as exc:
            return _error(str(exc), EXIT_INPUT_ERROR)
        except KeyboardInterrupt:
            print("alsseg: interrupted; nothing of this run's unfinished work was kept", file=sys.stderr)
            return 130
        except OSError as exc:
            if exc.errno in _EXPECTED_ERRNO:
                if debug:
                    traceback.print_exc()
                return _error(f"{os_error_line(exc)}; nothing written", EXIT_INPUT_ERROR)
            return _bug(exc, debug)
        except MemoryError:
            return _error("out of memory (the inputs are too large for this machine)", EXIT_BUG)
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            return _bug(exc, debug)
    if not quiet:
        seen = set()
        for w in caught:
            msg = " ".join(str(w.message).split())
            if msg and msg not in seen:
                seen.add(msg)
                print(f"alsseg: warning: {msg}", file=sys.stderr)
    return 0


def _error(line: str, code: int) -> int:
    print(f"alsseg: error: {' '.join(line.split())}", file=sys.stderr)
    return code


def _bug(exc: BaseException, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return _error(f"unexpected {type(exc).__name__}{': ' + msg[:200] if msg else ''} — {REPORT_TO}", EXIT_BUG)
