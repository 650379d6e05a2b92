"""Acquisition descriptions for the relaxometry models (what the scanner did, in ms and degrees)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from alsseg.io.errors import InputError
from alsseg.relax.epg import SliceProfile

#: Relative tolerance on echo-time spacing before a train counts as non-uniform.
ECHO_SPACING_RTOL = 0.02


def default_profile() -> SliceProfile:
    """Slice profile used when none is given: tuned on the Siemens ``se2d17`` 3 T scan.

    Hanning-windowed sinc pulses, excitation time-bandwidth 3.0, refocusing time-bandwidth 2.5
    with its flip-angle profile approximated as twice that of the same pulse at 90°, refocusing
    slab 0.9 × the excitation slab, 32 positions over ``z ∈ [0, 1.5]`` slice widths. Of the
    profiles scanned on the muscle voxels of ``../shared/data/mese-leg-3t`` this one left the
    smallest median fit residual (``docs/relax.md``). The ``siemens`` preset of
    :mod:`alsseg.relax.profiles`.
    """
    from alsseg.relax.profiles import DEFAULT_SLICE_PROFILE, preset_profile

    return preset_profile(DEFAULT_SLICE_PROFILE)


@dataclass(frozen=True, eq=False)
class MeseAcquisition:
    """A 2-D multi-slice CPMG multi-echo spin-echo acquisition and the tissue constants of its model.

    Attributes:
        echo_spacing_ms: time between echoes (TE_n = n · ESP), ms.
        n_echoes: number of echoes.
        tr_ms: repetition time, ms (``None``: full recovery assumed).
        refocus_deg: nominal refocusing flip angle, degrees.
        excite_deg: nominal excitation flip angle, degrees.
        profile: slice profile (flip-angle scale across the slice); default
            :func:`default_profile`.
        fat_t2_ms: fixed T2 of the fat component, ms (≈ 151 ms at 3 T).
        water_t1_ms: T1 of muscle water used in the EPG, ms (≈ 1400 ms at 3 T).
        fat_t1_ms: T1 of fat, ms (≈ 365 ms at 3 T).
        field_strength_t: main field, tesla (informative).
    """

    echo_spacing_ms: float
    n_echoes: int
    tr_ms: float | None = None
    refocus_deg: float = 180.0
    excite_deg: float = 90.0
    profile: SliceProfile = field(default_factory=default_profile)
    fat_t2_ms: float = 151.0
    water_t1_ms: float = 1400.0
    fat_t1_ms: float = 365.0
    field_strength_t: float = 3.0

    def __post_init__(self):
        checks = [
            (np.isfinite(self.echo_spacing_ms) and self.echo_spacing_ms > 0,
             f"echo spacing must be > 0 ms (got {self.echo_spacing_ms})"),
            (int(self.n_echoes) == self.n_echoes and self.n_echoes >= 1,
             f"number of echoes must be a positive integer (got {self.n_echoes})"),
            (self.tr_ms is None or (np.isfinite(self.tr_ms)
                                    and self.tr_ms > self.echo_spacing_ms * self.n_echoes),
             f"TR {self.tr_ms} ms must exceed the echo train ({self.echo_spacing_ms} × {self.n_echoes} ms)"),
            (0 < self.refocus_deg <= 270, f"refocusing angle {self.refocus_deg}° out of (0, 270]"),
            (0 < self.excite_deg <= 180, f"excitation angle {self.excite_deg}° out of (0, 180]"),
            (np.isfinite(self.fat_t2_ms) and self.fat_t2_ms > 0, f"fat T2 must be > 0 ms (got {self.fat_t2_ms})"),
            (np.isfinite(self.water_t1_ms) and self.water_t1_ms > 0, f"water T1 must be > 0 ms (got {self.water_t1_ms})"),
            (np.isfinite(self.fat_t1_ms) and self.fat_t1_ms > 0, f"fat T1 must be > 0 ms (got {self.fat_t1_ms})"),
        ]
        for ok, problem in checks:
            if not ok:
                raise InputError(None, problem)

    @property
    def echo_times_ms(self) -> np.ndarray:
        """``(n_echoes,)`` echo times, ms."""
        return self.echo_spacing_ms * np.arange(1, self.n_echoes + 1)

    def recovery(self, t1_ms: float) -> float:
        """Longitudinal recovery factor between trains: ``1 − exp(−(TR − TE_last)/T1)``.

        The magnetisation left along z at the end of a CPMG train is small; this approximates the
        partial-saturation weighting of a species of longitudinal relaxation ``t1_ms``.
        """
        if self.tr_ms is None:
            return 1.0
        return float(1.0 - np.exp(-(self.tr_ms - self.echo_times_ms[-1]) / t1_ms))

    def with_(self, **changes) -> MeseAcquisition:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    @classmethod
    def from_echo_times(cls, echo_times_ms, *, path=None, **kwargs) -> MeseAcquisition:
        """Build from a list of echo times; refuses a non-uniform train (TE_n must be n · ESP).

        Raises:
            InputError: fewer than 2 echoes, or echo times not ``n · ESP`` within 2 %.
        """
        te = np.asarray(echo_times_ms, float).ravel()
        if te.size < 2:
            raise InputError(path, f"{te.size} echo time(s); an echo train needs at least 2")
        esp = float(te[0])
        expected = esp * np.arange(1, te.size + 1)
        if esp <= 0 or not np.allclose(te, expected, rtol=ECHO_SPACING_RTOL, atol=0.05):
            raise InputError(path, "echo times are not uniformly spaced as TE_n = n·ESP "
                             f"({np.round(te[:5], 2).tolist()}…); the EPG model needs a uniform CPMG "
                             "train (use --model mono for other trains)")
        return cls(echo_spacing_ms=float(np.mean(np.diff(np.concatenate([[0.0], te])))),
                   n_echoes=int(te.size), **kwargs)

    @classmethod
    def from_series(cls, series, **overrides) -> MeseAcquisition:
        """Build from an :class:`alsseg.io.MeseSeries` (its echo times, TR, flip angles, field).

        ``overrides`` replace what the headers say (e.g. ``fat_t2_ms=140``, ``tr_ms=4000``).
        """
        kwargs = {}
        for name, attr in (("tr_ms", "tr_ms"), ("refocus_deg", "refocus_deg"),
                           ("excite_deg", "excite_deg"), ("field_strength_t", "field_strength_t")):
            value = getattr(series, attr, None)
            if value is not None and np.isfinite(value):
                kwargs[name] = float(value)
        kwargs.update(overrides)
        te = kwargs.pop("echo_times_ms", series.echo_times_ms)
        return cls.from_echo_times(te, path=getattr(series, "source", None), **kwargs)
