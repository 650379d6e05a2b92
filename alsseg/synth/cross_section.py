"""Cross-sections of the phantom: tissue fractions, muscle labels and properties at world points.

:func:`evaluate` turns a :class:`~alsseg.synth.anatomy.Subject` (the random parameters) into
tissue content at any points. Each leg is evaluated in its own frame (``l`` lateral, ``a``
anterior, ``s`` 0 at the ankle … 1 at the knee), from parametric pieces that follow real axial
anatomy: deep fascia, subcutaneous fat and skin, tibia and fibula, the interosseous membrane and
intermuscular septa that bound the compartments, the seven labelled muscles with their presence
along the leg, the unlabelled deep flexors (FDL, FHL) and popliteus (muscle tissue, label 0),
intramuscular aponeuroses (labelled as their muscle), fascia sheets, vessels and tendons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alsseg.labels import load_anatomy
from alsseg.synth.anatomy import (
    AIR, APONEUROSIS, ARTERY, CORTEX, FASCIA, FAT, MARROW, MUSCLE, MUSCLES, N_TISSUES, OTHER_MUSCLE, SKIN, TENDON,
    VEIN, Subject,
)
from alsseg.synth.fat_patterns import PATCHY, apply_fat_pattern
from alsseg.synth.fields import paint_over, smoothstep_inside, thin_sheet_fraction
from alsseg.synth.profiles import (
    ENVELOPE, PER_ANTERIOR_SEPTUM_DEG, PER_POSTERIOR_SEPTUM_DEG, POSTERIOR, PRESENCE, PRESENCE_OTHER, TA_EDL_SPLIT_DEG,
    TIBIA_SCALE, distal_fibula_offset, fascia_radius, profile_at,
)
from alsseg.synth.leg_ends import ANKLE_S_MIN, FOOT_REACH_MM, KNEE_S_MAX, distal_tendons, evaluate_leg_end

# ---------------------------------------------------------------- evaluation
@dataclass
class TissueSample:
    """Tissue content of a batch of points.

    Attributes:
        fractions: ``(N, N_TISSUES)`` float32 partial-volume fractions (sum 1).
        label: ``(N,)`` int16 muscle label id (0 where the point is not in a muscle).
        t2_water_ms: ``(N,)`` float32 water T2 of the muscle tissue at the point.
        fat_fraction: ``(N,)`` float32 fat fraction of the muscle tissue at the point.
        outline_fraction: ``(N,)`` float32 part of the point inside a labelled muscle's outline as
            an annotator draws it (see :func:`evaluate`), in [0, 1].
    """

    fractions: np.ndarray
    label: np.ndarray
    t2_water_ms: np.ndarray
    fat_fraction: np.ndarray
    outline_fraction: np.ndarray


def _wrap_deg(d):
    return (d + 180.0) % 360.0 - 180.0


def evaluate(subject: Subject, points_mm: np.ndarray, *, voxel_mm: float = 1.0) -> TissueSample:
    """Tissue fractions, muscle labels and muscle properties at world points.

    Args:
        subject: from :func:`make_subject`.
        points_mm: ``(N, 3)`` world (RAS+) positions, mm.
        voxel_mm: in-plane voxel size, mm: boundaries are drawn with a linear partial-volume
            ramp of this width and thin sheets (fascia) with their overlap fraction.

    Returns:
        :class:`TissueSample`. Labels follow the annotation convention of real manual outlines: a
        muscle's outline runs along the middle of the deep fascia and of the septa it shares with
        its neighbours (adjacent outlines touch), and takes in everything inside it (intramuscular
        fat streaks, septal fat, aponeuroses); tendons, vessels and the fat of the neurovascular
        bundles are left out. A point is labelled where at least half of it lies inside an outline.
    """
    p = np.asarray(points_mm, np.float32)
    N = p.shape[0]
    frac = np.zeros((N, N_TISSUES), np.float32)
    frac[:, AIR] = 1.0
    label = np.zeros(N, np.int16)
    t2w = np.zeros(N, np.float32)
    ffm = np.zeros(N, np.float32)
    outline = np.zeros(N, np.float32)
    if N == 0:
        return TissueSample(frac, label, t2w, ffm, outline)
    anatomy = load_anatomy()
    # candidate points (near either leg), then the elastic deformation (in-plane, smooth) there only
    z = p[:, 2]
    zc = subject.z_ankle_mm + 0.5 * subject.leg_length_mm
    near = np.zeros(N, bool)
    for leg in subject.legs.values():
        reach = leg.half_width_mm + leg.fat_mm + 15.0 + 3 * subject.deform_mm
        ex = p[:, 0] - (leg.centre_mm[0] + leg.slope[0] * (z - zc))
        ey = p[:, 1] - (leg.centre_mm[1] + leg.slope[1] * (z - zc))
        reach = reach + FOOT_REACH_MM * (z < subject.z_ankle_mm)  # the foot reaches forward
        near |= ex * ex + ey * ey < reach * reach
    cand = np.flatnonzero(near)
    if cand.size == 0:
        return TissueSample(frac, label, t2w, ffm, outline)
    dx = np.zeros(N, np.float32)
    dy = np.zeros(N, np.float32)
    dx[cand] = subject.deform_mm * subject.deform[0](p[cand])
    dy[cand] = subject.deform_mm * subject.deform[1](p[cand])
    for leg in subject.legs.values():
        s_all = (z - subject.z_ankle_mm) / subject.leg_length_mm
        cx = leg.centre_mm[0] + leg.slope[0] * (z - zc)
        cy = leg.centre_mm[1] + leg.slope[1] * (z - zc)
        ux = p[:, 0] + dx - cx
        uy = p[:, 1] + dy - cy
        reach = (max(leg.half_width_mm, leg.post_mm * 1.2, leg.ant_mm) * 1.15 * profile_at(ENVELOPE, s_all)
                 + 1.4 * leg.fat_mm + leg.skin_mm + 4.0)
        sel = np.flatnonzero((ux * ux + uy * uy < reach * reach) & (s_all >= 0.0) & (s_all <= 1.0))
        if sel.size:
            _evaluate_leg(subject, leg, anatomy, p[sel], ux[sel], uy[sel], s_all[sel], voxel_mm,
                          frac, label, t2w, ffm, outline, sel)
        # beyond the joints: ankle/hindfoot and knee (alsseg.synth.leg_ends)
        for part in ((s_all < 0.0) & (s_all > ANKLE_S_MIN), (s_all > 1.0) & (s_all < KNEE_S_MAX)):
            end = np.flatnonzero(part & (ux * ux + uy * uy < (reach + FOOT_REACH_MM) ** 2))
            if end.size:
                _evaluate_end(subject, leg, anatomy, p[end], ux[end], uy[end], s_all[end], voxel_mm,
                              frac, label, t2w, ffm, outline, end)
    return TissueSample(frac, label, t2w, ffm, outline)


def _leg_frame(leg, ux, uy):
    """World offsets from the leg axis → leg frame ``(l lateral, a anterior)``, mm."""
    rot = np.deg2rad(leg.rotation_deg)
    l0 = (1.0 if leg.side == "R" else -1.0) * ux
    return np.cos(rot) * l0 - np.sin(rot) * uy, np.sin(rot) * l0 + np.cos(rot) * uy


def _evaluate_end(subject, leg, anatomy, p, ux, uy, s, h, frac_all, label_all, t2_all, ff_all, outline_all, sel):
    """Fill the outputs at indices ``sel``: points of one leg beyond one of its joints."""
    l, a = _leg_frame(leg, ux, uy)
    frac, lab, t2, ff, outl = evaluate_leg_end(subject, leg, anatomy, p, l.astype(np.float32), a.astype(np.float32), s,
                                         h)
    take = np.flatnonzero(frac[:, AIR] < 1.0)
    for out, v in ((frac_all, frac), (label_all, lab), (t2_all, t2), (ff_all, ff), (outline_all, outl)):
        out[sel[take]] = v[take]


def _evaluate_leg(subject, leg, anatomy, p, ux, uy, s, h, frac_all, label_all, t2_all, ff_all, outline_all, sel):
    """Fill the outputs at indices ``sel`` for the points of one leg."""
    rot = np.deg2rad(leg.rotation_deg)
    mirror = 1.0 if leg.side == "R" else -1.0
    # leg frame: l lateral, a anterior (rotation applied in the mirrored frame: + = external)
    l0 = mirror * ux
    a0 = uy
    cr, sr = np.cos(rot), np.sin(rot)
    l = cr * l0 - sr * a0
    a = sr * l0 + cr * a0
    n = l.size
    frac = np.zeros((n, N_TISSUES), np.float32)
    frac[:, AIR] = 1.0

    def paint(tissue, alpha):
        paint_over(frac, tissue, alpha)

    muscles = MUSCLES
    atrophy = leg.atrophy
    prop = leg.proportions
    geo = leg.geometry
    mean_loss = float(np.mean([atrophy[m] for m in muscles]))
    env = profile_at(ENVELOPE, s) * np.float32(np.sqrt(1.0 - 0.7 * mean_loss))
    post = profile_at(POSTERIOR, s)
    gast_loss = 0.5 * (atrophy["GM"] + atrophy["GL"])
    post = post * np.float32(1.0 - 0.35 * gast_loss)

    def contour_radius(theta, env=env, post=post):
        return fascia_radius(leg, theta, env, post)

    s_nodes = np.linspace(float(s.min()), float(s.max()) + 1e-6, 48).astype(np.float32)

    def along_s(theta0):
        """Contour radius in a fixed direction ``theta0`` (rad) at each point's level ``s``."""
        env_n = profile_at(ENVELOPE, s_nodes) * np.float32(np.sqrt(1.0 - 0.7 * mean_loss))
        post_n = profile_at(POSTERIOR, s_nodes) * np.float32(1.0 - 0.35 * gast_loss)
        r_nodes = contour_radius(np.full(s_nodes.size, theta0, np.float32), env_n, post_n)
        return np.interp(s, s_nodes, r_nodes).astype(np.float32)

    r = np.sqrt(l * l + a * a)
    theta = np.arctan2(a, l)
    rb = contour_radius(theta)
    depth = rb - r  # > 0 inside the deep fascia
    theta_deg = np.rad2deg(theta)
    # subcutaneous fat thickness: thin over the shin (anteromedial), thicker posteromedially
    tfat = leg.fat_mm * (1.0 + 0.35 * np.cos(np.deg2rad(theta_deg + 120.0)))
    tfat = tfat * (1.0 - 0.8 * np.exp(-(_wrap_deg(theta_deg - leg.tibia_angle_deg) / 30.0) ** 2))
    tfat = np.maximum(tfat, 1.0)
    skin_depth = depth + tfat + leg.skin_mm
    paint(SKIN, smoothstep_inside(skin_depth, h))
    paint(FAT, smoothstep_inside(depth + tfat, h))
    # saphenous veins in the subcutaneous fat
    for ang, rr in ((165.0, 2.2), (-95.0, 1.8)):
        rad = along_s(np.deg2rad(ang)) + leg.fat_mm * 0.5
        dv = np.sqrt((l - rad * np.cos(np.deg2rad(ang))) ** 2 + (a - rad * np.sin(np.deg2rad(ang))) ** 2)
        paint(VEIN, smoothstep_inside(rr - dv, h) * (s > 0.1) * (s < 0.95))

    # interior: everything below works on the points inside the deep fascia (plus a margin);
    # ``paint`` follows the rebinding of ``frac`` and ``n``
    outer_frac = frac
    ii = np.flatnonzero(depth > -(2.0 * h + 1.0))
    l, a, s, p, r, theta, theta_deg, depth, env, post, rb = (
        v[ii] for v in (l, a, s, p, r, theta, theta_deg, depth, env, post, rb))
    n = ii.size
    frac = outer_frac[ii]

    # bones
    tib_scale = profile_at(TIBIA_SCALE, s)
    rt = leg.tibia_mm * tib_scale
    th_t = np.deg2rad(leg.tibia_angle_deg)
    rb_t = along_s(th_t)
    d_t = np.maximum(rb_t - rt * 1.2 - 2.0, 0.0)
    tl, ta = d_t * np.cos(th_t), d_t * np.sin(th_t)
    rf = leg.fibula_mm * np.where(s < 0.12, 1.5, 1.0).astype(np.float32)
    th_f = np.deg2rad(leg.fibula_angle_deg)
    rb_f = along_s(th_f)
    d_f = np.maximum(rb_f - rf - 24.0 * env, distal_fibula_offset(s, rt, rf))
    fl, fa = d_f * np.cos(th_f), d_f * np.sin(th_f)
    # tibia: rounded triangle with an apex pointing along th_t (anterior crest)
    vtl, vta = l - tl, a - ta
    rho_t = np.sqrt(vtl ** 2 + vta ** 2)
    phi_t = np.arctan2(vta, vtl)
    rt_phi = rt * (1.0 + 0.14 * np.cos(3.0 * (phi_t - th_t)))
    tib_depth = rt_phi - rho_t
    vfl, vfa = l - fl, a - fa
    rho_f = np.sqrt(vfl ** 2 + vfa ** 2)
    psi_f = np.rad2deg(np.arctan2(vfa, vfl))
    fib_depth = rf * (1.0 + 0.1 * np.cos(2 * np.deg2rad(psi_f))) - rho_f

    # muscle region: inside the deep fascia, outside bones, not in the subcutaneous tibial sector
    # the tibia's anterior crest and medial face are subcutaneous: no muscle over them (TA lies on
    # the lateral face); a band of fat/periosteum from just lateral of the crest round to medial
    rel = _wrap_deg(np.rad2deg(phi_t) - (leg.tibia_angle_deg + 25.0))
    shin_fat = (np.abs(rel) < 50.0) & (tib_depth > -2.5)
    # compartments
    ux_tf, ua_tf = fl - tl, fa - ta
    len_tf = np.maximum(np.sqrt(ux_tf ** 2 + ua_tf ** 2), 1e-3)
    ux_tf, ua_tf = ux_tf / len_tf, ua_tf / len_tf
    ant_dist = ux_tf * vta - ua_tf * vtl  # signed distance to membrane line (+ anterior)
    along = ux_tf * vtl + ua_tf * vta
    # septa of the lateral compartment, degrees around the fibula from lateral (+ anterior)
    psi_a = PER_ANTERIOR_SEPTUM_DEG + geo.get("per_anterior_deg", 0.0) + 8.0 * (prop["PER"] - 1.0) * 5 - 20.0 * atrophy["PER"]
    psi_p = PER_POSTERIOR_SEPTUM_DEG + geo.get("per_posterior_deg", 0.0) - 8.0 * (prop["PER"] - 1.0) * 5 + 20.0 * atrophy["PER"]
    in_lat = (psi_f > psi_p) & (psi_f < psi_a)
    # TA / EDL split: ray from a pivot on the membrane
    piv_l = fl + 0.3 * (tl - fl)
    piv_a = fa + 0.3 * (ta - fa)
    psi_s = np.rad2deg(np.arctan2(a - piv_a, l - piv_l))
    split = TA_EDL_SPLIT_DEG + geo.get("ta_edl_split_deg", 0.0) + 12.0 * (prop["EDL"] - prop["TA"]) * 3 + 20.0 * (atrophy["EDL"] - atrophy["TA"])
    is_ta = _wrap_deg(psi_s - split) > 0
    # deep posterior (TP): ellipse under the transverse septum
    mid_l, mid_a = 0.5 * (tl + fl), 0.5 * (ta + fa)
    h_tp = 16.0 * geo.get("tp_depth_scale", 1.0) * env * prop["TP"] * np.float32(np.sqrt(1 - atrophy["TP"]))
    c_l, c_a = mid_l, mid_a  # centred on the membrane midpoint
    e_u = (l - c_l) * ux_tf + (a - c_a) * ua_tf
    e_v = -((l - c_l) * (-ua_tf) + (a - c_a) * ux_tf)  # distance behind the membrane
    semi_u = 0.38 * len_tf + 0.3 * rt
    rho_tp = np.sqrt((e_u / semi_u) ** 2 + (e_v / (h_tp * 1.6)) ** 2)
    is_tp = rho_tp < 1.0
    # gastrocnemius layer
    th_mid = -95.0 + geo.get("gast_midline_deg", 0.0) + 10.0 * (prop["GM"] - prop["GL"]) * 3
    gm_range = (-178.0 + geo.get("gm_medial_end_deg", 0.0), th_mid)
    gl_range = (th_mid, -32.0 + geo.get("gl_lateral_end_deg", 0.0))

    def bump(t_deg, lo, hi):
        x = np.clip((t_deg - lo) / (hi - lo), 0.0, 1.0)
        return np.sin(np.pi * x) ** 0.6

    tdeg_w = np.where(theta_deg > 90.0, theta_deg - 360.0, theta_deg)  # medial side continuous
    def sheet(presence):
        """Belly thickness factor: a thin sheet (a quarter of the belly, reached within the first 12 % of
        presence) where the muscle starts."""
        return (0.25 * np.clip(presence / 0.12, 0.0, 1.0) + 0.75 * presence).astype(np.float32)

    g_scale = geo.get("gast_thickness_scale", 1.0)
    g_gm = 29.0 * g_scale * env * prop["GM"] * (1 - atrophy["GM"]) * bump(tdeg_w, *gm_range) * sheet(profile_at(PRESENCE["GM"], s))
    g_gl = 23.0 * g_scale * env * prop["GL"] * (1 - atrophy["GL"]) * bump(tdeg_w, *gl_range) * sheet(profile_at(PRESENCE["GL"], s))
    in_gm = (tdeg_w > gm_range[0]) & (tdeg_w <= gm_range[1]) & (depth < g_gm)
    in_gl = (tdeg_w > gl_range[0]) & (tdeg_w < gl_range[1]) & (depth < g_gl)

    def anterior_of(dist):
        return dist > 0

    # label by compartment rules
    m_idx = np.full(n, 5, np.int8)  # SOL (index 5) by default in the posterior
    anterior = ant_dist > 0
    m_idx[anterior & is_ta] = 1
    m_idx[anterior & ~is_ta] = 2
    post_side = ~anterior
    m_idx[post_side & is_tp] = 4
    m_idx[post_side & ~is_tp & in_gm] = 6
    m_idx[post_side & ~is_tp & in_gl] = 7
    m_idx[in_lat & (rho_f > rf)] = 3
    # unlabelled deep posterior muscles: FDL behind the tibia, FHL behind the fibula, popliteus
    # behind the tibial plateau (ellipses in the membrane frame; TP and the gastrocnemii win)
    pn_l, pn_a = ua_tf, -ux_tf  # posterior normal of the membrane
    d_other = np.full(n, np.float32(1e3))  # distance (mm, approx.) to their boundary
    for key, (bl, ba, br, ru, rv) in {
        "FDL": (tl, ta, rt * 0.8 + 8.0 * env, 11.0, 8.0),
        "FHL": (fl - ux_tf * 4.0, fa - ua_tf * 4.0, rf + 9.0 * env, 12.0, 9.0),
        "POP": (tl + ux_tf * 10.0, ta + ua_tf * 10.0, rt + 5.0, 26.0, 6.0),
    }.items():
        pres = profile_at(PRESENCE_OTHER[key], s) * np.float32(leg.deep_flexor_scale if key != "POP" else 1.0)
        cl_o, ca_o = bl + pn_l * br, ba + pn_a * br
        su = np.maximum(ru * env * np.sqrt(pres), 1e-3)
        sv = np.maximum(rv * env * np.sqrt(pres), 1e-3)
        q_u = (l - cl_o) * ux_tf + (a - ca_o) * ua_tf
        q_v = (l - cl_o) * pn_l + (a - ca_o) * pn_a
        rho_o = np.sqrt((q_u / su) ** 2 + (q_v / sv) ** 2)
        in_o = (rho_o < 1.0) & (pres > 0.05) & ~anterior_of(ant_dist) & ~is_tp & ~in_gm & ~in_gl & ~in_lat
        m_idx[in_o] = OTHER_MUSCLE
        d_other = np.where((pres > 0.05) & ~in_lat, np.minimum(d_other, np.abs(rho_o - 1.0) * np.minimum(su, sv)), d_other)
    # EHL: deep in the anterior compartment at the TA/EDL split, its own belly inside a septum but
    # labelled EDL (the label set's EDL is EDL + EHL, as in Handsfield et al.'s volumes)
    pres = profile_at(PRESENCE_OTHER["EHL"], s)
    r_e = np.maximum(9.0 * env * np.sqrt(pres), 1e-3)
    c_e = np.deg2rad(split - 16.0)
    rho_e = np.sqrt((l - piv_l - 11.0 * env * np.cos(c_e)) ** 2 + (a - piv_a - 11.0 * env * np.sin(c_e)) ** 2) / r_e
    in_ehl = (rho_e < 1.0) & (pres > 0.05) & anterior_of(ant_dist) & ~is_ta & ~in_lat
    m_idx[in_ehl] = 2
    d_ehl = np.where((pres > 0.05) & anterior_of(ant_dist) & ~is_ta & ~in_lat, np.abs(rho_e - 1.0) * r_e, 1e3)
    # plantaris: a small belly just under GL (taken from SOL) and its thin tendon between GM and SOL
    pres = profile_at(PRESENCE_OTHER["PLA"], s)
    th_pl = th_mid + 0.3 * (gl_range[1] - th_mid)
    arc = r * np.deg2rad(tdeg_w - th_pl)
    dep_pl = depth - g_gl - 5.0 * env
    rho_pl = np.sqrt((dep_pl / np.maximum(4.5 * np.sqrt(pres), 1e-3)) ** 2 + (arc / np.maximum(11.0 * np.sqrt(pres), 1e-3)) ** 2)
    in_pl = (rho_pl < 1.0) & (pres > 0.05) & post_side & ~is_tp & ~in_gm & ~in_gl & ~in_lat
    m_idx[in_pl] = OTHER_MUSCLE
    d_other = np.where(in_pl | ((rho_pl < 2.0) & (pres > 0.05)), np.minimum(d_other, np.abs(rho_pl - 1.0) * 4.5), d_other)
    th_pt = np.interp(s, (0.1, 0.5, 0.8), (-95.0, -125.0, th_pl))
    d_pt = np.sqrt((depth - g_gm - g_gl - 1.5) ** 2 + (r * np.deg2rad(tdeg_w - th_pt)) ** 2)
    plantaris_tendon = smoothstep_inside(1.2 - d_pt, h) * (s > 0.12) * (s < 0.8)
    # muscle cores, for tapering towards tendons (and atrophy)
    cores = {
        1: (piv_l + 16.0 * np.cos(np.deg2rad(split + 35)) * env, piv_a + 16.0 * np.sin(np.deg2rad(split + 35)) * env),
        2: (fl + (rf + 9.0 * env) * np.cos(np.deg2rad(70.0)), fa + (rf + 9.0 * env) * np.sin(np.deg2rad(70.0))),
        3: (fl + (rf + 7.0 * env) * np.cos(np.deg2rad(-12.0)), fa + (rf + 7.0 * env) * np.sin(np.deg2rad(-12.0))),
        4: (mid_l + ua_tf * 8.0 * env, mid_a - ux_tf * 8.0 * env),
        5: (0.0 * l, -0.35 * leg.post_mm * env + 0 * l),
        6: (-0.45 * leg.half_width_mm * env, -0.6 * leg.post_mm * env),
        7: (0.45 * leg.half_width_mm * env, -0.6 * leg.post_mm * env),
    }
    reach_full = {1: 40.0, 2: 36.0, 3: 36.0, 4: 36.0, 5: 70.0, 6: 60.0, 7: 50.0}
    muscle_alpha = smoothstep_inside(depth, h) * (1.0 - smoothstep_inside(np.maximum(tib_depth, fib_depth), h))
    muscle_alpha = muscle_alpha * (~shin_fat)
    keep = np.ones(n, np.float32)
    tendon_alpha = np.zeros(n, np.float32)
    for idx, abbrev in enumerate(muscles, start=1):
        pres = profile_at(PRESENCE[abbrev], s)
        if abbrev not in ("SOL",):
            pres = pres * np.float32(1.0 - atrophy[abbrev] * 0.6)
        cl, ca = cores[idx]
        dist = np.sqrt((l - cl) ** 2 + (a - ca) ** 2)
        reach = reach_full[idx] * env * prop[abbrev] * np.sqrt(pres) * (1.0 + 4.0 * pres ** 6)
        on = m_idx == idx
        if abbrev not in ("GM", "GL"):  # the gastrocnemii thin out as sheets (see ``sheet``)
            keep[on] = smoothstep_inside(reach[on] - dist[on], h)
        # tendon where the muscle has (almost) ended: TA tendon anteriorly, Achilles posteriorly
        if abbrev in ("TA", "SOL"):
            tend_r = np.where((s < 0.45) & (s > 0.0), 3.0 + 3.0 * (0.45 - s) / 0.45, 0.0)
            if abbrev == "SOL":
                # Achilles: flat ellipse at the posterior deep fascia
                at_l, at_a = 0.0, -along_s(-np.pi / 2) + 4.0
                dd = np.sqrt(((l - at_l) / 2.2) ** 2 + (a - at_a) ** 2)
            else:
                dd = np.sqrt((l - cl) ** 2 + (a - ca) ** 2)
            tendon_alpha = np.maximum(tendon_alpha, smoothstep_inside(tend_r - dd, h))
    tendon_alpha = np.maximum(tendon_alpha, plantaris_tendon)
    low = np.flatnonzero(s < 0.3)  # the ankle tendons where their muscles end
    if low.size:
        tendon_alpha[low] = np.maximum(tendon_alpha[low], distal_tendons(
            l[low], a[low], -s[low] * subject.leg_length_mm, (tl[low], ta[low], rt[low]), (fl[low], fa[low], rf[low]),
            leg.tibia_mm / 14.0, h, below_joint=False))
    # where a muscle has tapered or atrophied (keep < 1) the fat painted underneath shows through
    paint(MUSCLE, muscle_alpha * keep)
    # the annotator's outline: the muscle territory, less what is painted over it later and left
    # out of manual outlines (tendons, vessels, neurovascular-bundle fat, bone); septa, fat streaks
    # and aponeuroses stay inside it
    outline = muscle_alpha * keep

    def exclude(alpha):
        nonlocal outline
        outline = outline * (1.0 - np.broadcast_to(np.asarray(alpha, np.float32), (n,)))

    # septa: distance to the compartment boundaries (only inside the muscle region)
    big = np.float32(1e3)
    d_sep = np.full(n, big, np.float32)
    on_seg = (along > 0) & (along < len_tf)
    d_sep = np.where(on_seg, np.minimum(d_sep, np.abs(ant_dist)), d_sep)
    for psi_r in (psi_a, psi_p):
        dr = rho_f * np.abs(np.sin(np.deg2rad(psi_f - psi_r)))
        ok = (np.cos(np.deg2rad(psi_f - psi_r)) > 0) & (rho_f > rf)
        d_sep = np.where(ok, np.minimum(d_sep, dr), d_sep)
    rho_s = np.sqrt((l - piv_l) ** 2 + (a - piv_a) ** 2)
    ds = rho_s * np.abs(np.sin(np.deg2rad(psi_s - split)))
    d_sep = np.where(anterior & (np.cos(np.deg2rad(psi_s - split)) > 0) & ~in_lat, np.minimum(d_sep, ds), d_sep)
    d_tp = np.abs(rho_tp - 1.0) * h_tp * 1.6
    d_sep = np.where(post_side & ~in_lat, np.minimum(d_sep, d_tp), d_sep)
    d_sep = np.where(post_side, np.minimum(d_sep, d_other), d_sep)
    d_sep = np.minimum(d_sep, d_ehl)
    for rng_, g in ((gm_range, g_gm), (gl_range, g_gl)):
        ok = (tdeg_w > rng_[0]) & (tdeg_w < rng_[1]) & (g > 1.0) & post_side & ~is_tp
        d_sep = np.where(ok, np.minimum(d_sep, np.abs(depth - g)), d_sep)
    ok = (depth < np.maximum(g_gm, g_gl)) & (np.abs(tdeg_w - th_mid) < 30)
    d_sep = np.where(ok, np.minimum(d_sep, r * np.abs(np.sin(np.deg2rad(tdeg_w - th_mid)))), d_sep)
    inside_mus = muscle_alpha > 0
    # intramuscular connective-tissue/fat streaks: thin sheets along iso-surfaces of a smooth field
    mi0 = np.flatnonzero(inside_mus & (keep > 0))
    if mi0.size:
        iso = np.abs(subject.tissue_field(p[mi0])) * 9.0  # ≈ mm from the iso-surface
        streak = np.zeros(n, np.float32)
        streak[mi0] = thin_sheet_fraction(iso, 0.5, h) * subject.streaks
        paint(FAT, streak)
    sep_fat = thin_sheet_fraction(d_sep, leg.septum_fat_mm + 0.4, h) * inside_mus
    paint(FAT, sep_fat * (leg.septum_fat_mm / (leg.septum_fat_mm + 0.4)))
    paint(FASCIA, thin_sheet_fraction(d_sep, leg.septum_mm, h) * inside_mus)
    # intramuscular aponeuroses (dark collagen lines inside a muscle, labelled as the muscle):
    # TA's central tendon (a ray from the membrane towards the shin), soleus' (a sheet parallel
    # to the posterior surface, under the gastrocnemii) and one inside each gastrocnemius belly
    if leg.aponeurosis_strength > 0:
        psi_ap = split + 30.0
        d_apo = np.where((m_idx == 1) & (np.cos(np.deg2rad(psi_s - psi_ap)) > 0) & (rho_s > 6.0 * env) & (depth > 5.0),
                         rho_s * np.abs(np.sin(np.deg2rad(psi_s - psi_ap))), big)
        g_max = np.maximum(g_gm, g_gl)
        d_apo = np.where((m_idx == 5) & (np.abs(tdeg_w + 90.0) < 55.0) & (post_side),
                         np.minimum(d_apo, np.abs(depth - (g_max + 9.0 * env))), d_apo)
        for idx_g, g in ((6, g_gm), (7, g_gl)):
            d_apo = np.where((m_idx == idx_g) & (g > 10.0), np.minimum(d_apo, np.abs(depth - 0.55 * g)), d_apo)
        paint(APONEUROSIS, thin_sheet_fraction(d_apo, leg.aponeurosis_mm, h) * inside_mus
              * np.float32(leg.aponeurosis_strength) * (s > 0.25))
    # deep fascia (muscle boundary) and the interosseous membrane
    paint(FASCIA, thin_sheet_fraction(np.abs(depth), 0.7, h) * (tib_depth < 0))

    # vessels: (l, a) centres, radius, vein?
    nvl, nva = -ua_tf, ux_tf  # anterior normal of the membrane
    vessels = [
        (mid_l + nvl * 3.0, mid_a + nva * 3.0, 1.6, ARTERY),
        (mid_l + nvl * 3.0 + ux_tf * 3.5, mid_a + nva * 3.0 + ua_tf * 3.5, 1.8, VEIN),
        (mid_l - nvl * (h_tp * 1.6 + 2.5) - ux_tf * 8.0, mid_a - nva * (h_tp * 1.6 + 2.5) - ua_tf * 8.0, 1.8, ARTERY),
        (mid_l - nvl * (h_tp * 1.6 + 2.5) - ux_tf * 4.0, mid_a - nva * (h_tp * 1.6 + 2.5) - ua_tf * 4.0, 2.2, VEIN),
        (fl - nvl * (rf + 3.0) - ux_tf * 3.0, fa - nva * (rf + 3.0) - ua_tf * 3.0, 1.8, VEIN),
    ]
    # fat around the neurovascular bundles (anterior tibial, posterior tibial, peroneal)
    for vl, va, vr, vt in vessels[:5:2]:
        dv = np.sqrt((l - vl) ** 2 + (a - va) ** 2)
        bundle_fat = smoothstep_inside(leg.septum_fat_mm * 2.0 + 1.2 - dv, h) * (muscle_alpha > 0) * (s > 0.1)
        paint(FAT, bundle_fat)
        exclude(bundle_fat)
    for vl, va, vr, vt in vessels:
        dv = np.sqrt((l - vl) ** 2 + (a - va) ** 2)
        vessel = smoothstep_inside(vr - dv, h) * (s > 0.1) * (s < 0.95)
        paint(vt, vessel)
        exclude(vessel)
    paint(TENDON, tendon_alpha * (depth > -2))
    exclude(tendon_alpha * (depth > -2))
    # bones last
    for tissue, alpha in ((CORTEX, smoothstep_inside(tib_depth, h)),
                          (MARROW, smoothstep_inside(tib_depth - np.maximum(2.5, 4.5 - 3.0 * (tib_scale - 1.0)), h)),
                          (CORTEX, smoothstep_inside(fib_depth, h)),
                          (MARROW, smoothstep_inside(fib_depth - 0.6 * rf, h))):
        paint(tissue, alpha)
        exclude(alpha)

    # muscle labels and properties
    mf = frac[:, MUSCLE]
    is_mus = mf > 0
    outline = np.where(m_idx != OTHER_MUSCLE, outline, 0.0).astype(np.float32)
    labelled = outline >= 0.5
    lab = np.where(labelled, m_idx.astype(np.int16) + np.int16(anatomy.side_offsets[leg.side]), 0).astype(np.int16)
    patch = np.zeros(n, np.float32)
    var = np.zeros(n, np.float32)
    mi = np.flatnonzero(is_mus)
    if mi.size:
        patch[mi] = subject.patch_field(p[mi])
        var[mi] = 0.4 * subject.tissue_field(p[mi])
    t2 = np.zeros(n, np.float32)
    ff = np.zeros(n, np.float32)
    for idx, abbrev in enumerate(muscles, start=1):
        on = is_mus & ((m_idx == idx) | ((m_idx == OTHER_MUSCLE) & (abbrev == "SOL")))
        if not on.any():
            continue
        w = np.clip(1.0 + leg.patchiness * patch[on], 0.0, 2.0)
        t2[on] = leg.t2_water_ms[abbrev] + var[on] + leg.t2_increase_ms[abbrev] * w
        ff[on] = apply_fat_pattern(leg.fat_patterns.get(abbrev, PATCHY), subject.marble_field, p[on], np.clip(
            leg.fat_fraction[abbrev] + 0.004 * var[on] + leg.ff_increase[abbrev] * w, 0.0, 0.95))
    # write back (a point belongs to at most one leg's reach in practice; the later leg wins)
    outer_frac[ii] = frac
    take = outer_frac[:, AIR] < 1.0
    idx_all = sel[take]
    frac_all[idx_all] = outer_frac[take]
    inner_sel = sel[ii]
    label_all[idx_all] = 0
    label_all[inner_sel] = lab
    outline_all[idx_all] = 0.0
    outline_all[inner_sel] = outline
    t2_all[inner_sel] = t2
    ff_all[inner_sel] = ff
