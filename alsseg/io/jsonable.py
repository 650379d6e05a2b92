"""One conversion of Python / numpy objects to what JSON holds (sidecars, run records, markers)."""

from __future__ import annotations

import numpy as np


def jsonable(obj, *, drop_private: bool = False):
    """``obj`` as JSON can hold it: dict keys as ``str``, tuples / arrays as lists, numpy
    scalars as Python numbers, paths and other unknown objects as ``str``.

    ``drop_private``: leave out dict keys starting with ``_`` (internal image metadata).
    """
    if isinstance(obj, dict):
        return {str(k): jsonable(v, drop_private=drop_private) for k, v in obj.items()
                if not (drop_private and str(k).startswith("_"))}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, drop_private=drop_private) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist(), drop_private=drop_private)
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    return str(obj)
