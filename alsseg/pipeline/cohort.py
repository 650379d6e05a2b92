"""Sessions to files: one session with its bookkeeping (skip, failure record), and a cohort
(every session of a BIDS dataset, in processes, in shards, resumable).

Resumability: a session whose completion marker exists (made with the same options) is skipped;
any other is redone from the start. A session that fails is recorded in ``…_failed.json`` and the
cohort goes on; it is retried on the next run.
"""

from __future__ import annotations

import re
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from alsseg.io.atomic import write_text_atomic
from alsseg.io.errors import InputError
from alsseg.pipeline.layout import GROUP_DIR, is_done, prepare_output
from alsseg.pipeline.options import PipelineOptions, SessionJob
from alsseg.pipeline.session import BundleSegmenter, SegmenterLike, process_session, require_mese
from alsseg.pipeline.write import clear_failure, clear_session, write_failure, write_session


@dataclass
class SessionOutcome:
    """What happened to one session: ``status`` in {``done``, ``skipped``, ``failed``}.

    ``outputs``: files written; ``stage_seconds``: s per stage; ``input_error``: the failure
    was a bad input (:class:`InputError`), not a crash.
    """

    name: str
    status: str
    seconds: float = 0.0
    error: str = ""
    outputs: list = field(default_factory=list)
    stage_seconds: dict = field(default_factory=dict)
    input_error: bool = False


def run_session(job: SessionJob, out_dir: Path, options: PipelineOptions = PipelineOptions(),
                stage: Callable[[str], None] | None = None, force: bool = False,
                segmenter: SegmenterLike | None = None) -> SessionOutcome:
    """Process one session (:func:`process_session`) and write its derivatives
    (:func:`write_session`); never raises for a bad session.

    Parameters
    ----------
    job : the session's inputs.
    out_dir : the derivative folder (see :mod:`alsseg.pipeline.layout`); must have been prepared
        with :func:`prepare_output` when several sessions share it.
    stage : called with the name of each stage (for progress bars); the last is ``write``.
    force : redo a session even when its completion marker exists.
    segmenter : used when the job has no label map (``None``: load ``options.model``).

    Returns
    -------
    SessionOutcome; ``status == "failed"`` with the one-line ``error`` when an input is bad or a
    stage fails (the failure is also written to ``…_failed.json``).
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    if not force and is_done(out_dir, job, options):
        return SessionOutcome(job.name, "skipped")
    user_stage = stage or (lambda s: None)
    current = {"stage": ""}

    def on_stage(name: str) -> None:
        current["stage"] = name
        user_stage(name)

    try:
        require_mese(job)
        # a session being (re)done is not finished until its new marker is written
        clear_session(out_dir, job)
        result = process_session(job, options, segmenter, on_stage)
        on_stage("write")
        t_write = time.perf_counter()
        outputs = write_session(result, out_dir, options)
        t_write = round(time.perf_counter() - t_write, 3)
    except Exception as exc:  # a bad session is recorded and the cohort goes on
        from alsseg.io.atomic import STOP_ERRNOS

        if isinstance(exc, OSError) and exc.errno in STOP_ERRNOS:
            raise  # a full or read-only disk: no later session (nor the failure record) can be written
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not isinstance(exc, InputError):
            msg = f"{type(exc).__name__}: {msg}"
        write_failure(out_dir, job, msg, current["stage"], traceback.format_exc(limit=6))
        return SessionOutcome(job.name, "failed", time.perf_counter() - t0, msg,
                              input_error=isinstance(exc, InputError))
    clear_failure(out_dir, job)
    return SessionOutcome(job.name, "done", time.perf_counter() - t0, "", outputs,
                          {**result.stage_seconds, "write": t_write})


# ------------------------------------------------------------------------------------- cohort
def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"2/4"`` → (2, 4): the 2nd of 4 shards (1-based, as ``SLURM_ARRAY_TASK_ID`` 1..n)."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m or not (1 <= int(m.group(1)) <= int(m.group(2))):
        raise InputError(None, f"--shard {text!r}: expected i/n with 1 <= i <= n (e.g. 1/4)")
    return int(m.group(1)), int(m.group(2))


def cohort_jobs(bids_root: Path, options: PipelineOptions, shard: tuple[int, int] | None = None):
    """(dataset, jobs): every session of a BIDS dataset, optionally one shard of them."""
    from alsseg.io.bids import BidsDataset

    ds = BidsDataset(bids_root)
    labels_root = None
    if options.labels_from:
        labels_root = Path(bids_root) / "derivatives" / options.labels_from
        if not labels_root.is_dir():
            raise InputError(labels_root, "no such derivative folder (--labels-from)")
    jobs = [SessionJob.from_bids(s, labels_root) for s in ds.sessions]
    if shard is not None:
        i, n = shard
        jobs = jobs[i - 1::n]
    return ds, jobs


class _Worker:
    """State of one cohort worker process: the segmenter its parent handed it at start
    (:func:`_init_worker`), so a model is loaded once per process, not once per session."""

    segmenter: SegmenterLike | None = None


def _init_worker(segmenter: SegmenterLike | None) -> None:
    _Worker.segmenter = segmenter


def _work(args):
    job, out_dir, options = args
    return run_session(job, out_dir, options, segmenter=_Worker.segmenter)


def _work_dask(args):
    """A Dask task: the segmenter travels with the task; the first one a worker process sees is
    kept for the tasks after it (one model load per worker)."""
    job, out_dir, options, segmenter = args
    if _Worker.segmenter is None:
        _Worker.segmenter = segmenter
    return run_session(job, out_dir, options, segmenter=_Worker.segmenter)


def run_cohort(bids_root: str | Path, out_dir: str | Path, options: PipelineOptions = PipelineOptions(),
               jobs: int = 1, shard: tuple[int, int] | None = None, quiet: bool = False,
               segmenter: SegmenterLike | None = None, scheduler: str | None = None) -> list[SessionOutcome]:
    """Every session of a BIDS dataset into ``out_dir`` (resumable, failures recorded).

    Parameters
    ----------
    bids_root : source BIDS dataset.
    out_dir : derivative folder (created; refused if it holds something else, or while another
        run holds its lock: :func:`alsseg.pipeline.jobs.output_lock`).
    jobs : sessions processed in parallel (processes that die with this one,
        :func:`alsseg.pipeline.jobs.run_pool`); with ``scheduler="local"`` the Dask workers.
    shard : ``(i, n)``: process only every n-th session starting at the i-th (1-based).
    quiet : no progress bar.
    segmenter : segments the sessions without a label map; ``None``: the bundle
        ``options.model``, loaded once (once per worker process) when first needed.
    scheduler : run the sessions on a Dask cluster (:func:`alsseg.pipeline.jobs.run_dask`): its
        address, or ``"local"`` for a ``LocalCluster``; ``None``: this machine's process pool.

    Returns
    -------
    One :class:`SessionOutcome` per session of the shard; also written to
    ``out_dir/group/cohort_status[_shard-i-of-n].tsv``.
    """
    from alsseg.pipeline.jobs import output_lock

    bids_root, out_dir = Path(bids_root), Path(out_dir)
    ds, todo = cohort_jobs(bids_root, options, shard)
    _ = ds.participants, ds.motor  # table errors surface now, before any work
    with output_lock(out_dir, shard):
        return _run_locked(bids_root, out_dir, options, todo, jobs, shard, quiet, segmenter, scheduler)


def _run_locked(bids_root, out_dir, options, todo, jobs, shard, quiet, segmenter, scheduler):
    from alsseg.pipeline import jobs as runners
    from alsseg.progress import progress_bar

    prepare_output(out_dir, str(bids_root.resolve()), options)
    if segmenter is None:
        segmenter = BundleSegmenter(options.model, options.mirror_tta)
    results: list[SessionOutcome] = []
    bar = progress_bar(total=len(todo), desc="sessions", unit="session", show=not quiet)
    pending = []
    for job in todo:
        if is_done(out_dir, job, options):
            results.append(SessionOutcome(job.name, "skipped"))
            bar.update(1)
        else:
            pending.append(job)

    def on_done(job, res, err):
        if err is not None:  # a crashed worker (or a session lost too often on a cluster): record, go on
            res = SessionOutcome(job.name, "failed", error=f"{type(err).__name__}: {err}")
        results.append(res)
        bar.set_postfix_str(f"{job.name}: {res.status}")
        bar.update(1)

    if scheduler and pending:
        runners.run_dask(_work_dask, [(j, out_dir, options, segmenter) for j in pending], [j.name for j in pending],
                         scheduler, jobs, lambda item, res, err: on_done(item[0], res, err))
    elif jobs <= 1 or len(pending) <= 1:
        for job in pending:
            bar.set_postfix_str(job.name)
            res = run_session(job, out_dir, options, stage=lambda s, n=job.name: bar.set_postfix_str(f"{n}: {s}"),
                              segmenter=segmenter)
            results.append(res)
            bar.update(1)
    else:
        runners.run_pool(_work, [(j, out_dir, options) for j in pending], jobs,
                         lambda item, res, err: on_done(item[0], res, err), _init_worker, (segmenter,))
    bar.close()
    order = {j.name: i for i, j in enumerate(todo)}
    results.sort(key=lambda r: order.get(r.name, 0))
    write_status(out_dir, results, shard)
    return results


def write_status(out_dir: Path, results: list[SessionOutcome], shard) -> Path:
    """``out_dir/group/cohort_status[_shard-i-of-n].tsv``: session, status, seconds, error."""
    import pandas as pd

    name = "cohort_status.tsv" if shard is None else f"cohort_status_shard-{shard[0]}-of-{shard[1]}.tsv"
    df = pd.DataFrame([{"session": r.name, "status": r.status, "seconds": round(r.seconds, 2),
                        "error": r.error} for r in results], columns=["session", "status", "seconds", "error"])
    return write_text_atomic(out_dir / GROUP_DIR / name, df.to_csv(sep="\t", index=False))
