"""JSON sidecars: where they live, reading and writing them, and the times and flip angles they hold
(seconds in the file, milliseconds returned; see :func:`alsseg.io.validate.times_to_ms`)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from alsseg.io.acquisition import finite_float
from alsseg.io.atomic import atomic_path
from alsseg.io.errors import InputError
from alsseg.io.jsonable import jsonable
from alsseg.io.validate import input_kind, times_to_ms


def sidecar_path(nifti: str | Path) -> Path:
    """``X.nii.gz`` / ``X.nii`` → ``X.json``."""
    p = Path(nifti)
    return p.with_name(re.sub(r"(\.nii\.gz|\.nii)$", "", p.name) + ".json")


def read_sidecar(path: str | Path, required: bool = True) -> dict:
    """Read a JSON sidecar (``X.json`` of ``X.nii.gz``, or a ``.json`` path).

    Raises
    ------
    InputError
        Missing (when ``required``), unreadable or not a JSON object.
    """
    p = Path(path)
    js = p if p.suffix == ".json" else sidecar_path(p)
    if not os.path.lexists(js):
        if required:
            raise InputError(js, f"missing JSON sidecar for {p.name}")
        return {}
    if input_kind(js) != "file":
        raise InputError(js, "is a folder, expected a JSON sidecar")
    try:
        obj = json.loads(js.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(js, f"not valid JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(obj, dict):
        raise InputError(js, "sidecar must hold a JSON object")
    return obj


def write_sidecar(path: str | Path, fields: Mapping) -> Path:
    """Write a JSON sidecar atomically (``path`` is the ``.json`` or its NIfTI)."""
    p = Path(path)
    js = p if p.suffix == ".json" else sidecar_path(p)
    with atomic_path(js) as tmp:
        tmp.write_text(json.dumps(jsonable(fields, drop_private=True), indent=2, sort_keys=False) + "\n")
    return js


def times_per_file(values: Sequence, jss: Sequence[Path], what: str) -> np.ndarray:
    """Per-file times → ms with one unit decision for the whole set (named on the first file)."""
    for v, js in zip(values, jss):
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise InputError(js, f"{what} must be a number, got {v!r}")
    return times_to_ms(values, jss[0].parent if len(jss) > 1 else jss[0], what)


def time_ms(meta: dict, key: str, js: Path | None) -> float | None:
    v = meta.get(key)
    if v is None or isinstance(v, list):
        return None
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise InputError(js, f"{key} must be a number, got {v!r}")
    return float(times_to_ms([v], js, key)[0])


def flip_angles(meta: dict) -> tuple[float | None, float | None]:
    """(excitation, refocusing) flip angles from a sidecar; a lone FlipAngle > 90 is the refocusing one."""
    fa = finite_float(meta.get("FlipAngle")) if not isinstance(meta.get("FlipAngle"), list) else None
    ref = finite_float(meta.get("RefocusingFlipAngle"))
    if ref is None and fa is not None and fa > 90:
        return None, fa
    return fa, ref

