"""Per-subject tables that the report draws: subject and visit means of one muscle (or group),
the baseline values behind the box plots and scatter plots, and the patients' change between
visits — computed here, once, so the report only draws what statistics returns.
"""

from __future__ import annotations

import pandas as pd

from alsseg.stats.analyses import add_group_rows, change_table, session_order

#: the tables :func:`report_tables` returns (keys of the results the report needs).
REPORT_TABLES = ("muscles", "subjects", "subject_baseline", "subject_baseline_motor", "subject_visits",
                 "change_subjects", "visit_order")


def subject_level(muscles: pd.DataFrame, participants: pd.DataFrame, motor: pd.DataFrame | None,
                  muscle: str, baseline_only: bool = True) -> pd.DataFrame:
    """One row per subject and visit (baseline only by default): the mean over legs of the
    measures of ``muscle`` (and of the motor measures when ``motor`` is given), with ``group``."""
    d = muscles[muscles["muscle"] == muscle]
    if motor is not None and not motor.empty:
        d = d.merge(motor, on=["participant_id", "session_id", "side"], how="left")
    d = d.merge(participants[["participant_id", "group"]], on="participant_id", how="left")
    if baseline_only:
        first = {p: session_order(s)[0] for p, s in d.groupby("participant_id")["session_id"]}
        d = d[d["session_id"] == d["participant_id"].map(first)]
    cols = [c for c in ("t2_water_ms", "volume_ml", "fat_fraction", "t1_ms", "cmap_mv", "mvic_n") if c in d]
    # a subject without a group (no participants.tsv) keeps its rows, with group NaN
    return d.groupby(["participant_id", "session_id", "group"], sort=False, dropna=False)[cols].mean().reset_index()


def subject_table(muscles: pd.DataFrame, participants: pd.DataFrame, motor: pd.DataFrame,
                  counts: pd.DataFrame | None, muscle: str = "anterior") -> pd.DataFrame:
    """One row per subject and visit: group, ``muscle`` water T2 / FF / volume (mean of legs),
    CMAP and MVIC (mean of legs; missing stays missing) and the abnormal-muscle count (T2)."""
    d = muscles[muscles["muscle"] == muscle]
    cols = [c for c in ("t2_water_ms", "fat_fraction", "volume_ml") if c in d]
    img = d.groupby(["participant_id", "session_id"])[cols].mean().reset_index()
    if motor is not None and not motor.empty:
        mot = motor.copy()
        mot["session_id"] = mot["session_id"].astype(str)
        mm = mot.groupby(["participant_id", "session_id"])[[c for c in ("cmap_mv", "mvic_n") if c in mot]].mean().reset_index()
        img = img.merge(mm, on=["participant_id", "session_id"], how="left")
    img = participants[["participant_id", "group"]].merge(img, on="participant_id", how="right")
    if counts is not None and not counts.empty:
        img = img.merge(counts[["participant_id", "session_id", "n_abnormal"]], on=["participant_id", "session_id"], how="left")
    order = {s: i for i, s in enumerate(session_order(img["session_id"]))}
    img = img.sort_values(["group", "participant_id", "session_id"], key=lambda s: s.map(order) if s.name == "session_id" else s)
    return img.rename(columns={c: f"{muscle} {c}" for c in cols})


def report_tables(muscles: pd.DataFrame, participants: pd.DataFrame, motor: pd.DataFrame,
                  abnormal_counts: pd.DataFrame | None = None, focus_muscle: str = "anterior",
                  patient_group: str = "ALS") -> dict[str, pd.DataFrame]:
    """The per-subject tables of the report (:func:`alsseg.report.build_report`).

    Parameters
    ----------
    muscles, participants, motor : the cohort's tables (see :mod:`alsseg.stats`).
    abnormal_counts : ``abnormal_counts`` of :func:`~alsseg.stats.run_all` (the T2 rows are used).
    focus_muscle : muscle or group of the scatter and change plots.

    Returns
    -------
    ``{name: DataFrame}`` with the names of :data:`REPORT_TABLES`: ``muscles`` (string keys, with
    group rows), ``subjects`` (:func:`subject_table`), ``subject_baseline`` (baseline subject means
    per muscle, column ``muscle``), ``subject_baseline_motor`` (the focus muscle with the motor
    measures), ``subject_visits`` (the focus muscle at every visit), ``change_subjects`` (per
    patient, mean over legs of the ``delta_*`` of the focus muscle), ``visit_order`` (column
    ``session_id`` in visit order). The focus-muscle tables carry a ``muscle`` column.
    """
    muscles = muscles.copy()
    for c in ("participant_id", "session_id", "side", "muscle"):
        muscles[c] = muscles[c].astype(str)
    if not muscles["muscle"].isin(["anterior", "all"]).any():
        muscles = add_group_rows(muscles)
    muscle_order = [m for m in ("TA", "EDL", "PER", "TP", "SOL", "GM", "GL", "anterior", "all")
                    if m in set(muscles["muscle"])]
    counts = abnormal_counts
    if counts is not None and "measure" in counts:
        counts = counts[counts["measure"] == "t2_water_ms"]
    rows = []
    for m in muscle_order:
        s = subject_level(muscles, participants, None, m)
        s["muscle"] = m
        rows.append(s)
    baseline = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    ch = change_table(muscles, motor if not motor.empty else None)
    chp = ch.merge(participants[["participant_id", "group"]], on="participant_id", how="left")
    chp = chp[(chp["muscle"] == focus_muscle) & (chp["group"] == patient_group)]
    if chp.empty:
        change = pd.DataFrame(columns=["participant_id", "group"])
    else:
        change = chp.groupby(["participant_id", "group"])[[c for c in chp.columns if c.startswith("delta_")]].mean().reset_index()
    return {
        "muscles": muscles,
        "subjects": subject_table(muscles, participants, motor, counts, focus_muscle),
        "subject_baseline": baseline,
        "subject_baseline_motor": subject_level(muscles, participants, motor, focus_muscle).assign(muscle=focus_muscle),
        "subject_visits": subject_level(muscles, participants, None, focus_muscle, baseline_only=False).assign(muscle=focus_muscle),
        "change_subjects": change.assign(muscle=focus_muscle),
        "visit_order": pd.DataFrame({"session_id": session_order(muscles["session_id"])}),
    }
