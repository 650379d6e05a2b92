"""The README's Python API blocks run as written (in a folder holding the files they name)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Python API"):]
    section = section[:section.index("\n## ", 4)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


@pytest.fixture
def calf_files(tmp_path, monkeypatch):
    """``calf_T1w.nii.gz`` and ``mese.nii.gz`` (+ its EchoTime sidecar) of a synthetic calf."""
    import nibabel as nib

    from alsseg.synth import Grid, make_subject, render_session

    subject = make_subject(3)
    grid = Grid.axial((160, 100, 3), (2.5, 2.5, 10.0),
                      centre_mm=(0.0, 0.0, subject.z_ankle_mm + 0.6 * subject.leg_length_mm))
    session = render_session(subject, grid, snr=80)
    nib.save(nib.Nifti1Image(session.t1w.astype(np.float32), grid.affine), tmp_path / "calf_T1w.nii.gz")
    nib.save(nib.Nifti1Image(session.mese.astype(np.float32), grid.affine), tmp_path / "mese.nii.gz")
    echo_times_s = [round(0.01 * (k + 1), 4) for k in range(session.mese.shape[-1])]
    (tmp_path / "mese.json").write_text(json.dumps({"EchoTime": echo_times_s, "RepetitionTime": 4.0}))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_has_three_api_blocks():
    assert len(_blocks()) == 3


@pytest.mark.slow
def test_readme_api_blocks_run(calf_files, capsys):
    blocks = _blocks()
    ns: dict = {}
    exec(compile(blocks[0], "README block 1", "exec"), ns)
    np.testing.assert_allclose(ns["fit"].t2_water_ms, [30.0, 35.0, 45.0], atol=0.5)
    exec(compile(blocks[1], "README block 2", "exec"), {})
    import nibabel as nib

    dseg = np.asarray(nib.load(calf_files / "calf_dseg.nii.gz").dataobj)
    assert {1, 11} <= set(np.unique(dseg).tolist())
    ns = {}
    exec(compile(blocks[2], "README block 3", "exec"), ns)
    table = ns["table"]
    assert {"R", "L"} <= set(table["side"]) and table["t2_water_ms"].notna().sum() >= 10
    assert table["t2_water_ms"].median() == pytest.approx(30.0, abs=5.0)
