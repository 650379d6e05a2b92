"""BIDS dataset discovery: sessions and their inputs, participants, motor measures.

Layout read (see ``docs/io.md`` and ``docs/ARCHITECTURE.md``)::

    participants.tsv              participant_id  group (ALS|control)  [age  sex …]
    phenotype/motor.tsv (+.json)  participant_id  session_id  side (R|L)  cmap_mv  mvic_n
    sub-01/ses-01/anat/sub-01_ses-01_echo-1_MESE.nii.gz (+ .json)   or  …_MESE.nii.gz (4-D)
    sub-01/ses-01/anat/sub-01_ses-01_inv-1_IRT1.nii.gz  (or _flip-N_VFA, _rep-N_SRT1)
    sub-01/ses-01/anat/sub-01_ses-01_T1w.nii.gz

Identifiers are kept in their full BIDS form (``sub-01``, ``ses-01``) everywhere, in
:class:`Session` and in the tables, so they join without string surgery. Table problems
(unknown subject, duplicated row, non-numeric value, bad side or group) raise
:class:`InputError` naming the table and the line; softer findings (a subject without scans,
scans without a participants row, motor rows for a visit without scans) go to
:meth:`BidsDataset.report`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path

import numpy as np

from alsseg.io.acquisition import T1_ENTITY, T1_SUFFIX
from alsseg.io.bids_names import parse_bids_name
from alsseg.io.errors import InputError, first_line
from alsseg.io.tables import read_tsv as _read_tsv
from alsseg.progress import progress_bar

#: Newtons per kilogram-force (MVIC recorded in kg is converted to N).
KGF_TO_N = 9.80665
#: motor table columns and their meaning (units in the name).
MOTOR_COLUMNS = ("participant_id", "session_id", "side", "cmap_mv", "mvic_n")
GROUPS = {"als": "ALS", "control": "control", "hc": "control", "healthy": "control"}
SIDES = {"r": "R", "l": "L"}  # BIDS and the motor-table spec: R or L (any case), nothing else
_NA = {"", "n/a", "na", "nan"}
_ANAT_SUFFIXES = ("T1w", "T2w", "PDw")


@dataclass(frozen=True)
class Session:
    """One visit of one subject and its inputs.

    Attributes
    ----------
    subject : str
        ``sub-XX``.
    session : str or None
        ``ses-YY`` (None for a dataset without session folders).
    mese : list of Path, Path or None
        Per-echo ``_echo-N_MESE`` files (sorted by N) or one 4-D ``_MESE`` file.
    t1 : list of Path, Path or None
        Per-volume T1-series files or one 4-D file.
    t1_kind : str or None
        ``IR``, ``VFA`` or ``SR``.
    anat : Path or None
        Anatomical image (``T1w``, else ``T2w``/``PDw``).
    folder : Path
        The ``anat`` folder.
    notes : tuple of str
        Findings about this session (e.g. several MESE series, the first used).
    """

    subject: str
    session: str | None
    mese: list[Path] | Path | None
    t1: list[Path] | Path | None
    t1_kind: str | None
    anat: Path | None
    folder: Path
    notes: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.subject, self.session)

    @property
    def name(self) -> str:
        """``sub-01_ses-01`` (or ``sub-01``)."""
        return f"{self.subject}_{self.session}" if self.session else self.subject

    def mese_path(self) -> Path | None:
        """A path :func:`alsseg.io.load_mese` accepts (the first echo file, or the 4-D file)."""
        return self.mese[0] if isinstance(self.mese, list) else self.mese

    def t1_path(self) -> Path | None:
        """A path :func:`alsseg.io.load_t1_series` accepts."""
        return self.t1[0] if isinstance(self.t1, list) else self.t1

    def load_mese(self):
        """:class:`alsseg.io.MeseSeries` of this session (InputError if it has none)."""
        from alsseg.io.series import load_mese

        if self.mese is None:
            raise InputError(self.folder, "no MESE series in this session")
        return load_mese(self.mese_path())

    def load_t1(self):
        """:class:`alsseg.io.T1Series` of this session (InputError if it has none)."""
        from alsseg.io.series import load_t1_series

        if self.t1 is None:
            raise InputError(self.folder, "no T1 series in this session")
        return load_t1_series(self.t1_path(), kind=self.t1_kind)

    def check_grids(self) -> None:
        """Raise :class:`InputError` if the MESE and T1 series are not on one grid (headers only).

        Per-muscle T1 is read through the label map drawn on the MESE grid, so both series must
        share it. The anatomical image may have its own grid.
        """
        mese, t1 = self.mese_path(), self.t1_path()
        if mese is None or t1 is None:
            return
        a = _grid(mese)
        b = _grid(t1)
        if a[0] != b[0] or not np.allclose(a[1], b[1], atol=1e-3):
            raise InputError(t1, f"T1 series grid {b[0]} / spacing {_sp(b[1])} does not match the "
                             f"MESE grid {a[0]} / spacing {_sp(a[1])} of {Path(mese).name}")


class BidsDataset:
    """A BIDS dataset of lower-leg MRI sessions with participants and motor measures.

    Parameters
    ----------
    root : path
        Dataset root (holds ``sub-*`` folders; ``participants.tsv`` and ``phenotype/motor.tsv``
        are optional).
    motor_table : path, optional
        Motor-measure TSV to use instead of ``ROOT/phenotype/motor.tsv``.

    Raises
    ------
    InputError
        ``root`` is not a folder or holds no ``sub-*`` folder.
    """

    def __init__(self, root: str | Path, motor_table: str | Path | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(self.root, "no such BIDS dataset folder")
        self._motor_path = Path(motor_table) if motor_table else self.root / "phenotype" / "motor.tsv"
        if motor_table and not self._motor_path.is_file():
            raise InputError(self._motor_path, "no such motor table")
        if not any(p.is_dir() and p.name.startswith("sub-") for p in self.root.iterdir()):
            raise InputError(self.root, "holds no sub-* folder: not a BIDS dataset root")

    # ------------------------------------------------------------------ discovery
    @cached_property
    def sessions(self) -> list[Session]:
        """Every session with an ``anat`` folder, sorted by subject then session."""
        out = []
        for sub in sorted(p for p in self.root.iterdir() if p.is_dir() and p.name.startswith("sub-")):
            ses_dirs = sorted(p for p in sub.iterdir() if p.is_dir() and p.name.startswith("ses-"))
            if ses_dirs:
                for ses in ses_dirs:
                    if (ses / "anat").is_dir():
                        out.append(find_session_inputs(ses / "anat", sub.name, ses.name))
            elif (sub / "anat").is_dir():
                out.append(find_session_inputs(sub / "anat", sub.name, None))
        return out

    def session(self, subject: str, session: str | None = None) -> Session:
        """The session ``(subject, session)``; ids with or without their ``sub-``/``ses-`` prefix."""
        sub = _prefixed(subject, "sub")
        ses = _prefixed(session, "ses") if session else None
        for s in self.sessions:
            if s.subject == sub and s.session == ses:
                return s
        raise InputError(self.root, f"no session {sub}{'/' + ses if ses else ''} in this dataset")

    @property
    def subjects(self) -> list[str]:
        """``sub-XX`` of every subject folder."""
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name.startswith("sub-"))

    @cached_property
    def participants(self):
        """``participants.tsv`` as a DataFrame (participant_id, group in {ALS, control}, extra columns).

        An absent file gives an empty table (and a line in :meth:`report`).
        """
        p = self.root / "participants.tsv"
        if not p.exists():
            import pandas as pd

            return pd.DataFrame({"participant_id": pd.Series(dtype=str), "group": pd.Series(dtype=str)})
        return read_participants(p)

    @cached_property
    def motor(self):
        """The motor table: participant_id, session_id, side (R|L), cmap_mv, mvic_n (NaN where missing).

        Every participant_id must be a known subject (participants.tsv, else the subject folders).
        An absent table gives an empty DataFrame with these columns.
        """
        known = set(self.participants["participant_id"]) if len(self.participants) else set(self.subjects)
        if not self._motor_path.exists():
            import pandas as pd

            return pd.DataFrame({c: pd.Series(dtype=float if c in ("cmap_mv", "mvic_n") else str)
                                 for c in MOTOR_COLUMNS})
        return read_motor_table(self._motor_path, known_subjects=known)

    @cached_property
    def session_dates(self):
        """Acquisition date-time per session (:func:`alsseg.io.dates.session_dates`): ``sessions.tsv``
        ``acq_time``, else ``scans.tsv``, else the MESE sidecar's ``AcquisitionDateTime``."""
        from alsseg.io.dates import session_dates

        return session_dates(self.sessions)

    def check_inputs(self, progress: bool = False) -> list[str]:
        """Load every session's series (MESE, T1, anatomical) and check their grids.

        Unlike the loaders, which stop at the first bad file, this collects every problem of the
        dataset, one line ``PATH: PROBLEM`` each (empty list when all inputs are usable).

        Parameters
        ----------
        progress : bool
            Show a progress bar over sessions.
        """
        from alsseg.io.series import load_anatomical

        problems = []
        for s in progress_bar(self.sessions, desc="checking sessions", unit="session", show=progress):
            for present, load in ((s.mese is not None, s.load_mese), (s.t1 is not None, s.load_t1),
                                  (s.anat is not None, partial(load_anatomical, s.anat)), (True, s.check_grids)):
                if not present:
                    continue
                try:
                    load()
                except InputError as exc:
                    problems.append(str(exc))
        return problems

    def report(self) -> list[str]:
        """Findings that do not stop a run, one line each (empty when all is consistent).

        Reads the tables, so table errors raise :class:`InputError` here.
        """
        lines = []
        scanned = {s.subject for s in self.sessions}
        with_mese = {s.key for s in self.sessions if s.mese is not None}
        if not (self.root / "participants.tsv").exists():
            lines.append(f"{self.root / 'participants.tsv'}: missing (no groups: patients vs controls unavailable)")
        else:
            listed = set(self.participants["participant_id"])
            for sub in sorted(listed - scanned):
                lines.append(f"{sub}: listed in participants.tsv but has no scans")
            for sub in sorted(scanned - listed):
                lines.append(f"{sub}: has scans but no row in participants.tsv")
        for s in self.sessions:
            if s.mese is None:
                lines.append(f"{s.name}: no MESE series (no T2 / fat fraction)")
            if s.t1 is None:
                lines.append(f"{s.name}: no T1 series (no T1 map)")
            lines += [f"{s.name}: {n}" for n in s.notes]
        if not self._motor_path.exists():
            lines.append(f"{self._motor_path}: missing (no motor measures)")
        else:
            for _, row in self.motor.iterrows():
                key = (row["participant_id"], row["session_id"] if isinstance(row["session_id"], str) else None)
                if key not in with_mese:
                    lines.append(f"{self._motor_path.name}: {key[0]} {key[1] or ''} side {row['side']}: motor "
                                 "measures for a visit without a MESE series".replace("  ", " "))
        return lines


# ------------------------------------------------------------------------------- session inputs
def find_session_inputs(anat: Path, subject: str, session: str | None) -> Session:
    """Find the MESE / T1 / anatomical files of one ``anat`` folder."""
    files = sorted(f for f in anat.iterdir() if f.is_file() and re.search(r"\.nii(\.gz)?$", f.name))
    notes: list[str] = []
    mese = _pick_series(files, "MESE", "echo", notes)
    t1, t1_kind = None, None
    for kind in ("IR", "VFA", "SR"):
        t1 = _pick_series(files, T1_SUFFIX[kind], T1_ENTITY[kind], notes)
        if t1 is not None:
            t1_kind = kind
            break
    anat_img = None
    for suf in _ANAT_SUFFIXES:
        cands = [f for f in files if parse_bids_name(f)[1] == suf]
        if cands:
            anat_img = cands[0]
            if len(cands) > 1:
                notes.append(f"{len(cands)} {suf} images; using {cands[0].name}")
            break
    return Session(subject, session, mese, t1, t1_kind, anat_img, anat, tuple(notes))


def _pick_series(files: list[Path], suffix: str, entity: str, notes: list) -> list[Path] | Path | None:
    series: dict[str, list[tuple[int, Path]]] = {}
    for f in files:
        ents, suf = parse_bids_name(f)
        if suf != suffix:
            continue
        key = "_".join(f"{k}-{v}" for k, v in ents.items() if k != entity)
        n = int(ents[entity]) if entity in ents and ents[entity].isdigit() else 0
        series.setdefault(key, []).append((n, f))
    if not series:
        return None
    keys = sorted(series)
    if len(keys) > 1:
        notes.append(f"{len(keys)} {suffix} series ({', '.join(keys)}); using {keys[0]}")
    chosen = sorted(series[keys[0]])
    if len(chosen) == 1 and chosen[0][0] == 0:
        return chosen[0][1]
    return [f for _, f in chosen]


def _grid(path: Path) -> tuple[tuple[int, ...], np.ndarray]:
    import nibabel as nib
    from nibabel.spatialimages import SpatialImage

    try:
        img = nib.load(str(path))
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types for a corrupt file
        raise InputError(path, f"not a readable NIfTI file ({first_line(exc)})") from None
    if not isinstance(img, SpatialImage):
        raise InputError(path, f"not an image on a grid ({type(img).__name__})")
    return tuple(int(v) for v in img.shape[:3]), np.asarray(img.affine)


def _sp(aff: np.ndarray) -> list[float]:
    return np.round(np.sqrt((aff[:3, :3] ** 2).sum(axis=0)), 3).tolist()


# ----------------------------------------------------------------------------------------- tables
def read_participants(path: str | Path):
    """Read ``participants.tsv``: participant_id (``sub-`` added if absent), group normalised to
    ``ALS``/``control`` (accepts als, control, hc, healthy, any case; ``n/a`` kept as NaN).

    Raises
    ------
    InputError
        Missing column, duplicated participant, unknown group — naming the table and the line.
    """
    path = Path(path)
    df = _read_tsv(path, ("participant_id",))
    df["participant_id"] = [_id_or_error(v, "sub", path, i) for i, v in enumerate(df["participant_id"])]
    dup = df["participant_id"].duplicated(keep="first")
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        first = int(np.flatnonzero((df["participant_id"] == df["participant_id"].iloc[i]).to_numpy())[0])
        raise InputError(path, f"line {i + 2}: participant {df['participant_id'].iloc[i]} duplicates line {first + 2}")
    if "group" in df.columns:
        groups: list[str | float] = []
        for i, g in enumerate(df["group"]):
            if g.lower() in _NA:
                groups.append(np.nan)
            elif g.lower() in GROUPS:
                groups.append(GROUPS[g.lower()])
            else:
                raise InputError(path, f"line {i + 2}: group {g!r} is neither ALS nor control")
        df["group"] = groups
    else:
        raise InputError(path, "no 'group' column: patients vs controls cannot be told apart; add a group "
                         "column (ALS, control, or n/a where unknown)")
    for c in df.columns:
        if c not in ("participant_id", "group"):
            df[c] = df[c].replace({v: np.nan for v in ("", "n/a", "N/A")})
            num = _to_numeric_or_none(df[c])
            if num is not None:
                df[c] = num
    return df


def read_motor_table(path: str | Path, known_subjects: set[str] | None = None):
    """Read a motor-measure table (see ``docs/motor_table_example.tsv`` and its ``.json``).

    Columns: participant_id, session_id (may be ``n/a`` for single-visit datasets), side
    (R or L, any case), cmap_mv (tibialis anterior CMAP amplitude, mV), mvic_n (foot
    dorsiflexion MVIC, N) — or mvic_kg (kgf, converted to N by × 9.80665). Missing values
    (empty, ``n/a``) are NaN, never imputed. Extra columns are kept.

    Parameters
    ----------
    path : path
    known_subjects : set of str, optional
        ``sub-XX`` ids; a row with another participant is refused.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    InputError
        Missing column, unknown participant, bad side, non-numeric value, duplicated
        (participant, session, side) — naming the table and the line (header = line 1).
    """
    import pandas as pd

    path = Path(path)
    df = _read_tsv(path, ("participant_id", "side"))
    if "mvic_n" not in df.columns and "mvic_kg" not in df.columns and "cmap_mv" not in df.columns:
        raise InputError(path, "has none of the columns cmap_mv, mvic_n, mvic_kg")
    if "session_id" not in df.columns:
        df["session_id"] = "n/a"
    df["participant_id"] = [_id_or_error(v, "sub", path, i) for i, v in enumerate(df["participant_id"])]
    df["session_id"] = [np.nan if v.lower() in _NA else _id_or_error(v, "ses", path, i)
                        for i, v in enumerate(df["session_id"])]
    sides = []
    for i, s in enumerate(df["side"]):
        if s.lower() not in SIDES:
            raise InputError(path, f"line {i + 2}: side {s!r} must be R or L")
        sides.append(SIDES[s.lower()])
    df["side"] = sides
    if known_subjects is not None:
        for i, p in enumerate(df["participant_id"]):
            if p not in known_subjects:
                raise InputError(path, f"line {i + 2}: unknown participant {p} (not in participants.tsv "
                                 "or the subject folders)")
    for col in [c for c in ("cmap_mv", "mvic_n", "mvic_kg") if c in df.columns]:
        vals = []
        for i, v in enumerate(df[col]):
            if v.lower() in _NA:
                vals.append(np.nan)
                continue
            try:
                f = float(v)
            except ValueError:
                raise InputError(path, f"line {i + 2}: {col} value {v!r} is not a number") from None
            if not np.isfinite(f) or f < 0:
                raise InputError(path, f"line {i + 2}: {col} value {v!r} must be a finite number >= 0")
            vals.append(f)
        df[col] = np.asarray(vals, dtype=float)
    if "mvic_n" not in df.columns:
        df["mvic_n"] = df["mvic_kg"] * KGF_TO_N if "mvic_kg" in df.columns else np.nan
    if "cmap_mv" not in df.columns:
        df["cmap_mv"] = np.nan
    key = df[["participant_id", "session_id", "side"]].fillna("n/a")
    dup = key.duplicated(keep="first").to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero((key == key.iloc[i]).all(axis=1).to_numpy())[0])
        r = key.iloc[i]
        raise InputError(path, f"line {i + 2}: duplicates line {first + 2} ({r['participant_id']} "
                         f"{r['session_id']} side {r['side']})")
    front = list(MOTOR_COLUMNS)
    return pd.DataFrame(df[front + [c for c in df.columns if c not in front]]).reset_index(drop=True)


def _id_or_error(value: str, prefix: str, path: Path, i: int) -> str:
    v = value.strip()
    if v.lower() in _NA:
        raise InputError(path, f"line {i + 2}: empty {'participant_id' if prefix == 'sub' else 'session_id'}")
    label = v[len(prefix) + 1:] if v.startswith(prefix + "-") else v
    if not re.fullmatch(r"[a-zA-Z0-9]+", label):
        raise InputError(path, f"line {i + 2}: {v!r} is not a BIDS {prefix} label (alphanumeric)")
    return f"{prefix}-{label}"


def _prefixed(value: str, prefix: str) -> str:
    return value if str(value).startswith(prefix + "-") else f"{prefix}-{value}"


def _to_numeric_or_none(col):
    import pandas as pd

    try:
        return pd.to_numeric(col)
    except (ValueError, TypeError):
        return None
