"""alsseg.stats.study: visit intervals, paired change between visits, findings beside Bryan et al."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from alsseg import stats
from alsseg.stats import study
from alsseg.stats.elementary import compare_two, paired_change


def test_paired_change_matches_scipy():
    rng = np.random.default_rng(1)
    a = rng.normal(30, 2, 12)
    b = a + rng.normal(1.5, 1.0, 12)
    b[3] = np.nan  # an incomplete pair is dropped
    r = paired_change(a, b)
    ok = np.isfinite(b)
    d = b[ok] - a[ok]
    assert r["n"] == 11
    assert r["mean_change"] == pytest.approx(d.mean())
    assert r["paired_p"] == pytest.approx(sps.ttest_rel(b[ok], a[ok]).pvalue)
    assert r["wilcoxon_p"] == pytest.approx(sps.wilcoxon(d).pvalue)
    lo, hi = sps.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=sps.sem(d))
    assert (r["change_ci_low"], r["change_ci_high"]) == pytest.approx((lo, hi))
    assert np.isnan(paired_change([1, 2], [2, 3])["paired_p"])  # n < 3: no test


def test_welch_interval_of_the_difference():
    rng = np.random.default_rng(2)
    x, y = rng.normal(35, 3, 11), rng.normal(30, 2, 8)
    r = compare_two(x, y)
    res = sps.ttest_ind(x, y, equal_var=False)
    ci = res.confidence_interval(0.95)
    assert (r["diff_ci_low"], r["diff_ci_high"]) == pytest.approx((ci.low, ci.high))


def test_visit_intervals_from_dates():
    dates = pd.DataFrame({"participant_id": ["sub-01", "sub-01", "sub-02", "sub-03", "sub-03"],
                          "session_id": ["ses-02", "ses-01", "ses-01", "ses-01", "ses-10"],
                          "acq_time": ["2024-05-08T10:00:00", "2024-01-08T10:00:00", "2024-01-09T09:00:00",
                                       "2024-02-01", None]})
    iv = study.visit_intervals(dates)
    # sub-02 has one visit, sub-03 one dated visit: only sub-01
    assert list(iv["participant_id"]) == ["sub-01"]
    r = iv.iloc[0]
    assert (r.session_first, r.session_last, r.interval_days) == ("ses-01", "ses-02", 121.0)
    assert r.interval_months == pytest.approx(121 / 30.4375, abs=0.01)


def test_change_between_visits_patients_only(cohort_tables):
    muscles, parts, motor = cohort_tables
    dates = pd.DataFrame([{"participant_id": p, "session_id": s, "acq_time": f"2024-0{1 + 4 * (s == 'ses-02')}-10"}
                          for p, s in muscles[["participant_id", "session_id"]].drop_duplicates().itertuples(index=False)])
    res = stats.run_all(muscles, parts, motor, stats.StatsOptions(mixed_model=False), session_dates=dates)
    ch = res["change"]
    assert set(ch["population"]) == {"ALS"}
    r = ch[(ch.measure == "t2_water_ms") & (ch.muscle == "TA")].iloc[0]
    # by hand: per patient, mean of legs at ses-02 minus at ses-01
    ta = muscles[muscles.muscle == "TA"].merge(parts, on="participant_id")
    ta = ta[ta.group == "ALS"].groupby(["participant_id", "session_id"])["t2_water_ms"].mean().unstack()
    d = ta["ses-02"] - ta["ses-01"]
    assert r.n == 11 and r.mean_change == pytest.approx(d.mean()) and r.mean_change > 0
    assert r.paired_p == pytest.approx(sps.ttest_rel(ta["ses-02"], ta["ses-01"]).pvalue)
    assert r.interval_days_median == 121.0
    cm = ch[(ch.measure == "cmap_mv") & (ch.muscle == "leg")].iloc[0]
    assert cm.mean_change < 0 and cm.n == 11  # CMAP falls as denervation grows
    assert "visit_intervals" in res and len(res["visit_intervals"]) == 11


def test_findings_beside_published(cohort_tables):
    muscles, parts, motor = cohort_tables
    res = stats.run_all(muscles, parts, motor, stats.StatsOptions(mixed_model=False))
    f = res["findings"].set_index("key")
    assert list(f.index) == [x.key for x in study.BRYAN_1998]
    gc = res["group_comparison"]
    g = gc[(gc.measure == "t2_water_ms") & (gc.muscle == "all")].iloc[0]
    assert f.loc["t2_group", "estimate"] == pytest.approx(g.difference)
    assert f.loc["t2_group", "p"] == pytest.approx(g.welch_p) and f.loc["t2_group", "consistent"] == 1.0
    assert f.loc["t2_group", "ci_low"] < g.difference < f.loc["t2_group", "ci_high"]
    mc = res["motor_correlation"]
    m = mc[(mc.population == "ALS") & (mc.measure == "t2_water_ms") & (mc.motor == "mvic_n")
           & (mc.muscle == "anterior")].iloc[0]
    assert f.loc["t2_mvic", "estimate"] == pytest.approx(m.pearson_r) and f.loc["t2_mvic", "n"] == 11
    # T1 carries no effect in these tables: "not different" is consistent
    assert f.loc["t1_group", "consistent"] == 1.0
    assert (f["missing"] == "").all()


def test_findings_say_what_is_missing(cohort_tables):
    muscles, parts, _ = cohort_tables
    no_groups = parts.assign(group=np.nan)
    res = stats.run_all(muscles, no_groups, None, stats.StatsOptions(mixed_model=False))
    f = res["findings"].set_index("key")
    assert f["estimate"].isna().all() and f["consistent"].isna().all()
    assert "groups" in f.loc["t2_group", "missing"] and "motor" in f.loc["t2_mvic", "missing"]
    assert set(res["change"]["population"]) == {"all"}  # no groups: every subject with two visits
