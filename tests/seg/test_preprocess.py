"""Preprocessing: checks, crop, resampling, normalisation, and the inverse mapping of logits."""

import numpy as np
import pytest

from alsseg.io import Image
from alsseg.io.errors import InputError
from alsseg.seg.preprocess import prepare, prepare_labels, resample_inplane, select_volume, upsample_logits_slice
from alsseg.seg.recipe import PreprocessConfig



def _img(toy, shape=(80, 48, 5), spacing=(2.0, 2.0, 7.0), seed=0):
    lab, body = toy.leg_labels(shape, spacing, seed)
    return Image(toy.image(lab, body, seed), np.diag([*spacing, 1.0])), lab


def test_prepare_resamples_crops_normalises(toy):
    img, lab = _img(toy)
    p = prepare(img, PreprocessConfig(target_spacing_mm=(3.0, 3.0), crop_margin_mm=4.0))
    x0, x1, y0, y1 = p.crop
    assert x1 - x0 < 80 or y1 - y0 < 48  # the air margin was cropped
    assert p.data.shape[2] == 5
    assert p.data.shape[:2] == (round((x1 - x0) * 2 / 3), round((y1 - y0) * 2 / 3))
    assert p.spacing_mm == pytest.approx((3.0, 3.0), rel=0.05)
    assert p.data.dtype == np.float32 and abs(float(np.median(p.data))) < 3
    # all muscle voxels are inside the crop box
    proj = (lab > 0).any(axis=2)
    assert proj[x0:x1, y0:y1].sum() == proj.sum()


def test_logits_round_trip_to_input_grid(toy):
    """One-hot 'logits' of the prepared labels, mapped back, reproduce the labels."""
    import torch

    img, lab = _img(toy)
    agn = (lab % 10).astype(np.uint8)
    p = prepare(img, PreprocessConfig(target_spacing_mm=(2.5, 2.5)))
    plab = prepare_labels(agn, p)
    z = 2
    logits = torch.nn.functional.one_hot(torch.from_numpy(plab[:, :, z].astype(np.int64)), 8).permute(2, 0, 1).float()
    back = np.zeros(agn.shape[:2], np.int64)  # outside the crop box: background
    x0, x1, y0, y1 = p.crop
    back[x0:x1, y0:y1] = upsample_logits_slice(logits * 10, p).argmax(0).numpy()
    agree = (back == agn[:, :, z]).mean()
    assert (agn[:, :, z][back == 0] == 0).mean() > 0.95  # the box holds the muscles
    assert agree > 0.95


def test_4d_input_uses_echo_and_wrong_dims_refused(toy):
    img, _ = _img(toy)
    series = Image(np.stack([img.data, img.data * 0.1], axis=-1), img.affine)
    v = select_volume(series, 1)
    np.testing.assert_allclose(v.data, img.data * 0.1)
    with pytest.raises(InputError, match="volumes"):
        select_volume(series, 5)
    with pytest.raises(InputError, match="2-D"):
        prepare(Image(img.data[:, :, 0], img.affine), PreprocessConfig())


@pytest.mark.parametrize("spacing, msg", [((20.0, 20.0, 7.0), "in-plane"), ((0.01, 0.01, 7.0), "in-plane"),
                                          ((1.0, 1.0, 500.0), "slice")])
def test_hopeless_spacing_refused(spacing, msg, toy):
    img, _ = _img(toy)
    with pytest.raises(InputError, match=msg):
        prepare(Image(img.data, np.diag([*spacing, 1.0])), PreprocessConfig())


def test_empty_image_refused():
    with pytest.raises(InputError, match="empty"):
        prepare(Image(np.zeros((64, 64, 4), np.float32), np.diag([1.5, 1.5, 7, 1])), PreprocessConfig())


def test_resample_labels_nearest_keeps_values():
    lab = np.zeros((40, 30, 2), np.uint8)
    lab[10:20, 5:15] = 3
    lab[25:35, 15:25] = 7
    r = resample_inplane(lab, (20, 15), labels=True)
    assert set(np.unique(r)) == {0, 3, 7}
    assert r.shape == (20, 15, 2)
