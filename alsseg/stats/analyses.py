"""The cohort analyses (see :mod:`alsseg.stats` for the input tables and the handling of
repeated measures): group comparison, motor correlations, change between visits, abnormal-muscle
counts, and :func:`run_all`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alsseg.stats.elementary import bh_fdr, compare_two, correlation, mixedlm_fixed_effect

#: measures analysed by default, in report order.
MEASURES = ("t2_water_ms", "t1_ms", "volume_ml", "fat_fraction")
#: motor measures analysed by default.
MOTOR = ("mvic_n", "cmap_mv")
#: muscle-group rows (not per-muscle) - excluded from the FDR family.
GROUP_ROWS = ("anterior", "all")
#: direction in which a measure becomes abnormal with denervation (for z-score counts).
ABNORMAL_DIRECTION = {"t2_water_ms": +1, "fat_fraction": +1, "t1_ms": +1, "volume_ml": -1}

KEYS = ("participant_id", "session_id", "side")


@dataclass(frozen=True)
class StatsOptions:
    """Explicit configuration of :func:`run_all`.

    Attributes
    ----------
    measures : imaging measure columns to analyse.
    motor : motor measure columns.
    patient_group, control_group : values of ``participants.group``.
    alpha : for the confidence intervals (0.05 → 95 %).
    z_abnormal : threshold of the abnormal-muscle count (|z| against controls).
    mixed_model : also fit the mixed models (slower; ~0.05 s per fit).
    """

    measures: tuple[str, ...] = MEASURES
    motor: tuple[str, ...] = MOTOR
    patient_group: str = "ALS"
    control_group: str = "control"
    alpha: float = 0.05
    z_abnormal: float = 2.0
    mixed_model: bool = True
    populations: tuple[str, ...] = field(default=("all", "ALS"))


def _check_columns(df: pd.DataFrame, cols, what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {', '.join(missing)}")


def session_order(sessions) -> list[str]:
    """Session ids in visit order (natural sort: ``ses-2`` before ``ses-10``)."""
    import re

    def key(s):
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(s))]
    return sorted({str(s) for s in sessions}, key=key)


def add_group_rows(muscles: pd.DataFrame, groups: dict | None = None,
                   measures=MEASURES) -> pd.DataFrame:
    """Append muscle-group rows (e.g. ``anterior`` = TA + EDL) computed from per-muscle rows.

    Volume is summed; other measures are volume-weighted means (what pooling the voxels gives).
    Rows whose ``muscle`` already is a group name are left as they are (no double counting).

    Parameters
    ----------
    muscles : per-muscle table (see module docstring).
    groups : ``{name: (abbrev, ...)}``; default: the anatomy's groups (``anterior``, ``all``).
    """
    if groups is None:
        from alsseg.labels import load_anatomy  # pure data
        groups = load_anatomy().groups
    base = muscles[~muscles["muscle"].isin(list(groups))]
    present = [m for m in measures if m in base.columns]
    keys = [k for k in KEYS if k in base.columns]
    out = [muscles]
    for gname, members in groups.items():
        if (muscles["muscle"] == gname).any():
            continue
        sub = base[base["muscle"].isin(members)]
        if sub.empty:
            continue
        rows = []
        for key, part in sub.groupby(keys, sort=False):
            row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
            row["muscle"] = gname
            w = part["volume_ml"].to_numpy(float) if "volume_ml" in part else np.ones(len(part))
            for m in present:
                v = part[m].to_numpy(float)
                if m == "volume_ml":
                    row[m] = np.nansum(v) if np.isfinite(v).any() else math.nan
                else:
                    ok = np.isfinite(v) & np.isfinite(w)
                    row[m] = float(np.sum(v[ok] * w[ok]) / np.sum(w[ok])) if ok.any() and np.sum(w[ok]) > 0 else math.nan
            rows.append(row)
        out.append(pd.DataFrame(rows))
    return pd.concat(out, ignore_index=True)


def _muscle_order(values) -> list[str]:
    from alsseg.labels import load_anatomy
    anat = load_anatomy()
    known = [m.abbrev for m in anat.muscles] + list(anat.groups)
    vals = list(dict.fromkeys(str(v) for v in values))
    return [m for m in known if m in vals] + sorted(v for v in vals if v not in known)


def _with_group(muscles: pd.DataFrame, participants: pd.DataFrame) -> pd.DataFrame:
    _check_columns(participants, ("participant_id", "group"), "participants table")
    d = muscles.merge(participants[["participant_id", "group"]], on="participant_id", how="left")
    return d


def subject_means(df: pd.DataFrame, cols, by=("participant_id",)) -> pd.DataFrame:
    """Mean over legs per subject (NaN-skipping per column; a subject whose every leg is NaN stays NaN)."""
    return df.groupby(list(by), sort=False)[list(cols)].mean().reset_index()


# ---------------------------------------------------------------------------------------------
# analyses
# ---------------------------------------------------------------------------------------------

def group_comparison(muscles: pd.DataFrame, participants: pd.DataFrame,
                     options: StatsOptions = StatsOptions()) -> pd.DataFrame:
    """Patients vs controls at baseline, per measure and muscle (and muscle group).

    Subject-level (mean of legs at each subject's first session): Welch t, Mann–Whitney U,
    Hedges' g with CI; BH-FDR across muscles on the Welch p (``welch_q``) and on the Mann–Whitney
    p (``mannwhitney_q``). With ``options.mixed_model``: MixedLM ``y ~ is_patient`` on both legs
    at baseline with a random intercept per subject (``mixed_*`` columns; beta = patient −
    control difference in the measure's unit).

    Returns
    -------
    DataFrame, one row per (measure, muscle).
    """
    d = _with_group(muscles, participants)
    d = d[d["group"].isin([options.patient_group, options.control_group])]
    first = {p: session_order(s)[0] for p, s in d.groupby("participant_id")["session_id"]}
    d = d[d["session_id"].astype(str) == d["participant_id"].map(first)]
    d = d.assign(is_patient=(d["group"] == options.patient_group).astype(float))
    rows = []
    for measure in options.measures:
        if measure not in d.columns:
            continue
        for muscle in _muscle_order(d["muscle"]):
            part = d[d["muscle"] == muscle]
            subj = part.groupby(["participant_id", "group"], sort=False)[measure].mean().reset_index()
            x = subj.loc[subj["group"] == options.patient_group, measure].to_numpy(float)
            y = subj.loc[subj["group"] == options.control_group, measure].to_numpy(float)
            row = {"measure": measure, "muscle": muscle, "unit": "subject (mean of legs, baseline)"}
            row.update(compare_two(x, y, options.alpha))
            if options.mixed_model:
                row.update(mixedlm_fixed_effect(part, measure, "is_patient"))
            rows.append(row)
    out = pd.DataFrame(rows)
    return _add_fdr(out, ["welch_p", "mannwhitney_p"] + (["mixed_p"] if options.mixed_model else []),
                    family=["measure"])


def _add_fdr(out: pd.DataFrame, pcols, family) -> pd.DataFrame:
    if out.empty:
        return out
    is_group = out["muscle"].isin(GROUP_ROWS)
    for pc in pcols:
        qc = pc[:-1] + "q"
        out[qc] = np.nan
        for idx in out[~is_group].groupby(family if len(family) > 1 else family[0], sort=False).groups.values():
            out.loc[idx, qc] = bh_fdr(out.loc[idx, pc].to_numpy(float))
    return out


def _merge_motor(muscles: pd.DataFrame, motor: pd.DataFrame, motor_cols) -> pd.DataFrame:
    _check_columns(motor, ("participant_id", "session_id", "side"), "motor table")
    cols = [c for c in motor_cols if c in motor.columns]
    m = motor[["participant_id", "session_id", "side", *cols]].copy()
    mm = muscles.copy()
    for d in (m, mm):  # datasets without sessions: NaN / None / "" all mean "no session"
        for c in ("participant_id", "session_id", "side"):
            d[c] = d[c].where(d[c].notna(), "").astype(str).replace({"nan": "", "None": ""})
    return mm.merge(m, on=["participant_id", "session_id", "side"], how="left")


def motor_correlations(muscles: pd.DataFrame, motor: pd.DataFrame, participants: pd.DataFrame,
                       options: StatsOptions = StatsOptions()) -> pd.DataFrame:
    """Correlation of each measure with each motor measure, per muscle.

    Subject-level at baseline: for each subject, the mean over legs of the measure and of the
    motor measure (legs where both exist), then Pearson and Spearman with CIs. Done for each
    population in ``options.populations`` (``all`` = patients and controls, ``ALS`` = patients
    only). With ``options.mixed_model``: MixedLM ``z(measure) ~ z(motor)`` on every leg at every
    visit with a random intercept per subject. BH-FDR across muscles per (measure, motor,
    population, method).

    Returns
    -------
    DataFrame, one row per (population, measure, motor, muscle).
    """
    d = _with_group(_merge_motor(muscles, motor, options.motor), participants)
    first = {p: session_order(s)[0] for p, s in d.groupby("participant_id")["session_id"]}
    rows = []
    for pop in options.populations:
        dp = d if pop == "all" else d[d["group"] == pop]
        base = dp[dp["session_id"] == dp["participant_id"].map(first)]
        for measure in options.measures:
            if measure not in d.columns:
                continue
            for mot in options.motor:
                if mot not in d.columns:
                    continue
                for muscle in _muscle_order(dp["muscle"]):
                    part = base[base["muscle"] == muscle]
                    both = part[np.isfinite(part[measure].astype(float)) & np.isfinite(part[mot].astype(float))]
                    subj = subject_means(both, [measure, mot])
                    row = {"population": pop, "measure": measure, "motor": mot, "muscle": muscle,
                           "unit": "subject (mean of legs, baseline)"}
                    pr = correlation(subj[measure], subj[mot], "pearson", options.alpha)
                    sr = correlation(subj[measure], subj[mot], "spearman", options.alpha)
                    row.update(n=pr["n"], pearson_r=pr["r"], pearson_ci_low=pr["ci_low"],
                               pearson_ci_high=pr["ci_high"], pearson_p=pr["p"],
                               spearman_r=sr["r"], spearman_ci_low=sr["ci_low"],
                               spearman_ci_high=sr["ci_high"], spearman_p=sr["p"])
                    if options.mixed_model:
                        row.update(mixedlm_fixed_effect(dp[dp["muscle"] == muscle], measure, mot,
                                                        standardise=True))
                    rows.append(row)
    out = pd.DataFrame(rows)
    pcols = ["pearson_p", "spearman_p"] + (["mixed_p"] if options.mixed_model else [])
    return _add_fdr(out, pcols, family=["population", "measure", "motor"])


def change_table(muscles: pd.DataFrame, motor: pd.DataFrame | None = None,
                 measures=MEASURES, motor_cols=MOTOR) -> pd.DataFrame:
    """Per subject, side and muscle: change (last − first session) of each measure and motor value.

    Subjects with a single session are left out. Columns ``participant_id``, ``side``,
    ``muscle``, ``session_first``, ``session_last`` and ``delta_<column>``.
    """
    d = muscles if motor is None else _merge_motor(muscles, motor, motor_cols)
    cols = [c for c in (*measures, *motor_cols) if c in d.columns]
    rows = []
    for pid, part in d.groupby("participant_id", sort=False):
        ses = session_order(part["session_id"])
        if len(ses) < 2:
            continue
        a = part[part["session_id"].astype(str) == ses[0]].set_index(["side", "muscle"])[cols]
        b = part[part["session_id"].astype(str) == ses[-1]].set_index(["side", "muscle"])[cols]
        delta = (b.astype(float) - a.astype(float)).dropna(how="all")
        delta.columns = [f"delta_{c}" for c in delta.columns]
        delta = delta.reset_index()
        delta.insert(0, "participant_id", pid)
        delta["session_first"], delta["session_last"] = ses[0], ses[-1]
        rows.append(delta)
    if not rows:
        return pd.DataFrame(columns=["participant_id", "side", "muscle", "session_first",
                                     "session_last", *[f"delta_{c}" for c in cols]])
    return pd.concat(rows, ignore_index=True)


def change_correlations(muscles: pd.DataFrame, motor: pd.DataFrame, participants: pd.DataFrame,
                        options: StatsOptions = StatsOptions()) -> pd.DataFrame:
    """Correlation of the change between visits: Δmeasure vs Δmotor, patients only.

    Subject-level: the mean over legs of Δmeasure and Δmotor (legs where both exist), Pearson and
    Spearman with CIs; BH-FDR across muscles. With ``options.mixed_model``: MixedLM on the
    per-leg changes, random intercept per subject, standardised.
    """
    ch = change_table(muscles, motor, options.measures, options.motor)
    ch = ch.merge(participants[["participant_id", "group"]], on="participant_id", how="left")
    ch = ch[ch["group"] == options.patient_group]
    rows = []
    for measure in options.measures:
        dm = f"delta_{measure}"
        if dm not in ch.columns:
            continue
        for mot in options.motor:
            dmo = f"delta_{mot}"
            if dmo not in ch.columns:
                continue
            for muscle in _muscle_order(ch["muscle"]):
                part = ch[ch["muscle"] == muscle]
                both = part[np.isfinite(part[dm].astype(float)) & np.isfinite(part[dmo].astype(float))]
                subj = subject_means(both, [dm, dmo])
                pr = correlation(subj[dm], subj[dmo], "pearson", options.alpha)
                sr = correlation(subj[dm], subj[dmo], "spearman", options.alpha)
                row = {"population": options.patient_group, "measure": measure, "motor": mot,
                       "muscle": muscle, "unit": "subject (mean of legs of last-first change)",
                       "n": pr["n"], "pearson_r": pr["r"], "pearson_ci_low": pr["ci_low"],
                       "pearson_ci_high": pr["ci_high"], "pearson_p": pr["p"],
                       "spearman_r": sr["r"], "spearman_ci_low": sr["ci_low"],
                       "spearman_ci_high": sr["ci_high"], "spearman_p": sr["p"]}
                if options.mixed_model:
                    row.update(mixedlm_fixed_effect(part, dm, dmo, standardise=True))
                rows.append(row)
    out = pd.DataFrame(rows)
    pcols = ["pearson_p", "spearman_p"] + (["mixed_p"] if options.mixed_model else [])
    return _add_fdr(out, pcols, family=["measure", "motor"])


def abnormal_muscles(muscles: pd.DataFrame, participants: pd.DataFrame,
                     options: StatsOptions = StatsOptions(),
                     measure: str = "t2_water_ms") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Automated analogue of a visual reading: muscles beyond ``z_abnormal`` SD of the controls.

    Reference: controls at their first session, both legs pooled, per muscle (mean and SD,
    ddof=1). A muscle of a patient session is abnormal when ``direction · z > z_abnormal`` where
    ``direction`` is +1 for T2/FF/T1 (raised) and −1 for volume (atrophy). Only per-muscle rows
    count (group rows excluded).

    Returns
    -------
    (zscores, counts): ``zscores`` one row per patient session × side × muscle with ``z`` and
    ``abnormal``; ``counts`` one row per patient session with ``n_abnormal``, ``n_muscles``
    and ``abnormal_muscles`` (e.g. ``"TA_R,EDL_L"``).
    """
    direction = ABNORMAL_DIRECTION.get(measure, +1)
    d = _with_group(muscles, participants)
    d = d[~d["muscle"].isin(GROUP_ROWS)]
    ctrl = d[d["group"] == options.control_group]
    first = {p: session_order(s)[0] for p, s in ctrl.groupby("participant_id")["session_id"]}
    ctrl = ctrl[ctrl["session_id"].astype(str) == ctrl["participant_id"].map(first)]
    ref = ctrl.groupby("muscle")[measure].agg(["mean", "std", "count"])
    pat = d[d["group"] == options.patient_group].copy()
    pat = pat.join(ref, on="muscle")
    pat["z"] = (pat[measure].astype(float) - pat["mean"]) / pat["std"]
    pat["abnormal"] = (direction * pat["z"]) > options.z_abnormal
    z = pat[["participant_id", "session_id", "side", "muscle", measure, "mean", "std", "z", "abnormal"]]
    z = z.rename(columns={"mean": "control_mean", "std": "control_sd"}).reset_index(drop=True)
    counts = []
    for (pid, ses), part in z.groupby(["participant_id", "session_id"], sort=False):
        ok = part[np.isfinite(part["z"])]
        ab = ok[ok["abnormal"]]
        counts.append({"participant_id": pid, "session_id": ses, "measure": measure,
                       "n_abnormal": len(ab), "n_muscles": len(ok),
                       "abnormal_muscles": ",".join(f"{m}_{s}" for m, s in zip(ab["muscle"], ab["side"]))})
    return z, pd.DataFrame(counts, columns=["participant_id", "session_id", "measure", "n_abnormal",
                                            "n_muscles", "abnormal_muscles"])


def run_all(muscles: pd.DataFrame, participants: pd.DataFrame, motor: pd.DataFrame | None,
            options: StatsOptions = StatsOptions(), session_dates: pd.DataFrame | None = None
            ) -> dict[str, pd.DataFrame]:
    """Every analysis; returns ``{name: table}`` with names ``group_comparison``,
    ``motor_correlation``, ``change_correlation`` (the motor ones only with a motor table),
    ``change`` (paired change between visits, :func:`alsseg.stats.study.change_between_visits`),
    ``visit_intervals`` (only with ``session_dates``: participant_id, session_id, acq_time),
    ``abnormal_zscores``, ``abnormal_counts`` (every measure, ``measure`` column) and
    ``findings`` (the founding study's findings beside this cohort's estimates)."""
    from alsseg.stats import study  # study builds on this module's helpers


    _check_columns(muscles, ("participant_id", "session_id", "side", "muscle"), "muscle table")
    muscles = muscles.copy()
    for c in ("participant_id", "session_id", "side", "muscle"):
        muscles[c] = muscles[c].astype(str)
    participants = participants.copy()
    participants["participant_id"] = participants["participant_id"].astype(str)
    if not muscles["muscle"].isin(GROUP_ROWS).any():
        muscles = add_group_rows(muscles, measures=options.measures)
    out = {"group_comparison": group_comparison(muscles, participants, options)}
    if motor is not None and len(motor):
        out["motor_correlation"] = motor_correlations(muscles, motor, participants, options)
        out["change_correlation"] = change_correlations(muscles, motor, participants, options)
    zs, cs = [], []
    for measure in options.measures:
        if measure in muscles.columns:
            z, counts = abnormal_muscles(muscles, participants, options, measure)
            zs.append(z.rename(columns={measure: "value"}).assign(measure=measure))
            cs.append(counts)
    if zs:
        out["abnormal_zscores"] = pd.concat(zs, ignore_index=True)
        out["abnormal_counts"] = pd.concat(cs, ignore_index=True)
    intervals = None
    if session_dates is not None and len(session_dates):
        intervals = out["visit_intervals"] = study.visit_intervals(session_dates)
    out["change"] = study.change_between_visits(muscles, participants, motor, intervals, options)
    out["findings"] = study.study_findings(out, participants)
    return out


def write_tables(tables: dict[str, pd.DataFrame], out_dir) -> list:
    """Write each table as ``<out_dir>/stats_<name>.tsv`` atomically (temporary file + rename;
    done here so that this module imports nothing of the imaging stack); return the paths."""
    import os
    import tempfile
    from pathlib import Path

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, df in tables.items():
        target = out_dir / f"stats_{name}.tsv"
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tsv", dir=out_dir)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(df.to_csv(sep="\t", index=False, na_rep="n/a", float_format="%.6g"))
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        paths.append(target)
    return paths
