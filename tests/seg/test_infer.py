"""Inference: labels on the input grid, 4-D input, tiling, the CLI, bad input."""

import numpy as np
import pytest

from alsseg.io import Image, load_nifti, save_nifti
from alsseg.seg.bundle import export_bundle


@pytest.fixture
def tiny_bundle(tiny_run, tmp_path_factory):
    run, _ = tiny_run
    return export_bundle(run, tmp_path_factory.mktemp("b") / "tiny", name="tiny")


def test_predict_on_input_grid_any_orientation(tiny_bundle, toy):
    from alsseg.seg.infer import Segmenter

    seg = Segmenter.from_bundle(tiny_bundle)
    lab, body = toy.leg_labels(seed=3)
    img = toy.image(lab, body, 3)
    aff = np.diag([2.0, 2.0, 7.0, 1.0])
    out = seg.predict(Image(img, aff))
    assert out.shape == img.shape and out.data.dtype == np.uint8
    np.testing.assert_array_equal(out.affine, aff)
    # the same volume stored LPS-ordered gives the same labels on the flipped grid
    aff_lps = aff.copy()
    aff_lps[0, 0], aff_lps[1, 1] = -2.0, -2.0
    aff_lps[0, 3], aff_lps[1, 3] = 2.0 * (img.shape[0] - 1), 2.0 * (img.shape[1] - 1)
    out2 = seg.predict(Image(img[::-1, ::-1].copy(), aff_lps))
    np.testing.assert_array_equal(out2.data[::-1, ::-1], out.data)
    assert set(np.unique(out.data).tolist()) <= {0, *range(1, 8), *range(11, 18)}


def test_4d_series_uses_the_model_echo(tiny_bundle, toy):
    from alsseg.seg.infer import Segmenter

    seg = Segmenter.from_bundle(tiny_bundle)
    lab, body = toy.leg_labels(seed=4)
    img = toy.image(lab, body, 4)
    aff = np.diag([2.0, 2.0, 7.0, 1.0])
    series = Image(np.stack([img, np.random.default_rng(0).random(img.shape).astype(np.float32)], -1), aff)
    a = seg.predict(series)
    b = seg.predict(Image(img, aff))
    np.testing.assert_array_equal(a.data, b.data)


def test_large_volume_is_tiled(tiny_bundle, toy, monkeypatch):
    """Slices go through in chunks; the result does not depend on the chunk size."""
    import alsseg.seg.infer as infer

    seg = infer.Segmenter.from_bundle(tiny_bundle)
    lab, body = toy.leg_labels(shape=(80, 48, 9), seed=5)
    im = Image(toy.image(lab, body, 5), np.diag([2.0, 2.0, 7.0, 1.0]))
    full = seg.predict(im).data
    monkeypatch.setattr(infer, "SLICE_CHUNK", 2)
    np.testing.assert_array_equal(seg.predict(im).data, full)


def test_cli_segment_many_files(tiny_bundle, toy, tmp_path, capsys):
    from alsseg.cli import main

    paths = []
    for s in (6, 7):
        lab, body = toy.leg_labels(seed=s)
        paths.append(save_nifti(Image(toy.image(lab, body, s), np.diag([2.0, 2.0, 7.0, 1.0])),
                                tmp_path / f"sub-0{s}_T1w.nii.gz"))
    out = tmp_path / "out"
    rc = main(["segment", *map(str, paths), "--out", str(out), "--model", str(tiny_bundle), "--probabilities", "-q"])
    assert rc == 0
    for s in (6, 7):
        d = load_nifti(out / f"sub-0{s}_T1w_desc-muscles_dseg.nii.gz", dtype=None)
        assert d.shape == (80, 48, 5)
        p = load_nifti(out / f"sub-0{s}_T1w_desc-muscles_probseg.nii.gz")
        assert p.shape == (80, 48, 5, 8)
        np.testing.assert_allclose(p.data.sum(-1), 1.0, atol=1e-4)
    assert (out / "dseg.tsv").read_text().startswith("index\tname")


@pytest.mark.parametrize("flag, tta", [([], True), (["--mirror-tta"], True), (["--no-mirror-tta"], False)])
def test_cli_segment_mirror_tta(tiny_bundle, toy, tmp_path, flag, tta):
    """`alsseg segment` writes the labels of a Segmenter with ``mirror_tta`` (the default) unless
    ``--no-mirror-tta``; on this image the two differ, so the flag cannot be ignored unseen."""
    from alsseg.cli import main
    from alsseg.seg.infer import Segmenter

    lab, body = toy.leg_labels(seed=8)
    img = Image(toy.image(lab, body, 8), np.diag([2.0, 2.0, 7.0, 1.0]))
    path = save_nifti(img, tmp_path / "sub-08_T1w.nii.gz")
    assert main(["segment", str(path), "--out", str(tmp_path / "out"), "--model", str(tiny_bundle),
                 *flag, "-q"]) == 0
    written = load_nifti(tmp_path / "out" / "sub-08_T1w_desc-muscles_dseg.nii.gz", dtype=None).data
    expected = Segmenter.from_bundle(tiny_bundle, mirror_tta=tta).predict(img).data
    np.testing.assert_array_equal(written, expected)
    other = Segmenter.from_bundle(tiny_bundle, mirror_tta=not tta).predict(img).data
    assert not np.array_equal(written, other)


@pytest.mark.parametrize("kind", ["empty", "2d", "spacing", "missing"])
def test_cli_bad_input_one_line_nothing_written(tiny_bundle, tmp_path, capsys, kind):
    from alsseg.cli import main

    p = tmp_path / "in.nii.gz"
    if kind == "empty":
        save_nifti(Image(np.zeros((40, 40, 4), np.float32), np.diag([1.5, 1.5, 7, 1])), p)
    elif kind == "2d":
        save_nifti(np.ones((40, 40), np.float32), p, affine=np.eye(4))
    elif kind == "spacing":
        save_nifti(Image(np.random.rand(40, 40, 4).astype(np.float32), np.diag([30.0, 30.0, 7, 1])), p)
    out = tmp_path / "out"
    rc = main(["segment", str(p), "--out", str(out), "--model", str(tiny_bundle), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("alsseg: error: ") and "in.nii.gz" in err[0]
    assert not out.exists() or not any(out.iterdir())


def test_cli_unknown_model(tmp_path, capsys):
    from alsseg.cli import main

    rc = main(["segment", str(tmp_path / "x.nii.gz"), "--out", str(tmp_path / "o"), "--model", "no-such-model"])
    assert rc == 2 and "no such model bundle" in capsys.readouterr().err
