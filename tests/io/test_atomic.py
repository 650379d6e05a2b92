import os
import stat

import numpy as np
import pytest

from alsseg.io import InputError, refuse_overwrite_of_inputs, save_nifti, write_text_atomic
from alsseg.io.atomic import atomic_path


def test_atomic_write_leaves_no_temporary_on_failure(tmp_path):
    target = tmp_path / "out.tsv"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_outputs_get_ordinary_permissions(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    text = write_text_atomic(tmp_path / "a.txt", "x")
    nii = save_nifti(np.zeros((2, 2, 2), np.float32), tmp_path / "b.nii.gz", affine=np.eye(4))
    for p in (text, nii):
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask


def test_output_equal_to_input_is_refused(tmp_path):
    src = tmp_path / "in.nii.gz"
    src.write_bytes(b"data")
    with pytest.raises(InputError, match="refusing to overwrite an input"):
        refuse_overwrite_of_inputs([tmp_path / "." / "in.nii.gz"], [src])
    refuse_overwrite_of_inputs([tmp_path / "out.nii.gz"], [src])
