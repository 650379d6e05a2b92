"""Segmentation: datasets, preprocessing, MONAI U-Net training, inference, bundles.

The only home of torch and MONAI in alsseg; they are imported lazily (``import alsseg.seg``
costs nothing). Main entry points::

    from alsseg.seg import Segmenter                 # Segmenter.from_bundle("lowerleg-unet").predict(img)
    from alsseg.seg import train, load_recipe        # train(load_recipe(path), data, out)
    from alsseg.seg import write_dataset, RawDataset, evaluate_labels, export_bundle

Labelled cases to train on come from :mod:`alsseg.cases` (synthetic or BIDS), above seg.
"""

from __future__ import annotations

from alsseg._lazy import lazy_exports

_WHERE = {
    "alsseg.seg.train": ('train',),
    "alsseg.seg.recipe": ('load_recipe', 'Recipe',),
    "alsseg.seg.dataset": ('write_dataset', 'index_dataset', 'RawDataset', 'Case',),
    "alsseg.seg.evaluate": ('evaluate_labels',),
    "alsseg.seg.apply": ("segment_files",),
    "alsseg.seg.bundle": ('export_bundle',),
    "alsseg.seg.infer": ('Segmenter', 'load_bundle'),
    "alsseg.seg.store": ('list_bundles',),
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
