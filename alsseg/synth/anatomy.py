"""Parametric 3-D anatomy of both lower legs: tissues, muscles and disease at any world point.

Each leg is described in its own frame: ``l`` (mm, towards the leg's lateral side), ``a`` (mm,
anterior) and ``s`` (0 at the ankle joint, 1 at the knee joint). At every level ``s`` the
cross-section is built from a few parametric pieces, following real axial anatomy:

* the **deep fascia** (outer boundary of the muscles): an ellipse with different anterior and
  posterior semi-axes, jittered by a low-order Fourier series, scaled along the leg by an
  envelope (narrow at the ankle, widest at the calf belly);
* **subcutaneous fat** of angle-dependent thickness (thin over the shin) and **skin**;
* the **tibia** (rounded triangle, anteromedial, cortex + marrow, its medial face under the
  skin) and the **fibula** (posterolateral, cortex + marrow);
* the **interosseous membrane** (tibia → fibula) splits anterior from posterior;
  the **anterior and posterior intermuscular septa** (rays from the fibula) bound the lateral
  compartment (PER); the anterior compartment is split into TA (next to the tibia) and EDL
  (lateral) by a ray from the membrane; behind the membrane the deep compartment (TP) is an
  ellipse under the transverse septum, the superficial layer is gastrocnemius (GM medial,
  GL lateral, angular sectors with a bump-shaped thickness) and the rest is soleus;
* each muscle has a presence profile along ``s``: it shrinks towards its core and ends
  (GM/GL end well above the ankle; SOL continues lower; distally the space turns to fat and
  tendons: Achilles, TA);
* **fascia/septa** are thin sheets (with a random fat layer) on every boundary, drawn with
  their partial-volume fraction; **vessels** (anterior/posterior tibial, peroneal, saphenous
  veins) are small discs.

Random per subject: sizes, proportions, Fourier shape, fat thickness, leg separation and
rotation, a smooth elastic deformation, muscle proportions; disease acts per muscle through a
latent per-leg denervation (atrophy, raised water T2, fat replacement), patchy within a muscle
through a smooth random field.

Everything is a closed-form function of world position, so it can be sampled on any grid; the
evaluation at points lives in :mod:`alsseg.synth.cross_section`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from alsseg.synth.fat_patterns import draw_fat_patterns, marble_field
from alsseg.synth.fields import SmoothField

# ---------------------------------------------------------------- tissue classes
AIR, SKIN, FAT, MUSCLE, FASCIA, CORTEX, MARROW, VEIN, ARTERY, TENDON, APONEUROSIS = range(11)
TISSUE_NAMES = ("air", "skin", "fat", "muscle", "fascia", "cortex", "marrow", "vein", "artery", "tendon",
                "aponeurosis")
#: tissues that count as the muscle for its label: an intramuscular aponeurosis is a dark line
#: *inside* a muscle (TA's central tendon, soleus', the gastrocnemii's), not a boundary.
LABELLED_TISSUES = (MUSCLE, APONEUROSIS)
#: index of "muscle that is none of the labelled seven" (FDL, FHL, popliteus) in the leg's
#: compartment map: muscle tissue, label 0 in the target.
OTHER_MUSCLE = 8
N_TISSUES = len(TISSUE_NAMES)

MUSCLES = ("TA", "EDL", "PER", "TP", "SOL", "GM", "GL")
#: relative susceptibility of each muscle to ALS denervation (TA, EDL, GM most affected).
ALS_SUSCEPTIBILITY = {"TA": 1.0, "EDL": 0.9, "PER": 0.6, "TP": 0.4, "SOL": 0.55, "GM": 0.8, "GL": 0.65}



@dataclass(frozen=True)
class LegParams:
    """Random parameters of one leg (all lengths in mm, angles in degrees).

    Attributes:
        side: ``"R"`` or ``"L"`` (subject's side, world RAS).
        centre_mm: ``(x, y)`` world position of the leg axis at ``s = 0.5``.
        slope: ``(dx/dz, dy/dz)`` tilt of the leg axis.
        rotation_deg: external rotation of the leg about its axis.
        half_width_mm: medio-lateral semi-axis of the deep fascia at the calf belly.
        ant_mm, post_mm: anterior / posterior semi-axes at the calf belly.
        fourier: ``(2, 4)`` cos/sin coefficients (orders 2..5) of the contour jitter.
        fat_mm: mean subcutaneous fat thickness.
        skin_mm: skin thickness.
        tibia_mm, fibula_mm: bone radii at the shaft.
        tibia_angle_deg, fibula_angle_deg: direction of the bones from the leg centre.
        proportions: muscle → relative size factor.
        septum_fat_mm: thickness of the fat layer along intermuscular septa.
        septum_mm: thickness of the septa's collagen (fascia) sheet.
        denervation: latent denervation of this leg, 0 (healthy) … 1 (end stage).
        severity: muscle → disease severity 0..1 (from denervation and susceptibility).
        t2_water_ms: muscle → water T2 of the healthy-part baseline.
        fat_fraction: muscle → baseline fat fraction.
        t2_increase_ms: muscle → maximum water T2 increase where the disease is fully expressed.
        ff_increase: muscle → fat fraction increase where fully expressed.
        atrophy: muscle → fraction of volume lost (0..0.7).
        patchiness: amplitude of within-muscle variation of disease (0 = uniform).
        aponeurosis_mm: thickness of the intramuscular aponeuroses (TA, SOL, GM, GL).
        aponeurosis_strength: how much of the aponeurosis sheet is collagen (0 = invisible).
        deep_flexor_scale: size factor of FDL/FHL (unlabelled deep posterior muscles).
        geometry: compartment-geometry offsets beyond the published spread (see
            :data:`SHAPE_JITTER_SD`; empty = none): angles in degrees, ``*_scale`` factors.
        fat_patterns: muscle → :class:`alsseg.synth.fat_patterns.FatPattern` (marbled /
            end-stage); muscles not listed are patchy.
    """

    side: str
    centre_mm: tuple[float, float]
    slope: tuple[float, float]
    rotation_deg: float
    half_width_mm: float
    ant_mm: float
    post_mm: float
    fourier: np.ndarray
    fat_mm: float
    skin_mm: float
    tibia_mm: float
    fibula_mm: float
    tibia_angle_deg: float
    fibula_angle_deg: float
    proportions: dict
    septum_fat_mm: float
    septum_mm: float
    denervation: float
    severity: dict
    t2_water_ms: dict
    fat_fraction: dict
    t2_increase_ms: dict
    ff_increase: dict
    atrophy: dict
    patchiness: float
    aponeurosis_mm: float = 0.0
    aponeurosis_strength: float = 0.0
    deep_flexor_scale: float = 1.0
    fat_patterns: dict = field(default_factory=dict)
    geometry: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Subject:
    """A random subject: both legs, tissue properties, fields; the ground truth of a phantom.

    Attributes:
        seed: the seed it was drawn from.
        group: ``"control"`` or ``"ALS"`` (free text for other uses).
        legs: ``{"R": LegParams, "L": LegParams}``.
        leg_length_mm: ankle-to-knee length.
        z_ankle_mm: world z of the ankle joint (the knee is at ``z_ankle + leg_length``).
        deform: smooth fields for the elastic deformation (x, y) and its amplitude (mm).
        patch_field: smooth field that modulates disease within muscles.
        tissue_field: smooth field for small within-tissue variation.
        b1_mean, b1_field, b1_amplitude: transmit field ``b1 = b1_mean + amp * field``.
        bias_field, bias_amplitude: receive bias ``exp(amp * field)``.
        tissues: tissue name → dict(pd, t2_ms, t1_ms, ff) for non-muscle tissues.
        streaks: strength (0–1) of thin intramuscular fat/connective-tissue streaks.
        marble_field: smooth field whose zero set carries marbled fat stripes
            (:mod:`alsseg.synth.fat_patterns`); None: no marbling.
    """

    seed: int
    group: str
    legs: dict
    leg_length_mm: float
    z_ankle_mm: float
    deform: tuple
    deform_mm: float
    patch_field: SmoothField
    tissue_field: SmoothField
    b1_mean: float
    b1_field: SmoothField
    b1_amplitude: float
    bias_field: SmoothField
    bias_amplitude: float
    tissues: dict = field(default_factory=dict)
    streaks: float = 0.4
    marble_field: SmoothField | None = None

    def muscle_severity(self) -> dict:
        """``{(side, muscle): severity}``."""
        return {(s, m): self.legs[s].severity[m] for s in ("R", "L") for m in MUSCLES}


#: default non-muscle tissue properties at 3 T: proton density (muscle water = 1, receive
#: weighting included), water T2 and T1 (ms), fat fraction of the signal, and optionally the
#: apparent T2 of the tissue's fat (``fat_t2_ms``; default FAT_T2_MS). Intramuscular fat keeps
#: FAT_T2_MS, the relaxometry model's value. Adipose tissue: PD 1.45, apparent fat T2 125 ms —
#: subcutaneous fat decays faster than the 151 ms fat pool of the muscle model in a CPMG train
#: (J-coupling, several spectral lines); tuned on the real 3 T scan (benchmarks/synth_realism.py).
#: Yellow marrow: PD 1.1, apparent fat T2 135 ms, i.e. 10 ms longer than adipose tissue. Reported
#: 3 T T2 of marrow and subcutaneous fat depend on the sequence (41–143 ms for subcutaneous fat,
#: 42–160 ms for marrow across SE/MESE/FSE; Pai, Li & Majumdar, Magn Reson Imaging
#: 2008;26:1215), marrow reading the longer; on the real scan (../shared/data/mese-leg-3t) the
#: same single-pool EPG calibration (alsseg.relax.fat.calibrate_fat_t2) reads marrow 131 ms vs
#: subcutaneous fat 108 ms, while on the phantom with one fat T2 for both it read 119 / 117 ms.
FAT_T2_MS = 151.0
FAT_T1_MS = 365.0
MUSCLE_T1_MS = 1400.0
#: thickness range (mm) of the collagen sheet of the intermuscular septa, drawn per subject: the
#: gastrocnemius–soleus septum of the real 3 T scan is a dark line that about 2.2–2.4 mm matches
#: (docs/synth.md, *Intermuscular septa*); thinner, fainter septa keep a model from relying on them.
SEPTUM_FASCIA_MM_RANGE = (1.0, 2.4)
#: subject-level transmit scale of the refocusing/excitation pulses (``b1_mean``, drawn uniformly)
#: and the amplitude of its smooth spatial variation across both calves (``b1_amplitude``).
#: At 3 T the RF wavelength in tissue (≈ 26–30 cm) is 2–3 times a calf's diameter (10–13 cm),
#: and the scanner's transmitter calibration sets the flip angle on average over the imaged
#: volume, so the calf sees B1 close to nominal, typically within about ±10 % (the larger 3 T B1
#: inhomogeneity is a trunk/thigh problem). The real 3 T calf scan reads B1 1.03 (IQR 1.00–1.06)
#: in muscle with this project's EPG fit and 0.98 with MyoQMRI (docs/relax.md). The earlier range
#: 0.85–1.02 (mean 0.935) was biased low; below ≈ 0.95 the slice-profile EPG train of muscle
#: alternates more between odd and even late echoes than the real calf's (docs/synth.md, realism
#: check). Only the range changed: the same random draw maps linearly, so anatomy is unchanged.
B1_MEAN_RANGE = (0.92, 1.08)
B1_AMPLITUDE_RANGE = (0.03, 0.08)
DEFAULT_TISSUES = {
    "air": {"pd": 0.0, "t2_ms": 30.0, "t1_ms": 1000.0, "ff": 0.0},
    "skin": {"pd": 0.75, "t2_ms": 35.0, "t1_ms": 1000.0, "ff": 0.35},
    "fat": {"pd": 1.45, "t2_ms": 40.0, "t1_ms": 1000.0, "ff": 0.95, "fat_t2_ms": 125.0},
    "fascia": {"pd": 0.4, "t2_ms": 5.0, "t1_ms": 800.0, "ff": 0.0},
    "cortex": {"pd": 0.06, "t2_ms": 2.0, "t1_ms": 500.0, "ff": 0.0},
    "marrow": {"pd": 1.1, "t2_ms": 40.0, "t1_ms": 900.0, "ff": 0.9, "fat_t2_ms": 135.0},
    "vein": {"pd": 0.9, "t2_ms": 180.0, "t1_ms": 1900.0, "ff": 0.0},
    "artery": {"pd": 0.08, "t2_ms": 100.0, "t1_ms": 1900.0, "ff": 0.0},
    "tendon": {"pd": 0.08, "t2_ms": 6.0, "t1_ms": 600.0, "ff": 0.0},
    "aponeurosis": {"pd": 0.4, "t2_ms": 8.0, "t1_ms": 800.0, "ff": 0.0},
}
#: thickness (mm) and visibility of the intramuscular aponeuroses, drawn per leg; range of the
#: deep flexors' size factor; per-leg external rotation (deg, s.d.) and elastic deformation (mm)
#: that curve every compartment boundary (real boundaries are not straight rays).
APONEUROSIS_MM_RANGE = (0.5, 1.6)
APONEUROSIS_STRENGTH_RANGE = (0.25, 1.0)
DEEP_FLEXOR_SCALE_RANGE = (0.75, 1.3)
LEG_ROTATION_SD_DEG = 17.0
DEFORM_MM_RANGE = (2.0, 7.0)
#: per-leg compartment geometry drawn *beyond* the published spread when ``shape_jitter`` > 0
#: (:func:`make_subject`): s.d. at ``shape_jitter`` = 1 of each offset (degrees) or log-factor
#: (``*_scale`` and ``proportion``: the factor is exp(s.d. × z)), z standard normal clipped to
#: ±2. The angles are those of the compartment boundaries in alsseg.synth.cross_section (TA/EDL
#: split, peroneal septa, GM/GL midline, the gastrocnemii's medial and lateral ends, bones'
#: directions); the scales those of the gastrocnemii's thickness and TP's depth; ``proportion``
#: multiplies every muscle's size factor independently. Meant for training data (a network that
#: can no longer predict a boundary from the bones must find it in the image); 0 = the phantom of
#: the published proportions, unchanged.
SHAPE_JITTER_SD = {"ta_edl_split_deg": 10.0, "per_anterior_deg": 8.0, "per_posterior_deg": 8.0,
                   "gast_midline_deg": 12.0, "gm_medial_end_deg": 8.0, "gl_lateral_end_deg": 8.0,
                   "tibia_angle_deg": 5.0, "fibula_angle_deg": 6.0, "gast_thickness_scale": 0.2,
                   "tp_depth_scale": 0.12, "proportion": 0.15}


def _jitter_geometry(rng, shape_jitter: float) -> dict:
    """One leg's draw of :data:`SHAPE_JITTER_SD` scaled by ``shape_jitter`` (``{}`` when 0).

    Keys: those of :data:`SHAPE_JITTER_SD` (``*_deg`` offsets, ``*_scale`` factors) and
    ``proportion_<muscle>`` factors in place of ``proportion``.
    """
    if shape_jitter == 0:
        return {}
    out = {}
    for key, sd in SHAPE_JITTER_SD.items():
        names = [f"proportion_{m}" for m in MUSCLES] if key == "proportion" else [key]
        for name in names:
            z = float(np.clip(rng.standard_normal(), -2.0, 2.0)) * sd * shape_jitter
            out[name] = float(np.exp(z)) if (key == "proportion" or key.endswith("_scale")) else z
    return out


def _u(rng, lo, hi):
    return float(rng.uniform(lo, hi))


def make_subject(seed: int = 0, *, disease: str | float = "healthy",
                 denervation: dict | None = None, group: str | None = None,
                 effect_t2_ms: float = 14.0, effect_ff: float = 0.35,
                 effect_atrophy: float = 0.6, tissues: dict | None = None,
                 shape_jitter: float = 0.0) -> Subject:
    """Draw a random subject (both legs) from ``seed``.

    Args:
        seed: random seed; the same seed gives the same subject.
        disease: ``"healthy"`` (latent denervation ≈ 0), ``"als"`` (random per-leg
            denervation 0.15–0.9, asymmetric), or a number in [0, 1] (both legs, ± asymmetry).
        denervation: explicit ``{"R": d, "L": d}`` latent denervation (overrides ``disease``).
        group: label stored on the subject (default from ``disease``).
        effect_t2_ms: water T2 increase (ms) of a fully denervated muscle of susceptibility 1.
        effect_ff: fat fraction increase of such a muscle.
        effect_atrophy: volume fraction lost by such a muscle.
        tissues: overrides of :data:`DEFAULT_TISSUES` entries.
        shape_jitter: compartment geometry beyond the published spread, in units of
            :data:`SHAPE_JITTER_SD` (0: none; the rest of the subject is the same for any value).

    Returns:
        :class:`Subject`.
    """
    rng = np.random.default_rng(seed)
    if denervation is None:
        if isinstance(disease, str) and disease.lower() == "healthy":
            base = _u(rng, 0.0, 0.04)
            denervation = {"R": base, "L": float(np.clip(base + rng.normal(0, 0.01), 0, 1))}
        elif isinstance(disease, str) and disease.lower() == "als":
            base = _u(rng, 0.15, 0.85)
            asym = rng.normal(0, 0.15)
            denervation = {"R": float(np.clip(base + asym / 2, 0, 1)), "L": float(np.clip(base - asym / 2, 0, 1))}
        else:
            try:
                base = float(disease)
            except (TypeError, ValueError):
                raise ValueError(f"disease must be 'healthy', 'als' or a number in [0, 1], got {disease!r}") from None
            if not 0.0 <= base <= 1.0:
                raise ValueError(f"disease (latent denervation) must be within [0, 1], got {base}")
            asym = rng.normal(0, 0.08)
            denervation = {"R": float(np.clip(base + asym / 2, 0, 1)), "L": float(np.clip(base - asym / 2, 0, 1))}
    else:
        denervation = {s: float(np.clip(denervation[s], 0, 1)) for s in ("R", "L")}
    rng_d = np.random.default_rng([seed, 1])  # disease draws apart, so anatomy is stable across disease levels
    # septa apart too (added later: the other draws, and so every seed's anatomy, stay as they were)
    septum_mm = _u(np.random.default_rng([seed, 2]), *SEPTUM_FASCIA_MM_RANGE)
    rng_x = np.random.default_rng([seed, 3])  # aponeuroses and deep flexors (added later), apart too
    extra = {side: {"aponeurosis_mm": _u(rng_x, *APONEUROSIS_MM_RANGE),
                        "aponeurosis_strength": _u(rng_x, *APONEUROSIS_STRENGTH_RANGE),
                        "deep_flexor_scale": _u(rng_x, *DEEP_FLEXOR_SCALE_RANGE)} for side in ("R", "L")}
    # fat-infiltration patterns (added later, a stream of their own as well)
    rng_f = np.random.default_rng([seed, 5])
    patterns = {side: draw_fat_patterns(rng_f, {m: dn * ALS_SUSCEPTIBILITY[m] for m in MUSCLES},
                                        diseased=effect_ff > 0) for side, dn in denervation.items()}
    if not np.isfinite(shape_jitter) or shape_jitter < 0:
        raise ValueError(f"shape_jitter must be a finite number >= 0, got {shape_jitter}")
    geometry = {side: _jitter_geometry(np.random.default_rng([seed, 6, i]), shape_jitter)
                for i, side in enumerate(("R", "L"))}
    if group is None:
        group = "control" if (isinstance(disease, str) and disease.lower() == "healthy") else "ALS"

    size = _u(rng, 0.85, 1.15)
    fat_mm = _u(rng, 3.0, 11.0)
    separation = 2.0 * (50.0 * size * 1.04 + fat_mm + 2.0) + _u(rng, 4.0, 70.0)
    centre = rng.normal(0, 6, 2)
    leg_length = _u(rng, 340, 420) * size ** 0.5
    s_centre = _u(rng, 0.5, 0.62)
    props_common = {m: _u(rng, 0.85, 1.15) for m in MUSCLES}
    t2_base = {m: _u(rng, 27.0, 31.5) for m in MUSCLES}
    ff_base = {m: _u(rng, 0.01, 0.045) for m in MUSCLES}
    legs = {}
    for side in ("R", "L"):
        sign = 1.0 if side == "R" else -1.0
        asym = _u(rng, 0.96, 1.04)
        fourier = rng.normal(0, 0.025, (2, 4)) / np.arange(2, 6)[None, :] ** 0.5
        dn = denervation[side]
        severity, t2i, ffi, atr = {}, {}, {}, {}
        for m in MUSCLES:
            sev = float(np.clip(dn * ALS_SUSCEPTIBILITY[m] * rng_d.uniform(0.85, 1.15), 0, 1)) if dn > 0 else 0.0
            severity[m] = sev
            t2i[m] = effect_t2_ms * sev
            ffi[m] = effect_ff * sev ** 1.5
            atr[m] = float(np.clip(effect_atrophy * sev, 0, 0.7))
        legs[side] = LegParams(
            side=side,
            centre_mm=(float(centre[0] + sign * separation / 2 + rng.normal(0, 3)), float(centre[1] + rng.normal(0, 4))),
            slope=(float(sign * rng.normal(0.03, 0.03)), float(rng.normal(0, 0.04))),
            rotation_deg=float(rng.normal(0, 1) * LEG_ROTATION_SD_DEG),
            half_width_mm=50.0 * size * asym * _u(rng, 0.95, 1.05),
            ant_mm=37.0 * size * asym * _u(rng, 0.92, 1.08),
            post_mm=45.0 * size * asym * _u(rng, 0.9, 1.1),
            fourier=fourier,
            fat_mm=fat_mm * _u(rng, 0.9, 1.1),
            skin_mm=_u(rng, 1.2, 2.0),
            tibia_mm=14.0 * size ** 0.7 * _u(rng, 0.9, 1.1),
            fibula_mm=6.5 * size ** 0.7 * _u(rng, 0.85, 1.15),
            tibia_angle_deg=_u(rng, 95, 112) + geometry[side].get("tibia_angle_deg", 0.0),
            fibula_angle_deg=_u(rng, -32, -12) + geometry[side].get("fibula_angle_deg", 0.0),
            proportions={m: props_common[m] * _u(rng, 0.95, 1.05) * geometry[side].get(f"proportion_{m}", 1.0)
                         for m in MUSCLES},
            septum_fat_mm=_u(rng, 0.05, 0.6),
            septum_mm=septum_mm,
            denervation=dn,
            severity=severity,
            t2_water_ms={m: t2_base[m] + rng.normal(0, 0.4) for m in MUSCLES},
            fat_fraction={m: float(np.clip(ff_base[m] + rng.normal(0, 0.005), 0.005, 0.2)) for m in MUSCLES},
            t2_increase_ms=t2i, ff_increase=ffi, atrophy=atr,
            patchiness=_u(rng, 0.3, 0.8),
            **extra[side],
            fat_patterns=patterns[side],
            geometry=geometry[side],
        )
    tissue_props = {k: dict(v) for k, v in DEFAULT_TISSUES.items()}
    for k, v in (tissues or {}).items():
        tissue_props[k] = {**tissue_props[k], **v}
    return Subject(
        seed=int(seed), group=group, legs=legs, leg_length_mm=leg_length,
        z_ankle_mm=-s_centre * leg_length,
        deform=(SmoothField.random(rng, min_wavelength_mm=60, max_wavelength_mm=160, z_stretch=3, n_waves=6),
                SmoothField.random(rng, min_wavelength_mm=60, max_wavelength_mm=160, z_stretch=3, n_waves=6)),
        deform_mm=_u(rng, *DEFORM_MM_RANGE),
        patch_field=SmoothField.random(rng_d, min_wavelength_mm=15, max_wavelength_mm=60, z_stretch=2.5),
        tissue_field=SmoothField.random(rng, min_wavelength_mm=20, max_wavelength_mm=80),
        b1_mean=_u(rng, *B1_MEAN_RANGE), b1_field=SmoothField.random(rng, min_wavelength_mm=150, max_wavelength_mm=500, n_waves=6),
        b1_amplitude=_u(rng, *B1_AMPLITUDE_RANGE),
        bias_field=SmoothField.random(rng, min_wavelength_mm=120, max_wavelength_mm=400, n_waves=6),
        bias_amplitude=_u(rng, 0.05, 0.25),
        tissues=tissue_props,
        streaks=_u(rng, 0.2, 0.7),
        marble_field=marble_field(rng_f),
    )
