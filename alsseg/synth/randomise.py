"""SynthSeg-style randomised images of the phantom (domain randomisation for segmentation training).

:func:`random_contrast_signal` draws a random intensity per tissue class (the intramuscular
aponeuroses and fascia apart), small per-muscle offsets, a disease-like texture, blur, gamma and
a bias field. Acquisition artefacts (EPI distortion, motion, low resolution, ghosts) are
:func:`alsseg.synth.artefacts.degrade_acquisition`, applied by :func:`alsseg.synth.render.render_case`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from alsseg.synth.anatomy import MUSCLE, TISSUE_NAMES, Subject

if TYPE_CHECKING:  # render imports this module; the type only
    from alsseg.synth.render import TissueVolume


def random_contrast_signal(subject: Subject, tv: TissueVolume, rng: np.random.Generator) -> np.ndarray:
    """SynthSeg-style image: random intensity per tissue class and per muscle, texture,
    bias field, resolution loss (blur), gamma. Noiseless; ``(X, Y, Z)`` float32 in ~[0, 1]."""
    from scipy.ndimage import gaussian_filter

    from alsseg.labels import load_anatomy

    inten = rng.uniform(0.0, 1.0, len(TISSUE_NAMES)).astype(np.float32)
    inten[0] = rng.uniform(0.0, 0.08)
    img = (tv.fractions * inten).sum(-1)
    # per-muscle offsets (muscles of one image are similar but not identical)
    jitter = rng.normal(0.0, rng.uniform(0.02, 0.12), 32).astype(np.float32)
    lab = tv.label
    for lid in load_anatomy().valid_ids() - {0}:
        m = lab == lid
        if m.any():
            img[m] += jitter[lid] * tv.fractions[..., MUSCLE][m]
    # disease-like texture: intensity follows fat fraction / T2 with a random sign
    img += rng.uniform(-0.6, 0.6) * tv.fat_fraction_muscle * tv.fractions[..., MUSCLE]
    sp = tv.grid.spacing_mm
    sigma_mm = rng.uniform(0.0, 1.5)
    if sigma_mm > 0.1:
        img = gaussian_filter(img, sigma=(sigma_mm / sp[0], sigma_mm / sp[1], 0.0))
    img = np.clip(img, 0, None)
    mx = float(img.max()) or 1.0
    img = (img / mx) ** np.float32(np.exp(rng.normal(0, 0.25)))
    img *= np.exp(rng.uniform(0.0, 0.5) * subject.bias_field(
        tv.grid.world(np.argwhere(np.ones(tv.grid.shape, bool))).astype(np.float32)).reshape(tv.grid.shape))
    return img.astype(np.float32)

