"""``run_demo`` on a coarse synthetic cohort: ground truth recovered, study pattern found, resumable."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.mark.slow
def test_demo_small_cohort(tmp_path):
    from alsseg.pipeline import run_demo
    from alsseg.synth.cohort import CohortConfig

    cfg = CohortConfig(n_als=4, n_controls=2, shape=(60, 34, 4), spacing_mm=(6.0, 6.0, 9.0), slice_thickness_mm=9.0)
    res = run_demo(tmp_path / "demo", config=cfg, use_truth_labels=True, quiet=True,
                   options=None)
    group = res.out_dir / "group"
    for name in ("report.html", "muscles.tsv", "stats_group_comparison.tsv", "stats_motor_correlation.tsv",
                 "stats_change_correlation.tsv", "stats_abnormal_counts.tsv", "accuracy_summary.tsv",
                 "stats_truth_group_comparison.tsv", "stats_vs_truth.tsv", "findings.tsv", "qc.tsv"):
        assert (group / name).is_file(), name
    html = res.report.read_text()
    assert "Accuracy against the ground truth" in html and "Headline analyses" in html
    acc = res.accuracy.set_index("muscle")
    # coarse 6 mm voxels: partial volume with fat limits the T2 accuracy; labels are the truth
    assert acc.loc["all", "median_abs_t2_error_ms"] < 2.0
    assert acc.loc["all", "median_abs_volume_error_pct"] < 1e-6
    f = res.findings.set_index("finding")
    g = f.loc["t2_water_ms: ALS vs control (all muscles)"]
    assert g.value_measured > 1 and g.value_truth > 1          # T2 higher in ALS, measured as in truth
    r = f.loc["t2_water_ms vs mvic_n (anterior)"]
    assert r.value_measured < -0.5 and abs(r.value_measured - r.value_truth) < 0.2
    # `alsseg report` on the demo folder keeps the comparison with the truth
    from alsseg.pipeline import run_report

    assert "Accuracy against the ground truth" in run_report(res.out_dir).read_text()
    # resumable: a second call redoes nothing
    res2 = run_demo(tmp_path / "demo", config=cfg, use_truth_labels=True, quiet=True)
    status = pd.read_csv(group / "cohort_status.tsv", sep="\t")
    assert set(status.status) == {"skipped"}
    assert res2.seconds["cohort"] < res.seconds["cohort"]
