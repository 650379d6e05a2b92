"""Water T2 on the real 3 T calf scan (``../shared/data/mese-leg-3t``), side by side with peers.

Muscle voxels are chosen by a fixed rule, not drawn by hand:

1. leg: first-echo intensity above its Otsu threshold, eroded by 2 voxels in-plane;
2. muscle: leg voxels whose mono-exponential NLLS T2 (echo 1 skipped) lies in 20–60 ms
   (fat and marrow read > 100 ms, fluid and vessels > 60 ms, bone is dark and outside the leg mask).

Prints, for these voxels: water T2 / FF / B1 of the alsseg EPG fit (median and IQR, fit residual),
with B1 per voxel (``--b1 voxel``, the fit before issue 16) and with the smooth B1 field (the
default), the mono-exponential T2 (log-linear; NLLS skipping echo 1), MyoQMRI's EPG dictionary
matching when it is importable, and timings. Then the B1 regularity table (before / after) on the
muscle-like voxels of the whole ``fit-t2`` (default mask; fitted, FF < 0.2, water T2 15–60 ms):
B1 at a bound of its range, B1 more than 0.15 from the median of its 7 × 7 in-plane neighbours,
flagged fits; the per-muscle median water T2 of the two legs (the shipped segmentation model's
labels, eroded 1 voxel, by :func:`alsseg.quant.quantify`), and the time of the whole
``alsseg fit-t2`` command side by side with MyoQMRI on the same voxels. Writes ``docs/figures/t2_real_maps.png`` (maps of one slice) and
``docs/figures/t2_real_hist.png`` (T2 histograms), unless ``--no-figures``.

Usage::

    python benchmarks/bench_t2_real.py [--data ../shared/data/mese-leg-3t] [--no-figures] [--no-seg]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from _myoqmri import build_dictionary, match  # benchmarks/_myoqmri.py

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "mese-leg-3t"


def muscle_mask(data: np.ndarray, echo_times_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The documented voxel rule; returns (leg mask, muscle mask) ``(X, Y, Z)`` bool."""
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    from alsseg.relax.mono import MonoExpT2Model

    e1 = data[..., 0]
    leg = e1 > threshold_otsu(e1)
    leg = ndimage.binary_erosion(leg, np.ones((5, 5, 1), bool))
    mono = MonoExpT2Model(echo_times_ms, "nlls", skip_first=True).fit(data, leg)
    muscle = leg & (mono.t2_ms > 20) & (mono.t2_ms < 60)
    return leg, muscle


def q(a):
    a = np.asarray(a, float)
    a = a[np.isfinite(a)]
    return f"{np.median(a):.2f} ({np.percentile(a, 25):.2f}–{np.percentile(a, 75):.2f})"


def local_median_jump(b1: np.ndarray, sel: np.ndarray, k: int = 7, jump: float = 0.15) -> np.ndarray:
    """``(X, Y, Z)`` bool: selected voxels whose B1 differs by more than ``jump`` from the median of
    the finite B1 values in their ``k × k`` in-plane window (itself included)."""
    out = np.zeros(b1.shape, bool)
    for z in range(b1.shape[2]):
        p = np.pad(b1[..., z].astype(float), k // 2, constant_values=np.nan)
        win = np.lib.stride_tricks.sliding_window_view(p, (k, k))
        ii, jj = np.nonzero(sel[..., z])
        med = np.nanmedian(win[ii, jj].reshape(len(ii), -1), axis=1)
        out[ii, jj, z] = np.abs(b1[ii, jj, z] - med) > jump
    return out


def leg_t2_difference(fit, labels, spacing_mm) -> tuple[float, str]:
    """Largest |median water T2 right − left| over muscles (quant's per-muscle table), ms."""
    from alsseg.quant import quantify

    maps = {"t2_water_ms": fit.t2_water_ms, "fat_fraction": fit.fat_fraction, "b1": fit.b1,
            "fit_ok": fit.success, "fit_flag": fit.flag}
    df = quantify(maps, labels, spacing_mm)
    per = df[df.kind == "muscle"].pivot(index="muscle", columns="side", values="t2_water_ms_median").dropna()
    fail = df[df.kind == "muscle"].set_index(["muscle", "side"])["fit_fail_fraction"]
    d = (per["R"] - per["L"]).abs()
    worst = fail.idxmax()
    return float(d.max()), (f"{d.idxmax()} ({per.loc[d.idxmax(), 'R']:.1f} vs {per.loc[d.idxmax(), 'L']:.1f}); "
                            f"fit_fail_fraction max {fail.max():.2f} ({worst[0]}_{worst[1]})")


def b1_table(args, series, fits, auto, myo_rate=None):
    """The B1 regularity table (before / after) and the whole-command timing."""
    import tempfile

    from alsseg.cli import main as alsseg_main

    labels = None
    if not args.no_seg:
        try:
            from alsseg.seg import Segmenter

            labels = np.asarray(Segmenter.from_bundle("lowerleg-unet", device="cpu").predict(series.image).data)
        except Exception as exc:  # pragma: no cover - environment dependent
            print(f"(segmentation not run: {type(exc).__name__}: {exc})")
    times, cpu = {}, {}
    for mode in ("voxel", "smooth"):
        with tempfile.TemporaryDirectory() as tmp:
            t0, c0 = time.perf_counter(), time.process_time()
            alsseg_main(["fit-t2", str(args.data), "--out", tmp, "-q", "--b1", mode, "-j", "2"])
            times[mode], cpu[mode] = time.perf_counter() - t0, time.process_time() - c0
    n_fit = int(auto.sum())
    print("\n### B1 regularity, whole `alsseg fit-t2` (default mask), muscle-like voxels "
          "(fitted, FF < 0.2, water T2 15–60 ms)\n")
    print("| B1 | muscle-like voxels | B1 at a bound % | B1 jump > 0.15 from 7×7 median % | flagged % "
          "| water T2 median ms | legs: max per-muscle abs(median T2 R − L) ms | whole fit-t2 s (voxels/s) "
          "| whole fit-t2 CPU s |")
    print("|---|---|---|---|---|---|---|---|---|")
    lo, hi = 0.5, 1.4
    for mode, label in (("voxel", "per voxel (before; `--b1 voxel`)"), ("smooth", "smooth field (after; default)")):
        f = fits[mode]
        t2, ff, b1 = f.t2_water_ms, f.fat_fraction, f.b1
        m = np.isfinite(t2) & (ff < 0.2) & (t2 >= 15) & (t2 <= 60)
        n = int(m.sum())
        at_bound = ((b1 <= lo + 1e-3) | (b1 >= hi - 1e-3)) & m
        jumps = local_median_jump(b1, m)
        flagged = (f.flag != 0) & m
        legs = "–" if labels is None else "%.2f: %s" % leg_t2_difference(f, labels, series.image.spacing_mm)
        print(f"| {label} | {n:,} | {100 * at_bound.sum() / n:.2f} | {100 * jumps.sum() / n:.2f} | "
              f"{100 * flagged.sum() / n:.2f} | {np.median(t2[m]):.2f} | {legs} | "
              f"{times[mode]:.2f} ({n_fit / times[mode]:,.0f}) | {cpu[mode]:.2f} |")
    if myo_rate is not None:
        rate, mbuild, cpu_rate = myo_rate
        t_myo = n_fit / rate + mbuild
        c_myo = n_fit / cpu_rate
        print(f"\nMyoQMRI on the same {n_fit:,} voxels, 1 core: {t_myo:.1f} s (matching at {rate:,.0f} voxels/s "
              f"+ {mbuild:.1f} s dictionary build): the whole alsseg fit-t2 (load, fit, 8 maps written, 2 threads) "
              f"is {t_myo / times['smooth']:.1f}× faster with the smooth B1, {t_myo / times['voxel']:.1f}× with B1 "
              f"per voxel. CPU time (less sensitive to other jobs): MyoQMRI's matching alone {c_myo:.1f} CPU-s "
              f"(its dictionary build not counted) vs the whole fit-t2 {cpu['smooth']:.2f} CPU-s smooth "
              f"({c_myo / cpu['smooth']:.1f}×), {cpu['voxel']:.2f} CPU-s per voxel ({c_myo / cpu['voxel']:.1f}×)")
    return labels


def field_methods(model, data, auto, muscle, labels, spacing_mm):
    """Water T2, residual and leg asymmetry of the smooth fit with other B1 field estimates."""
    from alsseg.relax.b1 import fit_smooth_b1

    print("\n### B1 field methods (smooth fit; rule-selected muscle voxels)\n")
    print("| field | water T2 median ms | B1 median | median residual / M0 (×1e-3) | legs: max abs(R − L) ms | CPU s |")
    print("|---|---|---|---|---|---|")
    variants = [("polynomial, degree 2, Tukey IRLS", dict(method="poly", order=2)),
                ("polynomial, degree 3", dict(method="poly", order=3)),
                ("polynomial, degree 4 (default)", dict(method="poly", order=4)),
                ("block medians 6 × 6", dict(method="median", block=6)),
                ("block medians 8 × 8", dict(method="median", block=8)),
                ("block medians 12 × 12", dict(method="median", block=12)),
                ("polynomial, degree 4, B1 free within ±0.05 of it", dict(b1_tolerance=0.05)),
                ("polynomial, degree 4, field from all flag-0 voxels (not only FF ≤ 0.3)", dict(max_ff_field=1.0))]

    class _Fit:
        def __init__(self, maps):
            self.__dict__.update(maps)
            self.success = maps["flag"] == 0

    for label, kw in variants:
        c0 = time.process_time()
        maps = fit_smooth_b1(model, data, auto, n_jobs=2, **kw)
        cpu = time.process_time() - c0
        rel = (maps["residual"] / maps["m0"])[muscle]
        legs = "–" if labels is None else f"{leg_t2_difference(_Fit(maps), labels, spacing_mm)[0]:.2f}"
        print(f"| {label} | {np.nanmedian(maps['t2_water_ms'][muscle]):.2f} | {np.nanmedian(maps['b1'][muscle]):.3f} | "
              f"{np.nanmedian(rel) * 1e3:.3f} | {legs} | {cpu:.1f} |")


def profile_presets(series, data, auto, muscle, labels):
    """Water T2 and residual of the smooth fit with each slice-profile preset."""
    from alsseg.relax.acquisition import MeseAcquisition
    from alsseg.relax.profiles import SLICE_PROFILE_PRESETS, preset_profile
    from alsseg.relax.t2 import EpgT2Model

    print("\n### Slice-profile presets (smooth B1; rule-selected muscle voxels)\n")
    print("| `--slice-profile` | water T2 median ms (IQR) | B1 median | median residual / M0 (×1e-3) "
          "| legs: max abs(R − L) ms |")
    print("|---|---|---|---|---|")
    for name in SLICE_PROFILE_PRESETS:
        if name == "ideal":
            continue
        fit = EpgT2Model(MeseAcquisition.from_series(series, profile=preset_profile(name))).fit(data, auto, n_jobs=2)
        rel = (fit.residual / fit.m0)[muscle]
        legs = "–" if labels is None else f"{leg_t2_difference(fit, labels, series.image.spacing_mm)[0]:.2f}"
        print(f"| {name} | {q(fit.t2_water_ms[muscle])} | {np.nanmedian(fit.b1[muscle]):.3f} | "
              f"{np.nanmedian(rel) * 1e3:.3f} | {legs} |")


def main(argv=None):
    from alsseg.io import load_mese
    from alsseg.relax.acquisition import MeseAcquisition
    from alsseg.relax.mono import MonoExpT2Model
    from alsseg.relax.t2 import EpgT2Model
    from alsseg.relax.volume import auto_mask, fit_t2_volume

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--no-figures", action="store_true")
    ap.add_argument("--no-seg", action="store_true", help="skip the per-muscle (segmentation) comparison of the legs")
    ap.add_argument("--no-field-methods", action="store_true", help="skip the table of B1 field methods")
    ap.add_argument("--figures", type=Path, default=REPO / "docs" / "figures")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"{args.data} is absent; nothing to do")
        return 0
    load = os.getloadavg()
    print(f"# bench_t2_real\n\ndata: {args.data}\nload average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"{os.cpu_count()} cores\ncommand: {' '.join([os.path.basename(sys.executable)] + sys.argv)}\n")
    series = load_mese(args.data)
    data = np.asarray(series.image.data, np.float32)
    te = np.asarray(series.echo_times_ms, float)
    acq = MeseAcquisition.from_series(series)
    print(f"series {data.shape}, TE {te[0]:g}…{te[-1]:g} ms (ESP {acq.echo_spacing_ms:g}), TR {acq.tr_ms:g} ms, "
          f"refocusing {acq.refocus_deg:g}°, slice profile: default (se2d17-tuned)")
    leg, muscle = muscle_mask(data, te)
    y = data[muscle]
    print(f"voxels: leg {int(leg.sum()):,}, muscle {int(muscle.sum()):,} (rule in the docstring)\n")

    t0 = time.perf_counter()
    model = EpgT2Model(acq)
    build = time.perf_counter() - t0
    auto = auto_mask(data)
    fits, t_fits = {}, {}
    for mode in ("voxel", "smooth"):
        t0 = time.perf_counter()
        fits[mode] = model.fit(data, auto, b1=mode, n_jobs=2)
        t_fits[mode] = time.perf_counter() - t0
    rows = []
    for mode, label in (("voxel", "alsseg EPG, B1 per voxel (before)"), ("smooth", "alsseg EPG, smooth B1 (default)")):
        f = fits[mode]
        rel = (f.residual / f.m0)[muscle]
        rows.append((label, q(f.t2_water_ms[muscle]), q(100 * f.fat_fraction[muscle]), q(f.b1[muscle]),
                     f"{np.nanmedian(rel) * 1e3:.2f}", f"{int(auto.sum()) / t_fits[mode]:,.0f} (+{build:.1f} s build)"))
    for method, skip, label in (("loglinear", False, "mono log-linear"), ("nlls", True, "mono NLLS, echo 1 skipped"),
                                ("nlls", False, "mono NLLS")):
        t0 = time.perf_counter()
        m = MonoExpT2Model(te, method, skip_first=skip).fit(y, n_jobs=2)
        dt = time.perf_counter() - t0
        rows.append((label, q(m.t2_ms), "–", "–", f"{np.median(m.residual / m.m0) * 1e3:.2f}", f"{len(y) / dt:,.0f}"))
    myo, myo_rate = None, None
    try:
        pars, sigs, mbuild = build_dictionary(151, len(te), acq.echo_spacing_ms)
    except Exception as exc:  # pragma: no cover - environment dependent
        rows.append(("MyoQMRI dictionary matching", f"not run: {type(exc).__name__}: {exc}", "", "", "", ""))
    else:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):  # one core
            t0, c0 = time.perf_counter(), time.process_time()
            best = match(y, sigs)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
        myo = pars[best]
        myo_rate = (len(y) / dt, mbuild, len(y) / dc)
        rows.append(("MyoQMRI dictionary matching, 1 core (default: TBW 2, refocusing ×1.2, B1 0.5–1.2)",
                     q(myo[:, 0]), q(100 * myo[:, 2]), q(myo[:, 1]), "–", f"{len(y) / dt:,.0f} (+{mbuild:.1f} s build)"))
    print("| method | water T2 ms, median (IQR) | FF % | B1 | median residual / M0 (×1e-3) | voxels/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")

    t0 = time.perf_counter()
    maps = fit_t2_volume(series, acq, leg, model="both", progress=False, n_jobs=2)
    t_vol = time.perf_counter() - t0
    print(f"\nwhole leg mask ({int(leg.sum()):,} voxels), EPG (smooth B1) + mono: {t_vol:.2f} s")
    labels = b1_table(args, series, fits, auto, myo_rate=myo_rate)
    if not args.no_field_methods:
        field_methods(model, data, auto, muscle, labels, series.image.spacing_mm)
        profile_presets(series, data, auto, muscle, labels)

    if not args.no_figures:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        args.figures.mkdir(parents=True, exist_ok=True)
        z = int(np.argmax(muscle.sum(axis=(0, 1))))
        xs, ys = np.nonzero(leg[..., z])
        box = (slice(max(xs.min() - 6, 0), xs.max() + 7), slice(max(ys.min() - 6, 0), ys.max() + 7))
        crop = lambda im: im[box]  # noqa: E731
        panels = [("echo 1", data[..., z, 0], "gray", None), ("water T2 (ms)", maps["t2_water_ms"].data[..., z], "viridis", (15, 50)),
                  ("fat fraction", maps["fat_fraction"].data[..., z], "magma", (0, 1)),
                  ("B1, smooth field (default)", maps["b1"].data[..., z], "coolwarm", (0.6, 1.4)),
                  ("B1 per voxel (first pass, desc-b1voxel)", maps["b1_voxel"].data[..., z], "coolwarm", (0.6, 1.4)),
                  ("mono T2, log-linear (ms)", maps["t2_mono_ms"].data[..., z], "viridis", (15, 50))]
        fig, axes = plt.subplots(len(panels), 1, figsize=(7.5, 2.9 * len(panels)))
        for ax, (title, im, cmap, lim) in zip(axes, panels):
            h = ax.imshow(np.rot90(crop(im)), cmap=cmap, vmin=None if lim is None else lim[0],
                          vmax=None if lim is None else lim[1])
            ax.set_title(title)
            ax.axis("off")
            fig.colorbar(h, ax=ax, fraction=0.046, pad=0.02)
        fig.suptitle(f"mese-leg-3t, slice {z}: EPG maps (eroded leg mask) vs mono-exponential")
        fig.tight_layout()
        fig.savefig(args.figures / "t2_real_maps.png", dpi=90)
        plt.close(fig)

        fig, ax = plt.subplots(figsize=(6.5, 4))
        bins = np.linspace(15, 60, 91)
        t2s = fits["smooth"].t2_water_ms[muscle]
        ax.hist(t2s, bins, histtype="step", lw=2, label=f"alsseg EPG water T2, smooth B1 (median {np.nanmedian(t2s):.1f})")
        if myo is not None:
            ax.hist(myo[:, 0], bins, histtype="step", lw=1.5, label=f"MyoQMRI EPG matching ({np.median(myo[:, 0]):.1f})")
        ll = MonoExpT2Model(te, "loglinear").fit(y).t2_ms
        sk = MonoExpT2Model(te, "nlls", skip_first=True).fit(y).t2_ms
        ax.hist(ll, bins, histtype="step", lw=1.5, label=f"mono log-linear ({np.nanmedian(ll):.1f})")
        ax.hist(sk, bins, histtype="step", lw=1.5, label=f"mono NLLS skip echo 1 ({np.nanmedian(sk):.1f})")
        ax.set_xlabel("T2 (ms)")
        ax.set_ylabel("muscle voxels")
        ax.legend(fontsize=8)
        ax.set_title(f"{int(muscle.sum()):,} muscle voxels (rule-based selection)")
        fig.tight_layout()
        fig.savefig(args.figures / "t2_real_hist.png", dpi=90)
        plt.close(fig)
        print(f"figures: {args.figures / 't2_real_maps.png'}, {args.figures / 't2_real_hist.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
