"""Smooth random fields evaluated analytically at arbitrary points (no grid needed).

A field is a sum of ``K`` random plane waves ``sum_k a_k cos(w_k . p + phi_k)``, with wave
vectors drawn for wavelengths in ``[min_wavelength_mm, max_wavelength_mm]``. Because it is
a closed-form function of world position it is the same whatever grid it is sampled on,
which keeps anatomy, disease patches, B1 and bias fields consistent across resolutions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SmoothField:
    """A smooth scalar field of zero mean and roughly unit standard deviation.

    Attributes:
        wavevectors: ``(K, 3)`` angular wave vectors, rad/mm.
        phases: ``(K,)`` phases, rad.
        amplitudes: ``(K,)`` amplitudes (normalised so the field's variance is 1).
    """

    wavevectors: np.ndarray
    phases: np.ndarray
    amplitudes: np.ndarray

    @classmethod
    def random(cls, rng: np.random.Generator, *, min_wavelength_mm: float = 40.0,
               max_wavelength_mm: float = 200.0, n_waves: int = 12,
               z_stretch: float = 1.0) -> SmoothField:
        """Draw a field.

        Args:
            rng: random generator.
            min_wavelength_mm, max_wavelength_mm: range of wavelengths of the plane waves.
            n_waves: number of plane waves ``K``.
            z_stretch: multiplies wavelengths along z (> 1: smoother along the leg).
        """
        direction = rng.normal(size=(n_waves, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        direction[:, 2] /= z_stretch
        wavelength = np.exp(rng.uniform(np.log(min_wavelength_mm), np.log(max_wavelength_mm), n_waves))
        k = direction * (2 * np.pi / wavelength)[:, None]
        amp = rng.uniform(0.5, 1.0, n_waves)
        amp *= np.sqrt(2.0 / np.sum(amp ** 2))  # variance of sum = sum(a^2)/2 = 1
        return cls(k, rng.uniform(0, 2 * np.pi, n_waves), amp)

    def __call__(self, points_mm: np.ndarray) -> np.ndarray:
        """Field values at ``points_mm`` of shape ``(N, 3)`` → ``(N,)`` float32."""
        p = np.asarray(points_mm, np.float32)
        k = self.wavevectors.T.astype(np.float32)  # (3, K)
        # explicit broadcasting: a BLAS product with an inner dimension of 3 is much slower
        arg = p[:, 0:1] * k[0] + p[:, 1:2] * k[1] + p[:, 2:3] * k[2] + self.phases.astype(np.float32)
        np.cos(arg, out=arg)
        return arg @ self.amplitudes.astype(np.float32)


def smoothstep_inside(signed_depth_mm: np.ndarray, width_mm: float) -> np.ndarray:
    """Fraction of a voxel inside a surface, from the signed depth of its centre.

    ``signed_depth_mm > 0`` inside. A linear ramp of total width ``width_mm`` (≈ the voxel
    size) gives the partial-volume fraction of a flat boundary crossing the voxel.
    """
    return np.clip(0.5 + signed_depth_mm / max(width_mm, 1e-6), 0.0, 1.0).astype(np.float32)


def thin_sheet_fraction(distance_mm: np.ndarray, thickness_mm: float, width_mm: float) -> np.ndarray:
    """Partial-volume fraction of a thin sheet (fascia, septum) of ``thickness_mm``.

    Args:
        distance_mm: unsigned distance of the voxel centre to the sheet's mid-surface.
        thickness_mm: sheet thickness.
        width_mm: voxel size across the sheet.
    """
    h = max(width_mm, 1e-6)
    t = thickness_mm
    # overlap of [-t/2, t/2] with [d - h/2, d + h/2], divided by h
    lo = np.maximum(-t / 2, distance_mm - h / 2)
    hi = np.minimum(t / 2, distance_mm + h / 2)
    return np.clip((hi - lo) / h, 0.0, 1.0).astype(np.float32)


def paint_over(frac: np.ndarray, tissue: int, alpha) -> None:
    """Paint ``tissue`` over the partial-volume fractions ``frac`` ``(N, T)`` in place: with opacity
    ``alpha`` (scalar or ``(N,)``, in [0, 1]) what was there is scaled by ``1 - alpha`` and
    ``tissue`` gains ``alpha``, so each row still sums to 1."""
    alpha = np.broadcast_to(np.asarray(alpha, np.float32), (frac.shape[0],))
    idx = np.flatnonzero(alpha > 0)
    if idx.size == 0:
        return
    al = alpha[idx]
    sub = frac[idx] * (1.0 - al)[:, None]
    sub[:, tissue] += al
    frac[idx] = sub
