"""The cohort engine under stress: workers die with their parent, one lock per output folder,
the start-up clean-up spares other writers, a full disk stops the run with one line, and a
Dask cluster (a local two-worker one) gives the same files as the local pool, even when a
worker is killed mid-session."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alsseg import pipeline
from alsseg.cli import main

GT = pipeline.PipelineOptions(labels_from="groundtruth", fit_t1=False, figures=False, threads=1)
SIX = tuple((f"sub-0{i}", "ses-01", 0.5 * i) for i in range(1, 7))


def _six(writer, root):
    return writer(root, sessions=SIX, participants=tuple((s, "ALS" if i % 2 else "control")
                                                         for i, (s, _, _) in enumerate(SIX)))


def _children(pid: int) -> list[int]:
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_killed_parent_leaves_no_worker(tiny_bids_writer, tmp_path):
    root = _six(tiny_bids_writer, tmp_path / "b")
    cmd = [sys.executable, "-m", "alsseg", "cohort", str(root), "--out", str(tmp_path / "d"), "--jobs", "2",
           "--labels-from", "groundtruth", "--no-t1", "--no-stats", "--no-figures", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    workers: list[int] = []
    while len(workers) < 2 and time.time() - t0 < 120 and proc.poll() is None:
        workers = _children(proc.pid)
        time.sleep(0.05)
    assert len(workers) >= 2, "the pool never started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    t0 = time.time()
    while any(_alive(w) for w in workers) and time.time() - t0 < 10:
        time.sleep(0.05)
    assert not [w for w in workers if _alive(w)], "workers outlived their parent"


def test_second_run_on_a_locked_folder_is_refused(tiny_bids, tmp_path, capsys):
    from filelock import FileLock

    out = tmp_path / "d"
    out.mkdir()
    with FileLock(str(out / ".alsseg.lock")):
        before = sorted(p.name for p in out.iterdir())
        code = main(["cohort", str(tiny_bids), "--out", str(out), "--labels-from", "groundtruth", "-q"])
        err = capsys.readouterr().err
        assert code == 2 and err.strip().splitlines() == [
            f"alsseg: error: {out}: another alsseg run is writing into this folder (it holds .alsseg.lock); "
            "wait for it to finish or choose another output folder"]
        assert sorted(p.name for p in out.iterdir()) == before
        assert main(["run", str(tiny_bids / "sub-01/ses-01"), "--out", str(out), "-q"]) == 2
    # released: the run goes ahead
    assert main(["cohort", str(tiny_bids), "--out", str(out), "--labels-from", "groundtruth", "--no-t1",
                 "--no-stats", "-q"]) == 0


def test_cleanup_touches_only_dead_writers(tmp_path):
    from alsseg.io.atomic import _host, remove_stale_temporaries

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        d = tmp_path / "sub-01/ses-01/anat"
        d.mkdir(parents=True)
        live = d / f".x_T2map.alsseg-{_host()}-{sleeper.pid}-abc.nii.gz"
        stale = d / f".x_T2map.alsseg-{_host()}-{dead.pid}-abc.nii.gz"
        other_host = d / f".x_T2map.alsseg-elsewhere-{dead.pid}-abc.nii.gz"
        user_file = d / ".hidden_notes.txt"
        for p in (live, stale, other_host, user_file):
            p.write_text("x")
        assert remove_stale_temporaries(tmp_path) == [stale]
        assert live.exists() and other_host.exists() and user_file.exists()
    finally:
        sleeper.kill()


def test_full_disk_stops_the_cohort_with_one_line(tiny_bids, tmp_path, capsys, monkeypatch):
    import errno

    import alsseg.io.atomic as atomic

    out = tmp_path / "d"
    assert main(["cohort", str(tiny_bids), "--out", str(out), "--labels-from", "groundtruth", "--no-t1",
                 "--no-stats", "-q", "--shard", "1/3"]) == 0
    real, calls = atomic.os.replace, []

    def full(src, dst):
        calls.append(dst)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", full)
    code = main(["cohort", str(tiny_bids), "--out", str(out), "--labels-from", "groundtruth", "--no-t1",
                 "--no-stats", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no space left on device" in err
    assert "Traceback" not in err
    monkeypatch.undo()
    assert not [p for p in out.rglob(".*") if p.is_file() and not p.name.endswith(".lock")]  # no temporaries
    done = sorted(p.name for p in out.glob("sub-*/ses-*/*_alsseg.json"))
    assert done == ["sub-01_ses-01_alsseg.json"]  # the finished session is kept; a rerun resumes
    res = pipeline.run_cohort(tiny_bids, out, GT, quiet=True)
    assert sorted(r.status for r in res) == ["done", "done", "skipped"]


def test_shards_share_a_folder_but_not_a_shard(tiny_bids, tmp_path, capsys):
    from alsseg.pipeline.jobs import output_lock

    out = tmp_path / "d"
    with output_lock(out, (1, 3)):  # shard 1/3 running elsewhere
        # another shard goes ahead in the same folder …
        assert main(["cohort", str(tiny_bids), "--out", str(out), "--labels-from", "groundtruth", "--no-t1",
                     "-q", "--shard", "2/3"]) == 0
        capsys.readouterr()
        # … the same shard and a whole-folder run are refused
        for extra in (["--shard", "1/3"], []):
            assert main(["cohort", str(tiny_bids), "--out", str(out), "--labels-from", "groundtruth", "--no-t1",
                         "-q", *extra]) == 2
            err = capsys.readouterr().err
            assert len(err.strip().splitlines()) == 1 and ".alsseg-shard-1-of-3.lock" in err
    assert [p.name for p in out.glob("sub-*/ses-*/*_alsseg.json")] == ["sub-01_ses-02_alsseg.json"]


# ---------------------------------------------------------------------------------------- Dask
def _tree(out: Path) -> dict:
    """Relative path → content digest of every output; TSVs compared as text (cohort_status
    without its timing column)."""
    files = {}
    for p in sorted(out.rglob("*")):
        if not p.is_file() or p.name.endswith(".lock"):
            continue
        rel = str(p.relative_to(out))
        if p.name.endswith("_alsseg.json"):
            files[rel] = "marker"  # holds timings and a date
        elif p.name.startswith("cohort_status"):
            files[rel] = [ln.split("\t")[:2] for ln in p.read_text().splitlines()]
        elif p.suffix == ".tsv":
            files[rel] = p.read_text()
        elif p.name.endswith(".nii.gz"):
            import nibabel as nib
            import numpy as np

            img = nib.load(str(p))
            files[rel] = hashlib.sha256(np.ascontiguousarray(img.get_fdata(dtype=np.float32)).tobytes()
                                        + img.affine.tobytes()).hexdigest()
        else:
            files[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return files


@pytest.mark.slow
def test_dask_cluster_equals_local_pool(tiny_bids_writer, tmp_path):
    pytest.importorskip("distributed")
    root = _six(tiny_bids_writer, tmp_path / "b")
    local = pipeline.run_cohort(root, tmp_path / "local", GT, jobs=2, quiet=True)
    dask = pipeline.run_cohort(root, tmp_path / "dask", GT, jobs=2, quiet=True, scheduler="local")
    assert [r.status for r in local] == [r.status for r in dask] == ["done"] * 6
    for out in ("local", "dask"):
        pipeline.run_stats(tmp_path / out, root)
    a, b = _tree(tmp_path / "local"), _tree(tmp_path / "dask")
    assert sorted(a) == sorted(b)
    assert a == b  # every TSV identical, every map identical


@pytest.mark.slow
def test_dask_worker_killed_mid_session_is_recomputed(tiny_bids_writer, tmp_path):
    """A worker SIGKILLed while writing a session's files: the scheduler reruns the session on the
    other worker; the result equals a clean run, one marker per session, no temporary left."""
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    from alsseg.pipeline import jobs
    from alsseg.io.atomic import _tag

    root = _six(tiny_bids_writer, tmp_path / "b")
    flag = tmp_path / "killed-once"
    victim = "sub-03_ses-01"

    def session(item):
        import os as _os
        import signal as _signal
        import threading
        import time as _time

        from alsseg import pipeline as _p

        job, out, opts = item

        def stage(name):
            if job.name == victim and name == "write" and not flag.exists():
                flag.write_text(str(_os.getpid()))
                anat = _p.session_dir(out, job.subject, job.session) / "anat"

                def kill_after_first_file():
                    t0 = _time.time()
                    while not list(anat.glob("*.nii.gz")) and _time.time() - t0 < 20:
                        _time.sleep(0.001)
                    (anat / f".half_written.{_tag()}x.nii.gz").write_bytes(b"partial")
                    _os.kill(_os.getpid(), _signal.SIGKILL)

                threading.Thread(target=kill_after_first_file, daemon=True).start()
                _time.sleep(30)  # the session never gets past its first files

        return _p.run_session(job, out, opts, stage=stage)

    _, todo = pipeline.cohort_jobs(root, GT)
    out = tmp_path / "dask"
    pipeline.prepare_output(out, str(root.resolve()), GT)
    results = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        jobs.run_dask(session, [(j, out, GT) for j in todo], [j.name for j in todo], "local", 2,
                      lambda item, res, err: results.append((item[0].name, res, err)), client=client)
    assert flag.exists(), "the worker was never killed"
    assert sorted(n for n, _, _ in results) == sorted(j.name for j in todo)  # each session once
    assert all(err is None and res.status == "done" for _, res, err in results), results
    # the stale half-written file of the dead worker is gone, nothing else hidden is left
    assert not [p for p in out.rglob(".*") if p.is_file()]
    assert len(list(out.glob("sub-*/ses-*/*_alsseg.json"))) == 6
    clean = pipeline.run_cohort(root, tmp_path / "clean", GT, quiet=True)
    assert all(r.status == "done" for r in clean)
    a = {k: v for k, v in _tree(out).items() if "group" not in k}
    b = {k: v for k, v in _tree(tmp_path / "clean").items() if "group" not in k}
    assert a == b


@pytest.mark.slow
def test_cli_scheduler_local_is_quiet(tiny_bids, tmp_path, capfd):
    pytest.importorskip("distributed")
    out = tmp_path / "d"
    assert main(["cohort", str(tiny_bids), "--out", str(out), "--scheduler", "local", "--jobs", "2",
                 "--labels-from", "groundtruth", "--no-t1", "--no-stats", "--no-figures", "-q"]) == 0
    captured = capfd.readouterr()
    assert captured.err.strip() == "", captured.err  # no raw log lines of the cluster
    assert len(list(out.glob("sub-*/ses-*/*_alsseg.json"))) == 3
