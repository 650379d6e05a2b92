"""Synthetic cohorts: BIDS layout read by alsseg.io, consistent truth, reproducible, resumable,
and the pattern of Bryan et al. 1998 in the ground truth."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alsseg.io import BidsDataset, InputError, load_nifti
from alsseg.synth.cohort import CohortConfig, make_cohort

TINY = CohortConfig(n_als=2, n_controls=1, visits=2, seed=3, shape=(96, 56, 4), spacing_mm=(4.0, 4.0, 12.0),
                    slice_thickness_mm=7.0)


@pytest.fixture(scope="module")
def tiny_cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort") / "bids"
    make_cohort(out, config=TINY, workers=1, progress=False)
    return out


def test_tiny_cohort_loads_through_the_bids_reader(tiny_cohort):
    ds = BidsDataset(tiny_cohort)
    assert [s.name for s in ds.sessions] == ["sub-01_ses-01", "sub-01_ses-02", "sub-02_ses-01", "sub-02_ses-02",
                                             "sub-03_ses-01"]
    assert ds.report() == []
    assert list(ds.participants["group"]) == ["ALS", "ALS", "control"]
    assert len(ds.motor) == 10 and set(ds.motor["side"]) == {"R", "L"}
    s = ds.sessions[0]
    m = s.load_mese()
    assert m.image.shape == TINY.shape + (17,)
    np.testing.assert_allclose(m.echo_times_ms, np.arange(1, 18) * 10.0)
    assert m.tr_ms == 4000.0 and m.field_strength_t == 3.0 and m.slice_thickness_mm == 7.0
    t1 = s.load_t1()
    assert t1.kind == "IR" and len(t1.inversion_times_ms) == 8
    s.check_grids()
    assert s.anat is not None and s.anat.name.endswith("_T1w.nii.gz")
    # BIDS sessions.tsv: baseline and a follow-up about visit_interval_months later, on weekdays
    dates = ds.session_dates
    assert len(dates) == 5 and set(dates["source"].map(lambda p: p.rsplit("/", 1)[-1])) == {
        "sub-01_sessions.tsv", "sub-02_sessions.tsv", "sub-03_sessions.tsv"}
    assert (dates["acq_time"].dt.day_of_week < 5).all()
    for pid in ("sub-01", "sub-02"):
        d = dates[dates.participant_id == pid].set_index("session_id")["acq_time"]
        assert 4 * 30.4 - 25 < (d["ses-02"] - d["ses-01"]).days < 4 * 30.4 + 25


def test_truth_volumes_equal_the_label_map(tiny_cohort):
    gt = tiny_cohort / "derivatives" / "groundtruth"
    table = pd.read_csv(gt / "muscles.tsv", sep="\t")
    assert list(table.columns[:9]) == ["participant_id", "session_id", "label", "side", "muscle", "volume_ml",
                                       "t2_water_ms", "fat_fraction", "t1_ms"]
    diffs = []
    for (pid, sid), rows in table.groupby(["participant_id", "session_id"]):
        lab = load_nifti(gt / pid / sid / "anat" / f"{pid}_{sid}_desc-muscles_dseg.nii.gz", dtype=None)
        vox_ml = abs(np.linalg.det(lab.affine[:3, :3])) / 1000
        t2 = load_nifti(gt / pid / sid / "anat" / f"{pid}_{sid}_desc-water_T2map.nii.gz").data
        for r in rows.itertuples():
            m = lab.data == r.label
            assert r.volume_ml == pytest.approx(m.sum() * vox_ml, rel=1e-5)
            if m.any():
                assert r.t2_water_voxel_ms == pytest.approx(t2[m].mean(), rel=1e-4)
                diffs.append(r.t2_water_voxel_ms - r.t2_water_ms)
    # the muscle tissue's own T2 differs from the voxel-level mean only by partial volume (fat and
    # vessels: longer T2; fascia, 5 ms: shorter), which is small for most muscles even on this
    # coarse grid
    assert abs(np.median(diffs)) < 2.0
    assert (gt / "dseg.tsv").exists() and (tiny_cohort / "phenotype" / "motor.json").exists()


def test_cohort_is_reproducible_resumable_and_refuses_other_folders(tiny_cohort, tmp_path):
    again = tmp_path / "again"
    make_cohort(again, config=TINY, workers=2, progress=False)
    for rel in ("derivatives/groundtruth/muscles.tsv", "phenotype/motor.tsv", "participants.tsv"):
        assert (again / rel).read_text() == (tiny_cohort / rel).read_text(), rel
    a = load_nifti(again / "sub-02/ses-02/anat/sub-02_ses-02_echo-5_MESE.nii.gz").data
    b = load_nifti(tiny_cohort / "sub-02/ses-02/anat/sub-02_ses-02_echo-5_MESE.nii.gz").data
    assert np.array_equal(a, b)
    # resume: an interrupted run (one session missing) is completed without touching the others
    done = again / "sub-01/ses-01/anat/sub-01_ses-01_echo-1_MESE.nii.gz"
    t_done = done.stat().st_mtime_ns
    missing = again / "derivatives/groundtruth/sub-02/ses-02/anat/sub-02_ses-02_muscles.tsv"
    missing.unlink()
    make_cohort(again, config=TINY, workers=1, progress=False)
    assert missing.exists() and done.stat().st_mtime_ns == t_done
    # another configuration in the same folder, or a foreign non-empty folder: refused
    with pytest.raises(InputError, match="another configuration"):
        make_cohort(again, config=replace(TINY, seed=4), workers=1, progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        make_cohort(foreign, config=TINY, workers=1, progress=False)
    assert (foreign / "notes.txt").read_text() == "mine" and len(os.listdir(foreign)) == 1


def test_cli_subject_and_bad_arguments(tmp_path, capsys):
    from alsseg.cli import main

    out = tmp_path / "one"
    rc = main(["synth", "subject", "--out", str(out), "--seed", "2", "--disease", "0.5", "--inplane-mm", "4",
               "--slices", "3", "--slice-mm", "10", "-q"])
    assert rc == 0
    ds = BidsDataset(out)
    assert [s.name for s in ds.sessions] == ["sub-01_ses-01"] and len(ds.motor) == 2
    assert main(["synth", "subject", "--out", str(out), "-q"]) == 2  # not empty
    assert "not empty" in capsys.readouterr().err
    assert main(["synth", "subject", "--out", str(tmp_path / "x"), "--disease", "sick"]) == 2
    assert main(["synth", "cohort", "--out", str(tmp_path / "y"), "--n-als", "0", "--n-controls", "0"]) == 2
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def _pattern(root):
    m = pd.read_csv(root / "derivatives/groundtruth/muscles.tsv", sep="\t")
    mo = pd.read_csv(root / "phenotype/motor.tsv", sep="\t")
    p = pd.read_csv(root / "participants.tsv", sep="\t")
    ta = m[m.muscle == "TA"].merge(mo, on=["participant_id", "session_id", "side"]).merge(p, on="participant_id")
    base = ta[ta.session_id == "ses-01"]
    als, ctl = base[base.group == "ALS"], base[base.group == "control"]
    return {
        "t2_group_p": stats.mannwhitneyu(als.t2_water_ms, ctl.t2_water_ms, alternative="greater").pvalue,
        "volume_group_p": stats.ttest_ind(als.volume_ml, ctl.volume_ml).pvalue,
        "r_t2_mvic": stats.pearsonr(base.t2_water_ms, base.mvic_n)[0],
        "r_t2_cmap": stats.pearsonr(base.t2_water_ms, base.cmap_mv)[0],
        "r_vol_mvic": stats.pearsonr(base.volume_ml, base.mvic_n)[0],
        "d_t2": ta.pivot_table(index=["participant_id", "side"], columns="session_id", values="t2_water_ms").dropna(),
        "d_cmap": ta.pivot_table(index=["participant_id", "side"], columns="session_id", values="cmap_mv").dropna(),
    }


def test_default_cohort_shows_the_study_pattern_in_its_ground_truth(tmp_path):
    """Bryan et al.'s design (11 ALS × 2 visits, 8 controls, default seed and effects) on a coarse
    grid (the truth does not depend on the resolution much): T2 higher in ALS, T2 strongly
    negatively correlated with MVIC and CMAP, volume correlated with MVIC, T2 rises with CMAP loss."""
    cfg = replace(CohortConfig(), shape=(96, 54, 12), spacing_mm=(4.0, 4.0, 10.5), snr=None)
    out = make_cohort(tmp_path / "bids", config=cfg, workers=2, progress=False)
    r = _pattern(out)
    assert r["t2_group_p"] < 0.01
    assert r["r_t2_mvic"] < -0.7 and r["r_t2_cmap"] < -0.7
    assert r["r_vol_mvic"] > 0.5
    dt2 = r["d_t2"]["ses-02"] - r["d_t2"]["ses-01"]
    dcm = r["d_cmap"]["ses-02"] - r["d_cmap"]["ses-01"]
    assert (dt2 > 0).mean() > 0.8 and stats.pearsonr(dt2, dcm)[0] < -0.3
    # the generator's effect size controls the group difference
    weak = replace(cfg, n_als=6, n_controls=4, visits=1, effects=replace(cfg.effects, t2_ms=0.0, fat_fraction=0.0))
    out2 = make_cohort(tmp_path / "weak", config=weak, workers=2, progress=False)
    r2 = _pattern(out2)
    assert r2["t2_group_p"] > 0.01


@pytest.mark.slow
def test_the_full_default_cohort_loads(tmp_path):
    out = make_cohort(tmp_path / "default", workers=2, progress=False)
    ds = BidsDataset(out)
    assert len(ds.sessions) == 30 and ds.report() == []
    assert ds.sessions[-1].load_mese().image.shape == CohortConfig().shape + (17,)
    r = _pattern(out)
    assert r["t2_group_p"] < 0.01 and r["r_t2_mvic"] < -0.7 and r["r_vol_mvic"] > 0.5


def test_truth_t1_is_the_apparent_t1_an_ir_fit_reads(tiny_cohort):
    """``t1_ms`` of the truth is what a perfect IR fit returns (fat lowers it below the water T1)."""
    from alsseg.relax import InversionRecoveryT1Model
    from alsseg.synth import make_subject
    from alsseg.synth.render import IrProtocol
    from alsseg.synth.session import apparent_t1_map, render_session
    from alsseg.synth.grid import Grid

    table = pd.read_csv(tiny_cohort / "derivatives" / "groundtruth" / "muscles.tsv", sep="\t").dropna()
    # voxel-level water T1: muscle water 1400 ms, partial volume with fascia and the intramuscular
    # aponeuroses (800, labelled as their muscle) and veins (1900); in a fatty (marbled, end-stage)
    # muscle there is less muscle water, so those tissues weigh more
    lean = table.fat_fraction < 0.2
    assert table.t1_water_ms[lean].between(1250.0, 1450.0).all()
    assert table.t1_water_ms[~lean].between(1100.0, 1450.0).all()
    assert table.t1_water_ms.median() > 1330.0
    assert (table.t1_ms < table.t1_water_ms + 1).all()
    fatty = table.fat_fraction_voxel > 0.1
    if fatty.any():  # clearly fatty muscles read a clearly shorter apparent T1
        assert (table.t1_ms[fatty] < 1300).all()
    # the map equals an independent fit of the noiseless IR series, voxel by voxel
    grid = Grid.axial((48, 28, 2), (8.0, 8.0, 12.0), slice_thickness_mm=7.0)
    subj = make_subject(5, disease="als")
    ses = render_session(subj, grid, snr=None, psf_sigma_vox=0.0)
    t1_map = ses.maps["t1_apparent_ms"]
    m = np.isfinite(t1_map)
    assert m.sum() > 50 and (ses.label[m] > 0).all()
    ir = IrProtocol()
    ref = InversionRecoveryT1Model(np.asarray(ir.inversion_times_ms), tr_ms=ir.tr_ms).fit(ses.ir[m]).t1_ms
    np.testing.assert_allclose(t1_map[m], ref, rtol=1e-4)
    # every labelled voxel is taken when a label has fewer voxels than the subsample size
    again = apparent_t1_map(ses.ir, ses.label, ir, np.random.default_rng(0), voxels_per_label=10**6)
    assert np.isfinite(again[ses.label > 0]).all()
