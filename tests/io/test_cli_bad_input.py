"""Bad input through the command line: exit code 2, one stderr line naming the file and the
problem, no traceback, nothing written, inputs untouched."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from alsseg.cli import main


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# each case: (tmp_path, fixtures) -> (argv, file that must be named, problem text)
def case_truncated_nifti(t, f):
    p = f.mese_nifti()
    p.write_bytes(p.read_bytes()[:200])
    return ["info", str(p)], p, "not a readable NIfTI file"


def case_not_nifti(t, f):
    p = t / "scan.nii.gz"
    p.write_text("this is not an image")
    return ["info", str(p)], p, "not a readable NIfTI file"


def case_2d_anatomical(t, f):
    p = f.write_nifti(np.ones((8, 8), np.float32), "sub-01_T1w.nii.gz")
    return ["info", str(p)], p, "is 2-D with shape (8, 8), expected 3-D"


def case_3d_as_mese(t, f):
    p = f.mese_nifti(data=np.ones((6, 5, 4), np.float32), te=(10,))
    return ["info", str(p)], p, "a MESE series needs a 4-D image"


def case_echo_count(t, f):
    p = f.mese_nifti(sidecar={"EchoTime": [0.01, 0.02, 0.03]})
    return ["info", str(p)], p.with_name("mese.json"), "image has 4 echo volume(s) but 3 echo times are given"


def case_te_not_increasing(t, f):
    p = f.mese_nifti(sidecar={"EchoTime": [0.01, 0.03, 0.02, 0.04]})
    return ["info", str(p)], p.with_name("mese.json"), "not strictly increasing"


def case_te_zero(t, f):
    p = f.mese_nifti(sidecar={"EchoTime": [0.0, 0.01, 0.02, 0.03]})
    return ["info", str(p)], p.with_name("mese.json"), "include zero values"


def case_te_negative(t, f):
    p = f.mese_nifti(sidecar={"EchoTime": [-0.01, 0.01, 0.02, 0.03]})
    return ["info", str(p)], p.with_name("mese.json"), "include negative values"


def case_te_units_ambiguous(t, f):
    p = f.mese_nifti(sidecar={"EchoTime": [0.5, 10, 20, 30]})
    return ["info", str(p)], p.with_name("mese.json"), "cannot tell seconds (BIDS) from milliseconds"


def case_nan_voxels(t, f):
    data = np.ones((6, 5, 4, 4), np.float32)
    data[1, 2, 3, 0] = np.nan
    data[0, 0, 0, 1] = np.inf
    p = f.mese_nifti(data=data)
    return ["info", str(p)], p, "2 voxel(s) are NaN or infinite"


def case_all_zero(t, f):
    p = f.mese_nifti(data=np.zeros((6, 5, 4, 4), np.float32))
    return ["info", str(p)], p, "image is all zero"


def case_missing_sidecar(t, f):
    p = f.mese_nifti(sidecar=False)
    return ["info", str(p)], p.with_name("mese.json"), "missing JSON sidecar for mese.nii.gz"


def case_missing_echo_sidecar(t, f):
    root = f.bids_dataset()
    js = root / "sub-01/ses-01/anat/sub-01_ses-01_echo-3_MESE.json"
    js.unlink()
    return ["info", str(root / "sub-01/ses-01")], js, "missing JSON sidecar"


def case_echo_grids_mismatch(t, f):
    from alsseg.io import save_nifti

    root = f.bids_dataset()
    p = root / "sub-01/ses-02/anat/sub-01_ses-02_echo-2_MESE.nii.gz"
    save_nifti(np.ones((6, 5, 3), np.float32), p, affine=np.diag([1.5, 1.5, 8, 1]))
    return ["info", str(root / "sub-01/ses-02")], p, "does not match sub-01_ses-02_echo-1_MESE.nii.gz"


def case_series_grids_mismatch(t, f):
    from alsseg.io import save_nifti

    root = f.bids_dataset()
    anat = root / "sub-02/ses-01/anat"
    for n in (1, 2, 3):
        save_nifti(np.ones((6, 5, 5), np.float32), anat / f"sub-02_ses-01_inv-{n}_IRT1.nii.gz",
                   affine=np.diag([1.5, 1.5, 8, 1]))
    return ["info", str(anat)], anat / "sub-02_ses-01_inv-1_IRT1.nii.gz", "does not match the MESE grid"


def case_dicom_mixed_series(t, f):
    d = f.dicom_series(name="mixed", enhanced=False, series_uid="1.2.3.1", prefix="a")
    f.dicom_series(name="mixed", enhanced=True, series_uid="1.2.3.2", series_number=9, prefix="b")
    return ["convert", str(d.folder), "--out", str(t / "out")], d.folder, "mixes 2 DICOM series"


def case_dicom_missing_slice(t, f):
    d = f.dicom_series(enhanced=True, skip=[(1, 2)])
    return ["convert", str(d.folder), "--out", str(t / "out")], d.folder, "incomplete series"


def case_dicom_truncated(t, f):
    d = f.dicom_series(enhanced=False)
    d.files[3].write_bytes(d.files[3].read_bytes()[:-7])
    return ["convert", str(d.folder), "--out", str(t / "out")], d.files[3], "cannot read pixel data"


def case_motor_unknown_subject(t, f):
    root = f.bids_dataset(motor="participant_id\tsession_id\tside\tcmap_mv\tmvic_n\nsub-07\tses-01\tR\t4\t100\n")
    return ["info", str(root)], root / "phenotype/motor.tsv", "line 2: unknown participant sub-07"


def case_motor_duplicate(t, f):
    root = f.bids_dataset(motor="participant_id\tsession_id\tside\tcmap_mv\tmvic_n\n"
                          "sub-01\tses-01\tL\t4\t100\nsub-02\tses-01\tR\t4\t100\nsub-01\tses-01\tL\t5\t90\n")
    return ["info", str(root)], root / "phenotype/motor.tsv", "line 4: duplicates line 2"


def case_motor_non_numeric(t, f):
    root = f.bids_dataset(motor="participant_id\tsession_id\tside\tcmap_mv\tmvic_n\nsub-01\tses-01\tR\t4\t12O\n")
    return ["info", str(root)], root / "phenotype/motor.tsv", "line 2: mvic_n value '12O' is not a number"


def case_participants_bad_group(t, f):
    root = f.bids_dataset(participants="participant_id\tgroup\nsub-01\tALS\nsub-02\tsick\n")
    return ["info", str(root)], root / "participants.tsv", "line 3: group 'sick' is neither ALS nor control"


def case_output_is_input(t, f):
    d = f.dicom_series(enhanced=True)
    return ["convert", str(d.folder), "--out", str(d.folder)], d.folder, "output folder is the input DICOM folder"


def case_output_exists(t, f):
    d = f.dicom_series(enhanced=True)
    out = t / "out"
    out.mkdir()
    (out / "series7t2mese_MESE.nii.gz").write_bytes(b"previous result")
    return ["convert", str(d.folder), "--out", str(out)], out / "series7t2mese_MESE.nii.gz", "output exists"


def case_no_such_path(t, f):
    return ["info", str(t / "nowhere")], t / "nowhere", "no such file or folder"


CASES = [c for name, c in sorted(globals().items()) if name.startswith("case_")]


class _F:
    def __init__(self, request):
        for name in ("mese_nifti", "bids_dataset", "dicom_series", "write_nifti"):
            setattr(self, name, request.getfixturevalue(name))


@pytest.mark.parametrize("case", CASES, ids=[c.__name__[5:] for c in CASES])
def test_bad_input(case, tmp_path, request, capsys):
    argv, named, problem = case(tmp_path, _F(request))
    before = _snapshot(tmp_path)
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("alsseg: error: ")
    assert str(named) in lines[0], lines[0]
    assert problem in lines[0], lines[0]
    assert "Traceback" not in err + out
    assert _snapshot(tmp_path) == before  # nothing written, inputs untouched


def test_at_least_fifteen_cases():
    assert len(CASES) >= 15


def test_session_without_subject(tmp_path, dicom_series, capsys):
    d = dicom_series(enhanced=False)
    assert main(["convert", str(d.folder), "--out", str(tmp_path / "o"), "--session", "1"]) == 2
    assert "--session needs --subject" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_ms_echo_times_warn_but_run(mese_nifti, capsys):
    p = mese_nifti(sidecar={"EchoTime": [10, 20, 30, 40]})
    assert main(["info", str(p)]) == 0
    out, err = capsys.readouterr()
    assert err.strip().splitlines() == [
        f"alsseg: warning: {p.with_name('mese.json')}: EchoTime values [10, 20, 30, 40] are >= 1, assumed "
        "milliseconds (BIDS uses seconds)"]
    assert "TE 10–40 ms" in out
    assert main(["info", "--quiet", str(p)]) == 0
    assert capsys.readouterr().err == ""


def test_mixed_series_info_lists_both(dicom_series, capsys):
    d = dicom_series(name="mixed", enhanced=False, series_uid="1.2.3.1", prefix="a")
    dicom_series(name="mixed", enhanced=True, series_uid="1.2.3.2", series_number=9, prefix="b")
    assert main(["info", str(d.folder)]) == 0
    out = capsys.readouterr().out
    assert "2 series" in out and "1.2.3.1" in out and "1.2.3.2" in out
    assert main(["info", "--json", "--series", "9", str(d.folder)]) == 0
    desc = json.loads(capsys.readouterr().out)
    assert [s["uid"] for s in desc["series"]] == ["1.2.3.2"]


def test_check_lists_every_problem(bids_dataset, capsys):
    root = bids_dataset()
    assert main(["info", "--check", "-q", str(root)]) == 0
    assert "inputs checked: 0 problem(s)" in capsys.readouterr().out
    bad1 = root / "sub-01/ses-01/anat/sub-01_ses-01_echo-2_MESE.nii.gz"
    bad1.write_bytes(b"garbage")
    bad2 = root / "sub-02/ses-01/anat/sub-02_ses-01_inv-1_IRT1.json"
    bad2.unlink()
    assert main(["info", "--check", "-q", str(root)]) == 2
    out, err = capsys.readouterr()
    assert "inputs checked: 2 problem(s)" in out and str(bad1) in out and str(bad2) in out
    assert err.strip().splitlines() == [f"alsseg: error: {root}: 2 input problem(s), listed above"]


def test_load_mese_from_session_folder(bids_dataset):
    from alsseg.io import load_mese

    root = bids_dataset()
    assert load_mese(root / "sub-02" / "ses-01").n_echoes == 4


def test_convert_all_series(tmp_path, dicom_series, capsys):
    """--all: every series converted with its own acq- entity; a broken series skipped with a warning."""
    from alsseg.io import BidsDataset, load_mese, load_t1_series

    a = dicom_series(name="visit", enhanced=False, series_uid="1.2.3.1", series_number=3, description="t2 mese",
                     prefix="a")
    b = dicom_series(name="visit", enhanced=True, series_uid="1.2.3.2", series_number=4, description="ir t1",
                     prefix="b", inversion_times_ms=(100, 900, 2500), flip_deg=90.0, seed=3)
    dicom_series(name="visit", enhanced=False, series_uid="1.2.3.3", series_number=5, description="broken",
                 prefix="c", skip=[(0, 0)])
    out = tmp_path / "bids"
    assert main(["convert", str(a.folder), "--out", str(out), "--all", "--subject", "01", "--session", "01",
                 "--split-echoes"]) == 0
    o, err = capsys.readouterr()
    assert err.strip().splitlines() == [f"alsseg: warning: {a.folder}: skipped series #5 broken: incomplete series: "
                                        "volume TE 10 lacks 1 of 4 slices (11 frames for 4 slices × 3 volumes)"]
    anat = out / "sub-01/ses-01/anat"
    assert (anat / "sub-01_ses-01_acq-t2mese_echo-3_MESE.nii.gz").exists()
    assert (anat / "sub-01_ses-01_acq-irt1_inv-3_IRT1.nii.gz").exists()
    s = BidsDataset(out).session("01", "01")
    np.testing.assert_array_equal(load_mese(s.mese_path()).image.data, a.expected_data())
    np.testing.assert_array_equal(load_t1_series(s.t1_path()).image.data, b.expected_data())
    s.check_grids()
    # a second run refuses to overwrite, and writes nothing
    before = _snapshot(tmp_path)
    assert main(["convert", str(a.folder), "--out", str(out), "--all", "--subject", "01", "--session", "01",
                 "--split-echoes"]) == 2
    assert "output exists" in capsys.readouterr().err and _snapshot(tmp_path) == before


def test_info_on_t1_file_and_subject_folder(bids_dataset, tmp_path, capsys):
    from alsseg.io import Image, T1Series, write_t1_bids

    data = np.random.default_rng(0).uniform(1, 10, (4, 4, 3, 3)).astype(np.float32)
    t1 = T1Series(Image(data, np.eye(4)), "IR", inversion_times_ms=np.array([100.0, 500, 2000]), tr_ms=4000.0)
    p = write_t1_bids(t1, tmp_path / "t1", "01", None, split_volumes=False)[0]
    assert main(["info", str(p)]) == 0
    out = capsys.readouterr().out
    assert "kind: IR T1 series, 3 volumes" in out and "inversion times (ms): 100 500 2000" in out
    assert "TR 4000 ms" in out
    root = bids_dataset()
    assert main(["info", str(root / "sub-01")]) == 0
    out = capsys.readouterr().out
    assert out.count("session sub-01") == 2 and "MESE 4 files" in out and "missing: nothing" in out
