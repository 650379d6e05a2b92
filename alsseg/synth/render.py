"""Render a :class:`~alsseg.synth.anatomy.Subject` on a grid: labels, true maps, images.

Partial volume: every voxel is sampled at ``n_sub`` positions across its slice thickness
(thick 2-D slices) and, in-plane, boundaries are drawn with their area fraction; signals are
the fraction-weighted sums of per-tissue signals, so a voxel on a fat/muscle boundary
carries both.

MESE echo trains use the project's EPG engine with its slice profile: muscle through the
relaxometry module's two-component forward model and dictionary
(:func:`alsseg.relax.t2.two_component_signal`, built once per protocol), other tissues through
per-tissue B1 tables of :func:`alsseg.relax.epg.cpmg_echoes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from alsseg.synth.anatomy import (
    FAT_T1_MS, FAT_T2_MS, MUSCLE, MUSCLE_T1_MS, N_TISSUES, TISSUE_NAMES, Subject,
)
from alsseg.synth.cross_section import evaluate
from alsseg.synth.randomise import random_contrast_signal
from alsseg.synth.grid import Grid

CONTRASTS = ("mese_e1", "mese_late", "t1w", "dixon_water", "dixon_fat", "dwi_b0", "random")
#: ``snr="auto"``: this SNR, or one drawn uniformly in RANDOM_SNR_RANGE for the ``random`` contrast
DEFAULT_SNR, RANDOM_SNR_RANGE = 40.0, (8.0, 60.0)


# ---------------------------------------------------------------- tissue volume
@dataclass
class TissueVolume:
    """Everything about a subject on one grid, before any signal is made.

    Attributes:
        grid: the grid.
        fractions: ``(X, Y, Z, N_TISSUES)`` float32 partial-volume fractions.
        label: ``(X, Y, Z)`` int16 label ids (``alsseg.labels``; 0 background).
        t2_water_ms: ``(X, Y, Z)`` float32 water T2 of the muscle tissue (0 outside muscle).
        fat_fraction_muscle: ``(X, Y, Z)`` float32 fat fraction of the muscle tissue.
        b1: ``(X, Y, Z)`` float32 transmit scale.
        bias: ``(X, Y, Z)`` float32 receive-coil sensitivity.
    """

    grid: Grid
    fractions: np.ndarray
    label: np.ndarray
    t2_water_ms: np.ndarray
    fat_fraction_muscle: np.ndarray
    b1: np.ndarray
    bias: np.ndarray

    def tissue_property(self, subject: Subject, name: str) -> np.ndarray:
        """``(N_TISSUES,)`` value of a property (``pd``, ``t2_ms``, ``t1_ms``, ``ff``) per tissue."""
        return np.array([subject.tissues[t][name] if t in subject.tissues else 0.0 for t in TISSUE_NAMES],
                        np.float32)


def _sub_offsets(n_sub: int) -> np.ndarray:
    """Positions across the slice (fractions of the thickness, centred) for partial volume."""
    if n_sub <= 1:
        return np.zeros(1)
    return (np.arange(n_sub) + 0.5) / n_sub - 0.5


def render_tissues(subject: Subject, grid: Grid, *, n_sub: int | None = None) -> TissueVolume:
    """Sample the subject on ``grid``.

    Args:
        subject: from :func:`alsseg.synth.make_subject`.
        grid: the target grid (axis 2 = slice axis).
        n_sub: samples across each slice's thickness (default: one per ~2.5 mm, 1–4).

    Returns:
        :class:`TissueVolume`; the label of a voxel is the muscle at the middle of its slice
        where at least half of the voxel (averaged across the slice) lies inside a muscle outline
        (:func:`alsseg.synth.cross_section.evaluate`: the annotators' convention).
    """
    X, Y, Z = grid.shape
    spacing = grid.spacing_mm
    h = float(min(spacing[0], spacing[1]))
    thick = grid.thickness_mm
    if n_sub is None:
        n_sub = int(np.clip(round(thick / 2.5), 1, 4))
    offs = _sub_offsets(n_sub)
    kstep = thick / spacing[2]
    frac = np.zeros((Z, X * Y, N_TISSUES), np.float32)  # slice-major while filling
    lab = np.zeros((Z, X * Y), np.int16)
    outline = np.zeros((Z, X * Y), np.float32)
    t2 = np.zeros((Z, X * Y), np.float32)
    ff = np.zeros((Z, X * Y), np.float32)
    b1 = np.full((Z, X * Y), subject.b1_mean, np.float32)
    bias = np.ones((Z, X * Y), np.float32)
    centre_i = int(np.argmin(np.abs(offs)))
    wsub = np.float32(1.0 / len(offs))
    for k in range(Z):
        mus_w = np.zeros(X * Y, np.float32)
        fk, t2k, ffk = frac[k], t2[k], ff[k]
        for i, o in enumerate(offs):
            pts = grid.slice_points(k + o * kstep)
            ts = evaluate(subject, pts, voxel_mm=h)
            body = np.flatnonzero(ts.fractions[:, 0] < 1.0)
            fs = ts.fractions[body]
            fk[body] += fs * wsub
            fk[:, 0] += wsub  # air everywhere ...
            fk[body, 0] -= wsub  # ... except where the body is (its air fraction is in fs)
            wm = fs[:, MUSCLE]
            t2k[body] += wm * ts.t2_water_ms[body]
            ffk[body] += wm * ts.fat_fraction[body]
            mus_w[body] += wm
            outline[k] += ts.outline_fraction * wsub
            if i == centre_i:
                lab[k] = ts.label
                b1[k, body] = subject.b1_mean + subject.b1_amplitude * subject.b1_field(pts[body])
                bias[k, body] = np.exp(subject.bias_amplitude * subject.bias_field(pts[body]))
        ok = mus_w > 0
        t2k[ok] /= mus_w[ok]
        ffk[ok] /= mus_w[ok]
    # a labelled voxel lies inside an outline over at least half its slice-averaged volume
    lab[outline < 0.5] = 0
    shp = (X, Y, Z)

    def vol(a):
        return np.ascontiguousarray(np.moveaxis(a, 0, -1) if a.ndim == 2 else np.moveaxis(a, 0, 1)).reshape(
            shp + a.shape[2:])

    return TissueVolume(grid, vol(frac), vol(lab), vol(t2), vol(ff), vol(b1), vol(bias))


def render_label_map(subject: Subject, grid: Grid, *, n_sub: int | None = None):
    """The label map of ``subject`` on ``grid``: an :class:`alsseg.io.Image` of int16 ids.

    Right muscles 1–7, left 11–17 (``alsseg.labels``), sides true in world RAS whatever the
    grid's voxel order.
    """
    tv = render_tissues(subject, grid, n_sub=n_sub)
    return grid.image(tv.label, kind="dseg")


# ---------------------------------------------------------------- truth maps
def true_maps(subject: Subject, tv: TissueVolume) -> dict:
    """Ground-truth parameter maps on the grid (signal-weighted over the voxel's tissues).

    Returns:
        dict of ``(X, Y, Z)`` float32 arrays: ``t2_water_ms`` (water T2), ``fat_fraction``,
        ``t1_ms`` (water T1), ``b1``, ``m0`` (proton density, muscle water = 1), and
        ``muscle_fraction``. Outside the body ``t2_water_ms``/``t1_ms`` are 0.
    """
    pd = tv.tissue_property(subject, "pd")
    t2c = tv.tissue_property(subject, "t2_ms")
    t1c = tv.tissue_property(subject, "t1_ms")
    ffc = tv.tissue_property(subject, "ff")
    f = tv.fractions
    pd[MUSCLE] = 1.0
    ffc[MUSCLE] = 0.0  # replaced by the map
    t2c[MUSCLE] = 0.0
    t1c[MUSCLE] = MUSCLE_T1_MS
    w_pd = f * pd  # proton density weights
    fm = f[..., MUSCLE]
    ff_m = tv.fat_fraction_muscle
    fat = (w_pd * ffc).sum(-1) + fm * ff_m
    m0 = w_pd.sum(-1)
    water_w = w_pd * (1 - ffc)
    water_w[..., MUSCLE] = fm * (1 - ff_m)
    water = water_w.sum(-1)
    t2 = (water_w * t2c).sum(-1) + water_w[..., MUSCLE] * tv.t2_water_ms
    t1 = (water_w * t1c).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        t2 = np.where(water > 1e-6, t2 / water, 0.0)
        t1 = np.where(water > 1e-6, t1 / water, 0.0)
        ffm = np.where(m0 > 1e-6, fat / m0, 0.0)
    return {"t2_water_ms": t2.astype(np.float32), "fat_fraction": ffm.astype(np.float32),
            "t1_ms": t1.astype(np.float32), "b1": tv.b1.astype(np.float32), "m0": m0.astype(np.float32),
            "muscle_fraction": fm.astype(np.float32)}


# ---------------------------------------------------------------- MESE
@dataclass(frozen=True)
class MeseProtocol:
    """A 2-D multi-slice CPMG (MESE) acquisition.

    Attributes:
        n_echoes: number of echoes.
        echo_spacing_ms: echo spacing (first TE = ESP), ms.
        tr_ms: repetition time, ms.
        refocus_deg, excite_deg: nominal flip angles, degrees.
        field_strength_t: B0, T.
        t1_saturation: weight each pool by ``1 − exp(−(TR − TE_last)/T1)`` (incomplete
            recovery), exactly as :class:`alsseg.relax.acquisition.MeseAcquisition` does when
            given TR, so fitting the written data with its sidecar TR returns the truth.

    The slice profile is the relaxometry module's default (sinc pulses tuned on the real 3 T
    scan, :func:`alsseg.relax.acquisition.default_profile`).
    """

    n_echoes: int = 17
    echo_spacing_ms: float = 10.0
    tr_ms: float = 4000.0
    refocus_deg: float = 180.0
    excite_deg: float = 90.0
    field_strength_t: float = 3.0
    t1_saturation: bool = True

    @property
    def echo_times_ms(self) -> np.ndarray:
        """``(n_echoes,)`` echo times, ms."""
        return self.echo_spacing_ms * np.arange(1, self.n_echoes + 1)

    def acquisition(self):
        """The matching :class:`alsseg.relax.acquisition.MeseAcquisition` (the fitting model)."""
        return _acquisition(self)

    def echoes(self, t2_ms, t1_ms, b1) -> np.ndarray:
        """Exact EPG echo train ``(B, n_echoes)`` of one pool for unit M0, recovery included."""
        from alsseg.relax.epg import cpmg_echoes

        acq = self.acquisition()
        sig = cpmg_echoes(t2_ms, t1_ms, b1, self.echo_spacing_ms, self.n_echoes, refocus_deg=self.refocus_deg,
                          excite_deg=self.excite_deg, profile=acq.profile)
        t1 = np.broadcast_to(np.asarray(t1_ms, float), np.shape(np.atleast_1d(t2_ms)))
        rec = np.array([acq.recovery(float(v)) for v in np.atleast_1d(t1).ravel()]).reshape(-1, 1)
        return sig * rec


@lru_cache(maxsize=8)
def _acquisition(protocol: MeseProtocol):
    from alsseg.relax.acquisition import MeseAcquisition

    return MeseAcquisition(echo_spacing_ms=protocol.echo_spacing_ms, n_echoes=protocol.n_echoes,
                           tr_ms=protocol.tr_ms if protocol.t1_saturation else None,
                           refocus_deg=protocol.refocus_deg, excite_deg=protocol.excite_deg,
                           fat_t2_ms=FAT_T2_MS, water_t1_ms=MUSCLE_T1_MS, fat_t1_ms=FAT_T1_MS,
                           field_strength_t=protocol.field_strength_t)


#: water T2 range of the muscle dictionary (ms) and B1 range of all tables
DICT_T2_MS = (8.0, 130.0)
LUT_B1 = (0.4, 1.5, 45)


@lru_cache(maxsize=8)
def mese_dictionary(protocol: MeseProtocol):
    """The relaxometry module's :class:`~alsseg.relax.dictionary.EpgDictionary` for muscle
    (two-component water + fat signals), built once per protocol."""
    from alsseg.relax.dictionary import EpgDictionary

    return EpgDictionary(protocol.acquisition(), DICT_T2_MS, (LUT_B1[0], LUT_B1[1]))


def muscle_echoes(protocol: MeseProtocol, t2_water_ms, fat_fraction, b1) -> np.ndarray:
    """Two-component EPG trains ``(N, n_echoes)`` of muscle (unit M0) through the project's
    forward model :func:`alsseg.relax.t2.two_component_signal`."""
    from alsseg.relax.t2 import two_component_signal

    t2 = np.clip(np.asarray(t2_water_ms, float), DICT_T2_MS[0], DICT_T2_MS[1])
    b1 = np.clip(np.asarray(b1, float), LUT_B1[0], LUT_B1[1])
    ff = np.clip(np.asarray(fat_fraction, float), 0.0, 1.0)
    return two_component_signal(protocol.acquisition(), t2, ff, b1, 1.0,
                                dictionary=mese_dictionary(protocol)).astype(np.float32)


def _b1_lut(protocol: MeseProtocol, t2_ms: float, t1_ms: float):
    bn = np.linspace(*LUT_B1)
    return bn, protocol.echoes(np.full(bn.size, t2_ms), t1_ms, bn).astype(np.float32)


def _b1_eval(table, b1):
    bn, tab = table
    y = (np.clip(b1, bn[0], bn[-1]) - bn[0]) / (bn[1] - bn[0])
    j = np.clip(np.floor(y).astype(int), 0, bn.size - 2)
    fy = (y - j).astype(np.float32)[:, None]
    return tab[j] * (1 - fy) + tab[j + 1] * fy


@lru_cache(maxsize=64)
def _b1_lut_cached(protocol: MeseProtocol, t2_ms: float, t1_ms: float):
    return _b1_lut(protocol, t2_ms, t1_ms)


def mese_signal(subject: Subject, tv: TissueVolume, protocol: MeseProtocol = MeseProtocol(), *,
                echoes: slice | None = None, bias: bool = True) -> np.ndarray:
    """Noiseless MESE magnitudes ``(X, Y, Z, n_echoes)`` float32 (muscle water M0 = 1).

    S = bias · Σ_tissues f · PD · [(1 − FF)·EPG(T2w, T1w, B1) + FF·EPG(T2fat, T1fat, B1)],
    muscle through :func:`muscle_echoes` (the relaxometry forward model), other tissues through
    per-tissue B1 tables of :func:`alsseg.relax.epg.cpmg_echoes`.
    """
    X, Y, Z = tv.grid.shape
    E = protocol.n_echoes
    sel_e = echoes if echoes is not None else slice(0, E)
    n_out = len(range(*sel_e.indices(E)))
    out = np.zeros((X * Y * Z, n_out), np.float32)
    f = tv.fractions.reshape(-1, N_TISSUES)
    body = np.flatnonzero(f[:, 0] < 0.999)
    if body.size == 0:
        return out.reshape(X, Y, Z, n_out)
    fb = f[body]
    b1 = tv.b1.reshape(-1)[body]
    fat_sig = _b1_eval(_b1_lut_cached(protocol, FAT_T2_MS, FAT_T1_MS), b1)[:, sel_e]
    acc = np.zeros((body.size, n_out), np.float32)
    for c, name in enumerate(TISSUE_NAMES):
        if c == 0:
            continue
        w = fb[:, c]
        on = np.flatnonzero(w > 0)
        if on.size == 0:
            continue
        if c == MUSCLE:
            sig = muscle_echoes(protocol, tv.t2_water_ms.reshape(-1)[body][on],
                                tv.fat_fraction_muscle.reshape(-1)[body][on], b1[on])[:, sel_e]
            acc[on] += w[on][:, None] * sig
            continue
        t = subject.tissues[name]
        pd, ffv = t["pd"], t["ff"]
        wat = _b1_eval(_b1_lut_cached(protocol, float(t["t2_ms"]), float(t["t1_ms"])), b1[on])[:, sel_e]
        if "fat_t2_ms" in t and ffv > 0:
            fat_t = _b1_eval(_b1_lut_cached(protocol, float(t["fat_t2_ms"]), FAT_T1_MS), b1[on])[:, sel_e]
        else:
            fat_t = fat_sig[on]
        acc[on] += (w[on] * pd)[:, None] * ((1 - ffv) * wat + ffv * fat_t)
    if bias:
        acc *= tv.bias.reshape(-1)[body][:, None]
    out[body] = acc
    return out.reshape(X, Y, Z, n_out)


def add_rician_noise(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of the signal plus complex Gaussian noise of standard deviation ``sigma``."""
    s = np.float32(sigma)
    re = rng.standard_normal(signal.shape, dtype=np.float32)
    re *= s
    re += signal
    im = rng.standard_normal(signal.shape, dtype=np.float32)
    im *= s
    return np.hypot(re, im, out=re)


def noise_sigma(reference_image: np.ndarray, label: np.ndarray, snr: float) -> float:
    """Noise σ giving ``snr`` = mean muscle signal of ``reference_image`` / σ."""
    m = label > 0
    ref = float(reference_image[m].mean()) if m.any() else float(np.percentile(reference_image, 99))
    return ref / max(snr, 1e-6)


# ---------------------------------------------------------------- T1 series and anatomical images
@dataclass(frozen=True)
class IrProtocol:
    """Inversion recovery (magnitude) T1 series.

    Attributes:
        inversion_times_ms: TIs, ms.
        tr_ms: repetition time, ms.
        echo_time_ms: echo time of the readout, ms.
        inversion_efficiency: fraction of Mz inverted (1 = perfect, i.e. -Mz).
    """

    inversion_times_ms: tuple = (50.0, 150.0, 300.0, 600.0, 1000.0, 1600.0, 2500.0, 4000.0)
    tr_ms: float = 6000.0
    echo_time_ms: float = 10.0
    inversion_efficiency: float = 0.98


def _mix(subject: Subject, tv: TissueVolume, water_fn, fat_value_fn, *, bias=True) -> np.ndarray:
    """Generic two-pool signal: ``Σ f·PD·[(1-FF)·water_fn(T2, T1) + FF·fat]``."""
    f = tv.fractions
    out = np.zeros(tv.grid.shape + np.shape(fat_value_fn())[-1:] if np.ndim(fat_value_fn()) else tv.grid.shape,
                   np.float32)
    fat = np.asarray(fat_value_fn(), np.float32)
    for c, name in enumerate(TISSUE_NAMES):
        if c == 0:
            continue
        w = f[..., c]
        if not w.any():
            continue
        if c == MUSCLE:
            pd, ffv = 1.0, tv.fat_fraction_muscle
            wat = water_fn(np.maximum(tv.t2_water_ms, 1.0), MUSCLE_T1_MS)
        else:
            t = subject.tissues[name]
            pd, ffv = t["pd"], t["ff"]
            wat = water_fn(np.float32(t["t2_ms"]), np.float32(t["t1_ms"]))
        ffv = np.asarray(ffv, np.float32)
        if out.ndim == 4:
            term = (w * pd)[..., None] * ((1 - ffv)[..., None] * np.broadcast_to(wat, out.shape) if np.ndim(ffv) else
                                          (1 - ffv) * np.broadcast_to(wat, out.shape))
            term = term + (w * pd * ffv)[..., None] * fat
        else:
            term = w * pd * ((1 - ffv) * wat + ffv * fat)
        out += term.astype(np.float32)
    if bias:
        out *= tv.bias if out.ndim == 3 else tv.bias[..., None]
    return out


def ir_signal(subject: Subject, tv: TissueVolume, protocol: IrProtocol = IrProtocol()) -> np.ndarray:
    """Magnitude inversion-recovery series ``(X, Y, Z, n_TI)`` float32.

    Per pool: ``|1 − (1+κ)·exp(−TI/T1) + κ·exp(−TR/T1)| · exp(−TE/T2)`` with inversion
    efficiency κ; the pools (water, fat) add as complex (signed) signals before the magnitude.
    """
    ti = np.asarray(protocol.inversion_times_ms, np.float32)
    k = protocol.inversion_efficiency

    def pool(t2, t1):
        t1 = np.asarray(t1, np.float32)[..., None]
        t2 = np.asarray(t2, np.float32)[..., None]
        return (1 - (1 + k) * np.exp(-ti / t1) + k * np.exp(-protocol.tr_ms / t1)) * np.exp(-protocol.echo_time_ms / t2)

    fat = pool(FAT_T2_MS, FAT_T1_MS)
    signed = _mix(subject, tv, pool, lambda: fat)
    return np.abs(signed).astype(np.float32)


def anatomical_signal(subject: Subject, tv: TissueVolume, contrast: str) -> np.ndarray:
    """Noiseless anatomical images ``(X, Y, Z)``: ``t1w`` (SE TR 600 / TE 12), ``dixon_water``,
    ``dixon_fat``, ``dwi_b0`` (SE-EPI TE 60 ms with fat suppression)."""
    if contrast == "t1w":
        tr, te = 600.0, 12.0

        def water(t2, t1):
            return (1 - np.exp(-tr / t1)) * np.exp(-te / t2)

        fat = (1 - np.exp(-tr / FAT_T1_MS)) * np.exp(-te / FAT_T2_MS)
        return _mix(subject, tv, water, lambda: np.float32(fat))
    if contrast == "dixon_water":
        return _mix(subject, tv, lambda t2, t1: np.exp(-2.0 / np.maximum(t2, 1.0)) * (1 - np.exp(-8.0 / t1)) * 40,
                    lambda: np.float32(0.0))
    if contrast == "dixon_fat":
        return _mix(subject, tv, lambda t2, t1: 0.0 * t2, lambda: np.float32((1 - np.exp(-8.0 / FAT_T1_MS)) * 40 * 0.6))
    if contrast == "dwi_b0":
        te = 60.0
        return _mix(subject, tv, lambda t2, t1: np.exp(-te / t2) * (1 - np.exp(-3000.0 / t1)),
                    lambda: np.float32(0.05 * np.exp(-te / FAT_T2_MS)))
    raise ValueError(f"unknown anatomical contrast {contrast!r}")


def render_contrast(subject: Subject, grid: Grid, contrast: str = "mese_e1",
                    rng: np.random.Generator | None = None, *, snr: float | str | None = "auto",
                    protocol: MeseProtocol = MeseProtocol(), tissues: TissueVolume | None = None,
                    n_sub: int | None = None):
    """One 3-D image of ``subject`` on ``grid``.

    Args:
        subject: from :func:`alsseg.synth.make_subject`.
        grid: target grid.
        contrast: one of :data:`CONTRASTS`: ``mese_e1`` (first echo), ``mese_late``
            (echo 8 of ``protocol``), ``t1w``, ``dixon_water``, ``dixon_fat``, ``dwi_b0``,
            ``random`` (SynthSeg-style randomised intensities, bias, blur, gamma). No
            acquisition artefacts: :func:`alsseg.synth.artefacts.render_case` adds them.
        rng: random generator for noise (and the random contrast); default seeded from the subject.
        snr: mean muscle signal / noise σ (Rician); ``None`` = noiseless; ``"auto"`` (default)
            = 40, or drawn in [8, 60] in ``random`` mode.
        protocol: MESE protocol for the ``mese_*`` contrasts.
        tissues: a :class:`TissueVolume` already rendered on ``grid`` (saves time).
        n_sub: partial-volume samples across the slice.

    Returns:
        :class:`alsseg.io.Image` float32 ``(X, Y, Z)`` with ``meta['contrast']``.
    """
    rng = rng if rng is not None else np.random.default_rng([subject.seed, 7])
    tv = tissues if tissues is not None else render_tissues(subject, grid, n_sub=n_sub)
    if contrast == "mese_e1":
        img = mese_signal(subject, tv, protocol, echoes=slice(0, 1))[..., 0]
    elif contrast == "mese_late":
        e = min(7, protocol.n_echoes - 1)
        img = mese_signal(subject, tv, protocol, echoes=slice(e, e + 1))[..., 0]
    elif contrast == "random":
        img = random_contrast_signal(subject, tv, rng)
        if snr == "auto":
            snr = float(rng.uniform(*RANDOM_SNR_RANGE))
    elif contrast in ("t1w", "dixon_water", "dixon_fat", "dwi_b0"):
        img = anatomical_signal(subject, tv, contrast)
    else:
        raise ValueError(f"unknown contrast {contrast!r}; choose from {', '.join(CONTRASTS)}")
    if snr == "auto":
        snr = DEFAULT_SNR
    if snr is not None:
        sigma = noise_sigma(img, tv.label, float(snr))
        img = add_rician_noise(img, sigma, rng)
    return grid.image(img.astype(np.float32), contrast=contrast)
