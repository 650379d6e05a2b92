"""Input and output: NIfTI, DICOM, BIDS; validation; atomic writes."""

from alsseg.io.atomic import atomic_path, refuse_overwrite_of_inputs, write_bytes_atomic, write_text_atomic
from alsseg.io.errors import InputError
from alsseg.io.nifti import Image, load_nifti, require_same_grid, same_grid, save_nifti

__all__ = [
    "Image", "InputError", "atomic_path", "load_nifti", "refuse_overwrite_of_inputs",
    "require_same_grid", "same_grid", "save_nifti", "write_bytes_atomic", "write_text_atomic",
]
