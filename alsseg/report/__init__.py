"""The cohort report: figures (matplotlib, Agg) and one self-contained HTML file."""

from alsseg.report.html import build_report, cohort_summary, table_html

__all__ = ["build_report", "cohort_summary", "table_html"]
