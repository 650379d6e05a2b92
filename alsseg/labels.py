"""Label registry: muscles, integer ids, sides, colours (pure data, no imaging imports).

Scheme (lower leg, the default anatomy): muscle index ``m`` in 1..7; the label id of a
voxel is ``m + side_offset`` with side offsets ``R = 0`` and ``L = 10``, so right TA = 1 …
right GL = 7, left TA = 11 … left GL = 17; 0 is background. "Right" and "left" are the
subject's sides in world (RAS) coordinates, never the voxel order of a file.

Anatomies are JSON files in ``alsseg/data/anatomies/`` (see ``lowerleg.json``); a thigh or
any other region is added by dropping a new file there (or passing a path), without code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_ANATOMY_DIR = Path(__file__).parent / "data" / "anatomies"
SIDES = ("R", "L")
SIDE_NAMES = {"R": "right", "L": "left"}
DEFAULT_ANATOMY = "lowerleg"


@dataclass(frozen=True)
class Muscle:
    """One muscle, side-agnostic."""

    index: int
    abbrev: str
    name: str
    colour: tuple[int, int, int]
    compartment: str


@dataclass(frozen=True)
class Label:
    """One muscle on one side: the unit of a label map."""

    id: int
    muscle: Muscle
    side: str  # "R" or "L"

    @property
    def abbrev(self) -> str:
        return self.muscle.abbrev

    @property
    def name(self) -> str:
        """e.g. ``TA_R``."""
        return f"{self.muscle.abbrev}_{self.side}"

    @property
    def description(self) -> str:
        return f"{SIDE_NAMES[self.side]} {self.muscle.name}"


@dataclass(frozen=True)
class Anatomy:
    """A set of muscles with a side scheme and named groups of muscles."""

    name: str
    description: str
    muscles: tuple[Muscle, ...]
    side_offsets: dict
    groups: dict

    @property
    def labels(self) -> tuple[Label, ...]:
        """All side-specific labels, right side first, in muscle order."""
        return tuple(
            Label(m.index + self.side_offsets[s], m, s) for s in SIDES for m in self.muscles
        )

    @property
    def n_muscles(self) -> int:
        return len(self.muscles)

    def label_by_id(self, label_id: int) -> Label:
        for lab in self.labels:
            if lab.id == label_id:
                return lab
        raise KeyError(f"label id {label_id} is not in anatomy {self.name!r}")

    def label_id(self, abbrev: str, side: str) -> int:
        return self.muscle(abbrev).index + self.side_offsets[side]

    def muscle(self, abbrev: str) -> Muscle:
        for m in self.muscles:
            if m.abbrev == abbrev:
                return m
        raise KeyError(f"muscle {abbrev!r} is not in anatomy {self.name!r}")

    def valid_ids(self) -> set[int]:
        """Label ids allowed in a label map (background 0 included)."""
        return {0} | {lab.id for lab in self.labels}

    def side_of(self, label_id: int) -> str:
        return self.label_by_id(label_id).side

    def muscle_index_of(self, label_id: int) -> int:
        """Side-agnostic muscle index (1..n) of a side-specific label id."""
        return self.label_by_id(label_id).muscle.index


def available_anatomies() -> list[str]:
    """Names of the anatomies shipped with alsseg."""
    return sorted(p.stem for p in _ANATOMY_DIR.glob("*.json"))


@cache
def load_anatomy(name_or_path: str = DEFAULT_ANATOMY) -> Anatomy:
    """Load an anatomy by shipped name (``"lowerleg"``) or from a JSON file path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = _ANATOMY_DIR / f"{name_or_path}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such anatomy (shipped: {', '.join(available_anatomies())})"
        )
    spec = json.loads(path.read_text())
    muscles = tuple(
        Muscle(int(m["index"]), m["abbrev"], m["name"], tuple(m["colour"]), m.get("compartment", ""))
        for m in spec["muscles"]
    )
    return Anatomy(
        name=spec["name"],
        description=spec.get("description", ""),
        muscles=muscles,
        side_offsets=dict(spec["side_offsets"]),
        groups={k: tuple(v) for k, v in spec.get("groups", {}).items()},
    )


def dseg_tsv(anatomy: Anatomy | None = None) -> str:
    """BIDS ``dseg.tsv`` text: columns index, name, abbreviation, color (hex), side."""
    anatomy = anatomy or load_anatomy()
    rows = ["index\tname\tabbreviation\tcolor\tside"]
    for lab in anatomy.labels:
        r, g, b = lab.muscle.colour
        rows.append(f"{lab.id}\t{lab.description}\t{lab.name}\t#{r:02x}{g:02x}{b:02x}\t{SIDE_NAMES[lab.side]}")
    return "\n".join(rows) + "\n"


def itksnap_label_table(anatomy: Anatomy | None = None) -> str:
    """ITK-SNAP label description file (also read by 3D Slicer as a colour table via its .txt importer)."""
    anatomy = anatomy or load_anatomy()
    lines = [
        "# ITK-SNAP Label Description File (alsseg)",
        "# IDX   -R-  -G-  -B-  -A--  VIS MSH  LABEL",
        '    0     0    0    0     0  0  0    "Clear Label"',
    ]
    for lab in anatomy.labels:
        r, g, b = lab.muscle.colour
        lines.append(f'{lab.id:5d} {r:5d} {g:4d} {b:4d} {1:5d}  1  1    "{lab.name}"')
    return "\n".join(lines) + "\n"


def slicer_color_table(anatomy: Anatomy | None = None) -> str:
    """3D Slicer colour table (``.ctbl``/``.txt``): ``id name R G B A`` per line."""
    anatomy = anatomy or load_anatomy()
    lines = ["# 3D Slicer color table written by alsseg", "0 background 0 0 0 0"]
    for lab in anatomy.labels:
        r, g, b = lab.muscle.colour
        lines.append(f"{lab.id} {lab.name} {r} {g} {b} 255")
    return "\n".join(lines) + "\n"
