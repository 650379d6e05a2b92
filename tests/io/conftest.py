"""Fixtures of the io tests: synthetic DICOM series (classic and enhanced multi-frame), MESE
NIfTIs with sidecars, and small BIDS datasets, all written on demand in a temporary folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
CLASSIC_MR = "1.2.840.10008.5.1.4.1.1.4"


@dataclass
class SyntheticDicom:
    """Ground truth of a synthetic series."""

    folder: Path
    frames: np.ndarray  # (Z, V, rows, cols) stored pixel values, slice k / volume v in true order
    positions_lps: np.ndarray  # (Z, 3)
    row_cos: np.ndarray
    col_cos: np.ndarray
    pixel_spacing: tuple[float, float]  # (row spacing, col spacing)
    echo_times_ms: np.ndarray
    series_uid: str
    files: list

    def expected_data(self) -> np.ndarray:
        """The documented reordering: data[i, j, k, v] = frame(k, v)[j, i]."""
        return np.transpose(self.frames, (3, 2, 0, 1))


def rotation(a_deg: float, b_deg: float) -> np.ndarray:
    """A rotation matrix (columns: row cosine, column cosine, normal), oblique in two planes."""
    a, b = np.deg2rad(a_deg), np.deg2rad(b_deg)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rz @ rx


def write_dicom_series(folder: Path, *, enhanced: bool, rows: int = 6, cols: int = 5, n_slices: int = 4,
                       echo_times_ms=(10.0, 20.0, 30.0), pixel_spacing=(1.25, 1.5), slice_step_mm: float = 9.0,
                       slice_thickness_mm: float = 5.0, a_deg: float = 12.0, b_deg: float = -20.0,
                       origin=(-40.0, 25.0, 60.0), series_uid: str = "1.2.826.0.1.3680043.8.498.1",
                       series_number: int = 7, description: str = "t2_mese", seed: int = 0,
                       shuffle: bool = True, positions_lps=None, inversion_times_ms=None,
                       tr_ms: float = 3000.0, flip_deg: float = 180.0, skip=(), prefix: str = "im",
                       rescale=(1.0, 0.0), one_file: bool = False) -> SyntheticDicom:
    """Write a synthetic MR series: classic (one file per frame) or enhanced (one multi-frame file
    per volume, frames in shuffled order; ``one_file``: every frame of every volume in one file, as
    Philips writes). ``skip``: (slice, volume) pairs left out."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    params = list(inversion_times_ms) if inversion_times_ms is not None else list(echo_times_ms)
    n_v = len(params)
    frames = rng.integers(1, 4000, size=(n_slices, n_v, rows, cols), dtype=np.uint16)
    R = rotation(a_deg, b_deg)
    row_cos, col_cos, normal = R[:, 0], R[:, 1], R[:, 2]
    if positions_lps is None:
        positions_lps = np.array([np.asarray(origin) + k * slice_step_mm * normal for k in range(n_slices)])
    iop = [float(f"{v:.8f}") for v in (*row_cos, *col_cos)]
    files = []

    def base(sop_class: str) -> Dataset:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality = "MR"
        ds.Manufacturer = "alsseg-test"
        ds.SeriesInstanceUID = series_uid
        ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.99"
        ds.SeriesNumber = series_number
        ds.SeriesDescription = description
        ds.MagneticFieldStrength = 3
        ds.ScanningSequence = "SE"
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        return ds

    order = [(k, v) for v in range(n_v) for k in range(n_slices) if (k, v) not in skip]
    if not enhanced:
        if shuffle:
            rng.shuffle(order)
        for n, (k, v) in enumerate(order):
            ds = base(CLASSIC_MR)
            ds.InstanceNumber = n + 1
            ds.ImagePositionPatient = [float(f"{x:.6f}") for x in positions_lps[k]]
            ds.ImageOrientationPatient = iop
            ds.PixelSpacing = list(pixel_spacing)
            ds.SliceThickness = slice_thickness_mm
            ds.RepetitionTime = tr_ms[v] if isinstance(tr_ms, (list, tuple)) else tr_ms
            ds.FlipAngle = flip_deg
            if inversion_times_ms is not None:
                ds.EchoTime = 12.0
                ds.InversionTime = params[v]
            else:
                ds.EchoTime = params[v]
                ds.EchoNumbers = v + 1
            if rescale != (1.0, 0.0):
                ds.RescaleSlope, ds.RescaleIntercept = rescale
            ds.PixelData = frames[k, v].tobytes()
            p = folder / f"{prefix}{n + 1:04d}.dcm"
            _dcmwrite(p, ds)
            files.append(p)
    else:
        file_groups = ([[(k, v) for v in range(n_v) for k in range(n_slices) if (k, v) not in skip]] if one_file
                       else [[(k, v) for k in range(n_slices) if (k, v) not in skip] for v in range(n_v)])
        for fi, kvs in enumerate(file_groups):
            if shuffle:
                kvs = [kvs[i] for i in rng.permutation(len(kvs))]
            ds = base(ENHANCED_MR)
            ds.InstanceNumber = fi + 1
            ds.NumberOfFrames = len(kvs)
            shared = Dataset()
            pm = Dataset()
            pm.PixelSpacing = list(pixel_spacing)
            pm.SliceThickness = slice_thickness_mm
            shared.PixelMeasuresSequence = Sequence([pm])
            po = Dataset()
            po.ImageOrientationPatient = iop
            shared.PlaneOrientationSequence = Sequence([po])
            if not isinstance(tr_ms, (list, tuple)):
                timing = Dataset()
                timing.RepetitionTime = tr_ms
                timing.FlipAngle = flip_deg
                shared.MRTimingAndRelatedParametersSequence = Sequence([timing])
            ds.SharedFunctionalGroupsSequence = Sequence([shared])
            per = []
            for k, v in kvs:
                fg = Dataset()
                pp = Dataset()
                pp.ImagePositionPatient = [float(f"{x:.6f}") for x in positions_lps[k]]
                fg.PlanePositionSequence = Sequence([pp])
                echo = Dataset()
                if inversion_times_ms is not None:
                    echo.EffectiveEchoTime = 12.0
                    mod = Dataset()
                    mod.InversionTimes = [params[v]]
                    fg.MRModifierSequence = Sequence([mod])
                else:
                    echo.EffectiveEchoTime = params[v]
                fg.MREchoSequence = Sequence([echo])
                if isinstance(tr_ms, (list, tuple)):  # per-frame timing
                    timing = Dataset()
                    timing.RepetitionTime = tr_ms[v]
                    timing.FlipAngle = flip_deg
                    fg.MRTimingAndRelatedParametersSequence = Sequence([timing])
                if rescale != (1.0, 0.0):
                    pv = Dataset()
                    pv.RescaleSlope, pv.RescaleIntercept = rescale
                    pv.RescaleType = "US"
                    fg.PixelValueTransformationSequence = Sequence([pv])
                per.append(fg)
            ds.PerFrameFunctionalGroupsSequence = Sequence(per)
            ds.PixelData = np.stack([frames[k, v] for k, v in kvs]).tobytes()
            p = folder / f"{prefix}{fi + 1:04d}.dcm"
            _dcmwrite(p, ds)
            files.append(p)
    return SyntheticDicom(folder, frames, np.asarray(positions_lps, dtype=float), row_cos, col_cos,
                          tuple(pixel_spacing), np.asarray(params, dtype=float), series_uid, files)


def _dcmwrite(path: Path, ds) -> None:
    """Write a DICOM file with its preamble and file meta (pydicom 3, or 2.4's older keyword)."""
    import pydicom

    try:
        pydicom.dcmwrite(str(path), ds, enforce_file_format=True)
    except TypeError:  # pydicom < 3
        ds.is_little_endian, ds.is_implicit_VR = True, False
        pydicom.dcmwrite(str(path), ds, write_like_original=False)


@pytest.fixture
def dcmwrite():
    """``dcmwrite(path, dataset)``: write a DICOM file with preamble and file meta."""
    return _dcmwrite


@pytest.fixture
def dicom_series(tmp_path):
    """``dicom_series(name='dcm', **kw) -> SyntheticDicom`` written under tmp_path/name."""

    def _make(name="dcm", **kw):
        return write_dicom_series(tmp_path / name, **kw)

    return _make


def mese_volume(shape=(6, 5, 4), echo_times_ms=(10, 20, 30, 40), t2_ms=35.0, seed=1) -> np.ndarray:
    """``(X, Y, Z, E)`` float32 mono-exponential decay with a little noise (all voxels > 0)."""
    rng = np.random.default_rng(seed)
    m0 = rng.uniform(500, 1000, size=shape)
    te = np.asarray(echo_times_ms, dtype=float)
    return (m0[..., None] * np.exp(-te / t2_ms)).astype(np.float32)


AFFINE = np.array([[-1.5, 0, 0, 40.0], [0, 1.5, 0, -20.0], [0, 0, 8.0, -30.0], [0, 0, 0, 1]])


@pytest.fixture
def mese_nifti(tmp_path):
    """``mese_nifti(name='mese.nii.gz', data=None, sidecar=None, te=...) -> Path`` of a 4-D NIfTI
    with its JSON sidecar (EchoTime in seconds unless ``sidecar`` says otherwise; ``sidecar=False``: none)."""
    from alsseg.io import save_nifti

    def _make(name="mese.nii.gz", data=None, sidecar=None, te=(10, 20, 30, 40), affine=AFFINE):
        data = mese_volume(echo_times_ms=te) if data is None else data
        p = save_nifti(np.asarray(data), tmp_path / name, affine=affine)
        if sidecar is not False:
            meta = {"EchoTime": [t / 1000 for t in te], "RepetitionTime": 3.0, "MagneticFieldStrength": 3,
                    "RefocusingFlipAngle": 180, "FlipAngle": 90, "SliceThickness": 6.0} if sidecar is None else sidecar
            (tmp_path / name.replace(".nii.gz", ".json").replace(".nii", ".json")).write_text(json.dumps(meta))
        return p

    return _make


@pytest.fixture
def bids_dataset(tmp_path):
    """``bids_dataset(motor=TEXT, participants=TEXT) -> root``: two subjects (one ALS, one control),
    sub-01 with two sessions, MESE per-echo files + IR T1 series + T1w."""
    from alsseg.io import MeseSeries, T1Series, save_nifti, write_mese_bids, write_t1_bids
    from alsseg.io.nifti import Image

    def _make(motor=None, participants=None, root_name="bids"):
        root = tmp_path / root_name
        te = np.array([10.0, 20, 30, 40])
        for sub, ses in (("01", "01"), ("01", "02"), ("02", "01")):
            ms = MeseSeries(Image(mese_volume(echo_times_ms=te), AFFINE), te, tr_ms=3000.0, field_strength_t=3.0,
                            refocus_deg=180.0, slice_thickness_mm=6.0)
            write_mese_bids(ms, root, sub, ses)
            ti = np.array([100.0, 400, 1200])
            ir = np.abs(1 - 2 * np.exp(-ti / 1400.0))[None, None, None] * np.full((6, 5, 4, 1), 800.0)
            write_t1_bids(T1Series(Image(ir.astype(np.float32), AFFINE), "IR", inversion_times_ms=ti, tr_ms=5000.0),
                          root, sub, ses)
            save_nifti(np.full((12, 10, 4), 5.0, np.float32),
                       root / f"sub-{sub}/ses-{ses}/anat/sub-{sub}_ses-{ses}_T1w.nii.gz",
                       affine=AFFINE @ np.diag([0.5, 0.5, 1, 1]))
        (root / "participants.tsv").write_text(
            participants if participants is not None else "participant_id\tgroup\tage\nsub-01\tALS\t61\nsub-02\tcontrol\t58\n")
        if motor is not False:
            (root / "phenotype").mkdir(exist_ok=True)
            (root / "phenotype" / "motor.tsv").write_text(motor if motor is not None else (
                "participant_id\tsession_id\tside\tcmap_mv\tmvic_n\n"
                "sub-01\tses-01\tR\t4.2\t150.5\n"
                "sub-01\tses-01\tL\t3.9\tn/a\n"
                "sub-01\tses-02\tR\t3.1\t120\n"
                "sub-02\tses-01\tR\t7.5\t240\n"))
        return root

    return _make
