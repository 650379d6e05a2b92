"""Profiles of the phantom's leg along ``s`` (0 ankle … 1 knee): where each muscle is present, the
deep-fascia envelope, the posterior bulge and the tibia's width, and the cross-section's frame
(deep-fascia radii, tibia and fibula) at one level, from which the leg's ends continue."""

from __future__ import annotations

import numpy as np

from alsseg.synth.anatomy import MUSCLES

# presence of each muscle along s (0 ankle → 1 knee): (s points, presence)
PRESENCE = {
    "TA": ((0.0, 0.18, 0.35, 0.5, 0.92, 1.0), (0.0, 0.0, 0.55, 1.0, 1.0, 0.6)),
    "EDL": ((0.0, 0.15, 0.3, 0.5, 0.92, 1.0), (0.0, 0.0, 0.6, 1.0, 1.0, 0.5)),
    "PER": ((0.0, 0.2, 0.35, 0.5, 0.9, 1.0), (0.0, 0.0, 0.6, 1.0, 1.0, 0.5)),
    "TP": ((0.0, 0.2, 0.35, 0.5, 0.88, 1.0), (0.0, 0.0, 0.55, 1.0, 1.0, 0.4)),
    "SOL": ((0.0, 0.12, 0.3, 0.5, 0.8, 0.92, 1.0), (0.0, 0.0, 0.75, 1.0, 1.0, 0.3, 0.0)),
    # the gastrocnemii end as thin broad sheets over the soleus (GM lower than GL), not as cones
    "GM": ((0.0, 0.3, 0.38, 0.5, 0.62, 0.9, 1.0), (0.0, 0.0, 0.12, 0.45, 1.0, 1.0, 0.8)),
    "GL": ((0.0, 0.36, 0.45, 0.58, 0.68, 0.9, 1.0), (0.0, 0.0, 0.12, 0.45, 1.0, 1.0, 0.8)),
}
# unlabelled muscles (label 0, muscle tissue): flexor digitorum longus behind the tibia, flexor
# hallucis longus behind the fibula (distal two thirds), popliteus behind the tibial plateau,
# extensor hallucis longus deep between TA and EDL (largest distally), plantaris under GL
PRESENCE_OTHER = {
    "EHL": ((0.0, 0.15, 0.25, 0.35, 0.55, 0.75, 0.8), (0.0, 0.0, 0.8, 1.0, 0.8, 0.3, 0.0)),
    "PLA": ((0.0, 0.76, 0.84, 0.95, 1.0), (0.0, 0.0, 1.0, 1.0, 0.8)),
    "FDL": ((0.0, 0.12, 0.3, 0.7, 0.85, 1.0), (0.0, 0.3, 1.0, 1.0, 0.3, 0.0)),
    "FHL": ((0.0, 0.08, 0.25, 0.55, 0.7, 1.0), (0.0, 0.5, 1.0, 1.0, 0.0, 0.0)),
    "POP": ((0.0, 0.8, 0.9, 1.0), (0.0, 0.0, 1.0, 1.0)),
}
# deep-fascia envelope scale along s (narrow at the ankle, widest at the calf belly)
ENVELOPE = ((0.0, 0.1, 0.3, 0.5, 0.7, 0.85, 1.0), (0.62, 0.5, 0.62, 0.86, 1.0, 0.97, 0.9))
# posterior bulge (gastrocnemius) along s
POSTERIOR = ((0.0, 0.3, 0.5, 0.7, 0.9, 1.0), (0.8, 0.85, 1.0, 1.15, 1.12, 1.0))
# tibia radius scale along s (wide plafond and plateau, narrow shaft)
TIBIA_SCALE = ((0.0, 0.08, 0.2, 0.5, 0.85, 0.95, 1.0), (1.6, 1.35, 1.0, 0.95, 1.1, 1.5, 1.9))


def profile_at(table, s):
    """A profile ``(s points, values)`` at levels ``s`` (float32, constant beyond its ends)."""
    return np.interp(s, table[0], table[1]).astype(np.float32)


def fascia_radius(leg, theta, env, post):
    """Deep-fascia radius (mm) in direction ``theta`` (rad), per point (or per level node)."""
    c, si = np.cos(theta), np.sin(theta)
    ra = np.where(si >= 0, leg.ant_mm, leg.post_mm * post)
    r = 1.0 / np.sqrt((c / leg.half_width_mm) ** 2 + (si / ra) ** 2)
    jit = np.zeros_like(r)
    for k in range(4):
        jit += leg.fourier[0, k] * np.cos((k + 2) * theta) + leg.fourier[1, k] * np.sin((k + 2) * theta)
    return (r * (1.0 + jit) * env).astype(np.float32)


def distal_fibula_offset(s, tibia_mm, fibula_mm):
    """Least distance (mm) of the fibula's centre from the leg axis in the lower leg (s < 0.2): the
    lateral malleolus sits beside the tibia, not inside it (0 from s = 0.2 up)."""
    return np.clip((0.2 - s) / 0.1, 0.0, 1.0) * (0.75 * tibia_mm + fibula_mm)


def level_geometry(leg, s: float) -> dict:
    """The cross-section's frame at level ``s`` (what the leg ends continue from): ``env``, the
    deep-fascia radii ``lat``, ``ant``, ``post`` (mm) and ``tib``/``fib`` = ``(l, a, radius)``."""
    loss = float(np.mean([leg.atrophy[m] for m in MUSCLES]))
    env = float(np.interp(s, *ENVELOPE)) * np.sqrt(1.0 - 0.7 * loss)
    post = float(np.interp(s, *POSTERIOR)) * (1.0 - 0.35 * 0.5 * (leg.atrophy["GM"] + leg.atrophy["GL"]))

    def radius(th):
        return float(fascia_radius(leg, np.float32([th]), np.float32(env), np.float32(post))[0])

    rt = leg.tibia_mm * float(np.interp(s, *TIBIA_SCALE))
    rf = leg.fibula_mm * (1.5 if s < 0.12 else 1.0)
    th_t, th_f = np.deg2rad(leg.tibia_angle_deg), np.deg2rad(leg.fibula_angle_deg)
    d_t = max(radius(th_t) - rt * 1.2 - 2.0, 0.0)
    d_f = max(radius(th_f) - rf - 24.0 * env, distal_fibula_offset(s, rt, rf))
    return {"env": env, "lat": radius(0.0), "ant": radius(np.pi / 2), "post": radius(-np.pi / 2),
                "tib": (d_t * np.cos(th_t), d_t * np.sin(th_t), rt), "fib": (d_f * np.cos(th_f), d_f * np.sin(th_f), rf)}


#: compartment boundaries, degrees (leg frame: 0 = lateral, 90 = anterior): the lateral
#: compartment's septa around the fibula and the TA/EDL split ray from the membrane. Rotated 6-24
#: degrees anteriorly on 2026-11-29 (were 28 / -52 / 36): TA and PER were larger than Handsfield
#: et al.'s proportions and the network trained on them put TA over real EDL, EDL over real PER
#: and PER over lateral soleus (docs/synth.md).
PER_ANTERIOR_SEPTUM_DEG, PER_POSTERIOR_SEPTUM_DEG, TA_EDL_SPLIT_DEG = 40.0, -28.0, 42.0
