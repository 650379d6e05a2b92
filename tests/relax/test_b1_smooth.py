"""Smooth B1: the field estimate, removal of 180°-mirror solutions, presets, the --b1 option."""

import json

import nibabel as nib
import numpy as np
import pytest

from alsseg.cli import main
from alsseg.io.errors import InputError
from alsseg.relax.acquisition import MeseAcquisition, default_profile
from alsseg.relax.b1 import B1_FIELD_METHODS, smooth_b1_field
from alsseg.relax.profiles import SLICE_PROFILE_PRESETS, parse_slice_profile, preset_profile
from alsseg.relax.t2 import EpgT2Model, two_component_signal

N = 40


def _smooth_field():
    x, y = np.meshgrid(np.linspace(-1, 1, N), np.linspace(-1, 1, N), indexing="ij")
    return 0.93 + 0.08 * x - 0.05 * y ** 2


@pytest.mark.parametrize("method", B1_FIELD_METHODS)
def test_field_ignores_a_mirror_patch(method, rng):
    truth = _smooth_field()
    b1 = truth + rng.normal(0, 0.02, truth.shape)
    b1[5:15, 20:32] = 2.28 - truth[5:15, 20:32]          # a patch on the other side of the mirror
    field = smooth_b1_field(b1, np.ones_like(b1, bool), method=method)
    assert np.nanmax(np.abs(field - truth)) < 0.04
    # 3-D input: per slice along the given axis
    vol = np.stack([b1, b1 + 0.05], axis=0)
    f3 = smooth_b1_field(vol, np.ones_like(vol, bool), method=method, slice_axis=0)
    assert np.nanmax(np.abs(f3[1] - truth - 0.05)) < 0.04


def test_smooth_fit_removes_injected_mirror_solutions(acq10, epg10, rng, rician):
    """A slice with a smooth B1 field; a patch of voxels holds the exact trains of their mirror
    solution (B1 across 180°, another water T2). The voxel fit returns the mirror; the smooth fit
    returns the field's B1 and the water T2 of the neighbours."""
    truth_b1 = _smooth_field()
    t2 = np.full((N, N), 32.0)
    ff = np.full((N, N), 0.05)
    patch = np.zeros((N, N), bool)
    patch[8:18, 10:24] = True
    # the mirror of each patch voxel: the best fit of its train with B1 confined to the far side
    far = EpgT2Model(acq10, b1_range=(1.15, 1.4))
    clean = two_component_signal(acq10, t2[patch], ff[patch], truth_b1[patch], 1000.0, dictionary=epg10.dictionary)
    mir = far.fit(clean, b1="voxel")
    assert np.all(mir.b1 > 1.15) and np.median(np.abs(mir.t2_water_ms - 32.0)) > 1.0  # a distinct solution
    t2_data, ff_data, b1_data = t2.copy(), ff.copy(), truth_b1.copy()
    t2_data[patch], ff_data[patch], b1_data[patch] = mir.t2_water_ms, mir.fat_fraction, mir.b1
    data = two_component_signal(acq10, t2_data, ff_data, b1_data, 1000.0, dictionary=epg10.dictionary)
    data = rician(data, 1000.0 / 300.0, rng)[:, :, None]          # (N, N, 1, 17), SNR 300
    voxel = epg10.fit(data, b1="voxel")
    smooth = epg10.fit(data, b1="smooth")
    vb, sb = voxel.b1[..., 0], smooth.b1[..., 0]
    assert (vb[patch] > 1.15).mean() > 0.2                         # the voxel fit jumps to the mirror
    assert not (sb > 1.15).any()
    assert np.max(np.abs(sb - truth_b1)) < 0.04 + 0.05             # the field ± the refit's tolerance
    from alsseg.relax.b1 import fit_smooth_b1

    held = fit_smooth_b1(epg10, data, np.ones(data.shape[:3], bool), b1_tolerance=0.0)
    assert np.max(np.abs(held["b1"][..., 0] - truth_b1)) < 0.04    # the field itself is the truth
    st2 = smooth.t2_water_ms[..., 0]
    vt2 = voxel.t2_water_ms[..., 0]
    # mirror solutions gone: the patch reads like its neighbours (noise-limited at SNR 300), and
    # better than the voxel fit there
    assert np.median(np.abs(st2[patch] - 32.0)) < 1.5 and np.median(np.abs(st2[~patch] - 32.0)) < 1.5
    assert abs(np.median(st2[patch]) - 32.0) < 0.6
    assert np.mean(np.abs(st2[patch] - 32.0)) < np.mean(np.abs(vt2[patch] - 32.0))
    np.testing.assert_allclose(smooth.b1_voxel, voxel.b1, atol=1e-6)   # the first pass is kept
    assert (smooth.flag[..., 0] == 0).mean() > 0.98


def test_smooth_needs_a_grid(epg10):
    y = np.ones((5, 17))
    with pytest.raises(InputError, match="b1='voxel'"):
        epg10.fit(y)
    with pytest.raises(InputError, match="unknown B1 mode"):
        epg10.fit(y, b1="median")


def test_presets_give_distinct_profiles():
    profiles = {name: preset_profile(name) for name in SLICE_PROFILE_PRESETS}
    names = list(profiles)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pa, pb = profiles[a], profiles[b]
            if pa.refocusing.size == pb.refocusing.size:
                diff = max(np.abs(pa.refocusing - pb.refocusing).max(), np.abs(pa.excitation - pb.excitation).max())
                assert diff > 0.02, (a, b)
    # the default acquisition uses the documented default preset
    np.testing.assert_array_equal(default_profile().refocusing, profiles["siemens"].refocusing)
    # and the presets change the trains (so the choice matters)
    trains = {n: two_component_signal(MeseAcquisition(10.0, 17, profile=p), 30.0, 0.0, 1.0) for n, p in profiles.items()}
    assert min(np.abs(trains[a] - trains[b]).max() for a in names for b in names if a < b) > 1e-3


def test_parse_slice_profile():
    assert parse_slice_profile("ideal").weights.size == 1
    sinc = parse_slice_profile("3,2.5,0.9")
    assert sinc.refocusing.size == 32
    erf = parse_slice_profile("1.2,0.12")
    assert erf.refocusing.size == 24
    for bad in ("ge", "1,2,3,4", "-1,0.1", "a,b"):
        with pytest.raises(InputError, match="slice-profile"):
            parse_slice_profile(bad)


@pytest.fixture
def smooth_nifti(tmp_path, acq10, epg10, rng, rician):
    truth_b1 = np.repeat(_smooth_field()[:, :, None], 2, axis=2)
    data = two_component_signal(acq10, np.full(truth_b1.shape, 30.0), 0.05, truth_b1, 1000.0,
                                dictionary=epg10.dictionary)
    data = rician(data, 5.0, rng).astype(np.float32)
    path = tmp_path / "sub-01_MESE.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([1.5, 1.5, 7.0, 1.0])), str(path))
    path.with_name("sub-01_MESE.json").write_text(json.dumps(
        {"EchoTime": (0.010 * np.arange(1, 18)).round(4).tolist(), "RepetitionTime": 5.0}))
    return path, truth_b1


def test_cli_b1_option_and_sidecar(tmp_path, smooth_nifti, capsys):
    path, truth_b1 = smooth_nifti
    out_s, out_v = tmp_path / "smooth", tmp_path / "voxel"
    assert main(["fit-t2", str(path), "--out", str(out_s), "-q"]) == 0
    assert main(["fit-t2", str(path), "--out", str(out_v), "-q", "--b1", "voxel", "--slice-profile", "siemens"]) == 0
    b1s = nib.load(str(out_s / "sub-01_desc-b1_T2map.nii.gz")).get_fdata()
    b1v = nib.load(str(out_s / "sub-01_desc-b1voxel_T2map.nii.gz")).get_fdata()
    err_s, err_v = np.abs(b1s - truth_b1), np.abs(b1v - truth_b1)
    assert np.median(err_s) < 0.025 and np.max(err_s) < 0.15 and np.percentile(err_v, 90) > 0.3  # mirrors
    assert np.mean(err_s) < 0.5 * np.mean(err_v)
    # the smooth map is smoother than the voxel map (its neighbour differences are smaller)
    assert np.abs(np.diff(b1s, axis=0)).mean() < 0.5 * np.abs(np.diff(b1v, axis=0)).mean()
    side = json.loads((out_s / "sub-01_desc-b1_T2map.json").read_text())
    assert side["B1Mode"] == "smooth" and "smooth field" in side["Description"]
    assert not (out_v / "sub-01_desc-b1voxel_T2map.nii.gz").exists()
    assert json.loads((out_v / "sub-01_desc-b1_T2map.json").read_text())["B1Mode"] == "voxel"
    np.testing.assert_allclose(nib.load(str(out_v / "sub-01_desc-b1_T2map.nii.gz")).get_fdata(), b1v, atol=1e-6)
    # switching --b1 in a finished folder refits (not "up to date"); the same mode again does not
    assert main(["fit-t2", str(path), "--out", str(out_s), "-q", "--b1", "voxel"]) == 0
    assert json.loads((out_s / "sub-01_desc-b1_T2map.json").read_text())["B1Mode"] == "voxel"
    capsys.readouterr()
    assert main(["fit-t2", str(path), "--out", str(out_s), "--b1", "voxel"]) == 0
    assert "up to date" in capsys.readouterr().out
    # bad choices: one line, exit 2, nothing written
    capsys.readouterr()
    bad = tmp_path / "bad"
    assert main(["fit-t2", str(path), "--out", str(bad), "--b1", "wobbly"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("alsseg: error:") and "--b1" in err[0]
    assert main(["fit-t2", str(path), "--out", str(bad), "--slice-profile", "ge"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("alsseg: error:") and "slice-profile" in err[0]
    assert not bad.exists()


def test_run_parser_takes_b1_and_preset():
    from alsseg.cli import build_parser
    from alsseg.cli.pipeline_cmd import _options

    args = build_parser().parse_args(["run", "sess", "--out", "o", "--b1", "voxel", "--slice-profile", "sinc-tbw2"])
    opts = _options(args)
    assert opts.b1 == "voxel" and opts.slice_profile == "sinc-tbw2"
    assert _options(build_parser().parse_args(["run", "sess", "--out", "o"])).b1 == "smooth"
    with pytest.raises(InputError):
        _options(build_parser().parse_args(["run", "sess", "--out", "o", "--slice-profile", "philips"]))
