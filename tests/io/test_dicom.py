"""DICOM reading on synthetic classic and enhanced multi-frame series (no ../shared needed)."""

from __future__ import annotations

import numpy as np
import pytest

from alsseg.io import InputError, load_mese, load_t1_series
from alsseg.io.dicom import LPS_TO_RAS, list_series, read_dicom_series


def _check_geometry(vs, truth):
    """Affine maps each voxel centre to the DICOM position of its pixel (LPS → RAS)."""
    dr, dc = truth.pixel_spacing
    for k, ipp in enumerate(truth.positions_lps):
        for i, j in ((0, 0), (3, 1), (4, 5)):
            lps = ipp + i * dc * truth.row_cos + j * dr * truth.col_cos
            want = (LPS_TO_RAS @ np.r_[lps, 1.0])[:3]
            got = (vs.affine @ np.r_[i, j, k, 1.0])[:3]
            np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.mark.parametrize("enhanced", [False, True], ids=["classic", "enhanced"])
def test_reads_voxels_and_geometry(dicom_series, enhanced):
    truth = dicom_series(enhanced=enhanced)
    vs = read_dicom_series(truth.folder)
    assert vs.data.shape == (5, 6, 4, 3)
    assert vs.data.dtype == np.uint16
    np.testing.assert_array_equal(vs.data, truth.expected_data())
    _check_geometry(vs, truth)
    np.testing.assert_allclose(vs.echo_times_ms, [10, 20, 30])
    assert vs.varying == "EchoTime"
    assert vs.header["SliceSpacing_mm"] == pytest.approx(9.0, abs=1e-4)
    assert vs.header["RepetitionTime_ms"] == 3000.0
    assert vs.header["RefocusingFlipAngle"] == 180.0
    assert vs.header["EnhancedMultiFrame"] is enhanced


@pytest.mark.parametrize("enhanced", [False, True], ids=["classic", "enhanced"])
def test_load_mese_from_dicom(dicom_series, enhanced):
    truth = dicom_series(enhanced=enhanced, echo_times_ms=(11, 22, 33, 44, 55))
    ms = load_mese(truth.folder)
    assert ms.n_echoes == 5 and ms.echo_spacing_ms == pytest.approx(11.0) and ms.uniform_spacing
    assert ms.tr_ms == 3000.0 and ms.field_strength_t == 3.0 and ms.refocus_deg == 180.0 and ms.excite_deg is None
    assert ms.slice_thickness_mm == 5.0
    assert ms.slice_spacing_mm == pytest.approx(9.0, abs=1e-4)  # true spacing, not the thickness
    assert ms.image.data.dtype == np.float32
    np.testing.assert_array_equal(ms.image.data, truth.expected_data().astype(np.float32))


def test_gap_uses_positions_not_thickness(dicom_series):
    truth = dicom_series(enhanced=True, slice_step_mm=37.1, slice_thickness_mm=7.0, a_deg=0, b_deg=5.17)
    vs = read_dicom_series(truth.folder)
    assert vs.header["SliceSpacing_mm"] == pytest.approx(37.1, abs=1e-3)
    assert np.linalg.norm(vs.affine[:3, 2]) == pytest.approx(37.1, abs=1e-3)
    _check_geometry(vs, truth)


def test_axial_orientation_codes(dicom_series):
    """Axial DICOM (rows along +x = patient left, columns along +y = posterior) → LPS voxel axes."""
    truth = dicom_series(enhanced=False, a_deg=0, b_deg=0)
    ms = load_mese(truth.folder)
    assert ms.image.orientation == "LPS"
    # to_ras flips the first two axes: RAS view's first voxel is the DICOM pixel at max column/row
    ras = ms.image.to_ras()
    assert ras.orientation == "RAS"
    np.testing.assert_array_equal(ras.data[0, 0, 0, 0], ms.image.data[-1, -1, 0, 0])


def test_rescale_applied(dicom_series):
    truth = dicom_series(enhanced=True, rescale=(2.0, -5.0))
    vs = read_dicom_series(truth.folder)
    assert vs.data.dtype == np.float32
    np.testing.assert_allclose(vs.data, truth.expected_data() * 2.0 - 5.0)


def test_inversion_recovery_series(dicom_series):
    for enhanced in (False, True):
        truth = dicom_series(name=f"ir{enhanced}", enhanced=enhanced, inversion_times_ms=(50, 400, 1100, 2500),
                             flip_deg=90.0)
        t1 = load_t1_series(truth.folder)
        assert t1.kind == "IR"
        np.testing.assert_allclose(t1.inversion_times_ms, [50, 400, 1100, 2500])
        assert t1.tr_ms == 3000.0 and t1.image.shape == (5, 6, 4, 4)
        np.testing.assert_array_equal(t1.image.data, truth.expected_data())


def test_mixed_series_refused_then_picked(dicom_series):
    a = dicom_series(name="mix", enhanced=False, series_uid="1.2.3.4", series_number=3, prefix="a")
    dicom_series(name="mix", enhanced=True, series_uid="1.2.3.5", series_number=5, description="other", prefix="b",
                 seed=4)
    with pytest.raises(InputError) as err:
        read_dicom_series(a.folder)
    msg = str(err.value)
    assert "mixes 2 DICOM series" in msg and "1.2.3.4" in msg and "1.2.3.5" in msg and str(a.folder) in msg
    vs = read_dicom_series(a.folder, series="3")
    np.testing.assert_array_equal(vs.data, a.expected_data())
    assert read_dicom_series(a.folder, series="1.2.3.5").header["SeriesDescription"] == "other"
    assert [s.number for s in list_series(a.folder)] == ["3", "5"]
    with pytest.raises(InputError, match="no series '9'"):
        read_dicom_series(a.folder, series="9")


def test_missing_slice_refused(dicom_series):
    truth = dicom_series(enhanced=False, skip=[(2, 1)])
    with pytest.raises(InputError, match="incomplete series: volume TE 20"):
        read_dicom_series(truth.folder)


def test_uneven_slice_spacing_refused(dicom_series):
    pos = np.array([[0, 0, 0], [0, 0, 5.0], [0, 0, 10.0], [0, 0, 17.0]])
    truth = dicom_series(enhanced=True, a_deg=0, b_deg=0, positions_lps=pos)
    with pytest.raises(InputError, match="not evenly spaced"):
        read_dicom_series(truth.folder)


def test_non_dicom_files_skipped_but_dcm_garbage_refused(dicom_series):
    truth = dicom_series(enhanced=False)
    (truth.folder / "notes.txt").write_text("scan notes")
    assert read_dicom_series(truth.folder).data.shape == (5, 6, 4, 3)
    (truth.folder / "broken.dcm").write_bytes(b"\x00" * 50)
    with pytest.raises(InputError) as err:
        read_dicom_series(truth.folder)
    assert "broken.dcm" in str(err.value)


def test_truncated_pixel_data_refused(dicom_series):
    truth = dicom_series(enhanced=True)
    f = truth.files[1]
    f.write_bytes(f.read_bytes()[:-20])
    with pytest.raises(InputError) as err:
        read_dicom_series(truth.folder)
    assert f.name in str(err.value)


def test_empty_folder_refused(tmp_path):
    with pytest.raises(InputError, match="no DICOM image files"):
        read_dicom_series(tmp_path)


def test_enhanced_all_echoes_in_one_file(dicom_series):
    """One multi-frame file holding every slice of every echo, frames shuffled (Philips style)."""
    truth = dicom_series(enhanced=True, one_file=True, echo_times_ms=(8, 16, 24, 32, 40, 48))
    assert len(truth.files) == 1
    ms = load_mese(truth.folder)
    assert ms.image.shape == (5, 6, 4, 6)
    np.testing.assert_allclose(ms.echo_times_ms, [8, 16, 24, 32, 40, 48])
    np.testing.assert_array_equal(ms.image.data, truth.expected_data())


def test_single_dicom_file_points_to_folder(dicom_series):
    truth = dicom_series(enhanced=True)
    with pytest.raises(InputError, match="is one DICOM file; pass its folder"):
        load_mese(truth.files[0])


@pytest.mark.parametrize("enhanced", [False, True], ids=["classic", "enhanced"])
def test_ir_with_tr_growing_with_ti(dicom_series, enhanced):
    truth = dicom_series(enhanced=enhanced, inversion_times_ms=(100, 800, 2400), tr_ms=[3000.0, 3700.0, 5300.0])
    t1 = load_t1_series(truth.folder)
    assert t1.kind == "IR" and t1.tr_ms is None
    np.testing.assert_allclose(t1.repetition_times_ms, [3000, 3700, 5300])
    np.testing.assert_allclose(t1.inversion_times_ms, [100, 800, 2400])


def test_te_and_ti_both_varying_refused(dicom_series):
    """Volumes that differ in TE and TR at once are not one series kind."""
    truth = dicom_series(enhanced=False, echo_times_ms=(10, 20, 30), tr_ms=[1000.0, 2000.0, 3000.0])
    with pytest.raises(InputError, match="several parameters at once"):
        read_dicom_series(truth.folder)


@pytest.mark.parametrize("enhanced", [False, True], ids=["classic", "enhanced"])
def test_single_slice_series(dicom_series, enhanced):
    """One slice: the third axis is the normal scaled by the slice thickness."""
    truth = dicom_series(enhanced=enhanced, n_slices=1, slice_thickness_mm=5.0)
    vs = read_dicom_series(truth.folder)
    assert vs.data.shape == (5, 6, 1, 3)
    normal = np.cross(truth.row_cos, truth.col_cos)
    np.testing.assert_allclose(vs.affine[:3, 2], (LPS_TO_RAS[:3, :3] @ normal) * 5.0, atol=1e-6)
    _check_geometry(vs, truth)
