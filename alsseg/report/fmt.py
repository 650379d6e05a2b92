"""One way to write numbers in the report and its figures.

* p-values: two significant digits, ``< 0.001`` below that (``0.009``, ``0.034``, ``0.26``);
* correlations and standardised effects: two decimals with a true minus (``−0.63``);
* other measures: three significant digits in fixed-point notation (``31.2``, ``0.0512``,
  ``1240``), never scientific notation; counts as integers.
"""

from __future__ import annotations

import math

MINUS = "\u2212"
DASH = "\u2013"


def _finite(v) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def fmt_p(p, prefix: bool = True) -> str:
    """``p = 0.009`` / ``p < 0.001`` (``prefix=False``: ``= 0.009`` / ``< 0.001``); ``–`` if missing."""
    if not _finite(p):
        return DASH
    p = float(p)
    head = "p " if prefix else ""
    if p < 0.001:
        return f"{head}< 0.001"
    text = f"{p:.2g}" if p < 0.1 else f"{p:.2f}"
    return f"{head}= {text}"


def fmt_p_value(p) -> str:
    """A p-value alone, for table cells: ``0.009``, ``< 0.001``."""
    return fmt_p(p, prefix=False).removeprefix("= ")


def fmt_r(r) -> str:
    """Two decimals with a true minus sign: ``−0.63``."""
    if not _finite(r):
        return DASH
    return f"{float(r):.2f}".replace("-", MINUS)


def fmt_num(v, digits: int = 3) -> str:
    """Fixed-point with ``digits`` significant digits (at most 4 decimals), true minus sign."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if not _finite(v):
        return DASH
    v = float(v)
    if v == 0:
        return "0"
    mag = math.floor(math.log10(abs(v)))
    decimals = min(4, max(0, digits - 1 - mag))
    text = f"{v:.{decimals}f}"
    if float(text) == 0:
        text = f"{v:.1e}"  # smaller than 0.0001: the only case where an exponent is clearer
    return text.replace("-", MINUS)


def fmt_ci(lo, hi, fmt=fmt_num) -> str:
    """``[lo, hi]`` with the given formatter."""
    if not (_finite(lo) and _finite(hi)):
        return DASH
    return f"[{fmt(lo)}, {fmt(hi)}]"
