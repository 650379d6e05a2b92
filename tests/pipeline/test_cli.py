"""``alsseg run | cohort | stats | report | demo`` through ``alsseg.cli.main``."""

from __future__ import annotations

import pandas as pd
import pytest

from alsseg.cli import main


def _one_line_error(capsys, code, rc):
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == code
    assert len(err) == 1 and err[0].startswith("alsseg: error: ") and "Traceback" not in err[0]
    return err[0]


def test_run_one_session(tiny_bids, tmp_path, capsys):
    gt = tiny_bids / "derivatives/groundtruth/sub-01/ses-01/anat/sub-01_ses-01_desc-muscles_dseg.nii.gz"
    out = tmp_path / "d"
    rc = main(["run", str(tiny_bids / "sub-01" / "ses-01"), "--out", str(out), "--labels", str(gt), "-q"])
    assert rc == 0
    tsv = out / "sub-01/ses-01/anat/sub-01_ses-01_muscles.tsv"
    t = pd.read_csv(tsv, sep="\t", na_values="n/a")
    assert t[t.label == 1].iloc[0].t2_water_ms == pytest.approx(31.0, abs=0.5)
    # again without -q: already finished, prints the table
    rc = main(["run", str(tiny_bids / "sub-01" / "ses-01"), "--out", str(out), "--labels", str(gt)])
    text = capsys.readouterr().out
    assert rc == 0 and "already finished" in text and "TA" in text


def test_run_bad_inputs(tiny_bids, tmp_path, capsys):
    line = _one_line_error(capsys, 2, main(["run", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]))
    assert "nope" in line and "no such" in line
    # a label map on another grid: one line naming it, exit 2, no completion marker
    from alsseg.io import Image, save_nifti
    import numpy as np

    bad = save_nifti(Image(np.ones((5, 5, 5), np.int16), np.eye(4)), tmp_path / "bad_dseg.nii.gz")
    out = tmp_path / "o2"
    line = _one_line_error(capsys, 2, main(["run", str(tiny_bids / "sub-01" / "ses-01"), "--out", str(out),
                                            "--labels", str(bad), "-q"]))
    assert "bad_dseg.nii.gz" in line and "grid" in line
    assert not list(out.rglob("*_alsseg.json")) and not list(out.rglob("*_T2map.nii.gz"))
    # refusing an unrelated non-empty folder
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.txt").write_text("x")
    line = _one_line_error(capsys, 2, main(["run", str(tiny_bids / "sub-01" / "ses-01"), "--out", str(other), "-q"]))
    assert "not an alsseg output folder" in line


def test_cohort_stats_report(tiny_bids, tmp_path, capsys):
    out = tmp_path / "d"
    rc = main(["cohort", str(tiny_bids), "--out", str(out), "--labels-from", "groundtruth", "--no-t1", "-q"])
    assert rc == 0
    assert (out / "group" / "report.html").is_file() and (out / "group" / "stats_group_comparison.tsv").is_file()
    assert main(["stats", str(out), "--no-mixed"]) == 0
    assert "patients vs controls" in capsys.readouterr().out
    assert main(["report", str(out), "-q"]) == 0
    # bad option values: one line, exit 2
    _one_line_error(capsys, 2, main(["cohort", str(tiny_bids), "--out", str(out), "--shard", "3/2", "-q"]))
    _one_line_error(capsys, 2, main(["cohort", str(tiny_bids), "--out", str(tmp_path / "x"),
                                     "--labels-from", "nothere", "-q"]))
    _one_line_error(capsys, 2, main(["stats", str(tmp_path / "missing")]))


def test_cohort_motor_table_with_missing_values(tiny_bids_writer, tmp_path):
    rows = [("sub-01", "ses-01", "R", 5.0, "n/a"), ("sub-01", "ses-01", "L", "n/a", 190.0),
            ("sub-01", "ses-02", "R", 4.0, 150.0), ("sub-01", "ses-02", "L", 4.5, 160.0),
            ("sub-02", "ses-01", "R", 8.0, 250.0), ("sub-02", "ses-01", "L", 8.1, "n/a")]
    root = tiny_bids_writer(tmp_path / "b", motor_rows=rows)
    out = tmp_path / "d"
    assert main(["cohort", str(root), "--out", str(out), "--labels-from", "groundtruth", "--no-t1", "-q"]) == 0
    qc = pd.read_csv(out / "group" / "qc.tsv", sep="\t")
    miss = qc[qc.kind == "missing motor value"]
    assert len(miss) == 3 and miss.detail.str.contains("not imputed").all()
    # the change table keeps the missing baseline MVIC of sub-01 R as missing (no imputation)
    from alsseg import stats
    from alsseg.io.bids import BidsDataset

    ds = BidsDataset(root)
    m = pd.read_csv(out / "group" / "muscles.tsv", sep="\t", na_values="n/a")
    ch = stats.change_table(m, ds.motor)
    r = ch[(ch.participant_id == "sub-01") & (ch.side == "R") & (ch.muscle == "TA")].iloc[0]
    assert pd.isna(r.delta_mvic_n) and r.delta_cmap_mv == pytest.approx(-1.0)


def test_help_lists_verbs(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for verb in ("demo", "run", "cohort", "stats", "report"):
        assert verb in text


def test_demo_cli(tmp_path, capsys, monkeypatch):
    _one_line_error(capsys, 2, main(["demo", "--out", str(tmp_path / "x"), "--n-als", "1"]))
    from alsseg import pipeline

    seen = {}

    def fake_run_demo(out, **kw):
        seen.update(kw, out=out)
        acc = pd.DataFrame({"muscle": ["TA", "all"], "median_abs_t2_error_ms": [0.4, 0.35],
                            "median_abs_volume_error_pct": [1.0, 1.2]})
        fnd = pd.DataFrame({"finding": ["t2_water_ms vs mvic_n (anterior)"], "statistic": ["pearson_r"],
                            "value_measured": [-0.85], "p_measured": [1e-5], "value_truth": [-0.86], "p_truth": [1e-5]})
        return pipeline.DemoResult(tmp_path, tmp_path / "d", tmp_path / "d/group/report.html", "model m",
                                   acc, fnd, {"synth": 1.0, "cohort": 2.0})

    monkeypatch.setattr(pipeline, "run_demo", fake_run_demo)
    assert main(["demo", "--out", str(tmp_path / "demo"), "--jobs", "2", "--truth-labels"]) == 0
    text = capsys.readouterr().out
    assert seen["jobs"] == 2 and seen["use_truth_labels"] and seen["n_als"] == 11
    assert "0.35 ms" in text and "-0.85" in text and "report.html" in text


@pytest.mark.parametrize("verb", ["stats", "report"])
def test_output_folder_without_a_recorded_source_needs_bids(verb, tmp_path, capsys):
    """A folder that no ``cohort`` wrote (no recorded source dataset) and no ``--bids``: one line
    naming the folder, exit 2, nothing written."""
    out = tmp_path / "derivatives"
    out.mkdir()
    line = _one_line_error(capsys, 2, main([verb, str(out), "-q"]))
    assert str(out) in line and "no source dataset recorded" in line
    assert list(out.iterdir()) == []
