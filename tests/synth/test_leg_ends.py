"""The phantom beyond the calf (issue 13): ankle/hindfoot and knee slices, plantaris as unlabelled
muscle, EHL as its own belly inside the EDL label, training grids that reach the ends, every
contrast rendered ankle to knee."""

from __future__ import annotations

import numpy as np
import pytest

from alsseg.labels import load_anatomy
from alsseg.synth import CONTRASTS, Grid, make_subject, random_grid, render_contrast, render_tissues
from alsseg.synth import profiles
from alsseg.synth.anatomy import CORTEX, MARROW, MUSCLE, TENDON

ANAT = load_anatomy()


def _slice(subject, s, *, shape=(240, 170), mm=1.0, y_mm=30.0):
    """One axial slice of both legs at level ``s`` (world z from the subject's ankle)."""
    z = subject.z_ankle_mm + s * subject.leg_length_mm
    grid = Grid.axial((shape[0], shape[1], 1), (mm, mm, 3.0), centre_mm=(0.0, y_mm, z))
    return render_tissues(subject, grid, n_sub=1)


@pytest.mark.parametrize("seed", [1, 2, 5])
@pytest.mark.parametrize("s", [-0.03, -0.09])
def test_ankle_slices_have_tendon_and_bone_but_no_labelled_muscle(seed, s):
    tv = _slice(make_subject(seed), s, y_mm=60.0, shape=(240, 240))
    assert not tv.label.any()
    assert (tv.fractions[..., TENDON] > 0.5).sum() > 30
    assert (tv.fractions[..., CORTEX] + tv.fractions[..., MARROW] > 0.5).sum() > 800


@pytest.mark.parametrize("seed", [1, 2, 5])
def test_knee_slice_has_only_gastrocnemius_labels(seed):
    subject = make_subject(seed)
    tv = _slice(subject, 1.03, shape=(300, 240), y_mm=0.0)
    ids = set(np.unique(tv.label).tolist()) - {0}
    assert ids == {ANAT.label_id(m, side) for m in ("GM", "GL") for side in "RL"}
    unlabelled_muscle = (tv.fractions[..., MUSCLE] > 0.6) & (tv.label == 0)
    assert unlabelled_muscle.sum() > 100             # hamstrings, plantaris, sartorius: label 0
    assert (tv.fractions[..., CORTEX] + tv.fractions[..., MARROW] > 0.5).sum() > 2000   # condyles
    assert (tv.fractions[..., TENDON] > 0.5).sum() > 20


def _counts(subject, s, muscles):
    tv = _slice(subject, s)
    return {m: int(sum((tv.label == ANAT.label_id(m, side)).sum() for side in "RL")) for m in muscles}, tv


def test_ehl_is_its_own_belly_inside_the_edl_label(monkeypatch):
    """EHL lies deep at the TA/EDL split inside its own septum, labelled EDL (the label set's EDL is
    EDL + EHL, as in Handsfield et al.'s volumes); TA keeps its voxels."""
    from alsseg.synth.anatomy import FASCIA, FAT

    subject = make_subject(3)
    with_it, tv = _counts(subject, 0.35, ("EDL", "TA"))
    monkeypatch.setitem(profiles.PRESENCE_OTHER, "EHL", ((0.0, 1.0), (0.0, 0.0)))
    without, tv0 = _counts(subject, 0.35, ("EDL", "TA"))
    sheet = tv.fractions[..., FASCIA] + tv.fractions[..., FAT] > tv0.fractions[..., FASCIA] + tv0.fractions[..., FAT] + 0.3
    assert sheet.sum() > 10                                              # EHL's septum is drawn
    edl = np.isin(tv.label, [ANAT.label_id("EDL", side) for side in "RL"])
    assert edl[sheet].mean() > 0.8                                       # ... inside EDL's outline
    assert abs(with_it["EDL"] - without["EDL"]) <= 0.05 * without["EDL"] + 5
    assert abs(with_it["TA"] - without["TA"]) <= 0.02 * without["TA"] + 5


@pytest.mark.parametrize("name, s, taken_from, untouched", [
    ("PLA", 0.9, "SOL", "GL"),         # plantaris lies under GL, in the soleus' room
])
def test_plantaris_is_muscle_tissue_without_a_label(monkeypatch, name, s, taken_from, untouched):
    subject = make_subject(3)
    with_it, tv = _counts(subject, s, (taken_from, untouched))
    monkeypatch.setitem(profiles.PRESENCE_OTHER, name, ((0.0, 1.0), (0.0, 0.0)))
    without, tv0 = _counts(subject, s, (taken_from, untouched))
    # the voxels it takes are muscle tissue with label 0
    took = (tv0.label > 0) & (tv.label == 0)
    assert took.sum() > 40, took.sum()
    assert (tv.fractions[..., MUSCLE][took] > 0.5).mean() > 0.6   # the rest: its septum (fat, fascia)
    assert with_it[taken_from] < without[taken_from] - 40
    assert abs(with_it[untouched] - without[untouched]) <= 0.02 * without[untouched] + 5


def test_random_grid_reaches_the_ends_with_the_configured_probability():
    subject = make_subject(4)
    joints = (subject.z_ankle_mm, subject.z_ankle_mm + subject.leg_length_mm)

    def share(p_ends, n=400):
        rng = np.random.default_rng(11)
        hits = 0
        for _ in range(n):
            g = random_grid(rng, slice_mm=(3.0, 10.0), p_ends=p_ends, joints_z_mm=joints)
            z = g.world(np.array([[g.shape[0] / 2, g.shape[1] / 2, k] for k in range(g.shape[2])]))[:, 2]
            hits += bool((z.min() < joints[0] - 5.0) or (z.max() > joints[1] + 5.0))
        return hits / n

    assert share(0.0) < 0.03
    assert 0.14 < share(0.2) < 0.28
    a = random_grid(np.random.default_rng(9))
    b = random_grid(np.random.default_rng(9), p_ends=0.0)
    assert a.shape == b.shape and np.allclose(a.affine, b.affine)


@pytest.mark.slow
def test_every_contrast_renders_ankle_to_knee():
    subject = make_subject(6, disease="als")
    lo = subject.z_ankle_mm - 0.15 * subject.leg_length_mm
    hi = subject.z_ankle_mm + 1.15 * subject.leg_length_mm
    n_z = 24
    grid = Grid.axial((150, 100, n_z), (2.6, 2.6, (hi - lo) / (n_z - 1)), centre_mm=(0.0, 25.0, 0.5 * (lo + hi)),
                      slice_thickness_mm=4.0)
    tv = render_tissues(subject, grid)
    body = tv.fractions[..., 0] < 0.5
    assert body[..., 0].sum() > 300 and body[..., -1].sum() > 300      # foot and knee are there
    assert not tv.label[..., :2].any()                                  # no label at the foot
    for c in CONTRASTS:
        img = render_contrast(subject, grid, c, np.random.default_rng(1), tissues=tv).data
        assert img.shape == grid.shape and np.isfinite(img).all(), c
        for k in (0, n_z - 1):                                          # the ends show up
            assert img[..., k][body[..., k]].mean() > 2.0 * img[..., k][~body[..., k]].mean(), (c, k)
