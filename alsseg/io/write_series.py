"""Writing MESE and T1 series in BIDS layout, all files of a series or none."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from alsseg.io.acquisition import T1_ENTITY, T1_PARAMETER, T1_SUFFIX, MeseSeries, T1Series, seconds, sidecar_common
from alsseg.io.atomic import atomic_path
from alsseg.io.bids_names import bids_path
from alsseg.io.jsonable import jsonable
from alsseg.io.nifti import save_nifti
from alsseg.io.sidecar import sidecar_path
from alsseg.io.validate import check_outputs

#: One file to write: ``(NIfTI path, data array, sidecar fields)``.
VolumeItem = tuple[Path, np.ndarray, Mapping[str, object]]

def write_mese_bids(series: MeseSeries, root: str | Path, subject: str, session: str | None = None,
                    *, split_echoes: bool = True, entities: Mapping[str, object] | None = None,
                    derivative: str | None = None, inputs: Sequence[str | Path] = ()) -> list[Path]:
    """Write a MESE series in BIDS layout; returns the paths written (NIfTI and JSON).

    ``split_echoes=True`` (BIDS): one 3-D ``…_echo-N_MESE.nii.gz`` per echo with its own sidecar
    (``EchoTime`` in seconds). ``split_echoes=False``: one 4-D ``…_MESE.nii.gz`` whose sidecar has an
    ``EchoTime`` list. All files are first written to temporaries and renamed together at the end.
    ``inputs``: paths that must not be overwritten.
    """
    common = {k: v for k, v in series.sidecar().items() if k != "EchoTime"}
    items: list[VolumeItem] = []
    if split_echoes:
        for e in range(series.n_echoes):
            p = bids_path(root, subject, session, "MESE", {**(entities or {}), "echo": e + 1}, derivative)
            items.append((p, series.image.data[..., e], {"EchoTime": seconds(series.echo_times_ms[e]), **common}))
    else:
        p = bids_path(root, subject, session, "MESE", entities, derivative)
        items.append((p, series.image.data, series.sidecar()))
    return write_volumes(items, series.image.affine, inputs=inputs)


def write_t1_bids(series: T1Series, root: str | Path, subject: str, session: str | None = None,
                  *, split_volumes: bool = True, entities: Mapping[str, object] | None = None,
                  derivative: str | None = None, inputs: Sequence[str | Path] = ()) -> list[Path]:
    """Write a T1 series: ``…_inv-N_IRT1`` (IR), ``…_flip-N_VFA`` (VFA) or ``…_rep-N_SRT1`` (SR)."""
    suffix, ent = T1_SUFFIX[series.kind], T1_ENTITY[series.kind]
    key = T1_PARAMETER[series.kind]
    conv = float if series.kind == "VFA" else seconds
    common: dict[str, object] = {**sidecar_common(series.tr_ms, series.field_strength_t, None)}
    if series.echo_time_ms is not None:
        common["EchoTime"] = seconds(series.echo_time_ms)
    if series.kind != "VFA" and series.flip_angles_deg is not None:
        common["FlipAngle"] = float(series.flip_angles_deg[0])
    vals = series.varying
    items: list[VolumeItem] = []
    if split_volumes:
        for i in range(series.n_volumes):
            p = bids_path(root, subject, session, suffix, {**(entities or {}), ent: i + 1}, derivative)
            items.append((p, series.image.data[..., i], {**common, key: conv(vals[i])}))
    else:
        p = bids_path(root, subject, session, suffix, entities, derivative)
        items.append((p, series.image.data, {**common, key: [conv(v) for v in vals]}))
    return write_volumes(items, series.image.affine, inputs=inputs)


def write_volumes(items: Sequence[VolumeItem], affine: np.ndarray,
                  inputs: Sequence[str | Path] = ()) -> list[Path]:
    """Write ``(nifti_path, data, sidecar)`` items all-or-nothing; returns NIfTI and JSON paths.

    Every file goes to a temporary name first; only when all are written are they renamed into
    place, so a failure leaves nothing under the final names.
    """
    targets: list[Path] = []
    for p, _, _ in items:
        targets += [Path(p), sidecar_path(p)]
    check_outputs(targets, inputs)
    with contextlib.ExitStack() as stack:
        for p, data, meta in items:
            tmp = stack.enter_context(atomic_path(p))
            save_nifti(np.asarray(data), tmp, affine=affine)
            tmpj = stack.enter_context(atomic_path(sidecar_path(p)))
            tmpj.write_text(json.dumps(jsonable(meta, drop_private=True), indent=2) + "\n")
    return targets
