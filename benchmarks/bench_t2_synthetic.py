"""Accuracy and speed of the two-component EPG T2 fit on synthetic MESE data, with peers.

Prints four tables:

1. bias on the noiseless grid (water T2 20–60 ms, FF 0–0.7, B1 0.6–1.2; 17 echoes; ESP 7.5–11 ms),
   the signals simulated exactly by the slice-profile EPG (not read from the fit's table);
2. noise: Rician at SNR 100 on echo 1, median absolute errors;
3. speed, whole volume: a 256 × 256 × 30 bilateral-calf phantom fitted end to end (model and
   dictionary build, masking, fit on both cores, maps written), median of repeats; plus the fit
   alone with 1 thread, 2 threads and 2 processes;
4. peers on the same voxels: MyoQMRI's EPG dictionary matching (``pip install myoqmri``; run this
   script with a Python that has it, e.g. ``/tmp/relaxwork/venv/bin/python``) and a scipy
   ``curve_fit`` mono-exponential per voxel: voxels/s, ratio, water-T2 error.

Usage::

    python benchmarks/bench_t2_synthetic.py [--repeats 3] [--quick] [--no-peers]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from alsseg.relax.acquisition import MeseAcquisition
from alsseg.relax.t2 import EpgT2Model, two_component_signal

from _machine import machine  # benchmarks/_machine.py
from _myoqmri import build_dictionary, match  # benchmarks/_myoqmri.py


def rician(y, sigma, rng):
    return np.abs(y + sigma * rng.normal(size=y.shape) + 1j * sigma * rng.normal(size=y.shape))


# ------------------------------------------------------------------------------------ accuracy
def accuracy(quick: bool):
    print("\n## 1–2. Accuracy (17 echoes, TR 5 s, default slice profile)\n")
    print("| ESP ms | grid voxels | max abs dT2 ms | max abs dFF | max abs dB1 | SNR100 median abs dT2 ms "
          "| median abs dFF | median abs dB1 | fit voxels/s (1 thread) |")
    print("|---|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(1)
    for esp in (7.5, 9.0, 11.0):
        acq = MeseAcquisition(esp, 17, tr_ms=5000.0)
        model = EpgT2Model(acq)
        n1 = 5 if quick else 9
        t2, ff, b1 = (a.ravel() for a in np.meshgrid(np.linspace(20, 60, n1), np.linspace(0, 0.7, n1),
                                                     np.linspace(0.6, 1.2, n1 + 4), indexing="ij"))
        y = two_component_signal(acq, t2, ff, b1, 1000.0)  # exact simulation
        fit = model.fit(y, b1="voxel")
        n = 4000 if quick else 20000
        t2n, ffn, b1n = rng.uniform(20, 60, n), rng.uniform(0, 0.7, n), rng.uniform(0.6, 1.2, n)
        y0 = two_component_signal(acq, t2n, ffn, b1n, 1000.0, dictionary=model.dictionary)
        yn = rician(y0, y0[:, :1] / 100.0, rng)
        t0 = time.perf_counter()
        fn = model.fit(yn, b1="voxel", n_jobs=1)
        rate = n / (time.perf_counter() - t0)
        print(f"| {esp} | {t2.size} | {np.abs(fit.t2_water_ms - t2).max():.3f} | "
              f"{np.abs(fit.fat_fraction - ff).max():.4f} | {np.abs(fit.b1 - b1).max():.4f} | "
              f"{np.median(np.abs(fn.t2_water_ms - t2n)):.2f} | {np.median(np.abs(fn.fat_fraction - ffn)):.4f} | "
              f"{np.median(np.abs(fn.b1 - b1n)):.4f} | {rate:,.0f} |")


# ------------------------------------------------------------------------------------ phantom
def calf_phantom(acq, shape=(256, 256, 30), seed=0, dictionary=None):
    """Two legs (muscle, subcutaneous fat ring, tibia/fibula), smooth T2/FF/B1, Rician noise.

    Returns data ``(X, Y, Z, 17)`` float32 and the true maps (NaN outside tissue).
    """
    rng = np.random.default_rng(seed)
    X, Y, Z = shape
    x, y = np.meshgrid(np.arange(X), np.arange(Y), indexing="ij")
    t2 = np.full((X, Y), np.nan)
    ff = np.full((X, Y), np.nan)
    for cx in (X * 0.28, X * 0.72):
        cy = Y * 0.5
        r = np.hypot((x - cx) / 52.0, (y - cy) / 44.0)
        leg = r < 1.0
        muscle = r < 0.86
        t2[leg] = 30.0
        ff[leg & ~muscle] = 0.9                       # subcutaneous fat
        ff[muscle] = 0.04
        t2[muscle] = 27.0 + 8.0 * (0.5 + 0.5 * np.sin(x[muscle] / 9.0) * np.cos(y[muscle] / 11.0))
        for bx, by, br in ((cx - 15, cy - 20, 9.0), (cx + 22, cy - 5, 5.0)):  # tibia, fibula
            bone = np.hypot(x - bx, y - by) < br
            t2[bone] = np.nan
            ff[bone] = np.nan
    b1 = 0.85 + 0.2 * np.exp(-(((x - X / 2) / 90.0) ** 2 + ((y - Y / 2) / 90.0) ** 2))
    tissue = np.isfinite(t2)
    data = np.zeros((X, Y, Z, acq.n_echoes), np.float32)
    sig = two_component_signal(acq, t2[tissue], ff[tissue], b1[tissue], 1000.0, dictionary=dictionary)
    s1 = np.median(sig[:, 0])
    for k in range(Z):
        sl = np.zeros((X, Y, acq.n_echoes))
        sl[tissue] = sig * (1.0 + 0.1 * np.sin(k / 5.0))
        data[:, :, k] = rician(sl, s1 / 100.0, rng)
    truth = {"t2": np.repeat(t2[:, :, None], Z, 2), "ff": np.repeat(ff[:, :, None], Z, 2),
             "b1": np.repeat(np.where(tissue, b1, np.nan)[:, :, None], Z, 2)}
    return data, truth


_WORKER_MODEL = None


def _proc_init(acq):
    global _WORKER_MODEL
    _WORKER_MODEL = EpgT2Model(acq)


def _proc_fit(chunk):
    return _WORKER_MODEL.fit_voxels(chunk)


def speed(quick: bool, repeats: int):
    from alsseg.io import Image
    from alsseg.io.maps import write_maps
    from alsseg.relax.volume import fit_t2_volume

    print("\n## 3. Speed, whole volume (EPG, 17 echoes, ESP 10 ms)\n")
    acq = MeseAcquisition(10.0, 17, tr_ms=5000.0)
    shape = (256, 256, 8 if quick else 30)
    helper = EpgT2Model(acq)
    data, truth = calf_phantom(acq, shape, dictionary=helper.dictionary)
    img = Image(data, np.diag([1.5, 1.5, 7.0, 1.0]))
    muscle = np.isfinite(truth["t2"]) & (truth["ff"] < 0.5)
    for b1_mode in ("smooth", "voxel"):
        times, cpus, n_masked = [], [], 0
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as tmp:
                t0, c0 = time.perf_counter(), time.process_time()
                maps = fit_t2_volume(img, acq, None, n_jobs=2, progress=False, b1=b1_mode)
                write_maps(maps, tmp, "bench")
                times.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
            n_masked = int(np.isfinite(maps["t2_water_ms"].data).sum())
        med = float(np.median(times))
        err = (maps["t2_water_ms"].data - truth["t2"])[muscle]
        print(f"B1 {b1_mode}{' (default)' if b1_mode == 'smooth' else ''}: volume {shape}, {n_masked:,} masked voxels "
              f"(auto mask), repeats {repeats}: median {med:.2f} s end to end (build + mask + fit + write) = "
              f"**{n_masked / med:,.0f} voxels/s**; times {', '.join(f'{t:.2f}' for t in times)} s; CPU "
              f"{np.median(cpus):.2f} s = {n_masked / np.median(cpus):,.0f} voxels per CPU-second")
        print(f"  muscle voxels: median |water T2 error| {np.nanmedian(np.abs(err)):.2f} ms (median error "
              f"{np.nanmedian(err):+.2f} ms), median |FF error| "
              f"{np.nanmedian(np.abs(maps['fatfraction'].data - truth['ff'])[muscle]):.4f}, median |B1 error| "
              f"{np.nanmedian(np.abs(maps['b1'].data - truth['b1'])[muscle]):.4f}")

    # B1 field variants on the same phantom (its B1 is a smooth Gaussian bump, 0.85–1.05)
    from alsseg.relax.b1 import fit_smooth_b1
    from alsseg.relax.volume import auto_mask as _auto

    print("\n| B1 field (phantom) | median abs water-T2 error ms | median water-T2 error ms | median abs B1 error "
          "| max abs B1 error |")
    print("|---|---|---|---|---|")
    msk_v = _auto(data)
    for label, kw in (("degree-4 polynomial, held (default)", {}),
                      ("degree-4 polynomial, B1 free within ±0.05", {"b1_tolerance": 0.05}),
                      ("block medians 8 × 8, held", {"method": "median", "block": 8})):
        fm = fit_smooth_b1(helper, data, msk_v, n_jobs=2, **kw)
        e = (fm["t2_water_ms"] - truth["t2"])[muscle]
        eb = np.abs(fm["b1"] - truth["b1"])[muscle]
        print(f"| {label} | {np.nanmedian(np.abs(e)):.3f} | {np.nanmedian(e):+.3f} | {np.nanmedian(eb):.4f} | "
              f"{np.nanmax(eb):.3f} |")
    vf = helper.fit(data, msk_v, b1="voxel", n_jobs=2)
    e = (vf.t2_water_ms - truth["t2"])[muscle]
    eb = np.abs(vf.b1 - truth["b1"])[muscle]
    print(f"| none: B1 per voxel | {np.nanmedian(np.abs(e)):.3f} | {np.nanmedian(e):+.3f} | {np.nanmedian(eb):.4f} | "
          f"{np.nanmax(eb):.3f} |")

    # one instrumented run: where the time goes
    from alsseg.relax.volume import auto_mask
    t0 = time.perf_counter()
    m_b = EpgT2Model(acq)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    msk = auto_mask(data)
    t_mask = time.perf_counter() - t0
    t0 = time.perf_counter()
    c0 = time.process_time()
    m_b.fit(data, msk, n_jobs=2)  # smooth B1 (the default)
    t_fit, c_fit = time.perf_counter() - t0, time.process_time() - c0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_maps(maps, tmp, "bench")
        t_write = time.perf_counter() - t0
    print(f"breakdown of one run: dictionary/model build {t_build:.2f} s, mask {t_mask:.2f} s, fit {t_fit:.2f} s "
          f"({int(msk.sum()) / t_fit:,.0f} voxels/s wall; {c_fit:.2f} CPU-s = {int(msk.sum()) / c_fit:,.0f} "
          f"voxels per CPU-second), write 7 maps {t_write:.2f} s")

    # fit alone: threads vs processes
    tissue = np.isfinite(maps["t2_water_ms"].data)
    yv = data[tissue]
    sub = yv[: min(len(yv), 200_000)]
    rows = ["| workers | voxels/s (fit only, median wall) | voxels per CPU-second |", "|---|---|---|"]
    for label, nj in (("1 thread", 1), ("2 threads", 2)):
        ts, cs = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            c0 = time.process_time()
            helper.fit(sub, b1="voxel", n_jobs=nj)
            ts.append(time.perf_counter() - t0)
            cs.append(time.process_time() - c0)
        rows.append(f"| {label} | {len(sub) / np.median(ts):,.0f} | {len(sub) / np.median(cs):,.0f} |")
    with ProcessPoolExecutor(2, initializer=_proc_init, initargs=(acq,)) as pool:
        list(pool.map(_proc_fit, [sub[:10]] * 2))  # warm: model built in each worker
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            list(pool.map(_proc_fit, np.array_split(sub, 16)))
            ts.append(time.perf_counter() - t0)
        rows.append(f"| 2 processes | {len(sub) / np.median(ts):,.0f} | (not measured) |")
    print("\n" + "\n".join(rows))
    return acq, helper, yv, truth["t2"][tissue], truth["ff"][tissue]


# ------------------------------------------------------------------------------------ peers
def peers(acq, model, y, t2_true, ff_true, quick: bool, repeats: int):
    print("\n## 4. Peers on the same voxels (muscle and fat of the phantom)\n")
    rng = np.random.default_rng(5)
    idx = rng.choice(len(y), min(len(y), 20000 if not quick else 4000), replace=False)
    ys, t2s, ffs = y[idx].astype(np.float64), t2_true[idx], ff_true[idx]
    musc = ffs < 0.5
    rows = []

    for nj in (1, 2):
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            ours = model.fit(ys, b1="voxel", n_jobs=nj)
            ts.append(time.perf_counter() - t0)
        rate = len(ys) / np.median(ts)
        if nj == 1:
            ours_rate = rate
        rows.append((f"alsseg EpgT2Model ({nj} thread{'s' if nj > 1 else ''})", rate, "-",
                     np.median(np.abs(ours.t2_water_ms - t2s)[musc]), np.median(np.abs(ours.fat_fraction - ffs))))

    try:
        pars, sigs, build = build_dictionary(acq.fat_t2_ms, acq.n_echoes, acq.echo_spacing_ms)
    except Exception as exc:  # pragma: no cover - depends on the environment
        rows.append(("MyoQMRI dictionary matching", float("nan"),
                     f"not run: cannot import MyoQMRI ({type(exc).__name__}: {exc})", np.nan, np.nan))
    else:
        sub = ys[: min(len(ys), 4000)]
        ts = []
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=1, user_api="blas"):  # one core, as its per-slice workers use
            for _ in range(repeats):
                t0 = time.perf_counter()
                best = match(sub, sigs)
                ts.append(time.perf_counter() - t0)
        rate = len(sub) / np.median(ts)
        p = pars[best]
        m = musc[: len(sub)]
        rows.append((f"MyoQMRI dictionary matching (numpy GEMM path, dictionary build {build:.1f} s)", rate,
                     f"{ours_rate / rate:,.1f}×", np.median(np.abs(p[:, 0] - t2s[: len(sub)])[m]),
                     np.median(np.abs(p[:, 2] - ffs[: len(sub)]))))

    from scipy.optimize import curve_fit

    te = acq.echo_times_ms
    sub = ys[:1000]

    def mono(t, a, t2):
        return a * np.exp(-t / t2)

    t0 = time.perf_counter()
    est = []
    for v in sub:
        try:
            est.append(curve_fit(mono, te, v, p0=(v[0] * 1.3, 40.0), maxfev=2000)[0][1])
        except RuntimeError:
            est.append(np.nan)
    rate = len(sub) / (time.perf_counter() - t0)
    est = np.array(est)
    m = musc[: len(sub)]
    rows.append(("scipy curve_fit mono-exponential per voxel (1 core)", rate, f"{ours_rate / rate:,.1f}×",
                 np.nanmedian(np.abs(est - t2s[: len(sub)])[m]), np.nan))

    print("| method | voxels/s | alsseg (1 thread) / method | median abs water-T2 error, muscle (ms) | median abs FF error |")
    print("|---|---|---|---|---|")
    for name, rate, ratio, e_t2, e_ff in rows:
        print(f"| {name} | {rate:,.0f} | {ratio} | {e_t2:.2f} | {e_ff:.3f} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="smaller grids and volume")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--only", choices=("accuracy", "speed"), help="run one part")
    args = ap.parse_args(argv)
    print(f"# bench_t2_synthetic\n\nmachine: {machine()}")
    print(f"command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}")
    if args.only in (None, "accuracy"):
        accuracy(args.quick)
    if args.only in (None, "speed"):
        acq, model, y, t2, ff = speed(args.quick, args.repeats)
        if not args.no_peers:
            peers(acq, model, y, t2, ff, args.quick, args.repeats)
    print(f"\nload average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
