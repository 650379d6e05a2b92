"""Multi-slice overlay figures of a label map on its image (PNG bytes), for benchmarks and model cards."""

from __future__ import annotations

import io

import numpy as np

from alsseg.io.nifti import Image
from alsseg.labels import Anatomy, load_anatomy


def label_rgba(labels2d: np.ndarray, anatomy: Anatomy, alpha: float = 0.45) -> np.ndarray:
    """``(H, W, 4)`` colours of a 2-D label map (muscle colours, background transparent)."""
    lut = np.zeros((256, 4))
    for lb in anatomy.labels:
        lut[lb.id, :3] = np.array(lb.muscle.colour) / 255.0
        lut[lb.id, 3] = alpha
    return lut[np.clip(labels2d, 0, 255).astype(np.int64)]


def overlay_png(image: Image, labels: Image, slices: list[int], title: str, anatomy: Anatomy | None = None,
                ncol: int = 4, dpi: int = 70) -> bytes:
    """PNG of the chosen axial slices of the RAS view, labels over the image.

    Each panel shows slice ``z`` of ``image.to_ras()`` with anterior up and the subject's right
    on the image right (RAS x to the right); ``title`` should say so.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    anatomy = anatomy or load_anatomy()
    img, lab = image.to_ras(), labels.to_ras()
    sx, sy = img.spacing_mm[:2]
    n = max(1, len(slices))
    ncol = min(ncol, n)
    nrow = (n + ncol - 1) // ncol
    panel_w = 4.0
    panel_h = panel_w * img.shape[1] * sy / (img.shape[0] * sx)
    fig, axes = plt.subplots(nrow, ncol, figsize=(panel_w * ncol, panel_h * nrow + 0.8), squeeze=False)
    vmax = float(np.percentile(img.data, 99.5))
    extent = (0, img.shape[0] * sx, 0, img.shape[1] * sy)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k >= len(slices):
            continue
        z = slices[k]
        ax.imshow(img.data[:, :, z].T[::-1], cmap="gray", vmin=0, vmax=vmax, extent=extent)
        ax.imshow(label_rgba(lab.data[:, :, z].T[::-1], anatomy), extent=extent)
        ax.set_title(f"slice {z}", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()
