"""Running many sessions: one lock per output folder, a local process pool whose workers die
with their parent, and a Dask distributed cluster.

* :func:`output_lock` — a ``filelock`` lock file ``OUT/.alsseg.lock``: a second run into the
  same folder is refused at once (two runs never recompute or clean up under each other).
  Shards of a job array (``--shard i/n``) touch disjoint sessions and may share a folder: each
  holds ``OUT/.alsseg-shard-I-of-N.lock``; a whole-folder run refuses while any shard runs,
  and a shard refuses while a whole-folder run (or the same shard) runs.
* :func:`run_pool` — ``concurrent.futures.ProcessPoolExecutor`` whose workers call
  ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (Linux) and also watch ``os.getppid()`` from a thread, so
  a killed parent leaves no worker behind (on any POSIX system, within a second).
* :func:`run_dask` — the same tasks on a Dask cluster (``distributed``): an address
  (``tcp://host:8786``) or ``local`` (a ``LocalCluster`` of ``n_workers`` processes). A worker
  lost mid-task has its task recomputed elsewhere by the scheduler; a session is finished only
  when its completion marker is written (last, atomically), so nothing is lost or duplicated.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from alsseg.io.errors import InputError

LOCK_NAME = ".alsseg.lock"
#: seconds a shard waits for the folder lock, which other shards hold only for an instant.
SHARD_WAIT_S = 30.0


def is_lock_file(name: str) -> bool:
    """True for the lock files of :func:`output_lock` (ignored when a folder is inspected)."""
    return name == LOCK_NAME or (name.startswith(".alsseg-shard-") and name.endswith(".lock"))
#: seconds between two looks of a worker at its parent (the fallback where prctl is missing).
PARENT_POLL_S = 0.5


@contextlib.contextmanager
def output_lock(out_dir: str | Path, shard: tuple[int, int] | None = None) -> Iterator[Path]:
    """Hold the output folder's lock (or shard ``(i, n)``'s) for the block; refuse at once if
    another run holds a lock that overlaps.

    Raises:
        InputError: another alsseg process is writing the same sessions into ``out_dir``.
    """
    from filelock import Timeout

    out_dir = Path(out_dir)
    busy = ("another alsseg run is writing into this folder (it holds {}); wait for it to finish or "
            "choose another output folder")
    folder, made = _lock(out_dir, LOCK_NAME, 0 if shard is None else SHARD_WAIT_S)
    try:
        folder.acquire()
    except Timeout:
        raise InputError(out_dir, busy.format(LOCK_NAME)) from None
    held = folder
    try:
        if shard is None:
            for other in sorted(out_dir.glob(".alsseg-shard-*.lock")):
                probe, _ = _lock(out_dir, other.name, 0)
                try:
                    probe.acquire()
                except Timeout:
                    raise InputError(out_dir, busy.format(other.name)) from None
                probe.release()
        else:
            name = f".alsseg-shard-{shard[0]}-of-{shard[1]}.lock"
            held, made = _lock(out_dir, name, 0)
            try:
                held.acquire()
            except Timeout:
                raise InputError(out_dir, busy.format(name)) from None
            folder.release()  # other shards may start now
    except BaseException:
        folder.release()
        raise
    try:
        yield Path(held.lock_file)
    except BaseException:
        held.release()
        if made:  # a refused or failed run leaves no lock file it made (a foreign folder stays as it was)
            with contextlib.suppress(OSError):
                os.unlink(held.lock_file)
        raise
    held.release()


def _lock(out_dir: Path, name: str, timeout: float):
    """``(FileLock, made)``: the lock ``out_dir/name``; ``made``: its file did not exist yet."""
    from filelock import FileLock

    from alsseg.io.atomic import make_dirs, record_created

    make_dirs(out_dir)
    path = out_dir / name
    made = not path.exists()
    if made:
        record_created(path)  # a failed `run` removes it with its other outputs
    return FileLock(str(path), timeout=timeout), made


# ------------------------------------------------------------------------------ local pool
def die_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this process when ``parent_pid`` ends (SIGKILL via prctl on Linux,
    plus a watchdog thread polling ``os.getppid()`` everywhere)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch():
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(PARENT_POLL_S)

    threading.Thread(target=watch, name="alsseg-parent-watch", daemon=True).start()


def _init_pool_worker(parent_pid: int, init: Callable | None, initargs: tuple) -> None:
    die_with_parent(parent_pid)
    if init is not None:
        init(*initargs)


def run_pool(fn: Callable, items: Iterable, n_workers: int, on_done: Callable,
             init: Callable | None = None, initargs: tuple = ()) -> None:
    """``fn(item)`` for each item in ``n_workers`` processes that die with this one (each first
    runs ``init(*initargs)``); ``on_done(item, result, error)`` in this process as each finishes
    (``error``: the exception of a crashed worker, else None). An :class:`OSError` of the file
    system (full or read-only disk) stops the run: every later session would fail the same way."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from alsseg.io.atomic import STOP_ERRNOS

    with ProcessPoolExecutor(max_workers=n_workers, initializer=_init_pool_worker,
                             initargs=(os.getpid(), init, initargs)) as pool:
        futs = {pool.submit(fn, item): item for item in items}
        try:
            for fut in as_completed(futs):
                err: BaseException | None
                try:
                    res, err = fut.result(), None
                except OSError as exc:
                    if exc.errno in STOP_ERRNOS:
                        raise
                    res, err = None, exc
                except Exception as exc:  # noqa: BLE001 - a crashed worker is recorded, the run goes on
                    res, err = None, exc
                on_done(futs[fut], res, err)
        except BaseException:
            for f in futs:
                f.cancel()
            raise


# ------------------------------------------------------------------------------------ Dask
def dask_client(scheduler: str, n_workers: int):
    """``(client, cluster_or_None)`` for ``--scheduler`` (``local`` or an address).

    Raises:
        InputError: Dask is not installed, or the scheduler cannot be reached.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError(None, "--scheduler needs Dask: pip install 'alsseg[dask]'") from None
    if scheduler == "local":
        import logging

        # the cluster's own chatter (a worker stopped, a nanny restarting) stays off the terminal
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address="127.0.0.1:0", host="127.0.0.1", silence_logs=logging.ERROR)
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout="15s"), None
    except (OSError, TimeoutError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(None, f"--scheduler {scheduler}: cannot reach the Dask scheduler ({first[:160]})") from None


def run_dask(fn: Callable, items: list, names: list[str], scheduler: str, n_workers: int,
             on_done: Callable, client=None) -> None:
    """``fn(item)`` for each item as Dask tasks; ``on_done(item, result, error)`` as each ends.

    Each task has a unique key (``alsseg-<name>-<run id>``); a worker lost mid-task has the task
    rerun on another worker (the scheduler's ``allowed-failures``, default 3).
    """
    from distributed import as_completed

    own = client is None
    cluster = None
    if own:
        client, cluster = dask_client(scheduler, n_workers)
    try:
        run = uuid.uuid4().hex[:8]
        futs = {client.submit(fn, item, key=f"alsseg-{name}-{run}", pure=False): item
                for item, name in zip(items, names)}
        for fut in as_completed(list(futs)):
            try:
                res, err = fut.result(), None
            except Exception as exc:  # noqa: BLE001 - recorded; KilledWorker after too many losses
                res, err = None, exc
            on_done(futs[fut], res, err)
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
