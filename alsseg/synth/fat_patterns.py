"""Fat-infiltration patterns of neuromuscular disease in the phantom's muscles.

Each muscle of a leg carries one pattern (:class:`FatPattern`), drawn per muscle by
:func:`draw_fat_patterns`; :func:`apply_fat_pattern` turns the muscle's fat fraction at a set of
points into the pattern's. The fat is fat *inside the muscle tissue* (its fat fraction), so the
label map is unchanged — a fat-replaced muscle is still annotated as that muscle, as real
annotators do — and every contrast sees it through the render path's per-voxel fat fraction.

* ``patchy`` — the default: a smooth random field modulates the disease within the muscle
  (:mod:`alsseg.synth.cross_section`; amplitude ``LegParams.patchiness``).
* ``marbled`` (Mercuri grade 2–3) — thin strands of fat along the fibres and between fascicles:
  the fat fraction rises to ``stripe_ff`` on a band around the zero set of a smooth random field
  (:attr:`alsseg.synth.anatomy.Subject.marble_field`, wavelengths 6–20 mm in-plane and
  :data:`MARBLE_Z_STRETCH` × longer along the leg), so in-plane it is a lacy network of thin
  (≈ 1–3 mm) curved stripes and along the leg elongated streaks. ``width`` (in units of the
  field's standard deviation) sets the band: area fraction ≈ ``width / sqrt(width² + 2)``.
* ``end_stage`` (Mercuri 4) — the muscle almost entirely replaced: fat fraction ``stripe_ff``
  (0.8–0.95) everywhere except a few residual muscle strands (the same field's band, fat
  fraction 0.1–0.3), giving a muscle mean of about 0.7–0.9.

Probabilities (per muscle, module constants): in a leg with disease (severity ≥
:data:`MIN_SEVERITY` and a non-zero fat effect) a muscle is end-stage with
:data:`P_END_STAGE` (rare), marbled with :data:`P_MARBLED`, otherwise patchy. In a healthy leg,
with :data:`P_AGED_MARBLING` per leg (ageing, inactivity), each muscle has mild marbling with
:data:`P_AGED_MUSCLE_MARBLED`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PATTERNS = ("patchy", "marbled", "end_stage")
#: a muscle counts as diseased (eligible for marbled / end-stage) from this severity on
MIN_SEVERITY = 0.1
#: per diseased muscle: probability of the end-stage (Mercuri 4) and marbled (Mercuri 2–3) patterns
P_END_STAGE, P_MARBLED = 0.04, 0.45
#: per healthy leg: probability of mild age-like marbling, and per muscle of such a leg
P_AGED_MARBLING, P_AGED_MUSCLE_MARBLED = 0.1, 0.4
#: stripe fat fraction and band width (field SD units) of the marbled pattern in diseased muscles
MARBLED_STRIPE_FF, MARBLED_WIDTH = (0.5, 0.9), (0.15, 0.45)
#: … and of mild marbling in healthy legs
AGED_STRIPE_FF, AGED_WIDTH = (0.25, 0.5), (0.08, 0.18)
#: end stage: fat fraction of the replaced muscle, of its residual strands, and the strands' width
END_STAGE_FF, END_STAGE_RESIDUAL_FF, END_STAGE_RESIDUAL_WIDTH = (0.8, 0.95), (0.1, 0.3), (0.08, 0.2)
#: the marbling field's wavelengths along the leg are this many times longer (fibre direction)
MARBLE_Z_STRETCH = 6.0
#: in-plane wavelength range of the marbling field, mm
MARBLE_WAVELENGTH_MM = (6.0, 20.0)


@dataclass(frozen=True)
class FatPattern:
    """The fat-infiltration pattern of one muscle.

    Attributes:
        kind: one of :data:`PATTERNS`.
        stripe_ff: marbled: fat fraction on the stripes; end_stage: fat fraction of the muscle.
        width: band half-width in units of the marbling field's SD (stripes / residual strands).
        residual_ff: end_stage: fat fraction of the residual muscle strands.
    """

    kind: str = "patchy"
    stripe_ff: float = 0.0
    width: float = 0.0
    residual_ff: float = 0.0


PATCHY = FatPattern()


def marble_field(rng: np.random.Generator):
    """The smooth random field whose zero set carries the marbling stripes (unit SD)."""
    from alsseg.synth.fields import SmoothField

    lo, hi = MARBLE_WAVELENGTH_MM
    return SmoothField.random(rng, min_wavelength_mm=lo, max_wavelength_mm=hi, n_waves=16,
                              z_stretch=MARBLE_Z_STRETCH)


def draw_fat_patterns(rng: np.random.Generator, severity: dict, *, diseased: bool) -> dict:
    """Draw one leg's patterns: ``{muscle: FatPattern}`` (patchy muscles are left out).

    Args:
        rng: random generator (a stream of its own, so other draws of the subject stay put).
        severity: muscle → disease severity 0..1 of this leg.
        diseased: whether disease may show as fat (False when the fat effect is zero).
    """
    out = {}
    aged = bool(rng.random() < P_AGED_MARBLING)
    for m in sorted(severity):
        u, v = rng.random(), rng.random()
        a, b, c = rng.random(3)
        if diseased and severity[m] >= MIN_SEVERITY:
            if u < P_END_STAGE:
                out[m] = FatPattern("end_stage", _lerp(END_STAGE_FF, a), _lerp(END_STAGE_RESIDUAL_WIDTH, b),
                                    _lerp(END_STAGE_RESIDUAL_FF, c))
            elif u < P_END_STAGE + P_MARBLED:
                out[m] = FatPattern("marbled", _lerp(MARBLED_STRIPE_FF, a), _lerp(MARBLED_WIDTH, b))
        elif aged and v < P_AGED_MUSCLE_MARBLED:
            out[m] = FatPattern("marbled", _lerp(AGED_STRIPE_FF, a), _lerp(AGED_WIDTH, b))
    return out


def _lerp(rng_range, u: float) -> float:
    return float(rng_range[0] + (rng_range[1] - rng_range[0]) * u)


def apply_fat_pattern(pattern: FatPattern, field, points_mm: np.ndarray, ff: np.ndarray) -> np.ndarray:
    """Fat fraction of a muscle's tissue at ``points_mm`` under ``pattern``.

    Args:
        pattern: the muscle's :class:`FatPattern`.
        field: the subject's marbling field (callable on ``(N, 3)`` mm points), or None
            (then every pattern acts as patchy).
        points_mm: ``(N, 3)`` world points inside the muscle.
        ff: ``(N,)`` fat fraction of the patchy model at those points.

    Returns:
        ``(N,)`` float32 fat fraction in [0, 0.97].
    """
    if pattern.kind == "patchy" or field is None or len(ff) == 0:
        return ff
    g = field(points_mm)
    band = np.exp(-np.square(g / np.float32(pattern.width))).astype(np.float32)
    if pattern.kind == "marbled":
        out = ff + band * np.maximum(np.float32(pattern.stripe_ff) - ff, 0.0)
    elif pattern.kind == "end_stage":
        out = np.float32(pattern.stripe_ff) + band * np.float32(pattern.residual_ff - pattern.stripe_ff)
    else:
        raise ValueError(f"unknown fat pattern {pattern.kind!r}; choose from {', '.join(PATTERNS)}")
    return np.clip(out, 0.0, 0.97).astype(np.float32)
