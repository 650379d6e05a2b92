"""Whole-volume fitting and the ``fit-t2`` / ``fit-t1`` verbs on small synthetic NIfTIs."""

import json

import nibabel as nib
import numpy as np
import pytest

from alsseg.cli import main
from alsseg.relax.t1 import ir_signal
from alsseg.relax.t2 import two_component_signal

AFFINE = np.array([[-1.5, 0, 0, 90], [0, 1.5, 0, -100], [0, 0, 7.0, -30], [0, 0, 0, 1]])


@pytest.fixture
def mese_nifti(tmp_path, acq10, epg10):
    """A 6×5×2 MESE (ESP 10 ms, 17 echoes) with known maps; returns (path, truth dict)."""
    rng = np.random.default_rng(3)
    shape = (6, 5, 2)
    t2 = rng.uniform(22, 55, shape)
    ff = rng.uniform(0, 0.6, shape)
    b1 = rng.uniform(0.7, 1.15, shape)
    data = two_component_signal(acq10, t2, ff, b1, 1000.0, dictionary=epg10.dictionary)
    data[0, 0, 0] = 0.0  # background voxel
    path = tmp_path / "sub-01_ses-01_MESE.nii.gz"
    nib.save(nib.Nifti1Image(data.astype(np.float32), AFFINE), str(path))
    side = {"EchoTime": (0.010 * np.arange(1, 18)).round(4).tolist(), "RepetitionTime": 5.0,
            "MagneticFieldStrength": 3.0}
    path.with_name("sub-01_ses-01_MESE.json").write_text(json.dumps(side))
    return path, {"t2": t2, "ff": ff, "b1": b1}


def test_fit_t2_cli_writes_bids_maps_on_source_grid(tmp_path, mese_nifti, capsys):
    path, truth = mese_nifti
    out = tmp_path / "derivatives"
    assert main(["fit-t2", str(path), "--out", str(out), "--model", "both", "-q", "-j", "2"]) == 0
    names = sorted(p.name for p in out.glob("*.nii.gz"))
    for desc in ("water", "fatfraction", "b1", "m0", "r2", "residual", "flag", "mono", "monor2", "monoflag"):
        assert f"sub-01_ses-01_desc-{desc}_T2map.nii.gz" in names
    water = nib.load(str(out / "sub-01_ses-01_desc-water_T2map.nii.gz"))
    np.testing.assert_allclose(water.affine, AFFINE)
    t2 = np.asarray(water.dataobj)
    fitted = np.isfinite(t2)
    assert not fitted[0, 0, 0] and fitted.sum() == t2.size - 1
    np.testing.assert_allclose(t2[fitted], truth["t2"][fitted], atol=0.5)
    ff = np.asarray(nib.load(str(out / "sub-01_ses-01_desc-fatfraction_T2map.nii.gz")).dataobj)
    np.testing.assert_allclose(ff[fitted], truth["ff"][fitted], atol=0.01)
    mono = np.asarray(nib.load(str(out / "sub-01_ses-01_desc-mono_T2map.nii.gz")).dataobj)
    assert np.nanmedian(mono - t2) > 3.0  # the mono-exponential reads longer
    meta = json.loads((out / "sub-01_ses-01_desc-water_T2map.json").read_text())
    assert meta["Units"] == "ms" and meta["Acquisition"]["echo_spacing_ms"] == pytest.approx(10.0)
    assert capsys.readouterr().out == ""
    # a second run finds the outputs up to date and does nothing
    before = (out / "sub-01_ses-01_desc-water_T2map.nii.gz").stat().st_mtime_ns
    assert main(["fit-t2", str(path), "--out", str(out), "-q"]) == 0
    assert (out / "sub-01_ses-01_desc-water_T2map.nii.gz").stat().st_mtime_ns == before


def test_fit_t2_with_mask_and_overrides(tmp_path, mese_nifti):
    path, truth = mese_nifti
    mask = np.zeros((6, 5, 2), np.uint8)
    mask[2:4, 1:3, 1] = 1
    mpath = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(mask, AFFINE), str(mpath))
    out = tmp_path / "o"
    assert main(["fit-t2", str(path), "--mask", str(mpath), "--out", str(out), "-q", "--fat-t2-ms", "140",
                 "--prefix", "x"]) == 0
    t2 = np.asarray(nib.load(str(out / "x_desc-water_T2map.nii.gz")).dataobj)
    assert np.isfinite(t2).sum() == 4 and np.isfinite(t2[mask > 0]).all()
    meta = json.loads((out / "x_desc-water_T2map.json").read_text())
    assert meta["Acquisition"]["fat_t2_ms"] == 140.0


def test_fit_t2_mask_on_another_grid_is_refused(tmp_path, mese_nifti, capsys):
    path, _ = mese_nifti
    mpath = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((6, 5, 3), np.uint8), AFFINE), str(mpath))
    out = tmp_path / "o"
    assert main(["fit-t2", str(path), "--mask", str(mpath), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("alsseg: error:") and "mask.nii.gz" in err[0]
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("args,match", [
    (["--fat-t2-ms", "0"], "--fat-t2-ms: 0 must be a finite number > 0"),
    (["--b1-range", "1.2", "0.8"], "b1-range"),
    (["--tr-ms", "20"], "TR"),
])
def test_fit_t2_impossible_overrides_exit_2(tmp_path, mese_nifti, capsys, args, match):
    path, _ = mese_nifti
    assert main(["fit-t2", str(path), "--out", str(tmp_path / "o"), "-q", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err


def test_fit_t2_non_uniform_echoes_refused_for_epg_but_mono_runs(tmp_path, capsys):
    te = np.array([10.0, 20.0, 35.0, 50.0, 65.0, 80.0])
    data = (1000 * np.exp(-te / 40.0))[None, None, None, :] * np.ones((3, 3, 1, 1))
    path = tmp_path / "t.nii.gz"
    nib.save(nib.Nifti1Image(data.astype(np.float32), AFFINE), str(path))
    (tmp_path / "t.json").write_text(json.dumps({"EchoTime": (te / 1000).tolist(), "RepetitionTime": 3.0}))
    assert main(["fit-t2", str(path), "--out", str(tmp_path / "o"), "-q"]) == 2
    assert "uniformly spaced" in capsys.readouterr().err
    assert main(["fit-t2", str(path), "--out", str(tmp_path / "m"), "-q", "--model", "mono"]) == 0
    mono = np.asarray(nib.load(str(tmp_path / "m" / "t_desc-mono_T2map.nii.gz")).dataobj)
    np.testing.assert_allclose(mono, 40.0, rtol=1e-4)


def test_fit_t2_refuses_to_overwrite_its_input(tmp_path, mese_nifti, capsys):
    path, _ = mese_nifti
    import shutil
    victim = tmp_path / "in" / "x_desc-water_T2map.nii.gz"
    victim.parent.mkdir()
    shutil.copy(path, victim)
    shutil.copy(path.with_name("sub-01_ses-01_MESE.json"), victim.with_name("x_desc-water_T2map.json"))
    before = victim.read_bytes()
    assert main(["fit-t2", str(victim), "--out", str(victim.parent), "--prefix", "x", "-q"]) == 2
    assert victim.read_bytes() == before


def test_fit_t1_cli_inversion_recovery(tmp_path):
    ti = np.array([50.0, 150.0, 400.0, 800.0, 1500.0, 3000.0])
    t1 = np.linspace(300, 1800, 12).reshape(4, 3, 1)
    data = ir_signal(ti, t1, 1000.0)
    path = tmp_path / "ir.nii.gz"
    nib.save(nib.Nifti1Image(data.astype(np.float32), AFFINE), str(path))
    (tmp_path / "ir.json").write_text(json.dumps({"InversionTime": (ti / 1000).tolist(), "RepetitionTime": 6.0}))
    out = tmp_path / "o"
    assert main(["fit-t1", str(path), "--out", str(out), "-q"]) == 0
    m = nib.load(str(out / "ir_T1map.nii.gz"))
    np.testing.assert_allclose(m.affine, AFFINE)
    np.testing.assert_allclose(np.asarray(m.dataobj), t1, rtol=1e-3)
    assert (out / "ir_desc-efficiency_T1map.nii.gz").exists()


def test_fit_t2_volume_api_accepts_a_series(mese_nifti, acq10):
    from alsseg.io import load_mese
    from alsseg.relax.volume import fit_t2_volume

    path, truth = mese_nifti
    maps = fit_t2_volume(load_mese(path), progress=False, n_jobs=1)
    assert set(maps) >= {"water", "fatfraction", "b1", "m0", "r2", "flag"}
    assert maps["water"].shape == (6, 5, 2)
    np.testing.assert_allclose(maps["b1"].data[1:, 1:], truth["b1"][1:, 1:], atol=0.02)


def test_fit_t2_calibrates_fat_t2_from_a_fat_mask(tmp_path, acq10, capsys):
    from alsseg.relax.epg import cpmg_echoes

    rng = np.random.default_rng(9)
    data = np.zeros((6, 8, 1, 17))
    fat = np.zeros((6, 8, 1), bool)
    fat[:, :4] = True
    sig = cpmg_echoes([135.0], acq10.fat_t1_ms, [0.9], 10.0, 17, profile=acq10.profile)[0] * 1000.0
    data[fat] = np.abs(sig + rng.normal(0, 3, (fat.sum(), 17)))
    data[~fat] = two_component_signal(acq10, 30.0, 0.05, 0.9, 1000.0)
    path = tmp_path / "f.nii.gz"
    nib.save(nib.Nifti1Image(data.astype(np.float32), AFFINE), str(path))
    (tmp_path / "f.json").write_text(json.dumps({"EchoTime": (0.01 * np.arange(1, 18)).tolist(),
                                                 "RepetitionTime": 5.0}))
    mpath = tmp_path / "fat.nii.gz"
    nib.save(nib.Nifti1Image(fat.astype(np.uint8), AFFINE), str(mpath))
    assert main(["fit-t2", str(path), "--fat-mask", str(mpath), "--out", str(tmp_path / "o")]) == 0
    assert "fat T2 calibrated on 24 voxels" in capsys.readouterr().out
    meta = json.loads((tmp_path / "o" / "f_desc-water_T2map.json").read_text())
    assert meta["Acquisition"]["fat_t2_ms"] == pytest.approx(135.0, abs=2.0)
    assert main(["fit-t2", str(path), "--fat-mask", str(mpath), "--fat-t2-ms", "140", "--force",
                 "--out", str(tmp_path / "o"), "-q"]) == 2


def test_fit_t1_volume_vfa_with_b1_map_and_sr():
    from alsseg.io import Image, T1Series
    from alsseg.io.errors import InputError
    from alsseg.relax.t1 import sr_signal, vfa_signal
    from alsseg.relax.volume import fit_t1_volume

    t1 = np.linspace(400, 1600, 12).reshape(3, 4, 1)
    b1 = np.linspace(0.8, 1.15, 12).reshape(3, 4, 1)
    fa = np.array([3.0, 8.0, 15.0, 25.0])
    vfa = T1Series(image=Image(vfa_signal(fa, 15.0, t1, 800.0, b1).astype(np.float32), AFFINE), kind="VFA",
                   flip_angles_deg=fa, tr_ms=15.0)
    maps = fit_t1_volume(vfa, b1=b1, progress=False, n_jobs=1)
    np.testing.assert_allclose(maps["T1"].data, t1, rtol=1e-3)
    with pytest.raises(InputError, match="B1 map shape"):
        fit_t1_volume(vfa, b1=np.ones((3, 3, 1)), progress=False)
    tr = np.array([300.0, 800.0, 2000.0, 5000.0])
    sr = T1Series(image=Image(sr_signal(tr, t1, 500.0).astype(np.float32), AFFINE), kind="SR",
                  repetition_times_ms=tr)
    np.testing.assert_allclose(fit_t1_volume(sr, progress=False)["T1"].data, t1, rtol=1e-3)
