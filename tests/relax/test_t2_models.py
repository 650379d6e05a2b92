"""T2 models: two-component EPG accuracy (bias and noise targets), mono-exponential baselines,
voxel failures flagged, bad input refused."""

import numpy as np
import pytest

from alsseg.io.errors import InputError
from alsseg.relax.acquisition import MeseAcquisition
from alsseg.relax.epg import SliceProfile, cpmg_echoes
from alsseg.relax.mono import MonoExpT2Model
from alsseg.relax.t2 import FLAG_INVALID_DATA, EpgT2Model, two_component_signal


def _grid():
    t2, ff, b1 = np.meshgrid(np.linspace(20, 60, 6), np.linspace(0, 0.7, 6), np.linspace(0.6, 1.2, 7),
                             indexing="ij")
    return t2.ravel(), ff.ravel(), b1.ravel()


def test_forward_model_pure_water_is_scaled_epg(acq10):
    sig = two_component_signal(acq10, [35.0], [0.0], [0.9], m0=2.0)
    ref = cpmg_echoes([35.0], acq10.water_t1_ms, [0.9], 10.0, 17, profile=acq10.profile)
    np.testing.assert_allclose(sig, 2.0 * ref * acq10.recovery(acq10.water_t1_ms), rtol=1e-12)


def test_forward_model_dictionary_path_matches_exact(acq10, epg10, rng):
    t2, ff, b1 = rng.uniform(20, 60, 50), rng.uniform(0, 0.7, 50), rng.uniform(0.6, 1.2, 50)
    exact = two_component_signal(acq10, t2, ff, b1)
    fast = two_component_signal(acq10, t2, ff, b1, dictionary=epg10.dictionary)
    np.testing.assert_allclose(fast, exact, rtol=2e-4, atol=2e-5)
    # shape broadcasting: (2, 3) parameter maps -> (2, 3, 17)
    assert two_component_signal(acq10, np.full((2, 3), 30.0), 0.1, 1.0).shape == (2, 3, 17)


def test_epg_fit_is_unbiased_on_noiseless_grid(acq10, epg10):
    """Issue target: |ΔT2| ≤ 0.5 ms, |ΔFF| ≤ 0.01, |ΔB1| ≤ 0.02 over the whole grid."""
    t2, ff, b1 = _grid()
    y = two_component_signal(acq10, t2, ff, b1, m0=1000.0)  # exact EPG, not the fit's table
    fit = epg10.fit(y, b1="voxel")
    assert np.abs(fit.t2_water_ms - t2).max() <= 0.5
    assert np.abs(fit.fat_fraction - ff).max() <= 0.01
    assert np.abs(fit.b1 - b1).max() <= 0.02
    assert fit.success.all()
    np.testing.assert_allclose(fit.m0, 1000.0, rtol=0.02)
    assert (fit.r2 > 0.9999).all()


def test_epg_fit_is_not_quantised_to_the_dictionary(acq10, epg10):
    t2 = np.array([30.0, 30.3, 30.6, 30.9])  # between nodes of the 3 % grid
    y = two_component_signal(acq10, t2, 0.1, 0.95, dictionary=epg10.dictionary)
    fit = epg10.fit(y, b1="voxel")
    np.testing.assert_allclose(fit.t2_water_ms, t2, atol=0.02)
    assert np.all(np.diff(fit.t2_water_ms) > 0.2)


def test_epg_fit_noise_targets(acq10, epg10, rng, rician):
    """Issue target at Rician SNR 100 on echo 1: median |ΔT2| ≤ 2 ms, median |ΔFF| ≤ 0.03."""
    n = 1500
    t2, ff, b1 = rng.uniform(20, 60, n), rng.uniform(0, 0.7, n), rng.uniform(0.6, 1.2, n)
    y0 = two_component_signal(acq10, t2, ff, b1, m0=1000.0, dictionary=epg10.dictionary)
    y = rician(y0, y0[:, :1] / 100.0, rng)
    fit = epg10.fit(y, b1="voxel", n_jobs=2, chunk_voxels=500)
    assert np.median(np.abs(fit.t2_water_ms - t2)) <= 2.0
    assert np.median(np.abs(fit.fat_fraction - ff)) <= 0.03


def test_predict_reproduces_noiseless_data(acq10, epg10):
    y = two_component_signal(acq10, [25.0, 45.0], [0.05, 0.5], [1.05, 0.75], m0=[500.0, 800.0])
    fit = epg10.fit(y, b1="voxel")
    np.testing.assert_allclose(fit.predict(), y, rtol=1e-3, atol=0.5)


def test_threads_give_identical_maps(acq10, epg10, rng, rician):
    y = rician(two_component_signal(acq10, rng.uniform(20, 60, 300), 0.2, 1.0, 1000.0,
                                    dictionary=epg10.dictionary), 5.0, rng)
    a = epg10.fit(y, b1="voxel", n_jobs=1, chunk_voxels=64)
    b = epg10.fit(y, b1="voxel", n_jobs=2, chunk_voxels=64)
    np.testing.assert_array_equal(a.t2_water_ms, b.t2_water_ms)


def test_mask_and_maps_shape(acq10, epg10):
    y = two_component_signal(acq10, np.full((3, 4, 2), 30.0), 0.1, 1.0, 100.0)
    mask = np.zeros((3, 4, 2), bool)
    mask[1, 2, 0] = mask[0, 0, 1] = True
    fit = epg10.fit(y, mask, b1="voxel")
    assert fit.t2_water_ms.shape == (3, 4, 2)
    assert np.isfinite(fit.t2_water_ms[mask]).all() and np.isnan(fit.t2_water_ms[~mask]).all()
    assert fit.success.sum() == 2


def test_bad_voxels_are_flagged_not_raised(acq10, epg10):
    good = two_component_signal(acq10, [30.0], [0.1], [1.0], 100.0)[0]
    y = np.stack([good, np.zeros(17), -good, np.full(17, np.nan), good])
    fit = epg10.fit(y, b1="voxel")
    assert fit.success.tolist() == [True, False, False, False, True]
    assert np.all(fit.flag[1:4] & FLAG_INVALID_DATA)
    assert np.isnan(fit.t2_water_ms[1:4]).all()
    assert abs(fit.t2_water_ms[0] - 30.0) < 0.1


def test_mono_exponential_recovers_pure_exponentials():
    te = 10.0 * np.arange(1, 18)
    y = np.array([1000 * np.exp(-te / 35.0), 500 * np.exp(-te / 80.0) + 40.0])
    for method in ("loglinear", "nlls"):
        fit = MonoExpT2Model(te, method).fit(y[:1])
        assert fit.t2_ms[0] == pytest.approx(35.0, rel=1e-6)
        assert fit.m0[0] == pytest.approx(1000.0, rel=1e-5)
    fit = MonoExpT2Model(te, "nlls_offset").fit(y)
    np.testing.assert_allclose(fit.t2_ms, [35.0, 80.0], rtol=1e-5)
    np.testing.assert_allclose(fit.offset, [0.0, 40.0], atol=1e-3)
    # skip_first on an exponential changes nothing; on a train with a low echo 1 it removes the dip
    dipped = y[:1].copy()
    dipped[0, 0] *= 0.8
    assert MonoExpT2Model(te, "nlls", skip_first=True).fit(dipped).t2_ms[0] == pytest.approx(35.0, rel=1e-6)


def test_mono_noise_floor_correction_reduces_bias(rng, rician):
    te = 10.0 * np.arange(1, 18)
    y0 = 200 * np.exp(-te / 40.0)
    sigma = 10.0
    y = rician(np.tile(y0, (400, 1)), sigma, rng)
    plain = np.median(MonoExpT2Model(te, "nlls").fit(y).t2_ms)
    corrected = np.median(MonoExpT2Model(te, "nlls", noise_floor=sigma).fit(y).t2_ms)
    assert plain > 42.0  # the noise floor lengthens the apparent T2
    assert abs(corrected - 40.0) < abs(plain - 40.0)


def test_mono_is_biased_where_epg_is_not(acq10, epg10):
    """DESIGN §2: water T2 35 ms reads much longer mono-exponentially, more with fat."""
    y = two_component_signal(acq10, [35.0, 35.0], [0.0, 0.4], [1.0, 1.0])
    mono = MonoExpT2Model(acq10, "loglinear").fit(y).t2_ms
    assert mono[0] > 40.0 and mono[1] > 60.0
    np.testing.assert_allclose(epg10.fit(y, b1="voxel").t2_water_ms, 35.0, atol=0.05)


# ------------------------------------------------------------------ bad input
def test_fewer_echoes_than_parameters_refused():
    with pytest.raises(InputError, match="cannot determine"):
        EpgT2Model(MeseAcquisition(10.0, 4))
    with pytest.raises(InputError, match="cannot determine"):
        MonoExpT2Model([10.0, 20.0, 30.0], "nlls_offset")


def test_non_uniform_echo_spacing_refused_for_epg():
    with pytest.raises(InputError, match="uniformly spaced"):
        MeseAcquisition.from_echo_times([10, 20, 35, 40, 50], path="x.nii.gz")
    # the mono model accepts any echo times
    te = np.array([10.0, 20.0, 35.0, 40.0, 50.0])
    assert MonoExpT2Model(te, "nlls").fit(100 * np.exp(-te / 30.0)[None]).t2_ms[0] == pytest.approx(30.0)


@pytest.mark.parametrize("kwargs,match", [
    ({"fat_t2_ms": 0.0}, "fat T2"),
    ({"fat_t2_ms": -5.0}, "fat T2"),
    ({"water_t1_ms": 0.0}, "water T1"),
    ({"tr_ms": 50.0}, "TR"),
    ({"echo_spacing_ms": 0.0}, "echo spacing"),
])
def test_impossible_acquisition_overrides_refused(kwargs, match):
    base = dict(echo_spacing_ms=10.0, n_echoes=17)
    with pytest.raises(InputError, match=match):
        MeseAcquisition(**{**base, **kwargs})


@pytest.mark.parametrize("kwargs,match", [
    ({"b1_range": (1.2, 0.8)}, "B1 range"),
    ({"b1_range": (1.0, 1.0)}, "B1 range"),
    ({"t2_range_ms": (50.0, 20.0)}, "T2 range"),
    ({"t2_range_ms": (10.0, 200.0)}, "fat T2"),
])
def test_impossible_ranges_refused(acq10, kwargs, match):
    with pytest.raises(InputError, match=match):
        EpgT2Model(acq10, **kwargs)


def test_wrong_echo_count_or_mask_grid_refused(acq10, epg10):
    with pytest.raises(InputError, match="echoes"):
        epg10.fit(np.ones((4, 16)))
    with pytest.raises(InputError, match="mask shape"):
        epg10.fit(np.ones((2, 3, 17)), mask=np.ones((3, 2), bool))


def test_ideal_profile_acquisition_fits_too():
    acq = MeseAcquisition(8.0, 12, profile=SliceProfile.ideal())
    model = EpgT2Model(acq, b1_range=(0.6, 0.99))
    y = two_component_signal(acq, [28.0], [0.2], [0.8])
    fit = model.fit(y, b1="voxel")
    assert fit.t2_water_ms[0] == pytest.approx(28.0, abs=0.1)
    assert fit.b1[0] == pytest.approx(0.8, abs=0.01)
