"""Atomic writes: write to a temporary file beside the target, then rename over it.

A reader never sees a half-written output, and an interrupted run leaves no partial file
under the final name. Inputs are protected: :func:`refuse_overwrite_of_inputs` raises if an
output path is one of the inputs.

A set of files is atomic too: inside :func:`output_transaction` every file and folder created
through :func:`atomic_path` / :func:`make_dirs` is recorded, and when the block fails they are
removed again (a file that was replaced is put back from a hard-linked copy), so a command that
fails half-way leaves the disk as it found it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from alsseg.io.errors import InputError

# mkstemp creates 0600 files; outputs get the permissions an ordinary open() would give them.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK

#: file-system errors after which no later write can succeed: a cohort stops on them.
STOP_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
#: temporary and backup names carry their writer: ``.NAME.alsseg-HOST-PID-XXXX.EXT``.
_TEMP_RE = re.compile(r"^\..*\.alsseg-([A-Za-z0-9]+)-(\d+)-")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname()) or "host"


def _tag() -> str:
    return f"alsseg-{_host()}-{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporary files under ``folder`` that a dead writer of this machine left
    (a killed run), and this process's own; never those of a live process or another machine.

    Returns the paths removed.
    """
    removed: list[Path] = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    me, host = os.getpid(), _host()
    for p in folder.rglob(".*"):
        m = _TEMP_RE.match(p.name)
        if not m or not p.is_file() or m.group(1) != host:
            continue
        pid = int(m.group(2))
        if pid == me or not _alive(pid):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    return removed


class _Journal:
    """What one :func:`output_transaction` created (in this process only)."""

    def __init__(self):
        self.pid = os.getpid()
        self.created_dirs: list[Path] = []
        self.created_files: list[Path] = []
        self.replaced: list[tuple[Path, Path]] = []  # (target, hard-linked copy of the old file)

    def rollback(self) -> None:
        for target, backup in reversed(self.replaced):
            with contextlib.suppress(OSError):
                os.replace(backup, target)
        for f in reversed(self.created_files):
            with contextlib.suppress(OSError):
                f.unlink()
        for d in reversed(self.created_dirs):
            with contextlib.suppress(OSError):
                d.rmdir()  # only when empty: never a folder someone else filled meanwhile

    def commit(self) -> None:
        for _, backup in self.replaced:
            with contextlib.suppress(OSError):
                backup.unlink()


_JOURNALS: list[_Journal] = []


def _journal() -> _Journal | None:
    j = _JOURNALS[-1] if _JOURNALS else None
    return j if j is not None and j.pid == os.getpid() else None  # not in a forked worker


@contextlib.contextmanager
def output_transaction(enabled: bool = True) -> Iterator[None]:
    """Undo, on any exception, every write made through this module inside the block."""
    if not enabled:
        yield
        return
    journal = _Journal()
    _JOURNALS.append(journal)
    try:
        yield
    except BaseException:
        journal.rollback()
        raise
    else:
        journal.commit()
    finally:
        _JOURNALS.remove(journal)


def record_created(path: str | Path) -> None:
    """Count a file made outside :func:`atomic_path` (a lock file) among the transaction's."""
    j = _journal()
    if j is not None:
        j.created_files.append(Path(path))


def make_dirs(folder: str | Path) -> Path:
    """``mkdir -p`` that records the folders it created in the current transaction."""
    folder = Path(folder)
    missing = []
    p = folder
    while not p.exists() and p != p.parent:
        if p.is_symlink():  # a dangling or looping link: let mkdir say so
            break
        missing.append(p)
        p = p.parent
    if p.exists() and not p.is_dir():
        raise InputError(p, "is a file, not a folder: cannot write outputs under it")
    folder.mkdir(parents=True, exist_ok=True)
    j = _journal()
    if j is not None:
        j.created_dirs.extend(reversed(missing))
    return folder


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it onto ``target``.

    The temporary name keeps the target's full suffix (e.g. ``.nii.gz``) so libraries
    that choose a format by extension behave the same. On error the temporary file is removed,
    and an :class:`OSError` without a file name is given the target's.
    """
    target = Path(target)
    if target.is_dir():
        raise InputError(target, "is a folder; cannot write a file there")
    make_dirs(target.parent)
    if suffix is None:
        suffix = "".join(target.suffixes) or ".tmp"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name.split('.')[0]}.{_tag()}", suffix=suffix, dir=target.parent)
    except OSError as exc:
        exc.filename = str(target)  # the user knows the output's name, not the temporary one
        raise
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _FILE_MODE)
        j = _journal() if not _TEMP_RE.match(target.name) else None  # a temporary of an outer write: not journaled
        existed = os.path.lexists(target)
        if j is not None and existed:
            backup = target.with_name(f".{target.name}.{_tag()}bak")
            os.link(target, backup)
            j.replaced.append((target, backup))
        os.replace(tmp_path, target)
        if j is not None and not existed:
            j.created_files.append(target)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if exc.filename is None or str(exc.filename) == str(tmp_path):
            exc.filename = str(target)  # the user knows the output's name, not the temporary one
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_text_atomic(target: str | Path, text: str) -> Path:
    """Write ``text`` to ``target`` atomically and return the path."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return Path(target)


def write_bytes_atomic(target: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically and return the path."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def refuse_overwrite_of_inputs(outputs: Iterable[str | Path], inputs: Iterable[str | Path]) -> None:
    """Raise :class:`InputError` if any output path is one of the input paths."""
    resolved_inputs = []
    for p in inputs:
        try:
            resolved_inputs.append(Path(p).resolve())
        except (RuntimeError, OSError):  # a symlink loop: its reader names it, one line
            continue
    for out in outputs:
        if Path(out).resolve() in resolved_inputs:
            raise InputError(out, "output path is also an input; refusing to overwrite an input")


def check_output_folder(folder: str | Path) -> Path:
    """Refuse an output folder that is an existing file (or sits under one), before any work.

    Raises:
        InputError: ``folder`` or one of its parents exists and is not a folder.
    """
    folder = Path(folder)
    for p in [folder, *folder.parents]:
        try:
            if p.exists():
                if not p.is_dir():
                    raise InputError(folder if p == folder else p,
                                     "exists and is not a folder; give a folder for the outputs")
                break
        except OSError as exc:  # a symlink loop in the path
            raise InputError(p, f"cannot be used as output folder ({(exc.strerror or str(exc)).lower()})") from None
    return folder
