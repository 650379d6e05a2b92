"""The ends of the phantom's leg: ankle/hindfoot below the ankle joint (``s < 0``) and knee above
the knee joint line (``s > 1``), and the distal tendons of the lower calf.

Real ankle-to-knee scans (3-D GRE, long multi-slice stacks) show slices there; a network that
never saw them labels tendon, fat and bone as muscle. Each end is built in the leg's own frame
(``l`` lateral, ``a`` anterior, mm) from the main cross-section's tibia and fibula at the joint
(:func:`alsseg.synth.profiles.level_geometry`), scaled by the leg's size ``k = tibia_mm / 14``;
``d`` is the distance from the joint, mm.

* **Ankle/hindfoot** (``d`` 0–80 mm below the tibiotalar joint): medial and lateral malleoli,
  the talus (body, then neck/head anteromedially), the calcaneus (posterior, from ~25 mm) and the
  midfoot bones (anterior, as the foot appears) as cortex + marrow blobs; the Achilles tendon
  posteriorly in fat (Kager's fat pad) to its calcaneal insertion; the anterior tendons (TA, EHL,
  EDL) under the dorsal skin; the peroneal tendons behind the lateral malleolus; TP, FDL and FHL
  behind the medial malleolus; abductor hallucis and flexor digitorum brevis as unlabelled muscle
  (label 0); the heel fat pad and the sole.
* **Knee** (``d`` 0–70 mm above the joint line): femoral condyles (then the metaphysis), the
  patella and the patellar tendon anteriorly (Hoffa's fat pad behind it), the popliteal fossa
  (fat, popliteal artery and vein), the gastrocnemius heads (GM medial, GL lateral, labelled,
  thinning into their tendons on the condyles), plantaris, the hamstrings (semimembranosus,
  semitendinosus, biceps femoris), sartorius/gracilis and vastus medialis, unlabelled (label 0).

No labelled muscle exists at the ankle; at the knee only GM and GL carry labels.
"""

from __future__ import annotations

import numpy as np

from alsseg.synth.anatomy import (
    AIR, ARTERY, CORTEX, FAT, MARROW, MUSCLE, N_TISSUES, SKIN, TENDON, VEIN,
)
from alsseg.synth.fields import paint_over, smoothstep_inside
from alsseg.synth.profiles import level_geometry

#: ``s`` limits of the body: below ``ANKLE_S_MIN`` (past the sole) and above ``KNEE_S_MAX`` the
#: phantom is air (``s`` = 1 is about 340–450 mm, so these are ~80 mm past each joint).
ANKLE_S_MIN, KNEE_S_MAX = -0.2, 1.2
#: extra in-plane reach (mm) of the foot ahead of the leg axis, for the candidate-point test
FOOT_REACH_MM = 170.0
_SOLE_MM = 75.0  # depth of the sole below the ankle joint (× k)


def _ramp(x, lo, hi):
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def _ellipse(l, a, cl, ca, rl, ra):
    """Approximate signed depth (mm, > 0 inside) of the points in an axis-aligned ellipse."""
    rl = np.maximum(rl, 1e-3)
    ra = np.maximum(ra, 1e-3)
    rho = np.sqrt(((l - cl) / rl) ** 2 + ((a - ca) / ra) ** 2)
    return ((1.0 - rho) * np.minimum(rl, ra)).astype(np.float32)


def _bone(paint, depth, h, cortex_mm=1.5):
    paint(CORTEX, smoothstep_inside(depth, h))
    paint(MARROW, smoothstep_inside(depth - cortex_mm, h))


def distal_tendons(l, a, d, tib, fib, k, h, *, below_joint):
    """Partial-volume fraction of the ankle tendons (TENDON tissue, label 0).

    Args:
        l, a: ``(n,)`` leg-frame positions, mm.
        d: ``(n,)`` distance below the ankle joint, mm (negative above it: the lower calf).
        tib, fib: ``(l, a, radius)`` of the tibia and fibula (arrays or scalars, mm).
        k: size factor of the leg.
        below_joint: the points are in the hindfoot (the tendons turn round the malleoli).

    Returns:
        ``(n,)`` float32 fraction.
    """
    tl, ta, rt = tib
    fl, fa, rf = fib
    out = np.zeros(l.shape, np.float32)
    # which tendons exist: above the joint they appear where their muscles end (d < 0: calf)
    # (name, l, a, radius, lowest d, highest level above the joint in mm)
    up = -d  # mm above the joint
    dorsal = ta + rt + 4.0 * k + np.where(below_joint, 10.0 * k * _ramp(d, 5 * k, 40 * k), 0.0)
    specs = (
        ("EHL", tl + 0.2 * rt, dorsal, 2.0 * k, 40.0 * k, 90.0 * k),
        ("EDL", tl + 0.65 * rt, dorsal - 1.5 * k, 2.4 * k, 40.0 * k, 100.0 * k),
        ("PL", fl + 0.3 * rf, fa - rf - 3.0 * k, 2.6 * k, 55.0 * k, 110.0 * k),
        ("PB", fl - 0.2 * rf, fa - rf - 2.0 * k, 2.2 * k, 50.0 * k, 60.0 * k),
        ("TPt", tl - 0.55 * rt, ta - 0.7 * rt - 2.0 * k, 2.8 * k, 45.0 * k, 100.0 * k),
        ("FDLt", tl - 0.35 * rt, ta - 0.85 * rt - 5.0 * k, 2.0 * k, 55.0 * k, 70.0 * k),
        ("FHLt", tl + 0.05 * rt, ta - rt - 8.0 * k, 2.4 * k, 60.0 * k, 40.0 * k),
    )
    for _, cl, ca, r, d_max, up_max in specs:
        on = (d < d_max) & (up < up_max)
        if not on.any():
            continue
        dd = np.sqrt((l - cl) ** 2 + (a - ca) ** 2)
        out = np.maximum(out, smoothstep_inside(r - dd, h) * on)
    return out


def evaluate_leg_end(subject, leg, anatomy, p, l, a, s, h):
    """Tissue fractions, labels and muscle T2/FF of the points of one leg beyond its joints.

    Args:
        subject, leg: the subject and one of its legs.
        anatomy: :func:`alsseg.labels.load_anatomy` (label ids).
        p: ``(n, 3)`` world positions, mm (for the smooth fields).
        l, a, s: ``(n,)`` leg-frame positions (mm) and level; all ``s`` < 0 (ankle) or all > 1 (knee).
        h: in-plane voxel size, mm (partial-volume ramp).

    Returns:
        ``(fractions (n, N_TISSUES), label (n,) int16, t2_water_ms (n,), fat_fraction (n,),
        outline_fraction (n,))``; the outline of GM/GL is their muscle tissue (tendons and bone
        painted over it are left out, as annotators do).
    """
    n = l.size
    frac = np.zeros((n, N_TISSUES), np.float32)
    frac[:, AIR] = 1.0
    label = np.zeros(n, np.int16)
    m_idx = np.zeros(n, np.int8)  # 6 GM, 7 GL, 8 unlabelled muscle, 0 none

    def paint(tissue, alpha):
        paint_over(frac, tissue, alpha)

    k = np.float32(leg.tibia_mm / 14.0)
    ankle = bool(s[0] < 0)
    if np.any((s < 0) != ankle):
        raise ValueError("evaluate_leg_end: points of both ends in one call")
    g = level_geometry(leg, 0.0 if ankle else 1.0)
    tl, ta, rt = g["tib"]
    fl, fa, rf = g["fib"]
    fat = leg.fat_mm
    muscle_depth = np.full(n, -1e3, np.float32)

    def muscle(depth, idx):
        nonlocal muscle_depth
        on = depth > muscle_depth
        m_idx[on & (depth > -h)] = idx
        muscle_depth = np.maximum(muscle_depth, depth)

    if ankle:
        d = (-s * subject.leg_length_mm).astype(np.float32)  # mm below the joint
        sole = _SOLE_MM * k
        heel_round = np.sqrt(np.clip(1.0 - ((d - (sole - 18.0 * k)) / (18.0 * k)).clip(0) ** 2, 0.0, 1.0))
        W = (g["lat"] + fat + 5.0 * k * (1.0 - _ramp(d, 20 * k, 40 * k)) + 10.0 * k * _ramp(d, 30 * k, 60 * k))
        A = g["ant"] + fat + 140.0 * k * _ramp(d, 15 * k, 60 * k) ** 0.7
        P = g["post"] + fat + 8.0 * k * _ramp(d, 25 * k, 45 * k)
        W, A, P = W * heel_round, A * heel_round, P * heel_round
        r = np.sqrt(l * l + a * a)
        th = np.arctan2(a, l)
        R = 1.0 / np.sqrt((np.cos(th) / np.maximum(W, 1e-3)) ** 2
                          + (np.sin(th) / np.maximum(np.where(a > 0, A, P), 1e-3)) ** 2)
        surf = np.where(d < sole, R - r, -1e3).astype(np.float32)
        paint(SKIN, smoothstep_inside(surf, h))
        paint(FAT, smoothstep_inside(surf - leg.skin_mm, h))
        # foot muscles (label 0): abductor hallucis medial to the calcaneus, FDB in the sole
        calc_l, calc_a = tl + 4.0 * k, ta - 12.0 * k - 8.0 * k * _ramp(d, 25 * k, 60 * k)
        prof_ah = np.sqrt(np.clip(1 - ((d - 55 * k) / (20 * k)) ** 2, 0, 1))
        muscle(_ellipse(l, a, calc_l - 27.0 * k, calc_a + 10.0 * k, 7.0 * k * prof_ah, 18.0 * k * prof_ah), 8)
        prof_fdb = np.sqrt(np.clip(1 - ((d - 62 * k) / (10 * k)) ** 2, 0, 1))
        muscle(_ellipse(l, a, tl, ta + 30.0 * k, 14.0 * k * prof_fdb, 26.0 * k * prof_fdb), 8)
        paint(MUSCLE, smoothstep_inside(muscle_depth, h))
        # Achilles tendon to its calcaneal insertion, then the tendons round the malleoli
        ach_a = -g["post"] + 4.0 * k - 6.0 * k * _ramp(d, 20 * k, 45 * k)
        paint(TENDON, smoothstep_inside(_ellipse(l, a, 0.0, ach_a, 8.0 * k, 3.5 * k), h) * (d < 48 * k))
        paint(TENDON, distal_tendons(l, a, d, (tl, ta, rt), (fl, fa, rf), k, h, below_joint=True))
        # bones: malleoli, talus (body, neck/head), calcaneus, midfoot
        bone = np.full(n, -1e3, np.float32)
        bone = np.maximum(bone, _ellipse(l, a, tl - 0.65 * rt, ta - 0.1 * rt, 0.38 * rt * np.sqrt(np.clip(1 - d / (12 * k), 0, 1)),
                                         0.5 * rt))
        bone = np.maximum(bone, _ellipse(l, a, fl, fa, 1.3 * rf * np.sqrt(np.clip(1 - d / (25 * k), 0, 1)), 1.6 * rf))
        tal = np.sqrt(np.clip(1 - ((d - 15 * k) / (17 * k)) ** 2, 0, 1)) * (0.6 + 0.4 * _ramp(d, 0, 6 * k))
        bone = np.maximum(bone, _ellipse(l, a, tl + 0.1 * rt, ta, 16.0 * k * tal, 19.0 * k * tal))
        head = np.sqrt(np.clip(1 - ((d - 24 * k) / (13 * k)) ** 2, 0, 1))
        bone = np.maximum(bone, _ellipse(l, a, tl - 6.0 * k, ta + 26.0 * k, 11.0 * k * head, 11.0 * k * head))
        cal = np.sqrt(np.clip(1 - ((d - 47 * k) / (22 * k)) ** 2, 0, 1))
        bone = np.maximum(bone, _ellipse(l, a, calc_l, calc_a, 17.0 * k * cal, 30.0 * k * cal))
        mid = np.sqrt(np.clip(1 - ((d - 45 * k) / (17 * k)) ** 2, 0, 1))
        bone = np.maximum(bone, _ellipse(l, a, tl - 2.0 * k, ta + 35.0 * k + 35.0 * k * _ramp(d, 25 * k, 60 * k),
                                         22.0 * k * mid, 20.0 * k * mid))
        _bone(paint, bone, h)
    else:
        d = ((s - 1.0) * subject.leg_length_mm).astype(np.float32)  # mm above the joint line
        W = g["lat"] * (1.0 + 0.06 * _ramp(d, 0, 30 * k))
        A, P = g["ant"] + 8.0 * k * _ramp(d, 0, 15 * k), g["post"]
        r = np.sqrt(l * l + a * a)
        th = np.arctan2(a, l)
        R = 1.0 / np.sqrt((np.cos(th) / W) ** 2 + (np.sin(th) / np.where(a > 0, A, P)) ** 2)
        deep = (R - r).astype(np.float32)  # > 0 inside the deep fascia
        paint(SKIN, smoothstep_inside(deep + fat + leg.skin_mm, h))
        paint(FAT, smoothstep_inside(deep + fat, h))
        # muscles: gastrocnemius heads (labelled), plantaris, hamstrings, sartorius, vastus medialis
        g_gm = np.sqrt(np.clip(1 - d / (50 * k), 0, 1)) * leg.proportions["GM"] * (1 - leg.atrophy["GM"])
        g_gl = np.sqrt(np.clip(1 - d / (42 * k), 0, 1)) * leg.proportions["GL"] * (1 - leg.atrophy["GL"])
        muscle(_ellipse(l, a, tl - 19.0 * k, -P + 13.0 * k, 17.0 * k * g_gm, 12.0 * k * g_gm), 6)
        muscle(_ellipse(l, a, tl + 20.0 * k, -P + 12.0 * k, 14.0 * k * g_gl, 10.0 * k * g_gl), 7)
        pl = np.sqrt(np.clip(1 - d / (20 * k), 0, 1))
        muscle(_ellipse(l, a, tl + 9.0 * k, -P + 21.0 * k, 5.0 * k * pl, 4.0 * k * pl), 8)
        sm = _ramp(d, 0, 45 * k) ** 0.7
        muscle(_ellipse(l, a, tl - 30.0 * k, -P + 22.0 * k, 11.0 * k * sm, 10.0 * k * sm), 8)
        bf = _ramp(d, 10 * k, 60 * k) ** 0.7
        muscle(_ellipse(l, a, tl + 33.0 * k, -P + 22.0 * k, 10.0 * k * bf, 12.0 * k * bf), 8)
        muscle(_ellipse(l, a, -W + 10.0 * k, -8.0 * k, 7.0 * k, 11.0 * k), 8)  # sartorius
        vm = _ramp(d, 25 * k, 70 * k) ** 0.7
        muscle(_ellipse(l, a, -W + 14.0 * k, ta + 6.0 * k, 11.0 * k * vm, 18.0 * k * vm), 8)
        paint(MUSCLE, smoothstep_inside(np.minimum(muscle_depth, deep), h))
        # popliteal vessels in the fossa's fat; tendons (hamstrings, gastrocnemius origins, patellar)
        paint(ARTERY, smoothstep_inside(3.0 * k - np.hypot(l - tl, a + 0.45 * P), h))
        paint(VEIN, smoothstep_inside(3.8 * k - np.hypot(l - tl - 4.0 * k, a + 0.55 * P), h))
        tendon = smoothstep_inside(_ellipse(l, a, tl, A - 4.0 * k, 13.0 * k, 3.0 * k), h) * (d < 12 * k)
        for cl, ca, rr, lo, hi in ((tl - 34.0 * k, -P + 9.0 * k, 2.6 * k, 0, 1e3),      # semitendinosus
                                   (tl - 40.0 * k, -P + 24.0 * k, 2.0 * k, 0, 1e3),     # gracilis
                                   (tl - 28.0 * k, -P + 24.0 * k, 4.0 * k, 0, 12 * k),  # semimembranosus
                                   (tl + 34.0 * k, -P + 18.0 * k, 3.5 * k, 0, 20 * k),  # biceps femoris
                                   (tl - 16.0 * k, -P + 20.0 * k, 3.0 * k, 35 * k, 60 * k),  # GM origin
                                   (tl + 19.0 * k, -P + 19.0 * k, 2.6 * k, 30 * k, 50 * k)):  # GL origin
            tendon = np.maximum(tendon, smoothstep_inside(rr - np.hypot(l - cl, a - ca), h) * (d >= lo) * (d < hi))
        paint(TENDON, tendon)
        # femur: two condyles (notch posteriorly), the trochlea, then the metaphysis; the patella
        cond = np.sqrt(np.clip((d + 3 * k) / (10 * k), 0, 1))
        bone = np.maximum(_ellipse(l, a, tl - 16.0 * k, ta + 1.0 * k, 13.0 * k * cond, 20.0 * k * cond),
                          _ellipse(l, a, tl + 16.0 * k, ta + 1.0 * k, 12.0 * k * cond, 19.0 * k * cond))
        bone = np.maximum(bone, _ellipse(l, a, tl, ta + 8.0 * k, 27.0 * k * cond, 11.0 * k) - 1e3 * (d < 6 * k))
        w = 1.0 - 0.25 * _ramp(d, 25 * k, 70 * k)
        bone = np.maximum(bone, _ellipse(l, a, tl, ta + 2.0 * k, 32.0 * k * w, 22.0 * k * w) - 1e3 * (d < 22 * k))
        pat = np.sqrt(np.clip(1 - ((d - 30 * k) / (22 * k)) ** 2, 0, 1))
        bone = np.maximum(bone, _ellipse(l, a, tl + 2.0 * k, A - 5.0 * k, 20.0 * k * pat, 9.0 * k * pat))
        _bone(paint, bone, h)
    # labels and muscle properties (unlabelled muscle takes the soleus' values)
    mf = frac[:, MUSCLE]
    is_mus = mf > 0
    outline = np.where((m_idx == 6) | (m_idx == 7), mf, 0.0).astype(np.float32)
    lab_ok = outline >= 0.5
    label[lab_ok] = m_idx[lab_ok].astype(np.int16) + np.int16(anatomy.side_offsets[leg.side])
    t2 = np.zeros(n, np.float32)
    ff = np.zeros(n, np.float32)
    mi = np.flatnonzero(is_mus)
    if mi.size:
        w = np.clip(1.0 + leg.patchiness * subject.patch_field(p[mi]), 0.0, 2.0)
        var = 0.4 * subject.tissue_field(p[mi])
        for idx, m in ((6, "GM"), (7, "GL"), (8, "SOL"), (0, "SOL")):
            on = m_idx[mi] == idx
            t2[mi[on]] = leg.t2_water_ms[m] + var[on] + leg.t2_increase_ms[m] * w[on]
            ff[mi[on]] = np.clip(leg.fat_fraction[m] + 0.004 * var[on] + leg.ff_increase[m] * w[on], 0.0, 0.95)
    return frac, label, t2, ff, outline
