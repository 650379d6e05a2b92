"""T1 models: inversion recovery with polarity restoration, saturation recovery, VFA with B1."""

import numpy as np
import pytest

from alsseg.io.errors import InputError
from alsseg.relax.t1 import (InversionRecoveryT1Model, SaturationRecoveryT1Model, VfaT1Model, ir_signal,
                             sr_signal, vfa_signal)

TI = np.array([50.0, 150.0, 400.0, 800.0, 1500.0, 3000.0])


def test_ir_noiseless_with_polarity_restoration(rng):
    t1 = rng.uniform(300, 2000, 400)
    y = ir_signal(TI, t1, 1000.0, efficiency=0.95)
    fit = InversionRecoveryT1Model(TI).fit(y)
    np.testing.assert_allclose(fit.t1_ms, t1, rtol=1e-4)
    np.testing.assert_allclose(fit.efficiency, 0.95, atol=1e-4)
    np.testing.assert_allclose(fit.predict(), y, rtol=1e-4, atol=1e-2)
    assert fit.success.all()


def test_ir_order_of_inversion_times_does_not_matter():
    perm = np.array([3, 0, 5, 1, 4, 2])
    y = ir_signal(TI[perm], np.array([1400.0, 365.0]), 800.0)
    fit = InversionRecoveryT1Model(TI[perm]).fit(y)
    np.testing.assert_allclose(fit.t1_ms, [1400.0, 365.0], rtol=1e-4)


def test_ir_noisy_is_unbiased_on_average(rng, rician):
    y = rician(ir_signal(TI, np.full(500, 1100.0), 1000.0), 10.0, rng)
    fit = InversionRecoveryT1Model(TI).fit(y)
    assert abs(np.median(fit.t1_ms) - 1100.0) < 20.0


def test_sr_noiseless():
    tr = np.array([200.0, 500.0, 1000.0, 2000.0, 5000.0])
    t1 = np.array([365.0, 1000.0, 1400.0])
    fit = SaturationRecoveryT1Model(tr).fit(sr_signal(tr, t1, 700.0))
    np.testing.assert_allclose(fit.t1_ms, t1, rtol=1e-5)
    np.testing.assert_allclose(fit.m0, 700.0, rtol=1e-5)


def test_vfa_needs_b1_for_the_right_answer(rng):
    fa = np.array([3.0, 10.0, 20.0])
    t1 = rng.uniform(300, 2000, 200)
    b1 = rng.uniform(0.7, 1.2, 200)
    y = vfa_signal(fa, 15.0, t1, 900.0, b1)
    good = VfaT1Model(fa, 15.0).fit(y, b1=b1)
    np.testing.assert_allclose(good.t1_ms, t1, rtol=1e-4)
    naive = VfaT1Model(fa, 15.0).fit(y)
    assert np.median(np.abs(naive.t1_ms - t1) / t1) > 0.05


def test_t1_voxel_failures_flagged():
    y = np.stack([ir_signal(TI, 1000.0, 500.0), np.zeros(6), np.full(6, -1.0)])
    fit = InversionRecoveryT1Model(TI).fit(y)
    assert fit.success.tolist() == [True, False, False]
    assert np.isnan(fit.t1_ms[1:]).all()


@pytest.mark.parametrize("make,match", [
    (lambda: InversionRecoveryT1Model([100.0, 500.0]), "needs ≥ 3"),
    (lambda: InversionRecoveryT1Model([100.0, 100.0, 500.0]), "3 distinct"),
    (lambda: SaturationRecoveryT1Model([100.0, 500.0]), "needs ≥ 3"),
    (lambda: VfaT1Model([10.0], 15.0), "needs ≥ 2"),
    (lambda: VfaT1Model([5.0, 15.0], 0.0), "TR"),
    (lambda: InversionRecoveryT1Model(TI, t1_range_ms=(500.0, 100.0)), "T1 range"),
])
def test_t1_bad_input(make, match):
    with pytest.raises(InputError, match=match):
        make()


def test_t1_mask_and_b1_grid_checked():
    model = VfaT1Model([3.0, 15.0], 15.0)
    with pytest.raises(InputError, match="mask shape"):
        model.fit(np.ones((2, 2, 2)), mask=np.ones((3, 3), bool))
    with pytest.raises(InputError, match="B1 map shape"):
        model.fit(np.ones((2, 2, 2)), b1=np.ones((3, 3)))
