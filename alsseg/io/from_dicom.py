"""A :class:`~alsseg.io.dicom.DicomVolumes` as a typed MESE or T1 series."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from alsseg.io.acquisition import T1_PARAMETER, MeseSeries, T1Series, finite_float
from alsseg.io.errors import InputError
from alsseg.io.nifti import Image
from alsseg.io.validate import check_echo_times, check_voxels

if TYPE_CHECKING:  # the DICOM reader is imported only by callers that read DICOM
    from alsseg.io.dicom import DicomVolumes


def mese_from_dicom(vs: DicomVolumes) -> MeseSeries:
    """Build a :class:`MeseSeries` from a :class:`alsseg.io.dicom.DicomVolumes`."""
    te = vs.echo_times_ms
    if te is None or np.isnan(te).any():
        raise InputError(vs.folder, "DICOM series has no echo time (EchoTime / EffectiveEchoTime) for every volume")
    if vs.n_volumes > 1 and np.unique(np.round(te, 4)).size != vs.n_volumes:
        raise InputError(vs.folder, f"DICOM series volumes differ by {vs.varying or 'nothing'}, not by echo "
                         "time: not a multi-echo series")
    te = check_echo_times(te, vs.folder, n_echoes=vs.n_volumes)
    data = vs.data.astype(np.float32)
    check_voxels(data, vs.folder)
    h = vs.header
    return MeseSeries(
        image=Image(data, vs.affine, vs.folder, dict(h)), echo_times_ms=te,
        tr_ms=finite_float(h.get("RepetitionTime_ms")), field_strength_t=finite_float(h.get("MagneticFieldStrength")),
        refocus_deg=finite_float(h.get("RefocusingFlipAngle")), excite_deg=finite_float(h.get("ExcitationFlipAngle")),
        slice_thickness_mm=finite_float(h.get("SliceThickness")), source=vs.folder)


def t1_from_dicom(vs: DicomVolumes, kind: str | None = None) -> T1Series:
    """Build a :class:`T1Series` from a :class:`alsseg.io.dicom.DicomVolumes`."""
    var = vs.varying
    if kind is None:
        kind = {field: k for k, field in T1_PARAMETER.items()}.get(var or "")
    if kind is None:
        raise InputError(vs.folder, f"DICOM series varies by {var or 'nothing'} over its {vs.n_volumes} volume(s); "
                         "a T1 series needs inversion times, flip angles or repetition times")
    vals = {"IR": vs.inversion_times_ms, "VFA": vs.flip_angles_deg, "SR": vs.repetition_times_ms}[kind]
    if vals is None or np.isnan(vals).any():
        raise InputError(vs.folder, f"DICOM series lacks the {kind} parameter for some volumes")
    vals = check_echo_times(vals, vs.folder, n_echoes=vs.n_volumes, what=f"{kind} values")
    data = vs.data.astype(np.float32)
    check_voxels(data, vs.folder)
    h = vs.header
    tr = None if kind == "SR" else finite_float(h.get("RepetitionTime_ms"))
    return T1Series(
        image=Image(data, vs.affine, vs.folder, dict(h)), kind=kind,
        inversion_times_ms=vals if kind == "IR" else None,
        flip_angles_deg=vals if kind == "VFA" else vs.flip_angles_deg,
        repetition_times_ms=vals if kind == "SR" else vs.repetition_times_ms,
        tr_ms=tr, source=vs.folder, field_strength_t=finite_float(h.get("MagneticFieldStrength")),
        echo_time_ms=float(vs.echo_times_ms[0]) if vs.echo_times_ms is not None else None)

