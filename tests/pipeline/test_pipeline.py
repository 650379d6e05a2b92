"""alsseg.pipeline: one session and a cohort on a tiny BIDS dataset (noiseless EPG signals)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alsseg import pipeline
from alsseg.io import InputError, load_nifti

GT = pipeline.PipelineOptions(labels_from="groundtruth", fit_t1=False)


def test_cohort_end_to_end(tiny_bids, tmp_path):
    out = tmp_path / "deriv"
    res = pipeline.run_cohort(tiny_bids, out, GT, quiet=True)
    assert [r.status for r in res] == ["done", "done", "done"]
    anat = out / "sub-01" / "ses-01" / "anat"
    for name in ("desc-muscles_dseg.nii.gz", "desc-water_T2map.nii.gz", "desc-fatfraction_T2map.nii.gz",
                 "desc-b1_T2map.nii.gz", "muscles.tsv"):
        assert (anat / f"sub-01_ses-01_{name}").is_file(), name
    assert (out / "dseg.tsv").is_file() and (out / "dataset_description.json").is_file()
    side = json.loads((anat / "sub-01_ses-01_desc-water_T2map.json").read_text())
    assert side["Units"] == "ms" and "EPG" in side["Description"]
    assert (out / "sub-01" / "ses-01" / "figures" / "sub-01_ses-01_desc-qc.png").is_file()
    assert (out / "sub-01" / "ses-01" / "figures" / "sub-01_ses-01_desc-overlay.png").is_file()
    # maps on the source grid, true values recovered from noiseless EPG signals
    t2 = load_nifti(anat / "sub-01_ses-01_desc-water_T2map.nii.gz", check_finite=False)
    src = load_nifti(tiny_bids / "sub-01" / "ses-01" / "anat" / "sub-01_ses-01_echo-1_MESE.nii.gz")
    np.testing.assert_allclose(t2.affine, src.affine)
    tab = pd.read_csv(anat / "sub-01_ses-01_muscles.tsv", sep="\t", na_values="n/a")
    truth = {1: 31.0, 5: 36.0, 11: 29.0, 15: 33.0}
    for lid, want in truth.items():
        row = tab[tab.label == lid].iloc[0]
        assert row.t2_water_ms == pytest.approx(want, abs=0.5), lid
        assert row.participant_id == "sub-01" and row.session_id == "ses-01"
    sol = tab[tab.label == 5].iloc[0]
    assert sol.cut_fov and sol.volume_ml == pytest.approx(7 * 5 * 4 * 1.5 * 1.5 * 7 / 1000)
    assert sol.fat_fraction == pytest.approx(0.15, abs=0.02)
    # the mono-exponential baseline is written and reads high (fat, stimulated echoes)
    assert (anat / "sub-01_ses-01_desc-mono_T2map.nii.gz").is_file()
    assert sol.t2_mono_ms > sol.t2_water_ms + 3

    # resumable: a second run skips everything
    res2 = pipeline.run_cohort(tiny_bids, out, GT, quiet=True)
    assert [r.status for r in res2] == ["skipped"] * 3

    # group level: stats, QC, report
    st = pipeline.run_stats(out)
    assert len(st["muscles"]) > 0 and (out / "group" / "stats_group_comparison.tsv").is_file()
    qc = st["qc"]
    assert ((qc.kind == "subject without scans") & (qc["where"] == "sub-03")).any()
    assert (qc.kind == "cut by field of view").any()
    html = pipeline.run_report(out)
    text = html.read_text()
    assert "sub-03" in text and text.count("data:image/png;base64,") >= 4
    # each thumbnail opens the session's full overlay; tables link to their TSV (relative links)
    import re

    hrefs = re.findall(r'href="([^"]+)"', text)
    assert "../sub-01/ses-01/figures/sub-01_ses-01_desc-overlay.png" in hrefs and "qc.tsv" in hrefs
    assert all((html.parent / h).is_file() for h in hrefs)
    assert "interval unknown (no session dates)" in text
    # with sessions.tsv the interval between visits is stated, from the dates
    (tiny_bids / "sub-01" / "sub-01_sessions.tsv").write_text(
        "session_id\tacq_time\nses-01\t2024-01-08T10:00:00\nses-02\t2024-05-06T11:00:00\n")
    st = pipeline.run_stats(out)
    assert st["visit_intervals"].set_index("participant_id").loc["sub-01", "interval_days"] == pytest.approx(119.0, abs=0.1)
    assert (out / "group" / "stats_visit_intervals.tsv").is_file() and (out / "group" / "stats_findings.tsv").is_file()
    text = pipeline.run_report(out).read_text()
    assert "interval 119 days" in text and "3.9 months" in text


def test_killed_run_resumes(tiny_bids, tmp_path):
    out = tmp_path / "deriv"
    opts = GT
    res = pipeline.run_cohort(tiny_bids, out, opts, quiet=True)
    job_dir = out / "sub-01" / "ses-02"
    marker = job_dir / "sub-01_ses-02_alsseg.json"
    # simulate a run killed before the marker: marker gone, a stray temporary file left
    marker.unlink()
    (job_dir / "anat" / ".sub-01_ses-02_desc-water_T2map.abc.nii.gz").write_bytes(b"partial")
    res = pipeline.run_cohort(tiny_bids, out, opts, quiet=True)
    assert {r.name: r.status for r in res} == {"sub-01_ses-01": "skipped", "sub-01_ses-02": "done",
                                               "sub-02_ses-01": "skipped"}
    assert marker.is_file()
    muscles, status = pipeline.collect_tables(out)
    assert set(status.status) == {"done"} and muscles.session_id.nunique() == 2


def test_failed_session_is_recorded_and_cohort_goes_on(tiny_bids, tmp_path):
    # the ground-truth label map of one session is missing: that session fails, others finish
    (tiny_bids / "derivatives/groundtruth/sub-01/ses-02/anat/sub-01_ses-02_desc-muscles_dseg.nii.gz").unlink()
    out = tmp_path / "deriv"
    res = pipeline.run_cohort(tiny_bids, out, GT, quiet=True)
    st = {r.name: r for r in res}
    assert st["sub-01_ses-02"].status == "failed" and "no such file" in st["sub-01_ses-02"].error
    assert st["sub-01_ses-01"].status == "done" and st["sub-02_ses-01"].status == "done"
    rec = json.loads((out / "sub-01/ses-02/sub-01_ses-02_failed.json").read_text())
    assert "no such file" in rec["error"]
    assert not (out / "sub-01/ses-02/sub-01_ses-02_alsseg.json").exists()
    status = pd.read_csv(out / "group" / "cohort_status.tsv", sep="\t")
    assert list(status.status) == ["done", "failed", "done"]
    qc = pipeline.run_stats(out)["qc"]
    assert ((qc.kind == "session failed") & (qc["where"] == "sub-01_ses-02")).any()


def test_empty_segmentation_fails_cleanly(tiny_bids, tmp_path):
    from alsseg.io import Image, save_nifti

    p = tiny_bids / "derivatives/groundtruth/sub-02/ses-01/anat/sub-02_ses-01_desc-muscles_dseg.nii.gz"
    save_nifti(Image(np.zeros((26, 14, 4), np.int16), np.diag([1.5, 1.5, 7.0, 1.0])), p)
    res = pipeline.run_cohort(tiny_bids, tmp_path / "d", GT, quiet=True)
    bad = [r for r in res if r.status == "failed"]
    assert [r.name for r in bad] == ["sub-02_ses-01"] and "empty" in bad[0].error


def test_output_folder_guards(tiny_bids, tmp_path, tiny_bids_writer):
    write_tiny_bids_fixture = tiny_bids_writer
    # a non-empty folder that is not an alsseg output: refused, nothing written
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not an alsseg output folder"):
        pipeline.run_cohort(tiny_bids, foreign, GT, quiet=True)
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    # results of another dataset: refused, never mixed
    out = tmp_path / "deriv"
    pipeline.run_cohort(tiny_bids, out, GT, quiet=True)
    before = sorted(str(p) for p in out.rglob("*"))
    other = write_tiny_bids_fixture(tmp_path / "other")
    with pytest.raises(InputError, match="another dataset"):
        pipeline.run_cohort(other, out, GT, quiet=True)
    from alsseg.quant import QuantOptions

    with pytest.raises(InputError, match="other options"):
        pipeline.run_cohort(tiny_bids, out, pipeline.PipelineOptions(labels_from="groundtruth", fit_t1=False,
                                                                     quant=QuantOptions(erode_voxels=0)), quiet=True)
    assert sorted(str(p) for p in out.rglob("*")) == before


def test_shards_split_the_sessions(tiny_bids, tmp_path):
    out = tmp_path / "deriv"
    a = pipeline.run_cohort(tiny_bids, out, GT, shard=(1, 2), quiet=True)
    b = pipeline.run_cohort(tiny_bids, out, GT, shard=(2, 2), quiet=True)
    assert [r.name for r in a] == ["sub-01_ses-01", "sub-02_ses-01"] and [r.name for r in b] == ["sub-01_ses-02"]
    assert (out / "group" / "cohort_status_shard-1-of-2.tsv").is_file()
    _, status = pipeline.collect_tables(out)
    assert list(status.status) == ["done"] * 3
    assert pipeline.parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "x"):
        with pytest.raises(InputError):
            pipeline.parse_shard(bad)


def test_parallel_jobs(tiny_bids, tmp_path):
    res = pipeline.run_cohort(tiny_bids, tmp_path / "d", GT, jobs=2, quiet=True)
    assert sorted(r.status for r in res) == ["done"] * 3


def test_qc_lists_subjects_without_scans_and_scans_without_subjects(tiny_bids_writer, tmp_path):
    from alsseg.io.bids import BidsDataset

    root = tiny_bids_writer(tmp_path / "b", sessions=(("sub-01", "ses-01", 0.0), ("sub-02", "ses-01", 0.0)),
                            participants=(("sub-01", "ALS"), ("sub-05", "control")),
                            motor_rows=[("sub-01", "ses-01", "R", 5.0, 200.0), ("sub-01", "ses-01", "L", 5.0, 200.0)])
    ds = BidsDataset(root)
    muscles = pd.DataFrame({"participant_id": ["sub-01"] * 2, "session_id": ["ses-01"] * 2, "side": ["R", "L"],
                            "muscle": ["TA", "TA"], "kind": ["muscle"] * 2, "volume_ml": [50.0, 52.0],
                            "cut_fov": [False, True], "good_fit_fraction": [0.95, 0.5]})
    status = pd.DataFrame({"session": ["sub-01_ses-01", "sub-02_ses-01"], "status": ["done", "incomplete"],
                           "error": ["", "no completion marker"]})
    qc = pipeline.qc_table(muscles, status, ds)
    kinds = {(k, w) for k, w in zip(qc.kind, qc["where"])}
    assert ("subject without scans", "sub-05") in kinds
    assert ("scans without subject", "sub-02") in kinds
    assert ("session incomplete", "sub-02_ses-01") in kinds
    assert ("cut by field of view", "sub-01_ses-01") in kinds
    assert "TA_L" in qc[qc.kind == "cut by field of view"].detail.iloc[0]
    assert ("failed fits", "sub-01_ses-01 TA_L") in kinds


def test_segmentation_branch_uses_the_model(tiny_bids, tiny_arrays, tmp_path):
    """Without a label map the session is segmented by the segmenter passed in (here a stand-in
    that returns the true labels, so the wiring is tested without torch)."""
    from alsseg.io import Image

    calls = []

    class FakeSegmenter:
        def predict(self, image):
            calls.append(image.shape)
            lab, _, _ = tiny_arrays()
            return Image(lab.astype(np.uint8), image.affine)

    opts = pipeline.PipelineOptions(model="fake-model", fit_t1=False)
    res = pipeline.run_cohort(tiny_bids, tmp_path / "d", opts, quiet=True, segmenter=FakeSegmenter())
    assert [r.status for r in res] == ["done"] * 3
    assert calls and all(c == (26, 14, 4, 17) for c in calls)  # the 4-D MESE goes to the model
    rec = json.loads((tmp_path / "d/sub-01/ses-01/sub-01_ses-01_alsseg.json").read_text())
    assert rec["inputs"]["labels"] == "model fake-model with mirror TTA"  # the default
    tab = pd.read_csv(tmp_path / "d/sub-01/ses-01/anat/sub-01_ses-01_muscles.tsv", sep="\t", na_values="n/a")
    assert tab[tab.label == 11].iloc[0].t2_water_ms == pytest.approx(29.0, abs=0.5)


def test_sigkilled_cohort_resumes(tiny_bids, tmp_path):
    """A real ``alsseg cohort`` process killed (SIGKILL) mid-run: the next run finishes the rest,
    and no half-written or temporary file is left in a finished session."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "d"
    cmd = [sys.executable, "-m", "alsseg", "cohort", str(tiny_bids), "--out", str(out),
           "--labels-from", "groundtruth", "--no-t1", "--no-stats", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not list(out.glob("sub-*/ses-*/*_alsseg.json")) and time.time() - t0 < 120 and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_done_before = len(list(out.glob("sub-*/ses-*/*_alsseg.json")))
    assert 1 <= n_done_before
    res = pipeline.run_cohort(tiny_bids, out, GT, quiet=True)
    assert sum(r.status == "skipped" for r in res) == n_done_before
    assert all(r.status in ("skipped", "done") for r in res)
    _, status = pipeline.collect_tables(out)
    assert list(status.status) == ["done"] * 3
    assert not [p for p in out.rglob(".*") if p.is_file() and not p.name.endswith(".lock")]  # no temporaries left


def test_forced_rerun_that_fails_leaves_no_finished_marker(tiny_bids, tmp_path):
    from dataclasses import replace

    out = tmp_path / "d"
    _, jobs = pipeline.cohort_jobs(tiny_bids, GT)
    pipeline.prepare_output(out, str(tiny_bids.resolve()), GT)
    job = jobs[0]
    assert pipeline.run_session(job, out, GT).status == "done"
    assert pipeline.run_session(job, out, GT).status == "skipped"
    broken = replace(job, labels=tmp_path / "missing_dseg.nii.gz")
    res = pipeline.run_session(broken, out, GT, force=True)
    assert res.status == "failed" and res.input_error and "missing_dseg" in res.error
    assert not pipeline.marker_path(out, job).exists() and pipeline.failed_path(out, job).exists()
    _, status = pipeline.collect_tables(out)
    assert status.set_index("session").loc[job.name, "status"] == "failed"


def test_process_session_computes_in_memory_and_write_session_writes_it(tiny_bids, tmp_path):
    """process_session writes nothing; write_session turns its result into the same files
    run_session writes."""
    import os

    _, jobs = pipeline.cohort_jobs(tiny_bids, GT)
    job = jobs[0]
    before = {p: p.stat().st_mtime_ns for p in tiny_bids.rglob("*")}
    cwd_before = set(os.listdir(tmp_path))
    stages = []
    res = pipeline.process_session(job, GT, stage=stages.append)
    assert stages == ["load", "segment", "fit_t2", "quantify", "figures"]
    assert {p: p.stat().st_mtime_ns for p in tiny_bids.rglob("*")} == before and set(os.listdir(tmp_path)) == cwd_before
    assert isinstance(res, pipeline.SessionResult) and res.labels.shape == (26, 14, 4)
    assert {"t2_water_ms", "fat_fraction", "b1", "m0", "r2", "fit_ok", "t2_mono_ms"} <= set(res.maps)
    row = res.table[res.table.label == 11].iloc[0]
    assert row.t2_water_ms == pytest.approx(29.0, abs=0.5) and row.participant_id == "sub-01"
    assert res.qc_png[:8] == b"\x89PNG\r\n\x1a\n" and set(res.stage_seconds) == set(stages)
    assert len(res.overlay_pngs) == 1 and res.overlay_pngs[0][:8] == b"\x89PNG\r\n\x1a\n"  # 4 slices, one page

    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        pipeline.prepare_output(d, str(tiny_bids.resolve()), GT)
    written = pipeline.write_session(res, a, GT)
    ran = pipeline.run_session(job, b, GT)
    assert [p.relative_to(a) for p in written] == [p.relative_to(b) for p in ran.outputs]
    for p in written:
        assert p.read_bytes() == (b / p.relative_to(a)).read_bytes(), p.name
    assert pipeline.marker_path(a, job).is_file()


def test_segmenter_is_passed_to_worker_processes(tiny_bids, tiny_arrays, tmp_path):
    from alsseg.io import Image

    class LabelsFromTruth:
        def predict(self, image):
            lab, _, _ = tiny_arrays()
            return Image(lab.astype(np.uint8), image.affine)

    opts = pipeline.PipelineOptions(model="no-such-model", fit_t1=False)
    res = pipeline.run_cohort(tiny_bids, tmp_path / "d", opts, jobs=2, quiet=True, segmenter=LabelsFromTruth())
    assert [r.status for r in res] == ["done"] * 3  # the bundle "no-such-model" was never loaded


def test_bundle_segmenter_loads_on_first_use_and_pickles_without_its_model():
    import pickle

    seg = pipeline.BundleSegmenter("no-such-model")
    assert pickle.loads(pickle.dumps(seg)).model == "no-such-model"
    with pytest.raises(InputError, match="no such model bundle"):
        seg.predict(None)


def test_mirror_tta_reaches_the_segmenter_from_the_command_line():
    """`alsseg run/cohort` segment with mirror TTA unless `--no-mirror-tta` → PipelineOptions.mirror_tta
    (part of the fingerprint, so a resumed run cannot mix the two; off, it is left out, so folders
    written before the option existed resume with it off) → the bundle loaded with
    Segmenter.mirror_tta, also after pickling."""
    import argparse
    import pickle

    from alsseg.cli.pipeline_cmd import _add_common, _options

    p = argparse.ArgumentParser()
    _add_common(p)
    opts = _options(p.parse_args([]))
    assert opts.mirror_tta and opts.fingerprint()["mirror_tta"] is True
    assert _options(p.parse_args(["--mirror-tta"])) == opts
    plain = _options(p.parse_args(["--no-mirror-tta"]))
    assert not plain.mirror_tta and "mirror_tta" not in plain.fingerprint()
    seg = pickle.loads(pickle.dumps(pipeline.BundleSegmenter(plain.model, plain.mirror_tta)))
    assert seg._loaded().mirror_tta is False
    assert pipeline.BundleSegmenter(opts.model)._loaded().mirror_tta is True
