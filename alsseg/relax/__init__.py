"""Relaxometry: EPG engine, T2 and T1 models, whole-volume fitting (numpy/scipy only; never torch).

Public API (imported lazily so ``import alsseg.relax`` stays light):

- :class:`~alsseg.relax.acquisition.MeseAcquisition` — what the scanner did (+ model constants);
- :func:`~alsseg.relax.epg.cpmg_echoes`, :class:`~alsseg.relax.epg.SliceProfile` — EPG engine;
- :func:`~alsseg.relax.t2.two_component_signal` — forward model; :class:`~alsseg.relax.dictionary.EpgDictionary`;
- :class:`~alsseg.relax.t2.EpgT2Model`, :class:`~alsseg.relax.mono.MonoExpT2Model` — T2 fits;
- :class:`~alsseg.relax.t1.InversionRecoveryT1Model`, :class:`~alsseg.relax.t1.SaturationRecoveryT1Model`,
  :class:`~alsseg.relax.t1.VfaT1Model`, :func:`~alsseg.relax.t1.ir_signal`, ``sr_signal``, ``vfa_signal``;
- :func:`~alsseg.relax.volume.fit_t2_volume`, :func:`~alsseg.relax.volume.fit_t1_volume` — whole
  volumes (relax writes no files: :func:`alsseg.io.maps.write_maps` writes the maps).
"""

from __future__ import annotations

from alsseg._lazy import lazy_exports

_WHERE = {
    "alsseg.relax.acquisition": ("MeseAcquisition", "default_profile"),
    "alsseg.relax.epg": ("SliceProfile", "cpmg_echoes"),
    "alsseg.relax.dictionary": ("EpgDictionary",),
    "alsseg.relax.t2": ("EpgT2Model", "EpgT2Fit", "two_component_signal"),
    "alsseg.relax.mono": ("MonoExpT2Model", "MonoExpT2Fit"),
    "alsseg.relax.t1": ("InversionRecoveryT1Model", "SaturationRecoveryT1Model", "VfaT1Model", "T1Fit",
                        "ir_signal", "sr_signal", "vfa_signal"),
    "alsseg.relax.volume": ("fit_t2_volume", "fit_t1_volume", "auto_mask"),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
