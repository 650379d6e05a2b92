"""Per-muscle segmentation confidence: a number in [0, 1] per muscle and leg.

Two signals, both from the prediction itself (no truth needed):

``conf_max_softmax``
    mean softmax of the winning class over the muscle's voxels (how sure the network is,
    voxel by voxel; near 1 for a clean mask, lower where classes compete);
``conf_flip_dice``
    Dice between the muscle's mask and the same muscle from a second pass on the left-right
    mirrored image (mirrored back and post-processed alike): a test-time augmentation that
    keeps anatomy plausible (the network is side-agnostic), so disagreement means the answer
    rests on details the network is not sure of.

``seg_confidence`` is their product (see ``docs/seg.md``, *Per-muscle confidence*, for why this
combination and the Spearman correlations with Dice behind it); :data:`LOW_CONFIDENCE` is the
documented threshold below which a muscle is flagged.
"""

from __future__ import annotations

import numpy as np

from alsseg.labels import Anatomy

#: ``seg_confidence`` below this flags a muscle's mask as doubtful (docs/seg.md).
LOW_CONFIDENCE = 0.80


def combine(max_softmax: float, flip_dice: float) -> float:
    """``seg_confidence`` from its two signals (both in [0, 1]): their product."""
    return float(np.clip(max_softmax * flip_dice, 0.0, 1.0))


def confidence_rows(labels: np.ndarray, max_probability: np.ndarray, labels_mirrored: np.ndarray,
                    anatomy: Anatomy) -> list[dict]:
    """One row per label present in ``labels``.

    Parameters
    ----------
    labels : (X, Y, Z) side-specific label ids of the prediction.
    max_probability : (X, Y, Z) softmax of the winning class of the same pass.
    labels_mirrored : (X, Y, Z) side-specific label ids of the mirrored pass, same grid.

    Returns
    -------
    list of dict: ``label, muscle, side, seg_confidence, conf_max_softmax, conf_flip_dice,
    low_confidence`` (bool: ``seg_confidence < LOW_CONFIDENCE``).
    """
    rows = []
    for lab in anatomy.labels:
        a = labels == lab.id
        n = int(a.sum())
        if n == 0:
            continue
        b = labels_mirrored == lab.id
        msp = float(max_probability[a].mean())
        flip = 2.0 * int((a & b).sum()) / (n + int(b.sum()))
        conf = combine(msp, flip)
        rows.append({"label": lab.id, "muscle": lab.abbrev, "side": lab.side, "seg_confidence": round(conf, 4),
                     "conf_max_softmax": round(msp, 4), "conf_flip_dice": round(flip, 4),
                     "low_confidence": conf < LOW_CONFIDENCE})
    return rows


def confidence_tsv(rows: list[dict]) -> str:
    """Confidence rows → TSV text (columns of :func:`confidence_rows`)."""
    keys = ("label", "muscle", "side", "seg_confidence", "conf_max_softmax", "conf_flip_dice", "low_confidence")
    return "\t".join(keys) + "\n" + "".join("\t".join(str(r[k]) for k in keys) + "\n" for r in rows)
