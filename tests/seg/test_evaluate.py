"""Evaluation metrics against hand-computed values."""

import numpy as np
import pytest

from alsseg.io import Image
from alsseg.io.errors import InputError
from alsseg.seg.evaluate import evaluate_labels, hd95_mm, rows_to_tsv


def test_dice_volume_and_hd95_known_values():
    aff = np.diag([1.0, 1.0, 2.0, 1.0])
    gt = np.zeros((30, 30, 10), np.uint8)
    gt[5:15, 5:15, 2:8] = 1          # 600 voxels of 2 µL... 1x1x2 mm = 2 mm3
    gt[18:28, 5:15, 2:8] = 11
    pred = gt.copy()
    pred[5:15, 5:15, 2:8] = 0
    pred[7:17, 5:15, 2:8] = 1        # TA_R shifted by 2 voxels (2 mm) along x
    rows = {r["label"]: r for r in evaluate_labels(Image(pred, aff), Image(gt, aff))}
    assert rows[11]["dice"] == 1.0 and rows[11]["hd95_mm"] == 0.0
    assert rows[1]["dice"] == pytest.approx(2 * 8 / 20)
    assert rows[1]["hd95_mm"] == pytest.approx(2.0)
    assert rows[1]["volume_true_ml"] == pytest.approx(10 * 10 * 6 * 2 / 1000)
    assert rows[1]["volume_error_ml"] == 0.0
    assert rows[1]["side"] == "R" and rows[11]["side"] == "L" and rows[1]["muscle"] == "TA"
    text = rows_to_tsv(list(rows.values()))
    assert text.splitlines()[0].startswith("label\tmuscle\tside\tdice\thd95_mm")


def test_missing_prediction_is_nan_hd_and_full_volume_error():
    aff = np.eye(4)
    gt = np.zeros((10, 10, 4), np.uint8)
    gt[2:5, 2:5, 1:3] = 5
    row = evaluate_labels(Image(np.zeros_like(gt), aff), Image(gt, aff))[0]
    assert row["dice"] == 0.0 and np.isnan(row["hd95_mm"]) and row["volume_error_pct"] == -100.0
    assert "n/a" in rows_to_tsv([row])


def test_hd95_symmetric():
    a = np.zeros((20, 20, 3), bool)
    b = a.copy()
    a[5:10, 5:10] = True
    b[5:13, 5:10] = True
    assert hd95_mm(a, b, (1, 1, 1)) == hd95_mm(b, a, (1, 1, 1))


def test_grid_mismatch_and_bad_labels_refused():
    with pytest.raises(InputError, match="grid"):
        evaluate_labels(Image(np.zeros((5, 5, 5)), np.eye(4)), Image(np.zeros((5, 5, 4)), np.eye(4)))
    bad = np.zeros((5, 5, 5))
    bad[0, 0, 0] = 9
    with pytest.raises(InputError, match="label table"):
        evaluate_labels(Image(bad, np.eye(4)), Image(np.zeros((5, 5, 5)), np.eye(4)))
