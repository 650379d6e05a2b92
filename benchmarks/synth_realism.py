"""Realism check of the synthetic calf against the real 3 T MESE scan (../shared/data/mese-leg-3t).

Renders healthy phantoms with the real scan's protocol (echo spacing, echo count, TR, voxel size,
slice thickness), classifies tissues in both images with the *same* intensity-free rule (body
mask, depth under the skin, late-echo brightness — no ground truth used for the phantom), and
compares per echo the contrast ratios fat/muscle, marrow/muscle and cortex/muscle. One phantom is
one random subject, so the comparison is made over several seeds (default 5): the table gives the
median synthetic ratio and its difference from the real scan, and the worst seed. Also printed:
the muscle echo train itself (real vs synthetic, normalised to echo 1), its odd/even alternation
at late echoes, and the noise floor of both images. Writes ``docs/figures/realism.png`` (slices
side by side at echo 1 and a late echo, first seed), ``docs/figures/realism_ratios.png`` (ratios
per echo: real, synthetic median and range over seeds) and ``docs/figures/realism_labels.png``.

    python benchmarks/synth_realism.py [--real DIR] [--seeds 0 1 2 3 4] [--snr 150] [--out docs/figures]
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


#: The gastrocnemius–soleus septum of the shipped real scan: RAS voxel columns searched, rows and
#: slices (0-based) where it crosses the x axis once (chosen by eye on echo 1; docs/synth.md).
REAL_SEPTUM_WINDOW = (slice(138, 166), range(40, 65), range(2, 6))


def septum_dip(row: np.ndarray, j: int) -> float:
    """Darkness of a septum on a 1-D profile: the minimum within 2 voxels of ``j`` over the
    median of the muscle 3–6 voxels either side (1: invisible, 0: black)."""
    side = np.r_[row[max(j - 6, 0):max(j - 2, 0)], row[j + 3:j + 7]]
    return float(row[max(j - 2, 0):j + 3].min() / np.median(side))


def real_septum_dips(e1: np.ndarray, window=REAL_SEPTUM_WINDOW) -> np.ndarray:
    """Septum dips along x of the real echo-1 image ``(X, Y, Z)`` (RAS): per row of ``window``,
    the septum is the darkest voxel of the searched columns."""
    xs, ys, zs = window
    out = []
    for z in zs:
        for y in ys:
            j = int(np.argmin(e1[xs, y, z]))
            if 3 < j < xs.stop - xs.start - 3:
                out.append(septum_dip(e1[:, y, z], xs.start + j))
    return np.array(out)


def synth_septum_dips(e1: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Septum dips along x of a phantom image ``(X, Y, Z)``: wherever the label map goes from a
    gastrocnemius to soleus (or back) across at most 3 non-muscle voxels, with 5 voxels of
    muscle on both sides."""
    from alsseg.labels import load_anatomy

    anat = load_anatomy()
    gastrocnemius = {anat.label_id(m, side) for m in ("GM", "GL") for side in anat.side_offsets}
    muscle = gastrocnemius | {anat.label_id("SOL", side) for side in anat.side_offsets}
    out = []
    for z in range(e1.shape[2]):
        for y in range(e1.shape[1]):
            lab = labels[:, y, z]
            for x in range(7, lab.size - 10):
                if lab[x] not in muscle:
                    continue
                k = x + 1
                while k < x + 4 and lab[k] not in muscle:
                    k += 1
                if lab[k] not in muscle or (lab[x] in gastrocnemius) == (lab[k] in gastrocnemius):
                    continue
                if all(v in muscle for v in lab[x - 4:x + 1]) and all(v in muscle for v in lab[k:k + 5]):
                    out.append(septum_dip(e1[:, y, z], (x + k) // 2))
    return np.array(out)


def render_phantom(series, seed: int, snr: float):
    """The phantom on the real scan's voxel size, thickness and protocol (contiguous slices over
    the calf, legs centred).

    Args:
        series: the real :class:`alsseg.io.MeseSeries` (its grid and protocol are copied).
        seed: subject seed (healthy subject) and noise seed.
        snr: mean muscle signal at echo 1 / Rician noise σ.

    Returns:
        ``(data, grid)``: ``(X, Y, 8, n_echoes)`` magnitudes and the :class:`alsseg.synth.Grid`.
        The label map is left in ``render_phantom.last_labels``.
    """
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
    render_phantom.last_sigma = ses.noise_sigma
    return ses.mese, grid


def alternation(curve: np.ndarray, first: int = 10) -> float:
    """Odd/even alternation of an echo train at late echoes.

    Mean over the even echoes ``n ≥ first`` (1-based, with a following echo) of
    ``S_n / sqrt(S_{n−1} · S_{n+1})``: exactly 1 for a mono-exponential decay (≈ 1 for any smooth
    one), > 1 where even echoes stand above their odd neighbours (stimulated echoes of imperfect
    refocusing).

    Args:
        curve: ``(E,)`` echo amplitudes.
        first: first (1-based) echo considered.
    """
    idx = [n - 1 for n in range(first, len(curve)) if n % 2 == 0]
    return float(np.mean([curve[i] / np.sqrt(curve[i - 1] * curve[i + 1]) for i in idx]))


def noise_floor(data: np.ndarray, masks: dict[str, np.ndarray]) -> dict[str, float]:
    """Noise seen in an image, relative to the mean muscle signal at echo 1.

    Returns:
        ``air_mean`` and ``air_zero_fraction`` of the background (voxels further than 10 voxels
        from the thresholded body, last echo), and ``muscle_sigma_last``: a robust σ from the
        differences of neighbouring muscle voxels at the last echo (MAD / √2; includes tissue
        texture, so an upper bound of the noise there).
    """
    from scipy import ndimage as ndi

    e1 = data[..., 0]
    ref = float(data[..., 0][masks["muscle"]].mean())
    body = np.zeros(e1.shape, bool)
    thr = np.percentile(e1, 99) * 0.05
    for k in range(e1.shape[2]):
        body[..., k] = ndi.binary_dilation(ndi.binary_fill_holes(e1[..., k] > thr), iterations=10)
    air = data[..., -1][~body]
    m = masks["muscle"] & np.roll(masks["muscle"], 1, 0)
    diff = (data[..., -1] - np.roll(data[..., -1], 1, 0))[m]
    mad = 1.4826 * np.median(np.abs(diff - np.median(diff))) / np.sqrt(2)
    return {"air_mean": float(air.mean()) / ref, "air_zero_fraction": float((air == 0).mean()),
            "muscle_sigma_last": float(mad) / ref}


def compare(real, seeds=(0, 1, 2, 3, 4), snr: float = 150.0, *, septum_window: bool = True) -> dict:
    """Contrast ratios of the real scan and of one phantom per seed.

    Args:
        real: the real :class:`alsseg.io.MeseSeries`.
        seeds: phantom seeds (one healthy subject each).
        snr: phantom SNR (mean muscle echo-1 signal / σ).
        septum_window: measure the septum of the real scan in :data:`REAL_SEPTUM_WINDOW` (only
            meaningful for the shipped scan).

    Returns:
        dict with ``te_ms (E,)``, ``real`` and ``synth`` (``{tissue: (E,)}`` ratios;
        ``synth`` per seed: ``{seed: {tissue: (E,)}}``), ``diff`` (``{tissue: (S, E)}`` per cent
        differences synthetic − real, seeds in the given order), ``median_diff`` (``{tissue:
        (E,)}`` per cent difference of the median synthetic ratio), ``muscle_real`` /
        ``muscle_synth`` (``(E,)`` / ``(S, E)`` muscle trains over their echo 1), ``masks_real``,
        ``noise_real``, ``noise_synth`` (list), ``data_real`` and the first seed's ``data_synth``,
        ``grid``, ``labels``, ``septum_real`` (``(N,)`` dips of the real scan, or None) and
        ``septum_synth`` (per seed, ``(N_s,)`` dips at echo 1; :func:`septum_dip`).
    """
    rimg = real.image.to_ras()
    rdata = rimg.data.astype(np.float32)
    rmask = classify(rdata, rimg.spacing_mm)
    rr = ratios(rdata, rmask)
    out = {"te_ms": np.asarray(real.echo_times_ms, float), "real": rr, "synth": {}, "masks_real": rmask,
           "data_real": rdata, "noise_real": noise_floor(rdata, rmask), "noise_synth": [],
           "muscle_synth": [], "sigma_synth": [], "septum_synth": [],
           "septum_real": real_septum_dips(rdata[..., 0]) if septum_window else None}
    mr = rdata[rmask["muscle"]].mean(0)
    out["muscle_real"] = mr / mr[0]
    for i, seed in enumerate(seeds):
        sdata, grid = render_phantom(real, seed, snr)
        smask = classify(sdata, grid.spacing_mm)
        out["synth"][seed] = ratios(sdata, smask)
        ms = sdata[smask["muscle"]].mean(0)
        out["muscle_synth"].append(ms / ms[0])
        out["noise_synth"].append(noise_floor(sdata, smask))
        out["sigma_synth"].append(render_phantom.last_sigma / float(ms[0]))
        out["septum_synth"].append(synth_septum_dips(sdata[..., 0], render_phantom.last_labels))
        if i == 0:
            out.update(data_synth=sdata, grid=grid, labels=render_phantom.last_labels, masks_synth=smask)
    out["muscle_synth"] = np.array(out["muscle_synth"])
    tissues = [k for k in rr if all(k in out["synth"][s] for s in seeds)]
    out["diff"] = {k: np.array([100 * (out["synth"][s][k] / rr[k] - 1) for s in seeds]) for k in tissues}
    out["median_synth"] = {k: np.median([out["synth"][s][k] for s in seeds], 0) for k in tissues}
    out["median_diff"] = {k: 100 * (out["median_synth"][k] / rr[k] - 1) for k in tissues}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", default=str(DEFAULT_REAL))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                    help="phantom seeds (one healthy subject each); figures show the first")
    ap.add_argument("--snr", type=float, default=150.0)
    ap.add_argument("--out", default=str(REPO / "docs" / "figures"))
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from alsseg.io import load_mese

    real = load_mese(args.real)
    res = compare(real, args.seeds, args.snr, septum_window=Path(args.real).resolve() == DEFAULT_REAL.resolve())
    te, rr, md, diff = res["te_ms"], res["real"], res["median_diff"], res["diff"]
    rdata, sdata, grid = res["data_real"], res["data_synth"], res["grid"]
    rmask, smask = res["masks_real"], res["masks_synth"]
    print(f"# synthetic vs real contrast ratios (tissue / muscle), machine: {platform.node()} "
          f"({platform.processor() or platform.machine()}); seeds {' '.join(map(str, args.seeds))}, SNR {args.snr:g}")
    print("# voxels real: " + ", ".join(f"{k} {int(v.sum())}" for k, v in rmask.items())
          + f" | synthetic (seed {args.seeds[0]}): " + ", ".join(f"{k} {int(v.sum())}" for k, v in smask.items()))
    print("# synth = median over seeds; diff % = (median synth − real) / real; worst % = the seed furthest from real")
    print(f"{'TE ms':>6} " + " ".join(f"{k + ' real':>12} {k + ' synth':>12} {'diff %':>7} {'worst %':>8}" for k in md))
    for e in range(len(te)):
        cells = []
        for k in md:
            w = diff[k][np.argmax(np.abs(diff[k][:, e])), e]
            cells.append(f"{rr[k][e]:12.3f} {res['median_synth'][k][e]:12.3f} {md[k][e]:7.1f} {w:8.1f}")
        print(f"{te[e]:6.0f} " + " ".join(cells))
    e18 = [0, LATE_ECHO - 1]
    med18 = max(abs(md[k][e18]).max() for k in md)
    med_all = max(abs(md[k]).max() for k in md)
    seed18 = max(abs(diff[k][:, e18]).max() for k in md)
    seed_all = max(abs(diff[k]).max() for k in md)
    print(f"# largest |difference| of the median, echo 1 and echo {LATE_ECHO}: {med18:.1f} %; over all echoes: {med_all:.1f} %")
    print(f"# largest |difference| of any seed,   echo 1 and echo {LATE_ECHO}: {seed18:.1f} %; over all echoes: {seed_all:.1f} %")
    for s, row in zip(args.seeds, np.max([np.abs(diff[k]).max(1) for k in md], 0)):
        print(f"#   seed {s}: worst |difference| over all echoes and tissues {row:.1f} %")
    ms = np.median(res["muscle_synth"], 0)
    print("# muscle train / echo 1, late echoes (TE: real | synthetic median)")
    print("#   " + "  ".join(f"{te[e]:.0f}: {res['muscle_real'][e]:.4f} | {ms[e]:.4f}" for e in range(9, len(te))))
    alt_s = [alternation(c) for c in res["muscle_synth"]]
    print(f"# muscle odd/even alternation at echoes >= 10 (1 = smooth): real {alternation(res['muscle_real']):.3f}, "
          f"synthetic {np.median(alt_s):.3f} (seeds {min(alt_s):.3f}–{max(alt_s):.3f})")
    nr, ns = res["noise_real"], res["noise_synth"]
    print(f"# noise / muscle echo 1: real background mean {nr['air_mean']:.4f} ({100 * nr['air_zero_fraction']:.0f} % zeros), "
          f"real muscle σ at the last echo ≤ {nr['muscle_sigma_last']:.4f}; synthetic σ {np.median(res['sigma_synth']):.4f}, "
          f"background mean {np.median([n['air_mean'] for n in ns]):.4f}, muscle σ at the last echo "
          f"{np.median([n['muscle_sigma_last'] for n in ns]):.4f}")

    ss = np.concatenate(res["septum_synth"])
    line = (f"# gastrocnemius–soleus septum at echo 1 (profile minimum / adjacent muscle, 1 = invisible): "
            f"synthetic median {np.median(ss):.2f} (IQR {np.percentile(ss, 25):.2f}–{np.percentile(ss, 75):.2f}, "
            f"{ss.size} profiles; per seed " + ", ".join(f"{np.median(d):.2f}" for d in res["septum_synth"]) + ")")
    if res["septum_real"] is not None:
        sr = res["septum_real"]
        line += (f"; real median {np.median(sr):.2f} (IQR {np.percentile(sr, 25):.2f}–{np.percentile(sr, 75):.2f}, "
                 f"{sr.size} profiles)")
    print(line)

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
            ax[2 * row + 1, col].set_title(f"synthetic (seed {args.seeds[0]}), slice {ks}, {name}")
    for a in ax.flat:
        a.axis("off")
    fig.tight_layout()
    fig.savefig(out / "realism.png", dpi=80)
    fig2, ax2 = plt.subplots(1, len(rr) + 1, figsize=(5 * (len(rr) + 1), 4))
    for a, k in zip(np.atleast_1d(ax2), rr):
        a.plot(te, rr[k], "o-", label="real")
        if k in md:
            allk = np.array([res["synth"][s][k] for s in args.seeds])
            a.plot(te, res["median_synth"][k], "s--", label=f"synthetic, median of {len(args.seeds)}")
            a.fill_between(te, allk.min(0), allk.max(0), color="C1", alpha=0.2, label="synthetic, range")
            a.plot(te, rr[k] * 0.8, ":", color="C0", lw=0.8)
            a.plot(te, rr[k] * 1.2, ":", color="C0", lw=0.8, label="real ±20 %")
        a.set_xlabel("TE (ms)")
        a.set_ylabel(f"{k} / muscle")
        a.legend(fontsize=8)
    a = np.atleast_1d(ax2)[-1]
    a.semilogy(te, res["muscle_real"], "o-", label="real")
    a.semilogy(te, np.median(res["muscle_synth"], 0), "s--", label="synthetic, median")
    a.set_xlabel("TE (ms)")
    a.set_ylabel("muscle signal / echo 1")
    a.legend(fontsize=8)
    fig2.tight_layout()
    fig2.savefig(out / "realism_ratios.png", dpi=80)
    # the phantom's ground-truth labels over its echo-1 image, at four levels of the calf
    from matplotlib.colors import ListedColormap

    from alsseg.labels import load_anatomy

    lab = res["labels"]
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
