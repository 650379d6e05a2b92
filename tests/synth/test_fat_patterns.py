"""Fat-infiltration patterns (patchy, marbled, end-stage) of the phantom's muscles."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from alsseg.labels import load_anatomy
from alsseg.synth import Grid, make_subject, render_contrast, render_tissues
from alsseg.synth import fat_patterns as fp
from alsseg.synth.fat_patterns import FatPattern

ANAT = load_anatomy()


@pytest.fixture(scope="module")
def grid():
    """1.2 mm in-plane (thin stripes need a fine grid), three 7 mm slices over the mid-calf."""
    return Grid.axial((260, 160, 3), (1.2, 1.2, 7.0))


@pytest.fixture(scope="module")
def pair(grid):
    """The same diseased subject with every muscle patchy, and with TA marbled and SOL end-stage
    (right leg; PER left patchy)."""
    base = make_subject(5, denervation={"R": 0.6, "L": 0.3})
    plain = replace(base, legs={k: replace(v, fat_patterns={}) for k, v in base.legs.items()})
    pats = {"TA": FatPattern("marbled", stripe_ff=0.8, width=0.3),
            "SOL": FatPattern("end_stage", stripe_ff=0.9, width=0.12, residual_ff=0.2)}
    styled = replace(plain, legs={**plain.legs, "R": replace(plain.legs["R"], fat_patterns=pats)})
    return plain, styled, render_tissues(plain, grid), render_tissues(styled, grid)


def test_patterns_change_fat_not_labels(pair):
    _, _, tp, ts = pair
    assert np.array_equal(tp.label, ts.label)  # an end-stage muscle is still labelled as that muscle
    from scipy.ndimage import binary_erosion

    # patchy PER unchanged (its core: a boundary voxel shares partial volume with its neighbours)
    per = binary_erosion(tp.label == ANAT.label_id("PER", "R"), np.ones((5, 5, 1), bool))
    assert per.sum() > 50
    assert np.array_equal(tp.fat_fraction_muscle[per], ts.fat_fraction_muscle[per])


def test_marbled_muscle_has_thin_fatty_stripes(pair):
    _, _, tp, ts = pair
    ta = ts.label == ANAT.label_id("TA", "R")
    f, f0 = ts.fat_fraction_muscle[ta], tp.fat_fraction_muscle[ta]
    assert ta.sum() > 200
    # wide, two-sided distribution: lean muscle and fatty stripes side by side
    assert np.percentile(f, 90) - np.percentile(f, 10) > 0.3
    assert 0.05 < (f > 0.5).mean() < 0.6 and (f < 0.3).mean() > 0.3
    assert f.mean() > f0.mean() + 0.05
    # fine structure, unlike the smooth patchy field: neighbours differ far more
    from scipy.ndimage import binary_erosion

    core = binary_erosion(ta, np.ones((5, 5, 1), bool))  # boundary voxels mix in the neighbours
    both = core[1:] & core[:-1]

    def roughness(ffm):
        return np.abs(ffm[1:] - ffm[:-1])[both].mean()

    assert roughness(ts.fat_fraction_muscle) > 2.5 * roughness(tp.fat_fraction_muscle)
    # stripes are thin: most fatty voxels touch a lean one in-plane
    stripe = np.zeros(ts.label.shape, bool)
    stripe[ta] = f > 0.5
    lean = ta & ~stripe
    near_lean = np.zeros_like(stripe)
    for ax in (0, 1):
        for sh in (-2, -1, 1, 2):
            near_lean |= np.roll(lean, sh, axis=ax)
    assert (near_lean[stripe]).mean() > 0.8


def test_end_stage_muscle_is_mostly_fat_with_residual_strands(pair):
    _, _, _, ts = pair
    sol = ts.label == ANAT.label_id("SOL", "R")
    f = ts.fat_fraction_muscle[sol]
    assert sol.sum() > 200 and f.mean() > 0.7
    assert (f < 0.5).mean() > 0.005  # a few residual muscle strands


@pytest.mark.parametrize("contrast", ["mese_late", "t1w", "dixon_water", "dixon_fat", "dwi_b0", "random"])
def test_fat_reaches_every_contrast(pair, grid, contrast):
    plain, styled, tp, ts = pair
    sol = ts.label == ANAT.label_id("SOL", "R")
    a = render_contrast(plain, grid, contrast, np.random.default_rng(0), snr=None, tissues=tp).data
    b = render_contrast(styled, grid, contrast, np.random.default_rng(0), snr=None, tissues=ts).data
    rel = abs(b[sol].mean() - a[sol].mean()) / max(abs(a[sol].mean()), 1e-6)
    if contrast == "random":  # random intensities (its fat texture has a random sign and size)
        assert not np.allclose(a[sol], b[sol])
    else:
        assert rel > 0.15, rel
    if contrast in ("t1w", "dixon_fat", "mese_late"):  # fat brighter than muscle: stripes bright
        ta = ts.label == ANAT.label_id("TA", "R")
        assert np.corrcoef(b[ta], ts.fat_fraction_muscle[ta])[0, 1] > 0.5


def test_pattern_draws_follow_their_probabilities():
    rng = np.random.default_rng(0)
    sev = {m: 0.5 for m in ("TA", "EDL", "PER", "TP", "SOL", "GM", "GL")}
    kinds = [p.kind for _ in range(600) for p in fp.draw_fat_patterns(rng, sev, diseased=True).values()]
    n = 600 * len(sev)
    assert kinds.count("end_stage") / n == pytest.approx(fp.P_END_STAGE, abs=0.012)
    assert kinds.count("marbled") / n == pytest.approx(fp.P_MARBLED, abs=0.03)
    # healthy legs (or no fat effect): only mild marbling, in some legs
    mild = [fp.draw_fat_patterns(rng, sev, diseased=False) for _ in range(600)]
    flat = [p for d in mild for p in d.values()]
    assert all(p.kind == "marbled" and p.stripe_ff <= fp.AGED_STRIPE_FF[1] for p in flat)
    frac_legs = np.mean([bool(d) for d in mild])
    assert 0.5 * fp.P_AGED_MARBLING < frac_legs < 1.5 * fp.P_AGED_MARBLING


def test_subject_patterns_are_seeded_and_need_a_fat_effect():
    a, b = make_subject(19, disease="als"), make_subject(19, disease="als")
    assert a.legs["R"].fat_patterns == b.legs["R"].fat_patterns and a.legs["R"].fat_patterns
    none = make_subject(19, disease="als", effect_ff=0.0)
    assert all(p.kind == "marbled" and p.stripe_ff <= fp.AGED_STRIPE_FF[1]
               for leg in none.legs.values() for p in leg.fat_patterns.values())
    # other draws of the subject are untouched by the pattern draws
    assert a.legs["R"].severity == none.legs["R"].severity
