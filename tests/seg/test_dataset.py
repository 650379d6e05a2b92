"""nnU-Net v2 raw datasets: layout, labels, ignore label, splits, and bad input."""

import json

import numpy as np
import pytest

from alsseg.io import Image, load_nifti, save_nifti
from alsseg.io.errors import InputError
from alsseg.labels import load_anatomy
from alsseg.seg.dataset import Case, RawDataset, make_split, to_side_agnostic, write_dataset



def test_layout_and_dataset_json(toy_dataset):
    spec = json.loads((toy_dataset / "dataset.json").read_text())
    assert spec["labels"]["background"] == 0 and spec["labels"]["ignore"] == 8
    assert sorted(v for k, v in spec["labels"].items()) == list(range(9))  # consecutive (nnU-Net)
    assert spec["numTraining"] == 6 and spec["file_ending"] == ".nii.gz"
    assert (toy_dataset / "imagesTr" / "toy000__c0_0000.nii.gz").is_file()
    lab = load_nifti(toy_dataset / "labelsTr" / "toy000__c0.nii.gz", dtype=None)
    assert set(np.unique(lab.data)) <= set(range(8))
    split = json.loads((toy_dataset / "splits_final.json").read_text())[0]
    assert set(split["train"]).isdisjoint(split["val"]) and len(split["val"]) == 2
    ds = RawDataset(toy_dataset)
    assert ds.split == split and len(ds) == 6


def test_side_agnostic_mapping():
    anat = load_anatomy()
    lab = np.array([0, 1, 7, 11, 17, 255])
    assert to_side_agnostic(lab, anat).tolist() == [0, 1, 7, 1, 7, 8]


def test_split_groups_subjects_and_is_seeded():
    ids = [f"s{i}__{c}" for i in range(10) for c in ("a", "b")]
    s1, s2 = make_split(ids, 0.3, 5), make_split(ids, 0.3, 5)
    assert s1 == s2
    val_subjects = {c.split("__")[0] for c in s1["val"]}
    assert len(val_subjects) == 3
    assert all(c.split("__")[0] not in val_subjects for c in s1["train"])


def test_sparse_annotation_uses_ignore_label(tmp_path, toy):
    root = write_dataset(tmp_path / "ds", toy.cases(3), sparse_every=3, val_fraction=0.0)
    lab = load_nifti(root / "labelsTr" / "toy000__c0.nii.gz", dtype=None).data
    annotated = [(lab[:, :, z] != 8).any() for z in range(lab.shape[2])]
    assert annotated == [True, False, False, True, False]
    assert json.loads((root / "dataset.json").read_text())["alsseg"]["sparse_every"] == 3


def test_labels_outside_table_refused(tmp_path, toy):
    case = toy.cases(1)[0]
    bad = case.labels.copy()
    bad[0, 0, 0] = 9
    with pytest.raises(InputError, match=r"\[9\]"):
        write_dataset(tmp_path / "ds", [Case("x__a", case.image, bad, "x.nii.gz")])


def test_writing_threads_give_the_serial_dataset(tmp_path, toy):
    """Files written by 3 threads (more cases than the bounded queue) equal the serial ones."""
    cases = toy.cases(7)
    write_dataset(tmp_path / "serial", cases, val_fraction=0.3)
    write_dataset(tmp_path / "threads", cases, val_fraction=0.3, write_threads=3)
    files = sorted(p.relative_to(tmp_path / "serial") for p in (tmp_path / "serial").rglob("*") if p.is_file())
    assert len(files) == 2 * 7 + 2
    for f in files:
        a, b = tmp_path / "serial" / f, tmp_path / "threads" / f
        if f.suffix == ".gz":
            np.testing.assert_array_equal(load_nifti(a).data, load_nifti(b).data)
        else:
            assert a.read_bytes() == b.read_bytes()


def test_labels_outside_table_refused_with_threads(tmp_path, toy):
    cases = toy.cases(3)
    bad = cases[2].labels.copy()
    bad[0, 0, 0] = 9
    with pytest.raises(InputError, match=r"\[9\]"):
        write_dataset(tmp_path / "ds", cases[:2] + [Case("x__a", cases[2].image, bad, "x.nii.gz")],
                      write_threads=2)
    assert not (tmp_path / "ds" / "dataset.json").exists()


def test_grid_mismatch_refused(tmp_path, toy):
    case = toy.cases(1)[0]
    with pytest.raises(InputError, match="does not match"):
        write_dataset(tmp_path / "ds", [Case("x__a", case.image, case.labels[:, :, :3], "x.nii.gz")])


def test_rawdataset_checks_files(toy_dataset):
    # a label map edited by hand: value outside the table, then a grid mismatch
    p = toy_dataset / "labelsTr" / "toy001__c0.nii.gz"
    lab = load_nifti(p, dtype=None)
    data = np.asarray(lab.data).copy()
    data[1, 1, 1] = 12
    save_nifti(Image(data, lab.affine), p)
    ds = RawDataset(toy_dataset)
    with pytest.raises(InputError, match="outside"):
        ds.load("toy001__c0")
    save_nifti(Image(data[:, :, :2] * 0, lab.affine), p)
    with pytest.raises(InputError, match="does not match"):
        ds.load("toy001__c0")


def test_not_a_dataset(tmp_path):
    with pytest.raises(InputError, match="no dataset.json"):
        RawDataset(tmp_path)


def test_cli_dataset_from_bids_and_nothing_written_on_error(tmp_path, capsys, toy):
    """`alsseg dataset --bids` pairs MESE echo 1 with derivative label maps; a bad label map
    stops it with one line and leaves no dataset folder."""
    from alsseg.cli import main

    root = tmp_path / "bids"
    cases = toy.cases(2)
    for i, c in enumerate(cases):
        anat = root / f"sub-0{i}" / "anat"
        anat.mkdir(parents=True)
        echoes = np.stack([c.image.data, 0.5 * c.image.data], axis=-1)
        save_nifti(Image(echoes, c.image.affine), anat / f"sub-0{i}_MESE.nii.gz")
        (anat / f"sub-0{i}_MESE.json").write_text(json.dumps({"EchoTime": [0.01, 0.02], "RepetitionTime": 3.0}))
        der = root / "derivatives" / "groundtruth" / f"sub-0{i}" / "anat"
        der.mkdir(parents=True)
        save_nifti(Image(c.labels.astype(np.uint8), c.image.affine), der / f"sub-0{i}_desc-muscles_dseg.nii.gz")
    out = tmp_path / "Dataset002_bids"
    assert main(["dataset", "--bids", str(root), "--out", str(out), "-q", "--val-fraction", "0.5"]) == 0
    ds = RawDataset(out)
    assert ds.case_ids == ["sub-00__mese", "sub-01__mese"]
    img, lab = ds.load("sub-00__mese")
    np.testing.assert_allclose(img.data, cases[0].image.data, rtol=1e-6)
    # bad label value in the second subject
    p = root / "derivatives" / "groundtruth" / "sub-01" / "anat" / "sub-01_desc-muscles_dseg.nii.gz"
    lab = load_nifti(p, dtype=None)
    d = np.asarray(lab.data).copy()
    d[0, 0, 0] = 42
    save_nifti(Image(d, lab.affine), p)
    out2 = tmp_path / "Dataset003_bad"
    capsys.readouterr()
    assert main(["dataset", "--bids", str(root), "--out", str(out2), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "42" in err[0] and "sub-01_desc-muscles_dseg" in err[0]
    assert not out2.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".Dataset003")]


def test_partial_outlines_mark_the_unoutlined_inside_of_each_leg():
    from alsseg.seg.dataset import UNANNOTATED_INPUT, mark_unoutlined_inside_legs

    lab = np.zeros((40, 20, 2), np.int16)
    lab[2:8, 2:18, 0] = 1       # right TA ...
    lab[12:18, 2:18, 0] = 5     # ... and SOL, a gap (deep, not outlined) between them
    lab[25:35, 5:15, 0] = 16    # left GM only
    out = mark_unoutlined_inside_legs(lab)
    assert (out[8:12, 3:17, 0] == UNANNOTATED_INPUT).all()      # the gap inside the right leg
    assert (out[20:24, :, 0] == 0).all() and (out[:, :, 1] == 0).all()   # between legs, empty slice
    assert (out[lab > 0] == lab[lab > 0]).all()                  # outlines unchanged
    assert out[0, 0, 0] == 0 and lab.max() == 16                 # outside the hull; input untouched


def test_cli_synthetic_dataset_records_shape_jitter_and_refuses_a_bad_one(tmp_path, capsys, monkeypatch):
    """`alsseg dataset --synthetic --shape-jitter J` renders the widened phantom and records J in
    dataset.json; a negative J is one line, exit 2, nothing written."""
    import alsseg.synth
    from alsseg.cli import main

    asked = []
    make_subject = alsseg.synth.make_subject
    monkeypatch.setattr(alsseg.synth, "make_subject",
                        lambda seed, **kw: asked.append(kw.get("shape_jitter")) or make_subject(seed, **kw))
    out = tmp_path / "Dataset004_jitter"
    assert main(["dataset", "--synthetic", "1", "--seed", "20", "--shape-jitter", "1", "--contrasts", "t1w",
                 "--grids-per-subject", "1", "--val-fraction", "0", "--out", str(out), "-q"]) == 0
    meta = json.loads((out / "dataset.json").read_text())["alsseg"]
    assert meta["shape_jitter"] == 1.0
    assert asked == [1.0]  # the subject was drawn with it
    capsys.readouterr()
    bad = tmp_path / "Dataset005_bad"
    assert main(["dataset", "--synthetic", "1", "--shape-jitter", "-1", "--out", str(bad), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--shape-jitter" in err[0]
    assert not bad.exists()
