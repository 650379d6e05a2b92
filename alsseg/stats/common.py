"""Shared pieces of the statistics: default measures, options, table helpers (pure pandas)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


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



# ---------------------------------------------------------------------------------------------
# table helpers
# ---------------------------------------------------------------------------------------------

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


def _merge_motor(muscles: pd.DataFrame, motor: pd.DataFrame, motor_cols) -> pd.DataFrame:
    _check_columns(motor, ("participant_id", "session_id", "side"), "motor table")
    cols = [c for c in motor_cols if c in motor.columns]
    m = motor[["participant_id", "session_id", "side", *cols]].copy()
    mm = muscles.copy()
    for d in (m, mm):  # datasets without sessions: NaN / None / "" all mean "no session"
        for c in ("participant_id", "session_id", "side"):
            d[c] = d[c].where(d[c].notna(), "").astype(str).replace({"nan": "", "None": ""})
    return mm.merge(m, on=["participant_id", "session_id", "side"], how="left")


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
