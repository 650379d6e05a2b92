"""Shared fixtures: small synthetic NIfTIs written on demand, and the real scan in ../shared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_MESE = REPO.parent / "shared" / "data" / "mese-leg-3t"


@pytest.fixture
def shared_mese() -> Path:
    """The real 3 T MESE DICOM folder; skips the test where ../shared is absent."""
    if not SHARED_MESE.is_dir():
        pytest.skip("../shared/data/mese-leg-3t is not present")
    return SHARED_MESE


@pytest.fixture
def write_nifti(tmp_path):
    """``write_nifti(data, name="img.nii.gz", affine=None) -> Path`` in a temporary folder."""
    from alsseg.io import save_nifti

    def _write(data, name="img.nii.gz", affine=None):
        affine = np.diag([1.5, 1.5, 7.0, 1.0]) if affine is None else affine
        return save_nifti(np.asarray(data), tmp_path / name, affine=affine)

    return _write
