"""Acquisition series: multi-echo spin echo (MESE), T1 series, anatomical images.

Loaders accept three forms of input (see ``docs/io.md``):

1. one 4-D NIfTI ``X.nii[.gz]`` with a JSON sidecar ``X.json`` holding a list ``EchoTime``
   (``InversionTime`` / ``FlipAngle`` / ``RepetitionTime`` for a T1 series);
2. BIDS per-volume files ``…_echo-N_MESE.nii.gz`` (``…_inv-N_IRT1``, ``…_flip-N_VFA``,
   ``…_rep-N_SRT1``) each with its sidecar (pass any one of them, or their folder);
3. a DICOM folder (classic single-frame or enhanced multi-frame), see :mod:`alsseg.io.dicom`.

Times are milliseconds inside alsseg and seconds in BIDS sidecars (values >= 1 in a sidecar are
taken as milliseconds with a warning, see :func:`alsseg.io.validate.times_to_ms`).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from alsseg.io.atomic import atomic_path
from alsseg.io.errors import InputError
from alsseg.io.nifti import Image, load_nifti, same_grid, save_nifti
from alsseg.io.validate import check_echo_times, check_voxels, input_kind, times_to_ms, warn_input

#: BIDS suffix of each T1 series kind (``SRT1`` is an alsseg extension: BIDS has none).
T1_SUFFIX = {"IR": "IRT1", "VFA": "VFA", "SR": "SRT1"}
#: BIDS entity that indexes the volumes of each kind.
T1_ENTITY = {"IR": "inv", "VFA": "flip", "SR": "rep"}
#: BIDS entity order (anat datatype, then derivative ``desc``).
ENTITY_ORDER = ("sub", "ses", "task", "acq", "ce", "rec", "dir", "run", "mod", "echo", "flip", "inv",
                "rep", "mt", "part", "chunk", "space", "res", "den", "label", "desc")


# ----------------------------------------------------------------------------------- dataclasses
@dataclass(frozen=True, eq=False)
class MeseSeries:
    """A multi-echo spin-echo (CPMG) series.

    Attributes
    ----------
    image : Image
        ``(X, Y, Z, n_echoes)`` float32 magnitude on its world grid (RAS+ affine, mm).
    echo_times_ms : (n_echoes,) ndarray
        Strictly increasing echo times, ms.
    tr_ms : float or None
        Repetition time, ms.
    field_strength_t : float or None
        Main field, tesla.
    refocus_deg : float or None
        Nominal refocusing flip angle, degrees (Siemens stores it as FlipAngle = 180).
    excite_deg : float or None
        Nominal excitation flip angle, degrees (None when the header does not say; usually 90).
    slice_thickness_mm : float or None
        Nominal slice thickness (not the spacing; 2-D MESE often has a gap).
    source : Path or None
        File or folder it was read from.
    notes : tuple of str
        Assumptions made while reading (e.g. units), one line each.
    """

    image: Image
    echo_times_ms: np.ndarray
    tr_ms: float | None = None
    field_strength_t: float | None = None
    refocus_deg: float | None = None
    excite_deg: float | None = None
    slice_thickness_mm: float | None = None
    source: Path | None = None
    notes: tuple[str, ...] = ()

    @property
    def n_echoes(self) -> int:
        """Number of echoes."""
        return int(len(self.echo_times_ms))

    @property
    def echo_spacing_ms(self) -> float:
        """Mean spacing between successive echoes, ms (the first TE when only one echo)."""
        te = np.asarray(self.echo_times_ms, dtype=float)
        return float(np.diff(te).mean()) if te.size > 1 else float(te[0])

    @property
    def uniform_spacing(self) -> bool:
        """True when echoes are evenly spaced and TE1 equals the spacing (a plain CPMG train)."""
        te = np.asarray(self.echo_times_ms, dtype=float)
        if te.size < 2:
            return True
        esp = self.echo_spacing_ms
        return bool(np.allclose(np.diff(te), esp, atol=0.01 * esp + 1e-6) and abs(te[0] - esp) <= 0.01 * esp + 1e-6)

    @property
    def slice_spacing_mm(self) -> float:
        """Centre-to-centre distance between slices, mm (from the affine)."""
        return float(self.image.spacing_mm[2])

    def sidecar(self) -> dict:
        """BIDS sidecar fields for the whole 4-D series (times in seconds)."""
        return _sidecar_common(self.tr_ms, self.field_strength_t, self.slice_thickness_mm,
                               excite_deg=self.excite_deg, refocus_deg=self.refocus_deg) | {
            "EchoTime": [_s(t) for t in self.echo_times_ms]}


@dataclass(frozen=True, eq=False)
class T1Series:
    """A T1-mapping series: inversion recovery (IR), variable flip angle (VFA) or saturation
    recovery / multi-TR (SR).

    Attributes
    ----------
    image : Image
        ``(X, Y, Z, V)`` float32 magnitude.
    kind : {'IR', 'VFA', 'SR'}
    inversion_times_ms : (V,) ndarray or None
        IR: inversion times, ms (strictly increasing).
    flip_angles_deg : (V,) ndarray or None
        VFA: flip angles, degrees (one per volume); IR/SR: the constant flip angle repeated, if known.
    repetition_times_ms : (V,) ndarray or None
        SR: repetition times, ms; other kinds: the constant TR repeated, if known.
    tr_ms : float or None
        The constant TR (None for SR, where TR varies).
    source : Path or None
    field_strength_t : float or None
    echo_time_ms : float or None
    notes : tuple of str
    """

    image: Image
    kind: str
    inversion_times_ms: np.ndarray | None = None
    flip_angles_deg: np.ndarray | None = None
    repetition_times_ms: np.ndarray | None = None
    tr_ms: float | None = None
    source: Path | None = None
    field_strength_t: float | None = None
    echo_time_ms: float | None = None
    notes: tuple[str, ...] = ()

    def __post_init__(self):
        if self.kind not in T1_SUFFIX:
            raise ValueError(f"kind must be one of {sorted(T1_SUFFIX)}, got {self.kind!r}")

    @property
    def n_volumes(self) -> int:
        return int(self.image.shape[3]) if self.image.data.ndim == 4 else 1

    @property
    def varying(self) -> np.ndarray:
        """The parameter that varies over volumes (TI ms, flip deg or TR ms), shape ``(V,)``."""
        return {"IR": self.inversion_times_ms, "VFA": self.flip_angles_deg,
                "SR": self.repetition_times_ms}[self.kind]


# ------------------------------------------------------------------------------------- BIDS names
def bids_path(root: str | Path, subject: str, session: str | None, suffix: str,
              entities: Mapping[str, object] | None = None, derivative: str | None = None,
              ext: str = ".nii.gz", datatype: str = "anat") -> Path:
    """Build a BIDS path.

    ``bids_path('/d', '01', '02', 'MESE', {'echo': 3})`` →
    ``/d/sub-01/ses-02/anat/sub-01_ses-02_echo-3_MESE.nii.gz``; with ``derivative='alsseg'`` the
    file goes under ``/d/derivatives/alsseg/``. ``subject``/``session`` may carry their
    ``sub-``/``ses-`` prefixes. Entities are written in BIDS order.
    """
    sub = _label(subject, "sub")
    ses = _label(session, "ses") if session not in (None, "") else None
    ents: dict[str, str] = {"sub": sub}
    if ses:
        ents["ses"] = ses
    for k, v in (entities or {}).items():
        if v is None:
            continue
        if not re.fullmatch(r"[a-zA-Z]+", k):
            raise ValueError(f"bad BIDS entity key {k!r}")
        val = str(v)
        if not re.fullmatch(r"[a-zA-Z0-9]+", val):
            raise ValueError(f"BIDS entity {k}-{val!r}: labels are alphanumeric")
        ents[k] = val
    order = {k: i for i, k in enumerate(ENTITY_ORDER)}
    keys = sorted(ents, key=lambda k: (order.get(k, order["desc"] - 0.5), list(ents).index(k)))
    name = "_".join(f"{k}-{ents[k]}" for k in keys) + f"_{suffix}{ext}"
    base = Path(root)
    if derivative:
        base = base / "derivatives" / derivative
    base = base / f"sub-{sub}"
    if ses:
        base = base / f"ses-{ses}"
    return base / datatype / name if datatype else base / name


def parse_bids_name(path: str | Path) -> tuple[dict[str, str], str]:
    """``sub-01_ses-02_echo-3_MESE.nii.gz`` → (``{'sub': '01', 'ses': '02', 'echo': '3'}``, ``'MESE'``)."""
    name = Path(path).name
    stem = re.sub(r"(\.nii\.gz|\.nii|\.json|\.tsv)$", "", name)
    parts = stem.split("_")
    ents = {}
    for p in parts[:-1]:
        if "-" in p:
            k, v = p.split("-", 1)
            ents[k] = v
    return ents, parts[-1]


def sidecar_path(nifti: str | Path) -> Path:
    """``X.nii.gz`` / ``X.nii`` → ``X.json``."""
    p = Path(nifti)
    return p.with_name(re.sub(r"(\.nii\.gz|\.nii)$", "", p.name) + ".json")


def read_sidecar(path: str | Path, required: bool = True) -> dict:
    """Read a JSON sidecar (``X.json`` of ``X.nii.gz``, or a ``.json`` path).

    Raises
    ------
    InputError
        Missing (when ``required``), unreadable or not a JSON object.
    """
    p = Path(path)
    js = p if p.suffix == ".json" else sidecar_path(p)
    if not os.path.lexists(js):
        if required:
            raise InputError(js, f"missing JSON sidecar for {p.name}")
        return {}
    if input_kind(js) != "file":
        raise InputError(js, "is a folder, expected a JSON sidecar")
    try:
        obj = json.loads(js.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(js, f"not valid JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(obj, dict):
        raise InputError(js, "sidecar must hold a JSON object")
    return obj


def write_sidecar(path: str | Path, fields: Mapping) -> Path:
    """Write a JSON sidecar atomically (``path`` is the ``.json`` or its NIfTI)."""
    p = Path(path)
    js = p if p.suffix == ".json" else sidecar_path(p)
    with atomic_path(js) as tmp:
        tmp.write_text(json.dumps(_jsonable(fields), indent=2, sort_keys=False) + "\n")
    return js


# ----------------------------------------------------------------------------------------- loaders
def load_mese(path: str | Path, *, series: str | None = None) -> MeseSeries:
    """Load a multi-echo spin-echo series.

    Parameters
    ----------
    path : path
        4-D NIfTI with ``EchoTime`` list sidecar; one BIDS ``…_echo-N_MESE.nii.gz`` file (its
        siblings are gathered) or a folder holding them; or a DICOM folder.
    series : str, optional
        DICOM only: SeriesInstanceUID or SeriesNumber to pick when the folder mixes series.

    Returns
    -------
    MeseSeries
        ``image.data`` is ``(X, Y, Z, n_echoes)`` float32, echoes sorted by TE.

    Raises
    ------
    InputError
        Any problem with the input (named file, one line).
    """
    import warnings

    path = Path(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ms = _load_mese(path, series)
    notes = tuple(str(w.message) for w in caught)
    for n in notes:  # re-issue so callers (CLI) see them
        warn_input(None, n)
    return replace(ms, notes=ms.notes + notes)


def _load_mese(path: Path, series: str | None) -> MeseSeries:
    input_kind(path)
    if path.is_dir():
        if (path / "anat").is_dir():  # a BIDS session folder
            path = path / "anat"
        echo_files = _bids_volume_files(path, "MESE", "echo")
        if echo_files:
            return _mese_from_bids_files(echo_files, path)
        four_d = sorted(f for f in path.iterdir() if re.search(r"_MESE\.nii(\.gz)?$", f.name))
        if len(four_d) == 1:
            return _load_mese(four_d[0], series)
        if len(four_d) > 1:
            raise InputError(path, f"holds {len(four_d)} MESE files ({', '.join(f.name for f in four_d)}); pass one")
        from alsseg.io.dicom import read_dicom_series

        vs = read_dicom_series(path, series=series)
        return mese_from_dicom(vs)
    _refuse_single_dicom(path)
    ents, suffix = parse_bids_name(path)
    if "echo" in ents and suffix == "MESE":
        files = _bids_volume_files(path.parent, "MESE", "echo", prefix_of=path)
        return _mese_from_bids_files(files, path)
    img = load_nifti(path, ndim=(3, 4), check_finite=True)
    meta = read_sidecar(path)
    js = sidecar_path(path)
    if "EchoTime" not in meta:
        raise InputError(js, "no EchoTime in sidecar (need the list of echo times, seconds)")
    te_raw = meta["EchoTime"] if isinstance(meta["EchoTime"], list) else [meta["EchoTime"]]
    te = times_to_ms(te_raw, js, "EchoTime")
    n = img.data.shape[3] if img.data.ndim == 4 else 1
    if img.data.ndim == 3:
        raise InputError(path, f"is 3-D with shape {img.shape}; a MESE series needs a 4-D image "
                         "(X, Y, Z, echoes) or BIDS _echo-N_ files")
    te = check_echo_times(te, js, n_echoes=n)
    check_voxels(img.data, path)
    return _mese(img, te, meta, js, path)


def _mese(img: Image, te_ms: np.ndarray, meta: dict, js: Path | None, source: Path) -> MeseSeries:
    tr = _time_ms(meta, "RepetitionTime", js)
    excite, refocus = _flip_angles(meta)
    return MeseSeries(
        image=Image(img.data.astype(np.float32, copy=False), img.affine, img.path, {**img.meta, **meta}),
        echo_times_ms=np.asarray(te_ms, dtype=np.float64), tr_ms=tr,
        field_strength_t=_float(meta.get("MagneticFieldStrength")), refocus_deg=refocus, excite_deg=excite,
        slice_thickness_mm=_float(meta.get("SliceThickness")), source=source)


def _mese_from_bids_files(files: list[Path], source: Path) -> MeseSeries:
    img, metas, jss = _stack_volume_files(files, ndim=3)
    te = []
    for m, js in zip(metas, jss):
        if "EchoTime" not in m:
            raise InputError(js, "no EchoTime in sidecar")
        v = m["EchoTime"]
        if isinstance(v, list):
            if len(v) != 1:
                raise InputError(js, f"per-echo sidecar holds {len(v)} EchoTime values, expected one")
            v = v[0]
        te.append(v)
    te_ms = _times_per_file(te, jss, "EchoTime")
    te_ms = check_echo_times(te_ms, source, n_echoes=img.data.shape[3],
                             what="echo times (in _echo-N order)")
    check_voxels(img.data, source)
    common = {k: v for k, v in metas[0].items() if k != "EchoTime"}
    return _mese(img, te_ms, common, jss[0], source)


def load_t1_series(path: str | Path, *, series: str | None = None, kind: str | None = None) -> T1Series:
    """Load a T1-mapping series (IR, VFA or SR).

    Parameters
    ----------
    path : path
        4-D NIfTI whose sidecar holds a list ``InversionTime`` (IR), ``FlipAngle`` (VFA) or
        ``RepetitionTime`` (SR); one BIDS ``…_inv-N_IRT1`` / ``…_flip-N_VFA`` / ``…_rep-N_SRT1``
        file (siblings gathered) or their folder; or a DICOM folder.
    series : str, optional
        DICOM only: SeriesInstanceUID or SeriesNumber.
    kind : {'IR', 'VFA', 'SR'}, optional
        Force the kind instead of detecting it from which parameter varies.

    Returns
    -------
    T1Series
        ``image.data`` ``(X, Y, Z, V)`` float32, volumes sorted by the varying parameter.
    """
    path = Path(path)
    input_kind(path)
    if path.is_dir():
        for k in ("IR", "VFA", "SR"):
            files = _bids_volume_files(path, T1_SUFFIX[k], T1_ENTITY[k])
            if files:
                return _t1_from_bids_files(files, k, path)
        from alsseg.io.dicom import read_dicom_series

        return t1_from_dicom(read_dicom_series(path, series=series), kind=kind)
    _refuse_single_dicom(path)
    ents, suffix = parse_bids_name(path)
    for k in ("IR", "VFA", "SR"):
        if suffix == T1_SUFFIX[k] and T1_ENTITY[k] in ents:
            files = _bids_volume_files(path.parent, suffix, T1_ENTITY[k], prefix_of=path)
            return _t1_from_bids_files(files, k, path)
    img = load_nifti(path, ndim=(3, 4))
    if img.data.ndim == 3:
        raise InputError(path, f"is 3-D with shape {img.shape}; a T1 series needs a 4-D image (X, Y, Z, V)")
    meta = read_sidecar(path)
    js = sidecar_path(path)
    check_voxels(img.data, path)
    n = img.data.shape[3]
    lists = {k: meta[k] for k in ("InversionTime", "FlipAngle", "RepetitionTime")
             if isinstance(meta.get(k), list) and len(meta[k]) > 1}
    if kind is None:
        kind = ("IR" if "InversionTime" in lists else "VFA" if "FlipAngle" in lists
                else "SR" if "RepetitionTime" in lists else None)
    if kind is None:
        raise InputError(js, "cannot tell the T1 series kind: need a list InversionTime (IR), "
                         "FlipAngle (VFA) or RepetitionTime (SR) with one value per volume")
    per_volume = {"IR": "InversionTime", "VFA": "FlipAngle", "SR": "RepetitionTime"}[kind]
    values = meta.get(per_volume)
    values = values if isinstance(values, list) else [values] * n if values is not None else None
    if values is None:
        raise InputError(js, f"no {per_volume} in sidecar")
    return _t1(img, kind, values, meta, js, path)


def _t1(img: Image, kind: str, values: Sequence, meta: dict, js: Path, source: Path,
        per_file_js: Sequence[Path] | None = None) -> T1Series:
    n = img.data.shape[3]
    if kind == "VFA":
        try:
            v = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise InputError(js, f"FlipAngle must be numbers, got {values!r}") from None
        v = check_echo_times(v, js, n_echoes=n, what="flip angles (deg)")
    else:
        field_name = "InversionTime" if kind == "IR" else "RepetitionTime"
        v = (_times_per_file(values, per_file_js, field_name) if per_file_js
             else times_to_ms(values, js, field_name))
        v = check_echo_times(v, js, n_echoes=n, what=f"{field_name} values (ms)")
    tr = None if kind == "SR" else _time_ms(meta, "RepetitionTime", js)
    flip = _float(meta.get("FlipAngle")) if kind != "VFA" else None
    te = _time_ms(meta, "EchoTime", js)
    return T1Series(
        image=Image(img.data.astype(np.float32, copy=False), img.affine, img.path, {**img.meta, **meta}),
        kind=kind,
        inversion_times_ms=v if kind == "IR" else None,
        flip_angles_deg=v if kind == "VFA" else (np.full(n, flip) if flip is not None else None),
        repetition_times_ms=v if kind == "SR" else (np.full(n, tr) if tr is not None else None),
        tr_ms=tr, source=source, field_strength_t=_float(meta.get("MagneticFieldStrength")), echo_time_ms=te)


def _t1_from_bids_files(files: list[Path], kind: str, source: Path) -> T1Series:
    img, metas, jss = _stack_volume_files(files, ndim=3)
    key = {"IR": "InversionTime", "VFA": "FlipAngle", "SR": "RepetitionTime"}[kind]
    vals = []
    for m, js in zip(metas, jss):
        if key not in m:
            raise InputError(js, f"no {key} in sidecar")
        vals.append(m[key])
    check_voxels(img.data, source)
    common = {k: v for k, v in metas[0].items() if k != key}
    return _t1(img, kind, vals, common, jss[0], source, per_file_js=jss if kind != "VFA" else None)


def load_anatomical(path: str | Path, *, series: str | None = None) -> Image:
    """Load a single anatomical image (e.g. T1w) as a 3-D float32 :class:`Image`.

    Parameters
    ----------
    path : path
        3-D NIfTI (sidecar optional, kept in ``meta``) or a DICOM folder with one volume.
    """
    path = Path(path)
    input_kind(path)
    if path.is_dir():
        from alsseg.io.dicom import read_dicom_series

        vs = read_dicom_series(path, series=series)
        if vs.data.shape[3] != 1:
            raise InputError(path, f"DICOM series has {vs.data.shape[3]} volumes; an anatomical image needs one")
        data = vs.data[..., 0].astype(np.float32)
        check_voxels(data, path)
        return Image(data, vs.affine, path, dict(vs.header))
    _refuse_single_dicom(path)
    img = load_nifti(path, ndim=3)
    check_voxels(img.data, path)
    meta = read_sidecar(path, required=False)
    return Image(img.data, img.affine, path, {**img.meta, **meta})


# ---------------------------------------------------------------------------------- from DICOM
def mese_from_dicom(vs) -> MeseSeries:
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
        image=Image(data, vs.affine, vs.folder, dict(h)), echo_times_ms=te, tr_ms=_float(h.get("RepetitionTime_ms")),
        field_strength_t=_float(h.get("MagneticFieldStrength")), refocus_deg=_float(h.get("RefocusingFlipAngle")),
        excite_deg=_float(h.get("ExcitationFlipAngle")), slice_thickness_mm=_float(h.get("SliceThickness")),
        source=vs.folder)


def t1_from_dicom(vs, kind: str | None = None) -> T1Series:
    """Build a :class:`T1Series` from a :class:`alsseg.io.dicom.DicomVolumes`."""
    var = vs.varying
    if kind is None:
        kind = {"InversionTime": "IR", "FlipAngle": "VFA", "RepetitionTime": "SR"}.get(var)
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
    tr = None if kind == "SR" else _float(h.get("RepetitionTime_ms"))
    return T1Series(
        image=Image(data, vs.affine, vs.folder, dict(h)), kind=kind,
        inversion_times_ms=vals if kind == "IR" else None,
        flip_angles_deg=vals if kind == "VFA" else vs.flip_angles_deg,
        repetition_times_ms=vals if kind == "SR" else vs.repetition_times_ms,
        tr_ms=tr, source=vs.folder, field_strength_t=_float(h.get("MagneticFieldStrength")),
        echo_time_ms=float(vs.echo_times_ms[0]) if vs.echo_times_ms is not None else None)


# ------------------------------------------------------------------------------------------ writers
def write_mese_bids(series: MeseSeries, root: str | Path, subject: str, session: str | None = None,
                    *, split_echoes: bool = True, entities: Mapping[str, object] | None = None,
                    derivative: str | None = None, inputs: Sequence[str | Path] = ()) -> list[Path]:
    """Write a MESE series in BIDS layout; returns the paths written (NIfTI and JSON).

    ``split_echoes=True`` (BIDS): one 3-D ``…_echo-N_MESE.nii.gz`` per echo with its own sidecar
    (``EchoTime`` in seconds). ``split_echoes=False``: one 4-D ``…_MESE.nii.gz`` whose sidecar has an
    ``EchoTime`` list. All files are first written to temporaries and renamed together at the end.
    ``inputs``: paths that must not be overwritten.
    """
    common = {k: v for k, v in series.sidecar().items() if k != "EchoTime"}
    items = []
    if split_echoes:
        for e in range(series.n_echoes):
            p = bids_path(root, subject, session, "MESE", {**(entities or {}), "echo": e + 1}, derivative)
            items.append((p, series.image.data[..., e], {"EchoTime": _s(series.echo_times_ms[e]), **common}))
    else:
        p = bids_path(root, subject, session, "MESE", entities, derivative)
        items.append((p, series.image.data, series.sidecar()))
    return write_volumes(items, series.image.affine, inputs=inputs)


def write_t1_bids(series: T1Series, root: str | Path, subject: str, session: str | None = None,
                  *, split_volumes: bool = True, entities: Mapping[str, object] | None = None,
                  derivative: str | None = None, inputs: Sequence[str | Path] = ()) -> list[Path]:
    """Write a T1 series: ``…_inv-N_IRT1`` (IR), ``…_flip-N_VFA`` (VFA) or ``…_rep-N_SRT1`` (SR)."""
    suffix, ent = T1_SUFFIX[series.kind], T1_ENTITY[series.kind]
    key = {"IR": "InversionTime", "VFA": "FlipAngle", "SR": "RepetitionTime"}[series.kind]
    conv = (lambda v: float(v)) if series.kind == "VFA" else _s
    common = _sidecar_common(series.tr_ms, series.field_strength_t, None)
    if series.echo_time_ms is not None:
        common["EchoTime"] = _s(series.echo_time_ms)
    if series.kind != "VFA" and series.flip_angles_deg is not None:
        common["FlipAngle"] = float(series.flip_angles_deg[0])
    vals = series.varying
    items = []
    if split_volumes:
        for i in range(series.n_volumes):
            p = bids_path(root, subject, session, suffix, {**(entities or {}), ent: i + 1}, derivative)
            items.append((p, series.image.data[..., i], {**common, key: conv(vals[i])}))
    else:
        p = bids_path(root, subject, session, suffix, entities, derivative)
        items.append((p, series.image.data, {**common, key: [conv(v) for v in vals]}))
    return write_volumes(items, series.image.affine, inputs=inputs)


def write_volumes(items: Sequence[tuple[Path, np.ndarray, Mapping]], affine: np.ndarray,
                  inputs: Sequence[str | Path] = ()) -> list[Path]:
    """Write ``(nifti_path, data, sidecar)`` items all-or-nothing; returns NIfTI and JSON paths.

    Every file goes to a temporary name first; only when all are written are they renamed into
    place, so a failure leaves nothing under the final names.
    """
    from alsseg.io.validate import check_outputs

    targets = []
    for p, _, _ in items:
        targets += [Path(p), sidecar_path(p)]
    check_outputs(targets, inputs)
    import contextlib

    with contextlib.ExitStack() as stack:
        for p, data, meta in items:
            tmp = stack.enter_context(atomic_path(p))
            save_nifti(np.asarray(data), tmp, affine=affine)
            tmpj = stack.enter_context(atomic_path(sidecar_path(p)))
            tmpj.write_text(json.dumps(_jsonable(meta), indent=2) + "\n")
    return targets


# ------------------------------------------------------------------------------------------ helpers
def _refuse_single_dicom(path: Path) -> None:
    """A lone DICOM file holds one frame or one echo: ask for its folder instead."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return
    if len(head) == 132 and head[128:132] == b"DICM":
        raise InputError(path, f"is one DICOM file; pass its folder ({path.parent}) to read the whole series")


def _bids_volume_files(folder: Path, suffix: str, entity: str, prefix_of: Path | None = None) -> list[Path]:
    """BIDS files ``*_<entity>-N_<suffix>.nii[.gz]`` in ``folder`` sharing the other entities,
    sorted by N. With ``prefix_of``, only the siblings of that file; otherwise all must agree."""
    pat = re.compile(rf"^(?P<pre>.*)_{entity}-(?P<n>\d+)(?P<post>(_[a-zA-Z0-9]+-[a-zA-Z0-9]+)*)_{suffix}\.nii(\.gz)?$")
    groups: dict[tuple[str, str], list[tuple[int, Path]]] = {}
    for f in sorted(folder.iterdir()):
        m = pat.match(f.name)
        if m:
            groups.setdefault((m["pre"], m["post"]), []).append((int(m["n"]), f))
    if not groups:
        return []
    if prefix_of is not None:
        m = pat.match(Path(prefix_of).name)
        key = (m["pre"], m["post"])
    else:
        if len(groups) > 1:
            names = ", ".join(f"{a}_{entity}-*{b}_{suffix}" for a, b in groups)
            raise InputError(folder, f"holds {len(groups)} {suffix} series ({names}); pass one file of the series")
        key = next(iter(groups))
    nums = sorted(groups[key])
    idx = [n for n, _ in nums]
    if len(set(idx)) != len(idx):
        raise InputError(folder, f"duplicate {entity} indices {idx} (both .nii and .nii.gz?)")
    if idx != list(range(1, len(idx) + 1)):
        raise InputError(folder, f"{entity} indices {idx} are not 1..{len(idx)}: a volume is missing")
    return [f for _, f in nums]


def _stack_volume_files(files: list[Path], ndim: int = 3) -> tuple[Image, list[dict], list[Path]]:
    imgs, metas, jss = [], [], []
    for f in files:
        img = load_nifti(f, ndim=ndim, check_finite=True)
        if imgs and not same_grid(imgs[0], img):
            raise InputError(f, f"grid {img.shape} / spacing {np.round(img.spacing_mm, 3).tolist()} does not "
                             f"match {files[0].name} ({imgs[0].shape} / {np.round(imgs[0].spacing_mm, 3).tolist()})")
        imgs.append(img)
        metas.append(read_sidecar(f))
        jss.append(sidecar_path(f))
    data = np.stack([i.data for i in imgs], axis=-1)
    return Image(data, imgs[0].affine, files[0]), metas, jss


def _times_per_file(values: Sequence, jss: Sequence[Path], what: str) -> np.ndarray:
    """Per-file times → ms with one unit decision for the whole set (named on the first file)."""
    for v, js in zip(values, jss):
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise InputError(js, f"{what} must be a number, got {v!r}")
    return times_to_ms(values, jss[0].parent if len(jss) > 1 else jss[0], what)


def _time_ms(meta: dict, key: str, js: Path | None) -> float | None:
    v = meta.get(key)
    if v is None or isinstance(v, list):
        return None
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise InputError(js, f"{key} must be a number, got {v!r}")
    return float(times_to_ms([v], js, key)[0])


def _flip_angles(meta: dict) -> tuple[float | None, float | None]:
    """(excitation, refocusing) flip angles from a sidecar; a lone FlipAngle > 90 is the refocusing one."""
    fa = _float(meta.get("FlipAngle")) if not isinstance(meta.get("FlipAngle"), list) else None
    ref = _float(meta.get("RefocusingFlipAngle"))
    if ref is None and fa is not None and fa > 90:
        return None, fa
    return fa, ref


def _sidecar_common(tr_ms, field_t, thick_mm, excite_deg=None, refocus_deg=None) -> dict:
    out: dict = {}
    if tr_ms is not None:
        out["RepetitionTime"] = _s(tr_ms)
    if field_t is not None:
        out["MagneticFieldStrength"] = float(field_t)
    if excite_deg is not None:
        out["FlipAngle"] = float(excite_deg)
    if refocus_deg is not None:
        out["RefocusingFlipAngle"] = float(refocus_deg)
    if thick_mm is not None:
        out["SliceThickness"] = float(thick_mm)
    return out


def _s(ms: float) -> float:
    """ms → s, rounded to remove float noise (1 ns)."""
    return round(float(ms) / 1000.0, 9)


def _float(v) -> float | None:
    if v is None or isinstance(v, (list, dict, bool)):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def _label(value: str, prefix: str) -> str:
    s = str(value)
    if s.startswith(prefix + "-"):
        s = s[len(prefix) + 1:]
    if not re.fullmatch(r"[a-zA-Z0-9]+", s):
        raise InputError(None, f"BIDS {prefix} label {value!r} must be alphanumeric")
    return s


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj
