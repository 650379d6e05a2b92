"""One HTML report: summary first, then QC warnings, then details (figures embedded as base64 PNG;
long tables collapsed in ``<details>``; links only to files of the same derivative folder)."""

from __future__ import annotations

import base64
import html
import time

import numpy as np
import pandas as pd

from alsseg.report.fmt import fmt_ci, fmt_num, fmt_p, fmt_p_value, fmt_r
from alsseg.report.sections import missing_notes, qc_section, summary_section

#: the per-subject tables :func:`build_report` draws, made by :func:`alsseg.stats.report_tables`
#: (the report computes no statistics; a test checks both name the same tables).
REPORT_TABLES = ("muscles", "subjects", "subject_baseline", "subject_baseline_motor", "subject_visits",
                 "change_subjects", "visit_order")

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:20px 24px;color:#222;max-width:1340px}
h1{font-size:21px;margin:0 0 2px} h2{font-size:17px;border-bottom:1px solid #ccc;padding-bottom:3px;margin:22px 0 8px}
h3{font-size:14px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:12px;margin:6px 0 10px}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right;vertical-align:top} th{background:#f3f3f3}
td.l,th.l{text-align:left}
table.summary{font-size:13px} table.summary td{padding:4px 8px}
#summary{background:#fbfaf4;border:1px solid #e4dfc8;padding:2px 14px 6px;margin-top:10px}
#summary h2{margin-top:10px}
.figs{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start} .figs img{border:1px solid #eee;max-width:100%}
.note{color:#555;font-size:12px} .ok{color:#1b6e1b} .bad{color:#b22222;font-weight:600}
.missing{color:#7a4a00;background:#fff4e0;border-left:3px solid #e69f00;padding:3px 8px;margin:4px 0;font-size:13px}
.change{font-size:13px;margin:6px 0}
ul.qc{margin:4px 0 8px;padding-left:20px;font-size:13px} ul.qc.info{font-size:12px;color:#444}
details{margin:4px 0 10px} summary{cursor:pointer;color:#0b57a4;font-size:13px}
.sessions{display:grid;grid-template-columns:repeat(auto-fill,minmax(600px,1fr));gap:10px}
.sessions figure{margin:0;border:1px solid #eee;padding:4px} .sessions img{width:100%;display:block}
.sessions figcaption{font-size:12px}
"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _cell(col: str, v) -> str:
    """Table cell text: p/q columns as p-values, r-like columns with two decimals, counts as
    integers, other numbers with three significant digits."""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        c = col.lower()
        if c in ("p", "q") or c.endswith(("_p", "_q")):
            return fmt_p_value(v)
        if c.endswith(("_r", "_g", "_beta")) or c in ("r", "hedges_g") or "_ci_" in c and ("pearson" in c or "spearman" in c or "g_ci" in c):
            return fmt_r(v)
        if c == "n" or c.startswith("n_") and np.isfinite(v) and float(v).is_integer():
            return str(int(v))
        return fmt_num(v)
    return html.escape(str(v))


def table_html(df: pd.DataFrame, cols: list[str] | None = None, max_rows: int = 400) -> str:
    """A plain HTML table (numbers right-aligned, text left, one number format per kind of column)."""
    if df is None or df.empty:
        return '<p class="note">none</p>'
    d = df[[c for c in cols if c in df]] if cols else df
    text = {c: not (pd.api.types.is_numeric_dtype(d[c]) and not pd.api.types.is_bool_dtype(d[c])) for c in d.columns}
    head = "".join(f'<th class="{"l" if text[c] else ""}">{html.escape(str(c))}</th>' for c in d.columns)
    body = []
    for _, r in d.head(max_rows).iterrows():
        cells = "".join(f'<td class="{"l" if text[c] else ""}">{_cell(str(c), r[c])}</td>' for c in d.columns)
        body.append(f"<tr>{cells}</tr>")
    more = f'<p class="note">{len(d) - max_rows} more rows in the TSV</p>' if len(d) > max_rows else ""
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def collapsed(title: str, body: str, link: str | None = None) -> str:
    """``<details>`` block (closed) with an optional link to the full TSV."""
    a = f' · <a href="{html.escape(link)}">TSV</a>' if link else ""
    return f"<details><summary>{html.escape(title)}</summary>{a}{body}</details>"


def cohort_summary(participants: pd.DataFrame, muscles: pd.DataFrame, motor: pd.DataFrame) -> pd.DataFrame:
    """One row per group: subjects, scanned subjects, sessions, age (mean ± SD), motor means."""
    rows = []
    scanned = set(muscles["participant_id"]) if not muscles.empty else set()
    parts = participants if "group" in participants and participants["group"].notna().any() else \
        pd.DataFrame({"participant_id": sorted(scanned), "group": "all (no groups)"})
    for g, part in parts.groupby("group"):
        ids = set(part["participant_id"])
        row = {"group": g, "subjects": len(ids), "scanned": len(ids & scanned),
               "sessions": muscles[muscles["participant_id"].isin(ids)][["participant_id", "session_id"]]
               .drop_duplicates().shape[0] if not muscles.empty else 0}
        if "age" in part:
            a = pd.to_numeric(part["age"], errors="coerce")
            row["age (y)"] = f"{a.mean():.1f} ± {a.std():.1f}" if a.notna().any() else "–"
        if "sex" in part:
            row["sex (F/M)"] = f"{(part['sex'].astype(str).str.upper() == 'F').sum()}/{(part['sex'].astype(str).str.upper() == 'M').sum()}"
        m = motor[motor["participant_id"].isin(ids)] if motor is not None and not motor.empty else pd.DataFrame()
        for c, name in (("cmap_mv", "CMAP (mV)"), ("mvic_n", "MVIC (N)")):
            if c in m:
                v = pd.to_numeric(m[c], errors="coerce")
                row[f"{name}, mean ± SD of legs and visits"] = f"{v.mean():.2f} ± {v.std():.2f}" if v.notna().any() else "–"
        rows.append(row)
    return pd.DataFrame(rows)


def _r_text(corr: pd.DataFrame | None, measure, motor, muscle, population="ALS") -> str | None:
    if corr is None or corr.empty:
        return None
    r = corr[(corr["measure"] == measure) & (corr["motor"] == motor) & (corr["muscle"] == muscle)
             & (corr["population"] == population)]
    if r.empty or not np.isfinite(r.iloc[0]["pearson_r"]):
        return None
    r = r.iloc[0]
    who = "patients" if population != "all" else "all"
    return (f"{who}: r = {fmt_r(r.pearson_r)} {fmt_ci(r.pearson_ci_low, r.pearson_ci_high, fmt_r)}, "
            f"{fmt_p(r.pearson_p)}, n = {int(r.n)}")


def build_report(results: dict, participants: pd.DataFrame, motor: pd.DataFrame, thumbnails: list,
                 title: str = "alsseg report", focus_muscle: str = "anterior", extra: dict | None = None,
                 overlays: dict | None = None, links: dict | None = None) -> str:
    """The HTML text of the cohort report.

    Parameters
    ----------
    results : output of :func:`alsseg.pipeline.run_stats` (``muscles``, ``status``, ``qc`` and the
        statistics tables of :func:`alsseg.stats.run_all`, ``findings`` and ``change`` included)
        updated with :func:`alsseg.stats.report_tables` (the per-subject tables drawn here, made
        for the same ``focus_muscle``; the report computes no statistics).
    participants, motor : the dataset's tables (either may be empty).
    thumbnails : paths of per-session QC PNGs (``<session>_desc-qc.png``), embedded in order.
    focus_muscle : muscle or group of the scatter and change plots (``anterior`` = TA + EDL).
    extra : ``{heading: DataFrame}`` tables shown collapsed among the details.
    overlays : ``{session name: [href, …]}`` full multi-slice overlays (relative links) that a
        click on the session's thumbnail opens.
    links : ``{table name: href}`` of the TSV files (``muscles``, ``qc``, ``group_comparison`` …).
    """
    from alsseg.report.details import details_sections

    missing = [k for k in REPORT_TABLES if k not in results]
    if missing:
        raise ValueError(f"results lack {', '.join(missing)}: add alsseg.stats.report_tables(...) to them")
    focus = set(results["subject_baseline_motor"].get("muscle", pd.Series([focus_muscle])))
    if focus - {focus_muscle}:
        raise ValueError(f"the report tables were made for {sorted(focus)}, not focus_muscle={focus_muscle!r}")
    links = links or {}
    muscles = results["muscles"]
    participants = participants.copy()
    participants["participant_id"] = participants["participant_id"].astype(str)
    status = results.get("status", pd.DataFrame(columns=["session", "status", "error"]))
    qc = results.get("qc", pd.DataFrame(columns=["kind", "where", "detail"]))
    n_sub = muscles["participant_id"].nunique() if not muscles.empty else 0
    n_ses = muscles[["participant_id", "session_id"]].drop_duplicates().shape[0] if not muscles.empty else 0
    n_bad = int((status["status"] != "done").sum()) if not status.empty else 0
    groups = participants["group"].value_counts() if "group" in participants else pd.Series(dtype=int)
    gtext = ", ".join(f"{n} {g}" for g, n in groups.items()) if len(groups) else "no groups"
    out = [(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>"), f"<h1>{html.escape(title)}</h1>",
           f"<p class='note'>{n_sub} subjects ({gtext}), {n_ses} sessions analysed"
           + (f", <span class='bad'>{n_bad} not analysed</span>" if n_bad else "")
           + f" · generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by alsseg</p>"]
    notes = missing_notes(participants, motor, results)
    out.append(summary_section(results.get("findings"), results.get("change"), notes, focus_muscle))
    out.append(qc_section(qc, status))
    out.append("<h2 id='details'>Details</h2>")
    out += details_sections(results, participants, motor, focus_muscle, extra or {}, links)
    out.append(_sessions_section(thumbnails, overlays or {}))
    out.append("</body></html>")
    return "\n".join(out)


def _sessions_section(thumbnails: list, overlays: dict) -> str:
    from pathlib import Path

    out = ["<h2 id='sessions'>Sessions: segmentation and maps (click a session for every slice)</h2>"]
    if not thumbnails:
        return out[0] + "<p class='note'>no thumbnails (run without --no-figures)</p>"
    out.append("<div class='sessions'>")
    for p in thumbnails:
        p = Path(p)
        name = p.stem.replace("_desc-qc", "")
        img = _img(p.read_bytes(), f"{name} thumbnail")
        hrefs = overlays.get(name, [])
        if hrefs:
            img = f'<a href="{html.escape(hrefs[0])}" target="_blank">{img}</a>'
        pages = "".join(f' <a href="{html.escape(h)}" target="_blank">page {i + 1}</a>' for i, h in enumerate(hrefs)) \
            if len(hrefs) > 1 else (f' <a href="{html.escape(hrefs[0])}" target="_blank">all slices</a>' if hrefs else "")
        out.append(f"<figure>{img}<figcaption>{html.escape(name)}{pages}</figcaption></figure>")
    out.append("</div>")
    return "\n".join(out)
