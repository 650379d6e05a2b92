"""T1 models, dipy style: inversion recovery, saturation recovery (multi-TR), variable flip angle.

Forward models (times in ms, angles in degrees):

- inversion recovery, magnitude:  ``S(TI) = |a + b · exp(−TI/T1)|`` with ``a ≈ M0 (1 + e^{−TR/T1})``,
  ``b ≈ −2 M0`` for a perfect inversion; polarity is restored by trying every sign pattern
  "the first k inversion times are negative" and keeping the best (Barral et al., MRM 2010);
- saturation recovery / multi-TR:  ``S(TR) = M0 · (1 − exp(−TR/T1))``;
- variable flip angle (spoiled gradient echo):
  ``S(α) = M0 · sin(B1·α) (1 − E1) / (1 − cos(B1·α) E1)``, ``E1 = exp(−TR/T1)``; initialised by the
  DESPOT1 linearisation ``S/sin α = E1 · S/tan α + M0 (1 − E1)``.

Every fit is a global search over a fine log-T1 grid with closed-form amplitudes, then a
bound-constrained Levenberg–Marquardt refinement (all voxels at once).
"""

from __future__ import annotations

import numpy as np

from alsseg.io.errors import InputError
from alsseg.relax._chunks import map_chunks
from alsseg.relax._lm import batched_lm, orthonormal_pairs, parabolic_peak
from alsseg.relax.t2 import FLAG_INVALID_DATA, FLAG_NOT_CONVERGED, FLAG_T2_AT_BOUND, _Fit, _r2, _valid_rows

#: T1 pinned at the edge of its range (same bit as the T2 models' range flag).
FLAG_T1_AT_BOUND = FLAG_T2_AT_BOUND


def ir_signal(ti_ms, t1_ms, m0=1.0, tr_ms=None, efficiency: float = 1.0):
    """Magnitude inversion-recovery signal ``(..., n_ti)``.

    ``S = M0 · |1 − (1 + efficiency) e^{−TI/T1} + e^{−TR/T1}|`` (the last term only with ``tr_ms``).
    """
    ti = np.asarray(ti_ms, float)
    t1 = np.asarray(t1_ms, float)[..., None]
    m0 = np.asarray(m0, float)[..., None]
    rec = np.exp(-np.asarray(tr_ms, float) / t1) if tr_ms is not None else 0.0
    return np.abs(m0 * (1 - (1 + efficiency) * np.exp(-ti / t1) + rec))


def sr_signal(tr_ms, t1_ms, m0=1.0):
    """Saturation-recovery / multi-TR signal ``(..., n_tr)``: ``M0 (1 − e^{−TR/T1})``."""
    tr = np.asarray(tr_ms, float)
    t1 = np.asarray(t1_ms, float)[..., None]
    return np.asarray(m0, float)[..., None] * (1 - np.exp(-tr / t1))


def vfa_signal(flip_deg, tr_ms: float, t1_ms, m0=1.0, b1=1.0):
    """Spoiled gradient-echo (variable flip angle) signal ``(..., n_flip)``."""
    a = np.deg2rad(np.asarray(flip_deg, float)) * np.asarray(b1, float)[..., None]
    e1 = np.exp(-tr_ms / np.asarray(t1_ms, float))[..., None]
    return np.asarray(m0, float)[..., None] * np.sin(a) * (1 - e1) / (1 - np.cos(a) * e1)


class T1Fit(_Fit):
    """Result of a T1 model fit: ``t1_ms``, ``m0``, ``r2``, ``residual``, ``flag``, ``success``
    (``(...)`` arrays); inversion recovery adds ``efficiency`` (``−b/a − 1``: 1 = perfect inversion,
    full recovery between inversions assumed; ``m0`` is then ``a``)."""

    def predict(self) -> np.ndarray:
        """``(..., n_measurements)`` model signals (NaN where the fit failed)."""
        return self.model.predict(self.maps)


def _check(x, name, minimum: int, path=None):
    x = np.asarray(x, float).ravel()
    if x.size < minimum:
        raise InputError(path, f"{x.size} {name} cannot determine this T1 model (needs ≥ {minimum})")
    if not np.all(np.isfinite(x)):
        raise InputError(path, f"{name} must be finite")
    return x


class _T1Model:
    """Shared machinery: log-T1 grid search with closed-form amplitudes, then LM."""

    n_meas: int
    kind = "T1"

    def __init__(self, t1_range_ms=(50.0, 5000.0), grid_step: float = 0.01):
        lo, hi = (float(v) for v in t1_range_ms)
        if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo < hi):
            raise InputError(None, f"empty or invalid T1 range {t1_range_ms} ms")
        self.t1_range_ms = (lo, hi)
        self._grid_log = np.arange(np.log(lo), np.log(hi) + grid_step, grid_step)

    def fit(self, data, mask=None, *, chunk_voxels: int = 8192, n_jobs: int = 1,
            progress: bool = False, aux=None) -> T1Fit:
        """Fit every masked voxel of ``data (..., n_measurements)`` (measurement axis last)."""
        data = np.asarray(data)
        if data.ndim < 1 or data.shape[-1] != self.n_meas:
            raise InputError(None, f"data has {data.shape[-1] if data.ndim else 0} measurements on its last "
                             f"axis, the model has {self.n_meas}")
        if mask is None:
            mask = np.ones(data.shape[:-1], bool)
        mask = np.asarray(mask)
        if mask.shape != data.shape[:-1]:
            raise InputError(None, f"mask shape {mask.shape} does not match the data grid {data.shape[:-1]}")
        mask = mask.astype(bool)
        y = data[mask]
        if aux is not None:
            y = np.concatenate([y, np.asarray(aux)[mask][:, None]], axis=1)
        vals = map_chunks(self.fit_voxels, y, chunk_voxels=chunk_voxels, n_jobs=n_jobs,
                          progress=progress, desc=f"{self.kind} fit")
        return T1Fit(self, _Fit._scatter(mask, vals), mask)

    def _finish(self, y, model, t1, m0, conv, extra=None):
        ss = ((y - model) ** 2).sum(1)
        lo, hi = self.t1_range_ms
        fl = np.where(np.isfinite(t1), 0, FLAG_INVALID_DATA).astype(np.uint8)
        with np.errstate(invalid="ignore"):
            fl |= np.where((t1 <= lo * 1.0001) | (t1 >= hi * 0.9999), FLAG_T1_AT_BOUND, 0).astype(np.uint8)
        fl |= np.where(~conv, FLAG_NOT_CONVERGED, 0).astype(np.uint8)
        out = {"t1_ms": t1, "m0": m0, "r2": _r2(y, ss), "residual": np.sqrt(ss / y.shape[1])}
        out.update(extra or {})
        out["flag"] = fl
        return out

    def _empty(self, n, names):
        out = {k: np.full(n, np.nan) for k in names}
        out["flag"] = np.full(n, FLAG_INVALID_DATA, np.uint8)
        return out

    def fit_voxels(self, y):  # pragma: no cover - abstract
        raise NotImplementedError


class InversionRecoveryT1Model(_T1Model):
    """Magnitude inversion recovery with polarity restoration.

    Parameters
    ----------
    inversion_times_ms : (n_ti,) array_like
        At least 3 distinct inversion times, ms (any order).
    tr_ms : float, optional
        Repetition time (informative; the free ``a``, ``b`` absorb incomplete recovery).
    t1_range_ms : (float, float)
        T1 range searched.
    """

    kind = "IR T1"

    def __init__(self, inversion_times_ms, tr_ms: float | None = None, t1_range_ms=(50.0, 5000.0)):
        super().__init__(t1_range_ms)
        ti = _check(inversion_times_ms, "inversion times", 3)
        if np.unique(ti).size < 3:
            raise InputError(None, "inversion recovery needs at least 3 distinct inversion times")
        self.inversion_times_ms = ti
        self.tr_ms = tr_ms
        self.n_meas = ti.size
        self._order = np.argsort(ti)
        t = ti[self._order]
        e = np.exp(-t[None, :] / np.exp(self._grid_log)[:, None])
        q1, q2 = orthonormal_pairs(np.ones_like(e), e)
        self._q = np.concatenate([q1, q2]).T  # (n, 2G)

    def _fun(self, t):
        def f(p):
            e = np.exp(-t[None, :] * p[:, 2:3])
            m = p[:, 0:1] + p[:, 1:2] * e
            return m, np.stack([np.ones_like(e), e, -t[None, :] * p[:, 1:2] * e], axis=2)
        return f

    def fit_voxels(self, y):
        """Fit ``y (N, n_ti)`` magnitudes; returns ``(N,)`` arrays."""
        y = np.asarray(y, np.float64)
        out = self._empty(y.shape[0], ("t1_ms", "m0", "efficiency", "r2", "residual"))
        valid = _valid_rows(y)
        if not valid.any():
            return out
        ys = y[valid][:, self._order]
        scale = ys.max(axis=1)
        yn = ys / scale[:, None]
        n, G = yn.shape[1], self._grid_log.size
        ek_all = np.empty((len(yn), n + 1))
        jk_all = np.empty((len(yn), n + 1), int)
        jf_all = np.empty((len(yn), n + 1))
        for k in range(n + 1):  # first k points negative
            sk = yn.copy()
            sk[:, :k] *= -1
            proj = sk @ self._q
            e = proj[:, :G] ** 2 + proj[:, G:] ** 2
            j = np.argmax(e, axis=1)
            ek_all[:, k] = e[np.arange(len(e)), j]
            jk_all[:, k] = j
            jf_all[:, k] = parabolic_peak(e, j)
        order = np.argsort(-ek_all, axis=1)
        t = self.inversion_times_ms[self._order]
        lo, hi = self.t1_range_ms
        rows = np.arange(len(yn))
        best = None
        # refine the two best polarity patterns (a point near the null can go either way)
        for rank in range(min(2, n + 1)):
            k = order[:, rank]
            t1_0 = np.exp(np.interp(jf_all[rows, k], np.arange(G), self._grid_log))
            signed = yn * np.where(np.arange(n)[None, :] < k[:, None], -1.0, 1.0)
            e0 = np.exp(-t[None, :] / t1_0[:, None])
            basis = np.stack([np.ones_like(e0), e0], axis=2)
            ab = np.linalg.solve(np.einsum("nmi,nmj->nij", basis, basis) + 1e-12 * np.eye(2),
                                 np.einsum("nmi,nm->ni", basis, signed)[..., None])[..., 0]
            p0 = np.column_stack([ab, 1.0 / t1_0])
            pk, ck, convk = batched_lm(self._fun(t), p0, signed, np.array([-np.inf, -np.inf, 1 / hi]),
                                       np.array([np.inf, np.inf, 1 / lo]), n_iter=30)
            if best is None:
                best = [pk, ck, convk]
            else:
                take = ck < best[1]
                best = [np.where(take[:, None], pk, best[0]), np.where(take, ck, best[1]),
                        np.where(take, convk, best[2])]
        p, _, conv = best
        t1 = 1.0 / p[:, 2]
        model = np.abs(p[:, 0:1] + p[:, 1:2] * np.exp(-t[None, :] / t1[:, None]))
        with np.errstate(divide="ignore", invalid="ignore"):
            eff = -p[:, 1] / p[:, 0] - 1.0
        res = self._finish(yn, model, t1, p[:, 0] * scale, conv, {"efficiency": eff})
        res["residual"] = res["residual"] * scale
        for k, v in res.items():
            out[k][valid] = v
        return out

    def predict(self, maps):
        t1, m0, eff = maps["t1_ms"], maps["m0"], maps["efficiency"]
        t = self.inversion_times_ms
        return np.abs(m0[..., None] * (1 - (1 + eff[..., None]) * np.exp(-t / t1[..., None])))


class SaturationRecoveryT1Model(_T1Model):
    """Saturation recovery / multi-TR: ``S = M0 (1 − e^{−TR/T1})``.

    Parameters
    ----------
    repetition_times_ms : (n_tr,) array_like
        At least 3 distinct recovery (repetition) times, ms.
    """

    kind = "SR T1"

    def __init__(self, repetition_times_ms, t1_range_ms=(50.0, 5000.0)):
        super().__init__(t1_range_ms)
        tr = _check(repetition_times_ms, "repetition times", 3)
        if np.unique(tr).size < 3 or np.any(tr <= 0):
            raise InputError(None, "saturation recovery needs at least 3 distinct positive repetition times")
        self.repetition_times_ms = tr
        self.n_meas = tr.size
        a = 1 - np.exp(-tr[None, :] / np.exp(self._grid_log)[:, None])
        self._q = orthonormal_pairs(a, None)[0].T

    def fit_voxels(self, y):
        """Fit ``y (N, n_tr)``; returns ``(N,)`` arrays."""
        y = np.asarray(y, np.float64)
        out = self._empty(y.shape[0], ("t1_ms", "m0", "r2", "residual"))
        valid = _valid_rows(y)
        if not valid.any():
            return out
        yv = y[valid]
        scale = yv.max(axis=1)
        yn = yv / scale[:, None]
        e = (yn @ self._q) ** 2
        jf = parabolic_peak(e, np.argmax(e, axis=1))
        t1_0 = np.exp(np.interp(jf, np.arange(e.shape[1]), self._grid_log))
        tr = self.repetition_times_ms
        a = 1 - np.exp(-tr[None, :] / t1_0[:, None])
        m0 = (a * yn).sum(1) / (a * a).sum(1)

        def f(p):
            ex = np.exp(-tr[None, :] * p[:, 1:2])
            return p[:, 0:1] * (1 - ex), np.stack([1 - ex, p[:, 0:1] * tr[None, :] * ex], axis=2)

        lo, hi = self.t1_range_ms
        p, _, conv = batched_lm(f, np.column_stack([m0, 1 / t1_0]), yn, np.array([0.0, 1 / hi]),
                                np.array([np.inf, 1 / lo]), n_iter=30)
        t1 = 1 / p[:, 1]
        model = p[:, 0:1] * (1 - np.exp(-tr[None, :] / t1[:, None]))
        res = self._finish(yn, model, t1, p[:, 0] * scale, conv)
        res["residual"] = res["residual"] * scale
        for k, v in res.items():
            out[k][valid] = v
        return out

    def predict(self, maps):
        return sr_signal(self.repetition_times_ms, maps["t1_ms"], maps["m0"])


class VfaT1Model(_T1Model):
    """Variable flip angle (spoiled gradient echo) T1, optionally corrected by a B1 map.

    Parameters
    ----------
    flip_angles_deg : (n_flip,) array_like
        At least 2 distinct nominal flip angles, degrees.
    tr_ms : float
        Repetition time, ms.

    ``fit(data, mask, b1=...)`` takes an optional ``(...)`` B1 map (1 = nominal; e.g. the EPG
    fit's ``b1``) that scales the flip angles voxel by voxel.
    """

    kind = "VFA T1"

    def __init__(self, flip_angles_deg, tr_ms: float, t1_range_ms=(50.0, 5000.0)):
        super().__init__(t1_range_ms)
        fa = _check(flip_angles_deg, "flip angles", 2)
        if np.unique(fa).size < 2 or np.any((fa <= 0) | (fa >= 180)):
            raise InputError(None, "variable flip angle needs at least 2 distinct flip angles in (0°, 180°)")
        if not (tr_ms is not None and np.isfinite(tr_ms) and tr_ms > 0):
            raise InputError(None, f"variable flip angle needs TR > 0 ms (got {tr_ms})")
        self.flip_angles_deg = fa
        self.tr_ms = float(tr_ms)
        self.n_meas = fa.size

    def fit(self, data, mask=None, *, b1=None, **kwargs) -> T1Fit:
        """Fit ``data (..., n_flip)``; ``b1 (...)`` optional flip-angle scale map."""
        data = np.asarray(data)
        if b1 is None:
            b1 = np.ones(data.shape[:-1])
        b1 = np.asarray(b1, float)
        if b1.shape != data.shape[:-1]:
            raise InputError(None, f"B1 map shape {b1.shape} does not match the data grid {data.shape[:-1]}")
        return super().fit(data, mask, aux=b1, **kwargs)

    def fit_voxels(self, yb):
        """Fit ``yb (N, n_flip + 1)``: signals then the voxel's B1 in the last column."""
        yb = np.asarray(yb, np.float64)
        y, b1 = yb[:, :-1], yb[:, -1]
        out = self._empty(y.shape[0], ("t1_ms", "m0", "b1", "r2", "residual"))
        valid = _valid_rows(y) & np.isfinite(b1) & (b1 > 0)
        if not valid.any():
            return out
        yv, bv = y[valid], b1[valid]
        scale = yv.max(axis=1)
        yn = yv / scale[:, None]
        a = np.deg2rad(self.flip_angles_deg)[None, :] * bv[:, None]
        # DESPOT1 linearisation: Y = E1 X + M0 (1 − E1)
        X, Y = yn / np.tan(a), yn / np.sin(a)
        xm, ym = X.mean(1, keepdims=True), Y.mean(1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            e1 = ((X - xm) * (Y - ym)).sum(1) / ((X - xm) ** 2).sum(1)
        lo, hi = self.t1_range_ms
        e1 = np.clip(np.nan_to_num(e1, nan=0.5), np.exp(-self.tr_ms / lo), np.exp(-self.tr_ms / hi))
        m0 = np.maximum((ym[:, 0] - e1 * xm[:, 0]) / (1 - e1), 1e-6)
        tr = self.tr_ms

        def f(p, ang):
            e = np.exp(-tr * p[:, 1:2])
            s, c = np.sin(ang), np.cos(ang)
            den = 1 - c * e
            m = p[:, 0:1] * s * (1 - e) / den
            dm_de = p[:, 0:1] * s * (c - 1) / den ** 2
            return m, np.stack([s * (1 - e) / den, dm_de * (-tr * e)], axis=2)

        p, _, conv = batched_lm(f, np.column_stack([m0, -np.log(e1) / tr]), yn,
                                np.array([0.0, 1 / hi]), np.array([np.inf, 1 / lo]), n_iter=30, aux=a)
        t1 = 1 / p[:, 1]
        model = f(p, a)[0]
        res = self._finish(yn, model, t1, p[:, 0] * scale, conv, {"b1": bv})
        res["residual"] = res["residual"] * scale
        for k, v in res.items():
            out[k][valid] = v
        return out

    def predict(self, maps):
        return vfa_signal(self.flip_angles_deg, self.tr_ms, maps["t1_ms"], maps["m0"], maps["b1"])
