"""The phantom's MESE contrast against the real 3 T scan (skips without ../shared)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "synth_realism.py"


def _module():
    spec = importlib.util.spec_from_file_location("synth_realism", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.shared
def test_contrast_ratios_within_20_percent_of_the_real_scan(shared_mese):
    from alsseg.io import load_mese

    sr = _module()
    real = load_mese(shared_mese)
    rimg = real.image.to_ras()
    rdata = rimg.data.astype(np.float32)
    sdata, grid = sr.render_phantom(real, seed=7, snr=150.0)
    assert sdata.shape[-1] == real.n_echoes
    rr = sr.ratios(rdata, sr.classify(rdata, rimg.spacing_mm))
    ss = sr.ratios(sdata, sr.classify(sdata, grid.spacing_mm))
    assert set(rr) == set(ss) == {"fat", "marrow", "cortex"}
    for tissue in rr:
        for e in (0, sr.LATE_ECHO - 1):  # echo 1 and echo 8 (TE 88 ms on the real scan)
            assert ss[tissue][e] == pytest.approx(rr[tissue][e], rel=0.2), (tissue, e + 1)
        # over the whole train the curves stay close (late echoes are noisier)
        assert np.all(np.abs(ss[tissue] / rr[tissue] - 1) < 0.3), tissue
