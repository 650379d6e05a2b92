"""The typed description of an acquisition: a multi-echo spin-echo (MESE) series and a T1-mapping
series, with the BIDS suffix, entity and sidecar field of each T1 kind.

Times are milliseconds inside alsseg and seconds in BIDS sidecars; :func:`sidecar_common` and
:func:`seconds` do the conversion for the writers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alsseg.io.nifti import Image

#: BIDS suffix of each T1 series kind (``SRT1`` is an alsseg extension: BIDS has none).
T1_SUFFIX = {"IR": "IRT1", "VFA": "VFA", "SR": "SRT1"}
#: BIDS entity that indexes the volumes of each kind.
T1_ENTITY = {"IR": "inv", "VFA": "flip", "SR": "rep"}
#: Sidecar field that varies over the volumes of each kind.
T1_PARAMETER = {"IR": "InversionTime", "VFA": "FlipAngle", "SR": "RepetitionTime"}

# ----------------------------------------------------------------------------------- dataclasses
@dataclass(frozen=True, eq=False)
class MeseSeries:
    """A multi-echo spin-echo (CPMG) series.

    Attributes
    ----------
    image : Image
        ``(X, Y, Z, n_echoes)`` float32 magnitude on its world grid (RAS+ affine, mm).
    echo_times_ms : (n_echoes,) ndarray
        Strictly increasing echo times, ms.
    tr_ms : float or None
        Repetition time, ms.
    field_strength_t : float or None
        Main field, tesla.
    refocus_deg : float or None
        Nominal refocusing flip angle, degrees (Siemens stores it as FlipAngle = 180).
    excite_deg : float or None
        Nominal excitation flip angle, degrees (None when the header does not say; usually 90).
    slice_thickness_mm : float or None
        Nominal slice thickness (not the spacing; 2-D MESE often has a gap).
    source : Path or None
        File or folder it was read from.
    notes : tuple of str
        Assumptions made while reading (e.g. units), one line each.
    """

    image: Image
    echo_times_ms: np.ndarray
    tr_ms: float | None = None
    field_strength_t: float | None = None
    refocus_deg: float | None = None
    excite_deg: float | None = None
    slice_thickness_mm: float | None = None
    source: Path | None = None
    notes: tuple[str, ...] = ()

    @property
    def n_echoes(self) -> int:
        """Number of echoes."""
        return len(self.echo_times_ms)

    @property
    def echo_spacing_ms(self) -> float:
        """Mean spacing between successive echoes, ms (the first TE when only one echo)."""
        te = np.asarray(self.echo_times_ms, dtype=float)
        return float(np.diff(te).mean()) if te.size > 1 else float(te[0])

    @property
    def uniform_spacing(self) -> bool:
        """True when echoes are evenly spaced and TE1 equals the spacing (a plain CPMG train)."""
        te = np.asarray(self.echo_times_ms, dtype=float)
        if te.size < 2:
            return True
        esp = self.echo_spacing_ms
        return bool(np.allclose(np.diff(te), esp, atol=0.01 * esp + 1e-6) and abs(te[0] - esp) <= 0.01 * esp + 1e-6)

    @property
    def slice_spacing_mm(self) -> float:
        """Centre-to-centre distance between slices, mm (from the affine)."""
        return float(self.image.spacing_mm[2])

    def sidecar(self) -> dict:
        """BIDS sidecar fields for the whole 4-D series (times in seconds)."""
        return sidecar_common(self.tr_ms, self.field_strength_t, self.slice_thickness_mm,
                               excite_deg=self.excite_deg, refocus_deg=self.refocus_deg) | {
            "EchoTime": [seconds(t) for t in self.echo_times_ms]}


@dataclass(frozen=True, eq=False)
class T1Series:
    """A T1-mapping series: inversion recovery (IR), variable flip angle (VFA) or saturation
    recovery / multi-TR (SR).

    Attributes
    ----------
    image : Image
        ``(X, Y, Z, V)`` float32 magnitude.
    kind : {'IR', 'VFA', 'SR'}
    inversion_times_ms : (V,) ndarray or None
        IR: inversion times, ms (strictly increasing).
    flip_angles_deg : (V,) ndarray or None
        VFA: flip angles, degrees (one per volume); IR/SR: the constant flip angle repeated, if known.
    repetition_times_ms : (V,) ndarray or None
        SR: repetition times, ms; other kinds: the constant TR repeated, if known.
    tr_ms : float or None
        The constant TR (None for SR, where TR varies).
    source : Path or None
    field_strength_t : float or None
    echo_time_ms : float or None
    notes : tuple of str
    """

    image: Image
    kind: str
    inversion_times_ms: np.ndarray | None = None
    flip_angles_deg: np.ndarray | None = None
    repetition_times_ms: np.ndarray | None = None
    tr_ms: float | None = None
    source: Path | None = None
    field_strength_t: float | None = None
    echo_time_ms: float | None = None
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in T1_SUFFIX:
            raise ValueError(f"kind must be one of {sorted(T1_SUFFIX)}, got {self.kind!r}")

    @property
    def n_volumes(self) -> int:
        """Number of volumes ``V``."""
        return int(self.image.shape[3]) if self.image.data.ndim == 4 else 1

    @property
    def varying(self) -> np.ndarray:
        """The parameter that varies over volumes (TI ms, flip deg or TR ms), shape ``(V,)``.

        Raises ValueError when the series lacks it (a T1 series built without its varying
        parameter; the loaders never return one).
        """
        values = {"IR": self.inversion_times_ms, "VFA": self.flip_angles_deg,
                  "SR": self.repetition_times_ms}[self.kind]
        if values is None:
            raise ValueError(f"{self.kind} T1 series without its {T1_PARAMETER[self.kind]} values")
        return values


# ------------------------------------------------------------------------------- sidecar values
def sidecar_common(tr_ms: float | None, field_t: float | None, thick_mm: float | None,
                   excite_deg: float | None = None, refocus_deg: float | None = None) -> dict[str, float]:
    """The BIDS sidecar fields shared by every volume of a series (times in seconds); None values
    are left out."""
    out: dict[str, float] = {}
    if tr_ms is not None:
        out["RepetitionTime"] = seconds(tr_ms)
    if field_t is not None:
        out["MagneticFieldStrength"] = float(field_t)
    if excite_deg is not None:
        out["FlipAngle"] = float(excite_deg)
    if refocus_deg is not None:
        out["RefocusingFlipAngle"] = float(refocus_deg)
    if thick_mm is not None:
        out["SliceThickness"] = float(thick_mm)
    return out


def seconds(ms: float) -> float:
    """ms → s, rounded to remove float noise (1 ns)."""
    return round(float(ms) / 1000.0, 9)


def finite_float(v: Any) -> float | None:
    """A header value as a finite float; None for a missing, non-numeric, list or non-finite value."""
    if v is None or isinstance(v, (list, dict, bool)):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None

