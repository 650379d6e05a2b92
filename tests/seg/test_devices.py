"""Device handling: the training device rule, preprocessing in worker processes, and the CUDA
paths (training, torchrun with NCCL, inference agreeing with the CPU), skipped without a GPU."""

import importlib
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from alsseg.io.errors import InputError

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")


def test_training_device_rule(monkeypatch):
    tr = importlib.import_module("alsseg.seg.train")  # the module (alsseg.seg.train is also the function)

    assert tr._training_device("cpu", 0, 1).type == "cpu"
    with pytest.raises(InputError, match="cpu or cuda"):
        tr._training_device("tpu", 0, 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert tr._training_device(None, 0, 1).type == "cpu"
    with pytest.raises(InputError, match="no GPU is visible"):
        tr._training_device("cuda", 0, 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert tr._training_device(None, 0, 2) == torch.device("cuda", 0)
    with pytest.raises(InputError, match="2 processes per node but 1 GPU"):
        tr._training_device(None, 1, 2)  # two torchrun processes on one GPU


def test_cli_train_device_without_gpu(tmp_path, toy_dataset, tiny_recipe_file, capsys, monkeypatch):
    from alsseg.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    rc = main(["train", "--recipe", str(tiny_recipe_file), "--data", str(toy_dataset),
               "--out", str(tmp_path / "run"), "--device", "cuda", "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "no GPU is visible" in err[0]
    assert not (tmp_path / "run").exists()


def test_preprocessing_in_worker_processes_matches_serial(tmp_path, toy):
    """Spawned workers give the cases of the serial path, in order, and fill the same cache."""
    from alsseg.seg.dataset import RawDataset, write_dataset
    from alsseg.seg.recipe import PreprocessConfig
    from alsseg.seg.slices import MIN_CASES_PER_POOL, load_prepared

    ds = RawDataset(write_dataset(tmp_path / "ds", toy.cases(MIN_CASES_PER_POOL), val_fraction=0.0))
    cfg = PreprocessConfig(target_spacing_mm=(3.0, 3.0))
    ids = ds.case_ids
    serial = load_prepared(ds, ids, cfg, None, workers=1)
    pooled = load_prepared(ds, ids, cfg, tmp_path / "cache", workers=2)
    cached = load_prepared(ds, ids, cfg, tmp_path / "cache", workers=2)  # all cached: read in-process
    assert [c["id"] for c in pooled] == ids == [c["id"] for c in cached]
    for a, b, c in zip(serial, pooled, cached):
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["labels"], b["labels"])
        np.testing.assert_array_equal(a["image"], c["image"])
        assert a["slice_mm"] == b["slice_mm"] == c["slice_mm"]
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == len(ids)


@needs_gpu
def test_train_on_gpu_resumes(tmp_path, toy_dataset, tiny_recipe_file):
    """Training on the GPU (augmentation there too) runs, records the device, and resumes."""
    from alsseg.seg.recipe import load_recipe
    from alsseg.seg.train import train

    r = load_recipe(tiny_recipe_file)
    train(r, toy_dataset, tmp_path / "run", quiet=True, device="cuda", max_iterations=5)
    best = train(r, toy_dataset, tmp_path / "run", quiet=True, device="cuda", resume=True)
    assert best["iterations_done"] == 12
    spec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert spec["trained_on"]["device"].startswith("cuda")


@needs_gpu
@pytest.mark.slow
def test_torchrun_on_the_gpus(tmp_path, toy_dataset, tiny_recipe_file):
    """torchrun with one process per GPU: DDP over NCCL with the wall-clock stop-flag broadcast
    where there are 2 or more GPUs; with one GPU a single process (no DDP) on that GPU."""
    import yaml

    recipe = yaml.safe_load(tiny_recipe_file.read_text())
    recipe["train"]["max_minutes"] = 30.0  # exercises the stop-flag broadcast every iteration
    f = tmp_path / "tiny_budget.yaml"
    f.write_text(yaml.safe_dump(recipe))
    n = torch.cuda.device_count()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
           "-m", "alsseg", "train", "--recipe", str(f), "--data", str(toy_dataset),
           "--out", str(tmp_path / "run"), "-q", "--device", "cuda"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    spec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert spec["world_size"] == n and spec["iterations_done"] == 12


@needs_gpu
def test_gpu_inference_agrees_with_cpu():
    """The shipped model on a synthetic subject: GPU and CPU label maps agree almost everywhere."""
    from alsseg.seg.infer import Segmenter
    from alsseg.cases import synthetic_subject_cases

    case = synthetic_subject_cases(300002, ["mese_e1"], grids_per_subject=1)[0]
    cpu = Segmenter.from_bundle("lowerleg-unet", device="cpu").predict(case.image).data
    gpu_seg = Segmenter.from_bundle("lowerleg-unet", device="cuda")
    assert next(gpu_seg.model.parameters()).is_cuda
    gpu = gpu_seg.predict(case.image).data
    fg = (cpu > 0) | (gpu > 0)
    assert np.mean(cpu[fg] == gpu[fg]) > 0.995
