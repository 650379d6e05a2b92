"""training/gpu_stage16.sh, the script that trained v0.8.0's third member on a lent GPU: its CPU
rehearsal (STAGE16_TEST=1) builds a dataset, runs the three recipes and packs runs that
``alsseg export`` turns into an ensemble bundle."""

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_script_rehearsal_packs_exportable_runs(tmp_path):
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    out, work = tmp_path / "out", tmp_path / "work"
    env = {**os.environ, "STAGE16_TEST": "1", "OUT": str(out), "STAGE16_WORK": str(work),
           "STAGE16_V050": "models/lowerleg-unet",  # the real run starts 16b from v0.5.0 (see the script's header)
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    r = subprocess.run(["bash", "training/gpu_stage16.sh"], check=False, cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for run in ("a", "b", "c"):
        with tarfile.open(out / f"run_16{run}.tgz") as t:
            assert {"run.json", "log.csv", "checkpoints/best.pt", "checkpoints/last.pt"} <= set(t.getnames())
            t.extractall(tmp_path / f"run_16{run}", filter="data")
    from alsseg.cli import main
    from alsseg.seg.infer import Segmenter

    bundle = tmp_path / "bundle"
    assert main(["export", str(tmp_path / "run_16a"), "--name", "lowerleg-unet", "--version", "0.0.1",
                 "--checkpoint", "last", "--add-member", str(tmp_path / "run_16c" / "checkpoints" / "last.pt"),
                 "--out", str(bundle)]) == 0
    seg = Segmenter.from_bundle(str(bundle))
    assert len(seg.model.members) == 2
