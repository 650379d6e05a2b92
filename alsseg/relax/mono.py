"""Mono-exponential T2 of multi-echo spin-echo data: ``S(TE) = M0 · exp(−TE/T2) [+ C]``.

The biased baseline of older studies (log-linear, NLLS, NLLS with offset), dipy style:
``MonoExpT2Model(echo_times).fit(data, mask) -> MonoExpT2Fit``. The two-component EPG model is in
:mod:`alsseg.relax.t2`.
"""

from __future__ import annotations

import numpy as np

from alsseg.io.errors import InputError
from alsseg.relax._chunks import map_chunks
from alsseg.relax._lm import batched_lm, orthonormal_pairs, parabolic_peak
from alsseg.relax.acquisition import MeseAcquisition
from alsseg.relax.t2 import FLAG_INVALID_DATA, FLAG_NOT_CONVERGED, FLAG_T2_AT_BOUND, _check_data, _Fit, _r2, _valid_rows


class MonoExpT2Fit(_Fit):
    """Result of :meth:`MonoExpT2Model.fit`: ``t2_ms``, ``m0``, ``offset``, ``r2``, ``residual``,
    ``flag``, ``success`` (``(...)`` arrays)."""

    def predict(self) -> np.ndarray:
        """``(..., n_echoes)`` model echo trains at the model's echo times."""
        te = self.model.echo_times_ms
        t2, m0, c = (self.maps[k][..., None] for k in ("t2_ms", "m0", "offset"))
        return m0 * np.exp(-te / t2) + np.nan_to_num(c)


class MonoExpT2Model:
    """Mono-exponential T2: ``S(TE) = M0 · exp(−TE/T2) [+ C]``.

    Parameters
    ----------
    acq : MeseAcquisition or array_like
        The acquisition, or the echo times in ms (any spacing).
    method : {'loglinear', 'nlls', 'nlls_offset'}
        Weighted log-linear least squares (weights S², i.e. the first-order noise propagation),
        nonlinear least squares, or NLLS with a constant offset ``C``.
    skip_first : bool
        Drop echo 1 (the echo least affected by stimulated echoes is the *first*, but the usual
        practice with imperfect refocusing is to discard it because it lacks the stimulated-echo
        contribution of the later ones).
    noise_floor : float, optional
        Rician noise standard deviation σ (signal units). The data are corrected by
        ``√max(S² − 2σ², 0)`` (the second-moment correction of Miller & Joseph, 1993) before fitting.
    t2_range_ms : (float, float)
        Range of T2 searched, ms.
    """

    def __init__(self, acq, method: str = "loglinear", skip_first: bool = False,
                 noise_floor: float | None = None, t2_range_ms=(1.0, 3000.0)):
        if method not in ("loglinear", "nlls", "nlls_offset"):
            raise InputError(None, f"unknown mono-exponential method {method!r} "
                             "(choose loglinear, nlls or nlls_offset)")
        te = acq.echo_times_ms if isinstance(acq, MeseAcquisition) else np.asarray(acq, float).ravel()
        self.acq = acq if isinstance(acq, MeseAcquisition) else None
        self.echo_times_ms = te
        self.method = method
        self.skip_first = bool(skip_first)
        if noise_floor is not None and not (np.isfinite(noise_floor) and noise_floor >= 0):
            raise InputError(None, f"noise floor must be ≥ 0 (got {noise_floor})")
        self.noise_floor = noise_floor
        lo, hi = t2_range_ms
        if not (0 < lo < hi):
            raise InputError(None, f"empty or invalid T2 range {t2_range_ms} ms")
        self.t2_range_ms = (float(lo), float(hi))
        n_par = 3 if method == "nlls_offset" else 2
        n_used = te.size - int(self.skip_first)
        if n_used <= n_par:
            raise InputError(None, f"{n_used} echoes cannot determine the {n_par} parameters of the "
                             f"{method} mono-exponential fit")
        self._sel = np.arange(int(self.skip_first), te.size)
        t = te[self._sel]
        self._grid_log = np.arange(np.log(lo), np.log(hi) + 0.02, 0.02)
        atoms = np.exp(-t[None, :] / np.exp(self._grid_log)[:, None])
        ones = np.ones_like(atoms) if method == "nlls_offset" else None
        q1, q2 = orthonormal_pairs(atoms, ones)
        self._q = np.concatenate([q1, q2]).T if q2 is not None else q1.T

    def _fun(self, t, offset: bool):
        def f(p):
            e = np.exp(-t[None, :] * p[:, 1:2])  # p[:, 1] = R2 = 1/T2 (1/ms)
            m = p[:, 0:1] * e
            cols = [e, -t[None, :] * m]
            if offset:
                m = m + p[:, 2:3]
                cols.append(np.ones_like(e))
            return m, np.stack(cols, axis=2)
        return f

    def fit_voxels(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """Fit ``y (N, n_echoes)``; returns ``(N,)`` arrays (see :class:`MonoExpT2Fit`)."""
        y = np.asarray(y, np.float64)
        n = y.shape[0]
        out = {k: np.full(n, np.nan) for k in ("t2_ms", "m0", "offset", "r2", "residual")}
        flag = np.full(n, FLAG_INVALID_DATA, np.uint8)
        valid = _valid_rows(y)
        t = self.echo_times_ms[self._sel]
        lo, hi = self.t2_range_ms
        if valid.any():
            yall = y[valid]
            ys = yall[:, self._sel]
            if self.noise_floor:
                ys = np.sqrt(np.maximum(ys ** 2 - 2 * self.noise_floor ** 2, 0.0))
            scale = np.maximum(ys.max(axis=1), 1e-30)
            yn = ys / scale[:, None]
            offset = np.zeros(len(yn))
            conv = np.ones(len(yn), bool)
            if self.method == "loglinear":
                w = yn ** 2  # WLS weights: var(log S) ≈ σ²/S²
                ly = np.log(np.where(yn > 0, yn, 1.0))
                sw, st, stt = w.sum(1), w @ t, w @ t ** 2
                sy, sty = (w * ly).sum(1), (w * ly) @ t
                det = sw * stt - st ** 2
                with np.errstate(divide="ignore", invalid="ignore"):
                    slope = (sw * sty - st * sy) / det
                    icpt = (stt * sy - st * sty) / det
                    t2 = -1.0 / slope
                amp = np.exp(icpt)
                bad = ~(np.isfinite(t2) & (t2 > 0) & (np.count_nonzero(w, axis=1) >= 2))
                t2 = np.where(bad, np.nan, np.clip(t2, lo, hi))
            else:
                has_off = self.method == "nlls_offset"
                proj = yn @ self._q
                G = self._grid_log.size
                energy = proj[:, :G] ** 2 + (proj[:, G:] ** 2 if has_off else 0.0)
                j = np.argmax(energy, axis=1)
                jf = parabolic_peak(energy, j)
                t2_0 = np.exp(np.interp(jf, np.arange(G), self._grid_log))
                e = np.exp(-t[None, :] / t2_0[:, None])
                if has_off:
                    basis = np.stack([e, np.ones_like(e)], axis=2)
                    ata = np.einsum("nmi,nmj->nij", basis, basis)
                    atb = np.einsum("nmi,nm->ni", basis, yn)
                    coef = np.linalg.solve(ata + 1e-12 * np.eye(2), atb[..., None])[..., 0]
                    p0 = np.column_stack([coef[:, 0], 1.0 / t2_0, coef[:, 1]])
                    lower = np.array([0.0, 1.0 / hi, -np.inf])
                    upper = np.array([np.inf, 1.0 / lo, np.inf])
                else:
                    amp0 = (e * yn).sum(1) / (e * e).sum(1)
                    p0 = np.column_stack([amp0, 1.0 / t2_0])
                    lower = np.array([0.0, 1.0 / hi])
                    upper = np.array([np.inf, 1.0 / lo])
                p, _, conv = batched_lm(self._fun(t, has_off), p0, yn, lower, upper, n_iter=20)
                amp, t2 = p[:, 0], 1.0 / p[:, 1]
                if has_off:
                    offset = p[:, 2]
                bad = ~np.isfinite(t2)
            m0 = amp * scale
            c = offset * scale
            model = m0[:, None] * np.exp(-t[None, :] / t2[:, None]) + c[:, None]
            ss_res = ((ys - model) ** 2).sum(1)
            fl = np.zeros(len(yn), np.uint8)
            fl |= np.where(bad, FLAG_INVALID_DATA, 0).astype(np.uint8)
            with np.errstate(invalid="ignore"):
                fl |= np.where((t2 <= lo * 1.0001) | (t2 >= hi * 0.9999), FLAG_T2_AT_BOUND, 0).astype(np.uint8)
            fl |= np.where(~conv, FLAG_NOT_CONVERGED, 0).astype(np.uint8)
            for k, v in {"t2_ms": t2, "m0": m0, "offset": c, "r2": _r2(ys, ss_res),
                         "residual": np.sqrt(ss_res / t.size)}.items():
                out[k][valid] = np.where(bad, np.nan, v)
            flag[valid] = fl
        out["flag"] = flag
        return out

    def fit(self, data, mask=None, *, chunk_voxels: int = 8192, n_jobs: int = 1,
            progress: bool = False) -> MonoExpT2Fit:
        """Fit every masked voxel of ``data (..., n_echoes)``; see :class:`EpgT2Model.fit`."""
        data, mask = _check_data(data, mask, self.echo_times_ms.size)
        vals = map_chunks(self.fit_voxels, data[mask], chunk_voxels=chunk_voxels, n_jobs=n_jobs,
                          progress=progress, desc=f"mono T2 ({self.method})")
        return MonoExpT2Fit(self, _Fit._scatter(mask, vals), mask)
