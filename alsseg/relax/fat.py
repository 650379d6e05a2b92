"""Calibrate the fat T2 of the two-component model from voxels of (subcutaneous) fat."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize

from alsseg.io.errors import InputError
from alsseg.relax.acquisition import MeseAcquisition
from alsseg.relax.epg import cpmg_echoes


def calibrate_fat_t2(data, fat_mask, acq: MeseAcquisition, *, t2_range_ms=(60.0, 400.0),
                     b1_range=(0.5, 1.4), min_voxels: int = 20) -> tuple[float, float]:
    """Fat T2 (ms) and B1 of the mean echo train of fat voxels (single-component slice-profile EPG).

    The trains of the masked voxels are normalised to unit norm and averaged (a fat-only region,
    e.g. subcutaneous fat eroded away from muscle), then fitted by a grid search over (T2, B1)
    with closed-form amplitude followed by Nelder–Mead on the exact EPG; fat T1 from ``acq``.

    Parameters
    ----------
    data : (..., n_echoes) ndarray
    fat_mask : (...) bool ndarray
        Fat voxels (at least ``min_voxels``).
    acq : MeseAcquisition

    Returns
    -------
    fat_t2_ms, b1 : float

    Raises
    ------
    InputError
        Mask on another grid or with too few usable voxels.
    """
    data = np.asarray(data, float)
    fat_mask = np.asarray(fat_mask, bool)
    if fat_mask.shape != data.shape[:-1]:
        raise InputError(None, f"fat mask shape {fat_mask.shape} does not match the data grid {data.shape[:-1]}")
    y = data[fat_mask]
    ok = np.isfinite(y).all(axis=1) & (y >= 0).all(axis=1) & (y.sum(axis=1) > 0)
    y = y[ok]
    if len(y) < min_voxels:
        raise InputError(None, f"fat mask holds {len(y)} usable voxels; need at least {min_voxels}")
    train = (y / np.linalg.norm(y, axis=1, keepdims=True)).mean(axis=0)
    kw: dict[str, Any] = {"refocus_deg": acq.refocus_deg, "excite_deg": acq.excite_deg, "profile": acq.profile}
    t2g = np.exp(np.linspace(np.log(t2_range_ms[0]), np.log(t2_range_ms[1]), 60))
    b1g = np.linspace(b1_range[0], b1_range[1], 19)
    tt, bb = np.meshgrid(t2g, b1g, indexing="ij")
    atoms = cpmg_echoes(tt.ravel(), acq.fat_t1_ms, bb.ravel(), acq.echo_spacing_ms, acq.n_echoes, **kw)
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    j = int(np.argmax(atoms @ train))

    def cost(x):
        t2, b1 = np.exp(x[0]), x[1]
        if not (t2_range_ms[0] <= t2 <= t2_range_ms[1] and b1_range[0] <= b1 <= b1_range[1]):
            return 1e9
        s = cpmg_echoes([t2], acq.fat_t1_ms, [b1], acq.echo_spacing_ms, acq.n_echoes, **kw)[0]
        a = s @ train / (s @ s)
        return float(np.sum((train - a * s) ** 2))

    res = minimize(cost, [np.log(tt.ravel()[j]), bb.ravel()[j]], method="Nelder-Mead",
                   options={"xatol": 1e-4, "fatol": 1e-14, "maxiter": 400})
    return float(np.exp(res.x[0])), float(res.x[1])
