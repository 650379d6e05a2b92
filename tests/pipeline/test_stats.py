"""alsseg.stats: numbers checked against scipy / statsmodels and hand formulas."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from alsseg import stats


def test_bh_fdr_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(1)
    p = rng.uniform(0, 0.2, 30)
    np.testing.assert_allclose(stats.bh_fdr(p), multipletests(p, method="fdr_bh")[1], rtol=1e-12)
    q = stats.bh_fdr([0.01, np.nan, 0.04, 0.03])
    assert np.isnan(q[1])
    np.testing.assert_allclose(q[[0, 2, 3]], multipletests([0.01, 0.04, 0.03], method="fdr_bh")[1])


def test_hedges_g_formula():
    x = np.array([5.1, 6.2, 7.0, 6.4, 5.9])
    y = np.array([4.0, 4.8, 5.2, 4.1])
    g, lo, hi = stats.hedges_g(x, y)
    nx, ny = 5, 4
    sp = math.sqrt(((nx - 1) * x.var(ddof=1) + (ny - 1) * y.var(ddof=1)) / (nx + ny - 2))
    d = (x.mean() - y.mean()) / sp
    g_ref = d * (1 - 3 / (4 * 9 - 9))
    assert g == pytest.approx(g_ref)
    se = math.sqrt(9 / 20 + g_ref ** 2 / 18)
    assert lo == pytest.approx(g_ref - 1.959964 * se, rel=1e-5)
    assert hi == pytest.approx(g_ref + 1.959964 * se, rel=1e-5)
    assert all(math.isnan(v) for v in stats.hedges_g([1.0], [1.0, 2.0]))


def test_compare_two_against_scipy():
    rng = np.random.default_rng(2)
    x, y = rng.normal(35, 4, 11), rng.normal(30, 2, 8)
    r = stats.compare_two(x, y)
    t = sps.ttest_ind(x, y, equal_var=False)
    assert r["welch_t"] == pytest.approx(t.statistic) and r["welch_p"] == pytest.approx(t.pvalue)
    assert r["welch_df"] == pytest.approx(t.df)
    mw = sps.mannwhitneyu(x, y, alternative="two-sided")
    assert r["mannwhitney_u"] == pytest.approx(mw.statistic) and r["mannwhitney_p"] == pytest.approx(mw.pvalue)
    assert r["n_patients"] == 11 and r["n_controls"] == 8
    # NaN values are dropped, not imputed
    r2 = stats.compare_two(np.r_[x, np.nan], y)
    assert r2["n_patients"] == 11 and r2["welch_p"] == pytest.approx(t.pvalue)


def test_correlation_against_scipy():
    rng = np.random.default_rng(3)
    x = rng.normal(size=19)
    y = -0.8 * x + rng.normal(scale=0.5, size=19)
    p = stats.correlation(x, y, "pearson")
    ref = sps.pearsonr(x, y)
    ci = ref.confidence_interval()
    assert p["r"] == pytest.approx(ref.statistic) and p["p"] == pytest.approx(ref.pvalue)
    assert p["ci_low"] == pytest.approx(ci.low) and p["ci_high"] == pytest.approx(ci.high)
    s = stats.correlation(x, y, "spearman")
    sref = sps.spearmanr(x, y)
    assert s["r"] == pytest.approx(sref.statistic) and s["p"] == pytest.approx(sref.pvalue)
    se = math.sqrt((1 + s["r"] ** 2 / 2) / 16)
    assert s["ci_low"] == pytest.approx(math.tanh(math.atanh(s["r"]) - 1.959964 * se), rel=1e-5)
    assert s["ci_low"] < s["r"] < s["ci_high"]
    # pairs with a missing value are dropped
    x2 = np.r_[x, 1.0]
    y2 = np.r_[y, np.nan]
    assert stats.correlation(x2, y2)["n"] == 19
    assert math.isnan(stats.correlation([1, 2, 3], [3, 2, 1])["r"])  # n < 4


def test_mixedlm_matches_statsmodels():
    import statsmodels.formula.api as smf

    tabs = pytest.importorskip("pandas")  # noqa: F841
    rng = np.random.default_rng(4)
    rows = []
    for s in range(12):
        u = rng.normal(0, 2)
        for leg in range(2):
            x = rng.normal()
            rows.append({"participant_id": f"s{s}", "x": x, "y": 3 + 1.5 * x + u + rng.normal(0, 0.5)})
    df = pd.DataFrame(rows)
    r = stats.mixedlm_fixed_effect(df, "y", "x")
    ref = smf.mixedlm("y ~ x", df, groups=df["participant_id"]).fit(reml=True)
    assert r["mixed_ok"]
    assert r["mixed_beta"] == pytest.approx(ref.params["x"], rel=1e-6)
    assert r["mixed_p"] == pytest.approx(ref.pvalues["x"], rel=1e-4)
    assert r["mixed_n_obs"] == 24 and r["mixed_n_groups"] == 12


def test_group_comparison_subject_level(cohort_tables):
    muscles, parts, motor = cohort_tables
    opts = stats.StatsOptions(mixed_model=False)
    res = stats.group_comparison(muscles, parts, opts)
    row = res[(res.measure == "t2_water_ms") & (res.muscle == "TA")].iloc[0]
    # recompute by hand: baseline, mean of legs per subject
    base = muscles[(muscles.session_id == "ses-01") & (muscles.muscle == "TA")]
    subj = base.groupby("participant_id")["t2_water_ms"].mean()
    grp = parts.set_index("participant_id")["group"]
    x = subj[grp[subj.index] == "ALS"].to_numpy()
    y = subj[grp[subj.index] == "control"].to_numpy()
    assert row.n_patients == 11 and row.n_controls == 8
    assert row.welch_p == pytest.approx(sps.ttest_ind(x, y, equal_var=False).pvalue)
    assert row.hedges_g > 1 and row.welch_p < 0.01  # the simulated effect is found
    # FDR across the 7 muscles of one measure; group rows excluded
    t2 = res[res.measure == "t2_water_ms"]
    per = t2[~t2.muscle.isin(stats.GROUP_ROWS)]
    np.testing.assert_allclose(per.welch_q, stats.bh_fdr(per.welch_p))
    assert t2[t2.muscle.isin(stats.GROUP_ROWS)].welch_q.isna().all()
    assert set(res.measure) == set(stats.MEASURES)


def test_group_rows_added_volume_weighted(cohort_tables):
    muscles, _, _ = cohort_tables
    g = stats.add_group_rows(muscles)
    one = g[(g.participant_id == "sub-01") & (g.session_id == "ses-01") & (g.side == "R")]
    ant = one[one.muscle == "anterior"].iloc[0]
    ta, edl = one[one.muscle == "TA"].iloc[0], one[one.muscle == "EDL"].iloc[0]
    assert ant.volume_ml == pytest.approx(ta.volume_ml + edl.volume_ml)
    assert ant.t2_water_ms == pytest.approx(
        (ta.t2_water_ms * ta.volume_ml + edl.t2_water_ms * edl.volume_ml) / (ta.volume_ml + edl.volume_ml))
    assert len(one[one.muscle == "all"]) == 1
    # idempotent: groups already there are not added again
    assert len(stats.add_group_rows(g)) == len(g)


def test_motor_correlation_and_missing_values(table_maker):
    muscles, parts, motor = table_maker()
    gone = (motor.session_id == "ses-01") & (motor.side == "R") & motor.participant_id.isin(["sub-01", "sub-15"])
    motor.loc[gone, "mvic_n"] = np.nan
    opts = stats.StatsOptions(mixed_model=False, measures=("t2_water_ms",))
    res = stats.motor_correlations(muscles, motor, parts, opts)
    row = res[(res.population == "all") & (res.motor == "mvic_n") & (res.muscle == "TA")].iloc[0]
    # by hand: baseline legs with both values, mean of legs per subject
    m = muscles[(muscles.muscle == "TA") & (muscles.session_id == "ses-01")].merge(
        motor, on=["participant_id", "session_id", "side"])
    m = m.dropna(subset=["t2_water_ms", "mvic_n"])
    subj = m.groupby("participant_id")[["t2_water_ms", "mvic_n"]].mean()
    ref = sps.pearsonr(subj.t2_water_ms, subj.mvic_n)
    assert row.n == len(subj) == 19  # missing MVIC of one leg: the other leg still counts
    assert row.pearson_r == pytest.approx(ref.statistic) and row.pearson_p == pytest.approx(ref.pvalue)
    assert row.pearson_r < -0.8
    # a subject whose every MVIC is missing drops out (never imputed)
    motor2 = motor.copy()
    motor2.loc[motor2.participant_id == "sub-12", "mvic_n"] = np.nan
    res2 = stats.motor_correlations(muscles, motor2, parts, opts)
    row2 = res2[(res2.population == "all") & (res2.motor == "mvic_n") & (res2.muscle == "TA")].iloc[0]
    assert row2.n == 18
    als = res[(res.population == "ALS") & (res.motor == "cmap_mv") & (res.muscle == "TA")].iloc[0]
    assert als.n == 11


def test_change_correlation(cohort_tables):
    muscles, parts, motor = cohort_tables
    opts = stats.StatsOptions(mixed_model=False, measures=("t2_water_ms",), motor=("cmap_mv",))
    ch = stats.change_table(muscles, motor, ("t2_water_ms",), ("cmap_mv",))
    assert set(ch.participant_id) == {f"sub-{i:02d}" for i in range(1, 12)}  # patients only have 2 visits
    res = stats.change_correlations(muscles, motor, parts, opts)
    row = res[res.muscle == "TA"].iloc[0]
    c = ch[ch.muscle == "TA"].groupby("participant_id")[["delta_t2_water_ms", "delta_cmap_mv"]].mean()
    ref = sps.pearsonr(c.delta_t2_water_ms, c.delta_cmap_mv)
    assert row.n == 11 and row.pearson_r == pytest.approx(ref.statistic)
    assert row.pearson_r < 0


def test_abnormal_counts(cohort_tables):
    muscles, parts, _ = cohort_tables
    z, counts = stats.abnormal_muscles(muscles, parts)
    ctrl = muscles[muscles.participant_id.isin(parts[parts.group == "control"].participant_id)]
    ref = ctrl[ctrl.muscle == "TA"]["t2_water_ms"]
    one = z[(z.participant_id == "sub-01") & (z.session_id == "ses-01") & (z.side == "R") & (z.muscle == "TA")].iloc[0]
    assert one.z == pytest.approx((one.t2_water_ms - ref.mean()) / ref.std(ddof=1))
    assert len(counts) == 22  # 11 patients x 2 sessions
    assert (counts.n_muscles == 14).all()
    assert counts.n_abnormal.sum() > 0
    c1 = counts[(counts.participant_id == "sub-01") & (counts.session_id == "ses-01")].iloc[0]
    zz = z[(z.participant_id == "sub-01") & (z.session_id == "ses-01")]
    assert c1.n_abnormal == int((zz.z > 2).sum())


def test_run_all_and_write(cohort_tables, tmp_path):
    muscles, parts, motor = cohort_tables
    res = stats.run_all(muscles, parts, motor, stats.StatsOptions(measures=("t2_water_ms",), motor=("mvic_n",)))
    assert set(res) == {"group_comparison", "motor_correlation", "change_correlation",
                        "abnormal_zscores", "abnormal_counts", "change", "findings"}
    gc = res["group_comparison"]
    t2 = gc[(gc.measure == "t2_water_ms") & (gc.muscle == "anterior")].iloc[0]
    assert t2.mixed_ok and t2.mixed_beta > 3 and t2.mixed_p < 0.01
    paths = stats.write_tables(res, tmp_path)
    back = pd.read_csv(paths[0], sep="\t", na_values="n/a")
    assert len(back) == len(gc)


def test_stats_imports_no_imaging_stack(tmp_path, cohort_tables):
    import subprocess
    import sys

    code = ("import sys, pandas as pd; import alsseg.stats as s; "
            "s.write_tables({'x': pd.DataFrame({'a': [1]})}, sys.argv[1]); "
            "bad = [m for m in ('nibabel', 'torch', 'monai', 'alsseg.io', 'skimage') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "stats_x.tsv").read_text().startswith("a\n1")
