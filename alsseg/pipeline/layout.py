"""Where a session's derivatives go: BIDS-derivative names, markers, and the output folder guard.

Output folder (a BIDS derivative dataset, ``DIR``)::

    DIR/dataset_description.json      GeneratedBy alsseg, SourceDatasets
    DIR/alsseg_run.json               source dataset + options of this folder (guards against mixing)
    DIR/dseg.tsv                      label table
    DIR/sub-01/ses-01/anat/sub-01_ses-01_desc-muscles_dseg.nii.gz
                           …_desc-water_T2map / _desc-fatfraction_T2map / _desc-b1_T2map / … .nii.gz
                           …_T1map.nii.gz (where a T1 series exists)
                           …_muscles.tsv           per-muscle table (alsseg.quant)
    DIR/sub-01/ses-01/figures/sub-01_ses-01_desc-qc.png      thumbnails + overlay
    DIR/sub-01/ses-01/sub-01_ses-01_alsseg.json              completion marker (written last)
    DIR/sub-01/ses-01/sub-01_ses-01_failed.json              why a session failed (if it did)
    DIR/group/muscles.tsv, stats_*.tsv, cohort_status.tsv, qc.tsv, report.html

An output folder that is not empty and was not made by alsseg from the same source dataset with
the same options is refused (never mixed).
"""

from __future__ import annotations

import json
from pathlib import Path

from alsseg import __version__
from alsseg.io.atomic import make_dirs, write_text_atomic
from alsseg.io.errors import InputError
from alsseg.io.jsonable import jsonable
from alsseg.pipeline.options import PipelineOptions, SessionJob

RUN_FILE = "alsseg_run.json"
GROUP_DIR = "group"
#: maps written per session (names of :data:`alsseg.maps.MAPS`, which give each its file and sidecar).
SESSION_MAPS = ("t2_water_ms", "fat_fraction", "b1", "m0", "r2", "t2_mono_ms", "fit_ok", "t1_ms")


def bids_file(root: Path, subject: str, session: str | None, suffix: str, entities: dict | None = None,
              ext: str = ".nii.gz") -> Path:
    """``root/sub-X[/ses-Y]/anat/sub-X[_ses-Y][_key-value…]_suffix.ext`` (see
    :func:`alsseg.io.bids_names.bids_path`)."""
    from alsseg.io.bids_names import bids_path

    return bids_path(root, subject, session, suffix, entities, ext=ext)


def session_dir(out_dir: Path, subject: str, session: str | None) -> Path:
    """``out_dir/sub-X[/ses-Y]``: the folder of one session's derivatives."""
    return Path(out_dir) / subject / session if session else Path(out_dir) / subject


def marker_path(out_dir: Path, job: SessionJob) -> Path:
    """The completion marker of a session (written last)."""
    return session_dir(out_dir, job.subject, job.session) / f"{job.name}_alsseg.json"


def failed_path(out_dir: Path, job: SessionJob) -> Path:
    """The failure record of a session."""
    return session_dir(out_dir, job.subject, job.session) / f"{job.name}_failed.json"


def qc_figure_path(out_dir: Path, job: SessionJob) -> Path:
    """The session's QC thumbnail strip."""
    return session_dir(out_dir, job.subject, job.session) / "figures" / f"{job.name}_desc-qc.png"


def overlay_figure_path(out_dir: Path, job: SessionJob, page: int = 1) -> Path:
    """The session's full overlay (every slice), page ``page`` (1-based): ``…_desc-overlay.png``,
    then ``…_desc-overlay2.png`` …"""
    return (session_dir(out_dir, job.subject, job.session) / "figures"
            / f"{job.name}_desc-overlay{'' if page == 1 else page}.png")


def is_done(out_dir: Path, job: SessionJob, options: PipelineOptions) -> bool:
    """True when the session's completion marker exists and was made with these options."""
    m = marker_path(out_dir, job)
    if not m.is_file():
        return False
    try:
        rec = json.loads(m.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return rec.get("options") == jsonable(options.fingerprint())


def prepare_output(out_dir: Path, source: str, options: PipelineOptions) -> None:
    """Create or reopen an output folder; refuse one that holds something else.

    Raises
    ------
    InputError
        ``out_dir`` is a file; or it is not empty and either was not written by alsseg, or was
        written from another source dataset or with other options.
    """
    from alsseg.labels import dseg_tsv

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "output path exists and is not a folder")
    run_file = out_dir / RUN_FILE
    want = {"source": str(source), "options": jsonable(options.fingerprint())}
    from alsseg.pipeline.jobs import is_lock_file

    if out_dir.is_dir() and any(not is_lock_file(p.name) for p in out_dir.iterdir()):
        if not run_file.is_file():
            raise InputError(out_dir, "output folder is not empty and is not an alsseg output folder; "
                             "choose an empty or new folder")
        try:
            have = json.loads(run_file.read_text())
        except json.JSONDecodeError:
            raise InputError(run_file, "unreadable run record; choose a new output folder") from None
        if have.get("source") != want["source"]:
            raise InputError(out_dir, f"holds results of another dataset ({have.get('source')}); "
                             "refusing to mix — choose another output folder")
        if have.get("options") != want["options"]:
            diff = sorted(k for k in want["options"] if have.get("options", {}).get(k) != want["options"][k])
            raise InputError(out_dir, f"holds results made with other options ({', '.join(diff)}); "
                             "refusing to mix — choose another output folder")
        return
    make_dirs(out_dir)  # recorded: a failed `run` removes the folder it created
    write_text_atomic(out_dir / "dseg.tsv", dseg_tsv())
    desc = {"Name": "alsseg derivatives", "BIDSVersion": "1.9.0", "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "alsseg", "Version": __version__,
                             "Description": "segmentation, EPG water T2 / fat fraction / B1, T1, "
                                            "per-muscle tables"}],
            "SourceDatasets": [{"URL": Path(source).resolve().as_uri() if Path(source).exists() else str(source)}]}
    write_text_atomic(out_dir / "dataset_description.json", json.dumps(desc, indent=2) + "\n")
    write_text_atomic(run_file, json.dumps({**want, "version": __version__}, indent=2) + "\n")


def source_of(out_dir: str | Path) -> Path | None:
    """The source BIDS dataset recorded in ``out_dir/alsseg_run.json`` (None if not recorded)."""
    rf = Path(out_dir) / RUN_FILE
    if not rf.is_file():
        return None
    src = json.loads(rf.read_text()).get("source")
    return Path(src) if src and src != "None" else None
