"""One synthetic scanning session: every image of a protocol plus its ground truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alsseg.synth.anatomy import Subject
from alsseg.synth.grid import Grid
from alsseg.synth.render import (
    IrProtocol, MeseProtocol, TissueVolume, add_rician_noise, anatomical_signal, ir_signal, mese_signal,
    noise_sigma, render_tissues, true_maps,
)

#: stored intensity of muscle water at echo 1 (scanner-like integer scaling)
SCALE_MUSCLE = 1000.0


@dataclass
class Session:
    """Images and truth of one session on one grid.

    Attributes:
        grid: the acquisition grid (MESE, IR and T1w share it).
        mese: ``(X, Y, Z, n_echoes)`` float32 magnitudes (scanner-like scale, muscle ≈ 1000).
        ir: ``(X, Y, Z, n_TI)`` float32 IR magnitudes.
        t1w: ``(X, Y, Z)`` float32.
        label: ``(X, Y, Z)`` int16 label ids.
        maps: true maps (see :func:`alsseg.synth.render.true_maps`).
        tissues: the :class:`TissueVolume` behind them.
        noise_sigma: σ of the MESE noise (same units as ``mese``).
    """

    grid: Grid
    mese: np.ndarray
    ir: np.ndarray
    t1w: np.ndarray
    label: np.ndarray
    maps: dict
    tissues: TissueVolume
    noise_sigma: float

    def muscle_table(self) -> list[dict]:
        """True per-muscle values, one dict per label of the anatomy.

        Keys: ``label, side, muscle, volume_ml`` (``n_voxels`` × voxel volume of the grid),
        ``t2_water_ms, fat_fraction`` (means over the label's voxels of the *muscle tissue's*
        water T2 and fat fraction: what the muscle is, free of partial volume with fat or
        fascia), ``t1_ms`` (apparent T1 of the voxels, what a perfect IR fit returns — the
        quantity alsseg measures; see :func:`apparent_t1_map`; water T1 where the session has
        no IR series), ``t1_water_ms`` (the muscle water T1), ``t2_water_voxel_ms, fat_fraction_voxel``
        (means of the voxel-level true maps, partial volume included: what a perfect voxel
        fit returns) and ``n_voxels``. Absent muscles get 0 mL and NaN.
        """
        from alsseg.labels import load_anatomy

        anatomy = load_anatomy()
        rows = []
        vv = self.grid.voxel_volume_ml
        tv = self.tissues
        for lab in anatomy.labels:
            m = self.label == lab.id
            n = int(m.sum())
            row = {"label": lab.id, "side": lab.side, "muscle": lab.abbrev, "volume_ml": n * vv}
            if n == 0:
                row.update(t2_water_ms=float("nan"), fat_fraction=float("nan"), t1_ms=float("nan"), t1_water_ms=float("nan"),
                           t2_water_voxel_ms=float("nan"), fat_fraction_voxel=float("nan"))
            else:
                row.update(t2_water_ms=float(tv.t2_water_ms[m].mean()),
                           fat_fraction=float(tv.fat_fraction_muscle[m].mean()),
                           t1_ms=float(np.nanmean(self.maps.get("t1_apparent_ms", self.maps["t1_ms"])[m])),
                           t1_water_ms=float(self.maps["t1_ms"][m].mean()),
                           t2_water_voxel_ms=float(self.maps["t2_water_ms"][m].mean()),
                           fat_fraction_voxel=float(self.maps["fat_fraction"][m].mean()))
            row["n_voxels"] = n
            rows.append(row)
        return rows


def apparent_t1_map(ir_noiseless: np.ndarray, label: np.ndarray, protocol: IrProtocol,
                    rng: np.random.Generator, voxels_per_label: int = 2000) -> np.ndarray:
    """True *apparent* T1 (ms): what a perfect mono-exponential IR fit returns in a voxel.

    A muscle voxel holds water (T1 1400 ms) and fat (T1 365 ms, long T2), so the T1 of a
    magnitude IR fit — the quantity alsseg (and Bryan et al.) report — falls as fat rises
    (about −25 ms per 1 % fat with the default protocol). It is obtained by fitting, with
    :class:`alsseg.relax.InversionRecoveryT1Model`, the noiseless IR signal of up to
    ``voxels_per_label`` random voxels of each label (the mean over a label is then exact to
    ~1 ms at a fraction of the cost of fitting every voxel).

    Args:
        ir_noiseless: ``(X, Y, Z, n_TI)`` noiseless IR magnitudes.
        label: ``(X, Y, Z)`` label ids.
        protocol: the IR protocol.

    Returns:
        ``(X, Y, Z)`` float32 map, NaN outside the fitted voxels.
    """
    from alsseg.relax import InversionRecoveryT1Model

    out = np.full(label.shape, np.nan, np.float32)
    picks = []
    for lab in np.unique(label[label > 0]):
        idx = np.flatnonzero(label == lab)
        if idx.size > voxels_per_label:
            idx = rng.choice(idx, voxels_per_label, replace=False)
        picks.append(idx)
    if not picks:
        return out
    idx = np.concatenate(picks)
    model = InversionRecoveryT1Model(np.asarray(protocol.inversion_times_ms, float), tr_ms=protocol.tr_ms)
    fit = model.fit(ir_noiseless.reshape(-1, ir_noiseless.shape[-1])[idx])
    out.reshape(-1)[idx] = np.asarray(fit.t1_ms, np.float32)
    return out


def render_session(subject: Subject, grid: Grid, *, mese: MeseProtocol = MeseProtocol(),
                   ir: IrProtocol | None = IrProtocol(), snr: float | None = 60.0,
                   rng: np.random.Generator | None = None, n_sub: int | None = None,
                   psf_sigma_vox: float = 0.55) -> Session:
    """Render a whole session: MESE, IR T1 series, T1-weighted image, labels and truth.

    Args:
        subject: the subject at this visit.
        grid: acquisition grid (shared by all series).
        mese: MESE protocol.
        ir: IR protocol (``None``: no T1 series, ``ir`` is an empty array).
        snr: mean muscle signal at echo 1 / noise σ (Rician, same σ for all echoes and for the
            other series relative to their own muscle signal); ``None`` = noiseless.
        rng: noise generator (default seeded from the subject).
        n_sub: partial-volume samples across the slice.
        psf_sigma_vox: in-plane Gaussian point-spread function (σ in voxels) applied to the
            noiseless images, like the k-space filtering and finite resolution of a scanner
            (0 = none; the truth maps are not blurred).
    """
    rng = rng if rng is not None else np.random.default_rng([subject.seed, 11])
    tv = render_tissues(subject, grid, n_sub=n_sub)
    maps = true_maps(subject, tv)
    echoes = mese_signal(subject, tv, mese) * np.float32(SCALE_MUSCLE)
    irs = ir_signal(subject, tv, ir) * np.float32(SCALE_MUSCLE) if ir is not None else np.zeros(grid.shape + (0,), np.float32)
    if ir is not None:
        maps["t1_apparent_ms"] = apparent_t1_map(irs, tv.label, ir, np.random.default_rng([subject.seed, 13]))
    t1w = anatomical_signal(subject, tv, "t1w")
    t1w *= np.float32(SCALE_MUSCLE / max(float(t1w[tv.label > 0].mean()) if (tv.label > 0).any() else 1.0, 1e-6))
    if psf_sigma_vox > 0:
        from scipy.ndimage import gaussian_filter

        sig = (psf_sigma_vox, psf_sigma_vox, 0.0)
        echoes = np.stack([gaussian_filter(echoes[..., e], sig) for e in range(echoes.shape[-1])], -1)
        if irs.size:
            irs = np.stack([gaussian_filter(irs[..., e], sig) for e in range(irs.shape[-1])], -1)
        t1w = gaussian_filter(t1w, sig)
    sigma = 0.0
    if snr is not None:
        sigma = noise_sigma(echoes[..., 0], tv.label, snr)
        echoes = add_rician_noise(echoes, sigma, rng)
        if irs.size:
            irs = add_rician_noise(irs, sigma, rng)
        t1w = add_rician_noise(t1w, noise_sigma(t1w, tv.label, snr), rng)
    return Session(grid, echoes.astype(np.float32), irs.astype(np.float32), t1w.astype(np.float32),
                   tv.label, maps, tv, float(sigma))
