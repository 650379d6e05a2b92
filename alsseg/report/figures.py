"""Report figures as PNG bytes (matplotlib, Agg backend; no display needed).

Every function takes tidy tables (or 2-D arrays) and returns the PNG file content, so the HTML
report can embed it as base64 and the pipeline can write it as a QC file. Axis labels carry
units (:data:`LABELS`); groups use the Okabe–Ito colour-blind-safe palette
(:data:`GROUP_COLOURS`); counts get integer ticks; numbers are formatted by
:mod:`alsseg.report.fmt`.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from alsseg.report.fmt import fmt_p, fmt_r

#: Okabe & Ito (2008) colour-blind-safe colours: patients vermillion, controls blue, everyone grey.
GROUP_COLOURS = {"ALS": "#D55E00", "control": "#0072B2", "all": "#555555"}
GROUP_MARKERS = {"ALS": "o", "control": "s", "all": "D"}
LABELS = {"t2_water_ms": "water T2 (ms)", "t1_ms": "T1 (ms)", "volume_ml": "volume (mL)",
          "fat_fraction": "fat fraction (0–1)", "mvic_n": "dorsiflexion MVIC (N)", "cmap_mv": "TA CMAP amplitude (mV)",
          "delta_t2_water_ms": "ΔT2 (ms)", "delta_cmap_mv": "ΔCMAP (mV)", "delta_mvic_n": "ΔMVIC (N)",
          "delta_volume_ml": "Δvolume (mL)", "delta_fat_fraction": "Δfat fraction", "delta_t1_ms": "ΔT1 (ms)",
          "b1": "B1 (relative)", "t2_mono_ms": "mono-exponential T2 (ms)"}
SHORT = {"t2_water_ms": "T2", "t1_ms": "T1", "volume_ml": "volume", "fat_fraction": "FF", "mvic_n": "MVIC",
         "cmap_mv": "CMAP"}


def label(col: str) -> str:
    """Axis label with unit for a column name (the name itself when unknown)."""
    return LABELS.get(col, col)


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def to_png(fig, dpi: int = 90, tight: bool = True) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it (``tight``: crop to the drawn
    content, which renders the figure twice)."""
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return buf.getvalue()


def _colour(g) -> str:
    return GROUP_COLOURS.get(str(g), "#009E73")


def boxplot_by_group(subject_table: pd.DataFrame, measure: str, muscles: list[str],
                     groups=("control", "ALS", "all"), own_axis=("all",)) -> bytes:
    """Box plots of a subject-level measure per muscle: one box per group, points overlaid.

    Parameters
    ----------
    subject_table : columns ``participant_id``, ``group``, ``muscle``, ``measure`` (one row per
        subject and muscle).
    groups : boxes drawn per muscle; ``"all"`` pools every subject (the only box when the
        table has no groups).
    own_axis : muscles (e.g. ``all`` = the 7 muscles together, whose volume is ~7× a muscle's)
        drawn on a second panel with their own y axis.
    """
    plt = _plt()
    have = set(subject_table["group"].dropna().astype(str)) if "group" in subject_table else set()
    groups = [g for g in groups if g == "all" or g in have] or ["all"]
    if not have:
        groups = ["all"]
    main = [m for m in muscles if m not in own_axis]
    side = [m for m in muscles if m in own_axis]
    widths = [max(len(main), 1)] + ([len(side) + 0.6] if side else [])
    fig, axes = plt.subplots(1, len(widths), figsize=(0.75 * sum(widths) * (0.55 + 0.25 * len(groups)) + 1.6, 3.3),
                             gridspec_kw={"width_ratios": widths}, squeeze=False)
    rng = np.random.default_rng(0)
    width = 0.8 / len(groups)
    for ax, ms in zip(axes[0], (main, side)):
        for gi, g in enumerate(groups):
            data, pos = [], []
            for mi, m in enumerate(ms):
                sel = subject_table["muscle"] == m
                if g != "all":
                    sel &= subject_table["group"].astype(str) == g
                v = subject_table.loc[sel, measure].to_numpy(float)
                data.append(v[np.isfinite(v)])
                pos.append(mi + (gi - (len(groups) - 1) / 2) * width)
            col = _colour(g)
            bp = ax.boxplot(data, positions=pos, widths=width * 0.85, patch_artist=True, showfliers=False)
            for b in bp["boxes"]:
                b.set(facecolor=col, alpha=0.25, edgecolor=col)
            for part in ("medians", "whiskers", "caps"):
                for line in bp[part]:
                    line.set(color=col)
            for p, d in zip(pos, data):
                ax.plot(p + rng.uniform(-0.05, 0.05, len(d)), d, GROUP_MARKERS.get(g, "o"), ms=3, color=col,
                        alpha=0.8, mec="none")
            if ax is axes[0][0]:
                n = int(subject_table.loc[subject_table["group"].astype(str) == g, "participant_id"].nunique()) \
                    if g != "all" else int(subject_table["participant_id"].nunique())
                ax.plot([], [], "s", color=col, alpha=0.6, label=f"{'all subjects' if g == 'all' else g} (n = {n})")
        ax.set_xticks(range(len(ms)))
        ax.set_xticklabels(ms)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel(label(measure))
    if side:
        axes[0][1].set_title("7 muscles together\n(own scale)", fontsize=8)
    axes[0][0].set_title(f"{label(measure)} per muscle (baseline, mean of legs per subject)", fontsize=10, loc="left")
    axes[0][0].legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(0, -0.12), ncol=len(groups))
    return to_png(fig)


def scatter_fit(table: pd.DataFrame, x: str, y: str, title: str, r_text: str | None = None,
                fit_group: str | None = "ALS", colour_by: str = "group") -> bytes:
    """Scatter plot with a least-squares line through ``fit_group`` only (the population the
    correlation is for); other groups are drawn apart (open markers, not in the fit).

    Parameters
    ----------
    table : columns ``x``, ``y`` and optionally ``colour_by``; NaN rows skipped.
    r_text : text such as ``"r = −0.85 [−0.94, −0.64], p < 0.001, n = 11"`` (legend of the line).
    fit_group : group whose points get the line (``None``: every point).
    """
    plt = _plt()
    d = table[[c for c in (x, y, colour_by) if c in table.columns]].copy()
    d = d[np.isfinite(d[x].astype(float)) & np.isfinite(d[y].astype(float))]
    fig, ax = plt.subplots(figsize=(4.4, 3.6))
    grouped = colour_by in d.columns and d[colour_by].notna().any()
    if grouped:
        for g, part in d.groupby(colour_by):
            inside = fit_group is None or str(g) == fit_group
            ax.plot(part[x], part[y], GROUP_MARKERS.get(str(g), "o"), ms=5.5, color=_colour(g),
                    mfc=_colour(g) if inside else "white", label=f"{g} (n = {len(part)})" + ("" if inside else ", not in r"))
    else:
        ax.plot(d[x], d[y], "o", ms=5, color=GROUP_COLOURS["all"], label=f"all subjects (n = {len(d)})")
    fit = d if (fit_group is None or not grouped) else d[d[colour_by].astype(str) == fit_group]
    if len(fit) >= 3 and fit[x].astype(float).std() > 0:
        k, c = np.polyfit(fit[x].astype(float), fit[y].astype(float), 1)
        xs = np.linspace(fit[x].min(), fit[x].max(), 20)
        if r_text is None:
            r = np.corrcoef(fit[x].astype(float), fit[y].astype(float))[0, 1]
            r_text = f"r = {fmt_r(r)}, n = {len(fit)}"
        ax.plot(xs, k * xs + c, "-", color="black", lw=1.2, label=r_text)
    ax.set_xlabel(label(x))
    ax.set_ylabel(label(y))
    ax.set_title(title, fontsize=9, loc="left")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(0, -0.16), ncol=1)
    ax.grid(alpha=0.3)
    return to_png(fig)


def change_lines(table: pd.DataFrame, measure: str, title: str, visit_order: list[str],
                 months: dict | None = None) -> bytes:
    """Per-subject lines of a measure from the first to the last visit.

    Parameters
    ----------
    table : columns ``participant_id``, ``session_id``, ``group``, ``measure`` (subject means).
    visit_order : every session id in visit order.
    months : ``{(participant_id, session_id): months since that subject's first visit}``; the x
        axis is then time in months, else the visit number.
    """
    rank = {s: i for i, s in enumerate(visit_order)}

    def session_order(ids):
        return sorted(set(ids), key=lambda s: rank.get(s, len(rank)))

    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.4, 3.6))
    seen = set()
    for (pid, g), part in table.groupby(["participant_id", "group"], dropna=False):
        order = session_order(part["session_id"])
        if len(order) < 2:
            continue
        part = part.set_index("session_id").loc[order]
        xs = ([months.get((pid, s), np.nan) for s in order] if months else list(range(1, len(order) + 1)))
        key = "all" if pd.isna(g) else str(g)
        ax.plot(xs, part[measure].to_numpy(float), "-o", ms=3, color=_colour(key), alpha=0.75,
                label=None if key in seen else key)
        seen.add(key)
    ax.set_xlabel("months since the first visit" if months else "visit")
    if not months:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(label(measure))
    ax.set_title(title, fontsize=9, loc="left")
    ax.legend(fontsize=7, frameon=False)
    ax.grid(alpha=0.3)
    return to_png(fig)


def change_forest(change: pd.DataFrame, measure: str, muscles: list[str]) -> bytes:
    """Mean change between visits per muscle with its 95 % CI and the paired-test p.

    Parameters
    ----------
    change : :func:`alsseg.stats.study.change_between_visits` table.
    """
    plt = _plt()
    d = change[(change["measure"] == measure) & change["muscle"].isin(muscles)].set_index("muscle")
    d = d.loc[[m for m in muscles if m in d.index]]
    fig, ax = plt.subplots(figsize=(5.2, 0.34 * len(d) + 1.2))
    ys = np.arange(len(d))[::-1]
    col = _colour(str(d["population"].iloc[0]) if len(d) else "all")
    ax.errorbar(d["mean_change"], ys, xerr=[d["mean_change"] - d["change_ci_low"], d["change_ci_high"] - d["mean_change"]],
                fmt="o", color=col, ecolor=col, capsize=3)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(ys)
    ax.set_yticklabels(d.index)
    for y, (_, r) in zip(ys, d.iterrows()):
        ax.annotate(f"p {fmt_p(r['paired_p'], prefix=False)}", (1.01, y), xycoords=("axes fraction", "data"),
                    va="center", fontsize=7)
    ax.set_xlabel(f"change {label(measure)}, last − first visit (mean, 95 % CI)")
    n = int(d["n"].max()) if len(d) else 0
    ax.set_title(f"change between visits (n = {n}, paired t-test)", fontsize=9, loc="left")
    ax.grid(axis="x", alpha=0.3)
    return to_png(fig)


def abnormal_bars(counts: pd.DataFrame, n_muscles: int | None = None) -> bytes:
    """Horizontal bars: number of abnormal muscles per patient session (integer ticks)."""
    from matplotlib.ticker import MaxNLocator

    plt = _plt()
    d = counts.iloc[::-1]
    fig, ax = plt.subplots(figsize=(5.0, 0.2 * len(d) + 1.0))
    ax.barh(range(len(d)), d["n_abnormal"], color=GROUP_COLOURS["ALS"], alpha=0.8, height=0.7)
    ax.set_yticks(range(len(d)))
    ax.set_yticklabels([f"{p} {s}" for p, s in zip(d["participant_id"], d["session_id"])], fontsize=7)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    top = n_muscles or int(d["n_muscles"].max()) if "n_muscles" in d and len(d) else None
    if top:
        ax.set_xlim(0, top)
    ax.set_xlabel("abnormal muscles (water T2 z > 2 vs controls; of 14 per session)" if top == 14
                  else "abnormal muscles (water T2 z > 2 vs controls)")
    ax.grid(axis="x", alpha=0.3)
    return to_png(fig)


def _relative_luminance(rgb) -> float:
    """WCAG 2 relative luminance of an sRGB colour (components 0-1)."""
    c = np.asarray(rgb[:3], float)
    c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2])


def contrast_ratio(a, b) -> float:
    """WCAG 2 contrast ratio of two colours (1 to 21; 4.5 is the minimum for body text)."""
    la, lb = sorted((_relative_luminance(a), _relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_colour_on(background) -> str:
    """Black or white, whichever contrasts more with ``background`` (RGB(A) 0-1)."""
    return "black" if contrast_ratio(background, (0, 0, 0)) >= contrast_ratio(background, (1, 1, 1)) else "white"


def correlation_heatmap(corr: pd.DataFrame, population: str = "ALS") -> bytes:
    """Pearson r of each measure × motor measure (columns) per muscle (rows), one population;
    cell text white on dark cells."""
    plt = _plt()
    d = corr[corr["population"] == population]
    piv = d.pivot_table(index="muscle", columns=["measure", "motor"], values="pearson_r", sort=False)
    fig, ax = plt.subplots(figsize=(0.95 * piv.shape[1] + 2.2, 0.34 * piv.shape[0] + 1.4))
    vals = piv.to_numpy(float)
    im = ax.imshow(vals, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_yticks(range(piv.shape[0]))
    ax.set_yticklabels(piv.index)
    ax.set_xticks(range(piv.shape[1]))
    ax.set_xticklabels([f"{SHORT.get(a, a)}\n× {SHORT.get(b, b)}" for a, b in piv.columns], fontsize=8)
    for (i, j), v in np.ndenumerate(vals):
        if np.isfinite(v):
            ax.text(j, i, fmt_r(v), ha="center", va="center", fontsize=8,
                    color=text_colour_on(im.cmap(im.norm(v))))
    fig.colorbar(im, ax=ax, shrink=0.8, label="Pearson r")
    who = "patients only" if population != "all" else "patients and controls"
    ax.set_title(f"correlation with motor measures ({who}, baseline)", fontsize=9, loc="left")
    return to_png(fig)


def _overlay_rgba(labels2d: np.ndarray, colours: dict[int, tuple[int, int, int]], alpha=0.45) -> np.ndarray:
    rgba = np.zeros(labels2d.shape + (4,))
    for lid, col in colours.items():
        m = labels2d == lid
        if m.any():
            rgba[m, :3] = np.asarray(col) / 255.0
            rgba[m, 3] = alpha
    return rgba


#: display windows of the maps in the session thumbnails: (low, high, colour map, unit label).
MAP_WINDOWS = {"t2_water_ms": (20, 60, "magma"), "fat_fraction": (0, 1, "gray"), "b1": (0.5, 1.3, "viridis"),
               "t1_ms": (800, 2000, "inferno"), "t2_mono_ms": (20, 80, "magma")}


def session_strip(anat2d: np.ndarray, labels2d: np.ndarray | None, maps2d: dict[str, np.ndarray],
                  title: str, colours: dict[int, tuple[int, int, int]] | None = None) -> bytes:
    """One row for a session: anatomy with the segmentation overlay, then the maps with colour bars.

    Parameters
    ----------
    anat2d : (X, Y) image of the slice (e.g. echo 1) in RAS voxel order; drawn radiological
        (anterior up, the subject's right on the viewer's left), as written on the figure.
    labels2d : (X, Y) label map of the slice, or None.
    maps2d : ``{"t2_water_ms": (X, Y), "fat_fraction": ..., "b1": ...}``; shown with fixed
        windows (:data:`MAP_WINDOWS`).
    """
    plt = _plt()
    if colours is None:
        from alsseg.labels import load_anatomy
        colours = {lab.id: lab.muscle.colour for lab in load_anatomy().labels}
    n = 1 + len(maps2d)
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
    w = 3.2
    h = float(np.clip(w * sy / max(sx, 1), 1.2, 4.0))
    fig, axes = plt.subplots(1, n, figsize=(w * n, h + 1.0))
    axes = np.atleast_1d(axes)

    def show(ax, img, **kw):
        im = ax.imshow(np.swapaxes(img, 0, 1)[::-1, ::-1], origin="upper", interpolation="nearest", **kw)
        ax.set_xticks([])
        ax.set_yticks([])
        return im

    a = np.asarray(anat2d, float)
    hi = np.percentile(a[np.isfinite(a)], 99.5) if np.isfinite(a).any() else 1
    show(axes[0], a, cmap="gray", vmin=0, vmax=hi)
    if labels2d is not None:
        show(axes[0], _overlay_rgba(np.asarray(labels2d), colours))
    axes[0].set_title("image + labels", fontsize=8)
    for t, (x, y) in (("A", (0.5, 0.98)), ("R", (0.02, 0.5)), ("L", (0.98, 0.5))):
        axes[0].text(x, y, t, transform=axes[0].transAxes, ha="center", va="top" if t == "A" else "center",
                     color="yellow", fontsize=8, weight="bold")
    for ax, (name, img) in zip(axes[1:], maps2d.items()):
        lo, hi_, cmap = MAP_WINDOWS.get(name, (np.nanpercentile(img, 1), np.nanpercentile(img, 99), "gray"))
        im = show(ax, np.ma.masked_invalid(img), cmap=cmap, vmin=lo, vmax=hi_)
        ax.set_title(label(name), fontsize=8)
        cb = fig.colorbar(im, ax=ax, orientation="horizontal", fraction=0.06, pad=0.03)
        cb.ax.tick_params(labelsize=7)
    fig.suptitle(f"{title} — radiological: anterior up, subject's right on the left", fontsize=9)
    return to_png(fig, dpi=75)
