"""Synthetic lower-leg MRI: a randomised 3-D phantom of both calves, its rendering, and cohorts.

Quick use (seeded, fast: a 256×256×30 subject renders in about a second or two)::

    import numpy as np
    from alsseg.synth import make_subject, random_grid, render_label_map, render_contrast, Grid

    subj = make_subject(seed=3, disease="als")          # anatomy + tissue properties = ground truth
    grid = random_grid(np.random.default_rng(3))         # in-plane 0.7–1.6 mm, slices 5–10 mm, both legs
    labels = render_label_map(subj, grid)                # Image int16: right 1–7, left 11–17 (world RAS)
    img = render_contrast(subj, grid, "random", np.random.default_rng(4))   # Image float32

    # render labels and several contrasts from one tissue sampling:
    tv = render_tissues(subj, grid)                      # fractions, labels, true muscle T2/FF, B1, bias
    t1w = render_contrast(subj, grid, "t1w", tissues=tv)
    echoes = mese_signal(subj, tv, MeseProtocol())       # (X, Y, Z, 17) noiseless EPG echo trains
    maps = true_maps(subj, tv)                           # water T2, FF, T1, B1, M0 on the grid

Public API
----------
make_subject(seed, *, disease="healthy"|"als"|float, denervation={"R": d, "L": d}, ...) -> Subject
Grid(shape, affine, slice_thickness_mm=None); Grid.axial(shape, spacing_mm, centre_mm=..., ...)
random_grid(rng, ...) -> Grid
render_tissues(subject, grid, n_sub=None) -> TissueVolume
render_label_map(subject, grid) -> Image (int16 label ids of alsseg.labels)
render_contrast(subject, grid, contrast, rng=None, *, snr="auto", protocol=MeseProtocol(), tissues=None) -> Image
    contrast in CONTRASTS: 'mese_e1', 'mese_late', 't1w', 'dixon_water', 'dixon_fat', 'dwi_b0', 'random'
mese_signal(subject, tissue_volume, protocol) -> (X, Y, Z, n_echoes) float32
ir_signal(subject, tissue_volume, IrProtocol()) -> (X, Y, Z, n_TI) float32
true_maps(subject, tissue_volume) -> dict of (X, Y, Z) maps
render_session(subject, grid, *, mese=MeseProtocol(), ir=IrProtocol(), snr=60, rng=None) -> Session
    (MESE, IR, T1w, labels, true maps; Session.muscle_table() = true per-muscle values)
make_cohort(out, n_als=11, n_controls=8, visits=2, seed=0, *, config=CohortConfig(), workers=2) -> Path
    (BIDS dataset with motor measures and derivatives/groundtruth; resumable)
make_subject_dataset(out, seed=0, disease="als", *, config=None, grid=None) -> Path   (one subject)
write_session(out, participant_id, session_id, subject, grid, config, rng=None) -> rows

See docs/synth.md for the anatomy, the disease and motor models, the layout and the realism check.

Coordinates: world RAS+ in mm; the subject's mid-calf is near the origin; the right leg is at
+x. Axis 2 of every grid is the slice axis.
"""

from alsseg.synth.anatomy import MUSCLES, TISSUE_NAMES, LegParams, Subject, make_subject
from alsseg.synth.cross_section import evaluate
from alsseg.synth.cohort import CohortConfig, CohortEffects, make_cohort, make_subject_dataset, write_session
from alsseg.synth.grid import Grid, random_grid
from alsseg.synth.render import (
    CONTRASTS, IrProtocol, MeseProtocol, TissueVolume, add_rician_noise, anatomical_signal, ir_signal,
    mese_signal, render_contrast, render_label_map, render_tissues, true_maps,
)
from alsseg.synth.session import Session, render_session

__all__ = [
    "CONTRASTS", "MUSCLES", "TISSUE_NAMES", "CohortConfig", "CohortEffects", "Grid", "IrProtocol", "LegParams",
    "MeseProtocol", "Session", "Subject", "TissueVolume", "add_rician_noise", "anatomical_signal", "evaluate",
    "ir_signal", "make_cohort", "make_subject", "make_subject_dataset", "mese_signal", "random_grid", "render_contrast",
    "render_label_map", "render_session", "render_tissues", "true_maps", "write_session",
]
