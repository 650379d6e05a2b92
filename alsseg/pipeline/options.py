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
    mirror_tta : segment with left-right mirror test-time augmentation (``Segmenter.mirror_tta``;
        twice the network time; default on).
    labels_from : take the label map from an existing derivative of the source dataset instead
        of segmenting (e.g. ``"groundtruth"`` → ``derivatives/groundtruth/…_desc-muscles_dseg``);
        ``None`` segments with ``model``.
    fit_t1 : fit a T1 map where the session has a T1 series.
    mask_margin_vox : the T2 fit covers the muscles dilated by this many voxels in-plane (maps
        are NaN elsewhere: fitting the whole field of view would only cost time).
    slice_profile : ``(refocus_width_ratio, transition)`` of the MESE slice profile when known
        (the demo passes the simulator's), or a ``--slice-profile`` text (a preset name,
        ``TBW_EXC,TBW_REF,RATIO``; :func:`alsseg.relax.profiles.parse_slice_profile`); ``None``:
        relax's default (tuned on a Siemens scan).
    b1 : ``"smooth"`` (a smooth B1 field per slice, water T2 refitted with it held) or ``"voxel"``.
    mono_t2 : also fit the mono-exponential T2 (``_desc-mono_T2map``, column ``t2_mono_ms``),
        for comparison with older studies (it costs ~0.1 s per session).
    quant : per-muscle quantification options.
    figures : write the per-session QC thumbnails.
    threads : threads of the voxel fits within one session.
    """

    model: str = "lowerleg-unet"
    mirror_tta: bool = True
    labels_from: str | None = None
    fit_t1: bool = True
    mask_margin_vox: int = 2
    slice_profile: tuple[float, float] | str | None = None
    b1: str = "smooth"
    mono_t2: bool = True
    quant: QuantOptions = field(default_factory=QuantOptions)
    figures: bool = True
    threads: int = 2

    def fingerprint(self) -> dict:
        """What decides the numbers (compared before resuming into a folder)."""
        d = asdict(self)
        d.pop("figures")
        d.pop("threads")
        if not d["mirror_tta"]:  # folders written before the option existed (no TTA) resume with it off
            d.pop("mirror_tta")
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
    def from_bids(cls, s, labels_root: Path | None = None) -> SessionJob:
        """From an :class:`alsseg.io.bids.Session`; ``labels_root`` = a derivative folder holding
        ``…_desc-muscles_dseg.nii.gz`` files in BIDS layout."""
        from alsseg.io.bids_names import bids_path

        labels = None
        if labels_root is not None:
            labels = bids_path(labels_root, s.subject, s.session, "dseg", {"desc": "muscles"}, ext=".nii.gz")
        return cls(s.subject, s.session, s.mese_path(), s.t1_path(), s.t1_kind, labels)


def session_job_from_path(path: str | Path, labels: str | Path | None = None, t1: str | Path | None = None,
                          subject: str | None = None, session: str | None = None) -> tuple[SessionJob, Path]:
    """The job of one session given by a path (``alsseg run``'s SESSION), and its source root.

    ``path``: a BIDS session folder (``sub-X/ses-Y`` or its ``anat``), a MESE file (4-D NIfTI +
    sidecar or ``_echo-N_`` file) or a DICOM folder. Subject and session are read from the path
    (``sub-*`` / ``ses-*`` folders or BIDS entities) unless given; a name without them gives
    ``sub-<file name>``. The source root is the folder above ``sub-X`` when there is one.

    Raises
    ------
    InputError
        ``path`` does not exist; a session folder without a MESE series.
    """
    import re

    from alsseg.io.errors import InputError
    from alsseg.io.validate import input_kind, safe_label

    # ids become folder names: a path in them (../../X) is refused before any work
    if subject is not None:
        subject = "sub-" + safe_label(subject, "--subject", "sub").removeprefix("sub-")
    if session is not None:
        session = "ses-" + safe_label(session, "--session-id", "ses").removeprefix("ses-")
    p = Path(path)
    input_kind(p)  # missing, FIFO, device, symlink loop: refused before anything opens it
    for extra in (labels, t1):
        if extra is not None:
            input_kind(extra)
    anat = None
    if p.is_dir() and (p / "anat").is_dir():
        anat = p / "anat"
    elif p.is_dir() and p.name == "anat":
        anat = p
    from alsseg.io.bids_names import subject_session_of

    found_sub, found_ses = subject_session_of(p)
    sub = subject or found_sub
    ses = session or found_ses
    if anat is not None:
        from alsseg.io.bids import find_session_inputs

        s = find_session_inputs(anat, sub or "sub-unknown", ses)
        if s.mese is None:
            raise InputError(anat, "no MESE series in this session folder")
        job = SessionJob(sub or "sub-unknown", ses, s.mese_path(), Path(t1) if t1 else s.t1_path(),
                         s.t1_kind, Path(labels) if labels else None)
    else:
        if sub is None:
            sub = "sub-" + (re.sub(r"[^A-Za-z0-9]", "", p.name.split(".")[0]) or "x")
        job = SessionJob(sub, ses, p, Path(t1) if t1 else None, None, Path(labels) if labels else None)
    root = next((q.parent for q in [p] + list(p.parents) if q.name == job.subject), None)
    return job, (root if root is not None else p.parent if p.is_file() else p)
