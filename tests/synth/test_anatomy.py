"""Anatomy of the phantom: reproducibility, label ids, sides in world space, relations, disease."""

from __future__ import annotations

import numpy as np
import pytest

from alsseg.labels import load_anatomy
from alsseg.synth import Grid, make_subject, random_grid, render_label_map, render_tissues
from alsseg.synth.anatomy import CORTEX, FAT, MARROW, MUSCLE, MUSCLES

ANAT = load_anatomy()


def _centroid(img, lid):
    ijk = np.argwhere(img.data == lid)
    return ijk.mean(0) @ img.affine[:3, :3].T + img.affine[:3, 3]


def test_same_seed_same_subject_and_different_seed_differs(small_grid):
    a = render_label_map(make_subject(3), small_grid).data
    b = render_label_map(make_subject(3), small_grid).data
    c = render_label_map(make_subject(4), small_grid).data
    assert np.array_equal(a, b)
    assert (a != c).mean() > 0.005


def test_label_map_ids_and_all_muscles_present(healthy_subject, small_grid):
    lab = render_label_map(healthy_subject, small_grid)
    assert lab.data.dtype == np.int16 and lab.shape == small_grid.shape
    ids = set(np.unique(lab.data).tolist())
    assert ids <= ANAT.valid_ids()
    assert ids == ANAT.valid_ids(), f"missing labels {ANAT.valid_ids() - ids}"


@pytest.mark.parametrize("flip", [False, True])
def test_right_leg_is_at_world_right_whatever_the_voxel_order(healthy_subject, flip):
    grid = Grid.axial((150, 90, 4), (2.5, 2.5, 10.0), rotation_deg=8.0, flip_x=flip, flip_y=flip)
    lab = render_label_map(healthy_subject, grid)
    for m in MUSCLES:
        r = _centroid(lab, ANAT.label_id(m, "R"))
        left = _centroid(lab, ANAT.label_id(m, "L"))
        assert r[0] > 5 and left[0] < -5 and r[0] - left[0] > 40, m  # RAS: +x is the subject's right


def test_cross_section_relations(healthy_subject):
    """Tibia anteromedial, fibula posterolateral; TA anterior, EDL lateral to TA, PER lateral,
    TP deep, SOL posterior to TP, GM medial and GL lateral superficial bellies."""
    leg = healthy_subject.legs["R"]
    cx, cy = leg.centre_mm
    grid = Grid.axial((110, 110, 1), (1.2, 1.2, 4.0), centre_mm=(cx, cy, 20.0), slice_thickness_mm=2.0)
    tv = render_tissues(healthy_subject, grid, n_sub=1)
    img = grid.image(tv.label)
    c = {m: _centroid(img, ANAT.label_id(m, "R")) for m in MUSCLES}
    lat = lambda p: p[0] - cx  # right leg: lateral = +x  # noqa: E731
    ant = lambda p: p[1] - cy  # noqa: E731
    bone = grid.image((tv.fractions[..., CORTEX] + tv.fractions[..., MARROW] > 0.5).astype(np.int16))
    ijk = np.argwhere(bone.data > 0)
    world = ijk @ grid.affine[:3, :3].T + grid.affine[:3, 3]
    medial_bone = world[world[:, 0] < np.median(world[:, 0])].mean(0)   # tibia (bigger, medial)
    lateral_bone = world[world[:, 0] > np.percentile(world[:, 0], 90)].mean(0)
    assert ant(medial_bone) > 10 and ant(medial_bone) > ant(lateral_bone)       # tibia anterior
    assert lat(lateral_bone) > lat(medial_bone) + 15                          # fibula lateral
    assert ant(c["TA"]) > ant(c["TP"]) > ant(c["SOL"])
    assert lat(c["EDL"]) > lat(c["TA"])
    assert lat(c["PER"]) > lat(c["TP"])
    assert ant(c["SOL"]) > ant(c["GM"]) and ant(c["SOL"]) > ant(c["GL"])
    assert lat(c["GM"]) < lat(c["GL"])
    # volumes: soleus and gastrocnemius medialis are the big ones, TP / EDL smaller than SOL
    n = {m: (tv.label == ANAT.label_id(m, "R")).sum() for m in MUSCLES}
    assert n["SOL"] > n["TP"] and n["SOL"] > n["EDL"] and n["GM"] > n["GL"]


def test_gastrocnemius_ends_above_the_ankle_soleus_continues(healthy_subject):
    subj = healthy_subject
    z_low = subj.z_ankle_mm + 0.3 * subj.leg_length_mm  # 30 % of the leg above the ankle
    grid = Grid.axial((150, 90, 1), (2.0, 2.0, 4.0), centre_mm=(0, 0, z_low), slice_thickness_mm=2.0)
    lab = render_label_map(subj, grid, n_sub=1).data
    for side in "RL":
        assert (lab == ANAT.label_id("SOL", side)).sum() > 20
        assert (lab == ANAT.label_id("GM", side)).sum() == 0
        assert (lab == ANAT.label_id("GL", side)).sum() == 0


def test_tissue_fractions_are_a_partition(healthy_tissues):
    f = healthy_tissues.fractions
    assert np.allclose(f.sum(-1), 1.0, atol=1e-4)
    assert f.min() >= 0
    # subcutaneous fat, bone and muscle are all there; partial volume exists at boundaries
    assert f[..., FAT].max() == pytest.approx(1.0, abs=1e-3)
    assert ((f[..., MUSCLE] > 0.05) & (f[..., MUSCLE] < 0.95)).sum() > 100


def test_disease_raises_t2_and_fat_and_shrinks_the_muscle(small_grid):
    healthy = make_subject(21, denervation={"R": 0.0, "L": 0.0})
    sick = make_subject(21, denervation={"R": 0.9, "L": 0.0})
    th, ts = render_tissues(healthy, small_grid), render_tissues(sick, small_grid)
    ta_r, ta_l = ANAT.label_id("TA", "R"), ANAT.label_id("TA", "L")
    assert ts.t2_water_ms[ts.label == ta_r].mean() > th.t2_water_ms[th.label == ta_r].mean() + 6
    assert ts.fat_fraction_muscle[ts.label == ta_r].mean() > th.fat_fraction_muscle[th.label == ta_r].mean() + 0.1
    assert (ts.label == ta_r).sum() < 0.85 * (th.label == ta_r).sum()
    # the healthy left leg is untouched
    assert ts.t2_water_ms[ts.label == ta_l].mean() == pytest.approx(th.t2_water_ms[th.label == ta_l].mean(), abs=0.01)
    # ALS-typical muscles suffer more than TP
    sev = sick.legs["R"].severity
    assert sev["TA"] > sev["TP"] and sev["GM"] > sev["TP"]
    # patchy: within-muscle spread of T2 grows with disease
    assert ts.t2_water_ms[ts.label == ta_r].std() > 2 * th.t2_water_ms[th.label == ta_r].std()


def test_random_grids_hold_both_legs():
    rng = np.random.default_rng(0)
    subj = make_subject(2)
    for _ in range(3):
        g = random_grid(rng, n_slices=(3, 4))
        sp = g.spacing_mm
        assert 0.7 <= sp[0] <= 1.6 and 5 <= sp[2] <= 10 and g.thickness_mm <= sp[2] + 1e-9
        ids = set(np.unique(render_label_map(subj, g, n_sub=1).data).tolist())
        assert any(i in ids for i in range(1, 8)) and any(i in ids for i in range(11, 18))


def _mid_calf_counts(subject, side="R"):
    """Pixel count per side-agnostic muscle index 1..7 on a 2 mm mid-calf slice of one leg."""
    leg = subject.legs[side]
    z = subject.z_ankle_mm + 0.6 * subject.leg_length_mm
    g = Grid.axial((60, 60, 1), (2.0, 2.0, 4.0), centre_mm=(leg.centre_mm[0], leg.centre_mm[1], z))
    lab = render_tissues(subject, g, n_sub=1).label
    return {i: int((lab == ANAT.label_id(m, side)).sum()) for i, m in enumerate(MUSCLES, start=1)}


def test_shape_jitter_zero_is_the_published_phantom_and_the_rest_of_the_subject_stays(small_grid):
    plain = make_subject(3, disease="als")
    assert np.array_equal(render_label_map(plain, small_grid).data,
                          render_label_map(make_subject(3, disease="als", shape_jitter=0.0), small_grid).data)
    jittered = make_subject(3, disease="als", shape_jitter=1.0)
    assert plain.legs["R"].geometry == {} and jittered.legs["R"].geometry
    for side in ("R", "L"):  # only the compartment geometry moves
        a, b = plain.legs[side], jittered.legs[side]
        assert (a.fat_mm, a.tibia_mm, a.t2_water_ms, a.atrophy) == (b.fat_mm, b.tibia_mm, b.t2_water_ms, b.atrophy)
    assert plain.leg_length_mm == jittered.leg_length_mm
    assert not np.array_equal(render_label_map(plain, small_grid).data, render_label_map(jittered, small_grid).data)


def test_shape_jitter_widens_the_spread_of_compartment_proportions():
    """Across the same 8 seeds, EDL/TA and gastrocnemii/SOL area ratios on a mid-calf slice spread
    at least 1.3 times wider (s.d. of the log ratio) at jitter 1 than without, and every muscle
    is still there."""
    spread = {}
    for jitter in (0.0, 1.0):
        counts = [_mid_calf_counts(make_subject(seed, shape_jitter=jitter)) for seed in range(20, 28)]
        assert min(min(c.values()) for c in counts) > 10, "a muscle vanished"
        spread[jitter] = (np.std([np.log(c[2] / c[1]) for c in counts]),
                          np.std([np.log((c[6] + c[7]) / c[5]) for c in counts]))
    assert spread[1.0][0] > 1.3 * spread[0.0][0] and spread[1.0][1] > 1.3 * spread[0.0][1], spread


def test_shape_jitter_keeps_the_cross_section_relations():
    """The anatomy test above, on the same subject drawn with wide shape jitter."""
    test_cross_section_relations(make_subject(11, disease="healthy", shape_jitter=1.0))


def test_bad_disease_arguments_are_refused():
    with pytest.raises(ValueError, match="healthy"):
        make_subject(0, disease="sick")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        make_subject(0, disease=1.5)
    for bad in (-0.5, float("nan")):
        with pytest.raises(ValueError, match="shape_jitter"):
            make_subject(0, shape_jitter=bad)


def test_cli_module_imports_no_numerical_library():
    import subprocess
    import sys

    code = "import sys, alsseg.cli.synth_cmd; print(sorted(m for m in ('numpy', 'scipy', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
