"""Segmentation: datasets, preprocessing, MONAI U-Net training, inference, bundles.

The only home of torch and MONAI in alsseg; they are imported lazily (``import alsseg.seg``
costs nothing). Main entry points::

    from alsseg.seg import Segmenter                 # Segmenter.from_bundle("lowerleg-unet").predict(img)
    from alsseg.seg import train, load_recipe        # train(load_recipe(path), data, out)
    from alsseg.seg import write_dataset, RawDataset, evaluate_labels, export_bundle
"""

from __future__ import annotations

import importlib

_API = {
    "Segmenter": "alsseg.seg.infer",
    "train": "alsseg.seg.train",
    "load_recipe": "alsseg.seg.recipe",
    "Recipe": "alsseg.seg.recipe",
    "write_dataset": "alsseg.seg.dataset",
    "index_dataset": "alsseg.seg.dataset",
    "RawDataset": "alsseg.seg.dataset",
    "Case": "alsseg.seg.dataset",
    "evaluate_labels": "alsseg.seg.evaluate",
    "export_bundle": "alsseg.seg.bundle",
    "load_bundle": "alsseg.seg.bundle",
    "list_bundles": "alsseg.seg.bundle",
    "synthetic_cases": "alsseg.seg.sources",
    "bids_cases": "alsseg.seg.sources",
}

__all__ = sorted(_API)


def __getattr__(name):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'alsseg.seg' has no attribute {name!r}")
