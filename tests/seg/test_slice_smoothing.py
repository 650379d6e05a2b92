"""The softmax averaged over neighbouring slices (alsseg.seg.blend.mean_with_neighbours): the arithmetic,
independence of how slices are cut into runs, and when agnostic_pass / Segmenter apply it."""

import dataclasses

import numpy as np
import pytest

from alsseg.io import Image
from alsseg.labels import load_anatomy

ANAT = load_anatomy()


def _expected(logits):
    """Whole-volume reference: log of the mean softmax of each slice and its neighbours, ends replicated."""
    import torch

    p = torch.softmax(logits, 1)
    ext = torch.cat([p[:1], p, p[-1:]])
    return torch.log((ext[:-2] + ext[1:-1] + ext[2:]) / 3.0)


@pytest.mark.parametrize("runs", [[11], [3, 3, 3, 2], [1] * 11, [1, 10], [10, 1]])
def test_mean_with_neighbours_does_not_depend_on_the_runs(runs):
    import torch

    from alsseg.seg.blend import mean_with_neighbours

    g = torch.Generator().manual_seed(1)
    logits = torch.randn(11, 4, 5, 6, generator=g) * 3
    mirrored = torch.randn(11, 4, 5, 6, generator=g) * 3
    starts = np.cumsum([0] + runs[:-1])
    stream = [(int(z0), logits[z0:z0 + k], mirrored[z0:z0 + k]) for z0, k in zip(starts, runs)]
    out = list(mean_with_neighbours(iter(stream)))
    assert [o[0] for o in out] == list(starts) and [o[1].shape[0] for o in out] == runs
    torch.testing.assert_close(torch.cat([o[1] for o in out]), _expected(logits), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.cat([o[2] for o in out]), _expected(mirrored), atol=1e-5, rtol=1e-5)
    plain = list(mean_with_neighbours(iter([(z0, a, None) for z0, a, _ in stream])))
    assert all(o[2] is None for o in plain)


def test_one_slice_is_left_alone():
    import torch

    from alsseg.seg.blend import mean_with_neighbours

    logits = torch.randn(1, 3, 4, 4)
    (_, out, _), = mean_with_neighbours(iter([(0, logits, None)]))
    torch.testing.assert_close(out, torch.log_softmax(logits, 1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dz, smoothed", [(5.0, True), (7.0, False)])
def test_agnostic_pass_smooths_close_slices_only(toy, dz, smoothed):
    """5 mm apart (<= SMOOTH_MAX_SLICE_SPACING_MM): the probabilities are the neighbour average
    of the unsmoothed ones and the labels their argmax; 7 mm apart: nothing changes."""
    import torch

    from alsseg.seg.infer import SMOOTH_MAX_SLICE_SPACING_MM, Segmenter, agnostic_pass
    from alsseg.seg.preprocess import prepare
    from alsseg.seg.recipe import NetworkConfig, PreprocessConfig

    assert 5.0 <= SMOOTH_MAX_SLICE_SPACING_MM < 7.0
    torch.manual_seed(0)
    net = torch.nn.Conv2d(1, 8, 1).eval()  # per pixel: neighbouring slices differ where the image does
    seg = Segmenter(net, PreprocessConfig(target_spacing_mm=(2.0, 2.0)), NetworkConfig(), (32, 32), ANAT,
                    device=torch.device("cpu"))
    lab, body = toy.leg_labels(seed=3)
    img = toy.image(lab, body, 3)
    img[:, :, 1::2] *= 1.3  # every other slice brighter: the network's answer flickers along z
    im = Image(img, np.diag([2.0, 2.0, dz, 1.0]))
    prepared = prepare(im, seg.preprocess)
    args = (seg.model, prepared, seg.patch_size, seg.device, seg.n_classes, seg.network)
    raw = agnostic_pass(*args, probabilities=True)
    smooth = agnostic_pass(*args, probabilities=True, smooth_slices=True)
    if not smoothed:
        np.testing.assert_array_equal(smooth.labels, raw.labels)
        np.testing.assert_array_equal(smooth.probabilities, raw.probabilities)
        return
    p = raw.probabilities
    ext = np.concatenate([p[:, :, :1], p, p[:, :, -1:]], axis=2)
    mean = (ext[:, :, :-2] + ext[:, :, 1:-1] + ext[:, :, 2:]) / 3.0
    np.testing.assert_allclose(smooth.probabilities, mean, atol=1e-4)
    np.testing.assert_array_equal(smooth.labels, smooth.probabilities.argmax(-1))
    assert (smooth.labels != raw.labels).any()
    # the Segmenter does it by default, and not when told not to
    labels_default = seg.predict_full(im, clean=False)[0].data
    labels_off = dataclasses.replace(seg, smooth_slices=False).predict_full(im, clean=False)[0].data
    assert not np.array_equal(labels_default, labels_off)
