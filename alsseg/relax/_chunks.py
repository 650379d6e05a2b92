"""Run a per-voxel function over memory-bounded chunks, on several threads, with progress."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from alsseg.progress import progress_bar


def map_chunks(func, y: np.ndarray, *, chunk_voxels: int = 16384, n_jobs: int = 1,
               progress: bool = False, desc: str = "fit") -> dict[str, np.ndarray]:
    """Apply ``func(y_chunk) -> dict[str, (n,) or (n, k) ndarray]`` to row chunks of ``y (N, M)``.

    numpy releases the GIL inside its kernels, so threads (``n_jobs`` > 1) share the work without
    copying the data (measured faster than processes here: see ``benchmarks/bench_t2_synthetic.py``).
    The results are concatenated in order.

    BLAS is limited to one thread per worker for the duration (``threadpoolctl``): the per-chunk
    products are small, and OpenBLAS's own threads spinning against the workers (or other jobs
    on a shared machine) made them up to 30× slower here.
    """
    n = y.shape[0]
    chunk_voxels = max(1, int(chunk_voxels))
    starts = list(range(0, n, chunk_voxels))
    bar = None
    if progress and n > 0:
        bar = progress_bar(total=n, desc=desc, unit="vox", unit_scale=True, leave=False)

    def run(s):
        out = func(y[s:s + chunk_voxels])
        if bar is not None:
            bar.update(min(chunk_voxels, n - s))
        return out

    try:
        from threadpoolctl import threadpool_limits
        limiter = threadpool_limits(limits=1, user_api="blas")
    except ImportError:  # pragma: no cover - optional at run time
        limiter = None
    try:
        if n_jobs > 1 and len(starts) > 1:
            with ThreadPoolExecutor(max_workers=int(n_jobs)) as pool:
                parts = list(pool.map(run, starts))
        else:
            parts = [run(s) for s in starts]
    finally:
        if bar is not None:
            bar.close()
        if limiter is not None:
            limiter.restore_original_limits()
    if not parts:
        parts = [func(y[:0])]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
