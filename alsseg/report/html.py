"""One self-contained HTML report (figures embedded as base64 PNG, no external resources)."""

from __future__ import annotations

import base64
import html
import time
from pathlib import Path

import numpy as np
import pandas as pd

from alsseg.report import figures as F

#: the per-subject tables :func:`build_report` draws, made by :func:`alsseg.stats.report_tables`
#: (the report computes no statistics; a test checks both name the same tables).
REPORT_TABLES = ("muscles", "subjects", "subject_baseline", "subject_baseline_motor", "subject_visits",
                 "change_subjects", "visit_order")

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1300px}
h1{font-size:22px;margin-bottom:4px} h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:3px;margin-top:28px}
h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:12px;margin:6px 0 12px}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right} th{background:#f3f3f3}
td.l,th.l{text-align:left}
.figs{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start} .figs img{border:1px solid #eee}
.note{color:#555;font-size:12px} .ok{color:#2a7d2a} .bad{color:#b22222;font-weight:600}
.strip img{max-width:100%;display:block;margin:4px 0}
"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _fmt(v, digits=3):
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return "–"
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.2e}"
        return f"{v:.{digits}g}" if abs(v) < 1 else f"{v:.{max(digits, len(str(int(abs(v)))))}g}"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    return html.escape(str(v))


def table_html(df: pd.DataFrame, cols: list[str] | None = None, max_rows: int = 400) -> str:
    """A plain HTML table (numbers right-aligned, text left)."""
    if df is None or df.empty:
        return '<p class="note">none</p>'
    d = df[cols] if cols else df
    text = {c: not (pd.api.types.is_numeric_dtype(d[c]) and not pd.api.types.is_bool_dtype(d[c])) for c in d.columns}
    head = "".join(f'<th class="{"l" if text[c] else ""}">{html.escape(str(c))}</th>' for c in d.columns)
    body = []
    for _, r in d.head(max_rows).iterrows():
        cells = "".join(f'<td class="{"l" if text[c] else ""}">{_fmt(r[c])}</td>' for c in d.columns)
        body.append(f"<tr>{cells}</tr>")
    more = f'<p class="note">{len(d) - max_rows} more rows in the TSV</p>' if len(d) > max_rows else ""
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def cohort_summary(participants: pd.DataFrame, muscles: pd.DataFrame, motor: pd.DataFrame) -> pd.DataFrame:
    """One row per group: subjects, scanned subjects, sessions, age (mean ± SD), motor means."""
    rows = []
    scanned = set(muscles["participant_id"]) if not muscles.empty else set()
    for g, part in participants.groupby("group"):
        ids = set(part["participant_id"])
        row = {"group": g, "subjects": len(ids), "scanned": len(ids & scanned),
               "sessions": muscles[muscles["participant_id"].isin(ids)][["participant_id", "session_id"]]
               .drop_duplicates().shape[0] if not muscles.empty else 0}
        if "age" in part:
            a = pd.to_numeric(part["age"], errors="coerce")
            row["age (y)"] = f"{a.mean():.1f} ± {a.std():.1f}" if a.notna().any() else "–"
        if "sex" in part:
            row["sex (F/M)"] = f"{(part['sex'].astype(str).str.upper() == 'F').sum()}/{(part['sex'].astype(str).str.upper() == 'M').sum()}"
        m = motor[motor["participant_id"].isin(ids)] if not motor.empty else motor
        for c in ("cmap_mv", "mvic_n"):
            if c in m:
                v = pd.to_numeric(m[c], errors="coerce")
                row[f"{c} (mean ± SD, all legs/visits)"] = f"{v.mean():.2f} ± {v.std():.2f}" if v.notna().any() else "–"
        rows.append(row)
    return pd.DataFrame(rows)


def _r_text(corr: pd.DataFrame, measure, motor, muscle, population="all") -> str | None:
    if corr is None or corr.empty:
        return None
    r = corr[(corr["measure"] == measure) & (corr["motor"] == motor) & (corr["muscle"] == muscle)
             & (corr["population"] == population)]
    if r.empty or not np.isfinite(r.iloc[0]["pearson_r"]):
        return None
    r = r.iloc[0]
    return f"r = {r.pearson_r:.2f} [{r.pearson_ci_low:.2f}, {r.pearson_ci_high:.2f}], p = {r.pearson_p:.2g}, n = {int(r.n)}"


def build_report(results: dict, participants: pd.DataFrame, motor: pd.DataFrame, thumbnails: list,
                 title: str = "alsseg report", focus_muscle: str = "anterior", extra: dict | None = None) -> str:
    """The HTML text of the cohort report.

    Parameters
    ----------
    results : output of :func:`alsseg.pipeline.run_stats` (``muscles``, ``status``, ``qc`` and
        the statistics tables) updated with :func:`alsseg.stats.report_tables` (the per-subject
        tables drawn here, made for the same ``focus_muscle``; the report computes no statistics).
    participants, motor : the dataset's tables.
    thumbnails : paths of per-session QC PNGs (embedded, in order).
    focus_muscle : muscle or group used in the scatter and change plots (``anterior`` = TA +
        EDL, the dorsiflexors whose strength MVIC measures and whose nerve CMAP probes).
    extra : ``{heading: DataFrame}`` tables shown in a section before the QC.
    """
    missing = [k for k in REPORT_TABLES if k not in results]
    if missing:
        raise ValueError(f"results lack {', '.join(missing)}: add alsseg.stats.report_tables(...) to them")
    focus = set(results["subject_baseline_motor"].get("muscle", pd.Series([focus_muscle])))
    if focus - {focus_muscle}:
        raise ValueError(f"the report tables were made for {sorted(focus)}, not focus_muscle={focus_muscle!r}")
    muscles = results["muscles"]
    muscle_order = [m for m in ("TA", "EDL", "PER", "TP", "SOL", "GM", "GL", "anterior", "all")
                    if m in set(muscles["muscle"])]
    parts = participants.copy()
    gc, corr = results.get("group_comparison"), results.get("motor_correlation")
    chg, counts = results.get("change_correlation"), results.get("abnormal_counts")
    if counts is not None and "measure" in counts:
        counts = counts[counts["measure"] == "t2_water_ms"]
    status, qc = results.get("status", pd.DataFrame()), results.get("qc", pd.DataFrame())
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{CSS}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
           f"<p class='note'>generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by alsseg. "
           "Statistics: one value per subject (mean of legs) at the baseline visit; mixed models "
           "(random intercept per subject) use every leg and visit. FDR: Benjamini–Hochberg across "
           "the 7 muscles.</p>"]

    # ---- cohort
    out.append("<h2>Cohort</h2>")
    out.append(table_html(cohort_summary(parts, muscles, motor)))
    n_done = int((status["status"] == "done").sum()) if not status.empty else 0
    n_bad = int((status["status"] != "done").sum()) if not status.empty else 0
    out.append(f"<p>{n_done} session(s) analysed" + (f", <span class='bad'>{n_bad} not analysed</span> (see QC)" if n_bad else "") + ".</p>")
    out.append(f"<h3>Subjects and visits ({focus_muscle}: mean of legs; motor measures: mean of legs; "
               "n_abnormal: muscles with water T2 z &gt; 2)</h3>")
    out.append(table_html(results["subjects"]))

    # ---- group comparison
    out.append("<h2>Patients vs controls (baseline)</h2>")
    subj = results["subject_baseline"]
    figs = []
    for measure in ("t2_water_ms", "volume_ml", "fat_fraction", "t1_ms"):
        if measure in subj and subj[measure].notna().any():
            order = [m for m in muscle_order if m != "all"] if measure == "volume_ml" else muscle_order
            figs.append(_img(F.boxplot_by_group(subj, measure, order), f"box plot {measure}"))
    out.append(f"<div class='figs'>{''.join(figs)}</div>")
    if gc is not None and not gc.empty:
        cols = ["measure", "muscle", "n_patients", "n_controls", "mean_patients", "mean_controls", "difference",
                "welch_p", "welch_q", "mannwhitney_p", "hedges_g", "g_ci_low", "g_ci_high"]
        cols += [c for c in ("mixed_beta", "mixed_p") if c in gc]
        out.append(table_html(gc, [c for c in cols if c in gc]))

    # ---- correlations with motor measures
    out.append("<h2>Imaging vs motor measures</h2>")
    figs = []
    s0 = results["subject_baseline_motor"]
    for measure in ("t2_water_ms", "volume_ml"):
        for mot in ("mvic_n", "cmap_mv"):
            if measure in s0 and mot in s0 and s0[mot].notna().any():
                figs.append(_img(F.scatter_fit(s0, mot, measure, f"{focus_muscle}: {measure} vs {mot} (baseline, subject means)",
                                               _r_text(corr, measure, mot, focus_muscle)), f"scatter {measure} {mot}"))
    if corr is not None and not corr.empty and np.isfinite(corr["pearson_r"].astype(float)).any():
        figs.append(_img(F.correlation_heatmap(corr, "all"), "correlation heat map"))
    out.append(f"<div class='figs'>{''.join(figs)}</div>")
    if corr is not None and not corr.empty:
        cols = ["population", "measure", "motor", "muscle", "n", "pearson_r", "pearson_ci_low", "pearson_ci_high",
                "pearson_p", "pearson_q", "spearman_r", "spearman_p", "mixed_beta", "mixed_p"]
        key = corr[corr["muscle"].isin(["TA", "anterior", "all"])]
        out.append("<h3>TA, anterior compartment and all muscles (every muscle in stats_motor_correlation.tsv)</h3>")
        out.append(table_html(key, [c for c in cols if c in corr]))

    # ---- change between visits
    out.append("<h2>Change between visits (patients)</h2>")
    figs = []
    cs = results["change_subjects"]
    if not cs.empty:
        for mot in ("delta_cmap_mv", "delta_mvic_n"):
            if mot in cs and cs[mot].notna().any():
                rt = _r_text(chg, "t2_water_ms", mot[6:], focus_muscle, "ALS")
                figs.append(_img(F.scatter_fit(cs, mot, "delta_t2_water_ms", f"{focus_muscle}: ΔT2 vs {mot[6:]} change", rt),
                                 f"change {mot}"))
        lvl = results["subject_visits"]
        figs.append(_img(F.change_lines(lvl, "t2_water_ms", list(results["visit_order"]["session_id"]),
                                        f"{focus_muscle}: water T2 per visit"), "T2 per visit"))
    out.append(f"<div class='figs'>{''.join(figs)}</div>" if figs else "<p class='note'>no subject with two visits</p>")
    if chg is not None and not chg.empty:
        cols = ["measure", "motor", "muscle", "n", "pearson_r", "pearson_ci_low", "pearson_ci_high", "pearson_p",
                "spearman_r", "spearman_p"]
        out.append(table_html(chg[chg["measure"].isin(["t2_water_ms", "volume_ml"]) & chg["muscle"].isin(["TA", "anterior", "all"])],
                              [c for c in cols if c in chg]))

    # ---- abnormal muscles
    if counts is not None and not counts.empty:
        out.append("<h2>Abnormal muscles per patient (water T2 z &gt; 2 against controls)</h2>")
        out.append(f"<div class='figs'>{_img(F.abnormal_bars(counts), 'abnormal counts')}</div>")
        out.append(table_html(counts))

    # ---- extra sections (e.g. the demo's comparison with the ground truth)
    for heading, table in (extra or {}).items():
        out.append(f"<h2>{html.escape(heading)}</h2>")
        out.append(table_html(table))

    # ---- QC
    out.append("<h2>Quality control</h2>")
    if qc is None or qc.empty:
        out.append("<p class='ok'>no QC finding</p>")
    else:
        summary = qc.groupby("kind").size().reset_index(name="count")
        out.append(table_html(summary))
        out.append(table_html(qc, max_rows=300))

    # ---- thumbnails
    out.append("<h2>Sessions: image with segmentation, water T2, fat fraction, B1, T1</h2><div class='strip'>")
    for p in thumbnails:
        p = Path(p)
        out.append(f"<div>{_img(p.read_bytes(), p.stem)}</div>")
    if not thumbnails:
        out.append("<p class='note'>no thumbnails</p>")
    out.append("</div></body></html>")
    return "\n".join(out)
