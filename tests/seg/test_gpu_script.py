"""training/gpu_train.sh, the script that trains on a lent GPU: its CPU rehearsal (GPU_TEST=1) of a
stage file builds a dataset, runs the stage's recipes (fine-tunes of chosen ensemble members and a run
from scratch) and packs runs that ``alsseg export`` turns into an ensemble bundle."""

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, **env_extra: str) -> dict:
    return {**os.environ, "GPU_TEST": "1", "OUT": str(tmp_path / "out"), "GPU_WORK": str(tmp_path / "work"),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", **env_extra}


def _rehearse(conf: str, tmp_path: Path, **env_extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "training/gpu_train.sh", conf], check=False, cwd=REPO, env=_env(tmp_path, **env_extra),
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    """The stage 18 rehearsal, run once: ``(tmp_path, completed process)``."""
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    tmp_path = tmp_path_factory.mktemp("stage18")
    return tmp_path, _rehearse("training/gpu_stage18.conf", tmp_path)


@pytest.mark.slow
def test_gpu_script_rehearsal_packs_exportable_runs(rehearsal):
    tmp_path, r = rehearsal
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert len(list((tmp_path / "out").iterdir())) <= 7  # the device returns 8 files at most; one for the console log
    for run in ("a", "b", "c", "d"):
        with tarfile.open(tmp_path / "out" / f"run_18{run}.tgz") as t:
            assert {"run.json", "log.csv", "checkpoints/best.pt", "checkpoints/last.pt"} <= set(t.getnames())
            t.extractall(tmp_path / f"run_18{run}", filter="data")
    import json

    # the stage's fine-tunes start from the members they name, the last run from scratch
    runs = {run: json.loads((tmp_path / f"run_18{run}" / "run.json").read_text()) for run in "abcd"}
    assert [(runs[run]["init"] is not None, runs[run]["init_member"]) for run in "abcd"] == [
        (True, 0), (True, 1), (True, 2), (False, None)], runs
    from alsseg.cli import main
    from alsseg.seg.infer import Segmenter

    bundle = tmp_path / "bundle"
    assert main(["export", str(tmp_path / "run_18a"), "--name", "lowerleg-unet", "--version", "0.0.1",
                 "--checkpoint", "last", "--add-member", str(tmp_path / "run_18d" / "checkpoints" / "last.pt"),
                 "--out", str(bundle)]) == 0
    seg = Segmenter.from_bundle(str(bundle))
    assert len(seg.model.members) == 2


@pytest.mark.slow
def test_gpu_script_stopped_from_outside_packs_what_its_runs_saved(rehearsal, tmp_path):
    """TERM (the device's time limit) while the runs train: they stop, and the checkpoints they last
    saved come back packed (exit 143)."""
    import signal
    import time

    done, r = rehearsal
    assert r.returncode == 0
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(done / "work" / "Dataset518_LowerLegShapeJitterGPU", work / "Dataset518_LowerLegShapeJitterGPU")
    proc = subprocess.Popen(["bash", "training/gpu_train.sh", "training/gpu_stage18.conf"], cwd=REPO,
                            env=_env(tmp_path, GPU_TEST_MINUTES="10"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.monotonic() + 900
        saved = [work / f"run_18{run}" / "checkpoints" / "last.pt" for run in "abcd"]
        while not all(p.exists() for p in saved):
            assert proc.poll() is None and time.monotonic() < deadline, "the runs never saved a checkpoint"
            time.sleep(2)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 143, out[-2000:]
    assert time.monotonic() - t0 < 240  # stopped, not trained out its 10 minutes
    assert "stopped: packing" in out
    for run in "abcd":
        with tarfile.open(tmp_path / "out" / f"run_18{run}.tgz") as t:
            assert "checkpoints/last.pt" in t.getnames()


def test_gpu_script_refuses_a_missing_stage_file(tmp_path):
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    r = _rehearse(str(tmp_path / "nope.conf"), tmp_path)
    assert r.returncode == 2 and not (tmp_path / "out").exists()
