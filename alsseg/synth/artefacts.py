"""Acquisition artefacts of synthetic training images: EPI distortion, motion, low resolution,
Nyquist ghosts — applied to a noiseless ``(X, Y, Z)`` image and its label map together.

* **EPI distortion** (:func:`epi_distort`): B0 inhomogeneity displaces the signal along the
  in-plane phase-encoding axis by a smooth field (a few mm, up to :data:`EPI_DISPLACEMENT_MM`,
  larger towards the edges of the field of view, where air is), and the intensity is modulated by
  the Jacobian of the mapping (signal piles up where the field compresses, thins where it
  stretches; the total is conserved). A real scan is annotated on the distorted anatomy, so the
  label map is warped with the same displacement (nearest neighbour).
* **Motion** (:func:`motion_corrupt`): rigid in-plane motion between segments of the
  acquisition — the phase-encoding lines of k-space come from 2–3 slightly shifted / rotated copies
  of the image, giving ghosts and blur along that axis. The positions are centred on the
  image's, so the labels (the mean position) are unchanged.
* **Low resolution** and a **Nyquist ghost** (:func:`degrade_acquisition`, labels unchanged).

Probabilities and ranges are module constants; :func:`degrade_acquisition` draws them for the
randomised training cases (``epi=True`` for the EPI-read contrasts, e.g. DWI b0).
"""

from __future__ import annotations

import numpy as np

#: probabilities of the acquisition effects of :func:`degrade_acquisition`: an in-plane resolution
#: of 1.5–4 mm (partial volume by block averaging), a Nyquist ghost of 2–12 % along the
#: phase-encoding axis, EPI distortion (more often for EPI-read contrasts such as DWI b0), motion
P_LOW_RESOLUTION, LOW_RESOLUTION_MM = 0.3, (1.5, 4.0)
P_GHOST, GHOST_AMPLITUDE = 0.2, (0.02, 0.12)
P_EPI, P_EPI_FOR_EPI_CONTRAST = 0.15, 0.7
P_MOTION = 0.15
#: largest EPI displacement in the field of view, mm (drawn uniformly in this range)
EPI_DISPLACEMENT_MM = (2.0, 8.0)
#: the displacement field is smooth on this scale (Gaussian σ of filtered white noise, mm)
EPI_SMOOTHNESS_MM = (25.0, 60.0)
#: the largest |∂d/∂y| allowed (a larger one would fold the image onto itself)
EPI_MAX_GRADIENT = 0.6
#: motion: rigid in-plane translation (mm) and rotation (degrees) of each position, before centring
MOTION_SHIFT_MM, MOTION_ROTATION_DEG = (0.5, 3.0), 3.0


def random_epi_displacement(shape, spacing_mm, axis: int, rng: np.random.Generator,
                            amplitude_mm: float | None = None) -> np.ndarray:
    """A B0-like displacement field along ``axis``, in voxels: ``(X, Y, Z)`` float32.

    Smooth random field (white noise filtered at 25–60 mm, slowly varying across slices) times a
    weight growing towards the edges of the field of view (``0.4 + 0.6 r²``, ``r`` the normalised
    in-plane radius), scaled so its largest magnitude is ``amplitude_mm`` (default drawn in
    :data:`EPI_DISPLACEMENT_MM`) and its gradient along ``axis`` at most :data:`EPI_MAX_GRADIENT`.
    """
    from scipy.ndimage import gaussian_filter

    X, Y, Z = shape
    sp = np.asarray(spacing_mm, float)
    amp = float(amplitude_mm if amplitude_mm is not None else rng.uniform(*EPI_DISPLACEMENT_MM))
    smooth = rng.uniform(*EPI_SMOOTHNESS_MM)
    # noise on a coarse grid (fast), smoothed, then interpolated up
    step = max(1, int(smooth / 4 / min(sp[0], sp[1])))
    cx, cy = -(-X // step) + 1, -(-Y // step) + 1
    cz = max(1, int(np.ceil(Z * sp[2] / (2 * smooth))) + 1)
    coarse = gaussian_filter(rng.standard_normal((cx, cy, cz)),
                             (smooth / (step * sp[0]), smooth / (step * sp[1]), 1.0), mode="wrap")
    from scipy.ndimage import zoom

    field = zoom(coarse, (X / cx, Y / cy, Z / cz), order=1, mode="nearest", grid_mode=True)[:X, :Y, :Z]
    field = np.pad(field, [(0, X - field.shape[0]), (0, Y - field.shape[1]), (0, Z - field.shape[2])], mode="edge")
    gx = (np.arange(X) - (X - 1) / 2) / max(X / 2, 1)
    gy = (np.arange(Y) - (Y - 1) / 2) / max(Y / 2, 1)
    r2 = (gx[:, None] ** 2 + gy[None, :] ** 2) / 2
    field = field * (0.4 + 0.6 * r2)[..., None]
    field -= field.mean()
    field *= amp / max(float(np.abs(field).max()), 1e-9) / sp[axis]
    grad = float(np.abs(np.diff(field, axis=axis)).max()) if field.shape[axis] > 1 else 0.0
    if grad > EPI_MAX_GRADIENT:
        field *= EPI_MAX_GRADIENT / grad
    return field.astype(np.float32)


def _along(a: np.ndarray, coord: np.ndarray, axis: int, *, nearest: bool = False) -> np.ndarray:
    """``a`` sampled at fractional positions ``coord`` (same shape) along ``axis`` (the other
    indices fixed): linear, or nearest with ``nearest``; 0 outside ``[0, n - 1]``."""
    n = a.shape[axis]
    inside = (coord > -0.5) & (coord < n - 0.5)
    if nearest:
        idx = np.clip(np.rint(coord).astype(np.intp), 0, n - 1)
        return np.where(inside, np.take_along_axis(a, idx, axis=axis), 0)
    c = np.clip(coord, 0, n - 1)
    i0 = np.minimum(np.floor(c).astype(np.intp), max(n - 2, 0))
    w = (c - i0).astype(np.float32)
    lo = np.take_along_axis(a, i0, axis=axis)
    hi = np.take_along_axis(a, np.minimum(i0 + 1, n - 1), axis=axis)
    return np.where(inside, lo + w * (hi - lo), 0).astype(np.float32)


def epi_distort(img: np.ndarray, labels: np.ndarray, displacement_vox: np.ndarray, axis: int):
    """Distort an image and its label map by a displacement along ``axis``.

    A point at ``y`` appears at ``y + d(y)``; the image at ``y'`` is ``I(y) · ∂y/∂y'`` (the
    Jacobian keeps the total signal), labels are taken nearest-neighbour from ``y``. ``y(y')`` is
    found by fixed-point iteration ``y = y' − d(y)`` (it converges while ``|∂d/∂y| < 1``).

    Args:
        img: ``(X, Y, Z)`` image.
        labels: ``(X, Y, Z)`` integer label map on the same grid.
        displacement_vox: ``(X, Y, Z)`` displacement along ``axis``, voxels.
        axis: in-plane phase-encoding axis, 0 or 1.

    Returns:
        ``(image float32, labels of labels' dtype)``.
    """
    if axis not in (0, 1):
        raise ValueError(f"the phase-encoding axis must be 0 or 1, got {axis}")
    d = np.asarray(displacement_vox, np.float32)
    shape = [1, 1, 1]
    shape[axis] = img.shape[axis]
    target = np.broadcast_to(np.arange(img.shape[axis], dtype=np.float32).reshape(shape), img.shape)
    src = target - d
    for _ in range(5):  # y = y' − d(y)
        n = img.shape[axis]
        src = target - _along(d, np.clip(src, 0, n - 1), axis)
    jac = np.gradient(src, axis=axis) if img.shape[axis] > 1 else np.ones_like(src)
    out = _along(np.asarray(img, np.float32), src, axis) * jac
    lab = _along(np.asarray(labels), src, axis, nearest=True)
    return np.clip(out, 0, None).astype(np.float32), lab.astype(labels.dtype)


def motion_corrupt(img: np.ndarray, axis: int, rng: np.random.Generator, *, n_positions: int | None = None,
                   spacing_mm=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Rigid in-plane motion between segments of a 2-D acquisition (per slice, k-space).

    The phase-encoding lines (along ``axis``) are acquired in order — sequentially or in 2–8
    interleaved segments — while the object takes ``n_positions`` (default 2–3) positions, each a
    random translation (:data:`MOTION_SHIFT_MM`) and rotation (± :data:`MOTION_ROTATION_DEG`);
    the positions are centred (line-weighted mean zero), so the labels stay right on average.
    Only the phase-encoding axis is Fourier transformed (the readout transform commutes with the
    line selection). Returns the magnitude image ``(X, Y, Z)`` float32.
    """
    from scipy import fft
    from scipy.ndimage import affine_transform

    if axis not in (0, 1):
        raise ValueError(f"the phase-encoding axis must be 0 or 1, got {axis}")
    img = np.asarray(img, np.float32)
    X, Y, _Z = img.shape
    n_lines = img.shape[axis]
    n_pos = int(n_positions if n_positions is not None else rng.integers(2, 4))
    # acquisition order of the lines, then the position each line is acquired in
    n_seg = int(rng.choice([1, 2, 4, 8]))
    order = np.concatenate([np.arange(s, n_lines, n_seg) for s in range(n_seg)])
    cuts = np.sort(rng.choice(np.arange(1, n_lines), size=n_pos - 1, replace=False))
    state_in_time = np.searchsorted(cuts, np.arange(n_lines), side="right")
    state = np.empty(n_lines, int)
    state[order] = state_in_time
    weight = np.bincount(state, minlength=n_pos) / n_lines
    sp = np.asarray(spacing_mm, float)[:2]
    shifts = rng.uniform(*MOTION_SHIFT_MM, (n_pos, 2)) * rng.choice([-1.0, 1.0], (n_pos, 2))
    angles = rng.uniform(-MOTION_ROTATION_DEG, MOTION_ROTATION_DEG, n_pos)
    shifts -= weight @ shifts
    angles -= weight @ angles
    k_out = np.zeros(img.shape, np.complex64)
    centre = np.array([(X - 1) / 2, (Y - 1) / 2])
    for p in range(n_pos):
        lines = state == p
        if not lines.any():
            continue
        a = np.deg2rad(angles[p])
        rot = np.array([[np.cos(a), -np.sin(a) * sp[1] / sp[0]], [np.sin(a) * sp[0] / sp[1], np.cos(a)]])
        mat = np.eye(3)
        mat[:2, :2] = rot
        off = np.zeros(3)
        off[:2] = centre - rot @ centre - shifts[p] / sp
        moved = affine_transform(img, mat, offset=off, order=1, mode="constant", cval=0.0)
        sel = [slice(None)] * 3
        sel[axis] = lines
        k_out[tuple(sel)] = fft.fft(moved, axis=axis)[tuple(sel)]
    return np.abs(fft.ifft(k_out, axis=axis)).astype(np.float32)


def degrade_acquisition(img: np.ndarray, labels: np.ndarray, spacing_mm, rng: np.random.Generator, *,
                        epi: bool = False, p_low_resolution: float = P_LOW_RESOLUTION, p_ghost: float = P_GHOST,
                        p_epi: float | None = None, p_motion: float = P_MOTION):
    """Random acquisition effects on a noiseless ``(X, Y, Z)`` image and its label map.

    In order, each with its probability (module constants by default): EPI distortion
    (:func:`epi_distort`; probability :data:`P_EPI`, or :data:`P_EPI_FOR_EPI_CONTRAST` with
    ``epi=True``) — image and labels warped together; motion (:func:`motion_corrupt`); an in-plane
    resolution lowered to a random 1.5–4 mm (box average on the grid); a Nyquist ghost (the image
    shifted by half the field of view along a random in-plane axis). The phase-encoding axis is
    drawn once (0 or 1) and shared by all of them.

    Returns:
        ``(image float32, labels)``: labels change only by the EPI warp.
    """
    from scipy.ndimage import uniform_filter

    if p_epi is None:
        p_epi = P_EPI_FOR_EPI_CONTRAST if epi else P_EPI
    img = np.asarray(img, np.float32)
    axis = int(rng.integers(0, 2))
    if rng.random() < p_epi:
        d = random_epi_displacement(img.shape, spacing_mm, axis, rng)
        img, labels = epi_distort(img, labels, d, axis)
    if rng.random() < p_motion:
        img = motion_corrupt(img, axis, rng, spacing_mm=spacing_mm)
    if rng.random() < p_low_resolution:
        target = rng.uniform(*LOW_RESOLUTION_MM)
        size = [max(1, round(float(target / float(spacing_mm[i])))) for i in range(2)] + [1]
        if max(size) > 1:
            img = uniform_filter(img, size=size, mode="nearest")
    if rng.random() < p_ghost:
        img = img + rng.uniform(*GHOST_AMPLITUDE) * np.roll(img, img.shape[axis] // 2, axis=axis)
    return img.astype(np.float32), labels


#: contrasts :func:`render_case` degrades (the randomised one and the EPI-read DWI b0), and the
#: EPI-read ones among them (EPI distortion with :data:`P_EPI_FOR_EPI_CONTRAST`)
ARTEFACT_CONTRASTS, EPI_CONTRASTS = ("random", "dwi_b0"), ("dwi_b0",)


def render_case(subject, grid, contrast: str, rng: np.random.Generator, *, tissues=None,
                snr: float | str | None = "auto", **kwargs):
    """A training case: the image of :func:`alsseg.synth.render.render_contrast` with the
    acquisition artefacts of :func:`degrade_acquisition` (for :data:`ARTEFACT_CONTRASTS`)
    applied before the noise, and the label map that goes with it (warped where EPI distortion
    moved the anatomy).

    Args:
        subject, grid, contrast: as for ``render_contrast``.
        rng: random generator (contrast, artefacts, noise).
        tissues: the :class:`~alsseg.synth.render.TissueVolume` on ``grid`` (rendered if None).
        snr: as for ``render_contrast`` (``"auto"``: 40, or 8–60 for ``random``).
        kwargs: passed to ``render_contrast`` (``protocol``, ``n_sub``).

    Returns:
        ``(image, labels)``: an :class:`alsseg.io.Image` float32 ``(X, Y, Z)`` and an ``(X, Y, Z)``
        int16 label map on the same grid.
    """
    from alsseg.synth.render import (
        DEFAULT_SNR, RANDOM_SNR_RANGE, add_rician_noise, noise_sigma, render_contrast, render_tissues,
    )

    tv = tissues if tissues is not None else render_tissues(subject, grid, n_sub=kwargs.get("n_sub"))
    labels = np.asarray(tv.label, np.int16)
    if contrast not in ARTEFACT_CONTRASTS:
        return render_contrast(subject, grid, contrast, rng, snr=snr, tissues=tv, **kwargs), labels
    img = np.asarray(render_contrast(subject, grid, contrast, rng, snr=None, tissues=tv, **kwargs).data, np.float32)
    img, labels = degrade_acquisition(img, labels, grid.spacing_mm, rng, epi=contrast in EPI_CONTRASTS)
    if snr == "auto":
        snr = float(rng.uniform(*RANDOM_SNR_RANGE)) if contrast == "random" else DEFAULT_SNR
    if snr is not None:
        img = add_rician_noise(img, noise_sigma(img, labels, float(snr)), rng)
    return grid.image(img.astype(np.float32), contrast=contrast), labels
