"""Batched, bound-constrained Levenberg–Marquardt and grid search with closed-form amplitudes.

Private helpers shared by the T2 and T1 models: every voxel is an independent small problem and
all voxels are iterated together with numpy (no Python loop over voxels).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def batched_lm(fun, p0: np.ndarray, y: np.ndarray, lower: np.ndarray, upper: np.ndarray,
               n_iter: int = 8, lam0: float = 1e-3, tol: float = 1e-7, step_tol: float = 1e-5,
               aux: np.ndarray | None = None, target: np.ndarray | None = None):
    """Minimise ``Σ (y − f(p))²`` independently for ``N`` problems.

    Parameters
    ----------
    fun : callable
        ``fun(p) -> (model, jac)`` with ``p (N, P)``, ``model (N, M)``, ``jac (N, M, P)``.
    p0 : (N, P) ndarray
        Starting parameters (clipped into the bounds).
    y : (N, M) ndarray
        Data.
    lower, upper : (P,) or (N, P) ndarray
        Box bounds; steps are projected onto them.
    n_iter : int
        Maximum iterations.
    lam0 : float
        Initial Marquardt damping (relative to the diagonal of ``JᵀJ``).
    tol : float
        A problem has converged once a step is predicted (lightly damped Gauss–Newton model) or
        found to lower its cost by less than ``tol`` (relative), or moves no parameter by more
        than ``step_tol``.
    step_tol : float
        See ``tol`` (parameter units).
    aux : (N, ...) ndarray, optional
        Per-problem constants; when given ``fun(p, aux_rows)`` receives the rows of the
        problems it evaluates.
    target : (N,) ndarray, optional
        Give up on a problem once its cost minus twice the predicted decrease stays above its
        target (used to abandon a second start that cannot beat the first).

    Returns
    -------
    p : (N, P) ndarray
    cost : (N,) ndarray
        Final sum of squared residuals.
    converged : (N,) bool ndarray
        Stopped by one of the ``tol`` / ``step_tol`` / ``target`` criteria (not by ``n_iter``).
    """
    p = np.clip(p0, lower, upper)
    n, P = p.shape
    if aux is not None:
        fun_all = fun
        fun = lambda q, rows=None: fun_all(q, aux if rows is None else aux[rows])
    lower = np.broadcast_to(lower, p.shape)
    upper = np.broadcast_to(upper, p.shape)
    m, jac = fun(p)
    res = y - m
    cost = np.einsum("nm,nm->n", res, res).astype(np.float64)
    converged = np.zeros(n, bool)
    eye = np.eye(P)
    act = np.arange(n)  # problems still iterating; the a_* arrays are restricted to them
    a_p, a_res, a_jac, a_cost, a_lam, a_y = p.copy(), res, jac, cost.copy(), np.full(n, lam0), y
    for _ in range(n_iter):
        jt = a_jac.transpose(0, 2, 1)
        jtj = (jt @ a_jac).astype(np.float64)
        g = (jt @ a_res[:, :, None])[:, :, 0].astype(np.float64)
        diag = np.einsum("nii->ni", jtj)
        damp = a_lam[:, None] * diag + 1e-12 * (diag.max(axis=1, keepdims=True) + 1e-30)
        with np.errstate(invalid="ignore", divide="ignore"):
            step = _spd_solve(jtj + damp[:, :, None] * eye, g)
        step = np.where(np.isfinite(step), step, 0.0)
        # decrease of the cost predicted by the linearised model for this step
        pred = 2.0 * np.einsum("ni,ni->n", step, g) - np.einsum("ni,nij,nj->n", step, jtj, step)
        stop = (pred <= tol * a_cost) & (a_lam <= lam0)
        if target is not None:
            stop |= a_cost - 2.0 * pred > target[act]
        if stop.any():
            converged[act[stop]] = True
            go = ~stop
            act = act[go]
            if act.size == 0:
                break
            a_p, a_res, a_jac, a_cost, a_lam, a_y = a_p[go], a_res[go], a_jac[go], a_cost[go], a_lam[go], a_y[go]
            step = step[go]
        trial = np.clip(a_p + step, lower[act], upper[act])
        m_t, jac_t = fun(trial, act) if aux is not None else fun(trial)
        res_t = a_y - m_t
        cost_t = np.einsum("nm,nm->n", res_t, res_t).astype(np.float64)
        accept = cost_t < a_cost
        gain = np.where(accept, (a_cost - cost_t) / np.maximum(a_cost, 1e-300), 0.0)
        small_step = np.abs(trial - a_p).max(axis=1) < step_tol
        done = (accept & ((gain < tol) | small_step | (cost_t < 1e-24))) | (~accept & (a_lam > 1e4))
        a_p = np.where(accept[:, None], trial, a_p)
        a_res = np.where(accept[:, None], res_t, a_res)
        a_jac = np.where(accept[:, None, None], jac_t, a_jac)
        a_cost = np.where(accept, cost_t, a_cost)
        a_lam = np.where(accept, a_lam * 0.2, a_lam * 10.0)
        p[act] = a_p
        cost[act] = a_cost
        converged[act] |= done
        if done.any():
            keep = ~done
            act = act[keep]
            if act.size == 0:
                break
            a_p, a_res, a_jac, a_cost, a_lam, a_y = a_p[keep], a_res[keep], a_jac[keep], a_cost[keep], a_lam[keep], a_y[keep]
    return p, cost, converged


def _spd_solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``a x = b`` for a batch of symmetric positive-definite ``a (n, P, P)``, ``b (n, P)``.

    Unrolled Cholesky (faster than LAPACK's per-matrix calls for P ≤ 4); falls back to
    ``np.linalg.solve`` for larger P. Non-positive pivots give NaN rows (the caller treats them).
    """
    P = a.shape[1]
    if P > 4:
        return np.linalg.solve(a, b[:, :, None])[:, :, 0]
    L: list[list[Any]] = [[None] * P for _ in range(P)]
    for j in range(P):
        d = a[:, j, j] - sum(L[j][k] ** 2 for k in range(j))
        L[j][j] = np.sqrt(d)
        for i in range(j + 1, P):
            L[i][j] = (a[:, i, j] - sum(L[i][k] * L[j][k] for k in range(j))) / L[j][j]
    y: list[Any] = [None] * P
    for i in range(P):
        y[i] = (b[:, i] - sum(L[i][k] * y[k] for k in range(i))) / L[i][i]
    x: list[Any] = [None] * P
    for i in reversed(range(P)):
        x[i] = (y[i] - sum(L[k][i] * x[k] for k in range(i + 1, P))) / L[i][i]
    return np.stack(x, axis=1)


def orthonormal_pairs(a: np.ndarray, b: np.ndarray | None):
    """Orthonormalise each atom's basis: ``a (J, M)`` and optional ``b (J, M)`` → ``q1, q2``.

    ``q1 = a/|a|``; ``q2`` = the part of ``b`` orthogonal to ``a``, normalised (zero if none).
    The squared projection of data onto ``span(a_j, b_j)`` is ``(y·q1_j)² + (y·q2_j)²``.
    """
    q1 = a / np.linalg.norm(a, axis=1, keepdims=True)
    if b is None:
        return q1, None
    b_perp = b - np.sum(b * q1, axis=1, keepdims=True) * q1
    nb = np.linalg.norm(b_perp, axis=1, keepdims=True)
    q2 = np.where(nb > 1e-12, b_perp / np.maximum(nb, 1e-300), 0.0)
    return q1, q2


def parabolic_peak(e: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Sub-grid offset (−0.5…0.5) of the maximum of ``e (N, J)`` near index ``j`` by a parabola."""
    J = e.shape[1]
    jc = np.clip(j, 1, J - 2)
    rows = np.arange(e.shape[0])
    em, e0, ep = e[rows, jc - 1], e[rows, jc], e[rows, jc + 1]
    den = em - 2 * e0 + ep
    off = np.where(den < 0, 0.5 * (em - ep) / np.where(den < 0, den, -1.0), 0.0)
    inside = (j > 0) & (j < J - 1)
    return np.where(inside, j + np.clip(off, -0.5, 0.5), j).astype(float)
