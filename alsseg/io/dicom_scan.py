"""Reading the headers of a DICOM folder (no pixels): the series it holds, grouped by
SeriesInstanceUID."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alsseg.io.errors import InputError, first_line
from alsseg.progress import progress_bar

_SKIP_NAMES = {"DICOMDIR", "LOCKFILE", "VERSION"}

#: SeriesInstanceUID → ``(path, pydicom Dataset)`` of each file of the series.
HeaderGroups = dict[str, list[tuple[Path, Any]]]


@dataclass(frozen=True)
class SeriesSummary:
    """What a folder holds, one entry per SeriesInstanceUID (no pixel data read)."""

    uid: str
    number: str
    description: str
    n_files: int
    n_frames: int


def scan_folder(folder: str | Path, progress: bool = False) -> HeaderGroups:
    """Read the headers (no pixels) of every DICOM file under ``folder``, grouped by series.

    ``progress``: show a progress bar (when there are more than 200 files).

    Returns
    -------
    dict
        SeriesInstanceUID → list of ``(path, pydicom Dataset)``.

    Raises
    ------
    InputError
        No such folder, no DICOM file in it, or a file named like DICOM that cannot be read.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    folder = Path(folder)
    if not folder.exists():
        raise InputError(folder, "no such folder")
    if not folder.is_dir():
        raise InputError(folder, "is not a folder (expected a DICOM folder)")
    groups: HeaderGroups = {}
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    for f in progress_bar(files, desc="reading DICOM headers", unit="file", show=progress and len(files) > 200):
        if f.name.startswith(".") or f.name.upper() in _SKIP_NAMES:
            continue
        looks_dicom = f.suffix.lower() in {".dcm", ".ima", ".dicom"}
        try:
            ds = pydicom.dcmread(str(f), stop_before_pixels=True)
        except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            if looks_dicom:
                raise InputError(f, f"not a readable DICOM file ({first_line(exc)})") from None
            continue
        if "SeriesInstanceUID" not in ds or "Rows" not in ds:
            continue  # DICOMDIR, structured reports, presentation states…: no image
        groups.setdefault(str(ds.SeriesInstanceUID), []).append((f, ds))
    if not groups:
        raise InputError(folder, "holds no DICOM image files")
    return groups


def summarize(groups: HeaderGroups) -> list[SeriesSummary]:
    """One :class:`SeriesSummary` per series, ordered by series number."""
    out = []
    for uid, items in groups.items():
        ds = items[0][1]
        nfr = sum(int(getattr(d, "NumberOfFrames", 1) or 1) for _, d in items)
        out.append(SeriesSummary(uid, str(getattr(ds, "SeriesNumber", "")), str(getattr(ds, "SeriesDescription", "")),
                                 len(items), nfr))
    return sorted(out, key=lambda s: (_int_or(s.number, 10**9), s.uid))


def list_series(folder: str | Path, progress: bool = False) -> list[SeriesSummary]:
    """The series a DICOM folder holds (headers only)."""
    return summarize(scan_folder(folder, progress))


def describe_series(summaries: list[SeriesSummary]) -> str:
    """One line naming each series (number, description, files, frames, UID)."""
    return "; ".join(f"#{s.number or '?'} {s.description or '(no description)'} ({s.n_files} files, "
                     f"{s.n_frames} frames, UID {s.uid})" for s in summaries)


def _int_or(s: str, default: int) -> int:
    try:
        return int(s)
    except (TypeError, ValueError):
        return default
