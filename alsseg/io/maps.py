"""Parameter maps as BIDS-derivative files: names from an input's entities, NIfTI + JSON sidecar,
written atomically (used by ``alsseg fit-t2`` / ``fit-t1``; relax computes, io writes).

Maps are keyed by the names of :data:`alsseg.maps.MAPS`, which give each its file
``PREFIX[_desc-DESC]_SUFFIX.nii.gz`` (``PREFIX`` = the input's entities, e.g. ``sub-01_ses-01``;
``t2_water_ms`` → ``PREFIX_desc-water_T2map.nii.gz``, ``t1_ms`` → ``PREFIX_T1map.nii.gz``), each
with a ``.json`` sidecar (``Units``, ``Description`` from the image's ``meta`` or the registry,
plus the provenance given).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from alsseg.io.atomic import refuse_overwrite_of_inputs, write_text_atomic
from alsseg.io.jsonable import jsonable
from alsseg.io.nifti import save_nifti
from alsseg.maps import MAPS, map_filename


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
        from alsseg.io.bids_names import subject_session_of

        sub, ses = subject_session_of(p)
        if sub:
            return "_".join(x for x in (sub, ses) if x)
    return re.sub(r"[^A-Za-z0-9]+", "", name) or "maps"


def map_paths(out_dir, prefix: str, names, descs: dict[str, str] | None = None) -> dict[str, Path]:
    """Output paths ``out_dir/PREFIX[_desc-DESC]_SUFFIX.nii.gz`` of maps ``names`` (names of
    :data:`alsseg.maps.MAPS`; ``descs`` overrides the registry's desc of some names)."""
    out_dir = Path(out_dir)
    return {k: out_dir / map_filename(prefix, k, (descs or {}).get(k)) for k in names}


def write_maps(maps: dict, out_dir, prefix: str, *, descs: dict[str, str] | None = None,
               provenance: dict | None = None, inputs=()) -> list[Path]:
    """Write maps (``dict[name, Image]``, names of :data:`alsseg.maps.MAPS`) as NIfTI + JSON
    sidecars, atomically; ``descs`` overrides the registry's desc of some names.

    Raises
    ------
    InputError
        An output path is one of ``inputs``.
    """
    paths = map_paths(out_dir, prefix, maps.keys(), descs)
    refuse_overwrite_of_inputs(list(paths.values()), [p for p in inputs if p is not None])
    written = []
    for k, img in maps.items():
        path = paths[k]
        data = img.data
        if data.dtype == np.float64:
            data = data.astype(np.float32)
        save_nifti(img.with_data(data), path)
        side = {"Units": MAPS[k].units, "Description": MAPS[k].description}
        side.update({key: img.meta[key] for key in ("Units", "Description", "B1Mode") if key in img.meta})
        side.update(provenance or {})
        write_text_atomic(path.with_name(path.name.replace(".nii.gz", ".json")),
                          json.dumps(jsonable(side), indent=2) + "\n")
        written.append(path)
    return written
