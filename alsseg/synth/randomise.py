"""SynthSeg-style randomised images of the phantom (domain randomisation for segmentation training).

:func:`random_contrast_signal` draws a random intensity per tissue class (the intramuscular
aponeuroses and fascia apart), small per-muscle offsets, a disease-like texture, blur, gamma and
a bias field; :func:`degrade_acquisition` adds acquisition effects: low in-plane resolution
(EPI-like) and Nyquist ghosts. Labels are unchanged by all of them.
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
    return degrade_acquisition(img, sp, rng).astype(np.float32)


#: probabilities and ranges of the acquisition degradations of the ``random`` contrast
#: (:func:`degrade_acquisition`): an in-plane resolution of 1.5–4 mm (EPI-like, partial volume
#: by block averaging) and a Nyquist ghost (EPI) of 2–12 % along the phase-encoding axis.
P_LOW_RESOLUTION, LOW_RESOLUTION_MM = 0.3, (1.5, 4.0)
P_GHOST, GHOST_AMPLITUDE = 0.2, (0.02, 0.12)


def degrade_acquisition(img: np.ndarray, spacing_mm, rng: np.random.Generator) -> np.ndarray:
    """Random acquisition effects on a noiseless ``(X, Y, Z)`` image: with probability
    :data:`P_LOW_RESOLUTION` the in-plane resolution is lowered to a random 1.5–4 mm (box
    average, then back to the grid by linear interpolation), and with probability :data:`P_GHOST` a
    Nyquist ghost (the image shifted by half the field of view along a random in-plane axis) is added.
    The grid, and so the label map, is unchanged."""
    from scipy.ndimage import uniform_filter

    if rng.random() < P_LOW_RESOLUTION:
        target = rng.uniform(*LOW_RESOLUTION_MM)
        size = [max(1, int(round(target / float(spacing_mm[i])))) for i in range(2)] + [1]
        if max(size) > 1:
            img = uniform_filter(img, size=size, mode="nearest")
    if rng.random() < P_GHOST:
        axis = int(rng.integers(0, 2))
        img = img + rng.uniform(*GHOST_AMPLITUDE) * np.roll(img, img.shape[axis] // 2, axis=axis)
    return img
