"""BIDS file names: build one from its entities, parse one, find the subject and session of a path."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from alsseg.io.errors import InputError

#: BIDS entity order (anat datatype, then derivative ``desc``).
ENTITY_ORDER = ("sub", "ses", "task", "acq", "ce", "rec", "dir", "run", "mod", "echo", "flip", "inv",
                "rep", "mt", "part", "chunk", "space", "res", "den", "label", "desc")


def bids_path(root: str | Path, subject: str, session: str | None, suffix: str,
              entities: Mapping[str, object] | None = None, derivative: str | None = None,
              ext: str = ".nii.gz", datatype: str = "anat") -> Path:
    """Build a BIDS path.

    ``bids_path('/d', '01', '02', 'MESE', {'echo': 3})`` →
    ``/d/sub-01/ses-02/anat/sub-01_ses-02_echo-3_MESE.nii.gz``; with ``derivative='alsseg'`` the
    file goes under ``/d/derivatives/alsseg/``. ``subject``/``session`` may carry their
    ``sub-``/``ses-`` prefixes. Entities are written in BIDS order.
    """
    sub = _label(subject, "sub")
    ses = _label(session, "ses") if session not in (None, "") else None
    ents: dict[str, str] = {"sub": sub}
    if ses:
        ents["ses"] = ses
    for k, v in (entities or {}).items():
        if v is None:
            continue
        if not re.fullmatch(r"[a-zA-Z]+", k):
            raise ValueError(f"bad BIDS entity key {k!r}")
        val = str(v)
        if not re.fullmatch(r"[a-zA-Z0-9]+", val):
            raise ValueError(f"BIDS entity {k}-{val!r}: labels are alphanumeric")
        ents[k] = val
    order = {k: i for i, k in enumerate(ENTITY_ORDER)}
    keys = sorted(ents, key=lambda k: (order.get(k, order["desc"] - 0.5), list(ents).index(k)))
    name = "_".join(f"{k}-{ents[k]}" for k in keys) + f"_{suffix}{ext}"
    base = Path(root)
    if derivative:
        base = base / "derivatives" / derivative
    base = base / f"sub-{sub}"
    if ses:
        base = base / f"ses-{ses}"
    return base / datatype / name if datatype else base / name


def parse_bids_name(path: str | Path) -> tuple[dict[str, str], str]:
    """``sub-01_ses-02_echo-3_MESE.nii.gz`` → (``{'sub': '01', 'ses': '02', 'echo': '3'}``, ``'MESE'``)."""
    name = Path(path).name
    stem = re.sub(r"(\.nii\.gz|\.nii|\.json|\.tsv)$", "", name)
    parts = stem.split("_")
    ents = {}
    for p in parts[:-1]:
        if "-" in p:
            k, v = p.split("-", 1)
            ents[k] = v
    return ents, parts[-1]


def subject_session_of(path: str | Path) -> tuple[str | None, str | None]:
    """The BIDS subject and session of a path, in full form (``sub-01``, ``ses-02``; None when
    absent): from ``sub-*`` / ``ses-*`` folders on the path, else the file name's entities.

    ``/d/sub-01/ses-02/anat`` → (``sub-01``, ``ses-02``); ``sub-01_echo-1_MESE.nii.gz`` →
    (``sub-01``, None).
    """
    p = Path(path)
    names = [q.name for q in [p] + list(p.parents)]
    sub = next((n for n in names if re.fullmatch(r"sub-[A-Za-z0-9]+", n)), None)
    ses = next((n for n in names if re.fullmatch(r"ses-[A-Za-z0-9]+", n)), None)
    if sub is None and p.name.startswith("sub-"):
        ents, _ = parse_bids_name(p)
        sub = f"sub-{ents['sub']}" if re.fullmatch(r"[A-Za-z0-9]+", ents.get("sub", "")) else None
        if ses is None and re.fullmatch(r"[A-Za-z0-9]+", ents.get("ses", "")):
            ses = f"ses-{ents['ses']}"
    return sub, ses



def _label(value: str, prefix: str) -> str:
    s = str(value)
    if s.startswith(prefix + "-"):
        s = s[len(prefix) + 1:]
    if not re.fullmatch(r"[a-zA-Z0-9]+", s):
        raise InputError(None, f"BIDS {prefix} label {value!r} must be alphanumeric")
    return s
