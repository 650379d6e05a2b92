"""The same ``alsseg train`` under torchrun: DistributedDataParallel with 2 CPU processes (gloo),
for 2-D, 2.5-D and 3-D networks."""

import csv
import subprocess
import sys

import pytest
import torch


#: network/train overrides of the tiny recipe: 2-D as it is, 2.5-D, 3-D
VARIANTS = {
    "2d": ({}, {"max_minutes": 30.0}),  # a wall-clock budget: the stop flag is broadcast every iteration
    "2.5d": ({"context_slices": 1}, {}),
    "3d": ({"spatial_dims": 3, "strides": [[2, 2, 1], [2, 2, 1]]}, {"patch_size": [32, 32, 4], "batch_size": 2}),
}


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_torchrun_two_cpu_processes(tmp_path, toy_dataset, tiny_recipe_file, variant):
    import yaml

    recipe = yaml.safe_load(tiny_recipe_file.read_text())
    net, tr = VARIANTS[variant]
    recipe["network"].update(net)
    recipe["train"].update(tr)
    recipe_file = tmp_path / f"tiny_{variant}.yaml"
    recipe_file.write_text(yaml.safe_dump(recipe))
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "alsseg", "train", "--recipe", str(recipe_file), "--data", str(toy_dataset),
           "--out", str(run), "-q", "--device", "cpu"]  # 2 CPU processes, also where there is a GPU
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    ck = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert ck["iteration"] == 12
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert [int(r["iteration"]) for r in rows] == [4, 8, 12]  # rank 0 logs once per epoch
    import json

    spec = json.loads((run / "run.json").read_text())
    assert spec["world_size"] == 2
    assert spec["network"]["spatial_dims"] == (3 if variant == "3d" else 2)
    assert spec["network"]["context_slices"] == (1 if variant == "2.5d" else 0)
