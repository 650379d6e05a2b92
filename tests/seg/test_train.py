"""Training: outputs of a run, logs, resume after interruption (same weights), fine-tuning init."""

import csv
import json

import pytest
import torch

from alsseg.io.errors import InputError
from alsseg.seg.recipe import recipe_from_dict
from alsseg.seg.train import train


def test_run_outputs(tiny_run):
    run, _ = tiny_run
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "checkpoints" / "best.pt").is_file()
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert [int(r["iteration"]) for r in rows] == [4, 8, 12]
    assert {"dice_TA", "dice_GL", "dice_mean", "loss", "lr"} <= set(rows[0])
    assert list((run / "tb").glob("events.out.tfevents.*"))  # TensorBoard-readable
    spec = json.loads((run / "run.json").read_text())
    assert spec["iterations_done"] == 12 and spec["recipe"]["name"] == "tiny"
    # weights only: loadable with weights_only=True
    ck = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert ck["iteration"] == 12


def test_resume_after_interruption_gives_the_same_weights(tmp_path, toy_dataset, tiny_recipe_file):
    """A run stopped after 5 iterations and resumed ends with the weights of an uninterrupted run."""
    from alsseg.seg.recipe import load_recipe

    r = load_recipe(tiny_recipe_file)
    train(r, toy_dataset, tmp_path / "a", quiet=True)
    train(r, toy_dataset, tmp_path / "b", quiet=True, max_iterations=5)
    ck = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=True)
    assert ck["iteration"] == 5
    train(r, toy_dataset, tmp_path / "b", quiet=True, resume=True)
    a = torch.load(tmp_path / "a" / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=True)
    assert a["iteration"] == b["iteration"] == 12
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-6)
    iters = [int(row.split(",")[0]) for row in (tmp_path / "b" / "log.csv").read_text().splitlines()[1:]]
    assert iters == [4, 5, 8, 12]


def test_resume_with_another_recipe_refused(tmp_path, toy_dataset, tiny_recipe_file):
    from alsseg.seg.recipe import load_recipe

    r = load_recipe(tiny_recipe_file)
    train(r, toy_dataset, tmp_path / "run", quiet=True, max_iterations=4)
    r2 = recipe_from_dict({**r.to_dict(), "train": {**r.to_dict()["train"], "learning_rate": 0.5}})
    with pytest.raises(InputError, match="different recipe"):
        train(r2, toy_dataset, tmp_path / "run", quiet=True, resume=True)


def test_fine_tuning_starts_from_the_bundle(tmp_path, tiny_run, toy_dataset, tiny_recipe_file):
    """--init loads the bundle's weights (lr 0: they stay exactly the bundle's)."""
    from alsseg.seg.bundle import export_bundle, safe_load_weights
    from alsseg.seg.recipe import load_recipe

    run, _ = tiny_run
    bundle = export_bundle(run, tmp_path / "bundle", name="tiny")
    r = load_recipe(tiny_recipe_file)
    d = r.to_dict()
    d["train"]["learning_rate"] = 0.0
    d["network"]["channels"] = [8, 8, 8]  # ignored: the bundle's network wins
    train(recipe_from_dict(d), toy_dataset, tmp_path / "ft", init=bundle, quiet=True, max_iterations=4)
    spec = json.loads((tmp_path / "ft" / "run.json").read_text())
    assert spec["init"] == str(bundle) and spec["network"]["channels"] == [4, 8, 16]
    w0 = safe_load_weights(bundle / "models" / "model.pt")
    w1 = torch.load(tmp_path / "ft" / "checkpoints" / "last.pt", weights_only=True)["model"]
    for k in w0:
        if "running" not in k:
            torch.testing.assert_close(w0[k], w1[k])


@pytest.mark.parametrize("mode", ["bundle", "recipe"])
def test_fine_tuning_preprocessing_from_bundle_or_recipe(tmp_path, tiny_run, toy_dataset, tiny_recipe_file, mode):
    """train.init_preprocess: the bundle's spacing by default, the recipe's when asked (e.g. finer)."""
    from alsseg.seg.bundle import export_bundle
    from alsseg.seg.infer import load_bundle
    from alsseg.seg.recipe import load_recipe

    run, _ = tiny_run
    bundle = export_bundle(run, tmp_path / "bundle", name="tiny")
    bundle_spacing = list(load_bundle(bundle, device="cpu").preprocess.target_spacing_mm)
    d = load_recipe(tiny_recipe_file).to_dict()
    finer = [0.75 * s for s in bundle_spacing]
    d["preprocess"]["target_spacing_mm"] = finer
    d["train"]["init_preprocess"] = mode
    train(recipe_from_dict(d), toy_dataset, tmp_path / "ft", init=bundle, quiet=True, max_iterations=4)
    spec = json.loads((tmp_path / "ft" / "run.json").read_text())
    want = finer if mode == "recipe" else bundle_spacing
    assert spec["preprocess"]["target_spacing_mm"] == pytest.approx(want)
    assert spec["recipe"]["preprocess"]["target_spacing_mm"] == pytest.approx(want)
    fine = export_bundle(tmp_path / "ft", tmp_path / "fine", name="tiny")
    assert list(load_bundle(fine, device="cpu").preprocess.target_spacing_mm) == pytest.approx(want)


def test_init_preprocess_must_be_bundle_or_recipe(tiny_recipe_file):
    from alsseg.seg.recipe import load_recipe

    d = load_recipe(tiny_recipe_file).to_dict()
    d["train"]["init_preprocess"] = "dataset"
    with pytest.raises(InputError, match="init_preprocess must be 'bundle' or 'recipe'"):
        recipe_from_dict(d)


def test_sparse_labels_train(tmp_path, toy, tiny_recipe_file):
    """Training on every-3rd-slice annotation runs; unannotated slices are never sampled."""
    from alsseg.seg.dataset import write_dataset
    from alsseg.seg.recipe import load_recipe

    ds = write_dataset(tmp_path / "ds", toy.cases(4), sparse_every=3, val_fraction=0.25)
    best = train(load_recipe(tiny_recipe_file), ds, tmp_path / "run", quiet=True)
    assert best["iterations_done"] == 12


def test_existing_run_refused_and_nothing_to_resume(tmp_path, toy_dataset, tiny_recipe_file):
    from alsseg.seg.recipe import load_recipe

    r = load_recipe(tiny_recipe_file)
    with pytest.raises(InputError, match="nothing to resume"):
        train(r, toy_dataset, tmp_path / "new", resume=True, quiet=True)
    train(r, toy_dataset, tmp_path / "run", quiet=True, max_iterations=4)
    with pytest.raises(InputError, match="already holds a training run"):
        train(r, toy_dataset, tmp_path / "run", quiet=True)
