"""Fixtures of the relaxometry tests: acquisitions and models built once per module."""

import numpy as np
import pytest

from alsseg.relax.acquisition import MeseAcquisition
from alsseg.relax.t2 import EpgT2Model


@pytest.fixture(scope="module")
def acq10():
    """17 echoes, ESP 10 ms, TR 5 s, default (se2d17-tuned) slice profile."""
    return MeseAcquisition(echo_spacing_ms=10.0, n_echoes=17, tr_ms=5000.0)


@pytest.fixture(scope="module")
def epg10(acq10):
    return EpgT2Model(acq10)


@pytest.fixture
def rng():
    return np.random.default_rng(20240601)


@pytest.fixture
def rician():
    """``rician(y, sigma, rng)``: magnitude of ``y`` plus complex Gaussian noise of s.d. ``sigma``."""
    def add(y, sigma, rng):
        return np.abs(y + sigma * rng.normal(size=y.shape) + 1j * sigma * rng.normal(size=y.shape))
    return add
