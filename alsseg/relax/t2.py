"""T2 models of multi-echo spin-echo data, dipy style: ``Model(acq).fit(data, mask) -> Fit``.

Two-component slice-profile EPG (Marty et al., NMR Biomed 2016; Weigel, JMRI 2015)::

    S(TE_n) = M0 · [(1 − FF) · EPG_n(T2w, T1w, B1) + FF · EPG_n(T2f, T1f, B1)]

fitted for water T2, fat fraction FF, B1 and M0 (the mono-exponential baselines are in
:mod:`alsseg.relax.mono`; the smooth-B1 fit in :mod:`alsseg.relax.b1`).

The EPG fit is variable projection followed by continuous refinement:

1. every voxel's echo train is normalised and projected onto the dictionary's low-rank echo
   basis (``R`` ≈ 6–10 numbers instead of 17 echoes);
2. *global search*: for each coarse atom (water T2, B1) the water and fat amplitudes are linear,
   so the best fit within the atom is the projection onto ``span(water, fat)``; one float32 GEMM
   of all voxels against the atoms' orthonormal pairs gives every projection and the atom of
   largest projected energy is kept;
3. *refinement*: bound-constrained Levenberg–Marquardt on (water amplitude, fat amplitude, T2, B1)
   over the C¹ Catmull-Rom interpolant of the fine dictionary, so T2 is not quantised to the grid.
   Amplitudes are kept ≥ 0 (FF ∈ [0, 1]).

Voxels whose data cannot be fitted (all zero, negative values, non-finite) get NaN maps and a flag,
never an exception.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from alsseg.io.errors import InputError
from alsseg.relax._chunks import map_chunks
from alsseg.relax._lm import batched_lm, orthonormal_pairs
from alsseg.relax.acquisition import MeseAcquisition
from alsseg.relax.dictionary import EpgDictionary
from alsseg.relax.epg import cpmg_echoes

#: Fit-quality flag bits (``fit.flag``): 0 = good fit.
FLAG_INVALID_DATA = 1      # all-zero, negative or non-finite echoes: not fitted
FLAG_T2_AT_BOUND = 2       # water T2 (or mono T2) pinned at the edge of its range
FLAG_B1_AT_BOUND = 4       # B1 pinned at the edge of its range
FLAG_NOT_CONVERGED = 8     # the refinement did not converge within its iterations

#: B1 handling of :meth:`EpgT2Model.fit`: a smooth field per slice (default) or one B1 per voxel.
B1_MODES = ("smooth", "voxel")


def _check_data(data, mask, n_echoes: int, path=None):
    """Validate ``data (..., E)`` and ``mask (...)``; return float data, bool mask."""
    data = np.asarray(data)
    if data.ndim < 1 or data.shape[-1] != n_echoes:
        raise InputError(path, f"data has {data.shape[-1] if data.ndim else 0} echoes on its last axis, "
                         f"the acquisition has {n_echoes}")
    if mask is None:
        mask = np.ones(data.shape[:-1], bool)
    else:
        mask = np.asarray(mask)
        if mask.shape != data.shape[:-1]:
            raise InputError(path, f"mask shape {mask.shape} does not match the data grid {data.shape[:-1]}")
        mask = mask.astype(bool)
    return data, mask


def _valid_rows(y: np.ndarray) -> np.ndarray:
    """Rows of ``y (N, E)`` that can be fitted: finite, non-negative, not all zero."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(y).all(axis=1) & (y >= 0).all(axis=1) & (y.sum(axis=1) > 0)


def _fit_flags(u, u_range, v, v_range, converged, total) -> np.ndarray:
    """``(N,)`` uint8 flag bits of a two-component fit: T2 parameter ``u`` or B1 parameter ``v`` at
    the edge of their ranges (``(lo, hi)``), not converged, no signal (``total <= 0``)."""
    eps = 1e-6
    fl = np.zeros(np.shape(u)[0], np.uint8)
    fl |= np.where((u <= u_range[0] + eps) | (u >= u_range[1] - eps), FLAG_T2_AT_BOUND, 0).astype(np.uint8)
    fl |= np.where((v <= v_range[0] + eps) | (v >= v_range[1] - eps), FLAG_B1_AT_BOUND, 0).astype(np.uint8)
    fl |= np.where(~converged, FLAG_NOT_CONVERGED, 0).astype(np.uint8)
    fl |= np.where(~(total > 0), FLAG_INVALID_DATA, 0).astype(np.uint8)
    return fl


def _r2(y: np.ndarray, ss_res: np.ndarray) -> np.ndarray:
    ss_tot = ((y - y.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.nan)


def two_component_signal(acq: MeseAcquisition, t2_water_ms, fat_fraction, b1, m0=1.0, *,
                         dictionary: EpgDictionary | None = None) -> np.ndarray:
    """Forward model: two-component slice-profile EPG echo trains.

    Parameters
    ----------
    acq : MeseAcquisition
    t2_water_ms, fat_fraction, b1, m0 : array_like, broadcastable to shape ``S``
        Water T2 (ms), fat fraction (0–1), B1 scale, proton density.
    dictionary : EpgDictionary, optional
        Interpolate in this table (fast; relative error ≲ 1e-5) instead of simulating.
        Without one, a few distinct (T2, B1) pairs are simulated exactly and many (more than
        2,000) are interpolated in a dictionary built for their range.

    Returns
    -------
    (*S, n_echoes) ndarray
        Echo magnitudes.
    """
    t2, ff, b1, m0 = np.broadcast_arrays(*(np.asarray(a, float) for a in (t2_water_ms, fat_fraction, b1, m0)))
    if np.any(~np.isfinite(t2) | (t2 <= 0)):
        raise ValueError("water T2 must be finite and > 0 ms")
    if np.any((ff < 0) | (ff > 1)):
        raise ValueError("fat fraction must be within [0, 1]")
    if np.any(~np.isfinite(b1) | (b1 <= 0)):
        raise ValueError("B1 must be finite and > 0")
    if dictionary is not None:
        return dictionary.signal(t2, ff, b1, m0)
    pairs, inverse = np.unique(np.stack([t2.ravel(), b1.ravel()], axis=1), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    if len(pairs) > 2000:
        lo, hi = float(t2.min()), float(t2.max())
        blo, bhi = float(b1.min()), float(b1.max())
        dic = EpgDictionary(acq, (lo * 0.999, max(hi * 1.001, lo * 1.01)),
                            (blo - 1e-3, max(bhi + 1e-3, blo + 0.01)))
        return dic.signal(t2, ff, b1, m0)
    kw: dict[str, Any] = {"refocus_deg": acq.refocus_deg, "excite_deg": acq.excite_deg, "profile": acq.profile}
    water = cpmg_echoes(pairs[:, 0], acq.water_t1_ms, pairs[:, 1], acq.echo_spacing_ms, acq.n_echoes, **kw)
    water *= acq.recovery(acq.water_t1_ms)
    b1u, binv = np.unique(pairs[:, 1], return_inverse=True)
    fat = cpmg_echoes(np.full(b1u.size, acq.fat_t2_ms), acq.fat_t1_ms, b1u, acq.echo_spacing_ms,
                      acq.n_echoes, **kw) * acq.recovery(acq.fat_t1_ms)
    fat = fat[binv.ravel()]
    f = ff.ravel()[:, None]
    sig = m0.ravel()[:, None] * ((1 - f) * water[inverse] + f * fat[inverse])
    return sig.reshape(*t2.shape, acq.n_echoes)


class _Fit:
    """Parameter maps of a fit, shaped like the data's spatial grid (NaN outside mask / failures)."""

    _names: tuple[str, ...] = ()

    def __init__(self, model, maps: dict[str, np.ndarray], mask: np.ndarray):
        self.model = model
        self.maps = maps
        self.mask = mask

    def __getattr__(self, name):
        maps = self.__dict__.get("maps", {})
        if name in maps:
            return maps[name]
        raise AttributeError(name)

    @property
    def success(self) -> np.ndarray:
        """``(...)`` bool: fitted, finite and flagged good (``flag == 0``)."""
        return self.mask & (self.maps["flag"] == 0)

    @staticmethod
    def _scatter(mask: np.ndarray, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for k, v in values.items():
            if k == "flag":
                full = np.zeros(mask.shape, np.uint8)
            else:
                full = np.full(mask.shape, np.nan, np.float32 if v.dtype != bool else bool)
            full[mask] = v
            out[k] = full
        return out


class EpgT2Fit(_Fit):
    """Result of :meth:`EpgT2Model.fit`.

    Attributes (all ``(...)`` arrays on the data's spatial grid)
    ----------
    t2_water_ms : water T2, ms.
    fat_fraction : fat fraction, 0–1.
    b1 : transmit scale (1 = nominal).
    m0 : proton density, signal units.
    r2 : coefficient of determination of the fit over the echoes.
    residual : RMS residual over the echoes, signal units.
    flag : uint8 bit set (``FLAG_*``; 0 = good).
    success : bool, fitted and ``flag == 0``.
    """

    def predict(self) -> np.ndarray:
        """``(..., n_echoes)`` model echo trains (NaN where the fit failed)."""
        ok = self.mask & np.isfinite(self.maps["t2_water_ms"])
        out = np.full(self.mask.shape + (self.model.acq.n_echoes,), np.nan)
        if ok.any():
            out[ok] = self.model.dictionary.signal(
                np.clip(self.maps["t2_water_ms"][ok], *self.model.dictionary.t2_range_ms),
                self.maps["fat_fraction"][ok],
                np.clip(self.maps["b1"][ok], *self.model.dictionary.b1_range),
                self.maps["m0"][ok])
        return out


class EpgT2Model:
    """Two-component (water + fat) slice-profile EPG model of a MESE echo train.

    Parameters
    ----------
    acq : MeseAcquisition
        Echo spacing, echo count, TR, flip angles, slice profile, fat T2 and T1s.
    t2_range_ms : (float, float)
        Range of water T2 searched, ms.
    b1_range : (float, float)
        Range of B1 searched.
    n_iter : int
        Maximum Levenberg–Marquardt iterations of the refinement.
    second_start_ratio : float
        A second refinement starts from the best coarse atom whose B1 differs from the best atom's
        by more than ``second_start_b1_distance`` (another basin: B1 and its mirror across the
        180° refocusing give similar trains) when that atom's unexplained energy (fraction of the
        voxel's energy) is below the refined fit's plus this factor × the largest energy the coarse
        grid can miss on noiseless trains (estimated at construction); the better fit is kept.
    second_start_b1_distance : float
        See ``second_start_ratio``.
    coarse_stride : (int, int)
        Global-search atoms = every ``stride``-th node of the fine dictionary along (T2, B1).
    t2_step, b1_step : float
        Fine dictionary steps (log T2, B1).
    n_jobs : int
        Threads used to build the dictionary (the fit takes its own ``n_jobs``).
    tol : float
        A voxel's refinement stops once an accepted step lowers its squared residual by less than
        this fraction, or moves T2 by < 0.003 % / B1 by < 2e-5 / amplitudes by < 1e-3 (relative).

    Raises
    ------
    InputError
        Empty or invalid ranges, water T2 range reaching the fat T2, fewer than 5 echoes.
    """

    n_params = 4

    def __init__(self, acq: MeseAcquisition, *, t2_range_ms=(10.0, 100.0), b1_range=(0.5, 1.4),
                 n_iter: int = 40, coarse_stride=(2, 2), second_start_ratio: float = 0.3,
                 second_start_b1_distance: float = 0.12, t2_step: float = 0.03, b1_step: float = 0.02,
                 tol: float = 1e-3, n_jobs: int = 1):
        if acq.n_echoes <= self.n_params:
            raise InputError(None, f"{acq.n_echoes} echoes cannot determine the {self.n_params} parameters "
                             "of the two-component EPG model (water T2, fat fraction, B1, M0)")
        self.acq = acq
        self.n_iter = int(n_iter)
        self.second_start_ratio = float(second_start_ratio)
        self.second_start_b1_distance = float(second_start_b1_distance)
        self.tol = float(tol)
        self.dictionary = dic = EpgDictionary(acq, t2_range_ms, b1_range, t2_step, b1_step, n_jobs=n_jobs)
        uhi, vhi = dic.u_bounds[1], dic.v_bounds[1]
        iu = np.unique(np.r_[np.arange(1, int(np.floor(uhi)) + 1, coarse_stride[0]), int(np.floor(uhi))])
        iv = np.unique(np.r_[np.arange(1, int(np.floor(vhi)) + 1, coarse_stride[1]), int(np.floor(vhi))])
        gv, gu = np.meshgrid(iv, iu, indexing="ij")  # atom j = b·nu + a: T2 varies fastest
        self._coarse_u = gu.ravel().astype(float)
        self._coarse_v = gv.ravel().astype(float)
        w = dic.water[gu.ravel(), gv.ravel()]
        f = dic.fat[gv.ravel()]
        q1, q2 = orthonormal_pairs(w, f)
        self._q = np.ascontiguousarray(np.concatenate([q1, q2]).T.astype(np.float32))  # (R, 2J)
        # the same projections with half the GEMM: y·q2 = (y·f_b − c_j y·q1) / n_j, where f_b is the
        # fat atom of the atom's B1 node, c_j = f_b·q1_j and n_j = |f_b − c_j q1_j|
        nu_, nv_ = iu.size, iv.size
        fb = dic.fat[iv]                                                # (nv, R)
        c = np.sum(f * q1, axis=1)
        nrm = np.linalg.norm(f - c[:, None] * q1, axis=1)
        self._qcat = np.ascontiguousarray(np.concatenate([q1, fb]).T.astype(np.float32))  # (R, J + nv)
        self._fc = c.reshape(nv_, nu_).astype(np.float32)
        self._finv = np.where(nrm > 1e-12, 1.0 / np.maximum(nrm, 1e-300), 0.0).reshape(nv_, nu_).astype(np.float32)
        basis2 = np.stack([w, f], axis=2)  # (J, R, 2)
        self._pinv = np.linalg.pinv(basis2)  # (J, 2, R)
        self._iu, self._iv = iu.astype(float), iv.astype(float)
        self._coarse_b1 = dic.v_to_b1(iv.astype(float))  # (nv,)
        # largest energy the coarse grid can miss for a noiseless train (fixed-seed sample of the
        # parameter box): a basin whose best coarse atom is within this of the refined fit may hide
        # a better minimum
        rng = np.random.default_rng(12345)
        n_s = 4000
        sample = dic.signal(np.exp(rng.uniform(np.log(dic.t2_range_ms[0]), np.log(dic.t2_range_ms[1]), n_s)),
                            rng.uniform(0.0, 0.8, n_s), rng.uniform(*dic.b1_range, n_s))
        zs = sample / np.linalg.norm(sample, axis=1, keepdims=True) @ dic.basis
        ps = zs.astype(np.float32) @ self._q
        J = self._coarse_u.size
        self._coarse_loss = float(np.max(1.0 - (ps[:, :J] ** 2 + ps[:, J:] ** 2).max(axis=1)))

    # --------------------------------------------------------------- voxel engine
    def _model_fun(self, p):
        w, f, wu, wv, fv = self.dictionary.interpolate(p[:, 2], p[:, 3])
        dt = w.dtype
        aw, af = p[:, 0:1].astype(dt), p[:, 1:2].astype(dt)
        m = aw * w + af * f
        jac = np.empty(w.shape + (4,), dt)
        jac[:, :, 0] = w
        jac[:, :, 1] = f
        np.multiply(aw, wu, out=jac[:, :, 2])
        np.multiply(aw, wv, out=jac[:, :, 3])
        jac[:, :, 3] += af * fv
        return m, jac

    def _refine(self, z, j, u0=None, v0=None, target=None):
        """Levenberg–Marquardt from coarse atoms ``j (n,)`` (optionally at sub-grid ``u0, v0``);
        ``target``: give up where the cost cannot fall below it."""
        dic = self.dictionary
        amps = np.einsum("nkr,nr->nk", self._pinv[j], z)
        amps = np.maximum(amps, 0.0)
        amps[:, 0] = np.where(amps.sum(axis=1) > 0, amps[:, 0], 1.0)
        p0 = np.column_stack([amps, self._coarse_u[j] if u0 is None else u0,
                              self._coarse_v[j] if v0 is None else v0])
        (ulo, uhi), (vlo, vhi) = dic.u_bounds, dic.v_bounds
        lower = np.array([0.0, 0.0, ulo, vlo])
        upper = np.array([np.inf, np.inf, uhi, vhi])
        return batched_lm(self._model_fun, p0, z.astype(self.dictionary.dtype), lower, upper, n_iter=self.n_iter, tol=self.tol, step_tol=1e-3,
                          target=target)

    @staticmethod
    def _vertex(x, k, em, e0, ep):
        """Sub-grid maximum along one axis: parabola through the energies at nodes ``k−1, k, k+1``
        (``em, e0, ep``; ignored at the ends of the axis ``x``)."""
        K = x.size
        kc = np.clip(k, 1, K - 2)
        x0, x1, x2 = x[kc - 1], x[kc], x[kc + 1]
        num = (x1 - x0) ** 2 * (e0 - ep) - (x1 - x2) ** 2 * (e0 - em)
        den = (x1 - x0) * (e0 - ep) - (x1 - x2) * (e0 - em)
        with np.errstate(divide="ignore", invalid="ignore"):
            xv = x1 - 0.5 * num / den
        ok = (k == kc) & np.isfinite(xv) & (den != 0)
        return np.where(ok, np.clip(xv, x0, x2), x[k])

    def _start(self, energy3, amax_u, v):
        """Atom index and sub-grid start at B1 node ``v (n,)``; ``energy3 (n, nv, nu)``."""
        r = np.arange(len(v))
        nv, nu = energy3.shape[1:]
        u = amax_u[r, v]
        uc = np.clip(u, 1, nu - 2)
        vc = np.clip(v, 1, nv - 2)
        u_sub = self._vertex(self._iu, u, energy3[r, v, uc - 1], energy3[r, v, u], energy3[r, v, uc + 1])
        v_sub = self._vertex(self._iv, v, energy3[r, vc - 1, u], energy3[r, v, u], energy3[r, vc + 1, u])
        return v * nu + u, u_sub, v_sub

    def _coarse(self, z, block: int = 2048):
        """Global search over the coarse atoms, in cache-sized blocks of voxels.

        Returns the best atom (``j1``) with its sub-grid start (``u1``, ``v1``) and the best atom of
        another B1 basin (``j2``, ``u2``, ``v2``) with its projected energy ``e2`` (−inf if none).
        """
        n = z.shape[0]
        out = {k: np.empty(n, np.intp) for k in ("j1", "j2")}
        out.update({k: np.empty(n) for k in ("u1", "v1", "u2", "v2", "e2")})
        nu, nv = self._iu.size, self._iv.size
        J = nu * nv
        for s in range(0, n, block):
            sl = slice(s, min(n, s + block))
            proj = z[sl].astype(np.float32) @ self._qcat
            p1 = proj[:, :J].reshape(-1, nv, nu)
            p2 = proj[:, J:, None] - self._fc * p1
            p2 *= self._finv
            energy3 = np.square(p1)
            energy3 += np.square(p2, out=p2)
            amax_u = energy3.argmax(axis=2)     # (b, nv): best T2 node at each B1 node
            emax_u = np.take_along_axis(energy3, amax_u[:, :, None], axis=2)[:, :, 0]
            vb = np.argmax(emax_u, axis=1)
            out["j1"][sl], out["u1"][sl], out["v1"][sl] = self._start(energy3, amax_u, vb)
            # a second basin: the best atom whose B1 is far from the best one (B1 and its mirror
            # across the 180° refocusing give similar trains)
            far = np.abs(self._coarse_b1[None, :] - self._coarse_b1[vb][:, None]) > self.second_start_b1_distance
            e_far = np.where(far, emax_u, -np.inf)
            v2 = np.argmax(e_far, axis=1)
            out["e2"][sl] = e_far[np.arange(len(v2)), v2]
            out["j2"][sl], out["u2"][sl], out["v2"][sl] = self._start(energy3, amax_u, v2)
        return out

    def fit_voxels(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """Fit ``y (N, n_echoes)`` echo trains; returns ``(N,)`` arrays (see :class:`EpgT2Fit`)."""
        y = np.asarray(y)
        n = y.shape[0]
        dic = self.dictionary
        out = {k: np.full(n, np.nan) for k in ("t2_water_ms", "fat_fraction", "b1", "m0", "r2", "residual")}
        flag = np.full(n, FLAG_INVALID_DATA, np.uint8)
        valid = _valid_rows(y)
        if valid.any():
            yv = y[valid].astype(np.float64)
            scale = np.linalg.norm(yv, axis=1)
            yn = yv / scale[:, None]
            z = yn @ dic.basis
            rho = np.maximum(1.0 - np.einsum("nr,nr->n", z, z), 0.0)
            cs = self._coarse(z)
            p, cost, conv = self._refine(z, cs["j1"], cs["u1"], cs["v1"])
            e_other = cs["e2"]
            # the other basin could hold a better fit if its best coarse atom misses no more than the
            # refined fit does plus what the coarse grid can miss
            c1 = cost + rho
            second = np.isfinite(e_other) & ((1.0 - e_other) <= c1 + self.second_start_ratio * self._coarse_loss)
            if second.any():
                sel = np.flatnonzero(second)
                p2, cost2, conv2 = self._refine(z[sel], cs["j2"][sel], cs["u2"][sel], cs["v2"][sel],
                                                target=cost[sel])
                take = cost2 < cost[sel]
                idx = sel[take]
                p[idx], cost[idx], conv[idx] = p2[take], cost2[take], conv2[take]
            (ulo, uhi), (vlo, vhi) = dic.u_bounds, dic.v_bounds
            aw, af = p[:, 0], p[:, 1]
            tot = aw + af
            ss_res = (cost + rho) * scale ** 2
            with np.errstate(divide="ignore", invalid="ignore"):
                vals = {
                    "t2_water_ms": dic.u_to_t2(p[:, 2]),
                    "fat_fraction": np.where(tot > 0, af / tot, np.nan),
                    "b1": dic.v_to_b1(p[:, 3]),
                    "m0": tot * scale,
                    "r2": _r2(yv, ss_res),
                    "residual": np.sqrt(ss_res / y.shape[1]),
                }
            fl = _fit_flags(p[:, 2], (ulo, uhi), p[:, 3], (vlo, vhi), conv, tot)
            for k, v in vals.items():
                out[k][valid] = v
            flag[valid] = fl
        out["flag"] = flag
        return out

    def fit(self, data, mask=None, *, b1: str = "smooth", slice_axis: int = 2, chunk_voxels: int = 16384,
            n_jobs: int = 1, progress: bool = False) -> EpgT2Fit:
        """Fit every masked voxel.

        Parameters
        ----------
        data : (..., n_echoes) ndarray
            Magnitude echo trains, echo axis last. ``b1='smooth'`` needs an image grid:
            ``(X, Y, n_echoes)`` or ``(X, Y, Z, n_echoes)``.
        mask : (...) bool ndarray, optional
            Voxels to fit (default: all).
        b1 : {'smooth', 'voxel'}
            ``'smooth'``: first pass, a smooth B1 field per slice, refit with B1 held to it
            (:mod:`alsseg.relax.b1`; the first pass is kept as ``b1_voxel``). ``'voxel'``: every
            voxel fits its own B1 (one pass; a list of voxels ``(N, n_echoes)`` needs this).
        slice_axis : int
            Through-plane axis of a 3-D grid (``b1='smooth'``).
        chunk_voxels, n_jobs, progress :
            Chunk size (memory bound), worker threads, tqdm progress bar.

        Returns
        -------
        EpgT2Fit

        Raises
        ------
        InputError
            Unknown ``b1``, or ``b1='smooth'`` on data without a 2-D or 3-D grid.
        """
        data, mask = _check_data(data, mask, self.acq.n_echoes)
        if b1 not in B1_MODES:
            raise InputError(None, f"unknown B1 mode {b1!r} (choose {' or '.join(B1_MODES)})")
        if b1 == "smooth":
            if data.ndim not in (3, 4):
                raise InputError(None, f"a smooth B1 field needs an image grid (X, Y[, Z], echoes); the data have "
                                 f"shape {data.shape}: use b1='voxel' for a list of voxels")
            from alsseg.relax.b1 import fit_smooth_b1

            maps = fit_smooth_b1(self, data, mask, slice_axis=slice_axis if data.ndim == 4 else 2,
                                 chunk_voxels=chunk_voxels, n_jobs=n_jobs, progress=progress)
            return EpgT2Fit(self, maps, mask)
        vals = map_chunks(self.fit_voxels, data[mask], chunk_voxels=chunk_voxels, n_jobs=n_jobs,
                          progress=progress, desc="EPG T2 fit")
        return EpgT2Fit(self, _Fit._scatter(mask, vals), mask)
