"""Input and output: NIfTI, DICOM, BIDS; validation; atomic writes.

Names are imported on first use (PEP 562), so ``import alsseg.io.errors`` — which the CLI does
before any verb runs — pulls in neither numpy, nibabel, pydicom nor pandas, and
``alsseg --help`` stays instant. ``from alsseg.io import load_mese`` works as usual.

Modules: :mod:`~alsseg.io.nifti` (Image, NIfTI), :mod:`~alsseg.io.acquisition` (the MESE and T1
series types), :mod:`~alsseg.io.series` (loading them), :mod:`~alsseg.io.write_series` (writing
them), :mod:`~alsseg.io.from_dicom`, :mod:`~alsseg.io.bids_names` (BIDS file names),
:mod:`~alsseg.io.sidecar` (JSON sidecars), :mod:`~alsseg.io.dicom` (DICOM folders, with
:mod:`~alsseg.io.dicom_scan`, :mod:`~alsseg.io.dicom_frames`, :mod:`~alsseg.io.dicom_header`), :mod:`~alsseg.io.bids`
(datasets, participants, motor table), :mod:`~alsseg.io.validate` (checks),
:mod:`~alsseg.io.convert` (DICOM → NIfTI), :mod:`~alsseg.io.summary` (``alsseg info``),
:mod:`~alsseg.io.case` (an image with its label map), :mod:`~alsseg.io.maps`
(parameter maps as derivative files), :mod:`~alsseg.io.atomic`,
:mod:`~alsseg.io.errors`.
"""

from __future__ import annotations

from alsseg._lazy import lazy_exports

_WHERE = {
    "alsseg.io.atomic": ("atomic_path", "refuse_overwrite_of_inputs", "write_bytes_atomic", "write_text_atomic"),
    "alsseg.io.errors": ("InputError",),
    "alsseg.io.case": ("Case",),
    "alsseg.io.maps": ("write_maps", "map_paths", "bids_prefix"),
    "alsseg.io.nifti": ("Image", "load_nifti", "require_same_grid", "same_grid", "save_nifti"),
    "alsseg.io.acquisition": ("MeseSeries", "T1Series"),
    "alsseg.io.series": ("load_anatomical", "load_mese", "load_t1_series"),
    "alsseg.io.bids_names": ("bids_path", "parse_bids_name"),
    "alsseg.io.sidecar": ("read_sidecar", "sidecar_path", "write_sidecar"),
    "alsseg.io.write_series": ("write_mese_bids", "write_t1_bids", "write_volumes"),
    "alsseg.io.from_dicom": ("mese_from_dicom", "t1_from_dicom"),
    "alsseg.io.validate": ("InputWarning", "check_echo_times", "check_voxels", "check_ndim", "check_outputs",
                           "times_to_ms"),
    "alsseg.io.bids": ("BidsDataset", "Session", "read_motor_table", "read_participants", "find_session_inputs"),
    "alsseg.io.dicom": ("DicomVolumes", "read_dicom_series", "list_series"),
    "alsseg.io.convert": ("convert_dicom",),
    "alsseg.io.summary": ("describe", "format_description"),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
