"""BIDS dataset discovery, participants and motor tables."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from alsseg.io import BidsDataset, InputError
from alsseg.io.bids import read_motor_table


def test_sessions_discovered(bids_dataset):
    ds = BidsDataset(bids_dataset())
    assert [s.key for s in ds.sessions] == [("sub-01", "ses-01"), ("sub-01", "ses-02"), ("sub-02", "ses-01")]
    s = ds.session("01", "02")
    assert isinstance(s.mese, list) and len(s.mese) == 4 and s.mese[0].name == "sub-01_ses-02_echo-1_MESE.nii.gz"
    assert s.t1_kind == "IR" and len(s.t1) == 3 and s.anat.name == "sub-01_ses-02_T1w.nii.gz"
    ms = s.load_mese()
    assert ms.n_echoes == 4 and ms.image.shape == (6, 5, 4, 4)
    t1 = s.load_t1()
    np.testing.assert_allclose(t1.inversion_times_ms, [100, 400, 1200])
    s.check_grids()  # same grid: no error
    with pytest.raises(InputError, match="no session sub-03"):
        ds.session("03")


def test_participants_and_motor(bids_dataset):
    ds = BidsDataset(bids_dataset())
    p = ds.participants
    assert list(p["participant_id"]) == ["sub-01", "sub-02"] and list(p["group"]) == ["ALS", "control"]
    assert p["age"].dtype.kind in "if"
    m = ds.motor
    assert list(m.columns[:5]) == ["participant_id", "session_id", "side", "cmap_mv", "mvic_n"]
    assert len(m) == 4
    assert m.loc[1, "cmap_mv"] == 3.9 and np.isnan(m.loc[1, "mvic_n"])  # n/a kept as NaN, not imputed
    assert ds.report() == []


def test_motor_table_variants(tmp_path):
    t = tmp_path / "motor.tsv"
    t.write_text("participant_id\tsession_id\tside\tcmap_mv\tmvic_kg\tnote\n01\t1\tr\t\t10\tok\n01\t1\tL\t2.5\t\t\n")
    m = read_motor_table(t, known_subjects={"sub-01"})
    assert list(m["participant_id"]) == ["sub-01"] * 2 and list(m["session_id"]) == ["ses-1"] * 2
    assert list(m["side"]) == ["R", "L"]
    assert m.loc[0, "mvic_n"] == pytest.approx(98.0665) and np.isnan(m.loc[1, "mvic_n"])
    assert np.isnan(m.loc[0, "cmap_mv"]) and "note" in m.columns


@pytest.mark.parametrize("body,match", [
    ("sub-09\tses-01\tR\t4\t100\n", "line 2: unknown participant sub-09"),
    ("sub-01\tses-01\tR\t4\t100\nsub-01\tses-01\tR\t5\t90\n", "line 3: duplicates line 2"),
    ("sub-01\tses-01\tR\tfour\t100\n", "line 2: cmap_mv value 'four' is not a number"),
    ("sub-01\tses-01\tX\t4\t100\n", "line 2: side 'X' must be R or L"),
    ("sub-01\tses-01\tR\t-4\t100\n", "must be a finite number >= 0"),
])
def test_motor_table_errors(bids_dataset, body, match):
    root = bids_dataset(motor="participant_id\tsession_id\tside\tcmap_mv\tmvic_n\n" + body)
    with pytest.raises(InputError, match=match) as err:
        BidsDataset(root).motor
    assert err.value.path.name == "motor.tsv"


def test_participants_errors(bids_dataset):
    root = bids_dataset(participants="participant_id\tgroup\nsub-01\tALS\nsub-02\tpatient\n")
    with pytest.raises(InputError, match="line 3: group 'patient'"):
        BidsDataset(root).participants
    root = bids_dataset(participants="participant_id\tgroup\nsub-01\tALS\nsub-01\tcontrol\n", root_name="b2")
    with pytest.raises(InputError, match="line 3: participant sub-01 duplicates line 2"):
        BidsDataset(root).participants


def test_report_findings(bids_dataset):
    root = bids_dataset(participants="participant_id\tgroup\nsub-01\tALS\nsub-02\tcontrol\nsub-03\tALS\n",
                        motor="participant_id\tsession_id\tside\tcmap_mv\tmvic_n\nsub-03\tses-01\tR\t1\t2\n")
    shutil.rmtree(root / "sub-02" / "ses-01" / "anat")
    (root / "sub-02" / "ses-01" / "anat").mkdir()
    rep = BidsDataset(root).report()
    assert "sub-03: listed in participants.tsv but has no scans" in rep
    assert "sub-02_ses-01: no MESE series (no T2 / fat fraction)" in rep
    assert any("sub-03 ses-01 side R: motor measures for a visit without a MESE series" in r for r in rep)


def test_grid_mismatch_between_series(bids_dataset):
    from alsseg.io import save_nifti

    root = bids_dataset()
    anat = root / "sub-02" / "ses-01" / "anat"
    for n in (1, 2, 3):
        p = anat / f"sub-02_ses-01_inv-{n}_IRT1.nii.gz"
        save_nifti(np.ones((6, 5, 3), np.float32), p, affine=np.eye(4))
    with pytest.raises(InputError, match="does not match the MESE grid"):
        BidsDataset(root).session("02", "01").check_grids()


def test_not_a_dataset(tmp_path):
    with pytest.raises(InputError, match="no sub-"):
        BidsDataset(tmp_path)


def test_documented_example_table():
    """docs/motor_table_example.tsv reads cleanly and its .json documents every column."""
    import json
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs"
    m = read_motor_table(docs / "motor_table_example.tsv", known_subjects={"sub-01", "sub-02"})
    assert len(m) == 6 and m["cmap_mv"].isna().sum() == 1 and m["mvic_n"].isna().sum() == 1
    dictionary = json.loads((docs / "motor_table_example.json").read_text())
    assert set(pd.read_csv(docs / "motor_table_example.tsv", sep="\t").columns) <= set(dictionary)
    assert dictionary["cmap_mv"]["Units"] == "mV" and dictionary["mvic_n"]["Units"] == "N"


def test_session_dates_from_tables_and_sidecars(bids_dataset):
    import json

    from alsseg.io.bids import BidsDataset
    from alsseg.io.errors import InputError

    root = bids_dataset()
    (root / "sub-01" / "sub-01_sessions.tsv").write_text("session_id\tacq_time\nses-01\t2024-01-08T09:30:00\n"
                                                        "ses-02\tn/a\n")
    (root / "sub-01" / "ses-02" / "sub-01_ses-02_scans.tsv").write_text(
        "filename\tacq_time\nanat/a.nii.gz\t2024-05-10T11:00:00\nanat/b.nii.gz\t2024-05-10T10:00:00\n")
    side = root / "sub-02/ses-01/anat/sub-02_ses-01_echo-1_MESE.json"
    side.write_text(json.dumps({**json.loads(side.read_text()), "AcquisitionDateTime": "2024-02-01T08:00:00"}))
    d = BidsDataset(root).session_dates
    got = {(r.participant_id, r.session_id): (str(r.acq_time), r.source.rsplit("/", 1)[-1]) for r in d.itertuples()}
    assert got == {("sub-01", "ses-01"): ("2024-01-08 09:30:00", "sub-01_sessions.tsv"),
                   ("sub-01", "ses-02"): ("2024-05-10 10:00:00", "sub-01_ses-02_scans.tsv"),
                   ("sub-02", "ses-01"): ("2024-02-01 08:00:00", "sub-02_ses-01_echo-1_MESE.json")}
    (root / "sub-01" / "sub-01_sessions.tsv").write_text("session_id\tacq_time\nses-01\tlast tuesday\n")
    with pytest.raises(InputError, match="sub-01_sessions.tsv.*line 2.*ISO 8601"):
        _ = BidsDataset(root).session_dates
