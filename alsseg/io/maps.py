"""Parameter maps as BIDS-derivative files: names from an input's entities, NIfTI + JSON sidecar,
written atomically (used by ``alsseg fit-t2`` / ``fit-t1``; relax computes, io writes).

``PREFIX_desc-KEY_SUFFIX.nii.gz`` (``PREFIX`` = the input's entities, e.g. ``sub-01_ses-01``;
``T1`` → ``PREFIX_T1map.nii.gz``), each with a ``.json`` sidecar (``Units``, ``Description`` from
the image's ``meta``, plus the provenance given).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from alsseg.io.atomic import refuse_overwrite_of_inputs, write_text_atomic
from alsseg.io.nifti import save_nifti


def bids_prefix(source) -> str:
    """Output name prefix from an input path: its BIDS entities without echo/inv/flip/desc/part.

    ``sub-01_ses-01_echo-1_MESE.nii.gz`` → ``sub-01_ses-01``; a non-BIDS name gives its stem.
    """
    p = Path(source) if source is not None else Path("maps")
    name = re.sub(r"(\.nii\.gz|\.nii|\.json)$", "", p.name)
    parts = name.split("_")
    if parts and parts[0].startswith("sub-"):
        keep = [x for x in parts[:-1] if "-" in x and x.split("-", 1)[0] not in ("echo", "inv", "flip", "desc", "part", "mt")]
        if keep:
            return "_".join(keep)
    if p.is_dir():
        subdirs = [q for q in (p.name, p.parent.name, p.parent.parent.name) if q]
        subs = [q for q in subdirs if q.startswith("sub-")]
        sess = [q for q in subdirs if q.startswith("ses-")]
        if subs:
            return "_".join(subs[:1] + sess[:1])
    return re.sub(r"[^A-Za-z0-9]+", "", name) or "maps"


def map_paths(out_dir, prefix: str, keys, suffix: str = "T2map") -> dict[str, Path]:
    """Output paths ``out_dir/PREFIX_desc-KEY_SUFFIX.nii.gz`` (``T1`` → ``PREFIX_T1map``)."""
    out_dir = Path(out_dir)
    paths = {}
    for k in keys:
        if k == "T1":
            paths[k] = out_dir / f"{prefix}_T1map.nii.gz"
        else:
            paths[k] = out_dir / f"{prefix}_desc-{k}_{suffix}.nii.gz"
    return paths


def write_maps(maps: dict, out_dir, prefix: str, *, suffix: str = "T2map", provenance: dict | None = None,
               inputs=()) -> list[Path]:
    """Write maps (``dict[desc, Image]``) as NIfTI + JSON sidecars, atomically.

    Raises
    ------
    InputError
        An output path is one of ``inputs``.
    """
    paths = map_paths(out_dir, prefix, maps.keys(), suffix)
    refuse_overwrite_of_inputs(list(paths.values()), [p for p in inputs if p is not None])
    written = []
    for k, img in maps.items():
        path = paths[k]
        data = img.data
        if data.dtype == np.float64:
            data = data.astype(np.float32)
        save_nifti(img.with_data(data), path)
        side = {key: img.meta[key] for key in ("Units", "Description") if key in img.meta}
        side.update(provenance or {})
        write_text_atomic(path.with_name(path.name.replace(".nii.gz", ".json")),
                          json.dumps(_jsonable(side), indent=2) + "\n")
        written.append(path)
    return written


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj
