"""Recipes: parsed once, unknown keys and wrong types refused with one-line InputErrors."""

from pathlib import Path

import pytest

from alsseg.io.errors import InputError
from alsseg.seg.recipe import load_recipe, recipe_from_dict

REPO = Path(__file__).resolve().parents[2]


def test_shipped_recipe_loads():
    r = load_recipe(REPO / "training" / "lowerleg-unet.yaml")
    assert r.network.spatial_dims == 2
    assert r.train.patch_size == (128, 128)
    assert recipe_from_dict(r.to_dict()) == r  # round trip


@pytest.mark.parametrize("values, key", [
    ({"trian": {}}, "trian"),
    ({"train": {"batchsize": 4}}, "train.batchsize"),
    ({"network": {"chanels": [8, 16]}}, "network.chanels"),
    ({"augment": {"p_flip": 0.5}}, "augment.p_flip"),
])
def test_unknown_keys_refused(tmp_path, values, key):
    import yaml

    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump(values))
    with pytest.raises(InputError) as ei:
        load_recipe(p)
    assert key in str(ei.value) and str(p) in str(ei.value)
    assert "\n" not in str(ei.value)


@pytest.mark.parametrize("values", [
    {"train": {"batch_size": "sixteen"}},
    {"train": {"batch_size": 2.5}},
    {"train": {"patch_size": [100, 100]}},          # not divisible by 2**4
    {"network": {"channels": [8, 16], "strides": [2, 2]}},
    {"network": {"spatial_dims": 4}},
    {"preprocess": {"target_spacing_mm": [0, 1]}},
    {"name": 3},
    {"train": 5},
])
def test_bad_values_refused(values):
    with pytest.raises(InputError):
        recipe_from_dict(values, "r.yaml")


def test_missing_and_invalid_yaml(tmp_path):
    with pytest.raises(InputError, match="no such recipe"):
        load_recipe(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_recipe(bad)


def test_cli_refuses_unknown_key(tmp_path, toy_dataset, capsys):
    from alsseg.cli import main

    p = tmp_path / "r.yaml"
    p.write_text("train:\n  learning_rte: 0.1\n")
    assert main(["train", "--recipe", str(p), "--data", str(toy_dataset), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "learning_rte" in err[0]
    assert not (tmp_path / "run").exists()
