"""Realism check of the synthetic calf against the real 3 T MESE scan (../shared/data/mese-leg-3t).

Renders a phantom with the real scan's protocol (echo spacing, echo count, TR, voxel size, slice
thickness), classifies tissues in both images with the *same* intensity-free rule (body mask,
depth under the skin, late-echo brightness — no ground truth used for the phantom), and compares
per echo the contrast ratios fat/muscle, marrow/muscle and cortex/muscle. Writes
``docs/figures/realism.png`` (slices side by side at echo 1 and a late echo) and
``docs/figures/realism_ratios.png`` (ratios per echo), and prints a table.

    python benchmarks/synth_realism.py [--real DIR] [--seed N] [--out docs/figures]
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REAL = REPO.parent / "shared" / "data" / "mese-leg-3t"
LATE_ECHO = 8  # 1-based: TE = 8 × ESP (88 ms on the real scan)


def classify(data: np.ndarray, spacing_mm: tuple[float, float, float]) -> dict[str, np.ndarray]:
    """Tissue masks from a MESE series alone.

    Args:
        data: ``(X, Y, Z, E)`` magnitudes (RAS view).
        spacing_mm: voxel spacing.

    Returns:
        Boolean ``(X, Y, Z)`` masks ``muscle``, ``fat`` (subcutaneous), ``marrow``, ``cortex``.
    """
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu

    e1 = data[..., 0]
    late = data[..., LATE_ECHO - 1]
    out = {k: np.zeros(e1.shape, bool) for k in ("muscle", "fat", "marrow", "cortex")}
    body_thr = threshold_otsu(e1[e1 > 0]) * 0.5
    px = spacing_mm[0]
    for k in range(e1.shape[2]):
        body = ndi.binary_fill_holes(ndi.binary_opening(e1[..., k] > body_thr, iterations=2))
        if body.sum() < 500:
            continue
        depth = ndi.distance_transform_edt(body) * px
        lk = late[..., k][body]
        t_late = threshold_otsu(lk)
        bright = (late[..., k] > t_late) & body
        fat = bright & (depth < 10) & (depth > 2.5)
        lab, n = ndi.label(bright & (depth > 12))
        sizes = ndi.sum(np.ones_like(lab), lab, index=np.arange(1, n + 1)) if n else np.array([])
        marrow = np.zeros_like(body)
        if n:
            big = np.argsort(sizes)[::-1][:2]
            for b in big:
                if sizes[b] * px * px > 40:
                    marrow |= ndi.binary_erosion(lab == b + 1, iterations=1)
        e1k = e1[..., k]
        inner = body & (depth > 14) & ~ndi.binary_dilation(bright, iterations=3)
        if inner.sum() < 50:
            continue
        med = np.median(e1k[inner])
        muscle = inner & (np.abs(e1k - med) < 0.25 * med)
        ring = ndi.binary_dilation(marrow, iterations=3) & ~ndi.binary_dilation(marrow, iterations=1)
        cortex = ring & (e1k < 0.4 * med)
        out["muscle"][..., k] = ndi.binary_erosion(muscle, iterations=1)
        out["fat"][..., k] = fat
        out["marrow"][..., k] = marrow
        out["cortex"][..., k] = cortex
    return out


def ratios(data: np.ndarray, masks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-echo mean signal of each tissue divided by muscle's: ``(E,)`` arrays."""
    mus = data[masks["muscle"]].mean(0)
    return {k: data[masks[k]].mean(0) / mus for k in ("fat", "marrow", "cortex") if masks[k].sum() > 20}


def render_phantom(series, seed: int, snr: float):
    """The phantom on the real scan's voxel size, thickness and protocol (contiguous slices over
    the calf, legs centred)."""
    from alsseg.synth import Grid, MeseProtocol, make_subject
    from alsseg.synth.session import render_session

    img = series.image
    sp = img.spacing_mm
    subj = make_subject(seed, disease="healthy")
    nz = 8
    grid = Grid.axial((img.shape[0], img.shape[1], nz), (sp[0], sp[1], 22.0), centre_mm=(0, 0, 5.0),
                      slice_thickness_mm=series.slice_thickness_mm or 7.0)
    proto = MeseProtocol(n_echoes=series.n_echoes, echo_spacing_ms=series.echo_spacing_ms,
                         tr_ms=series.tr_ms or 4000.0, refocus_deg=series.refocus_deg or 180.0)
    ses = render_session(subj, grid, mese=proto, ir=None, snr=snr, rng=np.random.default_rng(seed))
    render_phantom.last_labels = ses.label
    return ses.mese, grid


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", default=str(DEFAULT_REAL))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--snr", type=float, default=150.0)
    ap.add_argument("--out", default=str(REPO / "docs" / "figures"))
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from alsseg.io import load_mese

    real = load_mese(args.real)
    rimg = real.image.to_ras()
    rdata = rimg.data.astype(np.float32)
    sdata, grid = render_phantom(real, args.seed, args.snr)
    # same overall scale: match the median muscle echo-1 signal
    rmask, smask = classify(rdata, rimg.spacing_mm), classify(sdata, grid.spacing_mm)
    rr, sr = ratios(rdata, rmask), ratios(sdata, smask)
    te = real.echo_times_ms
    print(f"# synthetic vs real contrast ratios (tissue / muscle), machine: {platform.node()} "
          f"({platform.processor() or platform.machine()}), seed {args.seed}")
    print(f"# voxels real: " + ", ".join(f"{k} {int(v.sum())}" for k, v in rmask.items())
          + " | synthetic: " + ", ".join(f"{k} {int(v.sum())}" for k, v in smask.items()))
    print(f"{'TE ms':>6} " + " ".join(f"{k + ' real':>12} {k + ' synth':>12} {'diff %':>7}" for k in rr))
    worst = 0.0
    for e in range(len(te)):
        cells = []
        for k in rr:
            d = 100 * (sr[k][e] - rr[k][e]) / rr[k][e] if k in sr else np.nan
            if k in sr and (e == 0 or e == LATE_ECHO - 1):
                worst = max(worst, abs(d))
            cells.append(f"{rr[k][e]:12.3f} {sr.get(k, np.full(len(te), np.nan))[e]:12.3f} {d:7.1f}")
        print(f"{te[e]:6.0f} " + " ".join(cells))
    allw = max(abs(100 * (sr[k] - rr[k]) / rr[k]).max() for k in rr if k in sr)
    print(f"# largest |difference| at echo 1 and echo {LATE_ECHO}: {worst:.1f} %; over all echoes: {allw:.1f} %")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    disp = lambda v: v[::-1, ::-1].T  # noqa: E731  radiological: patient right on the left, anterior up
    r_slices = [k for k in range(rdata.shape[2]) if rmask["muscle"][..., k].sum() > 200]
    s_slices = [k for k in range(sdata.shape[2]) if smask["muscle"][..., k].sum() > 200]
    pick_r = [r_slices[len(r_slices) // 4], r_slices[(3 * len(r_slices)) // 4]]
    pick_s = [s_slices[len(s_slices) // 4], s_slices[(3 * len(s_slices)) // 4]]
    rs = np.median(rdata[..., 0][rmask["muscle"]])
    ss = np.median(sdata[..., 0][smask["muscle"]])
    fig, ax = plt.subplots(4, 2, figsize=(12, 12))
    for row, (kr, ks) in enumerate(zip(pick_r, pick_s)):
        for col, (e, name) in enumerate(((0, "echo 1"), (LATE_ECHO - 1, f"echo {LATE_ECHO}"))):
            vmax = 2.2 if e == 0 else 1.2
            ax[2 * row, col].imshow(disp(rdata[..., kr, e] / rs), cmap="gray", vmin=0, vmax=vmax)
            ax[2 * row, col].set_title(f"real, slice {kr}, {name} (TE {te[e]:.0f} ms)")
            ax[2 * row + 1, col].imshow(disp(sdata[..., ks, e] / ss), cmap="gray", vmin=0, vmax=vmax)
            ax[2 * row + 1, col].set_title(f"synthetic, slice {ks}, {name}")
    for a in ax.flat:
        a.axis("off")
    fig.tight_layout()
    fig.savefig(out / "realism.png", dpi=80)
    fig2, ax2 = plt.subplots(1, len(rr), figsize=(5 * len(rr), 4))
    for a, k in zip(np.atleast_1d(ax2), rr):
        a.plot(te, rr[k], "o-", label="real")
        if k in sr:
            a.plot(te, sr[k], "s--", label="synthetic")
            a.fill_between(te, rr[k] * 0.8, rr[k] * 1.2, alpha=0.15, label="real ±20 %")
        a.set_xlabel("TE (ms)")
        a.set_ylabel(f"{k} / muscle")
        a.legend()
    fig2.tight_layout()
    fig2.savefig(out / "realism_ratios.png", dpi=80)
    # the phantom's ground-truth labels over its echo-1 image, at four levels of the calf
    from matplotlib.colors import ListedColormap

    from alsseg.labels import load_anatomy

    lab = render_phantom.last_labels
    colours = np.zeros((18, 4))
    for lb in load_anatomy().labels:
        colours[lb.id, :3] = np.asarray(lb.muscle.colour) / 255
        colours[lb.id, 3] = 0.55
    cmap = ListedColormap(colours)
    levels = [k for k in range(lab.shape[2]) if (lab[..., k] > 0).sum() > 100]
    pick = [levels[int(round(i))] for i in np.linspace(0, len(levels) - 1, 4)]
    fig3, ax3 = plt.subplots(2, 2, figsize=(12, 6.5))
    for a, k in zip(ax3.flat, pick):
        a.imshow(disp(sdata[..., k, 0] / ss), cmap="gray", vmin=0, vmax=2.2)
        a.imshow(disp(lab[..., k].astype(float)), cmap=cmap, vmin=0, vmax=17, interpolation="nearest")
        z = grid.world(np.array([[0, 0, k]]))[0, 2]
        a.set_title(f"synthetic labels, z = {z:.0f} mm (right leg on the left)")
        a.axis("off")
    fig3.tight_layout()
    fig3.savefig(out / "realism_labels.png", dpi=80)
    print(f"# figures: {out / 'realism.png'}, {out / 'realism_ratios.png'}, {out / 'realism_labels.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
