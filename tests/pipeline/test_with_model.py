"""The pipeline with the shipped segmentation model (skipped until models/lowerleg-unet exists)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alsseg import pipeline

pytestmark = pytest.mark.skipif(not pipeline.shipped_model_available("lowerleg-unet"),
                                reason="models/lowerleg-unet not shipped yet")


@pytest.mark.slow
def test_model_segments_a_synthetic_session(tmp_path):
    from alsseg.synth.cohort import make_cohort

    bids = make_cohort(tmp_path / "bids", n_als=1, n_controls=1, visits=1, seed=11, progress=False)
    opts = pipeline.PipelineOptions(fit_t1=False, slice_profile=pipeline.simulated_slice_profile(bids))
    res = pipeline.run_cohort(bids, tmp_path / "d", opts, quiet=True)
    assert all(r.status == "done" for r in res), [r.error for r in res]
    muscles, _ = pipeline.collect_tables(tmp_path / "d")
    truth = pd.read_csv(bids / "derivatives/groundtruth/muscles.tsv", sep="\t", na_values="n/a")
    rows, summary = pipeline.compare_with_truth(muscles, truth)
    allrow = summary.set_index("muscle").loc["all"]
    # loose floors (the model's Dice, not the pipeline, limits these; see docs/pipeline.md)
    assert allrow.median_abs_volume_error_pct < 25
    assert allrow.median_abs_t2_error_ms < 1.5


@pytest.mark.slow
def test_model_on_the_real_scan(shared_mese, tmp_path):
    """The real 3 T scan: muscles found on both legs, water T2 in the healthy range."""
    job = pipeline.SessionJob("sub-real", None, shared_mese)
    opts = pipeline.PipelineOptions(fit_t1=False)
    pipeline.prepare_output(tmp_path / "d", str(shared_mese), opts)
    res = pipeline.run_session(job, tmp_path / "d", opts)
    assert res.status == "done", res.error
    t = pd.read_csv(tmp_path / "d/sub-real/anat/sub-real_muscles.tsv", sep="\t", na_values="n/a")
    per = t[t.kind == "muscle"]
    assert len(per) >= 10  # most of the 14 muscles found
    assert 25 < np.nanmedian(per.t2_water_ms) < 33


@pytest.mark.slow
def test_real_scan_converted_to_bids_gets_a_report_that_explains_what_is_missing(shared_mese, tmp_path):
    """`alsseg convert` + `alsseg cohort` on the real scan: no groups, no motor table, one visit.
    The report says which analyses that removes, and still shows the per-muscle table, the QC,
    the session date read from the DICOM header and the full overlay."""
    import re

    from alsseg.cli import main

    bids, out = tmp_path / "bids", tmp_path / "deriv"
    assert main(["convert", str(shared_mese), "--out", str(bids), "--subject", "01", "--session", "01", "-q"]) == 0
    assert main(["cohort", str(bids), "--out", str(out), "--no-t1", "-q"]) == 0
    text = (out / "group" / "report.html").read_text()
    text = re.sub(r'src="data:image/png;base64,[^"]+"', 'src=""', text)
    assert "No patient and control groups in participants.tsv" in text
    assert "No motor measures (phenotype/motor.tsv" in text and "No subject has two visits" in text
    assert text.count("not available:") == 7  # every finding of the paper says why it is missing
    table = text[text.index("Per-muscle values, every session"):]
    assert "<details>" not in table[:300] and "TA" in table and "SOL" in table  # shown open
    # the QC section is there whether or not something needs action (it depends on the model)
    assert ("QC warnings that need action" in text or "QC: nothing needs action" in text) and "cut by field of view" in text
    hrefs = re.findall(r'href="([^"]+)"', text)
    assert "../sub-01/ses-01/figures/sub-01_ses-01_desc-overlay.png" in hrefs
    assert all((out / "group" / h).is_file() for h in hrefs)
