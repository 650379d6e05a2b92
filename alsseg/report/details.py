"""The report's detail sections: figures of the study's analyses as the paper drew them, and the
full tables collapsed (each with its TSV link)."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from alsseg.report import figures as F
from alsseg.report.html import _img, _r_text, cohort_summary, collapsed, table_html

MUSCLE_ORDER = ("TA", "EDL", "PER", "TP", "SOL", "GM", "GL", "anterior", "all")
#: per-muscle table columns shown in the report (others stay in the TSV).
MUSCLE_COLUMNS = ("participant_id", "session_id", "side", "muscle", "volume_ml", "t2_water_ms", "fat_fraction",
                  "t1_ms", "b1", "good_fit_fraction", "seg_confidence", "cut_fov")


def _why(text: str) -> str:
    return f"<p class='missing'>{html.escape(text)}</p>"


def details_sections(results: dict, participants: pd.DataFrame, motor: pd.DataFrame | None,
                     focus: str, extra: dict, links: dict) -> list[str]:
    """HTML blocks in report order: cohort, group comparison, motor correlations, change,
    abnormal muscles, per-muscle values, extra tables, full QC list (``results`` holds the
    tables of :func:`alsseg.stats.report_tables`)."""
    muscles = results["muscles"]
    order = [m for m in MUSCLE_ORDER if m in set(muscles["muscle"])]
    has_groups = "group" in participants and {"ALS", "control"} <= set(participants["group"].dropna().astype(str))
    has_motor = motor is not None and not motor.empty and motor[
        [c for c in ("cmap_mv", "mvic_n") if c in motor]].notna().any().any()
    subjects = results["subjects"]
    out = ["<h3>Cohort</h3>", table_html(cohort_summary(participants, muscles, motor)),
           collapsed(f"Subjects and visits ({focus}: mean of legs; motor measures: mean of legs; n_abnormal: "
                     f"muscles with water T2 z > 2) — {len(subjects)} rows", table_html(subjects))]
    out.append(_group_section(results, order, has_groups, links))
    out.append(_motor_section(results, focus, has_groups, has_motor, links))
    out.append(_change_section(results, focus, order, links))
    out.append(_abnormal_section(results, has_groups, links))
    out.append(_muscle_table_section(muscles, links))
    for heading, table in extra.items():
        out.append(collapsed(heading, table_html(table)))
    qc = results.get("qc")
    if qc is not None and len(qc):
        out.append(collapsed(f"Every QC item ({len(qc)} rows)", table_html(qc, max_rows=500), links.get("qc")))
    return out


def _group_section(results, order, has_groups, links) -> str:
    head = "Patients vs controls (baseline)" if has_groups else "Per-muscle values at baseline (no groups)"
    out = [f"<h3>{head}</h3>"]
    subj = results["subject_baseline"]
    figs = []
    for measure in ("t2_water_ms", "volume_ml", "fat_fraction", "t1_ms"):
        if measure in subj and subj[measure].notna().any():
            own = ("all",) if measure == "volume_ml" else ()
            figs.append(_img(F.boxplot_by_group(subj, measure, order, own_axis=own), f"box plot {measure}"))
    out.append(f"<div class='figs'>{''.join(figs)}</div>")
    gc = results.get("group_comparison")
    if has_groups and gc is not None and not gc.empty:
        cols = ["measure", "muscle", "n_patients", "n_controls", "mean_patients", "mean_controls", "difference",
                "diff_ci_low", "diff_ci_high", "welch_p", "welch_q", "mannwhitney_p", "hedges_g", "g_ci_low",
                "g_ci_high", "mixed_beta", "mixed_p"]
        out.append(collapsed(f"Group comparison, every measure and muscle ({len(gc)} rows)", table_html(gc, cols),
                             links.get("group_comparison")))
    elif not has_groups:
        out.append(_why("No patient vs control comparison: participants.tsv does not give both groups."))
    return "\n".join(out)


def _motor_section(results, focus, has_groups, has_motor, links) -> str:
    out = ["<h3>Imaging vs motor measures (baseline)</h3>"]
    if not has_motor:
        return out[0] + _why("No motor measures (phenotype/motor.tsv): no correlation with MVIC or CMAP.")
    corr = results.get("motor_correlation")
    pop = "ALS" if has_groups else "all"
    s0 = results["subject_baseline_motor"]
    figs = []
    for measure in ("t2_water_ms", "volume_ml"):
        for mot in ("mvic_n", "cmap_mv"):
            if measure in s0 and mot in s0 and s0[mot].notna().any():
                who = "patients (fit); controls apart" if has_groups else "all subjects"
                figs.append(_img(F.scatter_fit(s0, mot, measure, f"{focus}: {F.SHORT[measure]} vs {F.SHORT[mot]} — {who}",
                                               _r_text(corr, measure, mot, focus, pop),
                                               fit_group="ALS" if has_groups else None), f"scatter {measure} {mot}"))
    if corr is not None and not corr.empty and np.isfinite(corr.loc[corr["population"] == pop, "pearson_r"].astype(float)).any():
        figs.append(_img(F.correlation_heatmap(corr, pop), "correlation heat map"))
    out.append(f"<div class='figs'>{''.join(figs)}</div>")
    if corr is not None and not corr.empty:
        cols = ["population", "measure", "motor", "muscle", "n", "pearson_r", "pearson_ci_low", "pearson_ci_high",
                "pearson_p", "pearson_q", "spearman_r", "spearman_p", "mixed_beta", "mixed_p"]
        out.append(collapsed(f"Correlations, every measure, muscle and population ({len(corr)} rows)",
                             table_html(corr, cols), links.get("motor_correlation")))
    return "\n".join(out)


def _change_section(results, focus, order, links) -> str:
    out = ["<h3>Change between visits</h3>"]
    change = results.get("change")
    if change is None or change.empty or not np.isfinite(change["mean_change"].astype(float)).any():
        return out[0] + _why("No subject with two analysed visits: no change between visits.")
    figs = []
    per_muscle = [m for m in order if m in set(change["muscle"])]
    figs.append(_img(F.change_forest(change, "t2_water_ms", per_muscle), "change forest"))
    iv = results.get("visit_intervals")
    months = None
    if iv is not None and len(iv):
        months = {}
        for r in iv.itertuples():
            months[(r.participant_id, r.session_first)] = 0.0
            months[(r.participant_id, r.session_last)] = float(r.interval_months)
    lvl = results["subject_visits"]
    pop = str(change["population"].iloc[0])
    if pop != "all":
        lvl = lvl[lvl["group"].astype(str) == pop]
    figs.append(_img(F.change_lines(lvl, "t2_water_ms", f"{focus}: water T2 per visit",
                                    list(results["visit_order"]["session_id"]), months), "T2 per visit"))
    cs = results["change_subjects"]
    chg = results.get("change_correlation")
    for mot in ("delta_cmap_mv", "delta_mvic_n"):
        if mot in cs and cs[mot].notna().any():
            figs.append(_img(F.scatter_fit(cs, mot, "delta_t2_water_ms", f"{focus}: ΔT2 vs Δ{F.SHORT[mot[6:]]} (patients)",
                                           _r_text(chg, "t2_water_ms", mot[6:], focus, pop), fit_group=None),
                             f"change {mot}"))
    out.append(f"<div class='figs'>{''.join(figs)}</div>")
    cols = ["population", "measure", "muscle", "n", "mean_before", "mean_after", "mean_change", "change_ci_low",
            "change_ci_high", "paired_p", "wilcoxon_p", "interval_days_median", "interval_months_median"]
    out.append(collapsed(f"Change per measure and muscle ({len(change)} rows)", table_html(change, cols),
                         links.get("change")))
    if iv is not None and len(iv):
        out.append(collapsed(f"Visit dates and intervals ({len(iv)} subjects)", table_html(iv),
                             links.get("visit_intervals")))
    chg = results.get("change_correlation")
    if chg is not None and not chg.empty:
        cols = ["measure", "motor", "muscle", "n", "pearson_r", "pearson_ci_low", "pearson_ci_high", "pearson_p",
                "spearman_r", "spearman_p"]
        out.append(collapsed(f"Change vs change correlations ({len(chg)} rows)", table_html(chg, cols),
                             links.get("change_correlation")))
    return "\n".join(out)


def _abnormal_section(results, has_groups, links) -> str:
    out = ["<h3>Abnormal muscles per patient session (water T2 z &gt; 2 against the controls)</h3>"]
    counts = results.get("abnormal_counts")
    if counts is not None and "measure" in counts:
        counts = counts[counts["measure"] == "t2_water_ms"]
    if not has_groups or counts is None or counts.empty:
        return out[0] + _why("Needs patients and controls (the controls give the normal range).")
    out.append(f"<div class='figs'>{_img(F.abnormal_bars(counts), 'abnormal counts')}</div>")
    out.append(collapsed(f"Abnormal muscles, every patient session ({len(counts)} rows)", table_html(counts),
                         links.get("abnormal_counts")))
    return "\n".join(out)


def _muscle_table_section(muscles, links) -> str:
    cols = [c for c in MUSCLE_COLUMNS if c in muscles]
    d = muscles[cols]
    note = "" if "seg_confidence" in muscles else " (no seg_confidence column: the segmentation did not report one)"
    body = table_html(d, max_rows=600)
    head = f"Per-muscle values, every session ({len(d)} rows){note}"
    if len(d) <= 40:  # a small cohort (e.g. one real scan): show it open
        link = f' · <a href="{html.escape(links["muscles"])}">TSV</a>' if links.get("muscles") else ""
        return f"<h3>{html.escape(head)}{link}</h3>{body}"
    return "<h3>Per-muscle values</h3>" + collapsed(head, body, links.get("muscles"))
