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
from typing import Any

import numpy as np

from alsseg.io.dicom_frames import Frame, as_float, frames_of, read_pixels, shared_or_top
from alsseg.io.dicom_header import acquisition_datetime, series_header
from alsseg.io.dicom_scan import HeaderGroups, SeriesSummary, describe_series, list_series, scan_folder, summarize
from alsseg.io.errors import InputError

__all__ = [
    "LPS_TO_RAS",
    "DicomVolumes",
    "Frame",
    "SeriesSummary",
    "acquisition_datetime",
    "assemble",
    "list_series",
    "read_dicom_series",
    "scan_folder",
    "summarize",
]

#: DICOM → NIfTI world: LPS to RAS.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


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
        """Number of volumes ``V``."""
        return int(self.data.shape[3])


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
            raise InputError(folder, f"no series {series!r} here; found: " + describe_series(summaries))
        if len(chosen) > 1:
            raise InputError(folder, f"series number {series} is ambiguous; pick a SeriesInstanceUID: "
                             + describe_series(chosen))
        uid = chosen[0].uid
    elif len(summaries) > 1:
        raise InputError(folder, f"mixes {len(summaries)} DICOM series: {describe_series(summaries)}; "
                         "pick one (--series UID or number)")
    else:
        uid = summaries[0].uid
    return _assemble(folder, groups[uid])


def assemble(folder: str | Path, groups: HeaderGroups, uid: str) -> DicomVolumes:
    """Assemble series ``uid`` from headers already read by :func:`scan_folder` (no second scan)."""
    return _assemble(Path(folder), groups[uid])


#: A volume's acquisition parameters (TE, TI, flip, TR), rounded; -1 where the header lacks one.
VolumeKey = tuple[float, float, float, float]


def _assemble(folder: Path, items: list[tuple[Path, Any]]) -> DicomVolumes:
    """Place every frame of a series on one (X, Y, Z, V) grid and read its pixels."""
    frames: list[Frame] = []
    for path, ds in items:
        frames += frames_of(path, ds)
    ds0 = items[0][1]
    row_cos, col_cos, normal = _common_geometry(frames)
    slice_of = _slice_indices(frames, normal)
    frame_map = _frame_map(folder, frames, slice_of)
    n_z, n_v = frame_map.shape
    pos = np.array([frame_map[z, 0].position_lps for z in range(n_z)])
    step = _slice_step(folder, frame_map, pos, normal, ds0)
    data = _stack_pixels(items, frames, frame_map)
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
    header = series_header(ds0, params)
    header["SliceSpacing_mm"] = float(np.linalg.norm(step))
    header["NumberOfSlices"] = n_z
    header["NumberOfVolumes"] = n_v
    header["SourceFiles"] = len(items)
    fmap = np.empty((n_z, n_v, 2), dtype=object)
    for z in range(n_z):
        for v in range(n_v):
            fmap[z, v, 0], fmap[z, v, 1] = frame_map[z, v].file, frame_map[z, v].index

    def column(j: int) -> np.ndarray | None:
        return None if np.isnan(params[:, j]).all() else params[:, j].copy()

    return DicomVolumes(data=data, affine=affine, echo_times_ms=column(0), inversion_times_ms=column(1),
                        flip_angles_deg=column(2), repetition_times_ms=column(3),
                        varying=varying[0] if varying else None, header=header, folder=folder,
                        files=[p for p, _ in items], frame_map=fmap, slice_positions_lps=pos)


def _common_geometry(frames: list[Frame]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One orientation, matrix and pixel spacing for the whole series; returns the row and column
    direction cosines and the slice normal, each ``(3,)`` (LPS)."""
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
    return row_cos, col_cos, normal


def _slice_indices(frames: list[Frame], normal: np.ndarray) -> np.ndarray:
    """The slice index of each frame, ``(n_frames,)`` int: positions along the normal clustered
    within 0.01 mm, in increasing order."""
    d = np.array([fr.position_lps @ normal for fr in frames])
    order = np.argsort(d, kind="stable")
    slice_of = np.empty(len(frames), dtype=int)
    centres: list[float] = []
    for idx in order:
        if not centres or d[idx] - centres[-1] > 1e-2:
            centres.append(float(d[idx]))
        slice_of[idx] = len(centres) - 1
    return slice_of


def _volume_key(fr: Frame) -> VolumeKey:
    te, ti, fa, tr = (float(np.round(v, 3)) if np.isfinite(v) else -1.0 for v in
                      (fr.echo_time_ms, fr.inversion_time_ms, fr.flip_angle_deg, fr.repetition_time_ms))
    return te, ti, fa, tr


def _frame_map(folder: Path, frames: list[Frame], slice_of: np.ndarray) -> np.ndarray:
    """The frame at each slice and volume, ``(Z, V)`` object array, volumes sorted by their
    parameters; a repeated or missing frame is refused."""
    keys = sorted({_volume_key(fr) for fr in frames})
    vol_of = {k: i for i, k in enumerate(keys)}
    n_z, n_v = int(slice_of.max()) + 1, len(keys)
    frame_map = np.empty((n_z, n_v), dtype=object)
    for fr, z in zip(frames, slice_of):
        v = vol_of[_volume_key(fr)]
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
    return frame_map


def _slice_step(folder: Path, frame_map: np.ndarray, pos: np.ndarray, normal: np.ndarray, ds0: Any) -> np.ndarray:
    """The LPS step from one slice to the next, ``(3,)`` mm: positions must agree across volumes
    and lie on a line at even steps; one slice steps by its thickness along the normal."""
    n_z, n_v = frame_map.shape
    for z in range(n_z):
        for v in range(n_v):
            if not np.allclose(frame_map[z, v].position_lps, pos[z], atol=1e-2):
                fr = frame_map[z, v]
                raise InputError(fr.file, f"frame {fr.index + 1} at {fr.position_lps.round(3).tolist()} is not at "
                                 f"slice {z + 1} position {pos[z].round(3).tolist()}: volumes do not share a grid")
    if n_z == 1:
        thick = as_float(shared_or_top(ds0, "PixelMeasuresSequence", "SliceThickness"))
        return normal * (thick if np.isfinite(thick) else 1.0)
    step = (pos[-1] - pos[0]) / (n_z - 1)
    steps = np.diff(pos, axis=0)
    if not np.allclose(steps, step, atol=max(1e-2, 1e-3 * float(np.linalg.norm(step)))):
        gaps = np.linalg.norm(steps, axis=1).round(3).tolist()
        raise InputError(folder, f"slice positions are not evenly spaced (steps {gaps} mm): cannot form one grid")
    return step


def _stack_pixels(items: list[tuple[Path, Any]], frames: list[Frame], frame_map: np.ndarray) -> np.ndarray:
    """``(X, Y, Z, V)`` pixels, ``data[i, j, k, v] = frame(k, v)[j, i]`` after rescale (the stored
    integer dtype is kept when every rescale is the identity, float32 otherwise)."""
    n_z, n_v = frame_map.shape
    rows, cols = frames[0].rows, frames[0].columns
    identity = all(fr.slope == 1.0 and fr.intercept == 0.0 for fr in frames)
    pixels = {path: read_pixels(path) for path, _ in items}
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
    return data


def _key_text(k: VolumeKey, keys: list[VolumeKey] | None = None) -> str:
    """``TE 20`` for a volume key; only the parameters that differ between ``keys`` when given."""
    names = ("TE", "TI", "flip", "TR")
    show = [True] * 4
    if keys is not None and len(keys) > 1:
        show = [len({kk[i] for kk in keys}) > 1 for i in range(4)]
    return ", ".join(f"{n} {v:g}" for n, v, s in zip(names, k, show) if v != -1.0 and s) or "(no parameters)"

