"""Fixtures of the pipeline tests: synthetic cohort tables (no imaging) and tiny BIDS datasets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

MUSCLES = ("TA", "EDL", "PER", "TP", "SOL", "GM", "GL")


def make_tables(seed: int = 0, n_als: int = 11, n_ctrl: int = 8, missing_motor: int = 0):
    """(muscles, participants, motor) with a known structure: a latent per-leg denervation
    ``d`` in [0, 1] raises T2 (+15 ms · d), lowers volume and MVIC / CMAP; controls d = 0."""
    rng = np.random.default_rng(seed)
    parts, mus, mot = [], [], []
    for i in range(n_als + n_ctrl):
        pid = f"sub-{i + 1:02d}"
        als = i < n_als
        parts.append({"participant_id": pid, "group": "ALS" if als else "control"})
        sessions = ("ses-01", "ses-02") if als else ("ses-01",)
        d0 = {s: (rng.uniform(0.1, 0.9) if als else 0.0) for s in ("R", "L")}
        for k, ses in enumerate(sessions):
            for side in ("R", "L"):
                d = min(1.0, d0[side] + (k * rng.uniform(0.0, 0.3) if als else 0.0))
                mot.append({"participant_id": pid, "session_id": ses, "side": side,
                            "cmap_mv": 8 * (1 - 0.8 * d) + rng.normal(0, 0.3),
                            "mvic_n": 250 * (1 - 0.7 * d) + rng.normal(0, 8)})
                for m in MUSCLES:
                    w = 1.0 if m in ("TA", "EDL") else 0.5
                    mus.append({"participant_id": pid, "session_id": ses, "side": side, "muscle": m,
                                "t2_water_ms": 30 + 15 * w * d + rng.normal(0, 0.8),
                                "volume_ml": 100 * (1 - 0.3 * w * d) + rng.normal(0, 4),
                                "fat_fraction": 0.05 + 0.1 * w * d + rng.normal(0, 0.01),
                                "t1_ms": 1400 + rng.normal(0, 30)})
    motor = pd.DataFrame(mot)
    if missing_motor:
        motor.loc[motor.index[:missing_motor], "mvic_n"] = np.nan
    return pd.DataFrame(mus), pd.DataFrame(parts), motor


@pytest.fixture
def cohort_tables():
    return make_tables()


@pytest.fixture
def table_maker():
    """``make_tables(seed=0, n_als=11, n_ctrl=8, missing_motor=0)``."""
    return make_tables


# ------------------------------------------------------------------ a tiny BIDS dataset on disk
TINY_SHAPE = (26, 14, 4)
TINY_AFFINE = np.diag([1.5, 1.5, 7.0, 1.0])
#: label id -> (x slice, y slice, z slice, water T2 ms, FF): TA and SOL of each leg
TINY_MUSCLES = {
    1: (slice(16, 22), slice(2, 7), slice(0, 3), 31.0, 0.05),     # TA_R  (right leg at +x)
    5: (slice(16, 23), slice(8, 13), slice(0, 4), 36.0, 0.15),    # SOL_R (cut by the FOV: all slices)
    11: (slice(3, 9), slice(2, 7), slice(1, 4), 29.0, 0.03),      # TA_L
    15: (slice(3, 10), slice(8, 13), slice(0, 4), 33.0, 0.10),    # SOL_L
}


def tiny_session_arrays(t2_shift: float = 0.0):
    """(labels, t2, ff) arrays of the tiny session; muscles' T2 raised by ``t2_shift`` ms."""
    lab = np.zeros(TINY_SHAPE, np.int16)
    t2 = np.full(TINY_SHAPE, 30.0)
    ff = np.full(TINY_SHAPE, 0.9)     # fat around the muscles
    for lid, (sx, sy, sz, tt, f) in TINY_MUSCLES.items():
        lab[sx, sy, sz] = lid
        t2[sx, sy, sz] = tt + t2_shift
        ff[sx, sy, sz] = f
    return lab, t2, ff


def write_tiny_bids(root, sessions=(("sub-01", "ses-01", 0.0), ("sub-01", "ses-02", 3.0), ("sub-02", "ses-01", -1.0)),
                    participants=(("sub-01", "ALS"), ("sub-02", "control"), ("sub-03", "control")),
                    motor_rows=None):
    """Write a small BIDS dataset (noiseless two-component EPG MESE, 17 echoes × 10 ms) with
    ground-truth label maps under ``derivatives/groundtruth``; returns the root."""
    from pathlib import Path

    from alsseg.io import Image, MeseSeries, save_nifti, write_mese_bids
    from alsseg.relax.acquisition import MeseAcquisition
    from alsseg.relax.t2 import two_component_signal

    root = Path(root)
    te = 10.0 * np.arange(1, 18)
    acq = MeseAcquisition.from_echo_times(te, tr_ms=3000.0)
    for sub, ses, shift in sessions:
        lab, t2, ff = tiny_session_arrays(shift)
        sig = two_component_signal(acq, t2, ff, 0.9, 1000.0).astype(np.float32)
        series = MeseSeries(Image(sig, TINY_AFFINE), te, tr_ms=3000.0, field_strength_t=3.0,
                            refocus_deg=180.0, excite_deg=90.0, slice_thickness_mm=7.0)
        write_mese_bids(series, root, sub, ses)
        gt = root / "derivatives" / "groundtruth" / sub / ses / "anat" / f"{sub}_{ses}_desc-muscles_dseg.nii.gz"
        save_nifti(Image(lab, TINY_AFFINE), gt)
    (root / "participants.tsv").write_text("participant_id\tgroup\n" + "".join(f"{p}\t{g}\n" for p, g in participants))
    (root / "phenotype").mkdir(exist_ok=True)
    if motor_rows is None:
        motor_rows = [(s, v, side, 5.0, 200.0) for s, v, _ in sessions for side in ("R", "L")]
    (root / "phenotype" / "motor.tsv").write_text(
        "participant_id\tsession_id\tside\tcmap_mv\tmvic_n\n"
        + "".join(f"{a}\t{b}\t{c}\t{d}\t{e}\n" for a, b, c, d, e in motor_rows))
    (root / "dataset_description.json").write_text('{"Name": "tiny", "BIDSVersion": "1.9.0"}')
    return root


@pytest.fixture
def tiny_bids(tmp_path):
    return write_tiny_bids(tmp_path / "bids")


@pytest.fixture
def tiny_bids_writer():
    """``write_tiny_bids(root, sessions=..., participants=..., motor_rows=None) -> root``."""
    return write_tiny_bids


@pytest.fixture
def tiny_arrays():
    """``tiny_session_arrays(t2_shift=0.0) -> (labels, t2, ff)``."""
    return tiny_session_arrays
