"""The one vocabulary of parameter maps: name → BIDS file entities, units, description.

Every map flows under the same name from :mod:`alsseg.relax` (``fit_t2_volume``,
``fit_t1_volume``) through :mod:`alsseg.quant` (``quantify`` / ``quantify_images``) to the
writers (:func:`alsseg.io.maps.write_maps`, :func:`alsseg.pipeline.write.write_session`).
Names carry units (``t2_water_ms``, ``t1_ms``) or are dimensionless (``fat_fraction``, ``b1``).

File of a map: ``PREFIX[_desc-DESC]_SUFFIX.nii.gz`` with ``(SUFFIX, DESC)`` from :data:`MAPS`
(``t1_ms`` → ``PREFIX_T1map.nii.gz``). ``desc-mono`` means one thing everywhere: the
mono-exponential T2 by a weighted log-linear fit over every echo (the biased baseline of older
studies, Bryan et al. 1998 included), what ``alsseg run`` writes and the ``t2_mono_ms`` column
means. Other mono-exponential variants of ``alsseg fit-t2`` (``--mono-method nlls``,
``--skip-first``) get their own ``desc`` (:func:`mono_descs`), so one name never holds two fits.

This module imports nothing from alsseg: every layer may use it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MapName:
    """One parameter map: ``name`` (the key in every dict of maps), BIDS ``suffix`` and ``desc``
    (None: no desc entity), ``units`` (BIDS sidecar ``Units``) and a one-line ``description``."""

    name: str
    suffix: str
    desc: str | None
    units: str
    description: str


_FLAG_BITS = "1 invalid data, 2 T2 at bound, 4 B1 at bound, 8 not converged"

#: every parameter map alsseg computes, by name.
MAPS: dict[str, MapName] = {m.name: m for m in (
    MapName("t2_water_ms", "T2map", "water", "ms", "water T2, two-component slice-profile EPG fit"),
    MapName("fat_fraction", "T2map", "fatfraction", "1", "fat fraction (0-1), two-component EPG fit"),
    MapName("b1", "T2map", "b1", "1", "transmit B1 scale (1 = nominal), EPG fit"),
    MapName("b1_voxel", "T2map", "b1voxel", "1",
            "transmit B1 scale of the voxel-wise first pass (1 = nominal); not used for the water T2 / fat "
            "fraction maps of a smooth-B1 fit"),
    MapName("m0", "T2map", "m0", "a.u.", "proton density M0, EPG fit"),
    MapName("r2", "T2map", "r2", "1", "coefficient of determination of the EPG fit"),
    MapName("residual", "T2map", "residual", "a.u.", "RMS residual of the EPG fit over the echoes"),
    MapName("flag", "T2map", "flag", "bits", f"EPG fit flags (0 = good): {_FLAG_BITS}"),
    MapName("fit_ok", "mask", "fitok", "1", "1 where the EPG fit succeeded (flag 0)"),
    MapName("t2_mono_ms", "T2map", "mono", "ms",
            "mono-exponential T2 (weighted log-linear, every echo): biased by fat and stimulated echoes"),
    MapName("mono_r2", "T2map", "monor2", "1", "coefficient of determination of the mono-exponential fit"),
    MapName("mono_flag", "T2map", "monoflag", "bits",
            "mono-exponential fit flags (0 = good): 1 invalid data, 2 T2 at bound, 8 not converged"),
    MapName("t1_ms", "T1map", None, "ms", "apparent T1 of the voxel (water and fat together)"),
    MapName("t1_m0", "T1map", "m0", "a.u.", "M0 of the T1 fit"),
    MapName("t1_r2", "T1map", "r2", "1", "coefficient of determination of the T1 fit"),
    MapName("t1_flag", "T1map", "flag", "bits", "T1 fit flags (0 = good)"),
    MapName("t1_efficiency", "T1map", "efficiency", "1", "inversion efficiency of the IR fit (1 = perfect)"),
)}

#: the maps of the EPG model, of the mono-exponential model and of a T1 fit (in writing order).
EPG_NAMES = ("t2_water_ms", "fat_fraction", "b1", "b1_voxel", "m0", "r2", "residual", "flag")
MONO_NAMES = ("t2_mono_ms", "mono_r2", "mono_flag")
T1_NAMES = ("t1_ms", "t1_m0", "t1_r2", "t1_flag", "t1_efficiency")

#: the mono-exponential variant ``desc-mono`` stands for.
MONO_CANONICAL = ("loglinear", False)


def map_info(name: str) -> MapName:
    """The :class:`MapName` of ``name``.

    Raises
    ------
    KeyError
        ``name`` is not a map of :data:`MAPS` (the message lists the known names).
    """
    try:
        return MAPS[name]
    except KeyError:
        raise KeyError(f"unknown map name {name!r}; known: {', '.join(MAPS)}") from None


def mono_descs(method: str, skip_first: bool) -> dict[str, str]:
    """``desc`` of the mono-exponential maps for a fit variant other than ``desc-mono``'s.

    ``("loglinear", False)`` → ``{}`` (the registry's ``mono``, ``monor2``, ``monoflag``);
    ``("nlls", True)`` → ``{"t2_mono_ms": "mononllsskip1", "mono_r2": "mononllsskip1r2", …}``.
    """
    if (method, bool(skip_first)) == MONO_CANONICAL:
        return {}
    base = "mono" + method.replace("_", "") + ("skip1" if skip_first else "")
    return {"t2_mono_ms": base, "mono_r2": base + "r2", "mono_flag": base + "flag"}


def map_filename(prefix: str, name: str, desc: str | None = None, ext: str = ".nii.gz") -> str:
    """``PREFIX[_desc-DESC]_SUFFIX.EXT`` of map ``name`` (``desc`` overrides the registry's)."""
    info = map_info(name)
    d = desc if desc is not None else info.desc
    return f"{prefix}{f'_desc-{d}' if d else ''}_{info.suffix}{ext}"
