"""The one writer of a session's derivatives: a :class:`SessionResult` → files, atomically.

Every file is written atomically (temporary + rename); the completion marker is written last, so
a session without it is redone from the start on the next run (:func:`clear_session` first
removes what a killed run left).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from alsseg import __version__
from alsseg.io.atomic import write_bytes_atomic, write_text_atomic
from alsseg.maps import MAPS
from alsseg.pipeline.layout import (
    SESSION_MAPS, bids_file, failed_path, jsonable, marker_path, overlay_figure_path, qc_figure_path, session_dir,
)
from alsseg.pipeline.options import PipelineOptions, SessionJob
from alsseg.pipeline.session import SessionResult


def clear_session(out_dir: Path, job: SessionJob) -> None:
    """Make a session unfinished before it is (re)done: remove its completion marker and the
    temporaries a killed run left — only those of dead writers of this machine (temporary names
    carry host and pid), never a live writer's (:func:`alsseg.io.atomic.remove_stale_temporaries`)."""
    from alsseg.io.atomic import remove_stale_temporaries

    old_marker = marker_path(out_dir, job)
    if old_marker.exists():
        old_marker.unlink()
    remove_stale_temporaries(session_dir(out_dir, job.subject, job.session))


def write_session(result: SessionResult, out_dir: Path, options: PipelineOptions) -> list[Path]:
    """Write a session's derivatives into ``out_dir``, the completion marker last.

    Writes the label map, each map of ``result.maps`` named in :data:`~alsseg.pipeline.layout.SESSION_MAPS` (file name, units and description from
    :data:`alsseg.maps.MAPS`; float32, bool
    as uint8) with its JSON sidecar, the per-muscle TSV, the QC figure (when ``result.qc_png``),
    the full overlay pages, then ``…_alsseg.json`` (inputs, options, seconds per stage including ``write``).

    Returns
    -------
    The files written, marker excluded, in writing order.
    """
    from alsseg.io import save_nifti
    from alsseg.io.nifti import Image

    t0 = time.perf_counter()
    job, ref3d, out_dir = result.job, result.reference, Path(out_dir)
    outputs = [save_nifti(Image(result.labels.astype(np.uint8), ref3d.affine),
                          bids_file(out_dir, job.subject, job.session, "dseg", {"desc": "muscles"}))]
    for name, arr in result.maps.items():
        if name not in SESSION_MAPS:
            continue
        info = MAPS[name]
        data = arr.astype(np.uint8) if arr.dtype == bool else arr.astype(np.float32)
        nii = bids_file(out_dir, job.subject, job.session, info.suffix, {"desc": info.desc} if info.desc else None)
        outputs.append(save_nifti(Image(data, ref3d.affine), nii))
        side = {"Units": info.units, "Description": info.description, "Sources": [str(job.mese)],
                "GeneratedBy": {"Name": "alsseg", "Version": __version__}}
        outputs.append(write_text_atomic(nii.with_name(nii.name.replace(".nii.gz", ".json")),
                                         json.dumps(side, indent=2) + "\n"))
    tsv = bids_file(out_dir, job.subject, job.session, "muscles", ext=".tsv")
    outputs.append(write_text_atomic(tsv, result.table.to_csv(sep="\t", index=False, na_rep="n/a",
                                                              float_format="%.6g")))
    if result.qc_png is not None:
        outputs.append(write_bytes_atomic(qc_figure_path(out_dir, job), result.qc_png))
    for page, png in enumerate(result.overlay_pngs, start=1):
        outputs.append(write_bytes_atomic(overlay_figure_path(out_dir, job, page), png))
    seconds = {**result.stage_seconds, "write": round(time.perf_counter() - t0, 3)}
    rec = {"session": job.name, "version": __version__, "options": jsonable(options.fingerprint()),
           "inputs": {"mese": str(job.mese), "t1": str(job.t1) if job.t1 else None, "labels": result.label_source},
           "outputs": [str(Path(p).relative_to(out_dir)) for p in outputs],
           "seconds": seconds,
           "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_text_atomic(marker_path(out_dir, job), json.dumps(rec, indent=2) + "\n")
    return outputs


def write_failure(out_dir: Path, job: SessionJob, error: str, stage: str, traceback_text: str) -> Path:
    """Record why a session failed (``…_failed.json``)."""
    rec = {"session": job.name, "error": error, "stage": stage, "traceback": traceback_text,
           "version": __version__}
    return write_text_atomic(failed_path(out_dir, job), json.dumps(rec, indent=2) + "\n")


def clear_failure(out_dir: Path, job: SessionJob) -> None:
    """Remove a session's failure record (after it succeeded)."""
    fp = failed_path(out_dir, job)
    if fp.exists():
        fp.unlink()
