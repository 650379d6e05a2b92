"""One session end to end, and a whole cohort: segment → fit → quantify → tables, figures, report.

Output folder (a BIDS derivative dataset, ``DIR``)::

    DIR/dataset_description.json      GeneratedBy alsseg, SourceDatasets
    DIR/alsseg_run.json               source dataset + options of this folder (guards against mixing)
    DIR/dseg.tsv                      label table
    DIR/sub-01/ses-01/anat/sub-01_ses-01_desc-muscles_dseg.nii.gz
                           …_desc-water_T2map / _desc-fatfraction_T2map / _desc-b1_T2map / … .nii.gz
                           …_T1map.nii.gz (where a T1 series exists)
                           …_muscles.tsv           per-muscle table (alsseg.quant)
    DIR/sub-01/ses-01/figures/sub-01_ses-01_desc-qc.png      thumbnails + overlay
    DIR/sub-01/ses-01/sub-01_ses-01_alsseg.json              completion marker (written last)
    DIR/sub-01/ses-01/sub-01_ses-01_failed.json              why a session failed (if it did)
    DIR/group/muscles.tsv, stats_*.tsv, cohort_status.tsv, qc.tsv, report.html

Resumability: every file is written atomically (temporary + rename); the completion marker is
written last, so a session without it is redone from the start on the next run and a session
with it (made with the same options) is skipped. A session that fails is recorded in
``_failed.json`` and the cohort goes on; it is retried on the next run. An output folder that is
not empty and was not made by alsseg from the same source dataset with the same options is
refused (never mixed).
"""

from __future__ import annotations

import json
import re
import time
import traceback
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from alsseg import __version__
from alsseg.io.atomic import write_text_atomic
from alsseg.io.errors import InputError
from alsseg.quant import FIT_FAIL_QC_THRESHOLD, QuantOptions

RUN_FILE = "alsseg_run.json"
GROUP_DIR = "group"
#: maps written per session: key of the fit result → (BIDS suffix, desc entity).
MAP_FILES = {
    "t2_water_ms": ("T2map", "water"), "fat_fraction": ("T2map", "fatfraction"), "b1": ("T2map", "b1"),
    "m0": ("T2map", "m0"), "r2": ("T2map", "r2"), "t2_mono_ms": ("T2map", "mono"),
    "fit_ok": ("mask", "fitok"), "t1_ms": ("T1map", None),
}


#: units and description written in each map's JSON sidecar.
MAP_SIDECARS = {
    "t2_water_ms": ("ms", "water T2, two-component slice-profile EPG fit"),
    "fat_fraction": ("1", "fat fraction (0-1), two-component EPG fit"),
    "b1": ("1", "transmit B1 scale (1 = nominal), EPG fit"), "m0": ("a.u.", "proton density M0, EPG fit"),
    "r2": ("1", "coefficient of determination of the EPG fit"),
    "fit_ok": ("1", "1 where the EPG fit succeeded (flag 0)"),
    "t1_ms": ("ms", "apparent T1 of the voxel (water and fat together)"),
    "t2_mono_ms": ("ms", "mono-exponential T2 (weighted log-linear, every echo): biased by fat and stimulated echoes"),
}


@dataclass(frozen=True)
class PipelineOptions:
    """Explicit configuration of a session / cohort run.

    Attributes
    ----------
    model : segmentation bundle name (``models/NAME``) or path.
    labels_from : take the label map from an existing derivative of the source dataset instead
        of segmenting (e.g. ``"groundtruth"`` → ``derivatives/groundtruth/…_desc-muscles_dseg``);
        ``None`` segments with ``model``.
    fit_t1 : fit a T1 map where the session has a T1 series.
    mask_margin_vox : the T2 fit covers the muscles dilated by this many voxels in-plane (maps
        are NaN elsewhere: fitting the whole field of view would only cost time).
    slice_profile : ``(refocus_width_ratio, transition)`` of the MESE slice profile when known
        (the demo passes the simulator's), a preset name or ``"TBW_EXC,TBW_REF,RATIO"``
        (:func:`alsseg.relax.profiles.parse_slice_profile`); ``None``: relax's default.
    b1 : ``"smooth"`` (a smooth B1 field per slice, water T2 refitted with it) or ``"voxel"``.
    mono_t2 : also fit the mono-exponential T2 (``_desc-mono_T2map``, column ``t2_mono_ms``),
        for comparison with older studies (it costs ~0.1 s per session).
    quant : per-muscle quantification options.
    figures : write the per-session QC thumbnails.
    threads : threads of the voxel fits within one session.
    """

    model: str = "lowerleg-unet"
    labels_from: str | None = None
    fit_t1: bool = True
    mask_margin_vox: int = 2
    slice_profile: tuple[float, float] | str | None = None
    b1: str = "smooth"
    mono_t2: bool = True
    quant: QuantOptions = field(default_factory=QuantOptions)
    figures: bool = True
    threads: int = 2

    def fingerprint(self) -> dict:
        """What decides the numbers (compared before resuming into a folder)."""
        d = asdict(self)
        d.pop("figures")
        d.pop("threads")
        return d


@dataclass(frozen=True)
class SessionJob:
    """The inputs of one session.

    Attributes
    ----------
    subject, session : ``sub-XX`` / ``ses-YY`` (session may be None).
    mese : a path :func:`alsseg.io.load_mese` accepts.
    t1 : a path :func:`alsseg.io.load_t1_series` accepts, or None.
    t1_kind : ``IR``/``VFA``/``SR`` or None.
    labels : an existing label map on the MESE grid, or None (segment).
    """

    subject: str
    session: str | None
    mese: Path | None
    t1: Path | None = None
    t1_kind: str | None = None
    labels: Path | None = None

    @property
    def name(self) -> str:
        return f"{self.subject}_{self.session}" if self.session else self.subject

    @classmethod
    def from_bids(cls, s, labels_root: Path | None = None) -> "SessionJob":
        """From an :class:`alsseg.io.bids.Session`; ``labels_root`` = a derivative folder holding
        ``…_desc-muscles_dseg.nii.gz`` files in BIDS layout."""
        labels = None
        if labels_root is not None:
            labels = _bids_file(labels_root, s.subject, s.session, "dseg", {"desc": "muscles"})
        return cls(s.subject, s.session, s.mese_path(), s.t1_path(), s.t1_kind, labels)


@dataclass
class SessionResult:
    """What happened to one session: ``status`` in {``done``, ``skipped``, ``failed``}."""

    name: str
    status: str
    seconds: float = 0.0
    error: str = ""
    outputs: list = field(default_factory=list)
    stage_seconds: dict = field(default_factory=dict)
    input_error: bool = False


def _bids_file(root: Path, subject: str, session: str | None, suffix: str, entities: dict | None = None,
               ext: str = ".nii.gz") -> Path:
    from alsseg.io.series import bids_path

    return bids_path(root, subject, session, suffix, entities, ext=ext)


def session_dir(out_dir: Path, subject: str, session: str | None) -> Path:
    return Path(out_dir) / subject / session if session else Path(out_dir) / subject


def marker_path(out_dir: Path, job: SessionJob) -> Path:
    return session_dir(out_dir, job.subject, job.session) / f"{job.name}_alsseg.json"


def failed_path(out_dir: Path, job: SessionJob) -> Path:
    return session_dir(out_dir, job.subject, job.session) / f"{job.name}_failed.json"


def is_done(out_dir: Path, job: SessionJob, options: PipelineOptions) -> bool:
    """True when the session's completion marker exists and was made with these options."""
    m = marker_path(out_dir, job)
    if not m.is_file():
        return False
    try:
        rec = json.loads(m.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return rec.get("options") == _jsonable(options.fingerprint())


def _jsonable(o):
    return json.loads(json.dumps(o, default=str))


# ------------------------------------------------------------------------------ output folder
def prepare_output(out_dir: Path, source: str, options: PipelineOptions) -> None:
    """Create or reopen an output folder; refuse one that holds something else.

    Raises
    ------
    InputError
        ``out_dir`` is a file; or it is not empty and either was not written by alsseg, or was
        written from another source dataset or with other options.
    """
    from alsseg.labels import dseg_tsv

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "output path exists and is not a folder")
    run_file = out_dir / RUN_FILE
    want = {"source": str(source), "options": _jsonable(options.fingerprint())}
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not run_file.is_file():
            raise InputError(out_dir, "output folder is not empty and is not an alsseg output folder; "
                             "choose an empty or new folder")
        try:
            have = json.loads(run_file.read_text())
        except json.JSONDecodeError:
            raise InputError(run_file, "unreadable run record; choose a new output folder") from None
        if have.get("source") != want["source"]:
            raise InputError(out_dir, f"holds results of another dataset ({have.get('source')}); "
                             "refusing to mix — choose another output folder")
        if have.get("options") != want["options"]:
            diff = sorted(k for k in want["options"] if have.get("options", {}).get(k) != want["options"][k])
            raise InputError(out_dir, f"holds results made with other options ({', '.join(diff)}); "
                             "refusing to mix — choose another output folder")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "dseg.tsv", dseg_tsv())
    desc = {"Name": "alsseg derivatives", "BIDSVersion": "1.9.0", "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "alsseg", "Version": __version__,
                             "Description": "segmentation, EPG water T2 / fat fraction / B1, T1, "
                                            "per-muscle tables"}],
            "SourceDatasets": [{"URL": Path(source).resolve().as_uri() if Path(source).exists() else str(source)}]}
    write_text_atomic(out_dir / "dataset_description.json", json.dumps(desc, indent=2) + "\n")
    write_text_atomic(run_file, json.dumps({**want, "version": __version__}, indent=2) + "\n")


# --------------------------------------------------------------------------------- one session
@lru_cache(maxsize=2)
def _segmenter(model: str):
    """Load a bundle once per process (the cache holds at most two models)."""
    from alsseg.seg import Segmenter

    return Segmenter.from_bundle(model)


def _dilate_inplane(mask: np.ndarray, n: int, axis: int = 2) -> np.ndarray:
    if n <= 0:
        return mask
    from scipy import ndimage

    st = np.zeros((3, 3, 3), bool)
    sl = [slice(None)] * 3
    sl[axis] = 1
    st[tuple(sl)] = ndimage.generate_binary_structure(2, 1)
    return ndimage.binary_dilation(mask, structure=st, iterations=n)


def fit_t2(series, mask: np.ndarray, threads: int = 2, profile: tuple[float, float] | str | None = None,
           b1: str = "smooth") -> dict[str, np.ndarray]:
    """Two-component slice-profile EPG fit (water T2, FF, B1, M0, R²) of the masked voxels.

    Uses :class:`alsseg.relax.t2.EpgT2Model` with the acquisition read from the series' headers
    (:meth:`alsseg.relax.acquisition.MeseAcquisition.from_series`).

    Returns
    -------
    ``{name: (X, Y, Z) ndarray}`` on the series grid: ``t2_water_ms``, ``fat_fraction``, ``b1``,
    ``m0``, ``r2`` (NaN outside the mask and where the fit failed) and ``fit_ok`` (bool).
    ``profile``: ``(refocus_width_ratio, transition)`` of the slice profile when it is known
    (e.g. the simulator's) or a ``--slice-profile`` text; ``None`` keeps relax's default profile.
    ``b1``: ``"smooth"`` or ``"voxel"`` (:meth:`alsseg.relax.t2.EpgT2Model.fit`).
    """
    from alsseg.relax.acquisition import MeseAcquisition
    from alsseg.relax.epg import SliceProfile
    from alsseg.relax.t2 import EpgT2Model

    from alsseg.relax.profiles import parse_slice_profile
    from alsseg.relax.volume import _slice_axis

    over = {}
    if isinstance(profile, str):
        over["profile"] = parse_slice_profile(profile)
    elif profile is not None:
        over["profile"] = SliceProfile.smooth(n_positions=24, transition=float(profile[1]),
                                              refocus_width_ratio=float(profile[0]), extent=1.0)
    acq = MeseAcquisition.from_series(series, **over)
    fit = EpgT2Model(acq).fit(series.image.data, mask, b1=b1, slice_axis=_slice_axis(series.image), n_jobs=threads)
    out = {k: np.asarray(fit.maps[k]) for k in ("t2_water_ms", "fat_fraction", "b1", "m0", "r2") if k in fit.maps}
    out["fit_ok"] = np.asarray(fit.success, bool)
    out["fit_flag"] = np.asarray(fit.flag, np.uint8)
    return out


def fit_t2_mono(series, mask: np.ndarray, threads: int = 2) -> np.ndarray:
    """Mono-exponential T2 (weighted log-linear, every echo), ms: the biased baseline of older
    studies (Bryan et al. 1998 included), kept for comparison; NaN where it failed."""
    from alsseg.relax.t2 import MonoExpT2Model

    fit = MonoExpT2Model(series.echo_times_ms, "loglinear").fit(series.image.data, mask, n_jobs=threads)
    t2 = np.asarray(fit.t2_ms, float)
    return np.where(np.asarray(fit.success, bool), t2, np.nan)


def fit_t1(t1_series, mask: np.ndarray, b1: np.ndarray | None = None, threads: int = 2) -> np.ndarray:
    """T1 map (ms) of the masked voxels (:func:`alsseg.relax.volume.fit_t1_volume`: IR, SR or
    VFA by the series kind; ``b1`` corrects a VFA series)."""
    from alsseg.relax.volume import fit_t1_volume

    res = fit_t1_volume(t1_series, mask=mask, b1=b1 if t1_series.kind == "VFA" else None,
                        n_jobs=threads, progress=False)
    return np.asarray(res["T1"].data, float)


def run_session(job: SessionJob, out_dir: Path, options: PipelineOptions = PipelineOptions(),
                stage: Callable[[str], None] | None = None, force: bool = False) -> SessionResult:
    """Run one session end to end and write its derivatives; never raises for a bad session.

    Parameters
    ----------
    job : the session's inputs.
    out_dir : the derivative folder (see the module docstring); must have been prepared with
        :func:`prepare_output` when several sessions share it.
    stage : called with the name of each stage (for progress bars).
    force : redo a session even when its completion marker exists.

    Returns
    -------
    SessionResult; ``status == "failed"`` with the one-line ``error`` when an input is bad or a
    stage fails (the failure is also written to ``…_failed.json``).
    """
    t0 = time.perf_counter()
    if not force and is_done(out_dir, job, options):
        return SessionResult(job.name, "skipped")
    stage = stage or (lambda s: None)
    times: dict[str, float] = {}
    try:
        outputs = _run_session(job, Path(out_dir), options, stage, times)
    except Exception as exc:  # a bad session is recorded and the cohort goes on
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not isinstance(exc, InputError):
            msg = f"{type(exc).__name__}: {msg}"
        rec = {"session": job.name, "error": msg, "stage": times.get("_stage", ""),
               "traceback": traceback.format_exc(limit=6), "version": __version__}
        write_text_atomic(failed_path(out_dir, job), json.dumps(rec, indent=2) + "\n")
        return SessionResult(job.name, "failed", time.perf_counter() - t0, msg,
                             input_error=isinstance(exc, InputError))
    fp = failed_path(out_dir, job)
    if fp.exists():
        fp.unlink()
    times.pop("_stage", None)
    return SessionResult(job.name, "done", time.perf_counter() - t0, "", outputs, times)


def _run_session(job: SessionJob, out_dir: Path, options: PipelineOptions, stage, times) -> list[Path]:
    from alsseg.io import load_mese, load_nifti, load_t1_series, save_nifti
    from alsseg.io.nifti import Image, same_grid
    from alsseg.quant import quantify

    def begin(name):
        times["_stage"] = name
        times[name] = time.perf_counter()
        stage(name)

    def end(name):
        times[name] = round(time.perf_counter() - times[name], 3)

    if job.mese is None:
        raise InputError(None, f"{job.name}: no MESE series")
    # a session being (re)done is not finished until its new marker is written
    old_marker = marker_path(out_dir, job)
    if old_marker.exists():
        old_marker.unlink()
    # temporaries left by a killed run (atomic writes use hidden names): remove them
    sdir = session_dir(out_dir, job.subject, job.session)
    if sdir.is_dir():
        for p in sdir.rglob(".*"):
            if p.is_file():
                p.unlink()
    begin("load")
    series = load_mese(job.mese)
    ref3d = Image(series.image.data[..., 0], series.image.affine, series.image.path)
    t1_series = None
    if options.fit_t1 and job.t1 is not None:
        t1_series = load_t1_series(job.t1, kind=job.t1_kind)
        if not same_grid(ref3d, t1_series.image):
            raise InputError(job.t1, "T1 series is not on the MESE grid")
    end("load")

    begin("segment")
    if job.labels is not None:
        lab_img = load_nifti(job.labels, ndim=3, dtype=None)
        if not same_grid(ref3d, lab_img):
            raise InputError(job.labels, f"label map grid {lab_img.shape} does not match the MESE grid {ref3d.shape}")
        labels = np.asarray(lab_img.data)
        if not np.issubdtype(labels.dtype, np.integer):
            labels = np.round(labels).astype(np.int16)
        source_labels = Path(job.labels).name
    else:
        seg = _segmenter(options.model)
        labels = np.asarray(seg.predict(series.image).data)
        source_labels = f"model {options.model}"
    labels = labels.astype(np.int16)
    if not (labels > 0).any():
        raise InputError(job.labels or job.mese, "segmentation is empty (no muscle found)")
    end("segment")

    begin("fit_t2")
    slice_axis = int(np.argmax(ref3d.spacing_mm)) if len(set(np.round(ref3d.spacing_mm, 3))) > 1 else 2
    mask = _dilate_inplane(labels > 0, options.mask_margin_vox, slice_axis)
    maps = fit_t2(series, mask, options.threads, options.slice_profile, options.b1)
    if options.mono_t2:
        maps["t2_mono_ms"] = fit_t2_mono(series, mask, options.threads)
    end("fit_t2")
    if t1_series is not None:
        begin("fit_t1")
        # T1 only inside the muscles (it is not shown around them): about half the T1 cost
        maps["t1_ms"] = fit_t1(t1_series, labels > 0, maps.get("b1"), options.threads)
        end("fit_t1")

    begin("quantify")
    table = quantify({k: v for k, v in maps.items()}, labels, ref3d.spacing_mm, options.quant)
    table.insert(0, "session_id", job.session or "")
    table.insert(0, "participant_id", job.subject)
    end("quantify")

    begin("write")
    outputs = []
    outputs.append(save_nifti(Image(labels.astype(np.uint8), ref3d.affine),
                              _bids_file(out_dir, job.subject, job.session, "dseg", {"desc": "muscles"})))
    for name, arr in maps.items():
        if name not in MAP_FILES:
            continue
        suffix, desc = MAP_FILES[name]
        data = arr.astype(np.uint8) if arr.dtype == bool else arr.astype(np.float32)
        nii = _bids_file(out_dir, job.subject, job.session, suffix, {"desc": desc})
        outputs.append(save_nifti(Image(data, ref3d.affine), nii))
        units, text = MAP_SIDECARS.get(name, ("", name))
        side = {"Units": units, "Description": text, "Sources": [str(job.mese)],
                "GeneratedBy": {"Name": "alsseg", "Version": __version__}}
        outputs.append(write_text_atomic(nii.with_name(nii.name.replace(".nii.gz", ".json")),
                                         json.dumps(side, indent=2) + "\n"))
    tsv = _bids_file(out_dir, job.subject, job.session, "muscles", ext=".tsv")
    outputs.append(write_text_atomic(tsv, table.to_csv(sep="\t", index=False, na_rep="n/a", float_format="%.6g")))
    if options.figures:
        from alsseg.report.figures import session_strip
        from alsseg.io.atomic import write_bytes_atomic

        ras = _ras_slices(ref3d, labels, maps)
        png = session_strip(*ras, title=f"{job.name} ({source_labels})")
        fig = session_dir(out_dir, job.subject, job.session) / "figures" / f"{job.name}_desc-qc.png"
        outputs.append(write_bytes_atomic(fig, png))
    end("write")
    rec = {"session": job.name, "version": __version__, "options": _jsonable(options.fingerprint()),
           "inputs": {"mese": str(job.mese), "t1": str(job.t1) if job.t1 else None, "labels": source_labels},
           "outputs": [str(Path(p).relative_to(out_dir)) for p in outputs],
           "seconds": {k: v for k, v in times.items() if k != "_stage"},
           "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_text_atomic(marker_path(out_dir, job), json.dumps(rec, indent=2) + "\n")
    return outputs


def _ras_slices(ref3d, labels: np.ndarray, maps: dict):
    """Middle slice (RAS, through the muscles) of the image, labels and main maps."""
    from alsseg.io.nifti import Image

    ras_img = ref3d.to_ras()
    ras_lab = Image(labels, ref3d.affine).to_ras().data
    z_has = np.flatnonzero((ras_lab > 0).reshape(-1, ras_lab.shape[2]).any(0))
    z = int(z_has[len(z_has) // 2]) if z_has.size else ras_lab.shape[2] // 2
    m2 = {}
    for k in ("t2_water_ms", "fat_fraction", "b1", "t1_ms"):
        if k in maps:
            m2[k] = Image(maps[k].astype(np.float32), ref3d.affine).to_ras().data[:, :, z]
    return ras_img.data[:, :, z], ras_lab[:, :, z], m2


# ------------------------------------------------------------------------------------- cohort
def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"2/4"`` → (2, 4): the 2nd of 4 shards (1-based, as ``SLURM_ARRAY_TASK_ID`` 1..n)."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m or not (1 <= int(m.group(1)) <= int(m.group(2))):
        raise InputError(None, f"--shard {text!r}: expected i/n with 1 <= i <= n (e.g. 1/4)")
    return int(m.group(1)), int(m.group(2))


def cohort_jobs(bids_root: Path, options: PipelineOptions, shard: tuple[int, int] | None = None):
    """(dataset, jobs): every session of a BIDS dataset, optionally one shard of them."""
    from alsseg.io.bids import BidsDataset

    ds = BidsDataset(bids_root)
    labels_root = None
    if options.labels_from:
        labels_root = Path(bids_root) / "derivatives" / options.labels_from
        if not labels_root.is_dir():
            raise InputError(labels_root, "no such derivative folder (--labels-from)")
    jobs = [SessionJob.from_bids(s, labels_root) for s in ds.sessions]
    if shard is not None:
        i, n = shard
        jobs = jobs[i - 1::n]
    return ds, jobs


def _worker(args):
    job, out_dir, options = args
    return run_session(job, out_dir, options)


def run_cohort(bids_root: str | Path, out_dir: str | Path, options: PipelineOptions = PipelineOptions(),
               jobs: int = 1, shard: tuple[int, int] | None = None, quiet: bool = False) -> list[SessionResult]:
    """Every session of a BIDS dataset into ``out_dir`` (resumable, failures recorded).

    Parameters
    ----------
    bids_root : source BIDS dataset.
    out_dir : derivative folder (created; refused if it holds something else).
    jobs : sessions processed in parallel (processes).
    shard : ``(i, n)``: process only every n-th session starting at the i-th (1-based).
    quiet : no progress bar.

    Returns
    -------
    One :class:`SessionResult` per session of the shard; also written to
    ``out_dir/group/cohort_status[_shard-i-of-n].tsv``.
    """
    from tqdm.auto import tqdm

    bids_root, out_dir = Path(bids_root), Path(out_dir)
    ds, todo = cohort_jobs(bids_root, options, shard)
    _ = ds.participants, ds.motor  # table errors surface now, before any work
    prepare_output(out_dir, str(bids_root.resolve()), options)
    results: list[SessionResult] = []
    bar = tqdm(total=len(todo), desc="sessions", unit="session", disable=quiet, dynamic_ncols=True)
    pending = []
    for job in todo:
        if is_done(out_dir, job, options):
            results.append(SessionResult(job.name, "skipped"))
            bar.update(1)
        else:
            pending.append(job)
    if jobs <= 1:
        for job in pending:
            bar.set_postfix_str(job.name)
            res = run_session(job, out_dir, options, stage=lambda s, n=job.name: bar.set_postfix_str(f"{n}: {s}"))
            results.append(res)
            bar.update(1)
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futs = {pool.submit(_worker, (j, out_dir, options)): j for j in pending}
            for fut in as_completed(futs):
                job = futs[fut]
                try:
                    res = fut.result()
                except Exception as exc:  # a crashed worker: record, go on
                    res = SessionResult(job.name, "failed", error=f"{type(exc).__name__}: {exc}")
                results.append(res)
                bar.set_postfix_str(f"{job.name}: {res.status}")
                bar.update(1)
    bar.close()
    order = {j.name: i for i, j in enumerate(todo)}
    results.sort(key=lambda r: order.get(r.name, 0))
    _write_status(out_dir, results, shard)
    return results


def _write_status(out_dir: Path, results: list[SessionResult], shard) -> Path:
    import pandas as pd

    name = "cohort_status.tsv" if shard is None else f"cohort_status_shard-{shard[0]}-of-{shard[1]}.tsv"
    df = pd.DataFrame([{"session": r.name, "status": r.status, "seconds": round(r.seconds, 2),
                        "error": r.error} for r in results], columns=["session", "status", "seconds", "error"])
    return write_text_atomic(out_dir / GROUP_DIR / name, df.to_csv(sep="\t", index=False))


# ------------------------------------------------------------------------------ group level
def collect_tables(out_dir: str | Path):
    """Concatenate the per-session tables of finished sessions (completion marker present).

    Returns
    -------
    (muscles, status): the per-muscle table of all sessions and a status table (session,
    status in {done, failed, incomplete}, error) built from the markers on disk.
    """
    import pandas as pd

    out_dir = Path(out_dir)
    tables, status = [], []
    for sub in sorted(p for p in out_dir.glob("sub-*") if p.is_dir()):
        folders = sorted(p for p in sub.glob("ses-*") if p.is_dir()) or [sub]
        for f in folders:
            name = f"{sub.name}_{f.name}" if f != sub else sub.name
            done, failed = f / f"{name}_alsseg.json", f / f"{name}_failed.json"
            if done.is_file():
                tsv = f / "anat" / f"{name}_muscles.tsv"
                if tsv.is_file():
                    t = pd.read_csv(tsv, sep="\t", na_values="n/a", dtype={"participant_id": str, "session_id": str})
                    tables.append(t)
                    status.append({"session": name, "status": "done", "error": ""})
                    continue
            if failed.is_file():
                rec = json.loads(failed.read_text())
                status.append({"session": name, "status": "failed", "error": rec.get("error", "")})
            else:
                status.append({"session": name, "status": "incomplete", "error": "no completion marker"})
    muscles = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return muscles, pd.DataFrame(status, columns=["session", "status", "error"])


def source_of(out_dir: str | Path) -> Path | None:
    """The source BIDS dataset recorded in ``out_dir/alsseg_run.json`` (None if not recorded)."""
    rf = Path(out_dir) / RUN_FILE
    if not rf.is_file():
        return None
    src = json.loads(rf.read_text()).get("source")
    return Path(src) if src and src != "None" else None


def run_stats(out_dir: str | Path, bids_root: str | Path | None = None, motor_table: str | Path | None = None,
              options=None) -> dict:
    """Collect the session tables and run :func:`alsseg.stats.run_all`; write ``group/*.tsv``.

    Returns
    -------
    ``{name: DataFrame}`` with ``muscles`` and ``status`` besides the statistics tables.
    """
    import pandas as pd

    from alsseg import stats
    from alsseg.io.bids import BidsDataset

    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise InputError(out_dir, "no such output folder")
    root = Path(bids_root) if bids_root else source_of(out_dir)
    if root is None:
        raise InputError(out_dir, "no source dataset recorded; pass --bids ROOT")
    ds = BidsDataset(root, motor_table=motor_table)
    muscles, status = collect_tables(out_dir)
    if muscles.empty:
        raise InputError(out_dir, "no finished session to analyse (run `alsseg cohort` first)")
    participants, motor = ds.participants, ds.motor
    tables = stats.run_all(muscles, participants, motor, options or stats.StatsOptions())
    group = out_dir / GROUP_DIR
    stats.write_tables(tables, group)
    write_text_atomic(group / "muscles.tsv", muscles.to_csv(sep="\t", index=False, na_rep="n/a", float_format="%.6g"))
    qc = qc_table(muscles, status, ds)
    write_text_atomic(group / "qc.tsv", qc.to_csv(sep="\t", index=False))
    return {"muscles": muscles, "status": status, "qc": qc, **tables}


def qc_table(muscles, status, ds=None):
    """QC findings, one line each: failed/incomplete sessions, cut muscles, poor fits, odd
    volumes (|robust z| > 3.5 within the cohort per muscle and side), dataset findings
    (subjects without scans, scans without subjects, missing motor values)."""
    import pandas as pd

    rows = []
    for _, r in status.iterrows():
        if r["status"] != "done":
            rows.append({"kind": f"session {r['status']}", "where": r["session"], "detail": r["error"]})
    if not muscles.empty:
        per = muscles[muscles.get("kind", "muscle") == "muscle"] if "kind" in muscles else muscles
        for (pid, ses), part in per.groupby(["participant_id", "session_id"], sort=False):
            if "cut_fov" in part:
                cut = part[part["cut_fov"].astype(bool)]
                if len(cut):
                    names = ("all" if len(cut) == len(part) else
                             ", ".join(f"{m}_{s}" for m, s in zip(cut["muscle"], cut["side"])))
                    rows.append({"kind": "cut by field of view", "where": f"{pid}_{ses}",
                                 "detail": f"{len(cut)} muscle(s) on the first or last slice ({names}): "
                                           "their volumes are those of the imaged slab"})
        for _, r in per.iterrows():
            where = f"{r['participant_id']}_{r['session_id']} {r['muscle']}_{r['side']}"
            f = r.get("fit_fail_fraction", np.nan)
            g = r.get("good_fit_fraction", np.nan)
            if not np.isfinite(f) and np.isfinite(g):
                f = 1.0 - g  # tables written before fit_fail_fraction existed
            if np.isfinite(f) and f > FIT_FAIL_QC_THRESHOLD:
                rows.append({"kind": "failed fits", "where": where,
                             "detail": f"{100 * f:.0f} % of voxels failed or sat at a bound "
                                       f"(threshold {100 * FIT_FAIL_QC_THRESHOLD:.0f} %): check the B1 / water T2 maps"})
        for (m, s), part in per.groupby(["muscle", "side"]):
            v = part["volume_ml"].astype(float)
            med = v.median()
            mad = (v - med).abs().median() * 1.4826
            if mad > 0:
                z = (v - med) / mad
                for i in np.flatnonzero(np.abs(z.to_numpy()) > 3.5):
                    r = part.iloc[i]
                    rows.append({"kind": "odd volume", "where": f"{r['participant_id']}_{r['session_id']} {m}_{s}",
                                 "detail": f"{r['volume_ml']:.1f} mL vs cohort median {med:.1f} mL (robust z {z.iloc[i]:.1f})"})
    if ds is not None:
        for line in ds.report():
            where, _, detail = line.partition(": ")
            kind = "dataset"
            if "no scans" in detail:
                kind = "subject without scans"
            elif "no row in participants" in detail:
                kind = "scans without subject"
            rows.append({"kind": kind, "where": where, "detail": detail})
        motor = ds.motor
        for c in ("cmap_mv", "mvic_n"):
            if c in motor:
                miss = motor[motor[c].isna()]
                for _, r in miss.iterrows():
                    rows.append({"kind": "missing motor value", "where": f"{r['participant_id']}_{r['session_id']} {r['side']}",
                                 "detail": f"{c} missing (kept missing, not imputed)"})
    return pd.DataFrame(rows, columns=["kind", "where", "detail"])


def load_group_results(out_dir: str | Path) -> dict | None:
    """The group tables written by :func:`run_stats`, or ``None`` when they are missing or older
    than a session's completion marker (then the statistics must be run again)."""
    import pandas as pd

    group = Path(out_dir) / GROUP_DIR
    main = group / "stats_group_comparison.tsv"
    if not main.is_file() or not (group / "muscles.tsv").is_file() or not (group / "qc.tsv").is_file():
        return None
    newest = max((p.stat().st_mtime for p in Path(out_dir).glob("sub-*/**/*_alsseg.json")), default=0.0)
    newest = max([newest] + [p.stat().st_mtime for p in Path(out_dir).glob("sub-*/**/*_failed.json")])
    if main.stat().st_mtime < newest:
        return None

    def read(p):
        return pd.read_csv(p, sep="\t", na_values="n/a", keep_default_na=False,
                           dtype={"participant_id": str, "session_id": str})

    res = {"muscles": read(group / "muscles.tsv"), "qc": read(group / "qc.tsv").fillna("")}
    for name in ("group_comparison", "motor_correlation", "change_correlation", "abnormal_zscores", "abnormal_counts"):
        if (group / f"stats_{name}.tsv").is_file():
            res[name] = read(group / f"stats_{name}.tsv")
    _, res["status"] = collect_tables(out_dir)
    return res


def run_report(out_dir: str | Path, bids_root: str | Path | None = None, title: str | None = None,
               extra: dict | None = None) -> Path:
    """Build ``out_dir/group/report.html`` from the group tables (running the statistics first
    when they are missing or older than the newest session). ``extra``: ``{heading: DataFrame}``
    sections added to the report (the demo's comparison with the ground truth)."""
    from alsseg.report import build_report

    out_dir = Path(out_dir)
    res = load_group_results(out_dir) if bids_root is None or Path(bids_root) == source_of(out_dir) else None
    if res is None:
        res = run_stats(out_dir, bids_root)
    root = Path(bids_root) if bids_root else source_of(out_dir)
    from alsseg.io.bids import BidsDataset

    ds = BidsDataset(root)
    group = out_dir / GROUP_DIR
    if extra is None and (group / "accuracy_summary.tsv").is_file() and (group / "findings.tsv").is_file():
        import pandas as pd  # a demo folder: keep its comparison with the ground truth in the report

        extra = {"Accuracy against the ground truth (median absolute error per muscle, all sessions)":
                 pd.read_csv(group / "accuracy_summary.tsv", sep="\t"),
                 "Headline analyses, measured vs computed on the true values":
                 pd.read_csv(group / "findings.tsv", sep="\t")}
    thumbs = sorted(out_dir.glob("sub-*/**/figures/*_desc-qc.png"))
    html = build_report(res, ds.participants, ds.motor, thumbs, title=title or f"alsseg report — {root.name}",
                        extra=extra)
    return write_text_atomic(out_dir / GROUP_DIR / "report.html", html)


# --------------------------------------------------------------------- accuracy against truth
def compare_with_truth(muscles, truth):
    """Per-muscle agreement of measured and true values (synthetic data).

    Parameters
    ----------
    muscles : table from :func:`collect_tables` (per-muscle rows are used, group rows ignored).
    truth : ground truth (``derivatives/groundtruth/muscles.tsv``: participant_id, session_id,
        side, muscle, volume_ml, t2_water_ms, fat_fraction, t1_ms).

    Returns
    -------
    (rows, summary): ``rows`` one line per session × side × muscle with ``<m>_est``, ``<m>_true``
    and errors (``t2_error_ms``, ``volume_error_pct``, ``ff_error``, ``t1_error_ms``); ``summary``
    one line per muscle plus ``all`` with the median absolute errors.
    """
    import pandas as pd

    keys = ["participant_id", "session_id", "side", "muscle"]
    est = muscles[muscles["muscle"].isin(truth["muscle"].unique())].copy()
    for d in (est, truth):
        for k in keys:
            d[k] = d[k].astype(str)
    cols = [c for c in ("volume_ml", "t2_water_ms", "fat_fraction", "t1_ms") if c in est and c in truth]
    m = est[keys + cols].merge(truth[keys + cols], on=keys, suffixes=("_est", "_true"))
    if "t2_water_ms" in cols:
        m["t2_error_ms"] = m["t2_water_ms_est"] - m["t2_water_ms_true"]
    if "volume_ml" in cols:
        m["volume_error_pct"] = 100 * (m["volume_ml_est"] - m["volume_ml_true"]) / m["volume_ml_true"]
    if "fat_fraction" in cols:
        m["ff_error"] = m["fat_fraction_est"] - m["fat_fraction_true"]
    if "t1_ms" in cols:
        m["t1_error_ms"] = m["t1_ms_est"] - m["t1_ms_true"]
    errs = [c for c in ("t2_error_ms", "volume_error_pct", "ff_error", "t1_error_ms") if c in m]
    summ = []
    for name, part in list(m.groupby("muscle", sort=False)) + [("all", m)]:
        row = {"muscle": name, "n": len(part)}
        for e in errs:
            v = part[e].abs()
            row[f"median_abs_{e}"] = float(v.median()) if v.notna().any() else float("nan")
        summ.append(row)
    return m, pd.DataFrame(summ)


def compare_stats(est: dict, truth: dict):
    """Side-by-side of the key statistics computed on measured and on true values.

    Returns a DataFrame: analysis, measure, motor, muscle, statistic, measured, truth,
    difference, same_sign, both_significant (p < 0.05 in both or in neither).
    """
    import pandas as pd

    rows = []
    specs = [("group_comparison", ["measure", "muscle"], [("hedges_g", "welch_p")]),
             ("motor_correlation", ["population", "measure", "motor", "muscle"], [("pearson_r", "pearson_p"),
                                                                                 ("spearman_r", "spearman_p")]),
             ("change_correlation", ["measure", "motor", "muscle"], [("pearson_r", "pearson_p")])]
    for name, keys, stats_ in specs:
        if name not in est or name not in truth:
            continue
        m = est[name].merge(truth[name], on=keys, suffixes=("_est", "_true"))
        for _, r in m.iterrows():
            for s, p in stats_:
                a, b = r[f"{s}_est"], r[f"{s}_true"]
                pa, pb = r[f"{p}_est"], r[f"{p}_true"]
                rows.append({"analysis": name, **{k: r[k] for k in keys}, "statistic": s, "measured": a,
                             "truth": b, "difference": a - b, "same_sign": bool(np.sign(a) == np.sign(b)),
                             "p_measured": pa, "p_truth": pb,
                             "same_significance": bool((pa < 0.05) == (pb < 0.05))})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------ demo
@dataclass(frozen=True)
class DemoResult:
    """Paths and headline numbers of :func:`run_demo`."""

    bids_root: Path
    out_dir: Path
    report: Path
    segmentation: str
    accuracy: object   # DataFrame: per-muscle median absolute errors
    findings: object   # DataFrame: key statistics, measured vs truth
    seconds: dict


def shipped_model_available(model: str) -> bool:
    """True when the segmentation bundle ``model`` resolves (without importing torch)."""
    p = Path(model)
    if p.is_dir():
        return (p / "configs" / "metadata.json").is_file()
    from alsseg.bundles import SHIPPED_DIR

    models = SHIPPED_DIR / model
    return (models / "configs" / "metadata.json").is_file()


def key_findings(tables: dict):
    """The study's headline analyses (Bryan et al. 1998) from a stats result, one row each."""
    import pandas as pd

    rows = []
    gc = tables.get("group_comparison")
    mc = tables.get("motor_correlation")
    cc = tables.get("change_correlation")
    if gc is not None:
        for meas in ("t2_water_ms", "t1_ms", "volume_ml", "fat_fraction"):
            r = gc[(gc["measure"] == meas) & (gc["muscle"] == "all")]
            if len(r):
                r = r.iloc[0]
                rows.append({"finding": f"{meas}: ALS vs control (all muscles)", "statistic": "hedges_g",
                             "value": r["hedges_g"], "p": r["welch_p"]})
    if mc is not None:
        for meas, mot in (("t2_water_ms", "mvic_n"), ("t2_water_ms", "cmap_mv"), ("volume_ml", "mvic_n")):
            r = mc[(mc["measure"] == meas) & (mc["motor"] == mot) & (mc["muscle"] == "anterior") & (mc["population"] == "all")]
            if len(r):
                r = r.iloc[0]
                rows.append({"finding": f"{meas} vs {mot} (anterior)", "statistic": "pearson_r",
                             "value": r["pearson_r"], "p": r["pearson_p"]})
    if cc is not None:
        for mot in ("cmap_mv", "mvic_n"):
            r = cc[(cc["measure"] == "t2_water_ms") & (cc["motor"] == mot) & (cc["muscle"] == "anterior")]
            if len(r):
                r = r.iloc[0]
                rows.append({"finding": f"ΔT2 vs Δ{mot} (anterior, ALS)", "statistic": "pearson_r",
                             "value": r["pearson_r"], "p": r["pearson_p"]})
    return pd.DataFrame(rows, columns=["finding", "statistic", "value", "p"])


def simulated_slice_profile(bids_root: str | Path) -> tuple[float, float] | None:
    """``(refocus_width_ratio, transition)`` of a synthetic cohort's MESE protocol when its
    ``derivatives/groundtruth/cohort.json`` records one, else ``None`` (relax's default)."""
    f = Path(bids_root) / "derivatives" / "groundtruth" / "cohort.json"
    if not f.is_file():
        return None
    cfg = json.loads(f.read_text()).get("mese", {})
    if "refocus_width_ratio" not in cfg:
        return None
    return float(cfg["refocus_width_ratio"]), float(cfg.get("slice_transition", 0.12))


def run_demo(out: str | Path, *, n_als: int = 11, n_controls: int = 8, seed: int = 0, jobs: int = 1,
             model: str = "lowerleg-unet", use_truth_labels: bool = False, quiet: bool = False,
             options: PipelineOptions | None = None, config=None) -> DemoResult:
    """Generate the default synthetic cohort and run everything on it.

    ``out/bids`` — the synthetic BIDS dataset (with ``derivatives/groundtruth``);
    ``out/bids/derivatives/alsseg`` — alsseg's outputs, with ``group/report.html``, the statistics,
    and the comparison with the ground truth (``group/accuracy_*.tsv``, ``group/stats_truth_*.tsv``,
    ``group/stats_vs_truth.tsv``, ``group/findings.tsv``). Resumable: a second call finishes what
    an interrupted one left.

    Segmentation: the shipped model ``model`` when it is in ``models/``; the ground-truth label
    maps when ``use_truth_labels`` or when no model ships (said in the result).
    ``config``: a full :class:`alsseg.synth.cohort.CohortConfig` (overrides the group sizes and
    seed; e.g. a coarse grid for tests).
    """
    import pandas as pd

    from alsseg import stats
    from alsseg.synth import cohort as synth_cohort

    out = Path(out)
    times = {}
    t = time.perf_counter()
    bids = out / "bids"
    synth_cohort.make_cohort(bids, n_als=n_als, n_controls=n_controls, seed=seed, config=config,
                             progress=not quiet)
    times["synth"] = time.perf_counter() - t
    base = options or PipelineOptions()
    if base.slice_profile is None:
        # the simulated protocol's slice profile is known exactly: fit with it (on real data a
        # user gives their sequence's, or relax's default applies)
        base = replace(base, slice_profile=simulated_slice_profile(bids))
    if use_truth_labels or not shipped_model_available(model):
        opts = replace(base, labels_from="groundtruth", model=model)
        seg = "ground-truth label maps" + ("" if use_truth_labels else f" (no model {model!r} in models/)")
    else:
        opts = replace(base, model=model, labels_from=None)
        seg = f"model {model}"
    deriv = bids / "derivatives" / "alsseg"
    t = time.perf_counter()
    run_cohort(bids, deriv, opts, jobs=jobs, quiet=quiet)
    times["cohort"] = time.perf_counter() - t
    t = time.perf_counter()
    if load_group_results(deriv) is None:
        run_stats(deriv, bids)
    times["stats"] = time.perf_counter() - t
    # ground truth: accuracy of the per-muscle values, and the same statistics on true values
    t = time.perf_counter()
    group = deriv / GROUP_DIR
    truth = pd.read_csv(bids / "derivatives" / "groundtruth" / "muscles.tsv", sep="\t", na_values="n/a",
                        dtype={"participant_id": str, "session_id": str})
    muscles, _ = collect_tables(deriv)
    rows, summary = compare_with_truth(muscles, truth)
    write_text_atomic(group / "accuracy_muscles.tsv", rows.to_csv(sep="\t", index=False, float_format="%.6g"))
    write_text_atomic(group / "accuracy_summary.tsv", summary.to_csv(sep="\t", index=False, float_format="%.6g"))
    from alsseg.io.bids import BidsDataset

    ds = BidsDataset(bids)
    est_tables = {k: pd.read_csv(group / f"stats_{k}.tsv", sep="\t", na_values="n/a")
                  for k in ("group_comparison", "motor_correlation", "change_correlation")
                  if (group / f"stats_{k}.tsv").is_file()}
    # the comparison uses the subject-level statistics; mixed models would only cost time here
    truth_tables = stats.run_all(truth, ds.participants, ds.motor, stats.StatsOptions(mixed_model=False))
    stats.write_tables({f"truth_{k}": v for k, v in truth_tables.items()}, group)
    agree = compare_stats(est_tables, truth_tables)
    write_text_atomic(group / "stats_vs_truth.tsv", agree.to_csv(sep="\t", index=False, float_format="%.6g"))
    fm, ft = key_findings(est_tables), key_findings(truth_tables)
    findings = fm.merge(ft, on=["finding", "statistic"], suffixes=("_measured", "_truth"), how="outer")
    write_text_atomic(group / "findings.tsv", findings.to_csv(sep="\t", index=False, float_format="%.6g"))
    times["truth"] = time.perf_counter() - t
    t = time.perf_counter()
    extra = {"Accuracy against the ground truth (median absolute error per muscle, all sessions)": summary,
             "Headline analyses, measured vs computed on the true values": findings}
    report = run_report(deriv, bids, title=f"alsseg demo — synthetic cohort (seed {seed}), segmentation: {seg}",
                        extra=extra)
    times["report"] = time.perf_counter() - t
    return DemoResult(bids, deriv, report, seg, summary, findings, times)
