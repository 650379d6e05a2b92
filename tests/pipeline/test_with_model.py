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
