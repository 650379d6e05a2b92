"""The same ``alsseg train`` under torchrun: DistributedDataParallel with 2 CPU processes (gloo)."""

import csv
import subprocess
import sys

import pytest
import torch


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path, toy_dataset, tiny_recipe_file):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "alsseg", "train", "--recipe", str(tiny_recipe_file), "--data", str(toy_dataset),
           "--out", str(run), "-q"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    ck = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert ck["iteration"] == 12
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert [int(r["iteration"]) for r in rows] == [4, 8, 12]  # rank 0 logs once per epoch
    import json

    assert json.loads((run / "run.json").read_text())["world_size"] == 2
