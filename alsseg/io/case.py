"""A labelled case: an image and its label map on the same grid.

The neutral type that case sources (:mod:`alsseg.cases`: the synthetic generator, a BIDS dataset
with label maps) hand to consumers such as the training-dataset writer
(:func:`alsseg.seg.dataset.write_dataset`), so neither side imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alsseg.io.nifti import Image


@dataclass(frozen=True)
class Case:
    """One labelled case.

    Attributes
    ----------
    case_id : unique id; the part before ``__`` names the subject (cases of one subject stay
        on one side of a train/validation split).
    image : the image (3-D, or 4-D with the volumes last).
    labels : ``(X, Y, Z)`` int label map on the image's grid, side-specific ids
        (0, 1..7, 11..17), 255 = not annotated.
    source : where the case came from (free text: a file, a synthetic seed).
    """

    case_id: str
    image: Image
    labels: np.ndarray
    source: str = ""
