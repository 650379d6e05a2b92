"""The group level of a processed cohort: the finished sessions' tables, statistics, QC
findings and the HTML report, read from and written to the derivative folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from alsseg.io.atomic import write_text_atomic
from alsseg.io.errors import InputError
from alsseg.pipeline.layout import GROUP_DIR, source_of
from alsseg.quant import FIT_FAIL_QC_THRESHOLD


def collect_tables(out_dir: str | Path):
    """Concatenate the per-session tables of finished sessions (completion marker present).

    Returns
    -------
    (muscles, status): the per-muscle table of all sessions and a status table (session,
    status in {done, failed, incomplete}, error) built from the markers on disk.
    """
    import pandas as pd

    out_dir = Path(out_dir)
    tables, status = [], []
    for sub in sorted(p for p in out_dir.glob("sub-*") if p.is_dir()):
        folders = sorted(p for p in sub.glob("ses-*") if p.is_dir()) or [sub]
        for f in folders:
            name = f"{sub.name}_{f.name}" if f != sub else sub.name
            done, failed = f / f"{name}_alsseg.json", f / f"{name}_failed.json"
            if done.is_file():
                tsv = f / "anat" / f"{name}_muscles.tsv"
                if tsv.is_file():
                    from alsseg.io.tables import check_complete_rows

                    check_complete_rows(tsv)  # a table cut mid-row is refused, not read short
                    t = pd.read_csv(tsv, sep="\t", na_values="n/a", dtype={"participant_id": str, "session_id": str})
                    tables.append(t)
                    status.append({"session": name, "status": "done", "error": ""})
                    continue
            if failed.is_file():
                rec = json.loads(failed.read_text())
                status.append({"session": name, "status": "failed", "error": rec.get("error", "")})
            else:
                status.append({"session": name, "status": "incomplete", "error": "no completion marker"})
    muscles = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return muscles, pd.DataFrame(status, columns=["session", "status", "error"])


def run_stats(out_dir: str | Path, bids_root: str | Path | None = None, motor_table: str | Path | None = None,
              options=None) -> dict:
    """Collect the session tables and run :func:`alsseg.stats.run_all`; write ``group/*.tsv``.

    Returns
    -------
    ``{name: DataFrame}`` with ``muscles`` and ``status`` besides the statistics tables.
    """
    from alsseg import stats
    from alsseg.io.bids import BidsDataset

    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise InputError(out_dir, "no such output folder")
    root = Path(bids_root) if bids_root else source_of(out_dir)
    if root is None:
        raise InputError(out_dir, "no source dataset recorded; pass --bids ROOT")
    ds = BidsDataset(root, motor_table=motor_table)
    muscles, status = collect_tables(out_dir)
    if muscles.empty:
        raise InputError(out_dir, "no finished session to analyse (run `alsseg cohort` first)")
    participants, motor = ds.participants, ds.motor
    tables = stats.run_all(muscles, participants, motor, options or stats.StatsOptions(),
                           session_dates=ds.session_dates)
    group = out_dir / GROUP_DIR
    stats.write_tables(tables, group)
    write_text_atomic(group / "muscles.tsv", muscles.to_csv(sep="\t", index=False, na_rep="n/a", float_format="%.6g"))
    qc = qc_table(muscles, status, ds)
    write_text_atomic(group / "qc.tsv", qc.to_csv(sep="\t", index=False))
    return {"muscles": muscles, "status": status, "qc": qc, **tables}


def qc_table(muscles, status, ds=None):
    """QC findings, one line each: failed/incomplete sessions, cut muscles, poor fits, odd
    volumes (|robust z| > 3.5 within the cohort per muscle and side), dataset findings
    (subjects without scans, scans without subjects, missing motor values)."""
    import pandas as pd

    rows = []
    for _, r in status.iterrows():
        if r["status"] != "done":
            rows.append({"kind": f"session {r['status']}", "where": r["session"], "detail": r["error"]})
    if not muscles.empty:
        per = muscles[muscles.get("kind", "muscle") == "muscle"] if "kind" in muscles else muscles
        for (pid, ses), part in per.groupby(["participant_id", "session_id"], sort=False):
            if "cut_fov" in part:
                cut = part[part["cut_fov"].astype(bool)]
                if len(cut):
                    names = ("all" if len(cut) == len(part) else
                             ", ".join(f"{m}_{s}" for m, s in zip(cut["muscle"], cut["side"])))
                    rows.append({"kind": "cut by field of view", "where": f"{pid}_{ses}",
                                 "detail": f"{len(cut)} muscle(s) on the first or last slice ({names}): "
                                           "their volumes are those of the imaged slab"})
        for _, r in per.iterrows():
            where = f"{r['participant_id']}_{r['session_id']} {r['muscle']}_{r['side']}"
            f = r.get("fit_fail_fraction", np.nan)
            g = r.get("good_fit_fraction", np.nan)
            if not np.isfinite(f) and np.isfinite(g):
                f = 1.0 - g  # tables written before fit_fail_fraction existed
            if np.isfinite(f) and f > FIT_FAIL_QC_THRESHOLD:
                rows.append({"kind": "failed fits", "where": where,
                             "detail": f"{100 * f:.0f} % of voxels failed or sat at a bound "
                                       f"(threshold {100 * FIT_FAIL_QC_THRESHOLD:.0f} %): check the B1 / water T2 maps"})
        for (m, s), part in per.groupby(["muscle", "side"]):
            v = part["volume_ml"].astype(float)
            med = v.median()
            mad = (v - med).abs().median() * 1.4826
            if mad > 0:
                z = (v - med) / mad
                for i in np.flatnonzero(np.abs(z.to_numpy()) > 3.5):
                    r = part.iloc[i]
                    rows.append({"kind": "odd volume", "where": f"{r['participant_id']}_{r['session_id']} {m}_{s}",
                                 "detail": f"{r['volume_ml']:.1f} mL vs cohort median {med:.1f} mL (robust z {z.iloc[i]:.1f})"})
    if ds is not None:
        for line in ds.report():
            where, _, detail = line.partition(": ")
            kind = "dataset"
            if "no scans" in detail:
                kind = "subject without scans"
            elif "no row in participants" in detail:
                kind = "scans without subject"
            rows.append({"kind": kind, "where": where, "detail": detail})
        motor = ds.motor
        for c in ("cmap_mv", "mvic_n"):
            if c in motor:
                miss = motor[motor[c].isna()]
                for _, r in miss.iterrows():
                    rows.append({"kind": "missing motor value", "where": f"{r['participant_id']}_{r['session_id']} {r['side']}",
                                 "detail": f"{c} missing (kept missing, not imputed)"})
    return pd.DataFrame(rows, columns=["kind", "where", "detail"])


def load_group_results(out_dir: str | Path) -> dict | None:
    """The group tables written by :func:`run_stats`, or ``None`` when they are missing or older
    than a session's completion marker (then the statistics must be run again)."""
    import pandas as pd

    group = Path(out_dir) / GROUP_DIR
    main = group / "stats_group_comparison.tsv"
    if not main.is_file() or not (group / "muscles.tsv").is_file() or not (group / "qc.tsv").is_file():
        return None
    newest = max((p.stat().st_mtime for p in Path(out_dir).glob("sub-*/**/*_alsseg.json")), default=0.0)
    newest = max([newest] + [p.stat().st_mtime for p in Path(out_dir).glob("sub-*/**/*_failed.json")])
    if main.stat().st_mtime < newest:
        return None

    def read(p):
        return pd.read_csv(p, sep="\t", na_values="n/a", keep_default_na=False,
                           dtype={"participant_id": str, "session_id": str})

    res = {"muscles": read(group / "muscles.tsv"), "qc": read(group / "qc.tsv").fillna("")}
    for name in ("group_comparison", "motor_correlation", "change_correlation", "abnormal_zscores", "abnormal_counts",
                 "change", "visit_intervals", "findings"):
        if (group / f"stats_{name}.tsv").is_file():
            res[name] = read(group / f"stats_{name}.tsv")
    _, res["status"] = collect_tables(out_dir)
    return res


def overlay_links(out_dir: Path, thumbnails: list) -> dict:
    """``{session name: [href, …]}``: each session's full overlay pages, relative to ``group/``."""
    import os
    import re

    out = {}
    for t in thumbnails:
        name = Path(t).name.replace("_desc-qc.png", "")
        pages = sorted(Path(t).parent.glob(f"{name}_desc-overlay*.png"),
                       key=lambda p: int(re.sub(r"\D", "", p.stem.split("_desc-overlay")[-1]) or 1))
        if pages:
            out[name] = [os.path.relpath(p, Path(out_dir) / GROUP_DIR).replace(os.sep, "/") for p in pages]
    return out


def table_links(group: Path) -> dict:
    """``{table name: href}`` of the TSV files in ``group/`` (``stats_X.tsv`` → ``X``)."""
    links = {p.stem.removeprefix("stats_"): p.name for p in sorted(Path(group).glob("stats_*.tsv"))}
    links.update({n: f"{n}.tsv" for n in ("muscles", "qc") if (Path(group) / f"{n}.tsv").is_file()})
    return links


def run_report(out_dir: str | Path, bids_root: str | Path | None = None, title: str | None = None,
               extra: dict | None = None) -> Path:
    """Build ``out_dir/group/report.html`` from the group tables (running the statistics first
    when they are missing or older than the newest session). ``extra``: ``{heading: DataFrame}``
    sections added to the report (the demo's comparison with the ground truth)."""
    from alsseg import stats
    from alsseg.report import build_report

    out_dir = Path(out_dir)
    res = load_group_results(out_dir) if bids_root is None or Path(bids_root) == source_of(out_dir) else None
    if res is None:
        res = run_stats(out_dir, bids_root)
    root = Path(bids_root) if bids_root else source_of(out_dir)
    if root is None:
        raise InputError(out_dir, "no source dataset recorded; pass --bids ROOT")
    from alsseg.io.bids import BidsDataset

    ds = BidsDataset(root)
    group = out_dir / GROUP_DIR
    if extra is None and (group / "accuracy_summary.tsv").is_file() and (group / "findings.tsv").is_file():
        import pandas as pd  # a demo folder: keep its comparison with the ground truth in the report

        extra = {"Accuracy against the ground truth (median absolute error per muscle, all sessions)":
                 pd.read_csv(group / "accuracy_summary.tsv", sep="\t"),
                 "Headline analyses, measured vs computed on the true values":
                 pd.read_csv(group / "findings.tsv", sep="\t")}
    thumbs = sorted(out_dir.glob("sub-*/**/figures/*_desc-qc.png"))
    res = {**res, **stats.report_tables(res["muscles"], ds.participants, ds.motor, res.get("abnormal_counts"))}
    html = build_report(res, ds.participants, ds.motor, thumbs, title=title or f"alsseg report — {root.name}",
                        extra=extra, overlays=overlay_links(out_dir, thumbs), links=table_links(group))
    return write_text_atomic(out_dir / GROUP_DIR / "report.html", html)
