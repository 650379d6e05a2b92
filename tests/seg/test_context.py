"""2.5-D networks: neighbouring slices as channels, inflation of a 2-D bundle, training and
inference with context, and the fallback for widely spaced slices."""

import json

import numpy as np
import pytest
import torch
import yaml

from alsseg.io.errors import InputError
from alsseg.seg.network import build_network, inflate_input_channels
from alsseg.seg.recipe import NetworkConfig, recipe_from_dict
from alsseg.seg.slices import PatchSampler, context_channels, uses_context


def test_context_channels_order_edges_and_fallback():
    vol = np.broadcast_to(np.arange(5, dtype=np.float32), (3, 4, 5))
    out = context_channels(vol, [0, 2, 4], 2)
    assert out.shape == (3, 5, 3, 4)
    assert out[:, :, 0, 0].tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4], [2, 3, 4, 4, 4]]
    flat = context_channels(vol, [1, 3], 1, use_context=False)
    assert flat[:, :, 0, 0].tolist() == [[1, 1, 1], [3, 3, 3]]
    assert context_channels(vol, [3], 0).shape == (1, 1, 3, 4)


def _slice_index_case(slice_mm=5.0):
    img = np.broadcast_to(np.arange(6, dtype=np.float32), (40, 40, 6)).copy()
    return {"id": "c", "image": img, "labels": np.ones((40, 40, 6), np.uint8),
            "spacing_mm": np.array([2.0, 2.0], np.float32), "slice_mm": slice_mm}


def test_sampler_stacks_neighbours_and_drops_them():
    s = PatchSampler([_slice_index_case()], (16, 16), 255, 1.0, context_slices=1, p_context_drop=0.0)
    x, y = s.sample(32, seed=0, rank=0, iteration=0)
    assert x.shape == (32, 3, 16, 16) and y.shape == (32, 1, 16, 16)
    inside = y[:, 0] == 1
    lo = (x[:, 1] - x[:, 0])[inside]
    hi = (x[:, 2] - x[:, 1])[inside]
    assert set(np.unique(lo)) <= {0.0, 1.0} and set(np.unique(hi)) <= {0.0, 1.0}
    assert lo.max() == 1.0 and hi.max() == 1.0  # real neighbours, not copies
    dropped = PatchSampler([_slice_index_case()], (16, 16), 255, 1.0, context_slices=1, p_context_drop=1.0)
    x, y = dropped.sample(8, seed=0, rank=0, iteration=0)
    assert np.array_equal(x[:, 0], x[:, 1]) and np.array_equal(x[:, 2], x[:, 1])
    far = PatchSampler([_slice_index_case(slice_mm=30.0)], (16, 16), 255, 1.0, context_slices=1,
                       p_context_drop=0.0, max_context_spacing_mm=15.0)
    x, _ = far.sample(8, seed=0, rank=0, iteration=0)
    assert np.array_equal(x[:, 0], x[:, 1]) and np.array_equal(x[:, 2], x[:, 1])


def test_two_d_sampler_draws_unchanged():
    """context 0 draws exactly the batches of the 2-D sampler (no extra random numbers)."""
    a = PatchSampler([_slice_index_case()], (16, 16), 255, 0.9)
    b = PatchSampler([_slice_index_case()], (16, 16), 255, 0.9, context_slices=0, p_context_drop=0.5)
    xa, ya = a.sample(8, 3, 0, 7)
    xb, yb = b.sample(8, 3, 0, 7)
    assert np.array_equal(xa, xb) and np.array_equal(ya, yb) and xa.shape[1] == 1


def test_inflated_network_computes_the_2d_network():
    torch.manual_seed(0)
    cfg = NetworkConfig(channels=(4, 8, 16), strides=(2, 2), num_res_units=2)
    net2 = build_network(cfg, 3).eval()
    net25 = build_network(NetworkConfig(channels=(4, 8, 16), strides=(2, 2), num_res_units=2,
                                        context_slices=2), 3).eval()
    net25.load_state_dict(inflate_input_channels(net2.state_dict(), net25.state_dict()))
    x = torch.randn(2, 1, 32, 32)
    ctx = torch.cat([torch.randn(2, 2, 32, 32), x, torch.randn(2, 2, 32, 32)], 1)
    with torch.no_grad():
        torch.testing.assert_close(net2(x), net25(ctx))
    other = build_network(NetworkConfig(channels=(4, 8, 32), strides=(2, 2), num_res_units=2), 3)
    with pytest.raises(ValueError, match="cannot be inflated"):
        inflate_input_channels(net2.state_dict(), other.state_dict())


def test_uses_context_by_slice_spacing():
    net = NetworkConfig(context_slices=1, max_context_spacing_mm=15.0)
    assert uses_context(net.context_slices, 10.0, net.max_context_spacing_mm)
    assert not uses_context(net.context_slices, 37.1, net.max_context_spacing_mm)
    assert not uses_context(NetworkConfig().context_slices, 5.0, NetworkConfig().max_context_spacing_mm)


@pytest.mark.parametrize("network", [{"context_slices": -1}, {"context_slices": 1, "spatial_dims": 3,
                                                               "channels": [4, 8], "strides": [2]},
                                     {"max_context_spacing_mm": 0}])
def test_bad_context_recipes(network):
    with pytest.raises(InputError, match="context"):
        recipe_from_dict({"network": network, "train": {"patch_size": [16, 16, 16] if network.get("spatial_dims") == 3
                                                        else [16, 16]}}, "r.yaml")


def test_fine_tune_2d_bundle_as_2p5d(tmp_path, tiny_run, tiny_recipe_file, toy_case):
    """--init of a 2-D bundle with a 2.5-D recipe: first layer inflated, so with learning rate 0
    the 2.5-D checkpoint predicts exactly what the 2-D bundle predicts; the export says 3 channels."""
    from alsseg.seg.bundle import export_bundle, read_metadata
    from alsseg.seg.infer import Segmenter
    from alsseg.seg.train import train

    run, ds = tiny_run
    bundle = export_bundle(run, tmp_path / "bundle2d", name="tiny")
    d = yaml.safe_load(tiny_recipe_file.read_text())
    d["network"]["context_slices"] = 1
    d["train"]["learning_rate"] = 0.0
    train(recipe_from_dict(d), ds, tmp_path / "ft", init=bundle, quiet=True, max_iterations=4)
    spec = json.loads((tmp_path / "ft" / "run.json").read_text())
    assert spec["network"]["context_slices"] == 1 and spec["network"]["channels"] == [4, 8, 16]
    seg2 = Segmenter.from_bundle(bundle, device="cpu")
    seg25 = Segmenter.from_checkpoint(tmp_path / "ft" / "checkpoints" / "last.pt", device="cpu")
    assert seg25.network.context_slices == 1
    img, _ = toy_case
    assert np.array_equal(seg2.predict(img).data, seg25.predict(img).data)
    out = export_bundle(tmp_path / "ft", tmp_path / "bundle25", name="tiny25", checkpoint="last")
    meta = read_metadata(out)
    assert meta["network_data_format"]["inputs"]["image"]["num_channels"] == 3
    assert Segmenter.from_bundle(out, device="cpu").network.context_slices == 1
