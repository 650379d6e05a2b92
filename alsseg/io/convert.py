"""DICOM series → NIfTI + BIDS JSON sidecar (the ``alsseg convert`` verb).

The voxel data are the DICOM pixel values after rescale, reordered as documented in
:mod:`alsseg.io.dicom` (``data[i, j, k, v] = frame(k, v)[j, i]``); the stored integer dtype is
kept when the rescale is identity, so the NIfTI holds exactly the scanner's numbers. All files
are written to temporaries and renamed at the end: a failure leaves nothing behind.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from alsseg import __version__
from alsseg.io.errors import InputError

if TYPE_CHECKING:
    from alsseg.io.dicom import DicomVolumes
    from alsseg.io.write_series import VolumeItem

_KIND_SUFFIX = {"EchoTime": "MESE", "InversionTime": "IRT1", "FlipAngle": "VFA", "RepetitionTime": "SRT1"}
_KIND_ENTITY = {"EchoTime": "echo", "InversionTime": "inv", "FlipAngle": "flip", "RepetitionTime": "rep"}
_COPY_FIELDS = ("Manufacturer", "ManufacturerModelName", "SeriesDescription", "ProtocolName", "SeriesNumber",
                "SeriesInstanceUID", "PulseSequenceName", "SequenceName", "ScanningSequence", "MRAcquisitionType",
                "PatientPosition", "ImageType", "AcquisitionDateTime")


def convert_dicom(dicom_dir: str | Path, out: str | Path, *, subject: str | None = None,
                  session: str | None = None, series: str | None = None, split_volumes: bool = False,
                  suffix: str | None = None, overwrite: bool = False, progress: bool = False) -> list[Path]:
    """Convert one DICOM series to NIfTI + JSON.

    Parameters
    ----------
    dicom_dir : path
        Folder of DICOM files.
    out : path
        Output folder; with ``subject`` a BIDS root (``sub-S[/ses-T]/anat/``), else files go
        straight into it, named after the series (``series<N><description>_<suffix>.nii.gz``).
    subject, session : str, optional
        BIDS labels (with or without ``sub-`` / ``ses-``).
    series : str, optional
        SeriesInstanceUID or SeriesNumber when the folder mixes series.
    split_volumes : bool
        One 3-D file per echo / volume (``…_echo-N_MESE``) instead of one 4-D file.
    suffix : str, optional
        BIDS suffix of a single-volume series (default ``T1w``).
    overwrite : bool
        Replace existing outputs (never an input).
    progress : bool
        Progress bar while reading a large DICOM folder.

    Returns
    -------
    list of Path
        The NIfTI and JSON files written.

    Raises
    ------
    InputError
        Bad DICOM (see :func:`alsseg.io.dicom.read_dicom_series`), output equal to an input,
        existing outputs without ``overwrite``. Nothing is written then.
    """
    from alsseg.io.dicom import read_dicom_series
    from alsseg.io.write_series import write_volumes

    dicom_dir, out = _check_args(dicom_dir, out, subject, session, suffix)
    vs = read_dicom_series(dicom_dir, series=series, progress=progress)
    items = _plan(vs, out, subject, session, split_volumes, suffix, entities={})
    _refuse_existing(items, overwrite)
    written = write_volumes(items, vs.affine, inputs=vs.files)
    if subject:
        _ensure_dataset_description(out)
    return written


def convert_dicom_all(dicom_dir: str | Path, out: str | Path, *, subject: str | None = None,
                      session: str | None = None, split_volumes: bool = False,
                      overwrite: bool = False, progress: bool = False) -> tuple[list[Path], list[str]]:
    """Convert every series of a DICOM folder (a scanner export holding a whole visit).

    Series that cannot form one volume grid (3-plane localizers, incomplete series…) are skipped
    and reported; the others are checked first, then written. With ``subject`` each series gets
    an ``acq-<description>`` entity (plus ``run-<series number>`` when two share it), so names
    never collide; single-volume series get the suffix ``T1w``.

    Returns
    -------
    (written, skipped)
        Paths written; one line ``series #N DESCRIPTION: PROBLEM`` per skipped series.

    Raises
    ------
    InputError
        No series could be converted, an output exists (without ``overwrite``), an output would
        be an input. Nothing is written then.
    """
    from alsseg.io.dicom import assemble, scan_folder, summarize
    from alsseg.io.write_series import write_volumes

    dicom_dir, out = _check_args(dicom_dir, out, subject, session, None)
    groups = scan_folder(dicom_dir, progress)
    plans, skipped = [], []
    for s in summarize(groups):
        try:
            vs = assemble(dicom_dir, groups, s.uid)
            plans.append((s, vs))
        except InputError as exc:
            skipped.append(f"series #{s.number} {s.description or '(no description)'}: {exc.problem}")
    if not plans:
        raise InputError(dicom_dir, "no series could be converted: " + "; ".join(skipped))
    acq = {s.uid: re.sub(r"[^a-zA-Z0-9]+", "", s.description) or f"series{s.number}" for s, _ in plans}
    counts: dict[str, int] = {}
    for a in acq.values():
        counts[a] = counts.get(a, 0) + 1
    batches: list[tuple[list[VolumeItem], DicomVolumes]] = []
    for s, vs in plans:
        ents = {"acq": acq[s.uid]} if subject else {}
        if subject and counts[acq[s.uid]] > 1:
            ents["run"] = re.sub(r"[^0-9]+", "", s.number) or str(len(batches) + 1)
        try:
            batches.append((_plan(vs, out, subject, session, split_volumes, None, ents), vs))
        except InputError as exc:
            skipped.append(f"series #{s.number} {s.description or '(no description)'}: {exc.problem}")
    if not batches:
        raise InputError(dicom_dir, "no series could be converted: " + "; ".join(skipped))
    names = [p for items, _ in batches for p, _, _ in items]
    dup = {p for p in names if names.count(p) > 1}
    if dup:
        raise InputError(min(dup), "two series would be written to this name; convert them one by one "
                         "with --series")
    for items, _ in batches:
        _refuse_existing(items, overwrite)
    written = []
    for items, vs in batches:
        written += write_volumes(items, vs.affine, inputs=vs.files)
    if subject:
        _ensure_dataset_description(out)
    return written, skipped


def _check_args(dicom_dir, out, subject, session, suffix) -> tuple[Path, Path]:
    dicom_dir, out = Path(dicom_dir), Path(out)
    if session and not subject:
        raise InputError(None, "--session needs --subject")
    if dicom_dir.exists() and out.resolve() == dicom_dir.resolve():
        raise InputError(out, "output folder is the input DICOM folder; refusing to write into an input")
    if out.exists() and not out.is_dir():
        raise InputError(out, "output exists and is not a folder")
    if suffix and not re.fullmatch(r"[a-zA-Z0-9]+", suffix):
        raise InputError(None, f"--suffix {suffix!r} must be alphanumeric")
    return dicom_dir, out


def _refuse_existing(items, overwrite: bool) -> None:
    from alsseg.io.sidecar import sidecar_path

    if overwrite:
        return
    for p, _, _ in items:
        for q in (p, sidecar_path(p)):
            if q.exists():
                raise InputError(q, "output exists; use --overwrite to replace it")


def _plan(vs: DicomVolumes, out: Path, subject: str | None, session: str | None, split_volumes: bool,
          suffix: str | None, entities: dict) -> list[VolumeItem]:
    """Validate one assembled series and list its ``(path, data, sidecar)`` items."""
    from alsseg.io.bids_names import bids_path
    from alsseg.io.from_dicom import mese_from_dicom, t1_from_dicom
    from alsseg.io.validate import check_voxels

    if out.resolve() in {p.resolve() for p in vs.files}:
        raise InputError(out, "output path is also an input; refusing to overwrite an input")
    var = vs.varying
    # validate as the loaders would (echo times, voxels), without keeping the float copy
    if var == "EchoTime":
        mese_from_dicom(vs)
    elif var is not None:
        t1_from_dicom(vs)
    else:
        check_voxels(vs.data, vs.folder)
    if var and suffix:
        raise InputError(None, f"--suffix applies to single-volume series; this one is {_KIND_SUFFIX[var]} "
                         f"({vs.n_volumes} volumes varying by {var})")
    suf = _KIND_SUFFIX[var] if var else (suffix or "T1w")
    h = vs.header
    common = {k: h[k] for k in _COPY_FIELDS if k in h}
    if "MagneticFieldStrength" in h:
        common["MagneticFieldStrength"] = float(h["MagneticFieldStrength"])
    if "RepetitionTime_ms" in h:
        common["RepetitionTime"] = round(h["RepetitionTime_ms"] / 1000.0, 9)
    if "ExcitationFlipAngle" in h:
        common["FlipAngle"] = h["ExcitationFlipAngle"]
    elif "FlipAngle" in h and "RefocusingFlipAngle" not in h:
        common["FlipAngle"] = h["FlipAngle"]
    if "RefocusingFlipAngle" in h:
        common["RefocusingFlipAngle"] = h["RefocusingFlipAngle"]
    if "SliceThickness" in h:
        common["SliceThickness"] = h["SliceThickness"]
    common["SpacingBetweenSlices"] = round(h["SliceSpacing_mm"], 6)
    common["ConversionSoftware"] = "alsseg"
    common["ConversionSoftwareVersion"] = __version__
    per_volume = {"EchoTime": vs.echo_times_ms, "InversionTime": vs.inversion_times_ms,
                  "FlipAngle": vs.flip_angles_deg, "RepetitionTime": vs.repetition_times_ms}
    if var is None and vs.echo_times_ms is not None:
        common["EchoTime"] = round(float(vs.echo_times_ms[0]) / 1000.0, 9)
    if var not in (None, "EchoTime") and vs.echo_times_ms is not None:
        common["EchoTime"] = round(float(vs.echo_times_ms[0]) / 1000.0, 9)
    conv = (lambda v: float(v)) if var == "FlipAngle" else (lambda v: round(float(v) / 1000.0, 9))
    if var == "FlipAngle":
        common.pop("FlipAngle", None)
    if var == "RepetitionTime":
        common.pop("RepetitionTime", None)

    def target(extra: dict) -> Path:
        if subject:
            return bids_path(out, subject, session, suf, {**entities, **extra})
        ents = "".join(f"_{k}-{v}" for k, v in extra.items())
        return out / f"{_series_name(h)}{ents}_{suf}.nii.gz"

    values = per_volume[var] if var else None
    if var and values is None:  # mese_from_dicom / t1_from_dicom above refuse this already
        raise InputError(vs.folder, f"DICOM series lacks its {var} values")
    items: list[VolumeItem] = []
    if var and values is not None and split_volumes:
        for v in range(vs.n_volumes):
            items.append((target({_KIND_ENTITY[var]: v + 1}), vs.data[..., v], {var: conv(values[v]), **common}))
    else:
        data = vs.data if var else vs.data[..., 0]
        meta = dict(common)
        if var and values is not None:
            meta = {var: [conv(x) for x in values], **common}
        items.append((target({}), data, meta))
    return items


def _series_name(h: dict) -> str:
    desc = re.sub(r"[^a-zA-Z0-9]+", "", str(h.get("SeriesDescription", "")))
    num = re.sub(r"[^0-9]+", "", str(h.get("SeriesNumber", "")))
    if desc and num:
        return f"series{num}{desc}"
    return desc or (f"series{num}" if num else "series")


def _ensure_dataset_description(root: Path) -> None:
    """Write a minimal BIDS ``dataset_description.json`` if the root has none."""
    from alsseg.io.atomic import write_text_atomic

    p = root / "dataset_description.json"
    if not p.exists():
        import json

        write_text_atomic(p, json.dumps({"Name": "alsseg conversion", "BIDSVersion": "1.9.0",
                                         "DatasetType": "raw",
                                         "GeneratedBy": [{"Name": "alsseg", "Version": __version__}]},
                                        indent=2) + "\n")

