"""Per-muscle confidence: the arithmetic, the mirrored pass, the Segmenter API, the CLI file and
the per-muscle table column."""

import numpy as np
import pytest

from alsseg.io import Image, load_nifti, save_nifti
from alsseg.labels import load_anatomy
from alsseg.seg.confidence import LOW_CONFIDENCE, combine, confidence_rows, confidence_tsv

ANAT = load_anatomy()


def test_confidence_rows_exact_values():
    lab = np.zeros((10, 10, 2), np.uint8)
    lab[0:4, 0:5, 0] = 1          # TA_R, 20 voxels
    lab[6:8, 0:5, 1] = 15         # SOL_L, 10 voxels
    mirrored = np.zeros_like(lab)
    mirrored[0:4, 0:5, 0] = 1     # TA_R agrees fully
    mirrored[6:8, 0:3, 1] = 15    # SOL_L: 6 of 10 voxels, nothing else
    pmax = np.full(lab.shape, 0.5, np.float32)
    pmax[lab == 1] = 0.9
    rows = {r["muscle"] + r["side"]: r for r in confidence_rows(lab, pmax, mirrored, ANAT)}
    assert set(rows) == {"TAR", "SOLL"}
    assert rows["TAR"]["conf_flip_dice"] == 1.0 and rows["TAR"]["conf_max_softmax"] == pytest.approx(0.9)
    assert rows["TAR"]["seg_confidence"] == pytest.approx(0.9) and not rows["TAR"]["low_confidence"]
    assert rows["SOLL"]["conf_flip_dice"] == pytest.approx(2 * 6 / 16)
    assert rows["SOLL"]["seg_confidence"] == pytest.approx(round(0.5 * 0.75, 4))
    assert rows["SOLL"]["low_confidence"] == (0.375 < LOW_CONFIDENCE)
    assert combine(1.2, 1.0) == 1.0 and combine(0.0, 0.5) == 0.0
    text = confidence_tsv(list(rows.values()))
    assert text.splitlines()[0].split("\t")[:4] == ["label", "muscle", "side", "seg_confidence"]
    assert len(text.splitlines()) == 3


class _Pointwise:
    """A per-pixel 'network' (1x1 convolution): mirroring the input mirrors its output exactly."""

    def __new__(cls, n_classes=8):
        import torch

        torch.manual_seed(0)
        net = torch.nn.Conv2d(1, n_classes, 1)
        with torch.no_grad():
            net.weight[:] = torch.linspace(-3, 3, n_classes)[:, None, None, None]
            net.bias[:] = torch.linspace(2, -2, n_classes)
        return net.eval()


def _segmenter(model):
    from alsseg.seg.infer import Segmenter
    from alsseg.seg.recipe import NetworkConfig, PreprocessConfig

    return Segmenter(model, PreprocessConfig(target_spacing_mm=(2.0, 2.0)), NetworkConfig(), (32, 32), ANAT,
                     device=__import__("torch").device("cpu"))


def test_mirrored_pass_is_mapped_back(toy):
    """With a network that commutes with mirroring, the mirrored pass agrees exactly (flip Dice 1);
    with one that does not (it sees an x ramp), it does not."""
    import torch

    from alsseg.seg.infer import agnostic_pass
    from alsseg.seg.preprocess import prepare

    lab, body = toy.leg_labels(seed=2)
    im = Image(toy.image(lab, body, 2), np.diag([2.0, 2.0, 7.0, 1.0]))
    seg = _segmenter(_Pointwise())
    prepared = prepare(im, seg.preprocess)
    args = (seg.model, prepared, seg.patch_size, seg.device, seg.n_classes, seg.network)
    a, b = agnostic_pass(*args), agnostic_pass(*args, flip_x=True)
    np.testing.assert_array_equal(a.labels, b.labels)
    labels, rows = seg.predict(im, return_confidence=True)
    assert rows and all(r["conf_flip_dice"] == 1.0 for r in rows)
    np.testing.assert_array_equal(labels.data, seg.predict(im).data)

    class Ramp(torch.nn.Module):  # adds a left-to-right ramp: not mirror-symmetric
        def __init__(self):
            super().__init__()
            self.inner = _Pointwise()

        def forward(self, x):
            ramp = torch.linspace(-4, 4, x.shape[2])[None, None, :, None]
            return self.inner(x + ramp)

    seg2 = _segmenter(Ramp().eval())
    a2 = agnostic_pass(seg2.model, prepared, seg2.patch_size, seg2.device, seg2.n_classes, seg2.network)
    b2 = agnostic_pass(seg2.model, prepared, seg2.patch_size, seg2.device, seg2.n_classes, seg2.network, flip_x=True)
    assert (a2.labels != b2.labels).mean() > 0.01


def test_mirror_tta_averages_the_straight_and_the_mirrored_softmax(toy, monkeypatch):
    """``mirror_average`` = the mean of the straight and the mirrored pass's probabilities, slice by
    slice; a Segmenter with ``mirror_tta`` predicts from it (labels, probabilities, confidence)."""
    import dataclasses

    import torch

    from alsseg.seg.infer import agnostic_pass
    from alsseg.seg.preprocess import prepare

    class Ramp(torch.nn.Module):  # not mirror-symmetric, so the two passes differ
        def __init__(self):
            super().__init__()
            self.inner = _Pointwise()

        def forward(self, x):
            return self.inner(x + torch.linspace(-4, 4, x.shape[2])[None, None, :, None])

    lab, body = toy.leg_labels(seed=2)
    im = Image(toy.image(lab, body, 2), np.diag([2.0, 2.0, 7.0, 1.0]))
    seg = _segmenter(Ramp().eval())
    prepared = prepare(im, seg.preprocess)
    args = (seg.model, prepared, seg.patch_size, seg.device, seg.n_classes, seg.network)
    a = agnostic_pass(*args, probabilities=True)
    b = agnostic_pass(*args, probabilities=True, flip_x=True)
    m = agnostic_pass(*args, probabilities=True, mirror_average=True)
    # the two interleaved passes leave autograd as they found it (training after a prediction works)
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    np.testing.assert_allclose(m.probabilities, 0.5 * (a.probabilities + b.probabilities), atol=1e-4)
    assert (a.labels != b.labels).mean() > 0.01 and (m.labels != a.labels).any()
    np.testing.assert_array_equal(m.labels, m.probabilities.argmax(-1))
    with pytest.raises(ValueError, match="exclude"):
        agnostic_pass(*args, flip_x=True, mirror_average=True)
    with pytest.raises(ValueError, match="needs mirror_average"):
        agnostic_pass(*args, mirrored_labels=True)
    kept = agnostic_pass(*args, mirror_average=True, mirrored_labels=True)
    np.testing.assert_array_equal(kept.mirrored_labels, b.labels)  # what a separate flipped pass gives
    np.testing.assert_array_equal(kept.labels, m.labels)
    tta, plain = seg, dataclasses.replace(seg, mirror_tta=False)
    assert tta.mirror_tta  # the default
    labels, probs = tta.predict_full(im, probabilities=True, clean=False)
    plain_labels, plain_probs = plain.predict_full(im, probabilities=True, clean=False)
    assert not np.array_equal(labels.data, plain_labels.data)
    assert not np.allclose(probs.data, plain_probs.data, atol=1e-3)
    import alsseg.seg.infer as infer

    calls = []
    real_sliding = infer.sliding_logits
    monkeypatch.setattr(infer, "sliding_logits", lambda *a, **k: calls.append(1) or real_sliding(*a, **k))
    labels_c, rows = tta.predict(im, return_confidence=True, clean=False)
    np.testing.assert_array_equal(labels_c.data, labels.data)
    assert rows and len(calls) == 2  # the confidence's mirrored pass is the averaged pass's own


def test_shipped_bundle_confidence_and_cli_file(toy, tmp_path):
    """The shipped model on a toy volume: labels unchanged by asking for confidence, values in
    [0, 1], one row per label found; ``alsseg segment --confidence`` writes the table."""
    from alsseg.cli import main
    from alsseg.seg.infer import Segmenter

    seg = Segmenter.from_bundle("lowerleg-unet")
    lab, body = toy.leg_labels(seed=1)
    im = Image(toy.image(lab, body, 1), np.diag([2.0, 2.0, 7.0, 1.0]))
    labels, rows = seg.predict(im, return_confidence=True)
    np.testing.assert_array_equal(labels.data, seg.predict(im).data)
    found = sorted(set(np.unique(labels.data).tolist()) - {0})
    assert [r["label"] for r in rows] == found
    for r in rows:
        for k in ("seg_confidence", "conf_max_softmax", "conf_flip_dice"):
            assert 0.0 <= r[k] <= 1.0
    src = save_nifti(im, tmp_path / "calf_T1w.nii.gz")
    assert main(["segment", str(src), "--out", str(tmp_path / "o"), "--confidence", "-q", "--threads", "1"]) == 0
    tsv = (tmp_path / "o" / "calf_T1w_desc-muscles_confidence.tsv").read_text().splitlines()
    assert len(tsv) == 1 + len(found)
    assert load_nifti(tmp_path / "o" / "calf_T1w_desc-muscles_dseg.nii.gz", dtype=None).shape == im.shape


def test_quant_table_gets_confidence_and_flag():
    from alsseg.quant import CONFIDENCE_COLUMNS, add_confidence, quantify

    lab = np.zeros((12, 12, 3), np.int16)
    lab[0:4, 0:4] = 1    # TA_R
    lab[5:8, 0:4] = 2    # EDL_R
    lab[0:4, 6:10] = 11  # TA_L
    table = quantify({}, lab, (1.0, 1.0, 5.0))
    out = add_confidence(table, {1: 0.95, 2: 0.5}, 0.8)
    assert list(out.columns[-2:]) == list(CONFIDENCE_COLUMNS) and len(out) == len(table)
    by = {(r.muscle, r.side): r for r in out.itertuples()}
    assert by[("TA", "R")].seg_confidence == 0.95 and not by[("TA", "R")].seg_confidence_low
    assert by[("EDL", "R")].seg_confidence_low
    assert by[("anterior", "R")].seg_confidence == 0.5  # a group: its weakest member
    assert np.isnan(by[("TA", "L")].seg_confidence) and by[("TA", "L")].seg_confidence_low is pd_na()
    none = add_confidence(table, None, 0.8)  # labels from a file: unknown
    assert none["seg_confidence"].isna().all() and none["seg_confidence_low"].isna().all()


def pd_na():
    import pandas as pd

    return pd.NA
