"""Slice-profile EPG dictionary of a MESE acquisition, with a smooth (C¹) interpolant.

The water signal ``W(T2, B1)`` is tabulated on a grid uniform in ``log T2`` and in ``B1``, the fat
signal ``F(B1)`` on the same B1 grid (fat T2 and T1 fixed by the acquisition). Both are stored
as coefficients on a low-rank echo basis ``U`` (``(n_echoes, R)``, orthonormal columns, from the
SVD of all atoms) so that fitting runs in ``R`` dimensions instead of ``n_echoes``; ``R`` is
chosen so that every atom is represented to a relative error below ``rank_tol``.

Between grid nodes, values and first derivatives come from separable Catmull-Rom (cubic Hermite)
interpolation: exact at the nodes, C¹ across cells, fourth-order accurate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from alsseg.io.errors import InputError
from alsseg.relax.acquisition import MeseAcquisition
from alsseg.relax.epg import cpmg_echoes

#: Catmull-Rom weight of node ``k`` (i−1 … i+2) as polynomial coefficients in ``t`` (powers 0–3).
_CR_MATRIX = np.array([[0.0, -0.5, 1.0, -0.5],
                       [1.0, 0.0, -2.5, 1.5],
                       [0.0, 0.5, 2.0, -1.5],
                       [0.0, 0.0, -0.5, 0.5]])


def _catmull_rom(t: np.ndarray):
    """Weights ``(N, 4)`` and their derivatives for nodes ``i-1, i, i+1, i+2`` at offset ``t``."""
    t2 = t * t
    t3 = t2 * t
    w = np.stack([-0.5 * t3 + t2 - 0.5 * t,
                  1.5 * t3 - 2.5 * t2 + 1.0,
                  -1.5 * t3 + 2.0 * t2 + 0.5 * t,
                  0.5 * t3 - 0.5 * t2], axis=-1)
    dw = np.stack([-1.5 * t2 + 2.0 * t - 0.5,
                   4.5 * t2 - 5.0 * t,
                   -4.5 * t2 + 4.0 * t + 0.5,
                   1.5 * t2 - t], axis=-1)
    return w, dw


class EpgDictionary:
    """Tabulated two-component slice-profile EPG signals for one acquisition.

    Parameters
    ----------
    acq : MeseAcquisition
    t2_range_ms : (float, float)
        Water T2 range fitted, ms (grid covers it with one node of margin each side).
    b1_range : (float, float)
        B1 range fitted (1 = nominal flip angles).
    t2_step : float
        Grid step in ``log T2`` (0.03 ≈ 3 % per node).
    b1_step : float
        Grid step in B1.
    rank_tol : float
        Largest relative error of the low-rank representation of any atom.
    n_jobs : int
        Threads simulating the atoms.
    dtype : numpy dtype
        Precision of the interpolation tables (float32: half the memory traffic; the interpolation
        error, ~1e-5 relative, dominates float32 rounding anyway).

    Attributes
    ----------
    log_t2 : (T,) ndarray
        Node values of ``ln(T2 / ms)``.
    b1 : (B,) ndarray
        Node values of B1.
    basis : (n_echoes, R) ndarray
        Orthonormal echo basis.
    water : (T, B, R) ndarray
        Water atoms (unit M0, T1/TR weighting included) in basis coordinates.
    fat : (B, R) ndarray
        Fat atoms in basis coordinates.
    """

    def __init__(self, acq: MeseAcquisition, t2_range_ms=(10.0, 100.0), b1_range=(0.5, 1.4),
                 t2_step: float = 0.03, b1_step: float = 0.02, rank_tol: float = 2e-5,
                 dtype=np.float32, n_jobs: int = 1):
        lo, hi = (float(v) for v in t2_range_ms)
        if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo < hi):
            raise InputError(None, f"empty or invalid water T2 range {t2_range_ms} ms")
        blo, bhi = (float(v) for v in b1_range)
        if not (np.isfinite(blo) and np.isfinite(bhi) and 0 < blo < bhi):
            raise InputError(None, f"empty or invalid B1 range {b1_range}")
        if hi >= acq.fat_t2_ms * 0.9:
            raise InputError(None, f"water T2 range up to {hi} ms reaches the fat T2 "
                             f"({acq.fat_t2_ms} ms): water and fat would be indistinguishable")
        self.acq = acq
        self.dtype = np.dtype(dtype)
        self.t2_range_ms = (lo, hi)
        self.b1_range = (blo, bhi)
        n_t = int(np.ceil(np.log(hi / lo) / t2_step))
        self.log_t2 = np.log(lo) + t2_step * np.arange(-1, n_t + 2)
        n_b = int(np.ceil((bhi - blo) / b1_step))
        self.b1 = blo + b1_step * np.arange(-1, n_b + 2)
        self.t2_step, self.b1_step = t2_step, b1_step
        T, B, E = self.log_t2.size, self.b1.size, acq.n_echoes
        kw: dict[str, Any] = {"refocus_deg": acq.refocus_deg, "excite_deg": acq.excite_deg, "profile": acq.profile,
                              "dtype": np.complex64}
        tt, bb = np.meshgrid(np.exp(self.log_t2), self.b1, indexing="ij")
        t2s, b1s = tt.ravel(), bb.ravel()
        parts = np.array_split(np.arange(t2s.size), max(1, int(n_jobs)))
        sim = lambda ix: cpmg_echoes(t2s[ix], acq.water_t1_ms, b1s[ix], acq.echo_spacing_ms, E, **kw)
        if len(parts) > 1:  # the EPG kernels are numpy ufuncs that release the GIL
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(len(parts)) as pool:
                water = np.concatenate(list(pool.map(sim, parts)))
        else:
            water = sim(parts[0])
        water = water.reshape(T, B, E) * acq.recovery(acq.water_t1_ms)
        fat = cpmg_echoes(np.full(B, acq.fat_t2_ms), acq.fat_t1_ms, self.b1, acq.echo_spacing_ms,
                          E, **kw) * acq.recovery(acq.fat_t1_ms)
        self.water_echoes = water  # (T, B, E)
        self.fat_echoes = fat      # (B, E)
        atoms = np.concatenate([water.reshape(-1, E), fat])
        vt = np.linalg.svd(atoms, full_matrices=False)[2]
        # smallest rank whose worst per-atom relative error is below rank_tol
        norms = np.linalg.norm(atoms, axis=1)
        for r in range(2, E + 1):
            u = vt[:r].T
            err = np.linalg.norm(atoms - (atoms @ u) @ u.T, axis=1) / norms
            if err.max() <= rank_tol:
                break
        self.rank = r
        self.basis = np.ascontiguousarray(vt[:r].T)  # (E, R)
        self.water = water @ self.basis            # (T, B, R)
        self.fat = fat @ self.basis                # (B, R)
        self._b1_lo_idx = 1.0
        # Catmull-Rom as polynomials per cell: value = Σ_ab t^a s^b C[cell, 4a+b] (t, s ∈ [0, 1))
        m = _CR_MATRIX
        Tn, Bn, R = self.water.shape
        cw = np.zeros((Tn, Bn, 4, 4, R))
        win = np.lib.stride_tricks.sliding_window_view(self.water, (4, 4), axis=(0, 1))  # (T-3, B-3, R, 4, 4)
        cw[1:Tn - 2, 1:Bn - 2] = np.einsum("ka,lb,ijrkl->ijabr", m, m, win, optimize=True)
        self._cw = np.ascontiguousarray(cw.reshape(Tn * Bn, 16, R), dtype=self.dtype)
        cf = np.zeros((Bn, 4, R))
        fwin = np.lib.stride_tricks.sliding_window_view(self.fat, 4, axis=0)  # (B-3, R, 4)
        cf[1:Bn - 2] = np.einsum("la,jrl->jar", m, fwin)
        self._cf = cf.astype(self.dtype)
        self._t2_hi_idx = float(np.log(hi / lo) / t2_step) + 1.0
        self._b1_hi_idx = (bhi - blo) / b1_step + 1.0

    # ----------------------------------------------------------------- coordinates
    def t2_to_u(self, t2_ms):
        """Continuous grid coordinate of a water T2 (ms)."""
        return (np.log(t2_ms) - self.log_t2[0]) / self.t2_step

    def u_to_t2(self, u):
        """Water T2 (ms) of a continuous grid coordinate."""
        return np.exp(self.log_t2[0] + self.t2_step * u)

    def b1_to_v(self, b1):
        """Continuous grid coordinate of a B1 value."""
        return (np.asarray(b1, float) - self.b1[0]) / self.b1_step

    def v_to_b1(self, v):
        """B1 of a continuous grid coordinate."""
        return self.b1[0] + self.b1_step * v

    @property
    def u_bounds(self) -> tuple[float, float]:
        """Grid coordinates of the fitted T2 range."""
        return 1.0, self._t2_hi_idx

    @property
    def v_bounds(self) -> tuple[float, float]:
        """Grid coordinates of the fitted B1 range."""
        return self._b1_lo_idx, self._b1_hi_idx

    # ----------------------------------------------------------------- interpolation
    def interpolate(self, u, v, derivatives: bool = True):
        """Water and fat atoms (basis coordinates) at continuous grid coordinates.

        Parameters
        ----------
        u, v : (N,) ndarray
            Grid coordinates (see :meth:`t2_to_u`, :meth:`b1_to_v`), within the bounds.

        Returns
        -------
        w, f : (N, R) ndarray
            Water and fat atoms.
        wu, wv, fv : (N, R) ndarray
            ``∂w/∂u``, ``∂w/∂v``, ``∂f/∂v`` (only when ``derivatives``).
        """
        T, B = self.log_t2.size, self.b1.size
        iu = np.clip(np.floor(u).astype(np.intp), 1, T - 3)
        iv = np.clip(np.floor(v).astype(np.intp), 1, B - 3)
        t = (u - iu)[:, None].astype(self.dtype)
        s = (v - iv)[:, None].astype(self.dtype)
        one = np.ones_like(t)
        tp = np.concatenate([one, t, t * t, t * t * t], axis=1)        # (N, 4) powers of t
        sp = np.concatenate([one, s, s * s, s * s * s], axis=1)
        coef = self._cw[iu * B + iv]                                      # (N, 16, R)
        fco = self._cf[iv]                                                # (N, 4, R)
        if not derivatives:
            mono = (tp[:, :, None] * sp[:, None, :]).reshape(-1, 1, 16)
            w = (mono @ coef)[:, 0]
            f = (sp[:, None, :] @ fco)[:, 0]
            return w, f
        zero = np.zeros_like(t)
        dtp = np.concatenate([zero, one, 2 * t, 3 * t * t], axis=1)
        dsp = np.concatenate([zero, one, 2 * s, 3 * s * s], axis=1)
        mono = np.stack([(tp[:, :, None] * sp[:, None, :]).reshape(-1, 16),
                         (dtp[:, :, None] * sp[:, None, :]).reshape(-1, 16),
                         (tp[:, :, None] * dsp[:, None, :]).reshape(-1, 16)], axis=1)  # (N, 3, 16)
        wd = mono @ coef                                                  # (N, 3, R)
        fd = np.stack([sp, dsp], axis=1) @ fco                            # (N, 2, R)
        return wd[:, 0], fd[:, 0], wd[:, 1], wd[:, 2], fd[:, 1]

    def signal(self, t2_water_ms, fat_fraction, b1, m0=1.0) -> np.ndarray:
        """Two-component echo train(s) ``(..., n_echoes)`` by interpolation in the table."""
        t2, ff, b1, m0 = np.broadcast_arrays(*(np.asarray(a, float) for a in (t2_water_ms, fat_fraction, b1, m0)))
        shape = t2.shape
        u, v = self.t2_to_u(t2.ravel()), self.b1_to_v(b1.ravel())
        (ulo, uhi), (vlo, vhi) = self.u_bounds, self.v_bounds
        if np.any((u < ulo - 1e-9) | (u > uhi + 1e-9) | (v < vlo - 1e-9) | (v > vhi + 1e-9)):
            raise ValueError("T2 or B1 outside the dictionary range")
        w, f = self.interpolate(u, v, derivatives=False)
        sig = (m0.ravel() * (1 - ff.ravel()))[:, None] * w + (m0.ravel() * ff.ravel())[:, None] * f
        return (sig @ self.basis.T).reshape(*shape, self.acq.n_echoes)
