"""Elementary statistics: BH-FDR, Hedges' g, correlations with CIs, two-group tests, a mixed
model's fixed effect (checked against scipy / statsmodels in the tests)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats as sps


def bh_fdr(p: np.ndarray | list) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values); NaN entries stay NaN and are not counted.

    Parameters
    ----------
    p : (n,) array of p-values.

    Returns
    -------
    q : (n,) array, ``q_i = min_{j: p_j >= p_i} p_j · m / rank_j`` capped at 1.
    """
    p = np.asarray(p, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return q
    pv = p[ok]
    order = np.argsort(pv)
    ranked = pv[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(ranked, 1.0)
    q[ok] = out
    return q


def hedges_g(x: np.ndarray, y: np.ndarray, alpha: float = 0.05) -> tuple[float, float, float]:
    """Hedges' g (bias-corrected standardised mean difference x − y) with a normal-theory CI.

    ``d = (mean_x − mean_y) / s_pooled``, ``g = J·d`` with ``J = 1 − 3 / (4(n_x + n_y) − 9)``;
    ``SE(g) = sqrt((n_x + n_y)/(n_x n_y) + g² / (2(n_x + n_y)))`` (Hedges & Olkin 1985).

    Returns
    -------
    (g, ci_low, ci_high); NaN when a group has fewer than 2 values or zero pooled SD.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    nx, ny = len(x), len(y)
    if nx < 2 or ny < 2:
        return (math.nan,) * 3
    sp = math.sqrt(((nx - 1) * x.var(ddof=1) + (ny - 1) * y.var(ddof=1)) / (nx + ny - 2))
    if sp == 0:
        return (math.nan,) * 3
    d = (x.mean() - y.mean()) / sp
    g = (1 - 3 / (4 * (nx + ny) - 9)) * d
    se = math.sqrt((nx + ny) / (nx * ny) + g * g / (2 * (nx + ny)))
    zc = sps.norm.ppf(1 - alpha / 2)
    return g, g - zc * se, g + zc * se


def correlation(x: np.ndarray, y: np.ndarray, method: str = "pearson",
                alpha: float = 0.05) -> dict:
    """Correlation with p-value and confidence interval, on the complete pairs only.

    Pearson: Fisher-z interval ``tanh(atanh r ± z/sqrt(n−3))`` (as scipy's
    ``PearsonRResult.confidence_interval``). Spearman: Fisher-z interval with the
    Bonett & Wright (2000) standard error ``sqrt((1 + r²/2)/(n − 3))``.

    Returns
    -------
    dict with ``n``, ``r``, ``ci_low``, ``ci_high``, ``p`` (NaN where n < 4 or a variable is
    constant).
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = len(x)
    out = {"n": n, "r": math.nan, "ci_low": math.nan, "ci_high": math.nan, "p": math.nan}
    if n < 4 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return out
    if method == "pearson":
        r, p = sps.pearsonr(x, y)
        se = 1 / math.sqrt(n - 3)
    elif method == "spearman":
        r, p = sps.spearmanr(x, y)
        se = math.sqrt((1 + r * r / 2) / (n - 3))
    else:
        raise ValueError(f"unknown correlation method {method!r}")
    r = float(r)
    zc = sps.norm.ppf(1 - alpha / 2)
    zr = math.atanh(max(min(r, 1 - 1e-15), -1 + 1e-15))
    out.update(r=r, p=float(p), ci_low=math.tanh(zr - zc * se), ci_high=math.tanh(zr + zc * se))
    return out


def compare_two(x: np.ndarray, y: np.ndarray, alpha: float = 0.05) -> dict:
    """Welch's t-test, Mann–Whitney U (two-sided) and Hedges' g of ``x`` (patients) vs ``y``.

    Returns
    -------
    dict with ``n_patients``, ``n_controls``, ``mean_patients``, ``sd_patients``,
    ``mean_controls``, ``sd_controls``, ``difference``, ``welch_t``, ``welch_df``, ``welch_p``,
    ``diff_ci_low``, ``diff_ci_high`` (Welch interval of the difference, measure's unit),
    ``mannwhitney_u``, ``mannwhitney_p``, ``hedges_g``, ``g_ci_low``, ``g_ci_high``.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    out = {
        "n_patients": len(x), "n_controls": len(y),
        "mean_patients": x.mean() if len(x) else math.nan,
        "sd_patients": x.std(ddof=1) if len(x) > 1 else math.nan,
        "mean_controls": y.mean() if len(y) else math.nan,
        "sd_controls": y.std(ddof=1) if len(y) > 1 else math.nan,
    }
    out["difference"] = out["mean_patients"] - out["mean_controls"]
    t = df = pt = u = pu = lo_d = hi_d = math.nan
    if len(x) >= 2 and len(y) >= 2 and (x.var() > 0 or y.var() > 0):
        res = sps.ttest_ind(x, y, equal_var=False)
        t, pt = float(res.statistic), float(res.pvalue)
        vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
        df = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
        half = sps.t.ppf(1 - alpha / 2, df) * math.sqrt(vx + vy)
        lo_d, hi_d = out["difference"] - half, out["difference"] + half
    if len(x) >= 1 and len(y) >= 1:
        mw = sps.mannwhitneyu(x, y, alternative="two-sided")
        u, pu = float(mw.statistic), float(mw.pvalue)
    g, lo, hi = hedges_g(x, y, alpha)
    out.update(welch_t=t, welch_df=df, welch_p=pt, diff_ci_low=lo_d, diff_ci_high=hi_d,
               mannwhitney_u=u, mannwhitney_p=pu,
               hedges_g=g, g_ci_low=lo, g_ci_high=hi)
    return out


def mixedlm_fixed_effect(data: pd.DataFrame, y: str, x: str, groups: str = "participant_id",
                         standardise: bool = False) -> dict:
    """Fixed-effect slope of ``y ~ x`` with a random intercept per ``groups`` (statsmodels MixedLM).

    Parameters
    ----------
    data : rows of complete observations (NaN rows are dropped here).
    y, x : column names; ``x`` numeric (0/1 for a group indicator).
    standardise : z-score ``y`` and ``x`` first (the slope is then a correlation-like beta).

    Returns
    -------
    dict with ``mixed_beta``, ``mixed_ci_low``, ``mixed_ci_high``, ``mixed_p``, ``mixed_n_obs``,
    ``mixed_n_groups`` and ``mixed_ok`` (False when the fit failed, did not converge or hit the
    boundary with a singular covariance; numbers are then NaN).
    """
    import statsmodels.formula.api as smf

    d = data[[y, x, groups]].dropna()
    out = {"mixed_beta": math.nan, "mixed_ci_low": math.nan, "mixed_ci_high": math.nan,
           "mixed_p": math.nan, "mixed_n_obs": len(d), "mixed_n_groups": d[groups].nunique(),
           "mixed_ok": False}
    if len(d) < 5 or d[groups].nunique() < 3 or d[x].nunique() < 2 or d[y].std() == 0:
        return out
    d = d.rename(columns={y: "_y", x: "_x", groups: "_g"}).astype({"_y": float, "_x": float})
    if standardise:
        for c in ("_y", "_x"):
            d[c] = (d[c] - d[c].mean()) / d[c].std(ddof=1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = smf.mixedlm("_y ~ _x", d, groups=d["_g"])
            fit = model.fit(reml=True)
            if not fit.converged:  # typically a between-subject variance at the 0 boundary
                fit = model.fit(reml=True, method=["powell", "lbfgs"])
        beta = float(fit.params["_x"])
        ci = fit.conf_int().loc["_x"]
        p = float(fit.pvalues["_x"])
        ok = bool(fit.converged) and np.isfinite(p)
    except Exception:  # noqa: BLE001 - statsmodels fails many ways (singular matrices…): recorded, never raised
        return out
    out.update(mixed_beta=beta, mixed_ci_low=float(ci.iloc[0]), mixed_ci_high=float(ci.iloc[1]),
               mixed_p=p, mixed_ok=ok)
    return out


# ---------------------------------------------------------------------------------------------
# table helpers
# ---------------------------------------------------------------------------------------------


def paired_change(before: np.ndarray, after: np.ndarray, alpha: float = 0.05) -> dict:
    """Change ``after − before`` of paired values: mean with its t interval, paired t-test and
    Wilcoxon signed-rank test (two-sided), on the complete pairs only.

    Parameters
    ----------
    before, after : (n,) arrays, one value per subject (NaN pairs dropped).

    Returns
    -------
    dict with ``n``, ``mean_before``, ``mean_after``, ``mean_change``, ``sd_change``,
    ``change_ci_low``, ``change_ci_high``, ``paired_t``, ``paired_p``, ``wilcoxon_p`` (NaN where
    n < 3 or every change is equal).
    """
    a = np.asarray(before, float)
    b = np.asarray(after, float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    d = b - a
    n = len(d)
    out = {"n": n, "mean_before": a.mean() if n else math.nan, "mean_after": b.mean() if n else math.nan,
           "mean_change": d.mean() if n else math.nan, "sd_change": d.std(ddof=1) if n > 1 else math.nan,
           "change_ci_low": math.nan, "change_ci_high": math.nan, "paired_t": math.nan, "paired_p": math.nan,
           "wilcoxon_p": math.nan}
    if n < 3 or d.std() == 0:
        return out
    half = sps.t.ppf(1 - alpha / 2, n - 1) * d.std(ddof=1) / math.sqrt(n)
    res = sps.ttest_rel(b, a)
    out.update(change_ci_low=d.mean() - half, change_ci_high=d.mean() + half,
               paired_t=float(res.statistic), paired_p=float(res.pvalue))
    if np.any(d != 0):
        out["wilcoxon_p"] = float(sps.wilcoxon(d).pvalue)
    return out
