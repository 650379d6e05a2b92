"""Input and output: NIfTI, DICOM, BIDS; validation; atomic writes.

Names are imported on first use (PEP 562), so ``import alsseg.io.errors`` — which the CLI does
before any verb runs — pulls in neither numpy, nibabel, pydicom nor pandas, and
``alsseg --help`` stays instant. ``from alsseg.io import load_mese`` works as usual.

Modules: :mod:`~alsseg.io.nifti` (Image, NIfTI), :mod:`~alsseg.io.series` (MESE / T1 series,
BIDS names, sidecars, writers), :mod:`~alsseg.io.dicom` (DICOM folders), :mod:`~alsseg.io.bids`
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
    "alsseg.io.series": ("MeseSeries", "T1Series", "bids_path", "load_anatomical", "load_mese", "load_t1_series",
                         "parse_bids_name", "read_sidecar", "sidecar_path", "write_mese_bids", "write_sidecar",
                         "write_t1_bids", "write_volumes", "mese_from_dicom", "t1_from_dicom"),
    "alsseg.io.validate": ("InputWarning", "check_echo_times", "check_voxels", "check_ndim", "check_outputs",
                           "times_to_ms"),
    "alsseg.io.bids": ("BidsDataset", "Session", "read_motor_table", "read_participants", "find_session_inputs"),
    "alsseg.io.dicom": ("DicomVolumes", "read_dicom_series", "list_series"),
    "alsseg.io.convert": ("convert_dicom",),
    "alsseg.io.summary": ("describe", "format_description"),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
