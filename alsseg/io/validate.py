"""Checks on acquisition inputs; each failure raises :class:`InputError` naming the file.

Echo / inversion times, voxel contents, dimensionality, grids and output paths. The unit rule
for times read from sidecars or tables (BIDS stores seconds):

* largest value below 1 (EchoTime) or 30 (InversionTime, RepetitionTime) → seconds (BIDS);
* otherwise → already milliseconds; a warning line says which was assumed (non-BIDS sidecar);
* read as ms, a positive value below 1 ms means mixed units → ambiguous, refused.

Warnings are issued with :func:`warnings.warn` and category :class:`InputWarning`; the CLI prints
each as one line ``alsseg: warning: FILE: MESSAGE``.
"""

from __future__ import annotations

import errno
import os
import stat
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from alsseg.io.errors import InputError


class InputWarning(UserWarning):
    """An input was usable, but an assumption was made about it (e.g. units)."""


def warn_input(path: str | Path | None, message: str) -> None:
    """Issue an :class:`InputWarning` whose text is ``PATH: MESSAGE``."""
    warnings.warn(f"{path}: {message}" if path is not None else message, InputWarning, stacklevel=3)


def input_kind(path: str | Path, missing: str = "no such file or folder") -> str:
    """``"file"`` or ``"dir"``, checked with one ``stat`` before anything opens ``path``.

    A FIFO, a device (``/dev/zero``), a socket, a symlink loop or a dangling link is refused at
    once: opening a FIFO would block forever and a device never ends.

    Raises:
        InputError: missing, not a regular file or folder, or not reachable.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise InputError(path, f"is a broken symbolic link (to {os.readlink(path)})") from None
        raise InputError(path, missing) from None
    except OSError as exc:
        what = "is a symbolic link loop" if exc.errno == errno.ELOOP else f"cannot be read ({(exc.strerror or str(exc)).lower()})"
        raise InputError(path, what) from None
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISREG(st.st_mode):
        return "file"
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "a character device" if stat.S_ISCHR(st.st_mode)
            else "a block device" if stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
            else "not a regular file")
    raise InputError(path, f"is {kind}, not a regular file or folder")


def safe_label(value: str, option: str, prefix: str | None = None) -> str:
    """Refuse an id or name prefix that is not one plain name (``../x``, ``a/b``, ``.``, empty).

    ``prefix`` (``sub``/``ses``): a BIDS label, alphanumeric after an optional ``sub-``/``ses-``.

    Raises:
        InputError: naming the option.
    """
    import re

    v = str(value)
    if prefix is not None:
        bare = v[len(prefix) + 1:] if v.startswith(f"{prefix}-") else v
        if not re.fullmatch(r"[A-Za-z0-9]+", bare):
            raise InputError(None, f"{option} {value!r}: must be a BIDS label (letters and digits, "
                             f"optionally after '{prefix}-'), not a path")
        return v
    if v in ("", ".", "..") or "/" in v or "\\" in v or "\0" in v or v.startswith("-"):
        raise InputError(None, f"{option} {value!r}: must be a plain name, not a path")
    return v


def positive(value: float | None, option: str, allow_none: bool = True, upper: float | None = None,
             inclusive_upper: bool = True) -> float | None:
    """Refuse a number option that is not finite and > 0 (and <= / < ``upper``)."""
    if value is None and allow_none:
        return None
    import math

    ok = value is not None and math.isfinite(value) and value > 0
    if value is not None and ok and upper is not None:
        ok = value <= upper if inclusive_upper else value < upper
    if not ok:
        rng = f" and {'<=' if inclusive_upper else '<'} {upper:g}" if upper is not None else ""
        raise InputError(None, f"{option} {value}: must be a finite number > 0{rng}")
    return value


#: largest value (in the file's numbers) still read as seconds, per sidecar field.
SECONDS_BELOW = {"EchoTime": 1.0, "InversionTime": 30.0, "RepetitionTime": 30.0}


def times_to_ms(values: Sequence[float], path: str | Path | None, what: str = "EchoTime",
                max_ms: float = 100_000.0) -> np.ndarray:
    """Convert sidecar times to milliseconds, resolving the seconds/ms ambiguity.

    Rule: when the largest value is below ``SECONDS_BELOW[what]`` (1 for EchoTime: no spin-echo
    TE reaches 1 s; 30 for InversionTime / RepetitionTime: none reaches 30 s) the values are
    seconds (BIDS); otherwise they are taken as milliseconds and a warning says so. Read as
    milliseconds, a positive value below 1 ms is implausible and means a mix of units: refused.

    Parameters
    ----------
    values : (N,) sequence of float
        Times as found in the file (seconds per BIDS, or milliseconds).
    path : path
        The file the values came from (named in messages).
    what : str
        Field name (``EchoTime``, ``InversionTime``, ``RepetitionTime``), for the rule and messages.
    max_ms : float
        Largest plausible value in ms.

    Returns
    -------
    times_ms : (N,) ndarray of float64

    Raises
    ------
    InputError
        Non-numeric or non-finite values, values that mix seconds and milliseconds, implausible values.
    """
    if isinstance(values, (list, tuple)) and any(isinstance(v, (list, tuple, dict)) for v in values):
        raise InputError(path, f"{what} must be a flat list of numbers, got nested lists {values!r}")
    try:
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(path, f"{what} must be numbers, got {values!r}") from None
    if arr.size == 0:
        raise InputError(path, f"{what} is empty")
    if not np.isfinite(arr).all():
        raise InputError(path, f"{what} has non-finite values: {arr.tolist()}")
    limit = SECONDS_BELOW.get(what, 1.0)
    if np.abs(arr).max() < limit:
        out = arr * 1000.0
    else:
        pos = arr[arr > 0]
        if pos.size and (pos < 1).any():
            raise InputError(path, f"{what} values {_fmt(arr)} mix values below 1 and above {limit:g}: cannot "
                             "tell seconds (BIDS) from milliseconds")
        warn_input(path, f"{what} values {_fmt(arr)} are >= {limit:g}, assumed milliseconds (BIDS uses seconds)")
        out = arr.copy()
    if (out > max_ms).any():
        raise InputError(path, f"{what} {_fmt(arr)} exceeds {max_ms:g} ms: implausible")
    return out


def check_echo_times(echo_times_ms: Sequence[float] | np.ndarray, path: str | Path | None,
                     n_echoes: int | None = None, what: str = "echo times") -> np.ndarray:
    """Check that echo times are positive, finite, strictly increasing and match the echo count.

    Parameters
    ----------
    echo_times_ms : (E,) sequence of float, ms
    path : path named in messages
    n_echoes : int, optional
        Number of echo volumes in the image; must equal ``len(echo_times_ms)``.

    Returns
    -------
    echo_times_ms : (E,) ndarray of float64
    """
    te = np.asarray(echo_times_ms, dtype=np.float64).reshape(-1)
    if n_echoes is not None and te.size != n_echoes:
        raise InputError(path, f"image has {n_echoes} echo volume(s) but {te.size} {what} are given")
    if not np.isfinite(te).all():
        raise InputError(path, f"{what} {_fmt(te)} include NaN or infinite values")
    if (te <= 0).any():
        bad = "zero" if (te == 0).any() else "negative"
        raise InputError(path, f"{what} {_fmt(te)} include {bad} values; each must be > 0 ms")
    if te.size > 1 and not (np.diff(te) > 0).all():
        raise InputError(path, f"{what} {_fmt(te)} are not strictly increasing")
    return te


def check_voxels(data: np.ndarray, path: str | Path | None) -> None:
    """Raise if the array holds NaN / inf voxels or is all zero.

    Parameters
    ----------
    data : (X, Y, Z[, V]) ndarray
    """
    if np.issubdtype(data.dtype, np.floating):
        bad = ~np.isfinite(data)
        if bad.any():
            raise InputError(path, f"{int(bad.sum())} voxel(s) are NaN or infinite")
    if not np.any(data):
        raise InputError(path, "image is all zero")


def check_ndim(data: np.ndarray, path: str | Path | None, allowed: int | Iterable[int]) -> None:
    """Raise if ``data.ndim`` is not one of ``allowed`` (a 2-D image where 3-D is needed…)."""
    allowed = (allowed,) if isinstance(allowed, int) else tuple(allowed)
    if data.ndim not in allowed:
        want = " or ".join(f"{d}-D" for d in allowed)
        raise InputError(path, f"is {data.ndim}-D with shape {tuple(data.shape)}, expected {want}")


def check_outputs(outputs: Iterable[str | Path], inputs: Iterable[str | Path]) -> None:
    """Raise :class:`InputError` naming the output if any output path resolves to an input path."""
    inputs = [Path(p).resolve() for p in inputs]
    for out in outputs:
        o = Path(out).resolve()
        for i in inputs:
            if o == i:
                raise InputError(out, "output path is also an input; refusing to overwrite an input")


def _fmt(a: np.ndarray) -> str:
    a = np.asarray(a, dtype=float)
    if a.size > 6:
        return "[" + ", ".join(f"{v:g}" for v in a[:3]) + ", …, " + ", ".join(f"{v:g}" for v in a[-2:]) + "]"
    return "[" + ", ".join(f"{v:g}" for v in a) + "]"
