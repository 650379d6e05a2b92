"""Synthetic ALS cohorts in BIDS, with motor measures and ground truth (after Bryan et al. 1998).

Each leg of each participant carries a latent **denervation** ``D`` in [0, 1] (controls ≈ 0;
ALS drawn per subject, asymmetric between legs, growing between visits). ``D`` drives, per
muscle and scaled by the muscle's ALS susceptibility, the water T2 rise, fat replacement and
atrophy of the phantom (:func:`alsseg.synth.make_subject`), and the motor measures of that leg:

* tibialis anterior CMAP amplitude ``cmap_mv = C0 · (1 − D)^cmap_exponent · exp(ε)``,
  ``C0 ~ N(5.5, 0.8) mV`` per subject, ``ε ~ N(0, cmap_noise)``;
* dorsiflexion MVIC ``mvic_n = F0 · (V_ant / V_ref)^mvic_volume_exponent · (1 − mvic_weakness · D) · exp(ε)``,
  with ``V_ant`` the true TA + EDL volume in the imaged slab (mL), ``V_ref`` the cohort's mean
  control value, ``F0`` the force of a reference leg (N).

Layout written (docs/ARCHITECTURE.md)::

    OUT/dataset_description.json, participants.tsv (+ .json), phenotype/motor.tsv (+ .json)
    OUT/sub-01/ses-01/anat/sub-01_ses-01_echo-N_MESE.nii.gz (+ .json), _inv-N_IRT1, _T1w
    OUT/derivatives/groundtruth/dataset_description.json, dseg.tsv, muscles.tsv, legs.tsv, cohort.json
    OUT/derivatives/groundtruth/sub-01/ses-01/anat/sub-01_ses-01_desc-muscles_dseg.nii.gz,
        _desc-water_T2map, _desc-fatfraction_T2map, _desc-b1_T2map, _T1map, _muscles.tsv

Generation is resumable: a session whose ``_muscles.tsv`` exists is not rendered again (it is
written last, after the images); a different configuration in an existing folder is refused.
"""

from __future__ import annotations

from typing import Any

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from alsseg.io.atomic import write_text_atomic
from alsseg.io.errors import InputError
from alsseg.maps import MAPS
from alsseg.synth.anatomy import make_subject
from alsseg.synth.grid import Grid
from alsseg.synth.render import IrProtocol, MeseProtocol

GT = "groundtruth"
MUSCLE_COLUMNS = ("participant_id", "session_id", "label", "side", "muscle", "volume_ml", "t2_water_ms",
                  "fat_fraction", "t1_ms")
#: further truth columns: per-muscle means of the voxel-level true maps (partial volume included)
EXTRA_COLUMNS = ("t1_water_ms", "t2_water_voxel_ms", "fat_fraction_voxel", "n_voxels")


@dataclass(frozen=True)
class CohortEffects:
    """Effect sizes of the generator (what a fully denervated, most susceptible muscle shows).

    Attributes:
        t2_ms: water T2 increase, ms.
        fat_fraction: fat fraction increase.
        atrophy: volume fraction lost.
        als_denervation: range of baseline denervation of ALS subjects.
        asymmetry_sd: SD of the right−left difference of denervation.
        progression: range of the increase of denervation per visit (~4 months).
        control_denervation: maximum denervation of controls.
        cmap_exponent: CMAP falls as ``(1 − D)^cmap_exponent``.
        cmap_noise: log-normal SD of CMAP between legs (persistent: electrode placement, anatomy).
        visit_noise: log-normal SD of CMAP and MVIC measurement noise from visit to visit.
        mvic_weakness: fraction of specific force lost at ``D = 1`` (on top of atrophy).
        mvic_reference_n: MVIC of a healthy leg of average anterior-compartment volume, N.
        mvic_volume_exponent: MVIC grows as (volume)^exponent.
        mvic_noise: log-normal SD of MVIC between legs (persistent).
    """

    t2_ms: float = 14.0
    fat_fraction: float = 0.35
    atrophy: float = 0.6
    als_denervation: tuple = (0.15, 0.8)
    asymmetry_sd: float = 0.15
    progression: tuple = (0.04, 0.18)
    control_denervation: float = 0.04
    cmap_exponent: float = 1.0
    cmap_noise: float = 0.12
    visit_noise: float = 0.05
    mvic_weakness: float = 0.8
    mvic_reference_n: float = 250.0
    mvic_volume_exponent: float = 0.4
    mvic_noise: float = 0.06


@dataclass(frozen=True)
class CohortConfig:
    """Everything that defines a cohort (stored as ``derivatives/groundtruth/cohort.json``)."""

    n_als: int = 11
    n_controls: int = 8
    visits: int = 2
    visit_interval_months: float = 4.0
    seed: int = 0
    snr: float | None = 100.0
    shape: tuple = (256, 144, 18)
    spacing_mm: tuple = (1.5, 1.5, 7.0)
    slice_thickness_mm: float = 7.0
    mese: MeseProtocol = field(default_factory=MeseProtocol)
    ir: IrProtocol = field(default_factory=IrProtocol)
    effects: CohortEffects = field(default_factory=CohortEffects)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=list)


@dataclass(frozen=True)
class PlannedSession:
    """One session to render (picklable work item)."""

    participant_id: str
    session_id: str
    group: str
    subject_seed: int
    denervation: dict
    visit: int
    grid_seed: int


def plan_cohort(config: CohortConfig) -> tuple[list[dict], list[PlannedSession]]:
    """Participants (id, group, age, sex, seeds, baseline denervation) and the sessions to render."""
    rng = np.random.default_rng([config.seed, 2024])
    ef = config.effects
    people, sessions = [], []
    n = config.n_als + config.n_controls
    for i in range(n):
        pid = f"sub-{i + 1:02d}"
        als = i < config.n_als
        subject_seed = int(rng.integers(0, 2 ** 31 - 1))
        if als:
            base = rng.uniform(*ef.als_denervation)
            asym = rng.normal(0, ef.asymmetry_sd)
            d = {"R": float(np.clip(base + asym / 2, 0, 0.98)), "L": float(np.clip(base - asym / 2, 0, 0.98))}
            age = int(np.clip(rng.normal(58, 10), 30, 85))
        else:
            d = {s: float(rng.uniform(0, ef.control_denervation)) for s in ("R", "L")}
            age = int(np.clip(rng.normal(55, 10), 30, 85))
        sex = "M" if rng.random() < 0.6 else "F"
        people.append({"participant_id": pid, "group": "ALS" if als else "control", "age": age, "sex": sex,
                           "subject_seed": subject_seed, "denervation_r": d["R"], "denervation_l": d["L"],
                           "cmap_healthy_mv": float(np.clip(rng.normal(5.5, 0.8), 3.0, 8.5))})
        n_visits = config.visits if als else 1
        dv = dict(d)
        for v in range(n_visits):
            if v > 0:
                for s in ("R", "L"):
                    dv[s] = float(np.clip(dv[s] + rng.uniform(*ef.progression), 0, 0.98))
            sessions.append(PlannedSession(pid, f"ses-{v + 1:02d}", str(people[-1]["group"]), subject_seed,
                                           dict(dv), v, int(rng.integers(0, 2 ** 31 - 1))))
    return people, sessions


def session_grid(config: CohortConfig, grid_seed: int) -> Grid:
    """The acquisition grid of one session: the protocol's matrix and voxel size, with the
    subject positioned a little differently at each visit (in-plane shift ±10 mm, rotation ±3°;
    along the leg ±4 mm, as when the slab is placed from a landmark such as the tibial plateau)."""
    r = np.random.default_rng(grid_seed)
    return Grid.axial(config.shape, config.spacing_mm, centre_mm=tuple(r.uniform(-1, 1, 3) * (10, 8, 4)),
                      rotation_deg=float(r.uniform(-3, 3)), tilt_deg=tuple(r.uniform(-2, 2, 2)),
                      slice_thickness_mm=config.slice_thickness_mm)


def _truth_tsv_path(out: Path, s: PlannedSession) -> Path:
    from alsseg.io.series import bids_path

    return bids_path(out, s.participant_id, s.session_id, "muscles", derivative=GT, ext=".tsv")


def _render_and_write(args) -> list[dict]:
    """Worker: render one planned session and write it; returns its muscle rows."""
    out, config, s = args
    tsv = _truth_tsv_path(out, s)
    if tsv.exists():  # resumable: this session is complete
        import pandas as pd

        return pd.read_csv(tsv, sep="\t").to_dict("records")
    ef = config.effects
    subject = make_subject(s.subject_seed, denervation=s.denervation, group=s.group, effect_t2_ms=ef.t2_ms,
                           effect_ff=ef.fat_fraction, effect_atrophy=ef.atrophy)
    grid = session_grid(config, s.grid_seed)
    return write_session(out, s.participant_id, s.session_id, subject, grid, config,
                         rng=np.random.default_rng([s.grid_seed, 5]))


def write_session(out: str | Path, participant_id: str, session_id: str, subject, grid: Grid,
                  config: CohortConfig = CohortConfig(), *, rng: np.random.Generator | None = None) -> list[dict]:
    """Render ``subject`` on ``grid`` with the protocols of ``config`` and write the session.

    Writes the MESE (``_echo-N_MESE``), IR (``_inv-N_IRT1``) and ``_T1w`` images with their
    sidecars, and under ``derivatives/groundtruth/`` the label map, the true maps and the
    session's ``_muscles.tsv`` (last, so its presence means the session is complete).

    Returns:
        The session's muscle rows (dicts with the ``muscles.tsv`` columns and ``n_voxels``).
    """
    import pandas as pd

    from alsseg.io import Image, save_nifti
    from alsseg.io.series import MeseSeries, T1Series, bids_path, write_mese_bids, write_t1_bids
    from alsseg.synth.session import render_session

    out = Path(out)
    ses = render_session(subject, grid, mese=config.mese, ir=config.ir, snr=config.snr, rng=rng)
    aff = grid.affine
    mp = config.mese
    series = MeseSeries(Image(_to_uint16(ses.mese), aff), mp.echo_times_ms, tr_ms=mp.tr_ms,
                        field_strength_t=mp.field_strength_t, refocus_deg=mp.refocus_deg,
                        excite_deg=mp.excite_deg, slice_thickness_mm=grid.thickness_mm)
    write_mese_bids(series, out, participant_id, session_id)
    ip = config.ir
    t1s = T1Series(Image(_to_uint16(ses.ir), aff), "IR", inversion_times_ms=np.asarray(ip.inversion_times_ms, float),
                   tr_ms=ip.tr_ms, field_strength_t=mp.field_strength_t, echo_time_ms=ip.echo_time_ms)
    write_t1_bids(t1s, out, participant_id, session_id)
    t1w_path = bids_path(out, participant_id, session_id, "T1w")
    save_nifti(_to_uint16(ses.t1w), t1w_path, affine=aff)
    write_text_atomic(t1w_path.with_name(t1w_path.name.replace(".nii.gz", ".json")), json.dumps(
        {"RepetitionTime": 0.6, "EchoTime": 0.012, "MagneticFieldStrength": mp.field_strength_t,
         "SliceThickness": grid.thickness_mm, "ScanningSequence": "SE"}, indent=2) + "\n")
    gt: dict[str, Any] = {"derivative": GT}
    save_nifti(ses.label.astype(np.int16), bids_path(out, participant_id, session_id, "dseg",
                                                      {"desc": "muscles"}, **gt), affine=aff)
    for key in ("t2_water_ms", "fat_fraction", "b1", "m0"):
        save_nifti(ses.maps[key].astype(np.float32), bids_path(out, participant_id, session_id, MAPS[key].suffix,
                                                                {"desc": MAPS[key].desc}, **gt), affine=aff)
    save_nifti(ses.maps["t1_ms"].astype(np.float32), bids_path(out, participant_id, session_id, "T1map", **gt),
               affine=aff)
    rows = [dict(participant_id=participant_id, session_id=session_id, **r) for r in ses.muscle_table()]
    df = pd.DataFrame(rows)
    tsv = bids_path(out, participant_id, session_id, "muscles", derivative=GT, ext=".tsv")
    write_text_atomic(tsv, df.to_csv(sep="\t", index=False, na_rep="n/a", float_format="%.6g"))
    return df.to_dict("records")


def _to_uint16(a: np.ndarray) -> np.ndarray:
    """Scanner-like storage: rounded, clipped to the uint16 range."""
    return np.clip(np.round(a), 0, 65535).astype(np.uint16)


def motor_measures(people: list[dict], sessions: list[PlannedSession], muscles, effects: CohortEffects,
                   seed: int):
    """Per leg and visit: ``cmap_mv`` and ``mvic_n`` from the latent denervation and true volume.

    Returns a DataFrame (participant_id, session_id, side, cmap_mv, mvic_n, denervation).
    """
    import pandas as pd

    rng = np.random.default_rng([seed, 77])
    by_id = {p["participant_id"]: p for p in people}
    vol = muscles[muscles["muscle"].isin(["TA", "EDL"])].groupby(["participant_id", "session_id", "side"])[
        "volume_ml"].sum()
    groups = {p["participant_id"]: p["group"] for p in people}
    ctl = [v for (pid, _, _), v in vol.items() if groups.get(pid) == "control" and v > 0]
    v_ref = float(np.mean(ctl)) if ctl else float(np.mean([v for v in vol.values if v > 0] or [1.0]))
    rows = []
    persistent = {}
    for s in sessions:
        p = by_id[s.participant_id]
        for side in ("R", "L"):
            d = s.denervation[side]
            key = (s.participant_id, side)
            if key not in persistent:
                persistent[key] = (rng.normal(0, effects.cmap_noise), rng.normal(0, effects.mvic_noise))
            e_cmap, e_mvic = persistent[key]
            cmap = p["cmap_healthy_mv"] * (1 - d) ** effects.cmap_exponent * np.exp(
                e_cmap + rng.normal(0, effects.visit_noise))
            v_ant = float(vol.get((s.participant_id, s.session_id, side), 0.0))
            mvic = (effects.mvic_reference_n * (v_ant / v_ref) ** effects.mvic_volume_exponent
                    * (1 - effects.mvic_weakness * d) * np.exp(e_mvic + rng.normal(0, effects.visit_noise)))
            rows.append({"participant_id": s.participant_id, "session_id": s.session_id, "side": side,
                             "cmap_mv": round(float(cmap), 3), "mvic_n": round(float(mvic), 1), "denervation": round(d, 4)})
    return pd.DataFrame(rows)


def make_cohort(out: str | Path, n_als: int = 11, n_controls: int = 8, visits: int = 2, seed: int = 0, *,
                config: CohortConfig | None = None, workers: int = 2, progress: bool = True) -> Path:
    """Generate a synthetic BIDS cohort with motor measures and ground truth.

    Args:
        out: output folder (created; if it holds files they must be an earlier run of the same
            configuration, which is then completed).
        n_als, n_controls: group sizes (ALS have ``visits`` sessions, controls one).
        visits: visits of ALS patients (baseline, +4 months, …).
        seed: master seed (everything is reproducible from it).
        config: full configuration (overrides the four arguments above when given).
        workers: processes over sessions.
        progress: show a progress bar.

    Returns:
        ``out``.

    Raises:
        InputError: ``out`` is a file, or a non-empty folder that is not this cohort.
    """
    import pandas as pd

    out = Path(out)
    if config is None:
        config = CohortConfig(n_als=n_als, n_controls=n_controls, visits=visits, seed=seed)
    if config.n_als < 0 or config.n_controls < 0 or config.n_als + config.n_controls == 0 or config.visits < 1:
        raise ValueError(f"a cohort needs participants and visits (n_als={config.n_als}, "
                         f"n_controls={config.n_controls}, visits={config.visits})")
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder")
    cfg_path = out / "derivatives" / GT / "cohort.json"
    if out.is_dir() and any(out.iterdir()):
        if not cfg_path.exists():
            raise InputError(out, "folder is not empty and holds no synthetic cohort; choose an empty folder")
        if json.loads(cfg_path.read_text()) != json.loads(config.to_json()):
            raise InputError(cfg_path, "this folder holds a cohort made with another configuration; "
                             "choose another folder")
    write_text_atomic(cfg_path, config.to_json() + "\n")
    people, sessions = plan_cohort(config)
    work = [(out, config, s) for s in sessions]
    from alsseg.synth.render import mese_dictionary

    mese_dictionary(config.mese)  # built once here, inherited by forked workers
    results = []
    if workers > 1 and len(work) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
            it = ex.map(_render_and_write, work)
            results = list(_progress(it, len(work), progress))
    else:
        results = [r for r in _progress(map(_render_and_write, work), len(work), progress)]
    muscles = pd.DataFrame([r for rows in results for r in rows])
    motor = motor_measures(people, sessions, muscles, config.effects, config.seed)
    _write_tables(out, people, muscles, motor, f"make_cohort seed={config.seed}")
    _write_session_dates(out, session_dates(sessions, config))
    return out


def make_subject_dataset(out: str | Path, seed: int = 0, disease: str | float = "als", *,
                         config: CohortConfig | None = None, grid: Grid | None = None) -> Path:
    """A one-subject, one-session BIDS dataset of ``make_subject(seed, disease=...)``.

    Same layout and ground truth as :func:`make_cohort` (``sub-01/ses-01``), with motor
    measures from the cohort model. ``grid`` defaults to the cohort protocol's grid.
    """
    import pandas as pd

    out = Path(out)
    config = config or CohortConfig(seed=seed)
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise InputError(out, "folder is not empty; choose an empty or new folder")
    ef = config.effects
    subject = make_subject(seed, disease=disease, effect_t2_ms=ef.t2_ms, effect_ff=ef.fat_fraction,
                           effect_atrophy=ef.atrophy)
    grid = grid or session_grid(config, seed)
    rows = write_session(out, "sub-01", "ses-01", subject, grid, config, rng=np.random.default_rng([seed, 5]))
    den = {s: subject.legs[s].denervation for s in ("R", "L")}
    people = [{"participant_id": "sub-01", "group": subject.group, "age": 60, "sex": "M", "subject_seed": seed,
                   "denervation_r": den["R"], "denervation_l": den["L"], "cmap_healthy_mv": 5.5}]
    planned = [PlannedSession("sub-01", "ses-01", subject.group, seed, den, 0, seed)]
    muscles = pd.DataFrame(rows)
    motor = motor_measures(people, planned, muscles, ef, seed)
    _write_tables(out, people, muscles, motor, f"make_subject_dataset seed={seed} disease={disease}")
    _write_session_dates(out, session_dates(planned, config))
    write_text_atomic(out / "derivatives" / GT / "subject.json", json.dumps(
        {"seed": seed, "disease": disease, "group": subject.group, "denervation": den,
         "severity": {f"{m}_{s}": round(v, 4) for (s, m), v in subject.muscle_severity().items()}},
        indent=2) + "\n")
    return out


def _write_tables(out: Path, people: list[dict], muscles, motor, how: str) -> None:
    """participants, motor and ground-truth tables, dataset descriptions, label table."""
    import pandas as pd

    from alsseg.labels import dseg_tsv

    write_text_atomic(out / "dataset_description.json", json.dumps({
        "Name": "alsseg synthetic ALS lower-leg data", "BIDSVersion": "1.9.0", "DatasetType": "raw",
        "GeneratedBy": [{"Name": "alsseg.synth", "Description": how}]}, indent=2) + "\n")
    part = pd.DataFrame(people)[["participant_id", "group", "age", "sex"]]
    write_text_atomic(out / "participants.tsv", part.to_csv(sep="\t", index=False))
    write_text_atomic(out / "participants.json", json.dumps({
        "group": {"Description": "ALS patient or healthy control", "Levels": {"ALS": "patient", "control": "control"}},
        "age": {"Description": "age at baseline", "Units": "year"}, "sex": {"Description": "M or F"}}, indent=2) + "\n")
    write_text_atomic(out / "phenotype" / "motor.tsv",
                      motor[["participant_id", "session_id", "side", "cmap_mv", "mvic_n"]].to_csv(sep="\t", index=False))
    write_text_atomic(out / "phenotype" / "motor.json", json.dumps({
        "side": {"Description": "leg measured", "Levels": {"R": "right", "L": "left"}},
        "cmap_mv": {"Description": "tibialis anterior compound muscle action potential amplitude", "Units": "mV"},
        "mvic_n": {"Description": "foot dorsiflexion maximal voluntary isometric contraction", "Units": "N"}},
        indent=2) + "\n")
    gt = out / "derivatives" / GT
    write_text_atomic(gt / "dataset_description.json", json.dumps({
        "Name": "alsseg synthetic ground truth", "BIDSVersion": "1.9.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "alsseg.synth"}]}, indent=2) + "\n")
    write_text_atomic(gt / "dseg.tsv", dseg_tsv())
    write_text_atomic(gt / "muscles.tsv", muscles[list(MUSCLE_COLUMNS) + list(EXTRA_COLUMNS)].to_csv(
        sep="\t", index=False, na_rep="n/a", float_format="%.6g"))
    legs = motor.merge(pd.DataFrame(people)[["participant_id", "group"]], on="participant_id")
    write_text_atomic(gt / "legs.tsv", legs.to_csv(sep="\t", index=False))


def session_dates(sessions: list[PlannedSession], config: CohortConfig) -> dict:
    """Acquisition date-time of each session: ``{participant_id: {session_id: "YYYY-MM-DDThh:mm:ss"}}``.

    Baselines fall on working days within six months from 2024-01-08 (08:00-17:00); visit ``v``
    follows ``v · visit_interval_months`` later (30.4375 days a month) ± 7 days (SD), as clinic
    appointments do. Drawn from their own generator, so the images and tables do not change.
    """
    import datetime as dt

    rng = np.random.default_rng([config.seed, 31])
    start = dt.datetime(2024, 1, 8)
    out: dict = {}
    base: dict = {}
    for s in sessions:
        if s.participant_id not in base:
            base[s.participant_id] = start + dt.timedelta(days=int(rng.integers(0, 182)),
                                                          hours=int(rng.integers(8, 17)), minutes=int(rng.integers(0, 60)))
        when = base[s.participant_id]
        if s.visit > 0:
            days = s.visit * config.visit_interval_months * 30.4375 + rng.normal(0, 7)
            when = when + dt.timedelta(days=round(float(days)), minutes=int(rng.integers(-120, 120)))
        while when.weekday() >= 5:  # no scans at weekends
            when += dt.timedelta(days=1)
        out.setdefault(s.participant_id, {})[s.session_id] = when.strftime("%Y-%m-%dT%H:%M:%S")
    return out


def _write_session_dates(out: Path, dates: dict) -> None:
    """``sub-XX/sub-XX_sessions.tsv`` (BIDS: ``session_id``, ``acq_time``) for every subject."""
    for pid, visits in dates.items():
        lines = ["session_id\tacq_time"] + [f"{k}\t{v}" for k, v in sorted(visits.items())]
        write_text_atomic(out / pid / f"{pid}_sessions.tsv", "\n".join(lines) + "\n")


def _progress(it, total, show):
    from alsseg.progress import progress_bar

    return progress_bar(it, total=total, desc="synthetic sessions", unit="session", show=show)
