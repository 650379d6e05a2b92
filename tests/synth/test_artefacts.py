"""Acquisition artefacts of training images: EPI distortion (image and labels together), motion."""

from __future__ import annotations

import numpy as np
import pytest

from alsseg.synth import artefacts
from alsseg.synth.artefacts import degrade_acquisition, epi_distort, motion_corrupt, random_epi_displacement


def _square(shape=(64, 64, 2)):
    img = np.zeros(shape, np.float32)
    lab = np.zeros(shape, np.int16)
    img[20:40, 24:36] = 1.0
    lab[20:40, 24:36] = 3
    lab[20:40, 24:30] = 13
    return img, lab


@pytest.mark.parametrize("axis", [0, 1])
def test_epi_distortion_moves_image_and_labels_together(axis):
    img, lab = _square()
    d = np.full(img.shape, 3.0, np.float32)
    out, lab_out = epi_distort(img, lab, d, axis)
    assert np.allclose(out, np.roll(img, 3, axis=axis), atol=1e-5)
    assert np.array_equal(lab_out, np.roll(lab, 3, axis=axis))
    assert lab_out.dtype == lab.dtype


def test_epi_jacobian_piles_up_and_stretches_but_keeps_the_signal():
    img = np.zeros((80, 40, 1), np.float32)
    img[10:70] = 1.0
    y = np.arange(80, dtype=np.float32)[:, None, None] * np.ones((1, 40, 1), np.float32)
    out, _ = epi_distort(img, np.zeros(img.shape, np.int16), 0.3 * (y - 40), axis=0)  # stretch by 1.3
    assert out[40, 20, 0] == pytest.approx(1 / 1.3, rel=0.02)
    assert out.sum() == pytest.approx(img.sum(), rel=0.02)
    out, _ = epi_distort(img, np.zeros(img.shape, np.int16), -0.3 * (y - 40), axis=0)  # compress
    assert out[40, 20, 0] == pytest.approx(1 / 0.7, rel=0.02)
    assert out.sum() == pytest.approx(img.sum(), rel=0.02)


def test_random_epi_displacement_is_smooth_bounded_and_seeded():
    sp = (1.5, 1.5, 6.0)
    d = random_epi_displacement((120, 90, 4), sp, 1, np.random.default_rng(1), amplitude_mm=6.0)
    assert d.shape == (120, 90, 4)
    assert np.abs(d).max() * sp[1] <= 6.0 + 1e-3
    assert np.abs(np.diff(d, axis=1)).max() <= artefacts.EPI_MAX_GRADIENT + 1e-4
    assert np.array_equal(d, random_epi_displacement((120, 90, 4), sp, 1, np.random.default_rng(1), amplitude_mm=6.0))
    # larger towards the edges of the field of view (where air is)
    centre = np.abs(d[45:75, 30:60]).mean()
    edge = np.abs(np.concatenate([d[:15].ravel(), d[-15:].ravel()])).mean()
    assert edge > centre


def test_random_epi_keeps_a_valid_label_set_and_the_signal():
    img, lab = _square((96, 96, 2))
    d = random_epi_displacement(img.shape, (1.0, 1.0, 5.0), 0, np.random.default_rng(4), amplitude_mm=8.0)
    out, lab_out = epi_distort(img, lab, d, 0)
    assert set(np.unique(lab_out)) <= set(np.unique(lab))
    assert (lab_out == 3).sum() > 0.6 * (lab == 3).sum()
    assert out.sum() == pytest.approx(img.sum(), rel=0.03)
    assert not np.array_equal(lab_out, lab)


def test_motion_ghosts_along_phase_encoding_and_keeps_labels():
    img, lab = _square((64, 64, 1))
    out = motion_corrupt(img, 0, np.random.default_rng(2), n_positions=3)
    assert out.shape == img.shape and np.isfinite(out).all()
    # energy far from the object along the phase-encoding axis (same readout columns)
    pe_far = np.r_[0:12, 48:64]
    assert (out[pe_far, 24:36] ** 2).sum() > 1e-3 * (img ** 2).sum()
    assert (img[pe_far, 24:36] ** 2).sum() == 0
    # far along the readout axis (same phase-encoding rows) it stays much quieter
    ro_far = np.r_[0:12, 48:64]
    assert (out[20:40][:, ro_far] ** 2).sum() < 0.3 * (out[pe_far, 24:36] ** 2).sum()
    # through degrade_acquisition: labels unchanged, deterministic
    kw = dict(p_epi=0.0, p_motion=1.0, p_low_resolution=0.0, p_ghost=0.0)
    a, la = degrade_acquisition(img, lab, (1.0, 1.0, 5.0), np.random.default_rng(3), **kw)
    b, _ = degrade_acquisition(img, lab, (1.0, 1.0, 5.0), np.random.default_rng(3), **kw)
    assert np.array_equal(la, lab) and np.array_equal(a, b) and not np.allclose(a, img)


def test_epi_contrasts_get_distortion_more_often():
    img, lab = _square((48, 48, 1))
    changed = {False: 0, True: 0}
    for epi in (False, True):
        for s in range(60):
            _, lo = degrade_acquisition(img, lab, (1.5, 1.5, 5.0), np.random.default_rng(s), epi=epi,
                                        p_motion=0.0, p_low_resolution=0.0, p_ghost=0.0)
            changed[epi] += not np.array_equal(lo, lab)
    assert changed[True] > changed[False] + 15
    assert changed[False] > 0


def test_render_case_warps_labels_with_the_image(healthy_subject, small_grid, healthy_tissues):
    from alsseg.synth.artefacts import render_case

    a, la = render_case(healthy_subject, small_grid, "dwi_b0", np.random.default_rng(7), tissues=healthy_tissues)
    b, lb = render_case(healthy_subject, small_grid, "dwi_b0", np.random.default_rng(7), tissues=healthy_tissues)
    assert np.array_equal(a.data, b.data) and np.array_equal(la, lb)
    assert la.shape == small_grid.shape and la.dtype == np.int16
    assert set(np.unique(la)) <= set(np.unique(healthy_tissues.label))
    m, lm = render_case(healthy_subject, small_grid, "mese_e1", np.random.default_rng(7), tissues=healthy_tissues)
    assert np.array_equal(lm, healthy_tissues.label)  # physics contrasts: no artefacts
    with pytest.raises(ValueError):
        epi_distort(np.zeros((4, 4, 1)), np.zeros((4, 4, 1), np.int16), np.zeros((4, 4, 1)), 2)
