"""Report figures as PNG bytes (matplotlib, Agg backend; no display needed).

Every function takes tidy tables (or 2-D arrays) and returns the PNG file content, so the HTML
report can embed it as base64 and the pipeline can write it as a QC file.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

GROUP_COLOURS = {"ALS": "#d62728", "control": "#1f77b4"}
LABELS = {"t2_water_ms": "water T2 (ms)", "t1_ms": "T1 (ms)", "volume_ml": "volume (mL)",
          "fat_fraction": "fat fraction", "mvic_n": "MVIC dorsiflexion (N)", "cmap_mv": "TA CMAP (mV)",
          "delta_t2_water_ms": "ΔT2 (ms)", "delta_cmap_mv": "ΔCMAP (mV)", "delta_mvic_n": "ΔMVIC (N)",
          "delta_volume_ml": "Δvolume (mL)", "delta_fat_fraction": "ΔFF", "delta_t1_ms": "ΔT1 (ms)"}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def to_png(fig, dpi: int = 80) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def boxplot_by_group(subject_table: pd.DataFrame, measure: str, muscles: list[str],
                     groups=("control", "ALS")) -> bytes:
    """Box plots of a subject-level measure per muscle, one box per group, points overlaid.

    Parameters
    ----------
    subject_table : columns ``participant_id``, ``group``, ``muscle``, ``measure``.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4.5, 0.6 * len(muscles) + 1.2), 3.0))
    width = 0.35
    rng = np.random.default_rng(0)
    for gi, g in enumerate(groups):
        data, pos = [], []
        for mi, m in enumerate(muscles):
            v = subject_table.loc[(subject_table["muscle"] == m) & (subject_table["group"] == g), measure]
            v = v.to_numpy(float)
            data.append(v[np.isfinite(v)])
            pos.append(mi + (gi - 0.5) * width)
        col = GROUP_COLOURS.get(g, "grey")
        bp = ax.boxplot(data, positions=pos, widths=width * 0.85, patch_artist=True, showfliers=False)
        for b in bp["boxes"]:
            b.set(facecolor=col, alpha=0.3, edgecolor=col)
        for med in bp["medians"]:
            med.set(color=col)
        for p, d in zip(pos, data):
            ax.plot(p + rng.uniform(-0.06, 0.06, len(d)), d, "o", ms=3, color=col, alpha=0.8)
        ax.plot([], [], "s", color=col, alpha=0.5, label=f"{g}")
    ax.set_xticks(range(len(muscles)))
    ax.set_xticklabels(muscles)
    ax.set_ylabel(LABELS.get(measure, measure))
    ax.set_title(f"{LABELS.get(measure, measure)} by group (subject mean of legs, baseline)", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return to_png(fig)


def scatter_fit(table: pd.DataFrame, x: str, y: str, title: str, r_text: str | None = None,
                colour_by: str = "group") -> bytes:
    """Scatter plot with a least-squares line (over all points) and the correlation in the legend.

    Parameters
    ----------
    table : columns ``x``, ``y`` and optionally ``colour_by``; NaN rows skipped.
    r_text : text such as ``"r = −0.85 [−0.94, −0.64], p = 3e-6"``; computed here if None.
    """
    plt = _plt()
    d = table[[c for c in (x, y, colour_by) if c in table.columns]].copy()
    d = d[np.isfinite(d[x].astype(float)) & np.isfinite(d[y].astype(float))]
    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    if colour_by in d.columns:
        for g, part in d.groupby(colour_by):
            ax.plot(part[x], part[y], "o", ms=5, color=GROUP_COLOURS.get(g, "grey"), label=str(g), alpha=0.85)
    else:
        ax.plot(d[x], d[y], "o", ms=5, color="k")
    if len(d) >= 3 and d[x].astype(float).std() > 0:
        k, c = np.polyfit(d[x].astype(float), d[y].astype(float), 1)
        xs = np.linspace(d[x].min(), d[x].max(), 20)
        if r_text is None:
            r = np.corrcoef(d[x].astype(float), d[y].astype(float))[0, 1]
            r_text = f"r = {r:.2f} (n = {len(d)})"
        ax.plot(xs, k * xs + c, "-", color="k", lw=1, label=r_text)
    ax.set_xlabel(LABELS.get(x, x))
    ax.set_ylabel(LABELS.get(y, y))
    ax.set_title(title, fontsize=9)
    # legend below the axes: it never hides a point
    ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3)
    ax.grid(alpha=0.3)
    return to_png(fig)


def change_lines(table: pd.DataFrame, measure: str, sessions: list[str], title: str) -> bytes:
    """Per-subject lines of a measure across visits (subject mean of legs).

    Parameters
    ----------
    table : columns ``participant_id``, ``session_id``, ``group``, ``measure``.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    pos = {s: i for i, s in enumerate(sessions)}
    for (pid, g), part in table.groupby(["participant_id", "group"]):
        part = part[part["session_id"].isin(pos)].sort_values("session_id", key=lambda s: s.map(pos))
        ax.plot(part["session_id"].map(pos), part[measure], "-o", ms=3,
                color=GROUP_COLOURS.get(g, "grey"), alpha=0.7)
    for g, col in GROUP_COLOURS.items():
        ax.plot([], [], "-", color=col, label=g)
    ax.set_xticks(range(len(sessions)))
    ax.set_xticklabels(sessions)
    ax.set_ylabel(LABELS.get(measure, measure))
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    ax.grid(alpha=0.3)
    return to_png(fig)


def abnormal_bars(counts: pd.DataFrame) -> bytes:
    """Bar chart of the number of abnormal muscles per patient session."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4, 0.28 * len(counts) + 1), 2.8))
    lab = [f"{p}\n{s}" for p, s in zip(counts["participant_id"], counts["session_id"])]
    ax.bar(range(len(counts)), counts["n_abnormal"], color=GROUP_COLOURS["ALS"], alpha=0.7)
    ax.set_xticks(range(len(counts)))
    ax.set_xticklabels(lab, fontsize=6, rotation=90)
    ax.set_ylabel("abnormal muscles (z > 2)")
    ax.grid(axis="y", alpha=0.3)
    return to_png(fig)


def correlation_heatmap(corr: pd.DataFrame, population: str = "all") -> bytes:
    """Pearson r of each measure × motor (columns) per muscle (rows)."""
    plt = _plt()
    d = corr[corr["population"] == population]
    piv = d.pivot_table(index="muscle", columns=["measure", "motor"], values="pearson_r", sort=False)
    fig, ax = plt.subplots(figsize=(1.0 * piv.shape[1] + 2, 0.35 * piv.shape[0] + 1.2))
    im = ax.imshow(piv.to_numpy(float), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_yticks(range(piv.shape[0]))
    ax.set_yticklabels(piv.index)
    ax.set_xticks(range(piv.shape[1]))
    ax.set_xticklabels([f"{a.replace('_ms', '').replace('_ml', '')}\n×{b}" for a, b in piv.columns], fontsize=7)
    for (i, j), v in np.ndenumerate(piv.to_numpy(float)):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.8, label="Pearson r")
    ax.set_title(f"correlation with motor measures ({population})", fontsize=9)
    return to_png(fig)


def _overlay_rgba(labels2d: np.ndarray, colours: dict[int, tuple[int, int, int]], alpha=0.45) -> np.ndarray:
    rgba = np.zeros(labels2d.shape + (4,))
    for lid, col in colours.items():
        m = labels2d == lid
        if m.any():
            rgba[m, :3] = np.asarray(col) / 255.0
            rgba[m, 3] = alpha
    return rgba


def session_strip(anat2d: np.ndarray, labels2d: np.ndarray | None, maps2d: dict[str, np.ndarray],
                  title: str, colours: dict[int, tuple[int, int, int]] | None = None) -> bytes:
    """One row of thumbnails for a session: anatomy with the segmentation overlay, then maps.

    Parameters
    ----------
    anat2d : (X, Y) image of the slice (e.g. echo 1) in RAS voxel order; drawn in the
        radiological convention (anterior up, the subject's right on the viewer's left).
    labels2d : (X, Y) label map of the slice, or None.
    maps2d : ``{"t2_water_ms": (X, Y), "fat_fraction": ..., "b1": ...}``; shown with fixed
        windows (T2 20–60 ms, FF 0–1, B1 0.5–1.3, T1 800–2000 ms).
    """
    plt = _plt()
    windows = {"t2_water_ms": (20, 60, "magma"), "fat_fraction": (0, 1, "gray"), "b1": (0.5, 1.3, "viridis"),
               "t1_ms": (800, 2000, "inferno"), "t2_mono_ms": (20, 80, "magma")}
    if colours is None:
        from alsseg.labels import load_anatomy
        colours = {lab.id: lab.muscle.colour for lab in load_anatomy().labels}
    n = 1 + len(maps2d)
    # zoom on the legs: bounding box of the labels (or of the finite maps) plus a margin
    box = None
    ref = np.asarray(labels2d) > 0 if labels2d is not None else None
    if ref is None or not ref.any():
        finite = [np.isfinite(np.asarray(m, float)) for m in maps2d.values()]
        ref = np.logical_or.reduce(finite) if finite else None
    if ref is not None and ref.any():
        xs, ys = np.flatnonzero(ref.any(1)), np.flatnonzero(ref.any(0))
        mx = max(4, int(0.08 * (xs[-1] - xs[0] + 1)))
        my = max(4, int(0.08 * (ys[-1] - ys[0] + 1)))
        box = (slice(max(0, xs[0] - mx), xs[-1] + mx + 1), slice(max(0, ys[0] - my), ys[-1] + my + 1))
    if box is not None:
        anat2d = np.asarray(anat2d)[box]
        labels2d = None if labels2d is None else np.asarray(labels2d)[box]
        maps2d = {k: np.asarray(v)[box] for k, v in maps2d.items()}
    sx, sy = np.asarray(anat2d).shape[:2]
    w = 3.0
    h = float(np.clip(w * sy / max(sx, 1), 1.2, 4.0))
    fig, axes = plt.subplots(1, n, figsize=(w * n, h + 0.5))
    axes = np.atleast_1d(axes)

    def show(ax, img, **kw):
        # RAS voxel order → radiological display: anterior up, the subject's right on the left
        ax.imshow(np.swapaxes(img, 0, 1)[::-1, ::-1], origin="upper", interpolation="nearest", **kw)
        ax.set_xticks([])
        ax.set_yticks([])

    a = np.asarray(anat2d, float)
    hi = np.percentile(a[np.isfinite(a)], 99.5) if np.isfinite(a).any() else 1
    show(axes[0], a, cmap="gray", vmin=0, vmax=hi)
    if labels2d is not None:
        show(axes[0], _overlay_rgba(np.asarray(labels2d), colours))
    axes[0].set_title("image + labels", fontsize=8)
    for ax, (name, img) in zip(axes[1:], maps2d.items()):
        lo, hi_, cmap = windows.get(name, (np.nanpercentile(img, 1), np.nanpercentile(img, 99), "gray"))
        show(ax, np.ma.masked_invalid(img), cmap=cmap, vmin=lo, vmax=hi_)
        ax.set_title(LABELS.get(name, name), fontsize=8)
    fig.suptitle(title, fontsize=9)
    return to_png(fig, dpi=75)
