"""The founding study's analyses beside its published values (Bryan et al., Neurology 1998).

* :func:`visit_intervals` — days (and months) between each subject's first and last visit, from
  the session dates (BIDS ``sessions.tsv`` ``acq_time`` or the scans' acquisition date).
* :func:`change_between_visits` — change of each measure (and motor measure) between the first and
  last visit: mean change with its 95 % t interval, paired t-test and Wilcoxon signed-rank test,
  one value per subject (mean of the legs measured at both visits).
* :func:`study_findings` — each finding of the paper as one row: this cohort's estimate with its
  95 % CI, p and n beside the published value, and whether the two are consistent.

Pure pandas / scipy; takes the tables of :func:`alsseg.stats.run_all`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from alsseg.stats.analyses import StatsOptions, _merge_motor, _muscle_order, session_order
from alsseg.stats.elementary import paired_change

#: days in an average month (365.25 / 12).
DAYS_PER_MONTH = 30.4375


@dataclass(frozen=True)
class PublishedFinding:
    """One finding of Bryan et al. (1998) and where this cohort's estimate is read.

    Attributes
    ----------
    key : short identifier (``t2_group``, ``t2_mvic`` …).
    text : the finding in words.
    published : the published value as printed (``"p = 0.009"``, ``"r 0.73–0.78"``).
    table : ``group_comparison``, ``motor_correlation`` or ``change_correlation``.
    measure, motor, muscle, population : the row of ``table``.
    expect : ``"higher"`` (difference > 0 and p < 0.05), ``"no difference"`` (p ≥ 0.05) or
        ``(r_low, r_high)`` (consistent when the 95 % CI of r overlaps the range).
    """

    key: str
    text: str
    published: str
    table: str
    measure: str
    motor: str | None
    muscle: str
    population: str
    expect: str | tuple[float, float]


#: the paper's findings, in the order of its abstract.
BRYAN_1998 = (
    PublishedFinding("t2_group", "water T2 higher in ALS than controls", "higher, p = 0.009",
                     "group_comparison", "t2_water_ms", None, "all", "ALS vs control", "higher"),
    PublishedFinding("t1_group", "T1 not different", "p > 0.1", "group_comparison", "t1_ms", None, "all",
                     "ALS vs control", "no difference"),
    PublishedFinding("volume_group", "volume not different", "p > 0.1", "group_comparison", "volume_ml", None,
                     "all", "ALS vs control", "no difference"),
    PublishedFinding("volume_mvic", "volume vs MVIC", "r 0.73 to 0.78", "motor_correlation", "volume_ml",
                     "mvic_n", "anterior", "ALS", (0.73, 0.78)),
    PublishedFinding("t2_mvic", "water T2 vs MVIC", "r < −0.8", "motor_correlation", "t2_water_ms", "mvic_n",
                     "anterior", "ALS", (-1.0, -0.8)),
    PublishedFinding("t2_cmap", "water T2 vs CMAP", "r < −0.8", "motor_correlation", "t2_water_ms", "cmap_mv",
                     "anterior", "ALS", (-1.0, -0.8)),
    PublishedFinding("dt2_dcmap", "ΔT2 vs ΔCMAP between visits", "r = −0.63", "change_correlation",
                     "t2_water_ms", "cmap_mv", "anterior", "ALS", (-0.63, -0.63)),
)

FINDING_COLUMNS = ("key", "finding", "published", "statistic", "unit", "estimate", "ci_low", "ci_high", "p", "n",
                   "population", "muscle", "consistent", "missing")


def visit_intervals(session_dates: pd.DataFrame) -> pd.DataFrame:
    """Days between each subject's first and last dated visit.

    Parameters
    ----------
    session_dates : ``participant_id``, ``session_id``, ``acq_time`` (ISO 8601 text or datetime;
        missing dates are skipped).

    Returns
    -------
    One row per subject with two or more dated visits: ``participant_id``, ``session_first``,
    ``session_last``, ``date_first``, ``date_last`` (``YYYY-MM-DD``), ``interval_days`` and
    ``interval_months`` (days / 30.4375).
    """
    cols = ["participant_id", "session_first", "session_last", "date_first", "date_last", "interval_days",
            "interval_months"]
    if session_dates is None or session_dates.empty:
        return pd.DataFrame(columns=cols)
    d = session_dates.copy()
    d["acq_time"] = pd.to_datetime(d["acq_time"], errors="coerce", utc=True)
    d = d[d["acq_time"].notna()]
    rows = []
    for pid, part in d.groupby("participant_id", sort=False):
        order = session_order(part["session_id"])
        if len(order) < 2:
            continue
        t = part.set_index(part["session_id"].astype(str))["acq_time"]
        first, last = t[order[0]], t[order[-1]]
        days = (last - first).total_seconds() / 86400.0
        rows.append({"participant_id": pid, "session_first": order[0], "session_last": order[-1],
                     "date_first": first.strftime("%Y-%m-%d"), "date_last": last.strftime("%Y-%m-%d"),
                     "interval_days": round(days, 1), "interval_months": round(days / DAYS_PER_MONTH, 2)})
    return pd.DataFrame(rows, columns=cols)


def _first_last(d: pd.DataFrame, col: str) -> pd.DataFrame:
    """Per subject: mean over the legs measured at both its first and last visit (``before``, ``after``)."""
    rows = []
    for pid, part in d.groupby("participant_id", sort=False):
        order = session_order(part["session_id"])
        if len(order) < 2:
            continue
        a = part[part["session_id"].astype(str) == order[0]].groupby("side")[col].mean()
        b = part[part["session_id"].astype(str) == order[-1]].groupby("side")[col].mean()
        both = pd.concat([a.rename("a"), b.rename("b")], axis=1).dropna()
        if len(both):
            rows.append({"participant_id": pid, "before": both["a"].mean(), "after": both["b"].mean(),
                         "session_first": order[0], "session_last": order[-1]})
    return pd.DataFrame(rows, columns=["participant_id", "before", "after", "session_first", "session_last"])


def change_between_visits(muscles: pd.DataFrame, participants: pd.DataFrame, motor: pd.DataFrame | None = None,
                          intervals: pd.DataFrame | None = None,
                          options: StatsOptions = StatsOptions()) -> pd.DataFrame:
    """Change between the first and last visit, per measure and muscle (and per motor measure).

    One value per subject: the mean over the legs measured at both visits. Patients only when
    ``participants`` has groups (``population`` = the patient group), else every subject with two
    visits (``population`` = ``all``). Motor measures get ``muscle`` = ``leg``.

    Returns
    -------
    One row per (measure, muscle) with ``n``, ``mean_before``, ``mean_after``, ``mean_change``,
    ``sd_change``, ``change_ci_low``/``high`` (95 % t interval), ``paired_t``, ``paired_p``,
    ``wilcoxon_p`` and, when ``intervals`` (:func:`visit_intervals`) covers these subjects,
    ``interval_days_median``, ``interval_days_min``, ``interval_days_max``,
    ``interval_months_median``.
    """
    has_groups = "group" in participants and participants["group"].notna().any()
    pop = options.patient_group if has_groups else "all"
    keep = (set(participants.loc[participants["group"] == pop, "participant_id"].astype(str)) if has_groups
            else set(muscles["participant_id"].astype(str)))
    sources = [(m, muscles) for m in options.measures if m in muscles.columns]
    if motor is not None and len(motor):
        mot = _merge_motor(muscles[["participant_id", "session_id", "side"]].drop_duplicates(), motor,
                           options.motor)
        sources += [(m, mot.assign(muscle="leg")) for m in options.motor if m in mot.columns]
    rows: list[dict[str, Any]] = []
    for measure, table in sources:
        d = table[table["participant_id"].astype(str).isin(keep)]
        for muscle in _muscle_order(d["muscle"]):
            fl = _first_last(d[d["muscle"] == muscle], measure)
            row: dict[str, Any] = {"population": pop, "measure": measure, "muscle": muscle,
                                   "unit": "subject (mean of legs at both visits), last − first visit"}
            row.update(paired_change(fl["before"], fl["after"], options.alpha))
            if intervals is not None and len(intervals):
                iv = intervals[intervals["participant_id"].isin(fl["participant_id"])]["interval_days"].astype(float)
                row.update(interval_days_median=iv.median() if len(iv) else math.nan,
                           interval_days_min=iv.min() if len(iv) else math.nan,
                           interval_days_max=iv.max() if len(iv) else math.nan,
                           interval_months_median=iv.median() / DAYS_PER_MONTH if len(iv) else math.nan)
            rows.append(row)
    return pd.DataFrame(rows)


def _consistent(f: PublishedFinding, estimate, lo, hi, p) -> float:
    if not np.isfinite(estimate):
        return math.nan
    if f.expect == "higher":
        return float(estimate > 0 and np.isfinite(p) and p < 0.05)
    if f.expect == "no difference":
        return float(np.isfinite(p) and p >= 0.05)
    if isinstance(f.expect, tuple):
        r_lo, r_hi = f.expect
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return math.nan
        return float(lo <= r_hi and hi >= r_lo)
    raise ValueError(f"{f.key}: unknown expectation {f.expect!r}")


def _why_missing(f: PublishedFinding, tables: dict, participants: pd.DataFrame | None) -> str:
    no_groups = participants is not None and ("group" not in participants or participants["group"].nunique() < 2)
    if f.table == "group_comparison" and no_groups:
        return "no patient and control groups (participants.tsv)"
    if f.table in ("motor_correlation", "change_correlation") and f.table not in tables:
        return "no motor measures (phenotype/motor.tsv)"
    if f.table == "change_correlation":
        return "fewer than 4 patients with two visits and motor measures"
    if f.population != "all" and no_groups:
        return "no patient group (participants.tsv)"
    return f"too few subjects with {f.measure}" + (f" and {f.motor}" if f.motor else "")


def study_findings(tables: dict, participants: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each finding of :data:`BRYAN_1998`: this cohort's estimate, 95 % CI, p and n beside the
    published value.

    Group comparisons give the patient − control difference in the measure's unit with the Welch
    interval and p; correlations give Pearson r with its Fisher-z interval and p. ``consistent``
    is 1.0 / 0.0 (see :class:`PublishedFinding`) or NaN when there is no estimate, and then
    ``missing`` says why.
    """
    units = {"t2_water_ms": "ms", "t1_ms": "ms", "volume_ml": "mL", "fat_fraction": "fraction"}
    rows = []
    for f in BRYAN_1998:
        row: dict[str, Any] = {
            "key": f.key, "finding": f.text, "published": f.published, "population": f.population,
            "muscle": f.muscle, "estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan,
            "p": math.nan, "n": math.nan, "missing": ""}
        t = tables.get(f.table)
        sel = None
        if t is not None and len(t):
            sel = t[(t["measure"] == f.measure) & (t["muscle"] == f.muscle)]
            if f.motor:
                sel = sel[sel["motor"] == f.motor]
            if "population" in sel and f.table != "group_comparison":
                sel = sel[sel["population"] == f.population]
        if f.table == "group_comparison":
            row.update(statistic="difference ALS − control", unit=units.get(f.measure, ""))
            if sel is not None and len(sel):
                r = sel.iloc[0]
                row.update(estimate=r["difference"], ci_low=r.get("diff_ci_low", math.nan),
                           ci_high=r.get("diff_ci_high", math.nan), p=r["welch_p"],
                           n=r["n_patients"] + r["n_controls"])
        else:
            row.update(statistic="Pearson r", unit="")
            if sel is not None and len(sel):
                r = sel.iloc[0]
                row.update(estimate=r["pearson_r"], ci_low=r["pearson_ci_low"], ci_high=r["pearson_ci_high"],
                           p=r["pearson_p"], n=r["n"])
        est = float(row["estimate"]) if row["estimate"] is not None else math.nan
        row["consistent"] = _consistent(f, est, float(row["ci_low"]), float(row["ci_high"]), float(row["p"]))
        if not np.isfinite(est):
            row["missing"] = _why_missing(f, tables, participants)
        rows.append(row)
    return pd.DataFrame(rows, columns=list(FINDING_COLUMNS))


__all__ = ["BRYAN_1998", "DAYS_PER_MONTH", "PublishedFinding", "change_between_visits", "study_findings",
           "visit_intervals"]
