"""Multi-slice overlay of a label map on an image: every slice, muscle names, colour bar,
orientation written on the figure (the ``alsseg qc`` verb and the report's per-session views).

Arrays are in RAS voxel order (``Image.to_ras()``): axis 0 runs to the subject's right, axis 1
to anterior, axis 2 to superior. Every panel is drawn anterior up; ``radiological`` puts the
subject's right on the viewer's left (as a scanner console), ``neurological`` on the right.
"""

from __future__ import annotations

import numpy as np

from alsseg.report.figures import _plt, to_png

CONVENTIONS = ("radiological", "neurological")
#: width of the legend column, inches.
SIDE_IN = 3.0
#: dark box behind the muscle names (white text stays readable on any muscle colour).
LABEL_BOX = {"boxstyle": "round,pad=0.15", "facecolor": "black", "alpha": 0.55, "linewidth": 0}


def display(slice2d: np.ndarray, convention: str = "radiological") -> np.ndarray:
    """(X, Y) RAS slice → (rows, cols) screen array, anterior up, right on the left (radiological)
    or on the right (neurological)."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    a = np.swapaxes(np.asarray(slice2d), 0, 1)[::-1]
    return a[:, ::-1] if convention == "radiological" else a


def orientation_text(convention: str) -> str:
    """The sentence written on every overlay figure."""
    side = "left" if convention == "radiological" else "right"
    return f"{convention} view: anterior up, the subject's right on the image {side}"


def _label_info(label_ids, confidence: dict | None):
    """``{id: (name, rgb 0-1, legend text)}`` from the shipped anatomy (unknown ids in grey)."""
    import re

    from alsseg.labels import load_anatomy

    anat = load_anatomy()
    known = {lab.id: lab for lab in anat.labels}
    out = {}
    for lid in label_ids:
        lab = known.get(int(lid))
        name = lab.name if lab else f"label {int(lid)}"
        rgb = tuple(c / 255 for c in lab.muscle.colour) if lab else (0.6, 0.6, 0.6)
        text = f"{name}  {re.sub(r' [(].*[)]', '', lab.muscle.name)}" if lab else name
        conf = (confidence or {}).get(name)
        if conf is not None and np.isfinite(conf):
            text += f" · confidence {conf:.2f}"
        out[int(lid)] = (name, rgb, text)
    return out


def _crop_box(labels: np.ndarray, image: np.ndarray, margin: float = 0.08):
    """In-plane box (x slice, y slice) around the labels (or the whole image when empty)."""
    ref = labels > 0
    if not ref.any():
        return slice(None), slice(None)
    xs, ys = np.flatnonzero(ref.any((1, 2))), np.flatnonzero(ref.any((0, 2)))
    mx = max(4, int(margin * (xs[-1] - xs[0] + 1)))
    my = max(4, int(margin * (ys[-1] - ys[0] + 1)))
    return (slice(max(0, xs[0] - mx), min(image.shape[0], xs[-1] + mx + 1)),
            slice(max(0, ys[0] - my), min(image.shape[1], ys[-1] + my + 1)))


def overlay_pages(image: np.ndarray, labels: np.ndarray, spacing_mm=(1.0, 1.0, 1.0), title: str = "",
                  convention: str = "radiological", confidence: dict | None = None, columns: int = 4,
                  slices_per_page: int = 16, crop: bool = True, dpi: int = 90) -> list[bytes]:
    """PNG pages showing every slice of ``image`` with ``labels`` drawn over it.

    Parameters
    ----------
    image : (X, Y, Z) array in RAS voxel order (e.g. the first echo).
    labels : (X, Y, Z) integer label map on the same grid (0 = background).
    spacing_mm : voxel size (x, y, z), mm: panels keep the true in-plane aspect and are titled
        with their position along z.
    convention : ``radiological`` (default) or ``neurological``.
    confidence : ``{"TA_R": 0.93, …}`` per-label segmentation confidence, shown in the legend
        when given.
    crop : zoom on the labelled region (with a margin).

    Returns
    -------
    list of PNG bytes, ``ceil(Z / slices_per_page)`` pages; each has the orientation sentence,
    A/P/R/L letters on every panel, the muscle names on the muscles, a legend and an intensity
    colour bar.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.patches import Patch

    plt = _plt()
    image = np.asarray(image, float)
    labels = np.asarray(labels)
    if image.shape != labels.shape or image.ndim != 3:
        raise ValueError(f"image {image.shape} and labels {labels.shape} must be the same 3-D grid")
    box = _crop_box(labels, image) if crop else (slice(None), slice(None))
    img, lab = image[box], labels[box]
    finite = img[np.isfinite(img)]
    hi = float(np.percentile(finite, 99.5)) if finite.size else 1.0
    lo = float(min(0.0, np.percentile(finite, 0.5))) if finite.size else 0.0
    ids = [int(v) for v in np.unique(lab) if v > 0]
    info = _label_info(ids, confidence)
    lut = np.zeros((max(ids + [0]) + 1, 4))
    for lid, (_, rgb, _) in info.items():
        lut[lid] = (*rgb, 0.42)
    left, right = ("R", "L") if convention == "radiological" else ("L", "R")
    aspect = spacing_mm[1] / spacing_mm[0]
    nz = img.shape[2]
    grey = np.clip((np.nan_to_num(img, nan=lo) - lo) / max(hi - lo, 1e-12), 0, 1)
    ph, pw_px = display(img[:, :, 0], convention).shape  # panel rows, columns (pixels)
    gap, head = max(3, pw_px // 40), max(8, round(0.16 * ph))  # between panels, title strip
    pages: list[bytes] = []
    for start in range(0, nz, slices_per_page):
        ks = list(range(start, min(nz, start + slices_per_page)))
        ncol = min(columns, len(ks))
        nrow = int(np.ceil(len(ks) / ncol))
        # one RGB montage, one image drawn: every slice in a single imshow (fast even for 24)
        mont = np.ones((nrow * (ph + head), ncol * (pw_px + gap) - gap, 3))
        origins = []
        for i, k in enumerate(ks):
            r0, c0 = (i // ncol) * (ph + head) + head, (i % ncol) * (pw_px + gap)
            g = display(grey[:, :, k], convention)
            rgb = np.repeat(g[..., None], 3, axis=2)
            col = lut[display(np.clip(lab[:, :, k].astype(int), 0, len(lut) - 1), convention)]
            rgb = rgb * (1 - col[..., 3:]) + col[..., :3] * col[..., 3:]
            mont[r0:r0 + ph, c0:c0 + pw_px] = rgb
            origins.append((k, r0, c0))
        width_in = max(3.4, 9.0 / ncol) * ncol
        panels_h = width_in * aspect * mont.shape[0] / mont.shape[1]
        legend_h = 0.2 * (len(info) + 1) + 1.2
        fig_h = max(panels_h, legend_h) + 0.6
        fig = plt.figure(figsize=(width_in + SIDE_IN, fig_h))
        top = 1 - 0.5 / fig_h
        right_edge = width_in / (width_in + SIDE_IN)
        ax = fig.add_axes([0.005, max(0.01, top - panels_h / fig_h), right_edge - 0.005, min(panels_h / fig_h, top - 0.01)])
        ax.imshow(mont, aspect=aspect, interpolation="nearest")
        ax.axis("off")
        for k, r0, c0 in origins:
            shown = display(lab[:, :, k].astype(int), convention)
            for lid in ids:
                rr, cc = np.nonzero(shown == lid)
                if rr.size >= 6:
                    ax.text(c0 + cc.mean(), r0 + rr.mean(), info[lid][0], ha="center", va="center", fontsize=7,
                            color="white", bbox=LABEL_BOX)
            above = " (lowest)" if k == 0 else f" · {k * spacing_mm[2]:.0f} mm above slice 1"
            ax.text(c0 + pw_px / 2, r0 - 1, f"slice {k + 1}/{nz}{above}", ha="center", va="bottom", fontsize=8)
            for x, y, t, ha, va in ((c0 + pw_px / 2, r0 + 1, "A", "center", "top"),
                                    (c0 + pw_px / 2, r0 + ph - 2, "P", "center", "bottom"),
                                    (c0 + 2, r0 + ph / 2, left, "left", "center"),
                                    (c0 + pw_px - 2, r0 + ph / 2, right, "right", "center")):
                ax.text(x, y, t, ha=ha, va=va, fontsize=9, color="yellow", weight="bold")
        x0 = right_edge + 0.01
        handles = [Patch(facecolor=rgb, edgecolor="black", label=text) for _, rgb, text in info.values()]
        if handles:
            fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(x0, top), fontsize=7, frameon=False,
                       title="labels (colour = muscle)", title_fontsize=8, alignment="left")
        else:
            fig.text(x0, top, "no label in this image", va="top", fontsize=8)
        cax = fig.add_axes([x0 + 0.01, 0.6 / fig_h, 0.25 * SIDE_IN / (width_in + SIDE_IN), 0.12 / fig_h])
        fig.colorbar(ScalarMappable(Normalize(lo, hi), "gray"), cax=cax,
                     orientation="horizontal").set_label("image intensity (a.u.)", fontsize=7)
        cax.tick_params(labelsize=6)
        page = f" · page {len(pages) + 1}/{int(np.ceil(nz / slices_per_page))}" if nz > slices_per_page else ""
        fig.suptitle(f"{title}{' · ' if title else ''}{orientation_text(convention)}{page}", fontsize=10,
                     x=0.01, ha="left", y=1 - 0.12 / fig_h, va="top")
        pages.append(to_png(fig, dpi=dpi, tight=False))
    return pages


def confidence_from_table(table) -> dict:
    """``{"TA_R": 0.93, …}`` from a per-muscle table with a ``seg_confidence`` column (empty when
    the column is absent: the confidence is optional)."""
    if table is None or "seg_confidence" not in table or "muscle" not in table or "side" not in table:
        return {}
    out = {}
    for m, s, c in zip(table["muscle"], table["side"], table["seg_confidence"]):
        try:
            c = float(c)
        except (TypeError, ValueError):
            continue
        if np.isfinite(c):
            out[f"{m}_{s}"] = c
    return out


def image_overlay_pages(image, labels, title: str = "", convention: str = "radiological",
                        confidence: dict | None = None, volume: int = 0, **kw) -> list[bytes]:
    """:func:`overlay_pages` of two :class:`alsseg.io.nifti.Image` on one grid (any voxel order:
    both are brought to RAS first). ``volume``: which volume of a 4-D image to show."""
    img = image.to_ras()
    lab = labels.to_ras()
    data = img.data if img.data.ndim == 3 else img.data[..., volume]
    return overlay_pages(data, np.asarray(lab.data), img.spacing_mm, title=title, convention=convention,
                         confidence=confidence, **kw)
