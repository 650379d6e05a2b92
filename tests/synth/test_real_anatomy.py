"""The phantom's anatomy against what real calves have (issue: segmentation that holds on real
scans): unlabelled deep flexors, intramuscular aponeuroses labelled as their muscle, no muscle
over the tibia's crest, published volume proportions, one-leg fields of view, degraded
acquisitions in the randomised contrast."""

from __future__ import annotations

import numpy as np
import pytest

from alsseg.labels import load_anatomy
from alsseg.synth import Grid, make_subject, random_grid, render_label_map, render_tissues
from alsseg.synth.anatomy import APONEUROSIS, CORTEX, MARROW, MUSCLE, MUSCLES

pytestmark = pytest.mark.slow
ANAT = load_anatomy()
#: Handsfield et al., J Biomech 2014 (adult lower-leg muscle volumes), fraction of the seven's sum;
#: EDL includes EHL.
HANDSFIELD = {"TA": 0.10, "EDL": 0.07, "PER": 0.10, "TP": 0.07, "SOL": 0.35, "GM": 0.19, "GL": 0.11}


def _leg_volume_grid(subject, n_z=24):
    zc = subject.z_ankle_mm + 0.5 * subject.leg_length_mm
    return Grid.axial((200, 130, n_z), (1.6, 1.6, subject.leg_length_mm / n_z), centre_mm=(0.0, 0.0, zc))


@pytest.fixture(scope="module")
def calf_volumes():
    return [(s, render_tissues(s, _leg_volume_grid(s), n_sub=1)) for s in (make_subject(k) for k in (1, 2, 3))]


def test_deep_flexors_are_muscle_tissue_without_a_label(calf_volumes):
    for subject, tv in calf_volumes:
        muscle = tv.fractions[..., MUSCLE] > 0.6
        unlabelled = muscle & (tv.label == 0)
        share = unlabelled.sum() / muscle.sum()
        assert 0.02 < share < 0.2, (subject.seed, share)
        # it lies in the deep posterior compartment: behind the tibia, in front of the soleus
        for side in "RL":
            sol = tv.label == ANAT.label_id("SOL", side)
            leg_x = np.argwhere(sol)[:, 0].mean()
            near = unlabelled.copy()
            near[: int(leg_x) - 45] = False
            near[int(leg_x) + 45:] = False
            assert near.sum() > 100


def test_aponeuroses_are_inside_their_muscle_and_keep_its_label():
    subject = make_subject(7)
    assert min(leg.aponeurosis_strength for leg in subject.legs.values()) > 0.5
    zc = subject.z_ankle_mm + 0.6 * subject.leg_length_mm
    grid = Grid.axial((220, 140, 2), (1.0, 1.0, 8.0), centre_mm=(0.0, 0.0, zc))
    tv = render_tissues(subject, grid, n_sub=1)
    sheet = tv.fractions[..., APONEUROSIS] > 0.25
    assert sheet.sum() > 100
    assert (tv.label[sheet] > 0).mean() > 0.95          # labelled as the muscle around it
    ids = {int(i) % 10 for i in np.unique(tv.label[sheet]) if i > 0}
    assert {1, 5} <= ids                                 # TA's central tendon, soleus' sheet


def test_no_muscle_over_the_tibial_crest(calf_volumes):
    """The anterior crest and medial face of the tibia are subcutaneous: going anterior from the
    tibia's most anterior voxel, no labelled muscle is met."""
    for subject, tv in calf_volumes:
        bone = tv.fractions[..., CORTEX] + tv.fractions[..., MARROW] > 0.5
        for z in range(6, 18):
            for half in (slice(0, 100), slice(100, 200)):
                b = bone[half, :, z]
                if b.sum() < 50:
                    continue
                ijk = np.argwhere(b)
                # the tibia is the bigger bone: the most anterior bone voxel belongs to it (j up = A)
                i, j = ijk[np.argmax(ijk[:, 1])]
                column = tv.label[half, :, z][i, j + 1:]
                # partial volume at the edge, plus the half of the fascia inside TA's outline
                assert (column > 0).sum() <= 4, (subject.seed, z)


def test_volume_proportions_follow_published_adult_data(calf_volumes):
    counts = {m: 0 for m in MUSCLES}
    for _, tv in calf_volumes:
        for m in MUSCLES:
            counts[m] += sum(int((tv.label == ANAT.label_id(m, s)).sum()) for s in "RL")
    total = sum(counts.values())
    share = {m: counts[m] / total for m in MUSCLES}
    for m in MUSCLES:
        assert abs(share[m] - HANDSFIELD[m]) < 0.06, (m, share[m])
    assert share["TA"] > share["EDL"]
    assert 0.24 < share["GM"] + share["GL"] < 0.36


def test_one_leg_fields_of_view():
    rng = np.random.default_rng(4)
    subject = make_subject(2)
    sides = []
    for _ in range(12):
        g = random_grid(rng, n_slices=(2, 2), p_one_leg=1.0)
        assert 150 <= g.shape[0] * g.spacing_mm[0] <= 220 + 2
        lab = render_label_map(subject, g, n_sub=1).data
        right, left = int(((lab > 0) & (lab < 10)).sum()), int((lab > 10).sum())
        if right + left == 0:
            continue
        assert max(right, left) > 0.75 * (right + left)   # one leg, with at most a part of the other
        sides.append("R" if right > left else "L")
    assert {"R", "L"} <= set(sides)


def test_random_grid_without_one_leg_is_unchanged():
    a = random_grid(np.random.default_rng(9))
    b = random_grid(np.random.default_rng(9), p_one_leg=0.0)
    assert a.shape == b.shape and np.allclose(a.affine, b.affine)


def test_degraded_acquisition_blurs_and_ghosts():
    from alsseg.synth import artefacts
    img = np.zeros((64, 64, 1), np.float32)
    img[20:40, 20:40] = 1.0

    class Always:
        """A generator whose every draw says 'yes' and takes the top of each range."""

        def random(self):
            return 0.0

        def uniform(self, lo, hi):
            return hi

        def integers(self, lo, hi):
            return 1

    lab = (img > 0).astype(np.int16)
    out, lab_out = artefacts.degrade_acquisition(img, lab, (1.0, 1.0, 5.0), Always(), p_epi=0.0, p_motion=0.0)
    assert np.array_equal(lab_out, lab)                        # no geometric change: labels as they were
    assert 0 < out[19, 30, 0] < out[30, 30, 0]                # edges blurred (4 mm boxes)
    assert out[30, 62, 0] > 0.05 and out[30, 62, 0] < 0.2     # ghost at half the field of view


def test_outlines_touch_across_septa_like_manual_ones():
    """Labels follow the manual-outline convention: the septum between two labelled muscles is
    split between them (outlines touch), intramuscular fat streaks stay inside the outline."""
    from scipy import ndimage

    from alsseg.synth.anatomy import FASCIA, FAT

    subject = make_subject(4)
    zc = subject.z_ankle_mm + 0.6 * subject.leg_length_mm
    tv = render_tissues(subject, Grid.axial((220, 140, 2), (0.8, 0.8, 6.0), centre_mm=(0.0, 0.0, zc)), n_sub=1)
    lab = tv.label
    ids = [int(i) for i in np.unique(lab) if i > 0]
    near = np.stack([ndimage.binary_dilation(lab == i, iterations=3) for i in ids]).sum(0)
    septum = (tv.fractions[..., FASCIA] > 0.4) & (near >= 2)   # fascia between two labelled muscles
    assert septum.sum() > 50
    assert (lab[septum] > 0).mean() > 0.9
    own = np.stack([ndimage.binary_erosion(lab == i, iterations=1) for i in ids]).any(0)
    streak = (tv.fractions[..., FAT] > 0.5) & ndimage.binary_dilation(own, iterations=2) & (near == 1)
    if streak.sum() > 10:
        assert (lab[streak] > 0).mean() > 0.8
