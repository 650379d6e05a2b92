"""DICOM folders (classic single-frame and enhanced multi-frame MR) → 4-D volumes on a RAS grid.

Every 2-D frame of every file is described by its geometry (ImagePositionPatient,
ImageOrientationPatient, PixelSpacing) and its acquisition parameters (echo time, inversion
time, flip angle, repetition time), read from the frame's per-frame functional groups, then the
shared functional groups, then the top-level dataset (classic files). Frames are grouped by
SeriesInstanceUID; a folder that mixes series is refused unless one is picked.

**Voxel order (the documented reordering).** For frame ``f`` at slice ``k`` of volume ``v``::

    data[i, j, k, v] = pixel_array(f)[j, i] * RescaleSlope + RescaleIntercept

i.e. ``i`` runs along a row (DICOM column index, direction cosine ``F_r`` = IOP[0:3]), ``j`` down the
columns (row index, ``F_c`` = IOP[3:6]); slices are sorted by their position along the normal
``n = F_r × F_c``; volumes by (TE, TI, flip angle, TR). The affine maps voxel centres to world::

    LPS(i, j, k) = IPP_0 + i·Δcol·F_r + j·Δrow·F_c + k·(IPP_last − IPP_0)/(Z − 1)
    RAS = diag(−1, −1, 1) · LPS

where ``PixelSpacing = [Δrow, Δcol]``. The slice step comes from the positions (the true
centre-to-centre spacing, gap included), not from SliceThickness.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from alsseg.io.errors import InputError

#: DICOM → NIfTI world: LPS to RAS.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_SKIP_NAMES = {"DICOMDIR", "LOCKFILE", "VERSION"}
_DICOM_EXT = {".dcm", ".ima", ".dicom", ""}


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


@dataclass(frozen=True, eq=False)
class DicomVolumes:
    """A DICOM series assembled into volumes.

    Attributes
    ----------
    data : (X, Y, Z, V) ndarray
        Pixel values after rescale; the stored integer dtype is kept when the rescale is identity.
    affine : (4, 4) ndarray
        Voxel → RAS world, mm.
    echo_times_ms, inversion_times_ms, flip_angles_deg, repetition_times_ms : (V,) ndarray
        Per-volume acquisition parameters (NaN where the header lacks them).
    varying : str or None
        Which parameter changes across volumes ('EchoTime', 'InversionTime', 'FlipAngle',
        'RepetitionTime'), None for a single volume.
    header : dict
        Series-level fields (SeriesInstanceUID, SeriesDescription, Manufacturer,
        MagneticFieldStrength, RepetitionTime_ms, RefocusingFlipAngle, ExcitationFlipAngle,
        SliceThickness, SliceSpacing_mm, …).
    folder : Path
    files : list of Path
    frame_map : (Z, V, 2) ndarray of object
        ``(file, frame index)`` of the frame stored at each slice and volume.
    slice_positions_lps : (Z, 3) ndarray
        ImagePositionPatient of each slice (LPS, mm).
    """

    data: np.ndarray
    affine: np.ndarray
    echo_times_ms: np.ndarray | None
    inversion_times_ms: np.ndarray | None
    flip_angles_deg: np.ndarray | None
    repetition_times_ms: np.ndarray | None
    varying: str | None
    header: dict
    folder: Path
    files: list = field(default_factory=list)
    frame_map: np.ndarray | None = None
    slice_positions_lps: np.ndarray | None = None

    @property
    def n_volumes(self) -> int:
        return int(self.data.shape[3])


@dataclass(frozen=True)
class SeriesSummary:
    """What a folder holds, one entry per SeriesInstanceUID (no pixel data read)."""

    uid: str
    number: str
    description: str
    n_files: int
    n_frames: int


def scan_folder(folder: str | Path, progress: bool = False) -> dict[str, list]:
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
    groups: dict[str, list] = {}
    from tqdm import tqdm

    files = sorted(p for p in folder.rglob("*") if p.is_file())
    for f in tqdm(files, desc="reading DICOM headers", unit="file", disable=not progress or len(files) <= 200):
        if f.name.startswith(".") or f.name.upper() in _SKIP_NAMES:
            continue
        looks_dicom = f.suffix.lower() in {".dcm", ".ima", ".dicom"}
        try:
            ds = pydicom.dcmread(str(f), stop_before_pixels=True)
        except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            if looks_dicom:
                raise InputError(f, f"not a readable DICOM file ({_first_line(exc)})") from None
            continue
        if "SeriesInstanceUID" not in ds or "Rows" not in ds:
            continue  # DICOMDIR, structured reports, presentation states…: no image
        groups.setdefault(str(ds.SeriesInstanceUID), []).append((f, ds))
    if not groups:
        raise InputError(folder, "holds no DICOM image files")
    return groups


def summarize(groups: dict[str, list]) -> list[SeriesSummary]:
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


def read_dicom_series(folder: str | Path, series: str | None = None, progress: bool = False) -> DicomVolumes:
    """Read one DICOM series from a folder into volumes.

    Parameters
    ----------
    folder : path
        Folder (searched recursively) of DICOM files.
    series : str, optional
        SeriesInstanceUID or SeriesNumber to read when the folder holds several series.
    progress : bool
        Progress bar while reading headers of a large folder.

    Returns
    -------
    DicomVolumes

    Raises
    ------
    InputError
        Mixed series without a choice, missing geometry, frames that do not form a regular
        grid (missing slices, uneven spacing, several orientations), unreadable pixels.
    """
    folder = Path(folder)
    groups = scan_folder(folder, progress)
    summaries = summarize(groups)
    if series is not None:
        chosen = [s for s in summaries if series in (s.uid, s.number)]
        if not chosen:
            raise InputError(folder, f"no series {series!r} here; found: " + _describe(summaries))
        if len(chosen) > 1:
            raise InputError(folder, f"series number {series} is ambiguous; pick a SeriesInstanceUID: "
                             + _describe(chosen))
        uid = chosen[0].uid
    elif len(summaries) > 1:
        raise InputError(folder, f"mixes {len(summaries)} DICOM series: {_describe(summaries)}; "
                         "pick one (--series UID or number)")
    else:
        uid = summaries[0].uid
    return _assemble(folder, groups[uid])


def assemble(folder: str | Path, groups: dict[str, list], uid: str) -> DicomVolumes:
    """Assemble series ``uid`` from headers already read by :func:`scan_folder` (no second scan)."""
    return _assemble(Path(folder), groups[uid])


# ------------------------------------------------------------------------------------ internals
def _frames_of(path: Path, ds) -> list[Frame]:
    """Describe every frame of a file (enhanced: per-frame, then shared, then top level)."""
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else None
    per = ds.PerFrameFunctionalGroupsSequence if "PerFrameFunctionalGroupsSequence" in ds else None
    if per is not None and len(per) != n:
        raise InputError(path, f"NumberOfFrames is {n} but {len(per)} per-frame functional groups are present")
    frames = []
    for i in range(n):
        groups = [g for g in ((per[i] if per is not None else None), shared) if g is not None]

        def get(seq_kw: str, kw: str, default=None):
            for g in groups:
                if seq_kw in g and len(g[seq_kw].value):
                    item = g[seq_kw].value[0]
                    if kw in item and item[kw].value not in (None, ""):
                        return item[kw].value
            v = ds.get(kw, None)
            return default if v in (None, "") else v

        ipp = get("PlanePositionSequence", "ImagePositionPatient")
        iop = get("PlaneOrientationSequence", "ImageOrientationPatient")
        ps = get("PixelMeasuresSequence", "PixelSpacing")
        if ipp is None or iop is None or ps is None:
            missing = [k for k, v in (("ImagePositionPatient", ipp), ("ImageOrientationPatient", iop),
                                      ("PixelSpacing", ps)) if v is None]
            raise InputError(path, f"frame {i + 1} lacks {', '.join(missing)}: cannot place it in space")
        te = get("MREchoSequence", "EffectiveEchoTime", None)
        if te is None:
            te = ds.get("EchoTime", None)
        ti = get("MRModifierSequence", "InversionTimes", None)
        if ti is not None and not isinstance(ti, (int, float)):
            ti = list(ti)[0] if len(ti) else None
        if ti is None:
            ti = ds.get("InversionTime", None)
        fa = get("MRTimingAndRelatedParametersSequence", "FlipAngle", None)
        tr = get("MRTimingAndRelatedParametersSequence", "RepetitionTime", None)
        slope = get("PixelValueTransformationSequence", "RescaleSlope", 1.0)
        intercept = get("PixelValueTransformationSequence", "RescaleIntercept", 0.0)
        try:
            frames.append(Frame(
                file=path, index=i, position_lps=np.asarray([float(v) for v in ipp]),
                orientation=np.asarray([float(v) for v in iop]),
                pixel_spacing=(float(ps[0]), float(ps[1])),
                echo_time_ms=_num(te), inversion_time_ms=_num(ti), flip_angle_deg=_num(fa),
                repetition_time_ms=_num(tr), slope=float(slope), intercept=float(intercept),
                rows=int(ds.Rows), columns=int(ds.Columns)))
        except (TypeError, ValueError, IndexError, AttributeError) as exc:
            raise InputError(path, f"frame {i + 1} has malformed geometry ({_first_line(exc)})") from None
    return frames


def _assemble(folder: Path, items: list) -> DicomVolumes:
    frames: list[Frame] = []
    for path, ds in items:
        frames += _frames_of(path, ds)
    ds0 = items[0][1]
    # one orientation and one matrix for the whole series
    iop0 = frames[0].orientation
    for fr in frames:
        if not np.allclose(fr.orientation, iop0, atol=1e-4):
            raise InputError(fr.file, f"frame orientation {np.round(fr.orientation, 4).tolist()} differs from "
                             f"{np.round(iop0, 4).tolist()} in {frames[0].file.name}: several stacks in one series")
        if (fr.rows, fr.columns) != (frames[0].rows, frames[0].columns):
            raise InputError(fr.file, f"matrix {fr.rows}×{fr.columns} differs from {frames[0].rows}×"
                             f"{frames[0].columns} in {frames[0].file.name}")
        if not np.allclose(fr.pixel_spacing, frames[0].pixel_spacing, atol=1e-4):
            raise InputError(fr.file, f"PixelSpacing {fr.pixel_spacing} differs from {frames[0].pixel_spacing}")
    row_cos, col_cos = iop0[:3], iop0[3:]
    normal = np.cross(row_cos, col_cos)
    if not np.isclose(np.linalg.norm(normal), 1.0, atol=1e-3):
        raise InputError(frames[0].file, f"ImageOrientationPatient {iop0.tolist()} is not two orthonormal vectors")

    # slices: cluster positions along the normal
    d = np.array([fr.position_lps @ normal for fr in frames])
    order = np.argsort(d, kind="stable")
    slice_of = np.empty(len(frames), dtype=int)
    centres: list[float] = []
    for idx in order:
        if not centres or d[idx] - centres[-1] > 1e-2:
            centres.append(d[idx])
        slice_of[idx] = len(centres) - 1
    n_z = len(centres)

    # volumes: distinct acquisition parameters
    def key(fr: Frame):
        return tuple(np.round(v, 3) if np.isfinite(v) else -1.0 for v in
                     (fr.echo_time_ms, fr.inversion_time_ms, fr.flip_angle_deg, fr.repetition_time_ms))

    keys = sorted(set(key(fr) for fr in frames))
    vol_of = {k: i for i, k in enumerate(keys)}
    n_v = len(keys)
    frame_map = np.empty((n_z, n_v), dtype=object)
    for fr, z in zip(frames, slice_of):
        v = vol_of[key(fr)]
        if frame_map[z, v] is not None:
            other = frame_map[z, v]
            raise InputError(fr.file, f"frame {fr.index + 1} repeats slice {z + 1} with the same parameters "
                             f"{_key_text(keys[v], keys)} as {other.file.name} frame {other.index + 1} "
                             "(repeated acquisition, or several series with one UID)")
        frame_map[z, v] = fr
    missing = [(z, v) for z in range(n_z) for v in range(n_v) if frame_map[z, v] is None]
    if missing:
        counts = Counter(v for _, v in missing)
        v, c = counts.most_common(1)[0]
        raise InputError(folder, f"incomplete series: volume {_key_text(keys[v], keys)} lacks {c} of {n_z} slices "
                         f"({len(frames)} frames for {n_z} slices × {n_v} volumes)")
    # positions must agree across volumes and lie on a line along the normal at even steps
    pos = np.array([frame_map[z, 0].position_lps for z in range(n_z)])
    for z in range(n_z):
        for v in range(n_v):
            if not np.allclose(frame_map[z, v].position_lps, pos[z], atol=1e-2):
                fr = frame_map[z, v]
                raise InputError(fr.file, f"frame {fr.index + 1} at {fr.position_lps.round(3).tolist()} is not at "
                                 f"slice {z + 1} position {pos[z].round(3).tolist()}: volumes do not share a grid")
    if n_z > 1:
        step = (pos[-1] - pos[0]) / (n_z - 1)
        steps = np.diff(pos, axis=0)
        if not np.allclose(steps, step, atol=max(1e-2, 1e-3 * np.linalg.norm(step))):
            gaps = np.linalg.norm(steps, axis=1).round(3).tolist()
            raise InputError(folder, f"slice positions are not evenly spaced (steps {gaps} mm): cannot form one grid")
    else:
        thick = _num(_shared_or_top(ds0, "PixelMeasuresSequence", "SliceThickness"))
        step = normal * (thick if np.isfinite(thick) else 1.0)

    # pixels
    rows, cols = frames[0].rows, frames[0].columns
    identity = all(fr.slope == 1.0 and fr.intercept == 0.0 for fr in frames)
    pixels = {}
    for path, ds in items:
        pixels[path] = _pixels(path, frames)
    sample = next(iter(pixels.values()))
    dtype = sample.dtype if identity else np.float32
    data = np.empty((cols, rows, n_z, n_v), dtype=dtype)
    for z in range(n_z):
        for v in range(n_v):
            fr = frame_map[z, v]
            arr = pixels[fr.file][fr.index]
            if not identity:
                arr = arr.astype(np.float32) * fr.slope + fr.intercept
            data[:, :, z, v] = arr.T
    dr, dc = frames[0].pixel_spacing
    aff = np.eye(4)
    aff[:3, 0] = row_cos * dc
    aff[:3, 1] = col_cos * dr
    aff[:3, 2] = step
    aff[:3, 3] = pos[0]
    affine = LPS_TO_RAS @ aff

    params = np.array([[frame_map[0, v].echo_time_ms, frame_map[0, v].inversion_time_ms,
                        frame_map[0, v].flip_angle_deg, frame_map[0, v].repetition_time_ms] for v in range(n_v)])
    names = ("EchoTime", "InversionTime", "FlipAngle", "RepetitionTime")
    varying = [n for n, col in zip(names, params.T) if np.unique(np.nan_to_num(col, nan=-1)).size > 1]
    if set(varying) == {"InversionTime", "RepetitionTime"}:
        varying = ["InversionTime"]  # IR protocols may lengthen TR with TI: per-volume TR is kept
    if len(varying) > 1:
        raise InputError(folder, f"volumes differ by several parameters at once ({', '.join(varying)}): "
                         "not one T2 or T1 series")
    header = _series_header(ds0, params, folder)
    header["SliceSpacing_mm"] = float(np.linalg.norm(step))
    header["NumberOfSlices"] = n_z
    header["NumberOfVolumes"] = n_v
    header["SourceFiles"] = len(items)
    fmap = np.empty((n_z, n_v, 2), dtype=object)
    for z in range(n_z):
        for v in range(n_v):
            fmap[z, v, 0], fmap[z, v, 1] = frame_map[z, v].file, frame_map[z, v].index
    col = lambda j: None if np.isnan(params[:, j]).all() else params[:, j].copy()  # noqa: E731
    return DicomVolumes(data=data, affine=affine, echo_times_ms=col(0), inversion_times_ms=col(1),
                        flip_angles_deg=col(2), repetition_times_ms=col(3),
                        varying=varying[0] if varying else None, header=header, folder=folder,
                        files=[p for p, _ in items], frame_map=fmap, slice_positions_lps=pos)


def _pixels(path: Path, frames: list[Frame]) -> np.ndarray:
    """``(n_frames, rows, cols)`` stored pixel values of one file."""
    import pydicom

    try:
        ds = pydicom.dcmread(str(path))
        arr = ds.pixel_array
    except Exception as exc:  # truncated data, unsupported transfer syntax, …
        raise InputError(path, f"cannot read pixel data ({_first_line(exc)})") from None
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if n == 1 and arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[0] != n:
        raise InputError(path, f"pixel data of shape {arr.shape} for {n} frame(s) of a single-sample image "
                         "(colour or malformed)")
    return arr


def acquisition_datetime(ds) -> str | None:
    """ISO 8601 ``YYYY-MM-DDTHH:MM:SS`` of the acquisition: ``AcquisitionDateTime``, else
    ``AcquisitionDate`` (or ``SeriesDate``, ``StudyDate``) with the matching time; None if absent."""
    import re

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


def _series_header(ds, params: np.ndarray, folder: Path) -> dict:
    h: dict = {}
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
    thick = _shared_or_top(ds, "PixelMeasuresSequence", "SliceThickness")
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


def _shared_or_top(ds, seq_kw: str, kw: str):
    for grp in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        if grp in ds and len(ds[grp].value) and seq_kw in ds[grp].value[0]:
            item = ds[grp].value[0][seq_kw].value[0]
            if kw in item:
                return item[kw].value
    return ds.get(kw, None)


def _describe(summaries: list[SeriesSummary]) -> str:
    return "; ".join(f"#{s.number or '?'} {s.description or '(no description)'} ({s.n_files} files, "
                     f"{s.n_frames} frames, UID {s.uid})" for s in summaries)


def _key_text(k, keys=None) -> str:
    """``TE 20`` for a volume key; only the parameters that differ between ``keys`` when given."""
    names = ("TE", "TI", "flip", "TR")
    show = [True] * 4
    if keys is not None and len(keys) > 1:
        show = [len({kk[i] for kk in keys}) > 1 for i in range(4)]
    return ", ".join(f"{n} {v:g}" for n, v, s in zip(names, k, show) if v != -1.0 and s) or "(no parameters)"


def _num(v) -> float:
    if v is None or v == "":
        return float("nan")
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _int_or(s: str, default: int) -> int:
    try:
        return int(s)
    except (TypeError, ValueError):
        return default


def _plain(v):
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


def _first_line(exc: BaseException) -> str:
    s = str(exc)
    return s.splitlines()[0] if s else type(exc).__name__
