"""The report's first screen: the founding study's findings in one table, what the cohort lacks,
and the QC warnings grouped into one line per distinct finding."""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd

from alsseg.report.fmt import fmt_ci, fmt_num, fmt_p, fmt_r

#: QC kinds that ask the user to do something (others are listed for information).
QC_ACTION = ("session failed", "session incomplete", "failed fits", "odd volume", "scans without subject")


def missing_notes(participants: pd.DataFrame, motor: pd.DataFrame, results: dict) -> list[str]:
    """Plain sentences on what this cohort lacks and which analyses that removes."""
    notes = []
    groups = set(participants["group"].dropna().astype(str)) if "group" in participants else set()
    if not {"ALS", "control"} <= groups:
        have = ", ".join(sorted(groups)) or "none"
        notes.append(f"No patient and control groups in participants.tsv (groups found: {have}): the group "
                     "comparison, the patients-only correlations and the abnormal-muscle counts need both.")
    if motor is None or motor.empty or not motor[[c for c in ("cmap_mv", "mvic_n") if c in motor]].notna().any().any():
        notes.append("No motor measures (phenotype/motor.tsv with cmap_mv, mvic_n): no correlation with "
                     "CMAP or MVIC, no change-vs-change analysis.")
    muscles = results.get("muscles", pd.DataFrame())
    if not muscles.empty and muscles.groupby("participant_id")["session_id"].nunique().max() < 2:
        notes.append("No subject has two visits: no change between visits.")
    elif "visit_intervals" not in results or results["visit_intervals"].empty:
        notes.append("No session dates (sub-XX_sessions.tsv acq_time, scans.tsv, or AcquisitionDateTime in "
                     "the MESE sidecar): the interval between visits is unknown.")
    return notes


def _estimate_cell(r) -> str:
    if not np.isfinite(r["estimate"]):
        return f"<span class='note'>not available: {html.escape(str(r['missing']))}</span>"
    if r["statistic"] == "Pearson r":
        return f"r = {fmt_r(r['estimate'])} {fmt_ci(r['ci_low'], r['ci_high'], fmt_r)}"
    unit = f" {r['unit']}" if r["unit"] else ""
    sign = "+" if r["estimate"] > 0 else ""
    return f"{sign}{fmt_num(r['estimate'])}{unit} {fmt_ci(r['ci_low'], r['ci_high'])}"


def summary_section(findings: pd.DataFrame | None, change: pd.DataFrame | None, notes: list[str],
                    focus_muscle: str = "anterior") -> str:
    """The first section: one line per finding of Bryan et al. (1998) beside this cohort's estimate."""
    out = ["<section id='summary'><h2>Summary: the founding study's findings in this cohort</h2>"]
    if findings is not None and len(findings):
        rows = []
        for _, r in findings.iterrows():
            c = r["consistent"]
            verdict = ("<span class='ok'>consistent</span>" if c == 1 else
                       "<span class='bad'>differs</span>" if c == 0 else "–")
            who = ("patients vs controls, all 7 muscles" if r["population"] == "ALS vs control"
                   else f"patients only, {r['muscle']}")
            rows.append(f"<tr><td class='l'><b>{html.escape(r['finding'])}</b> <span class='note'>({who})</span></td>"
                        f"<td class='l'>{html.escape(str(r['published']).replace('-', '−'))}</td>"
                        f"<td class='l'>{_estimate_cell(r)}</td><td>{fmt_p(r['p'], prefix=False).removeprefix('= ')}</td>"
                        f"<td>{'' if not np.isfinite(r['n']) else int(r['n'])}</td><td class='l'>{verdict}</td></tr>")
        out.append("<table class='summary'><tr><th class='l'>finding</th><th class='l'>Bryan et al. 1998</th>"
                   "<th class='l'>this cohort: estimate [95 % CI]</th><th>p</th><th>n</th><th class='l'>agreement</th>"
                   "</tr>" + "".join(rows) + "</table>")
    out.append(change_line(change, focus_muscle))
    for n in notes:
        out.append(f"<p class='missing'>{html.escape(n)}</p>")
    out.append("<p class='note'>One value per subject (mean of legs), baseline visit; correlations in patients "
               f"only, as the paper reported them; {html.escape(focus_muscle)} = tibialis anterior + EDL, the "
               "dorsiflexors that MVIC and the TA CMAP measure. Differences: Welch t-test and interval; r: Pearson "
               "with Fisher-z interval. Consistent: the CI overlaps the published r, or the test reaches the "
               "published conclusion at p &lt; 0.05.</p></section>")
    return "\n".join(out)


def change_line(change: pd.DataFrame | None, muscle: str = "anterior", measure: str = "t2_water_ms") -> str:
    """One sentence: the mean change of water T2 between visits, its CI, the paired test and the interval."""
    if change is None or change.empty:
        return ""
    r = change[(change["measure"] == measure) & (change["muscle"] == muscle)]
    if r.empty or not np.isfinite(r.iloc[0]["mean_change"]):
        return ""
    r = r.iloc[0]
    who = "patients" if r["population"] != "all" else "subjects"
    text = (f"<b>Change between visits</b> ({muscle}, {int(r['n'])} {who}): water T2 "
            f"{'+' if r['mean_change'] > 0 else ''}{fmt_num(r['mean_change'])} ms "
            f"{fmt_ci(r['change_ci_low'], r['change_ci_high'])}, paired t-test {fmt_p(r['paired_p'])}")
    if np.isfinite(r.get("interval_days_median", np.nan)):
        text += (f"; interval {fmt_num(r['interval_days_median'])} days (median; {fmt_num(r['interval_days_min'])}"
                 f"–{fmt_num(r['interval_days_max'])}) = {r['interval_months_median']:.1f} months "
                 "(Bryan et al.: about 4 months)")
    else:
        text += "; interval unknown (no session dates)"
    return f"<p class='change'>{text}.</p>"


def _session_of(where: str) -> str:
    return str(where).split(" ")[0]


def _pattern(detail: str) -> str:
    """A QC detail with its numbers and muscle names blanked, so that equal findings group."""
    d = re.sub(r"\(([A-Z]{2,3}_[RL](, )?)+\)", "(…)", str(detail))
    return re.sub(r"[-−]?\d+(\.\d+)?", "#", d)


def qc_groups(qc: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct QC finding: ``kind``, ``detail`` (an example), ``sessions`` (sorted,
    comma-separated), ``n_sessions``, ``n_items`` and ``action`` (True when it needs the user)."""
    cols = ["kind", "detail", "sessions", "n_sessions", "n_items", "action"]
    if qc is None or qc.empty:
        return pd.DataFrame(columns=cols)
    d = qc.assign(_p=qc["detail"].map(_pattern), _s=qc["where"].map(_session_of))
    rows = []
    for (kind, _), part in d.groupby(["kind", "_p"], sort=False):
        sessions = sorted(set(part["_s"]))
        items = "; ".join(f"{w} ({d})" for w, d in zip(part["where"], part["detail"]))
        rows.append({"kind": kind, "detail": part["detail"].iloc[0] if part["detail"].nunique() == 1 else items,
                     "sessions": ", ".join(sessions), "n_sessions": len(sessions), "n_items": len(part),
                     "action": kind in QC_ACTION})
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["action", "n_sessions"], ascending=[False, False], kind="stable").reset_index(drop=True)


def qc_section(qc: pd.DataFrame, status: pd.DataFrame) -> str:
    """QC warnings, one line per distinct finding with the sessions it affects."""
    g = qc_groups(qc)
    n_done = int((status["status"] == "done").sum()) if status is not None and not status.empty else 0
    out = ["<section id='qc-warnings'>"]
    act = g[g["action"]]
    info = g[~g["action"]]
    head = f"QC warnings that need action ({len(act)})" if len(act) else "QC: nothing needs action"
    out.append(f"<h2>{head}</h2>")
    if len(act):
        out.append("<ul class='qc'>" + "".join(_qc_item(r, "bad") for _, r in act.iterrows()) + "</ul>")
    else:
        out.append(f"<p class='ok'>{n_done} session(s) analysed; no failed session, failed fit or odd volume.</p>")
    if len(info):
        out.append("<p class='note'>For information:</p><ul class='qc info'>"
                   + "".join(_qc_item(r, "") for _, r in info.iterrows()) + "</ul>")
    out.append("</section>")
    return "\n".join(out)


def _qc_item(r, cls: str) -> str:
    detail = str(r["detail"])
    if detail.count("; ") >= 6:
        parts = detail.split("; ")
        detail = "; ".join(parts[:6]) + f"; … ({len(parts)} in all, see qc.tsv)"
    sessions = r["sessions"].split(", ")
    shown = ", ".join(sessions[:6]) + (f", … ({len(sessions)} in all)" if len(sessions) > 6 else "")
    what = f"{r['n_items']} item(s) in " if r["n_items"] != r["n_sessions"] else ""
    return (f"<li><span class='{cls}'>{html.escape(r['kind'])}</span>: {html.escape(detail)} — "
            f"{what}{r['n_sessions']} session(s): {html.escape(shown)}</li>")
