"""alsseg: quantitative lower-leg muscle MRI for ALS and other neuromuscular diseases.

Subpackages (imports run one way: cli -> pipeline -> {seg, relax, quant, stats, report} -> {io, labels};
synth may use relax's forward models; held by the import-linter contracts in pyproject.toml):

- :mod:`alsseg.labels`   pure data: muscles, label ids, sides, colours
- :mod:`alsseg.io`       NIfTI / DICOM / BIDS readers and writers, validation, atomic writes
- :mod:`alsseg.relax`    EPG engine, T2 and T1 models (numpy/scipy only)
- :mod:`alsseg.synth`    phantom anatomy, signal rendering, synthetic cohorts
- :mod:`alsseg.seg`      MONAI U-Net training / inference / bundles (the only home of torch)
- :mod:`alsseg.cases`    labelled cases from synth or a BIDS dataset (above seg and synth)
- :mod:`alsseg.quant`    maps + labels -> tidy per-muscle table
- :mod:`alsseg.stats`    tables x motor measures -> statistics
- :mod:`alsseg.report`   figures and the HTML report
- :mod:`alsseg.pipeline` one session in memory (process_session) and written; a cohort; the demo
"""

__version__ = "0.1.0"
