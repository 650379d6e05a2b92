"""alsseg.report: the self-contained HTML report (and its rendering in headless Chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alsseg import stats
from alsseg.report import build_report
from alsseg.report.figures import session_strip


@pytest.fixture
def report_html(cohort_tables, tmp_path):
    muscles, parts, motor = cohort_tables
    muscles = muscles.assign(cut_fov=False, good_fit_fraction=1.0, kind="muscle")
    res = stats.run_all(muscles, parts, motor, stats.StatsOptions(mixed_model=False))
    res["muscles"] = muscles
    res["status"] = pd.DataFrame({"session": ["sub-01_ses-01", "sub-99_ses-01"], "status": ["done", "failed"],
                                  "error": ["", "segmentation is empty"]})
    res["qc"] = pd.DataFrame({"kind": ["session failed", "subject without scans"],
                              "where": ["sub-99_ses-01", "sub-42"], "detail": ["segmentation is empty", "no scans"]})
    rng = np.random.default_rng(0)
    lab = np.zeros((40, 30), np.int16)
    lab[5:15, 5:12] = 1
    lab[25:35, 5:12] = 11
    png = session_strip(rng.random((40, 30)), lab, {"t2_water_ms": np.full((40, 30), 30.0),
                                                    "fat_fraction": np.zeros((40, 30))}, "sub-01_ses-01")
    thumb = tmp_path / "sub-01_ses-01_desc-qc.png"
    thumb.write_bytes(png)
    res.update(stats.report_tables(muscles, parts, motor, res["abnormal_counts"]))
    html = build_report(res, parts, motor, [thumb], title="test cohort")
    out = tmp_path / "report.html"
    out.write_text(html)
    return out


def test_report_self_contained(report_html, cohort_tables):
    text = report_html.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    # no external resource: every src is an embedded data URI
    srcs = re.findall(r'src="([^"]+)"', text)
    assert len(srcs) >= 8 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "href=" not in text
    for section in ("Cohort", "Patients vs controls", "Imaging vs motor measures", "Change between visits",
                    "Abnormal muscles", "Quality control", "Sessions"):
        assert section in text
    # QC items are listed by name
    assert "sub-42" in text and "subject without scans" in text and "sub-99_ses-01" in text
    # the correlation table holds the numbers of the statistics
    assert "pearson_r" in text and "hedges_g" in text
    assert "Subjects and visits" in text and "anterior t2_water_ms" in text
    from alsseg.report.html import _fmt

    muscles, parts, motor = cohort_tables
    res = stats.motor_correlations(stats.add_group_rows(muscles), motor, parts, stats.StatsOptions(mixed_model=False))
    r = res[(res.population == "all") & (res.measure == "t2_water_ms") & (res.motor == "mvic_n")
            & (res.muscle == "anterior")].iloc[0]
    assert f"<td class=\"\">{_fmt(r.pearson_r)}</td>" in text and r.pearson_r < -0.8
    assert '<td class="l">t2_water_ms</td>' in text  # text left-aligned, numbers right-aligned


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


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium(report_html, tmp_path):
    shot = tmp_path / "shot.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tempfile.mkdtemp()}", f"--screenshot={shot}", "--window-size=1400,3000",
           report_html.resolve().as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000
    from matplotlib.image import imread

    img = imread(shot)
    assert img.shape[0] == 3000 and img.shape[1] == 1400
    # not a blank page: figures and tables give many distinct colours
    colours = np.unique((img[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50
