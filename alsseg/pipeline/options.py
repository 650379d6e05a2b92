"""What a run is asked to do: its options, and the inputs of one session."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from alsseg.quant import QuantOptions


@dataclass(frozen=True)
class PipelineOptions:
    """Explicit configuration of a session / cohort run.

    Attributes
    ----------
    model : segmentation bundle name (``models/NAME``) or path.
    labels_from : take the label map from an existing derivative of the source dataset instead
        of segmenting (e.g. ``"groundtruth"`` → ``derivatives/groundtruth/…_desc-muscles_dseg``);
        ``None`` segments with ``model``.
    fit_t1 : fit a T1 map where the session has a T1 series.
    mask_margin_vox : the T2 fit covers the muscles dilated by this many voxels in-plane (maps
        are NaN elsewhere: fitting the whole field of view would only cost time).
    slice_profile : ``(refocus_width_ratio, transition)`` of the MESE slice profile when known
        (the demo passes the simulator's); ``None``: relax's default (tuned on a Siemens scan).
    mono_t2 : also fit the mono-exponential T2 (``_desc-mono_T2map``, column ``t2_mono_ms``),
        for comparison with older studies (it costs ~0.1 s per session).
    quant : per-muscle quantification options.
    figures : write the per-session QC thumbnails.
    threads : threads of the voxel fits within one session.
    """

    model: str = "lowerleg-unet"
    labels_from: str | None = None
    fit_t1: bool = True
    mask_margin_vox: int = 2
    slice_profile: tuple[float, float] | None = None
    mono_t2: bool = True
    quant: QuantOptions = field(default_factory=QuantOptions)
    figures: bool = True
    threads: int = 2

    def fingerprint(self) -> dict:
        """What decides the numbers (compared before resuming into a folder)."""
        d = asdict(self)
        d.pop("figures")
        d.pop("threads")
        return d


@dataclass(frozen=True)
class SessionJob:
    """The inputs of one session.

    Attributes
    ----------
    subject, session : ``sub-XX`` / ``ses-YY`` (session may be None).
    mese : a path :func:`alsseg.io.load_mese` accepts.
    t1 : a path :func:`alsseg.io.load_t1_series` accepts, or None.
    t1_kind : ``IR``/``VFA``/``SR`` or None.
    labels : an existing label map on the MESE grid, or None (segment).
    """

    subject: str
    session: str | None
    mese: Path | None
    t1: Path | None = None
    t1_kind: str | None = None
    labels: Path | None = None

    @property
    def name(self) -> str:
        return f"{self.subject}_{self.session}" if self.session else self.subject

    @classmethod
    def from_bids(cls, s, labels_root: Path | None = None) -> "SessionJob":
        """From an :class:`alsseg.io.bids.Session`; ``labels_root`` = a derivative folder holding
        ``…_desc-muscles_dseg.nii.gz`` files in BIDS layout."""
        from alsseg.io.series import bids_path

        labels = None
        if labels_root is not None:
            labels = bids_path(labels_root, s.subject, s.session, "dseg", {"desc": "muscles"}, ext=".nii.gz")
        return cls(s.subject, s.session, s.mese_path(), s.t1_path(), s.t1_kind, labels)
