"""Cohort statistics: per-muscle tables × motor measures → tidy result tables.

Pure pandas / scipy / statsmodels, no imaging imports. Every function takes tidy tables and
returns a tidy :class:`pandas.DataFrame` (one row per test), ready to be written as TSV.

Input tables
------------
``muscles``
    One row per session × side × muscle (or muscle group), as written by :mod:`alsseg.quant`
    or by the synthetic ground truth (``derivatives/groundtruth/muscles.tsv``). Columns
    ``participant_id``, ``session_id``, ``side`` (``R``/``L``), ``muscle`` (``TA`` … or a group
    name such as ``anterior``/``all``) and measure columns (``t2_water_ms``, ``t1_ms``,
    ``volume_ml``, ``fat_fraction`` by default).
``participants``
    ``participant_id``, ``group`` (``ALS`` or ``control``).
``motor``
    ``participant_id``, ``session_id``, ``side``, ``cmap_mv``, ``mvic_n``. Missing values stay
    missing (NaN): a test drops the incomplete pairs it cannot use and reports its ``n``; nothing
    is ever imputed.

Repeated measures (two legs, two visits)
----------------------------------------
Legs of one subject are not independent and neither are visits, so no test treats them as
independent observations. Two analyses are reported side by side:

* **Per-subject aggregation (the primary, paper-comparable numbers).** For group comparisons
  and motor correlations, each subject contributes one value at the baseline visit: the mean of
  its legs (for the imaging measure *and* the motor measure, over the legs where both exist).
  Welch's t, Mann–Whitney U, Hedges' g, Pearson and Spearman correlations are computed on these
  independent values. For the change between visits, each patient contributes the mean over legs
  of (follow-up − baseline). This is simple, assumption-light and matches how Bryan et al.
  (1998) reported their results, at the cost of discarding the within-subject left/right spread.
* **Linear mixed model (uses every leg and visit).** ``statsmodels`` ``MixedLM`` with a random
  intercept per subject: ``y ~ group`` on both legs at baseline, and ``z(y) ~ z(motor)`` on every
  leg at every visit (a standardised slope, comparable to a correlation). It uses all the data
  and models the within-subject correlation; with ~20 subjects its variance estimate can be
  fragile, so a fit that fails or does not converge is reported as NaN with a flag rather than
  trusted.

Modules: :mod:`~alsseg.stats.elementary` (tests, CIs, FDR, mixed model),
:mod:`~alsseg.stats.analyses` (the cohort analyses, :func:`run_all`),
:mod:`~alsseg.stats.subjects` (the per-subject tables the report draws),
:mod:`~alsseg.stats.study` (change between visits, visit intervals, the founding study's
findings beside this cohort's).

Multiple comparisons: Benjamini–Hochberg FDR across muscles (the per-muscle rows of one
measure × test; group rows such as ``anterior`` and ``all`` are excluded from the family and
get ``q = NaN``, being pre-specified summaries).
"""
from __future__ import annotations

from alsseg.stats.analyses import (
    ABNORMAL_DIRECTION, GROUP_ROWS, KEYS, MEASURES, MOTOR, StatsOptions, abnormal_muscles, add_group_rows,
    change_correlations, change_table, group_comparison, motor_correlations, run_all, session_order, subject_means,
    write_tables,
)
from alsseg.stats.elementary import bh_fdr, compare_two, correlation, hedges_g, mixedlm_fixed_effect, paired_change
from alsseg.stats.subjects import REPORT_TABLES, report_tables, subject_level, subject_table

__all__ = ["ABNORMAL_DIRECTION", "GROUP_ROWS", "KEYS", "MEASURES", "MOTOR", "REPORT_TABLES", "StatsOptions",
           "abnormal_muscles", "add_group_rows", "bh_fdr", "change_correlations", "change_table", "compare_two",
           "correlation", "group_comparison", "hedges_g", "mixedlm_fixed_effect", "motor_correlations", "paired_change",
           "report_tables", "run_all", "session_order", "subject_level", "subject_means", "subject_table",
           "write_tables"]
