"""Loading acquisition series: multi-echo spin echo (MESE), T1 series, anatomical images.

Loaders accept three forms of input (see ``docs/io.md``):

1. one 4-D NIfTI ``X.nii[.gz]`` with a JSON sidecar ``X.json`` holding a list ``EchoTime``
   (``InversionTime`` / ``FlipAngle`` / ``RepetitionTime`` for a T1 series);
2. BIDS per-volume files ``…_echo-N_MESE.nii.gz`` (``…_inv-N_IRT1``, ``…_flip-N_VFA``,
   ``…_rep-N_SRT1``) each with its sidecar (pass any one of them, or their folder);
3. a DICOM folder (classic single-frame or enhanced multi-frame), see :mod:`alsseg.io.dicom`.

Times are milliseconds inside alsseg and seconds in BIDS sidecars (values >= 1 in a sidecar are
taken as milliseconds with a warning, see :func:`alsseg.io.validate.times_to_ms`).

The series types live in :mod:`alsseg.io.acquisition`, BIDS names in :mod:`alsseg.io.bids_names`,
sidecars in :mod:`alsseg.io.sidecar`, the writers in :mod:`alsseg.io.write_series` and the DICOM
conversion in :mod:`alsseg.io.from_dicom`; they are re-exported here, where they used to live.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from alsseg.io.acquisition import T1_ENTITY, T1_PARAMETER, T1_SUFFIX, MeseSeries, T1Series, finite_float
from alsseg.io.bids_names import ENTITY_ORDER, bids_path, parse_bids_name, subject_session_of
from alsseg.io.errors import InputError
from alsseg.io.from_dicom import mese_from_dicom, t1_from_dicom
from alsseg.io.nifti import Image, load_nifti, same_grid
from alsseg.io.sidecar import flip_angles, read_sidecar, sidecar_path, time_ms, times_per_file, write_sidecar
from alsseg.io.validate import check_echo_times, check_voxels, input_kind, times_to_ms, warn_input
from alsseg.io.write_series import write_mese_bids, write_t1_bids, write_volumes

__all__ = [
    "ENTITY_ORDER",
    "T1_ENTITY",
    "T1_PARAMETER",
    "T1_SUFFIX",
    "MeseSeries",
    "T1Series",
    "bids_path",
    "load_anatomical",
    "load_mese",
    "load_t1_series",
    "mese_from_dicom",
    "parse_bids_name",
    "read_sidecar",
    "sidecar_path",
    "subject_session_of",
    "t1_from_dicom",
    "write_mese_bids",
    "write_sidecar",
    "write_t1_bids",
    "write_volumes",
]


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
    tr = time_ms(meta, "RepetitionTime", js)
    excite, refocus = flip_angles(meta)
    return MeseSeries(
        image=Image(img.data.astype(np.float32, copy=False), img.affine, img.path, {**img.meta, **meta}),
        echo_times_ms=np.asarray(te_ms, dtype=np.float64), tr_ms=tr,
        field_strength_t=finite_float(meta.get("MagneticFieldStrength")), refocus_deg=refocus, excite_deg=excite,
        slice_thickness_mm=finite_float(meta.get("SliceThickness")), source=source)


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
    te_ms = times_per_file(te, jss, "EchoTime")
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
    per_volume = T1_PARAMETER[kind]
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
        v = (times_per_file(values, per_file_js, field_name) if per_file_js
             else times_to_ms(values, js, field_name))
        v = check_echo_times(v, js, n_echoes=n, what=f"{field_name} values (ms)")
    tr = None if kind == "SR" else time_ms(meta, "RepetitionTime", js)
    flip = finite_float(meta.get("FlipAngle")) if kind != "VFA" else None
    te = time_ms(meta, "EchoTime", js)
    return T1Series(
        image=Image(img.data.astype(np.float32, copy=False), img.affine, img.path, {**img.meta, **meta}),
        kind=kind,
        inversion_times_ms=v if kind == "IR" else None,
        flip_angles_deg=v if kind == "VFA" else (np.full(n, flip) if flip is not None else None),
        repetition_times_ms=v if kind == "SR" else (np.full(n, tr) if tr is not None else None),
        tr_ms=tr, source=source, field_strength_t=finite_float(meta.get("MagneticFieldStrength")), echo_time_ms=te)


def _t1_from_bids_files(files: list[Path], kind: str, source: Path) -> T1Series:
    img, metas, jss = _stack_volume_files(files, ndim=3)
    key = T1_PARAMETER[kind]
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
    own = pat.match(Path(prefix_of).name) if prefix_of is not None else None
    if prefix_of is not None and own is None:  # e.g. the .json sidecar of one echo
        raise InputError(prefix_of, f"is not a BIDS …_{entity}-N_{suffix}.nii[.gz] image; pass the image")
    groups: dict[tuple[str, str], list[tuple[int, Path]]] = {}
    for f in sorted(folder.iterdir()):
        m = pat.match(f.name)
        if m:
            groups.setdefault((m["pre"], m["post"]), []).append((int(m["n"]), f))
    if not groups:
        return []
    if own is not None:
        key = (own["pre"], own["post"])
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
    imgs: list[Image] = []
    metas: list[dict] = []
    jss: list[Path] = []
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

