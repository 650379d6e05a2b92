"""Rendering: EPG-consistent MESE (fit returns the truth), noise, IR, anatomical and random contrasts."""

from __future__ import annotations

import numpy as np
import pytest

from alsseg.synth import (
    CONTRASTS, Grid, IrProtocol, MeseProtocol, add_rician_noise, ir_signal, make_subject, mese_signal,
    render_contrast, render_tissues, true_maps,
)
from alsseg.synth.anatomy import FAT_T1_MS, MUSCLE, MUSCLE_T1_MS


@pytest.fixture(scope="module")
def diseased():
    subj = make_subject(5, disease=0.6)
    grid = Grid.axial((150, 90, 3), (2.5, 2.5, 7.0))
    return subj, grid, render_tissues(subj, grid)


def test_noiseless_mese_fitted_with_the_epg_model_returns_true_t2_ff_b1(diseased):
    from alsseg.relax.t2 import EpgT2Model

    subj, grid, tv = diseased
    proto = MeseProtocol()
    sig = mese_signal(subj, tv, proto, bias=False)
    maps = true_maps(subj, tv)
    pure = (tv.fractions[..., MUSCLE] > 0.999) & (tv.label > 0)
    assert pure.sum() > 500
    fit = EpgT2Model(proto.acquisition(), t2_range_ms=(10, 100)).fit_voxels(sig[pure])
    t2, ff = maps["t2_water_ms"][pure], maps["fat_fraction"][pure]
    assert t2.max() - t2.min() > 10 and ff.max() > 0.15  # a real range of disease is tested
    np.testing.assert_allclose(fit["t2_water_ms"], t2, atol=0.05)
    np.testing.assert_allclose(fit["fat_fraction"], ff, atol=0.002)
    np.testing.assert_allclose(fit["b1"], maps["b1"][pure], atol=0.005)
    np.testing.assert_allclose(fit["m0"], maps["m0"][pure], rtol=1e-3)


def test_muscle_signal_matches_the_exact_epg_forward_model(diseased):
    """The dictionary interpolation equals a direct EPG simulation (two pools, recovery)."""
    subj, grid, tv = diseased
    proto = MeseProtocol(n_echoes=12, echo_spacing_ms=9.0, tr_ms=3000.0)
    sig = mese_signal(subj, tv, proto, bias=False)
    pure = np.argwhere((tv.fractions[..., MUSCLE] > 0.999) & (tv.label > 0))[:40]
    i, j, k = pure.T
    t2, ff, b1 = tv.t2_water_ms[i, j, k], tv.fat_fraction_muscle[i, j, k], tv.b1[i, j, k]
    exact = ((1 - ff)[:, None] * proto.echoes(t2, MUSCLE_T1_MS, b1)
             + ff[:, None] * proto.echoes(np.full_like(t2, 151.0), FAT_T1_MS, b1))
    np.testing.assert_allclose(sig[i, j, k], exact, rtol=2e-4, atol=2e-5)
    # stimulated echoes: the slice profile makes echo 2 exceed echo 1 × exp(-ESP/T2)
    assert np.all(exact[:, 1] / exact[:, 0] > np.exp(-9.0 / t2) * 0.98)


def test_rician_noise_has_the_requested_sigma():
    rng = np.random.default_rng(0)
    zero = np.zeros(200_000, np.float32)
    noisy = add_rician_noise(zero, 3.0, rng)
    assert noisy.mean() == pytest.approx(3.0 * np.sqrt(np.pi / 2), rel=0.01)  # Rayleigh mean
    big = add_rician_noise(np.full(200_000, 100.0, np.float32), 3.0, rng)
    assert big.std() == pytest.approx(3.0, rel=0.02)


def test_ir_series_follows_the_two_pool_inversion_recovery(diseased):
    subj, grid, tv = diseased
    proto = IrProtocol()
    s = ir_signal(subj, tv, proto)
    assert s.shape == grid.shape + (len(proto.inversion_times_ms),)
    pure = np.argwhere((tv.fractions[..., MUSCLE] > 0.999) & (tv.label > 0))[:20]
    ti = np.asarray(proto.inversion_times_ms)
    k = proto.inversion_efficiency
    for (i, j, kk) in pure:
        ff, t2 = tv.fat_fraction_muscle[i, j, kk], tv.t2_water_ms[i, j, kk]
        w = (1 - (1 + k) * np.exp(-ti / MUSCLE_T1_MS) + k * np.exp(-proto.tr_ms / MUSCLE_T1_MS)) * np.exp(-proto.echo_time_ms / t2)
        f = (1 - (1 + k) * np.exp(-ti / FAT_T1_MS) + k * np.exp(-proto.tr_ms / FAT_T1_MS)) * np.exp(-proto.echo_time_ms / 151.0)
        expect = np.abs((1 - ff) * w + ff * f) * tv.bias[i, j, kk]
        np.testing.assert_allclose(s[i, j, kk], expect, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("contrast", CONTRASTS)
def test_every_contrast_renders_finite_images_on_the_grid(healthy_subject, small_grid, healthy_tissues, contrast):
    img = render_contrast(healthy_subject, small_grid, contrast, np.random.default_rng(1), tissues=healthy_tissues)
    assert img.shape == small_grid.shape and img.data.dtype == np.float32
    assert np.isfinite(img.data).all() and img.data.max() > 0
    np.testing.assert_array_equal(img.affine, small_grid.affine)
    m = healthy_tissues.label > 0
    assert img.data[m].mean() > 2 * img.data[healthy_tissues.fractions[..., 0] > 0.99].mean()  # body over air


def test_contrasts_have_the_expected_tissue_order(healthy_subject, small_grid, healthy_tissues):
    tv = healthy_tissues
    fat = tv.fractions[..., 2] > 0.99
    mus = (tv.fractions[..., MUSCLE] > 0.99) & (tv.label > 0)

    def ratio(c):
        d = render_contrast(healthy_subject, small_grid, c, snr=None, tissues=tv).data
        return d[fat].mean() / d[mus].mean()

    assert ratio("t1w") > 1.5           # fat bright on T1w
    assert ratio("dixon_water") < 0.2   # fat dark on a water image
    assert ratio("dixon_fat") > 5
    assert ratio("mese_late") > ratio("mese_e1") > 1.0  # fat brighter at late echoes (T2 151 vs 30 ms)


def test_random_contrast_changes_with_the_generator(healthy_subject, small_grid, healthy_tissues):
    a = render_contrast(healthy_subject, small_grid, "random", np.random.default_rng(1), tissues=healthy_tissues).data
    b = render_contrast(healthy_subject, small_grid, "random", np.random.default_rng(2), tissues=healthy_tissues).data
    c = render_contrast(healthy_subject, small_grid, "random", np.random.default_rng(1), tissues=healthy_tissues).data
    assert np.array_equal(a, c)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] < 0.999


def test_unknown_contrast_is_refused(healthy_subject, small_grid, healthy_tissues):
    with pytest.raises(ValueError, match="unknown contrast"):
        render_contrast(healthy_subject, small_grid, "flair", tissues=healthy_tissues)


def test_noiseless_and_noisy_images(healthy_subject, small_grid, healthy_tissues):
    air = healthy_tissues.fractions[..., 0] == 1.0
    clean = render_contrast(healthy_subject, small_grid, "t1w", snr=None, tissues=healthy_tissues).data
    assert np.all(clean[air] == 0)
    noisy = render_contrast(healthy_subject, small_grid, "t1w", np.random.default_rng(0), snr=20,
                            tissues=healthy_tissues).data
    m = healthy_tissues.label > 0
    sigma = clean[m].mean() / 20
    assert noisy[air].mean() == pytest.approx(sigma * np.sqrt(np.pi / 2), rel=0.05)
