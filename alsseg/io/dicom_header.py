"""Series-level DICOM header fields (description, field strength, TR, flip angles, date) as
plain JSON-ready values."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from alsseg.io.dicom_frames import shared_or_top


def acquisition_datetime(ds: Any) -> str | None:
    """ISO 8601 ``YYYY-MM-DDTHH:MM:SS`` of the acquisition: ``AcquisitionDateTime``, else
    ``AcquisitionDate`` (or ``SeriesDate``, ``StudyDate``) with the matching time; None if absent."""
    text = str(ds.get("AcquisitionDateTime", "") or "")
    if not text:
        for d, t in (("AcquisitionDate", "AcquisitionTime"), ("SeriesDate", "SeriesTime"), ("StudyDate", "StudyTime")):
            if ds.get(d):
                text = str(ds.get(d)) + str(ds.get(t, "") or "")
                break
    m = re.match(r"(\d{4})(\d{2})(\d{2})(\d{2})?(\d{2})?(\d{2})?", text.strip())
    if not m:
        return None
    y, mo, d, hh, mm, ss = (g or "00" for g in m.groups())
    return f"{y}-{mo}-{d}T{hh}:{mm}:{ss}"


def series_header(ds: Any, params: np.ndarray) -> dict[str, Any]:
    """Series-level fields of a pydicom dataset as plain values, with TR, flip angles and echo
    times taken from ``params``, the ``(V, 4)`` per-volume (TE ms, TI ms, flip deg, TR ms)."""
    h: dict[str, Any] = {}
    for kw in ("SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "ProtocolName", "Manufacturer",
               "ManufacturerModelName", "MagneticFieldStrength", "PatientPosition", "SOPClassUID",
               "ScanningSequence", "SequenceName", "PulseSequenceName", "EchoPulseSequence", "MRAcquisitionType",
               "ImageType"):
        v = ds.get(kw, None)
        if v is not None and v != "":
            h[kw] = _plain(v)
    if "SOPClassUID" in h:
        h["SOPClassName"] = getattr(ds.SOPClassUID, "name", str(ds.SOPClassUID))
    when = acquisition_datetime(ds)
    if when:
        h["AcquisitionDateTime"] = when
    h["EnhancedMultiFrame"] = "PerFrameFunctionalGroupsSequence" in ds
    thick = shared_or_top(ds, "PixelMeasuresSequence", "SliceThickness")
    if thick is not None:
        h["SliceThickness"] = float(thick)
    tr = params[:, 3]
    if np.isfinite(tr).all() and np.unique(tr).size == 1:
        h["RepetitionTime_ms"] = float(tr[0])
    fa = params[:, 2]
    if np.isfinite(fa).all() and np.unique(fa).size == 1:
        h["FlipAngle"] = float(fa[0])
        spin = ("SE" in str(h.get("ScanningSequence", "")) or str(h.get("EchoPulseSequence", "")) == "SPIN")
        if spin and fa[0] > 90:
            h["RefocusingFlipAngle"] = float(fa[0])  # Siemens spin echo: FlipAngle is the refocusing pulse
        elif spin:
            h["ExcitationFlipAngle"] = float(fa[0])
    te = params[:, 0]
    if np.isfinite(te).all():
        h["EchoTimes_ms"] = [float(t) for t in te]
    return h


def _plain(v: Any) -> Any:
    """A DICOM value as a plain JSON-ready value (list, bool, int, float or str)."""
    from pydicom.multival import MultiValue

    if isinstance(v, MultiValue):
        return [_plain(x) for x in v]
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, str):
        return str(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)
