"""One session end to end, and a whole cohort: segment → fit → quantify → tables, figures, report.

Computing is apart from writing::

    from alsseg.pipeline import SessionJob, PipelineOptions, process_session, write_session
    result = process_session(job, PipelineOptions(), segmenter)   # in memory: maps, labels, table, QC
    write_session(result, out_dir, options)                       # BIDS derivatives, marker last

Modules: :mod:`~alsseg.pipeline.options` (what to do), :mod:`~alsseg.pipeline.session` (one
session in memory), :mod:`~alsseg.pipeline.layout` (derivative names, output folder guard),
:mod:`~alsseg.pipeline.write` (the writer), :mod:`~alsseg.pipeline.cohort` (run a session with its
bookkeeping; many sessions, processes, shards, resume), :mod:`~alsseg.pipeline.group` (tables,
statistics, QC, report of a cohort), :mod:`~alsseg.pipeline.fit_maps` (``fit-t2`` / ``fit-t1``:
parameter maps of one series), :mod:`~alsseg.pipeline.demo` (the synthetic demo).
Names are imported from their module on first use (``import alsseg.pipeline`` costs nothing).
"""

from __future__ import annotations

from alsseg._lazy import lazy_exports

_WHERE = {
    "alsseg.pipeline.options": ("PipelineOptions", "SessionJob", "session_job_from_path"),
    "alsseg.pipeline.session": ("process_session", "SessionResult", "SegmenterLike", "BundleSegmenter",
                                "shipped_model_available", "fit_t2", "fit_t2_mono", "fit_t1"),
    "alsseg.pipeline.layout": ("RUN_FILE", "GROUP_DIR", "MAP_FILES", "MAP_SIDECARS", "bids_file", "session_dir",
                               "marker_path", "failed_path", "is_done", "prepare_output", "source_of"),
    "alsseg.pipeline.write": ("write_session",),
    "alsseg.pipeline.cohort": ("run_session", "SessionOutcome", "run_cohort", "cohort_jobs", "parse_shard"),
    "alsseg.pipeline.group": ("collect_tables", "run_stats", "qc_table", "load_group_results", "run_report"),
    "alsseg.pipeline.fit_maps": ("fit_t2_maps", "fit_t1_maps", "T2MapOptions", "MapsOutcome"),
    "alsseg.pipeline.demo": ("run_demo", "DemoResult", "compare_with_truth", "compare_stats", "key_findings",
                             "simulated_slice_profile"),
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
