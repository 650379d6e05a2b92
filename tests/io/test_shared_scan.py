"""The real 3 T enhanced multi-frame MESE scan in ../shared (skipped when absent)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from alsseg.cli import main
from alsseg.io import load_mese

pytestmark = pytest.mark.shared


def test_info_on_real_scan(shared_mese, capsys):
    assert main(["info", str(shared_mese)]) == 0
    out = capsys.readouterr().out
    assert "1 series" in out and "enhanced multi-frame" in out
    assert "17 echoes, TE 11–187 ms, echo spacing 11 ms (uniform)" in out
    assert "echo times (ms): 11 22 33 44 55 66 77 88 99 110 121 132 143 154 165 176 187" in out
    assert "× 8 slices × 17 volumes" in out
    assert "spacing: 1.5625 × 1.5625 × 37.1001 mm" in out and "slice thickness 7 mm" in out
    assert "orientation: LPS" in out
    assert "TR 5000 ms; field 3 T; refocusing 180°" in out


def test_load_mese_real_scan(shared_mese):
    ms = load_mese(shared_mese)
    assert ms.image.shape == (256, 128, 8, 17)
    np.testing.assert_allclose(ms.echo_times_ms, np.arange(1, 18) * 11.0)
    assert ms.echo_spacing_ms == pytest.approx(11.0) and ms.uniform_spacing
    assert ms.tr_ms == 5000.0 and ms.field_strength_t == 3.0 and ms.refocus_deg == 180.0
    assert ms.slice_thickness_mm == 7.0
    sp = ms.image.spacing_mm
    assert sp[0] == pytest.approx(1.5625, abs=1e-5) and sp[1] == pytest.approx(1.5625, abs=1e-5)
    assert sp[2] == pytest.approx(37.1, abs=1e-3)  # true centre-to-centre spacing (7 mm slices, 30 mm gap)
    assert ms.image.orientation == "LPS"
    # feet-first supine calf, axial: the RAS view runs right→left … inferior→superior as expected
    assert ms.image.to_ras().orientation == "RAS"


def test_convert_real_scan_exact(shared_mese, tmp_path, capsys):
    import pydicom

    out = tmp_path / "bids"
    assert main(["convert", str(shared_mese), "--out", str(out), "--subject", "01", "--session", "01"]) == 0
    nii = out / "sub-01/ses-01/anat/sub-01_ses-01_MESE.nii.gz"
    side = json.loads(nii.with_name("sub-01_ses-01_MESE.json").read_text())
    assert side["EchoTime"] == pytest.approx([0.011 * (e + 1) for e in range(17)])
    assert side["RepetitionTime"] == 5.0 and side["MagneticFieldStrength"] == 3.0
    assert side["RefocusingFlipAngle"] == 180.0 and side["SliceThickness"] == 7.0
    assert side["AcquisitionDateTime"] == "2025-01-21T14:41:12"  # the session date reaches the report
    from alsseg.io.bids import BidsDataset

    dates = BidsDataset(out).session_dates
    assert list(dates["acq_time"].astype(str)) == ["2025-01-21 14:41:12"] and dates["source"][0].endswith(".json")
    img = nib.load(str(nii))
    data = np.asarray(img.dataobj)
    affine = img.affine
    assert data.shape == (256, 128, 8, 17) and data.dtype == np.uint16
    assert int(img.header["sform_code"]) == 1
    seen = np.zeros((8, 17), bool)
    for f in sorted(shared_mese.glob("*.dcm")):
        ds = pydicom.dcmread(str(f))
        pixels = ds.pixel_array
        for fr, group in enumerate(ds.PerFrameFunctionalGroupsSequence):
            te = float(group.MREchoSequence[0].EffectiveEchoTime)
            e = int(round(te / 11.0)) - 1
            ipp = np.array([float(v) for v in group.PlanePositionSequence[0].ImagePositionPatient])
            iop = np.array([float(v) for v in group.PlaneOrientationSequence[0].ImageOrientationPatient])
            ras = ipp * [-1, -1, 1]
            centres = np.array([(affine @ [0, 0, k, 1])[:3] for k in range(8)])
            k = int(np.argmin(np.linalg.norm(centres - ras, axis=1)))
            # voxel (0, 0, k) sits on the frame's ImagePositionPatient (LPS → RAS), to DS precision
            np.testing.assert_allclose(centres[k], ras, atol=2e-3)
            # one step along i / j moves one pixel along the row / column direction cosines
            np.testing.assert_allclose(affine[:3, 0], iop[:3] * 1.5625 * [-1, -1, 1], atol=1e-5)
            np.testing.assert_allclose(affine[:3, 1], iop[3:] * 1.5625 * [-1, -1, 1], atol=1e-5)
            np.testing.assert_array_equal(data[:, :, k, e], pixels[fr].T)
            seen[k, e] = True
    assert seen.all()
    # the converted file loads back to the same series as the DICOM folder
    a, b = load_mese(nii), load_mese(shared_mese)
    np.testing.assert_array_equal(a.image.data, b.image.data)
    np.testing.assert_allclose(a.image.affine, b.image.affine, atol=1e-6)
    np.testing.assert_allclose(a.echo_times_ms, b.echo_times_ms)
    assert (a.tr_ms, a.field_strength_t, a.refocus_deg, a.slice_thickness_mm) == (5000.0, 3.0, 180.0, 7.0)
    # a second run refuses to overwrite; --split-echoes writes BIDS per-echo files
    capsys.readouterr()
    assert main(["convert", str(shared_mese), "--out", str(out), "--subject", "01", "--session", "01"]) == 2
    assert "output exists" in capsys.readouterr().err
    assert main(["convert", str(shared_mese), "--out", str(tmp_path / "split"), "--split-echoes", "-q"]) == 0
    files = sorted((tmp_path / "split").glob("*_MESE.nii.gz"))
    assert len(files) == 17 and (tmp_path / "split" / "series4meseproduct_echo-17_MESE.nii.gz").exists()
    np.testing.assert_array_equal(load_mese(files[5]).image.data, b.image.data)


def test_agrees_with_dcm2niix(shared_mese, tmp_path):
    """Cross-check with the reference converter when it is installed (pip install dcm2niix)."""
    import shutil
    import subprocess

    from alsseg.io import load_nifti

    exe = shutil.which("dcm2niix")
    if exe is None:
        pytest.skip("dcm2niix not installed")
    subprocess.run([exe, "-z", "y", "-b", "y", "-f", "m", "-o", str(tmp_path), str(shared_mese)], check=True,
                   capture_output=True, timeout=120)
    ours = load_mese(shared_mese).image.to_ras()
    for e in range(17):
        theirs = load_nifti(tmp_path / f"m_e{e + 1}.nii.gz").to_ras()
        np.testing.assert_array_equal(ours.data[..., e], theirs.data)
        np.testing.assert_allclose(ours.affine, theirs.affine, atol=1e-3)
        assert json.loads((tmp_path / f"m_e{e + 1}.json").read_text())["EchoTime"] == pytest.approx(0.011 * (e + 1))


def test_info_json_real_scan(shared_mese, capsys):
    assert main(["info", "--json", str(shared_mese)]) == 0
    d = json.loads(capsys.readouterr().out)
    s = d["series"][0]
    assert d["type"] == "dicom" and s["kind"] == "MESE" and s["n_echoes"] == 17
    assert s["echo_times_ms"][0] == 11 and s["echo_times_ms"][-1] == 187
    assert s["shape"] == [256, 128, 8, 17] and s["orientation"] == "LPS"
    assert s["slice_spacing_mm"] == pytest.approx(37.1, abs=1e-3) and s["slice_gap_mm"] == pytest.approx(30.1, abs=1e-3)
    assert s["tr_ms"] == 5000.0 and s["field_strength_t"] == 3.0 and s["refocus_deg"] == 180.0


def test_real_scan_as_classic_single_frame_files(shared_mese, tmp_path, dcmwrite):
    """Split the real enhanced files into 136 classic single-frame files (same geometry, pixels,
    echo times): the classic path must give exactly the same series."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    n = 0
    for f in sorted(shared_mese.glob("*.dcm")):
        ds = pydicom.dcmread(str(f))
        pixels = ds.pixel_array
        timing = ds.SharedFunctionalGroupsSequence[0].MRTimingAndRelatedParametersSequence[0]
        for fr, group in enumerate(ds.PerFrameFunctionalGroupsSequence):
            c = Dataset()
            c.file_meta = FileMetaDataset()
            c.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
            c.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            c.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            c.SOPClassUID, c.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.4", c.file_meta.MediaStorageSOPInstanceUID
            for kw in ("SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "Manufacturer",
                       "MagneticFieldStrength", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit",
                       "PixelRepresentation", "SamplesPerPixel", "PhotometricInterpretation"):
                setattr(c, kw, ds.data_element(kw).value)
            c.ScanningSequence = "SE"
            c.EchoTime = group.MREchoSequence[0].EffectiveEchoTime
            c.RepetitionTime, c.FlipAngle = timing.RepetitionTime, timing.FlipAngle
            c.ImagePositionPatient = group.PlanePositionSequence[0].ImagePositionPatient
            c.ImageOrientationPatient = group.PlaneOrientationSequence[0].ImageOrientationPatient
            measures = group.PixelMeasuresSequence[0]
            c.PixelSpacing, c.SliceThickness = measures.PixelSpacing, measures.SliceThickness
            c.PixelData = pixels[fr].tobytes()
            n += 1
            dcmwrite(tmp_path / f"c{n:04d}.dcm", c)
    assert n == 136
    classic, enhanced = load_mese(tmp_path), load_mese(shared_mese)
    np.testing.assert_array_equal(classic.image.data, enhanced.image.data)
    np.testing.assert_allclose(classic.image.affine, enhanced.image.affine, atol=1e-6)
    np.testing.assert_allclose(classic.echo_times_ms, enhanced.echo_times_ms)
    assert (classic.tr_ms, classic.refocus_deg, classic.slice_thickness_mm) == (5000.0, 180.0, 7.0)
