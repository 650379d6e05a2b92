"""3-D networks: D-slice patches with z-padding, slice-consistent augmentation, 5-D loss,
training + resume, export and prediction, z-chunked inference, volumes thinner than a patch,
and the recipe checks."""

import hashlib
import json

import numpy as np
import pytest
import torch
import yaml

from alsseg.io import Image
from alsseg.io.errors import InputError
from alsseg.seg.augment import augment_batch, augment_volume_batch
from alsseg.seg.recipe import AugmentConfig, recipe_from_dict
from alsseg.seg.slices import PatchSampler

IGN = 255


def tiny_3d_dict(tiny_recipe_file, depth=8):
    """The tiny test recipe as a 3-D network (in-plane stride first) with (32, 32, depth) patches."""
    d = yaml.safe_load(tiny_recipe_file.read_text())
    d["network"].update(spatial_dims=3, strides=[[2, 2, 1], [2, 2, 2]])
    d["train"].update(patch_size=[32, 32, depth], batch_size=2, iterations=8)
    return d


def _zcase(n_slices=12, annotated=None, slice_mm=7.0):
    """Image value = slice index (so a patch tells which slices it holds); labels 1 in a square,
    ignore on slices not in ``annotated``."""
    img = np.broadcast_to(np.arange(n_slices, dtype=np.float32), (40, 40, n_slices)).copy()
    lab = np.zeros((40, 40, n_slices), np.uint8)
    lab[10:30, 10:30] = 1
    if annotated is not None:
        keep = np.zeros(n_slices, bool)
        keep[list(annotated)] = True
        lab[:, :, ~keep] = IGN
    return {"id": "z", "image": img, "labels": lab, "spacing_mm": np.array([2.0, 2.0], np.float32),
            "slice_mm": slice_mm}


# --- sampler ---------------------------------------------------------------------------------

def test_sampler_3d_shapes_consecutive_slices_no_padding_when_deep_enough():
    s = PatchSampler([_zcase(12)], (16, 16, 4), IGN, 1.0)  # centres inside the image
    x, y = s.sample(16, seed=0, rank=0, iteration=3)
    assert x.shape == (16, 1, 16, 16, 4) and y.shape == (16, 1, 16, 16, 4)
    assert x.dtype == np.float32 and y.dtype == np.int64
    z = x[:, 0, 8, 8, :]  # slice index along the patch's z axis
    assert np.all(np.diff(z, axis=1) == 1) and z.min() >= 0 and z.max() <= 11  # consecutive, inside
    assert not (y == IGN).any()
    x2, y2 = s.sample(16, seed=0, rank=0, iteration=3)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)  # (seed, rank, iteration) decide a batch


def test_sampler_3d_pads_thin_volumes_with_minimum_and_ignore():
    s = PatchSampler([_zcase(3)], (16, 16, 8), IGN, 1.0)
    x, y = s.sample(12, seed=1, rank=0, iteration=0)
    offsets = set()
    for b in range(12):
        real = ~(y[b, 0] == IGN).all(axis=(0, 1))  # (D,) slices from the volume
        idx = np.flatnonzero(real)
        assert len(idx) == 3 and np.all(np.diff(idx) == 1)  # the whole volume, in order
        assert np.all(x[b, 0][:, :, ~real] == 0.0)  # padded with the image minimum (slice 0 = 0)
        assert x[b, 0, 8, 8, idx].tolist() == [0.0, 1.0, 2.0]
        offsets.add(int(idx[0]))
    assert len(offsets) > 1  # placement inside the window varies


def test_sampler_3d_sparse_labels_centre_on_annotated_slices():
    s = PatchSampler([_zcase(20, annotated=[13])], (16, 16, 4), IGN, 1.0)
    x, y = s.sample(20, seed=2, rank=0, iteration=0)
    for b in range(20):
        zs = x[b, 0, 8, 8, :]
        assert 13.0 in zs  # every patch holds the annotated slice
        k = int(np.flatnonzero(zs == 13.0)[0])
        assert not (y[b, 0, :, :, k] == IGN).any()
        others = np.delete(y[b, 0], k, axis=2)  # unannotated: ignore (background only in in-plane padding)
        assert set(np.unique(others).tolist()) <= {0, IGN} and (others == IGN).mean() > 0.5


def test_sampler_3d_refuses_context():
    with pytest.raises(ValueError, match="context"):
        PatchSampler([_zcase(6)], (16, 16, 4), IGN, context_slices=1)


def _regression_cases():
    rng = np.random.default_rng(7)
    out = []
    for i in range(3):
        img = rng.normal(size=(30, 26, 6)).astype(np.float32)
        lab = np.zeros((30, 26, 6), np.uint8)
        lab[8:20, 5:15, 1:] = 3
        lab[:, :, 4] = 255
        out.append({"image": img, "labels": lab, "slice_mm": 5.0 + 5 * i})
    return out


@pytest.mark.parametrize("kw, digest", [
    ({}, "68857884360b1e19ec94ed35abcf2bb4eb1b261d66f547c4ae14fe81fcaba686"),
    ({"context_slices": 1, "p_context_drop": 0.3, "max_context_spacing_mm": 12},
     "2cd0532fa03a5b4b4080c5f04ca19e634e42573a87b927e6a157d20ca943bc9e")])
def test_2d_and_2p5d_batches_pinned(kw, digest):
    """sha256 of batches: 2-D as drawn by the sampler before 2.5-D and 3-D came in (commit caf507a),
    2.5-D as drawn now (resumed runs rely on batches not changing)."""
    x, y = PatchSampler(_regression_cases(), (16, 32), 255, 0.7, **kw).sample(8, 11, 1, 5)
    assert hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest() == digest


# --- augmentation and loss -------------------------------------------------------------------

def test_augmentation_is_the_same_in_every_slice():
    g = torch.Generator().manual_seed(0)
    sl = torch.randn(3, 1, 32, 32, 1, generator=g)
    x = sl.repeat(1, 1, 1, 1, 5)
    y = torch.zeros(3, 1, 32, 32, 5, dtype=torch.long)
    y[:, :, 8:20, 6:14] = 3
    y[:, :, :, :, 4] = IGN  # a padded / unannotated slice
    cfg = AugmentConfig(p_affine=1, p_elastic=1, p_flip_lr=0.5, p_bias=1, p_gamma=1, p_noise=0, p_lowres=1)
    xa, ya = augment_volume_batch(x, y, cfg, torch.Generator().manual_seed(3), 2.0, IGN)
    assert xa.shape == x.shape and ya.shape == y.shape and ya.dtype == torch.long
    assert not torch.allclose(xa, x)  # something happened
    for d in range(1, 5):
        torch.testing.assert_close(xa[..., d], xa[..., 0])  # same spatial + intensity transform
    for d in range(1, 4):
        assert torch.equal(ya[..., d], ya[..., 0])
    assert (ya[..., 4] == IGN).all()  # an all-ignore slice stays all-ignore
    assert set(torch.unique(ya[..., :4]).tolist()) <= {0, 3}
    # equals the 2-D augmentation with the slices as channels (labels with several channels)
    xb, yb = augment_batch(x[:, 0].permute(0, 3, 1, 2), y[:, 0].permute(0, 3, 1, 2), cfg,
                           torch.Generator().manual_seed(3), 2.0)
    torch.testing.assert_close(xa[:, 0].permute(0, 3, 1, 2), xb)
    assert torch.equal(ya[:, 0, ..., :4].permute(0, 3, 1, 2), yb[:, :4])


def test_masked_loss_on_5d_tensors_skips_ignored_voxels():
    from alsseg.seg.network import masked_dice_ce

    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (2, 1, 8, 8, 4), generator=g)
    y[..., 3] = IGN
    logits = torch.randn(2, 4, 8, 8, 4, generator=g)
    loss = masked_dice_ce(logits, y, IGN)
    other = logits.clone()
    other[..., 3] = torch.randn(2, 4, 8, 8, generator=g) * 10  # change only the ignored slice
    torch.testing.assert_close(masked_dice_ce(other, y, IGN), loss)
    perfect = torch.nn.functional.one_hot(torch.where(y == IGN, 0, y)[:, 0], 4).movedim(-1, 1).float() * 50
    assert float(masked_dice_ce(perfect, y, IGN)) < 0.01 < float(loss)


# --- training, resume, export, predict -------------------------------------------------------

def _conftest():
    """This folder's conftest as a module (its toy cases and tiny recipe for a module-scoped
    fixture; test modules cannot import conftest under --import-mode=importlib)."""
    import importlib.util
    import pathlib

    spec = importlib.util.spec_from_file_location("seg_conftest_3d", pathlib.Path(__file__).with_name("conftest.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def run_3d(tmp_path_factory):
    """A tiny 3-D run (8 iterations; patches of 8 slices on 5-slice toy volumes: z-padding) and
    its dataset, its recipe and a second run stopped after 3 iterations and resumed."""
    from alsseg.seg.dataset import write_dataset
    from alsseg.seg.train import train

    mod = _conftest()
    cases = mod.make_toy_cases(6)
    root = tmp_path_factory.mktemp("run3d")
    rf = root / "tiny.yaml"
    rf.write_text(mod.TINY_RECIPE)
    recipe = recipe_from_dict(tiny_3d_dict(rf))
    ds = write_dataset(root / "Dataset001_toy", cases, val_fraction=0.34, seed=0)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(recipe, ds, root / "a", quiet=True)
        train(recipe, ds, root / "b", quiet=True, max_iterations=3)
        train(recipe, ds, root / "b", quiet=True, resume=True)
    finally:
        torch.set_num_threads(n)
    return root, ds, recipe


def test_3d_training_and_resume_give_the_same_weights(run_3d):
    root, _, _ = run_3d
    a = torch.load(root / "a" / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(root / "b" / "checkpoints" / "last.pt", weights_only=True)
    assert a["iteration"] == b["iteration"] == 8
    assert a["model"]["model.0.conv.unit0.conv.weight"].ndim == 5  # a 3-D network
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-6)
    spec = json.loads((root / "a" / "run.json").read_text())
    assert spec["network"]["spatial_dims"] == 3 and spec["iterations_done"] == 8
    assert np.isfinite(float(spec["best"]["mean_dice"]))  # 3-D validation ran


def test_3d_export_bundle_predicts_on_the_input_grid(run_3d, tmp_path, toy):
    from alsseg.seg.bundle import export_bundle, read_metadata
    from alsseg.seg.infer import Segmenter

    root, _, _ = run_3d
    bundle = export_bundle(root / "a", tmp_path / "b3d", name="tiny3d")
    assert read_metadata(bundle)["network_data_format"]["inputs"]["image"]["spatial_shape"] == [32, 32, 8]
    seg = Segmenter.from_bundle(bundle, device="cpu")
    assert seg.network.spatial_dims == 3 and seg.patch_size == (32, 32, 8)
    lab, body = toy.leg_labels(shape=(80, 48, 11), seed=3)
    aff = np.diag([2.0, 2.0, 7.0, 1.0])
    out = seg.predict(Image(toy.image(lab, body, 3), aff))
    assert out.shape == (80, 48, 11) and out.data.dtype == np.uint8
    np.testing.assert_array_equal(out.affine, aff)
    assert set(np.unique(out.data).tolist()) <= {0, *range(1, 8), *range(11, 18)}
    ck = Segmenter.from_checkpoint(root / "a" / "checkpoints" / "best.pt", device="cpu")  # what was exported
    np.testing.assert_array_equal(ck.predict(Image(toy.image(lab, body, 3), aff)).data, out.data)


def test_3d_inference_in_z_chunks_equals_one_piece(run_3d, toy, monkeypatch):
    import alsseg.seg.infer as infer
    from alsseg.seg.preprocess import prepare

    root, _, _ = run_3d
    seg = infer.Segmenter.from_checkpoint(root / "a" / "checkpoints" / "last.pt", device="cpu")
    lab, body = toy.leg_labels(shape=(80, 48, 23), seed=5)
    im = Image(toy.image(lab, body, 5), np.diag([2.0, 2.0, 7.0, 1.0]))
    data = prepare(im, seg.preprocess).data
    assert len(infer.z_window_starts(23, 8, 0.25)) == 4

    def collect(chunk):
        parts = list(infer.sliding_logits(seg.model, data, seg.patch_size, "cpu", chunk=chunk))
        z0s = [z0 for z0, _ in parts]
        assert z0s == sorted(z0s) and z0s[0] == 0
        return torch.cat([lg for _, lg in parts]), len(parts)

    one, n_one = collect(100)
    small, n_small = collect(1)
    assert one.shape[0] == 23 and n_one == 1 and n_small == 4  # yielded as windows finish
    torch.testing.assert_close(small, one, rtol=1e-4, atol=1e-4)
    full = seg.predict(im).data
    monkeypatch.setattr(infer, "WINDOW_CHUNK", 1)
    np.testing.assert_array_equal(seg.predict(im).data, full)


def test_3d_volume_with_fewer_slices_than_the_patch(run_3d, toy):
    import alsseg.seg.infer as infer

    root, _, _ = run_3d
    seg = infer.Segmenter.from_checkpoint(root / "a" / "checkpoints" / "last.pt", device="cpu")
    data = np.random.default_rng(0).normal(size=(30, 20, 3)).astype(np.float32)
    parts = list(infer.sliding_logits(seg.model, data, (32, 32, 8), "cpu"))
    assert [z0 for z0, _ in parts] == [0] and parts[0][1].shape == (3, 8, 30, 20)
    lab, body = toy.leg_labels(shape=(80, 48, 2), seed=6)
    out = seg.predict(Image(toy.image(lab, body, 6), np.diag([2.0, 2.0, 7.0, 1.0])))
    assert out.shape == (80, 48, 2)


def test_z_window_grid():
    from alsseg.seg.infer import z_blend_weights, z_window_starts

    assert z_window_starts(5, 8, 0.25) == [0] and z_window_starts(8, 8, 0.25) == [0]
    assert z_window_starts(20, 8, 0.25) == [0, 6, 12]
    assert z_window_starts(21, 8, 0.25) == [0, 6, 12, 13]
    w = z_blend_weights(8)
    assert w.shape == (8,) and float(w.min()) > 0.1 and torch.equal(w, w.flip(0))


def test_3d_recipe_cannot_fine_tune_a_2d_bundle(run_3d, tiny_run, tmp_path, tiny_recipe_file):
    from alsseg.seg.bundle import export_bundle
    from alsseg.seg.train import train

    run2d, _ = tiny_run
    _, ds, recipe = run_3d
    bundle = export_bundle(run2d, tmp_path / "b2d", name="tiny")
    with pytest.raises(InputError, match="does not fit a 2-D network"):
        train(recipe, ds, tmp_path / "ft", init=bundle, quiet=True, max_iterations=1)
    assert not (tmp_path / "ft").exists()


# --- recipe checks ---------------------------------------------------------------------------

@pytest.mark.parametrize("network, patch, match", [
    ({"spatial_dims": 3, "channels": [4, 8, 16], "strides": [2, 2]}, [32, 32], "needs 3 entries"),
    ({"spatial_dims": 3, "channels": [4, 8, 16], "strides": [2, 2]}, [32, 32, 6], r"divisible by 4"),
    ({"spatial_dims": 3, "channels": [4, 8, 16], "strides": [[2, 2, 1], [2, 2, 2]]}, [32, 32, 5],
     r"divisible by \[4, 4, 2\]"),
    ({"spatial_dims": 3, "channels": [4, 8, 16], "strides": [[2, 2], [2, 2, 2]]}, [32, 32, 8], "strides entry"),
    ({"spatial_dims": 3, "channels": [4, 8, 16], "strides": [[2, 2, 0], 2]}, [32, 32, 8], "strides entry"),
    ({"spatial_dims": 2, "channels": [4, 8, 16], "strides": [[2, 2, 1], 2]}, [32, 32], "strides entry"),
    ({"spatial_dims": 2}, [128, 128, 16], "needs 2 entries"),
    ({"spatial_dims": 3, "channels": [4, 8], "strides": [2]}, [32, 32, 7.5], "positive integers"),
    ({"spatial_dims": 3, "channels": [4, 8], "strides": [2], "context_slices": 1}, [32, 32, 8], "context"),
])
def test_bad_3d_recipes_one_line_error_naming_the_file(network, patch, match):
    with pytest.raises(InputError, match=match) as exc:
        recipe_from_dict({"network": network, "train": {"patch_size": patch}}, "bad3d.yaml")
    assert "bad3d.yaml" in str(exc.value) and "\n" not in str(exc.value)


def test_good_3d_recipe_and_partial_blocks():
    r = recipe_from_dict({"network": {"spatial_dims": 3, "channels": [4, 8, 16], "strides": [[2, 2, 1], [2, 2, 2]]},
                          "train": {"patch_size": [32, 32, 2]}})
    assert r.network.strides == ((2, 2, 1), (2, 2, 2))
    assert recipe_from_dict(r.to_dict()) == r  # JSON-able round trip (run.json, bundles)
    # a bundle's network block alone parses (no patch size to check it against)
    assert recipe_from_dict({"network": r.to_dict()["network"]}).network == r.network
