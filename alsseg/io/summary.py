"""What an input holds (``alsseg info``): a plain dict, and its text rendering.

:func:`describe` accepts a DICOM folder, a NIfTI file, a BIDS dataset root, or one BIDS
session folder (``sub-X``, ``sub-X/ses-Y`` or its ``anat``). It validates what it reads, so a
bad input raises :class:`InputError` just as the pipeline would.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from alsseg.io.errors import InputError
from alsseg.io.validate import input_kind


def describe(path: str | Path, series: str | None = None, check: bool = False, progress: bool = False) -> dict:
    """Describe ``path`` (see module doc). Returns a JSON-serialisable dict with a ``type`` key:
    ``dicom``, ``nifti``, ``bids``, ``subject`` or ``session``.

    ``check`` (BIDS root only): also load every session's series and list every problem under
    ``problems`` (see :meth:`alsseg.io.bids.BidsDataset.check_inputs`)."""
    path = Path(path)
    input_kind(path)
    if path.is_file():
        if re.search(r"\.nii(\.gz)?$", path.name):
            return _describe_nifti(path)
        if _is_dicom_file(path):
            raise InputError(path, f"is one DICOM file; pass its folder ({path.parent}) to see the whole series")
        raise InputError(path, "is a file but not NIfTI (.nii/.nii.gz); pass a DICOM folder, a NIfTI file or "
                         "a BIDS folder")
    if any(p.is_dir() and p.name.startswith("sub-") for p in path.iterdir()):
        return _describe_bids(path, check, progress)
    if path.name.startswith(("sub-", "ses-")) or (path.name == "anat" and path.parent.name.startswith(("sub-", "ses-"))):
        return _describe_session(path)
    return _describe_dicom(path, series, progress)


# ------------------------------------------------------------------------------------ describers
def _geometry(image) -> dict:
    sp = image.spacing_mm
    return {"shape": list(image.shape), "spacing_mm": [round(v, 6) for v in sp], "orientation": image.orientation,
            "affine": np.round(image.affine, 6).tolist()}


def _mese_dict(ms) -> dict:
    d = {"kind": "MESE", "n_echoes": ms.n_echoes, "echo_times_ms": [round(float(t), 4) for t in ms.echo_times_ms],
         "echo_spacing_ms": round(ms.echo_spacing_ms, 4), "uniform_spacing": ms.uniform_spacing,
         "tr_ms": ms.tr_ms, "field_strength_t": ms.field_strength_t, "refocus_deg": ms.refocus_deg,
         "excite_deg": ms.excite_deg, "slice_thickness_mm": ms.slice_thickness_mm, **_geometry(ms.image)}
    d["missing"] = [name for key, name in (("tr_ms", "repetition time"), ("field_strength_t", "field strength"),
                                           ("refocus_deg", "refocusing flip angle"),
                                           ("excite_deg", "excitation flip angle"),
                                           ("slice_thickness_mm", "slice thickness")) if d[key] is None]
    d["notes"] = list(ms.notes)
    return d


def _t1_dict(t1) -> dict:
    d = {"kind": t1.kind, "n_volumes": t1.n_volumes,
         "varying": {"IR": "inversion_times_ms", "VFA": "flip_angles_deg", "SR": "repetition_times_ms"}[t1.kind],
         "values": [round(float(v), 4) for v in t1.varying], "tr_ms": t1.tr_ms,
         "field_strength_t": t1.field_strength_t, **_geometry(t1.image)}
    d["missing"] = [n for k, n in (("tr_ms", "repetition time"), ("field_strength_t", "field strength"))
                    if d[k] is None and not (k == "tr_ms" and t1.kind == "SR")]
    d["notes"] = list(t1.notes)
    return d


def _describe_nifti(path: Path) -> dict:
    from alsseg.io.acquisition import T1_SUFFIX
    from alsseg.io.bids_names import parse_bids_name
    from alsseg.io.series import load_anatomical, load_mese, load_t1_series
    from alsseg.io.sidecar import read_sidecar

    _, suffix = parse_bids_name(path)
    meta = read_sidecar(path, required=False)
    out: dict[str, Any] = {"type": "nifti", "path": str(path)}
    t1_lists = any(isinstance(meta.get(k), list) for k in ("InversionTime", "FlipAngle", "RepetitionTime"))
    if suffix in T1_SUFFIX.values() or (t1_lists and not isinstance(meta.get("EchoTime"), list)):
        out["series"] = _t1_dict(load_t1_series(path))
    elif suffix == "MESE" or isinstance(meta.get("EchoTime"), list) or _ndim(path) == 4:
        out["series"] = _mese_dict(load_mese(path))  # a 4-D file: a MESE unless its sidecar says T1
    else:
        img = load_anatomical(path)
        out["series"] = {"kind": suffix if suffix in ("T1w", "T2w", "PDw") else "image", **_geometry(img),
                         "sidecar": bool(meta), "missing": [] if meta else ["JSON sidecar"]}
    return out


def _describe_dicom(path: Path, series: str | None, progress: bool = False) -> dict:
    from alsseg.io.dicom import assemble, read_dicom_series, scan_folder, summarize
    from alsseg.io.from_dicom import mese_from_dicom, t1_from_dicom

    groups = scan_folder(path, progress)
    summaries = summarize(groups)
    if series is not None:
        summaries = [s for s in summaries if series in (s.uid, s.number)]
        if not summaries:
            read_dicom_series(path, series=series)  # raises with the list of series
    entries: list[dict[str, Any]] = []
    out = {"type": "dicom", "path": str(path), "series": entries}
    for s in summaries:
        entry: dict[str, Any] = {"number": s.number, "description": s.description, "uid": s.uid, "n_files": s.n_files,
                 "n_frames": s.n_frames}
        try:
            vs = assemble(path, groups, s.uid)
            h = vs.header
            entry.update({k: h.get(k) for k in ("Manufacturer", "ManufacturerModelName", "SOPClassName",
                                                "EnhancedMultiFrame", "PulseSequenceName")})
            if vs.varying == "EchoTime":
                entry.update(_mese_dict(mese_from_dicom(vs)))
            elif vs.varying in ("InversionTime", "FlipAngle", "RepetitionTime"):
                entry.update(_t1_dict(t1_from_dicom(vs)))
            else:
                from alsseg.io.nifti import Image

                img = Image(vs.data[..., 0], vs.affine, path)
                entry.update({"kind": "image", "n_volumes": vs.n_volumes, **_geometry(img),
                              "tr_ms": h.get("RepetitionTime_ms"), "field_strength_t": h.get("MagneticFieldStrength"),
                              "echo_times_ms": h.get("EchoTimes_ms"), "missing": []})
            entry["slice_spacing_mm"] = round(h["SliceSpacing_mm"], 4)
            if entry.get("slice_thickness_mm") or h.get("SliceThickness"):
                thick = entry.get("slice_thickness_mm") or h.get("SliceThickness")
                entry["slice_gap_mm"] = round(h["SliceSpacing_mm"] - thick, 4)
        except InputError as exc:
            if len(summaries) == 1:
                raise
            entry["problem"] = str(exc)
        entries.append(entry)
    return out


def _describe_session(path: Path) -> dict:
    from alsseg.io.bids import find_session_inputs

    anat = path if path.name == "anat" else path / "anat"
    if not anat.is_dir():
        subs = sorted(p for p in path.iterdir() if p.is_dir() and p.name.startswith("ses-"))
        if subs:
            return {"type": "subject", "path": str(path), "sessions": [_describe_session(s) for s in subs]}
        raise InputError(path, "has no anat folder")
    ses_dir = anat.parent
    subject = ses_dir.name if ses_dir.name.startswith("sub-") else ses_dir.parent.name
    session = ses_dir.name if ses_dir.name.startswith("ses-") else None
    s = find_session_inputs(anat, subject, session)
    missing: list[str] = []
    out: dict[str, Any] = {"type": "session", "path": str(path), "subject": subject, "session": session,
                           "files": _session_files(s), "notes": list(s.notes), "missing": missing}
    if s.mese is not None:
        out["mese"] = _mese_dict(s.load_mese())
    else:
        missing.append("MESE series")
    if s.t1 is not None:
        out["t1"] = _t1_dict(s.load_t1())
    else:
        missing.append("T1 series")
    if s.anat is None:
        missing.append("anatomical image")
    s.check_grids()
    return out


def _session_files(s) -> dict:
    def names(v):
        if v is None:
            return None
        return [Path(p).name for p in v] if isinstance(v, list) else Path(v).name

    return {"mese": names(s.mese), "t1": names(s.t1), "t1_kind": s.t1_kind, "anat": names(s.anat)}


def _describe_bids(root: Path, check: bool = False, progress: bool = False) -> dict:
    from alsseg.io.bids import BidsDataset

    ds = BidsDataset(root)
    parts = ds.participants
    motor = ds.motor
    groups = parts["group"].value_counts(dropna=False).to_dict() if len(parts) else {}
    return {
        "type": "bids", "path": str(root), "n_subjects": len(ds.subjects), "n_sessions": len(ds.sessions),
        "groups": {str(k): int(v) for k, v in groups.items()},
        "sessions": [{"subject": s.subject, "session": s.session, **_session_files(s)} for s in ds.sessions],
        "motor_rows": len(motor),
        "motor_missing": {c: int(motor[c].isna().sum()) for c in ("cmap_mv", "mvic_n")},
        "report": ds.report(),
        **({"problems": ds.check_inputs(progress=progress)} if check else {}),
    }


def _ndim(path: Path) -> int | None:
    """Number of non-singleton-trailing dimensions from the header, None if unreadable."""
    import nibabel as nib

    try:
        shape = tuple(getattr(nib.load(str(path)), "shape", ()))
    except Exception:  # noqa: BLE001 - nibabel raises many types; an unreadable header gives None
        return None
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    return len(shape)


def _is_dicom_file(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


# --------------------------------------------------------------------------------------- rendering
def format_description(d: dict) -> str:
    """Human-readable text of a :func:`describe` result."""
    t = d["type"]
    lines: list[str] = []
    if t == "dicom":
        n = len(d["series"])
        lines.append(f"DICOM folder {d['path']}: {n} series")
        for s in d["series"]:
            lines.append("")
            lines.append(f"series #{s['number']} {s['description'] or '(no description)'}  "
                         f"[{s['n_files']} files, {s['n_frames']} frames]")
            lines.append(f"  UID {s['uid']}")
            if s.get("problem"):
                lines.append(f"  problem: {s['problem']}")
                continue
            scanner = " ".join(str(s[k]) for k in ("Manufacturer", "ManufacturerModelName") if s.get(k))
            if scanner or s.get("SOPClassName"):
                lines.append(f"  scanner: {scanner or '?'}; {s.get('SOPClassName') or ''}"
                             f"{' (enhanced multi-frame)' if s.get('EnhancedMultiFrame') else ''}")
            lines += _series_lines(s)
    elif t == "nifti":
        lines.append(f"NIfTI {d['path']}")
        lines += _series_lines(d["series"])
    elif t == "session":
        lines += _session_lines(d)
    elif t == "subject":
        for s in d["sessions"]:
            lines += _session_lines(s) + [""]
    elif t == "bids":
        g = ", ".join(f"{k} {v}" for k, v in d["groups"].items()) or "no participants.tsv"
        lines.append(f"BIDS dataset {d['path']}: {d['n_subjects']} subjects, {d['n_sessions']} sessions ({g})")
        for s in d["sessions"]:
            mese = s["mese"]
            nm = (f"MESE {len(mese)} echo files" if isinstance(mese, list) else f"MESE {mese}" if mese else "no MESE")
            t1 = s["t1"]
            nt = (f"{s['t1_kind']} {len(t1)} files" if isinstance(t1, list) else f"{s['t1_kind']} {t1}" if t1
                  else "no T1 series")
            lines.append(f"  {s['subject']} {s['session'] or ''}: {nm}; {nt}; "
                         f"{'anat ' + s['anat'] if s['anat'] else 'no anatomical'}")
        miss = d["motor_missing"]
        lines.append(f"motor table: {d['motor_rows']} rows (missing: cmap_mv {miss['cmap_mv']}, mvic_n {miss['mvic_n']})")
        if d["report"]:
            lines.append("findings:")
            lines += [f"  - {r}" for r in d["report"]]
        else:
            lines.append("findings: none")
        if "problems" in d:
            lines.append(f"inputs checked: {len(d['problems'])} problem(s)")
            lines += [f"  - {p}" for p in d["problems"]]
    return "\n".join(lines)


def _session_lines(d: dict) -> list[str]:
    lines = [f"session {d['subject']} {d['session'] or ''} ({d['path']})"]
    f = d["files"]

    def short(v):
        if v is None:
            return "none"
        return f"{len(v)} files ({v[0]} … {v[-1]})" if isinstance(v, list) and len(v) > 1 else str(
            v[0] if isinstance(v, list) else v)

    lines.append(f"  files: MESE {short(f['mese'])}; T1 {short(f['t1'])}; anat {short(f['anat'])}")
    for key, title in (("mese", "MESE"), ("t1", "T1 series")):
        if key in d:
            lines.append(f"  {title}:")
            lines += ["  " + ln for ln in _series_lines(d[key])]
    lines += [f"  note: {n}" for n in d["notes"]]
    lines.append(f"  missing: {', '.join(d['missing']) or 'nothing'}")
    return lines


def _series_lines(s: dict) -> list[str]:
    lines = []
    kind = s.get("kind")
    if kind == "MESE":
        te = s["echo_times_ms"]
        lines.append(f"  kind: MESE (multi-echo spin echo), {s['n_echoes']} echoes, TE {te[0]:g}–{te[-1]:g} ms, "
                     f"echo spacing {s['echo_spacing_ms']:g} ms ({'uniform' if s['uniform_spacing'] else 'NOT uniform'})")
        lines.append("  echo times (ms): " + " ".join(f"{v:g}" for v in te))
    elif kind in ("IR", "VFA", "SR"):
        unit = "deg" if kind == "VFA" else "ms"
        name = {"IR": "inversion times", "VFA": "flip angles", "SR": "repetition times"}[kind]
        lines.append(f"  kind: {kind} T1 series, {s['n_volumes']} volumes")
        lines.append(f"  {name} ({unit}): " + " ".join(f"{v:g}" for v in s["values"]))
    else:
        lines.append(f"  kind: {kind}" + (f", {s['n_volumes']} volume(s)" if s.get("n_volumes") else ""))
    shape = s["shape"]
    sp = s["spacing_mm"]
    nz = shape[2] if len(shape) > 2 else 1
    vol = f" × {shape[3]} volumes" if len(shape) > 3 else ""
    lines.append(f"  shape: {shape[0]} × {shape[1]} × {nz} slices{vol}")
    thick = s.get("slice_thickness_mm")
    gap = f", slice thickness {thick:g} mm, gap {sp[2] - thick:g} mm" if thick else ""
    lines.append(f"  spacing: {sp[0]:g} × {sp[1]:g} × {sp[2]:g} mm (slice centre-to-centre{gap})")
    lines.append(f"  orientation: {s['orientation']} (voxel axes point to {', '.join(s['orientation'])}; "
                 f"world RAS+)")
    params = []
    if s.get("tr_ms") is not None:
        params.append(f"TR {s['tr_ms']:g} ms")
    if s.get("field_strength_t") is not None:
        params.append(f"field {s['field_strength_t']:g} T")
    if s.get("refocus_deg") is not None:
        params.append(f"refocusing {s['refocus_deg']:g}°")
    if s.get("excite_deg") is not None:
        params.append(f"excitation {s['excite_deg']:g}°")
    if params:
        lines.append("  " + "; ".join(params))
    lines += [f"  note: {n}" for n in s.get("notes", [])]
    lines.append(f"  missing: {', '.join(s.get('missing') or []) or 'nothing'}")
    return lines
