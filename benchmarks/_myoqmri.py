"""MyoQMRI's EPG dictionary matching as a benchmark peer (``pip install myoqmri``; not a dependency).

Both T2 benchmarks call it the same way: build its default dictionary (water T2 20–80 ms,
B1 0.5–1.2, 1-ms / 0.01 steps as MyoQMRI sets them), then match voxels by its numpy GEMM path
(squared, normalised signals; best atom by inner product) — the equivalent of its ``fitSlcFast``.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time

import numpy as np


def build_dictionary(fat_t2_ms: float, n_echoes: int, echo_spacing_ms: float):
    """Return ``(pars (K, 3) [T2 ms, B1, FF], atoms (K, n_echoes), build_s)``.

    Raises ImportError where MyoQMRI is not installed.
    """
    from MyoQMRI.waterT2.FatFractionLookup import FatFractionLookup

    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # it caches its dictionary under ./data
        try:
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                ffl = FatFractionLookup((20, 80), (0.5, 1.2), fat_t2_ms, n_echoes, echo_spacing_ms, 0.2)
                pars, sigs = ffl.getAllSignals()
            build_s = time.perf_counter() - t0
        finally:
            os.chdir(cwd)
    sigs = sigs ** 2
    sigs /= np.linalg.norm(sigs, axis=1, keepdims=True)
    return pars, sigs, build_s


def match(y: np.ndarray, atoms: np.ndarray, block: int = 256) -> np.ndarray:
    """Index of the best atom for each row of ``y (N, n_echoes)``."""
    return np.concatenate([np.argmax((y[i:i + block].astype(np.float64) ** 2) @ atoms.T, axis=1)
                           for i in range(0, len(y), block)])
