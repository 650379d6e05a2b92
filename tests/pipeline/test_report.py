"""alsseg.report: summary first, grouped QC, the study's analyses as drawn, readable figures, and the
rendering in headless Chromium (the summary on the first screen)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile

import numpy as np
import pandas as pd
import pytest

from alsseg import stats
from alsseg.report import build_report
from alsseg.report import figures as F
from alsseg.report.figures import session_strip
from alsseg.report.sections import qc_groups


def _results(muscles, parts, motor, dates=True):
    muscles = muscles.assign(cut_fov=True, good_fit_fraction=1.0, kind="muscle")
    sd = None
    if dates:
        sd = pd.DataFrame([{"participant_id": p, "session_id": s, "acq_time": f"2024-0{1 + 4 * (s == 'ses-02')}-10"}
                           for p, s in muscles[["participant_id", "session_id"]].drop_duplicates().itertuples(index=False)])
    res = stats.run_all(muscles, parts, motor, stats.StatsOptions(mixed_model=False), session_dates=sd)
    res["muscles"] = muscles
    sessions = [f"{p}_{s}" for p, s in muscles[["participant_id", "session_id"]].drop_duplicates().itertuples(index=False)]
    res["status"] = pd.DataFrame({"session": sessions + ["sub-99_ses-01"], "status": ["done"] * len(sessions) + ["failed"],
                                  "error": [""] * len(sessions) + ["segmentation is empty"]})
    qc = [{"kind": "cut by field of view", "where": s, "detail": "14 muscle(s) on the first or last slice (all): "
           "their volumes are those of the imaged slab"} for s in sessions]
    qc += [{"kind": "session failed", "where": "sub-99_ses-01", "detail": "segmentation is empty"},
           {"kind": "subject without scans", "where": "sub-42", "detail": "listed in participants.tsv but has no scans"},
           {"kind": "failed fits", "where": "sub-02_ses-01 TA_R", "detail": "25 % of voxels failed"},
           {"kind": "failed fits", "where": "sub-03_ses-01 GL_L", "detail": "31 % of voxels failed"}]
    res["qc"] = pd.DataFrame(qc)
    res.update(stats.report_tables(muscles, parts, motor if motor is not None else pd.DataFrame(
        columns=["participant_id", "session_id", "side", "cmap_mv", "mvic_n"]), res["abnormal_counts"]))
    return res


def _thumb(tmp_path, name="sub-01_ses-01"):
    rng = np.random.default_rng(0)
    lab = np.zeros((40, 30), np.int16)
    lab[5:15, 5:12] = 1
    lab[25:35, 5:12] = 11
    png = session_strip(rng.random((40, 30)), lab, {"t2_water_ms": np.full((40, 30), 30.0),
                                                    "fat_fraction": np.zeros((40, 30))}, name)
    thumb = tmp_path / f"{name}_desc-qc.png"
    thumb.write_bytes(png)
    return thumb


@pytest.fixture
def report_html(cohort_tables, tmp_path):
    muscles, parts, motor = cohort_tables
    res = _results(muscles, parts, motor)
    (tmp_path / "sub-01_ses-01_desc-overlay.png").write_bytes(b"png")
    (tmp_path / "stats_group_comparison.tsv").write_text("x\n")
    html = build_report(res, parts, motor, [_thumb(tmp_path)], title="test cohort",
                        overlays={"sub-01_ses-01": ["sub-01_ses-01_desc-overlay.png"]},
                        links={"group_comparison": "stats_group_comparison.tsv"})
    out = tmp_path / "report.html"
    out.write_text(html)
    return out, res


def _text(html: str) -> str:
    """The page without its embedded images."""
    return re.sub(r'src="data:image/png;base64,[^"]+"', 'src=""', html)


def test_summary_first_then_qc_then_details(report_html):
    path, res = report_html
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    i_sum, i_qc, i_det = (text.index(k) for k in ("id='summary'", "id='qc-warnings'", "id='details'"))
    assert i_sum < i_qc < i_det
    summary = text[i_sum:i_qc]
    # every finding of the paper, with the published value beside this cohort's estimate, CI and p
    f = res["findings"].set_index("key")
    for key, published in (("t2_group", "higher, p = 0.009"), ("volume_mvic", "r 0.73 to 0.78"),
                           ("t2_mvic", "r &lt; −0.8"), ("dt2_dcmap", "r = −0.63")):
        assert published.replace("&lt;", "<") in summary.replace("&lt;", "<"), key
    from alsseg.report.fmt import fmt_ci, fmt_r

    r = f.loc["t2_mvic"]
    assert f"r = {fmt_r(r.estimate)} {fmt_ci(r.ci_low, r.ci_high, fmt_r)}" in summary
    # the change between visits: mean ΔT2 with CI, paired test and the interval from the dates
    assert "Change between visits" in summary and "paired t-test" in summary and "121 days" in summary
    assert "4.0 months" in summary


def test_qc_one_line_per_finding(report_html):
    text = report_html[0].read_text()
    qc = text[text.index("id='qc-warnings'"):text.index("id='details'")]
    # 30 identical "cut by field of view" rows → one line naming the sessions
    assert qc.count("cut by field of view") == 1 and "30 session(s)" in qc and "(30 in all)" in qc
    assert "QC warnings that need action (2)" in qc  # session failed, failed fits (info lines apart)
    assert "sub-02_ses-01 TA_R (25 % of voxels failed)" in qc and "sub-99_ses-01" in qc
    g = qc_groups(report_html[1]["qc"])
    assert list(g["kind"])[:2] == ["failed fits", "session failed"] and len(g) == 4


def test_details_collapsed_links_relative_numbers_consistent(report_html):
    path, _ = report_html
    text = _text(path.read_text())
    # long tables are collapsed; the TSV and the full overlay are linked relative to the report
    assert text.count("<details>") >= 5
    hrefs = re.findall(r'href="([^"]+)"', text)
    assert hrefs and all(not re.match(r"^[a-z]+:|^/", h) for h in hrefs)
    assert all((path.parent / h).is_file() for h in hrefs)
    srcs = re.findall(r'src="([^"]*)"', path.read_text())
    assert all(s.startswith("data:image/png;base64,") for s in srcs) and len(srcs) >= 10
    # one number format: no scientific notation, no hyphen-minus before a digit in cells
    assert not re.search(r"\d\.?\d*e[-+]\d", text)
    assert not re.search(r"<td[^>]*>-\d", text)
    for section in ("Patients vs controls", "Imaging vs motor measures", "Change between visits",
                    "Abnormal muscles", "Per-muscle values", "Sessions"):
        assert section in text


def test_cohort_without_groups_or_motor_says_what_is_missing(cohort_tables, tmp_path):
    muscles, _, _ = cohort_tables
    one = muscles[(muscles.participant_id == "sub-01") & (muscles.session_id == "ses-01")]
    parts = pd.DataFrame({"participant_id": pd.Series(dtype=str), "group": pd.Series(dtype=str)})
    empty_motor = pd.DataFrame(columns=["participant_id", "session_id", "side", "cmap_mv", "mvic_n"])
    res = _results(one, parts, None, dates=False)
    text = _text(build_report(res, parts, empty_motor, [_thumb(tmp_path)], title="real scan"))
    assert "No patient and control groups" in text and "No motor measures" in text
    assert "No subject has two visits" in text
    assert "not available: no patient and control groups" in text
    # the per-muscle table is shown open (a small cohort) and the QC is there
    body = text[text.index("Per-muscle values"):]
    assert "<details>" not in body[:200] and "TA" in body and "t2_water_ms" in body
    assert "QC warnings that need action" in text and "cut by field of view" in text


@pytest.fixture
def captured_figures(monkeypatch):
    """Make the figure functions return the matplotlib figure instead of PNG bytes."""
    monkeypatch.setattr(F, "to_png", lambda fig, dpi=90, tight=True: fig)


def test_heat_map_text_readable_and_counts_integer(cohort_tables, captured_figures):
    import matplotlib.colors as mc

    muscles, parts, motor = cohort_tables
    res = stats.run_all(muscles, parts, motor, stats.StatsOptions(mixed_model=False))
    fig = F.correlation_heatmap(res["motor_correlation"], "ALS")
    ax = fig.axes[0]
    cmap, img = ax.images[0].cmap, ax.images[0].get_array()
    checked = 0
    for t in ax.texts:
        x, y = t.get_position()
        cell = cmap((img[int(round(y)), int(round(x))] + 1) / 2)
        # WCAG: at least 4.5:1 between the number and its cell (black on dark red failed)
        assert F.contrast_ratio(cell, mc.to_rgb(t.get_color())) >= 4.5, t.get_text()
        checked += 1
    assert checked > 20 and "patients only" in ax.get_title(loc="left")
    counts = res["abnormal_counts"][res["abnormal_counts"].measure == "t2_water_ms"]
    ax = F.abnormal_bars(counts).axes[0]
    ticks = ax.get_xticks()
    assert np.allclose(ticks, np.round(ticks))
    assert all("\n" not in t.get_text() for t in ax.get_yticklabels())


def test_scatter_fits_patients_only_and_labels_have_units(cohort_tables, captured_figures):
    muscles, parts, motor = cohort_tables
    d = muscles[muscles.muscle == "TA"].merge(motor, on=["participant_id", "session_id", "side"])
    d = d[d.session_id == "ses-01"].groupby("participant_id")[["t2_water_ms", "mvic_n"]].mean().reset_index()
    d = d.merge(parts, on="participant_id")
    ax = F.scatter_fit(d, "mvic_n", "t2_water_ms", "t").axes[0]
    assert ax.get_xlabel() == "dorsiflexion MVIC (N)" and ax.get_ylabel() == "water T2 (ms)"
    line = [ln for ln in ax.lines if ln.get_linestyle() == "-"][0]
    pat = d[d.group == "ALS"]
    k, c = np.polyfit(pat.mvic_n, pat.t2_water_ms, 1)  # the line is the patients' fit
    x = line.get_xdata()
    np.testing.assert_allclose(line.get_ydata(), k * x + c)
    assert x.min() == pat.mvic_n.min() and x.max() == pat.mvic_n.max()
    # the volume box plot has the "all subjects" box and the 7 muscles together on their own axis
    sub = muscles[muscles.session_id == "ses-01"].groupby(["participant_id", "muscle"])["volume_ml"].mean().reset_index()
    sub = pd.concat([sub, sub.groupby("participant_id")["volume_ml"].sum().reset_index().assign(muscle="all")])
    fig = F.boxplot_by_group(sub.merge(parts, on="participant_id"), "volume_ml", ["TA", "EDL", "all"])
    assert len(fig.axes) == 2 and [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["all"]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["control (n = 8)", "ALS (n = 11)", "all subjects (n = 19)"]


def test_report_draws_only_what_stats_returns(cohort_tables):
    """The report needs stats' per-subject tables, made for its focus muscle, and says so."""
    from alsseg.report import html as report_html_module

    assert set(report_html_module.REPORT_TABLES) == set(stats.REPORT_TABLES)
    muscles, parts, motor = cohort_tables
    res = stats.run_all(muscles, parts, motor, stats.StatsOptions(mixed_model=False))
    res.update(muscles=muscles, status=pd.DataFrame(columns=["session", "status", "error"]), qc=pd.DataFrame())
    with pytest.raises(ValueError, match="report_tables"):
        build_report(res, parts, motor, [])
    res.update(stats.report_tables(muscles, parts, motor, res["abnormal_counts"], focus_muscle="TA"))
    with pytest.raises(ValueError, match="TA"):
        build_report(res, parts, motor, [])
    assert "TA t2_water_ms" in build_report(res, parts, motor, [], focus_muscle="TA")  # the subjects table of TA
    tables = stats.report_tables(muscles, parts, motor, res["abnormal_counts"])
    # the patients' change of the anterior compartment: one row per ALS subject with two visits
    assert set(tables["change_subjects"]["participant_id"]) == set(parts[parts.group == "ALS"].participant_id)
    assert list(tables["visit_order"]["session_id"]) == ["ses-01", "ses-02"]


def test_session_strip_is_png():
    png = session_strip(np.ones((8, 8)), np.zeros((8, 8), int), {"b1": np.ones((8, 8))}, "x")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: appended to a copy of the report in the test only: writes where the summary ends on the page.
LAYOUT_PROBE = ("<script>var s=document.getElementById('summary').getBoundingClientRect();"
                "var p=document.createElement('pre');p.id='layout';p.textContent='SUMMARY '+s.top+' '+s.bottom+"
                "' WIDTH '+window.innerWidth;document.body.appendChild(p);</script>")


def chromium(args: list[str], timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tempfile.mkdtemp()}", *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_summary_on_the_first_screen_in_headless_chromium(report_html, tmp_path):
    path, _ = report_html
    shot = tmp_path / "shot.png"
    chromium([f"--screenshot={shot}", "--window-size=1400,900", path.resolve().as_uri()])
    assert shot.is_file() and shot.stat().st_size > 10_000
    from matplotlib.image import imread

    img = imread(shot)
    assert img.shape[:2] == (900, 1400)
    # the summary box (background #fbfaf4) is on the first screen
    box = np.all(np.abs(img[..., :3] - np.array([0xfb, 0xfa, 0xf4]) / 255) < 2 / 255, axis=-1)
    assert box.sum() > 100_000
    # and entirely: its bottom edge is above the fold at 1400 px wide
    probe = tmp_path / "probe.html"
    probe.write_text(path.read_text().replace("</body>", LAYOUT_PROBE + "</body>"))
    dom = chromium(["--window-size=1400,900", "--dump-dom", probe.resolve().as_uri()]).stdout
    m = re.search(r"SUMMARY ([\d.]+) ([\d.]+) WIDTH (\d+)", dom)
    assert m, dom[-500:]
    top, bottom, width = float(m.group(1)), float(m.group(2)), int(m.group(3))
    assert width == 1400 and 0 < top < bottom <= 900
