"""EPG engine: physics checks against closed forms and a direct rotation-matrix simulation."""

import numpy as np
import pytest

from alsseg.relax.epg import SliceProfile, _sinc_flip_profile, cpmg_echoes


def test_ideal_refocusing_is_pure_exponential():
    t2 = np.array([20.0, 35.0, 80.0])
    sig = cpmg_echoes(t2, 1400.0, 1.0, 10.0, 17)
    te = 10.0 * np.arange(1, 18)
    np.testing.assert_allclose(sig, np.exp(-te / t2[:, None]), rtol=1e-10)


def test_stimulated_echo_makes_echo2_exceed_echo1_at_low_b1():
    prof = SliceProfile.sinc_pulses(3, 2.5, 0.9, refocus_from_90=True)
    sig = cpmg_echoes([100.0], 1400.0, [0.7], 10.0, 17, profile=prof)[0]
    assert sig[1] > sig[0]
    # at nominal B1 and short T2 the train decays from echo 1
    sig = cpmg_echoes([20.0], 1400.0, [1.0], 10.0, 17)[0]
    assert np.all(np.diff(sig) < 0)


def test_refocusing_sign_symmetry():
    """Refocusing by α and by −α (360° − α) give the same echo magnitudes (ideal slice)."""
    from alsseg.relax.epg import _cpmg_core

    a = np.deg2rad(np.array([120.0, 150.0]))
    t2 = np.array([40.0, 40.0])
    t1 = np.array([1000.0, 1000.0])
    ex = np.full(2, np.pi / 2)
    s1 = np.abs(_cpmg_core(t2, t1, ex, a, 10.0, 12))
    s2 = np.abs(_cpmg_core(t2, t1, ex, 2 * np.pi - a, 10.0, 12))
    np.testing.assert_allclose(s1, s2, rtol=1e-10)


def _bloch_cpmg(t2, t1, alpha, esp, n_echoes, n_iso=720):
    """Direct simulation: isochromats spread uniformly over 2π of dephasing per half interval."""
    phi = 2 * np.pi * (np.arange(n_iso) + 0.5) / n_iso
    m = np.zeros((n_iso, 3))
    m[:, 0] = 1.0  # magnetisation along x after the 90° excitation (CPMG: refocusing about x)

    def rot_x(m, a):
        c, s = np.cos(a), np.sin(a)
        return np.stack([m[:, 0], c * m[:, 1] - s * m[:, 2], s * m[:, 1] + c * m[:, 2]], axis=1)

    def free(m, tau):
        e2, e1 = np.exp(-tau / t2), np.exp(-tau / t1)
        c, s = np.cos(phi), np.sin(phi)
        mx = (c * m[:, 0] - s * m[:, 1]) * e2
        my = (s * m[:, 0] + c * m[:, 1]) * e2
        mz = m[:, 2] * e1 + (1 - e1)
        return np.stack([mx, my, mz], axis=1)

    out = []
    for _ in range(n_echoes):
        m = free(m, esp / 2)
        m = rot_x(m, alpha)
        m = free(m, esp / 2)
        out.append(np.hypot(m[:, 0].mean(), m[:, 1].mean()))
    return np.array(out)


@pytest.mark.parametrize("alpha_deg,t2", [(180.0, 40.0), (150.0, 60.0), (120.0, 30.0), (90.0, 100.0)])
def test_matches_direct_rotation_simulation(alpha_deg, t2):
    epg = cpmg_echoes([t2], 1000.0, [alpha_deg / 180.0], 10.0, 8, excite_deg=90.0 * 180.0 / alpha_deg)
    # cpmg_echoes scales both flips by b1: undo for excitation by choosing excite_deg above
    direct = _bloch_cpmg(t2, 1000.0, np.deg2rad(alpha_deg), 10.0, 8)
    np.testing.assert_allclose(epg[0], direct, rtol=2e-3, atol=1e-4)


def test_sinc_profile_is_nominal_at_centre_and_vanishes_outside():
    flips = _sinc_flip_profile(2.0, np.pi / 2, np.array([0.0, 10.0]))
    assert flips[0] == pytest.approx(np.pi / 2, rel=1e-6)
    assert flips[1] < 0.05
    prof = SliceProfile.sinc_pulses(2.0, 2.0, 1.5)
    # the refocused slab is wider: at the excitation edge the refocusing angle is still larger
    edge = np.argmin(np.abs((np.arange(32) + 0.5) * 1.5 / 32 - 0.5))
    assert prof.refocusing[edge] > prof.excitation[edge] * 0.9
    assert prof.weights.sum() == pytest.approx(1.0)


def test_profile_sums_complex_echoes():
    """Profiled signal is below the ideal-slice signal at nominal B1 and finite everywhere."""
    prof = SliceProfile.sinc_pulses()
    s = cpmg_echoes(np.array([30.0, 60.0]), 1400.0, np.array([1.0, 0.8]), 10.0, 17, profile=prof)
    assert s.shape == (2, 17) and np.all(np.isfinite(s)) and np.all(s >= 0)
    ideal = cpmg_echoes(np.array([30.0]), 1400.0, 1.0, 10.0, 17)
    assert s[0, 0] < ideal[0, 0]
