"""The frames of a DICOM file: where each 2-D frame lies, what it measured, its stored pixels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alsseg.io.errors import InputError, first_line


@dataclass(frozen=True)
class Frame:
    """One 2-D frame: where it is, what it measured, where its pixels are."""

    file: Path
    index: int  # frame index in the file (0 for classic)
    position_lps: np.ndarray  # (3,) mm
    orientation: np.ndarray  # (6,) row and column direction cosines
    pixel_spacing: tuple[float, float]  # (row spacing, column spacing) mm
    echo_time_ms: float
    inversion_time_ms: float
    flip_angle_deg: float
    repetition_time_ms: float
    slope: float
    intercept: float
    rows: int
    columns: int


def _frame_value(ds: Any, groups: list[Any], seq_kw: str, kw: str, default: Any = None) -> Any:
    """``kw`` from the first of ``groups`` (per-frame, then shared functional groups) whose
    ``seq_kw`` sequence holds it, else from the top-level dataset; ``default`` when absent or empty."""
    for g in groups:
        if seq_kw in g and len(g[seq_kw].value):
            item = g[seq_kw].value[0]
            if kw in item and item[kw].value not in (None, ""):
                return item[kw].value
    v = ds.get(kw, None)
    return default if v in (None, "") else v


def frames_of(path: Path, ds: Any) -> list[Frame]:
    """Describe every frame of a file (enhanced: per-frame, then shared, then top level)."""
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else None
    per = ds.PerFrameFunctionalGroupsSequence if "PerFrameFunctionalGroupsSequence" in ds else None
    if per is not None and len(per) != n:
        raise InputError(path, f"NumberOfFrames is {n} but {len(per)} per-frame functional groups are present")
    frames: list[Frame] = []
    for i in range(n):
        groups = [g for g in ((per[i] if per is not None else None), shared) if g is not None]
        ipp = _frame_value(ds, groups, "PlanePositionSequence", "ImagePositionPatient")
        iop = _frame_value(ds, groups, "PlaneOrientationSequence", "ImageOrientationPatient")
        ps = _frame_value(ds, groups, "PixelMeasuresSequence", "PixelSpacing")
        if ipp is None or iop is None or ps is None:
            missing = [k for k, v in (("ImagePositionPatient", ipp), ("ImageOrientationPatient", iop),
                                      ("PixelSpacing", ps)) if v is None]
            raise InputError(path, f"frame {i + 1} lacks {', '.join(missing)}: cannot place it in space")
        te = _frame_value(ds, groups, "MREchoSequence", "EffectiveEchoTime", None)
        if te is None:
            te = ds.get("EchoTime", None)
        ti = _frame_value(ds, groups, "MRModifierSequence", "InversionTimes", None)
        if ti is not None and not isinstance(ti, (int, float)):
            ti = next(iter(ti), None)
        if ti is None:
            ti = ds.get("InversionTime", None)
        fa = _frame_value(ds, groups, "MRTimingAndRelatedParametersSequence", "FlipAngle", None)
        tr = _frame_value(ds, groups, "MRTimingAndRelatedParametersSequence", "RepetitionTime", None)
        slope = _frame_value(ds, groups, "PixelValueTransformationSequence", "RescaleSlope", 1.0)
        intercept = _frame_value(ds, groups, "PixelValueTransformationSequence", "RescaleIntercept", 0.0)
        try:
            frames.append(Frame(
                file=path, index=i, position_lps=np.asarray([float(v) for v in ipp]),
                orientation=np.asarray([float(v) for v in iop]),
                pixel_spacing=(float(ps[0]), float(ps[1])),
                echo_time_ms=as_float(te), inversion_time_ms=as_float(ti), flip_angle_deg=as_float(fa),
                repetition_time_ms=as_float(tr), slope=float(slope), intercept=float(intercept),
                rows=int(ds.Rows), columns=int(ds.Columns)))
        except (TypeError, ValueError, IndexError, AttributeError) as exc:
            raise InputError(path, f"frame {i + 1} has malformed geometry ({first_line(exc)})") from None
    return frames


def read_pixels(path: Path) -> np.ndarray:
    """``(n_frames, rows, cols)`` stored pixel values of one file."""
    import pydicom

    try:
        ds = pydicom.dcmread(str(path))
        arr = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - pixel decoders raise anything on truncated data or an unsupported transfer syntax
        raise InputError(path, f"cannot read pixel data ({first_line(exc)})") from None
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if n == 1 and arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[0] != n:
        raise InputError(path, f"pixel data of shape {arr.shape} for {n} frame(s) of a single-sample image "
                         "(colour or malformed)")
    return arr


def shared_or_top(ds: Any, seq_kw: str, kw: str) -> Any:
    """``kw`` from the ``seq_kw`` sequence of the shared (else first per-frame) functional group,
    else from the top-level dataset; None when absent."""
    for grp in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        if grp in ds and len(ds[grp].value) and seq_kw in ds[grp].value[0]:
            item = ds[grp].value[0][seq_kw].value[0]
            if kw in item:
                return item[kw].value
    return ds.get(kw, None)


def as_float(v: Any) -> float:
    """A header value as float; NaN when missing, empty or not a number."""
    if v is None or v == "":
        return float("nan")
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")
