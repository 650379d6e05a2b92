"""When each session was acquired, from the BIDS tables or the scans' sidecars.

Sources, first found wins per session:

1. ``sub-XX/sub-XX_sessions.tsv``: ``session_id``, ``acq_time`` (BIDS);
2. ``sub-XX[/ses-YY]/sub-XX[_ses-YY]_scans.tsv``: ``filename``, ``acq_time`` (earliest scan);
3. the MESE series' JSON sidecar: ``AcquisitionDateTime`` (written by ``alsseg convert`` from the
   DICOM headers).

A date that does not parse is an input error naming the file and line (never guessed).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alsseg.io.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

DATE_COLUMNS = ("participant_id", "session_id", "acq_time", "source")


def _parse(value, where: Path, line: int | None):
    import pandas as pd

    text = str(value).strip()
    if text.lower() in ("", "n/a", "nan", "none"):
        return None
    try:
        t = pd.Timestamp(text)
    except (ValueError, TypeError):
        at = f" line {line}" if line else ""
        raise InputError(where, f"acq_time{at}: {text!r} is not an ISO 8601 date (YYYY-MM-DD[Thh:mm:ss])") from None
    return t.tz_localize(None) if t.tzinfo else t


def _tsv_dates(path: Path, key: str) -> dict:
    import pandas as pd

    if not path.is_file():
        return {}
    t = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if key not in t or "acq_time" not in t:
        return {}
    out: dict[str, pd.Timestamp] = {}
    for i, (k, v) in enumerate(zip(t[key], t["acq_time"]), start=2):
        when = _parse(v, path, i)
        if when is not None:
            out[k] = min(out[k], when) if k in out else when
    return out


def session_dates(sessions) -> pd.DataFrame:
    """Acquisition date-time of each session (:class:`alsseg.io.bids.Session` list).

    Returns
    -------
    DataFrame with ``participant_id``, ``session_id`` (empty text without sessions),
    ``acq_time`` (``pandas.Timestamp``, naive) and ``source`` (the file it came from); sessions
    without a date are left out.
    """
    import pandas as pd

    from alsseg.io.sidecar import read_sidecar, sidecar_path

    rows = []
    by_subject: dict = {}
    for s in sessions:
        sub_dir = s.folder.parent if s.session is None else s.folder.parent.parent
        if s.subject not in by_subject:
            tsv = sub_dir / f"{s.subject}_sessions.tsv"
            by_subject[s.subject] = (tsv, _tsv_dates(tsv, "session_id"))
        tsv, dates = by_subject[s.subject]
        when, source = dates.get(s.session or ""), tsv
        if when is None:
            scans = s.folder.parent / f"{s.name}_scans.tsv"
            found = _tsv_dates(scans, "filename")
            if found:
                when, source = min(found.values()), scans
        if when is None and s.mese is not None:
            side = read_sidecar(s.mese_path(), required=False)
            if side.get("AcquisitionDateTime"):
                js = sidecar_path(s.mese_path())
                when, source = _parse(side["AcquisitionDateTime"], js, None), js
        if when is not None:
            rows.append({"participant_id": s.subject, "session_id": s.session or "", "acq_time": when,
                         "source": str(source)})
    return pd.DataFrame(rows, columns=list(DATE_COLUMNS))
