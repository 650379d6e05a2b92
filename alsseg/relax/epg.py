"""Extended phase graph (EPG) simulation of CPMG multi-echo spin-echo trains.

Weigel M. Extended phase graphs: dephasing, RF pulses, and echoes — pure and simple.
JMRI 2015;41:266-295. Slice-profile summation as in Lebel & Wilman (MRM 2010) and
Marty et al. (NMR Biomed 2016).

Conventions: excitation about the x axis (phase 90°), refocusing about y (phase 0°) — the
CPMG condition. States are kept as complex ``F+``, ``F-``, ``Z`` arrays of shape
``(B, K)`` for a batch of ``B`` spin populations and ``K`` dephasing orders. The echo is
``|F+_0|`` at the middle of each echo interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erf


@dataclass(frozen=True)
class SliceProfile:
    """Relative flip-angle scale across the slice (positions from centre to beyond the edge).

    Attributes:
        excitation: ``(P,)`` excitation flip scale at each position (1 = nominal).
        refocusing: ``(P,)`` refocusing flip scale at each position.
        weights: ``(P,)`` quadrature weight of each position (sum 1).
    """

    excitation: np.ndarray
    refocusing: np.ndarray
    weights: np.ndarray

    @classmethod
    def ideal(cls) -> "SliceProfile":
        """A perfectly rectangular slice: one position, nominal flips."""
        one = np.ones(1)
        return cls(one, one, one)

    @classmethod
    def smooth(cls, n_positions: int = 16, transition: float = 0.12,
               refocus_width_ratio: float = 1.0, extent: float = 1.0) -> "SliceProfile":
        """A rectangular slice of unit width smoothed by an erf transition.

        Args:
            n_positions: quadrature points over the half-slice ``z in [0, extent]``.
            transition: edge width (in slice widths) of the excitation profile.
            refocus_width_ratio: refocusing slice width / excitation slice width.
            extent: half-range of ``z`` integrated, in slice widths.
        """
        z = (np.arange(n_positions) + 0.5) * extent / n_positions

        def rect(width: float) -> np.ndarray:
            h = width / 2
            return 0.5 * (erf((h - z) / transition) + erf((h + z) / transition))

        w = np.full(n_positions, 1.0 / n_positions)
        return cls(rect(1.0), rect(refocus_width_ratio), w)


def cpmg_echoes(t2_ms, t1_ms, b1, echo_spacing_ms: float, n_echoes: int, *,
                refocus_deg: float = 180.0, excite_deg: float = 90.0,
                profile: SliceProfile | None = None) -> np.ndarray:
    """Echo amplitudes of a CPMG train for a batch of tissues.

    Args:
        t2_ms, t1_ms, b1: broadcastable arrays of shape ``(B,)`` (or scalars): relaxation
            times in ms and the B1 (transmit) scale of the nominal flip angles.
        echo_spacing_ms: time between echoes, ms (uniform spacing).
        n_echoes: number of echoes.
        refocus_deg, excite_deg: nominal flip angles, degrees.
        profile: slice profile; ``None`` = ideal rectangular slice.

    Returns:
        ``(B, n_echoes)`` echo magnitudes for unit M0 (echo 1 ≈ ``sin(excite)·exp(-ESP/T2)``
        for ideal pulses).
    """
    profile = profile or SliceProfile.ideal()
    t2, t1, b1 = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, float)) for v in (t2_ms, t1_ms, b1)))
    B, P = t2.size, profile.weights.size
    # batch = tissues x positions
    t2b = np.repeat(t2.ravel(), P)
    t1b = np.repeat(t1.ravel(), P)
    ex = np.deg2rad(excite_deg) * np.outer(b1.ravel(), profile.excitation).ravel()
    rf = np.deg2rad(refocus_deg) * np.outer(b1.ravel(), profile.refocusing).ravel()
    sig = _cpmg_core(t2b, t1b, ex, rf, echo_spacing_ms, n_echoes)
    return (sig.reshape(B, P, n_echoes) * profile.weights[None, :, None]).sum(axis=1)


def _cpmg_core(t2, t1, excite_rad, refocus_rad, esp, n_echoes) -> np.ndarray:
    """Unprofiled EPG: ``(N,)`` inputs → ``(N, n_echoes)`` echo magnitudes."""
    N = t2.size
    K = n_echoes + 2  # highest order that can still refocus by the last echo, plus margin
    fp = np.zeros((N, K), complex)
    fm = np.zeros((N, K), complex)
    z = np.zeros((N, K), complex)
    # excitation about x (phase 90°) of equilibrium Mz = 1
    fp[:, 0] = np.sin(excite_rad)
    fm[:, 0] = np.sin(excite_rad)
    z[:, 0] = np.cos(excite_rad)
    tau = esp / 2.0
    e2 = np.exp(-tau / t2)[:, None]
    e1 = np.exp(-tau / t1)[:, None]
    c2 = np.cos(refocus_rad / 2)[:, None] ** 2
    s2 = np.sin(refocus_rad / 2)[:, None] ** 2
    sa = np.sin(refocus_rad)[:, None]
    ca = np.cos(refocus_rad)[:, None]
    out = np.empty((N, n_echoes))

    def relax_shift(fp, fm, z):
        fp = fp * e2
        fm = fm * e2
        z = z * e1
        z[:, 0] += (1 - e1[:, 0])
        fp = np.concatenate([np.zeros((N, 1), complex), fp[:, :-1]], axis=1)
        fm = np.concatenate([fm[:, 1:], np.zeros((N, 1), complex)], axis=1)
        fp[:, 0] = np.conj(fm[:, 0])
        return fp, fm, z

    for n in range(n_echoes):
        fp, fm, z = relax_shift(fp, fm, z)
        # refocusing about y (phase 0): Weigel's T(alpha, phi=0)
        fp, fm, z = (c2 * fp + s2 * fm - 1j * sa * z,
                     s2 * fp + c2 * fm + 1j * sa * z,
                     -0.5j * sa * fp + 0.5j * sa * fm + ca * z)
        fp, fm, z = relax_shift(fp, fm, z)
        out[:, n] = np.abs(fp[:, 0])
    return out
