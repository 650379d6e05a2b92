"""Per-muscle quantification: (maps, label map, voxel spacing) → tidy table.

One row per muscle and side (and per muscle group: ``anterior`` = TA + EDL, ``all`` = every
muscle, from the anatomy's ``groups``), columns:

``label, side, muscle, kind`` (``muscle``/``group``), ``n_voxels``, ``volume_ml`` (every labelled
voxel, never eroded), ``n_voxels_core`` (after erosion), ``n_voxels_t2`` (used for water T2),
``t2_water_ms`` (mean), ``t2_water_ms_median``, ``t2_water_ms_sd``, ``t2_water_ms_iqr``,
``fat_fraction`` (mean), ``fat_fraction_median``, ``b1`` (median), ``t1_ms`` (mean),
``t1_ms_median``, ``t2_mono_ms`` (mono-exponential T2 of the core voxels, the biased
literature baseline), ``good_fit_fraction``, ``fit_fail_fraction`` (share of core voxels whose
EPG fit failed or sat at a bound: no finite water T2, or any bit of the ``fit_flag`` map — invalid
data, T2 at the edge of its range, B1 at the edge of its range, not converged; above
:data:`FIT_FAIL_QC_THRESHOLD` the report lists a QC finding), ``cut_fov`` (muscle present on the first or last
slice: its volume is a lower bound), ``cut_inplane`` (touches the in-plane edge of the image),
``n_slices`` (slices holding the muscle). When the labels come from a model,
:func:`add_confidence` appends ``seg_confidence`` (per-muscle confidence in [0, 1] of the
segmentation, see ``alsseg.seg.confidence``; a group gets its lowest member's) and
``seg_confidence_low`` (below the documented threshold: check that mask by eye).

Defaults (:class:`QuantOptions`) and why:

* ``erode_voxels=1`` — the outermost in-plane voxel ring of each muscle is left out of the
  relaxometry means (partial volume with fascia and intermuscular fat, and the segmentation's
  uncertain boundary). Erosion is in-plane (2-D per slice) because slices are 5–10 mm thick:
  a 3-D erosion would remove whole slices. A muscle too thin to survive erosion on a slice
  keeps its uneroded voxels there (so small muscles are never emptied).
* ``max_fat_fraction=0.7`` — voxels with fat fraction above 70 % are left out of the *water T2*
  statistics only: with < 30 % water the water T2 is poorly determined. FF, B1 and T1 use every
  core voxel.
* a voxel counts in the water-T2 statistics only if its fit succeeded (``fit_ok`` map, when
  given) and its T2 is finite; ``good_fit_fraction`` = share of core voxels with a good fit.

Volumes use the voxel volume from the spacing (mm³ → mL = /1000); no partial-volume model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alsseg.labels import Anatomy, load_anatomy

#: map names understood by :func:`quantify` (other names are ignored).
MAP_NAMES = ("t2_water_ms", "fat_fraction", "b1", "t1_ms", "t2_mono_ms", "fit_ok", "fit_flag")

#: a muscle whose ``fit_fail_fraction`` exceeds this gets a QC finding in the report: beyond one
#: voxel in ten the muscle's median water T2 rests on a selected, possibly biased, subset.
FIT_FAIL_QC_THRESHOLD = 0.10

COLUMNS = (
    "label", "side", "muscle", "kind", "n_voxels", "volume_ml", "n_voxels_core", "n_voxels_t2",
    "t2_water_ms", "t2_water_ms_median", "t2_water_ms_sd", "t2_water_ms_iqr",
    "fat_fraction", "fat_fraction_median", "b1", "t1_ms", "t1_ms_median", "t2_mono_ms",
    "good_fit_fraction", "fit_fail_fraction", "cut_fov", "cut_inplane", "n_slices",
)


@dataclass(frozen=True)
class QuantOptions:
    """Options of :func:`quantify` (see the module docstring for the defaults' reasons).

    Attributes
    ----------
    erode_voxels : in-plane erosion (voxels) of each muscle before the relaxometry statistics;
        0 disables it.
    max_fat_fraction : voxels with FF above this are excluded from water T2; ``None`` disables.
    slice_axis : through-plane voxel axis; ``None`` = the axis with the largest spacing (axis 2
        on ties).
    anatomy : anatomy name or JSON path (label ids, groups).
    """

    erode_voxels: int = 1
    max_fat_fraction: float | None = 0.7
    slice_axis: int | None = None
    anatomy: str = "lowerleg"


def _slice_axis(spacing_mm, requested: int | None) -> int:
    if requested is not None:
        return int(requested)
    sp = np.asarray(spacing_mm, float)
    big = np.flatnonzero(np.isclose(sp, sp.max()))
    return 2 if 2 in big else int(big[-1])


def _erode_inplane(mask: np.ndarray, n: int, axis: int) -> np.ndarray:
    """2-D erosion per slice (cross structuring element, ``n`` iterations); slices whose mask
    would vanish keep their original voxels."""
    if n <= 0:
        return mask
    from scipy import ndimage

    m = np.moveaxis(mask, axis, 0)
    st = np.zeros((1, 3, 3), bool)
    st[0, 1, :] = st[0, :, 1] = True
    er = ndimage.binary_erosion(m, structure=st, iterations=n, border_value=1)
    empty = ~er.reshape(er.shape[0], -1).any(1) & m.reshape(m.shape[0], -1).any(1)
    er[empty] = m[empty]
    return np.moveaxis(er, 0, axis)


def fit_fail_fraction(t2_water_ms: np.ndarray | None, fit_flag: np.ndarray | None) -> float:
    """Share of voxels ``(n,)`` whose fit failed or sat at a bound: water T2 not finite, or
    ``fit_flag`` (uint8 bits of :mod:`alsseg.relax.t2`) non-zero; NaN for no voxel or no maps."""
    if t2_water_ms is None and fit_flag is None:
        return math.nan
    ref = t2_water_ms if t2_water_ms is not None else fit_flag
    if ref is None:
        return math.nan
    n = ref.size
    if n == 0:
        return math.nan
    bad = np.zeros(n, bool)
    if t2_water_ms is not None:
        bad |= ~np.isfinite(t2_water_ms)
    if fit_flag is not None:
        bad |= np.asarray(fit_flag) != 0
    return float(bad.mean())


def _stats_row(values: dict[str, np.ndarray], n_core: int, fit_ok: np.ndarray | None,
               ff: np.ndarray | None, options: QuantOptions) -> dict:
    row: dict = {"n_voxels_core": n_core}
    t2 = values.get("t2_water_ms")
    row["fit_fail_fraction"] = fit_fail_fraction(t2, values.get("fit_flag"))
    if t2 is not None:
        good = np.isfinite(t2)
        if fit_ok is not None:
            good &= fit_ok
        row["good_fit_fraction"] = float(good.mean()) if n_core else math.nan
        use = good.copy()
        if ff is not None and options.max_fat_fraction is not None:
            use &= ~(ff > options.max_fat_fraction)
        v = t2[use]
        row["n_voxels_t2"] = int(v.size)
        if v.size:
            q1, med, q3 = np.percentile(v, [25, 50, 75])
            row.update(t2_water_ms=float(v.mean()), t2_water_ms_median=float(med),
                       t2_water_ms_sd=float(v.std(ddof=1)) if v.size > 1 else math.nan,
                       t2_water_ms_iqr=float(q3 - q1))
    elif fit_ok is not None:
        row["good_fit_fraction"] = float(fit_ok.mean()) if n_core else math.nan
    mono = values.get("t2_mono_ms")
    if mono is not None:
        mono = mono[np.isfinite(mono)]
        if mono.size:
            row["t2_mono_ms"] = float(mono.mean())
    for name, mean_col, med_col in (("fat_fraction", "fat_fraction", "fat_fraction_median"),
                                    ("t1_ms", "t1_ms", "t1_ms_median"), ("b1", None, "b1")):
        arr = values.get(name)
        if arr is None:
            continue
        if fit_ok is not None and name != "t1_ms":
            arr = arr[fit_ok]
        arr = arr[np.isfinite(arr)]
        if arr.size:
            if mean_col:
                row[mean_col] = float(arr.mean())
            row[med_col] = float(np.median(arr))
    return row


def quantify(maps: dict[str, np.ndarray], labels: np.ndarray, spacing_mm,
             options: QuantOptions = QuantOptions()) -> pd.DataFrame:
    """Per-muscle, per-side statistics of the parameter maps inside a label map.

    Parameters
    ----------
    maps : ``{name: (X, Y, Z) ndarray}`` on the label map's grid; names from
        :data:`MAP_NAMES`: ``t2_water_ms`` (ms), ``fat_fraction`` (0–1), ``b1`` (scale),
        ``t1_ms`` (ms), ``t2_mono_ms`` (ms), ``fit_ok`` (bool, the EPG voxel fit succeeded),
        ``fit_flag`` (uint8 flag bits of the EPG fit).
        Any may be missing
        (its columns are then NaN); NaN voxels count as failed fits.
    labels : (X, Y, Z) integer label map (ids of the anatomy; 0 background).
    spacing_mm : (3,) voxel size in mm.
    options : :class:`QuantOptions`.

    Returns
    -------
    DataFrame with the columns :data:`COLUMNS`, one row per label present plus group rows
    (per side) for the anatomy's groups. Muscles absent from the label map are left out.

    Raises
    ------
    ValueError
        When a map's shape differs from the label map's, or the label map holds ids that are
        not in the anatomy (callers turn this into an :class:`~alsseg.io.InputError` naming
        the file).
    """
    anatomy: Anatomy = load_anatomy(options.anatomy)
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"label map is {labels.ndim}-D, expected 3-D")
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.allclose(labels, np.round(labels)):
            raise ValueError("label map holds non-integer values")
        labels = np.round(labels).astype(np.int32)
    for name, arr in maps.items():
        if arr is not None and np.shape(arr)[:3] != labels.shape:
            raise ValueError(f"map {name!r} has shape {np.shape(arr)}, label map {labels.shape}")
    present = np.unique(labels)
    unknown = sorted(set(present.tolist()) - anatomy.valid_ids())
    if unknown:
        raise ValueError(f"label map holds ids {unknown} that are not in anatomy {anatomy.name!r}")
    voxel_ml = float(np.prod(np.asarray(spacing_mm, float))) / 1000.0
    axis = _slice_axis(spacing_mm, options.slice_axis)
    n_sl = labels.shape[axis]
    inplane_axes = [a for a in range(3) if a != axis]

    maps = {k: np.asarray(v) for k, v in maps.items() if v is not None and k in MAP_NAMES}
    fit_ok_map = maps.pop("fit_ok", None)
    if fit_ok_map is not None:
        fit_ok_map = fit_ok_map.astype(bool)

    # per label: masks (full and core); boolean index arrays are small relative to maps
    masks = {}
    for lab in anatomy.labels:
        if lab.id not in present:
            continue
        full = labels == lab.id
        core = _erode_inplane(full, options.erode_voxels, axis)
        masks[lab.id] = (full, core)

    def row_for(full: np.ndarray, core: np.ndarray) -> dict:
        n = int(full.sum())
        idx_sl = np.flatnonzero(np.moveaxis(full, axis, 0).reshape(n_sl, -1).any(1))
        edge = False
        for a in inplane_axes:
            f = np.moveaxis(full, a, 0)
            edge |= bool(f[0].any() or f[-1].any())
        row = {"n_voxels": n, "volume_ml": n * voxel_ml,
               "cut_fov": bool(idx_sl.size and (idx_sl[0] == 0 or idx_sl[-1] == n_sl - 1)),
               "cut_inplane": edge, "n_slices": int(idx_sl.size)}
        vals = {k: v[core] for k, v in maps.items()}
        ok = fit_ok_map[core] if fit_ok_map is not None else None
        row.update(_stats_row(vals, int(core.sum()), ok, vals.get("fat_fraction"), options))
        return row

    rows = []
    for lab in anatomy.labels:
        if lab.id in masks:
            rows.append({"label": lab.id, "side": lab.side, "muscle": lab.abbrev, "kind": "muscle",
                         **row_for(*masks[lab.id])})
    for side in ("R", "L"):
        for gname, members in anatomy.groups.items():
            ids = [anatomy.label_id(a, side) for a in members]
            ids = [i for i in ids if i in masks]
            if not ids:
                continue
            full = np.logical_or.reduce([masks[i][0] for i in ids])
            core = np.logical_or.reduce([masks[i][1] for i in ids])
            rows.append({"label": -1, "side": side, "muscle": gname, "kind": "group",
                         **row_for(full, core)})
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    for c in ("n_voxels_t2", "n_voxels_core"):
        df[c] = df[c].fillna(0).astype(int)
    df["label"] = df["label"].astype(int)
    return df


def quantify_images(maps: dict, labels, options: QuantOptions = QuantOptions()) -> pd.DataFrame:
    """:func:`quantify` on :class:`alsseg.io.Image` objects (same grid required).

    Parameters
    ----------
    maps : ``{name: Image}``; each must share the label map's grid.
    labels : label-map :class:`~alsseg.io.Image`.

    Raises
    ------
    alsseg.io.InputError
        A map on another grid, or a label map with unknown ids (naming the file).
    """
    from alsseg.io import InputError, require_same_grid

    arrays = {}
    for name, img in maps.items():
        if img is None:
            continue
        require_same_grid(labels, img)
        arrays[name] = img.data
    try:
        return quantify(arrays, labels.data, labels.spacing_mm, options)
    except ValueError as exc:
        raise InputError(labels.path, str(exc)) from None


#: columns :func:`add_confidence` appends.
CONFIDENCE_COLUMNS = ("seg_confidence", "seg_confidence_low")


def add_confidence(table: pd.DataFrame, confidence: dict[int, float] | None, threshold: float,
                   options: QuantOptions = QuantOptions()) -> pd.DataFrame:
    """The table with :data:`CONFIDENCE_COLUMNS` appended (a copy).

    Parameters
    ----------
    table : a :func:`quantify` table.
    confidence : ``{label id: confidence in [0, 1]}`` of the segmentation; ``None`` (labels not
        from a model) or a missing id gives NaN and an unknown flag (``pd.NA``).
    threshold : ``seg_confidence_low`` is ``seg_confidence < threshold``.

    Group rows get the lowest confidence of their members present on that side.
    """
    anatomy = load_anatomy(options.anatomy)
    confidence = confidence or {}
    values = []
    for _, r in table.iterrows():
        if r["kind"] == "group":
            ids = [anatomy.label_id(a, r["side"]) for a in anatomy.groups.get(r["muscle"], ())]
            vals = [confidence[i] for i in ids if i in confidence]
            values.append(min(vals) if vals else math.nan)
        else:
            values.append(float(confidence.get(int(r["label"]), math.nan)))
    out = table.copy()
    out["seg_confidence"] = values
    out["seg_confidence_low"] = pd.array([pd.NA if math.isnan(v) else bool(v < threshold) for v in values],
                                         dtype="boolean")
    return out
