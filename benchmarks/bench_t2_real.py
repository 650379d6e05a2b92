"""Water T2 on the real 3 T calf scan (``../shared/data/mese-leg-3t``), side by side with peers.

Muscle voxels are chosen by a fixed rule, not drawn by hand:

1. leg: first-echo intensity above its Otsu threshold, eroded by 2 voxels in-plane;
2. muscle: leg voxels whose mono-exponential NLLS T2 (echo 1 skipped) lies in 20–60 ms
   (fat and marrow read > 100 ms, fluid and vessels > 60 ms, bone is dark and outside the leg mask).

Prints, for these voxels: water T2 / FF / B1 of the alsseg EPG fit (median and IQR, fit residual),
the mono-exponential T2 (log-linear; NLLS skipping echo 1), MyoQMRI's EPG dictionary matching when
it is importable, and timings. Writes ``docs/figures/t2_real_maps.png`` (maps of one slice) and
``docs/figures/t2_real_hist.png`` (T2 histograms), unless ``--no-figures``.

Usage::

    python benchmarks/bench_t2_real.py [--data ../shared/data/mese-leg-3t] [--no-figures]
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

    from alsseg.relax.t2 import MonoExpT2Model

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


def main(argv=None):
    from alsseg.io import load_mese
    from alsseg.relax.acquisition import MeseAcquisition
    from alsseg.relax.t2 import EpgT2Model, MonoExpT2Model
    from alsseg.relax.volume import fit_t2_volume

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--no-figures", action="store_true")
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
    t0 = time.perf_counter()
    fit = model.fit(y, n_jobs=2)
    t_fit = time.perf_counter() - t0
    rel = fit.residual / fit.m0
    rows = [("alsseg EPG (water T2)", q(fit.t2_water_ms), q(100 * fit.fat_fraction), q(fit.b1),
             f"{np.median(rel) * 1e3:.2f}", f"{len(y) / t_fit:,.0f} (+{build:.1f} s build)")]
    for method, skip, label in (("loglinear", False, "mono log-linear"), ("nlls", True, "mono NLLS, echo 1 skipped"),
                                ("nlls", False, "mono NLLS")):
        t0 = time.perf_counter()
        m = MonoExpT2Model(te, method, skip_first=skip).fit(y, n_jobs=2)
        dt = time.perf_counter() - t0
        rows.append((label, q(m.t2_ms), "–", "–", f"{np.median(m.residual / m.m0) * 1e3:.2f}", f"{len(y) / dt:,.0f}"))
    myo = None
    try:
        pars, sigs, mbuild = build_dictionary(151, len(te), acq.echo_spacing_ms)
    except Exception as exc:  # pragma: no cover - environment dependent
        rows.append(("MyoQMRI dictionary matching", f"not run: {type(exc).__name__}: {exc}", "", "", "", ""))
    else:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):  # one core
            t0 = time.perf_counter()
            best = match(y, sigs)
            dt = time.perf_counter() - t0
        myo = pars[best]
        rows.append(("MyoQMRI dictionary matching, 1 core (default: TBW 2, refocusing ×1.2, B1 0.5–1.2)",
                     q(myo[:, 0]), q(100 * myo[:, 2]), q(myo[:, 1]), "–", f"{len(y) / dt:,.0f} (+{mbuild:.1f} s build)"))
    print("| method | water T2 ms, median (IQR) | FF % | B1 | median residual / M0 (×1e-3) | voxels/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")

    t0 = time.perf_counter()
    maps = fit_t2_volume(series, acq, leg, model="both", progress=False, n_jobs=2)
    t_vol = time.perf_counter() - t0
    print(f"\nwhole leg mask ({int(leg.sum()):,} voxels), EPG + mono: {t_vol:.2f} s")

    if not args.no_figures:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        args.figures.mkdir(parents=True, exist_ok=True)
        z = int(np.argmax(muscle.sum(axis=(0, 1))))
        xs, ys = np.nonzero(leg[..., z])
        box = (slice(max(xs.min() - 6, 0), xs.max() + 7), slice(max(ys.min() - 6, 0), ys.max() + 7))
        crop = lambda im: im[box]  # noqa: E731
        panels = [("echo 1", data[..., z, 0], "gray", None), ("water T2 (ms)", maps["water"].data[..., z], "viridis", (15, 50)),
                  ("fat fraction", maps["fatfraction"].data[..., z], "magma", (0, 1)),
                  ("B1", maps["b1"].data[..., z], "coolwarm", (0.6, 1.4)),
                  ("mono T2, NLLS (ms)", maps["mono"].data[..., z], "viridis", (15, 50))]
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
        ax.hist(fit.t2_water_ms, bins, histtype="step", lw=2, label=f"alsseg EPG water T2 (median {np.nanmedian(fit.t2_water_ms):.1f})")
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
