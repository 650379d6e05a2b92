"""Named slice-profile presets of MESE sequences, and the parser of ``--slice-profile``.

No vendor publishes the RF pulses of its product multi-echo spin-echo sequence, and the DICOM
headers do not carry them: the Siemens ``*se2d17`` scan of ``../shared/data/mese-leg-3t`` records
the nominal refocusing angle (``FlipAngle`` 180), ``SliceThickness`` (7 mm), the sequence name and
the transmit coil, nothing about pulse shape, time-bandwidth product or the refocusing slab
width. Each preset therefore states what it assumes; where your vendor's pulses are known, give
them as numbers (``TBW_EXC,TBW_REF,RATIO``).

Presets (``SLICE_PROFILE_PRESETS``):

``siemens`` (the default)
    Hanning-windowed sinc pulses, excitation time-bandwidth 3.0, refocusing 2.5 with its flip
    profile approximated as twice that of the same pulse at 90°, refocusing slab 0.9 × the
    excitation slab. Chosen on the Siemens ``se2d17`` scan as the profile leaving the smallest
    median fit residual (``docs/relax.md``); an empirical fit, not the vendor's pulse.
``sinc-tbw2``
    The pulse parameters MyoQMRI assumes for Siemens scanners (Santini et al.): Hanning-windowed
    sinc, time-bandwidth 2 for both pulses, refocusing profile twice the 90° profile, refocusing
    slab 1.2 × the excitation slab (MyoQMRI's ``refWidthFactor`` 0.2), computed by alsseg's
    Bloch simulation. MyoQMRI derives its flip-angle profile differently (from the SLR
    polynomials of the pulse, binned to 20/24 positions): on MyoQMRI's own signals this preset
    reads water T2 3.2 ms high, while MyoQMRI's arrays passed as a ``SliceProfile`` read it
    without bias (``benchmarks/bench_t2_model_mismatch.py``).
``generic``
    Textbook selective pulses: Hanning-windowed sinc of time-bandwidth 4 for both, the
    refocusing profile simulated at 180° (Bloch/spinor), equal slab widths. For a scanner whose
    pulses are unknown; expect ~1–2 ms of water-T2 uncertainty (``docs/relax.md``).
``ideal``
    A perfectly rectangular slice (no slice profile): stimulated echoes from B1 only.

GE and Philips have no preset: their product pulses are not public. Pass
``TBW_EXC,TBW_REF,RATIO`` (Hanning-sinc pulses, refocusing simulated at 180°) or
``RATIO,TRANSITION`` (erf-edged rectangles, :meth:`SliceProfile.smooth`).
"""

from __future__ import annotations

import math
from typing import Any

from alsseg.io.errors import InputError
from alsseg.relax.epg import SliceProfile

#: name → (description, keyword arguments of :meth:`SliceProfile.sinc_pulses`, or None = ideal).
SLICE_PROFILE_PRESETS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "siemens": (("Hanning-sinc, TBW 3.0 / 2.5, refocusing = 2 x the 90-degree profile, refocusing slab 0.9 x "
                 "(tuned on the Siemens se2d17 scan; the default)"),
                {"tbw_excite": 3.0, "tbw_refocus": 2.5, "refocus_width_ratio": 0.9, "refocus_from_90": True}),
    "sinc-tbw2": (("Hanning-sinc, TBW 2 / 2, refocusing = 2 x the 90-degree profile, refocusing slab 1.2 x "
                   "(the pulse parameters MyoQMRI assumes; alsseg's Bloch profile, not MyoQMRI's arrays)"),
                  {"tbw_excite": 2.0, "tbw_refocus": 2.0, "refocus_width_ratio": 1.2, "refocus_from_90": True}),
    "generic": ("textbook: Hanning-sinc, TBW 4 / 4, refocusing simulated at 180 degrees, equal slabs",
                {"tbw_excite": 4.0, "tbw_refocus": 4.0, "refocus_width_ratio": 1.0}),
    "ideal": ("rectangular slice, nominal flip angles everywhere", None),
}
DEFAULT_SLICE_PROFILE = "siemens"


def preset_profile(name: str) -> SliceProfile:
    """The :class:`SliceProfile` of a preset (see the module docstring).

    Raises
    ------
    InputError
        Unknown name.
    """
    if name not in SLICE_PROFILE_PRESETS:
        raise InputError(None, f"unknown slice-profile preset {name!r} (choose {', '.join(SLICE_PROFILE_PRESETS)}, "
                         "or give TBW_EXC,TBW_REF,RATIO or RATIO,TRANSITION)")
    kwargs = SLICE_PROFILE_PRESETS[name][1]
    return SliceProfile.ideal() if kwargs is None else SliceProfile.sinc_pulses(n_positions=32, extent=1.5, **kwargs)


def parse_slice_profile(text) -> SliceProfile:
    """A ``--slice-profile`` value: a preset name, ``TBW_EXC,TBW_REF,RATIO`` (Hanning-sinc pulses,
    refocusing simulated at 180°) or ``RATIO,TRANSITION`` (erf-edged slabs).

    Raises
    ------
    InputError
        Neither a preset nor 2–3 positive numbers.
    """
    text = str(text).strip()
    if text in SLICE_PROFILE_PRESETS:
        return preset_profile(text)
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        vals = []
    if len(vals) not in (2, 3) or not all(0 < v <= 20 and math.isfinite(v) for v in vals) or (len(vals) == 2 and vals[1] > 1):
        raise InputError(None, f"--slice-profile {text!r}: expected a preset ({', '.join(SLICE_PROFILE_PRESETS)}), "
                         "TBW_EXC,TBW_REF,RATIO (e.g. 3,2.5,0.9) or RATIO,TRANSITION (e.g. 1.2,0.12)")
    if len(vals) == 3:
        return SliceProfile.sinc_pulses(tbw_excite=vals[0], tbw_refocus=vals[1], refocus_width_ratio=vals[2])
    return SliceProfile.smooth(n_positions=24, transition=vals[1], refocus_width_ratio=vals[0], extent=1.0)
