"""A smooth B1 field for the EPG T2 fit: first pass, regularised field, refit with B1 held.

B1 is the transmit field: it varies over centimetres, so a voxel-wise jump between, say, 0.9 and
1.35 is a fitting artefact. Its main cause is the 180° mirror: a refocusing angle ``α`` and its
mirror ``360° − α`` (with a slice profile, B1 ≈ 0.94 and ≈ 1.34) give nearly the same echo train
with a different water T2, and in noise either can win. The smooth fit therefore runs

1. a **first pass**: the voxel-wise fit (:meth:`EpgT2Model.fit_voxels`, both B1 basins tried);
2. a **field**: per slice, a robust smooth surface (default a degree-4 polynomial, Tukey
   biweight) through the first-pass B1 of the reliable voxels (flag 0, FF ≤ ``max_ff_field``),
   see :func:`smooth_b1_field`. Voxels on the mirror side
   lie far from the field and are rejected as outliers (Tukey biweight), so the field follows
   the majority, consistent solution;
3. a **refit** of water T2, FF and M0 of every voxel with B1 held at the field (a global search
   over T2 at that B1, then Levenberg–Marquardt on (water, fat, T2)), which removes the mirror
   solutions (optionally B1 is then freed within ± ``b1_tolerance`` of the field for a last
   Levenberg–Marquardt on all four parameters; the mirror lies ~0.4 away, out of reach).

The per-voxel B1 of the first pass is kept (``b1_voxel``). numpy/scipy only; writes nothing.
"""

from __future__ import annotations

import numpy as np

#: field methods of :func:`smooth_b1_field`.
B1_FIELD_METHODS = ("poly", "median")


def _poly_terms(x: np.ndarray, y: np.ndarray, order: int) -> np.ndarray:
    """``(N, K)`` monomials ``x^i y^j`` with ``i + j ≤ order``."""
    return np.stack([x ** i * y ** j for i in range(order + 1) for j in range(order + 1 - i)], axis=1)


def _robust_poly(x, y, b, order: int, init=None, n_iter: int = 12, c: float = 4.685, scale_floor: float = 0.01):
    """Tukey-biweight IRLS polynomial fit of ``b`` at ``(x, y)``; returns coefficients.

    ``init``: a robust first guess of the field at the same points; values more than 0.1 from it
    start with zero weight, so mirror solutions cannot pull the first fit (without it, values
    more than 0.2 from the median)."""
    a = _poly_terms(x, y, order)
    w = np.ones_like(b)
    ref = np.median(b) if init is None else init
    w[~(np.abs(b - ref) <= (0.2 if init is None else 0.1))] = 0.0
    coef = None
    for _ in range(n_iter):
        if np.count_nonzero(w) < a.shape[1] * 3:
            break
        aw = a * w[:, None]
        gram = aw.T @ a
        coef = np.linalg.solve(gram + 1e-9 * np.trace(gram) / len(gram) * np.eye(len(gram)), aw.T @ b)
        r = b - a @ coef
        s = max(1.4826 * np.median(np.abs(r[w > 0])), scale_floor)
        u = r / (c * s)
        w_new = np.where(np.abs(u) < 1, (1 - u * u) ** 2, 0.0)
        if np.allclose(w_new, w, atol=1e-4):
            break
        w = w_new
    return coef


def _field_poly(b1_slice: np.ndarray, reliable: np.ndarray, target: np.ndarray, order: int,
                min_voxels: int, max_fit_voxels: int = 4000) -> np.ndarray:
    """Polynomial field of one slice, evaluated on ``target`` voxels (NaN where no support)."""
    out = np.full(b1_slice.shape, np.nan)
    ii, jj = np.nonzero(reliable)
    if ii.size < min_voxels:
        return out
    ti, tj = np.nonzero(target)
    lo_i, hi_i, lo_j, hi_j = ii.min(), ii.max(), jj.min(), jj.max()
    ci, si = (lo_i + hi_i) / 2, max((hi_i - lo_i) / 2, 1.0)
    cj, sj = (lo_j + hi_j) / 2, max((hi_j - lo_j) / 2, 1.0)
    sub = np.random.default_rng(0).permutation(ii.size)[:max_fit_voxels]   # fixed seed: reproducible
    # a robust local first guess (block medians) decides which voxels start in the fit
    init = _field_median(b1_slice, reliable, reliable, 8, min_voxels)[ii[sub], jj[sub]]
    coef = _robust_poly((ii[sub] - ci) / si, (jj[sub] - cj) / sj, b1_slice[ii[sub], jj[sub]], order,
                        init=init if np.isfinite(init).all() else None)
    if coef is None:
        return out
    # evaluate within the reliable voxels' box (a polynomial must not extrapolate far)
    xi = np.clip((ti - ci) / si, -1.0, 1.0)
    xj = np.clip((tj - cj) / sj, -1.0, 1.0)
    out[ti, tj] = _poly_terms(xi, xj, order) @ coef
    return out


def _field_median(b1_slice: np.ndarray, reliable: np.ndarray, target: np.ndarray, block: int,
                  min_voxels: int) -> np.ndarray:
    """Robust local smoothing of one slice: medians of ``block × block`` voxel blocks (a block more
    than 0.1 from the median of its 3 × 3 block neighbourhood takes that median), bilinear interpolation between block centres (nearest block beyond the
    outermost centres and across empty blocks); voxels > 0.15 from it are dropped and it is
    redone once."""
    import warnings

    from scipy import ndimage

    out = np.full(b1_slice.shape, np.nan)
    if reliable.sum() < min_voxels:
        return out
    keep = reliable.copy()
    X, Y = b1_slice.shape
    nx, ny = -(-X // block), -(-Y // block)
    ti, tj = np.nonzero(target)
    coords = np.stack([(ti + 0.5) / block - 0.5, (tj + 0.5) / block - 0.5])
    field = np.full(b1_slice.shape, np.nan)
    for _ in range(2):
        grid = np.full((nx, ny), np.nan)
        bi, bj = np.nonzero(keep)
        key = (bi // block) * ny + bj // block
        vals = b1_slice[bi, bj]
        order = np.argsort(key, kind="stable")
        key, vals = key[order], vals[order]
        starts = np.flatnonzero(np.r_[True, np.diff(key) > 0])
        counts = np.diff(np.r_[starts, key.size])
        for s, n in zip(starts, counts):
            if n >= max(4, block * block // 8):
                grid.flat[key[s]] = np.median(vals[s:s + n])
        if not np.isfinite(grid).any():
            return out
        pad = np.pad(grid, 1, constant_values=np.nan)
        win = np.lib.stride_tricks.sliding_window_view(pad, (3, 3)).reshape(nx, ny, 9)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med3 = np.nanmedian(win, axis=2)
        # a block far from its neighbours' median (a mirror patch filling the block) takes it
        grid = np.where(np.abs(grid - med3) > 0.1, med3, grid)
        # empty blocks take the nearest filled block, so interpolation never reads a hole
        _, (ni, nj) = ndimage.distance_transform_edt(~np.isfinite(grid), return_indices=True)
        grid = grid[ni, nj]
        field = np.full(b1_slice.shape, np.nan)
        field[ti, tj] = ndimage.map_coordinates(grid, coords, order=1, mode="nearest")
        keep = reliable & (np.abs(b1_slice - field) <= 0.15)
    out[ti, tj] = field[ti, tj]
    return out


def smooth_b1_field(b1: np.ndarray, reliable: np.ndarray, target: np.ndarray | None = None, *,
                    method: str = "poly", order: int = 4, block: int = 8, slice_axis: int = 2,
                    min_voxels: int = 60) -> np.ndarray:
    """A smooth B1 field per slice from voxel-wise B1 values.

    Parameters
    ----------
    b1 : (X, Y) or (X, Y, Z) ndarray
        First-pass B1 (NaN where not fitted).
    reliable : bool ndarray, same shape
        Voxels whose B1 may shape the field (e.g. flag 0, not fat-dominated).
    target : bool ndarray, same shape, optional
        Voxels where the field is wanted (default ``reliable``).
    method : {'poly', 'median'}
        ``'poly'``: a 2-D polynomial of total degree ``order`` fitted per slice by Tukey-biweight
        IRLS (scale from the MAD, floor 0.01), started from the voxels within 0.1 of the
        ``'median'`` field, evaluated inside the reliable voxels' bounding box.
        ``'median'``: medians of ``block × block`` voxel blocks (outlying blocks replaced by their
        3 × 3 neighbourhood median), bilinear interpolation between block centres; voxels > 0.15 from it dropped and redone.
    slice_axis : int
        Through-plane axis of 3-D input.
    min_voxels : int
        Slices with fewer reliable voxels get no field (NaN).

    Returns
    -------
    ndarray like ``b1``: the field on ``target`` voxels, NaN elsewhere (and on slices without
    support).
    """
    if method not in B1_FIELD_METHODS:
        raise ValueError(f"unknown B1 field method {method!r} (choose {', '.join(B1_FIELD_METHODS)})")
    b1 = np.asarray(b1, float)
    reliable = np.asarray(reliable, bool) & np.isfinite(b1)
    target = reliable if target is None else np.asarray(target, bool)
    if b1.ndim == 2:
        b1, reliable, target = b1[..., None], reliable[..., None], target[..., None]
        slice_axis, squeeze = 2, True
    else:
        squeeze = False
    b = np.moveaxis(b1, slice_axis, 0)
    r = np.moveaxis(reliable, slice_axis, 0)
    t = np.moveaxis(target, slice_axis, 0)
    out = np.full(b.shape, np.nan)
    for k in range(b.shape[0]):
        if not t[k].any():
            continue
        if method == "poly":
            out[k] = _field_poly(b[k], r[k], t[k], order, min_voxels)
        else:
            out[k] = _field_median(b[k], r[k], t[k], block, min_voxels)
    out = np.moveaxis(out, 0, slice_axis)
    return out[..., 0] if squeeze else out


# ------------------------------------------------------------------------------ refit, B1 held
def _held_fun(model):
    """``fun(p, v)`` of (water amplitude, fat amplitude, u) at fixed B1 grid coordinate ``v``."""
    dic = model.dictionary

    def fun(p, v):
        w, f, wu, _, _ = dic.interpolate(p[:, 2], v)
        aw, af = p[:, 0:1].astype(w.dtype), p[:, 1:2].astype(w.dtype)
        jac = np.empty(w.shape + (3,), w.dtype)
        jac[:, :, 0] = w
        jac[:, :, 1] = f
        np.multiply(aw, wu, out=jac[:, :, 2])
        return aw * w + af * f, jac
    return fun


def _t2_search_at_b1(model, z: np.ndarray, v: np.ndarray):
    """Best water-T2 node (sub-grid) and amplitudes at fixed B1 (grid coordinate ``v``) by
    variable projection over every T2 node; returns ``p0 (n, 3)`` = (water, fat amplitude, u).

    Voxels are grouped by B1 cell: within a cell the atoms are ``Σ_k s_k W[:, k]`` (Catmull–Rom
    weights ``s`` over its 4 B1 nodes), so the projections are 4 small GEMMs and the Gram terms
    come from the cell's ``(T, 4, 4)`` node products.
    """
    from alsseg.relax._lm import parabolic_peak
    from alsseg.relax.dictionary import _catmull_rom

    dic = model.dictionary
    B = dic.b1.size
    ulo, uhi = dic.u_bounds
    nodes = np.arange(int(np.ceil(ulo)), int(np.floor(uhi)) + 1)
    wn = dic.water[nodes].astype(np.float64)                                  # (G, B, R)
    fat = dic.fat.astype(np.float64)                                          # (B, R)
    iv = np.clip(np.floor(v).astype(np.intp), 1, B - 3)
    ws_all, _ = _catmull_rom(v - iv)                                          # (n, 4)
    p0 = np.empty((z.shape[0], 3))
    for cell in np.unique(iv):
        sel = np.flatnonzero(iv == cell)
        ws, zz = ws_all[sel], z[sel]
        slab = wn[:, cell - 1:cell + 3]                                       # (G, 4, R)
        fslab = fat[cell - 1:cell + 3]                                        # (4, R)
        G = slab.shape[0]
        a = sum(ws[:, k:k + 1] * (zz @ slab[:, k].T) for k in range(4))      # (n, G)
        f = ws @ fslab                                                        # (n, R)
        b = (f * zz).sum(1)[:, None]
        w2 = (ws[:, :, None] * ws[:, None, :]).reshape(-1, 16)               # (n, 16)
        ww = w2 @ np.einsum("tkr,tlr->tkl", slab, slab).reshape(G, 16).T
        wf = w2 @ np.einsum("tkr,lr->tkl", slab, fslab).reshape(G, 16).T
        ff = (f * f).sum(1)[:, None]
        det = ww * ff - wf * wf
        with np.errstate(divide="ignore", invalid="ignore"):
            cw = (ff * a - wf * b) / det
            cf = (ww * b - wf * a) / det
            energy = np.where(det > 1e-12 * ww * ff, cw * a + cf * b, a * a / ww)
            # amplitudes must not be negative: water or fat alone where the pair needs one < 0
            neg = (cw < 0) | (cf < 0)
            alone_w = np.where(a > 0, a * a / ww, 0.0)
            alone_f = np.where(b > 0, b * b / ff, 0.0)
            energy = np.where(neg, np.maximum(alone_w, alone_f), energy)
            cw = np.where(neg, np.where(alone_w >= alone_f, np.maximum(a, 0) / ww, 0.0), cw)
            cf = np.where(neg, np.where(alone_w >= alone_f, 0.0, np.maximum(b, 0) / ff), cf)
        energy = np.nan_to_num(energy, nan=-np.inf)
        j = np.argmax(energy, axis=1)
        rows = np.arange(len(j))
        p0[sel, 0] = np.nan_to_num(cw[rows, j])
        p0[sel, 1] = np.nan_to_num(cf[rows, j])
        p0[sel, 2] = nodes[0] + parabolic_peak(energy, j)
    p0[:, :2] = np.maximum(p0[:, :2], 0.0)
    p0[:, 0] = np.where(p0[:, 0] + p0[:, 1] > 0, p0[:, 0], 1.0)
    return p0


def refit_held_b1(model, y: np.ndarray, b1: np.ndarray, tolerance: float = 0.0, start: np.ndarray | None = None,
                  near: float = 0.02) -> dict[str, np.ndarray]:
    """Refit ``y (N, n_echoes)`` with B1 held at ``b1 (N,)`` (clipped into the model's range).

    ``start (N, 4)``: first-pass water T2 (ms), fat fraction, B1 and M0; a voxel whose first-pass B1
    lies within ``near`` of the held value starts from its first-pass T2 and amplitudes (the
    same basin), the others from a search over every T2 node at the held B1.

    ``tolerance`` > 0 then lets B1 move within ``b1 ± tolerance`` (a second Levenberg–Marquardt
    on all four parameters from the held solution).

    Returns ``(N,)`` arrays like :meth:`EpgT2Model.fit_voxels` (``b1`` = the held value, or the
    bounded one).
    """
    from alsseg.relax._lm import batched_lm
    from alsseg.relax.t2 import FLAG_INVALID_DATA, _fit_flags, _r2, _valid_rows

    dic = model.dictionary
    y = np.asarray(y)
    n = y.shape[0]
    out = {k: np.full(n, np.nan) for k in ("t2_water_ms", "fat_fraction", "b1", "m0", "r2", "residual")}
    flag = np.full(n, FLAG_INVALID_DATA, np.uint8)
    valid = _valid_rows(y) & np.isfinite(b1)
    if valid.any():
        yv = y[valid].astype(np.float64)
        scale = np.linalg.norm(yv, axis=1)
        z = (yv / scale[:, None]) @ dic.basis
        rho = np.maximum(1.0 - np.einsum("nr,nr->n", z, z), 0.0)
        (ulo, uhi), (vlo, vhi) = dic.u_bounds, dic.v_bounds
        v = np.clip(dic.b1_to_v(np.asarray(b1, float)[valid]), vlo, vhi)
        search = np.ones(len(v), bool)
        p0 = np.empty((len(v), 3))
        if start is not None:
            st = np.asarray(start, float)[valid]
            ok = np.all(np.isfinite(st), axis=1) & (np.abs(st[:, 2] - np.asarray(b1, float)[valid]) <= near)
            tot = st[ok, 3] / scale[ok]                                   # M0 in units of the normalised train
            p0[ok] = np.column_stack([(1.0 - st[ok, 1]) * tot, st[ok, 1] * tot,
                                      np.clip(dic.t2_to_u(np.maximum(st[ok, 0], 1e-3)), ulo, uhi)])
            search = ~ok
        if search.any():
            p0[search] = _t2_search_at_b1(model, z[search], v[search])
        p, cost, conv = batched_lm(_held_fun(model), p0, z.astype(dic.dtype), np.array([0.0, 0.0, ulo]),
                                   np.array([np.inf, np.inf, uhi]), n_iter=model.n_iter, tol=model.tol,
                                   step_tol=1e-3, aux=v.astype(float))
        if tolerance > 0:
            tv = tolerance / dic.b1_step
            lo = np.column_stack([np.zeros(len(v)), np.zeros(len(v)), np.full(len(v), ulo), np.maximum(v - tv, vlo)])
            hi = np.column_stack([np.full(len(v), np.inf), np.full(len(v), np.inf), np.full(len(v), uhi),
                                  np.minimum(v + tv, vhi)])
            p4, cost, conv4 = batched_lm(model._model_fun, np.column_stack([p, v]), z.astype(dic.dtype), lo, hi,
                                         n_iter=model.n_iter, tol=model.tol, step_tol=1e-3)
            p, v, conv = p4[:, :3], p4[:, 3], conv & conv4
        aw, af = p[:, 0], p[:, 1]
        tot = aw + af
        ss_res = (cost + rho) * scale ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            vals = {"t2_water_ms": dic.u_to_t2(p[:, 2]), "fat_fraction": np.where(tot > 0, af / tot, np.nan),
                    "b1": dic.v_to_b1(v), "m0": tot * scale, "r2": _r2(yv, ss_res),
                    "residual": np.sqrt(ss_res / y.shape[1])}
        fl = _fit_flags(p[:, 2], (ulo, uhi), v, (vlo, vhi), conv, tot)
        for k, val in vals.items():
            out[k][valid] = val
        flag[valid] = fl
    out["flag"] = flag
    return out


def fit_smooth_b1(model, data: np.ndarray, mask: np.ndarray, *, slice_axis: int = 2, method: str = "poly",
                  order: int = 4, block: int = 8, max_ff_field: float = 0.3, b1_tolerance: float = 0.0,
                  chunk_voxels: int = 16384, n_jobs: int = 1, progress: bool = False) -> dict[str, np.ndarray]:
    """First pass, smooth field, refit with B1 held (the module docstring); maps on the grid.

    Parameters
    ----------
    model : EpgT2Model
    data : (X, Y, n_echoes) or (X, Y, Z, n_echoes) ndarray
    mask : bool ndarray of ``data``'s spatial shape
    slice_axis : through-plane axis of 3-D grids (the field is smooth within each slice).
    max_ff_field : only voxels with a first-pass fat fraction up to this shape the field (the
        B1 of fat-dominated voxels carries the fat model's errors).
    b1_tolerance : B1 may move this far from the field in the refit (default 0: held). A tight
        bound (e.g. 0.05, far below the ~0.4 between B1 and its mirror) lets the refit approach the
        voxel-wise residual, at the price of B1 noise (docs/relax.md).
    method, order, block : see :func:`smooth_b1_field` (default: a degree-4 polynomial per slice,
        which read the two legs most alike on the real scan and the B1 of the synthetic phantom
        best, ``docs/relax.md``).

    Returns
    -------
    ``{name: ndarray}`` of the spatial shape: the refit's ``t2_water_ms``, ``fat_fraction``,
    ``b1`` (the field; moved by at most ``b1_tolerance`` in the refit), ``m0``, ``r2``, ``residual``, ``flag``, and ``b1_voxel`` (first pass).
    Voxels of a slice with too few reliable voxels for a field keep their first-pass fit.
    """
    from alsseg.relax._chunks import map_chunks
    from alsseg.relax.t2 import _Fit

    y = data[mask]
    first = map_chunks(model.fit_voxels, y, chunk_voxels=chunk_voxels, n_jobs=n_jobs, progress=progress,
                       desc="EPG T2 fit (first pass)")
    grid = _Fit._scatter(mask, first)
    with np.errstate(invalid="ignore"):
        reliable = mask & (grid["flag"] == 0) & (grid["fat_fraction"] <= max_ff_field)
    field = smooth_b1_field(grid["b1"], reliable, mask & np.isfinite(grid["b1"]), method=method, order=order,
                            block=block, slice_axis=slice_axis)
    lo, hi = model.dictionary.b1_range
    b1_held = np.clip(field[mask], lo, hi)
    has = np.isfinite(b1_held)
    n_e = y.shape[1]
    first_pars = np.column_stack([first["t2_water_ms"], first["fat_fraction"], first["b1"], first["m0"]])
    second = map_chunks(lambda rows: refit_held_b1(model, rows[:, :n_e], rows[:, n_e], b1_tolerance,
                                                   start=rows[:, n_e + 1:]),
                        np.concatenate([y[has], b1_held[has, None], first_pars[has]], axis=1).astype(np.float64),
                        chunk_voxels=chunk_voxels, n_jobs=n_jobs, progress=progress,
                        desc="EPG T2 fit (B1 held)")
    vals = {k: v.copy() for k, v in first.items()}
    for k, v in second.items():
        vals[k][has] = v
    vals["b1_voxel"] = first["b1"]
    return _Fit._scatter(mask, vals)
