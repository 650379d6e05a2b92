"""One session in memory: load → segment → fit T2 (+T1) → quantify → QC figure; nothing written.

``process_session(job, options, segmenter) -> SessionResult`` is the whole computation of
``alsseg run`` / ``cohort`` / ``demo``; :func:`alsseg.pipeline.write.write_session` turns its result
into files.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from alsseg.io.errors import InputError
from alsseg.pipeline.options import PipelineOptions, SessionJob

if TYPE_CHECKING:
    import pandas as pd

    from alsseg.io.nifti import Image
    from alsseg.seg import Segmenter


class SegmenterLike(Protocol):
    """Anything that segments: ``predict(image) -> label Image`` on the image's grid
    (:class:`alsseg.seg.Segmenter` is one)."""

    def predict(self, image: Image) -> Image: ...


class BundleSegmenter:
    """The segmentation bundle ``model`` (name under the shipped models, or a path), loaded on
    the first :meth:`predict` and then kept by this object (not by the module).

    Cheap to create and to pickle before its first use, so a cohort can hand one to each
    worker process.
    """

    def __init__(self, model: str, mirror_tta: bool = True):
        self.model = model
        self.mirror_tta = mirror_tta
        self._segmenter: Segmenter | None = None

    def _loaded(self) -> Segmenter:
        if self._segmenter is None:
            from alsseg.seg import Segmenter

            self._segmenter = Segmenter.from_bundle(self.model, mirror_tta=self.mirror_tta)
        return self._segmenter

    def predict(self, image: Image) -> Image:
        return self._loaded().predict(image)

    def predict_with_confidence(self, image: Image):
        """``(labels, per-muscle confidence rows)``, see :meth:`alsseg.seg.Segmenter.predict_with_confidence`."""
        return self._loaded().predict_with_confidence(image)

    def __getstate__(self):
        return {"model": self.model, "mirror_tta": self.mirror_tta, "_segmenter": None}


def segment_with_confidence(segmenter: SegmenterLike, image: Image) -> tuple[np.ndarray, dict | None]:
    """``(labels (X, Y, Z), {label id: seg_confidence} or None)``: the confidence where the
    segmenter gives one (``predict_with_confidence``), else None."""
    if hasattr(segmenter, "predict_with_confidence"):
        img, rows = segmenter.predict_with_confidence(image)
        return np.asarray(img.data), {int(r["label"]): float(r["seg_confidence"]) for r in rows}
    return np.asarray(segmenter.predict(image).data), None


def shipped_model_available(model: str) -> bool:
    """True when the segmentation bundle ``model`` resolves (without importing torch)."""
    p = Path(model)
    if p.is_dir():
        return (p / "configs" / "metadata.json").is_file()
    from alsseg.seg.store import MODELS_DIR

    models = MODELS_DIR / model
    return (models / "configs" / "metadata.json").is_file()


@dataclass
class SessionResult:
    """Everything computed for one session, in memory.

    Attributes
    ----------
    job : the session's inputs.
    reference : first echo of the MESE series, ``(X, Y, Z)``: the grid (affine) of every map.
    labels : ``(X, Y, Z)`` int16 label map (ids of :mod:`alsseg.labels`).
    label_source : where the labels came from (``model NAME`` or the label file's name).
    maps : ``{name: (X, Y, Z) ndarray}``: ``t2_water_ms``, ``fat_fraction``, ``b1``, ``m0``,
        ``r2``, ``fit_ok`` (bool), ``t2_mono_ms`` (when asked), ``t1_ms`` (where a T1 series
        was fitted); NaN outside the fitted mask and where a fit failed.
    table : per-muscle table (:func:`alsseg.quant.quantify`) with ``participant_id`` and
        ``session_id`` first and ``seg_confidence`` / ``seg_confidence_low`` last
        (:func:`alsseg.quant.add_confidence`; NaN / n/a when the labels came from a file).
    qc_png : the QC thumbnail strip (PNG bytes), or None when figures are off.
    overlay_pngs : every slice with the labels over it (:func:`alsseg.report.overlay.overlay_pages`,
        PNG pages), empty when figures are off.
    stage_seconds : wall time per stage (``load``, ``segment``, ``fit_t2``, ``fit_t1``,
        ``quantify``), s.
    """

    job: SessionJob
    reference: Image
    labels: np.ndarray
    label_source: str
    maps: dict[str, np.ndarray]
    table: pd.DataFrame
    qc_png: bytes | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    overlay_pngs: list = field(default_factory=list)


def dilate_inplane(mask: np.ndarray, n: int, axis: int = 2) -> np.ndarray:
    """``mask`` dilated by ``n`` voxels within each slice (slices along ``axis``)."""
    if n <= 0:
        return mask
    from scipy import ndimage

    st = np.zeros((3, 3, 3), bool)
    sl: list[slice | int] = [slice(None)] * 3
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
    ``m0``, ``r2`` (NaN outside the mask and where the fit failed), ``fit_ok`` (bool) and
    ``fit_flag`` (uint8 flag bits). ``profile``: ``(refocus_width_ratio, transition)`` of the
    slice profile when it is known (e.g. the simulator's) or a ``--slice-profile`` text; ``None``
    keeps relax's default profile. ``b1``: ``"smooth"`` or ``"voxel"``
    (:meth:`alsseg.relax.t2.EpgT2Model.fit`).
    """
    from alsseg.relax.acquisition import MeseAcquisition
    from alsseg.relax.epg import SliceProfile
    from alsseg.relax.profiles import parse_slice_profile
    from alsseg.relax.t2 import EpgT2Model
    from alsseg.relax.volume import slice_axis_of

    over = {}
    if isinstance(profile, str):
        over["profile"] = parse_slice_profile(profile)
    elif profile is not None:
        over["profile"] = SliceProfile.smooth(n_positions=24, transition=float(profile[1]),
                                              refocus_width_ratio=float(profile[0]), extent=1.0)
    acq = MeseAcquisition.from_series(series, **over)
    fit = EpgT2Model(acq).fit(series.image.data, mask, b1=b1, slice_axis=slice_axis_of(series.image), n_jobs=threads)
    out: dict[str, np.ndarray] = {k: np.asarray(fit.maps[k]) for k in ("t2_water_ms", "fat_fraction", "b1", "m0", "r2")
                                  if k in fit.maps}
    out["fit_ok"] = np.asarray(fit.success, bool)
    out["fit_flag"] = np.asarray(fit.flag, np.uint8)
    return out


def fit_t2_mono(series, mask: np.ndarray, threads: int = 2) -> np.ndarray:
    """Mono-exponential T2 (weighted log-linear, every echo), ms: the biased baseline of older
    studies (Bryan et al. 1998 included), kept for comparison; NaN where it failed."""
    from alsseg.relax.mono import MonoExpT2Model

    fit = MonoExpT2Model(series.echo_times_ms, "loglinear").fit(series.image.data, mask, n_jobs=threads)
    t2 = np.asarray(fit.t2_ms, float)
    return np.where(np.asarray(fit.success, bool), t2, np.nan)


def fit_t1(t1_series, mask: np.ndarray, b1: np.ndarray | None = None, threads: int = 2) -> np.ndarray:
    """T1 map (ms) of the masked voxels (:func:`alsseg.relax.volume.fit_t1_volume`: IR, SR or
    VFA by the series kind; ``b1`` corrects a VFA series)."""
    from alsseg.relax.volume import fit_t1_volume

    res = fit_t1_volume(t1_series, mask=mask, b1=b1 if t1_series.kind == "VFA" else None,
                        n_jobs=threads, progress=False)
    return np.asarray(res["t1_ms"].data, float)


def require_mese(job: SessionJob) -> None:
    """Raise :class:`InputError` when the job has no MESE series."""
    if job.mese is None:
        raise InputError(None, f"{job.name}: no MESE series")


def process_session(job: SessionJob, options: PipelineOptions = PipelineOptions(),
                    segmenter: SegmenterLike | None = None,
                    stage: Callable[[str], None] | None = None) -> SessionResult:
    """Compute one session in memory (nothing is written).

    Parameters
    ----------
    job : the session's inputs.
    options : what to compute.
    segmenter : segments the MESE series when the job has no label map; ``None`` loads the
        bundle ``options.model`` (:class:`BundleSegmenter`) when needed. Pass one object to
        many sessions to load a model once.
    stage : called with the name of each stage as it begins (``load``, ``segment``, ``fit_t2``,
        ``fit_t1`` where a T1 series is fitted, ``quantify``).

    Raises
    ------
    InputError
        a bad input (missing or unreadable series, grids that differ, an empty segmentation).
    Exception
        whatever a stage raises; the caller records it.
    """
    from alsseg.io import load_mese, load_nifti, load_t1_series
    from alsseg.io.nifti import Image, same_grid
    from alsseg.quant import add_confidence, quantify
    from alsseg.seg.confidence import LOW_CONFIDENCE

    stage = stage or (lambda s: None)
    times: dict[str, float] = {}

    def begin(name):
        times[name] = time.perf_counter()
        stage(name)

    def end(name):
        times[name] = round(time.perf_counter() - times[name], 3)

    require_mese(job)
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
    confidence = None
    if job.labels is not None:
        lab_img = load_nifti(job.labels, ndim=3, dtype=None)
        if not same_grid(ref3d, lab_img):
            raise InputError(job.labels, f"label map grid {lab_img.shape} does not match the MESE grid {ref3d.shape}")
        labels = np.asarray(lab_img.data)
        if not np.issubdtype(labels.dtype, np.integer):
            labels = np.round(labels).astype(np.int16)
        from alsseg.labels import load_anatomy

        anatomy = load_anatomy()
        bad = sorted(set(np.unique(labels).tolist()) - anatomy.valid_ids())
        if bad:
            raise InputError(job.labels, f"label value(s) {bad[:10]} are not in the {anatomy.name} label table")
        source_labels = Path(job.labels).name
    else:
        seg = segmenter if segmenter is not None else BundleSegmenter(options.model, options.mirror_tta)
        labels, confidence = segment_with_confidence(seg, series.image)
        source_labels = f"model {options.model}" + (" with mirror TTA" if options.mirror_tta else "")
    labels = labels.astype(np.int16)
    if not (labels > 0).any():
        raise InputError(job.labels or job.mese, "segmentation is empty (no muscle found)")
    end("segment")

    begin("fit_t2")
    slice_axis = int(np.argmax(ref3d.spacing_mm)) if len(set(np.round(ref3d.spacing_mm, 3))) > 1 else 2
    mask = dilate_inplane(labels > 0, options.mask_margin_vox, slice_axis)
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
    table = add_confidence(table, confidence, LOW_CONFIDENCE, options.quant)
    table.insert(0, "session_id", job.session or "")
    table.insert(0, "participant_id", job.subject)
    end("quantify")
    png, pages = None, []
    if options.figures:
        begin("figures")
        from alsseg.io.nifti import Image
        from alsseg.report.figures import session_strip
        from alsseg.report.overlay import confidence_from_table, image_overlay_pages

        anat2d, labels2d, maps2d = ras_slices(ref3d, labels, maps)
        png = session_strip(anat2d, labels2d, maps2d, title=f"{job.name} ({source_labels})")
        pages = image_overlay_pages(ref3d, Image(labels, ref3d.affine), title=f"{job.name} ({source_labels})",
                                    confidence=confidence_from_table(table), columns=4, slices_per_page=24, dpi=72)
        end("figures")
    return SessionResult(job, ref3d, labels, source_labels, maps, table, png, times, pages)


def ras_slices(ref3d: Image, labels: np.ndarray, maps: dict) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Middle slice (RAS, through the muscles) of the image, labels and main maps.

    Returns ``(image (X, Y), labels (X, Y), {name: (X, Y)})``.
    """
    from alsseg.io.nifti import Image

    ras_img = ref3d.to_ras()
    ras_lab = Image(labels, ref3d.affine).to_ras().data
    z_has = np.flatnonzero((ras_lab > 0).reshape(-1, ras_lab.shape[2]).any(0))
    z = int(z_has[len(z_has) // 2]) if z_has.size else ras_lab.shape[2] // 2
    m2: dict[str, np.ndarray] = {}
    for k in ("t2_water_ms", "fat_fraction", "b1", "t1_ms"):
        if k in maps:
            m2[k] = Image(maps[k].astype(np.float32), ref3d.affine).to_ras().data[:, :, z]
    return ras_img.data[:, :, z], ras_lab[:, :, z], m2
