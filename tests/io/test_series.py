"""MESE / T1 series from NIfTI + sidecars and BIDS files; writers; BIDS names; unit rules."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from alsseg.io import (
    Image, InputError, InputWarning, MeseSeries, T1Series, bids_path, load_anatomical, load_mese, load_t1_series,
    parse_bids_name, times_to_ms, write_mese_bids, write_t1_bids,
)
from alsseg.io.validate import check_echo_times

AFF = np.array([[-1.5, 0, 0, 40.0], [0, 1.5, 0, -20.0], [0, 0, 8.0, -30.0], [0, 0, 0, 1]])


def _mese(te=(10.0, 20.0, 30.0, 40.0), seed=0):
    rng = np.random.default_rng(seed)
    data = rng.uniform(10, 1000, size=(6, 5, 4, len(te))).astype(np.float32)
    return MeseSeries(Image(data, AFF), np.asarray(te, float), tr_ms=3000.0, field_strength_t=3.0,
                      refocus_deg=160.0, excite_deg=90.0, slice_thickness_mm=6.0)


def test_bids_path_names():
    p = bids_path("/d", "01", "02", "MESE", {"echo": 3})
    assert str(p) == "/d/sub-01/ses-02/anat/sub-01_ses-02_echo-3_MESE.nii.gz"
    p = bids_path("/d", "sub-01", None, "T2map", {"desc": "water", "acq": "fast"}, derivative="alsseg")
    assert str(p) == "/d/derivatives/alsseg/sub-01/anat/sub-01_acq-fast_desc-water_T2map.nii.gz"
    assert parse_bids_name(p) == ({"sub": "01", "acq": "fast", "desc": "water"}, "T2map")
    with pytest.raises(InputError):
        bids_path("/d", "0_1", None, "MESE")


def test_mese_properties():
    ms = _mese()
    assert ms.n_echoes == 4 and ms.echo_spacing_ms == 10.0 and ms.uniform_spacing
    assert not _mese(te=(10, 20, 35, 40)).uniform_spacing
    assert not _mese(te=(5, 15, 25, 35)).uniform_spacing  # TE1 != spacing
    assert ms.slice_spacing_mm == pytest.approx(8.0)


@pytest.mark.parametrize("split", [True, False])
def test_write_then_load_mese_round_trip(tmp_path, split):
    ms = _mese()
    written = write_mese_bids(ms, tmp_path, "01", "1", split_echoes=split)
    assert len(written) == (8 if split else 2)
    assert all(p.exists() for p in written)
    side = json.loads(written[1].read_text())
    if split:
        assert written[0].name == "sub-01_ses-1_echo-1_MESE.nii.gz" and side["EchoTime"] == 0.01
    else:
        assert side["EchoTime"] == [0.01, 0.02, 0.03, 0.04]
    assert side["RepetitionTime"] == 3.0 and side["RefocusingFlipAngle"] == 160.0 and side["FlipAngle"] == 90.0
    # any echo file, the folder, or the 4-D file load back to the same series
    for src in ([written[2], written[0].parent] if split else [written[0]]):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # seconds in sidecars: no unit warning
            back = load_mese(src)
        np.testing.assert_array_equal(back.image.data, ms.image.data)
        np.testing.assert_allclose(back.image.affine, ms.image.affine)
        np.testing.assert_allclose(back.echo_times_ms, ms.echo_times_ms)
        assert (back.tr_ms, back.field_strength_t, back.refocus_deg, back.excite_deg, back.slice_thickness_mm) == \
            (3000.0, 3.0, 160.0, 90.0, 6.0)


def test_write_refuses_input_as_output(tmp_path):
    ms = _mese()
    written = write_mese_bids(ms, tmp_path, "01", None, split_echoes=False)
    with pytest.raises(InputError, match="also an input"):
        write_mese_bids(ms, tmp_path, "01", None, split_echoes=False, inputs=[written[0]])


@pytest.mark.parametrize("kind,values", [("IR", [100.0, 500.0, 2000.0]), ("VFA", [3.0, 10.0, 20.0]),
                                         ("SR", [300.0, 1000.0, 4000.0])])
def test_t1_round_trip(tmp_path, kind, values):
    data = np.random.default_rng(1).uniform(1, 100, size=(6, 5, 4, 3)).astype(np.float32)
    kw = {"IR": "inversion_times_ms", "VFA": "flip_angles_deg", "SR": "repetition_times_ms"}[kind]
    t1 = T1Series(Image(data, AFF), kind, **{kw: np.array(values)}, tr_ms=None if kind == "SR" else 15.0)
    for split in (True, False):
        out = tmp_path / f"s{split}"
        written = write_t1_bids(t1, out, "02", "01", split_volumes=split)
        back = load_t1_series(written[0])
        assert back.kind == kind
        np.testing.assert_allclose(back.varying, values)
        np.testing.assert_array_equal(back.image.data, data)
        if kind != "SR":
            assert back.tr_ms == 15.0


def test_mese_4d_with_ms_sidecar_warns(mese_nifti):
    p = mese_nifti(sidecar={"EchoTime": [10, 20, 30, 40], "RepetitionTime": 3})
    with pytest.warns(InputWarning, match="assumed milliseconds"):
        ms = load_mese(p)
    np.testing.assert_allclose(ms.echo_times_ms, [10, 20, 30, 40])
    assert ms.tr_ms == 3000.0
    assert any("assumed milliseconds" in n for n in ms.notes)


def test_lone_flip_angle_above_90_is_refocusing(mese_nifti):
    p = mese_nifti(sidecar={"EchoTime": [0.01, 0.02, 0.03, 0.04], "FlipAngle": 180})
    ms = load_mese(p)
    assert ms.refocus_deg == 180.0 and ms.excite_deg is None and ms.tr_ms is None


def test_times_to_ms_rules():
    np.testing.assert_allclose(times_to_ms([0.011, 0.022], "x"), [11, 22])
    with pytest.warns(InputWarning):
        np.testing.assert_allclose(times_to_ms([11, 22], "x"), [11, 22])
    with pytest.raises(InputError, match="cannot tell seconds"):
        times_to_ms([0.5, 11], "x")
    with pytest.raises(InputError, match="must be numbers"):
        times_to_ms(["a", 1], "x")


@pytest.mark.parametrize("te,match", [([10, 20], "2 echo times"), ([10, 30, 20, 40], "not strictly increasing"),
                                      ([0, 10, 20, 30], "zero"), ([-10, 10, 20, 30], "negative"),
                                      ([10, np.nan, 20, 30], "NaN")])
def test_check_echo_times(te, match):
    with pytest.raises(InputError, match=match):
        check_echo_times(te, "f.json", n_echoes=4)


def test_per_echo_files_with_gap_refused(tmp_path):
    ms = _mese()
    written = write_mese_bids(ms, tmp_path, "01", None)
    written[2].unlink()  # echo-2 NIfTI
    with pytest.raises(InputError, match="not 1..3: a volume is missing"):
        load_mese(written[0])


def test_anatomical(write_nifti):
    p = write_nifti(np.ones((4, 5, 6), np.float32), "sub-01_T1w.nii.gz")
    img = load_anatomical(p)
    assert img.shape == (4, 5, 6) and img.meta == {}
    p2 = write_nifti(np.ones((4, 5), np.float32), "flat.nii.gz")
    with pytest.raises(InputError, match="2-D"):
        load_anatomical(p2)


def test_write_volumes_all_or_nothing(tmp_path):
    from alsseg.io import write_volumes

    good = np.ones((3, 3, 2), np.float32)
    bad = np.array([[["x"]]], dtype=object)  # nibabel cannot store this
    items = [(tmp_path / "a_MESE.nii.gz", good, {"EchoTime": 0.01}), (tmp_path / "b_MESE.nii.gz", bad, {})]
    with pytest.raises(Exception):
        write_volumes(items, AFF)
    assert list(tmp_path.iterdir()) == []


def test_subject_session_of_reads_folders_then_entities(tmp_path):
    from alsseg.io.series import subject_session_of

    assert subject_session_of("/d/sub-01/ses-02/anat") == ("sub-01", "ses-02")
    assert subject_session_of("/d/sub-01/ses-02/anat/sub-01_ses-02_echo-1_MESE.nii.gz") == ("sub-01", "ses-02")
    assert subject_session_of("/x/sub-07_ses-b_MESE.nii.gz") == ("sub-07", "ses-b")
    assert subject_session_of("/x/sub-07_echo-1_MESE.nii.gz") == ("sub-07", None)
    assert subject_session_of("/x/meseleg3t") == (None, None)


def test_one_jsonable_for_sidecars_and_records():
    from pathlib import Path

    from alsseg.io.jsonable import jsonable

    obj = {"a": np.float32(1.5), 2: (np.arange(2), Path("/p")), "_ras": 1, "o": object}
    out = jsonable(obj)
    assert out["a"] == 1.5 and out["2"] == [[0, 1], "/p"] and out["_ras"] == 1 and isinstance(out["o"], str)
    assert "_ras" not in jsonable(obj, drop_private=True)


@pytest.mark.parametrize("suffix, entity", [("MESE", "echo"), ("IRT1", "inv")])
def test_sidecar_of_one_volume_passed_as_the_image_is_refused(tmp_path, suffix, entity):
    """``…_echo-1_MESE.json`` given where the image is expected: one line naming it, no traceback."""
    side = tmp_path / f"sub-01_{entity}-1_{suffix}.json"
    side.write_text("{}")
    load = load_mese if suffix == "MESE" else load_t1_series
    with pytest.raises(InputError, match=r"is not a BIDS .*\.nii\[\.gz\] image; pass the image") as info:
        load(side)
    assert info.value.path == side


def test_old_import_paths_still_work():
    """series.py and dicom.py were split; their names are still importable where they used to live."""
    import alsseg.io.acquisition as acquisition
    import alsseg.io.bids_names as bids_names
    import alsseg.io.dicom_scan as dicom_scan
    from alsseg.io.dicom import list_series, scan_folder
    from alsseg.io.series import MeseSeries as OldMese
    from alsseg.io.series import bids_path as old_bids_path
    from alsseg.io.series import subject_session_of, write_volumes  # noqa: F401

    assert OldMese is acquisition.MeseSeries is MeseSeries
    assert old_bids_path is bids_names.bids_path is bids_path
    assert scan_folder is dicom_scan.scan_folder and list_series is dicom_scan.list_series
